"""The selection criteria: what each one measures, and how it becomes an :class:`Objective`.

A criterion is a name, a one-line description, the options it needs, and a function that builds
the objective for one set size from a :class:`Context` (the task, the pool, the targets, the
options, and caches of the vectors and texts they are computed from).

Built ``strict``, a criterion refuses what it cannot compute (a language without a vector, a
pretraining size that is not known) with a one-line error naming the languages; that is how the
criterion being optimised is built. Built lenient, the unknown parts become NaN, shown as ``n/a``
in the other criteria's columns, so one language without phonology does not block a table.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it.arguments import expect, int_argument, path_argument
from mslt_it.errors import MsltError, allowed
from mslt_it.languages import all_languages, pretraining_size
from mslt_it.modeling import load_tokenizer
from mslt_it.named_models import resolve_model_name
from mslt_it.selection.objective import (
    Additive,
    Coverage,
    DistinctCount,
    NearestTarget,
    Objective,
    PairSum,
    SeededRandom,
    language_keys,
)
from mslt_it.selection.search import SEARCH_METHODS
from mslt_it.selection.text import coverage_items, mean_embeddings, sample_texts, token_types
from mslt_it.selection.vectors import (
    L2V_SPACES,
    L2V_VARIANTS,
    FeatureTable,
    cosine_distances,
    describe_missing,
    lang2vec_table,
    load_vectors_csv,
    registry_iso_codes,
)
from mslt_it.tasks.base import Task

SIZE_MODELS: dict[str, str] = {"xlmr": "cc100", "bloom": "roots", "mt5": "mc4"}
"""``--size-model`` -> the pretraining corpus whose per-language sizes it uses."""

SIZE_UNITS = {"cc100": "GiB", "roots": "bytes", "mc4": "billion tokens"}


TEXT_OR_NONE = "a string (a Hub id or folder) or None"
NAMES = "a set of field names (strings)"

MAX_DIVERSITY_WEIGHT = 1e6
"""Largest λ of the target-* criteria: distances are at most 2, so beyond this the closeness
term hardly counts, and near the float limit the sum overflows to infinity."""


@dataclass(frozen=True)
class SelectionOptions:
    """Settings of the criteria and of the search (all optional; defaults follow the paper)."""

    size_model: str = field(
        default="xlmr",
        metadata={
            "help": "size: whose pretraining sizes: xlmr (CC-100), bloom (ROOTS), mt5 (mC4)."
        },
    )
    size_missing: str = field(
        default="error",
        metadata={
            "help": "size: a pool language the table has no number for is an error (error) or "
            "makes every set containing it rank last, with a warning (last)."
        },
    )
    l2v_variant: str = field(
        default="knn",
        metadata={
            "help": "lang2vec syntax/phonology/inventory vectors: knn (predicted, no gaps) or "
            "average (observed; many languages have none and are reported missing)."
        },
    )
    vectors: Path | None = field(
        default=None,
        metadata={
            "help": "CSV of code,feature… rows: defines l2v-custom; if its columns are exactly a "
            "lang2vec set's features, its rows also replace or add to that set."
        },
    )
    diversity_weight: float = field(
        default=1.0,
        metadata={
            "help": "λ of the target-aware criteria: closeness + λ · mean pairwise distance."
        },
    )
    tokenizer: str | None = field(
        default=None, metadata={"help": "coverage: tokenizer (Hub id or folder)."}
    )
    model: str | None = field(
        default=None, metadata={"help": "embedding: model (Hub id or folder)."}
    )
    data: str = field(
        default="synthetic",
        metadata={"help": "Text for coverage/embedding: hub, synthetic or DIR."},
    )
    split: str = field(default="train", metadata={"help": "Split the text is sampled from."})
    sample: int = field(default=200, metadata={"help": "Rows per language for coverage/embedding."})
    search: str = field(
        default="auto",
        metadata={
            "help": "exhaustive (every set), pruned (exact branch and bound), or auto (exhaustive "
            "up to 2,000,000 sets)."
        },
    )
    predictor: Path | None = field(
        default=None,
        metadata={
            "help": "learned: a predictor file from select --fit --save (its feature options "
            "replace these)."
        },
    )
    cache_dir: Path | None = field(
        default=None,
        metadata={"help": "Cache folder (default $MSLT_IT_CACHE or ~/.cache/mslt-it)."},
    )
    given: frozenset[str] = field(
        default=frozenset(),
        metadata={
            "help": "The fields the user set (on the command line or in a recipe), even to "
            "their defaults: each is held to a predictor's value, not replaced by it."
        },
    )

    def __post_init__(self) -> None:
        self._check_types()
        _one_of("--size-model", self.size_model, SIZE_MODELS)
        _one_of("--size-missing", self.size_missing, ("error", "last"))
        _one_of("--l2v-variant", self.l2v_variant, L2V_VARIANTS)
        _one_of("--search", self.search, SEARCH_METHODS)
        if not 0 <= self.diversity_weight <= MAX_DIVERSITY_WEIGHT:  # NaN fails both
            raise MsltError(
                f"--diversity-weight: must be a number from 0 to {MAX_DIVERSITY_WEIGHT:g}, got "
                f"{self.diversity_weight!r}"
            )
        if self.sample < 1:
            raise MsltError(f"--sample: must be >= 1, got {self.sample!r}")

    def _check_types(self) -> None:
        """Each field's type, for a notebook's call (the CLI and recipes hand the right ones):
        ``sample="20"`` failed in a comparison deep inside, ``vectors=3`` when the file was read,
        and ``data=None`` was read as a folder named None. Each field keeps the type it
        declares: ``vectors``, ``predictor`` and ``cache_dir`` given as a str become a
        :class:`~pathlib.Path`; ``tokenizer``, ``model`` and ``data`` given as a Path, its text."""
        for name in ("tokenizer", "model", "data"):  # a folder may be a Path: kept as its text
            if isinstance(getattr(self, name), os.PathLike):
                object.__setattr__(self, name, os.fspath(getattr(self, name)))
        for name in ("size_model", "size_missing", "l2v_variant", "data", "split", "search"):
            expect(getattr(self, name), str, f"SelectionOptions.{name}", "a string")
        for name in ("tokenizer", "model"):
            expect(getattr(self, name), (str, type(None)), f"SelectionOptions.{name}", TEXT_OR_NONE)
        for name in ("vectors", "predictor", "cache_dir"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, path_argument(value, f"SelectionOptions.{name}"))
        weight = expect(
            self.diversity_weight, numbers.Real, "SelectionOptions.diversity_weight", "a number"
        )
        object.__setattr__(self, "diversity_weight", float(weight))
        object.__setattr__(self, "sample", int_argument(self.sample, "SelectionOptions.sample"))
        given = expect(self.given, (frozenset, set, list, tuple), "SelectionOptions.given", NAMES)
        for name in given:
            expect(name, str, "SelectionOptions.given", NAMES)
        object.__setattr__(self, "given", frozenset(given))

    @classmethod
    def help(cls) -> dict[str, str]:
        """Field name -> its documentation, for the CLI and the docs."""
        return {f.name: f.metadata["help"] for f in fields(cls)}


def with_named_models(options: SelectionOptions | None) -> SelectionOptions | None:
    """``options`` with one of mslt-it's model names as ``tokenizer`` or ``model``
    (``mslt-it:tiny-world``) given as its (made) folder, as ``select --tokenizer`` and a
    recipe's ``select`` entry take it: given to the library, it was read as a Hub id."""
    if options is None:
        return None
    update = {}
    for name in ("tokenizer", "model"):
        given = getattr(options, name)
        resolved = resolve_model_name(given, name) if isinstance(given, str) else given
        if resolved != given:
            update[name] = resolved
    return replace(options, **update) if update else options


def _one_of(option: str, value: str, choices: Collection[str]) -> None:
    if value not in choices:
        raise MsltError(f"{option}: unknown value {value!r}; allowed: {allowed(choices)}")


@dataclass
class Context:
    """What the criteria are computed from; vectors and texts are loaded once and kept."""

    task: Task
    pool: tuple[str, ...]  # search order: forced languages first, then alphabetical
    targets: tuple[str, ...] = ()
    seed: int = 0
    options: SelectionOptions = field(default_factory=SelectionOptions)
    notes: list[str] = field(default_factory=list)
    left_out: tuple[str, ...] = ()  # targets taken out of the pool: a target is not a source
    _tables: dict[str, FeatureTable] = field(default_factory=dict, repr=False)
    _coverage: tuple[np.ndarray, np.ndarray, int] | None = field(default=None, repr=False)
    _types: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @cached_property
    def custom(self) -> FeatureTable | None:
        """The user's ``--vectors`` table, if any."""
        if self.options.vectors is None:
            return None
        return load_vectors_csv(self.options.vectors)

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)

    # -- vector spaces ---------------------------------------------------------------------

    def table(self, space: str) -> FeatureTable:
        """Vectors of ``space`` (a lang2vec set, ``custom`` or ``embedding``) by language code."""
        if space not in self._tables:
            if space == "custom":
                if self.custom is None:
                    raise MsltError("l2v-custom: needs --vectors FILE.csv")
                self._tables[space] = self.custom
            elif space == "embedding":
                self._tables[space] = self._embedding_table()
            else:
                self._tables[space] = self._lang2vec(space)
        return self._tables[space]

    def _lang2vec(self, space: str) -> FeatureTable:
        feature_set = L2V_SPACES[space].format(variant=self.options.l2v_variant)
        registry = all_languages()
        by_iso = lang2vec_table(feature_set, registry_iso_codes(), self.options.cache_dir)
        table = FeatureTable(
            feature_set,
            tuple(registry),
            by_iso.features,
            by_iso.matrix([lang.iso639_3 for lang in registry.values()]),
        )
        custom = self.custom
        if custom is not None and set(custom.features) == set(table.features):
            self.note(f"{feature_set}: rows of {custom.name} replace or add to lang2vec's")
            table = table.with_rows(custom)
        return table

    def _embedding_table(self) -> FeatureTable:
        model = self.options.model
        if model is None:
            raise MsltError("embedding: needs --model (a Hub id or folder)")
        # targets the task has no text in get no vector: reported as missing where needed
        codes = [c for c in dict.fromkeys([*self.pool, *self.targets]) if c in self.task.languages]
        opts = self.options
        texts = {c: sample_texts(self.task, c, opts.data, opts.split, opts.sample) for c in codes}
        values = mean_embeddings(model, texts)
        features = tuple(f"h{i}" for i in range(values.shape[1]))
        return FeatureTable(f"embedding ({model})", tuple(codes), features, values)

    def distances(self, space: str, codes: list[str], criterion: str, strict: bool) -> np.ndarray:
        """Cosine distances between ``codes`` in ``space``; strict: nothing may be unknown."""
        table = self.table(space)
        missing = table.missing(codes)
        if strict and missing:
            raise MsltError(
                f"{criterion}: {describe_missing(missing, len(codes), table.name)}; "
                f"{_missing_hint(space, self)}{_row_hint(missing, self.custom, table)}"
            )
        if missing:
            self.note(f"{criterion}: {describe_missing(missing, len(codes), table.name)}: n/a")
        zero = table.zero(codes)
        if zero:
            what = "lang2vec knows no family of" if space == "family" else "all-zero vector for"
            self.note(
                f"{table.name}: {what} {allowed(zero, 12)}; they count as unrelated "
                "(distance 1) to every other language"
            )
        result = cosine_distances(table.matrix(codes))
        undefined = np.isnan(result) & ~np.isin(codes, missing)[:, None]
        undefined &= ~np.isin(codes, missing)[None, :]
        if strict and undefined.any():
            i, j = np.argwhere(undefined)[0]
            raise MsltError(
                f"{criterion}: {codes[i]} and {codes[j]} have no known {table.name} feature in "
                f"common, so their distance is undefined; {_missing_hint(space, self)}"
            )
        return result

    # -- other resources --------------------------------------------------------------------

    @cached_property
    def tokenizer(self) -> Any:
        """The ``--tokenizer``, loaded once for every criterion and feature that reads it."""
        return load_tokenizer(self.options.tokenizer, field="--tokenizer")

    def token_types(self, code: str) -> np.ndarray:
        """The token types (sorted ids) of the task's text in ``code``, computed once."""
        if code not in self._types:
            opts = self.options
            texts = sample_texts(self.task, code, opts.data, opts.split, opts.sample)
            self._types[code] = token_types(self.tokenizer, texts)
        return self._types[code]

    def coverage_items(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Token-type groups of the pool (see :func:`mslt_it.selection.text.coverage_items`)."""
        if self._coverage is None:
            if self.options.tokenizer is None:
                raise MsltError("coverage: needs --tokenizer (a Hub id or folder)")
            self._coverage = coverage_items([self.token_types(c) for c in self.pool])
        return self._coverage


def _row_hint(missing: list[str], custom: FeatureTable | None, table: FeatureTable) -> str:
    """Why a row the user wrote counts as missing: it holds no value (every cell empty or
    ``--``), or its code is in another case (codes are case-sensitive, ``zh-yue``, so a file's
    ``AR`` is not ``ar``). Said, rather than leave the user to wonder; only of a file whose
    rows ``table`` took (its features are the table's)."""
    if custom is None or set(custom.features) != set(table.features):
        return ""
    empty = [code for code in missing if code in custom.codes]
    if empty:
        return f" (the --vectors file's row of {empty[0]!r} has no value)"
    folded = {code.casefold(): code for code in custom.codes}
    pairs = [(folded[c.casefold()], c) for c in missing if c.casefold() in folded]
    if not pairs:
        return ""
    written, meant = pairs[0]
    return f" (codes are case-sensitive: the --vectors file has {written!r} for {meant!r})"


def _missing_hint(space: str, ctx: Context) -> str:
    if space == "custom":
        return f"complete their rows in {ctx.options.vectors}"
    if space == "embedding":
        return f"task {ctx.task.name} has no text in them"
    hint = "add them with --vectors (columns = the set's features)"
    if ctx.options.l2v_variant != "knn" and space in ("syntax", "phonology", "inventory"):
        hint = "use --l2v-variant knn (no gaps), or " + hint
    return hint + ", or leave them out of --pool/--targets"


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------

Builder = Callable[[Context, int, bool], Objective]


def _size(ctx: Context, k: int, strict: bool) -> Objective:
    corpus = SIZE_MODELS[ctx.options.size_model]
    sizes = [pretraining_size(code, corpus) for code in ctx.pool]
    missing = [code for code, size in zip(ctx.pool, sizes, strict=True) if size is None]
    fill = np.nan
    if missing and strict:
        where = f"{ctx.options.size_model} ({corpus}) has no pretraining size for"
        if ctx.options.size_missing == "error":
            raise MsltError(
                f"size: {where} {allowed(missing, 12)}; leave them out of --pool or pass "
                "--size-missing last to rank sets containing them last"
            )
        ctx.note(f"size: {where} {allowed(missing, 12)}: sets containing them rank last")
        fill = -np.inf
    return Objective((Additive(np.array([fill if s is None else s for s in sizes])),))


def _diversity(space: str) -> Builder:
    def build(ctx: Context, k: int, strict: bool) -> Objective:
        name = "l2v-custom" if space == "custom" else f"l2v-{space}"
        if space == "embedding":
            name = "embedding"
        return Objective((PairSum(ctx.distances(space, list(ctx.pool), name, strict)),))

    return build


def _script(ctx: Context, k: int, strict: bool) -> Objective:
    registry = all_languages()
    scripts = [registry[code].script for code in ctx.pool]
    labels = {script: i for i, script in enumerate(sorted(set(scripts)))}
    return Objective((DistinctCount(np.array([labels[s] for s in scripts])),))


def _coverage(ctx: Context, k: int, strict: bool) -> Objective:
    member, weights, size = ctx.coverage_items()
    return Objective((Coverage(member, weights, 1.0 / max(size, 1)),))


def _random(ctx: Context, k: int, strict: bool) -> Objective:
    return Objective((SeededRandom(language_keys(list(ctx.pool), ctx.seed)),))


TARGET_L2V_SPACES = ("syntax", "phonology", "inventory", "family", "geo")


def _target(spaces: tuple[str, ...], name: str) -> Builder:
    """closeness(S) + λ · diversity(S), both from the mean cosine distance over ``spaces``."""

    def build(ctx: Context, k: int, strict: bool) -> Objective:
        if not ctx.targets:
            raise MsltError(f"{name}: needs --targets (the languages to transfer to)")
        codes = list(dict.fromkeys([*ctx.pool, *ctx.targets]))
        matrices = [ctx.distances(space, codes, name, strict) for space in spaces]
        distance = np.mean(matrices, axis=0)
        rows = {code: i for i, code in enumerate(codes)}
        pool = [rows[c] for c in ctx.pool]
        targets = [rows[t] for t in ctx.targets]
        similarity = 1.0 - distance[np.ix_(targets, pool)]
        pairs = k * (k - 1) // 2
        weight = ctx.options.diversity_weight / pairs if pairs else 0.0
        return Objective(
            (NearestTarget(similarity), PairSum(distance[np.ix_(pool, pool)], weight=weight))
        )

    return build


@dataclass(frozen=True)
class Criterion:
    """One way to score a set of source languages (higher is better)."""

    name: str
    summary: str
    build: Builder = field(repr=False)
    needs: tuple[str, ...] = ()  # options that must be given: targets, vectors, tokenizer, model


def _criteria() -> dict[str, Criterion]:
    out = [
        Criterion(
            "size", "sum of the pretraining sizes (--size-model): the paper's baseline", _size
        ),
    ]
    for space in L2V_SPACES:
        out.append(
            Criterion(
                f"l2v-{space}",
                f"Σ over pairs of 1 − cosine of lang2vec {space} vectors (diversity)",
                _diversity(space),
            )
        )
    out += [
        Criterion(
            "l2v-custom",
            "Σ over pairs of 1 − cosine of --vectors",
            _diversity("custom"),
            ("vectors",),
        ),
        Criterion("script", "number of distinct writing systems", _script),
        Criterion(
            "coverage", "share of the pool's token types the set has", _coverage, ("tokenizer",)
        ),
        Criterion(
            "embedding",
            "Σ over pairs of 1 − cosine of mean sentence embeddings (--model)",
            _diversity("embedding"),
            ("model",),
        ),
        Criterion("random", "a seeded random number per set (--seed): the baseline", _random),
        Criterion(
            "target-l2v",
            "closeness to --targets + λ·diversity, lang2vec syntax+phonology+inventory+family+geo",
            _target(TARGET_L2V_SPACES, "target-l2v"),
            ("targets",),
        ),
    ]
    for space in L2V_SPACES:
        out.append(
            Criterion(
                f"target-l2v-{space}",
                f"closeness to --targets + λ·diversity, lang2vec {space}",
                _target((space,), f"target-l2v-{space}"),
                ("targets",),
            )
        )
    out += [
        Criterion(
            "target-l2v-custom",
            "closeness to --targets + λ·diversity, --vectors",
            _target(("custom",), "target-l2v-custom"),
            ("targets", "vectors"),
        ),
        Criterion(
            "target-embedding",
            "closeness to --targets + λ·diversity, mean sentence embeddings",
            _target(("embedding",), "target-embedding"),
            ("targets", "model"),
        ),
    ]
    return {criterion.name: criterion for criterion in out}


CRITERIA: dict[str, Criterion] = _criteria()
"""Every criterion by name, in the order tables show them."""

NEED_OPTIONS = {
    "targets": "--targets",
    "vectors": "--vectors",
    "tokenizer": "--tokenizer",
    "model": "--model",
}


def get_criterion(name: str) -> Criterion:
    """The criterion called ``name``, or a one-line error listing them all."""
    try:
        return CRITERIA[name]
    except KeyError:
        raise MsltError(
            f"--criterion: unknown criterion {name!r}; allowed: {allowed(CRITERIA)}"
        ) from None


def missing_needs(criterion: Criterion, ctx: Context) -> list[str]:
    """The options ``criterion`` needs that ``ctx`` does not have."""
    have = {
        "targets": bool(ctx.targets),
        "vectors": ctx.options.vectors is not None,
        "tokenizer": ctx.options.tokenizer is not None,
        "model": ctx.options.model is not None,
    }
    return [NEED_OPTIONS[need] for need in criterion.needs if not have[need]]


def available_criteria(ctx: Context) -> list[str]:
    """The criteria that the given options allow computing, in table order."""
    return [name for name, criterion in CRITERIA.items() if not missing_needs(criterion, ctx)]


def size_unit(options: SelectionOptions) -> str:
    """What the size column counts, for a table footnote."""
    corpus = SIZE_MODELS[options.size_model]
    return f"sum of {corpus} sizes in {SIZE_UNITS[corpus]} (--size-model {options.size_model})"
