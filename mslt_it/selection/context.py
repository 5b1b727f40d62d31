"""The languages a selection works on, checked, and the criteria's scores of given sets.

:func:`make_context` validates the pool, forced and target languages once for every caller
(ranking, scoring criteria against results, fitting a predictor); :func:`criterion_scores`
scores sets that were chosen elsewhere (measured ones) under any criterion.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mslt_it.errors import MsltError, allowed
from mslt_it.languages import get_language
from mslt_it.selection.criteria import CRITERIA, Context, SelectionOptions
from mslt_it.tasks import Task, check_languages, get_task


def _codes(codes: Sequence[str], option: str, task: Task | None = None) -> list[str]:
    """Known, distinct codes (and, given a task, codes the task has data for)."""
    codes = list(codes)
    for code in codes:
        try:
            get_language(code)
        except MsltError as error:
            raise MsltError(f"{option}: {error}") from None
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise MsltError(f"{option}: language {duplicates[0]!r} is listed twice")
    if task is not None:
        check_languages(task, codes, option)
    return codes


def make_context(
    task: str | Task,
    pool: Sequence[str] | None,
    *,
    targets: Sequence[str] | None = None,
    include: Sequence[str] = (),
    seed: int = 0,
    options: SelectionOptions | None = None,
    targets_as_sources: bool = False,
) -> Context:
    """Validate the languages and set up the criteria's context.

    The pool defaults to every language of the task; ``include`` languages join it if absent.
    Internally the pool is ordered forced-first, then alphabetically: that order breaks ties.
    Target languages are left out of the pool unless ``targets_as_sources``: zero-shot transfer
    measures languages the model was not trained on, so a source set holding a target would
    answer another question.
    """
    task = get_task(task) if isinstance(task, str) else task
    options = options or SelectionOptions()
    pool_codes = _codes(task.languages if pool is None else pool, "--pool", task)
    forced = _codes(include, "--include", task)
    if targets and not targets_as_sources:
        clash = sorted(set(forced) & set(targets))
        if clash:
            raise MsltError(
                f"--include: {clash[0]} is also a target; pass --targets-as-sources to allow it"
            )
        dropped = [code for code in pool_codes if code in set(targets)]
        pool_codes = [code for code in pool_codes if code not in set(targets)]
    else:
        dropped = []
    if not pool_codes and dropped:
        raise MsltError(
            f"--pool: every language of it ({','.join(dropped)}) is a target, and a target is "
            "not a source; add other languages or pass --targets-as-sources"
        )
    if not pool_codes:
        raise MsltError("--pool: no languages given")
    rest = sorted(set(pool_codes) - set(forced))
    ctx = Context(
        task, (*sorted(forced), *rest), seed=seed, options=options, left_out=tuple(dropped)
    )
    if dropped and pool is not None:  # the user's own list: say what it lost
        ctx.notes.append(
            f"{','.join(dropped)} left out of --pool: a target is not a source "
            "(--targets-as-sources keeps it)"
        )
    ctx.targets = tuple(_targets(targets or (), ctx))
    return ctx


def _targets(targets: Sequence[str], ctx: Context) -> list[str]:
    """Registry codes, or codes the user's ``--vectors`` file has a row for."""
    targets = list(targets)
    duplicates = sorted({t for t in targets if targets.count(t) > 1})
    if duplicates:
        raise MsltError(f"--targets: language {duplicates[0]!r} is listed twice")
    custom = set(ctx.custom.codes) if ctx.custom is not None else set()
    _codes([t for t in targets if t not in custom], "--targets")
    return targets


def criterion_scores(name: str, ctx: Context, sets: list[tuple[str, ...]]) -> np.ndarray:
    """Score of every set (any sizes) under criterion ``name``; NaN where undefined."""
    position = {code: i for i, code in enumerate(ctx.pool)}
    out = np.full(len(sets), np.nan)
    for size in sorted({len(s) for s in sets}):
        rows = [i for i, s in enumerate(sets) if len(s) == size]
        combos = np.array([sorted(position[c] for c in sets[i]) for i in rows], dtype=np.intp)
        out[rows] = CRITERIA[name].build(ctx, size, False).scores(combos)
    return out


def check_sizes(ks: Sequence[int], ctx: Context, forced: int, option: str = "--k") -> None:
    """Set sizes the pool can fill (naming the targets it lost) and ``--include`` fits in;
    ``option`` names where the size came from."""
    n = len(ctx.pool)
    if max(ks) > n:
        left_out = (
            f"; {','.join(ctx.left_out)} left out of it as targets (--targets-as-sources keeps "
            "them)"
            if ctx.left_out
            else ""
        )
        raise MsltError(
            f"{option}: {max(ks)} is larger than the pool ({n} language{'s' if n != 1 else ''}: "
            f"{allowed(sorted(ctx.pool))}){left_out}"
        )
    if min(ks) < forced:
        raise MsltError(f"{option}: {min(ks)} is smaller than the {forced} languages of --include")
