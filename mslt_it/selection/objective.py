"""Set objectives: each criterion is a sum of a few *terms*, scored for many sets at once.

A set of ``k`` languages is a row of pool indices, and a batch of sets an ``(N, k)`` integer array,
so a term scores a batch with a handful of numpy gathers: a pairwise sum is ``k(k−1)/2`` lookups in
a precomputed matrix, not a Python loop over pairs.

Every term also bounds, for a partial set ``P`` and each next language ``a`` (all ``a ≥ start`` at
once, vectorised), the best score of any set that extends ``P ∪ {a}`` with ``r − 1`` languages
from ``a+1 … n−1`` (the lexicographic order of the search). The pruned search (:mod:`.search`)
skips a child whose bound cannot reach the current top, and so returns exactly what exhaustive
enumeration returns. The bounds, with ``s = r − 1`` languages still to add after ``a``:

- :class:`Additive` (sum of values): value of ``P ∪ {a}`` + the ``s`` largest values after ``a``.
- :class:`PairSum` (sum over pairs): pairs in ``P ∪ {a}`` + the smaller of (i) the ``s`` largest
  links ``link(c) = Σ_{p∈P∪a} D[p, c]`` after ``a`` + the ``s(s−1)/2`` largest pairs after ``a``,
  and (ii) the ``s`` largest ``link(c) + ½ · (sum of c's s−1 largest distances)``.
- :class:`DistinctCount` (scripts): scripts of ``P ∪ {a}`` + min(s, unseen scripts after ``a``).
- :class:`Coverage` and :class:`NearestTarget` are monotone submodular: value of ``P ∪ {a}`` + the
  ``s`` largest single-language gains over ``P`` after ``a`` (the gain of a set is at most the sum
  of its members' gains, and a gain over ``P ∪ {a}`` is at most the gain over ``P``).
- :class:`SeededRandom`: 1, its maximum (nothing to prune).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from math import comb, frexp, ldexp
from typing import Protocol

import numpy as np


class Term(Protocol):
    """One additive part of an objective."""

    def scores(self, combos: np.ndarray) -> np.ndarray:
        """Score of every row of ``combos`` (an ``(N, k)`` array of pool indices)."""
        ...

    def child_bounds(self, prefix: np.ndarray, start: int, r: int) -> np.ndarray:
        """For each ``a`` in ``start … n−r``: an upper bound on every set that extends
        ``prefix ∪ {a}`` with ``r − 1`` indices greater than ``a``."""
        ...


def suffix_top_sums(values: np.ndarray, count: int) -> np.ndarray:
    """``out[i]`` = sum of the ``count`` largest of ``values[i:]`` (−inf if fewer); len n + 1."""
    n = len(values)
    out = np.full(n + 1, -np.inf)
    if count == 0:
        return np.zeros(n + 1)
    best = np.full(count, -np.inf)  # the `count` largest seen so far, ascending
    for i in range(n - 1, -1, -1):
        if values[i] > best[0]:
            best[0] = values[i]
            best.sort()
        if n - i >= count:
            out[i] = best.sum()
    return out


UNIT_BITS = 43
"""A pair distance is at most 2^43 units (:class:`PairSum`): 2^19 pairs of them fit int64."""


def _row_top_sums(matrix: np.ndarray, count: int) -> np.ndarray:
    """Sum of the ``count`` largest entries of each row (every row has at least ``count``)."""
    if count == 0:
        return np.zeros(len(matrix))
    width = matrix.shape[1]
    return np.partition(matrix, width - count, axis=1)[:, width - count :].sum(axis=1)


@dataclass
class Additive:
    """``Σ values[i]`` over the set: the ``size`` criterion (−inf ranks a language last)."""

    values: np.ndarray
    _suffix: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def scores(self, combos: np.ndarray) -> np.ndarray:
        return self.values[combos].sum(axis=1)

    def child_bounds(self, prefix: np.ndarray, start: int, r: int) -> np.ndarray:
        children = np.arange(start, len(self.values) - r + 1)
        if r - 1 not in self._suffix:
            self._suffix[r - 1] = suffix_top_sums(self.values, r - 1)
        base = self.values[prefix].sum() + self.values[children]
        return base + self._suffix[r - 1][children + 1]


@dataclass
class PairSum:
    """``weight · Σ_{i<j} matrix[i, j]`` over the set: linguistic or embedding diversity."""

    matrix: np.ndarray  # symmetric, zero diagonal (NaN where a distance is missing)
    weight: float = 1.0
    _flat: np.ndarray = field(init=False, repr=False)
    _scale: float = field(init=False, repr=False)
    _units: np.ndarray = field(init=False, repr=False)
    _missing: np.ndarray | None = field(init=False, repr=False)
    _row_top: np.ndarray = field(init=False, repr=False)
    _suffix_pairs: dict[int, np.ndarray] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError("PairSum needs a weight ≥ 0 for its bounds to hold")
        self.matrix = np.asarray(self.matrix, dtype=float)
        self._flat = self.matrix.ravel()
        # each distance in units of 2^-e, e chosen so that the largest is at most 2^43 units:
        # the C(1000, 2) = 499,500 < 2^19 pairs of the largest set `select` allows (search's
        # MAX_K) sum below 2^62, exact in int64; a unit is ~1e-13 of the largest distance
        # (a missing distance, NaN, is carried apart as a float, so the set's score is NaN)
        finite = np.isfinite(self._flat)
        largest = float(np.abs(self._flat[finite]).max()) if finite.any() else 0.0
        exponent = frexp(largest)[1] if largest > 0 else 0  # largest < 2^exponent
        self._scale = ldexp(1.0, min(max(UNIT_BITS - exponent, -1000), 1000))
        self._units = np.round(np.where(finite, self._flat, 0.0) * self._scale).astype(np.int64)
        self._missing = None if finite.all() else np.where(finite, 0.0, self._flat)
        n = len(self.matrix)
        off_diagonal = np.where(np.eye(n, dtype=bool), -np.inf, self.matrix)
        ordered = -np.sort(-off_diagonal, axis=1)[:, : max(n - 1, 0)]
        # _row_top[c, j]: sum of the j largest distances from c to any other language
        self._row_top = np.concatenate([np.zeros((n, 1)), np.cumsum(ordered, axis=1)], axis=1)

    def scores(self, combos: np.ndarray) -> np.ndarray:
        """Each set's pair values summed as whole numbers (:attr:`_units`), exactly and so in
        any order: sets with the same distances score alike to the bit, so they tie (and are
        named tied, listed alphabetically). Summed as floats in pool order, two such sets
        differed in the last bit and were ordered by rounding."""
        n = len(self.matrix)
        total = np.zeros(len(combos), dtype=np.int64)
        missing = np.zeros(len(combos))
        k = combos.shape[1]
        for j in range(k):
            row = combos[:, j] * n
            for m in range(j + 1, k):
                total += self._units[row + combos[:, m]]
                if self._missing is not None:
                    missing += self._missing[row + combos[:, m]]
        return self.weight * (total / self._scale + missing)

    def _top_pairs(self, count: int) -> np.ndarray:
        """``out[s]``: sum of the ``count`` largest distances among languages ``s … n−1``."""
        if count not in self._suffix_pairs:
            n = len(self.matrix)
            sums = np.full(n + 1, -np.inf) if count else np.zeros(n + 1)
            best = np.empty(0)
            for s in range(n - 1, -1, -1) if count else ():
                best = np.concatenate([best, self.matrix[s, s + 1 :]])
                if len(best) > count:
                    best = np.partition(best, len(best) - count)[len(best) - count :]
                if len(best) == count:
                    sums[s] = best.sum()
            self._suffix_pairs[count] = sums
        return self._suffix_pairs[count]

    def child_bounds(self, prefix: np.ndarray, start: int, r: int) -> np.ndarray:
        n = len(self.matrix)
        children = np.arange(start, n - r + 1)
        links = self.matrix[prefix].sum(axis=0) if len(prefix) else np.zeros(n)
        inner = self.matrix[np.ix_(prefix, prefix)].sum() / 2 + links[children]
        rest = r - 1
        if rest == 0:
            return self.weight * inner
        # candidate c (column, from `start`) after child a (row): its links to prefix ∪ {a}
        after = links[None, start:] + self.matrix[children][:, start:]
        after[np.arange(start, n)[None, :] <= children[:, None]] = -np.inf
        by_pairs = _row_top_sums(after, rest) + self._top_pairs(comb(rest, 2))[children + 1]
        by_rows = _row_top_sums(after + 0.5 * self._row_top[start:, rest - 1][None, :], rest)
        return self.weight * (inner + np.minimum(by_pairs, by_rows))


@dataclass
class DistinctCount:
    """Number of distinct labels (writing systems) in the set."""

    labels: np.ndarray  # int, 0 … L−1
    integral: bool = field(default=True, init=False)  # scores are whole numbers
    _later: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n, width = len(self.labels), int(self.labels.max(initial=-1)) + 1
        onehot = np.zeros((n + 1, width), dtype=bool)
        onehot[np.arange(n), self.labels] = True
        # _later[s, l]: label l occurs among s … n−1
        self._later = np.logical_or.accumulate(onehot[::-1], axis=0)[::-1]

    def scores(self, combos: np.ndarray) -> np.ndarray:
        ordered = np.sort(self.labels[combos], axis=1)
        return 1.0 + (np.diff(ordered, axis=1) != 0).sum(axis=1)

    def child_bounds(self, prefix: np.ndarray, start: int, r: int) -> np.ndarray:
        children = np.arange(start, len(self.labels) - r + 1)
        seen = np.zeros((len(children), self._later.shape[1]), dtype=bool)
        seen[:, self.labels[prefix]] = True
        seen[np.arange(len(children)), self.labels[children]] = True
        unseen = (self._later[children + 1] & ~seen).sum(axis=1)
        return seen.sum(axis=1) + np.minimum(r - 1, unseen).astype(float)


def _pack_words(flags: np.ndarray) -> np.ndarray:
    """Rows of booleans -> rows of uint64 words (bits in a fixed order, zero-padded)."""
    packed = np.packbits(flags, axis=1, bitorder="little")
    pad = (-packed.shape[1]) % 8
    packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed).view(np.uint64)


def _submodular_bounds(value: float, gains: np.ndarray, start: int, r: int) -> np.ndarray:
    """value(P) + gain(a) + the r−1 largest gains after a, for each child a ≥ start."""
    children = np.arange(start, len(gains) - r + 1)
    return value + gains[children] + suffix_top_sums(gains, r - 1)[children + 1]


@dataclass
class Coverage:
    """``scale · Σ weights[t]`` over the items ``t`` that some member of the set has.

    ``member[i, t]``: language ``i`` has item ``t``. Items are token types grouped by which pool
    languages have them (one column per distinct group, weighted by its size), so the work grows
    with the number of distinct groups, not with the vocabulary.
    """

    member: np.ndarray  # (n, items) bool
    weights: np.ndarray  # (items,) float
    scale: float = 1.0
    chunk_cells: int = 1 << 22
    _bits: np.ndarray | None = field(init=False, repr=False, default=None)
    _planes: np.ndarray | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        # Whole-number weights (token counts): each language's items become 64-bit words, and
        # bit b of every weight a mask, so a set's covered weight is Σ_b 2^b · popcount(OR & mask_b)
        # over a few words per set instead of a float product over every item.
        integral = (
            np.array_equal(self.weights, np.round(self.weights))
            and self.weights.min(initial=0) >= 0
        )
        if not (integral and hasattr(np, "bitwise_count") and self.member.shape[1]):
            return
        self._bits = _pack_words(self.member)
        whole = self.weights.astype(np.int64)
        planes = [(whole >> b) & 1 for b in range(max(int(whole.max()).bit_length(), 1))]
        self._planes = _pack_words(np.array(planes, dtype=bool))

    def scores(self, combos: np.ndarray) -> np.ndarray:
        if self._bits is not None:
            return self.scale * self._scores_by_bits(combos)
        items = max(self.member.shape[1], 1)
        step = max(1, self.chunk_cells // items)
        out = np.empty(len(combos))
        for begin in range(0, len(combos), step):
            part = combos[begin : begin + step]
            covered = self.member[part[:, 0]].copy()
            for j in range(1, part.shape[1]):
                covered |= self.member[part[:, j]]
            out[begin : begin + step] = covered @ self.weights
        return self.scale * out

    def _scores_by_bits(self, combos: np.ndarray) -> np.ndarray:
        assert self._bits is not None and self._planes is not None
        step = max(1, self.chunk_cells // self._bits.shape[1])
        out = np.empty(len(combos))
        for begin in range(0, len(combos), step):
            part = combos[begin : begin + step]
            covered = self._bits[part[:, 0]].copy()
            for j in range(1, part.shape[1]):
                covered |= self._bits[part[:, j]]
            total = np.zeros(len(part))
            for b, plane in enumerate(self._planes):
                total += float(1 << b) * np.bitwise_count(covered & plane).sum(axis=1)
            out[begin : begin + step] = total
        return out

    def child_bounds(self, prefix: np.ndarray, start: int, r: int) -> np.ndarray:
        covered = self.member[prefix].any(axis=0)
        gains = (self.member & ~covered) @ self.weights
        value = float(self.weights[covered].sum())
        return self.scale * _submodular_bounds(value, gains, start, r)


@dataclass
class NearestTarget:
    """``weight · mean over targets t of max over the set of similarity[t, i]``: closeness."""

    similarity: np.ndarray  # (targets, n)
    weight: float = 1.0

    def scores(self, combos: np.ndarray) -> np.ndarray:
        total = np.zeros(len(combos))
        for row in self.similarity:
            nearest = row[combos[:, 0]]
            for j in range(1, combos.shape[1]):
                np.maximum(nearest, row[combos[:, j]], out=nearest)
            total += nearest
        return self.weight * total / len(self.similarity)

    def child_bounds(self, prefix: np.ndarray, start: int, r: int) -> np.ndarray:
        # F(S) = mean_t max(floor, max_{i∈S} sim) is monotone submodular and equals the score
        # for non-empty S; floor is the smallest similarity, so F(∅) = floor.
        floor = float(self.similarity.min())
        current = (
            self.similarity[:, prefix].max(axis=1)
            if len(prefix)
            else np.full(len(self.similarity), floor)
        )
        gains = np.maximum(self.similarity - current[:, None], 0.0).mean(axis=0)
        return self.weight * _submodular_bounds(float(current.mean()), gains, start, r)


_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def language_keys(codes: list[str], seed: int) -> np.ndarray:
    """A 64-bit key per language from ``seed`` and its code (not its position in the pool)."""
    keys = [
        int.from_bytes(hashlib.blake2b(f"{seed}\0{c}".encode(), digest_size=8).digest(), "little")
        for c in codes
    ]
    return np.array(keys, dtype=np.uint64)


@dataclass
class SeededRandom:
    """A uniform number in [0, 1) per set, a pure function of the seed and the set's codes.

    The set's key is the sum (mod 2⁶⁴) of its members' keys, mixed with splitmix64's finaliser, so
    the same set gets the same score in any pool and any order, and ranking by it is a seeded
    uniformly random order of the sets.
    """

    keys: np.ndarray  # uint64 per language

    def scores(self, combos: np.ndarray) -> np.ndarray:
        z = self.keys[combos].sum(axis=1, dtype=np.uint64)
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
        return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def child_bounds(self, prefix: np.ndarray, start: int, r: int) -> np.ndarray:
        return np.ones(len(self.keys) - r + 1 - start)


@dataclass(frozen=True)
class Objective:
    """A criterion for sets of one size: the sum of its terms."""

    terms: tuple[Term, ...]

    @property
    def integral(self) -> bool:
        """Whether every score is a whole number, so ties are exact and can be pruned."""
        return all(getattr(term, "integral", False) for term in self.terms)

    def scores(self, combos: np.ndarray) -> np.ndarray:
        combos = np.asarray(combos, dtype=np.intp)
        total = np.zeros(len(combos))
        for term in self.terms:
            total = total + term.scores(combos)
        return total

    def child_bounds(self, prefix: np.ndarray, start: int, r: int) -> np.ndarray:
        prefix = np.asarray(prefix, dtype=np.intp)
        return sum((term.child_bounds(prefix, start, r) for term in self.terms), np.zeros(1))
