"""The settings table: every measure under each pooling, centred or not, layer by layer.

A claim such as "MSLT is more language-agnostic than SSLT" can hold under one way of reading the
representations and flip under another (docs/analysis-measures.md measures why in the demo's
world). So ``analyze`` does not report one setting alone: from hidden states extracted once per
model it reads both poolings, retrieval raw and centred, and each layer, and states for every
row which way the models point.

Centring (subtracting each language's mean) is a column pair, not a row: linear CKA centres each
language itself, so it is the same centred or not; the language-ID probe and the silhouette on
centred representations fall to chance by construction (the language's mean is most of what they
read, measured in docs/analysis-measures.md); retrieval is the measure centring changes, so it
is shown both ways, next to the share of variance that the languages' means explain.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from itertools import combinations, pairwise
from typing import Any

import numpy as np

from mslt_it.analysis.metrics import (
    SMALL_PROBLEM,
    cka_matrix,
    language_id_accuracy,
    language_share,
    language_silhouette,
    mean_off_diagonal,
    retrieval_matrix,
)

TABLE_POOLINGS = ("mean", "last")
MEASURES = ("cka", "retrieval", "retrieval_centred", "lid", "silhouette", "language_share")
HEADERS = {
    "cka": "CKA ↑",
    "retrieval": "retrieval ↑",
    "retrieval_centred": "retrieval centred ↑",
    "lid": "LID probe ↓",
    "silhouette": "silhouette ↓",
    "language_share": "language share ↓",
}
HIGHER_IS_AGNOSTIC = {
    "cka": True,
    "retrieval": True,
    "retrieval_centred": True,
    "lid": False,
    "silhouette": False,
    "language_share": False,
}
TABLE_MEANINGS = {
    "cka": (
        "linear CKA between languages, mean over pairs; the same centred or not (CKA centres "
        "each language itself)"
    ),
    "retrieval": "top-1 cosine retrieval of a sentence's translation, raw representations",
    "retrieval_centred": "the same after subtracting each language's mean (--center)",
    "lid": "held-out accuracy of a linear language-ID probe",
    "silhouette": "silhouette (cosine) with languages as clusters",
    "language_share": (
        "share of the variance that the languages' means explain (what centring removes)"
    ),
}
MOST_LAYERS = 9
"""Up to this many analysed layers the table has them all; beyond, a spread of them."""


def table_layers(layers: Sequence[int], plot_layer: int, most: int = MOST_LAYERS) -> list[int]:
    """The layers the table covers: all analysed ones, or ``most`` spread over them.

    A spread always holds the first, the last and the plotted layer, so a 33-layer model costs
    the table a handful of layers' metrics, not 33 more.
    """
    layers = sorted(layers)
    if len(layers) <= most:
        return layers
    picks = {layers[round(i * (len(layers) - 1) / (most - 2))] for i in range(most - 1)}
    return sorted(picks | {plot_layer})


def setting_measures(
    by_lang: Sequence[np.ndarray], seed: int = 0, known: dict[str, float] | None = None
) -> dict[str, float]:
    """Every measure of the table for one model, pooling and layer.

    ``known`` holds values already computed for the main results (same representations), which
    are reused rather than computed twice.
    """
    from threadpoolctl import threadpool_limits

    found = dict(known or {})
    small = sum(np.size(r) for r in by_lang) < SMALL_PROBLEM
    with threadpool_limits(limits=1) if small else contextlib.nullcontext():
        if "cka" not in found:
            found["cka"] = mean_off_diagonal(cka_matrix(by_lang))
        if "retrieval" not in found:
            found["retrieval"] = mean_off_diagonal(retrieval_matrix(by_lang))
        if "retrieval_centred" not in found:
            found["retrieval_centred"] = mean_off_diagonal(retrieval_matrix(by_lang, center=True))
        if "lid" not in found:
            found["lid"] = language_id_accuracy(by_lang, seed=seed)
        if "silhouette" not in found:
            found["silhouette"] = language_silhouette(by_lang, seed=seed)
        if "language_share" not in found:
            found["language_share"] = language_share(by_lang)
    return {name: float(found[name]) for name in MEASURES}


def short_names(labels: Sequence[str]) -> dict[str, str]:
    """``MSLT``, ``SSLT``, ``base`` when the labels' first words tell the models apart."""
    first = [label.split(" ", 1)[0] for label in labels]
    if len(set(first)) == len(first):
        return dict(zip(labels, first, strict=True))
    return {label: label for label in labels}


def direction(values: dict[str, float], higher: bool, names: dict[str, str]) -> dict[str, Any]:
    """The models from most to least language-agnostic, and the order as text.

    ``text`` uses the values' own order signs: ``MSLT > SSLT > base`` for a measure where higher
    is more language-agnostic, ``MSLT < SSLT < base`` where lower is; ``=`` where the printed
    values (three decimals) are equal, so no sign contradicts the numbers beside it.
    """
    labels = list(values)
    order = sorted(labels, key=lambda label: -values[label] if higher else values[label])
    parts, cells = [names[order[0]]], [f"{names[order[0]]} {values[order[0]]:.3f}"]
    for before, label in pairwise(order):
        sign = ">" if higher else "<"
        sign = sign if ahead(values[before], values[label], higher) else "="
        parts.append(f"{sign} {names[label]}")
        cells.append(f"{sign} {names[label]} {values[label]:.3f}")
    return {"order": order, "text": " ".join(parts), "cell": " ".join(cells)}


def ahead(value: float, other: float, higher: bool) -> bool:
    """``value`` is the more language-agnostic of the two as the table prints them (three
    decimals): values printed alike are equal, so no sign or count contradicts the numbers."""
    if f"{value:.3f}" == f"{other:.3f}":
        return False
    return value > other if higher else value < other


def build_table(
    measured: dict[str, dict[tuple[str, int], dict[str, float]]],
    layers: Sequence[int],
    constant: set[tuple[str, int]],
    poolings: Sequence[str] = TABLE_POOLINGS,
) -> dict[str, Any]:
    """analysis.json's ``settings``: one row per pooling and layer, each measure's direction.

    ``measured[label][(pooling, layer)]`` holds :func:`setting_measures` of one model;
    ``constant`` the (pooling, layer) settings where some language's sentences all got one
    representation (last-token pooling at the embeddings): their rows say so and count nowhere.
    """
    labels = list(measured)
    names = short_names(labels)
    rows = []
    for pooling in poolings:
        for layer in layers:
            row: dict[str, Any] = {
                "pooling": pooling,
                "layer": layer,
                "constant": (pooling, layer) in constant,
                "measures": {},
            }
            for name in MEASURES:
                values = {label: measured[label][pooling, layer][name] for label in labels}
                row["measures"][name] = {
                    "values": {label: round(v, 6) for label, v in values.items()},
                    **direction(values, HIGHER_IS_AGNOSTIC[name], names),
                }
            rows.append(row)
    return {
        "poolings": list(poolings),
        "layers": list(layers),
        "models": labels,
        "names": names,
        "measures": {name: HEADERS[name] for name in MEASURES},
        "meanings": dict(TABLE_MEANINGS),
        "rows": rows,
        "pairs": pair_counts(rows, labels),
    }


def pair_counts(rows: Sequence[dict[str, Any]], labels: Sequence[str]) -> list[dict[str, Any]]:
    """For each two models (later against earlier: adapters against the base, MSLT against
    SSLT), in how many of the table's settings the first is the more language-agnostic."""
    counted = [row for row in rows if not row["constant"]]
    out = []
    for earlier, later in combinations(labels, 2):
        wins = {}
        for name in MEASURES:
            higher = HIGHER_IS_AGNOSTIC[name]
            better = 0
            for row in counted:
                values = row["measures"][name]["values"]
                better += ahead(values[later], values[earlier], higher)
            wins[name] = better
        out.append({"model": later, "against": earlier, "settings": len(counted), "more": wins})
    return out


def markdown(table: dict[str, Any], chance: dict[str, float] | None = None) -> str:
    """The table as Markdown, ready for a report: the rows, then the pair counts."""
    names = table["names"]
    measures = list(table["measures"])
    header = ["pooling", "layer", *(table["measures"][m] for m in measures)]
    lines = [
        "Each cell orders the models from most to least language-agnostic (↑: higher is more, "
        "↓: lower is more); `=` when equal to three decimals."
        + (
            f" Chance: retrieval {chance['retrieval']:.3g}, LID probe {chance['lid']:.3g}; "
            "an order among values near chance is noise."
            if chance
            else ""
        ),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---", "---:"] + ["---"] * len(measures)) + "|",
    ]
    for row in table["rows"]:
        if row["constant"]:
            cells = ["(every sentence of a language the same: not measured)"] + [""] * (
                len(measures) - 1
            )
        else:
            cells = [row["measures"][m]["cell"] for m in measures]
        lines.append(f"| {row['pooling']} | {row['layer']} | " + " | ".join(cells) + " |")
    if table["pairs"]:
        lines += [
            "",
            "Settings (rows above) in which the first model is the more language-agnostic:",
            "",
            "| models | " + " | ".join(table["measures"][m] for m in measures) + " |",
            "|---|" + "|".join(["---:"] * len(measures)) + "|",
        ]
        for pair in table["pairs"]:
            counts = [f"{pair['more'][m]} of {pair['settings']}" for m in measures]
            title = f"{names[pair['model']]} vs {names[pair['against']]}"
            lines.append(f"| {title} | " + " | ".join(counts) + " |")
    lines += ["", *(f"- {table['measures'][m]}: {table['meanings'][m]}" for m in measures)]
    return "\n".join(lines) + "\n"
