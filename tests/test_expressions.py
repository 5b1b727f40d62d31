"""Plain-Python definition expressions give exactly Jinja's result, or leave the row to Jinja."""

from __future__ import annotations

import itertools

import pytest

from mslt_it.prompts import _ENVIRONMENT
from mslt_it.tasks.expressions import NotPlain, plain_expression

PLAIN = [
    "row.instruction ~ ('\\n\\n' ~ row.input if row.input | trim else '')",  # Bactrian-X
    "row.a ~ row.b",
    "row['a'] + ' ' + row.b",
    "row.a if row.b else 'x'",
    "(row.a ~ row.b) | trim ~ '!'",
    "'literal'",
]
JINJA_ONLY = [
    "row.a ~ 1",  # a number literal
    "row.items ~ row.a",  # a dict attribute: the sandbox gives the method
    "row.a | upper",
    "row.a if row.b",  # no else: undefined
    "row.a | trim('x')",
    "row.a.b",
    "row[0]",
    "lang ~ row.a",
]
VALUES = ["", " ", "\n x \t", "abc", "ü\u00a0", None, 0, 1.5, ["x"], True]


@pytest.mark.parametrize("expression", PLAIN)
def test_plain_evaluation_is_jinjas(expression: str) -> None:
    plain = plain_expression(_ENVIRONMENT, expression)
    jinja = _ENVIRONMENT.compile_expression(expression, undefined_to_none=False)
    assert plain is not None
    covered = 0
    for a, b, instruction, given in itertools.product(VALUES, VALUES, VALUES[:6], VALUES):
        row = {"a": a, "b": b, "instruction": instruction, "input": given}
        try:
            got = plain(row)
        except NotPlain:
            continue  # Jinja evaluates this row
        covered += 1
        assert type(got) is str and got == jinja(row=row), row
    assert covered > 100


@pytest.mark.parametrize("expression", JINJA_ONLY)
def test_other_expressions_stay_with_jinja(expression: str) -> None:
    assert plain_expression(_ENVIRONMENT, expression) is None


def test_a_row_of_another_kind_or_without_the_column_goes_to_jinja() -> None:
    plain = plain_expression(_ENVIRONMENT, "row.a ~ row.b")
    assert plain is not None
    with pytest.raises(NotPlain):
        plain({"a": "x"})
    with pytest.raises(NotPlain):
        plain({"a": "x", "b": 1})

    class Row(dict):
        pass

    with pytest.raises(NotPlain):
        plain(Row(a="x", b="y"))
