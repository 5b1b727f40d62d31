"""Plain-Python evaluation of a definition's simple text expressions, to Jinja's exact result.

A corpus definition's prompt is usually text glued from columns, such as Bactrian-X's
``row.instruction ~ ('\\n\\n' ~ row.input if row.input | trim else '')``. The builder evaluates it
for every row, and each sandboxed Jinja evaluation sets up a fresh context (tens of
microseconds, as much as the rest of a row's work). :func:`plain_expression` turns such an
expression into a few Python closures instead; anything else keeps the sandboxed Jinja path.

Only text is handled: the closures raise :class:`NotPlain` on a row whose column is missing or
not a ``str`` (a number, a list, None), and the caller evaluates that row with Jinja, so every
result is the one Jinja gives. The nodes understood, and why each matches Jinja on text:

- ``row.column`` / ``row['column']``: the sandbox reads a plain dict's item (a column named like
  a dict method, ``row.items``, is left to Jinja, which returns the method);
- a string literal;
- ``a ~ b`` (Jinja joins ``str`` of each) and ``a + b`` (Python's ``+`` of two texts); in the
  bounded sandbox (:mod:`mslt_it.prompt_bounds`) both refuse to build more than
  ``MAX_CHARACTERS``, so a join that would is left to Jinja, which raises the bound's error;
- ``a if test else b`` (Python truthiness of a text);
- ``value | trim`` with no arguments (Jinja's ``do_trim``: ``str.strip()``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.filters import do_trim
from jinja2.parser import Parser

from mslt_it.prompt_bounds import MAX_CHARACTERS, BoundedSandbox

Row = dict[str, Any]
Text = Callable[[Row], str]


class NotPlain(Exception):
    """A row the plain evaluation does not cover: evaluate it with Jinja instead."""


def plain_expression(environment: jinja2.Environment, expression: str) -> Text | None:
    """``expression`` as a Python function of a plain-dict row, or None when it is not one of
    the simple text forms (see the module's docstring)."""
    try:
        parser = Parser(environment, expression, state="variable")
        node = parser.parse_expression()
        if not parser.stream.eos:
            return None
    except jinja2.TemplateSyntaxError:
        return None
    text = _text(node, environment)
    if text is None:
        return None

    def evaluate(row: Row) -> str:
        if type(row) is not dict:  # a mapping of another kind may read attributes differently
            raise NotPlain
        return text(row)

    return evaluate


def _text(node: nodes.Node, environment: jinja2.Environment) -> Text | None:
    """A closure computing ``node``'s text, or None for a node outside the plain forms."""
    if isinstance(node, nodes.Const):
        return _constant(node.value) if type(node.value) is str else None
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        return _column(node)
    if isinstance(node, nodes.Concat):
        return _joined([_text(part, environment) for part in node.nodes])
    if isinstance(node, nodes.Add) and _plain_add(environment):
        return _joined([_text(node.left, environment), _text(node.right, environment)])
    if isinstance(node, nodes.CondExpr):
        if node.expr2 is None:  # no else: Jinja gives an undefined value
            return None
        parts = [_text(part, environment) for part in (node.test, node.expr1, node.expr2)]
        return _choice(*parts)
    if isinstance(node, nodes.Filter):
        return _trimmed(node, environment)
    return None


def _plain_add(environment: jinja2.Environment) -> bool:
    """``+`` of two texts is Python's own: in a plain environment, or in the bounded sandbox,
    whose ``+`` only adds the size check :func:`_joined` makes too."""
    intercepted = getattr(environment, "intercepted_binops", ())
    return "+" not in intercepted or isinstance(environment, BoundedSandbox)


def _constant(value: str) -> Text:
    return lambda row: value


def _column(node: nodes.Getattr | nodes.Getitem) -> Text | None:
    """``row.column`` or ``row['column']``, for a column that is no dict attribute."""
    if not (isinstance(node.node, nodes.Name) and node.node.name == "row"):
        return None
    if isinstance(node, nodes.Getattr):
        column = node.attr
    elif isinstance(node.arg, nodes.Const) and type(node.arg.value) is str:
        column = node.arg.value
    else:
        return None
    if hasattr(dict, column):  # the sandbox prefers the attribute: Jinja decides
        return None

    def read(row: Row) -> str:
        value = row.get(column)
        if type(value) is not str:
            raise NotPlain
        return value

    return read


def _joined(parts: list[Text | None]) -> Text | None:
    if any(part is None for part in parts):
        return None
    texts: list[Text] = [part for part in parts if part is not None]

    def joined(row: Row) -> str:
        text = "".join([text(row) for text in texts])
        if len(text) > MAX_CHARACTERS:  # the sandbox refuses to build it: Jinja says so
            raise NotPlain
        return text

    return joined


def _choice(test: Text | None, then: Text | None, otherwise: Text | None) -> Text | None:
    if test is None or then is None or otherwise is None:
        return None
    return lambda row: then(row) if test(row) else otherwise(row)


def _trimmed(node: nodes.Filter, environment: jinja2.Environment) -> Text | None:
    """``value | trim`` with Jinja's own ``trim`` filter and no arguments (also as the sandbox
    wraps it to refuse a none: this path reads text columns only, so no none reaches it)."""
    plain_call = not (node.args or node.kwargs or node.dyn_args or node.dyn_kwargs)
    trim = environment.filters.get("trim")
    if (
        node.name != "trim"
        or not plain_call
        or getattr(trim, "refuses_none_of", trim) is not do_trim
    ):
        return None
    value = _text(node.node, environment) if node.node is not None else None
    if value is None:
        return None
    return lambda row: value(row).strip()
