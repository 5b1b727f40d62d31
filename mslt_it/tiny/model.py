"""The tiny model and its tokenizer: the architecture, the byte-level BPE with ChatML, the folder.

- a byte-level BPE tokenizer (lossless for every script) with ChatML chat tokens and a chat
  template whose ``{% generation %}`` markers cover the assistant's ``<|im_end|>`` (so TRL's
  ``assistant_only_loss`` trains the model to stop);
- a 2-layer Llama (head_dim 64, which vLLM's CPU build requires);
- the folder they are saved to, with the build record ``mslt_it_tiny.json``.

torch, transformers and tokenizers are imported inside the functions that use them: importing
:mod:`mslt_it.tiny` stays light.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mslt_it.io import atomic_write_json
from mslt_it.outputs import replacing_output
from mslt_it.tiny.pretrain import PretrainSettings

DEFAULT_VOCAB_SIZE = 8192

PAD_TOKEN = "<|pad|>"
BOS_TOKEN = "<|begin_of_text|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, IM_START, IM_END)

# ChatML. The assistant's <|im_end|> sits inside {% generation %} so that it is among the trained
# labels; the newline after it is outside, so the prompt rendered with add_generation_prompt is a
# prefix of prompt + completion, as TRL's prompt-completion processing needs.
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

INFO_FILE = "mslt_it_tiny.json"


@dataclass(frozen=True)
class TinyShape:
    """The architecture: small enough for 2 CPU cores, head_dim 64 for vLLM's CPU attention."""

    hidden_size: int = 128
    num_attention_heads: int = 2
    num_key_value_heads: int = 2
    head_dim: int = 64
    num_hidden_layers: int = 2
    intermediate_size: int = 384
    max_position_embeddings: int = 1024


def train_tokenizer(texts: Sequence[str], vocab_size: int) -> Any:
    """A byte-level BPE (lossless for every script) with ChatML tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        extra_special_tokens=[IM_START],
        chat_template=CHAT_TEMPLATE,
        model_max_length=TinyShape().max_position_embeddings,
        clean_up_tokenization_spaces=False,
    )


def tiny_config(tokenizer: Any, shape: TinyShape) -> Any:
    """A LlamaConfig sized by ``shape`` whose special token ids match ``tokenizer``."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        head_dim=shape.head_dim,
        max_position_embeddings=shape.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )


def save_model(
    out: Path,
    model: Any,
    tokenizer: Any,
    record: dict[str, Any],
    run: tuple[PretrainSettings, Any, list[float], float],
    overwrite: bool,
) -> None:
    """Write the model, its tokenizer and the build record (``mslt_it_tiny.json``) into place.

    ``run`` is what the build measured: the settings, the packed blocks, the losses and the
    held-out loss. Not how long it took: the record is part of the model's identity, and the
    same seed gives the same model on the same CPU and torch build, so adapters trained on it
    stay valid when it is rebuilt there. (Elsewhere the floating-point kernels differ: a rebuild
    on another CPU matched the shipped base's record and losses, but 2 % of its weights bit for
    bit; the shipped bases are the copies named models use, so their weights never depend on
    the machine.)
    """
    import torch
    from transformers import GenerationConfig

    settings, blocks, losses, heldout_loss = run
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    tail = losses[-20:]
    info = {
        **record,
        "vocab_size": len(tokenizer),
        "shape": asdict(TinyShape()),
        "pretrain": asdict(settings),
        "pretrain_tokens_per_epoch": int(blocks[:, 0].numel()),
        "final_pretrain_loss": round(sum(tail) / len(tail), 4) if tail else None,
        "heldout_loss": round(heldout_loss, 4),
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch_version": torch.__version__,
    }
    with replacing_output(out, "model", overwrite) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / INFO_FILE, info)


def read_info(model_dir: str | Path) -> dict[str, Any]:
    """The build record (seed, languages, losses…) of a tiny model folder."""
    return json.loads((Path(model_dir) / INFO_FILE).read_text(encoding="utf-8"))
