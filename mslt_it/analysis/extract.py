"""Sentence representations from every layer of a causal LM, with and without LoRA adapters.

A sentence's representation at layer ``l`` is the mean of ``hidden_states[l]`` over the tokens of
the sentence itself (``hidden_states[0]`` is the embedding output). Tokens added around it (BOS,
a chat template's role markers) are fed to the model but left out of the mean: they are the same
in every language and would pull all sentences towards one point. ``last`` pooling takes the
sentence's final token instead, which in a causal model is the only one that has seen it all.

Batches are sorted by length and padded on the right. With right padding a causal model's real
tokens never attend to the padding and keep their position ids, so a batched representation
equals the one-at-a-time one (up to float rounding): batching changes the speed, not the result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it.chat_bounds import render_chat
from mslt_it.errors import MsltError, allowed, clipped
from mslt_it.files import without_controls
from mslt_it.generation.base import resolve_dtype as resolve_run_dtype
from mslt_it.generation.base import run_device
from mslt_it.modeling import check_device, load_failure, load_report_in_errors, model_load_errors
from mslt_it.named_models import recorded_base
from mslt_it.peft_adapters import (
    RUN_FILE,
    check_adapter_folder,
    edited_since_training,
    load_adapters,
    read_adapter_config,
    read_run_record,
    run_record_edited,
    weights_sha256,
)

POOLINGS = ("mean", "last")
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class Encoded:
    """Token ids of each sentence and the positions of the sentence's own tokens among them."""

    input_ids: list[list[int]]
    positions: list[list[int]]
    truncated: int = 0  # sentences cut by max_length

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True)
class Adapter:
    """A LoRA adapter folder and how to call it in tables and plots."""

    path: Path
    label: str
    run: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""  # of its config and weights: what a report matches results with
    base_model: str | None = None  # run.json's, else adapter_config.json's (a PEFT adapter's)
    edited: str | None = None  # the trained file edited since training, if one was


# --- encoding --------------------------------------------------------------------------------


def render(tokenizer: Any, text: str, chat_template: bool) -> tuple[str, int, int]:
    """The text the model reads and the character span of the sentence inside it."""
    if not chat_template:
        return text, 0, len(text)
    messages = [{"role": "user", "content": text}]
    rendered = render_chat(tokenizer, messages, "--chat-template: the model's chat template", False)
    start = rendered.rfind(text) if isinstance(rendered, str) else -1
    if start < 0:  # pooled over what it rendered instead, every measure was of the template
        raise MsltError(
            f"--chat-template: the model's chat template does not hold the sentence "
            f"{clipped(text, 40)} as given (it drops or rewrites a user's message), so its "
            "tokens cannot be found; analyse without --chat-template"
        )
    return rendered, start, start + len(text)


def encode_sentences(
    tokenizer: Any, texts: Sequence[str], chat_template: bool = False, max_length: int = 256
) -> Encoded:
    """Tokenize ``texts`` once (shared by the base model and every adapter).

    Plain text starts with BOS when the tokenizer has one, as in pre-training, even if the
    tokenizer does not add it itself; a chat template brings its own special tokens.
    """
    if chat_template and not getattr(tokenizer, "chat_template", None):
        raise MsltError("--chat-template: the model's tokenizer has no chat template")
    if not getattr(tokenizer, "is_fast", False):
        raise MsltError(
            "model: analysis needs a fast (Rust) tokenizer to find each sentence's tokens; "
            "this one is a slow Python tokenizer"
        )
    rendered = [render(tokenizer, text, chat_template) for text in texts]
    batch = tokenizer(
        [r[0] for r in rendered],
        add_special_tokens=False,
        return_offsets_mapping=True,
        truncation=False,
    )
    bos = getattr(tokenizer, "bos_token_id", None)
    prepend = not chat_template and bos is not None
    encoded = Encoded([], [])
    for (_, start, end), ids, offsets in zip(
        rendered, batch["input_ids"], batch["offset_mapping"], strict=True
    ):
        ids, offsets = list(ids), [tuple(o) for o in offsets]
        if prepend and (not ids or ids[0] != bos):
            ids, offsets = [bos, *ids], [(0, 0), *offsets]
        if len(ids) > max_length:
            ids, offsets = ids[:max_length], offsets[:max_length]
            encoded.truncated += 1
        positions = [
            i for i, (s, e) in enumerate(offsets) if e > s and e > start and s < end
        ] or list(range(len(ids)))
        encoded.input_ids.append(ids)
        encoded.positions.append(positions)
    return encoded


# --- models ----------------------------------------------------------------------------------


def resolve_device(device: str) -> str:
    """``auto`` is the GPU when there is one, else the CPU (:func:`run_device`, as evaluation's
    transformers backend places a model)."""
    if device == "auto":
        return run_device("hf")
    return check_device(device)


def resolve_dtype(dtype: str, device: str) -> Any:
    """``--dtype`` checked, then resolved as evaluation resolves it
    (:func:`mslt_it.generation.base.resolve_dtype`): ``auto`` is bfloat16 on a GPU that has
    it, float32 elsewhere. Analysis had its own rule, bfloat16 on any GPU, which a GPU
    without it (a V100) runs slowly or not at all."""
    if dtype not in DTYPES:
        raise MsltError(f"--dtype: unknown dtype {dtype!r}; use one of {allowed(DTYPES)}")
    return resolve_run_dtype(dtype, device)


def count_hidden_states(model: str, trust_remote_code: bool = False) -> int:
    """How many hidden states the model returns: its layers plus the embedding output.

    Read from the config alone, so a bad ``--layers`` fails before any weights are loaded.
    """
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    except model_load_errors() as error:
        raise MsltError(f"--model: cannot load {model!r}: {load_failure(model, error)}") from None
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = getattr(text_config, "num_hidden_layers", None)
    if not isinstance(layers, int):
        raise MsltError(f"--model: {model!r} has no num_hidden_layers in its config")
    return layers + 1


def load_model(model: str, device: str, dtype: Any, trust_remote_code: bool = False) -> Any:
    """The causal LM in eval mode on ``device``, with a one-line error when it cannot load."""
    from transformers import AutoModelForCausalLM

    try:
        with quiet_loading(), load_report_in_errors():
            loaded = AutoModelForCausalLM.from_pretrained(
                model, dtype=dtype, trust_remote_code=trust_remote_code
            )
    except model_load_errors() as error:
        raise MsltError(f"--model: cannot load {model!r}: {load_failure(model, error)}") from None
    return loaded.to(device).eval()


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """No "Loading weights" bar from transformers: our own bars cover the run."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def read_adapter(path: str | Path) -> Adapter:
    """Check an adapter folder and read its run manifest (``run.json``), when there is one."""
    if not str(path).strip():  # Path("") is ".": the working folder was blamed
        raise MsltError("--adapter: an empty path; give an adapter folder")
    folder = Path(path)
    check_adapter_folder(folder, "--adapter")
    config = read_adapter_config(folder, "--adapter")
    run = read_run_record(folder, "--adapter") or {}
    base = recorded_base(run) or config.get("base_model_name_or_path")  # as mslt-it eval
    # edited since training, run.json's "MSLT ar+de" names a training of other weights; and
    # a run.json edited itself names whatever it was edited to name
    edited = edited_since_training(folder) or (RUN_FILE if run_record_edited(folder) else None)
    named = None if edited else run_label(run)
    label = without_controls(named or folder.name)  # in tables, plots, analysis.json
    sha256 = weights_sha256(folder, "--adapter")
    return Adapter(folder, label, run, sha256, base if isinstance(base, str) else None, edited)


def run_label(run: dict[str, Any]) -> str | None:
    """``SSLT en`` for one source language, ``MSLT ar+en+zh`` for several, else None."""
    dataset = run.get("dataset") if isinstance(run, dict) else None
    sources = dataset.get("sources") if isinstance(dataset, dict) else None
    if not isinstance(sources, list) or not sources:
        return None
    kind = "SSLT" if len(sources) == 1 else "MSLT"
    return f"{kind} {'+'.join(str(s) for s in sources)}"


def unique_labels(adapters: Sequence[Adapter]) -> list[Adapter]:
    """Every adapter under a label of its own, none of them ``base`` (the base model's).

    Labels key the settings table, the models of analysis.json and the legends: two adapters
    under one label were merged there, one's numbers under the other's path. An adapter whose
    label another shares gets the end of its path added, one folder more each round until the
    labels differ (as the report names two runs of one label): ``MSLT de+en [ad1]`` and
    ``MSLT de+en [ad2]``, or ``[runs/a]`` and ``[x3/a]`` for two folders named ``a``.
    """
    depth = [0] * len(adapters)
    while True:
        labels = [_labelled(a, d) for a, d in zip(adapters, depth, strict=True)]
        clashing = [i for i, label in enumerate(labels) if _clashes(label, labels)]
        longer = [i for i in clashing if depth[i] < len(adapters[i].path.parts)]
        if not longer:
            break
        for i in longer:
            depth[i] += 1
    for i in clashing:  # one path twice (check_options refuses it): told apart by position
        labels[i] = f"{labels[i]} #{i + 1}"
    return [replace(a, label=label) for a, label in zip(adapters, labels, strict=True)]


def _labelled(adapter: Adapter, depth: int) -> str:
    """The adapter's label with the last ``depth`` parts of its path added (none for 0)."""
    if depth == 0:
        return adapter.label
    tail = Path(*adapter.path.parts[-depth:]).as_posix()
    return f"{adapter.label} [{without_controls(tail)}]"


def _clashes(label: str, labels: Sequence[str]) -> bool:
    """The label is the base model's or another adapter's too."""
    return label == "base" or labels.count(label) > 1


def variants(model: Any, adapters: Sequence[Adapter]) -> Iterator[tuple[str, Path | None, Any]]:
    """The base model, then each adapter in turn (label, folder, model), on one copy of the
    base weights. The folder comes with the label so no entry looks its path up by label.

    The base is analysed before PEFT touches it; adapters are then loaded side by side into one
    PeftModel and switched with ``set_adapter``, so the base is read from disk once.
    """
    yield "base", None, model
    if not adapters:
        return
    names = [f"adapter{i}" for i in range(len(adapters))]
    with quiet_loading():
        peft_model = load_adapters(
            model, {n: a.path for n, a in zip(names, adapters, strict=True)}, "--adapter"
        )
    peft_model.eval()
    for name, adapter in zip(names, adapters, strict=True):
        peft_model.set_adapter(name)
        yield adapter.label, adapter.path, peft_model


def backbone(model: Any) -> Any:
    """The transformer without its LM head: hidden states without a vocabulary-wide matmul.

    LoRA layers are injected into the modules in place, so the backbone of a PeftModel runs the
    active adapter.
    """
    import torch

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    prefix = getattr(inner, "base_model_prefix", "")
    candidate = getattr(inner, prefix, None) if prefix else None
    return candidate if isinstance(candidate, torch.nn.Module) else inner


# --- extraction ------------------------------------------------------------------------------


def batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first (memory errors come early)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def extract(
    model: Any,
    encoded: Encoded,
    layers: Sequence[int],
    pooling: str = "mean",
    batch_size: int = 32,
    pad_id: int = 0,
    on_batch: Any = None,
) -> np.ndarray:
    """Pooled hidden states, shape ``(len(layers), len(encoded), hidden)``, float32 on the CPU."""
    return extract_pooled(
        model, encoded, {pooling: layers}, batch_size=batch_size, pad_id=pad_id, on_batch=on_batch
    )[pooling]


def extract_pooled(
    model: Any,
    encoded: Encoded,
    wanted: dict[str, Sequence[int]],
    batch_size: int = 32,
    pad_id: int = 0,
    on_batch: Any = None,
) -> dict[str, np.ndarray]:
    """Several poolings from one forward pass: ``{pooling: array (layers, sentences, hidden)}``.

    ``wanted`` maps each pooling to its layers. The hidden states are computed once per batch
    and every pooling is read off them, so a second pooling costs a few sums, not a second
    pass through the model.
    """
    import torch

    for pooling in wanted:
        if pooling not in POOLINGS:
            raise MsltError(
                f"--pooling: unknown pooling {pooling!r}; use one of {allowed(POOLINGS)}"
            )
    network = backbone(model)
    device = next(model.parameters()).device
    out: dict[str, np.ndarray] = {}
    deepest = max(max(layers) for layers in wanted.values())
    with torch.inference_mode():
        for batch in batches([len(ids) for ids in encoded.input_ids], batch_size):
            ids, attention, pool = _pad(encoded, batch, pad_id)
            hidden = network(
                input_ids=ids.to(device),
                attention_mask=attention.to(device),
                output_hidden_states=True,
                use_cache=False,
            ).hidden_states
            if deepest >= len(hidden):
                raise MsltError(
                    f"--layers: layer {deepest} asked, but the model returned {len(hidden)} "
                    "hidden states"
                )
            pool = pool.to(device)
            for pooling, layers in wanted.items():
                for j, layer in enumerate(layers):
                    pooled = _pool(hidden[layer].float(), pool, pooling).cpu().numpy()
                    if pooling not in out:
                        shape = (len(layers), len(encoded), pooled.shape[1])
                        out[pooling] = np.empty(shape, np.float32)
                    out[pooling][j, batch] = pooled
            if on_batch is not None:
                on_batch(len(batch))
    return out


def _pad(encoded: Encoded, batch: Sequence[int], pad_id: int) -> tuple[Any, Any, Any]:
    """Right-padded ids, the attention mask, and a 0/1 mask of the tokens to pool over."""
    import torch

    width = max(len(encoded.input_ids[i]) for i in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    pool = torch.zeros((len(batch), width), dtype=torch.float32)
    for row, index in enumerate(batch):
        tokens = encoded.input_ids[index]
        ids[row, : len(tokens)] = torch.tensor(tokens)
        attention[row, : len(tokens)] = 1
        pool[row, encoded.positions[index]] = 1.0
    return ids, attention, pool


def _pool(hidden: Any, pool: Any, pooling: str) -> Any:
    """Mean over the pooled tokens, or the last of them."""
    import torch

    if pooling == "mean":
        return (hidden * pool.unsqueeze(-1)).sum(1) / pool.sum(1, keepdim=True)
    width = pool.shape[1]
    last = (pool * torch.arange(1, width + 1, device=pool.device)).argmax(1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
