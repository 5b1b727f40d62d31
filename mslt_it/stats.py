"""Paired tests for two runs scored on the same rows: bootstrap, McNemar, Holm.

Two adapters evaluated on one set of examples are not independent samples: most rows are easy or
hard for both. Comparing their two intervals (each run's own bootstrap) wastes that pairing and
calls real gains noise; comparing row by row keeps it. So a difference is resampled as pairs:

- :func:`paired_bootstrap`: the 95 % percentile interval of ``score(B) − score(A)`` over rows
  resampled *together*, and a two-sided bootstrap p-value (twice the smaller tail of the
  resampled differences around 0, each tail counting the observed sample as one more resample
  so that p is never 0; capped at 1). Identical runs give the interval [0, 0], p = 1.
  It works for accuracy (a 0/1 column per row) and for micro F1 (``(tp, n_pred, n_gold)`` per
  row, F1 recomputed from summed counts in each resample, as :mod:`mslt_it.evaluation.metrics`
  does for one run).
- :func:`paired_mean_bootstrap`: the same for the unweighted mean over several languages
  (languages are fixed, rows are the sample): each language's rows resampled on their own, or,
  where the languages' rows are translations of the same items (a parallel benchmark: XNLI,
  XCOPA, PAWS-X…), each item drawn in every language at once (:func:`shared_units`).
- :func:`mcnemar_exact`: McNemar's exact test for accuracy: of the rows where the runs disagree,
  is the share B gets right different from one half? ``scipy.stats.binomtest`` does the work.
- :func:`holm`: Holm's step-down adjustment of the per-language p-values (SciPy has none;
  statsmodels' ``multipletests(method="holm")`` computes the same numbers, see the tests).

Rows that share a passage (XNLI's three hypotheses per premise, Belebele's questions per
FLORES passage) are not independent draws: resampling them one by one makes intervals too narrow
and p-values too small. Where a task's definition names a ``cluster`` for its rows, whole
clusters are resampled (the cluster bootstrap; Miller, "Adding Error Bars to Evals", 2024, makes
the case for evaluations): :func:`resampled_scores` draws either way, and every interval and
p-value here takes the rows' ``clusters``. McNemar's test assumes independent rows, so a
clustered comparison is decided by its bootstrap p-value.

An item of a parallel benchmark is hard or easy in every language at once (one premise, one
story, translated): drawing each language's rows on their own treats the languages' errors as
independent and makes the average's interval too narrow. :func:`language_resampled_scores` draws the
items once for all languages where it is given their :func:`shared_units`.

One interval here is not paired: :func:`cluster_mean_interval`, the k-sweep plot's band.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
"""The coverage of every interval here."""

MIN_SAMPLES = 40
"""The fewest resamples a percentile interval is drawn from: each 2.5 % tail then holds one.
With 1 or 2 the "interval" was one resample's score, which need not hold the score itself."""


def samples_problem(samples: int) -> str | None:
    """What is wrong with a count of bootstrap resamples (None: 0, no interval, or enough)."""
    if 0 < samples < MIN_SAMPLES:
        return (
            f"{samples}; allowed: 0 (no interval) or {MIN_SAMPLES} to 1,000,000 (a 95% interval's "
            f"tails hold 2.5% of the resamples each: {MIN_SAMPLES} put one in each)"
        )
    return None


@dataclass(frozen=True)
class Difference:
    """``score(B) − score(A)`` (points ×100), its 95 % interval and two-sided p-value."""

    difference: float
    low: float
    high: float
    p_value: float


def statistic(values: np.ndarray, kind: str) -> np.ndarray:
    """The score ×100 of rows (last-but-one axis) summed or averaged along that axis.

    ``values`` is ``(..., rows)`` of 0/1 for ``"accuracy"`` or ``(..., rows, 3)`` of
    ``(tp, n_pred, n_gold)`` for ``"f1"``.
    """
    if kind == "accuracy":
        return 100.0 * values.mean(axis=-1)
    sums = values.sum(axis=-2)
    tp, n_pred, n_gold = sums[..., 0], sums[..., 1], sums[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(tp > 0, 200.0 * tp / (n_pred + n_gold), 0.0)


def cluster_index(clusters: Sequence[str] | None, rows: int) -> np.ndarray | None:
    """Each row's cluster as a number from 0, in order of first appearance (None: no clusters,
    every row its own). Rows all in clusters of their own number 0, 1, 2… in row order, so
    resampling them draws exactly what resampling rows draws."""
    if clusters is None:
        return None
    if len(clusters) != rows:
        raise ValueError(f"{len(clusters)} cluster keys for {rows} rows")
    numbers: dict[str, int] = {}
    return np.array([numbers.setdefault(key, len(numbers)) for key in clusters], dtype=int)


def resampled_scores(
    runs: Sequence[np.ndarray],
    kind: str,
    clusters: Sequence[str] | None,
    samples: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """``samples`` bootstrap scores ×100 of each of ``runs`` (aligned rows), every run drawn
    with the same indices (a paired draw).

    Without ``clusters`` rows are drawn with replacement. With them, clusters are drawn and
    each drawn cluster brings all its rows: accuracy is the drawn rows' correct over the drawn
    rows' count, F1 comes from their summed counts. Clusters of one row each give the row
    draw's numbers.
    """
    rows = len(runs[0])
    numbers = cluster_index(clusters, rows)
    if numbers is None:
        index = rng.integers(0, rows, size=(samples, rows))
        return [statistic(values[index], kind) for values in runs]
    count = int(numbers.max()) + 1
    index = rng.integers(0, count, size=(samples, count))
    return drawn_scores(runs, kind, numbers, index)


def drawn_scores(
    runs: Sequence[np.ndarray], kind: str, numbers: np.ndarray, index: np.ndarray
) -> list[np.ndarray]:
    """Each run's score ×100 in every resample of ``index`` (``(samples, units)`` of drawn unit
    numbers), a row counting once for each draw of its unit (``numbers``: each row's unit).
    Accuracy is the drawn rows' correct over their count, F1 comes from their summed counts."""
    count = index.shape[1]
    sizes = np.bincount(numbers, minlength=count).astype(float)
    scores = []
    for values in runs:
        if kind == "accuracy":
            sums = np.bincount(numbers, weights=values, minlength=count)
            scores.append(100.0 * sums[index].sum(axis=1) / sizes[index].sum(axis=1))
        else:
            sums = np.stack(
                [np.bincount(numbers, weights=values[:, j], minlength=count) for j in range(3)],
                axis=1,
            )
            scores.append(statistic(sums[index], "f1"))
    return scores


def shared_units(
    items: Sequence[Sequence[str]], clusters: Sequence[Sequence[str] | None] | None = None
) -> list[np.ndarray] | None:
    """Per language, each row's resampling unit when the languages' rows are the same items
    (``items``: per language, each row's item key, the same key for a row and its translations).

    An item's rows in every language are one unit, and so are a language's rows of one cluster
    (``clusters``: per language, its rows' cluster keys or None), with every item they reach:
    XNLI's hypotheses of one premise in English bring that premise's rows in every language.
    Units are numbered by the first language's rows, so one language's units are its clusters
    as :func:`cluster_index` numbers them. None when the languages do not hold the same items,
    each once, or when their clusters group the items otherwise (a cluster of one language
    joined to two of another's): their draws cannot be shared. Chained, such clusters merged
    into a few units, down to one, and the average's interval came out narrower than any
    language's, down to a width of 0.
    """
    if not items or any(len(set(keys)) != len(keys) for keys in items):
        return None
    order = {key: number for number, key in enumerate(items[0])}
    if any(len(keys) != len(order) or not all(k in order for k in keys) for keys in items[1:]):
        return None
    parent = list(range(len(order)))
    grouped = clusters or [None] * len(items)

    def root(number: int) -> int:
        while parent[number] != number:
            parent[number] = parent[parent[number]]
            number = parent[number]
        return number

    for keys, groups in zip(items, grouped, strict=True):
        if groups is None:
            continue
        first: dict[str, int] = {}
        for key, group in zip(keys, groups, strict=True):
            a, b = root(order[key]), root(first.setdefault(group, order[key]))
            if a != b:
                parent[max(a, b)] = min(a, b)
    units: dict[int, int] = {}
    unit = [units.setdefault(root(number), len(units)) for number in range(len(order))]
    found = [np.array([unit[order[key]] for key in keys], dtype=int) for keys in items]
    for numbers, groups in zip(found, grouped, strict=True):
        if groups is not None and len(set(numbers.tolist())) != len(set(groups)):
            return None  # clusters that group the items otherwise in another language chained
    return found  # into fewer units than this language has clusters: its own draw is wider


def unit_count(units: Sequence[np.ndarray]) -> int:
    """How many units :func:`shared_units` numbered (every language holds rows of each)."""
    return int(max(numbers.max() for numbers in units)) + 1


def language_resampled_scores(
    languages: Sequence[Sequence[np.ndarray]],
    kind: str,
    samples: int,
    rng: np.random.Generator,
    clusters: Sequence[Sequence[str] | None] | None = None,
    units: Sequence[np.ndarray] | None = None,
) -> Iterator[list[np.ndarray]]:
    """Language after language, ``samples`` bootstrap scores of each run (``languages``: per
    language, the runs' aligned rows; every run drawn with the same indices), for a mean over
    the languages.

    With ``units`` (:func:`shared_units`) the units are drawn once for every language, each
    language scored on its rows of the drawn units; without, each language's rows (or
    ``clusters``) are drawn on their own, one language after the other.
    """
    if units is not None:
        count = unit_count(units)
        index = rng.integers(0, count, size=(samples, count))
    for number, values in enumerate(languages):
        if units is not None:
            yield drawn_scores(values, kind, units[number], index)
        else:
            keys = clusters[number] if clusters is not None else None
            yield resampled_scores(values, kind, keys, samples, rng)


NEAR_ZERO = 1e-11
"""A resampled difference closer to 0 than this is 0: a mean of per-language differences that
cancel exactly comes out as ±1e-15 in floating point, and was counted in one tail only (too
small a p), or printed as -3.55e-15. A real difference of scores ×100 is far above it (an F1's
over a million entities differs by 2e-10 at the least)."""


def _snapped(values: np.ndarray) -> np.ndarray:
    return np.where(np.abs(values) < NEAR_ZERO, 0.0, values)


def _tails(differences: np.ndarray, observed: float) -> float:
    """Two-sided bootstrap p-value, in the add-one form: ``2 · min(k₋ + 1, k₊ + 1) / (B + 1)``,
    capped at 1, where ``k₋`` and ``k₊`` count the ``B`` resamples at or below 0 and at or
    above 0.

    The plain share of resamples (``2 · min(k₋, k₊) / B``) is exactly 0 when every resample
    lies on one side, and a p-value of 0 claims a certainty that ``B`` resamples cannot give
    (and passed Holm at any family size); the observed sample counts as one more resample, so
    the smallest p is ``2 / (B + 1)``. When every resample equals 0 (identical runs) p = 1.
    """
    if observed == 0 and np.all(differences == 0):
        return 1.0
    below = int(np.sum(differences <= 0))
    above = int(np.sum(differences >= 0))
    return min(1.0, 2.0 * (min(below, above) + 1) / (len(differences) + 1))


def _interval(differences: np.ndarray) -> tuple[float, float]:
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(differences, [tail, 100 - tail])
    return float(low), float(high)


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    kind: str,
    samples: int = 1000,
    seed: int | Sequence[int] = 0,
    clusters: Sequence[str] | None = None,
) -> Difference:
    """Paired bootstrap of ``score(b) − score(a)`` on rows aligned one to one.

    ``kind`` is ``"accuracy"`` (``a``, ``b``: 0/1 per row) or ``"f1"`` (``(rows, 3)`` counts);
    ``clusters``: each row's cluster key, clusters drawn whole (:func:`resampled_scores`).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or len(a) == 0:
        raise ValueError(f"paired rows must match and be non-empty: {a.shape} vs {b.shape}")
    observed = float(statistic(b, kind) - statistic(a, kind))
    first, second = resampled_scores([a, b], kind, clusters, samples, np.random.default_rng(seed))
    return _difference(observed, second - first)


def _difference(observed: float, differences: np.ndarray) -> Difference:
    """The observed difference, the resampled ones' interval and p, each near 0 taken as 0."""
    observed = float(_snapped(np.array(observed)))
    differences = _snapped(differences)
    low, high = _interval(differences)
    return Difference(observed, low, high, _tails(differences, observed))


def paired_mean_bootstrap(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    kind: str,
    samples: int = 1000,
    seed: int | Sequence[int] = 0,
    clusters: Sequence[Sequence[str] | None] | None = None,
    units: Sequence[np.ndarray] | None = None,
) -> Difference:
    """Paired bootstrap of the difference of unweighted means over languages.

    ``pairs`` holds, per language, the two runs' aligned rows, drawn with the same indices for
    both runs: each language on its own (``clusters``: per language, its rows' cluster keys or
    None), or every language's at once where ``units`` (:func:`shared_units`) are given.
    """
    if not pairs:
        raise ValueError("no languages to average")
    languages = [(np.asarray(a, dtype=float), np.asarray(b, dtype=float)) for a, b in pairs]
    rng = np.random.default_rng(seed)
    observed = 0.0
    differences = np.zeros(samples)
    drawn = language_resampled_scores(languages, kind, samples, rng, clusters, units)
    for (a, b), (first, second) in zip(languages, drawn, strict=True):
        observed += float(statistic(b, kind) - statistic(a, kind))
        differences += second - first
    return _difference(observed / len(pairs), differences / len(pairs))


def cluster_mean_interval(
    clusters: Sequence[Sequence[float]], samples: int = 1000, seed: int | Sequence[int] = 0
) -> tuple[float, float]:
    """The 95 % percentile interval of the mean of every value in ``clusters`` when whole
    clusters (not values) are resampled with replacement, each resample's mean taken over the
    values of the clusters it drew.

    For the k-sweep a cluster is one target language's scores (of every run with k sources):
    the interval says how much the plotted mean depends on which target languages were
    measured, languages being the sample. Row-sampling noise within a language is not in it
    (each score's own interval is in scores.csv). One cluster gives an interval of zero width.
    """
    if not clusters or not all(len(cluster) for cluster in clusters):
        raise ValueError("every cluster needs a value")
    sums = np.array([float(np.sum(cluster)) for cluster in clusters])
    counts = np.array([len(cluster) for cluster in clusters], dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(clusters), (samples, len(clusters)))
    return _interval(sums[picks].sum(axis=1) / counts[picks].sum(axis=1))


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test: rows only A got right, rows only B got right, two-sided p."""

    only_a: int
    only_b: int
    p_value: float


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> McNemar:
    """McNemar's exact (binomial) test on paired correctness.

    Under "the runs are equally good" each disagreement is B's with probability ½, so the
    count of B-only wins among the disagreements is Binomial(disagreements, ½). No disagreement
    at all: p = 1.
    """
    from scipy.stats import binomtest  # 0.5 s to import: every command's config reads this module

    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return McNemar(only_a, only_b, 1.0)
    p_value = float(binomtest(only_b, only_a + only_b, 0.5, alternative="two-sided").pvalue)
    return McNemar(only_a, only_b, min(1.0, p_value))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order.

    Sort ascending; the i-th smallest (from 0) is multiplied by ``m − i``; a running maximum
    keeps the adjusted values monotone; each is capped at 1. Rejecting where the adjusted value
    is below α controls the family-wise error rate at α for any dependence between the tests.
    """
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    adjusted = np.minimum(1.0, np.maximum.accumulate(scaled))
    out = np.empty(m)
    out[order] = adjusted
    return [float(x) for x in out]
