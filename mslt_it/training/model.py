"""Loading the base model (optionally 4-bit, QLoRA) and checking LoRA target modules against it.

The model is loaded here rather than by TRL from a name, for two reasons: a QLoRA base must go
through PEFT's ``prepare_model_for_kbit_training`` before the adapter is added, and LoRA target
names must be checked against the real module tree before TRL's PEFT wrapping fails with a
message that does not say what the model does have.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any

from mslt_it.errors import MsltError, allowed, clipped
from mslt_it.modeling import load_failure, load_report_in_errors, model_load_errors
from mslt_it.peft_adapters import names_any

QLORA_EXTRA = "pip install 'mslt-it[qlora]'"


def require_bitsandbytes() -> None:
    """QLoRA needs bitsandbytes, an optional extra; say which one."""
    if importlib.util.find_spec("bitsandbytes") is None:
        raise MsltError(f"--qlora needs bitsandbytes, which is not installed; {QLORA_EXTRA}")


def compute_dtype(bf16: bool, fp16: bool) -> Any:
    """The dtype weights are loaded (or, in 4-bit, computed) in: what mixed precision uses."""
    import torch

    if bf16:
        return torch.bfloat16
    if fp16:
        return torch.float16
    return torch.float32


def quantization_config(dtype: Any) -> Any:
    """NF4 with double quantisation, as in the QLoRA paper.

    The storage dtype equals the compute dtype so that FSDP can shard the 4-bit weights like
    the others (it flattens parameters of one dtype).
    """
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_use_double_quant=True,
        bnb_4bit_quant_storage=dtype,
    )


def load_base_model(
    name_or_path: str,
    *,
    trust_remote_code: bool,
    qlora: bool,
    dtype: Any,
    gradient_checkpointing: bool,
    init_kwargs: dict[str, Any] | None = None,
) -> Any:
    """The base causal LM, in 4-bit and prepared for k-bit training when ``qlora``."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": trust_remote_code}
    if qlora:
        require_bitsandbytes()
        # No device_map: bitsandbytes then places the whole model on this process's current
        # device (set per rank by accelerate), one full copy per process as DDP expects; FSDP
        # and DeepSpeed need it unset too. device_map="auto" would split layers across GPUs.
        kwargs["quantization_config"] = quantization_config(dtype)
    kwargs.update(init_kwargs or {})
    try:
        with load_report_in_errors():
            model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
    except model_load_errors() as error:
        first = load_failure(name_or_path, error)
        raise MsltError(f"model: cannot load {name_or_path!r}: {first}") from None
    if qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    return model


def linear_module_paths(model: Any) -> list[str]:
    """Full names of the model's linear layers (``model.layers.0.self_attn.q_proj``): what LoRA
    can target. Covers ``torch.nn.Linear`` and its bitsandbytes subclasses, and GPT-2-style
    ``Conv1D``."""
    import torch

    kinds: tuple[type, ...] = (torch.nn.Linear,)
    try:
        from transformers.pytorch_utils import Conv1D

        kinds += (Conv1D,)
    except ImportError:  # pragma: no cover - transformers always has it today
        pass
    return [name for name, module in model.named_modules() if name and isinstance(module, kinds)]


def empty_model(name_or_path: str, trust_remote_code: bool) -> Any:
    """The model's module tree on the meta device: no weights read, seconds even for a 70B."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except model_load_errors() as error:
        first = load_failure(name_or_path, error)
        raise MsltError(f"model: cannot load {name_or_path!r}: {first}") from None
    with init_empty_weights():
        return AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)


def check_lora_targets(
    name_or_path: str,
    trust_remote_code: bool,
    targets: Any,
    modules_to_save: Any = None,
    target_parameters: Any = None,
    layers: Any = None,
) -> None:
    """Every target name must be a linear layer of this model, every module to save a module
    of it, every target parameter a parameter of it and every layer to transform one of its
    layers; the error lists those there are (PEFT trains on without a module to save or a
    parameter that matches nothing, and drops a layer it does not have).

    Checked on an empty (meta) model before anything is loaded, so a typo costs seconds.
    """
    listed = isinstance(targets, list)  # PEFT reads a plain string as a regular expression
    pattern = isinstance(targets, str) and targets != "all-linear"
    if not (listed or pattern or modules_to_save or target_parameters or layers is not None):
        return
    model = empty_model(name_or_path, trust_remote_code)
    if layers is not None:
        check_layers_to_transform(layers, model)
    names = [name for name, _ in model.named_modules() if name]
    parameters = [name for name, _ in model.named_parameters()] if target_parameters else []
    unmatched = unmatched_keys(target_parameters or [], parameters)
    if unmatched:  # PEFT trains on, adapting nothing through them
        short = sorted({".".join(name.split(".")[-2:]) for name in parameters})
        raise MsltError(
            f"lora target_parameters: {', '.join(map(str, unmatched))} is not a parameter of "
            f"{type(model).__name__}; its parameters are {allowed(short)}"
        )
    unmatched = unmatched_keys(modules_to_save or [], names)
    if unmatched:
        raise MsltError(
            f"lora modules_to_save: {', '.join(map(str, unmatched))} is not a module of "
            f"{type(model).__name__}; its modules are "
            f"{allowed(sorted({n.rsplit('.', 1)[-1] for n in names}))}"
        )
    paths = linear_module_paths(model)
    linear = sorted({name.rsplit(".", 1)[-1] for name in paths})
    if pattern:
        check_target_pattern(targets, names, paths, linear, type(model).__name__)
    if not listed:
        return
    missing = unmatched_keys(targets, paths)
    if missing:
        architecture = type(model).__name__
        raise MsltError(
            f"lora target: {', '.join(missing)} is not a linear module of {architecture}; "
            f"its linear modules are {allowed(linear)} (or use all-linear)"
        )


def check_layers_to_transform(layers: Any, model: Any) -> None:
    """``layers_to_transform`` (a layer number or a list of them, as its type check requires)
    names layers of ``model``. PEFT adapts the listed layers it finds and drops the others
    without a word (``[0, 99]`` of a two-layer model trained layer 0 alone); ``-1`` is no
    layer of its either, and an empty list adapts none."""
    wanted = layers if isinstance(layers, list) else [layers]
    if not wanted:
        raise MsltError(
            "train.lora.layers_to_transform: an empty list adapts no layer; give the layers' "
            "numbers, or leave it out to adapt every layer"
        )
    count = getattr(model.config, "num_hidden_layers", None)
    outside = [i for i in wanted if isinstance(count, int) and not 0 <= i < count]
    if outside:
        raise MsltError(
            f"train.lora.layers_to_transform: layer {outside[0]} is not a layer of "
            f"{type(model).__name__}, whose layers are 0 to {count - 1}"
        )


def check_target_pattern(
    pattern: str, names: list[str], linear: list[str], short: list[str], model: str
) -> None:
    """A ``target_modules`` regular expression, as PEFT applies it (to each module's whole
    name), must match a linear layer and nothing else: matching none, PEFT stops with "no
    target module found"; matching a norm or the whole model, with a printout of the module
    many lines long, cut to its first by the one-line error. ``linear``: the linear modules'
    whole names; ``short``: their last parts, as the error lists them."""
    matched = [name for name in names if re.fullmatch(pattern, name)]
    adaptable = set(linear)
    if not any(name in adaptable for name in matched):
        hint = " (a list names modules: [q_proj, v_proj])" if "," in pattern else ""
        raise MsltError(
            f"lora target: the regular expression {clipped(pattern, 60)} matches no linear "
            f"module of {model} (PEFT matches a module's whole name, "
            f"{linear[0] if linear else 'model.layers.0.self_attn.q_proj'}){hint}; its linear "
            f"modules are {allowed(short)}"
        )
    other = next((name for name in matched if name not in adaptable), None)
    if other is not None:
        raise MsltError(
            f"lora target: the regular expression {clipped(pattern, 60)} matches {other}, which "
            f"is not a linear module of {model}; match only its linear modules, {allowed(short)}"
        )


def unmatched_keys(keys: list[Any], names: list[str]) -> list[Any]:
    """The keys of a list (``target_modules``, ``modules_to_save``) that match no module name by
    PEFT's rule: a module's full name is the key or ends with ``"." + key``
    (``nope.q_proj`` and ``model.layers.99.self_attn.q_proj`` name no module)."""
    return [key for key in keys if not (isinstance(key, str) and names_any(key, names))]


def trainable_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts, for the summary."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
