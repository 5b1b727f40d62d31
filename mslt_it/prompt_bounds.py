"""Bounded Jinja: one sandbox for every user expression, templates and definitions alike.

Jinja's sandbox stops attribute escapes, not arithmetic, loops or amplifying filters:
``{{ 'x' * 10**10 }}``, ``{{ 'x' | center(10**9) }}``, ``{{ (s ~ s) | indent(s | length) }}`` or
``{% for … %}{% set ns.x = ns.x ~ ns.x %}`` would run for hours or exhaust memory while building
or evaluating. A prompt template and a task definition's expressions (``choices``, ``gold``,
``variables``, an instruction corpus's ``prompt``…) are both user code, so both go through
:data:`ENVIRONMENT` and :func:`bounded`, with the same bounds and the same one-line error:

- arithmetic: ``*``, ``**``, ``%`` and ``+`` are checked before they run (a sequence of more than
  :data:`MAX_CHARACTERS` items, a number beyond :data:`MAX_NUMBER`, a format width beyond it);
  integer literals beyond :data:`MAX_NUMBER` are refused when the source is compiled;
- amplifiers: every filter and string method whose output can outgrow its input (``center``,
  ``indent``, ``wordwrap``, ``join``, ``replace``, ``format``, ``str.ljust``, ``str.format``…)
  and ``~`` check the size of what they would build *before* building it;
- work: inside :func:`bounded`, the characters those operations build add up, and one
  evaluation may build at most :data:`MAX_WORK` (``map`` or a loop repeating an allowed step);
- size: a render's output is counted chunk by chunk, an expression's value when it is done;
- time: one evaluation may take :data:`RENDER_SECONDS` of wall time (a ``SIGALRM`` deadline, in
  the main thread; elsewhere the other bounds still apply);
- memory: a ``MemoryError`` or ``RecursionError`` is named, never an empty reason;
- values: an object reached (a method, a generator) may be called or iterated, never become
  text, and ``int``/``float`` read a number or refuse (:mod:`mslt_it.template_values`); a set
  (``row.keys() - ['id']``) is sorted, as its own order changes from process to process.
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import string
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.filters import make_attrgetter
from jinja2.parser import Parser
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import Namespace, _PassArg

from mslt_it.template_values import (
    ITERATOR_FILTERS,
    NONE_TEXT_FILTERS,
    RenderLimitError,
    TextlessCallable,
    TextlessCycler,
    TextlessJoiner,
    none_as_text,
    none_refusing_filter,
    printed,
    refuse_none_formatted,
    strict_float,
    strict_int,
    textless,
    textless_filter,
)

MAX_CHARACTERS = 1_000_000
"""Longest output (and longest string or list an expression may build) of one evaluation."""

MAX_NUMBER = 10_000_000
"""Largest integer a template may write or compute (and largest format width)."""

MAX_WORK = 50 * MAX_CHARACTERS
"""Characters (or items) that the checked operations of one evaluation may build in all."""

MAX_INDENT = 64
"""Widest ``tojson`` indent: a width multiplied by every line of a nested value."""

RENDER_SECONDS = 5.0
"""Wall time one render or expression evaluation may take."""


# ------------------------------------------------------------------------------------- work


class _Work:
    """Characters built so far by the checked operations of the current bounded evaluation.

    Only counted inside :func:`bounded` (outside it each operation is still checked alone).
    """

    active = False
    spent = 0

    @classmethod
    def spend(cls, size: int, what: str) -> None:
        if size > MAX_CHARACTERS:
            raise RenderLimitError(
                f"{what} would build {size:,} characters or items (at most {MAX_CHARACTERS:,})"
            )
        if cls.active:
            cls.spent += size
            if cls.spent > MAX_WORK:
                raise RenderLimitError(
                    f"the evaluation built more than {MAX_WORK:,} characters or items in all "
                    f"(the last by {what})"
                )


def _size(value: Any) -> int:
    """The size a check counts: the length of a text or sequence, else of its text."""
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        return len(value)
    return 0


def _text_size(value: Any, limit: int = MAX_CHARACTERS) -> int:
    """``len(str(value))`` (or of its JSON) without building a huge text for a huge container."""
    if isinstance(value, str):
        return len(value)
    return _weight(value, limit)


_CONTAINERS = (list, tuple, dict, set, frozenset, Namespace)


def _weight(value: Any, limit: int = MAX_CHARACTERS) -> int:
    """About how many characters ``value`` becomes as text (``str``, ``tojson``, ``pprint``),
    counted without building it; at most ``limit + 1``.

    Containers are walked with every shared member counted at each of its places, as the text
    repeats it: ``{% set ns.a = [ns.a, ns.a] %}`` forty times is a tiny structure whose text has
    2**40 parts. Each distinct container is measured once (memoised), so the walk is linear in
    the structure, not in its text; a container inside itself counts as ``[...]``.
    """
    if isinstance(value, str | bytes):
        return len(value)
    if not isinstance(value, _CONTAINERS):
        return 0 if value is None else 8  # a number, a Markup-free object: short as text
    known: dict[int, int] = {}
    return min(_container_weight(value, known, limit), limit + 1)


def _container_weight(value: Any, known: dict[int, int], limit: int) -> int:
    key = id(value)
    if key in known:
        return known[key]
    known[key] = 5  # while being measured: a cycle prints as [...]
    if isinstance(value, Namespace):
        attributes = object.__getattribute__(value, "_Namespace__attrs")  # its own lookup hides it
        total = 12 + _container_weight(attributes, known, limit)
    else:
        total = 2
        for item in _members(value):
            if isinstance(item, _CONTAINERS):
                total += _container_weight(item, known, limit) + 2
            else:
                total += (len(item) if isinstance(item, str | bytes) else 6) + 4
            if total > limit:
                break
    known[key] = min(total, limit + 1)
    return known[key]


def _members(value: Any) -> Iterator[Any]:
    """A container's keys and values (a mapping) or items, as its text shows them."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield item
    else:
        yield from value


def _check_weight(value: Any, what: str) -> None:
    """A value an operation returned must be small enough to become text (:func:`_weight`)."""
    if isinstance(value, _CONTAINERS) and _weight(value) > MAX_CHARACTERS:
        raise RenderLimitError(
            f"{what} built a value of more than {MAX_CHARACTERS:,} characters as text"
        )


def _width(value: Any, what: str, limit: int = MAX_CHARACTERS) -> None:
    """A width, count or padding argument: an integer no larger than ``limit``."""
    if isinstance(value, int) and not isinstance(value, bool) and value > limit:
        raise RenderLimitError(f"{what}: the width {value:,} exceeds {limit:,}")


# ----------------------------------------------------------------------------- arithmetic


def _check_repeat(sequence: Any, times: Any) -> None:
    repeatable = isinstance(sequence, str | list | tuple) and isinstance(times, int)
    if not repeatable:
        return
    if len(sequence) * max(times, 0) > MAX_CHARACTERS:
        raise RenderLimitError(
            f"a repetition would build {len(sequence) * times:,} items (at most {MAX_CHARACTERS:,})"
        )
    if _text_size(sequence) * max(times, 0) > MAX_CHARACTERS:  # few items, each a long text
        raise RenderLimitError(
            f"a repetition would build more than {MAX_CHARACTERS:,} characters as text"
        )


def _check_power(base: Any, exponent: Any) -> None:
    numbers = isinstance(base, int | float) and isinstance(exponent, int | float)
    if (
        numbers
        and abs(base) > 1
        and exponent > 0
        and exponent * math.log10(abs(base)) > math.log10(MAX_NUMBER)
    ):
        raise RenderLimitError(f"{base} ** {exponent} exceeds {MAX_NUMBER:,}")


WIDTH = re.compile(r"%[-+ #0]*(\d+|\*)?(?:\.(\d+|\*))?")


def _check_format(text: str, arguments: Any = ()) -> None:
    """A ``%`` format: literal widths no larger than :data:`MAX_NUMBER`, ``*`` widths taken from
    the arguments likewise, and the arguments' text no longer than :data:`MAX_CHARACTERS`."""
    star = False
    for match in WIDTH.finditer(text):
        for group in match.groups():
            if group == "*":
                star = True
            elif group and int(group) > MAX_NUMBER:
                raise RenderLimitError(
                    f"a format width in {match.group(0)[:20]!r} exceeds the limit"
                )
    values = arguments if isinstance(arguments, tuple) else (arguments,)
    if isinstance(arguments, dict):
        values = tuple(arguments.values())
    if star:
        for value in values:
            _width(value, "a '*' format width", MAX_NUMBER)
    total = len(text)
    for value in values:
        total += _text_size(value)
        if total > MAX_CHARACTERS:
            break
    _Work.spend(total, "a '%' format")


def _check_number(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
        raise RenderLimitError(f"a computed number exceeds {MAX_NUMBER:,}")
    if isinstance(value, str | list | tuple) and len(value) > MAX_CHARACTERS:
        raise RenderLimitError(
            f"a computed value has {len(value):,} items (at most {MAX_CHARACTERS:,})"
        )


def in_fixed_order(items: set[Any] | frozenset[Any]) -> list[Any]:
    """A set (``row.keys() - ['id']``) as a sorted list: a set of text iterates in another order
    in each process (hash randomisation), so the same row and template gave other prompts and
    another fingerprint from run to run."""
    try:
        return sorted(items)
    except TypeError:  # mixed kinds (1 and 'a'): ordered by their text, still the same each run
        return sorted(items, key=lambda item: (type(item).__name__, repr(item)))


# -------------------------------------------------------------------------------- filters


def _lines(text: str) -> int:
    return text.count("\n") + 1


def _center(value: Any, width: Any = 80, *args: Any, **kwargs: Any) -> None:
    _width(width, "center")


def _indent(value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> None:
    text = str(value)
    pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    _width(pad, "indent")
    _Work.spend(len(text) + _lines(text) * max(pad, 0), "indent")


def _wordwrap(
    value: Any,
    width: Any = 79,
    break_long_words: Any = True,
    wrapstring: Any = None,
    *args: Any,
    **kwargs: Any,
) -> None:
    text = str(value)
    wrap = kwargs.get("wrapstring", wrapstring)
    width = kwargs.get("width", width)
    if isinstance(width, int) and not isinstance(width, bool) and width > 0:
        blanks = sum(text.count(c) for c in " \t\n")
        lines = min(len(text), len(text) // width + blanks) + 1
        _Work.spend(len(text) + lines * len(str(wrap) if wrap is not None else "\n"), "wordwrap")


def _format(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_format(str(value), kwargs or args)


def _replace(value: Any, old: Any = "", new: Any = "", count: Any = None, **kwargs: Any) -> None:
    text, old, new = str(value), str(old), str(new)
    times = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    _Work.spend(len(text) + times * max(len(new) - len(old), 0), "replace")


def _batch(value: Any, linecount: Any = 1, *args: Any, **kwargs: Any) -> None:
    _width(linecount, "batch")


def _slice(value: Any, slices: Any = 1, *args: Any, **kwargs: Any) -> None:
    _width(slices, "slice")
    if isinstance(slices, int):
        _Work.spend(max(slices, 0), "slice")


def _tojson(value: Any, indent: Any = None, *args: Any, **kwargs: Any) -> None:
    indent = kwargs.get("indent", indent)
    pad = len(indent) if isinstance(indent, str) else indent if isinstance(indent, int) else 0
    if pad > MAX_INDENT:
        raise RenderLimitError(f"tojson: the indent {pad:,} exceeds {MAX_INDENT}")


def _joined_size(items: Sequence[Any], separator: str, what: str) -> None:
    total = len(separator) * max(len(items) - 1, 0)
    for item in items:
        total += _text_size(item)
        if total > MAX_CHARACTERS:
            break
    _Work.spend(total, what)


def _materialized(value: Any) -> Any:
    """An iterable a check must read twice (itself, then the filter): a list, if it is not one.

    Strings, lists, tuples and mappings are kept (their filters treat them as they are)."""
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        return value
    items = []
    for item in value:
        items.append(item)
        if len(items) > MAX_CHARACTERS:
            raise RenderLimitError(f"a sequence has more than {MAX_CHARACTERS:,} items")
    return items


Precheck = Callable[..., None]

_PRECHECKS: dict[str, Precheck] = {
    "center": _center,
    "indent": _indent,
    "wordwrap": _wordwrap,
    "format": _format,
    "replace": _replace,
    "batch": _batch,
    "slice": _slice,
    "tojson": _tojson,
}
"""Filters whose output can outgrow their input, each with the check of its arguments."""

_COUNTED = ("truncate", "join", "sum", "list", "unique", "map", "urlize", "escape", "e", "string")
"""Filters whose result is counted (and size-checked) after they run."""


def bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` with its precheck before and its result's size counted after."""
    passes = _PassArg.from_obj(original)
    precheck = _PRECHECKS.get(name)

    def bounded_filter(*args: Any, **kwargs: Any) -> Any:
        first = 1 if passes is not None else 0
        if len(args) > first and name in ("join", "sum"):
            args = _prepared_join_or_sum(name, args, first, kwargs)
        if precheck is not None and len(args) > first:
            precheck(*args[first:], **kwargs)
        result = original(*args, **kwargs)
        _Work.spend(_size(result), name)
        _check_weight(result, name)
        return result

    if passes is not None:
        bounded_filter.jinja_pass_arg = passes  # type: ignore[attr-defined]
    bounded_filter.__name__ = getattr(original, "__name__", name)
    bounded_filter.__doc__ = original.__doc__
    return bounded_filter


def _prepared_join_or_sum(
    name: str, args: tuple[Any, ...], first: int, kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """Materialize ``join``'s or ``sum``'s items, check what they would build, pass them on."""
    items = _materialized(args[first])
    rest = list(args[first + 1 :])
    attribute = kwargs.get("attribute", rest[1] if len(rest) > 1 else None)
    values = items
    environment = getattr(args[0], "environment", args[0]) if first else ENVIRONMENT
    if attribute is not None and not isinstance(items, str):
        getter = make_attrgetter(environment, attribute)
        values = [getter(item) for item in items]
    if name == "join":
        separator = kwargs.get("d", rest[0] if rest else "")
        refusing = getattr(environment, "refuse_none", False)
        if refusing and (separator is None or any(v is None for v in values)):
            raise none_as_text("'join'")
        _joined_size(list(values) if not isinstance(values, list) else values, str(separator), name)
    else:
        start = kwargs.get("start", rest[2] if len(rest) > 2 else 0)
        if isinstance(start, str | list | tuple):
            total = len(start) + sum(_size(v) for v in values)
            _Work.spend(total, "sum")
    return (*args[:first], items, *args[first + 1 :])


# ------------------------------------------------------------------------------ str methods


def _check_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """A ``str``/``bytes`` method that can amplify: check what it would build."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str | bytes) or not isinstance(method, types.BuiltinMethodType):
        return
    name = method.__name__
    what = f"str.{name}"
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _width(args[0], what)
    elif name == "expandtabs":
        tab = kwargs.get("tabsize", args[0] if args else 8)
        if isinstance(tab, int):
            _Work.spend(len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * tab,
                        what)  # fmt: skip
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, str | bytes) and isinstance(new, str | bytes):
            times = owner.count(old) if old else len(owner) + 1  # type: ignore[arg-type]
            _Work.spend(len(owner) + times * max(len(new) - len(old), 0), what)
    elif name == "join" and args:
        items = args[0]
        if isinstance(items, list | tuple | str):
            _joined_size(items, str(owner), what)  # type: ignore[arg-type]
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((_text_size(v) for v in args[0].values()), default=1)
        _Work.spend(len(owner) * max(longest, 1), what)


class BoundedFormatter(SandboxedFormatter):
    """``str.format`` in the sandbox, with each field's width and the whole result bounded."""

    def __init__(self, env: jinja2.Environment) -> None:
        super().__init__(env)
        self._built = 0

    def _refuse_none(self, value: Any) -> None:
        if value is None and getattr(self._env, "refuse_none", False):
            raise none_as_text("str.format")

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        """``{!r}``, ``{!s}``, ``{!a}``: the text is made here, before :meth:`format_field`."""
        if conversion is not None:
            self._refuse_none(value)
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        self._refuse_none(value)
        for number in re.findall(r"\d+", format_spec):
            _width(int(number), "str.format")
        result = super().format_field(value, format_spec)
        self._built += len(result)
        _Work.spend(self._built, "str.format")
        return result


# ---------------------------------------------------------------------------------- sandbox


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator with ``~`` (concatenation) checked before it joins, and every
    list, tuple and mapping a template writes checked as it is built (:func:`_weight`): nesting
    a value in itself doubles its text each time without any operation that builds text."""

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._checked(super().visit_List, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":  # an assignment target: ``{% for a, b in … %}``
            super().visit_Tuple(node, frame)
            return
        self._checked(super().visit_Tuple, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._checked(super().visit_Dict, node, frame)

    def _checked(self, visit: Callable[[Any, Frame], None], node: nodes.Node, frame: Frame) -> None:
        self.write("environment.checked_literal(")
        visit(node, frame)
        self.write(")")

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            markup = "context.eval_ctx.volatile"
        else:
            markup = "True" if frame.eval_ctx.autoescape else "False"
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(f"), {markup})")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with arithmetic, amplifying filters, string methods and ``~``
    checked (see the module's docstring).

    ``refuse_none``: a none never becomes text, by ``~``, ``%``, ``str.format`` or a filter
    (``string``, ``join``, ``upper``…), as it may not be printed (``finalize=printed``): prompt
    templates and task definitions. A model's chat template is checked without it
    (:mod:`mslt_it.chat_bounds`): transformers renders those, where ``bos_token ~ …`` with no
    such token is the template's own business."""

    intercepted_binops = frozenset({"*", "**", "%", "+", "-"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self, *args: Any, refuse_none: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refuse_none = refuse_none
        for name in (*_PRECHECKS, *_COUNTED):
            if name in self.filters:
                self.filters[name] = bounded_filter(name, self.filters[name])
        if refuse_none:
            for name in (*NONE_TEXT_FILTERS, "format"):
                if name in self.filters:
                    self.filters[name] = none_refusing_filter(name, self.filters[name])
        # Chance has no place in a prompt: the same row and template must give the same bytes
        # (a dataset's fingerprint, an evaluation's identity). `lipsum` printed bare also
        # showed a memory address.
        self.filters.pop("random", None)
        self.globals.pop("lipsum", None)
        # A row's "banana" read as gold index 0, its "2.9" as 2: a number is read or refused
        self.filters["int"] = strict_int
        self.filters["float"] = strict_float
        # Objects whose text is a memory address never become text (see TextlessCallable)
        for name in ITERATOR_FILTERS:
            if name in self.filters:
                self.filters[name] = textless_filter(self.filters[name])
        self.globals["joiner"] = TextlessJoiner
        self.globals["cycler"] = TextlessCycler

    def getattr(self, obj: Any, attribute: str) -> Any:
        return textless(super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        return textless(super().getitem(obj, argument))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            if self.refuse_none:
                refuse_none_formatted(left, right, "'%'")
            _check_format(left, right)
        elif operator == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                _Work.spend(len(left) + len(right), "'+'")
                if _text_size(left) + _text_size(right) > MAX_CHARACTERS:
                    raise RenderLimitError(
                        f"'+' would build more than {MAX_CHARACTERS:,} characters as text"
                    )
            return left + right
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, set | frozenset):
            result = in_fixed_order(result)
        _check_number(result)
        if operator != "**":
            _Work.spend(_size(result), f"'{operator}'")
            _check_weight(result, f"'{operator}'")
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(__obj, TextlessCallable):
            __obj = __obj.wrapped  # the method itself: the sandbox's checks see what they know
        _check_method(__obj, args, kwargs)
        result = textless(super().call(__context, __obj, *args, **kwargs))
        _Work.spend(_size(result), "a call")
        _check_weight(result, "a call")
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` / ``format_map`` through :class:`BoundedFormatter`."""
        wrapped = super().wrap_str_format(value)
        owner = getattr(value, "__self__", None)
        if wrapped is None or type(owner) is not str:
            return wrapped
        is_format_map = value.__name__ == "format_map"

        def bounded_format(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one mapping argument")
                kwargs, args = args[0], ()
            return BoundedFormatter(self).vformat(owner, args, kwargs)

        return bounded_format

    def checked_literal(self, value: Any) -> Any:
        """A list, tuple or mapping the template wrote, refused if too long as text."""
        _check_weight(value, "a literal")
        return value

    def bounded_concat(self, parts: tuple[Any, ...], markup: bool = False) -> str:
        """``a ~ b ~ …``: the joined text's size checked before it is built (and no none in
        it, with ``refuse_none``)."""
        if self.refuse_none and any(part is None for part in parts):
            raise none_as_text("'~'")
        _joined_size(parts, "", "'~'")
        return markup_join(parts) if markup else str_join(parts)


class StrictEverywhere(jinja2.StrictUndefined):
    """An undefined name fails wherever it is used, also printed inside a list or a mapping
    (their text is each item's ``repr``, which :class:`jinja2.StrictUndefined` lets through as
    ``Undefined``): a misspelt name is an error, never text."""

    __repr__ = jinja2.StrictUndefined._fail_with_undefined_error


ENVIRONMENT = BoundedSandbox(
    undefined=StrictEverywhere,
    autoescape=False,
    keep_trailing_newline=False,
    finalize=printed,
    refuse_none=True,
)
"""The one environment every user template and expression is compiled in."""


# --------------------------------------------------------------------------------- literals

NUL_LITERAL = "a string literal holds a NUL character ('\\x00'); no prompt text holds one"


def _check_constants(tree: nodes.Node) -> None:
    for const in tree.find_all(nodes.Const):
        value = const.value
        if isinstance(value, str) and "\0" in value:
            raise RenderLimitError(NUL_LITERAL)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
            raise RenderLimitError(
                f"the number {value} is larger than a template may use ({MAX_NUMBER:,})"
            )


def check_literals(environment: jinja2.Environment, source: str) -> None:
    """Refuse integer literals beyond :data:`MAX_NUMBER` (``center(1000000000)``) at compile."""
    _check_constants(environment.parse(source))


def check_expression_literals(environment: jinja2.Environment, source: str) -> None:
    """:func:`check_literals` for an expression (parsed as one, as ``compile_expression`` does)."""
    parser = Parser(environment, source, state="variable")
    _check_constants(parser.parse_expression())


# ------------------------------------------------------------------------------------ time


class _Deadline:
    """A ``SIGALRM`` deadline for renders in the main thread; inert elsewhere."""

    active = False
    installed = False

    @classmethod
    def _on_alarm(cls, signum: int, frame: Any) -> None:
        if cls.active:
            cls.active = False
            raise RenderLimitError(
                f"the evaluation took longer than the limit ({RENDER_SECONDS:g} seconds)"
            )

    @classmethod
    def install(cls) -> bool:
        """Install the handler once, if this is the main thread and SIGALRM is unclaimed."""
        if threading.get_ident() != threading.main_thread().ident:
            return False
        if not cls.installed:
            if signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None):
                return False  # someone else uses SIGALRM: do not take it from them
            signal.signal(signal.SIGALRM, cls._on_alarm)
            cls.installed = True
        return True


@contextlib.contextmanager
def deadline(seconds: float | None = None) -> Iterator[None]:
    """Raise :class:`RenderLimitError` in the block after ``seconds`` (main thread only)."""
    if _Deadline.active or not _Deadline.install():
        yield
        return
    seconds = RENDER_SECONDS if seconds is None else seconds
    _Deadline.active = True
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _Deadline.active = False


class bounded:
    """Every bound for the block: time, work, and a named reason for running out of memory.

    Nested uses share the outer one's deadline and work count. A class rather than a generator
    context manager: definitions evaluate expressions per row, and this halves the overhead.
    """

    __slots__ = ("_outer", "_seconds", "_timed")

    def __init__(self, seconds: float | None = None) -> None:
        self._seconds = seconds
        self._outer = False
        self._timed = False

    def __enter__(self) -> None:
        self._outer = _Work.active
        if not self._outer:
            _Work.active, _Work.spent = True, 0
        if not _Deadline.active and _Deadline.install():
            _Deadline.active = self._timed = True
            seconds = RENDER_SECONDS if self._seconds is None else self._seconds
            signal.setitimer(signal.ITIMER_REAL, seconds)

    def __exit__(self, kind: type[BaseException] | None, error: Any, trace: Any) -> None:
        if self._timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            _Deadline.active = False
        if not self._outer:
            _Work.active = False
        if kind is not None and issubclass(kind, MemoryError):
            raise RenderLimitError("ran out of memory (MemoryError)") from None
        if kind is not None and issubclass(kind, RecursionError):
            raise RenderLimitError("too deeply nested (RecursionError)") from None


def describe(error: BaseException) -> str:
    """A one-line reason for an error raised by user code: never empty, never several lines."""
    if isinstance(error, MemoryError):
        return "ran out of memory (MemoryError)"
    if isinstance(error, RecursionError):
        return "too deeply nested (RecursionError)"
    text = " ".join(str(error).split())
    if not text:
        return type(error).__name__
    if isinstance(error, KeyError):  # its text is the key alone: "'a'" said nothing
        text = f"no key {text} (KeyError)"
    return text if len(text) <= 300 else text[:297] + "…"


# ------------------------------------------------------------------------------ evaluation


def bounded_render(template: jinja2.Template, variables: dict[str, Any]) -> str:
    """``template.render(variables)`` within every bound; the output is counted as it comes."""
    chunks: list[str] = []
    size = 0
    with bounded():
        for chunk in template.generate(variables):
            size += len(chunk)
            if size > MAX_CHARACTERS:
                raise RenderLimitError(f"the output exceeds {MAX_CHARACTERS:,} characters")
            chunks.append(chunk)
    return "".join(chunks)


def compile_bounded_expression(source: str) -> Callable[..., Any]:
    """A user expression compiled in :data:`ENVIRONMENT`, evaluated within every bound.

    Raises ``jinja2.TemplateSyntaxError`` or :class:`RenderLimitError` for a bad source; the
    returned function raises what the expression raises, or :class:`RenderLimitError`.
    """
    check_expression_literals(ENVIRONMENT, source)
    expression = ENVIRONMENT.compile_expression(source, undefined_to_none=False)

    def evaluate(**variables: Any) -> Any:
        with bounded():
            return expression(**variables)

    return evaluate


def format_fields(text: str) -> list[tuple[str | None, str | None, str | None]]:
    """``(field, spec, conversion)`` of each ``{…}`` of a ``str.format`` string (``ValueError``
    for a malformed one)."""
    return [(f, s, c) for _, f, s, c in string.Formatter().parse(text) if f is not None]
