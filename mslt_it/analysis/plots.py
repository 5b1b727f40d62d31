"""The analysis figures: sentences in 2-D per model, the metrics by layer, CKA between languages.

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend
switch, safe in a notebook that uses another backend) and written to a temporary name that is
renamed into place, so a reader never sees half a PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it.analysis.metrics import HIGHER_IS_AGNOSTIC
from mslt_it.errors import MsltError
from mslt_it.languages import get_language

PROJECTIONS = ("tsne", "pca")
TITLES = {
    "cka": "CKA between languages",
    "retrieval": "Translation retrieval (top-1)",
    "lid": "Language-ID probe accuracy",
    "silhouette": "Silhouette by language",
}
Y_LABELS = {
    "cka": "mean linear CKA over language pairs",
    "retrieval": "accuracy, mean over language pairs",
    "lid": "held-out accuracy",
    "silhouette": "silhouette score (cosine)",
}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DPI = 120


DISTINCT_20 = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
    "#469990", "#9a6324", "#800000", "#808000", "#000075", "#a9a9a9", "#ffe119", "#fabed4",
    "#dcbeff", "#aaffc3", "#ffd8b1", "#000000",
)  # fmt: skip
"""Twenty colours chosen to be told apart (Trubetskoy), strongest first."""


def language_colors(count: int) -> list[Any]:
    """Distinct colours: tab10 up to 10 languages, 20 hand-picked ones up to 20, hues beyond.

    tab20 is not used: it pairs each hue with a paler copy, and neighbouring clusters in a
    t-SNE plot then look alike.
    """
    from matplotlib import colormaps

    if count <= 10:
        return [colormaps["tab10"](i) for i in range(count)]
    if count <= len(DISTINCT_20):
        return list(DISTINCT_20[:count])
    return [colormaps["hsv"](i / count) for i in range(count)]


def language_label(code: str) -> str:
    """``en (English)`` when the registry knows the code, else the code."""

    try:
        return f"{code} ({get_language(code).name})"
    except MsltError:
        return code


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Any, path: Path) -> None:
    """Write the figure; ``path`` lies in a staging folder of this run's own (see
    :func:`mslt_it.analysis.run.run_analysis`), so nothing there needs guarding."""
    figure.savefig(path, format="png", dpi=DPI)


def project(x: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, list[str]]:
    """2-D coordinates of ``x`` and the axis labels.

    t-SNE runs on unit-length rows (cosine geometry, as retrieval uses) reduced to 50 principal
    components first, the usual recipe that removes noise and makes t-SNE several times faster.
    """
    from sklearn.decomposition import PCA

    x = np.asarray(x, dtype=np.float64)
    if not np.any(x.var(axis=0) > 0):  # every point the same: nothing to project
        return np.zeros((len(x), 2)), ["(all points identical)", ""]
    if method == "pca":
        pca = PCA(n_components=2, random_state=seed).fit(x)
        shares = pca.explained_variance_ratio_ * 100
        return pca.transform(x), [f"PC{i + 1} ({shares[i]:.0f}% of variance)" for i in (0, 1)]
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms == 0.0, 1.0, norms)
    components = min(50, x.shape[1], len(x))
    reduced = PCA(n_components=components, random_state=seed).fit_transform(x)
    # sklearn needs perplexity below the count of points: 2 points (--plot-n 1, two languages)
    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3), len(x) - 1))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    # One thread: t-SNE's OpenMP loops gain little on an idle machine and lose 3-4x on a busy
    # one (measured: 3,000 points, 19 s on one thread against 72 s on two, under load).
    with threadpool_limits(limits=1):
        points = tsne.fit_transform(reduced)
    return points, ["t-SNE 1", "t-SNE 2"]


def plot_projection(
    clouds: Sequence[tuple[str, np.ndarray, str]],
    langs: Sequence[str],
    method: str,
    title: str,
    path: Path,
    seed: int = 0,
) -> None:
    """One scatter panel per model, sentences coloured by language, one shared legend.

    ``clouds`` holds (model label, points, subtitle); the points are language blocks of equal
    size in ``langs`` order, the same sentences for every model.
    """
    count = len(clouds)
    columns = min(count, 3)
    rows = -(-count // columns)
    figure = _new_figure(4.4 * columns + 2.0, 4.4 * rows + 0.7)
    axes = figure.subplots(rows, columns, squeeze=False)
    colors = language_colors(len(langs))
    handles = []
    for k, (label, points, subtitle) in enumerate(clouds):
        ax = axes[k // columns][k % columns]
        xy, axis_labels = project(points, method, seed)
        blocks = np.array_split(np.arange(len(xy)), len(langs))
        size = float(np.clip(4000 / len(xy), 4, 30))  # dots visible when few, apart when many
        handles = [
            ax.scatter(xy[block, 0], xy[block, 1], s=size, alpha=0.7, color=color, linewidths=0)
            for color, block in zip(colors, blocks, strict=True)
        ]
        ax.set_title(f"{label}\n{subtitle}", fontsize=10)
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])
        if method == "tsne":  # t-SNE coordinates have no unit; ticks would only suggest one
            ax.set_xticks([])
            ax.set_yticks([])
    for k in range(count, rows * columns):
        axes[k // columns][k % columns].set_visible(False)
    figure.legend(
        handles,
        [language_label(code) for code in langs],
        loc="outside right center",
        title="language",
        markerscale=2.0,
        fontsize=9,
    )
    figure.suptitle(title, fontsize=11)
    save_png(figure, path)


def plot_layers(models: Sequence[dict[str, Any]], chance: dict[str, float], path: Path) -> None:
    """layers.png: :func:`layers_figure`, written to ``path``."""
    save_png(layers_figure(models, chance), path)


def layers_figure(models: Sequence[dict[str, Any]], chance: dict[str, float]) -> Any:
    """One panel per metric, the layer on x, one line per model; chance levels dashed."""
    figure = _new_figure(11.0, 8.4)
    axes = figure.subplots(2, 2, squeeze=False).ravel()
    lines = []
    for ax, metric in zip(axes, TITLES, strict=True):
        lines = []
        for k, model in enumerate(models):
            layers = [entry["layer"] for entry in model["layers"]]
            values = [  # a layer not measured (None) is a gap in the line, not a point at 0
                np.nan if entry[metric]["value"] is None else entry[metric]["value"]
                for entry in model["layers"]
            ]
            (line,) = ax.plot(layers, values, marker=MARKERS[k % len(MARKERS)], markersize=4)
            lines.append(line)
        if metric in chance:
            ax.axhline(chance[metric], color="grey", linestyle="--", linewidth=1)
            ax.annotate(
                f"chance {chance[metric]:.3g}",
                xy=(1.0, chance[metric]),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 3),
                textcoords="offset points",
                ha="right",
                fontsize=8,
                color="grey",
            )
        layer_axis(ax, [entry["layer"] for model in models for entry in model["layers"]])
        direction = "higher" if HIGHER_IS_AGNOSTIC[metric] else "lower"
        ax.set_title(f"{TITLES[metric]}\n({direction} = more language-agnostic)", fontsize=10)
        ax.set_xlabel("layer (0 = embeddings)")
        ax.set_ylabel(Y_LABELS[metric])
        ax.grid(alpha=0.3)
    figure.legend(
        lines,
        [model["label"] for model in models],
        loc="outside lower center",
        ncols=min(len(models), 4),
        title="model",
    )
    figure.suptitle("Language-agnostic representations, layer by layer", fontsize=11)
    return figure


def layer_axis(ax: Any, analysed: Sequence[int]) -> None:
    """Whole-number ticks over the analysed layers, with room either side of the outer ones.

    Layers are whole numbers. matplotlib's own locator, even told ``integer=True``, falls back
    to fractions where fewer than two integers are in view: one analysed layer was drawn on an
    axis from 1.900 to 2.100 by 0.025. The fixed margin (also for one layer) keeps a layer not
    measured (a gap in the line) on the axis, and ``min_n_ticks=1`` lets one tick suffice.
    """
    from matplotlib.ticker import MaxNLocator

    ax.set_xlim(min(analysed) - 0.3, max(analysed) + 0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def plot_cka(
    matrices: Sequence[tuple[str, np.ndarray]], langs: Sequence[str], title: str, path: Path
) -> None:
    """CKA between every pair of languages, one heatmap per model, one shared colour scale."""
    count = len(matrices)
    columns = min(count, 3)
    rows = -(-count // columns)
    side = max(3.6, 0.32 * len(langs) + 1.6)
    figure = _new_figure(side * columns + 1.2, side * rows + 0.7)
    axes = figure.subplots(rows, columns, squeeze=False)
    image = None
    annotate = len(langs) <= 8
    for k, (label, matrix) in enumerate(matrices):
        ax = axes[k // columns][k % columns]
        image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis")
        ticks = np.arange(len(langs))
        ax.set_xticks(ticks, labels=list(langs), rotation=90 if len(langs) > 8 else 0)
        ax.set_yticks(ticks, labels=list(langs))
        ax.set_xlabel("language")
        ax.set_ylabel("language")
        ax.set_title(label, fontsize=10)
        if annotate:
            for a in range(len(langs)):
                for b in range(len(langs)):
                    value = matrix[a, b]
                    ax.text(
                        b,
                        a,
                        "–" if np.isnan(value) else f"{value:.2f}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="black" if value > 0.6 else "white",
                    )
    for k in range(count, rows * columns):
        axes[k // columns][k % columns].set_visible(False)
    if image is not None:
        figure.colorbar(image, ax=axes.ravel().tolist(), label="linear CKA", shrink=0.8)
    figure.suptitle(title, fontsize=11)
    save_png(figure, path)
