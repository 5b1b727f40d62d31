"""Parallel sentences: the same ``n`` sentences in every analysed language, row by row.

Representation metrics that compare languages (CKA, retrieval) are only meaningful when row ``i``
is the same sentence in every language, so alignment is verified, never assumed:

- ``hub``: XNLI's ``all_languages`` config groups the 15 translations of each sentence pair in
  one row (``premise`` is a dict language → text; ``hypothesis`` holds parallel ``language`` and
  ``translation`` lists), so rows are aligned by construction.
- a folder ``DIR`` (``DIR/xnli/<lang>/<split>.parquet|jsonl``, one file per language, as the Hub's
  per-language configs are): rows must be equal in number and carry the same label row by row.
- ``synthetic``: row ``i`` says the same thing in every language by construction.
- ``--parallel FILE``: CSV, JSON lines or Parquet with one column per language code.

XNLI repeats each premise once per hypothesis (three times), and identical rows would make
retrieval ambiguous, so rows are de-duplicated on their texts before sampling.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it.errors import MsltError, allowed, clipped, first_line
from mslt_it.files import check_regular_file
from mslt_it.io import read_arrow_table
from mslt_it.languages import get_language
from mslt_it.tasks import check_each_once, check_languages, get_task
from mslt_it.tasks.sources import check_split, open_split

FIELDS = ("premise", "hypothesis")
HUB_CONFIG = "all_languages"


@dataclass(frozen=True)
class ParallelSentences:
    """``texts[lang][i]`` is sentence ``i`` in ``lang``; every language has the same rows."""

    langs: tuple[str, ...]
    texts: dict[str, list[str]]
    ids: list[str]
    origin: str
    source_rows: int  # rows the source has, before de-duplication and sampling

    @property
    def n(self) -> int:
        return len(self.ids)


MIN_SENTENCES = 3
"""Fewest parallel sentences per language: with two, each language's centred representations
are one line through the origin, and linear CKA between any two languages is 1 by construction."""


def check_langs(langs: Sequence[str]) -> None:
    """At least two distinct languages: a single one has nothing to be agnostic about."""
    if len(langs) < 2:
        raise MsltError(f"--langs: {','.join(langs) or '(none)'}: give at least two languages")
    check_each_once(langs, "--langs")


def load_parallel(
    langs: Sequence[str],
    n: int,
    data: str = "synthetic",
    split: str = "test",
    field: str = "premise",
    parallel_file: str | Path | None = None,
    seed: int = 0,
) -> ParallelSentences:
    """``n`` parallel sentences in ``langs``, sampled with ``seed`` from the chosen source."""
    check_langs(langs)
    if n < MIN_SENTENCES:
        raise MsltError(
            f"--n: {n} is too small; use {MIN_SENTENCES} or more sentences per language (the "
            "linear CKA of two centred points is 1 whatever the model)"
        )
    if parallel_file is not None:
        source = _from_file(Path(parallel_file), langs)
    else:
        if field not in FIELDS:
            raise MsltError(f"--field: unknown field {field!r}; use one of {allowed(FIELDS)}")
        source = _from_xnli(langs, data, split, field)
    rows, ids, source_rows = _sample_distinct(source, n, seed)
    texts = {lang: [row[k] for row in rows] for k, lang in enumerate(langs)}
    return ParallelSentences(tuple(langs), texts, ids, source.origin, source_rows)


@dataclass
class _Source:
    """Rows of parallel texts, fetched by index (so synthetic rows cost only those sampled)."""

    origin: str
    size: int
    fetch: Callable[[Sequence[int]], tuple[list[tuple[str, ...]], list[str]]]


def _sample_distinct(source: _Source, n: int, seed: int) -> tuple[list, list[str], int]:
    """A seeded sample of ``n`` distinct complete rows, kept in their original order.

    Walks a seeded permutation in chunks, skipping rows with an empty text in any language and
    repeats of a row already taken (XNLI repeats each premise three times). Returns the rows,
    their ids and how many rows the source has (distinct rows, when it had to count them all).
    """
    order = np.random.default_rng(seed).permutation(source.size)
    seen: set[tuple[str, ...]] = set()
    taken: list[tuple[int, tuple[str, ...], str]] = []
    chunk = max(2 * n, 256)
    for start in range(0, source.size, chunk):
        indices = sorted(int(i) for i in order[start : start + chunk])
        rows, ids = source.fetch(indices)
        by_index = dict(zip(indices, zip(rows, ids, strict=True), strict=True))
        for index in order[start : start + chunk]:
            row, row_id = by_index[int(index)]
            if any(not isinstance(t, str) or not t.strip() for t in row) or row in seen:
                continue
            seen.add(row)
            taken.append((int(index), row, row_id))
            if len(taken) == n:
                taken.sort()
                return [t[1] for t in taken], [t[2] for t in taken], source.size
    if len(taken) < MIN_SENTENCES:  # no --n would do: "use --n 1 or less" was refused too
        raise MsltError(
            f"--n: {source.origin} holds {len(taken)} distinct parallel sentences with a text in "
            f"every language; an analysis needs {MIN_SENTENCES} or more"
        )
    raise MsltError(
        f"--n: {n} is more than the {len(taken)} distinct parallel sentences in {source.origin}; "
        f"use --n {len(taken)} or less"
    )


# --- XNLI -----------------------------------------------------------------------------------


def _from_xnli(langs: Sequence[str], data: str, split: str, field: str) -> _Source:

    task = get_task("xnli")
    for lang in langs:
        try:
            get_language(lang)
        except MsltError as error:
            raise MsltError(f"--langs: {error}") from None
    if data != "synthetic":
        check_languages(task, list(langs), field="--langs")
    check_split(task, split)
    if data == "hub":
        return _from_hub(task.hub_id, langs, split, field)
    return _from_splits(task, langs, split, field, data)


def _from_hub(hub_id: str, langs: Sequence[str], split: str, field: str) -> _Source:
    """XNLI's all_languages config: one row holds every translation of a sentence pair."""
    import datasets

    origin = f"{hub_id} (config {HUB_CONFIG}, split {split})"
    try:
        dataset = datasets.load_dataset(hub_id, HUB_CONFIG, split=split)
    except Exception as error:  # network, missing config, auth: all reported the same way
        raise MsltError(
            f"data: could not load {origin} from the Hub: {first_line(error)}"
        ) from error
    if field not in dataset.column_names:
        raise MsltError(
            f"data: {origin} has no column {field!r} (found: {allowed(dataset.column_names)})"
        )
    column = dataset.data.table.column(field).to_pylist()
    rows = []
    for index, cell in enumerate(column):
        by_lang = _translations(cell)
        missing = [lang for lang in langs if lang not in by_lang]
        if missing:
            raise MsltError(
                f"--langs: {origin} row {index} has no {field} in {missing[0]!r}; "
                f"its languages: {allowed(sorted(by_lang))}"
            )
        rows.append(tuple(by_lang[lang] for lang in langs))

    def fetch(indices: Sequence[int]) -> tuple[list[tuple[str, ...]], list[str]]:
        return [rows[i] for i in indices], [f"xnli/{split}/{i}" for i in indices]

    return _Source(origin, len(rows), fetch)


def _translations(cell: dict[str, Any]) -> dict[str, str]:
    """language → text from a Translation (dict) or TranslationVariableLanguages (two lists)."""
    if isinstance(cell, dict) and "language" in cell and "translation" in cell:
        return dict(zip(cell["language"], cell["translation"], strict=True))
    return dict(cell or {})


def _from_splits(task: Any, langs: Sequence[str], split: str, field: str, data: str) -> _Source:
    """One split per language (synthetic or a folder), checked to be aligned row by row.

    Equal row counts are checked up front; equal labels on every row that is fetched, which is
    every row the analysis uses (a shifted file fails on the first few rows).
    """

    opened = {lang: open_split(task, lang, split, data) for lang in langs}
    origin = "synthetic XNLI" if data == "synthetic" else f"{data} (xnli/*/{split})"
    origin = f"{origin}, split {split}"
    sizes = {lang: len(rows) for lang, rows in opened.items()}
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{lang} {size}" for lang, size in sizes.items())
        dropped = {lang: getattr(rows, "dropped", 0) for lang, rows in opened.items()}
        unlabelled = ", ".join(f"{lang} {count}" for lang, count in dropped.items() if count)
        why = (  # the files may hold as many rows: the unlabelled ones are not read
            f" once unlabelled rows are left out ({unlabelled})" if unlabelled else ""
        )
        raise MsltError(
            f"data: {origin} is not aligned across languages: row counts differ{why} "
            f"({listing}); parallel sentences need the same rows, translated, in every language"
        )

    def fetch(indices: Sequence[int]) -> tuple[list[tuple[str, ...]], list[str]]:
        per_lang = {lang: split_rows.rows(indices) for lang, split_rows in opened.items()}
        _check_labels(per_lang, indices, origin)
        rows = [tuple(per_lang[lang][k][field] for lang in langs) for k in range(len(indices))]
        return rows, [f"xnli/{split}/{i}" for i in indices]

    return _Source(origin, next(iter(sizes.values())), fetch)


def _check_labels(
    per_lang: dict[str, list[dict[str, Any]]], indices: Sequence[int], origin: str
) -> None:
    """Translations of one sentence pair share its label; a mismatch means shifted rows."""
    langs = list(per_lang)
    reference = [row.get("label") for row in per_lang[langs[0]]]
    for lang in langs[1:]:
        for k, row in enumerate(per_lang[lang]):
            if row.get("label") != reference[k]:
                raise MsltError(
                    f"data: {origin} is not aligned across languages: row {indices[k]} is "
                    f"labelled {reference[k]!r} in {langs[0]} but {row.get('label')!r} in {lang}; "
                    "parallel sentences need the same rows, translated, in every language"
                )


# --- a file of parallel sentences --------------------------------------------------------------


def _from_file(path: Path, langs: Sequence[str]) -> _Source:
    """One column per language code; an ``id`` column, when present and not a language analysed
    (Indonesian's code is ``id``), names the rows, each once."""
    import pyarrow as pa

    table = read_parallel_table(path)
    repeated = [name for name in table.column_names if table.column_names.count(name) > 1]
    if repeated:
        raise MsltError(
            f"--parallel: {path} has the column {repeated[0]!r} twice; one column per language"
        )
    missing = [lang for lang in langs if lang not in table.column_names]
    if missing:
        raise MsltError(
            f"--langs: {path} has no column {missing[0]!r}; its columns: "
            f"{allowed(table.column_names)}"
        )
    if table.num_rows == 0:
        raise MsltError(f"--parallel: {path} holds no rows, only its header")
    for lang in langs:
        kind = table.schema.field(lang).type
        if pa.types.is_dictionary(kind):  # a pandas `category` column: text stored once each
            decoded = table.column(lang).cast(kind.value_type)
            table = table.set_column(table.column_names.index(lang), lang, decoded)
            kind = kind.value_type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise MsltError(
                f"--parallel: {path}: column {lang!r} holds {kind} values, not text (UTF-8 "
                "sentences)"
            )
    columns = [table.column(lang).to_pylist() for lang in langs]
    rows = list(zip(*columns, strict=True))
    if "id" in table.column_names and "id" not in langs:  # "id" is Indonesian's column too
        ids = [str(value) for value in table.column("id").to_pylist()]
        twice = next((name for name, count in Counter(ids).items() if count > 1), None)
        if twice is not None:  # two rows of one name: which sentence a result is of is lost
            raise MsltError(
                f"--parallel: {path}: column 'id' names the row {clipped(twice, 60)} more than "
                "once; name each row once, or leave the column out (a column of Indonesian "
                "sentences names the rows unless id is among --langs)"
            )
    else:
        ids = [f"{path.name}/{i}" for i in range(len(rows))]

    def fetch(indices: Sequence[int]) -> tuple[list[tuple[str, ...]], list[str]]:
        return [rows[i] for i in indices], [ids[i] for i in indices]

    return _Source(str(path), len(rows), fetch)


MAX_PARALLEL_BYTES = 500_000_000
"""Largest ``--parallel`` file: it is read whole to take ``--n`` sentences (FLORES-200's 204
languages are about 60 MB); a gigabyte took 5 GB of memory for three sentences."""


def read_parallel_table(path: Path) -> Any:
    """A CSV, JSON-lines or Parquet file as an Arrow table; anything else is a clear error."""
    suffixes = (".csv", ".jsonl", ".json", ".parquet")
    if path.suffix not in suffixes:
        raise MsltError(f"--parallel: {path.name}: unknown format; use {allowed(suffixes)}")
    size = check_regular_file(path, "--parallel")
    if size > MAX_PARALLEL_BYTES:
        raise MsltError(
            f"--parallel: {str(path)!r} is {size:,} bytes; a file of parallel sentences may be "
            f"at most {MAX_PARALLEL_BYTES:,} (keep the languages and rows you analyse)"
        )
    return read_arrow_table(path, "--parallel")
