"""Paired comparisons of two evaluated runs, row by row, for the report.

Two runs scored on the same task and the same rows (``predictions.jsonl`` beside each
``results.json`` holds every row's correctness) are compared per language and for the average
over the target languages (those that are a source of neither run: the zero-shot number):

- the difference ``B − A`` in points, with the 95 % interval of a paired bootstrap;
- a p-value per language: McNemar's exact test for accuracy-like metrics, the paired
  bootstrap's for F1 and for rows in clusters (a task's ``cluster`` rule: XNLI's hypotheses
  of one premise, resampled together; McNemar's test takes rows as independent);
  Holm-corrected over the languages of the comparison (the average is one more question,
  reported with its own bootstrap p-value and not in Holm's family);
- ``significant``: Holm-adjusted p below :data:`ALPHA`;
- ``source``: whether the language is a source of either run (its difference is in-language
  learning, not zero-shot transfer). Holm's family keeps every compared language, sources
  too, which is conservative for the targets.

The statistics are :mod:`mslt_it.stats`; this module pairs the rows and names the runs.
"""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it import report_text
from mslt_it.errors import MsltError, allowed, clipped
from mslt_it.evaluation.scoring import (
    ABSENT,
    entity_fields_problem,
    misplaced_row,
    ner_statistics,
    parallel_units,
    ranked_answer_problem,
    shown,
)
from mslt_it.evaluation.store import PREDICTIONS, read_jsonl
from mslt_it.label_words import folded_answer
from mslt_it.stats import (
    holm,
    mcnemar_exact,
    paired_bootstrap,
    paired_mean_bootstrap,
    statistic,
    unit_count,
)

ALPHA = 0.05
"""Family-wise error rate of the per-language tests (after Holm)."""
AVERAGE = "avg (targets)"
"""The ``lang`` of the row that compares the two runs' target averages."""
SAMPLES = 2000
"""Bootstrap resamples per comparison."""


@dataclass(frozen=True)
class RunRows:
    """One evaluated run's per-row outcomes: task -> language -> row id -> value.

    The value is 0/1 correctness for accuracy-like metrics, ``(tp, n_pred, n_gold)`` for F1
    (``n_pred`` counts a row's unaligned entities, as its ``results.json`` score does).
    """

    name: str
    sources: tuple[str, ...]
    metric: dict[str, str]
    rows: dict[str, dict[str, dict[str, Any]]]
    invalid: dict[str, dict[str, int]] = field(default_factory=dict)
    """task -> language -> rows whose answer parsed as no label (counted against results.json)."""
    gold: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    """task -> language -> row id -> its gold answer as recorded: two runs are paired only on
    rows with the same gold (an edited or other-data file has the same ids, not the same rows)."""
    digests: dict[str, dict[str, str]] = field(default_factory=dict)
    """task -> language -> the rows' content digest (``results.json``'s ``rows_sha256``): the
    same ids and gold answers may still be other texts (a data file rewritten)."""
    metric_names: dict[str, str] = field(default_factory=dict)
    """task -> the metric ``results.json`` names (``exact_match``, ``acc_norm``…): what
    comparisons.csv says, where ``metric`` is only how the rows are counted."""
    clusters: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    """task -> language -> row id -> its cluster key (the task's ``cluster`` rule): rows
    sharing one are resampled together; a language without keys has independent rows."""
    parallel: frozenset[str] = frozenset()
    """The tasks ``results.json`` says were evaluated as ``parallel`` (row N of every
    language one item): the targets' average draws each item in every language at once."""


def metric_names(document: Mapping[str, Any] | None) -> dict[str, str]:
    """Each task's ``metric`` as a ``results.json`` names it (empty for a file without)."""
    tasks = document.get("tasks") if isinstance(document, Mapping) else None
    return {
        str(task): entry["metric"]
        for task, entry in (tasks.items() if isinstance(tasks, Mapping) else ())
        if isinstance(entry, Mapping) and isinstance(entry.get("metric"), str)
    }


def parallel_tasks(document: Mapping[str, Any] | None) -> frozenset[str]:
    """The tasks whose ``settings.tasks[]`` entry in a ``results.json`` says ``parallel``
    (none for a file of another tool, or of a version that did not record it)."""
    settings = document.get("settings") if isinstance(document, Mapping) else None
    tasks = settings.get("tasks") if isinstance(settings, Mapping) else None
    return frozenset(
        str(entry["task"])
        for entry in (tasks if isinstance(tasks, list) else [])
        if isinstance(entry, Mapping) and entry.get("parallel") is True and "task" in entry
    )


def row_digests(document: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """``settings.tasks[].rows_sha256`` of a ``results.json``, by task and language (empty
    for a file of another tool, or of a version that did not record it)."""
    settings = document.get("settings") if isinstance(document, Mapping) else None
    tasks = settings.get("tasks") if isinstance(settings, Mapping) else None
    found: dict[str, dict[str, str]] = {}
    for entry in tasks if isinstance(tasks, list) else []:
        digests = entry.get("rows_sha256") if isinstance(entry, Mapping) else None
        if isinstance(digests, Mapping) and isinstance(entry.get("task"), str):
            found[entry["task"]] = {
                str(lang): digest for lang, digest in digests.items() if isinstance(digest, str)
            }
    return found


OUTCOME_FIELDS = ("correct", "gold", "parsed")
"""What every scored row but an entity list's holds: its outcome and what it was decided from."""


def entity_row_problem(record: Mapping[str, Any]) -> str | None:
    """What makes an entity (NER) row's fields unusable, naming the field and what is allowed;
    None when they can be scored. A user's predictions.jsonl may hold anything, and a row
    read as it is failed deep in the scoring as "an internal error". ``tokens`` and
    ``ner_tags`` are held to what ``mslt-it score`` holds them to
    (:func:`~mslt_it.evaluation.scoring.entity_fields_problem`)."""
    problem = entity_fields_problem(record)
    if problem is not None:
        return problem
    parsed = record.get("parsed", ABSENT)
    pairs = isinstance(parsed, list) and all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
        for pair in parsed
    )
    if not pairs:
        return f"parsed is {shown(parsed)}; allowed: a list of [type, text] pairs of text"
    return None


def outcome_contradicted(record: Mapping[str, Any]) -> bool:
    """Whether a record's ``correct`` contradicts its own ``parsed`` and ``gold`` (an edited
    predictions.jsonl: the paired tests count ``correct``). A label, a choice or an answer text
    is correct when it equals the gold, whitespace and case aside, as scoring decides; NER
    records (entity lists) are left to their own statistics."""
    if "parsed" not in record or "gold" not in record or "ner_tags" in record:
        return False
    parsed, gold = record["parsed"], record["gold"]
    if not isinstance(parsed, str | None) or not isinstance(gold, str):
        return False
    expected = parsed is not None and folded_answer(parsed) == folded_answer(gold)
    return bool(record.get("correct")) != expected


@dataclass(frozen=True)
class ComparisonRow:
    """One line of comparisons.csv: run B against baseline A on one language (or the average)."""

    baseline: str
    run: str
    task: str
    lang: str
    metric: str
    n: int
    baseline_score: float
    run_score: float
    difference: float
    ci_low: float
    ci_high: float
    p_bootstrap: float
    p_mcnemar: float | None
    p_holm: float | None
    significant: bool
    only_baseline: int | None
    only_run: int | None
    source: bool
    """Whether ``lang`` is a source of either run: its difference is in-language learning, not
    zero-shot transfer (False for the targets' average)."""
    clusters: int | None = None
    """The clusters the rows were resampled in (the task's ``cluster`` rule; summed over the
    languages for the targets' average, or its shared units where ``joint_items``); None: rows
    resampled one by one."""
    joint_items: bool = False
    """The targets' average only: each item was drawn in every language at once (both runs
    evaluated the task as ``parallel``, and every target language holds the same items)."""


COLUMNS = [field.name for field in fields(ComparisonRow)]


def read_run_rows(
    name: str,
    results_file: Path,
    sources: Sequence[str],
    document: Mapping[str, Any] | None = None,
) -> RunRows:
    """The per-row outcomes of the run whose ``results.json`` is ``results_file`` (its content
    ``document``, for the rows' digests)."""
    predictions = results_file.parent / PREDICTIONS
    if not predictions.exists() and not predictions.is_symlink():  # a FIFO: read_jsonl names it
        raise MsltError(
            f"compare: {name} has no {PREDICTIONS} beside {results_file}; a comparison needs "
            "each row's outcome"
        )
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    metric: dict[str, str] = {}
    invalid: dict[str, dict[str, int]] = {}
    gold: dict[str, dict[str, dict[str, str]]] = {}
    clusters: dict[str, dict[str, dict[str, str]]] = {}
    mode = (document or {}).get("mode")
    records = read_jsonl(predictions)
    # rows of a version that wrote no mode are taken as they are; once a row names one, all do
    modes_told = isinstance(mode, str) and any("mode" in record for record in records)
    for number, record in enumerate(records, 1):
        try:
            task, lang, row = record["task"], record["lang"], record["id"]
        except KeyError as missing:
            raise MsltError(f"compare: {predictions}: a record lacks {missing}") from None
        not_text = next(
            (key for key in ("task", "lang", "id") if not isinstance(record[key], str)), None
        )
        if not_text is not None:  # an id of null was read as the row "None"
            raise MsltError(
                f"compare: {predictions}: record {number}: {not_text} must be text, got "
                f"{type(record[not_text]).__name__}"
            )
        if row in rows.get(task, {}).get(lang, {}):  # the last copy would count, once per run
            raise MsltError(
                f"compare: {predictions}: record {number}: id {clipped(row, 60)} of "
                f"{clipped(f'{task}/{lang}', 60)} appears twice; each example is scored once"
            )
        named = misplaced_row(record)
        if named is not None:
            raise MsltError(
                f"compare: {predictions}: row {row!r} is a row of {named!r}, not of "
                f"{clipped(f'{task}/{lang}', 60)}; the file was changed after scoring"
            )
        if modes_told and record.get("mode", ABSENT) != mode:  # rank rows' checks go by their
            raise MsltError(  # mode: one dropped or changed passed unchecked
                f"compare: {predictions}: row {row!r}: mode {shown(record.get('mode', ABSENT))} "
                f"is not its results.json's {clipped(mode, 20)}; the file was changed after "
                "scoring (re-run the evaluation)"
            )
        if "ner_tags" in record and "tokens" in record:
            metric[task] = "f1"
            problem = entity_row_problem(record)
            if problem is not None:
                raise MsltError(
                    f"compare: {predictions}: row {row!r}: {problem}; the file was changed after "
                    "scoring (re-run the evaluation)"
                )
            # unaligned (invented) entities count as predicted, as in results.json's score
            value: Any = tuple(ner_statistics(record)[1])
        else:
            metric.setdefault(task, "accuracy")
            lacking = next((key for key in OUTCOME_FIELDS if key not in record), None)
            if lacking is not None:  # its `correct` would count unchecked
                raise MsltError(
                    f"compare: {predictions}: row {row!r} lacks field {lacking!r}; the file was "
                    "changed after scoring (re-run the evaluation)"
                )
            if not isinstance(record["correct"], bool):
                raise MsltError(
                    f"compare: {predictions}: row {row!r}: correct is "
                    f"{clipped(record['correct'], 40)}; allowed: true or false"
                )
            value = 1.0 if record.get("correct") else 0.0
            problem = ranked_answer_problem(record)
            if problem is not None:
                raise MsltError(
                    f"compare: {predictions}: row {row!r} {problem}; the file was changed after "
                    "scoring (re-run the evaluation)"
                )
            if outcome_contradicted(record):
                raise MsltError(
                    f"compare: {predictions}: row {row!r} says correct is "
                    f"{bool(record.get('correct'))} but its answer "
                    f"{clipped(record['parsed'], 40)} and "
                    f"gold {clipped(record['gold'], 40)} say otherwise; the file was changed after "
                    "scoring (re-run `mslt-it score`)"
                )
        rows.setdefault(task, {}).setdefault(lang, {})[row] = value
        if "cluster" in record:
            if not isinstance(record["cluster"], str):
                raise MsltError(
                    f"compare: {predictions}: row {row!r}: cluster is "
                    f"{clipped(record['cluster'], 40)}; allowed: text (the file was changed "
                    "after scoring)"
                )
            clusters.setdefault(task, {}).setdefault(lang, {})[row] = record["cluster"]
        if "gold" in record:
            gold.setdefault(task, {}).setdefault(lang, {})[row] = repr(record["gold"])
        per_task = invalid.setdefault(task, {})
        per_task[lang] = per_task.get(lang, 0) + bool(record.get("invalid"))
    for task, languages in clusters.items():
        for lang, keys in languages.items():
            if len(keys) != len(rows[task][lang]):
                raise MsltError(
                    f"compare: {predictions}: {len(keys)} of the {len(rows[task][lang])} rows of "
                    f"{clipped(f'{task}/{lang}', 60)} name a cluster; all or none do (the file "
                    "was changed after scoring)"
                )
    return RunRows(
        name, tuple(sources), metric, rows, invalid, gold, row_digests(document),
        metric_names(document), clusters, parallel_tasks(document),
    )  # fmt: skip


class NotPairable(MsltError):
    """Two runs that cannot be compared row by row. ``reason`` says why without naming them,
    for a report that names them once, by its own labels."""

    def __init__(self, a: RunRows, b: RunRows, reason: str) -> None:
        self.reason = reason
        super().__init__(f"compare: {a.name!r} and {b.name!r} {reason}")


def check_pairable(a: RunRows, b: RunRows, task: str | None = None) -> list[str]:
    """The tasks both runs can be compared on (``task`` alone when given), each with the same
    rows in every shared language; a one-line error naming the first difference."""
    tasks = [task] if task else [t for t in a.rows if t in b.rows]
    if not tasks or any(t not in a.rows or t not in b.rows for t in tasks):
        raise NotPairable(
            a, b, f"were evaluated on different tasks ({', '.join(a.rows)} and {', '.join(b.rows)})"
        )
    for name in tasks:
        shared = [lang for lang in a.rows[name] if lang in b.rows[name]]
        if not shared:
            raise NotPairable(a, b, f"share no language of task {name}")
        for lang in shared:
            ids_a, ids_b = set(a.rows[name][lang]), set(b.rows[name][lang])
            if ids_a != ids_b:
                only = len(ids_a ^ ids_b)
                raise NotPairable(
                    a,
                    b,
                    f"were scored on different rows of {name}/{lang} ({len(ids_a)} and "
                    f"{len(ids_b)} rows, {only} not in both); compare runs evaluated on the same "
                    "rows",
                )
            digest_a, digest_b = recorded_by_both(a.digests, b.digests, name, lang)
            if digest_a and digest_b and digest_a != digest_b:
                raise NotPairable(
                    a,
                    b,
                    f"were scored on rows of {name}/{lang} with the same ids but other content "
                    "(their rows_sha256 differ: the data changed between the evaluations); "
                    "compare runs evaluated on the same data",
                )
            gold_a = a.gold.get(name, {}).get(lang, {})
            gold_b = b.gold.get(name, {}).get(lang, {})
            differing = [i for i in sorted(ids_a) if i in gold_a and i in gold_b
                         and gold_a[i] != gold_b[i]]  # fmt: skip
            if differing:
                raise NotPairable(
                    a,
                    b,
                    f"give row {differing[0]!r} of {name}/{lang} different gold answers "
                    f"({gold_a[differing[0]]:.40} and {gold_b[differing[0]]:.40}; "
                    f"{len(differing)} such row(s)); compare runs evaluated on the same data",
                )
            keys_a, keys_b = recorded_by_both(a.clusters, b.clusters, name, lang)
            if keys_a and keys_b and keys_a != keys_b:
                raise NotPairable(
                    a,
                    b,
                    f"group the rows of {name}/{lang} into other clusters (the task's cluster "
                    "rule changed between the evaluations); evaluate the older one again with "
                    "--update (it re-scores, predicting nothing)",
                )
    return tasks


def recorded_by_both(
    first: Mapping[str, Mapping[str, Any]],
    second: Mapping[str, Mapping[str, Any]],
    task: str,
    lang: str,
) -> tuple[Any, Any]:
    """What each run recorded for ``task``/``lang`` (a rows digest, cluster keys; None where a
    run recorded nothing): a pair is compared only where both agree."""
    return first.get(task, {}).get(lang), second.get(task, {}).get(lang)


def row_clusters(a: RunRows, b: RunRows, task: str, lang: str) -> list[str] | None:
    """The cluster key of each row, in :func:`_arrays`' order: either run's (they agree,
    :func:`check_pairable`); None where neither names them. Where one run names them and the
    other does not (evaluated before its task had a rule), that run's are used for both: the
    rows are the same (their digests agree), and resampling them apart is too sure."""
    keys = a.clusters.get(task, {}).get(lang) or b.clusters.get(task, {}).get(lang)
    return [keys[i] for i in sorted(a.rows[task][lang])] if keys else None


def _arrays(a: RunRows, b: RunRows, task: str, lang: str) -> tuple[np.ndarray, np.ndarray]:
    ids = sorted(a.rows[task][lang])
    first = np.array([a.rows[task][lang][i] for i in ids], dtype=float)
    second = np.array([b.rows[task][lang][i] for i in ids], dtype=float)
    return first, second


def compare_runs(
    a: RunRows, b: RunRows, samples: int = SAMPLES, only: str | None = None
) -> list[ComparisonRow]:
    """Run ``b`` against baseline ``a`` on every task both have (``only`` alone when given:
    the report compares a pair task by task): one row per shared language, then the targets'
    average. Raises :class:`MsltError` when the rows differ. Each row's ``metric`` is the one
    results.json names (``exact_match`` was labelled ``accuracy``), else how rows count."""
    out: list[ComparisonRow] = []
    for task in check_pairable(a, b, only):
        kind = "f1" if "f1" in (a.metric.get(task), b.metric.get(task)) else "accuracy"
        metric = b.metric_names.get(task) or a.metric_names.get(task) or kind
        langs = [lang for lang in a.rows[task] if lang in b.rows[task]]
        sources = set(a.sources) | set(b.sources)
        rows: list[ComparisonRow] = []
        arrays = {lang: _arrays(a, b, task, lang) for lang in langs}  # each read once, for its
        clusters = {lang: row_clusters(a, b, task, lang) for lang in langs}  # row and the mean's
        for lang in langs:
            first, second = arrays[lang]
            seed = [0, zlib.crc32(f"{task}/{lang}".encode())]
            keys = clusters[lang]
            boot = paired_bootstrap(first, second, kind, samples, seed, keys)
            test = mcnemar_exact(first > 0, second > 0) if kind == "accuracy" else None
            # McNemar's test takes rows as independent: clustered rows go by the bootstrap
            p_mcnemar = test.p_value if test is not None and keys is None else None
            rows.append(
                ComparisonRow(
                    baseline=a.name,
                    run=b.name,
                    task=task,
                    lang=lang,
                    metric=metric,
                    n=len(first),
                    baseline_score=float(statistic(first, kind)),
                    run_score=float(statistic(second, kind)),
                    difference=boot.difference,
                    ci_low=boot.low,
                    ci_high=boot.high,
                    p_bootstrap=boot.p_value,
                    p_mcnemar=p_mcnemar,
                    p_holm=None,
                    significant=False,
                    only_baseline=test.only_a if test else None,
                    only_run=test.only_b if test else None,
                    source=lang in sources,
                    clusters=len(set(keys)) if keys is not None else None,
                )
            )
        adjusted = holm([r.p_mcnemar if r.p_mcnemar is not None else r.p_bootstrap for r in rows])
        rows = [
            _with(row, p_holm=p, significant=p < ALPHA)
            for row, p in zip(rows, adjusted, strict=True)
        ]
        targets = [lang for lang in langs if lang not in sources]
        if targets:
            pairs = [arrays[lang] for lang in targets]
            seed = [0, zlib.crc32(f"{task}/targets".encode())]
            keys_per_language = [clusters[lang] for lang in targets]
            units = None
            if task in a.parallel and task in b.parallel:  # an earlier mslt-it's run, or one
                ids = [sorted(a.rows[task][lang]) for lang in targets]  # saying false: apart
                units = parallel_units(ids, keys_per_language)
            boot = paired_mean_bootstrap(pairs, kind, samples, seed, keys_per_language, units)
            scores = [(statistic(x, kind), statistic(y, kind)) for x, y in pairs]
            rows.append(
                ComparisonRow(
                    baseline=a.name,
                    run=b.name,
                    task=task,
                    lang=AVERAGE,
                    metric=metric,
                    n=sum(len(x) for x, _ in pairs),
                    baseline_score=float(np.mean([s[0] for s in scores])),
                    run_score=float(np.mean([s[1] for s in scores])),
                    difference=boot.difference,
                    ci_low=boot.low,
                    ci_high=boot.high,
                    p_bootstrap=boot.p_value,
                    p_mcnemar=None,
                    p_holm=None,
                    significant=boot.p_value < ALPHA,
                    only_baseline=None,
                    only_run=None,
                    source=False,
                    clusters=joint_clusters(units, keys_per_language),
                    joint_items=units is not None,
                )
            )
        out.extend(rows)
    return out


def joint_clusters(
    units: Sequence[np.ndarray] | None, keys_per_language: Sequence[Sequence[str] | None]
) -> int | None:
    """What the targets' average drew: its shared units where items were drawn in every
    language at once, else every language's clusters summed (None: rows one by one)."""
    if units is not None:
        return unit_count(units)
    if all(keys is None for keys in keys_per_language):
        return None
    return sum(len(set(keys)) for keys in keys_per_language if keys is not None)


def _with(row: ComparisonRow, **changes: Any) -> ComparisonRow:
    return ComparisonRow(**{**asdict(row), **changes})


def pick_run(name: str, runs: Sequence[str]) -> str:
    """``name`` if the report has a run so labelled; a one-line error listing them if not."""
    if name not in runs:
        raise MsltError(f"--compare: no run {name!r} in the report; runs: {allowed(runs)}")
    return name


def write_comparisons(rows: Sequence[ComparisonRow], path: Path) -> None:
    """comparisons.csv: one line per compared language (and average) of every pair."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(getattr(row, column)) for column in COLUMNS])
    path.write_text(buffer.getvalue(), encoding="utf-8")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e-3 and value else f"{value:.4f}"
    return value


OUTPUT_SETTINGS = ("backend", "mode", "dtype", "device", "batch_size", "system_prompt", "data")
"""Evaluation settings that can change a model's outputs on the same rows (``batch_size`` in
reduced precision: bf16 generation moved with it on a GPU, BENCHMARKS.md "GPU runs"; the
device's kernels likewise; ``dtype`` as ``auto`` resolved, since this release)."""
TASK_SETTINGS = ("split", "template", "template_sha256", "max_tokens", "definition_sha256")
"""The same, per task (``results.json``'s ``settings.tasks``)."""


def evaluation_differences(
    a: Mapping[str, Any], b: Mapping[str, Any], task: str, languages: tuple[Any, Any] = ((), ())
) -> list[str]:
    """How two runs' evaluations of ``task`` differed beyond the model: the paired difference
    of runs evaluated differently is partly the evaluation's, and a reviewer must be told.

    ``a`` and ``b`` are the runs' ``results.json`` documents; one without ``settings`` (another
    tool's) cannot tell, and gives nothing. ``languages``: the languages each run scored, as
    its rows hold them (a run whose settings name a language its rows lack, say an edited
    copy, was compared on fewer without a word). The rows themselves are checked elsewhere.
    """
    found = output_setting_differences(a, b, task)
    mine, theirs = (set(map(str, scored)) for scored in languages)
    only = [
        f"{', '.join(sorted(one - other))} only in the {which}"
        for one, other, which in ((mine, theirs, "first"), (theirs, mine, "second"))
        if one - other
    ]
    if only:
        found.append(f"languages ({'; '.join(only)}): compared on those both have")
    return found


def output_setting_differences(a: Mapping[str, Any], b: Mapping[str, Any], task: str) -> list[str]:
    """The settings of :func:`evaluation_differences` that can change a model's outputs on the
    same row (its languages aside): runs that differ in one predict differently whatever their
    models, so neither a paired difference nor an adapter's sameness with its base is theirs
    alone."""
    first, second = a.get("settings"), b.get("settings")
    if not isinstance(first, Mapping) or not isinstance(second, Mapping):
        return []
    found = [
        _difference(key, first.get(key), second.get(key))
        for key in (*OUTPUT_SETTINGS, "chat_template_sha256")
        if first.get(key) != second.get(key)
    ]
    one, other = _task_settings(first, task), _task_settings(second, task)
    return found + [
        _difference(key, one.get(key), other.get(key))
        for key in TASK_SETTINGS
        if one.get(key) != other.get(key)
    ]


def _task_settings(settings: Mapping[str, Any], task: str) -> Mapping[str, Any]:
    tasks = settings.get("tasks")
    for entry in tasks if isinstance(tasks, list) else []:
        if isinstance(entry, Mapping) and entry.get("task") == task:
            return entry
    return {}


def _difference(key: str, first: Any, second: Any) -> str:
    if key.endswith("sha256"):
        return f"{key.removesuffix('_sha256')} (its content)"
    return f"{key} {_setting(key, first)} vs {_setting(key, second)}"


def _setting(key: str, value: Any) -> str:
    """A setting's value in words: the device an earlier mslt-it did not record ("device
    None") is said to be unrecorded, and its ``dtype: auto`` unresolved."""
    if value is None and key == "device":
        return "not recorded"
    if key == "dtype" and value == "auto":
        return "auto (not resolved)"
    return _plain(value)


def _plain(value: Any) -> str:
    return report_text.plain(str(value), report_text.SETTING, limit=40, formula=True) or "''"


def markdown(
    rows: Sequence[ComparisonRow],
    differences: Mapping[tuple[str, str, str], list[str]] | None = None,
) -> str:
    """One table per compared pair: difference, interval, p-values, significance; and under it
    how the pair's evaluations differed, where they did (``differences`` by baseline, run and
    task: :func:`evaluation_differences`)."""
    if not rows:
        return ""
    lines = ["## Paired comparisons", ""]
    lines += [
        f"Each run against its baseline on the same rows: difference in points (run − "
        f"baseline), 95 % paired-bootstrap interval, McNemar's exact p (accuracy) or the "
        f"bootstrap's (F1, and rows resampled in clusters: a task's `cluster` rule, such as "
        f"XNLI's hypotheses of one premise, which McNemar's test would take as independent), "
        f"Holm-adjusted over the languages; **bold**: significant at "
        f"{ALPHA:g} after Holm, so an interval clear of 0 is not bold where the adjusted p is "
        "above it (the interval is not corrected for the other languages). A language marked "
        "(source) is a source of either run, so its difference is in-language learning, not "
        "zero-shot transfer; Holm's family still holds every language compared, sources too, "
        "which makes it conservative for the targets. The targets' average (languages that are "
        "a source of neither run) has its own bootstrap p. Every number is in comparisons.csv.",
        "",
    ]
    pairs = list(dict.fromkeys((r.baseline, r.run, r.task) for r in rows))
    for baseline, run, task in pairs:
        chosen = [r for r in rows if (r.baseline, r.run, r.task) == (baseline, run, task)]
        lines += [f"### {run} vs {baseline} ({task})", ""]
        lines += ["| lang | baseline | run | difference | 95% interval | p | p (Holm) |"]
        lines.append("|---|---|---|---|---|---|---|")
        for r in chosen:
            p = r.p_mcnemar if r.p_mcnemar is not None else r.p_bootstrap
            holm_p = "–" if r.p_holm is None else _p(r.p_holm)  # as precise as its bold needs
            difference = f"{r.difference:+.1f}"
            if r.significant:
                difference = f"**{difference}**"
            lang = f"{r.lang} (source)" if r.source else r.lang
            lines.append(
                f"| {lang} | {r.baseline_score:.1f} | {r.run_score:.1f} | {difference} | "
                f"[{r.ci_low:+.1f}, {r.ci_high:+.1f}] | {_p(p)} | {holm_p} |"
            )
        lines += ["", significance_line(chosen), ""]
        grouped = next((r for r in chosen if r.clusters is not None and r.lang != AVERAGE), None)
        if grouped is not None:
            lines += [
                f"Rows resampled in clusters (the task's `cluster` rule; {grouped.clusters} for "
                f"{grouped.lang}): every interval and p above is the cluster bootstrap's.",
                "",
            ]
        if any(r.joint_items for r in chosen):
            lines += [
                "The targets' average draws each item in every target language at once (the "
                "task's rows are `parallel`: translations of one item, hard or easy together).",
                "",
            ]
        unequal = (differences or {}).get((baseline, run, task))
        if unequal:
            lines += [
                f"**Evaluated differently** ({baseline}, then {run}): {'; '.join(unequal)}. "
                "Part of each difference above may be the evaluation's, not the model's.",
                "",
            ]
    return "\n".join(lines)


def significance_line(rows: Sequence[ComparisonRow]) -> str:
    """The languages of one pair's table significant after Holm, targets apart from sources of
    a run: a significant gain on a run's own source is no evidence of transfer."""
    found = [r for r in rows if r.significant and r.lang != AVERAGE]
    targets = ", ".join(r.lang for r in found if not r.source) or "none"
    sources = ", ".join(r.lang for r in found if r.source) or "none"
    return f"Significant after Holm: targets: {targets}; sources of a run: {sources}."


def _p(value: float, alpha: float = ALPHA) -> str:
    """A p-value as the tables print it: three decimals, more where three would round it
    across ``alpha`` (0.0496 and 0.0504 both printed 0.050, and only one was bold), so a
    printed p below ``alpha`` is significant and one at or above it is not."""
    if value < 0.001:
        return "<0.001"
    for places in range(3, 10):
        text = f"{value:.{places}f}"
        if (float(text) < alpha) == (value < alpha):
            return text
    return f"{value:.10g}"
