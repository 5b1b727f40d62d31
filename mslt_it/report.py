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
import hashlib
import io
import math
import os
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it import comparisons as paired
from mslt_it import fertility as fertility_of
from mslt_it import report_text, rollups
from mslt_it.arguments import (
    expect,
    flag_argument,
    path_argument,
    paths_argument,
    sequence_argument,
)
from mslt_it.arguments import (
    given as given_value,
)
from mslt_it.errors import MsltError, clipped
from mslt_it.evaluation.metrics import f1_from_counts
from mslt_it.evaluation.sanity import adapter_sanity
from mslt_it.evaluation.scoring import ENTITY_SCORING
from mslt_it.evaluation.store import PREDICTIONS, read_jsonl
from mslt_it.files import read_user_bytes, resolved_path
from mslt_it.io import FINGERPRINT_BYTES
from mslt_it.locks import check_none_being_written
from mslt_it.outputs import (
    HOST_LEVELS,
    check_not_an_input,
    check_path_names,
    claim_output,
    marked_output,
    owner_kind,
    replacing_output,
)
from mslt_it.report_curves import adapter_runs, budget_note, training_budgets, training_section
from mslt_it.report_plots import make_plots
from mslt_it.report_results import (
    Results,
    Score,
    averages,
    evaluations_read,
    load_results,
    read_results_file,
    sslt_baseline,
    target_scores,
)

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
    Every check and measurement is done before ``out`` is touched. ``paths`` lists evaluation
    folders (or results.json files); one path alone stands for a list of it.
    """
    paths = paths_argument(paths, "paths", one=True)
    if not paths:
        raise MsltError("paths: an empty list; give the evaluations to report")
    out = path_argument(out, "out")
    flag_argument(overwrite, "overwrite")
    check_made_from_its_host(out, paths)
    if recipe is not None and not all(hasattr(recipe, a) for a in ("config", "path", "model")):
        # a recipe's path was a bare AttributeError deep inside the report
        raise MsltError(
            f"recipe: got {given_value(recipe)}; expected a mslt_it.recipes.Recipe "
            "(load_recipe(path) reads one)"
        )
    pairs = sequence_argument(compare, "compare", COMPARE)
    for number, pair in enumerate(pairs):
        pair = sequence_argument(pair, f"compare.{number}", COMPARE)
        if len(pair) != 2 or not all(isinstance(run, str) for run in pair):
            raise MsltError(f"compare.{number}: got {clipped(pair, 80)}; expected {COMPARE}")
    if tokenizer is not None:
        expect(tokenizer, (str, os.PathLike), "tokenizer", "a tokenizer's Hub id or folder")
        tokenizer = os.fspath(tokenizer)
        if not tokenizer.strip():  # else read as "no tokenizer": the plot left out unsaid
            raise MsltError("tokenizer: an empty name; give a Hub id or folder, or leave it out")
    results = load_results([Path(p) for p in paths])
    rows, skipped = gather_comparisons(results, compare)
    extras = Extras(
        comparisons=rows,
        differences=pair_differences(results, rows),
        skipped=skipped,
        sanity=check_adapters(results),
        fertility=measure_fertility(results, tokenizer) if tokenizer else {},
        tokenizer=tokenizer or "",
    )
    # everything is read: a second look, for an evaluation that began to be written meanwhile
    given = [Path(p) for p in paths]
    read_again = evaluations_read(given, list(results.files.values()), results.unfinished)
    check_none_being_written(read_again, "run dir")
    read = [  # and the folder of each results.json given, where it lies (through a link)
        *paths,
        *(Path(p).resolve().parent for p in paths if Path(p).is_file()),
        *(Path(p).parent for p in paths if Path(p).is_file()),
    ]
    # a report may go into an evaluation given, never into a run's folder found inside one
    # (a comparison's model, a study's adapter): its results.json lies beside it
    given_folders = {Path(p).resolve() for p in paths if Path(p).is_dir()}
    runs = {f.resolve().parent for f in results.files.values()} - given_folders
    check_not_an_input(out, sorted(runs), "--out")
    with claim_output(out, kind="report", overwrite=overwrite, inputs=read, inside_kind="report"):
        return _write(results, Path(out), recipe, extras)


COMPARE = "a list of (baseline, run) pairs of run names, e.g. [('SSLT en', 'MSLT ar+de+zh')]"


def check_made_from_its_host(out: Path, paths: Sequence[Path]) -> None:
    """A report goes into an evaluation only if it reports that evaluation (or a folder that
    holds it): one inside is taken for the evaluation's own, made from it, and its
    ``--overwrite`` and ``--update`` remove it with the numbers it showed. ``report EV2 --out
    EV1/rep`` was removed by ``eval --update --out EV1``, said to be made from EV1."""
    check_path_names(out, "--out")  # a name past the file system's limit: one line, not OSError
    # a link as --out is where the report goes: lnk -> EV1/rep lies in EV1 (a loop is one line)
    where = resolved_path(out, "--out") if out.is_symlink() else out
    host = marked_output(where, levels=HOST_LEVELS)
    if host is None or owner_kind(host) != "evaluation":
        return
    home = resolved_path(host, "--out")
    for path in paths:
        given = resolved_path(path, "run dir")
        if given == home or home in given.parents or given in home.parents:
            return
    raise MsltError(
        f"--out: {str(out)!r} lies inside the evaluation {str(host)!r}, which this report does "
        "not read; a report there is taken for one made from it (its --update removes it): "
        "choose a folder outside it"
    )


@dataclass
class Extras:
    """What a report adds to the scores: paired comparisons (and the pairs that could not be
    compared, with why), each adapter's sanity record, each task's fertility."""

    comparisons: list[paired.ComparisonRow] = field(default_factory=list)
    skipped: list[tuple[str, str, str, str]] = field(default_factory=list)
    """``(baseline, run, task, why)`` of each baseline pair not compared on a task."""
    sanity: dict[str, dict[str, Any]] = field(default_factory=dict)
    fertility: dict[str, list[fertility_of.Fertility]] = field(default_factory=dict)
    tokenizer: str = ""
    differences: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)

    @property
    def not_compared(self) -> set[tuple[str, str]]:
        """The baseline pairs whose rows could not be paired: no gain is drawn or rolled up
        for them (the table's two scores may come from other rows). Pairs of the one task
        these extras are drawn for (:meth:`for_task`): a pair is compared task by task."""
        return {(baseline, run) for baseline, run, _, _ in self.skipped}

    def for_task(self, task: str, runs: Collection[str]) -> Extras:
        """What the section of ``task``, whose runs are ``runs``, shows: none of another
        task's pairs (a pair "not compared" on xnli was listed in pawsx's section too, and
        kept its xnli gains out of the plot)."""
        return Extras(
            [r for r in self.comparisons if r.task == task],
            [skip for skip in self.skipped if skip[2] == task and {*skip[:2]} <= {*runs}],
            self.sanity,
            {task: self.fertility[task]} if task in self.fertility else {},
            self.tokenizer,
            {key: found for key, found in self.differences.items() if key[2] == task},
        )


def pair_differences(
    results: Results, rows: list[paired.ComparisonRow]
) -> dict[tuple[str, str, str], list[str]]:
    """For each compared pair, how its two evaluations differed beyond the model (if at all)."""
    found = {}
    for baseline, run, task in dict.fromkeys((r.baseline, r.run, r.task) for r in rows):
        first, second = results.documents.get(baseline, {}), results.documents.get(run, {})
        scored = tuple(
            {s.lang for s in results.scores if s.run == name and s.task == task}
            for name in (baseline, run)
        )
        unequal = paired.evaluation_differences(first, second, task, scored)
        if unequal:
            found[(baseline, run, task)] = unequal
    return found


def baseline_pairs(results: Results) -> list[tuple[str, str, str]]:
    """``(baseline, run, task)`` for every MSLT run and task with an SSLT baseline
    (:func:`~mslt_it.report_results.sslt_baseline`, the gain plot's): a pair is compared, or
    not, task by task, so one task's unpairable rows leave the others' comparisons alone."""
    found = []
    for task in dict.fromkeys(s.task for s in results.scores):
        for run in dict.fromkeys(s.run for s in results.scores if s.task == task):
            base = sslt_baseline(results, run, task) if len(results.sources_of(run)) > 1 else None
            if base is not None:
                found.append((base, run, task))
    return found


def unmatched_runs(results: Results) -> list[tuple[str, str, str, str]]:
    """``(baseline, run, task, why)`` for every MSLT run of a task whose only SSLT runs are of
    another base model: no gain is measured for it, and the report says why (it would
    otherwise be missing from the comparisons and the gain plot without a word)."""
    found = []
    for task in dict.fromkeys(s.task for s in results.scores):
        runs = list(dict.fromkeys(s.run for s in results.scores if s.task == task))
        singles = [r for r in runs if len(results.sources_of(r)) == 1]
        for run in runs:
            if not singles or len(results.sources_of(run)) < 2:
                continue
            if sslt_baseline(results, run, task) is None:
                model = report_text.plain(results.model_of(run), report_text.QUALIFIER, limit=80)
                why = (
                    f"no SSLT run of its base model ({model or 'unnamed'}) is in the report, "
                    "and a gain over another model's would be the models' difference"
                )
                found.append((singles[0], run, task, why))
    return found


def gather_comparisons(
    results: Results, asked: Sequence[tuple[str, str]] = ()
) -> tuple[list[paired.ComparisonRow], list[tuple[str, str, str, str]]]:
    """Paired comparisons for the report: the baseline pairs, task by task (skipped, with the
    reason, when their rows on that task cannot be paired) and the ``asked`` ones (an error
    when they cannot; a pair asked twice is compared once)."""
    rows: list[paired.ComparisonRow] = []
    loaded: dict[str, paired.RunRows] = {}

    def rows_of(name: str) -> paired.RunRows:
        if name not in loaded:
            if name not in results.files:
                raise MsltError(f"compare: {name!r} has no results file to read rows from")
            loaded[name] = paired.read_run_rows(
                name, results.files[name], results.sources_of(name), results.documents.get(name)
            )
            check_rows_agree(results, loaded[name])
        return loaded[name]

    for name, path in results.files.items():  # every run's table numbers, compared or not
        predictions = path.parent / paired.PREDICTIONS
        if predictions.is_symlink() or predictions.exists():  # a FIFO too: named, not skipped
            try:
                rows_of(name)
            except MsltError as error:
                raise MsltError(f"run dir: {str(error).removeprefix('compare: ')}") from None

    asked = list(  # each pair once, in the order asked: twice was two tables of one pair
        dict.fromkeys(
            (paired.pick_run(a, results.runs), paired.pick_run(b, results.runs)) for a, b in asked
        )
    )
    for a, b in asked:
        if a == b:
            raise MsltError(f"--compare: {a!r} against itself; give two different runs")
        try:
            rows += paired.compare_runs(rows_of(a), rows_of(b))
        except MsltError as error:  # a pair the user asked for: named by its option
            raise MsltError(f"--compare: {str(error).removeprefix('compare: ')}") from None
    # why in plain text: the note prints it as it is
    skipped = [skip for skip in unmatched_runs(results) if skip[:2] not in asked]
    for a, b, task in baseline_pairs(results):
        if (a, b) in asked or a not in results.files or b not in results.files:
            continue
        lacking = [n for n in (a, b) if not (results.files[n].parent / PREDICTIONS).exists()]
        if lacking:  # named by its label, as the note names both runs
            why = f"{lacking[0]} has no {PREDICTIONS}, and a comparison needs each row's outcome"
            skipped.append((a, b, task, why))
            continue
        try:
            rows += paired.compare_runs(rows_of(a), rows_of(b), only=task)
        except paired.NotPairable as error:
            reason = report_text.plain(error.reason, report_text.NOTE_MARKUP)  # quotes the data
            skipped.append((a, b, task, f"the runs {reason}"))
    return rows, skipped


AGREEMENT = 0.05
"""How far (in points) a results.json's score may sit from its predictions' (rounding)."""


INVALID_AGREEMENT = 0.0001
"""How far a results.json's invalid_rate (rounded to 4 places) may sit from its predictions'."""


ENTITY_SCORING_SINCE = ENTITY_SCORING.split(":", 1)[0]
"""The day entity lists were last scored otherwise (:data:`ENTITY_SCORING` begins with it)."""


def check_rows_agree(results: Results, rows: paired.RunRows) -> None:
    """A run's results.json and the predictions.jsonl beside it must tell the same score:
    the report's table reads one and its comparisons the other, and one edited by hand would
    put two numbers for one run and language side by side. Accuracy is counted from the rows'
    ``correct``, F1 from their entities, as the evaluation scored them."""
    changed = "changed after the evaluation (re-run `mslt-it score` or the evaluation)"
    scored = {(score.task, score.lang) for score in results.scores if score.run == rows.name}
    for task, by_lang in rows.rows.items():  # a language taken out of results.json by hand
        for lang, outcomes in by_lang.items():
            if outcomes and (task, lang) not in scored:
                raise MsltError(
                    f"compare: {rows.name!r} on {task}/{lang}: predictions.jsonl holds "
                    f"{len(outcomes)} rows and results.json beside it no score; one was {changed}"
                )
    for score in results.scores:
        if score.run != rows.name:
            continue
        outcomes = rows.rows.get(score.task, {}).get(score.lang)
        where = f"compare: {rows.name!r} on {score.task}/{score.lang}: results.json"
        if score.n and not outcomes:  # an emptied or cut predictions.jsonl
            raise MsltError(
                f"{where} counts {score.n} rows and predictions.jsonl beside it holds none; "
                f"one was {changed}"
            )
        if not outcomes:
            continue
        kind = rows.metric.get(score.task)  # f1 from entities, else a share of correct rows
        if ("f1" if score.metric == "f1" else "accuracy") != kind:
            raise MsltError(
                f"{where} scores it by {score.metric!r} and predictions.jsonl beside it holds "
                f"{kind} rows; one was {changed}"
            )
        if score.n and score.n != len(outcomes):
            raise MsltError(
                f"{where} counts {score.n} rows and predictions.jsonl beside it holds "
                f"{len(outcomes)}; one was {changed}"
            )
        if kind == "f1":
            measured = f1_from_counts(*np.sum(list(outcomes.values()), axis=0))
        else:
            measured = 100 * sum(outcomes.values()) / len(outcomes)
        if abs(measured - score.score) > AGREEMENT:
            said = f"{where} says {score.score:.2f} and predictions.jsonl beside it {measured:.2f}"
            if kind == "f1":  # the rule changed (ENTITY_SCORING): nothing need have been edited
                raise MsltError(
                    f"{said} (as entities are scored now); one was {changed}, or it was scored "
                    f"by an mslt-it before {ENTITY_SCORING_SINCE}, which did not count invented "
                    "entities "
                    "(run the same `mslt-it eval` again: it re-scores a finished evaluation "
                    "and predicts nothing)"
                )
            raise MsltError(f"{said}; one was {changed}")
        named = rows.clusters.get(score.task, {}).get(score.lang)
        counted = len(set(named.values())) if named else None
        if score.clusters is not None and score.clusters != counted:  # the interval's units
            raise MsltError(
                f"{where} counts {score.clusters} clusters and predictions.jsonl beside it "
                f"names {counted or 'none'}; one was {changed}"
            )
        invalid = rows.invalid.get(score.task, {}).get(score.lang, 0) / len(outcomes)
        if abs(invalid - score.invalid_rate) > INVALID_AGREEMENT:
            raise MsltError(
                f"{where} gives an invalid_rate of {score.invalid_rate:.4f} and "
                f"predictions.jsonl beside it {invalid:.4f}; one was {changed}"
            )
    sanity = results.sanity.get(rows.name)
    held = sum(len(outcomes) for by_lang in rows.rows.values() for outcomes in by_lang.values())
    if sanity is not None and held and sanity["rows"] > held:  # compared on rows it lacks
        raise MsltError(
            f"compare: {rows.name!r}: results.json's adapter_sanity compares {sanity['rows']} "
            f"rows and predictions.jsonl beside it holds {held}; one was {changed}"
        )


def check_adapters(results: Results) -> dict[str, dict[str, Any]]:
    """Each adapter run's sanity record: measured here against a base run of the same model in
    the report (no sources), evaluated alike, where there is one; else from its results.json.
    A base ranked by log-likelihood beside an adapter that generated (or another template)
    matched its labels with the generated words, and said the adapter was not applied."""
    found = dict(results.sanity)
    # a base is a run of no adapter: an adapter whose sources are unknown (edited since
    # training) was taken for the base, and the same adapter beside it "not applied"
    bases = [r for r in results.runs if adapter_of(results, r) is None and r in results.files]
    models = {s.run: s.model for s in results.scores}
    tasks: dict[str, set[str]] = {}
    for score in results.scores:
        tasks.setdefault(score.run, set()).add(score.task)
    base_records: dict[str, list[dict[str, Any]]] = {}

    def alike(base: str, run: str) -> bool:
        first, second = results.documents.get(base, {}), results.documents.get(run, {})
        return not any(
            paired.output_setting_differences(first, second, task) for task in tasks[run]
        )

    for run in results.runs:  # measured where it can be: a recorded one edited in a copy
        if adapter_of(results, run) is None or run not in results.files:  # said "probably
            continue  # not applied" of an adapter whose predictions differ on every row
        base = next((b for b in bases if models.get(b) == models.get(run) and alike(b, run)), None)
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


def adapter_of(results: Results, run: str) -> dict[str, Any] | None:
    """The ``adapter`` record of a run's results.json (None: a run of the model alone)."""
    adapter = results.documents.get(run, {}).get("adapter")
    return adapter if isinstance(adapter, dict) else None


def edited_adapter_notes(results: Results) -> list[str]:
    """A line per run whose adapter was edited since training (``eval`` recorded which file):
    its sources are unknown, so it is named by its folder and scored on every language."""
    lines = []
    for run in results.runs:
        edited = (adapter_of(results, run) or {}).get("edited")
        if isinstance(edited, str):
            shown = report_text.plain(edited, report_text.NAME, limit=60)
            lines.append(
                f"- {run}: its adapter's {shown} was edited since training; its sources are "
                "unknown, so every language is scored as a target."
            )
    return [*lines, ""] if lines else []


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
    with replacing_output(out, "report", overwrite=True) as tmp:
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
                    results.analysis_documents,  # the analyses' content, read once
                )
                own_extras = extras.for_task(task, subset.runs)
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
    documents = results.documents or {
        name: read_results_file(path) for name, path in results.files.items()
    }
    # this task's runs only: another task's section showed the curves of runs not scored here
    runs = adapter_runs({name: documents[name] for name in results.runs if name in documents})
    budgets = training_budgets(runs)
    figures = make_plots(
        results, folder, extras.comparisons, extras.fertility, extras.not_compared, budgets
    )
    extra = criteria_section(results, folder, recipe) if recipe is not None else ""
    analysis = copy_analyses(results, folder)
    trained = [run for run in results.runs if results.sources_of(run)]
    sections = "\n\n".join(
        part for part in (budget_note(budgets, trained), extra_sections(results, extras)) if part
    )
    curves, _warnings = training_section(runs, folder)
    sections = "\n".join(part for part in (sections, curves) if part)
    compared = bool(extras.comparisons)
    text = markdown(results, figures, extra, analysis, recipe, sections, compared)
    return [linked_from(text, prefix) for prefix in prefixes]


IMAGE_LINK = re.compile(r"(!\[[^\]\n]*\]\()([^)\n]+\))")
"""A Markdown image link, ``![alt](file)``: its opening, then its target."""


def linked_from(text: str, prefix: str) -> str:
    """``text`` with every image link's target under ``prefix`` (``xnli/``): the combined
    report of several tasks links each task's pictures in its folder. Every link, not a list
    of known names: the training curves' were left out, and linked to files that were not
    there. Names and notes quoted from runs' files hold no ``!`` (:mod:`mslt_it.report_text`),
    so none of them reads as a link."""
    return IMAGE_LINK.sub(lambda link: link[1] + prefix + link[2], text) if prefix else text


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
    "clusters",  # last: every version's header begins as adopt_checks knows it
]
"""One line per run and language; ``clusters`` counts what the interval resampled where the
task has a cluster rule (empty: the rows, one by one); the grouping columns make a rollup one
group-by away, and the comparison columns repeat the run's first paired comparison (all are in
comparisons.csv)."""


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
        score = f"{s.score:.2f}"
        low, high = (
            ("", "") if s.low is None or s.high is None else (f"{s.low:.2f}", f"{s.high:.2f}")
        )
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
        clusters = "" if s.clusters is None else s.clusters  # the interval's draws: rows else
        cells = [s.run, sources, s.task, s.lang, s.metric, score, low, high, s.n, rate]
        writer.writerow([*cells, s.is_source, *groups, s.answer_expected, share, *versus, clusters])
    path.write_text(buffer.getvalue(), encoding="utf-8")


def extra_sections(results: Results, extras: Extras) -> str:
    """Adapter sanity, answer-language fidelity, paired comparisons, rollups and fertility."""
    parts = [
        sanity_markdown(results, extras.sanity),
        fidelity_markdown(results),
        paired.markdown(extras.comparisons, extras.differences),
    ]
    if extras.skipped:
        said = [f"{run} vs {baseline}: {why}" for baseline, run, _, why in extras.skipped]
        parts.append("Not compared: " + "; ".join(said) + ".\n")
    pairs = list(dict.fromkeys((r.baseline, r.run) for r in extras.comparisons))
    runs = set(results.runs)
    pairs = [(a, b) for a, b in pairs if a in runs and b in runs] or list(
        dict.fromkeys(
            (a, b) for a, b, _ in baseline_pairs(results) if (a, b) not in extras.not_compared
        )
    )
    parts.append(rollups.markdown(results.scores, pairs))
    task = results.scores[0].task
    if task in extras.fertility:
        parts.append(
            fertility_of.markdown(extras.fertility[task], target_scores(results), extras.tokenizer)
        )
    return "\n".join(part for part in parts if part)


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
                f"{record.get('rows')} rows (label log-likelihoods in rank mode, the output "
                "otherwise; the chosen answer may still be the same)."
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
        "answers without letters (empty, or a bare number) are left out; – where no "
        "identifier covers the language, no answer has letters, or the answers are no "
        "language's words (entity lists, letter or number choices). "
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


def markdown(
    results: Results,
    figures: list[str],
    extra: str,
    analysis: str,
    recipe: Any,
    sections: str = "",
    compared: bool = False,
) -> str:
    """The report's text: what was run, a table, ``sections`` (comparisons, rollups…), the
    plots. ``compared``: whether ``sections`` hold paired comparisons."""
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
    # one model spelled two ways (``models/tiny``, ``/abs/models/tiny``) is not two models
    if len({results.model_key_of(run) for run in models}) > 1:
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
        means = [_score_cell(avg[run][which]) for which in ("targets", "all")]
        lines.append(f"| {run} | " + " | ".join([*cells, *means]) + " |")
    lines += [
        "",
        "Averages are unweighted over languages (XTREME); intervals are in scores.csv.",
        "",
    ]
    if len({frozenset(per_lang) for per_lang in results.table().values()}) > 1:
        lines += [
            "The runs were evaluated on different languages (– above), so their averages cover "
            "different languages; the paired comparisons compare each pair on the languages "
            "both have.",
            "",
        ]
    lines += own_targets_note(results, compared)
    lines += edited_adapter_notes(results)
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


OWN_TARGETS = (
    "avg (targets) averages each run's own targets (the languages that are not its sources), "
    "so runs with other sources average other languages"
)
OWN_TARGETS_COMPARED = (
    "; the paired comparisons below average the languages that are a source of neither run"
)


def own_targets_note(results: Results, compared: bool) -> list[str]:
    """A sentence under the scores table where two runs' sources make their ``avg (targets)``
    cover different languages of those every run was scored on (SSLT en's leaves en out,
    MSLT ar+de+zh's keeps it): side by side, the two means read as a comparison they are not.
    Nothing where every run has the same targets; the comparisons are named only when the
    report has them (``compared``)."""
    table = results.table()
    shared = set.intersection(*(set(per_lang) for per_lang in table.values()))
    targets = {
        frozenset(lang for lang in shared if not per_lang[lang].is_source)
        for per_lang in table.values()
    }
    if len(targets) < 2:
        return []
    return [OWN_TARGETS + (OWN_TARGETS_COMPARED if compared else "") + ".", ""]


def _score_cell(value: float) -> str:
    """A mean as the scores table shows it; "–" where there is nothing to average (a run whose
    every language is a source has no target), as the rollups show it."""
    return "–" if math.isnan(value) else f"{value:.1f}"


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
    baselines = single_source_baseline(results, runs, by_size.get(1, []))
    text = evaluate_criteria_markdown(measured, task=task, options=options, baselines=baselines)
    if baselines:
        text += (
            "\nsslt-measured is not a criterion but the study's own runs of one source: a set "
            "scored by its sources' mean score alone on each of its non-source languages.\n"
        )
    (folder / "criteria.md").write_text(text, encoding="utf-8")
    return "## Selection criteria against measured scores\n\n" + text


def single_source_baseline(
    results: Results, runs: list[str], singles: list[str]
) -> dict[str, list[float]]:
    """``{"sslt-measured": score per run}`` when the study ran every source of the grid alone:
    each run's score as the additive guess from those runs (on each of its non-source languages
    the mean of its sources' scores alone, then the mean over the languages, as ``avg
    (targets)``). Empty without such runs; NaN for a run with a language a single lacks.
    Singles count for runs of their own base model only: keyed by source alone, one model's
    SSLT en overwrote another's, and a run was guessed from the other model's scores."""
    from mslt_it.selection.features import singles_mean  # keep: with the criteria table only

    table = results.table()
    alone: dict[str, dict[str, dict[str, float]]] = {}  # model -> source -> lang -> score
    for run in singles:  # the first of a model and source: two models' SSLT en are two runs
        own = alone.setdefault(results.model_key_of(run), {})
        scores = {lang: s.score for lang, s in table[run].items()}
        own.setdefault(results.sources_of(run)[0], scores)
    if not alone:
        return {}
    values = []
    for run in runs:
        sources = results.sources_of(run)
        per_language = [
            singles_mean(alone.get(results.model_key_of(run), {}), sources, lang)
            for lang, score in table[run].items()
            if not score.is_source
        ]
        values.append(float(np.mean(per_language)) if per_language else math.nan)
    if all(math.isnan(v) for v in values):
        return {}
    return {"sslt-measured": values}


def copy_analyses(results: Results, folder: Path) -> str:
    """Include representation analyses (``mslt-it analyze``) found beside the results.

    A picture is copied only as analysis.json records it (:func:`drawn_picture`); one that is
    not is left out with a note, as an edited analysis.json is left out: a picture put in its
    place would be shown under the analysis's name and numbers."""
    parts = []
    for i, path in enumerate(results.analyses):
        data = results.analysis_documents[path]  # each read, and proven analyze's, to be found
        lines = [f"## Representation analysis ({path.parent.name})", ""]
        meanings = data.get("meanings")
        for name, meaning in (meanings if isinstance(meanings, dict) else {}).items():
            lines.append(f"- **{name}**: {meaning}")
        if isinstance(data.get("settings_table"), str):  # which way each setting points
            lines += ["", data["settings_table"].strip()]
        recorded = data.get("files") if isinstance(data.get("files"), dict) else {}
        left_out = []
        for png in data.get("plots") or []:
            if not isinstance(png, str) or Path(png).suffix != ".png":
                continue
            name = Path(png).name  # a plot beside analysis.json, never elsewhere
            content = drawn_picture(path.parent / name, recorded.get(name))
            if content is None:
                left_out.append(report_text.plain(name, report_text.NAME, limit=80))
                continue
            target = f"analysis{i}_{name}"
            (folder / target).write_bytes(content)
            lines += ["", f"![{target}]({target})"]
        if left_out:
            lines += [
                "",
                f"Pictures left out: {', '.join(left_out)}: not the ones `mslt-it analyze` "
                "drew and recorded in analysis.json (changed since, not a regular file, or "
                f"larger than {MAX_PICTURE_BYTES:,} bytes); run `mslt-it analyze` again.",
            ]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


MAX_PICTURE_BYTES = FINGERPRINT_BYTES
"""The largest analysis picture a report copies: analyze records a larger file by its size and
time, not its content, so nothing could prove its bytes the ones it drew (its PNGs are far
smaller)."""


def drawn_picture(path: Path, recorded: Any) -> bytes | None:
    """The bytes of the analysis picture ``path`` when their digest is the one analysis.json
    records for it (``files``); else None. Read once, as a regular file, to
    :data:`MAX_PICTURE_BYTES` (a FIFO never blocks, a huge file is not copied whole), and the
    bytes checked are the bytes written: the file may change after it is read."""
    if path.is_symlink():  # the picture analyze wrote is a file, never a link to one
        return None
    try:
        content = read_user_bytes(path, "analysis", MAX_PICTURE_BYTES)
    except MsltError:
        return None
    return content if recorded == "sha256:" + hashlib.sha256(content).hexdigest() else None
