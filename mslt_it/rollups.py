"""Averages of target-language scores by script, by family and by resource tier.

"MSLT helps the Cyrillic and Devanagari targets, not the Latin ones" should be one table away,
not a sum done by hand over 15 columns. Script and family are the language registry's
(:mod:`mslt_it.languages`, ISO 15924 script and top-level family). The resource tier is a
language's CC-100 size (XLM-R's pre-training corpus, the registry's most complete table):

- ``high``: at least 50 GiB (en, ru, de, fr, es, zh, vi, th, bg…);
- ``medium``: 5 to 50 GiB (ar, el, hi, tr, ur…);
- ``low``: under 5 GiB (sw, and most of the world's languages);
- ``unlisted``: CC-100 has no row for the language (no size is guessed).

Means are unweighted over the languages of a group (every language counts the same, as in the
report's other averages) and over each run's *target* languages (its sources left out). A gain
row compares two runs over the languages that are a target of both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from mslt_it.errors import MsltError
from mslt_it.languages import get_language, pretraining_size

GROUPINGS = ("script", "family", "tier")
TIERS = (("high", 50.0), ("medium", 5.0), ("low", 0.0))
"""Resource tier -> the smallest CC-100 size (GiB) it takes, largest first."""
TIER_CORPUS = "cc100"
UNKNOWN = "unknown"


class Scored(Protocol):
    """What a rollup needs of a score (the report's :class:`mslt_it.report_results.Score`)."""

    run: str
    lang: str
    score: float
    is_source: bool


def tier(code: str) -> str:
    """The resource tier of ``code`` (see the module's docstring)."""
    try:
        size = pretraining_size(code, TIER_CORPUS)
    except MsltError:
        return UNKNOWN
    if size is None:
        return "unlisted"
    return next(name for name, floor in TIERS if size >= floor)


def group_of(code: str, by: str) -> str:
    """The script, family or tier of a language; ``unknown`` for a code the registry lacks."""
    if by == "tier":
        return tier(code)
    try:
        language = get_language(code)
    except MsltError:
        return UNKNOWN
    return language.script if by == "script" else language.family


def rollup(scores: Iterable[Scored], by: str) -> dict[str, dict[str, tuple[float, int]]]:
    """Per run: group -> (mean target score, number of languages)."""
    grouped: dict[str, dict[str, list[float]]] = {}
    for s in scores:
        if s.is_source:
            continue
        grouped.setdefault(s.run, {}).setdefault(group_of(s.lang, by), []).append(s.score)
    return {
        run: {group: (float(np.mean(v)), len(v)) for group, v in sorted(groups.items())}
        for run, groups in grouped.items()
    }


def gain_rollup(scores: Sequence[Scored], baseline: str, run: str, by: str) -> dict[str, float]:
    """Group -> mean of ``run − baseline`` over the languages that are a target of both."""
    first = {s.lang: s for s in scores if s.run == baseline}
    second = {s.lang: s for s in scores if s.run == run}
    gains: dict[str, list[float]] = {}
    for lang, s in second.items():
        if lang in first and not s.is_source and not first[lang].is_source:
            gains.setdefault(group_of(lang, by), []).append(s.score - first[lang].score)
    return {group: float(np.mean(v)) for group, v in sorted(gains.items())}


def markdown(scores: Sequence[Scored], pairs: Sequence[tuple[str, str]] = ()) -> str:
    """A table per grouping: runs × groups (mean over targets, languages in brackets), and a
    gain row per compared pair (baseline, run)."""
    runs = list(dict.fromkeys(s.run for s in scores))
    lines = ["## Rollups by script, family and resource tier", ""]
    lines += [
        "Mean score over each run's target languages in the group (number of languages in "
        "brackets); tiers are CC-100 sizes: high ≥ 50 GiB, medium 5–50, low < 5, unlisted "
        "where CC-100 has no row. Gain rows: the mean difference over languages that are a "
        "target of both runs.",
        "",
    ]
    for by in GROUPINGS:
        table = rollup(scores, by)
        groups = sorted({g for per_run in table.values() for g in per_run}, key=_order)
        if not groups:
            continue
        lines += [f"### By {by}", ""]
        lines.append(f"| run | {' | '.join(groups)} |")
        lines.append("|---" * (len(groups) + 1) + "|")
        for run in runs:
            per_run = table.get(run, {})
            cells = [
                f"{per_run[g][0]:.1f} ({per_run[g][1]})" if g in per_run else "–" for g in groups
            ]
            lines.append(f"| {run} | {' | '.join(cells)} |")
        for baseline, run in pairs:
            gains = gain_rollup(scores, baseline, run, by)
            cells = [f"{gains[g]:+.1f}" if g in gains else "–" for g in groups]
            lines.append(f"| *{run} − {baseline}* | {' | '.join(cells)} |")
        lines.append("")
    return "\n".join(lines)


def _order(group: str) -> tuple[int, str]:
    """Tiers from high to low, then anything else alphabetically."""
    names = [name for name, _ in TIERS]
    return (names.index(group), "") if group in names else (len(names), group)


def columns(code: str) -> dict[str, Any]:
    """The grouping columns scores.csv gets for a language."""
    return {by: group_of(code, by) for by in GROUPINGS}
