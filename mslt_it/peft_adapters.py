"""Checking and loading LoRA adapters (PEFT's folder format), one way for every command.

PEFT loads what it can and warns about the rest: an adapter whose weights do not match its
config (tensors renamed or missing, another ``peft_type``) loaded as no adapter at all, and
every number measured with it was the base model's under the adapter's name. So the config is
checked before PEFT reads it (:func:`read_adapter_config`: the fields PEFT would otherwise
fail on with a ``KeyError`` or a comparison of a string with an int), and the weights after
(:func:`check_weights_loaded`: every weight the config names came from the file).
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mslt_it.errors import MsltError, clipped, first_line
from mslt_it.files import MAX_JSON_BYTES, check_regular_files, read_user_text
from mslt_it.io import fingerprint_matches
from mslt_it.modeling import MAX_CONFIG_BYTES, loading_adapter
from mslt_it.outputs import changed_files, listed_files, owner_kind
from mslt_it.paths import check_folder_text

ADAPTER_CONFIG = "adapter_config.json"
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
"""PEFT's names for an adapter's weights, in the order it looks for them."""

LORA_BIASES = ("none", "all", "lora_only")
"""PEFT's values of a LoRA config's ``bias``: which biases were trained."""

TRAINED_FILES = (*WEIGHT_FILES, ADAPTER_CONFIG)
"""The files that are the adapter: edited, they are no longer what its training made."""


def check_adapter_folder(folder: str | Path, field: str = "adapter") -> None:
    """``folder`` holds an adapter (its ``adapter_config.json``, or a training stopped before
    it wrote one) and only regular files. The first, first: a folder such as ``/usr`` or ``''``
    was walked whole, and a device deep inside it named as the problem. A folder written
    ``~/a`` is not expanded (it was "no such folder", of ``./~/a``)."""
    check_folder_text(str(folder), field)
    check_has_config(Path(folder), field)
    check_regular_files(folder, field)


def check_has_config(folder: Path, field: str) -> Path:
    """``folder``'s ``adapter_config.json`` (whatever it is: :func:`check_regular_files` or
    the reader names a link or a FIFO), after a training stopped before it wrote one is named
    as such (:func:`check_finished_run`)."""
    check_finished_run(folder, field)
    if not folder.exists() and not folder.is_symlink():  # as merge says it
        raise MsltError(f"{field}: no such folder {str(folder)!r}")
    path = folder / ADAPTER_CONFIG
    if not path.exists() and not path.is_symlink():
        raise MsltError(
            f"{field}: {str(folder)!r} is not a PEFT adapter folder (no {ADAPTER_CONFIG})"
        )
    return path


def read_adapter_config(folder: str | Path, field: str = "adapter") -> dict[str, Any]:
    """``folder``'s ``adapter_config.json``, checked: a JSON object describing a LoRA adapter
    (``peft_type`` ``LORA``, ranks whole numbers >= 1, ``lora_alpha`` a number, target modules
    names), with a weights file beside it. A run of ``mslt-it train`` stopped before it
    finished is named as one (:func:`check_finished_run`)."""
    folder = Path(folder)
    path = check_has_config(folder, field)
    text = read_user_text(path, field, MAX_CONFIG_BYTES)  # a regular file, bounded
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as error:  # not JSON, a number too long, too deep
        raise MsltError(f"{field}: cannot read {path}: {first_line(error)}") from None
    if not isinstance(config, dict):
        raise MsltError(f"{field}: {path} is not a JSON object")
    peft_type = config.get("peft_type")
    if peft_type != "LORA":
        raise MsltError(
            f"{field}: {path}: peft_type is {clipped(peft_type, 40)}; mslt-it loads LoRA "
            'adapters ("LORA")'
        )
    lora_ranks(config, path, field)
    alpha = config.get("lora_alpha", 8)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float):
        raise MsltError(f"{field}: {path}: lora_alpha is {clipped(alpha, 40)}; a number")
    dropout = config.get("lora_dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise MsltError(
            f"{field}: {path}: lora_dropout is {clipped(dropout, 40)}; a number in [0, 1)"
        )
    bias = config.get("bias", "none")
    if bias not in LORA_BIASES:  # PEFT failed on null ("'NoneType' … no attribute 'endswith'")
        raise MsltError(
            f"{field}: {path}: bias is {clipped(bias, 40)}; one of {', '.join(LORA_BIASES)}"
        )
    saved = config.get("modules_to_save")
    if saved is not None and (
        not isinstance(saved, list) or not all(isinstance(n, str) for n in saved)
    ):
        raise MsltError(
            f"{field}: {path}: modules_to_save is {clipped(saved, 40)}; a list of module names"
        )
    targets = config.get("target_modules")
    names = [targets] if isinstance(targets, str) else targets
    if targets is not None and (
        not isinstance(names, list) or not all(isinstance(n, str) for n in names)
    ):
        raise MsltError(
            f"{field}: {path}: target_modules is {clipped(targets, 40)}; a module name or a "
            f"list of them"
        )
    if not any((folder / name).exists() for name in WEIGHT_FILES):
        raise MsltError(
            f"{field}: {str(folder)!r} has {ADAPTER_CONFIG} but no weights "
            f"({' or '.join(WEIGHT_FILES)})"
        )
    return config


def lora_ranks(config: dict[str, Any], path: Path, field: str) -> list[int]:
    """``r`` and ``rank_pattern``'s ranks, each a whole number >= 1."""
    pattern = config.get("rank_pattern") or {}
    if not isinstance(pattern, dict):
        raise MsltError(f"{field}: {path}: rank_pattern is {clipped(pattern, 40)}; a mapping")
    ranks = [("r", config.get("r", 8)), *((f"rank_pattern.{k}", r) for k, r in pattern.items())]
    for name, rank in ranks:
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise MsltError(
                f"{field}: {path}: {name} is {clipped(rank, 40)}; a LoRA rank is a whole number "
                f">= 1"
            )
    return [rank for _, rank in ranks]


def weights_sha256(path: Path, field: str = "adapter") -> str:
    """Hash of the adapter's config and weight files: a retrained adapter is a new identity
    (results and analyses name the adapter they measured by it, not by its path)."""
    digest = hashlib.sha256()
    for file in sorted(path.iterdir()):
        if file.name == ADAPTER_CONFIG or file.suffix in (".safetensors", ".bin"):
            if not file.is_file():
                raise MsltError(
                    f"{field}: {str(file)!r} is a folder, where an adapter holds its weights "
                    "file; give a folder `mslt-it train` or PEFT wrote"
                )
            digest.update(file.name.encode())
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def adapter_rank(folder: str | Path, field: str = "adapter") -> int:
    """The adapter's largest LoRA rank (vLLM sizes its LoRA slots by it)."""
    config = read_adapter_config(folder, field)
    return max(lora_ranks(config, Path(folder) / ADAPTER_CONFIG, field))


def load_adapters(model: Any, adapters: Mapping[str, Path], field: str = "adapter") -> Any:
    """Wrap ``model`` in one ``PeftModel`` holding every adapter under its name (``model``
    itself when there are none); each checked before and after PEFT reads it."""
    from peft import PeftModel

    wrapped = model
    for name, folder in adapters.items():
        read_adapter_config(folder, field)
        with loading_adapter(folder, field), warnings.catch_warnings():
            # PEFT warns of weights it could not find (check_weights_loaded makes that an error)
            # and of settings it adjusts: many lines before the one that says what is wrong
            warnings.filterwarnings("ignore", message=".*missing adapter keys.*")
            warnings.filterwarnings("ignore", module=r"peft(\.|$)")
            if wrapped is model:
                wrapped = PeftModel.from_pretrained(model, str(folder), adapter_name=name)
            else:
                wrapped.load_adapter(str(folder), adapter_name=name)
            check_weights_loaded(wrapped, name, Path(folder), field)
    return wrapped


def check_weights_loaded(peft_model: Any, name: str, folder: Path, field: str) -> None:
    """Every weight adapter ``name``'s config gives the model was in its weights file, stored
    as floating-point numbers, and is finite as loaded: PEFT leaves a missing one at its
    initial value (LoRA's B at zero: no change to the base) and casts integers without a word.

    The file is not read a second time: its names and dtypes come from the safetensors header
    (:func:`stored_dtypes`), the values from the parameters PEFT loaded."""
    from peft import get_peft_model_state_dict

    # save_embedding_layers="auto" would ask the Hub for the base's config to compare vocab
    # sizes; the adapter's own weights are what is checked here
    state = get_peft_model_state_dict(peft_model, adapter_name=name, save_embedding_layers=False)
    stored = stored_dtypes(folder, field)
    missing = sorted(set(state) - set(stored))
    if missing:
        raise MsltError(
            f"{field}: the weights in {str(folder)!r} lack {len(missing)} of the {len(state)} "
            f"its {ADAPTER_CONFIG} names (first: {missing[0]!r}); the file is damaged or belongs "
            "to another adapter"
        )
    # LoRA weights the config gives no module: its target_modules narrowed since, or a file of
    # another adapter. PEFT drops them without a word, and the adapter evaluated is another.
    unused = sorted(key for key in set(stored) - set(state) if ".lora_" in key)
    if unused:
        raise MsltError(
            f"{field}: the weights in {str(folder)!r} hold {len(unused)} LoRA weight(s) its "
            f"{ADAPTER_CONFIG} gives no module (first: {unused[0]!r}); the config was edited "
            "since training, or the file belongs to another adapter"
        )
    for key in sorted(state):
        check_floating(key, stored[key], folder, field)
        check_finite(key, state[key], folder, field)


def check_weight_values(folder: Path, field: str = "adapter") -> None:
    """Every weight in the adapter's file is a finite float: a NaN makes every score NaN (and
    an accuracy out of ties). vLLM loads adapters itself, so its adapters are checked with
    this, before its engine starts."""
    tensors = weight_tensors(Path(folder), field)
    for key in sorted(tensors):
        check_floating(key, tensors[key].dtype, folder, field)
        check_finite(key, tensors[key], folder, field)


def check_weights_targeted(
    folder: Path, field: str = "adapter", base_modules: list[str] | None = None
) -> None:
    """The LoRA weights in the adapter's file are those its config's ``target_modules`` names:
    no weights for a module it does not target, and some for every module name it lists that
    names a module of the base (``base_modules``, :func:`base_module_names`; PEFT accepts a
    list naming modules of several architectures, ``[q_proj, v_proj, query_key_value]``, and
    without the base's names nothing is said of missing weights).
    vLLM loads adapters itself and applies whatever weights the file holds, with no word about
    the config: a file holding only ``q_proj``'s weights for a config of seven modules, or
    seven modules' for a config of one, was evaluated as another adapter than PEFT loads (the
    transformers backend refuses both, :func:`check_weights_loaded`). Checked before vLLM's
    engine starts, from the safetensors header alone (:func:`stored_dtypes`)."""
    folder = Path(folder)
    config = read_adapter_config(folder, field)
    targets = config.get("target_modules")
    if targets is None or config.get("target_parameters"):
        return  # PEFT's defaults for the model type, or parameters: not names to compare
    if isinstance(targets, str) and targets.lower() == "all-linear":
        return  # every linear module of the model, which only the model lists
    modules = sorted({lora_module(key) for key in stored_dtypes(folder, field) if ".lora_" in key})
    untargeted = [m for m in modules if not targets_module(targets, m, folder, field)]
    if untargeted:
        raise MsltError(
            f"{field}: the weights in {str(folder)!r} hold LoRA weights for {len(untargeted)} "
            f"module(s) its {ADAPTER_CONFIG} does not target (first: {untargeted[0]!r}; "
            f"target_modules: {clipped(targets, 60)}); the config was edited since training, or "
            "the file belongs to another adapter"
        )
    names = [] if isinstance(targets, str) or base_modules is None else targets  # a pattern:
    names = [n for n in names if names_any(n, base_modules or [])]  # which, the model says
    missing = [n for n in names if not names_any(n, modules)]
    if missing:
        raise MsltError(
            f"{field}: the weights in {str(folder)!r} hold no LoRA weights for {missing[0]!r}, "
            f"which its {ADAPTER_CONFIG}'s target_modules names; the file is damaged or belongs "
            "to another adapter"
        )


def names_module(name: str, module: str) -> bool:
    """PEFT's rule for a name of ``target_modules`` (or ``modules_to_save``): a module's full
    name is ``name`` or ends with ``"." + name``."""
    return module == name or module.endswith(f".{name}")


def names_any(name: str, modules: list[str]) -> bool:
    """Whether ``name`` names one of ``modules`` (:func:`names_module`)."""
    return any(names_module(name, module) for module in modules)


def base_module_names(model: str | Path) -> list[str] | None:
    """The names of the modules a local model folder's safetensors files hold weights of, from
    their headers alone (``model.layers.0.self_attn.q_proj``); None for a Hub id, or weights
    in another format, whose modules are not listed here."""
    folder = Path(str(model))
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        return None
    from safetensors import safe_open

    names: set[str] = set()
    try:
        for path in files:
            with safe_open(str(path), "pt") as weights:
                names.update(key.rsplit(".", 1)[0] for key in weights.keys())  # noqa: SIM118
    except Exception:  # damaged weights: the model's loading says so, in its own words
        return None
    return sorted(names)


def lora_module(key: str) -> str:
    """The module a LoRA weight's key belongs to, as PEFT names it when it matches
    ``target_modules``: ``base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`` is
    ``model.layers.0.self_attn.q_proj``."""
    return key.split(".lora_", 1)[0].removeprefix("base_model.model.")


def targets_module(targets: str | list[str], module: str, folder: Path, field: str) -> bool:
    """Whether ``target_modules`` names ``module`` by PEFT's rule: a string is a regular
    expression the module's whole name matches; a list's name is the module's or its last
    dotted parts."""
    if isinstance(targets, list):
        return any(names_module(name, module) for name in targets)
    try:
        return re.fullmatch(targets, module) is not None
    except re.error as error:
        raise MsltError(
            f"{field}: {str(folder / ADAPTER_CONFIG)!r}: target_modules {clipped(targets, 40)} is "
            f"not a regular expression ({error}); a module name pattern or a list of names"
        ) from None


def check_floating(key: str, dtype: Any, folder: Path, field: str) -> None:
    """``dtype`` (a torch dtype, or a safetensors header's ``F32``, ``I64``, …) is a float."""
    floating = dtype.startswith(("F", "BF")) if isinstance(dtype, str) else dtype.is_floating_point
    if not floating:
        raise MsltError(
            f"{field}: the weight {key!r} in {str(folder)!r} is {dtype}; adapter weights are "
            "floating-point numbers"
        )


def check_finite(key: str, tensor: Any, folder: Path, field: str) -> None:
    """``tensor`` holds no NaN or infinity. Its sum is finite only then (a NaN or an infinity
    carries into it), and is five times faster than testing each value; only a sum that
    overflows, or a damaged tensor, is tested value by value."""
    if not bool(tensor.sum().isfinite()) and not bool(tensor.isfinite().all()):
        raise MsltError(
            f"{field}: the weight {key!r} in {str(folder)!r} holds NaN or infinite values; "
            "the adapter is damaged (or its training diverged)"
        )


def stored_dtypes(folder: Path, field: str) -> dict[str, Any]:
    """The dtype of each weight in ``folder``'s weights file, by name: read from the
    safetensors header alone (no tensor data); a ``.bin`` file has no header and is loaded."""
    safetensors_file = folder / WEIGHT_FILES[0]
    if not safetensors_file.exists():
        return {key: tensor.dtype for key, tensor in weight_tensors(folder, field).items()}
    from safetensors import safe_open

    with loading_adapter(folder, field), safe_open(str(safetensors_file), "pt") as weights:
        return {key: weights.get_slice(key).get_dtype() for key in weights.keys()}  # noqa: SIM118


def weight_tensors(folder: Path, field: str) -> dict[str, Any]:
    """The tensors in ``folder``'s weights file, by name (on the CPU)."""
    safetensors_file = folder / WEIGHT_FILES[0]
    with loading_adapter(folder, field):
        if safetensors_file.exists():
            from safetensors.torch import load_file

            return load_file(str(safetensors_file), device="cpu")
        from peft.utils import load_peft_weights

        return load_peft_weights(str(folder), device="cpu")


RUN_FILE = "run.json"
"""The record ``mslt-it train`` writes beside an adapter: its base model, data and templates."""

STARTED_FILE = "run.started.json"
"""What ``mslt-it train`` writes when a run starts and removes once ``run.json`` is in place."""


def check_finished_run(folder: Path, field: str = "adapter") -> None:
    """An adapter folder of ``mslt-it train`` that was stopped before its ``run.json`` moved in
    is named as an unfinished run (not as a folder without ``adapter_config.json``, which it
    may hold or not, depending on when it was stopped)."""
    if owner_kind(folder) != "adapter" or (folder / RUN_FILE).exists():
        return
    if (folder / STARTED_FILE).exists():
        raise MsltError(
            f"{field}: {str(folder)!r} is an unfinished run; finish it with `mslt-it train ... "
            "--resume` (or --overwrite), then use it"
        )


def read_run_record(folder: Path, field: str = "adapter") -> dict[str, Any] | None:
    """An adapter's ``run.json`` (None where there is none: a PEFT adapter from elsewhere),
    read as every command reads it, within the size limit, and checked whole.

    A finished training lists ``run.json`` in its marker, and ``base_model_identity`` in it is
    what holds an adapter to the base it was trained on (a retrained or replaced base is
    refused). With the file removed, or edited so that it no longer records that identity, the
    check would be skipped without a word, so such an adapter is refused; so is a record that
    carries mslt-it's ``config_hash`` without an identity that can be compared, whatever its
    marker says now (edited or removed). Editing ``base_model`` to name a moved base stays the
    user's right: the identity still holds it.
    """
    path = Path(folder) / RUN_FILE
    # a finished training of mslt-it's: its marker lists run.json
    listed_by_marker = owner_kind(Path(folder)) == "adapter" and RUN_FILE in (
        listed_files(Path(folder)) or {}
    )
    if not path.exists() and not path.is_symlink():
        if listed_by_marker:
            raise MsltError(
                f"{field}: {str(folder)!r} is mslt-it's adapter, but its {RUN_FILE} was removed "
                "since training, and with it the record of the base model it was trained on; "
                "restore it or train again"
            )
        return None
    try:
        run = json.loads(read_user_text(path, field, MAX_JSON_BYTES))
    except (ValueError, RecursionError) as error:  # not JSON, a number too long, too deep
        raise MsltError(f"{field}: cannot read {path}: {first_line(error)[:200]}") from None
    if not isinstance(run, dict):
        raise MsltError(f"{field}: {path} must hold a JSON object (mslt-it train's run record)")
    base = run.get("base_model")
    if base is not None and not (isinstance(base, str) and base.strip()):
        raise MsltError(
            f"{field}: {path}: base_model is {clipped(base, 40)}; the base model's Hub id or folder"
        )
    written_by_train = listed_by_marker or "config_hash" in run  # whatever its marker says now
    if written_by_train and not usable_identity(run.get("base_model_identity")):
        raise MsltError(
            f"{field}: {path} no longer records base_model_identity (edited since training), so "
            "the base this adapter was trained on cannot be checked; restore it or train again"
        )
    return run


def edited_since_training(folder: str | Path) -> str | None:
    """The first of :data:`TRAINED_FILES` edited since ``mslt-it train`` wrote ``folder`` (its
    marker's fingerprint), else None: its run.json then describes a training that made other
    weights (``merge`` refuses it; ``analyze`` names it by its folder, not by run.json)."""
    if owner_kind(Path(folder)) != "adapter":
        return None  # a PEFT adapter from elsewhere: no record of a training to contradict
    edited = [
        name
        for name in changed_files(Path(folder))
        if name in TRAINED_FILES and (Path(folder) / name).exists()  # removed is another fault
    ]
    return edited[0] if edited else None


def run_record_edited(folder: str | Path) -> bool:
    """True when ``folder`` is mslt-it's adapter and its run.json is not the one training wrote
    (its marker's fingerprint): a base "changed since training" may then be the record's edit,
    not the base's, and the message says so."""
    listed = listed_files(Path(folder)) or {}
    return (
        RUN_FILE in listed
        and owner_kind(Path(folder)) == "adapter"
        and not fingerprint_matches(Path(folder) / RUN_FILE, listed[RUN_FILE], by_size=True)
    )


def usable_identity(recorded: Any) -> bool:
    """A ``base_model_identity`` that can be compared with a model: a folder's digest or a Hub
    id (``{}`` or ``{"sha256": 5}`` compared with nothing, and let any base through)."""
    return isinstance(recorded, dict) and (
        isinstance(recorded.get("sha256"), str) or isinstance(recorded.get("hub_id"), str)
    )
