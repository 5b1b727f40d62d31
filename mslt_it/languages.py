"""Language registry: every language code the tasks use, with what selection criteria need.

The codes are the Hugging Face config names of the task datasets (``facebook/xnli``,
``google-research-datasets/paws-x``, ``unimelb-nlp/wikiann``), spelled exactly as the Hub spells
them (``zh-yue``, ``be-x-old``, ``simple``…), so a code can be passed straight to
``datasets.load_dataset``. For each code the registry records the ISO 639 codes, the script, the
language family, whether lang2vec has it, and which tasks have data for it. Per-language
pretraining-corpus sizes (CC-100, ROOTS, mC4) come from copies of the published tables.

The data live in ``mslt_it/resources`` (``languages.csv`` and ``pretraining_sizes/``) and are
read on first use, so importing this module costs nothing. ``languages.csv`` was generated once
from the dataset configs and lang2vec; lang2vec itself is not imported here (it takes seconds).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

from mslt_it.errors import MsltError, allowed

_TASKS = ("xnli", "pawsx", "wikiann")  # the tasks with a membership column in languages.csv

REGISTRY_COLUMNS: tuple[str, ...] = (*_TASKS, "all")
"""What a task definition's ``languages: {registry: …}`` may name: a membership column of
``languages.csv``, or ``all`` (every registered language). Checked when the definition loads."""

XTREME_WIKIANN: tuple[str, ...] = (
    "af", "ar", "bg", "bn", "de", "el", "en", "es", "et", "eu",
    "fa", "fi", "fr", "he", "hi", "hu", "id", "it", "ja", "jv",
    "ka", "kk", "ko", "ml", "mr", "ms", "my", "nl", "pt", "ru",
    "sw", "ta", "te", "th", "tl", "tr", "ur", "vi", "yo", "zh",
)  # fmt: skip
"""The 40 WikiAnn (PAN-X) languages of XTREME, the usual evaluation subset."""

PRETRAINING_SOURCES: dict[str, str] = {
    "cc100": (
        "CC-100 size in GiB: Conneau et al. 2020, XLM-R (arXiv:1911.02116), Appendix A, Table 6 "
        "(via mayhewsw/multilingual-data-stats; zh and my are sums of the table's two rows)"
    ),
    "roots": (
        "ROOTS size in bytes: Laurençon et al. 2022, The BigScience ROOTS Corpus "
        "(arXiv:2303.03915), language table (via bigscience-workshop/xmtf; zh = zh-Hans + zh-Hant)"
    ),
    "mc4": (
        "mC4 tokens in billions: Xue et al. 2021, mT5 (arXiv:2010.11934), appendix table of "
        "per-language mC4 statistics (via bigscience-workshop/xmtf)"
    ),
}
"""One-line citation of each pretraining-size table, for report footnotes."""

# corpus -> (file in resources/pretraining_sizes, the unit every row of it must have)
_PRETRAINING_FILES = {
    "cc100": ("cc100.csv", "GiB"),
    "roots": ("roots.csv", "bytes"),
    "mc4": ("mc4.csv", "B_tokens"),
}

_COLUMNS = (
    "code", "name", "iso639_1", "iso639_3", "script", "family",
    "lang2vec", "xnli", "pawsx", "wikiann", "xtreme_wikiann",
)  # fmt: skip


@dataclass(frozen=True)
class Language:
    """One registry entry; ``code`` is the Hub config name, the key used everywhere else."""

    code: str
    name: str
    iso639_1: str | None
    iso639_3: str
    script: str  # ISO 15924, the script the language's Wikipedia mostly uses
    family: str  # top-level family ("Indo-European", "Language isolate", "Constructed"…)
    in_lang2vec: bool  # iso639_3 is in lang2vec.LANGUAGES (measured when the CSV was made)
    tasks: frozenset[str]  # the subset of _TASKS with data in this language
    xtreme_wikiann: bool


def _read_resource(*parts: str) -> str:
    """Text of a packaged data file, wherever the package is installed (wheel, zip, checkout)."""
    return resources.files("mslt_it").joinpath("resources", *parts).read_text(encoding="utf-8")


def _flag(row: dict[str, str], column: str) -> bool:
    value = row[column]
    if value not in ("0", "1"):
        raise RuntimeError(f"languages.csv: {row['code']}: {column} must be 0 or 1, not {value!r}")
    return value == "1"


@cache
def _registry() -> dict[str, Language]:
    """Parse ``languages.csv`` once; a malformed file is a packaging bug, not a user error."""
    reader = csv.DictReader(io.StringIO(_read_resource("languages.csv")))
    if tuple(reader.fieldnames or ()) != _COLUMNS:
        raise RuntimeError(f"languages.csv: columns {reader.fieldnames} != {list(_COLUMNS)}")
    registry: dict[str, Language] = {}
    for row in reader:
        registry[row["code"]] = Language(
            code=row["code"],
            name=row["name"],
            iso639_1=row["iso639_1"] or None,
            iso639_3=row["iso639_3"],
            script=row["script"],
            family=row["family"],
            in_lang2vec=_flag(row, "lang2vec"),
            tasks=frozenset(task for task in _TASKS if _flag(row, task)),
            xtreme_wikiann=_flag(row, "xtreme_wikiann"),
        )
    return registry


def all_languages() -> dict[str, Language]:
    """Every registered language, code -> Language, in CSV (alphabetical) order.

    A fresh dict each call, so a caller that edits it cannot corrupt the cached registry.
    """
    return dict(_registry())


def get_language(code: str) -> Language:
    """The registry entry for ``code``; a one-line :class:`MsltError` naming it if unknown."""
    registry = _registry()
    try:
        return registry[code]
    except (KeyError, TypeError):
        raise MsltError(
            f"unknown language code {code!r}; known codes: {allowed(registry)}"
        ) from None


def languages_of_task(task: str) -> list[str]:
    """The codes ``task`` has data for, in CSV order (these are also its Hub config names)."""
    if task not in _TASKS:
        raise MsltError(
            f"unknown task {task!r} for the language registry; allowed: {allowed(_TASKS)}"
        )
    return [code for code, lang in _registry().items() if task in lang.tasks]


@cache
def _pretraining_table(corpus: str) -> dict[str, float]:
    """code -> size for one corpus; the CSV codes equal the registry codes where both exist."""
    filename, unit = _PRETRAINING_FILES[corpus]
    table: dict[str, float] = {}
    for row in csv.DictReader(io.StringIO(_read_resource("pretraining_sizes", filename))):
        if row["unit"] != unit:
            raise RuntimeError(f"{filename}: {row['iso639_1']}: unit {row['unit']!r} != {unit!r}")
        table[row["iso639_1"]] = float(row["value"])
    return table


def pretraining_size(code: str, corpus: str) -> float | None:
    """How much of ``code`` the corpus holds, in the unit of :data:`PRETRAINING_SOURCES`.

    ``None`` means the source table has no row for the language (it was not a target language, or
    the registry code names a variety the table does not list, e.g. ``simple`` or ``zh-yue``);
    no number is ever guessed or filled in. ``zh`` and CC-100 ``my`` use the derived rows that sum
    the table's two rows (Simplified + Traditional; the two Burmese encodings), so ``zh`` covers
    all of Chinese, not only the Simplified script that XNLI and PAWS-X use.
    """
    if corpus not in _PRETRAINING_FILES:
        raise MsltError(
            f"unknown pretraining corpus {corpus!r}; allowed: {allowed(_PRETRAINING_FILES)}"
        )
    get_language(code)
    return _pretraining_table(corpus).get(code)


__all__ = [
    "PRETRAINING_SOURCES",
    "REGISTRY_COLUMNS",
    "XTREME_WIKIANN",
    "Language",
    "all_languages",
    "get_language",
    "languages_of_task",
    "pretraining_size",
]
