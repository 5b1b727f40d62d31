"""The pre-training loop: documents packed into blocks, full-parameter AdamW, the held-out loss.

A plain torch loop, seeded and on one thread (:func:`one_thread`), so a seed gives the same
weights twice. What it is trained on is the caller's: the text of :mod:`mslt_it.tiny.text`
(:mod:`mslt_it.tiny.build`) or the synthetic world's (:mod:`mslt_it.tiny.world_base`). torch is
imported inside the functions that use it.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

IGNORE_INDEX = -100  # label of a token that is context only, as in transformers

Document = tuple[list[int], list[int]]
"""One pre-training document: input ids and labels (``IGNORE_INDEX`` where not trained)."""


@dataclass(frozen=True)
class PretrainSettings:
    """The short full-parameter pre-training run."""

    steps: int = 0  # the tests' base keeps its random weights
    batch_size: int = 8
    block_size: int = 128
    learning_rate: float = 3e-3
    warmup_fraction: float = 0.05
    weight_decay: float = 0.01
    raw_rows_per_language: int = 60
    chats_per_language: int = 120
    english_docs_per_language: int = 15
    broad_heads_per_layer: int = 1


def pack_blocks(documents: Sequence[Document], block_size: int, seed: int) -> Any:
    """Shuffle documents and cut their concatenation into rows of ``(input_ids, labels)``.

    Returns a long tensor of shape ``(rows, 2, block_size)``.
    """
    import torch

    order = list(range(len(documents)))
    random.Random(seed).shuffle(order)
    ids = [token for i in order for token in documents[i][0]]
    labels = [label for i in order for label in documents[i][1]]
    rows = len(ids) // block_size
    stacked = torch.tensor([ids[: rows * block_size], labels[: rows * block_size]])
    return stacked.view(2, rows, block_size).transpose(0, 1).contiguous()


def _keep_heads_broad(model: Any, heads: int) -> list[Any]:
    """Freeze the query/key rows of the last ``heads`` heads of every layer at their random init.

    Their attention scores stay near zero, so these heads keep averaging over the whole context,
    as every head of a random model does. Measured: after even 100 steps of pre-training all
    heads attend to the last few tokens, and LoRA could no longer learn a task whose cue sits
    earlier in the prompt (it stayed at the majority class), while on a random model it did.
    The frozen heads keep that route open; the others learn the usual local and copy patterns.
    Returns the hook handles, to be removed after pre-training.
    """
    import torch

    config = model.config
    handles = []
    for layer in model.model.layers:
        attention = layer.self_attn
        for proj, count in (
            (attention.q_proj, config.num_attention_heads),
            (attention.k_proj, config.num_key_value_heads),
        ):
            mask = torch.ones_like(proj.weight)
            mask[(count - heads) * config.head_dim :] = 0.0
            handles.append(proj.weight.register_hook(lambda grad, mask=mask: grad * mask))
    return handles


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

    # The usual split: no weight decay on embeddings and norm weights, which decay would shrink
    # towards a vocabulary LoRA cannot separate any more.
    def decays(name: str, param: Any) -> bool:
        # q/k are left undecayed too, so that the frozen rows of the broad heads stay exact
        return param.ndim == 2 and not any(k in name for k in ("embed", "q_proj", "k_proj"))

    named = list(model.named_parameters())
    decayed = [p for name, p in named if decays(name, p)]
    kept = [p for name, p in named if not decays(name, p)]
    handles = _keep_heads_broad(model, settings.broad_heads_per_layer)
    optimizer = torch.optim.AdamW(
        [
            {"params": decayed, "weight_decay": settings.weight_decay},
            {"params": kept, "weight_decay": 0.0},
        ],
        lr=settings.learning_rate,
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
        loss = model(input_ids=batch[:, 0], labels=batch[:, 1]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1])
    for handle in handles:
        handle.remove()
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


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
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


def seed_everything(seed: int) -> None:
    """Seed every generator the build touches, so a seed gives the same model twice."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def tokenize_documents(
    tokenizer: Any, docs: Sequence[str], conversations: Sequence[list[dict[str, str]]]
) -> list[Document]:
    """Raw paragraphs as ``bos text``, every token a label; conversations through the template.

    In conversations only the assistant turns (with their ``<|im_end|>``) are labels, as in
    supervised fine-tuning: the user's random words would otherwise drown the few tokens that
    teach the generic skills (copy, pick, count) and ending a turn.
    """
    encoded = tokenizer(list(docs), add_special_tokens=False)["input_ids"]
    documents: list[Document] = []
    for ids in encoded:
        tokens = [tokenizer.bos_token_id, *ids]
        documents.append((tokens, tokens))
    chats = tokenizer.apply_chat_template(
        list(conversations), return_dict=True, return_assistant_tokens_mask=True
    )
    for ids, mask in zip(chats["input_ids"], chats["assistant_masks"], strict=True):
        labels = [token if bit else IGNORE_INDEX for token, bit in zip(ids, mask, strict=True)]
        documents.append((list(ids), labels))
    return documents
