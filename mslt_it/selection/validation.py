"""Honest validation of a transfer predictor: held-out sets (or targets), next to heuristics.

A split trains on some measured source sets and ranks the others; a set, or in the second mode
a target language, is never both trained on and tested on. For each split and each target, the
held-out sets that do not contain the target are ranked by the predictor and by every heuristic,
and each ranking is scored against the measured one:

- **Spearman ρ** between the ranking's scores and the measured scores (a constant ranking, which
  says nothing, counts as 0);
- **NDCG@3**: the measured gains (score minus the worst held-out score) of the ranking's top 3,
  discounted by position, over the best possible;
- **top-3 hit**: whether the measured best set is among the ranking's top 3 (only where more
  than 3 sets are held out: among 3 it always is).

Sets a ranking scores alike are in no order: NDCG@3 and the top-3 hit are their expected values
over every order of the tied sets (as if the tie were broken at random). Broken alphabetically, a
heuristic with many ties (``script``, ``l2v-family``) gained or lost by the languages' names.

Means are over the (split, target) groups. The spread of the splits' means gives the learned ρ
a 95% interval (:func:`fold_interval`); when it holds 0 the output says the predictor shows no
skill.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mslt_it.errors import MsltError
from mslt_it.selection.measured import finite_or_none

MIN_RANKED = 3
"""A (split, target) group needs this many held-out sets to rank (top 3 of fewer says nothing)."""
CV_MODES = ("sets", "targets")
LEARNED = "learned"


@dataclass(frozen=True)
class Split:
    """Train on rows whose set and target pass ``train``; rank ``test_sets`` on ``test_targets``."""

    train_sets: frozenset[tuple[str, ...]]
    test_sets: tuple[tuple[str, ...], ...]
    train_targets: frozenset[str] | None = None  # None: every target
    test_targets: tuple[str, ...] | None = None  # None: every target


def set_folds(sets: Sequence[tuple[str, ...]], folds: int, seed: int) -> list[Split]:
    """Grouped K-fold over source sets (shuffled by ``seed``): each set is held out once."""
    order = list(sets)
    random.Random(seed).shuffle(order)
    return [
        Split(frozenset(s for j, s in enumerate(order) if j % folds != f), tuple(order[f::folds]))
        for f in range(folds)
    ]


def random_set_splits(
    sets: Sequence[tuple[str, ...]], train: int, repeats: int, seed: int
) -> list[Split]:
    """``repeats`` random splits, each training on ``train`` sets and ranking the rest."""
    rng = random.Random(seed)
    out = []
    for _ in range(repeats):
        order = sorted(sets)
        rng.shuffle(order)
        out.append(Split(frozenset(order[:train]), tuple(sorted(order[train:]))))
    return out


def target_folds(sets: Sequence[tuple[str, ...]], targets: Sequence[str]) -> list[Split]:
    """Leave one target out: train on every other target, rank all sets on the held-out one."""
    return [
        Split(frozenset(sets), tuple(sets), frozenset(t for t in targets if t != held), (held,))
        for held in targets
    ]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ of the ranking ``x`` against the measured ``y``; 0 where undefined (a
    constant ranking carries no information). A set ``x`` cannot score (NaN: a size unknown)
    ranks last, as NDCG@3 and the top-3 hit count it: a NaN made the whole group's ρ 0, beside
    the other two measures of the same ranking."""
    from scipy.stats import spearmanr

    x = np.where(np.isnan(x), -np.inf, x)
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(spearmanr(x, y).statistic)
    return value if math.isfinite(value) else 0.0


def top_order(scores: np.ndarray) -> np.ndarray:
    """Indices best first; NaN last; ties keep the given (alphabetical) order."""
    keys = np.where(np.isnan(scores), -np.inf, scores)
    return np.argsort(-keys, kind="stable")


def tied_places(scores: np.ndarray) -> list[tuple[int, list[int]]]:
    """The ranking as ``(first place, indices)`` of each group of equal scores, best first
    (NaN scores tie with each other, last)."""
    keys = np.where(np.isnan(scores), -np.inf, scores)
    order = top_order(scores)
    groups: list[tuple[int, list[int]]] = []
    for place, index in enumerate(order.tolist()):
        if groups and keys[index] == keys[groups[-1][1][0]]:
            groups[-1][1].append(index)
        else:
            groups.append((place, [index]))
    return groups


def ndcg_at(scores: np.ndarray, measured: np.ndarray, k: int = 3) -> float | None:
    """NDCG@k with gains ``measured - min(measured)``, expected over the orders of tied sets
    (each member of a tie is equally likely at each of its places); None when every gain is 0."""
    gains = measured - measured.min()
    discounts = 1.0 / np.log2(np.arange(2, len(gains) + 2))
    discounts[k:] = 0.0
    best = float(np.sum(np.sort(gains)[::-1] * discounts))
    if best <= 0:
        return None
    chosen = 0.0
    for first, members in tied_places(scores):
        places = discounts[first : first + len(members)]
        chosen += float(np.mean(places)) * float(np.sum(gains[members]))
    return chosen / best


def top_hit(scores: np.ndarray, measured: np.ndarray, k: int = 3) -> float:
    """The chance that a measured-best set is among the ranking's top ``k``, over the orders of
    tied sets; NaN when there are no more than ``k`` sets (every ranking's top ``k`` holds it)."""
    if len(measured) <= k:
        return math.nan
    best = set(np.flatnonzero(measured == measured.max()).tolist())
    for first, members in tied_places(scores):
        if first >= k:
            break
        hits = len(best & set(members))
        slots = min(k - first, len(members))
        if hits and slots == len(members):
            return 1.0
        if hits:  # the tie straddles place k: some of it is in the top k
            return 1.0 - math.comb(len(members) - hits, slots) / math.comb(len(members), slots)
    return 0.0


@dataclass
class MethodScore:
    """One ranking method's held-out metrics, averaged over (split, target) groups."""

    method: str
    spearman: float
    ndcg3: float
    top3: float
    groups: int
    spearman_ci: tuple[float, float] | None = None
    per_group: list[tuple[int, float, float | None, float]] = field(
        default_factory=list, repr=False, compare=False
    )
    """``(split, ρ, NDCG@3, top-3 hit)`` of each group, in the order every method shares: what
    :func:`paired_difference` compares two methods on."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "spearman": finite_or_none(self.spearman),
            "ndcg@3": finite_or_none(self.ndcg3),
            "top3_hit": finite_or_none(self.top3),
            "groups": self.groups,
            "spearman_ci": list(self.spearman_ci) if self.spearman_ci else None,
        }


@dataclass
class Validation:
    """The held-out table of one cross-validation, learned first, and its fold models."""

    mode: str
    splits: int
    methods: list[MethodScore]
    fold_models: list[Any] = field(default_factory=list)
    test_to_train: float = 0.0
    """Held-out rows per training row, averaged over the splits: how much the splits' training
    rows overlap, which :func:`fold_interval` corrects for."""

    @property
    def learned(self) -> MethodScore:
        return self.methods[0]

    @property
    def skill(self) -> bool:
        """Whether the learned ρ's 95% interval lies above 0."""
        ci = self.learned.spearman_ci
        return ci is not None and ci[0] > 0

    def verdict(self) -> str:
        learned = self.learned
        ci = learned.spearman_ci
        folds = len({group[0] for group in learned.per_group})
        interval = (
            f" (95% CI {ci[0]:+.2f} to {ci[1]:+.2f})"
            if ci
            else f" ({learned.groups} held-out groups in {folds} folds: too few for an interval"
            f", which needs {MIN_GROUPS} groups in {MIN_SPLITS} folds)"
        )
        best = max(self.methods[1:], key=lambda m: m.spearman, default=None)
        against = f"; best other ranking {best.method} ρ {best.spearman:+.2f}" if best else ""
        if not self.skill:
            return (
                f"No evidence of skill: held-out ρ {learned.spearman:+.2f}{interval}{against}. "
                "Rank with another criterion, or measure more sets."
            )
        if best is None:
            return f"Held-out ρ {learned.spearman:+.2f}{interval}."
        mean, low, high = paired_difference(learned, best, "spearman", self.test_to_train)
        difference = f"learned − {best.method} {mean:+.2f} (95% CI {low:+.2f} to {high:+.2f})"
        if low > 0:
            return f"Held-out ρ {learned.spearman:+.2f}{interval}{against}; {difference}."
        if high < 0:  # "ranks as well" read as a tie where the fit is measurably worse
            return (
                f"Held-out ρ {learned.spearman:+.2f}{interval}{against}; {difference}: behind "
                f"{best.method} on these folds; rank with {best.method} instead."
            )
        return (
            f"Held-out ρ {learned.spearman:+.2f}{interval}{against}; {difference}: not ahead "
            f"of {best.method} on these folds, which ranks as well without a fit."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "splits": self.splits,
            "skill": self.skill,
            "methods": [m.to_dict() for m in self.methods],
            "verdict": self.verdict(),  # recalled where the predictor ranks
        }


MIN_GROUPS = 5
"""Held-out groups below which no interval is given: an interval of two or three values says
nothing (and no interval, no claim of skill)."""
MIN_SPLITS = 2
"""Splits (fold models) below which no interval is given: the interval's spread is that of the
splits' means."""


def fold_interval(
    by_split: Mapping[int, Sequence[float]], test_to_train: float, bound: float = math.inf
) -> tuple[float, float, float]:
    """The mean of every group's value and its 95% interval, from the spread of the splits'
    means: Nadeau and Bengio's corrected resampled t (Machine Learning 52, 2003), the variance
    of the ``J`` split means times ``1/J + n_test/n_train``, with ``J - 1`` degrees of freedom.

    The groups of one split share its fitted model and its held-out sets, and the splits share
    most of their training rows: resampling groups gave pure noise an interval above 0 in one
    file of six, and a bootstrap of five folds still in one of six; this one in one of sixty
    (``tests/test_learning.py`` holds the rate on noise).

    The t-interval knows no bounds; the value has them (ρ lies in ±1, a difference of two ρ in
    ±2): the interval is clipped to ``±bound`` (a ρ "from -0.28 to +1.38" was printed)."""
    from scipy.stats import t as student

    parts = [list(values) for values in by_split.values() if values]
    mean = float(np.mean(np.concatenate(parts)))
    if len(parts) < MIN_SPLITS:
        return mean, math.nan, math.nan
    means = np.array([np.mean(p) for p in parts])
    spread = math.sqrt((1 / len(parts) + test_to_train) * float(np.var(means, ddof=1)))
    half = float(student.ppf(0.975, len(parts) - 1)) * spread
    return mean, max(-bound, mean - half), min(bound, mean + half)


def _mean_defined(values: Sequence[float]) -> float:
    """The mean of the groups where a metric is defined (NaN where none is)."""
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else math.nan


def _by_split(per_group: Sequence[tuple[int, float]]) -> dict[int, list[float]]:
    by_split: dict[int, list[float]] = {}
    for split, value in per_group:
        by_split.setdefault(split, []).append(value)
    return by_split


METRICS = {"spearman": 1, "ndcg3": 2, "top3": 3}
"""A metric's position in :attr:`MethodScore.per_group`."""
METRIC_RANGES = {"spearman": (-1.0, 1.0), "ndcg3": (0.0, 1.0), "top3": (0.0, 1.0)}
"""Where each metric lies: a difference of two lies within ± the range's width."""


def paired_difference(
    a: MethodScore, b: MethodScore, metric: str, test_to_train: float
) -> tuple[float, float, float]:
    """Mean of ``a - b`` on ``metric`` over the groups both ranked, with the 95% interval of
    :func:`fold_interval` (``test_to_train``: held-out rows per training row of a split)."""
    column = METRICS[metric]
    differences = [
        (left[0], float(left[column]) - float(right[column]))
        for left, right in zip(a.per_group, b.per_group, strict=True)
        if _defined(left[column]) and _defined(right[column])
    ]
    if not differences:
        return math.nan, math.nan, math.nan
    low, high = METRIC_RANGES[metric]
    return fold_interval(_by_split(differences), test_to_train, high - low)


def _defined(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


Fit = Callable[[list[int]], Any]
"""Train a model on the given measured-row indices."""
Predict = Callable[[Any, list[int]], np.ndarray]
"""A trained model's scores for the given measured-row indices."""


def cross_validate(
    rows: Sequence[tuple[tuple[str, ...], str, float]],
    splits: Sequence[Split],
    fit: Fit,
    predict: Predict,
    heuristics: dict[str, np.ndarray],
    *,
    mode: str,
) -> Validation:
    """Score the learned ranking and every heuristic on the held-out part of each split.

    ``rows`` are the measured ``(sources, target, score)`` rows; ``heuristics`` map a name to one
    score per row (higher = better).
    """
    per_method: dict[str, list[tuple[int, float, float | None, float]]] = {LEARNED: []}
    per_method.update({name: [] for name in heuristics})
    models = []
    shares = []
    for number, split in enumerate(splits):
        train = [
            i
            for i, (sources, target, _) in enumerate(rows)
            if sources in split.train_sets
            and (split.train_targets is None or target in split.train_targets)
        ]
        test_sets = set(split.test_sets)
        test = [
            i
            for i, (sources, target, _) in enumerate(rows)
            if sources in test_sets and (split.test_targets is None or target in split.test_targets)
        ]
        if not train or not test:
            continue
        model = fit(train)
        models.append(model)
        shares.append(len(test) / len(train))
        predicted = predict(model, test)
        by_target: dict[str, list[int]] = {}
        for position, i in enumerate(test):
            by_target.setdefault(rows[i][1], []).append(position)
        for positions in by_target.values():
            if len(positions) < MIN_RANKED:
                continue
            order = sorted(positions, key=lambda p: rows[test[p]][0])  # alphabetical ties
            measured = np.array([rows[test[p]][2] for p in order])
            rankings = {LEARNED: predicted[order]}
            for name, scores in heuristics.items():
                rankings[name] = scores[[test[p] for p in order]]
            for name, scores in rankings.items():
                per_method[name].append(
                    (
                        number,
                        spearman(scores, measured),
                        ndcg_at(scores, measured),
                        top_hit(scores, measured),
                    )
                )
    test_to_train = float(np.mean(shares)) if shares else 0.0
    methods = []
    for name, values in per_method.items():
        if not values:
            continue
        rhos = [v[1] for v in values]
        ndcgs = [v[2] for v in values if v[2] is not None]
        by_split = _by_split([(v[0], v[1]) for v in values])
        interval = name == LEARNED and len(rhos) >= MIN_GROUPS and len(by_split) >= MIN_SPLITS
        methods.append(
            MethodScore(
                name,
                float(np.mean(rhos)),
                float(np.mean(ndcgs)) if ndcgs else math.nan,
                _mean_defined([v[3] for v in values]),
                len(values),
                fold_interval(by_split, test_to_train, METRIC_RANGES["spearman"][1])[1:]
                if interval
                else None,
                values,
            )
        )
    if not methods or methods[0].method != LEARNED:
        raise MsltError(
            f"cross-validation ({mode}): no held-out target has {MIN_RANKED} or more sets to "
            "rank; measure more sets"
        )
    learned, others = methods[0], sorted(methods[1:], key=lambda m: -m.spearman)
    return Validation(mode, len(models), [learned, *others], models, test_to_train)
