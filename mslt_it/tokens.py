"""Token counts of a built dataset, per language, counted while the builder keeps working.

Non-Latin scripts often take several times more tokens per example, which silently skews a
mixture balanced by example count; the manifest's token statistics make that visible. Counting
is the slowest step of a build, and the Rust tokenizer releases the GIL while it encodes, so
:class:`TokenCounter` encodes the texts, several languages at a time, on a background thread
while the builder renders the next ones and writes the dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from types import TracebackType
from typing import Any

import numpy as np
from jinja2 import nodes

from mslt_it.chat_bounds import (
    CHAT_ENVIRONMENT,
    InlineGeneration,
    bounded_call,
    bounded_chat_texts,
    template_source,
)
from mslt_it.modeling import check_tokenizer_template, load_tokenizer


def chat_texts(examples: list[dict[str, Any]], tokenizer: Any, field: str) -> list[str]:
    """Each example as the model will see it: through the chat template when there is one."""
    conversations = [e.get("messages") or e["prompt"] + e["completion"] for e in examples]
    if getattr(tokenizer, "chat_template", None):
        return apply_chat_template(conversations, tokenizer, field)
    return ["\n".join(turn["content"] for turn in conv) for conv in conversations]


def apply_chat_template(
    conversations: list[list[dict[str, Any]]], tokenizer: Any, field: str
) -> list[str]:
    """``tokenizer.apply_chat_template(conversations, tokenize=False)``, the same texts faster,
    each conversation first rendered within every bound (:func:`bounded_chat_texts`, errors
    naming ``field``): a template can branch on a row's text to loop, or to write a billion
    characters, only there, past the probes of :func:`check_chat_template`.

    Counting renders the template once per example, and transformers' per-render set-up (and
    a ``{% generation %}`` block's macro call) costs more than the template's own work for a
    short exchange: the bounded renders are the texts, their first and last compared with
    transformers' own; else :func:`chat_renderer`'s, compared the same way; a difference, an
    error (say the template's ``raise_exception``) or a template neither takes leaves every
    text to transformers.
    """
    what = f"{field}: the chat template"
    source = template_source(tokenizer)
    # every bound on every row first: transformers' sandbox bounds no output size
    bounded = bounded_chat_texts(source, tokenizer.special_tokens_map, conversations, False, what)

    def transformers_text(conversation: list[dict[str, Any]]) -> str:
        return bounded_call(
            what, lambda: tokenizer.apply_chat_template([conversation], tokenize=False)[0]
        )

    if not conversations:
        return []
    ends = [conversations[0], conversations[-1]]
    if None not in bounded and _renders_inline(source):  # those texts are transformers' own
        texts = [text for text in bounded if text is not None]
        if [texts[0], texts[-1]] == [transformers_text(c) for c in ends]:
            return texts
    render = chat_renderer(tokenizer)
    if render is not None:
        try:
            texts = [render(conversation) for conversation in conversations]
        except Exception:  # transformers raises it again, as it would have
            texts = None
        if texts is not None and [texts[0], texts[-1]] == [transformers_text(c) for c in ends]:
            return texts
    return [transformers_text(conversation) for conversation in conversations]


@lru_cache(maxsize=8)
def _renders_inline(source: Any) -> bool:
    """Whether the bounded environment's ``{% generation %}`` blocks, rendered in place, give
    transformers' text for ``source`` (see :func:`inline_safe`)."""
    if not isinstance(source, str):
        return False
    try:
        return inline_safe(CHAT_ENVIRONMENT.parse(source))
    except Exception:  # a syntax the check refused already
        return False


def chat_renderer(tokenizer: Any) -> Callable[[list[dict[str, Any]]], str] | None:
    """One conversation to text, as transformers renders it (None: use transformers).

    transformers renders ``messages`` with ``tools``, ``documents``, ``add_generation_prompt``
    and the special tokens; the same variables go into one plain dict here, and Jinja's context
    takes it as it is instead of merging the globals again per render.
    """
    template = fast_chat_template(tokenizer.get_chat_template())
    if template is None:
        return None
    variables = {
        **template.globals,
        "tools": None,
        "documents": None,
        "add_generation_prompt": False,
        **tokenizer.special_tokens_map,
    }
    concat, new_context, root = (
        template.environment.concat,
        template.new_context,
        template.root_render_func,
    )

    def render(conversation: list[dict[str, Any]]) -> str:
        return concat(root(new_context({**variables, "messages": conversation}, shared=True)))

    return render


@lru_cache(maxsize=8)
def fast_chat_template(source: str) -> Any | None:
    """The chat template compiled in transformers' own Jinja environment, with plain-dict
    globals and its ``{% generation %}`` blocks inline where that gives the same text.

    Inline is only taken when no call block's body assigns a name or reads ``caller``,
    ``loop``, ``varargs`` or ``kwargs`` (where a macro's scope could differ from the
    template's). None without transformers' compiled template (another version).
    """
    try:
        from transformers.utils.chat_template_utils import _compile_jinja_template

        environment = _compile_jinja_template(source).environment
        if inline_safe(environment.parse(source)):
            environment = environment.overlay(extensions=[InlineGeneration])
        template = environment.from_string(source)
    except Exception:  # another transformers version, or a template it does not take
        return None
    template.globals = dict(template.globals)
    return template


SCOPED_NAMES = frozenset({"caller", "loop", "varargs", "kwargs"})
SCOPED_NODES = (
    nodes.Assign,
    nodes.AssignBlock,
    nodes.Macro,
    nodes.CallBlock,
    nodes.FilterBlock,
    nodes.Import,
    nodes.FromImport,
    nodes.Include,
    nodes.Block,
    nodes.Extends,
)


def inline_safe(template: nodes.Template) -> bool:
    """Whether every call block's body renders the same in place as in its macro."""
    for block in template.find_all(nodes.CallBlock):
        for node in block.body:
            if isinstance(node, SCOPED_NODES) or any(True for _ in node.find_all(SCOPED_NODES)):
                return False
            names = [node, *node.find_all(nodes.Name)]
            if any(isinstance(n, nodes.Name) and n.name in SCOPED_NAMES for n in names):
                return False
    return True


BATCH_TEXTS = 8192
"""Texts sent to the tokenizer at once: a language of a corpus may have only a thousand, and
encoding short texts a thousand at a time took a fifth more CPU than 8,192 at a time (the Rust
tokenizer's set-up per call), so languages are pooled into batches of at least this many."""


def token_lengths(texts: list[str], tokenizer: Any, batch_size: int = BATCH_TEXTS) -> list[int]:
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


TOKENIZER_FIELD = "--tokenizer"
"""Where a build's tokenizer comes from (``data.tokenizer`` in a recipe)."""


class TokenCounter:
    """Counts the tokens of each language's examples on one background thread.

    Use it as a context manager: :meth:`add` each language's examples as they are rendered (the
    chat template is applied here, on the caller's thread; the encoding runs in the background,
    a batch at a time, see :data:`BATCH_TEXTS`), :meth:`flush` when the last are added, then
    :meth:`statistics` waits for the counts. Leaving the block early cancels what is queued.
    """

    def __init__(self, tokenizer_path: str, max_length: int) -> None:
        self.tokenizer_path = tokenizer_path
        self.max_length = max_length
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mslt-it-tokens")
        self._loading: Future[Any] = self._executor.submit(
            load_tokenizer, tokenizer_path, field=TOKENIZER_FIELD, check_template=False
        )
        self._tokenizer: Any = None
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

    @property
    def tokenizer(self) -> Any:
        """The tokenizer loaded in the background, its chat template checked here, in the main
        thread, where the render time limit holds."""
        if self._tokenizer is None:
            tokenizer = self._loading.result()
            check_tokenizer_template(tokenizer, TOKENIZER_FIELD)
            self._tokenizer = tokenizer
        return self._tokenizer

    def add(self, lang: str, examples: list[dict[str, Any]]) -> None:
        """Queue the examples of ``lang`` for counting (a language may be added in parts)."""
        texts = chat_texts(examples, self.tokenizer, TOKENIZER_FIELD)
        self._texts += texts
        self._langs.append((lang, len(texts)))
        if len(self._texts) >= BATCH_TEXTS:
            self.flush()

    def flush(self) -> None:
        """Send what was added to the tokenizer now (the builder calls it when rendering ends,
        so the last texts are counted while the dataset is written)."""
        if not self._texts:
            return
        future = self._executor.submit(token_lengths, self._texts, self.tokenizer)
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
