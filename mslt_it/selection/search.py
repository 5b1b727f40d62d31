"""Finding the best sets of ``k`` languages: exhaustive vectorised enumeration, or pruned search.

Both walk the ``C(n, k)`` sets in lexicographic order of pool indices and score them in blocks of
up to a million rows with one vectorised call (:class:`~.objective.Objective`), so the only Python
loop is over block prefixes. Ties are broken by that order (the earlier set wins) in both modes,
which is what makes their answers identical, not just equally good.

``exhaustive`` scores every set. ``pruned`` is a depth-first branch and bound: before descending
into the sets that start with a prefix it asks the objective for an upper bound on all of them and
skips the branch when the bound is below the current ``top``-th best score (or below a floor found
first by a cheap beam search). A beam search alone is not exact for pairwise-sum objectives (the
best triple need not extend the best pair); a valid bound is, so ``pruned`` returns exactly what
``exhaustive`` returns, only faster where the bounds bite. ``auto`` enumerates up to
:data:`MAX_EXHAUSTIVE` sets and prunes above that.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import comb

import numpy as np

from mslt_it.errors import MsltError, clipped
from mslt_it.selection.objective import Objective

MAX_EXHAUSTIVE = 2_000_000
"""Above this many candidate sets, ``auto`` switches from exhaustive to pruned search."""

MAX_FORCED_EXHAUSTIVE = 1_000_000_000
"""``method="exhaustive"`` is refused above this many sets (hours of scoring)."""

MAX_CANDIDATES = 10**12
"""More candidate sets than this are refused before searching: the pruned search's bounds are
weak for large k (C(176,88) ran for hours), and no study needs such sets ranked."""

MAX_SEARCH_SECONDS = 120.0
"""A search still running after this long stops with an error that says how far it got."""

PROGRESS_SECONDS = 10.0
"""A long search reports how far it is on stderr this often (a plain line, logs included)."""

EXHAUSTIVE_BLOCK = 1 << 20
PRUNED_LEAF = 1 << 14
BEAM_WIDTH = 64
SEARCH_METHODS = ("auto", "exhaustive", "pruned")


def print_progress(scored: int, total: int, elapsed: float) -> None:
    """One plain line on stderr: readable in a terminal, a log file or a Slurm output."""
    print(f"select: {scored:,} of {total:.3g} sets scored, {elapsed:.0f} s", file=sys.stderr)


@dataclass(frozen=True)
class SearchLimit:
    """How long a search may run, and how it reports progress meanwhile."""

    seconds: float = MAX_SEARCH_SECONDS
    progress_seconds: float = PROGRESS_SECONDS
    on_progress: Callable[[int, int, float], None] | None = print_progress


@dataclass(frozen=True)
class SearchResult:
    """The best sets (rows of pool indices, best first) and how they were found."""

    combos: np.ndarray  # (m, k) intp
    scores: np.ndarray  # (m,), NaN where the objective is undefined
    total: int  # candidate sets
    scored: int  # sets actually scored (== total when exhaustive)
    method: str  # "exhaustive" or "pruned"


def all_combinations(n: int, k: int) -> np.ndarray:
    """Every ``k``-subset of ``range(n)`` as sorted rows, in lexicographic order, built in numpy.

    The sets whose first element is ``≥ s`` are a suffix of the ``k−1`` table, so each level is
    ``n`` slices and one concatenation instead of ``C(n, k)`` Python tuples. Above ``k = n/2``
    the sets are the complements of the ``n−k``-subsets, in reverse order (the smallest element
    two sets do not share is in the first, so not in its complement): built level by level, the
    ``n/2`` level on the way held ``C(n, n/2)`` rows, 2.3·10⁹ for the one set of 34 of 34.
    """
    if k == 0:
        return np.zeros((1, 0), dtype=np.intp)
    if k > n:
        return np.zeros((0, k), dtype=np.intp)
    if 2 * k > n:
        left_out = all_combinations(n, n - k)
        kept = np.ones((len(left_out), n), dtype=bool)
        kept[np.arange(len(left_out))[:, None], left_out] = False
        return np.nonzero(kept)[1].astype(np.intp).reshape(len(left_out), k)[::-1].copy()
    table = np.arange(n, dtype=np.intp)[:, None]
    for level in range(2, k + 1):
        total = comb(n, level - 1)
        parts = []
        for first in range(n - level + 1):
            tail = table[total - comb(n - first - 1, level - 1) :]
            part = np.empty((len(tail), level), dtype=np.intp)
            part[:, 0] = first
            part[:, 1:] = tail
            parts.append(part)
        table = np.concatenate(parts)
    return table


class _Tails:
    """``k``-subsets of ``range(start, n)`` as slices of one table per ``k`` (no rebuilding)."""

    def __init__(self, n: int, max_rows: int) -> None:
        self.n, self.max_rows = n, max_rows
        self.tables: dict[int, tuple[int, np.ndarray]] = {}

    def get(self, start: int, r: int) -> np.ndarray:
        size = self.n - start
        if r not in self.tables:
            span = self.n
            while span > r and comb(span, r) > max(self.max_rows, 1):
                span -= 1
            self.tables[r] = (span, all_combinations(span, r))
        span, table = self.tables[r]
        if size > span:  # only reached with a tiny max_rows in tests
            return all_combinations(size, r) + start
        return table[comb(span, r) - comb(size, r) :] + (start - (span - size))


class _Best:
    """The ``m`` best rows seen so far, ties kept in arrival (= lexicographic) order."""

    def __init__(self, m: int, k: int) -> None:
        self.m = m
        self.combos = np.zeros((0, k), dtype=np.intp)
        self.keys = np.zeros(0)
        self.scores = np.zeros(0)

    @property
    def threshold(self) -> float:
        """The score a new row must beat to enter (−inf until ``m`` rows are held)."""
        return float(self.keys[-1]) if len(self.keys) >= self.m else -np.inf

    def push(self, combos: np.ndarray, scores: np.ndarray) -> None:
        keys = np.where(np.isnan(scores), -np.inf, scores)
        index = np.arange(len(keys))
        if len(self.keys) >= self.m:
            index = np.flatnonzero(keys > self.keys[-1])  # an equal score loses to an earlier set
            if not len(index):
                return
        if len(index) > self.m:
            sub = keys[index]
            cut = np.partition(sub, len(sub) - self.m)[len(sub) - self.m]
            above = index[sub > cut]
            ties = index[sub == cut][: self.m - len(above)]
            index = np.sort(np.concatenate([above, ties]))
        merged_keys = np.concatenate([self.keys, keys[index]])
        order = np.argsort(-merged_keys, kind="stable")[: self.m]
        self.keys = merged_keys[order]
        self.scores = np.concatenate([self.scores, scores[index]])[order]
        self.combos = np.concatenate([self.combos, combos[index]])[order]


class _Walk:
    """Depth-first walk over sets in lexicographic order, scoring whole blocks at the leaves."""

    def __init__(
        self,
        objective: Objective,
        n: int,
        k: int,
        top: int,
        leaf_rows: int,
        prune: bool,
        limit: SearchLimit | None = None,
    ) -> None:
        self.objective, self.n, self.k = objective, n, k
        self.leaf_rows, self.prune = leaf_rows, prune
        self.best = _Best(top, k)
        self.tails = _Tails(n, leaf_rows)
        self.floor = -np.inf
        self.scored = 0
        self.limit = limit or SearchLimit()
        self.started = self.last_report = time.monotonic()

    def check_time(self) -> None:
        """Report progress now and then; stop with an error past the time limit."""
        now = time.monotonic()
        elapsed = now - self.started
        if elapsed > self.limit.seconds:
            total = comb(self.n, self.k)
            raise MsltError(
                f"k: the search for the best {self.k} of {self.n} languages "
                f"(C({self.n},{self.k}) = {total:.3g} sets) scored {self.scored:,} sets in "
                f"{elapsed:.0f} s without finishing (limit {self.limit.seconds:.0f} s); "
                "use a smaller pool (--pool) or k, or an additive criterion such as size"
            )
        if now - self.last_report >= self.limit.progress_seconds and self.limit.on_progress:
            self.last_report = now
            self.limit.on_progress(self.scored, comb(self.n, self.k), elapsed)

    def cutoff(self) -> float:
        """The bound a branch must reach to be worth visiting.

        A branch must be able to reach the floor, and to beat (not tie: ties go to the earlier
        set, already held) the ``top``-th best. Bounds add up in another order than scores, so
        real-valued comparisons allow a relative 1e-9; integer objectives are exact.
        """
        floor = self.floor - 1e-9 * max(1.0, abs(self.floor))
        threshold = self.best.threshold
        if threshold == -np.inf:
            return floor
        if self.objective.integral:
            return max(floor, threshold + 0.5)
        return max(floor, threshold - 1e-9 * max(1.0, abs(threshold)))

    def visit(self, prefix: np.ndarray, start: int) -> None:
        self.check_time()
        r = self.k - len(prefix)
        if comb(self.n - start, r) <= self.leaf_rows:
            tails = self.tails.get(start, r)
            block = np.empty((len(tails), self.k), dtype=np.intp)
            block[:, : len(prefix)] = prefix
            block[:, len(prefix) :] = tails
            self.best.push(block, self.objective.scores(block))
            self.scored += len(block)
            return
        children = range(start, self.n - r + 1)
        bounds = self.objective.child_bounds(prefix, start, r) if self.prune else None
        for i, first in enumerate(children):
            if bounds is not None and bounds[i] < self.cutoff():
                continue
            self.visit(np.append(prefix, first), first + 1)


def beam_floor(objective: Objective, n: int, k: int, fixed: int, top: int, width: int) -> float:
    """A score that the ``top``-th best set is known to reach: a cheap beam search's ``top``-th.

    Only a floor for pruning (every set the beam returns is a real set), never the answer.
    It starts from all sets of the largest size that is cheap to enumerate (pairs, usually, since
    all singletons score 0 on a pairwise objective) and grows the ``width`` best by one language
    at a time, in any position.
    """
    free = np.arange(fixed, n)
    r = k - fixed
    if r == 0 or len(free) < r:
        return -np.inf
    size = 1
    while size < r and comb(len(free), size + 1) <= 50_000:
        size += 1
    states = all_combinations(len(free), size) + fixed
    states = np.hstack([np.broadcast_to(np.arange(fixed), (len(states), fixed)), states])
    states, keys = _keep_best(objective, states, width)
    for _ in range(size, r):
        grown = np.hstack(
            [np.repeat(states, len(free), axis=0), np.tile(free, len(states))[:, None]]
        )
        fresh = ~(states[:, :, None] == free[None, None, :]).any(axis=1).ravel()
        grown = np.unique(np.sort(grown[fresh], axis=1), axis=0)
        states, keys = _keep_best(objective, grown, width)
    return float(keys[top - 1]) if len(keys) >= top else -np.inf


def _keep_best(
    objective: Objective, states: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    scores = objective.scores(states)
    keys = np.where(np.isnan(scores), -np.inf, scores)
    order = np.argsort(-keys, kind="stable")[:width]
    return states[order], keys[order]


def best_sets(
    objective: Objective,
    n: int,
    k: int,
    top: int,
    *,
    fixed: int = 0,
    method: str = "auto",
    max_exhaustive: int = MAX_EXHAUSTIVE,
    leaf_rows: int | None = None,
    limit: SearchLimit | None = None,
) -> SearchResult:
    """The ``top`` best ``k``-subsets of ``range(n)`` that contain ``range(fixed)``.

    ``fixed`` indices (languages forced into every set) come first in the pool's order, so the
    candidate sets are ``range(fixed)`` plus every ``(k − fixed)``-subset of the rest.
    """
    if method not in SEARCH_METHODS:
        raise ValueError(f"unknown search method {method!r}")
    total = comb(n - fixed, k - fixed)
    if method == "auto":
        method = "exhaustive" if total <= max_exhaustive else "pruned"
    if total > MAX_CANDIDATES:
        raise MsltError(
            f"k: choosing {k - fixed} of {n - fixed} languages means C({n - fixed},{k - fixed}) = "
            f"{total:.3g} candidate sets, more than can be searched ({MAX_CANDIDATES:.0e}); "
            "use a smaller pool (--pool) or k"
        )
    if method == "exhaustive" and total > MAX_FORCED_EXHAUSTIVE:
        raise MsltError(
            f"search: exhaustive search over C({n - fixed},{k - fixed}) = {total:.3g} sets is "
            f"refused (at most {MAX_FORCED_EXHAUSTIVE:,}); use --search auto or a smaller pool"
        )
    prune = method == "pruned"
    leaf = leaf_rows or (PRUNED_LEAF if prune else EXHAUSTIVE_BLOCK)
    walk = _Walk(objective, n, k, top, leaf, prune, limit)
    if prune:
        walk.floor = beam_floor(objective, n, k, fixed, top, max(BEAM_WIDTH, 4 * top))
    walk.visit(np.arange(fixed, dtype=np.intp), fixed)
    best = walk.best
    return SearchResult(best.combos, best.scores, total, walk.scored, method)


MAX_K = 1000
"""No language pool is larger: a bigger set size is a typo, refused before a range is built."""


def parse_k(k: int | str | Sequence[int]) -> list[int]:
    """``3`` / ``"3"`` / ``"1-5"`` / ``"2,4"`` / ``[2, 3]`` -> sorted distinct set sizes."""
    if isinstance(k, int):
        values = [k]
    elif isinstance(k, str):
        values = []
        for part in k.split(","):
            match = re.fullmatch(r"\s*(-?[0-9]+)\s*(?:-\s*([0-9]+)\s*)?", part)  # not "٣"
            if match is None:
                raise MsltError(f"--k: expected a size like 3, a range like 1-5 or 2,4; got {k!r}")
            if match.group(1).startswith("-"):
                raise MsltError(f"--k: set sizes must be >= 1, got {clipped(part.strip(), 40)}")
            if any(len((g or "").lstrip("0")) > len(str(MAX_K)) for g in match.groups()):
                raise MsltError(f"--k: set sizes go up to {MAX_K}, got {clipped(part.strip(), 40)}")
            low = int(match.group(1))  # digits bounded first: int() refuses 4300 and more
            high = int(match.group(2)) if match.group(2) else low
            if high < low:
                raise MsltError(f"--k: empty range {part.strip()!r}")
            if high > MAX_K:
                raise MsltError(f"--k: set sizes go up to {MAX_K}, got {part.strip()!r}")
            values += range(low, high + 1)
    else:
        values = [int(v) for v in k]
    if not values or min(values) < 1:
        raise MsltError(f"--k: set sizes must be >= 1, got {k!r}")
    return sorted(set(values))
