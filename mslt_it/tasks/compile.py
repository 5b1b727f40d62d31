"""A definition's Jinja expressions compiled into one function from a row to its variables.

A leaf of the task layer: :mod:`mslt_it.tasks.definitions` and the kinds' own modules
(:mod:`mslt_it.tasks.instructions`) compile through it, and it imports neither.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from mslt_it.errors import MsltError, clipped
from mslt_it.prompt_bounds import ENVIRONMENT, compile_bounded_expression, describe
from mslt_it.tasks.base import Row
from mslt_it.tasks.expressions import NotPlain, plain_expression
from mslt_it.template_values import RenderLimitError, printable, refuse_made_text

PLAIN_COLUMN = re.compile(r"^\s*row\.([A-Za-z_][A-Za-z0-9_]*)\s*$")


class LimitError(MsltError):
    """An expression exceeded a bound of :mod:`mslt_it.prompt_bounds`: the expression's fault
    whatever row it ran on."""


def compile_variables(
    spec: dict[str, str], where: str, fields: dict[str, str] | None = None
) -> Callable[[Row], dict[str, Any]]:
    """One function from a row to the definition's variables.

    ``row.<column>`` is read directly (most variables are, and the builder renders every row);
    anything else is a Jinja expression compiled once in the bounded sandbox. A simple text one
    (columns glued, trimmed, chosen by a condition) is evaluated in plain Python instead
    (:mod:`mslt_it.tasks.expressions`): Jinja's result at a fraction of its per-row cost, with
    Jinja still evaluating any row the plain form does not cover. ``fields`` names each
    variable's place in the definition for error messages (default ``variables.<name>``).
    """
    fields = fields or {}
    plain: dict[str, str] = {}
    compiled: dict[str, tuple[Callable[[Row], str] | None, Callable[..., Any]]] = {}
    for name, expression in spec.items():
        match = PLAIN_COLUMN.match(expression)
        if match and hasattr(dict, match.group(1)):  # Jinja reads the attribute first
            column = match.group(1)
            raise MsltError(
                f"{where}: {fields.get(name, f'variables.{name}')}: row.{column} is the row's "
                f"method {column}, not a column; a column named {column} is row['{column}']"
            )
        if match:
            plain[name] = match.group(1)
            continue
        try:
            jinja = compile_bounded_expression(expression)
        except Exception as error:  # jinja2's TemplateSyntaxError and the bounds' errors
            place = fields.get(name, f"variables.{name}")
            raise MsltError(f"{where}: {place}: {describe(error)}") from None
        compiled[name] = (plain_expression(ENVIRONMENT, expression), jinja)

    def variables(row: Row) -> dict[str, Any]:
        values = {name: row[column] for name, column in plain.items()}
        for name, (python, jinja) in compiled.items():
            if python is not None:
                try:
                    values[name] = python(row)
                    continue
                except NotPlain:
                    pass
            try:
                values[name] = jinja(row=row)
                check_value(values[name])
                refuse_made_text(values[name], row)
            except Exception as error:  # the bounds, a type error on this row's data, …
                place = fields.get(name, f"variables.{name}")
                kind = LimitError if isinstance(error, RenderLimitError) else MsltError
                raise kind(f"{where}: {place}{on_row(row)}: {describe(error)}") from None
        return values

    return variables


def on_row(row: Row) -> str:
    """`` on row <id>`` for a data row (whose id the builder gave it), else nothing (a
    definition's example): a bound broken by one row of thousands is found by its id."""
    identifier = row.get("id")
    return f" on row {clipped(identifier, 80)}" if isinstance(identifier, str) else ""


def check_value(value: Any) -> None:
    """A variable is a value a template prints or reads, checked where it is computed: an
    attribute the sandbox refuses (``row.claim.__class__``) or a missing one is an undefined
    value, and a method (``row.claim.upper``) an object, each failing only when a template
    printed it, where the error named the template instead of the definition, and never
    where no template used the variable. Undefined values inside a list or a mapping too."""
    printable(value, undefined_fails=True)


REMEMBERED_ROWS = 8192
"""Rows whose computed values :func:`remember_rows` keeps: more than the builder takes at once."""


def remember_rows(compute: Callable[[Row], dict[str, Any]]) -> Callable[[Row], dict[str, Any]]:
    """``compute`` with its last rows' values kept, by the row's identity.

    A row's choices or turns are read by its check, by every rendering of the row (one per
    choice in rank mode) and by its gold label; each Jinja evaluation costs tens of
    microseconds. The reference held keeps a remembered row's id from being reused.
    """
    recent: OrderedDict[int, tuple[Row, dict[str, Any]]] = OrderedDict()

    def remembered(row: Row) -> dict[str, Any]:
        known = recent.get(id(row))
        if known is not None and known[0] is row:
            return known[1]
        values = compute(row)
        recent[id(row)] = (row, values)
        if len(recent) > REMEMBERED_ROWS:
            recent.popitem(last=False)
        return values

    return remembered
