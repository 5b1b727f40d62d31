"""Text from runs' files made plain before a report prints it.

A report quotes what the files it reads say: a run's name, a model path, an evaluation setting
such as a system prompt, a row's id or gold answer. Any of them may have been edited by hand.
Printed raw, a ``|`` breaks a table row, a newline the table, an escape reaches the terminal
that shows the file, and a cell that starts with ``=`` is a formula to a spreadsheet that opens
scores.csv. Each place allows what it needs (a name is narrower than a note), and
:func:`plain` is the one way every place applies its rule.
"""

from __future__ import annotations

import re

NAME = re.compile(r"[^\w.+()\[\] -]")
"""What a run's name may not hold: ``|``, newlines, quotes, slashes…"""

QUALIFIER = re.compile(r"[^\w./:@+()\[\] -]")
"""What a model path, mode, backend or folder that tells two runs apart may not hold (a path
keeps its slashes and a Hub id its colon)."""

SETTING = re.compile(r"[^\w./:@+()\[\],'= -]")
"""What an evaluation setting shown under "Evaluated differently" may not hold (a system
prompt is the user's text): table bars, newlines, escapes and markup."""

NOTE_MARKUP = re.compile(
    "[|<>`*\\[\\]\\\\#!\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
"""What a note quoting the data (a row's id, a gold answer) may not hold: table bars, HTML,
emphasis, links, line breaks, escapes and bidirectional controls. A note keeps any other text,
since it quotes the data in its own script."""

FORMULA_STARTS = "=+-@"
"""First characters that make a spreadsheet read a cell as a formula."""


def plain(
    text: str, unsafe: re.Pattern[str], *, limit: int | None = None, formula: bool = False
) -> str:
    """``text`` (its first ``limit`` characters), each character ``unsafe`` matches made ``_``.

    With ``formula``, a first character in :data:`FORMULA_STARTS` is made ``_`` too (for text
    that reaches a CSV cell or may be copied into one).
    """
    text = unsafe.sub("_", text[:limit])
    if formula and text[:1] and text[0] in FORMULA_STARTS:
        return f"_{text[1:]}"
    return text
