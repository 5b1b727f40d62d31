"""What a training run records about itself in ``run.json``, beside its weights.

The settings that differ from TRL's defaults (and so decide what a run learns), the LoRA block
with the modules PEFT really adapted, the base's Hub revision, library versions, peak memory and
the loss over the whole run, also across ``--resume``. Nothing here trains: :mod:`mslt_it.
training.run` calls these once the Trainer has done its work, and they read only what they are
given.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

from mslt_it.data import library_versions

EXTRA_LIBRARIES = ("peft", "accelerate", "bitsandbytes")


SFT_NOT_RECORDED = frozenset({"output_dir", "logging_dir", "hub_token"})


EMPTY_SETTINGS = (None, "", "none", "auto", [], {})


def sft_differences(args: Any) -> dict[str, Any]:
    """The SFTConfig fields that differ from the dataclass defaults (what run.json records).

    Compared with the declared defaults, not with a default-constructed SFTConfig: TRL's
    default ``bf16=True`` does not even construct on a CPU-only machine. Values that
    ``__post_init__`` merely normalises ("" -> [], "none" -> []) do not count as changes, and
    secrets (``hub_token``) are never recorded.
    """
    import dataclasses

    from trl import SFTConfig

    changed: dict[str, Any] = {}
    for spec in dataclasses.fields(SFTConfig):
        if not spec.init or spec.name in SFT_NOT_RECORDED:
            continue
        if spec.default is not dataclasses.MISSING:
            default = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            default = spec.default_factory()
        else:
            default = dataclasses.MISSING
        if spec.name == "accelerator_config":  # a None default that post-init fills in
            from transformers.trainer_pt_utils import AcceleratorConfig

            default = AcceleratorConfig()
        value = plain(getattr(args, spec.name))
        if default is dataclasses.MISSING or not same_setting(plain(default), value):
            changed[spec.name] = value
    return changed


def plain(value: Any) -> Any:
    """A JSON-friendly form of a config value (enums by value, config objects as dicts)."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return getattr(value, "value", value)


def same_setting(default: Any, value: Any) -> bool:
    if isinstance(default, dict) and isinstance(value, dict):
        return all(default.get(key) == item for key, item in value.items())
    return default == value or (default in EMPTY_SETTINGS and value in EMPTY_SETTINGS)


def lora_record(lora: dict[str, Any], model: Any) -> dict[str, Any]:
    """run.json's LoRA block: r/alpha/dropout/target_modules as given, the other LoraConfig
    fields that were set, and the module names PEFT actually adapted (all-linear resolved)."""
    renamed = {"r": "r", "lora_alpha": "alpha", "lora_dropout": "dropout"}
    record = {renamed.get(key, key): value for key, value in lora.items()}
    peft_config = getattr(model, "peft_config", {}).get("default")
    adapted = getattr(peft_config, "target_modules", None)
    if isinstance(adapted, set | list | tuple):  # all-linear resolves to full paths: name them
        adapted = sorted({str(name).rsplit(".", 1)[-1] for name in adapted})
    record["adapted_modules"] = adapted
    return record


def hub_revision(name_or_path: str) -> str | None:
    """The Hub commit whose files the base model was loaded from (None for a local folder), so
    an adapter names exactly which revision of a Hub id it was trained on.

    Read from the Hub cache, where loading put the files: ``…/snapshots/<commit>/config.json``.
    """
    if Path(name_or_path).expanduser().exists():
        return None
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name_or_path, "config.json")
    except Exception:  # an id the cache cannot even parse: nothing to record
        return None
    if not isinstance(cached, str):
        return None
    parts = Path(cached).parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else None


def versions() -> dict[str, str]:
    """Library versions that shape a run (the dataset's list plus PEFT's, accelerate's, bnb's)."""

    return library_versions(EXTRA_LIBRARIES)


def peak_memory_mb() -> float:
    """Peak GPU memory allocated by torch, or on CPU the process's peak resident set size."""
    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def checkpoint_step(checkpoint: str | None) -> int:
    """The step a run resumed from (0 for a fresh start)."""
    if checkpoint is None:
        return 0
    tail = Path(checkpoint).name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def last_logged_loss(history: list[dict[str, Any]]) -> float | None:
    """The last training loss the Trainer logged (a mean over its logging window)."""
    for entry in reversed(history):
        if "loss" in entry:
            return round(float(entry["loss"]), 6)
    return None


def loss_history(history: list[dict[str, Any]]) -> list[list[float]]:
    """[step, logged loss] pairs, so a falling (or flat) curve is visible in run.json."""
    return [[entry["step"], round(float(entry["loss"]), 6)] for entry in history if "loss" in entry]


def whole_run_loss(
    history: list[dict[str, Any]], resumed_from: int, session_loss: float, last_step: int
) -> float:
    """The mean training loss over the whole run, also after ``--resume``.

    The Trainer's ``training_loss`` covers only the steps of this session. Before the resume
    point, the logged losses (restored from the checkpoint) stand for their logging windows, so
    the whole-run mean weights those windows by their steps and this session by its own.
    """
    session_steps = last_step - resumed_from
    if resumed_from <= 0 or session_steps < 0:
        return session_loss
    total, previous = 0.0, 0
    for entry in history:
        step = entry.get("step", 0)
        if "loss" in entry and previous < step <= resumed_from:
            total += float(entry["loss"]) * (step - previous)
            previous = step
    if previous == 0:
        return session_loss
    return (total + session_loss * session_steps) / (previous + session_steps)
