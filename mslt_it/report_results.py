"""The report's input: every score in the evaluation results it is given, read and checked.

``mslt-it eval`` writes one ``results.json`` per run (beside its ``predictions.jsonl``); this
module finds them under the given folders, reads each once (size-capped, regular files only),
checks every number and name a report prints or turns into a path, and gives
:class:`Results`: the scores, whether the data was synthetic, the analyses beside them and the
runs still unfinished. Writing (:mod:`mslt_it.report`) and drawing
(:mod:`mslt_it.report_plots`) only read what this returns.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it import report_text
from mslt_it.comparisons import row_digests
from mslt_it.errors import MsltError, clipped
from mslt_it.evaluation.scoring import METRICS
from mslt_it.evaluation.store import CHUNKS, PREDICTIONS
from mslt_it.files import kind_of, read_user_text, resolved_path
from mslt_it.io import OWNER_FILE
from mslt_it.locks import check_none_being_written
from mslt_it.outputs import (
    ANALYSIS_KIND,
    STAGING,
    changed_since_written,
    check_not_working_space,
    in_hidden_folder,
    listed_files,
    marked_output,
    owner_kind,
    read_sealed_json,
)
from mslt_it.paths import check_folder_text
from mslt_it.tasks import all_tasks


@dataclass(frozen=True)
class Score:
    """One run's score on one language."""

    run: str
    sources: tuple[str, ...]
    task: str
    lang: str
    metric: str
    score: float
    low: float | None  # the 95% interval; None when the run drew no bootstrap resamples
    high: float | None
    n: int
    invalid_rate: float
    is_source: bool
    synthetic: bool = False
    model: str = ""
    model_key: str = ""
    """What makes two runs' base models one: the digest of a local model's files, or a Hub id and
    revision, as results.json's settings record it (the model as spelled where they do not):
    ``models/tiny`` and ``/abs/models/tiny`` are one model."""
    answer_share: float | None = None  # generated answers in the expected language (0..1)
    answer_expected: str = ""  # that language ("" when answers were not identified)
    clusters: int | None = None
    """The clusters the interval resampled (the task's ``cluster`` rule); None: the rows."""


@dataclass
class Results:
    """Every score found, and what the report must say about the data.

    ``files``: each run's results.json (its predictions.jsonl beside it feeds the paired
    comparisons); ``sanity``: each adapter run's ``adapter_sanity`` record.
    """

    scores: list[Score]
    synthetic: bool
    analyses: list[Path]
    unfinished: tuple[Path, ...] = ()
    files: dict[str, Path] = field(default_factory=dict)
    sanity: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # read once, by run
    analysis_documents: dict[Path, Any] = field(default_factory=dict)  # each of analyses, read

    @property
    def runs(self) -> list[str]:
        return list(dict.fromkeys(s.run for s in self.scores))

    @property
    def languages(self) -> list[str]:
        return list(dict.fromkeys(s.lang for s in self.scores))

    def table(self) -> dict[str, dict[str, Score]]:
        out: dict[str, dict[str, Score]] = {}
        for score in self.scores:
            row = out.setdefault(score.run, {})
            if score.lang in row:  # two tasks of one run on one language: one cell cannot hold both
                raise MsltError(
                    f"run dir: {score.run} has two scores for {score.lang} (tasks "
                    f"{row[score.lang].task} and {score.task}); report one task at a time"
                )
            row[score.lang] = score
        return out

    def sources_of(self, run: str) -> tuple[str, ...]:
        return next(s.sources for s in self.scores if s.run == run)

    def model_of(self, run: str) -> str:
        """The base model of ``run`` as its evaluation spelled it (for the reader)."""
        return next(s.model for s in self.scores if s.run == run)

    def model_key_of(self, run: str) -> str:
        """What tells whether two runs share a base model (:attr:`Score.model_key`)."""
        return next(s.model_key or s.model for s in self.scores if s.run == run)


def sslt_baseline(results: Results, run: str, task: str | None = None) -> str | None:
    """The single-source run that the MSLT ``run`` is measured against on ``task`` (every task
    of ``results`` when None): the first one of the same base model scored on it, one scored
    on the same rows first (:func:`_same_rows`), then one of the same evaluation (its results
    a folder beside ``run``'s); None when there is none.
    Another model's SSLT run is no baseline: the gain over it would be the models' difference
    as much as the sources'. Of two experiments reported together, the first one's SSLT run
    was the second's baseline too, scored on other rows, and the pair went uncompared. The
    comparisons, the gain plot and the rollups all ask this one function, so they never pair
    a run with two baselines."""
    scored = {s.run for s in results.scores if task is None or s.task == task}
    model = results.model_key_of(run)
    singles = [
        single
        for single in results.runs
        if single in scored
        and len(results.sources_of(single)) == 1
        and results.model_key_of(single) == model
    ]
    own = results.files.get(run)
    beside = [
        single
        for single in singles
        if own is not None
        and single in results.files
        and results.files[single].parent.parent == own.parent.parent
    ]
    alike = [single for single in singles if _same_rows(results, single, run, task)]
    return (alike or beside or singles or [None])[0]


def _same_rows(results: Results, first: str, second: str, task: str | None) -> bool:
    """Whether two runs were scored on the same rows wherever both recorded them (their
    results' row digests, on ``task`` or every task), on one language at least: a pair that
    can be compared row by row. Single-run folders side by side share no evaluation folder."""
    mine, theirs = (row_digests(results.documents.get(name)) for name in (first, second))
    shared = 0
    for name in [task] if task is not None else sorted(set(mine) & set(theirs)):
        a, b = mine.get(name, {}), theirs.get(name, {})
        for lang in set(a) & set(b):
            if a[lang] != b[lang]:
                return False
            shared += 1
    return shared > 0


def find_results(paths: list[Path]) -> list[Path]:
    """Every results.json under the given folders (or the files themselves), each once."""
    found: dict[Path, Path] = {}
    for path in paths:
        check_not_working_space(path, "run dir")  # a killed evaluation's staged results
        check_none_being_written(evaluations_read([path]), "run dir")  # before it reads
        unfinished: list[Path] = []
        if path.is_file() and path.name == "results.json":
            candidates = [path]
        elif path.is_dir():
            candidates = [
                result
                for result in sorted(path.rglob("results.json"))
                if not in_hidden_folder(result.relative_to(path))
            ]
            check_no_broken_results(path, {p.resolve() for p in paths})
            check_none_removed(path)
            unfinished = find_unfinished([path])
            if not candidates and not unfinished:  # a folder named for nothing
                removed = changed_since_written(path / "results.json", "evaluation")
                raise MsltError(
                    f"run dir: {str(path)!r} "
                    + (
                        "lost its results.json since mslt-it eval wrote it; restore it"
                        if removed
                        else "holds no results.json; give an evaluation's folder"
                    )
                )
        elif path.exists():
            kind = "a file" if path.is_file() else kind_of(path.stat().st_mode)
            raise MsltError(
                f"run dir: {str(path)!r} is {kind}, neither a folder nor a results.json"
            )
        else:
            check_folder_text(str(path), "run dir")  # read as ./~/…: "does not exist" misled
            resolved_path(path, "run dir")  # a link loop is one, not a missing folder
            raise MsltError(f"run dir: {str(path)!r} does not exist")
        check_none_being_written(evaluations_read([path], candidates, unfinished), "run dir")
        for candidate in candidates:
            found.setdefault(candidate.resolve(), candidate)  # a folder given twice counts once
    if not found:
        raise MsltError(f"run dir: no results.json under {', '.join(map(str, paths))}")
    return list(found.values())


def evaluations_read(
    paths: Sequence[Path], files: Sequence[Path] = (), unfinished: Sequence[Path] = ()
) -> list[Path]:
    """The folders a report reads that an evaluation may be writing: each of ``paths`` (or its
    folder), each results.json's run and evaluation (``files``), and each unfinished run's
    (``eval --update`` holds its lock while its results are gone and its chunks are back).
    Looked at before the report reads them and again once it has read them all."""
    folders: list[Path] = []
    for path in paths:
        top = path if path.is_dir() else path.parent
        folders += [top, marked_output(top / "results.json") or top]
    for results in [*files, *(run / "results.json" for run in unfinished)]:
        folders += [results.parent, marked_output(results) or results.parent]
    return list(dict.fromkeys(folders))


def check_no_broken_results(folder: Path, given: Collection[Path] = ()) -> None:
    """A ``results.json`` that is a link to nowhere (or a loop) is named: a glob skips it, and
    its run would be left out of the report without a word. So is a linked folder that holds
    an evaluation (its results.json, or its runs'): the glob does not follow it, and a report
    of ``mix/`` left ``mix/E6link`` out; among the ``given`` folders (resolved), it is read."""
    for root, folders, names in os.walk(folder):
        for name in folders:
            linked = Path(root) / name
            if linked.is_symlink() and linked.resolve() not in given and _holds_results(linked):
                raise MsltError(
                    f"run dir: {str(linked)!r} is a link to a folder of results, which a report "
                    f"of {str(folder)!r} does not follow; give it on its own as well"
                )
        if "results.json" in names:
            candidate = Path(root) / "results.json"
            if candidate.is_symlink() and not os.path.exists(candidate):
                raise MsltError(
                    f"run dir: {candidate} is a link to nothing (or a loop); remove it or point "
                    "it at a results.json"
                )


def _holds_results(folder: Path) -> bool:
    """Whether ``folder`` is an evaluation: a results.json in it or in a run folder of it."""
    try:
        return (folder / "results.json").is_file() or any(
            (run / "results.json").is_file() for run in folder.iterdir() if run.is_dir()
        )
    except OSError:  # a link to nothing, a loop, a folder that cannot be read
        return False


def check_none_removed(folder: Path) -> None:
    """A run's results.json removed from an evaluation (of a study, one folder per run) left
    that run out of the report without a word; the evaluation's marker still lists it."""
    for marker in sorted(folder.rglob(OWNER_FILE)):
        evaluation = marker.parent
        if owner_kind(evaluation) != "evaluation":
            continue
        for name in listed_files(evaluation) or {}:
            if Path(name).name != "results.json" or in_hidden_folder(name):
                continue
            if (evaluation / name).exists():
                continue  # there, as listed
            if (evaluation / STAGING / name).exists():
                raise MsltError(
                    f"run dir: {evaluation} was stopped while its results were moved in; run "
                    "its evaluation again to finish it"
                )
            raise MsltError(
                f"run dir: {evaluation / name} was removed since mslt-it eval wrote it, so "
                "its run would be missing from the report; restore it, or give the folders "
                "of the runs to report one by one"
            )


MAX_RESULTS_BYTES = 200_000_000
"""results.json files larger than this are not read (a big study's is a few MB)."""


def read_results_file(path: Path) -> dict[str, Any]:
    """One results.json, checked enough that the report cannot silently misread it."""
    text = read_user_text(path, "run dir", MAX_RESULTS_BYTES)
    try:  # a byte-order mark an editor added is no JSON, but said nothing else (as CSVs read)
        data = json.loads(text.removeprefix("\ufeff"))
    except RecursionError:
        raise MsltError(
            f"run dir: {path} is not a readable results.json (nested too deeply)"
        ) from None
    except ValueError as error:
        reason = " ".join(str(error).split())[:160]
        raise MsltError(f"run dir: {path} is not a readable results.json ({reason})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
        raise MsltError(f"run dir: {path} is not an mslt-it results.json (no 'tasks' mapping)")
    for key in QUALIFIERS:  # shown in names, tables and plots: plain text only
        if isinstance(data.get(key), str):
            data[key] = report_text.plain(data[key], report_text.QUALIFIER, limit=200)
    return data


def find_unfinished(paths: list[Path]) -> list[Path]:
    """Evaluation folders under ``paths`` that hold saved chunks but no results.json: a run that
    was stopped mid-way. The report names them instead of leaving them out without a word."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            continue
        for chunks in sorted(path.rglob(CHUNKS)):
            if chunks.is_dir() and not (chunks.parent / "results.json").is_file():
                found.append(chunks.parent)
    return found


def load_results(paths: list[Path]) -> Results:
    """Read the evaluation results (and analyses) under ``paths``."""
    files = find_results(paths)
    documents = [read_results_file(path) for path in files]
    names = run_names(files, documents)
    found = dict(zip(names, files, strict=True))
    scores: list[Score] = []
    sanity: dict[str, dict[str, Any]] = {}
    for path, data, name in zip(files, documents, names, strict=True):
        check_as_written(path)
        own = scores_of(data, path, name)
        if not own:  # a run without a score has no row, no sources, nothing to compare
            raise MsltError(f"run dir: {path} holds no per-language scores (its tasks are empty)")
        check_one_metric(scores, own, found)
        scores.extend(own)
        if data.get("adapter_sanity") is not None:
            sanity[name] = sanity_of(data["adapter_sanity"], f"run dir: {path}: adapter_sanity")
    if not scores:
        raise MsltError(f"run dir: {', '.join(map(str, files))} hold no per-language scores")
    inside = {  # a file of that name that mslt-it analyze did not write is not shown
        found.resolve(): data
        for path in paths
        if path.is_dir()
        for found in sorted(path.rglob("analysis.json"))
        if (data := read_sealed_json(found, ANALYSIS_KIND)) is not None
    }
    beside = analyses_beside(paths, documents)
    analyses = list(dict.fromkeys([*inside, *beside]))
    synthetic = any(score.synthetic for score in scores)
    read = dict(zip(names, documents, strict=True))
    unfinished = tuple(find_unfinished(paths))
    documents_read = {**inside, **beside}
    return Results(scores, synthetic, analyses, unfinished, found, sanity, read, documents_read)


def check_one_metric(scores: list[Score], new: list[Score], files: dict[str, Path]) -> None:
    """A task's runs share one table, headed by one metric: a run scored by another (a task
    of the user's whose metric was edited in one results.json) is named with the run it
    disagrees with, not printed under the others' heading. Either file may be the edited one."""
    seen = {score.task: score for score in scores}
    for score in new:
        other = seen.get(score.task)
        if other is not None and other.metric != score.metric:
            raise MsltError(
                f"run dir: tasks.{score.task}.metric is {other.metric!r} in "
                f"{files[other.run]} and {score.metric!r} in {files[score.run]}; a task's runs "
                "are compared by one metric (one file was changed after its evaluation)"
            )


def check_as_written(results_file: Path) -> None:
    """A results.json (or the predictions.jsonl beside it) that ``mslt-it eval`` wrote and that
    was changed since is not reported: the checks that the two agree pass when both are edited
    together (predictions copied from another run, rows marked correct by hand, a language cut
    from both), and the report would show numbers no model scored. A file in no evaluation's
    folder is the user's own and is only checked for agreement."""
    for path in (results_file, results_file.parent / PREDICTIONS):
        if changed_since_written(path, "evaluation"):
            raise MsltError(
                f"run dir: {path} was changed or removed since mslt-it eval wrote it, so its "
                "scores are not the evaluation's; restore it, or evaluate again into another --out"
            )


def sanity_of(record: Any, where: str) -> dict[str, Any]:
    """An adapter's sanity record (:func:`mslt_it.evaluation.sanity.adapter_sanity`), checked:
    its counts are whole numbers and the run it names is printed as a plain name (the report
    writes both into a sentence of report.md)."""
    if not isinstance(record, dict):
        raise MsltError(f"{where}: expected a mapping, got {clipped(record, 40)}")
    counts = {}
    for key in ("rows", "identical_rows"):
        value = _number(record.get(key), f"{where}.{key}", 0, 1e12)
        if value != int(value):
            raise MsltError(f"{where}.{key}: {clipped(record.get(key), 40)} is not a whole number")
        counts[key] = int(value)
    if counts["identical_rows"] > counts["rows"]:
        raise MsltError(f"{where}: identical_rows is above rows ({counts})")
    compared_with = record.get("compared_with")
    if not isinstance(compared_with, str):
        raise MsltError(f"{where}.compared_with: {clipped(compared_with, 40)} is not a run's name")
    return {
        **counts,
        "compared_with": report_text.plain(compared_with, report_text.NAME, limit=80),
        "same_as_base": record.get("same_as_base") is True,
    }


def analyses_beside(paths: list[Path], documents: list[dict[str, Any]]) -> dict[Path, Any]:
    """analysis.json files in folders next to the given evaluation folders (``runs/demo/eval``
    and ``runs/demo/analysis``) that analysed one of the evaluated adapters, with their parsed
    content (read once: the report copies from it): the report of an experiment shows its
    analysis without the user naming it.

    An adapter is known by the hash of its weights, which results and analyses both record,
    not by its path: an adapter trained again in the same folder after its analysis is another
    adapter, and the old analysis is not shown beside its new scores."""
    adapters = {
        doc["adapter"]["sha256"]
        for doc in documents
        if isinstance(doc.get("adapter"), dict) and isinstance(doc["adapter"].get("sha256"), str)
    } - {""}
    found: dict[Path, Any] = {}
    for path in paths:
        if not path.is_dir() or not adapters:
            continue
        for candidate in sorted(path.resolve().parent.glob("*/analysis.json")):
            data = read_sealed_json(candidate, ANALYSIS_KIND)
            if data is None:
                continue  # someone else's file of that name: not ours to show
            inputs = data.get("inputs")
            listed = inputs.get("adapters") if isinstance(inputs, dict) else None
            analysed = {
                entry["sha256"]
                for entry in (listed if isinstance(listed, list) else [])
                if isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
            }
            if analysed & adapters:
                found[candidate.resolve()] = data
    return found


def run_label(sources: tuple[str, ...], fallback: str) -> str:
    """``SSLT en``, ``MSLT ar+en+zh``, or the run's own name for the base model (characters
    that would break a table row or start a spreadsheet formula made plain)."""
    if not sources:
        return report_text.plain(fallback, report_text.NAME, limit=80, formula=True) or "run"
    return f"{'SSLT' if len(sources) == 1 else 'MSLT'} {'+'.join(sources)}"


LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$")
"""A language code as results files hold them: ``en``, ``ceb``, ``zh-Hans``."""


def sources_in(data: dict[str, Any], path: Path) -> tuple[str, ...]:
    """The adapter's source languages recorded in the results.json ``path`` (none for a base
    model). Checked for their form, not against mslt-it's language table: a user's task may
    use codes it does not list (``zh-Hans``)."""
    adapter = data.get("adapter")
    if adapter is not None and not isinstance(adapter, dict):
        raise MsltError(
            f"run dir: {path}: adapter: expected a mapping or null, got {clipped(adapter, 60)}"
        )
    sources = (adapter or {}).get("sources")
    if not sources:
        return ()
    if (
        not isinstance(sources, list)
        or not all(isinstance(s, str) and LANGUAGE_CODE.match(s) for s in sources)
        or len(set(sources)) != len(sources)
    ):
        raise MsltError(
            f"run dir: {path}: adapter.sources must be a list of distinct language codes (en, "
            f"ceb, zh-Hans), got {clipped(sources, 60)}"
        )
    return tuple(sources)


QUALIFIERS = ("mode", "model", "backend")
"""What tells apart two runs of the same name (e.g. ``base`` in two evaluations), in order."""


def _qualifier(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if key == "model" and isinstance(value, str):
        return Path(value).name or value
    return str(value)


def run_names(files: list[Path], documents: list[dict[str, Any]]) -> list[str]:
    """A name per results file that no other file shares.

    ``SSLT en`` / ``base`` as usual; where two files would share a name, it is qualified by what
    differs between them (mode, model, backend), and by folder where nothing else does, so no
    row of the report or scores.csv ever stands for two runs.
    """
    labels = [
        run_label(sources_in(data, path), str(data.get("run") or path.parent.name))
        for path, data in zip(files, documents, strict=True)
    ]
    names = list(labels)
    for label in {label for label in labels if labels.count(label) > 1}:
        members = [i for i, other in enumerate(labels) if other == label]
        keys = [
            key for key in QUALIFIERS if len({_qualifier(documents[i], key) for i in members}) > 1
        ]
        for i in members:
            parts = [_qualifier(documents[i], key) for key in keys]
            names[i] = f"{label} ({', '.join(parts)})" if parts else label
        clashing = [i for i in members if [names[j] for j in members].count(names[i]) > 1]
        if clashing:
            common = Path(os.path.commonpath([files[i].resolve().parent for i in clashing]))
            for i in clashing:
                where = files[i].resolve().parent.relative_to(common)
                folder = where.as_posix() or files[i].parent.name
                folder = report_text.plain(folder, report_text.QUALIFIER, limit=200)
                names[i] = f"{names[i]} [{folder}]"
    for name in {name for name in names if names.count(name) > 1}:
        both = [str(files[i]) for i, other in enumerate(names) if other == name][:2]
        raise MsltError(
            f"run dir: {both[0]} and {both[1]} would both be named {name!r} in the report "
            "(their folders' names differ only in characters a report does not print); "
            "rename one folder"
        )
    return names


REPORTED_METRICS = tuple(sorted(set(METRICS.values())))
"""What ``mslt-it eval`` scores a task by: a metric is printed in the report's headings and
scores.csv, so no other text is."""

TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
"""A task's name as a report writes it to a folder name: no separators, dots or '..'."""


def _number(value: Any, where: str, low: float, high: float) -> float:
    """A finite number within [low, high] from a results.json, or a one-line error."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MsltError(f"{where}: {clipped(value, 40)} is not a number")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float: 10**400
        raise MsltError(f"{where}: {str(value)[:20]}… is outside {low:g}..{high:g}") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise MsltError(f"{where}: {clipped(value, 40)} is outside {low:g}..{high:g}")
    return number


def scores_of(data: dict[str, Any], path: Path, name: str) -> list[Score]:
    """The per-language scores of one results.json, as the run ``name`` (:func:`run_names`).

    A hand-edited file is checked value by value (NaN, infinities, scores outside 0..100,
    negative counts, task names that are not plain names), each a one-line error naming the
    file and the field.
    """
    sources = sources_in(data, path)
    synthetic = data.get("data") == "synthetic"
    model_key = model_key_in(data)
    out = []
    for task, per_task in data["tasks"].items():
        if not isinstance(task, str) or not TASK_NAME.match(task):
            raise MsltError(
                f"run dir: {path}: tasks: {clipped(task, 60)} is not a task name (letters, digits, "
                "'_' and '-')"
            )
        if not isinstance(per_task, dict) or not isinstance(per_task.get("languages"), dict):
            raise MsltError(f"run dir: {path}: tasks.{task}.languages: expected a mapping")
        metric = per_task.get("metric")
        if metric not in REPORTED_METRICS:
            raise MsltError(
                f"run dir: {path}: tasks.{task}.metric: {clipped(metric, 40)} is not a metric "
                f"mslt-it "
                f"scores by; allowed: {', '.join(REPORTED_METRICS)}"
            )
        known = all_tasks().get(task)  # a shipped task: scored by its kind's metric, always
        if known is not None and metric != METRICS[known.kind]:
            raise MsltError(
                f"run dir: {path}: tasks.{task}.metric: {metric!r} is not what mslt-it scores "
                f"{task} by ({METRICS[known.kind]!r}); the file was changed after the evaluation"
            )
        for lang, entry in per_task["languages"].items():
            where = f"run dir: {path}: tasks.{task}.languages.{lang}"
            if not isinstance(lang, str) or not TASK_NAME.match(lang):
                raise MsltError(f"{where}: not a language code")
            if not isinstance(entry, dict) or "score" not in entry:
                raise MsltError(f"{where}: expected a mapping with a 'score'")
            if entry.get("metric", metric) != metric:  # the table prints the task's
                raise MsltError(
                    f"{where}.metric: {clipped(entry['metric'], 40)} is not its task's metric "
                    f"{metric!r}; the file was changed after the evaluation"
                )
            score = _number(entry["score"], f"{where}.score", 0, 100)
            low, high = interval_of(entry.get("ci95"), score, metric, where)
            # a score is over one row at least; a results.json of a version without counts
            # has none, and then nothing is checked against them
            count = _number(entry.get("n", 0), f"{where}.n", 1 if "n" in entry else 0, 1e12)
            if count != int(count):
                raise MsltError(f"{where}.n: {clipped(entry.get('n'), 40)} is not a whole number")
            invalid = _number(entry.get("invalid_rate", 0.0), f"{where}.invalid_rate", 0, 1)
            share, expected = answer_language_of(entry.get("answer_language"), where)
            clusters = None
            if "clusters" in entry:
                top = count if "n" in entry else 1e12
                clusters = int(_number(entry["clusters"], f"{where}.clusters", 1, top))
                if clusters != entry["clusters"]:
                    raise MsltError(
                        f"{where}.clusters: {clipped(entry['clusters'], 40)} is not a whole number"
                    )
            out.append(
                Score(
                    run=name,
                    sources=sources,
                    task=task,
                    lang=lang,
                    metric=metric,
                    score=score,
                    low=low,
                    high=high,
                    n=int(count),
                    invalid_rate=invalid,
                    is_source=lang in sources,
                    synthetic=synthetic,
                    model=str(data.get("model") or ""),
                    model_key=model_key,
                    answer_share=share,
                    answer_expected=expected,
                    clusters=clusters,
                )
            )
    return out


def model_key_in(data: dict[str, Any]) -> str:
    """:attr:`Score.model_key` of a results.json: its settings' ``model_identity`` (the digest
    of a local model's files, or a Hub id and revision), else the model as spelled."""
    settings = data.get("settings")
    identity = settings.get("model_identity") if isinstance(settings, dict) else None
    if isinstance(identity, dict) and identity:
        return json.dumps(identity, sort_keys=True, default=str)
    return str(data.get("model") or "")


def interval_of(
    interval: Any, score: float, metric: str, where: str
) -> tuple[float | None, float | None]:
    """A language's ``ci95``, checked; ``(None, None)`` for a run evaluated with
    ``--bootstrap-samples 0`` (``null``), which has no interval: showing one of zero width at
    the score would claim a certainty no resample measured."""
    if interval is None:
        return None, None
    if not isinstance(interval, list | tuple) or len(interval) != 2:
        raise MsltError(f"{where}.ci95: {clipped(interval, 40)} is not a [low, high] pair")
    # an interval is the scores' spread: finite, a little past 0..100 at worst
    low = _number(interval[0], f"{where}.ci95", -100, 200)
    high = _number(interval[1], f"{where}.ci95", -100, 200)
    if low > high:
        raise MsltError(f"{where}.ci95: {clipped(list(interval), 40)} has its low above its high")
    # a share of rows' bootstrap interval holds the share itself (rounded to 0.01; an F1's
    # resamples can sit to one side, so only shares are held to it)
    if metric != "f1" and not low - 0.01 <= score <= high + 0.01:
        raise MsltError(
            f"{where}.ci95: {clipped(list(interval), 40)} does not hold the score "
            f"{score:g}; one was changed after the evaluation"
        )
    return low, high


def answer_language_of(entry: Any, where: str) -> tuple[float | None, str]:
    """``(share, expected language)`` of a language's ``answer_language`` record, checked."""
    if entry is None:
        return None, ""
    if not isinstance(entry, dict):
        raise MsltError(f"{where}.answer_language: expected a mapping")
    expected = entry.get("expected")
    if not isinstance(expected, str) or not LANGUAGE_CODE.match(expected):
        raise MsltError(
            f"{where}.answer_language.expected: {clipped(expected, 40)} is not a language code "
            f"(en, "
            "ceb, zh-Hans)"
        )
    share = entry.get("share")
    if share is None:
        return None, expected
    return _number(share, f"{where}.answer_language.share", 0, 1), expected


def target_scores(results: Results) -> dict[str, dict[str, float]]:
    """Per run: target language -> score (sources left out: they were trained on)."""
    out: dict[str, dict[str, float]] = {}
    for s in results.scores:
        if not s.is_source:
            out.setdefault(s.run, {})[s.lang] = s.score
    return out


def averages(results: Results) -> dict[str, dict[str, float]]:
    """Per run: the unweighted mean over target (non-source) languages and over all languages."""
    out = {}
    for run, per_lang in results.table().items():
        targets = [s.score for s in per_lang.values() if not s.is_source]
        out[run] = {
            "targets": float(np.mean(targets)) if targets else float("nan"),
            "all": float(np.mean([s.score for s in per_lang.values()])),
        }
    return out
