"""What a transfer predictor sees of one source set and one target language.

LangRank (Lin et al., ACL 2019) ranks single transfer languages by a gradient-boosted model over
URIEL distances and data sizes; mslt-it ranks *sets*, so each row describes a set and a target:

- the set alone: every set criterion mslt-it computes (lang2vec diversity per feature set and
  over all five, distinct scripts, pretraining sizes, and with a tokenizer the share of its
  vocabulary the set's text uses: a share of the whole vocabulary, not of the pool's text as
  the ``coverage`` criterion's, so a set's value is the same whatever ``--pool`` ranks it in), as
  means over pairs or sources so that one predictor reads sets of any size alike;
- the target against the set: its similarity to the nearest and to the average source under each
  lang2vec feature set (and to the nearest over all five, ``target-l2v``'s closeness), how many
  sources share its script and its family, its own pretraining size, and (with a tokenizer) the
  share of its token types the sources have.

The two "over all five" columns are what ``target-l2v`` adds up: with a dozen measured sets,
trees split on a ready-made sum more easily than they rebuild it from its parts.

When the results also hold runs of single sources (the SSLT baselines a study runs anyway),
three more columns say what the set's sources carry to the target *alone*, measured: the mean,
best and worst of their single-source scores there, each minus the target's mean over every
measured single source (the score a predictor learns is relative to the target's mean, too).
They are NaN unless every source of the set was run alone and scored on the target: a mean of
some of the sources would compare sets on different evidence. On both synthetic grids the plain
mean of these ranks held-out sets on one target better than any lang2vec heuristic, though not
averaged over several targets (BENCHMARKS.md).

The same :class:`FeatureBuilder` computes the rows when a predictor is fitted and when it ranks,
so the two can never disagree on what a feature means. A value that cannot be known (a size the
table has no number for) is NaN, which gradient boosting handles as missing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from mslt_it.errors import MsltError
from mslt_it.languages import all_languages, pretraining_size
from mslt_it.selection.criteria import SIZE_MODELS, Context

FEATURE_SPACES = ("syntax", "phonology", "inventory", "family", "geo")
"""The lang2vec feature sets whose distances every row carries."""


SINGLES_FEATURES = (
    "target: sources alone, mean",
    "target: sources alone, best",
    "target: sources alone, worst",
)
"""The measured single-source columns, present when a predictor was fitted with such runs."""


def feature_names(with_coverage: bool, with_singles: bool = False) -> list[str]:
    """Column names, in order; readable, since explanations print them."""
    names = ["set: k"]
    names += [f"set: {space} diversity" for space in FEATURE_SPACES]
    names += ["set: lang2vec diversity"]
    names += ["set: scripts", "set: log size, mean", "set: log size, min"]
    if with_coverage:
        names.append("set: token types (share of the vocabulary)")
    for space in FEATURE_SPACES:
        names += [f"target: {space} nearest source", f"target: {space} mean source"]
    names += ["target: lang2vec nearest source"]
    names += [
        "target: sources sharing script",
        "target: sources sharing family",
        "target: log size",
    ]
    if with_coverage:
        names.append("target: token types covered")
    if with_singles:
        names += SINGLES_FEATURES
    return names


def alone_scores(
    singles: Mapping[str, Mapping[str, float]], sources: Sequence[str], target: str
) -> list[float] | None:
    """Each source's measured score alone on ``target``; None unless every source has one (a
    mean of some of them would compare sets on different evidence)."""
    known = [singles[s][target] for s in sources if target in singles.get(s, {})]
    return known if known and len(known) == len(sources) else None


def singles_mean(
    singles: Mapping[str, Mapping[str, float]], sources: Sequence[str], target: str
) -> float:
    """The mean of :func:`alone_scores` (NaN without them): the ``sslt-measured`` baseline,
    which expects a set to carry what its sources carry alone."""
    known = alone_scores(singles, sources, target)
    return float(np.mean(known)) if known else math.nan


def _log_size(code: str, corpus: str) -> float:
    size = pretraining_size(code, corpus)
    return math.log1p(size) if size is not None and size >= 0 else math.nan


@dataclass
class FeatureBuilder:
    """Rows of features for (source set, target) pairs, over one context's languages.

    ``ctx`` supplies the lang2vec tables and options (``size_model``, ``l2v_variant``,
    ``tokenizer``); every language of a set or a target must be in ``languages``.
    """

    ctx: Context
    languages: tuple[str, ...]
    singles: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    _index: dict[str, int] = field(init=False, repr=False)
    _similarity: dict[str, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.languages = tuple(dict.fromkeys(self.languages))
        self._index = {code: i for i, code in enumerate(self.languages)}
        codes = list(self.languages)
        self._similarity = {
            space: 1.0 - self.ctx.distances(space, codes, f"features ({space})", False)
            for space in FEATURE_SPACES
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a pair unknown in every space
            self._mean_similarity = np.nanmean(np.stack(list(self._similarity.values())), axis=0)
        corpus = SIZE_MODELS[self.ctx.options.size_model]
        self._log_sizes = np.array([_log_size(code, corpus) for code in codes])
        registry = all_languages()
        self._scripts = [registry[code].script for code in codes]
        self._families = [registry[code].family for code in codes]

    @property
    def with_coverage(self) -> bool:
        return self.ctx.options.tokenizer is not None

    @property
    def with_singles(self) -> bool:
        return bool(self.singles)

    @property
    def names(self) -> list[str]:
        return feature_names(self.with_coverage, self.with_singles)

    @cached_property
    def _singles_baseline(self) -> dict[str, float]:
        """Per target, the mean over every measured single source that is not the target."""
        out: dict[str, float] = {}
        for target in {t for scores in self.singles.values() for t in scores}:
            values = [
                s[target] for code, s in self.singles.items() if code != target and target in s
            ]
            out[target] = float(np.mean(values)) if values else math.nan
        return out

    def singles_features(self, sources: Sequence[str], target: str) -> list[float]:
        """What the set's sources carry to ``target`` alone (see the module docstring)."""
        known = alone_scores(self.singles, sources, target)
        if known is None:
            return [math.nan] * len(SINGLES_FEATURES)
        baseline = self._singles_baseline[target]
        return [float(np.mean(known)) - baseline, max(known) - baseline, min(known) - baseline]

    def _position(self, code: str) -> int:
        try:
            return self._index[code]
        except KeyError:
            raise MsltError(f"features: language {code!r} is not among the languages") from None

    @cached_property
    def _vocabulary_size(self) -> int:
        """The tokenizer's vocabulary (the set's token types' denominator): fixed, where the
        pool's token types, which ``coverage`` divides by, changed with ``--pool`` between the
        fit (the measured languages) and a ranking, and moved a fitted set's prediction."""
        return len(self.ctx.tokenizer)

    def set_features(self, sources: Sequence[str]) -> list[float]:
        """The set's own columns (the same for every target)."""
        rows = [self._position(code) for code in sources]
        k = len(rows)
        values: list[float] = [float(k)]
        pairs = [(a, b) for i, a in enumerate(rows) for b in rows[i + 1 :]]
        for space in FEATURE_SPACES:
            similarity = self._similarity[space]
            distances = [1.0 - similarity[a, b] for a, b in pairs]
            values.append(float(np.nanmean(distances)) if pairs else 0.0)
        mean = self._mean_similarity
        values.append(float(np.nanmean([1.0 - mean[a, b] for a, b in pairs])) if pairs else 0.0)
        values.append(float(len({self._scripts[i] for i in rows})))
        sizes = self._log_sizes[rows]
        values += [float(np.mean(sizes)), float(np.min(sizes))]
        if self.with_coverage:
            union = np.unique(np.concatenate([self.ctx.token_types(c) for c in sources]))
            values.append(len(union) / max(self._vocabulary_size, 1))
        return values

    def target_features(self, sources: Sequence[str], target: str) -> list[float]:
        """The target's columns against the set."""
        rows = [self._position(code) for code in sources]
        t = self._position(target)
        values: list[float] = []
        for space in FEATURE_SPACES:
            similarity = self._similarity[space][t, rows]
            known = similarity[~np.isnan(similarity)]
            values += [float(known.max()), float(known.mean())] if len(known) else [np.nan] * 2
        overall = self._mean_similarity[t, rows]
        values.append(float(np.nanmax(overall)) if not np.isnan(overall).all() else np.nan)
        values.append(float(sum(self._scripts[i] == self._scripts[t] for i in rows)))
        values.append(float(sum(self._families[i] == self._families[t] for i in rows)))
        values.append(float(self._log_sizes[t]))
        if self.with_coverage:
            union = np.unique(np.concatenate([self.ctx.token_types(c) for c in sources]))
            own = self.ctx.token_types(target)
            values.append(float(np.isin(own, union).mean()) if len(own) else np.nan)
        if self.with_singles:
            values += self.singles_features(sources, target)
        return values

    def rows(self, pairs: Sequence[tuple[Sequence[str], str]]) -> np.ndarray:
        """The feature matrix of ``(sources, target)`` pairs, one row each."""
        cache: dict[tuple[str, ...], list[float]] = {}
        out = np.empty((len(pairs), len(self.names)))
        for i, (sources, target) in enumerate(pairs):
            key = tuple(sorted(sources))
            if key not in cache:
                cache[key] = self.set_features(key)
            out[i] = cache[key] + self.target_features(key, target)
        return out
