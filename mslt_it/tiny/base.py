"""One build flow for every tiny base: text → tokenizer → Llama → pre-training → folder.

The random-weight base (:mod:`mslt_it.tiny.build`) and the world base
(:mod:`mslt_it.tiny.world_base`) differ only in their text; both go through
:func:`pretrain_base`, so a change to seeding, packing, the progress bars or the build record
reaches both, and the order of the seeded steps (which fixes the weights a seed gives) is written
once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mslt_it.progress import progress_bar
from mslt_it.tiny.model import TinyShape, save_model, tiny_config, train_tokenizer
from mslt_it.tiny.pretrain import (
    PretrainSettings,
    language_model_loss,
    one_thread,
    pack_blocks,
    pretrain,
    seed_everything,
    tokenize_documents,
)
from mslt_it.tiny.text import heldout_texts, tokenizer_corpus

Conversation = list[dict[str, str]]


@dataclass
class BaseText:
    """What a base is pre-trained on.

    ``docs`` are plain paragraphs; ``chats`` go through the chat template with only the assistant
    turns trained; ``frames`` go through the template too but are trained as plain text (every
    token), since their point is the prompt frame itself.
    """

    docs: list[str]
    chats: list[Conversation]
    frames: list[Conversation] = field(default_factory=list)


def pretrain_base(
    out: Path,
    *,
    label: str,
    text: BaseText,
    langs: Sequence[str],
    seed: int,
    settings: PretrainSettings,
    vocab_size: int,
    record: dict[str, Any],
    overwrite: bool,
) -> Path:
    """Build a base from ``text`` into ``out`` (already claimed by the caller) and return it.

    ``record`` is the build record's own fields (the world keeps its text's digest there). The
    text generators draw from their own seeded streams, never the global ones, so making the
    text before the seeding here gives the same weights.
    """
    from transformers import LlamaForCausalLM

    seed_everything(seed)
    with one_thread(), progress_bar() as progress:
        tok_task = progress.add_task(f"{label}: tokenizer", total=1)
        corpus = tokenizer_corpus(text.docs, text.frames + text.chats)
        tokenizer = train_tokenizer(corpus, vocab_size)
        progress.advance(tok_task)
        documents = tokenize_documents(tokenizer, text.docs, text.chats)
        if text.frames:
            for frame in tokenizer.apply_chat_template(text.frames, tokenize=False):
                ids = tokenizer(frame, add_special_tokens=False)["input_ids"]
                documents.append((ids, ids))  # language-model text: every token trained
        model = LlamaForCausalLM(tiny_config(tokenizer, TinyShape()))
        blocks = pack_blocks(documents, settings.block_size, seed)
        train_task = progress.add_task(f"{label}: pre-training", total=settings.steps)
        losses = pretrain(
            model, blocks, settings, seed, on_step=lambda _s, _l: progress.advance(train_task)
        )
        heldout_loss = language_model_loss(model, tokenizer, heldout_texts(langs))
    run = (settings, blocks, losses, heldout_loss)
    save_model(out, model, tokenizer, record, run, overwrite)
    return out
