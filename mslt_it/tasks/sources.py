"""Where task rows come from: the Hugging Face Hub, a local directory, or the synthetic source.

All three yield rows in the same (Hub) schema, so everything downstream is blind to the origin.
A source opens one ``(task, language, split)`` at a time as a :class:`SplitRows`, which knows how
many usable rows there are and fetches any subset of them by index.

- ``hub``: ``datasets.load_dataset(task.hub_id, lang, split=split)``.
- a directory ``DIR``: ``DIR/<task>/<lang>/<split>.parquet`` or ``.jsonl`` (Hub schema); for a
  task whose definition names a ``language_column``, also one table of every language,
  ``DIR/<task>/<split>.parquet`` or ``.jsonl``, filtered by that column.
- ``synthetic``: :mod:`mslt_it.tasks.synthetic`, offline and deterministic.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from math import inf
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa

from mslt_it.errors import MsltError, allowed, clipped, first_line
from mslt_it.files import MAX_DATA_BYTES, check_regular_file
from mslt_it.identity import file_sha256, file_state
from mslt_it.io import read_arrow_table
from mslt_it.paths import check_data_value
from mslt_it.tasks.base import Row, Task, row_id
from mslt_it.tasks.ner import TAG_NAMES
from mslt_it.tasks.synthetic import SPLIT_SIZES, is_unlabelled, synthetic_row
from mslt_it.tasks.synthetic import sample_row as sample_row  # its old home: re-exported

LOCAL_SUFFIXES = (".parquet", ".jsonl")


class SplitRows(Protocol):
    """The usable rows of one task split in one language."""

    origin: str
    dropped: int

    def __len__(self) -> int: ...

    def rows(self, indices: Sequence[int]) -> list[Row]:
        """Rows at ``indices`` (positions among usable rows), each with a stable ``id``."""
        ...

    def usable_among_first(self, count: int) -> int:
        """How many of the split's first ``count`` rows are usable (the rest unlabelled)."""
        ...


@dataclass
class SyntheticSplit:
    """Synthetic rows, generated on demand; rows labelled -1 are skipped and counted."""

    task: Task
    lang: str
    split: str
    origin: str = "synthetic"
    dropped: int = 0
    _kept: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        generator = synthetic_generator(self.task)
        sizes = SPLIT_SIZES[generator]
        if self.split not in sizes:
            raise MsltError(
                f"split: the synthetic {generator} data has no split {self.split!r}; "
                f"its splits: {allowed(sizes)}"
            )
        size = sizes[self.split]
        if self.task.valid_label_ids is None or generator != "pawsx":
            self._kept = np.arange(size)
            return
        # Only PAWS-X synthetic data carries unlabelled rows.
        unlabelled = [is_unlabelled(self.lang, self.split, i) for i in range(size)]
        self._kept = np.flatnonzero(~np.array(unlabelled, dtype=bool))
        self.dropped = size - len(self._kept)

    def __len__(self) -> int:
        return len(self._kept)

    def usable_among_first(self, count: int) -> int:
        return int(np.searchsorted(self._kept, count))  # kept rows' places, in order

    def rows(self, indices: Sequence[int]) -> list[Row]:
        out = []
        for index in indices:
            original = int(self._kept[index])
            row = synthetic_row(synthetic_generator(self.task), self.lang, self.split, original)
            row["id"] = row_id(self.task, self.lang, self.split, original)
            out.append(row)
        return out


def holds_bytes(kind: pa.DataType) -> bool:
    """Whether an Arrow type is, or holds, raw bytes (Parquet's binary columns): never text."""
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return True
    if pa.types.is_fixed_size_binary(kind) or pa.types.is_binary_view(kind):
        return True
    if pa.types.is_dictionary(kind):
        return holds_bytes(kind.value_type)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return holds_bytes(kind.value_type)
    if pa.types.is_struct(kind):
        return any(holds_bytes(kind.field(i).type) for i in range(kind.num_fields))
    return False


def is_bool_or_number(kind: pa.DataType) -> bool:
    """Whether an Arrow type holds true/false or numbers (a dictionary's values included):
    what a JSON ``0.5``, ``true`` or a Parquet int64 column is read as, never text."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return (
        pa.types.is_boolean(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
    )


JSON_SPACE = re.compile(r"[ \t\n\r]*")
"""What JSON (and pyarrow's reader) skips between two values."""


def json_rows(path: Path) -> Iterator[tuple[int, object]]:
    """Each row of a JSON-lines file as pyarrow reads it, with the line it is on: from 1, blank
    lines counted, as the file's parse errors (:mod:`mslt_it.corpus`) and an editor count. A
    line may hold two objects (pyarrow reads two rows) and a blank line holds none, so a row's
    place among the rows is not its line. Read only to name a row in an error."""
    decoder = json.JSONDecoder()
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.decode("utf-8")
            if number == 1:
                text = text.removeprefix("\ufeff")  # the byte-order mark pyarrow skips
            at = JSON_SPACE.match(text).end()
            while at < len(text):
                value, at = decoder.raw_decode(text, at)
                yield number, value
                at = JSON_SPACE.match(text, at).end()


def line_of_row(path: Path, row: int) -> int | None:
    """The line of a JSON-lines file (from 1, blank lines counted) holding its row ``row``
    (from 0, as the table read from it counts); None when the file cannot say (changed since,
    or read apart by Python's json and pyarrow)."""
    try:
        for index, (line, _) in enumerate(json_rows(path)):
            if index == row:
                return line
    except (OSError, ValueError, RecursionError):
        return None
    return None


def row_place(path: Path | None, row: int) -> str:
    """Where row ``row`` (from 0) of a table read from ``path`` is, as a user finds it: ``line
    N`` of a JSON-lines file, counted as its parse errors count (from 1, blank lines counted),
    so an editor jumps to it; else, a Parquet file or a Hub split having no lines, ``row N of
    the file (counted from 0)``, as pandas and datasets index it. A row counted one way in one
    message and the other way in the next named two rows for one."""
    if path is not None and path.suffix == ".jsonl":
        line = line_of_row(path, row)
        if line is not None:
            return f"line {line:,}"
    return f"row {row:,} of the {'split' if path is None else 'file'} (counted from 0)"


def first_written_decimal(
    path: Path, column: str, wanted: set[int] | None
) -> tuple[int, object] | None:
    """The line (:func:`json_rows`) and value of the first ``column`` written as a decimal or
    as a whole number beyond int64, among the rows ``wanted`` (from 0; None: all). Read only to
    name a row in an error."""
    for row, (line, fields) in enumerate(json_rows(path)):
        value = fields.get(column) if isinstance(fields, dict) else None
        whole = isinstance(value, int) and not isinstance(value, bool)
        beyond = whole and not -(2**63) <= value < 2**63
        if (wanted is None or row in wanted) and (isinstance(value, float) or beyond):
            return line, value
    return None


UNLABELLED = -1
"""The label of a row without one (PAWS-X has them): dropped and counted, never trained on."""


@dataclass
class TableSplit:
    """Rows of an Arrow table (read from the Hub or a local file), unusable labels dropped."""

    table: pa.Table
    task: Task
    lang: str
    split: str
    origin: str
    file_rows: np.ndarray | None = None  # each row's place in its file, where rows were taken
    path: Path | None = None  # the local file read (not the Hub): its digest proves it unchanged
    sha256: str | None = None  # the local file's digest just before it was read: the build
    # records it (a digest taken later may be of bytes it never read)
    hub_fingerprint: str | None = None  # datasets' fingerprint of a Hub split: a new revision
    # of the dataset gives another one (its files' commit is part of it)
    dropped: int = 0
    _kept: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        missing = [c for c in self.task.columns if c not in self.table.column_names]
        if missing and not self.table.column_names:  # "(found: )" said nothing
            self._refuse_no_columns()
        if missing:
            raise MsltError(
                f"{self.origin}: missing column {missing[0]!r}; task {self.task.name} needs "
                f"columns {allowed(self.task.columns)} (found: {allowed(self.table.column_names)})"
            )
        self._check_values()
        kept = np.arange(self.table.num_rows)
        if self.task.valid_label_ids is not None:
            label_column = self.table.column(self.task.extra.get("label_column") or "label")
            labels = label_column.to_pylist()
            if pa.types.is_floating(label_column.type):
                self._check_decimal_labels(labels)
            self._check_labels(labels)
            kept = np.flatnonzero(np.array([label != UNLABELLED for label in labels], dtype=bool))
        if "ner_tags" in self.task.columns:
            self._check_tags()
        self._check_text_columns()
        self._check_allowed_values()
        if self.task.check_row is not None and self.task.kind != "instructions":
            self._check_rows()  # small benchmark splits: every row, before any work
        self._kept = kept
        self.dropped = self.table.num_rows - len(kept)

    def _refuse_no_columns(self) -> None:
        """A table of no columns: a file of blank lines holds no rows, one of ``{}`` lines holds
        rows with nothing in them, which "holds no rows" misdescribed."""
        columns = allowed(self.task.columns)
        if not self.table.num_rows:
            raise MsltError(
                f"{self.origin}: holds no rows; task {self.task.name} needs rows with columns "
                f"{columns}"
            )
        raise MsltError(
            f"{self.origin}: its {self.table.num_rows:,} rows hold none of the columns task "
            f"{self.task.name} needs ({columns}); every row is empty"
        )

    def _check_values(self) -> None:
        """Text that is valid UTF-8 and no empty (null) cell in a column the task needs: a null
        premise would otherwise reach the prompt as the word "None"."""
        try:
            self.table.validate(full=True)
        except (pa.ArrowInvalid, pa.ArrowException) as error:
            reason = " ".join(str(error).split())[:160]
            raise MsltError(f"{self.origin}: invalid data ({reason}); is it UTF-8?") from None
        for column in self.task.columns:
            values = self.table.column(column)
            if values.null_count:
                row = values.to_pylist().index(None)
                raise MsltError(f"{self.at_row(row)}: column {column!r} is empty (null or missing)")
            if holds_bytes(values.type):
                raise MsltError(
                    f"{self.origin}: column {column!r} holds {values.type}, not text; task "
                    f"{self.task.name} reads text (bytes would reach the prompt as b'…')"
                )

    def _check_decimal_labels(self, labels: list[object]) -> None:
        """A label column read as decimals: one row's ``0.5``, ``1.0`` or a number too large
        for int64 made pyarrow read every label as a float, so the row to name is the first
        that is not a whole number, else the first written so in a JSON-lines file, else the
        first whole number out of int64's range. Row 0's ``0.0`` was no example of anything.
        Each says which labels are allowed; only a label that is one of them but written as a
        decimal (``1.0``) is told to drop its decimal point: ``10000000000000000000000`` has
        none, and ``1e22`` without one would be no label either."""
        for index, label in enumerate(labels):
            if isinstance(label, float) and not label.is_integer():
                shown = (
                    "too large a number (read as infinite)" if abs(label) == inf else repr(label)
                )
                raise MsltError(
                    f"{self.at_row(index)}: label {shown} is not one of the task's "
                    f"labels ({self._label_ids()})"
                )
        written = self._first_written_decimal()
        if written is not None:
            line, value = written
            hint = ""
            if isinstance(value, float) and int(value) in self._label_set():
                hint = f"; write {int(value)}, with no decimal point"
            raise MsltError(
                f"{self.origin}: line {line:,}: label {clipped(value)} is not one of the "
                f"task's labels ({self._label_ids()}){hint}"
            )
        for index, label in enumerate(labels):
            if isinstance(label, float) and not -(2**63) <= label < 2**63:
                raise MsltError(
                    f"{self.at_row(index)}: label {label:.4g} is not one of the task's "
                    f"labels ({self._label_ids()})"
                )
        if self.path is not None and self.path.suffix == ".parquet":  # stored as decimals
            column = self.task.extra.get("label_column") or "label"
            raise MsltError(
                f"{self.origin}: the label column holds {self.table.schema.field(column).type}; "
                f"labels are whole numbers ({self._label_ids()}): store it as an integer column"
            )
        raise MsltError(
            f"{self.origin}: the label column was read as decimal numbers (a label too large "
            "for a whole number, or written 1.0); labels are whole numbers "
            f"({self._label_ids()})"
        )

    def _label_ids(self) -> str:
        """The task's label ids as an error lists them."""
        return f"{allowed(sorted(self.task.valid_label_ids or ()))}, or -1 for unlabelled"

    def _label_set(self) -> frozenset[int]:
        """The labels a row may hold: the task's, or -1 (unlabelled)."""
        return frozenset(self.task.valid_label_ids or ()) | {UNLABELLED}

    def _first_written_decimal(self) -> tuple[int, object] | None:
        """The file line (and value) of the first label of these rows written as a decimal
        (``1.0``) or a whole number beyond int64, in a local JSON-lines file; None when the
        file cannot say (the Hub, Parquet, a file pyarrow and Python's json read apart)."""
        if self.path is None or self.path.suffix != ".jsonl":
            return None
        wanted = None if self.file_rows is None else {int(row) for row in self.file_rows}
        column = self.task.extra.get("label_column") or "label"
        try:
            return first_written_decimal(self.path, column, wanted)
        except (OSError, ValueError, RecursionError):
            return None

    def _check_labels(self, labels: list[object]) -> None:
        """Every gold label is one of the task's, or -1 (unlabelled, dropped and counted)."""
        valid = self.task.valid_label_ids or frozenset()
        for index, label in enumerate(labels):
            if label != UNLABELLED and (
                not isinstance(label, int) or isinstance(label, bool) or label not in valid
            ):
                raise MsltError(
                    f"{self.at_row(index)}: label {label!r} is not one of the task's "
                    f"labels ({allowed(sorted(valid))}, or -1 for unlabelled)"
                )

    def _check_tags(self) -> None:
        """Every NER tag id is one of the task's BIO tags, one per token: a row whose lists
        differ in length would pair tags with the wrong words, and tokens given as one text
        would be read letter by letter."""
        count = len(TAG_NAMES)
        all_tokens = (
            self.table.column("tokens").to_pylist() if "tokens" in self.table.column_names else None
        )
        for index, tags in enumerate(self.table.column("ner_tags").to_pylist()):
            if not isinstance(tags, list):
                raise MsltError(
                    f"{self.at_row(index)}: ner_tags is {type(tags).__name__}, not a list "
                    "of tag ids"
                )
            bad = [t for t in tags if not isinstance(t, int) or not 0 <= t < count]
            if bad:
                raise MsltError(
                    f"{self.at_row(index)}: ner_tags value {bad[0]!r} is not a tag id "
                    f"(0 to {count - 1})"
                )
            if all_tokens is None:
                continue
            tokens = all_tokens[index]
            if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                raise MsltError(
                    f"{self.at_row(index)}: tokens must be a list of words (text), got "
                    f"{clipped(tokens, 60)}"
                )
            if len(tokens) != len(tags):
                raise MsltError(
                    f"{self.at_row(index)}: {len(tokens)} tokens but {len(tags)} ner_tags; "
                    "a row has one tag per token"
                )

    def _check_text_columns(self) -> None:
        """The columns the definition reads as text (``text_columns``: see
        :func:`mslt_it.tasks.definitions.text_columns`) hold text: a list or a mapping would
        reach the prompt as Python's text of it (``['e']``), a JSON ``true`` or ``0.5`` as
        ``True`` or ``0.5``. Bytes are refused for every task, by :meth:`_check_values`."""
        for column in self.task.extra.get("text_columns") or ():
            kind = self.table.schema.field(column).type
            if pa.types.is_nested(kind):
                hint = ""
            elif pa.types.is_temporal(kind):  # a Parquet date column: the prompt printed
                hint = " (store the dates as text)"  # a datetime, and blamed the template
            elif is_bool_or_number(kind):
                hint = self._text_hint()
            else:
                continue
            raise MsltError(
                f"{self.origin}: column {column!r} holds {kind}, not text; task "
                f"{self.task.name} reads it as text{hint}"
            )

    def _text_hint(self) -> str:
        """How to write a value as text, in the kind of file it came from."""
        if self.path is not None and self.path.suffix == ".jsonl":
            return ' (write it as a JSON string, in quotes: "3", not 3)'
        return " (store it as a string column)"

    def _check_allowed_values(self) -> None:
        """A column of a closed set of values (the definition's ``values``) holds one of them
        in every row: XCOPA's ``question`` of ``why`` built "What is the more plausible why?"."""
        for column, values in (self.task.extra.get("values") or {}).items():
            permitted = frozenset(values)
            for index, value in enumerate(self.table.column(column).to_pylist()):
                if not (isinstance(value, str) and value in permitted):
                    raise MsltError(  # `1` beside the values `1, 2` read as allowed: "text"
                        f"{self.at_row(index)}: column {column!r} is {clipped(value)}; "
                        f"allowed (text): {allowed(values)}"
                    )

    def at_row(self, index: int) -> str:
        """``FILE: line N`` (or ``FILE: row N of the file (counted from 0)``: :func:`row_place`),
        where the table's row ``index`` is in the file the user opens: a file of many languages
        is read one language at a time, and a position among one language's rows named
        another row."""
        row = int(self.file_rows[index]) if self.file_rows is not None else index
        return f"{self.origin}: {row_place(self.path, row)}"

    def _check_rows(self) -> None:
        """The task's own row check (a multiple-choice row's choices and gold index)."""
        for index, row in enumerate(self.table.select(list(self.task.columns)).to_pylist()):
            self._check_row(row, index)

    def _check_row(self, row: Row, index: int) -> None:
        """One row through the task's check; a problem is one line naming the file and row."""
        check = self.task.check_row
        assert check is not None
        try:
            check(row)
        except (ValueError, MsltError) as error:
            raise MsltError(f"{self.at_row(index)}: {error}") from None

    def __len__(self) -> int:
        return len(self._kept)

    def usable_among_first(self, count: int) -> int:
        return int(np.searchsorted(self._kept, count))  # kept rows' places, in order

    def rows(self, indices: Sequence[int]) -> list[Row]:
        originals = self._kept[np.asarray(indices, dtype=np.int64)]
        rows = self.table.take(pa.array(originals, type=pa.int64())).to_pylist()
        lazy = self.task.check_row is not None and self.task.kind == "instructions"
        for original, row in zip(originals.tolist(), rows, strict=True):  # Python ints: cheaper
            if lazy:  # a corpus is large: only the rows taken are checked
                self._check_row(row, original)
            row["id"] = row_id(self.task, self.lang, self.split, original)
        return rows


def check_split(task: Task, split: str) -> None:
    if split not in task.splits:
        raise MsltError(
            f"split: task {task.name} has no split {split!r}; its splits: {allowed(task.splits)}"
        )


def synthetic_generator(task: Task) -> str:
    """The synthetic generator a task's definition names; a task without one has no such data."""
    generator = task.extra.get("synthetic")
    if generator is None:
        raise MsltError(
            f"data: task {task.name} has no synthetic rows (its definition names no generator); "
            "use data: hub or a folder"
        )
    if generator not in SPLIT_SIZES:
        raise MsltError(
            f"{task.extra.get('definition', task.name)}: synthetic: unknown generator "
            f"{generator!r}; known: {allowed(SPLIT_SIZES)}"
        )
    return generator


def open_split(task: Task, lang: str, split: str, data: str) -> SplitRows:
    """Open one split from ``data`` (``hub``, ``synthetic`` or a directory path)."""
    check_data_value(data)  # "" would read the working folder: Path("") is "."
    check_split(task, split)
    if data == "synthetic":
        return SyntheticSplit(task, lang, split)
    if data == "hub":
        return _open_hub(task, lang, split)
    return _open_local(task, lang, split, Path(data))


def _open_hub(task: Task, lang: str, split: str) -> TableSplit:
    import datasets

    if not task.hub_id:
        raise MsltError(
            f"data: task {task.name} has no Hub dataset (its definition names none); use a "
            f"folder laid out as DIR/{task.name}/<lang>/<split>.jsonl"
        )
    origin = f"{task.hub_id} (config {task.hub_config(lang)}, split {split})"
    try:
        dataset = datasets.load_dataset(task.hub_id, task.hub_config(lang), split=split)
    except Exception as error:  # network, missing config, auth: all reported the same way
        raise MsltError(
            f"data: could not load {origin} from the Hub: {first_line(error)}"
        ) from error
    table, origin, places = language_rows(dataset.data.table, task, lang, origin, None)
    fingerprint = getattr(dataset, "_fingerprint", None)
    return TableSplit(
        table, task, lang, split, origin, file_rows=places, hub_fingerprint=fingerprint
    )


def check_language_column(table: pa.Table, task: Task, lang: str, origin: str) -> None:
    """A single table's language column must hold text (an Arrow comparison of numbers with a
    language code is a crash, not a filter)."""
    column = task.extra.get("language_column")
    if not column or column not in table.column_names:
        return  # no column to check, or language_rows names the missing one
    kind = table.schema.field(column).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return
    values = [v for v in table.column(column).to_pylist()[:1000] if v is not None]
    example = f" (e.g. {values[0]!r})" if values else ""
    style = "ISO 639-3 codes" if task.extra.get("language_values") == "iso639_3" else "codes"
    raise MsltError(
        f"{origin}: column {column!r} holds {kind} values{example}; task {task.name}'s "
        f"language column must hold each row's language as text, its language {style} "
        f"(for {lang}: {task.language_value(lang)!r})"
    )


def language_rows(
    table: pa.Table, task: Task, lang: str, origin: str, path: Path | None
) -> tuple[pa.Table, str, np.ndarray | None]:
    """The rows of ``lang`` in a table of many languages (all rows where there is no column),
    and their places in it (None: all of them, in order). ``path``: the local file the table
    was read from (None: the Hub), where an error names a row (:func:`row_place`)."""
    value = task.language_value(lang)
    if value is None:
        return table, origin, None
    import pyarrow.compute as pc

    column = str(task.extra["language_column"])
    if column not in table.column_names:
        raise MsltError(
            f"{origin}: missing column {column!r} (task {task.name}'s language_column); found: "
            f"{allowed(table.column_names)}"
        )
    check_language_column(table, task, lang, origin)
    check_no_near_miss(table.column(column), column, value, origin, path)
    chosen = pc.fill_null(pc.equal(table.column(column), value), False)
    places = np.flatnonzero(chosen.to_numpy(zero_copy_only=False))
    return table.filter(chosen), f"{origin} [{column} = {value}]", places


def check_no_near_miss(
    column: pa.ChunkedArray, name: str, value: str, origin: str, path: Path | None = None
) -> None:
    """Rows whose language is written another way (``EN``, ``en `` for ``en``) were left out
    without a word: the build took the other rows and its budget error never named them.
    A value of another language is no near miss: a corpus of many languages is read for one."""
    import pyarrow.compute as pc

    for found in pc.unique(column).to_pylist():
        if isinstance(found, str) and found != value and found.strip().lower() == value.lower():
            place = row_place(path, pc.index(column, found).as_py())
            raise MsltError(
                f"{origin}: column {name!r} holds {clipped(found)} ({place}), which reads "
                f"as {value!r} but is not written as the task writes it; write {value!r}"
            )


def local_path(root: Path, task: Task, lang: str, split: str) -> Path | None:
    """The file holding a local split, if there is one: the language's own file, or (for a task
    with a language column) the one table of every language."""
    folders = [root / task.name / lang]
    if task.extra.get("language_column"):
        folders.append(root / task.name)
    candidates = [folder / f"{split}{suffix}" for folder in folders for suffix in LOCAL_SUFFIXES]
    found = [path for path in candidates if _present(path)]  # a FIFO too: not a regular file,
    # said when read
    if len(found) > 1:  # one would be read and edits to the other ignored, without a word
        raise MsltError(
            f"data: both {str(found[0])!r} and {str(found[1])!r} hold {task.name}/{lang}/"
            f"{split}; keep one"
        )
    return found[0] if found else None


def _present(path: Path) -> bool:
    """Whether anything is at ``path`` (a dangling link too). A folder on the way that cannot
    be searched is named: Python's own error named the first file looked for, which need not
    exist (``train.parquet`` for a folder of JSON lines), as one that could not be written."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as error:
        raise MsltError(
            f"data: cannot look in {str(path.parent)!r} ({error.strerror or error}); the "
            "folder must be readable"
        ) from None
    return True


def _open_local(task: Task, lang: str, split: str, root: Path) -> TableSplit:
    if not root.is_dir():
        raise MsltError(
            f"data: {str(root)!r} is not a directory; use 'hub', 'synthetic' or a directory"
        )
    path = local_path(root, task, lang, split)
    if path is None:
        expected = root / task.name / lang / f"{split}.parquet"
        raise MsltError(
            f"data: no file for {task.name}/{lang}/{split}: expected {expected} or .jsonl"
        )
    check_regular_file(path, "data")  # a FIFO would block the reader, a folder confuse it
    table, digest = read_hashed(path, read_cached_table)
    return file_split(table, path, task, lang, split, digest)


def check_local_file(path: Path, limit: int = MAX_DATA_BYTES) -> None:
    """A local split's file is a regular file within ``limit`` bytes, as :func:`read_hashed`
    will require: checked by a recipe's dry run, where a FIFO, a folder or a huge file in the
    evaluation's folder passed and stopped the run after every training."""
    size = check_regular_file(path, "data")
    if size > limit:
        raise too_large(path, size, limit)


def too_large(path: Path, size: int, limit: int) -> MsltError:
    return MsltError(
        f"data: {str(path)!r} is {size:,} bytes; a data file may be at most {limit:,} bytes "
        "(split it into several, or one per language)"
    )


def read_hashed(
    path: Path, read: Callable[[Path], pa.Table], limit: int = MAX_DATA_BYTES
) -> tuple[pa.Table, str]:
    """``read(path)`` and the digest of the bytes it read: hashed just before, and the file's
    state (size, times, inode) the same after the read as before the hash. A file replaced
    while it was read, even by a copy of itself put back, recorded one file's digest beside
    another's rows. A file over ``limit`` bytes is refused first: a 50 GB sparse file was
    hashed whole, for minutes, before the reader's own limit refused it."""
    state = file_state(path)
    if state is not None and state[0] > limit:
        raise too_large(path, state[0], limit)
    digest = file_sha256(path, field="data")
    table = read(path)
    if file_state(path) != state:
        raise MsltError(f"data: {path} changed while mslt-it read it; run again once it is written")
    return table, digest


def file_split(
    table: pa.Table, path: Path, task: Task, lang: str, split: str, sha256: str | None = None
) -> TableSplit:
    """The rows of ``lang`` in the table read from the local file ``path``: all of them in a
    language's own file, else those its language column names (a table of many languages).
    ``sha256``: the file's digest taken just before ``table`` was read from it."""
    origin, places = str(path), None
    if path.parent.name != lang or path.parent.parent.name != task.name:  # one table, many langs
        table, origin, places = language_rows(table, task, lang, origin, path)
    return TableSplit(
        table, task, lang, split, origin=origin, file_rows=places, path=path, sha256=sha256
    )


def read_cached_table(path: Path) -> pa.Table:
    """A local table, read once per process however many languages are taken from it."""
    return _read_table(path.resolve(), file_state(path))


@lru_cache(maxsize=8)
def _read_table(path: Path, state: object) -> pa.Table:  # state: a replaced file reads again
    return read_arrow_table(path, "data")
