"""The report's PNG plots: the runs × languages heatmap, the gain of each MSLT run over SSLT
(with paired intervals where compared), the k-sweep curve and fertility against scores.

Each is written under a temporary name and renamed, so a report folder never holds half a PNG;
matplotlib is imported only when a report draws.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it import comparisons as paired
from mslt_it import fertility as fertility_of
from mslt_it.io import shared_file_mode, temporary_prefix, this_writer
from mslt_it.report_curves import Budget, same_budget
from mslt_it.report_results import Results, Score, averages, sslt_baseline, target_scores
from mslt_it.stats import cluster_mean_interval


def make_plots(
    results: Results,
    folder: Path,
    comparisons: Sequence[paired.ComparisonRow] = (),
    fertility: dict[str, list[fertility_of.Fertility]] | None = None,
    not_compared: Collection[tuple[str, str]] = (),
    budgets: dict[str, Budget] | None = None,
) -> list[str]:
    """Every plot the results support; returns the file names written.

    ``comparisons`` give the gain plot its paired intervals; ``fertility`` (by task) adds the
    fertility plot; a pair in ``not_compared`` (its rows could not be paired) gets no gain bar;
    ``budgets`` (run -> what its adapter trained on) decide whether a title may say "at the
    same data budget"."""
    import matplotlib

    matplotlib.use("Agg")
    fertility = fertility or {}
    written = [heatmap(results, folder / "heatmap.png")]
    budgets = budgets or {}
    written += gain_plot(results, folder / "gain.png", comparisons, not_compared, budgets)
    if k_sweep_plot(results, folder / "k_sweep.png", budgets):
        written.append("k_sweep.png")
    task = results.scores[0].task
    if task in fertility:
        figure = fertility_of.plot(fertility[task], target_scores(results))
        save_figure(figure, folder / "fertility.png")
        written.append("fertility.png")
    return written


def save_figure(figure: Any, path: Path) -> None:
    """Save a PNG under a temporary name, then rename it into place. The name is one only
    mslt-it gives (:func:`mslt_it.io.temporary_prefix`): ``tmp*.png``, mkstemp's, took a
    user's ``tmp_figure.png`` in the report's folder for a picture being written, and
    ``--overwrite`` removed it."""
    import matplotlib.pyplot as plt

    prefix = temporary_prefix(path.name) + this_writer()
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    os.close(fd)
    figure.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    plt.close(figure)
    os.chmod(tmp, shared_file_mode())  # mkstemp's files are private; outputs are not
    os.replace(tmp, path)


SCORE_SCALE = 100.0
"""The top of every score a report prints (accuracy and F1 ×100): the heatmap's scale."""


def heatmap(results: Results, path: Path) -> str:
    """Runs × languages, with the target average as the last column; source cells outlined.

    Coloured on the scores' whole scale, 0..100 (every metric a report prints is ×100), as
    the analysis's CKA plot is on 0..1: stretched to the data's own range, a 25 among 30s was
    the darkest colour, and a gap of 5 points looked as wide as one of 100."""
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
    image = axis.imshow(grid, cmap="viridis", aspect="auto", vmin=0.0, vmax=SCORE_SCALE)
    axis.set_xticks(range(len(langs) + 1), [*langs, "avg\n(targets)"])
    axis.set_yticks(range(len(runs)), runs)
    axis.set_xlabel("evaluation language")
    axis.set_ylabel("run (source languages)")
    metric = results.scores[0].metric
    axis.set_title(f"{metric} ×100 per language (outlined: source languages)")
    if len(runs) * (len(langs) + 1) <= 400:
        for (i, j), value in np.ndenumerate(grid):
            if not np.isnan(value):
                shade = "black" if value > 0.6 * SCORE_SCALE else "white"  # as CKA's
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


GAIN_RUNS_PER_FIGURE = 6
"""The most multi-source runs one gain figure draws side by side: more bars per language would
not be read. Further runs go to ``gain-2.png``, ``gain-3.png``…, never left out."""
SOURCE_HATCH = "//"
SOURCE_LABEL = "a source of either run (not zero-shot)"


def gain_plot(
    results: Results,
    path: Path,
    comparisons: Sequence[paired.ComparisonRow] = (),
    not_compared: Collection[tuple[str, str]] = (),
    budgets: dict[str, Budget] | None = None,
) -> list[str]:
    """Gain of each multi-source run over its single-source baseline (:func:`sslt_baseline`:
    the first SSLT run of the same base model), per evaluated language; returns the file names
    written (none when there is no such pair).

    Every run is drawn: :data:`GAIN_RUNS_PER_FIGURE` to a figure, one baseline to a figure,
    ``path`` first, then ``gain-2.png``, ``gain-3.png``… (only the first six were drawn, and
    the others left out without a word). The figures are read together: one y-range over all
    of them and one colour per run (each autoscaled and restarted the colour cycle, so a gain
    of 5 looked as tall as one of 30, and two runs shared a colour). A run whose rows could
    not be paired with the baseline's (``not_compared``: other rows, other gold answers) gets
    no bar: the difference of two scores on other rows is no gain. See :func:`_gain_figure`
    for how each bar is drawn.
    """
    table = results.table()
    pairs = [
        (base, run)
        for run in results.runs
        if len(results.sources_of(run)) > 1
        for base in [sslt_baseline(results, run)]
        if base is not None and (base, run) not in not_compared
    ]
    groups: list[tuple[str, list[str]]] = []
    for base in dict.fromkeys(base for base, _ in pairs):
        multi = [run for other, run in pairs if other == base]
        groups += [
            (base, multi[start : start + GAIN_RUNS_PER_FIGURE])
            for start in range(0, len(multi), GAIN_RUNS_PER_FIGURE)
        ]
    paired_rows = {(r.baseline, r.run, r.lang): r for r in comparisons}
    colours = run_colours([run for _, run in pairs])
    limits = gain_limits(table, pairs, paired_rows)
    written = []
    for number, (base, group) in enumerate(groups, 1):
        target = path if number == 1 else path.with_name(f"{path.stem}-{number}{path.suffix}")
        part = f" ({number} of {len(groups)})" if len(groups) > 1 else ""
        figure = _gain_figure(
            results, table, base, group, paired_rows, budgets or {}, part, colours, limits
        )
        save_figure(figure, target)
        written.append(target.name)
    return written


def run_colours(runs: Sequence[str]) -> dict[str, Any]:
    """One colour per run for every gain figure: tab10 (matplotlib's cycle), tab20 for more
    runs, evenly spaced colours of a continuous map past 20."""
    from matplotlib import colormaps

    if len(runs) <= 20:
        cycle = colormaps["tab10" if len(runs) <= 10 else "tab20"]
        return {run: cycle(i) for i, run in enumerate(runs)}
    spread = colormaps["turbo"](np.linspace(0.05, 0.95, len(runs)))
    return {run: tuple(colour) for run, colour in zip(runs, spread, strict=True)}


def gain_limits(
    table: dict[str, dict[str, Score]],
    pairs: Sequence[tuple[str, str]],
    paired_rows: dict[tuple[str, str, str], paired.ComparisonRow],
) -> tuple[float, float]:
    """The y-range of every gain figure: each gain and interval end drawn, and 0, with a
    margin for the stars above the intervals."""
    ends = [0.0]
    for base, run in pairs:
        for lang in set(table[base]) & set(table[run]):
            ends.append(table[run][lang].score - table[base][lang].score)
            row = paired_rows.get((base, run, lang))
            if row is not None:
                ends += [row.ci_low, row.ci_high]
    low, high = min(ends), max(ends)
    margin = 0.12 * (high - low) or 1.0
    return low - margin, high + margin


def _gain_figure(
    results: Results,
    table: dict[str, dict[str, Score]],
    base: str,
    multi: list[str],
    paired_rows: dict[tuple[str, str, str], paired.ComparisonRow],
    budgets: dict[str, Budget],
    part: str,
    colours: dict[str, Any] | None = None,
    limits: tuple[float, float] | None = None,
) -> Any:
    """One gain figure of ``multi`` (at most :data:`GAIN_RUNS_PER_FIGURE` runs) over ``base``,
    each run in its ``colours``, on the y-range ``limits`` shared by the report's gain figures.

    Where the runs were compared row by row, each bar gets its 95 % paired interval and a star
    when the gain is significant after Holm; the legend sits outside the axes, over no bar. A
    language that is a source of either run is hatched (same colour, one legend entry): the run
    trained on it, so its bar is in-language learning, not the zero-shot transfer the other bars
    show (``en`` for an SSLT-en baseline, ``ar``, ``de``, ``zh`` for MSLT ar+de+zh). A language
    either run was not evaluated on (the baseline or the MSLT run: the languages are the union
    of theirs, so one the baseline lacks is not left out) gets a grey ``×`` at 0, not a bar of
    0 (which read as a measured tie). The title says "at the same data budget" only when the
    adapters' records show it (:func:`mslt_it.report_curves.same_budget`).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    langs = [
        lang for lang in results.languages if any(lang in table[run] for run in [base, *multi])
    ]
    figure, axis = plt.subplots(
        figsize=(max(6.0, 0.55 * len(langs) * max(1, len(multi)) / 1.5), 3.8)
    )
    width = 0.8 / len(multi)
    intervals = missing = hatched = False
    for k, run in enumerate(multi):
        both = [lang in table[run] and lang in table[base] for lang in langs]
        gains = [
            table[run][lang].score - table[base][lang].score if measured else np.nan
            for lang, measured in zip(langs, both, strict=True)
        ]
        x = np.arange(len(langs)) + (k - (len(multi) - 1) / 2) * width
        absent = [xi for xi, measured in zip(x, both, strict=True) if not measured]
        if absent:
            label = None if missing else "not evaluated"
            axis.plot(absent, [0.0] * len(absent), "x", color="gray", label=label, zorder=3)
            missing = True
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
        colour = (colours or {}).get(run)
        bars = axis.bar(
            x, gains, width, label=run, yerr=errors, capsize=2, ecolor="dimgray", color=colour
        )
        sources = {*results.sources_of(base), *results.sources_of(run)}
        for bar, lang, gain in zip(bars, langs, gains, strict=True):
            if lang in sources and not np.isnan(gain):
                bar.set_hatch(SOURCE_HATCH)
                hatched = True
        for xi, gain, row in zip(x, gains, rows, strict=True):
            if row is not None and row.significant:
                top = row.ci_high if gain >= 0 else row.ci_low
                axis.annotate(
                    "*", (xi, top), ha="center", va="bottom" if gain >= 0 else "top",
                    fontsize=11, fontweight="bold",
                )  # fmt: skip
    axis.axhline(0, color="black", lw=0.8)
    if limits is None:
        axis.margins(y=0.12)
    else:
        axis.set_ylim(*limits)
    axis.set_xticks(range(len(langs)), langs)
    axis.set_xlabel("evaluation language")
    axis.set_ylabel(f"gain over {base} (points)")
    budget = {True: " at the same data budget", False: "; data budgets differ", None: ""}
    title = f"MSLT vs SSLT: gain over {base}{budget[same_budget(budgets, [base, *multi])]}{part}"
    if intervals:
        title += "\n(95% paired intervals; * significant after Holm)"
    axis.set_title(title)
    handles, labels = axis.get_legend_handles_labels()
    if hatched:
        handles.append(Patch(facecolor="white", edgecolor="black", hatch=SOURCE_HATCH))
        labels.append(SOURCE_LABEL)
    axis.legend(
        handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0
    )
    return figure


KSWEEP_BAND = "95% interval: target languages resampled (bootstrap)"
"""The k-sweep band's legend: what :func:`~mslt_it.stats.cluster_mean_interval` measures."""


def k_sweep_plot(results: Results, path: Path, budgets: dict[str, Budget] | None = None) -> bool:
    """Mean target score against the number of source languages; "same total budget" in the
    title only where the adapters' records show it.

    The band is a 95% interval of the plotted mean itself: a bootstrap over the target
    languages, each drawn with all its scores at that k (:func:`cluster_mean_interval`). It
    shows how much the mean depends on which targets were measured; a k with one target has
    none. The mean of the languages' own intervals, drawn before, is no interval of the mean."""
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
    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    axis.plot(ks, means, marker="o", label="mean over target languages")
    band = []
    for k in ks:
        by_lang: dict[str, list[float]] = {}
        for s in by_k[k]:
            by_lang.setdefault(s.lang, []).append(s.score)
        seed = [0, zlib.crc32(f"k_sweep/{k}".encode())]
        band.append(cluster_mean_interval(list(by_lang.values()), paired.SAMPLES, seed))
    lows, highs = zip(*band, strict=True)
    axis.fill_between(ks, lows, highs, alpha=0.25, label=KSWEEP_BAND)
    axis.set_xticks(ks)
    axis.set_xlabel("number of source languages (k)")
    axis.set_ylabel(f"{results.scores[0].metric} ×100 on targets")
    with_sources = [run for run in results.runs if results.sources_of(run)]
    budget = {True: " (same total budget)", False: " (data budgets differ)", None: ""}
    axis.set_title(
        f"Score against the number of sources{budget[same_budget(budgets or {}, with_sources)]}"
    )
    axis.legend(fontsize=8)
    save_figure(figure, path)
    return True
