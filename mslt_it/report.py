"""``mslt-it report``: tables and plots from evaluation results.

Reads the ``results.json`` files that ``mslt-it eval`` writes (one per adapter, or one per run
directory) and writes ``report.md``, CSVs and PNG plots:

- a heatmap of target languages × runs, with the average column;
- SSLT vs MSLT: the gain of each multi-source run over the single-source baseline per language;
- the k-sweep curve: score against the number of sources, with 95% intervals;
- for an all-combinations grid, each selection criterion's rank of its own top pick and its
  Spearman correlation with the measured scores (``mslt-it select --evaluate``);
- the representation analysis (``analysis.json`` and its PNGs) when present;
- paired comparisons (:mod:`mslt_it.comparisons`): every MSLT run against the SSLT baseline, and
  any pair asked for, row by row with intervals and Holm-corrected p-values (``comparisons.csv``);
  the gain plot draws those intervals and stars the significant languages;
- rollups by script, family and resource tier (:mod:`mslt_it.rollups`);
- answer-language fidelity of generated answers (recorded by ``mslt-it eval``), an adapter that
  changed nothing (``adapter_sanity``), and with a tokenizer, fertility against scores
  (:mod:`mslt_it.fertility`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it import comparisons as paired
from mslt_it import fertility as fertility_of
from mslt_it import rollups
from mslt_it.errors import MsltError
from mslt_it.evaluation.sanity import adapter_sanity
from mslt_it.evaluation.store import CHUNKS, PREDICTIONS, read_jsonl
from mslt_it.files import read_user_text
from mslt_it.io import atomic_directory, shared_file_mode
from mslt_it.outputs import claim_output
from mslt_it.report_curves import adapter_runs, training_section

SYNTHETIC_WARNING = (
    "**These results are on SYNTHETIC data**: invented languages, each with its own words and "
    "script, that share one meaning structure (parallel rows, one concept grammar), cognates "
    "within a family and script, and lang2vec's verb-object order; with the "
    "`mslt-it:tiny-world` base, pre-trained on code-switched text between them (more between "
    "languages of one family or script), transfer between them is real, so the numbers show how "
    "the number and choice of source languages change transfer in a world built to have it. It "
    "is a model of the phenomenon: nothing here measures real languages, and on the random "
    "`mslt-it:tiny` base the other languages stay at chance."
)


@dataclass(frozen=True)
class Score:
    """One run's score on one language."""

    run: str
    sources: tuple[str, ...]
    task: str
    lang: str
    metric: str
    score: float
    low: float
    high: float
    n: int
    invalid_rate: float
    is_source: bool
    synthetic: bool = False
    model: str = ""
    answer_share: float | None = None  # generated answers in the expected language (0..1)
    answer_expected: str = ""  # that language ("" when answers were not identified)


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


def find_results(paths: list[Path]) -> list[Path]:
    """Every results.json under the given folders (or the files themselves), each once."""
    found: dict[Path, Path] = {}
    for path in paths:
        if path.is_file() and path.name == "results.json":
            candidates = [path]
        elif path.is_dir():
            candidates = sorted(path.rglob("results.json"))
        elif path.exists():
            raise MsltError(f"run dir: {str(path)!r} is neither a folder nor a results.json")
        else:
            raise MsltError(f"run dir: {str(path)!r} does not exist")
        for candidate in candidates:
            found.setdefault(candidate.resolve(), candidate)  # a folder given twice counts once
    if not found:
        raise MsltError(f"run dir: no results.json under {', '.join(map(str, paths))}")
    return list(found.values())


MAX_RESULTS_BYTES = 200_000_000
"""results.json files larger than this are not read (a big study's is a few MB)."""


def read_results_file(path: Path) -> dict[str, Any]:
    """One results.json, checked enough that the report cannot silently misread it."""
    text = read_user_text(path, "run dir", MAX_RESULTS_BYTES)
    try:
        data = json.loads(text)
    except RecursionError:
        raise MsltError(
            f"run dir: {path} is not a readable results.json (nested too deeply)"
        ) from None
    except ValueError as error:
        reason = " ".join(str(error).split())[:160]
        raise MsltError(f"run dir: {path} is not a readable results.json ({reason})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
        raise MsltError(f"run dir: {path} is not an mslt-it results.json (no 'tasks' mapping)")
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
    scores: list[Score] = []
    sanity: dict[str, dict[str, Any]] = {}
    for path, data, name in zip(files, documents, names, strict=True):
        scores.extend(scores_of(data, path, name))
        if isinstance(data.get("adapter_sanity"), dict):
            sanity[name] = data["adapter_sanity"]
    if not scores:
        raise MsltError(f"run dir: {', '.join(map(str, files))} hold no per-language scores")
    analyses = list(
        dict.fromkeys(
            [
                *(
                    p.resolve()
                    for path in paths
                    if path.is_dir()
                    for p in sorted(path.rglob("analysis.json"))
                ),
                *analyses_beside(paths, documents),
            ]
        )
    )
    synthetic = any(score.synthetic for score in scores)
    found = dict(zip(names, files, strict=True))
    read = dict(zip(names, documents, strict=True))
    unfinished = tuple(find_unfinished(paths))
    return Results(scores, synthetic, analyses, unfinished, found, sanity, read)


def analyses_beside(paths: list[Path], documents: list[dict[str, Any]]) -> list[Path]:
    """analysis.json files in folders next to the given evaluation folders (``runs/demo/eval``
    and ``runs/demo/analysis``) that analysed one of the evaluated adapters: the report of an
    experiment shows its analysis without the user naming it."""
    adapters = {
        str(Path(doc["adapter"]["path"]).resolve())
        for doc in documents
        if isinstance(doc.get("adapter"), dict) and isinstance(doc["adapter"].get("path"), str)
    }
    found: list[Path] = []
    for path in paths:
        if not path.is_dir() or not adapters:
            continue
        for candidate in sorted(path.resolve().parent.glob("*/analysis.json")):
            try:
                data = json.loads(read_user_text(candidate, "analysis", MAX_RESULTS_BYTES))
            except (ValueError, OSError):
                continue  # someone else's file of that name: not ours to read
            listed = (
                ((data.get("inputs") or {}).get("adapters") or []) if isinstance(data, dict) else []
            )
            paths_listed = {
                str(Path(entry["path"]).resolve())
                for entry in listed
                if isinstance(entry, dict) and isinstance(entry.get("path"), str)
            }
            if paths_listed & adapters:
                found.append(candidate.resolve())
    return found


def run_label(sources: tuple[str, ...], fallback: str) -> str:
    """``SSLT en``, ``MSLT ar+en+zh``, or the run's own name for the base model."""
    if not sources:
        return fallback
    return f"{'SSLT' if len(sources) == 1 else 'MSLT'} {'+'.join(sources)}"


def sources_in(data: dict[str, Any]) -> tuple[str, ...]:
    """The adapter's source languages recorded in a results.json (none for a base model)."""
    adapter = data.get("adapter") or {}
    sources = adapter.get("sources") if isinstance(adapter, dict) else None
    if not sources:
        return ()
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise MsltError(
            f"run dir: adapter.sources must be a list of language codes, got {sources!r:.60}"
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
        run_label(sources_in(data), str(data.get("run") or path.parent.name))
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
                names[i] = f"{names[i]} [{where.as_posix() or files[i].parent.name}]"
    return names


TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
"""A task's name as a report writes it to a folder name: no separators, dots or '..'."""


def _number(value: Any, where: str, low: float, high: float) -> float:
    """A finite number within [low, high] from a results.json, or a one-line error."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MsltError(f"{where}: {value!r:.40} is not a number")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float: 10**400
        raise MsltError(f"{where}: {str(value)[:20]}… is outside {low:g}..{high:g}") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise MsltError(f"{where}: {value!r:.40} is outside {low:g}..{high:g}")
    return number


def scores_of(data: dict[str, Any], path: Path, name: str) -> list[Score]:
    """The per-language scores of one results.json, as the run ``name`` (:func:`run_names`).

    A hand-edited file is checked value by value (NaN, infinities, scores outside 0..100,
    negative counts, task names that are not plain names), each a one-line error naming the
    file and the field.
    """
    sources = sources_in(data)
    synthetic = data.get("data") == "synthetic"
    out = []
    for task, per_task in data["tasks"].items():
        if not isinstance(task, str) or not TASK_NAME.match(task):
            raise MsltError(
                f"run dir: {path}: tasks: {task!r:.60} is not a task name (letters, digits, "
                "'_' and '-')"
            )
        if not isinstance(per_task, dict) or not isinstance(per_task.get("languages"), dict):
            raise MsltError(f"run dir: {path}: tasks.{task}.languages: expected a mapping")
        metric = per_task.get("metric", "score")
        if not isinstance(metric, str):
            raise MsltError(f"run dir: {path}: tasks.{task}.metric: {metric!r:.40} is not a name")
        for lang, entry in per_task["languages"].items():
            where = f"run dir: {path}: tasks.{task}.languages.{lang}"
            if not isinstance(lang, str) or not TASK_NAME.match(lang):
                raise MsltError(f"{where}: not a language code")
            if not isinstance(entry, dict) or "score" not in entry:
                raise MsltError(f"{where}: expected a mapping with a 'score'")
            score = _number(entry["score"], f"{where}.score", 0, 100)
            interval = entry.get("ci95") or (score, score)
            if not isinstance(interval, list | tuple) or len(interval) != 2:
                raise MsltError(f"{where}.ci95: {interval!r:.40} is not a [low, high] pair")
            # an interval is the scores' spread: finite, a little past 0..100 at worst
            low = _number(interval[0], f"{where}.ci95", -100, 200)
            high = _number(interval[1], f"{where}.ci95", -100, 200)
            count = _number(entry.get("n", 0), f"{where}.n", 0, 1e12)
            if count != int(count):
                raise MsltError(f"{where}.n: {entry.get('n')!r:.40} is not a whole number")
            invalid = _number(entry.get("invalid_rate", 0.0), f"{where}.invalid_rate", 0, 1)
            share, expected = answer_language_of(entry.get("answer_language"), where)
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
                    answer_share=share,
                    answer_expected=expected,
                )
            )
    return out


def answer_language_of(entry: Any, where: str) -> tuple[float | None, str]:
    """``(share, expected language)`` of a language's ``answer_language`` record, checked."""
    if entry is None:
        return None, ""
    if not isinstance(entry, dict):
        raise MsltError(f"{where}.answer_language: expected a mapping")
    expected = entry.get("expected")
    if not isinstance(expected, str):
        raise MsltError(f"{where}.answer_language.expected: {expected!r:.40} is not a code")
    share = entry.get("share")
    if share is None:
        return None, expected
    return _number(share, f"{where}.answer_language.share", 0, 1), expected


def write_report(
    paths: list[Path],
    out: Path,
    recipe: Any = None,
    overwrite: bool = True,
    compare: Sequence[tuple[str, str]] = (),
    tokenizer: str | None = None,
) -> Path:
    """Write report.md, scores.csv, comparisons.csv and the plots into ``out`` (atomically).

    ``compare``: pairs ``(baseline, run)`` of run names as the report labels them, compared row
    by row besides every MSLT run against the SSLT baseline; runs on different tasks or rows
    are a one-line error. ``tokenizer``: plot each language's fertility against the scores.
    Every check and measurement is done before ``out`` is touched.
    """
    results = load_results([Path(p) for p in paths])
    rows, skipped = gather_comparisons(results, compare)
    extras = Extras(
        comparisons=rows,
        skipped=skipped,
        sanity=check_adapters(results),
        fertility=measure_fertility(results, tokenizer) if tokenizer else {},
        tokenizer=tokenizer or "",
    )
    with claim_output(out, kind="report", overwrite=overwrite, inputs=paths, inside_ok=True):
        return _write(results, Path(out), recipe, extras)


@dataclass
class Extras:
    """What a report adds to the scores: paired comparisons (and the pairs that could not be
    compared, with why), each adapter's sanity record, each task's fertility."""

    comparisons: list[paired.ComparisonRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    sanity: dict[str, dict[str, Any]] = field(default_factory=dict)
    fertility: dict[str, list[fertility_of.Fertility]] = field(default_factory=dict)
    tokenizer: str = ""

    def for_task(self, task: str) -> Extras:
        return Extras(
            [r for r in self.comparisons if r.task == task],
            self.skipped,
            self.sanity,
            {task: self.fertility[task]} if task in self.fertility else {},
            self.tokenizer,
        )


def baseline_pairs(results: Results) -> list[tuple[str, str]]:
    """Every MSLT run with the first SSLT run (the gain plot's baseline) of its task."""
    pairs = []
    for task in dict.fromkeys(s.task for s in results.scores):
        runs = list(dict.fromkeys(s.run for s in results.scores if s.task == task))
        single = [r for r in runs if len(results.sources_of(r)) == 1]
        multi = [r for r in runs if len(results.sources_of(r)) > 1]
        if single:
            pairs += [(single[0], run) for run in multi if (single[0], run) not in pairs]
    return pairs


def gather_comparisons(
    results: Results, asked: Sequence[tuple[str, str]] = ()
) -> tuple[list[paired.ComparisonRow], list[str]]:
    """Paired comparisons for the report: the baseline pairs (skipped, with the reason, when
    their rows cannot be paired) and the ``asked`` ones (an error when they cannot)."""
    rows: list[paired.ComparisonRow] = []
    loaded: dict[str, paired.RunRows] = {}

    def rows_of(name: str) -> paired.RunRows:
        if name not in loaded:
            if name not in results.files:
                raise MsltError(f"compare: {name!r} has no results file to read rows from")
            loaded[name] = paired.read_run_rows(name, results.files[name], results.sources_of(name))
        return loaded[name]

    asked = [(paired.pick_run(a, results.runs), paired.pick_run(b, results.runs)) for a, b in asked]
    for a, b in asked:
        if a == b:
            raise MsltError(f"--compare: {a!r} against itself; give two different runs")
        rows += paired.compare_runs(rows_of(a), rows_of(b))
    skipped: list[str] = []
    for a, b in baseline_pairs(results):
        if (a, b) in asked or a not in results.files or b not in results.files:
            continue
        try:
            rows += paired.compare_runs(rows_of(a), rows_of(b))
        except MsltError as error:
            skipped.append(f"{b} vs {a}: {str(error).removeprefix('compare: ')}")
    return rows, skipped


def check_adapters(results: Results) -> dict[str, dict[str, Any]]:
    """Each adapter run's sanity record: from its results.json, or measured here against a base
    run of the same model in the report (no sources) when results.json has none."""
    found = dict(results.sanity)
    bases = [r for r in results.runs if not results.sources_of(r) and r in results.files]
    models = {s.run: s.model for s in results.scores}
    base_records: dict[str, list[dict[str, Any]]] = {}
    for run in results.runs:
        if run in found or not results.sources_of(run) or run not in results.files:
            continue
        base = next((b for b in bases if models.get(b) == models.get(run)), None)
        own = results.files[run].parent / PREDICTIONS
        if base is None or not own.is_file():
            continue
        theirs = results.files[base].parent / PREDICTIONS
        if theirs.is_file():
            if base not in base_records:  # read once for every adapter run
                base_records[base] = read_jsonl(theirs)
            record = adapter_sanity(read_jsonl(own), base_records[base], base)
            if record is not None:
                found[run] = record
    return found


def measure_fertility(results: Results, tokenizer: str) -> dict[str, list[fertility_of.Fertility]]:
    """Each task's language fertilities under ``tokenizer``."""
    files = list(results.files.values())
    if not files:
        raise MsltError("--tokenizer: the report has no results files to read prompts from")
    return {
        task: fertility_of.fertilities(tokenizer, files, task)
        for task in dict.fromkeys(s.task for s in results.scores)
    }


def _write(results: Results, out: Path, recipe: Any, extras: Extras | None = None) -> Path:
    """:func:`write_report` once ``out`` is checked and locked.

    Several evaluation tasks (XCOPA, XStoryCloze, XWinograd after one training run) get a
    section each, with its own tables and plots in ``<task>/``; one cell cannot hold two tasks.
    """
    extras = extras or Extras()
    tasks = list(dict.fromkeys(s.task for s in results.scores))
    with atomic_directory(out, overwrite=True, kind="report") as tmp:
        write_csv(results, tmp / "scores.csv", extras.comparisons)
        if extras.comparisons:
            paired.write_comparisons(extras.comparisons, tmp / "comparisons.csv")
        if len(tasks) == 1:
            (text,) = task_markdown(results, tmp, recipe, extras=extras)
        else:
            sections = []
            for number, task in enumerate(tasks):
                scores = [s for s in results.scores if s.task == task]
                subset = Results(
                    scores,
                    task_is_synthetic(results, scores),
                    results.analyses if number == 0 else [],
                    results.unfinished,
                    results.files,
                    results.sanity,
                    results.documents,
                )
                own_extras = extras.for_task(task)
                (tmp / task).mkdir()
                write_csv(subset, tmp / task / "scores.csv", own_extras.comparisons)
                if own_extras.comparisons:
                    paired.write_comparisons(own_extras.comparisons, tmp / task / "comparisons.csv")
                own, linked = task_markdown(
                    subset, tmp / task, recipe, ("", f"{task}/"), own_extras
                )
                (tmp / task / "report.md").write_text(own, encoding="utf-8")
                sections.append(f"# {task}\n\n" + linked.split("\n", 1)[1])
            text = "# mslt-it report\n\n" + f"Tasks: {', '.join(tasks)}.\n\n" + "\n".join(sections)
        (tmp / "report.md").write_text(text, encoding="utf-8")
    return out / "report.md"


def task_is_synthetic(results: Results, scores: Sequence[Score]) -> bool:
    """Whether one task's section gets the SYNTHETIC warning: its own scores say so (scores
    built without the flag, as a library user may, inherit the whole report's)."""
    if not any(s.synthetic for s in results.scores):
        return results.synthetic
    return any(s.synthetic for s in scores)


def task_markdown(
    results: Results,
    folder: Path,
    recipe: Any,
    prefixes: Sequence[str] = ("",),
    extras: Extras | None = None,
) -> list[str]:
    """One task's tables and plots, written into ``folder`` once, as Markdown for each prefix
    its files are linked with (the task's own report, and its section in the combined one)."""
    extras = extras or Extras()
    figures = make_plots(results, folder, extras)
    extra = criteria_section(results, folder, recipe) if recipe is not None else ""
    analysis = copy_analyses(results, folder)
    sections = extra_sections(results, extras)
    documents = results.documents or {
        name: read_results_file(path) for name, path in results.files.items()
    }
    curves, _warnings = training_section(adapter_runs(documents), folder)
    sections = "\n".join(part for part in (sections, curves) if part)
    texts = []
    for prefix in prefixes:
        text = markdown(results, [prefix + f for f in figures], extra, analysis, recipe, sections)
        if prefix:
            text = text.replace("](analysis", f"]({prefix}analysis")
        texts.append(text)
    return texts


CSV_COLUMNS = [
    "run",
    "sources",
    "task",
    "lang",
    "metric",
    "score",
    "ci_low",
    "ci_high",
    "n",
    "invalid_rate",
    "is_source",
    *rollups.GROUPINGS,
    "answer_language",
    "answer_language_share",
    "compared_with",
    "difference",
    "difference_ci_low",
    "difference_ci_high",
    "p_holm",
    "significant",
]
"""One line per run and language; the grouping columns make a rollup one group-by away, and
the comparison columns repeat the run's first paired comparison (all are in comparisons.csv)."""


def write_csv(
    results: Results, path: Path, comparisons: Sequence[paired.ComparisonRow] = ()
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    compared: dict[tuple[str, str, str], paired.ComparisonRow] = {}
    for row in comparisons:
        compared.setdefault((row.run, row.task, row.lang), row)
    for s in results.scores:
        score, low, high = f"{s.score:.2f}", f"{s.low:.2f}", f"{s.high:.2f}"
        sources = "+".join(s.sources)
        rate = f"{s.invalid_rate:.4f}"
        groups = [rollups.group_of(s.lang, by) for by in rollups.GROUPINGS]
        share = "" if s.answer_share is None else f"{s.answer_share:.4f}"
        pair = compared.get((s.run, s.task, s.lang))
        versus = ["", "", "", "", "", ""]
        if pair is not None:
            versus = [
                pair.baseline,
                f"{pair.difference:.2f}",
                f"{pair.ci_low:.2f}",
                f"{pair.ci_high:.2f}",
                "" if pair.p_holm is None else f"{pair.p_holm:.4g}",
                pair.significant,
            ]
        cells = [s.run, sources, s.task, s.lang, s.metric, score, low, high, s.n, rate]
        writer.writerow([*cells, s.is_source, *groups, s.answer_expected, share, *versus])
    path.write_text(buffer.getvalue(), encoding="utf-8")


def extra_sections(results: Results, extras: Extras) -> str:
    """Adapter sanity, answer-language fidelity, paired comparisons, rollups and fertility."""
    parts = [
        sanity_markdown(results, extras.sanity),
        fidelity_markdown(results),
        paired.markdown(extras.comparisons),
    ]
    if extras.skipped:
        parts.append("Not compared: " + "; ".join(extras.skipped) + ".\n")
    pairs = list(dict.fromkeys((r.baseline, r.run) for r in extras.comparisons))
    runs = set(results.runs)
    pairs = [(a, b) for a, b in pairs if a in runs and b in runs] or baseline_pairs(results)
    parts.append(rollups.markdown(results.scores, pairs))
    task = results.scores[0].task
    if task in extras.fertility:
        parts.append(
            fertility_of.markdown(extras.fertility[task], target_scores(results), extras.tokenizer)
        )
    return "\n".join(part for part in parts if part)


def target_scores(results: Results) -> dict[str, dict[str, float]]:
    """Per run: target language -> score (sources left out: they were trained on)."""
    out: dict[str, dict[str, float]] = {}
    for s in results.scores:
        if not s.is_source:
            out.setdefault(s.run, {})[s.lang] = s.score
    return out


def sanity_markdown(results: Results, sanity: dict[str, dict[str, Any]]) -> str:
    """A warning for every adapter whose predictions equal the base model's on every row."""
    lines = []
    for run in results.runs:
        record = sanity.get(run)
        if not record:
            continue
        if record.get("same_as_base"):
            lines.append(
                f"**Adapter sanity: {run} predicts exactly as the base model "
                f"({record.get('compared_with')}) on all {record.get('rows')} rows**: the "
                "adapter was probably not applied (or learned nothing); its scores are the "
                "base model's."
            )
        else:
            lines.append(
                f"Adapter sanity: {run} differs from {record.get('compared_with')} on "
                f"{int(record.get('rows', 0)) - int(record.get('identical_rows', 0))} of "
                f"{record.get('rows')} rows."
            )
    return "\n\n".join(lines) + "\n" if lines else ""


def fidelity_markdown(results: Results) -> str:
    """Share of generated answers in the expected language, runs × languages."""
    scored = [s for s in results.scores if s.answer_expected]
    if not scored:
        return ""
    langs = list(dict.fromkeys(s.lang for s in scored))
    lines = ["## Answer-language fidelity (generated answers)", ""]
    lines += [
        "Share of answers written in the language expected (the prompt's, or the template's "
        "answer language for English-instruction templates: in brackets where it differs), "
        "identified by py3langid (the synthetic world's languages through their lexicons); "
        "answers without letters are left out; – where no identifier covers the language. "
        "The counts of each identified language, mixed, empty and unknown answers are in "
        "each results.json.",
        "",
        "| run | " + " | ".join(langs) + " |",
        "|---" * (len(langs) + 1) + "|",
    ]
    for run in dict.fromkeys(s.run for s in scored):
        mine = {s.lang: s for s in scored if s.run == run}
        cells = []
        for lang in langs:
            s = mine.get(lang)
            if s is None or s.answer_share is None:
                cells.append("–")
                continue
            note = f" ({s.answer_expected})" if s.answer_expected != lang else ""
            cells.append(f"{100 * s.answer_share:.0f}%{note}")
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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


def markdown(
    results: Results,
    figures: list[str],
    extra: str,
    analysis: str,
    recipe: Any,
    sections: str = "",
) -> str:
    """The report's text: what was run, a table, ``sections`` (comparisons, rollups…), the
    plots."""
    lines = ["# mslt-it report", ""]
    if recipe is not None:
        config = recipe.config
        lines += [f"Recipe **{config.name}** ({recipe.path}): {config.description}".strip(), ""]
        data = config.data
        summary = f"Task {data.task}, budget {data.budget} ({data.budget_mode})"
        lines += [f"{summary}, model `{recipe.model.name_or_path}`.", ""]
    if results.synthetic:
        lines += [SYNTHETIC_WARNING, ""]
        real = [
            run
            for run in results.runs
            if not any(s.synthetic for s in results.scores if s.run == run)
        ]
        if real:
            lines += [f"Runs on real (not synthetic) data: {', '.join(real)}.", ""]
    if results.unfinished:
        names = ", ".join(f"`{path}`" for path in results.unfinished)
        lines += [
            f"**Not in this report**: unfinished evaluations (stopped mid-way; run `mslt-it eval` "
            f"again to finish them): {names}.",
            "",
        ]
    models = {s.run: s.model for s in results.scores}
    if len(set(models.values())) > 1:
        lines += ["| run | model |", "|---|---|"]
        lines += [f"| {run} | `{model}` |" for run, model in models.items()]
        lines.append("")
    metric = results.scores[0].metric
    langs = results.languages
    avg = averages(results)
    lines += [f"## Scores ({metric} ×100; *source languages in italics*)", ""]
    lines.append("| run | " + " | ".join(langs) + " | avg (targets) | avg (all) |")
    lines.append("|---" * (len(langs) + 3) + "|")
    for run, per_lang in results.table().items():
        cells = []
        for lang in langs:
            score = per_lang.get(lang)
            cell = "–" if score is None else f"{score.score:.1f}"
            cells.append(f"*{cell}*" if score is not None and score.is_source else cell)
        lines.append(
            f"| {run} | "
            + " | ".join(cells)
            + f" | {avg[run]['targets']:.1f} | {avg[run]['all']:.1f} |"
        )
    lines += [
        "",
        "Averages are unweighted over languages (XTREME); intervals are in scores.csv.",
        "",
    ]
    invalid = [s for s in results.scores if s.invalid_rate > 0]
    if invalid:
        worst = max(invalid, key=lambda s: s.invalid_rate)
        where = f"{worst.invalid_rate:.1%} ({worst.run}, {worst.lang})"
        lines += [f"Some outputs named no label (invalid); the highest rate was {where}.", ""]
    if sections:
        lines += [sections, ""]
    for figure in figures:
        lines += [f"![{figure}]({figure})", ""]
    return "\n".join([*lines, extra, analysis]).rstrip() + "\n"


def make_plots(results: Results, folder: Path, extras: Extras | None = None) -> list[str]:
    """Every plot the results support; returns the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    extras = extras or Extras()
    written = [heatmap(results, folder / "heatmap.png")]
    if gain_plot(results, folder / "gain.png", extras.comparisons):
        written.append("gain.png")
    if k_sweep_plot(results, folder / "k_sweep.png"):
        written.append("k_sweep.png")
    task = results.scores[0].task
    if task in extras.fertility:
        figure = fertility_of.plot(extras.fertility[task], target_scores(results))
        save_figure(figure, folder / "fertility.png")
        written.append("fertility.png")
    return written


def save_figure(figure: Any, path: Path) -> None:
    """Save a PNG under a temporary name, then rename it into place."""
    import matplotlib.pyplot as plt

    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    figure.savefig(tmp, dpi=130, bbox_inches="tight")
    plt.close(figure)
    os.chmod(tmp, shared_file_mode())  # mkstemp's files are private; outputs are not
    os.replace(tmp, path)


def heatmap(results: Results, path: Path) -> str:
    """Runs × languages, with the target average as the last column; source cells outlined."""
    import matplotlib.pyplot as plt

    runs, langs = results.runs, results.languages
    table = results.table()
    avg = averages(results)
    grid = np.full((len(runs), len(langs) + 1), np.nan)
    for i, run in enumerate(runs):
        for j, lang in enumerate(langs):
            if lang in table[run]:
                grid[i, j] = table[run][lang].score
        grid[i, -1] = avg[run]["targets"]
    width = max(6.0, 0.6 * (len(langs) + 1) + 3)
    figure, axis = plt.subplots(figsize=(width, max(2.5, 0.45 * len(runs) + 1.8)))
    image = axis.imshow(grid, cmap="viridis", aspect="auto")
    axis.set_xticks(range(len(langs) + 1), [*langs, "avg\n(targets)"])
    axis.set_yticks(range(len(runs)), runs)
    axis.set_xlabel("evaluation language")
    axis.set_ylabel("run (source languages)")
    metric = results.scores[0].metric
    axis.set_title(f"{metric} ×100 per language (outlined: source languages)")
    if len(runs) * (len(langs) + 1) <= 400:
        for (i, j), value in np.ndenumerate(grid):
            if not np.isnan(value):
                shade = "white" if value < np.nanmean(grid) else "black"
                axis.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8, color=shade)
    for i, run in enumerate(runs):
        for j, lang in enumerate(langs):
            if lang in table[run] and table[run][lang].is_source:
                axis.add_patch(
                    plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.5, ec="red")
                )
    axis.axvline(len(langs) - 0.5, color="white", lw=2)
    figure.colorbar(image, ax=axis, label=metric)
    save_figure(figure, path)
    return path.name


def gain_plot(
    results: Results, path: Path, comparisons: Sequence[paired.ComparisonRow] = ()
) -> bool:
    """Gain of each multi-source run over the (first) single-source run, per target language.

    Where the runs were compared row by row, each bar gets its 95 % paired interval and a star
    when the gain is significant after Holm; the legend sits outside the axes, over no bar.
    """
    import matplotlib.pyplot as plt

    table = results.table()
    single = [r for r in results.runs if len(results.sources_of(r)) == 1]
    multi = [r for r in results.runs if len(results.sources_of(r)) > 1]
    if not single or not multi:
        return False
    base = single[0]
    multi = multi[:6]
    langs = [lang for lang in results.languages if lang in table[base]]
    figure, axis = plt.subplots(
        figsize=(max(6.0, 0.55 * len(langs) * max(1, len(multi)) / 1.5), 3.8)
    )
    width = 0.8 / len(multi)
    paired_rows = {(r.baseline, r.run, r.lang): r for r in comparisons}
    intervals = False
    for k, run in enumerate(multi):
        gains = [
            table[run][lang].score - table[base][lang].score if lang in table[run] else 0.0
            for lang in langs
        ]
        x = np.arange(len(langs)) + (k - (len(multi) - 1) / 2) * width
        rows = [paired_rows.get((base, run, lang)) for lang in langs]
        errors = None
        if any(rows):
            intervals = True
            errors = np.array(
                [
                    [g - r.ci_low, r.ci_high - g] if r else [0.0, 0.0]
                    for g, r in zip(gains, rows, strict=True)
                ]
            ).T.clip(min=0)
        axis.bar(x, gains, width, label=run, yerr=errors, capsize=2, ecolor="dimgray")
        for xi, gain, row in zip(x, gains, rows, strict=True):
            if row is not None and row.significant:
                top = row.ci_high if gain >= 0 else row.ci_low
                axis.annotate(
                    "*", (xi, top), ha="center", va="bottom" if gain >= 0 else "top",
                    fontsize=11, fontweight="bold",
                )  # fmt: skip
    axis.axhline(0, color="black", lw=0.8)
    axis.margins(y=0.12)
    axis.set_xticks(range(len(langs)), langs)
    axis.set_xlabel("evaluation language")
    axis.set_ylabel(f"gain over {base} (points)")
    title = f"MSLT vs SSLT: gain over {base} at the same data budget"
    if intervals:
        title += "\n(95% paired intervals; * significant after Holm)"
    axis.set_title(title)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    save_figure(figure, path)
    return True


def k_sweep_plot(results: Results, path: Path) -> bool:
    """Mean target score against the number of source languages, with 95% intervals."""
    import matplotlib.pyplot as plt

    table = results.table()
    by_k: dict[int, list[Score]] = {}
    for run in results.runs:
        if not results.sources_of(run):  # the base model: no sources, no point on the curve
            continue
        by_k.setdefault(len(results.sources_of(run)), []).extend(
            s for s in table[run].values() if not s.is_source
        )
    ks = sorted(k for k, scores in by_k.items() if scores)
    if len(ks) < 3:
        return False
    means = [np.mean([s.score for s in by_k[k]]) for k in ks]
    lows = [np.mean([s.low for s in by_k[k]]) for k in ks]
    highs = [np.mean([s.high for s in by_k[k]]) for k in ks]
    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    axis.plot(ks, means, marker="o", label="mean over target languages")
    axis.fill_between(ks, lows, highs, alpha=0.25, label="mean 95% interval")
    axis.set_xticks(ks)
    axis.set_xlabel("number of source languages (k)")
    axis.set_ylabel(f"{results.scores[0].metric} ×100 on targets")
    axis.set_title("Score against the number of sources (same total budget)")
    axis.legend(fontsize=8)
    save_figure(figure, path)
    return True


def criteria_section(results: Results, folder: Path, recipe: Any = None) -> str:
    """For a grid of same-size sets: how each criterion's top pick ranks among measured runs.

    With runs of several sizes (a study with single sources and a k-sweep beside the grid), the
    size with the most runs is ranked: the 35 three-language sets.

    The criteria choose among the recipe's training languages (its data task, e.g. Bactrian-X),
    which an evaluation task (XCOPA) need not have.
    """
    by_size: dict[int, list[str]] = {}
    for run in results.runs:
        by_size.setdefault(len(results.sources_of(run)), []).append(run)
    multi = {size: runs for size, runs in by_size.items() if size > 1}
    if not multi:
        return ""
    _, runs = max(multi.items(), key=lambda item: (len(item[1]), item[0]))  # e.g. the 35
    avg = averages(results)
    measured = [(list(results.sources_of(r)), avg[r]["targets"]) for r in runs]
    if len(measured) < 4:
        return ""
    try:
        from mslt_it.selection import (  # keep: lang2vec tables load only for a grid
            SelectionOptions,
            evaluate_criteria_markdown,
        )
    except ImportError:
        return ""
    task = recipe.config.data.task if recipe is not None else results.scores[0].task
    options = (
        SelectionOptions(size_model=recipe.config.report.size_model, size_missing="last")
        if recipe is not None
        else None
    )
    text = evaluate_criteria_markdown(measured, task=task, options=options)
    (folder / "criteria.md").write_text(text, encoding="utf-8")
    return "## Selection criteria against measured scores\n\n" + text


def copy_analyses(results: Results, folder: Path) -> str:
    """Include representation analyses (``mslt-it analyze``) found beside the results."""
    parts = []
    for i, path in enumerate(results.analyses):
        try:
            data = json.loads(read_user_text(path, "analysis", MAX_RESULTS_BYTES))
        except ValueError:
            raise MsltError(f"analysis: {path} is not a readable analysis.json") from None
        if not isinstance(data, dict):
            raise MsltError(f"analysis: {path} is not an mslt-it analysis.json")
        lines = [f"## Representation analysis ({path.parent.name})", ""]
        for name, meaning in (data.get("meanings") or {}).items():
            lines.append(f"- **{name}**: {meaning}")
        if isinstance(data.get("settings_table"), str):  # which way each setting points
            lines += ["", data["settings_table"].strip()]
        for png in data.get("plots") or []:
            if not isinstance(png, str):
                continue
            source = path.parent / Path(png).name  # a plot beside analysis.json, never elsewhere
            if source.is_file() and not source.is_symlink() and source.suffix == ".png":
                target = f"analysis{i}_{Path(png).name}"
                shutil.copyfile(source, folder / target)
                lines += ["", f"![{target}]({target})"]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
