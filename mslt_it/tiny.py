"""A tiny causal LM and tokenizer, built offline, that the tests and the demo use as a base model.

Nothing can be downloaded in tests or in the offline demo, yet every step downstream (build,
train, evaluate, analyze) expects a Hugging Face model folder. :func:`build_tiny_model` makes one
from scratch in well under a minute on two CPU cores:

- a byte-level BPE tokenizer trained on the synthetic text of the task languages, with ChatML
  chat tokens and a chat template whose ``{% generation %}`` markers cover the assistant's
  ``<|im_end|>`` (so TRL's ``assistant_only_loss`` trains the model to stop);
- a 2-layer Llama (head_dim 64, which vLLM's CPU build requires) that is briefly pre-trained on
  raw synthetic sentences and on generic chat exchanges (repeat, continue, count…), never on task
  labels. A randomly initialised base made LoRA learning a coin toss (one run in seven stayed at
  chance); a pre-trained one gives LoRA features and a chat format to build on.

The result loads with ``AutoModelForCausalLM``/``AutoTokenizer`` with ``trust_remote_code=False``.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mslt_it.errors import MsltError

DEFAULT_PRETRAIN_STEPS = 300
DEFAULT_VOCAB_SIZE = 4096

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

SYSTEM_PROMPT = "You are a helpful assistant."
INFO_FILE = "mslt_it_tiny.json"


@dataclass(frozen=True)
class TinyShape:
    """The architecture: small enough for 2 CPU cores, head_dim 64 for vLLM's CPU attention."""

    hidden_size: int = 128
    num_attention_heads: int = 2
    num_key_value_heads: int = 2
    num_hidden_layers: int = 2
    intermediate_size: int = 384
    max_position_embeddings: int = 1024

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


@dataclass(frozen=True)
class PretrainSettings:
    """The short full-parameter pre-training run."""

    steps: int = DEFAULT_PRETRAIN_STEPS
    batch_size: int = 8
    block_size: int = 128
    learning_rate: float = 3e-3
    warmup_fraction: float = 0.05
    weight_decay: float = 0.01
    raw_rows_per_language: int = 60
    chats_per_language: int = 120


def default_languages() -> list[str]:
    """The 15 XNLI languages, ja and ko (PAWS-X), and the 40 XTREME WikiAnn ones, deduplicated."""
    from mslt_it.languages import XTREME_WIKIANN, languages_of_task

    return list(dict.fromkeys([*languages_of_task("xnli"), "ja", "ko", *XTREME_WIKIANN]))


# --------------------------------------------------------------------------------------------
# Pre-training text
# --------------------------------------------------------------------------------------------


def raw_documents(langs: Sequence[str], rows_per_language: int, split: str = "train") -> list[str]:
    """Paragraphs of synthetic sentences, one per task row and language (labels never appear)."""
    from mslt_it.tasks.synthetic import synthetic_text

    docs: list[str] = []
    per_row = 5  # synthetic_text yields five sentences per row: 2 XNLI, 2 PAWS-X, 1 WikiAnn
    for lang in langs:
        sentences = synthetic_text([lang], rows_per_language, split=split)
        for start in range(0, len(sentences), per_row):
            docs.append(" ".join(sentences[start : start + per_row]))
    return docs


def _exchange(lang: str, rng: random.Random) -> tuple[str, str]:
    """One generic (instruction, answer) pair over invented words: copy, continue, count, pick.

    These teach the chat format, ending a turn with <|im_end|>, and attending back to the user's
    text, without touching any task's labels.
    """
    from mslt_it.tasks.base import join_tokens
    from mslt_it.tasks.synthetic import lexicon

    lex = lexicon(lang)
    words = rng.choices(lex.words, k=rng.randint(4, 10))
    sentence = lex.sentence(words)
    kind = rng.randrange(6)
    if kind == 0:
        return f"Repeat the sentence.\nSentence: {sentence}", sentence
    if kind == 1:
        k = rng.randint(1, 3)
        return (
            f"Write the first {k} words of the sentence.\nSentence: {sentence}",
            join_tokens(words[:k], lang),
        )
    if kind == 2:
        half = rng.randint(2, len(words) - 1)
        return f"Continue the text: {join_tokens(words[:half], lang)}", lex.sentence(words[half:])
    if kind == 3:
        return f"What is the last word of the sentence?\nSentence: {sentence}", words[-1]
    if kind == 4:
        return (
            f"How many words does the sentence have? Answer with a number.\nSentence: {sentence}",
            str(len(words)),
        )
    i, j = sorted(rng.sample(range(len(words)), 2))
    options = [words[i], words[j]]
    rng.shuffle(options)
    return (
        f"Sentence: {sentence}\nWhich word comes first in the sentence? "
        f"Answer with one word: {options[0]}, {options[1]}.",
        words[i],
    )


def chat_conversations(
    langs: Sequence[str], per_language: int, seed: int
) -> list[list[dict[str, str]]]:
    """Generic chat conversations (sometimes with a system turn, sometimes two rounds)."""
    rng = random.Random(f"mslt-it/tiny/chat/{seed}")
    conversations: list[list[dict[str, str]]] = []
    for lang in langs:
        for _ in range(per_language):
            messages: list[dict[str, str]] = []
            if rng.random() < 0.2:
                messages.append({"role": "system", "content": SYSTEM_PROMPT})
            for _ in range(2 if rng.random() < 0.2 else 1):
                question, answer = _exchange(lang, rng)
                messages.append({"role": "user", "content": question})
                messages.append({"role": "assistant", "content": answer})
            conversations.append(messages)
    return conversations


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


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


def tokenizer_corpus(
    docs: Sequence[str], conversations: Sequence[list[dict[str, str]]]
) -> list[str]:
    """Text the BPE merges are learnt from: the raw paragraphs and every chat message."""
    messages = [m["content"] for conv in conversations for m in conv]
    return [*docs, *messages, "system user assistant"]


# --------------------------------------------------------------------------------------------
# Model and pre-training
# --------------------------------------------------------------------------------------------


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


def pack_blocks(documents: Sequence[list[int]], block_size: int, seed: int) -> Any:
    """Shuffle tokenised documents and cut their concatenation into ``block_size`` rows."""
    import torch

    order = list(range(len(documents)))
    random.Random(seed).shuffle(order)
    stream = [token for i in order for token in documents[i]]
    rows = len(stream) // block_size
    return torch.tensor(stream[: rows * block_size], dtype=torch.long).view(rows, block_size)


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def pretrain(
    model: Any,
    blocks: Any,
    settings: PretrainSettings,
    seed: int,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Full-parameter causal-LM training with a plain torch loop; returns the loss per step."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=settings.learning_rate,
        weight_decay=settings.weight_decay,
        betas=(0.9, 0.95),
    )
    warmup = max(1, int(settings.steps * settings.warmup_fraction))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(step, settings.steps, warmup)
    )
    model.train()
    losses: list[float] = []
    order = torch.randperm(len(blocks), generator=generator)
    cursor = 0
    for step in range(settings.steps):
        if cursor + settings.batch_size > len(order):
            order, cursor = torch.randperm(len(blocks), generator=generator), 0
        batch = blocks[order[cursor : cursor + settings.batch_size]]
        cursor += settings.batch_size
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1])
    model.eval()
    return losses


def language_model_loss(model: Any, tokenizer: Any, texts: Sequence[str]) -> float:
    """Mean next-token loss over ``texts`` (each prefixed with bos), token-weighted.

    Used to show that pre-training happened: a trained base must beat a random one clearly.
    """
    import torch

    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for text in texts:
            ids = [tokenizer.bos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]
            batch = torch.tensor([ids])
            loss = model(input_ids=batch, labels=batch).loss
            total += loss.item() * (len(ids) - 1)
            count += len(ids) - 1
    return total / max(1, count)


def heldout_texts(langs: Sequence[str], rows_per_language: int = 4) -> list[str]:
    """Validation-split paragraphs: text the pre-training never saw."""
    return raw_documents(langs, rows_per_language, split="validation")


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread for the build, then restore the caller's setting.

    The tiny matrices gain little from a second thread, and on a busy machine (a test run beside
    other jobs) OpenMP threads that spin-wait for a shared core made each step 5-10x slower.
    One thread also keeps the float reductions, hence the weights, the same on any core count.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _seed_everything(seed: int) -> None:
    """Seed every generator the build touches, so a seed gives the same model twice."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _tokenize_documents(
    tokenizer: Any, docs: Sequence[str], conversations: Sequence[list[dict[str, str]]]
) -> list[list[int]]:
    """Raw paragraphs as ``bos text``; conversations rendered by the chat template itself."""
    encoded = tokenizer(list(docs), add_special_tokens=False)["input_ids"]
    documents = [[tokenizer.bos_token_id, *ids] for ids in encoded]
    rendered = tokenizer.apply_chat_template(list(conversations), tokenize=False)
    chat_ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    return documents + [list(ids) for ids in chat_ids]


def build_tiny_model(
    out_dir: str | Path,
    *,
    languages: Sequence[str] | None = None,
    seed: int = 0,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    pretrain_steps: int = DEFAULT_PRETRAIN_STEPS,
    overwrite: bool = False,
) -> Path:
    """Build the tiny model folder at ``out_dir`` and return its path.

    The folder appears only when the whole build succeeded (it is written under a temporary name
    and renamed). ``pretrain_steps=0`` leaves the weights random, which only tests want.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise MsltError(f"out_dir: {out} already exists; pass --overwrite to replace it")
    if pretrain_steps < 0:
        raise MsltError(f"steps: {pretrain_steps} is negative; use 0 or more")
    if vocab_size < 512:
        raise MsltError(f"vocab_size: {vocab_size} is too small; use 512 or more")
    langs = list(dict.fromkeys(languages)) if languages else default_languages()
    from mslt_it.languages import get_language

    for lang in langs:
        get_language(lang)  # an unknown code fails here, with the registry's message

    started = time.monotonic()
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    from mslt_it.io import atomic_directory, atomic_write_json
    from mslt_it.progress import progress_bar

    shape = TinyShape()
    settings = PretrainSettings(steps=pretrain_steps)
    _seed_everything(seed)
    with _one_thread(), progress_bar() as progress:
        tok_task = progress.add_task("tiny model: tokenizer", total=1)
        docs = raw_documents(langs, settings.raw_rows_per_language)
        conversations = chat_conversations(langs, settings.chats_per_language, seed)
        tokenizer = train_tokenizer(tokenizer_corpus(docs, conversations), vocab_size)
        progress.advance(tok_task)

        model = LlamaForCausalLM(tiny_config(tokenizer, shape))
        blocks = pack_blocks(
            _tokenize_documents(tokenizer, docs, conversations), settings.block_size, seed
        )
        train_task = progress.add_task("tiny model: pre-training", total=settings.steps)
        losses = pretrain(
            model,
            blocks,
            settings,
            seed,
            on_step=lambda _step, _loss: progress.advance(train_task),
        )
        heldout_loss = language_model_loss(model, tokenizer, heldout_texts(langs))
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    tail = losses[-20:]
    info = {
        "seed": seed,
        "languages": langs,
        "vocab_size": len(tokenizer),
        "shape": asdict(shape),
        "pretrain": asdict(settings),
        "pretrain_tokens_per_epoch": int(blocks.numel()),
        "final_pretrain_loss": round(sum(tail) / len(tail), 4) if tail else None,
        "heldout_loss": round(heldout_loss, 4),
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch_version": torch.__version__,
        "build_seconds": round(time.monotonic() - started, 1),
    }
    with atomic_directory(out, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / INFO_FILE, info)
    return out


def read_info(model_dir: str | Path) -> dict[str, Any]:
    """The build record (seed, languages, losses…) of a tiny model folder."""
    return json.loads((Path(model_dir) / INFO_FILE).read_text(encoding="utf-8"))
