"""What the text-based criteria measure on the task's own data: token types and mean embeddings.

Both read a sample of each language's rows through :func:`mslt_it.tasks.sources.open_split`, so
``--data hub``, a local folder and the synthetic source all work. The sample is ``n`` rows evenly
spaced through the split (not the first ``n``: files are often sorted), so it needs no seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mslt_it.errors import MsltError
from mslt_it.modeling import load_failure, load_report_in_errors, load_tokenizer, model_load_errors
from mslt_it.progress import library_bars_quieted, track
from mslt_it.tasks.base import Row, Task, join_tokens
from mslt_it.tasks.sources import open_split


def sample_indices(size: int, n: int) -> np.ndarray:
    """``min(n, size)`` distinct row positions spread evenly over ``range(size)``."""
    if size <= n:
        return np.arange(size)
    return np.unique(np.linspace(0, size - 1, n).round().astype(np.int64))


def row_text(task: Task, row: Row, lang: str) -> str:
    """The text of a row: its string columns, and token lists joined as the language writes."""
    parts: list[str] = []
    for column in task.columns:
        value = row.get(column)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            parts.append(join_tokens(value, lang))
    return "\n".join(parts)


def sample_texts(task: Task, lang: str, data: str, split: str, n: int) -> list[str]:
    """Up to ``n`` texts of ``lang`` from the task's ``split``."""
    rows = open_split(task, lang, split, data)
    if len(rows) == 0:
        raise MsltError(f"data: {task.name}/{lang}/{split} has no usable rows ({rows.origin})")
    return [row_text(task, row, lang) for row in rows.rows(sample_indices(len(rows), n).tolist())]


def token_types(tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    """The distinct token ids of ``texts`` (no special tokens: every language has those)."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return np.unique(np.fromiter((i for seq in ids for i in seq), dtype=np.int64))


def coverage_items(vocabularies: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
    """Token types grouped by which languages have them: ``(member, weights, vocabulary size)``.

    ``member[i, g]`` says language ``i`` has the types of group ``g``; ``weights[g]`` is how many
    types the group holds. A set covers a group when any member has it, so coverage of a set is
    ``Σ weights[covered] / vocabulary size``, with one column per distinct pattern rather than
    one per token type.
    """
    vocabulary = np.unique(np.concatenate([np.asarray(v, dtype=np.int64) for v in vocabularies]))
    member = np.vstack([np.isin(vocabulary, v) for v in vocabularies])
    if not len(vocabulary):
        return member, np.zeros(0), 0
    patterns, counts = np.unique(member.T, axis=0, return_counts=True)
    return patterns.T.copy(), counts.astype(float), len(vocabulary)


def mean_embeddings(
    model_name: str, texts: dict[str, list[str]], batch_size: int = 16, max_length: int = 256
) -> np.ndarray:
    """One vector per language: the mean over its sentences of mean-pooled last hidden states.

    Special tokens (BOS, CLS…) are left out of the pooling: decoder LMs put a large, language-blind
    activation on the first token, which would pull every language's mean together.
    """
    import torch
    from transformers import AutoModel

    tokenizer = load_tokenizer(model_name, field="--model")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    try:
        # an encoder's pooler may be new; transformers' bar only with mslt-it's own on
        with library_bars_quieted(), load_report_in_errors(refuse_missing=False):
            model = AutoModel.from_pretrained(model_name)
    except model_load_errors() as error:
        raise MsltError(
            f"--model: cannot load {model_name!r}: {load_failure(model_name, error)}"
        ) from None
    model.eval()
    vectors = []
    for lang in track(list(texts), "embedding languages", total=len(texts)):
        total, count = None, 0
        sentences = texts[lang]
        for begin in range(0, len(sentences), batch_size):
            batch = tokenizer(
                sentences[begin : begin + batch_size],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
                return_special_tokens_mask=True,
            )
            special = batch["special_tokens_mask"]
            with torch.inference_mode():
                hidden = model(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                ).last_hidden_state.float()
            mask = (batch["attention_mask"] * (1 - special)).unsqueeze(-1).float()
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            summed = pooled.sum(dim=0).double()
            total = summed if total is None else total + summed
            count += len(pooled)
        vectors.append((total / count).numpy())
    return np.vstack(vectors)
