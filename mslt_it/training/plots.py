"""Figures of one training run, from its ``run.json`` alone (the report calls :func:`plot_run`).

- **loss**: the training loss of each source language per logging step (solid) and, where the
  run evaluated held-out rows, each language's held-out loss (dashed, targets included);
- **transfer**: accuracy against step for every watched language, one line each, sources drawn
  dashed and named "(source)", chance and the 50 % line shown, and the step at which each
  language first reaches 50 % marked (:func:`crossing_steps` gives the same numbers as text);
- **mix**: each language's share of the examples trained on beside its share in the manifest.

A figure whose data the run does not have (no watch, say) is not drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

THRESHOLD = 50.0


def crossing_steps(
    run: dict[str, Any], threshold: float = THRESHOLD
) -> dict[str, dict[str, int | None]]:
    """Task -> language -> first watched step whose accuracy is >= ``threshold`` (None: never)."""
    found: dict[str, dict[str, int | None]] = {}
    for task, langs in ((run.get("curves") or {}).get("watch") or {}).items():
        found[task] = {
            lang: next((int(step) for step, value in points if value >= threshold), None)
            for lang, points in langs.items()
        }
    return found


def run_sources(run: dict[str, Any]) -> list[str]:
    return list(((run.get("dataset") or {}).get("sources")) or [])


def plot_run(run: dict[str, Any], out_dir: str | Path, name: str) -> dict[str, Path]:
    """Write ``<name>-loss.png``, ``<name>-transfer.png`` and ``<name>-mix.png`` where the run has
    their data; return kind (``loss``, ``transfer``, ``mix``) -> path of each file written."""
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for kind, draw in (("loss", _loss), ("transfer", _transfer), ("mix", _mix)):
        path = out / f"{name}-{kind}.png"
        if draw(run, path, name):
            written[kind] = path
    return written


def _figure() -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 4), dpi=110)


MAX_LEGEND = 30
"""Most lines a plot names in its legend: more would not fit beside the axes (matplotlib then
warns that it cannot lay the figure out); the report's text names every language's step."""


def _legend(ax: Any) -> None:
    if 0 < len(ax.get_legend_handles_labels()[1]) <= MAX_LEGEND:
        ax.legend(fontsize=7, ncol=2)


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _loss(run: dict[str, Any], path: Path, name: str) -> bool:
    curves = run.get("curves") or {}
    train = curves.get("loss_by_language") or {}
    heldout = curves.get("heldout_loss_by_language") or {}
    if not train and not heldout:
        return False
    fig, ax = _figure()
    colours: dict[str, Any] = {}
    for lang, points in train.items():
        (line,) = ax.plot(*zip(*points, strict=True), label=f"{lang} (train)")
        colours[lang] = line.get_color()
    for dataset, langs in heldout.items():
        for lang, points in langs.items():
            ax.plot(
                *zip(*points, strict=True),
                linestyle="--",
                marker="o",
                markersize=3,
                color=colours.get(lang),
                label=f"{lang} ({dataset})",
            )
    ax.set_xlabel("step")
    ax.set_ylabel("loss (answer tokens)")
    ax.set_title(f"{name}: loss per language")
    _legend(ax)
    _save(fig, path)
    return True


def _transfer(run: dict[str, Any], path: Path, name: str) -> bool:
    watch = (run.get("curves") or {}).get("watch") or {}
    if not watch:
        return False
    sources = set(run_sources(run))
    crossings = crossing_steps(run)
    fig, ax = _figure()
    for task, langs in watch.items():
        for lang, points in langs.items():
            source = lang in sources
            step = crossings[task][lang]
            label = f"{lang} (source)" if source else lang
            label += f", ≥50 % at {step}" if step is not None else ", never ≥50 %"
            if len(watch) > 1:
                label = f"{task}/{label}"
            (line,) = ax.plot(
                *zip(*points, strict=True),
                linestyle="--" if source else "-",
                marker="o",
                markersize=3,
                label=label,
            )
            if step is not None:
                value = next(v for s, v in points if s == step)
                ax.plot([step], [value], marker="*", markersize=11, color=line.get_color())
    ax.axhline(THRESHOLD, color="grey", linewidth=0.8, linestyle=":")
    ax.set_ylim(0, 102)
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy (rank mode, %)")
    ax.set_title(f"{name}: transfer during training (sources: {', '.join(sorted(sources))})")
    _legend(ax)
    _save(fig, path)
    return True


def _mix(run: dict[str, Any], path: Path, name: str) -> bool:
    mix = (run.get("trained_mix") or {}).get("languages") or {}
    if not mix:
        return False
    import numpy as np

    langs = list(mix)
    x = np.arange(len(langs))
    fig, ax = _figure()
    ax.bar(x - 0.2, [100 * mix[k]["promised_share"] for k in langs], 0.4, label="manifest")
    ax.bar(x + 0.2, [100 * mix[k]["share"] for k in langs], 0.4, label="trained (examples)")
    for i, lang in enumerate(langs):
        epochs = mix[lang].get("epochs")
        if epochs is not None:
            ax.annotate(f"{epochs:g} ep", (x[i] + 0.2, 100 * mix[lang]["share"]), ha="center",
                        va="bottom", fontsize=7)  # fmt: skip
    ax.set_xticks(x, langs)
    ax.set_ylabel("share of examples (%)")
    tolerance = (run.get("trained_mix") or {}).get("tolerance")
    ax.set_title(f"{name}: mix trained on vs the budget (tolerance {tolerance})")
    ax.legend(fontsize=8)
    _save(fig, path)
    return True
