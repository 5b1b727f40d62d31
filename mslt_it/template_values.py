"""What a template's values may become: text only where it is the same in every run.

The same row and template must give the same bytes, since a dataset's fingerprint and an
evaluation's identity are made of them. Python's text for most objects is a memory address,
new in each run, so a template (and a task definition's expression) may call a method or
iterate a generator it reaches, never turn one into text, by any filter or operator
(:func:`textless`); what it prints is checked again when printed (:func:`printable`) and when
made (:func:`refuse_made_text`: a NUL or an object's text the inputs do not hold). Jinja's
``int`` and ``float`` read a number or refuse, where Jinja's own silently gave 0.

:mod:`mslt_it.prompt_bounds` builds the sandbox from these; its bounds raise the same
:class:`RenderLimitError`.
"""

from __future__ import annotations

import contextlib
import re
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jinja2
import jinja2.utils
from jinja2.utils import _PassArg

from mslt_it.errors import clipped


class RenderLimitError(jinja2.TemplateError):
    """A template or expression exceeded a bound; the message says which and by how much."""


_NO_DEFAULT: Any = object()


def strict_int(value: Any, default: Any = _NO_DEFAULT, base: int = 10) -> Any:
    """Jinja's ``int`` without its silent fallback: text or a number that is not a whole number
    (``'two'``, ``'2.9'``, ``1.9``, ``true``) would become 0, 2, 1 or 1: a gold index or a label
    nobody wrote. Given a default (``| int(-1)``), it behaves as Jinja's."""
    if default is not _NO_DEFAULT:
        return jinja2.filters.do_int(value, default, base)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():  # 2.0, as JSON numbers often are
        return int(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value.strip(), base)
    raise ValueError(
        f"int: {clipped(value, 40)} is not a whole number (give a default to accept it: | int(-1))"
    )


def strict_float(value: Any, default: Any = _NO_DEFAULT) -> Any:
    """Jinja's ``float`` without its silent fallback to 0.0 for text that is not a number."""
    if default is not _NO_DEFAULT:
        return jinja2.filters.do_float(value, default)
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value.strip())
    raise ValueError(
        f"float: {clipped(value, 40)} is not a number (give a default to accept it: | float(0))"
    )


PRINTABLE = (str, int, float, bool, type(None))
"""What a template may print: values whose text is the same in every run."""


OBJECT_AS_TEXT = (
    "it turns a Python object ({kind}) into text: its text is a memory address, new in each "
    "run (another prompt, another dataset fingerprint); call it (premise.upper()) or use text, "
    "numbers, lists or mappings"
)


def _refuse_text(kind: str) -> RenderLimitError:
    return RenderLimitError(OBJECT_AS_TEXT.format(kind=kind))


class NeverText:
    """An object a template may use but never turn into text: every way Jinja makes text
    (``~``, ``|string``, ``|upper``, ``'%s' %``, ``|join``, ``|pprint``…) asks the object for
    it, so refusing here closes them all, where a check of the finished text misses an address
    upper-cased or cut short."""

    __slots__ = ()

    def described(self) -> str:
        return _kind(self)

    def __str__(self) -> str:
        raise _refuse_text(self.described())

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        raise _refuse_text(self.described())


class TextlessCallable(NeverText):
    """A method or helper a template reached (``premise.upper``, ``loop.cycle``): it may be
    called, never turned into text."""

    __slots__ = ("wrapped",)

    def __init__(self, wrapped: Callable[..., Any]) -> None:
        self.wrapped = wrapped

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.wrapped(*args, **kwargs)

    def described(self) -> str:
        return _kind(self.wrapped)


class TextlessIterator(NeverText):
    """What ``map``, ``select``, ``reverse``… return (a generator, an iterator): it may be
    iterated (``| list``, ``| join``), never turned into text."""

    __slots__ = ("wrapped",)

    def __init__(self, wrapped: Iterator[Any]) -> None:
        self.wrapped = wrapped

    def __iter__(self) -> Iterator[Any]:
        return iter(self.wrapped)

    def __next__(self) -> Any:
        return next(self.wrapped)

    def described(self) -> str:
        return type(self.wrapped).__name__


class TextlessJoiner(NeverText, jinja2.utils.Joiner):
    """``joiner()``: called for its separator, never printed whole."""


class TextlessCycler(NeverText, jinja2.utils.Cycler):
    """``cycler(…)``: its items are text, the helper itself never."""


ITERATOR_FILTERS = (
    "map", "select", "reject", "selectattr", "rejectattr", "batch", "slice", "unique", "reverse",
    "items",
)  # fmt: skip
"""Filters that can return a generator or an iterator (whose text is an address)."""


_PASS_THROUGH = (*PRINTABLE, list, tuple, dict, type, jinja2.Undefined)


def _kind(value: Any) -> str:
    """How an error names an object: ``method upper``, ``joiner``, ``generator``."""
    name = getattr(value, "__name__", None)
    if isinstance(name, str):
        return f"method {name}"
    return type(value).__name__.removeprefix("Textless").lower()


def textless(value: Any) -> Any:
    """``value``, with a callable that is not a type (a type's text is its name) or an iterator
    wrapped so that it never becomes text."""
    if isinstance(value, _PASS_THROUGH):
        return value
    if isinstance(value, NeverText):
        return value
    if callable(value):
        return TextlessCallable(value)
    if isinstance(value, types.GeneratorType) or (
        hasattr(value, "__next__") and hasattr(value, "__iter__")
    ):
        return TextlessIterator(value)
    return value


def textless_filter(original: Callable[..., Any]) -> Callable[..., Any]:
    passes = _PassArg.from_obj(original)

    def textless_filter(*args: Any, **kwargs: Any) -> Any:
        return textless(original(*args, **kwargs))

    if passes is not None:
        textless_filter.jinja_pass_arg = passes  # type: ignore[attr-defined]
    textless_filter.__name__ = getattr(original, "__name__", "filter")
    textless_filter.__doc__ = original.__doc__
    return textless_filter


def printable(value: Any, depth: int = 0, undefined_fails: bool = False) -> Any:
    """``finalize`` of every ``{{ … }}``: a function, a helper or any other object printed
    bare shows its memory address (``<jinja2.utils.Joiner object at 0x7f…>``), so the same row
    and template would give other text in each run, and a dataset another fingerprint.
    ``undefined_fails``: an undefined value, also inside a list or a mapping, raises its error
    here (a definition's variable, checked where it is computed)."""
    if isinstance(value, PRINTABLE) or depth > 8:
        return value
    if isinstance(value, list | tuple):
        for item in value:
            printable(item, depth + 1, undefined_fails)
        return value
    if isinstance(value, dict):
        for key, item in value.items():
            printable(key, depth + 1, undefined_fails)
            printable(item, depth + 1, undefined_fails)
        return value
    if isinstance(value, jinja2.Undefined):
        if undefined_fails:
            value._fail_with_undefined_error()
        return value  # StrictEverywhere names it when printed
    kind = type(getattr(value, "wrapped", value)).__name__
    raise RenderLimitError(
        f"it prints a Python object ({kind}), not text: its text is Python's "
        "(for most objects a memory address, new in each run); print text, numbers, lists or "
        "mappings"
    )


def none_as_text(means: str | None = None) -> RenderLimitError:
    """The error for a none (a missing value) that would become the word ``None`` in a prompt:
    printed (``means`` None), or turned into text by ``means`` (``'~'``, a filter, a format)."""
    how = "prints none (a missing value)"
    if means is not None:
        how = f"turns none (a missing value) into text with {means}"
    return RenderLimitError(
        f"it {how}, which reaches the prompt as the word None; test it first ({{% if … %}}) "
        "or give text"
    )


def printed(value: Any) -> Any:
    """``finalize`` of every ``{{ … }}``: :func:`printable`, and not ``none``, which Jinja
    prints as the word ``None`` (a variable that is none on some rows, a missing value): the
    data reader refuses a null cell for the same reason. A none is still a value to test
    (``{% if context %}``) and to print inside a list; the sandbox refuses turning it into text
    in other ways too (:func:`refuse_none_formatted`, ``~`` and the text filters)."""
    if value is None:
        raise none_as_text()
    return printable(value)


NONE_TEXT_FILTERS = frozenset(
    {
        "capitalize", "center", "e", "escape", "forceescape", "indent", "lower", "pprint",
        "replace", "safe", "string", "striptags", "title", "trim", "truncate", "upper",
        "urlencode", "urlize", "wordcount", "wordwrap",
    }
)  # fmt: skip
"""Filters that turn the value they filter into its text (``soft_str``): none becomes None."""


def percent_keys(text: str) -> list[str]:
    """The mapping keys a ``%`` format names (``%(key)s``), read as Python reads them: an
    escaped ``%%`` names none, and a key may hold balanced parentheses (``%(b(x))s``)."""
    keys, at = [], 0
    while (at := text.find("%", at)) != -1:
        if text.startswith("%%", at):
            at += 2
            continue
        at += 1
        if not text.startswith("(", at):
            continue
        depth, start = 1, at + 1
        at = start
        while at < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[at], 0)
            at += 1
        if depth:  # unclosed: Python's own error says so
            break
        keys.append(text[start : at - 1])
    return keys


def refuse_none_formatted(text: str, arguments: Any, how: str) -> None:
    """A ``%`` format (``'%s' % x``, the ``format`` filter) given none for a field it prints.

    A mapping is checked only at the keys the format names: a row's other values may be none."""
    if isinstance(arguments, Mapping):
        # a key the mapping lacks is Python's KeyError to name, not a none
        values: Any = [arguments[key] for key in percent_keys(text) if key in arguments]
    else:
        values = arguments if isinstance(arguments, tuple) else (arguments,)
    if any(value is None for value in values):
        raise none_as_text(how)


def _texts_made(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """What else a text filter turns into text besides its value: ``replace``'s old and new
    texts, ``urlencode``'s keys and values (of a mapping or of pairs)."""
    if name == "replace":
        return [*args[1:3], kwargs.get("old", ""), kwargs.get("new", "")]
    if name == "urlencode" and isinstance(args[0], Mapping | list | tuple):  # not an iterator:
        pairs = args[0].items() if isinstance(args[0], Mapping) else args[0]  # read once
        with contextlib.suppress(TypeError, ValueError):  # not pairs: urlencode says so
            return [part for pair in pairs for part in pair]
    return []


def none_refusing_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` (a filter of :data:`NONE_TEXT_FILTERS`, or ``format``) refusing a none that
    it would turn into text."""
    passes = _PassArg.from_obj(original)
    how = f"'{name}'"

    def none_refusing_filter(*args: Any, **kwargs: Any) -> Any:
        first = 1 if passes is not None else 0
        if len(args) > first:
            made = _texts_made(name, args[first:], kwargs)
            if args[first] is None or any(part is None for part in made):
                raise none_as_text(how)
            if name == "format":
                refuse_none_formatted(str(args[first]), kwargs or args[first + 1 :], how)
        return original(*args, **kwargs)

    if passes is not None:
        none_refusing_filter.jinja_pass_arg = passes  # type: ignore[attr-defined]
    none_refusing_filter.refuses_none_of = original  # type: ignore[attr-defined]
    none_refusing_filter.__name__ = getattr(original, "__name__", name)
    none_refusing_filter.__doc__ = original.__doc__
    return none_refusing_filter


# ----------------------------------------------------------------------------- what is made

NUL_MADE = "it made a NUL character the data does not hold; no prompt text holds one"


def holds_nul(value: Any) -> bool:
    """Whether a text anywhere in ``value`` (a row: texts, numbers, lists, mappings) holds a NUL."""
    return any("\0" in text for text in texts_in(value))


def refuse_made_nul(result: Any, inputs: Any) -> None:
    """A NUL in what a template or expression made, where its inputs hold none, was written by
    the template (``'%c' % 0``, ``'{:c}'.format(0)``): refuse it. The YAML loaders refuse a NUL
    typed into a file and :func:`check_literals` an escaped one; a NUL in the data itself is the
    data's and passes through, as any other character of it."""
    if holds_nul(result) and not holds_nul(inputs):
        raise RenderLimitError(NUL_MADE)


OBJECT_TEXT = re.compile(r"<[^<>\n]{1,300} at 0x[0-9a-fA-F]{4,}>")
"""Python's text for an object without its own (``<built-in method upper of str object at
0x7f…>``, ``<generator object … at 0x7f…>``): a memory address, new in each run."""


def texts_in(value: Any, depth: int = 0) -> Iterator[str]:
    """Every text anywhere in ``value`` (a row: texts, numbers, lists, mappings)."""
    if isinstance(value, str):
        yield value
    elif depth <= 8 and isinstance(value, Mapping):
        for item in value.values():
            yield from texts_in(item, depth + 1)
    elif depth <= 8 and isinstance(value, list | tuple):
        for item in value:
            yield from texts_in(item, depth + 1)


def refuse_made_object_text(result: Any, inputs: Any) -> None:
    """An object's Python text in what a template or expression made, which its inputs do not
    hold, was made by the template turning an object into text before printing it
    (``premise.upper ~ ''``, ``|string``, ``'%s' %``, ``|join``, ``|pprint``): :func:`printable`
    only sees what is printed. Its address differs in each run, so the same row and template
    would give another text, and a dataset another fingerprint. Text of that form in the data
    itself (a row quoting Python's output) is the data's and passes through."""
    made = [text for text in texts_in(result) if " at 0x" in text]
    if not made:
        return
    given = [text for text in texts_in(inputs) if " at 0x" in text]
    for text in made:
        for found in OBJECT_TEXT.finditer(text):
            if not any(found.group() in source for source in given):
                raise RenderLimitError(
                    f"it made the text of a Python object ({found.group()[:60]!r}): an address "
                    "that is new in each run; call the method (premise.upper()) or print text, "
                    "numbers, lists or mappings"
                )


def refuse_made_text(result: Any, inputs: Any) -> None:
    """What a template or expression made holds no NUL and no object's text that its inputs do
    not hold (:func:`refuse_made_nul`, :func:`refuse_made_object_text`). A rendered prompt
    (a text, or an instruction and an answer) holding neither is passed at once: this runs for
    every example a build renders."""
    texts = (result,) if type(result) is str else result
    if type(texts) is tuple and all(
        type(text) is str and "\0" not in text and " at 0x" not in text for text in texts
    ):
        return
    refuse_made_nul(result, inputs)
    refuse_made_object_text(result, inputs)
