"""The values TRL and PEFT fields may take, checked before any work starts.

TRL's ``SFTConfig`` and PEFT's ``LoraConfig`` accept nonsense quietly or fail late: ``max_steps: 0``
records one step, ``max_steps: -5`` trains three epochs, ``num_train_epochs: 0`` saves an untrained
adapter, a NaN learning rate or ``r: "big"`` fails with a traceback after the model has loaded.
The rules here state what is allowed for the fields users set; every other pass-through field
is checked against its dataclass annotation (a number where a number is expected, one of an
enum's values, a list of integers).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from mslt_it.errors import MsltError, clipped


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


@dataclass(frozen=True)
class Rule:
    """What a field allows, in words (for the message) and as a test."""

    allowed: str
    test: Callable[[Any], bool]


POSITIVE_NUMBER = Rule("a finite number > 0", lambda v: is_number(v) and v > 0)
NON_NEGATIVE_NUMBER = Rule("a finite number >= 0", lambda v: is_number(v) and v >= 0)
POSITIVE_INT = Rule("an integer >= 1", lambda v: is_int(v) and v >= 1)
NON_NEGATIVE_INT = Rule("an integer >= 0", lambda v: is_int(v) and v >= 0)
FRACTION = Rule("a number in [0, 1)", lambda v: is_number(v) and 0 <= v < 1)
STEPS = Rule("a number > 0 (steps, or a fraction of all steps below 1)", POSITIVE_NUMBER.test)

MAPPING = Rule(
    "a mapping of keyword arguments, or null", lambda v: v is None or isinstance(v, dict)
)
KEYWORD_MAPPINGS = (
    "lr_scheduler_kwargs", "gradient_checkpointing_kwargs", "dataset_kwargs", "model_init_kwargs",
)  # fmt: skip
"""Fields passed on as ``**kwargs``: TRL also takes them as text (JSON), but then passes
``abc`` on to fail mid-training; a recipe writes a mapping."""

OPTIM_ARGS = re.compile(r"^\s*\w+\s*=\s*[^,=\s]+(\s*,\s*\w+\s*=\s*[^,=\s]+)*\s*$")

SFT_RULES: dict[str, Rule] = {
    "learning_rate": POSITIVE_NUMBER,
    "max_steps": Rule(
        "an integer >= 1, or -1 to train for num_train_epochs",
        lambda v: is_int(v) and (v >= 1 or v == -1),
    ),
    "num_train_epochs": POSITIVE_NUMBER,
    "per_device_train_batch_size": POSITIVE_INT,
    "per_device_eval_batch_size": POSITIVE_INT,
    "gradient_accumulation_steps": POSITIVE_INT,
    "warmup_ratio": FRACTION,
    "warmup_steps": NON_NEGATIVE_NUMBER,
    "weight_decay": NON_NEGATIVE_NUMBER,
    "max_grad_norm": NON_NEGATIVE_NUMBER,
    "adam_beta1": FRACTION,
    "adam_beta2": FRACTION,
    "adam_epsilon": POSITIVE_NUMBER,
    "seed": Rule("an integer in [0, 2**32)", lambda v: is_int(v) and 0 <= v < 2**32),
    "data_seed": Rule(
        "an integer in [0, 2**32)", lambda v: v is None or (is_int(v) and 0 <= v < 2**32)
    ),
    "save_steps": STEPS,
    "logging_steps": STEPS,
    "eval_steps": Rule("a number > 0, or null", lambda v: v is None or STEPS.test(v)),
    "save_total_limit": Rule(
        "an integer >= 1, or null", lambda v: v is None or POSITIVE_INT.test(v)
    ),
    "dataloader_num_workers": NON_NEGATIVE_INT,
    "packing_strategy": Rule(
        "bfd or bfd_split (wrapped cuts examples mid-sequence, so neither their boundaries nor "
        "their languages are known to the checks and curves)",
        lambda v: v in ("bfd", "bfd_split"),
    ),
    "dataloader_prefetch_factor": Rule(
        "an integer >= 1, or null", lambda v: v is None or POSITIVE_INT.test(v)
    ),
    "neftune_noise_alpha": Rule(
        "a finite number > 0, or null", lambda v: v is None or POSITIVE_NUMBER.test(v)
    ),
    "optim_args": Rule(
        "key=value pairs separated by commas (betas=0.9,eps=1e-8), or null",
        lambda v: v is None or (isinstance(v, str) and OPTIM_ARGS.match(v) is not None),
    ),
    **{name: MAPPING for name in KEYWORD_MAPPINGS},
}

MAX_LORA_RANK = 16_384
"""A LoRA rank beyond the widest layer of any model (a typo: r=10**11 asked torch for 51 TB)."""

INIT_LORA_WEIGHTS = ("gaussian", "eva", "olora", "pissa", "corda", "loftq", "orthogonal", "mica")
"""PEFT's named initialisations besides true and false (``pissa_niter_<n>`` too)."""

LORA_RULES: dict[str, Rule] = {
    "r": Rule(
        f"an integer in 1..{MAX_LORA_RANK:,}", lambda v: is_int(v) and 1 <= v <= MAX_LORA_RANK
    ),
    "bias": Rule("none, all or lora_only", lambda v: v in ("none", "all", "lora_only")),
    "lora_alpha": POSITIVE_NUMBER,
    # per-module values pass PEFT unchecked: a negative alpha trained a negated update
    "alpha_pattern": Rule(
        "a mapping of module names to finite numbers > 0",
        lambda v: (
            isinstance(v, dict)
            and all(isinstance(k, str) and POSITIVE_NUMBER.test(x) for k, x in v.items())
        ),
    ),
    "rank_pattern": Rule(
        f"a mapping of module names to integers in 1..{MAX_LORA_RANK:,}",
        lambda v: (
            isinstance(v, dict)
            and all(
                isinstance(k, str) and is_int(x) and 1 <= x <= MAX_LORA_RANK for k, x in v.items()
            )
        ),
    ),
    "lora_dropout": FRACTION,
    "init_lora_weights": Rule(
        "true, false, or one of gaussian, eva, olora, pissa, pissa_niter_<n>, corda, loftq, "
        "orthogonal, mica",
        lambda v: (
            isinstance(v, bool)
            or v in INIT_LORA_WEIGHTS
            or (isinstance(v, str) and re.fullmatch(r"pissa_niter_[1-9][0-9]*", v) is not None)
        ),
    ),
    "target_modules": Rule(
        "'all-linear', module names (a list of strings), or one regular expression",
        lambda v: (
            (isinstance(v, str) and bool(v.strip()))
            or (isinstance(v, list) and bool(v) and all(isinstance(m, str) and m for m in v))
        ),
    ),
}

OPTION_NAMES = {
    "sft.learning_rate": "--learning-rate",
    "sft.max_steps": "--max-steps",
    "sft.num_train_epochs": "--epochs",
    "sft.per_device_train_batch_size": "--batch-size",
    "sft.gradient_accumulation_steps": "--grad-accum",
    "sft.save_steps": "--save-steps",
    "sft.seed": "--seed",
    "lora.r": "--lora-r",
    "lora.lora_alpha": "--lora-alpha",
    "lora.lora_dropout": "--lora-dropout",
    "lora.target_modules": "--lora-target",
    "max_length": "--max-length",
    "on_overlength": "--on-overlength",
}
"""The ``mslt-it train`` option behind a field, named in the message beside the field."""


def option_named(message: str, prefix: str = "train") -> str:
    """``message`` with the option behind the field it starts with named beside the field, as
    :func:`check_values` names it: ``train.max_length (--max-length): must be > 0, got 0``.

    For the messages of checks that know only the field (pydantic's, the size of an integer),
    where ``mslt-it train`` was given options: a recipe's user is told the recipe's fields."""
    for key, option in OPTION_NAMES.items():
        field = f"{prefix}.{key}" if prefix else key
        if message.startswith(f"{field}:"):
            return f"{field} ({option}){message[len(field) :]}"
    return message


@cache
def field_types(kind: str) -> dict[str, Any]:
    """Field -> its annotation in SFTConfig or LoraConfig (``float | None``, ``OptimizerNames |
    str``, ``list[int] | int | None``…): what a value must fit, also where the default is None
    (checked by its default's type alone, ``neftune_noise_alpha: abc`` passed, to fail
    mid-training)."""
    if kind == "sft":
        from trl import SFTConfig as config_class
    else:
        from peft import LoraConfig as config_class
    hints = typing.get_type_hints(config_class)
    return {field.name: hints.get(field.name, Any) for field in dataclasses.fields(config_class)}


@cache
def field_choices(kind: str) -> dict[str, tuple[Any, ...]]:
    """Field -> the values its dataclass lists as allowed (``metadata["choices"]``): TRL checks
    some only where they act (``packing_strategy: weird`` passed unless ``packing`` was on), so
    a typo would wait for the day the field matters."""
    if kind == "sft":
        from trl import SFTConfig as config_class
    else:
        from peft import LoraConfig as config_class
    return {
        field.name: tuple(field.metadata["choices"])
        for field in dataclasses.fields(config_class)
        if field.metadata.get("choices")
    }


def fits(value: Any, annotation: Any) -> bool:
    """Whether ``value`` (read from YAML: text, numbers, true/false, lists, mappings) fits a
    field's annotation. An enum member's value counts for the enum, and where a union offers an
    enum or plain text, only the enum's values do (TRL turns the text into the enum). A type
    YAML cannot write (a dtype, a callable) is left to the library."""
    if value is None or annotation is Any:
        return True  # "unset": the library's own default
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums:
            return any(fits(value, e) for e in enums)
        return any(fits(value, a) for a in args if a is not type(None))
    if origin is typing.Literal:
        return value in args
    if origin in (list, tuple, set):
        return isinstance(value, list) and all(fits(item, args[0]) for item in value if args)
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    if annotation is list:
        return isinstance(value, list)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return value in {member.value for member in annotation} or isinstance(value, annotation)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return is_int(value)
    if annotation is float:
        return is_number(value)
    if annotation is str:
        return isinstance(value, str)
    return True


TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}


def describe(annotation: Any) -> str:
    """An annotation in words, for the message (the enum's values listed)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
        shown = enums or [a for a in args if a is not type(None)]
        # sorted: typing caches a union with its members in the order first written anywhere
        # in the process, so ``int | list[int]`` may come back as ``list[int] | int``
        return " or ".join(sorted({describe(a) for a in shown}))
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (list, tuple, set) or annotation is list:
        item = describe(args[0]) if args else ""
        if not item.startswith(("a ", "an ")):
            return "a list"
        return f"a list of {item.split(' ', 1)[1]}s"
    if origin is dict or annotation is dict:
        return "a mapping"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(str(member.value) for member in annotation)
    return TYPE_WORDS.get(annotation, getattr(annotation, "__name__", str(annotation)))


def check_values(
    settings: dict[str, Any], kind: str, prefix: str, rules_only: bool = False
) -> None:
    """Raise a one-line error for the first field of ``settings`` whose value is not allowed.

    ``kind`` is ``sft`` or ``lora``; ``prefix`` is where the section sits (``train``).
    ``rules_only`` checks only the fields with a rule, which needs no import of TRL or PEFT (~7 s),
    so the common mistakes are reported at once.
    """
    rules = SFT_RULES if kind == "sft" else LORA_RULES
    for name, value in settings.items():
        rule = rules.get(name)
        if rule is not None:
            ok, allowed = rule.test(value), rule.allowed
        elif rules_only:
            continue
        else:
            expected = field_types(kind).get(name, Any)
            choices = field_choices(kind).get(name)
            if choices and value is not None:
                ok, allowed = value in choices, "one of " + ", ".join(map(str, choices))
            else:
                ok, allowed = fits(value, expected), describe(expected)
        if not ok:
            where = f"{prefix}.{kind}.{name}" if prefix else f"{kind}.{name}"
            option = OPTION_NAMES.get(f"{kind}.{name}")
            named = f"{where} ({option})" if option else where
            raise MsltError(f"{named}: must be {allowed}, got {clipped(value, 60)}")
    context = settings.get("dataloader_multiprocessing_context")
    if kind == "sft" and context is not None and not settings.get("dataloader_num_workers"):
        where = f"{prefix}.sft" if prefix else "sft"  # torch refuses it once the model loaded
        raise MsltError(
            f"{where}.dataloader_multiprocessing_context: only with loader processes; set "
            "dataloader_num_workers >= 1 too, or leave it unset"
        )
