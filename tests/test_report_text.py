"""Text quoted from runs' files reaches report.md and scores.csv plain: generated text, the
one rule per place (``mslt_it.report_text``)."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from mslt_it import report_text

RULES = [report_text.NAME, report_text.QUALIFIER, report_text.SETTING, report_text.NOTE_MARKUP]
BREAKS_A_TABLE = set("|\n\r\x1b`<>\u202e")


@given(st.text(max_size=300), st.sampled_from(RULES), st.integers(1, 200))
def test_plain_text_cannot_break_a_table_and_keeps_its_length(text, rule, limit):
    made = report_text.plain(text, rule, limit=limit)
    assert not BREAKS_A_TABLE & set(made)
    assert len(made) == len(text[:limit])  # one character for one: positions still line up
    assert all(new == old or new == "_" for new, old in zip(made, text, strict=False))


@given(st.text(max_size=80), st.sampled_from(RULES))
def test_a_cell_made_plain_for_a_spreadsheet_is_never_a_formula(text, rule):
    made = report_text.plain(text, rule, limit=80, formula=True)
    assert made[:1] not in set(report_text.FORMULA_STARTS)
    buffer = io.StringIO()
    csv.writer(buffer).writerow([made])
    assert next(csv.reader(io.StringIO(buffer.getvalue()))) == [made]


def test_a_note_keeps_the_data_in_its_own_script():
    assert report_text.plain("id ٣ 中文 é", report_text.NOTE_MARKUP) == "id ٣ 中文 é"
    assert report_text.plain("a|b\n[x](y)", report_text.NOTE_MARKUP) == "a_b__x_(y)"
