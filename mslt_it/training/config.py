"""The ``model`` and ``train`` sections of a recipe, and how they become TRL/PEFT configs.

mslt-it interprets a handful of settings itself (which dataset, the length cut-off and what to do
with longer examples, packing, 4-bit loading); everything else is TRL's ``SFTConfig`` or PEFT's
``LoraConfig``, passed through unchanged under ``train.sft`` and ``train.lora``, so a user who
knows TRL already knows the recipe. A field those dataclasses do not have is a typo, reported in
one line with the closest real names.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib.util
import json
import math
import os
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mslt_it.config import DataSource, validate_section
from mslt_it.errors import MsltError, clipped, first_line
from mslt_it.modeling import looks_like_a_path
from mslt_it.tasks import check_each_once, check_languages, get_task
from mslt_it.training.limits import check_values
from mslt_it.yamlfiles import key_not_a_name, parse_yaml

# LoRA defaults of the paper's setting (QLoRA's r=64, alpha=16) on the attention projections.
DEFAULT_LORA: dict[str, Any] = {
    "r": 64,
    "lora_alpha": 16,
    "lora_dropout": 0.05,
    "target_modules": ["q_proj", "k_proj", "v_proj"],
}
# SFTConfig defaults that differ from TRL's: TRL's 2e-5 suits full fine-tuning, LoRA wants ~10x;
# two checkpoints are enough to resume; tokens are counted so run.json can report throughput.
DEFAULT_SFT: dict[str, Any] = {
    "learning_rate": 2e-4,
    "save_total_limit": 2,
    "include_num_input_tokens_seen": "non_padding",
    # per-language losses (loss/<lang>) and watch scores in OUT/tensorboard; wandb or none too
    "report_to": "tensorboard",
}
# Fields mslt-it sets itself: setting them under train.sft/train.lora would be silently overridden.
OWNED_SFT_FIELDS = {
    "output_dir": "train.out / --out",
    "max_length": "train.max_length / --max-length",
    "packing": "train.packing / --packing",
    "completion_only_loss": "(chosen from the dataset format)",
    "assistant_only_loss": "(chosen from the dataset format)",
    "chat_template_path": "model.chat_template / --chat-template",
    "resume_from_checkpoint": "--resume",
    "trust_remote_code": "model.trust_remote_code",
}
OWNED_LORA_FIELDS = {
    "task_type": "(always CAUSAL_LM)",
    "base_model_name_or_path": "model.name_or_path / --model",
    "peft_type": "(always LORA)",
    "inference_mode": "(always false when training)",
}
# SFTConfig fields that change how a run is logged or stored, not what it learns: left out of
# the config hash so that, e.g., resuming with another save interval is still the same run.
NON_DETERMINING_SFT_FIELDS = frozenset(
    {
        "output_dir",
        "logging_dir",
        "logging_steps",
        "logging_strategy",
        "logging_first_step",
        "disable_tqdm",
        "report_to",
        "run_name",
        "save_steps",
        "save_strategy",
        "save_total_limit",
        "save_only_model",
        "resume_from_checkpoint",
        "dataloader_num_workers",
        "dataset_num_proc",
        "log_level",
        "log_level_replica",
    }
)
# ... except these, with load_best_model_at_end: the checkpoints saved are the candidates the
# final adapter is chosen from, so another save interval can end in other weights.
BEST_CHECKPOINT_FIELDS = frozenset({"save_steps", "save_strategy"})


class ModelConfig(BaseModel):
    """Which base model to fine-tune (the ``model`` section of a recipe)."""

    model_config = ConfigDict(extra="forbid")

    name_or_path: str = Field(description="Hub id or local folder of the base model.")
    trust_remote_code: bool = Field(
        strict=True,  # `true` is not 1, `"yes"` is not true (YAML 1.2 reads both as given)
        default=False,
        description="Run code shipped with the model. Off by default: a model folder is data.",
    )
    chat_template: str | None = Field(
        default=None,
        description=(
            "Override the tokenizer's chat template: a Jinja string, a path to a .jinja file, or "
            "'default' for mslt-it's template. Unset: the tokenizer's own, or mslt-it's default "
            "for a base model without one."
        ),
    )

    @field_validator("name_or_path")
    @classmethod
    def _local_paths_absolute(cls, value: str) -> str:
        """A local folder is recorded absolute: an adapter's ``run.json`` names its base, and a
        relative name would mean another folder (or, online, a Hub id) elsewhere."""

        path = Path(value).expanduser()
        if looks_like_a_path(value) and not path.exists():
            raise ValueError("no such folder (a Hub id looks like org/name)")
        return str(path.resolve()) if value and path.exists() else value


class WatchConfig(BaseModel):
    """Target languages scored during training (``train.watch``; ``--watch TASK:LANGS``).

    Each watch point scores the adapter as it is at that step in rank mode, through the same
    code as ``mslt-it eval --mode rank`` (one forward per choice set, in the training process),
    so the last point of a curve is the final evaluation's score on the same rows.
    """

    model_config = ConfigDict(extra="forbid")

    task: str = Field(description="Task to score (an evaluation task, e.g. xnli).")
    langs: list[str] = Field(
        min_length=1, description="Languages to score at every watch point (targets, sources)."
    )
    every: int | None = Field(
        strict=True,
        default=None,
        gt=0,
        description=(
            "Score every N optimizer steps. Unset (and no steps): ten points evenly spaced. "
            "The last step is always scored."
        ),
    )
    steps: list[Annotated[int, Field(strict=True)]] = Field(
        default=[],
        description="Explicit steps to score at (each in 1..max_steps), beside `every`.",
    )
    limit: int = Field(
        strict=True,
        default=100,
        gt=0,
        description="Rows per language: the first `limit` rows of the split, as `eval --limit`.",
    )
    split: str | None = Field(
        default=None,
        description="Split to score on. Unset: the split `mslt-it eval` reads (test first).",
    )
    data: DataSource | None = Field(
        default=None,
        description="Where rows come from (hub, synthetic, a folder). Unset: the dataset's.",
    )

    @field_validator("steps")
    @classmethod
    def _positive_steps(cls, steps: list[int]) -> list[int]:
        if any(step < 1 for step in steps):
            raise ValueError("watch steps are optimizer steps, each >= 1")
        return sorted(set(steps))


def check_watch(specs: list[WatchConfig], max_steps: int) -> None:
    """What a watch names, checked before any work (a recipe's dry run, a training's start):
    known tasks with label words, their languages, steps within ``max_steps`` (when set)."""
    watched: dict[str, int] = {}
    for number, spec in enumerate(specs):
        where = f"train.watch.{number}"
        try:
            task = get_task(spec.task)
        except MsltError as error:
            raise MsltError(f"{where}.task: {error}") from None
        check_languages(task, spec.langs, field=f"{where}.langs")
        check_each_once(spec.langs, f"{where}.langs")
        if task.name in watched:  # run.json's curves are keyed by task: one would hide the other
            raise MsltError(
                f"{where}.task: {task.name} is watched already (train.watch.{watched[task.name]});"
                " give all its languages in one watch"
            )
        watched[task.name] = number
        if task.kind in ("ner", "instructions"):
            raise MsltError(
                f"{where}.task: {task.name} has no label words to rank; the watch scores "
                "classification and multiple-choice tasks"
            )
        late = [step for step in spec.steps if max_steps > 0 and step > max_steps]
        if late:
            raise MsltError(
                f"{where}.steps: step {late[0]} is beyond max_steps ({max_steps}); "
                f"watch steps must lie in 1..{max_steps}"
            )
        if spec.every and max_steps > 0 and spec.every > max_steps:  # one point: the final
            raise MsltError(
                f"{where}.every: every {spec.every} steps is beyond max_steps ({max_steps}); "
                f"watch every 1..{max_steps} steps (--watch-every)"
            )


def parse_watch(items: list[str] | None, every: int | None = None) -> list[dict[str, Any]]:
    """``["xnli:sw,ur"]`` -> ``[{"task": "xnli", "langs": ["sw", "ur"]}]`` (``--watch``)."""
    specs: list[dict[str, Any]] = []
    for item in items or []:
        task, sep, langs = item.partition(":")
        names = [lang.strip() for lang in langs.split(",")]
        if not sep or not task.strip() or not names or not all(names):  # `xnli:en,,` too
            raise MsltError(f"--watch: expected TASK:LANG[,LANG…] (e.g. xnli:sw,ur), got {item!r}")
        spec: dict[str, Any] = {"task": task.strip(), "langs": names}
        if every is not None:
            spec["every"] = every
        specs.append(spec)
    return specs


class TrainConfig(BaseModel):
    """How to fine-tune (``mslt-it train``; the ``train`` section of a recipe).

    ``sft`` and ``lora`` hold any field of TRL's ``SFTConfig`` and PEFT's ``LoraConfig``, passed
    through unchanged; mslt-it's defaults (:data:`DEFAULT_SFT`, :data:`DEFAULT_LORA`) apply to the
    fields left unset.
    """

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = Field(
        default=None,
        description="Folder of a dataset from `mslt-it build` (in a recipe run, the data step's).",
    )
    eval_dataset: str | None = Field(
        default=None,
        description=(
            "Optional held-out dataset from `mslt-it build --split validation`: answer-token "
            "loss and accuracy in run.json are measured on it instead of on training rows."
        ),
    )
    max_length: int = Field(
        strict=True,
        default=512,
        gt=0,
        description="Longest tokenised example (prompt + answer + end-of-turn), the cut-off.",
    )
    on_overlength: Literal["drop", "truncate", "error"] = Field(
        default="drop",
        description=(
            "What to do with examples longer than max_length, counted per language in run.json. "
            "drop (default): a truncated example loses its answer and end-of-turn token, which "
            "is worse than losing the example; truncate: keep the first max_length tokens; "
            "error: stop."
        ),
    )
    packing: bool = Field(
        strict=True,
        default=False,
        description=(
            "TRL's best-fit packing: several examples per row of max_length tokens, kept apart "
            "by position ids (padding-free), so attention never crosses examples."
        ),
    )
    qlora: bool = Field(
        strict=True,
        default=False,
        description="Load the base in 4-bit NF4 with bitsandbytes (QLoRA); needs mslt-it[qlora].",
    )
    lora: dict[str, Any] = Field(
        default={},
        description="PEFT LoraConfig fields (r, lora_alpha, lora_dropout, target_modules, …).",
    )
    sft: dict[str, Any] = Field(
        default={},
        description="TRL SFTConfig fields (learning_rate, max_steps, weight_decay, …).",
    )
    keep_checkpoints: bool = Field(
        strict=True,
        default=False,
        description="Keep the Trainer checkpoints after success (they hold the optimizer state).",
    )
    eval_langs: list[str] = Field(
        default=[],
        description=(
            "Languages whose held-out loss is measured at eval_steps, beside the sources': rows "
            "of the dataset's task and split that the build did not use. A source named here is "
            "measured once, as a source (a grid's runs share the list)."
        ),
    )
    heldout_rows: int = Field(
        strict=True,
        default=32,
        ge=0,
        description=(
            "Held-out rows per language (sources and eval_langs) for the per-language held-out "
            "loss. Measured only when the run evaluates (sft.eval_steps set); 0: none."
        ),
    )
    watch: list[WatchConfig] = Field(
        default=[],
        description="Target languages scored in rank mode during training: transfer curves.",
    )
    mix_tolerance: float = Field(
        strict=True,
        default=0.05,
        ge=0,
        description=(
            "Largest relative gap between a language's share of the examples trained on and its "
            "share in the dataset's manifest before the CLI warns (0.05: 5 %)."
        ),
    )

    @field_validator("sft")
    @classmethod
    def _known_sft_fields(cls, sft: dict[str, Any]) -> dict[str, Any]:
        check_fields(sft, sft_field_names(), OWNED_SFT_FIELDS, "SFTConfig")
        check_sft_values(sft)
        return sft

    @field_validator("lora")
    @classmethod
    def _known_lora_fields(cls, lora: dict[str, Any]) -> dict[str, Any]:
        check_fields(lora, lora_field_names(), OWNED_LORA_FIELDS, "LoraConfig")
        target = lora.get("target_modules")
        if isinstance(target, str) and target != "all-linear":
            try:  # PEFT reads a string as one regular expression of a module's whole name
                re.compile(target)
            except re.error as error:
                raise ValueError(
                    f"target_modules {clipped(target, 60)} is not a regular expression "
                    f"({error}); PEFT reads a string as one: give module names as a list "
                    "([q_proj, v_proj])"
                ) from None
        names = lora.get("target_modules")
        if isinstance(names, list) and "all-linear" in names and len(names) > 1:
            raise ValueError(
                f"target_modules {clipped(names, 60)}: all-linear takes every linear module "
                "and stands alone; give it, or module names"
            )
        return lora


@cache
def sft_field_names() -> frozenset[str]:
    """The init fields of TRL's SFTConfig (imported lazily: trl is slow to import)."""
    from trl import SFTConfig

    return frozenset(f.name for f in dataclasses.fields(SFTConfig) if f.init)


MAX_SFT_INTEGER = 2**31 - 1
"""Sizes and counts beyond this are typos (and overflow what torch and the samplers take)."""


@cache
def sft_bool_fields() -> frozenset[str]:
    """SFTConfig's yes/no fields: a value other than true/false there is a typo."""
    from trl import SFTConfig

    yes_no = ("bool", "<class 'bool'>", "bool | None", "typing.Optional[bool]")
    return frozenset(f.name for f in dataclasses.fields(SFTConfig) if str(f.type) in yes_no)


@cache
def reporting_integrations() -> list[str]:
    """The loggers transformers reports to (``report_to``), by name."""
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    return sorted(INTEGRATION_TO_CALLBACK)


def available_reporting_integrations() -> list[str]:
    """The loggers transformers finds usable here, as it checks each (not its name's module)."""
    from transformers.integrations.integration_utils import (
        get_available_reporting_integrations,
    )

    return list(get_available_reporting_integrations())


def check_sft_values(sft: dict[str, Any]) -> None:
    """Values TRL would take and then fail on late (or flood the machine with): a non-boolean
    for a yes/no field, an integer past :data:`MAX_SFT_INTEGER`, more data-loader processes than
    four per CPU, or a ``report_to`` logger that is not installed. Each a one-line error."""
    for name, value in sft.items():
        if name in sft_bool_fields() and not isinstance(value, bool | None):
            raise ValueError(f"{name}: {value!r} is not true or false")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SFT_INTEGER:
            raise ValueError(f"{name}: {value} is larger than {MAX_SFT_INTEGER}")
    workers = sft.get("dataloader_num_workers")
    most = 4 * (os.cpu_count() or 1)
    if isinstance(workers, int) and workers > most:
        raise ValueError(
            f"dataloader_num_workers: {workers} processes on {os.cpu_count()} CPUs; at most {most}"
        )
    targets = sft.get("report_to")
    for target in [targets] if isinstance(targets, str) else targets or []:
        if target in ("none", "all", "tensorboard"):
            continue
        known = reporting_integrations()
        if target not in known:  # "pip install bogus" was the advice
            raise ValueError(
                f"report_to: {target!r} is not a logger transformers knows; allowed: "
                f"{', '.join(['none', 'all', *known])}"
            )
        if target not in available_reporting_integrations():  # as transformers tells
            raise ValueError(  # (kubeflow is an environment variable, flyte is flytekit)
                f"report_to: {target!r} is not available here (its package is not installed, "
                "or what transformers needs for it is not set)"
            )
    check_scheduler_kwargs(sft)
    check_integrations(sft)


SCHEDULER_TRIAL_STEPS = 10
"""Steps of the trial schedule that :func:`check_scheduler_kwargs` walks through."""


def check_scheduler_kwargs(sft: dict[str, Any]) -> None:
    """``lr_scheduler_kwargs`` the chosen schedule cannot take, found by building it.

    transformers passes them to the schedule's function as keyword arguments when training
    starts, after the model loaded: an unknown key or a value such as ``num_cycles: abc`` was an
    internal error then, ``constant`` dropped every one without a word, and a ``NaN`` cycle
    count trained at a learning rate of 0 (the schedule clamps it). The proof: each key is one
    the schedule's function takes, a number where its default is one, finite; and a schedule
    on a one-parameter optimizer, walked for a few steps, keeps a finite learning rate."""
    kwargs = sft.get("lr_scheduler_kwargs")
    kwargs = {} if kwargs is None else kwargs  # cosine_with_min_lr needs one of its two
    if not isinstance(kwargs, dict) or (not kwargs and "lr_scheduler_type" not in sft):
        return
    import torch
    from transformers import SchedulerType, TrainingArguments, get_scheduler

    default = {f.name: f.default for f in dataclasses.fields(TrainingArguments)}
    chosen = sft.get("lr_scheduler_type") or default["lr_scheduler_type"]
    schedule = str(getattr(chosen, "value", chosen))  # the default is a SchedulerType
    if schedule not in {member.value for member in SchedulerType}:
        return  # the type itself is refused by its own check, with the names allowed
    where = f"lr_scheduler_kwargs: lr_scheduler_type {schedule!r}"
    taken = scheduler_arguments(schedule)
    for name, value in kwargs.items():
        if taken is None:  # a function of **kwargs: building it below is the check
            break
        if name not in taken:
            takes = f"takes only {', '.join(sorted(taken))}" if taken else "takes none"
            raise ValueError(f"{where} has no argument {clipped(name)}; it {takes}")
        numeric = isinstance(taken[name], int | float) and not isinstance(taken[name], bool)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if (numeric and not number) or (number and not math.isfinite(value)):
            raise ValueError(f"{where}: {name} must be a finite number, got {clipped(value)}")
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    try:
        scheduler = get_scheduler(
            schedule,
            optimizer,
            num_warmup_steps=1,
            num_training_steps=SCHEDULER_TRIAL_STEPS,
            scheduler_specific_kwargs=dict(kwargs),
        )
        for _ in range(SCHEDULER_TRIAL_STEPS):
            optimizer.step()
            if schedule == "reduce_lr_on_plateau":
                scheduler.step(1.0)
            else:
                scheduler.step()
            rate = optimizer.param_groups[0]["lr"]
            if not isinstance(rate, int | float) or not math.isfinite(rate):
                raise ValueError(f"the learning rate became {rate!r}")
    except (TypeError, ValueError, ArithmeticError, KeyError) as error:
        why = first_line(error)
        if "lr_scheduler_kwargs" not in sft:  # the type alone: name the field the user gave
            needs = f"lr_scheduler_type: {schedule!r} needs lr_scheduler_kwargs ({why})"
            raise ValueError(needs) from None
        raise ValueError(f"{where} cannot take {clipped(kwargs, 80)} ({why})") from None


SCHEDULE_SET_BY_THE_TRAINER = frozenset(
    {"self", "optimizer", "num_warmup_steps", "num_training_steps", "last_epoch"}
)
"""Arguments of a schedule's function that transformers fills in itself."""


def scheduler_arguments(schedule: str) -> dict[str, Any] | None:
    """The arguments ``lr_scheduler_kwargs`` may give the schedule, each with its default, or
    None where its function takes any (``**kwargs``): ``constant`` and ``constant_with_warmup``
    are built without any (transformers drops them); ``reduce_lr_on_plateau`` passes them on
    to torch's ``ReduceLROnPlateau``."""
    import inspect

    import torch
    from transformers import SchedulerType
    from transformers.optimization import TYPE_TO_SCHEDULER_FUNCTION

    kind = SchedulerType(schedule)
    if kind in (SchedulerType.CONSTANT, SchedulerType.CONSTANT_WITH_WARMUP):
        return {}
    target = TYPE_TO_SCHEDULER_FUNCTION[kind]
    if kind == SchedulerType.REDUCE_ON_PLATEAU:
        target = torch.optim.lr_scheduler.ReduceLROnPlateau.__init__
    parameters = inspect.signature(target).parameters.values()
    if any(parameter.kind == parameter.VAR_KEYWORD for parameter in parameters):
        return None
    return {
        parameter.name: parameter.default
        for parameter in parameters
        if parameter.name not in SCHEDULE_SET_BY_THE_TRAINER
        and parameter.kind != parameter.VAR_POSITIONAL
    }


def check_integrations(sft: dict[str, Any]) -> None:
    """Settings that reach for something outside mslt-it (DeepSpeed, the Hub), checked before
    the model loads: the library's own failure comes after minutes, as an exception."""
    deepspeed = sft.get("deepspeed")
    if deepspeed:
        if importlib.util.find_spec("deepspeed") is None:
            raise ValueError("deepspeed: the deepspeed package is not installed here")
        if isinstance(deepspeed, str) and not Path(deepspeed).expanduser().is_file():
            raise ValueError(f"deepspeed: no such file {deepspeed!r} (a DeepSpeed JSON config)")
    if sft.get("push_to_hub") and os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        raise ValueError("push_to_hub: the Hub is offline here (HF_HUB_OFFLINE is set)")


@cache
def lora_field_names() -> frozenset[str]:
    """The init fields of PEFT's LoraConfig."""
    from peft import LoraConfig

    return frozenset(f.name for f in dataclasses.fields(LoraConfig) if f.init)


class KeyNotAName(ValueError):
    """A key YAML read as a value (``true:``, ``5:``): said of its section, not as a field."""


def set_by_mslt_it(name: str, how: str) -> str:
    """The message for a field mslt-it sets itself, ``how`` being where (:data:`OWNED_SFT_FIELDS`:
    an option, or a reason in brackets)."""
    hint = how[1:-1] if how.startswith("(") else f"use {how}"
    return f"{name}: set by mslt-it ({hint})"


def check_fields(
    given: dict[str, Any], known: frozenset[str], owned: dict[str, str], kind: str
) -> None:
    """Reject a field the dataclass lacks (listing close matches) or one mslt-it sets itself.

    Raising ValueError lets pydantic add the location (``train.sft.<field>``) to the message.
    """
    for name in given:
        if not isinstance(name, str):  # `5:` or `true:` in YAML is a number or a yes/no
            raise KeyNotAName(key_not_a_name(name, f" of a field of {kind}"))
        if name in owned:
            raise ValueError(set_by_mslt_it(name, owned[name]))
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"{name}: not a field of {kind}{hint}")


def check_section_of_fields(data: dict[Any, Any], prefix: str) -> None:
    """A field of SFTConfig or LoraConfig written straight under ``train`` (``max_steps: 2``)
    is named with where it goes (``train.sft.max_steps``): it got "unknown field (a typo?)"."""
    own = set(TrainConfig.model_fields)
    for name in data:
        if not isinstance(name, str) or name in own:
            continue
        section = f"{prefix}." if prefix else ""
        for key, known, owned, kind in (
            ("sft", sft_field_names, OWNED_SFT_FIELDS, "SFTConfig"),
            ("lora", lora_field_names, OWNED_LORA_FIELDS, "LoraConfig"),
        ):
            if name in owned:  # not under train.sft either: said where it is set
                raise MsltError(section + set_by_mslt_it(name, owned[name]))
            if name in known():
                raise MsltError(
                    f"{section}{name}: a field of {kind}; write it under {section}{key}.{name}"
                )


def validate_train_section(data: Any, prefix: str = "train") -> TrainConfig:
    """Validate a ``train`` section; an unknown pass-through field is named with its full path.

    pydantic would report ``train.sft`` and the whole mapping; checking the pass-through keys
    first gives ``train.sft.learnig_rate: not an SFTConfig field; did you mean learning_rate?``.
    """

    if isinstance(data, dict):
        check_section_of_fields(data, prefix)
        for key in ("sft", "lora"):
            if isinstance(data.get(key), dict):
                check_values(data[key], key, prefix, rules_only=True)
        checks = (
            ("sft", sft_field_names, OWNED_SFT_FIELDS, "SFTConfig"),
            ("lora", lora_field_names, OWNED_LORA_FIELDS, "LoraConfig"),
        )
        for key, known, owned, kind in checks:
            section = data.get(key)
            if isinstance(section, dict):
                where = f"{prefix}.{key}" if prefix else key
                try:
                    check_fields(section, known(), owned, kind)
                except ValueError as error:
                    joint = ": " if isinstance(error, KeyNotAName) else "."
                    raise MsltError(f"{where}{joint}{error}") from None
                check_values(section, key, prefix)
    config = validate_section(TrainConfig, data, prefix)
    check_truncation(config, prefix)
    check_precision(config, prefix)
    return config


def check_precision(config: TrainConfig, prefix: str = "train") -> None:
    """``bf16`` and ``fp16`` both true, refused at load as TRL refuses it: in a recipe it was
    found once the first dataset was built, without the recipe named."""
    if config.sft.get("bf16") is True and config.sft.get("fp16") is True:
        where = f"{prefix}.sft" if prefix else "sft"
        raise MsltError(
            f"{where}: bf16 and fp16 are both true; mixed precision is one of them (set the "
            "other false, or leave it unset)"
        )


def check_truncation(config: TrainConfig, prefix: str = "train") -> None:
    """TRL settings that would undo ``on_overlength: truncate`` (keep the first max_length
    tokens of an example), refused in one line before any work.

    ``packing_strategy: bfd_split`` splits an over-long example into pieces instead of cutting
    it, which the length check then found as a bug in mslt-it; ``truncation_mode: keep_end``
    keeps the last tokens without packing and is ignored with it (TRL deprecates it)."""
    if config.on_overlength != "truncate":
        return  # nothing over max_length is left for either to act on
    where = f"{prefix}.sft" if prefix else "sft"
    if config.packing and config.sft.get("packing_strategy") == "bfd_split":
        raise MsltError(
            f"{where}.packing_strategy: 'bfd_split' splits examples longer than max_length into "
            "pieces, which on_overlength truncate (--on-overlength) cuts instead; use "
            "packing_strategy bfd (the default), or on_overlength drop or error"
        )
    if config.sft.get("truncation_mode") == "keep_end":
        raise MsltError(
            f"{where}.truncation_mode: 'keep_end' with on_overlength truncate (--on-overlength), "
            "which keeps the first max_length tokens (packing ignores keep_end, and TRL "
            "deprecates it); leave truncation_mode unset, or use on_overlength drop"
        )


def lora_settings(config: TrainConfig) -> dict[str, Any]:
    """mslt-it's LoRA defaults overlaid with the user's fields."""
    return {**DEFAULT_LORA, **config.lora}


def sft_settings(config: TrainConfig) -> dict[str, Any]:
    """mslt-it's SFT defaults overlaid with the user's fields."""
    return {**DEFAULT_SFT, **config.sft}


def parse_assignments(items: list[str] | None, option: str) -> dict[str, Any]:
    """``["learning_rate=1e-4", "bf16=false"]`` -> ``{"learning_rate": 1e-4, "bf16": False}``.

    Values are read as YAML scalars or flow collections, as in a recipe file (and by the same
    reader: ``1e-4`` is a number, a key given twice is an error).
    """
    parsed: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MsltError(f"{option}: expected KEY=VALUE, got {item!r}")
        name = key.strip()
        parsed[name] = parse_yaml(value, f"{option} {name}") if value.strip() else None
    return parsed


def config_hash(determining: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of everything that determines a run. A whole number is
    one number however it was typed: ``--lora-alpha 16`` (a float, 16.0) named another run
    than the default ``lora_alpha: 16``."""
    return legacy_config_hash(_whole_numbers(determining))


def legacy_config_hash(determining: dict[str, Any]) -> str:
    """:func:`config_hash` as versions before it read whole numbers wrote it (``16.0`` apart
    from ``16``): a run they recorded is still this run (it is not trained again)."""
    text = json.dumps(determining, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _whole_numbers(value: Any) -> Any:
    """``value`` with every float that is a whole number written as an int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_whole_numbers(item) for item in value]
    return value
