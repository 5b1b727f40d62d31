"""What a JSON-lines data file must not hold before pyarrow's reader sees it.

pyarrow's JSON reader crashes the whole process (no exception to catch) on a file whose first
line is ``null``, and on a row nested some ten thousand levels deep (a 20 KB file does it).
Both are checked here in bounded memory: a stream of blocks, never a whole line or file.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from mslt_it.errors import MsltError

MAX_JSON_DEPTH = 100
"""The deepest a row of a data file may nest (a row of a real dataset nests a few levels)."""

BLOCK = 1 << 24
"""Bytes read at a time."""

LONGEST_LINE = 1 << 22
"""The longest row a data file may hold (4 MiB; a row of a real dataset is a few KB): each is
scanned for its nesting before pyarrow, whose block is raised to hold it, parses it."""

MIN_BLOCK_BYTES = 1 << 20
"""pyarrow's own JSON block size; a block must hold the longest line, so a longer one raises
it (:func:`json_block_size`)."""

OPENING, CLOSING, NEWLINE = (ord("["), ord("{")), (ord("]"), ord("}")), ord("\n")
_DELETE = bytes(b for b in range(256) if b not in b'[]{}"\n')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}\n")
_STRING = re.compile(rb'"[^"\n]*"')
_LONG = re.compile(rb"[^\n]{%d,}" % (MAX_JSON_DEPTH + 1))


def check_json_lines(path: Path, field: str) -> int:
    """Refuse a file pyarrow's JSON reader would crash on: a first line that is not an object,
    or a row nested deeper than :data:`MAX_JSON_DEPTH`; and a row longer than
    :data:`LONGEST_LINE`, named by its line. Returns the longest line's length in bytes:
    pyarrow's block must hold it (its own 1 MiB block refused a longer row with "straddling
    object straddles two block boundaries (try to increase block size?)"); below 512 KiB it
    may say 512 KiB (:func:`_longest_line`)."""
    longest = lines_before = 0
    with path.open("rb") as handle:
        _check_first_object(handle, path, field)
        handle.seek(0)
        rest = b""
        while block := handle.read(BLOCK):
            data = rest + block
            cut = data.rfind(b"\n") + 1
            data, rest = data[:cut], data[cut:]
            if data:
                longest = max(longest, _longest_line(data))
            if longest > LONGEST_LINE or len(rest) > LONGEST_LINE:
                number = lines_before + _line_over(data, LONGEST_LINE)
                raise MsltError(
                    f"{field}: {path}: line {number:,} is longer than {LONGEST_LINE:,} bytes, "
                    "the most a row of a data file may hold"
                )
            _check_depth(data, path, field)
            lines_before += data.count(b"\n")
        _check_depth(rest, path, field)
    return max(longest, len(rest))


def json_block_size(path: Path, field: str) -> int:
    """:func:`check_json_lines`, then the block size pyarrow's JSON reader needs for the file:
    its own, raised to hold the longest line."""
    return max(MIN_BLOCK_BYTES, check_json_lines(path, field) + 2)


SHORT_WINDOW = 1 << 18
"""Every window of this many bytes holding a newline proves every line shorter than twice it."""


def _longest_line(data: bytes) -> int:
    """The longest line of ``data`` (whole lines, each ending in a newline), newline included;
    at most ``2 * SHORT_WINDOW`` when every window of :data:`SHORT_WINDOW` bytes holds a
    newline (a line that long would span one whole window): a few ``find`` calls per block,
    where measuring every line cost the check half again its time on ordinary files."""
    windows = range(0, len(data), SHORT_WINDOW)
    if all(data.find(b"\n", start, start + SHORT_WINDOW) >= 0 for start in windows):
        return min(len(data), 2 * SHORT_WINDOW)
    import numpy as np

    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == NEWLINE)
    return int(np.diff(ends, prepend=-1).max())


def _line_over(data: bytes, limit: int) -> int:
    """The number (from 1) in ``data`` of its first line over ``limit`` bytes; one past its
    last line when none is (the unfinished line after it is the long one)."""
    for number, line in enumerate(data.split(b"\n")[:-1], start=1):
        if len(line) + 1 > limit:
            return number
    return data.count(b"\n") + 1


UTF8_BOM = b"\xef\xbb\xbf"
"""The byte-order mark some editors and Excel write first: pyarrow's reader skips it."""


def _check_first_object(handle, path: Path, field: str) -> None:
    """The first character that is not white space must open an object (read block by block:
    a file of one endless line is not read whole to find out)."""
    read = 0
    while block := handle.read(1 << 16):
        text = (block if read else block.removeprefix(UTF8_BOM)).lstrip()  # Excel's BOM
        if text:
            if not text.startswith(b"{"):
                raise MsltError(
                    f"{field}: {path}: the first line is not a JSON object; give JSON lines, "
                    "one object per line"
                )
            return
        read += len(block)
        if read > BLOCK:
            return


def _check_depth(data: bytes, path: Path, field: str) -> None:
    """Whole lines of JSON. Only a line with more brackets than the limit (strings included)
    can nest past it, and few lines have that many: only those are read as JSON is, all at
    once (:func:`_deepest`)."""
    brackets_only = data.translate(None, _NOT_BRACKETS)
    if not _LONG.search(brackets_only):
        return
    # The newlines are kept in both, so the two splits pair each line with its brackets.
    pairs = zip(data.split(b"\n"), brackets_only.split(b"\n"), strict=True)
    depth = _deepest([line for line, brackets in pairs if len(brackets) > MAX_JSON_DEPTH])
    if depth > MAX_JSON_DEPTH:
        raise MsltError(
            f"{field}: {path}: a row nests {depth:,} levels deep; rows of a data file nest at "
            f"most {MAX_JSON_DEPTH}"
        )


def _deepest(lines: list[bytes]) -> int:
    """How deep the deepest of ``lines`` of JSON nests, in one pass over them all: escaped
    backslashes and quotes dropped, then every byte but brackets, quotes and newlines, then
    strings (two quotes side by side first: fast, and it changes no byte's side of a string),
    then the running sum of what is left, counted from each line's start."""
    import numpy as np

    data = b"\n" + b"\n".join(lines)  # every line starts after a newline, the first too
    kept = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _DELETE)
    kept = _STRING.sub(b"", kept.replace(b'""', b""))
    marks = np.frombuffer(kept, dtype=np.uint8)
    running = np.cumsum(np.isin(marks, OPENING).astype(np.int64) - np.isin(marks, CLOSING))
    newline = marks == NEWLINE
    line_start = np.maximum.accumulate(np.where(newline, np.arange(len(marks)), 0))
    return int((running - running[line_start]).max())


def bounded_lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Numbered lines (from 1), each read no further than one byte past :data:`LONGEST_LINE`;
    the first line longer than that ends them, given as its start.

    A line is never read whole before its length is known: an 800 MB file of one line held
    1.7 GB before the line-length check refused it.
    """
    number = 0
    while line := handle.readline(LONGEST_LINE + 1):
        number += 1
        yield number, line
        if len(line) > LONGEST_LINE:
            return


def _json_kind(value: Any) -> str:
    """How an error names a JSON value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Numbered lines (from 1), blank ones left out, up to one over :data:`LONGEST_LINE`."""
    for number, line in bounded_lines(handle):
        if len(line) > LONGEST_LINE:
            return
        if line.strip():
            yield number, line


def first_problem(handle: IO[bytes]) -> str | None:
    """The first line of the open JSON-lines file ``handle`` that is not a JSON object, or
    whose field changes type: what pyarrow refused, said with the line number (pyarrow names
    neither the line nor the field, and counts its rows from 0)."""
    kinds: dict[str, tuple[str, int]] = {}
    for number, line in _lines(handle):
        try:  # decoded here: json.loads reads a UTF-16 line as UTF-16 and names no byte
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as error:
            return f"line {number} is not UTF-8 text (byte {line[error.start]:#04x})"
        except json.JSONDecodeError as error:
            cut = "; the file looks cut short" if not line.endswith(b"\n") else ""
            # json's messages end "… at" where the column follows ("Invalid control
            # character at"): ", column 9" after them read as a garbled sentence
            where = " " if error.msg.endswith(" at") else ", "
            return (
                f"line {number} is not valid JSON ({error.msg}{where}column {error.colno}"
                f"{cut}); give JSON lines, one object per line"
            )
        except (ValueError, RecursionError) as error:  # a number too long, nesting too deep
            return f"line {number} is not readable JSON ({str(error).split(';')[0][:120]})"
        if not isinstance(row, dict):
            return (
                f"line {number} is {_json_kind(row)}, not a JSON object; give JSON lines, "
                'one object per line ({"instruction": …, "output": …})'
            )
        for key, value in row.items():
            if value is None:
                continue
            if isinstance(value, float) and not math.isfinite(value):  # 1e400, NaN
                return (
                    f"line {number}: field {key!r} is {value} (a number beyond a double's "
                    "range, or not a number); give a finite number"
                )
            kind = _json_kind(value)
            earlier = kinds.setdefault(key, (kind, number))
            if earlier[0] != kind:
                return (
                    f"line {number}: field {key!r} is {kind}, but {earlier[0]} on line "
                    f"{earlier[1]}; a field must have one type in every line"
                )
    return None
