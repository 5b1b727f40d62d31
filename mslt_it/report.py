"""``mslt-it report``: tables and plots from evaluation results.

Reads the ``results.json`` files that ``mslt-it eval`` writes (one per adapter, or one per run
directory) and writes ``report.md``, CSVs and PNG plots:

- a heatmap of target languages × runs, with the average column;
- SSLT vs MSLT: the gain of each multi-source run over the single-source baseline per language;
- the k-sweep curve: score against the number of sources, with 95% intervals;
- for an all-combinations grid, each selection criterion's rank of its own top pick and its
  Spearman correlation with the measured scores (``mslt-it select --evaluate``);
- the representation analysis (``analysis.json`` and its PNGs) when present.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it.errors import MsltError
from mslt_it.evaluation.store import CHUNKS
from mslt_it.files import read_user_text
from mslt_it.io import atomic_directory, shared_file_mode

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


@dataclass
class Results:
    """Every score found, and what the report must say about the data."""

    scores: list[Score]
    synthetic: bool
    analyses: list[Path]
    unfinished: tuple[Path, ...] = ()

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
    for path, data, name in zip(files, documents, names, strict=True):
        scores.extend(scores_of(data, path, name))
    if not scores:
        raise MsltError(f"run dir: {', '.join(map(str, files))} hold no per-language scores")
    analyses = list(
        dict.fromkeys(
            p.resolve()
            for path in paths
            if path.is_dir()
            for p in sorted(path.rglob("analysis.json"))
        )
    )
    synthetic = any(score.synthetic for score in scores)
    return Results(scores, synthetic, analyses, tuple(find_unfinished(paths)))


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
    number = float(value)
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
                )
            )
    return out


def write_report(paths: list[Path], out: Path, recipe: Any = None, overwrite: bool = True) -> Path:
    """Write report.md, scores.csv and the plots into ``out`` (atomically)."""
    from mslt_it.outputs import claim_output

    results = load_results([Path(p) for p in paths])
    with claim_output(out, kind="report", overwrite=overwrite, inputs=paths, inside_ok=True):
        return _write(results, Path(out), recipe)


def _write(results: Results, out: Path, recipe: Any) -> Path:
    """:func:`write_report` once ``out`` is checked and locked.

    Several evaluation tasks (XCOPA, XStoryCloze, XWinograd after one training run) get a
    section each, with its own tables and plots in ``<task>/``; one cell cannot hold two tasks.
    """
    tasks = list(dict.fromkeys(s.task for s in results.scores))
    with atomic_directory(out, overwrite=True, kind="report") as tmp:
        write_csv(results, tmp / "scores.csv")
        if len(tasks) == 1:
            (text,) = task_markdown(results, tmp, recipe)
        else:
            sections = []
            for number, task in enumerate(tasks):
                scores = [s for s in results.scores if s.task == task]
                subset = Results(
                    scores,
                    task_is_synthetic(results, scores),
                    results.analyses if number == 0 else [],
                    results.unfinished,
                )
                (tmp / task).mkdir()
                write_csv(subset, tmp / task / "scores.csv")
                own, linked = task_markdown(subset, tmp / task, recipe, ("", f"{task}/"))
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
    results: Results, folder: Path, recipe: Any, prefixes: Sequence[str] = ("",)
) -> list[str]:
    """One task's tables and plots, written into ``folder`` once, as Markdown for each prefix
    its files are linked with (the task's own report, and its section in the combined one)."""
    figures = make_plots(results, folder)
    extra = criteria_section(results, folder, recipe) if recipe is not None else ""
    analysis = copy_analyses(results, folder)
    texts = []
    for prefix in prefixes:
        text = markdown(results, [prefix + f for f in figures], extra, analysis, recipe)
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
]


def write_csv(results: Results, path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for s in results.scores:
        score, low, high = f"{s.score:.2f}", f"{s.low:.2f}", f"{s.high:.2f}"
        sources = "+".join(s.sources)
        rate = f"{s.invalid_rate:.4f}"
        writer.writerow(
            [s.run, sources, s.task, s.lang, s.metric, score, low, high, s.n, rate, s.is_source]
        )
    path.write_text(buffer.getvalue(), encoding="utf-8")


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


def markdown(results: Results, figures: list[str], extra: str, analysis: str, recipe: Any) -> str:
    """The report's text: what was run, a table, the plots."""
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
    for figure in figures:
        lines += [f"![{figure}]({figure})", ""]
    return "\n".join([*lines, extra, analysis]).rstrip() + "\n"


def make_plots(results: Results, folder: Path) -> list[str]:
    """Every plot the results support; returns the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    written = [heatmap(results, folder / "heatmap.png")]
    if gain_plot(results, folder / "gain.png"):
        written.append("gain.png")
    if k_sweep_plot(results, folder / "k_sweep.png"):
        written.append("k_sweep.png")
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


def gain_plot(results: Results, path: Path) -> bool:
    """Gain of each multi-source run over the (first) single-source run, per target language."""
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
    for k, run in enumerate(multi):
        gains = [
            table[run][lang].score - table[base][lang].score if lang in table[run] else 0.0
            for lang in langs
        ]
        axis.bar(
            np.arange(len(langs)) + (k - (len(multi) - 1) / 2) * width, gains, width, label=run
        )
    axis.axhline(0, color="black", lw=0.8)
    axis.set_xticks(range(len(langs)), langs)
    axis.set_xlabel("evaluation language")
    axis.set_ylabel(f"gain over {base} (points)")
    axis.set_title(f"MSLT vs SSLT: gain over {base} at the same data budget")
    axis.legend(fontsize=8, loc="best")
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
        from mslt_it.selection import SelectionOptions, evaluate_criteria_markdown
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
