"""Learning which source sets transfer from the runs already made (``select --fit``,
``--criterion learned``, ``--suggest``).

A grid costs one training per set; a user who has measured a dozen sets fits a predictor on them
(:func:`fit_predictor`), reads its held-out skill next to every heuristic's, ranks every set with
it (:class:`PredictedScores`, the ``learned`` criterion) and asks which sets to measure next
(:func:`suggest_sets`): the best predicted, plus the most uncertain across the fold models, so a
grid grows in rounds where it is most worth growing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from math import comb
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it.arguments import codes_argument, expect, int_argument, path_argument
from mslt_it.errors import MsltError, allowed, clipped
from mslt_it.identity import DATA_FILES, model_identity, tree_sha256
from mslt_it.paths import is_data_folder
from mslt_it.selection.context import check_sizes, criterion_scores, make_context
from mslt_it.selection.criteria import (
    Context,
    SelectionOptions,
    available_criteria,
    with_named_models,
)
from mslt_it.selection.features import SINGLES_FEATURES, FeatureBuilder, singles_mean
from mslt_it.selection.measured import MeasuredTransfer, load_measured
from mslt_it.selection.predictor import (
    FEATURE_OPTIONS,
    OBJECTIVES,
    TransferPredictor,
    results_identity,
    train_booster,
)
from mslt_it.selection.search import all_combinations, parse_k
from mslt_it.selection.validation import (
    CV_MODES,
    Split,
    Validation,
    cross_validate,
    set_folds,
    target_folds,
)
from mslt_it.tasks import Task, get_task

MIN_SETS = 6
"""Fewest measured sets to fit on: cross-validation holds out at least 3 at a time, twice."""
MAX_FOLDS = 5
SSLT_MEASURED = "sslt-measured"
"""The baseline the single-source runs give: a set ranked by its sources' mean score alone."""
MAX_LEARNED_SETS = 50_000
"""``--criterion learned`` scores every candidate set; larger searches need a smaller pool."""


def feature_options(options: SelectionOptions) -> dict[str, Any]:
    """The options a predictor's features depend on, as the file keeps them."""
    values = {name: getattr(options, name) for name in FEATURE_OPTIONS}
    return {name: (str(v) if isinstance(v, Path) else v) for name, v in values.items()}


def option_identities(options: dict[str, Any]) -> dict[str, Any]:
    """The content of the options that name files: the tokenizer (its folder's digest, or a
    Hub id and the revision the cache holds) and a folder of coverage text."""
    found: dict[str, Any] = {}
    tokenizer = options.get("tokenizer")
    if tokenizer:
        found["tokenizer"] = model_identity(tokenizer)
    data = options.get("data")
    if is_data_folder(data) and Path(str(data)).expanduser().is_dir():
        found["data"] = {
            "sha256": tree_sha256(Path(str(data)).expanduser(), DATA_FILES, users=True)
        }
    return found


def options_of(predictor: TransferPredictor, base: SelectionOptions) -> SelectionOptions:
    """``base`` with the feature options the predictor was fitted with.

    Its features mean what they meant when it was fitted, so an option given here that differs
    from the predictor's (``--size-model bloom`` for one fitted on CC-100 sizes) is an error,
    not silently replaced: the table would show one thing and the predictor read another. An
    option the user set counts even at its default (``base.given``: ``--size-model xlmr`` for
    one fitted on ROOTS sizes). A tokenizer or text folder is compared by content: the same
    files under another path are the same option, and changed files under the same path are
    not.
    """
    defaults = SelectionOptions()
    chosen = dict(predictor.options)
    for name, fitted in predictor.options.items():
        given = getattr(base, name)
        if name not in base.given and given == getattr(defaults, name):
            continue  # not chosen here: the predictor's value applies
        same_content = name in predictor.identities and predictor.identities[
            name
        ] == option_identities({name: str(given)}).get(name)
        if str(given) != str(fitted) and not same_content:
            flag = "--" + name.replace("_", "-")
            shown = "none" if fitted is None else repr(fitted)
            raise MsltError(
                f"{flag}: {clipped(str(given), 80)} differs from the predictor's {shown:.80}; a "
                "predictor computes its features as when it was fitted (leave it out, or fit "
                "again with it)"
            )
        chosen[name] = str(given) if isinstance(given, Path) else given
    now = option_identities(chosen)
    for name, fitted in predictor.identities.items():
        if isinstance(fitted, dict) and "sha256" in fitted:
            folder = Path(str(chosen.get(name))).expanduser()
            if not folder.is_dir():  # a folder when fitted: gone or moved since
                raise MsltError(
                    f"--{name}: no such folder {clipped(str(folder), 80)} (the predictor was "
                    f"fitted "
                    f"with it); give --{name} where it is now"
                )
        if now.get(name) != fitted:
            raise MsltError(
                f"--{name}: {clipped(str(chosen.get(name)), 80)} does not hold what the "
                f"predictor was "
                "fitted with (its files changed since, or other files are there now); fit it "
                "again"
            )
    return replace(base, **chosen)


def check_predictor_k(predictor: TransferPredictor, sizes: Sequence[int], given: object) -> None:
    """A predictor ranks sets of the size it was fitted on only."""
    if list(sizes) != [predictor.k]:
        raise MsltError(f"--k: the predictor was fitted on sets of {predictor.k}, got {given}")


def heuristic_scores(data: MeasuredTransfer, ctx: Context) -> dict[str, np.ndarray]:
    """Every heuristic's score of each measured row: the set criteria (the same on every target)
    and ``target-l2v`` (closeness to the row's target + diversity)."""
    sets = data.sets
    position = {s: i for i, s in enumerate(sets)}
    rows = [position[row.sources] for row in data.rows]
    out: dict[str, np.ndarray] = {}
    for name in available_criteria(ctx):
        if name.startswith("target-"):
            continue  # scored per target below
        out[name] = criterion_scores(name, ctx, sets)[rows]
    per_target = np.full(len(data.rows), np.nan)
    for target in data.targets:
        local = replace(ctx, targets=(target,))  # shares the loaded vectors
        scores = criterion_scores("target-l2v", local, sets)
        for i, row in enumerate(data.rows):
            if row.target == target:
                per_target[i] = scores[position[row.sources]]
    out["target-l2v"] = per_target
    if data.singles:
        alone = np.array([singles_mean(data.singles, row.sources, row.target) for row in data.rows])
        missing = int(np.isnan(alone).sum())
        if missing:  # a ranking with holes would be scored on the alphabet where it has none
            data.notes.append(
                f"{SSLT_MEASURED} not scored: {missing} of {len(alone)} rows have a source "
                "without a run alone on the target"
            )
        else:
            out[SSLT_MEASURED] = alone
    return out


def hide_singles(features: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """A copy of ``features`` with the single-source columns unknown (NaN)."""
    hidden = features.copy()
    hidden[:, [names.index(name) for name in SINGLES_FEATURES]] = np.nan
    return hidden


@dataclass
class Fitted:
    """What :func:`fit_predictor` returns: the predictor, its validation, the measured rows."""

    predictor: TransferPredictor
    validation: Validation
    measured: MeasuredTransfer  # its notes say what was left out of the file


@dataclass
class Prepared:
    """Measured rows with their features and every heuristic's scores, ready to validate."""

    data: MeasuredTransfer
    ctx: Context
    features: np.ndarray
    names: list[str]
    heuristics: dict[str, np.ndarray]

    def fit(self, indices: Sequence[int], objective: str, seed: int) -> Any:
        """A booster trained on the measured rows at ``indices``.

        With single-source columns, every row is seen twice, once with them hidden: the
        predictor then ranks targets that have no single-source runs (a new language) from the
        other columns, instead of reading their absence as a value it never saw.
        """
        rows = [self.data.rows[i] for i in indices]
        subset = MeasuredTransfer(rows, self.data.path)
        features = self.features[list(indices)]
        if SINGLES_FEATURES[0] in self.names:
            features = np.vstack([features, hide_singles(features, self.names)])
            subset = MeasuredTransfer(rows + rows, self.data.path)
        return train_booster(features, subset, self.names, objective, seed)

    def validate(self, splits: Sequence[Split], objective: str, seed: int, mode: str) -> Validation:
        """The learned ranking and every heuristic on the held-out part of ``splits``.

        A held-out *target* stands for a language nobody has trained towards yet, so there its
        single-source runs are unknown: their columns are hidden (NaN) from the ranking, and the
        ``sslt-measured`` baseline, which is nothing but those runs, is not scored.
        """
        measured = [(row.sources, row.target, row.score) for row in self.data.rows]
        tested = self.features
        heuristics = self.heuristics
        if mode == "targets" and SINGLES_FEATURES[0] in self.names:
            tested = hide_singles(self.features, self.names)
            heuristics = {k: v for k, v in heuristics.items() if k != SSLT_MEASURED}
        return cross_validate(
            measured,
            splits,
            lambda indices: self.fit(indices, objective, seed),
            lambda model, indices: np.asarray(model.predict(tested[indices]), dtype=float),
            heuristics,
            mode=mode,
        )


def prepare(
    path: str | Path,
    task: str | Task,
    *,
    k: int | None = None,
    seed: int = 0,
    options: SelectionOptions | None = None,
) -> Prepared:
    """Read measured results and compute their features and heuristic scores."""
    task = get_task(task) if isinstance(task, str) else task
    options = options or SelectionOptions()
    data = load_measured(path, task.name, list(task.languages), k=k, min_sets=MIN_SETS)
    pool = sorted({c for s in data.sets for c in s})
    ctx = make_context(task, pool, seed=seed, options=options, targets_as_sources=True)
    builder = FeatureBuilder(ctx, tuple(data.languages), data.singles)
    features = builder.rows([(row.sources, row.target) for row in data.rows])
    return Prepared(data, ctx, features, builder.names, heuristic_scores(data, ctx))


def fit_predictor(
    path: str | Path,
    task: str | Task,
    *,
    k: int | None = None,
    objective: str = "regression",
    cv: str = "sets",
    seed: int = 0,
    options: SelectionOptions | None = None,
) -> Fitted:
    """Fit a predictor on the measured results in ``path`` and cross-validate it.

    ``cv="sets"``: grouped K-fold over source sets (never tests on a set it trained on);
    ``cv="targets"``: leave one target language out. The returned predictor is trained on every
    row; the fold models of the ``sets`` validation give ``--suggest`` its uncertainty.
    """
    path = path_argument(path, "path")
    expect(task, (str, Task), "task", "a task name such as 'xnli' (or a mslt_it.tasks.Task)")
    k = int_argument(k, "k") if k is not None else None  # k=True fitted sets of one
    seed = int_argument(seed, "seed")
    if options is not None:
        expect(options, SelectionOptions, "options", "a mslt_it.selection.SelectionOptions")
    if objective not in OBJECTIVES:
        raise MsltError(f"--objective: unknown value {objective!r}; allowed: {allowed(OBJECTIVES)}")
    if cv not in CV_MODES:
        raise MsltError(f"--cv: unknown value {cv!r}; allowed: {allowed(CV_MODES)}")
    options = with_named_models(options) or SelectionOptions()
    prepared = prepare(path, task, k=k, seed=seed, options=options)
    data = prepared.data
    folds = min(MAX_FOLDS, len(data.sets) // 3)
    try:
        set_validation = prepared.validate(
            set_folds(data.sets, folds, seed), objective, seed, "sets"
        )
    except MsltError as error:
        if cv == "sets":
            raise
        raise MsltError(
            f"{error} (--cv targets also needs the held-out sets: their fold models give "
            "--suggest its uncertainty)"
        ) from None
    if cv == "sets":
        validation = set_validation
    else:
        if len(data.targets) < 2:
            raise MsltError(f"--cv targets: {path} has one target language only; use --cv sets")
        splits = target_folds(data.sets, data.targets)
        validation = prepared.validate(splits, objective, seed, "targets")
    predictor = TransferPredictor(
        prepared.ctx.task.name,
        len(data.sets[0]),
        objective,
        prepared.names,
        feature_options(options),
        prepared.fit(range(len(data.rows)), objective, seed),
        set_validation.fold_models,
        {
            "file": str(path),
            **results_identity(path, data.sha256),
            "sets": ["+".join(s) for s in data.sets],
            "targets": data.targets,
            "rows": len(data.rows),
        },
        validation.to_dict(),
        data.singles,
        option_identities(feature_options(options)),
    )
    return Fitted(predictor, validation, data)


# --------------------------------------------------------------------------------------------
# Ranking with a predictor
# --------------------------------------------------------------------------------------------


def check_task(predictor: TransferPredictor, task: str | Task) -> None:
    """A predictor's features and scores belong to the task it was fitted on, and every
    language it names is one of that task's (as ``--fit`` read them from the results)."""
    name = task if isinstance(task, str) else task.name
    if predictor.task != name:
        raise MsltError(
            f"{predictor.where}: fitted on task {predictor.task}, not {name}; fit one on {name}'s "
            "results"
        )
    if not predictor.trained_on["sets"]:
        raise MsltError(f"{predictor.where}: its trained_on.sets is empty; fit it again")
    known = set(get_task(name).languages)
    named = {c for s in predictor.trained_on["sets"] for c in s.split("+")}
    named |= set(predictor.trained_on["targets"]) | set(predictor.singles)
    named |= {t for scores in predictor.singles.values() for t in scores}
    strangers = sorted(named - known)
    if strangers:
        raise MsltError(
            f"{predictor.where}: it names {clipped(strangers[0], 40)}, not a language of {name}; "
            "fit it again"
        )


def check_predictor(predictor: TransferPredictor, ctx: Context, criterion: str = "learned") -> None:
    """The predictor was fitted for this task, and the targets are given."""
    check_task(predictor, ctx.task.name)
    if not ctx.targets:
        raise MsltError(f"--criterion {criterion}: needs --targets (the languages to transfer to)")


class PerTargetTerm:
    """An objective term read from a predictor file, scoring a set on each target it does not
    contain. It has no bound to prune with, so sets are enumerated; :data:`MAX_LEARNED_SETS`
    caps them."""

    criterion = "learned"

    def __init__(self, predictor: TransferPredictor, ctx: Context) -> None:
        check_predictor(predictor, ctx, self.criterion)
        self.predictor = predictor
        self.ctx = ctx

    def pairs(self, sources: Sequence[str]) -> list[tuple[tuple[str, ...], str]]:
        key = tuple(sorted(sources))
        return [(key, t) for t in self.ctx.targets if t not in key]

    def child_bounds(self, prefix: np.ndarray, start: int, r: int) -> np.ndarray:
        return np.full(len(self.ctx.pool) - r + 1 - start, np.inf)


class PredictedScores(PerTargetTerm):
    """The ``learned`` criterion: a set's mean predicted score over the targets it does not
    contain."""

    def __init__(self, predictor: TransferPredictor, ctx: Context) -> None:
        super().__init__(predictor, ctx)
        self.builder = FeatureBuilder(ctx, (*ctx.pool, *ctx.targets), predictor.singles)

    def features(self, combos: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """Rows of every (set, target) pair and, per set, how many rows it has."""
        pairs: list[tuple[tuple[str, ...], str]] = []
        counts = []
        for combo in combos:
            own = self.pairs([self.ctx.pool[i] for i in combo])
            pairs += own
            counts.append(len(own))
        if not pairs:
            return np.empty((0, len(self.builder.names))), counts
        return self.builder.rows(pairs), counts

    def scores(self, combos: np.ndarray) -> np.ndarray:
        rows, counts = self.features(combos)
        predicted = self.predictor.predict(rows) if len(rows) else np.empty(0)
        return _set_means(predicted, counts)

    def drivers(self, combo: np.ndarray, top: int = 3) -> list[tuple[str, float]]:
        """The features that move this set's prediction most (mean SHAP over its targets)."""
        rows, counts = self.features(np.asarray([combo]))
        if not counts[0]:
            return []
        values = self.predictor.contributions(rows).mean(axis=0)
        order = np.argsort(-np.abs(values), kind="stable")[:top]
        return [(self.predictor.feature_names[i], float(values[i])) for i in order]


class SingleSourceScores(PerTargetTerm):
    """The ``sslt-measured`` criterion: a set's mean over the targets of its sources' measured
    single-source scores (kept in the predictor file). It needs no fit, only the n runs of one
    source each; on both synthetic grids it ranked sets for one target better than any
    heuristic or fit, but not for several targets averaged (BENCHMARKS.md)."""

    criterion = SSLT_MEASURED

    def __init__(
        self, predictor: TransferPredictor, ctx: Context, *, complete: bool = True
    ) -> None:
        """``complete``: refuse a pool language without a run alone on a target (ranking by it);
        otherwise such sets score NaN there (a column beside ``learned``)."""
        if not predictor.singles:
            raise MsltError(
                f"--criterion {SSLT_MEASURED}: the predictor has no single-source runs; fit it "
                "on results that also hold runs of one source (and --k for the sets' size)"
            )
        super().__init__(predictor, ctx)
        if complete:
            self._check_complete()

    def _check_complete(self) -> None:
        """Every pool language was run alone and scored on every target but its own."""
        singles = self.predictor.singles
        for code in self.ctx.pool:
            for target in self.ctx.targets:
                if target != code and target not in singles.get(code, {}):
                    have = sorted({t for scores in singles.values() for t in scores})
                    raise MsltError(
                        f"--criterion {SSLT_MEASURED}: {code} alone on {target} was not measured; "
                        f"the predictor's single-source runs are of {allowed(sorted(singles))} "
                        f"on {allowed(have)} (choose --pool and --targets among them)"
                    )

    def scores(self, combos: np.ndarray) -> np.ndarray:
        """The mean over the targets outside the set; NaN where a target has no evidence (a
        mean over some targets would compare sets on different languages)."""
        out = np.full(len(combos), np.nan)
        for i, combo in enumerate(combos):
            own = self.pairs([self.ctx.pool[j] for j in combo])
            values = [singles_mean(self.predictor.singles, s, t) for s, t in own]
            if values and not np.isnan(values).any():
                out[i] = float(np.mean(values))
        return out

    def drivers(self, combo: np.ndarray, top: int = 3) -> list[tuple[str, float]]:
        """Each source's mean score alone over the targets the set is scored on (those outside
        it), so that the set's score is the mean of these."""
        sources = [self.ctx.pool[i] for i in combo]
        targets = [t for _, t in self.pairs(sources)]
        out = []
        for code in sorted(sources):
            measured = self.predictor.singles.get(code, {})
            known = [measured[t] for t in targets if t in measured]
            if known:
                out.append((f"{code} alone", float(np.mean(known))))
        return out


def _set_means(values: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    out = np.full(len(counts), np.nan)
    start = 0
    for i, count in enumerate(counts):
        if count:
            out[i] = float(np.mean(values[start : start + count]))
        start += count
    return out


def check_learned_size(n: int, k: int, fixed: int, option: str = "--criterion learned") -> None:
    total = comb(n - fixed, k - fixed)
    if total > MAX_LEARNED_SETS:
        raise MsltError(
            f"{option}: scores every set, and C({n - fixed},{k - fixed}) = {total:,} "
            f"is more than {MAX_LEARNED_SETS:,}; use a smaller --pool or k"
        )


# --------------------------------------------------------------------------------------------
# Which sets to measure next
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    """An unmeasured set worth running: predicted score, spread across fold models, priority."""

    sources: tuple[str, ...]
    k: int
    rank: int
    predicted: float  # mean over the targets, relative to a target's average measured set
    uncertainty: float  # standard deviation of that mean across the cross-validation models
    priority: float  # predicted + uncertainty (an upper confidence bound)
    drivers: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``select --suggest --json`` prints: ``select --json``'s shape, plus its
        uncertainty, so a recipe takes either list alike."""
        return {
            "sources": list(self.sources),
            "k": self.k,
            "rank": self.rank,
            "criterion": "suggest",
            "score": self.priority,
            "scores": {"learned": self.predicted, "uncertainty": self.uncertainty},
            "drivers": [[name, value] for name, value in self.drivers],
        }


def never_run_alone(predictor: TransferPredictor, languages: Sequence[str]) -> list[str]:
    """Languages among ``languages`` without a run of their own in a predictor that keeps such
    runs (none for one that keeps none): one run each is evidence about every set holding them,
    cheaper than any set."""
    expect(predictor, TransferPredictor, "predictor", "a TransferPredictor (load_predictor)")
    languages = codes_argument(languages, "languages")  # "ar,de" was read as its characters
    if not predictor.singles:
        return []
    return sorted({code for code in languages if code not in predictor.singles})


def suggest_sets(
    predictor: TransferPredictor,
    task: str | Task,
    n: int,
    *,
    pool: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
    include: Sequence[str] = (),
    k: int | str | Sequence[int] | None = None,
    seed: int = 0,
    options: SelectionOptions | None = None,
    targets_as_sources: bool = True,
) -> list[Suggestion]:
    """The ``n`` unmeasured sets of the predictor's size with the highest predicted score plus
    uncertainty (the spread of the fold models' predictions).

    The pool defaults to the measured sets' languages, the targets to the measured targets;
    measured sets are the ones the predictor was trained on. ``include`` languages join the
    pool and every suggested set; a set that holds every target has nothing to predict (its
    transfer is not zero-shot anywhere) and is never suggested. ``targets_as_sources=False``
    leaves the targets out of the pool (and refuses one in ``include``), as ``select`` does.
    """
    expect(predictor, TransferPredictor, "predictor", "a TransferPredictor (load_predictor)")
    expect(task, (str, Task), "task", "a task name such as 'xnli' (or a mslt_it.tasks.Task)")
    n = int_argument(n, "n")
    if n < 1:
        raise MsltError(f"--suggest: must be >= 1, got {n}")
    task = get_task(task) if isinstance(task, str) else task
    check_task(predictor, task.name)
    if k is not None:
        check_predictor_k(predictor, parse_k(k), k)
    measured = {tuple(s.split("+")) for s in predictor.trained_on.get("sets", [])}
    pool = list(pool) if pool is not None else sorted({c for s in measured for c in s})
    targets = list(targets) if targets else list(predictor.trained_on.get("targets", []))
    options = options_of(predictor, with_named_models(options) or SelectionOptions())
    ctx = make_context(
        task,
        pool,
        targets=targets,
        include=include,
        seed=seed,
        options=options,
        targets_as_sources=targets_as_sources,
    )
    forced = {ctx.pool.index(code) for code in dict.fromkeys(include)}
    check_sizes([predictor.k], ctx, len(forced), "--suggest: the predictor's set size")
    check_learned_size(len(ctx.pool), predictor.k, 0, "--suggest")
    term = PredictedScores(predictor, ctx)
    combos = all_combinations(len(ctx.pool), predictor.k)
    fresh = [
        c
        for c in combos
        if forced <= set(c.tolist()) and tuple(sorted(ctx.pool[i] for i in c)) not in measured
    ]
    if not fresh:
        with_include = f" with {','.join(include)}" if include else ""
        raise MsltError(
            f"--suggest: every set of {predictor.k}{with_include} from "
            f"{allowed(sorted(ctx.pool))} is measured"
        )
    rows, counts = term.features(np.asarray(fresh))
    folds = predictor.fold_predictions(rows)
    mean = _set_means(predictor.predict(rows), counts)
    spread = np.array([_set_means(f, counts) for f in folds]).std(axis=0)
    priority = mean + spread
    predictable = np.flatnonzero(~np.isnan(priority))
    if not len(predictable):
        raise MsltError(
            f"--suggest: every unmeasured set holds all of the targets "
            f"({','.join(ctx.targets)}); give --targets outside the sets"
        )
    order = predictable[np.argsort(-priority[predictable], kind="stable")][:n]
    return [
        Suggestion(
            tuple(sorted(ctx.pool[i] for i in fresh[j])),
            predictor.k,
            rank + 1,
            float(mean[j]),
            float(spread[j]),
            float(priority[j]),
            tuple(term.drivers(fresh[j])),
        )
        for rank, j in enumerate(order)
    ]
