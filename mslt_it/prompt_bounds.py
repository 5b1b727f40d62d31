"""Bounded template rendering: a prompt template cannot make the sandbox work without end.

Jinja's sandbox stops attribute escapes, not arithmetic or loops: ``{{ 'x' * 10**10 }}``,
``{% for a in range(99999) %}{% for b in range(99999) %}…`` or a huge literal width would run
for hours or exhaust memory while building or evaluating. Three bounds, each a one-line error:

- arithmetic: ``*``, ``**`` and ``%`` are checked before they run (a sequence of more than
  :data:`MAX_CHARACTERS` items, a number beyond :data:`MAX_NUMBER`, a format width beyond it);
  integer literals beyond :data:`MAX_NUMBER` are refused when the template is compiled;
- size: the output is counted chunk by chunk as Jinja yields it, and stops past
  :data:`MAX_CHARACTERS`;
- time: one render may take :data:`RENDER_SECONDS` of wall time (a ``SIGALRM`` deadline, in the
  main thread; elsewhere only the size and arithmetic bounds apply).
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import threading
from collections.abc import Iterator
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_CHARACTERS = 1_000_000
"""Longest output (and longest string or list an expression may build) of one render."""

MAX_NUMBER = 10_000_000
"""Largest integer a template may write or compute (and largest format width)."""

RENDER_SECONDS = 5.0
"""Wall time one render may take."""


class RenderLimitError(jinja2.TemplateError):
    """A template exceeded a bound; the message says which and by how much."""


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with the arithmetic of :mod:`mslt_it.prompt_bounds` checked."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_format(left)
        result = super().call_binop(context, operator, left, right)
        _check_number(result)
        return result


def _check_repeat(sequence: Any, times: Any) -> None:
    repeatable = isinstance(sequence, str | list | tuple) and isinstance(times, int)
    if repeatable and len(sequence) * max(times, 0) > MAX_CHARACTERS:
        raise RenderLimitError(
            f"a repetition would build {len(sequence) * times:,} items (at most {MAX_CHARACTERS:,})"
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


WIDTH = re.compile(r"%[-+ #0]*(\d+)(?:\.(\d+))?")


def _check_format(text: str) -> None:
    for match in WIDTH.finditer(text):
        if any(g and int(g) > MAX_NUMBER for g in match.groups()):
            raise RenderLimitError(f"a format width in {match.group(0)[:20]!r} exceeds the limit")


def _check_number(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
        raise RenderLimitError(f"a computed number exceeds {MAX_NUMBER:,}")
    if isinstance(value, str | list | tuple) and len(value) > MAX_CHARACTERS:
        raise RenderLimitError(
            f"a computed value has {len(value):,} items (at most {MAX_CHARACTERS:,})"
        )


def check_literals(environment: jinja2.Environment, source: str) -> None:
    """Refuse integer literals beyond :data:`MAX_NUMBER` (``center(1000000000)``) at compile."""
    for const in environment.parse(source).find_all(nodes.Const):
        value = const.value
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
            raise RenderLimitError(
                f"the number {value} is larger than a template may use ({MAX_NUMBER:,})"
            )


class _Deadline:
    """A ``SIGALRM`` deadline for renders in the main thread; inert elsewhere."""

    active = False
    installed = False

    @classmethod
    def _on_alarm(cls, signum: int, frame: Any) -> None:
        if cls.active:
            cls.active = False
            raise RenderLimitError("rendering took longer than the limit (RENDER_SECONDS)")

    @classmethod
    def install(cls) -> bool:
        """Install the handler once, if this is the main thread and SIGALRM is unclaimed."""
        if threading.current_thread() is not threading.main_thread():
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


def bounded_render(template: jinja2.Template, variables: dict[str, Any]) -> str:
    """``template.render(variables)`` within the size and time bounds."""
    chunks: list[str] = []
    size = 0
    with deadline():
        for chunk in template.generate(variables):
            size += len(chunk)
            if size > MAX_CHARACTERS:
                raise RenderLimitError(f"the output exceeds {MAX_CHARACTERS:,} characters")
            chunks.append(chunk)
    return "".join(chunks)
