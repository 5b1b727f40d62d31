"""User-facing errors.

Anything a user can get wrong (a recipe, a language code, a template, a data file, a model output)
raises :class:`MsltError` with a one-line message that names the field, the bad value and what is
allowed. The CLI turns it into ``error: <message>`` and exit status 2, with no traceback; library
users catch it like any other exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator


class MsltError(ValueError):
    """A problem with the user's input, explained in one line."""


def allowed(values: Iterable[object], limit: int = 40) -> str:
    """Format the allowed values for an error message, shortened when there are many."""
    items = [str(v) for v in values]
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", … ({len(items)} in all)"


def clipped(value: object, limit: int = 40) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters with its closing quote
    kept and an ellipsis shown: ``{value!r:.40}`` cut a 100-digit score to
    ``'99999...`` with no end, which read as a value that was cut by the user."""
    text = repr(value)
    if len(text) <= limit:
        return text
    quote = text[0] if text[0] in "'\"" and text[-1] == text[0] else ""
    return text[: max(limit - 1 - len(quote), 1)] + "…" + quote


def joined_lines(error: BaseException, limit: int = 400) -> str:
    """An exception's whole message on one line, its lines joined (a list's ``- `` marks
    dropped), cut at ``limit``: for short multi-line messages whose first line alone stops
    mid-sentence (TRL's "… but found" + "- Evaluation strategy: no" + "- Save strategy: …")."""
    lines = [line.strip().removeprefix("- ") for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    joined = lines[0] + (": " if len(lines) > 1 and not lines[0].endswith(":") else " ")
    return (joined + "; ".join(lines[1:])).strip()[:limit]


def first_line(error: BaseException) -> str:
    """An exception's first line, or its type's name when it says nothing: a library's
    multi-line message (transformers, PEFT, datasets) cut to what fits a one-line error."""
    text = str(error).strip()
    if not text:
        return type(error).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0]
    if first.endswith(":") and len(lines) > 1:  # "Validation error for field 'x':" + the why
        return f"{first} {lines[1]}"
    return first


@contextlib.contextmanager
def field_named(field: str, generic: str) -> Iterator[None]:
    """Errors that name a shared helper's field (``split:``, ``data:``) name the caller's
    instead (``train.watch.0.split:``), so the user sees which entry of their file is wrong."""
    try:
        yield
    except MsltError as error:
        text = str(error)
        if not text.startswith(f"{generic}: "):
            raise
        raise MsltError(f"{field}: {text.removeprefix(f'{generic}: ')}") from None
