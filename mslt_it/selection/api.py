"""The library calls behind ``mslt-it select``: rank source sets, and test criteria on results.

:func:`select_sources` returns the best sets of source languages under one criterion, each with
its score under every criterion the options allow, so a recipe (or a reader) can see why a set
ranks where it does. :func:`evaluate_criteria` takes measured scores of many sets and says how well
each criterion would have chosen among them: the rank of its own top pick, and the Spearman
correlation between criterion and result (the paper's "rank out of 35" table, for any task).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it.arguments import (
    codes_argument,
    expect,
    flag_argument,
    given,
    int_argument,
    path_argument,
    sequence_argument,
)
from mslt_it.errors import MsltError, allowed, clipped
from mslt_it.files import csv_table
from mslt_it.selection.context import check_sizes, criterion_scores, make_context
from mslt_it.selection.criteria import (
    CRITERIA,
    Context,
    SelectionOptions,
    available_criteria,
    get_criterion,
    missing_needs,
    with_named_models,
)
from mslt_it.selection.learning import (
    SSLT_MEASURED,
    PerTargetTerm,
    PredictedScores,
    SingleSourceScores,
    check_learned_size,
    check_predictor_k,
    options_of,
)
from mslt_it.selection.measured import finite_or_none, parse_score, parse_sources
from mslt_it.selection.objective import Objective
from mslt_it.selection.predictor import (
    TransferPredictor,
    load_predictor,
    results_changed,
    validation_note,
)
from mslt_it.selection.search import best_sets, parse_k
from mslt_it.tasks import Task, check_languages, get_task
from mslt_it.yamlfiles import read_text_file


@dataclass(frozen=True)
class RankedSet:
    """One source set, its rank among the sets of its size, and its scores."""

    sources: tuple[str, ...]  # alphabetical
    k: int
    rank: int  # 1 = best under `criterion`
    criterion: str
    score: float | None  # under `criterion`; None where undefined (such sets rank last)
    scores: dict[str, float | None]  # under every criterion computed, `criterion` included
    drivers: tuple[tuple[str, float], ...] = ()  # learned: the features moving its prediction

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``mslt-it select --json`` prints and recipes read."""
        data = {
            "sources": list(self.sources),
            "k": self.k,
            "rank": self.rank,
            "criterion": self.criterion,
            "score": self.score,
            "scores": dict(self.scores),
        }
        if self.drivers:
            data["drivers"] = [[name, value] for name, value in self.drivers]
        return data


@dataclass(frozen=True)
class SearchInfo:
    """How the sets of one size were searched."""

    k: int
    total: int  # candidate sets
    scored: int  # sets whose score was computed
    method: str  # exhaustive or pruned
    ties_beyond: bool = False  # the last set shown ties with a set the table leaves out


@dataclass(frozen=True)
class SelectionResult:
    """Everything :func:`run_selection` found, for tables and manifests."""

    task: str
    criterion: str
    pool: tuple[str, ...]
    include: tuple[str, ...]
    targets: tuple[str, ...]
    sets: list[RankedSet]
    columns: list[str]  # criteria in `scores`, the ranking one first
    searches: list[SearchInfo]
    notes: list[str] = field(default_factory=list)
    options: SelectionOptions | None = None  # as used: a predictor's replace the defaults
    measured: frozenset[tuple[str, ...]] = frozenset()  # the sets a predictor was fitted on


LEARNED = "learned"
"""The criterion of a fitted transfer predictor (``--criterion learned --predictor FILE``)."""
FROM_PREDICTOR = {LEARNED: PredictedScores, SSLT_MEASURED: SingleSourceScores}
"""Criteria read from a predictor file: its model, or the single-source runs it keeps."""


def _predictor(criterion: str, options: SelectionOptions | None) -> TransferPredictor | None:
    """The predictor file a criterion reads (None for the heuristics, which refuse one: a
    recipe's select entry comes here, not through the command line's checks)."""
    if criterion not in FROM_PREDICTOR:
        if options is not None and options.predictor is not None:
            raise MsltError(
                f"--predictor: read only by --criterion learned or sslt-measured, not by "
                f"{clipped(criterion, 40)}"
            )
        return None
    if options is None or options.predictor is None:
        raise MsltError(
            f"--criterion {criterion}: needs --predictor FILE (from select --fit --save)"
        )
    if options.vectors is not None:  # a recipe's select: entry comes here, not through the CLI
        raise MsltError(VECTORS_WITH_PREDICTOR)
    return load_predictor(options.predictor)


VECTORS_WITH_PREDICTOR = (
    "--vectors: not with a predictor (its features are lang2vec's, and a file of vectors would "
    "change what they mean)"
)


def _beside(
    learned: PerTargetTerm | None, criterion: str, ctx: Context, ks: Sequence[int]
) -> dict[str, Any]:
    """The predictor file's other criterion, shown next to the one ranked by (``sslt-measured``
    beside ``learned`` where the file keeps single-source runs; ``learned`` beside
    ``sslt-measured`` for sets of the size it was fitted on: the runs of one source rank sets
    of any size, the model only its own)."""
    if learned is None:
        return {}
    predictor = learned.predictor
    if criterion == SSLT_MEASURED:
        return {LEARNED: PredictedScores(predictor, ctx)} if list(ks) == [predictor.k] else {}
    if not predictor.singles:
        return {}
    return {SSLT_MEASURED: SingleSourceScores(predictor, ctx, complete=False)}


def _chosen(criterion: str, ctx: Context) -> str:
    if criterion in FROM_PREDICTOR:
        return criterion
    needs = missing_needs(get_criterion(criterion), ctx)
    if needs:
        raise MsltError(f"--criterion {criterion}: needs {' and '.join(needs)}")
    return criterion


def run_selection(
    task: str | Task,
    pool: Sequence[str] | None = None,
    k: int | str | Sequence[int] | None = 3,
    criterion: str = "l2v-syntax",
    *,
    targets: Sequence[str] | None = None,
    include: Sequence[str] = (),
    top: int = 1,
    seed: int = 0,
    options: SelectionOptions | None = None,
    targets_as_sources: bool = False,
    on_size: Callable[[SelectionResult], None] | None = None,
) -> SelectionResult:
    """The ``top`` best sets of each size in ``k`` by ``criterion``, scored by every criterion.

    Targets are not offered as sources unless ``targets_as_sources`` (:func:`make_context`).
    ``on_size`` receives each size's result as soon as it is found: a sweep's larger sizes can
    take hours on a large pool, and a user who stops it keeps the sizes already shown.
    ``k=None`` is 3, or the predictor's set size with ``criterion="learned"`` (or
    ``"sslt-measured"``, the predictor file's single-source runs, which rank sets of any size).
    """
    k, top, seed = check_arguments(
        task, pool, k, targets, include, top, seed, options, targets_as_sources
    )
    options = with_named_models(options)
    if criterion not in FROM_PREDICTOR and criterion not in CRITERIA:
        raise MsltError(
            f"--criterion: unknown criterion {clipped(criterion, 40)}; allowed: "
            f"{allowed([*CRITERIA, *FROM_PREDICTOR])}"
        )
    predictor = _predictor(criterion, options)
    if predictor is not None:
        options = options_of(predictor, options or SelectionOptions())
        if criterion == SSLT_MEASURED and pool is None and predictor.singles:
            pool = sorted(predictor.singles)  # the languages it has runs of (none: said below)
    ctx = make_context(
        task,
        pool,
        targets=targets,
        include=include,
        seed=seed,
        options=options,
        targets_as_sources=targets_as_sources,
    )
    _chosen(criterion, ctx)
    if top < 1:
        raise MsltError(f"--top: must be >= 1, got {top}")
    learned = FROM_PREDICTOR[criterion](predictor, ctx) if predictor is not None else None
    ks = parse_k(k if k is not None else predictor.k if predictor is not None else 3)
    if criterion == LEARNED:
        check_predictor_k(predictor, ks, k)
    forced = len(set(include))
    check_sizes(ks, ctx, forced)
    beside = _beside(learned, criterion, ctx, ks)
    columns = [criterion, *beside] + [c for c in available_criteria(ctx) if c != criterion]
    sets: list[RankedSet] = []
    searches: list[SearchInfo] = []
    changed = results_changed(predictor) if predictor else None
    fitted = validation_note(predictor) if predictor and criterion == LEARNED else None

    def result(found: list[RankedSet], infos: list[SearchInfo]) -> SelectionResult:
        """The sets found so far; the notes as they stand (building criteria adds some)."""
        return SelectionResult(
            ctx.task.name,
            criterion,
            tuple(sorted(ctx.pool)),
            tuple(sorted(set(include))),
            ctx.targets,
            found,
            columns,
            infos,
            [*ctx.notes, *filter(None, [fitted, changed])],
            ctx.options,
            _fitted_on(predictor),
        )

    for size in ks:
        method = ctx.options.search
        if learned is not None:
            check_learned_size(len(ctx.pool), size, forced, f"--criterion {criterion}")
            objective, method = Objective((learned,)), "exhaustive"
        else:
            objective = CRITERIA[criterion].build(ctx, size, True)
        # one set more than shown: whether the last shown one ties with the sets left out
        found = best_sets(objective, len(ctx.pool), size, top + 1, fixed=forced, method=method)
        beyond = found.scores[top : top + 1]
        ties_beyond = bool(
            len(beyond) and np.isfinite(beyond[0]) and beyond[0] == found.scores[top - 1]
        )
        found = replace(found, combos=found.combos[:top], scores=found.scores[:top])
        if not np.isfinite(np.asarray(found.scores, float)).any():
            raise MsltError(no_score(criterion, size, ctx, learned is not None))
        searches.append(SearchInfo(size, found.total, found.scored, found.method, ties_beyond))
        table = {criterion: found.scores}
        for name in columns[1:]:
            term = beside.get(name) or CRITERIA[name].build(ctx, size, False)
            table[name] = term.scores(found.combos)
        for rank, row in enumerate(found.combos):
            sources = tuple(sorted(ctx.pool[i] for i in row))
            scores = {name: finite_or_none(values[rank]) for name, values in table.items()}
            drivers = tuple(learned.drivers(row)) if learned is not None else ()
            sets.append(
                RankedSet(sources, size, rank + 1, criterion, scores[criterion], scores, drivers)
            )
        if on_size is not None:
            on_size(result([s for s in sets if s.k == size], searches[-1:]))
    return result(sets, searches)


def _fitted_on(predictor: TransferPredictor | None) -> frozenset[tuple[str, ...]]:
    """The sets a predictor's file measured: a user growing a grid runs the others next."""
    if predictor is None:
        return frozenset()
    return frozenset(tuple(sorted(s.split("+"))) for s in predictor.trained_on.get("sets", []))


def no_score(criterion: str, size: int, ctx: Context, learned: bool) -> str:
    """Why no set of ``size`` gets a score under ``criterion``: the table ranked such sets
    alphabetically under "n/a", and a recipe ran the first as the criterion's pick (``size``
    with every language's size unknown and ``--size-missing last``). A pick the criterion gave
    no score is no pick."""
    if learned:
        return (
            f"--criterion {criterion}: no set of {size} gets a score; a set is scored on the "
            f"targets outside it, and every set holds all of {','.join(ctx.targets)} (give "
            "--targets outside the sets)"
        )
    why = "".join(f" ({note})" for note in ctx.notes if note.startswith(f"{criterion}:"))
    return (
        f"--criterion {criterion}: no set of {size} from the pool gets a score{why}; an order "
        "of sets it cannot score is no ranking: choose another criterion or pool"
    )


def check_arguments(
    task: object,
    pool: object,
    k: object,
    targets: object,
    include: object,
    top: object,
    seed: object,
    options: object,
    targets_as_sources: object,
) -> tuple[Any, int, int]:
    """A selection's arguments of the types it reads (a notebook's call, not the CLI's): a
    string where a list of codes belongs was read one character at a time (``"ar,de"``:
    ``--pool: unknown language code 'a'``), a number as the task failed deep inside. Returns
    ``k``, ``top`` and ``seed`` with numpy's integers made ints."""
    expect(task, (str, Task), "task", "a task name such as 'xnli' (or a mslt_it.tasks.Task)")
    for name, codes in (("pool", pool), ("targets", targets), ("include", include)):
        if codes is not None:
            codes_argument(codes, name)
    if isinstance(k, numbers.Integral) and not isinstance(k, str):
        k = int_argument(k, "k")
    elif k is not None:
        sizes = expect(k, (str, list, tuple), "k", "a set size (3), sizes ([2, 4]) or '1-3'")
        if isinstance(sizes, list | tuple):
            k = [int_argument(size, f"k.{number}") for number, size in enumerate(sizes)]
    top = int_argument(top, "top")
    seed = int_argument(seed, "seed")
    if options is not None:
        expect(options, SelectionOptions, "options", "a mslt_it.selection.SelectionOptions")
    flag_argument(targets_as_sources, "targets_as_sources")
    return k, top, seed


def select_sources(
    task: str | Task,
    pool: Sequence[str] | None = None,
    k: int | str | Sequence[int] = 3,
    criterion: str = "l2v-syntax",
    *,
    targets: Sequence[str] | None = None,
    include: Sequence[str] = (),
    top: int = 1,
    seed: int = 0,
    options: SelectionOptions | None = None,
    targets_as_sources: bool = False,
) -> list[RankedSet]:
    """The best source sets under ``criterion`` (best first within each size).

    Example: ``select_sources("xnli", ["ar", "de", "en", "es", "fr", "ru", "zh"], 3,
    "l2v-syntax", top=5)``. See :class:`SelectionOptions` for the criteria's settings; targets
    are left out of the pool unless ``targets_as_sources``.
    """
    result = run_selection(
        task,
        pool,
        k,
        criterion,
        targets=targets,
        include=include,
        top=top,
        seed=seed,
        options=options,
        targets_as_sources=targets_as_sources,
    )
    return result.sets


# --------------------------------------------------------------------------------------------
# Evaluating criteria against measured results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CriterionEvaluation:
    """How one criterion would have chosen among sets whose results are known."""

    criterion: str
    top_pick: tuple[str, ...] | None  # the listed set the criterion scores highest
    top_pick_result: float | None  # its measured score
    rank: int | None  # its rank by measured score: 1 + the sets that did strictly better
    tied: int  # listed sets sharing the top criterion score (the pick among them is alphabetical)
    out_of: int  # sets listed
    scored: int  # sets the criterion could score
    spearman: float | None  # criterion score vs measured score, over the scored sets

    def to_dict(self) -> dict[str, Any]:
        return {
            "criterion": self.criterion,
            "top_pick": list(self.top_pick) if self.top_pick else None,
            "top_pick_result": self.top_pick_result,
            "rank": self.rank,
            "tied": self.tied,
            "out_of": self.out_of,
            "scored": self.scored,
            "spearman": self.spearman,
        }


def load_results_csv(
    path: str | Path, task: str | Task | None = None
) -> list[tuple[list[str], float]]:
    """Rows ``sources,score`` of a results file (other columns are ignored).

    With ``task``, every language must be one of the task's and every set of one size: the
    criteria compare sets of one size (a sum over four languages beats one over three).
    """
    path = path_argument(path, "--evaluate")
    if task is not None:
        expect(task, (str, Task), "task", "a task name such as 'xnli' (or a mslt_it.tasks.Task)")
    if not path.exists() and not path.is_symlink():
        raise MsltError(f"--evaluate: no such file {str(path)!r}")
    where = f"--evaluate: {path}"
    text = read_text_file(path, "--evaluate")  # a folder, a FIFO, a device: named with the path
    columns, records = csv_table(text, where)
    if "sources" not in columns or "score" not in columns:
        raise MsltError(
            f"--evaluate: {path} needs columns 'sources' and 'score', found "
            f"{allowed(columns) if columns else 'none'}"
        )
    if isinstance(task, str):  # looked up once: a look-up checks the definitions' files
        task = get_task(task)
    results = []
    seen_on: dict[tuple[str, ...], int] = {}
    for line, row in records:
        key = parse_sources(row.get("sources") or "", f"{where}:{line}")  # sorted
        sources = list(key)
        if not sources:
            raise MsltError(f"--evaluate: {path}:{line}: sources is empty")
        if task is not None:
            check_languages(task, sources, f"{where}:{line}")
        if key in seen_on:
            raise MsltError(
                f"{where}:{line}: set {'+'.join(key)} is also on line {seen_on[key]}; "
                "--evaluate takes one score per set (average repeated runs; a score per target "
                "language is what --fit reads)"
            )
        seen_on[key] = line
        results.append((sources, parse_score(row.get("score"), f"--evaluate: {path}:{line}")))
    if len(results) < 2:  # said here with the file; evaluate_criteria says it without one
        raise MsltError(
            f"{where}: holds {len(results)} measured set{'' if len(results) == 1 else 's'}; "
            "criteria are compared on at least 2"
        )
    sizes = sorted({len(sources) for sources, _ in results})
    if task is not None and len(sizes) > 1:
        raise MsltError(
            f"{where}: sets of {' and '.join(map(str, sizes))} languages; the criteria compare "
            "sets of one size, so give a file of one size"
        )
    return results


def _results_argument(results: object) -> list[tuple[list[str], float]]:
    """``(sources, score)`` pairs as :func:`evaluate_criteria` reads them: sources a list of
    codes (``"ar,de"`` was read one character at a time), the score a finite number."""
    items = sequence_argument(results, "results", "a list of (sources, score) pairs")
    checked = []
    for number, item in enumerate(items):
        where = f"results.{number}"
        pair = sequence_argument(item, where, "a (sources, score) pair")
        if len(pair) != 2:
            raise MsltError(f"{where}: {len(pair)} values; expected a (sources, score) pair")
        sources = codes_argument(pair[0], f"{where}.sources")
        score = expect(pair[1], numbers.Real, f"{where}.score", "a number")
        if not np.isfinite(float(score)):
            raise MsltError(f"{where}.score: {score!r}; allowed: a finite number")
        checked.append((sources, float(score)))
    return checked


def _result_sets(results: Sequence[tuple[Sequence[str], float]]) -> list[tuple[str, ...]]:
    if len(results) < 2:
        raise MsltError(f"--evaluate: need at least 2 measured sets, got {len(results)}")
    sets: list[tuple[str, ...]] = []
    for sources, _ in results:
        key = tuple(sorted(sources))
        if len(set(key)) != len(key):
            raise MsltError(f"--evaluate: set {'+'.join(sources)} lists a language twice")
        if key in sets:
            raise MsltError(
                f"--evaluate: set {'+'.join(key)} appears twice; average repeated runs first"
            )
        sets.append(key)
    return sets


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if len(x) < 3:  # two sets are in one order or the other: ρ is ±1 by construction
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant criterion: correlation undefined
        value = spearmanr(x, y).statistic
    return finite_or_none(float(value))


def evaluate_criteria(
    results: Sequence[tuple[Sequence[str], float]],
    task: str | Task,
    criteria: Sequence[str] | None = None,
    *,
    targets: Sequence[str] | None = None,
    seed: int = 0,
    options: SelectionOptions | None = None,
    baselines: Mapping[str, Sequence[float]] | None = None,
) -> list[CriterionEvaluation]:
    """For each criterion: the measured rank of its top pick among ``results``, and Spearman ρ.

    ``results`` are ``(sources, measured score)`` pairs, higher = better. A criterion's top pick is
    the listed set it scores highest (ties: alphabetically first, never by the measured score);
    its rank is 1 + the number of listed sets that measured strictly better. Criteria default to
    every one the options allow; sets a criterion cannot score are left out of its pick and ρ
    (``size`` with ``size_missing="last"`` ranks them last instead, as ``select`` does), and a ρ
    over fewer than 3 sets is None.
    ``baselines`` are rankings that are not criteria (one score per result, NaN where none,
    such as ``sslt-measured`` from the runs of one source), scored alike after them.
    """
    results = _results_argument(results)
    expect(task, (str, Task), "task", "a task name such as 'xnli' (or a mslt_it.tasks.Task)")
    if criteria is not None:
        if isinstance(criteria, str):  # read one letter at a time: "unknown criterion 's'"
            raise MsltError(
                f"criteria: got {given(criteria)}; expected a list, such as {[criteria]!r}"
            )
        for number, name in enumerate(sequence_argument(criteria, "criteria", "a list of names")):
            expect(name, str, f"criteria.{number}", "a criterion's name such as 'size'")
    if targets is not None:
        targets = codes_argument(targets, "targets")
    seed = int_argument(seed, "seed")
    if options is not None:
        expect(options, SelectionOptions, "options", "a mslt_it.selection.SelectionOptions")
    if baselines is not None:
        expect(baselines, Mapping, "baselines", "a mapping of name -> one score per result")
    options = with_named_models(options)
    sets = _result_sets(results)
    measured = np.array([float(score) for _, score in results])
    languages = sorted({code for s in sets for code in s})
    ctx = make_context(
        task, languages, targets=targets, seed=seed, options=options, targets_as_sources=True
    )  # measured sets are what they are
    names = list(criteria) if criteria is not None else available_criteria(ctx)
    for name in names:
        _chosen(name, ctx)
    rankings = [(name, criterion_scores(name, ctx, sets)) for name in names]
    if ctx.options.size_missing == "last":  # as select ranks them: below every sized set
        rankings = [
            (name, np.where(np.isnan(values), -np.inf, values) if name == "size" else values)
            for name, values in rankings
        ]
    for name, values in (baselines or {}).items():
        if len(values) != len(sets):
            raise MsltError(f"baseline {name}: {len(values)} scores for {len(sets)} sets (a bug)")
        rankings.append((name, np.asarray(values, dtype=float)))
    return [_evaluation(name, scores, sets, measured) for name, scores in rankings]


def _evaluation(
    name: str, scores: np.ndarray, sets: list[tuple[str, ...]], measured: np.ndarray
) -> CriterionEvaluation:
    defined = np.flatnonzero(~np.isnan(scores))
    if not len(defined):
        return CriterionEvaluation(name, None, None, None, 0, len(sets), 0, None)
    best = scores[defined].max()
    tied = [i for i in defined if scores[i] == best]
    pick = min(tied, key=lambda i: sets[i])
    rank = 1 + int(np.sum(measured > measured[pick]))
    rho = _spearman(scores[defined], measured[defined])
    return CriterionEvaluation(
        name, sets[pick], float(measured[pick]), rank, len(tied), len(sets), len(defined), rho
    )


def evaluate_criteria_markdown(
    results: Sequence[tuple[Sequence[str], float]],
    task: str | Task,
    criteria: Sequence[str] | None = None,
    *,
    targets: Sequence[str] | None = None,
    seed: int = 0,
    options: SelectionOptions | None = None,
    baselines: Mapping[str, Sequence[float]] | None = None,
) -> str:
    """:func:`evaluate_criteria` as a Markdown table, for reports."""
    table = evaluate_criteria(
        results, task, criteria, targets=targets, seed=seed, options=options, baselines=baselines
    )
    lines = [
        "| criterion | top pick | its result | rank | Spearman ρ | sets scored |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in table:
        pick = "+".join(row.top_pick) if row.top_pick else "n/a"
        if row.tied > 1:
            pick += f" (1st of {row.tied} tied)"
        result = "n/a" if row.top_pick_result is None else f"{row.top_pick_result:.4g}"
        rank = "n/a" if row.rank is None else f"{row.rank} of {row.out_of}"
        rho = "n/a" if row.spearman is None else f"{row.spearman:+.3f}"
        lines.append(f"| {row.criterion} | {pick} | {result} | {rank} | {rho} | {row.scored} |")
    best_sources, best_score = max(results, key=lambda item: item[1])
    lines += [
        "",
        f"Best measured set: {'+'.join(sorted(best_sources))} ({best_score:.4g}). Rank 1 = best; "
        "a criterion's top pick is the measured set it scores highest (ties: alphabetically "
        "first), ranked by measured result; ρ is Spearman's between criterion and result.",
    ]
    return "\n".join(lines) + "\n"
