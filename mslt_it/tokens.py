"""Token counts of a built dataset, per language, counted while the builder keeps working.

Non-Latin scripts often take several times more tokens per example, which silently skews a
mixture balanced by example count; the manifest's token statistics make that visible. Counting
is the slowest step of a build, and the Rust tokenizer releases the GIL while it encodes, so
:class:`TokenCounter` encodes the texts, several languages at a time, on a background thread
while the builder renders the next ones and writes the dataset.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

import numpy as np


def chat_texts(examples: list[dict[str, Any]], tokenizer: Any) -> list[str]:
    """Each example as the model will see it: through the chat template when there is one."""
    conversations = [e.get("messages") or e["prompt"] + e["completion"] for e in examples]
    if getattr(tokenizer, "chat_template", None):
        plain_chat_globals(tokenizer)
        return tokenizer.apply_chat_template(conversations, tokenize=False)
    return ["\n".join(turn["content"] for turn in conv) for conv in conversations]


def plain_chat_globals(tokenizer: Any) -> None:
    """Give the tokenizer's compiled chat template its globals as a plain dict.

    transformers compiles a chat template once (cached) and renders it per conversation; Jinja
    copies the template's globals into every render's context, and a ``ChainMap`` of them (what
    Jinja makes) is copied key by key in Python, about a third of a short conversation's render.
    The dict holds the same names and values, so the text is the same. Without the (private)
    cache in this transformers version, nothing changes but the speed.
    """
    try:
        from transformers.utils.chat_template_utils import _compile_jinja_template

        template = _compile_jinja_template(tokenizer.get_chat_template())
    except Exception:  # another transformers version, or no usable template: render as it is
        return
    if not isinstance(template.globals, dict):
        template.globals = dict(template.globals)


def token_lengths(texts: list[str], tokenizer: Any, batch_size: int = 8192) -> list[int]:
    """Token count of each text (no special tokens added: the chat template has its own).

    A fast tokenizer is called through its Rust backend, which encodes a batch on every core and
    without the GIL; building transformers' per-text Python objects would cost a third as much
    again and tell nothing more than the lengths.
    """
    backend = untruncated_backend(tokenizer)
    lengths: list[int] = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        if backend is not None:
            lengths.extend(len(e) for e in backend.encode_batch(batch, add_special_tokens=False))
        else:
            encoded = tokenizer(batch, add_special_tokens=False, return_attention_mask=False)
            lengths.extend(len(ids) for ids in encoded["input_ids"])
    return lengths


def untruncated_backend(tokenizer: Any) -> Any | None:
    """The fast tokenizer's Rust backend with no truncation or padding; ``None`` for slow ones.

    A ``tokenizer.json`` may carry truncation or padding settings, which would change the counts;
    transformers switches them off per call, so a copy is made with them off here.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not getattr(tokenizer, "is_fast", False):
        return None
    if backend.truncation is None and backend.padding is None:
        return backend
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(backend.to_str())
    backend.no_truncation()
    backend.no_padding()
    return backend


def length_statistics(lengths: list[int], max_length: int) -> dict[str, Any]:
    """Total, mean and maximum token count, and how many exceed ``max_length``."""
    counts = np.asarray(lengths, dtype=np.int64)
    if len(counts) == 0:
        return {"total": 0, "mean": 0.0, "max": 0, "over_max_length": 0}
    return {
        "total": int(counts.sum()),
        "mean": round(float(counts.mean()), 2),
        "max": int(counts.max()),
        "over_max_length": int((counts > max_length).sum()),
    }


BATCH_TEXTS = 8192
"""Texts sent to the tokenizer at once: a language of a corpus may have only a thousand, and
the Rust tokenizer's set-up per call (waking its threads) costs a fifth of encoding so few short
texts, so languages are pooled into batches of at least this many."""


class TokenCounter:
    """Counts the tokens of each language's examples on one background thread.

    Use it as a context manager: :meth:`add` each language's examples as they are rendered (the
    chat template is applied here, on the caller's thread; the encoding runs in the background,
    a batch at a time, see :data:`BATCH_TEXTS`), :meth:`flush` when the last are added, then
    :meth:`statistics` waits for the counts. Leaving the block early cancels what is queued.
    """

    def __init__(self, tokenizer_path: str, max_length: int) -> None:
        from mslt_it.modeling import load_tokenizer

        self.tokenizer_path = tokenizer_path
        self.max_length = max_length
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mslt-it-tokens")
        self._tokenizer: Future[Any] = self._executor.submit(load_tokenizer, tokenizer_path)
        self._texts: list[str] = []
        self._langs: list[tuple[str, int]] = []  # (language, how many texts) in the batch
        self._batches: list[tuple[list[tuple[str, int]], Future[list[int]]]] = []

    def __enter__(self) -> TokenCounter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._executor.shutdown(wait=True, cancel_futures=kind is not None)

    def add(self, lang: str, examples: list[dict[str, Any]]) -> None:
        """Queue the examples of ``lang`` for counting (a language may be added in parts)."""
        texts = chat_texts(examples, self._tokenizer.result())
        self._texts += texts
        self._langs.append((lang, len(texts)))
        if len(self._texts) >= BATCH_TEXTS:
            self.flush()

    def flush(self) -> None:
        """Send what was added to the tokenizer now (the builder calls it when rendering ends,
        so the last texts are counted while the dataset is written)."""
        if not self._texts:
            return
        future = self._executor.submit(token_lengths, self._texts, self._tokenizer.result())
        self._batches.append((self._langs, future))
        self._texts, self._langs = [], []

    def statistics(self, langs: list[str]) -> dict[str, Any]:
        """The manifest's ``tokens`` entry, once every queued count is done."""
        self.flush()
        lengths: dict[str, list[int]] = {}
        for parts, future in self._batches:
            counts, start = future.result(), 0
            for lang, size in parts:
                lengths.setdefault(lang, []).extend(counts[start : start + size])
                start += size
        per_language = {
            lang: length_statistics(lengths.get(lang, []), self.max_length) for lang in langs
        }
        return {
            "tokenizer": self.tokenizer_path,
            "max_length": self.max_length,
            "per_language": per_language,
        }
