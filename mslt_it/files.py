"""Reading a user's files: regular files only, never more than a stated size.

Every file a user names (a recipe, a task definition, a template, a results.json, a corpus) is
read through :func:`read_user_bytes`. A path is opened *without blocking* and checked on the open
handle (not on the name, which could change in between): a FIFO named ``x.yaml`` would block
forever, a symlink to ``/dev/zero`` would fill memory, a folder or a socket has no text. Each is a
one-line :class:`MsltError` naming the field, the path and what is allowed.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import stat
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from mslt_it.errors import MsltError

MAX_TEXT_BYTES = 2_000_000
"""Definitions, templates, recipes, suites: hand-written YAML is far below this."""

MAX_JSON_BYTES = 200_000_000
"""results.json, run.json, manifests: mslt-it's own records, large for a big study."""

MAX_DATA_BYTES = 4_000_000_000
"""A local data file of a task's rows or a corpus (4 GB): it is read into memory whole, as an
Arrow table."""


def kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def resolved_path(path: str | Path, field: str) -> Path:
    """``path`` with its links followed; a link that leads back to itself is a one-line error
    naming ``field`` (``Path.resolve`` raises a bare ``RuntimeError`` there)."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError):
        raise MsltError(f"{field}: {str(path)!r} is a symlink loop") from None


def listed(folder: Path, field: str, *patterns: str) -> list[Path]:
    """``folder.glob(pattern)`` for each pattern in turn, each sorted; a folder that changes
    while it is listed (a sub-folder removed meanwhile, which ``glob`` does not skip) is a
    one-line error naming ``field``."""
    try:
        return [path for pattern in patterns for path in sorted(folder.glob(pattern))]
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else type(error).__name__
        raise MsltError(
            f"{field}: cannot list {str(folder)!r} ({reason}: {error.filename!r}; did it change "
            "while it was read?)"
        ) from None


def check_regular_file(path: str | Path, field: str) -> int:
    """The size of ``path`` if it is a regular file (after symlinks); otherwise a one-line error."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise MsltError(f"{field}: no such file {str(path)!r}") from None
    except OSError as error:
        raise MsltError(f"{field}: cannot read {str(path)!r} ({error.strerror or error})") from None
    if not stat.S_ISREG(info.st_mode):
        raise MsltError(f"{field}: {str(path)!r} is {kind_of(info.st_mode)}; give a regular file")
    return info.st_size


@contextlib.contextmanager
def opened_regular_file(path: str | Path, field: str) -> Iterator[int]:
    """The descriptor of ``path`` opened for reading, if it is a regular file.

    Opened with ``O_NONBLOCK`` so a FIFO cannot block the open, then checked with ``fstat`` on the
    handle (not on the name, which could change in between); anything else is a one-line error.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        handle = os.open(path, flags)
    except FileNotFoundError:
        raise MsltError(f"{field}: no such file {str(path)!r}") from None
    except IsADirectoryError:
        raise MsltError(f"{field}: {str(path)!r} is a folder; give a regular file") from None
    except OSError as error:
        raise MsltError(f"{field}: cannot read {str(path)!r} ({error.strerror or error})") from None
    try:
        mode = os.fstat(handle).st_mode
        if not stat.S_ISREG(mode):
            raise MsltError(f"{field}: {str(path)!r} is {kind_of(mode)}; give a regular file")
        yield handle
    except OSError as error:
        raise MsltError(f"{field}: cannot read {str(path)!r} ({error.strerror or error})") from None
    finally:
        os.close(handle)


def read_user_bytes(path: str | Path, field: str, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (:func:`opened_regular_file`), at most ``limit``
    of them: the read stops after ``limit + 1`` bytes whatever the file claims its size is."""
    with opened_regular_file(path, field) as handle:
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(handle, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise MsltError(
                f"{field}: {str(path)!r} is larger than {limit:,} bytes, the most that is read"
            )
        return b"".join(chunks)


def read_user_text(path: str | Path, field: str, limit: int = MAX_TEXT_BYTES) -> str:
    """:func:`read_user_bytes` decoded as UTF-8; a binary file is a one-line error."""
    data = read_user_bytes(path, field, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MsltError(
            f"{field}: {str(path)!r} is not UTF-8 text (byte {error.object[error.start]:#04x} "
            f"at {error.start})"
        ) from None


PLAIN_NUMBER = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")
"""A number as a user's CSV cell writes one: plain decimal digits. Python's float() also takes
``7_0`` (70), ``nan``, ``infinity`` and digits of other scripts (``٣``), none of which a
spreadsheet writes for a number."""


def csv_rows(text: str, where: str) -> list[tuple[int, list[str]]]:
    """The rows of a user's CSV with the line each starts on (:func:`iter_csv_rows`, listed)."""
    return list(iter_csv_rows(text, where))


def iter_csv_rows(text: str, where: str) -> Iterator[tuple[int, list[str]]]:
    """The rows of a user's CSV with the line each starts on, one at a time.

    Line ends may be ``\\n``, ``\\r\\n`` or a bare ``\\r`` (old Mac exports), and a leading
    byte-order mark (Excel's "CSV UTF-8") is not part of the first cell; a line the csv module
    cannot read (a field over its 128 KiB limit, a NUL) is a one-line error naming it. So is a
    cell over several lines: no file mslt-it reads this way (results, grids, vectors) holds a
    line break in a cell, and one there is a quote left open, which read the rows after it as
    part of its cell and was blamed on a language code made of them.
    """
    text = text.removeprefix("\ufeff")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").removesuffix("\n").split("\n")
    reader = csv.reader(io.StringIO(text, newline=None))
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            if reader.line_num > start:  # a quote left open read the lines after it as one cell
                raise MsltError(_quote_left_open(where, start, reader.line_num, lines)) from None
            raise MsltError(
                f"{where}:{reader.line_num}: not a readable CSV line ({error})"
            ) from None
        if any("\n" in cell or "\r" in cell for cell in row):  # no cell mslt-it reads has one
            raise MsltError(_quote_left_open(where, start, reader.line_num, lines))
        if reader.line_num >= len(lines) and _never_closed(lines, start):  # the last row: its
            raise MsltError(f"{where}:{start}: {NEVER_CLOSED}")  # cell holds no line break
        yield start, row
        start = reader.line_num + 1


NEVER_CLOSED = "a quote opened in this row is never closed"


def _never_closed(lines: list[str], start: int) -> bool:
    """Whether the row starting on line ``start`` opens a quote that the file never closes
    (read strictly, the csv module says so; read as a user's file, it reads to the end)."""
    try:
        next(csv.reader(io.StringIO("\n".join(lines[start - 1 :])), strict=True), None)
    except csv.Error as error:
        return "unexpected end of data" in str(error)
    return False


def _quote_left_open(where: str, start: int, end: int, lines: list[str]) -> str:
    """The message for a quote opened on line ``start`` that ran on to line ``end``."""
    if _never_closed(lines, start):
        return f"{where}:{start}: {NEVER_CLOSED}"
    return (
        f"{where}:{start}: a quoted cell runs from this line to line {end}; a quote opened here "
        "is not closed where its cell ends"
    )


def csv_table(text: str, where: str) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """A user's CSV as its header (names stripped) and one record per non-blank row, with the
    line it starts on. A column named twice, or a row with more cells than the header, is a
    one-line error naming it: either leaves which cell means what to a guess (the last
    ``score`` column won; a cell past the header vanished). A short row's missing cells are
    absent from its record, for the reader to name. The records come one at a time: a reader
    that stops at a bad line (a repeated row) never holds the file's records at once (a 59 MB
    file took 2 GB before its third line was refused)."""
    lines = ((number, row) for number, row in iter_csv_rows(text, where) if row)
    header = next(lines, None)
    columns = [name.strip() for name in header[1]] if header is not None else []
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise MsltError(f"{where}: column {repeated[0]!r} appears twice; keep one")

    def records() -> Iterator[tuple[int, dict[str, str]]]:
        for line, cells in lines:
            if len(cells) > len(columns):
                raise MsltError(
                    f"{where}:{line}: {len(cells)} cells, the header has {len(columns)}"
                )
            yield line, dict(zip(columns, cells, strict=False))

    return columns, records()


MAX_FOLDER_ENTRIES = 100_000
"""Most entries :func:`check_regular_files` looks at (a model folder holds a few dozen)."""


FILE_SUFFIXES = frozenset(
    (".json", ".safetensors", ".bin", ".model", ".txt", ".jinja", ".tiktoken", ".arrow", ".pt")
)
"""Suffixes of the files a model, adapter or dataset folder holds: a folder of such a name
(``tokenizer.json/``) stands where the libraries will open a file."""


def check_regular_files(folder: str | Path, field: str) -> None:
    """Every file in ``folder`` (and below) is a regular file, after links, and no folder there
    is named as one of them (:data:`FILE_SUFFIXES`).

    A model, adapter or dataset folder is read by libraries that open its files blindly: a FIFO
    among them blocks the command for ever, a device reads without end. Checked before they
    open anything; a link to nowhere is named too (the loaders blamed a missing library).
    """
    seen = 0
    for root, folders, names in os.walk(folder):
        folders[:] = [n for n in folders if not n.startswith(".")]  # markers, working files
        named_as_file = next((n for n in folders if Path(n).suffix in FILE_SUFFIXES), None)
        if named_as_file is not None:  # the libraries' own messages blamed something else
            raise MsltError(
                f"{field}: {os.path.join(root, named_as_file)!r} is a folder; the folder must "
                "hold regular files"
            )
        for name in names:
            seen += 1
            if seen > MAX_FOLDER_ENTRIES:
                return
            path = os.path.join(root, name)
            try:
                mode = os.stat(path).st_mode
            except OSError:
                if os.path.islink(path):  # the loaders then blamed a missing library
                    raise MsltError(
                        f"{field}: {path!r} is a link to nothing ({os.readlink(path)!r}); the "
                        "folder must hold regular files"
                    ) from None
                continue
            if not stat.S_ISREG(mode):
                raise MsltError(
                    f"{field}: {path!r} is {kind_of(mode)}; the folder must hold regular files"
                )


BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
"""Characters that reorder the text around them (Unicode's Bidi_Control, the Arabic letter mark
among them): a name holding one reads as another."""

LINE_SEPARATORS = frozenset("\u2028\u2029")
"""Unicode's line and paragraph separators: a name holding one prints on two lines."""

MISREAD = BIDI_CONTROLS | LINE_SEPARATORS
"""Characters beside the control characters that make a printed name read wrong."""

UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + "".join(sorted(MISREAD)) + "]")
"""Control characters but tab and newline (C0, DEL and C1), the bidirectional controls and the
line separators."""


def escaped_controls(text: str) -> str:
    """``text`` as a person reads it: each :data:`UNPRINTABLE` character shown as its escape
    (``\\x1b``), never sent to the terminal, where it would recolour, retitle, move the cursor
    or reorder the text around it."""
    return UNPRINTABLE.sub(lambda found: repr(found.group())[1:-1], text)


def one_line(text: str) -> str:
    """``text`` escaped as :func:`escaped_controls` does, its tabs and newlines too: for what
    must stay one line (a progress line, a table's title), which a name holding a newline (a
    user's folder) split in two."""
    return escaped_controls(text).replace("\t", "\\t").replace("\n", "\\n")


def control_character(text: str) -> str | None:
    """The first character of ``text`` that no file name mslt-it writes may hold (a control
    character such as a newline or an escape, which breaks logs and reaches the terminal raw,
    or a bidirectional control, which makes the name read as another), or None."""
    for character in text:
        if unicodedata.category(character) == "Cc" or character in MISREAD:
            return character
    return None


def without_controls(text: str) -> str:
    """``text`` with each character :func:`control_character` refuses made ``_``: a name taken
    from a user's folder (an adapter's) for a folder, a label or a plot mslt-it writes."""
    return "".join("_" if control_character(character) else character for character in text)
