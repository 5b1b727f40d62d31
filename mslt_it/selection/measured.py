"""Measured transfer: which source set scored what on which target language.

A predictor learns from these rows (``mslt-it select --fit FILE``). The file is a report's
``scores.csv`` (columns ``sources``, ``task``, ``lang``, ``score`` among others) or any CSV with
``sources`` (``ar+de+zh``), a target column (``lang`` or ``target``) and ``score``. Rows of a
base model (no sources) and rows whose target is one of the set's own sources are left out: the
predictor answers a zero-shot question, how well a set carries over to a language it was not
trained on.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from mslt_it.errors import MsltError, allowed, clipped
from mslt_it.files import PLAIN_NUMBER, csv_table, read_user_text
from mslt_it.languages import get_language

MAX_RESULTS_BYTES = 64_000_000
"""A results file larger than this is refused (a 35-set study's scores.csv is about 60 kB)."""

TARGET_COLUMNS = ("lang", "target")
MAX_ABS_SCORE = 1e6
"""Scores are accuracies, F1s or the like; a larger magnitude is a unit or typing mistake (and
would overflow the float32 LightGBM learns in)."""


@dataclass(frozen=True)
class Measured:
    """One measured score of a source set on a target language."""

    sources: tuple[str, ...]  # alphabetical
    target: str
    score: float


@dataclass
class MeasuredTransfer:
    """The rows a predictor is fitted on, and what was left out of the file."""

    rows: list[Measured]
    path: str
    notes: list[str] = field(default_factory=list)
    singles: dict[str, dict[str, float]] = field(default_factory=dict)
    sha256: str = ""
    """The SHA-256 of the bytes these rows were read from (not of the file read again later: it
    may have been edited meanwhile, and a predictor would record a digest of other results)."""
    """Runs of one source beside sets of k >= 2: ``{source: {target: score}}``. They are not
    fitted on (a set of one is not a set of k) but are evidence about every set that holds the
    source: what it carries to each target alone."""

    @property
    def sets(self) -> list[tuple[str, ...]]:
        return sorted({row.sources for row in self.rows})

    @property
    def targets(self) -> list[str]:
        return sorted({row.target for row in self.rows})

    @property
    def languages(self) -> list[str]:
        return sorted({c for s in self.sets for c in s} | set(self.targets))


def split_sources(text: str) -> list[str]:
    """``"ar,en,zh"`` or ``"ar+en+zh"`` (spaces allowed) -> codes."""
    return [code.strip() for code in re.split(r"[,+]", text) if code.strip()]


def parse_score(cell: str | None, where: str) -> float:
    """A results file's ``score`` cell: a finite number, or a one-line error naming ``where``."""
    if cell is None or not cell.strip():
        raise MsltError(f"{where}: score is empty")
    if PLAIN_NUMBER.fullmatch(cell) is None:
        if cell.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise MsltError(
                f"{where}: score {clipped(cell, 40)} is not finite; allowed: finite numbers"
            )
        raise MsltError(f"{where}: score {clipped(cell, 40)} is not a number")
    value = float(cell)
    if not abs(value) <= MAX_ABS_SCORE:
        raise MsltError(
            f"{where}: score {clipped(cell.strip(), 40)} is out of range; allowed: numbers between "
            f"{-MAX_ABS_SCORE:,.0f} and {MAX_ABS_SCORE:,.0f}"
        )
    return value


def finite_or_none(value: float) -> float | None:
    """A number for JSON and tables: ``None`` where it is NaN or infinite."""
    return float(value) if math.isfinite(value) else None


def parse_sources(cell: str, where: str) -> tuple[str, ...]:
    """A results file's ``sources`` cell: distinct known codes, sorted (empty: a base model)."""
    codes = split_sources(cell)
    if cell.strip() and len(codes) != len(re.split(r"[,+]", cell)):
        raise MsltError(
            f"{where}: sources {clipped(cell, 80)} has an empty name; write sets like ar+de+zh "
            "(or leave the cell empty for a base model)"
        )
    for code in codes:
        try:
            get_language(code)
        except MsltError as error:
            raise MsltError(f"{where}: sources: {error}") from None
    if len(set(codes)) != len(codes):
        raise MsltError(f"{where}: sources {cell!r} lists a language twice")
    return tuple(sorted(codes))


def load_measured(
    path: str | Path,
    task: str,
    task_languages: list[str],
    *,
    k: int | None = None,
    min_sets: int = 2,
    option: str = "--fit",
) -> MeasuredTransfer:
    """The measured rows of ``path`` for ``task`` (one set size: ``k``, or the file's only one).

    Everything a predictor cannot learn from is a one-line error: a file without the columns,
    a score that is not a finite number, a language outside the task, one set or one target
    only, sets of several sizes without ``k``, a set measured twice on one target.
    """
    where = f"{option}: {path}"
    raw = read_user_text(path, option, MAX_RESULTS_BYTES)
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()  # decoded exactly: the file's bytes
    columns, records = csv_table(raw, where)
    found_targets = [c for c in TARGET_COLUMNS if c in columns]
    if len(found_targets) > 1:  # which one is the target would be a guess
        raise MsltError(
            f"{where}: has both {' and '.join(map(repr, found_targets))} columns; keep the one "
            "that names the language scored"
        )
    target_column = found_targets[0] if found_targets else None
    if "sources" not in columns or "score" not in columns or target_column is None:
        raise MsltError(
            f"{where}: needs columns 'sources', 'lang' (or 'target') and 'score', "
            f"found {allowed(columns) if columns else 'none'}"
        )
    rows: list[Measured] = []
    skipped_base = skipped_own = other_task = 0
    seen: dict[tuple[tuple[str, ...], str], int] = {}
    tasks_found: set[str] = set()
    for line, record in records:
        at = f"{where}:{line}"
        if "task" in columns and (record.get("task") or "").strip() != task:
            other_task += 1
            tasks_found.add((record.get("task") or "").strip())
            continue
        sources = parse_sources(record.get("sources") or "", at)
        target = (record.get(target_column) or "").strip()
        if target not in task_languages:
            raise MsltError(
                f"{at}: {target_column} {target!r} is not a language of task {task}; "
                f"allowed: {allowed(task_languages)}"
            )
        outside = [code for code in sources if code not in task_languages]
        if outside:
            raise MsltError(
                f"{at}: sources: {outside[0]!r} is not a language of task {task}; "
                f"allowed: {allowed(task_languages)}"
            )
        score = parse_score(record.get("score"), at)
        if not sources:
            skipped_base += 1
            continue
        if target in sources:
            skipped_own += 1
            continue
        key = (sources, target)
        if key in seen:
            raise MsltError(
                f"{at}: {'+'.join(sources)} on {target} is also on line {seen[key]}; "
                "average repeated runs first"
            )
        seen[key] = line
        rows.append(Measured(sources, target, score))
    if other_task and not rows and not skipped_base and not skipped_own:
        raise MsltError(
            f"{where}: no rows of task {task}; its task column has {allowed(sorted(tasks_found))}"
        )
    rows.sort(key=lambda row: (row.sources, row.target))  # the file's order changes nothing
    result = MeasuredTransfer(rows, str(path), sha256=digest)
    if other_task:
        result.notes.append(f"{other_task} rows of other tasks left out")
    if skipped_base:
        result.notes.append(f"{skipped_base} rows without sources (base models) left out")
    if skipped_own:
        result.notes.append(f"{skipped_own} rows on a set's own source languages left out")
    return _one_size(result, k, where, min_sets)


def _one_size(
    result: MeasuredTransfer, k: int | None, where: str, min_sets: int
) -> MeasuredTransfer:
    sizes = sorted({len(s) for s in result.sets})
    if not sizes:
        raise MsltError(f"{where}: no measured rows (sources, target, score) to learn from")
    if k is not None:
        kept = [row for row in result.rows if len(row.sources) == k]
        if k >= 2:
            result.singles = _singles(result.rows)
        if not kept:
            raise MsltError(
                f"--k: {k}, but {where.partition(': ')[2]} has no sets of {k} languages; it "
                "has sets of "
                f"{allowed([str(s) for s in sizes])}"
            )
        others = sorted(set(sizes) - {k, 1} if result.singles else set(sizes) - {k})
        if others:
            shown = ", ".join(map(str, others))
            result.notes.append(f"sets of {shown} languages left out (fitting on sets of {k})")
        if result.singles:
            rows = sum(len(targets) for targets in result.singles.values())
            result.notes.append(
                f"runs of {len(result.singles)} single sources ({rows} rows) kept as evidence "
                "(features 'sources alone'), not fitted on"
            )
        result.rows = kept
    elif len(sizes) > 1:
        raise MsltError(
            f"{where}: sets of {', '.join(map(str, sizes))} languages; pass --k to fit on one size"
        )
    if len(result.sets) < min_sets:
        found = ", ".join("+".join(s) for s in result.sets[:3]) or "none"
        more = ", …" if len(result.sets) > 3 else ""
        why = f" ({'; '.join(result.notes)})" if result.notes else ""
        raise MsltError(
            f"{where}: a predictor needs at least {min_sets} measured sets (cross-validation "
            f"holds out 3 at a time), found {len(result.sets)}: {found}{more}{why}"
        )
    if len(result.targets) < 1:
        raise MsltError(f"{where}: no target language outside the sets' sources")
    return result


def _singles(rows: list[Measured]) -> dict[str, dict[str, float]]:
    """The one-source rows as ``{source: {target: score}}``."""
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        if len(row.sources) == 1:
            out.setdefault(row.sources[0], {})[row.target] = row.score
    return {source: dict(sorted(targets.items())) for source, targets in sorted(out.items())}
