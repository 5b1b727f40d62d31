"""``mslt-it select``: rank sets of source languages by a criterion, or test criteria on results."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mslt_it.cli.common import (
    SHIPPED_TASKS,
    TasksDir,
    nonempty_path,
    print_whole,
    split_codes,
    stdout_console,
    use_tasks_dirs,
)
from mslt_it.cli.select_learned import (
    PREDICTED,
    drivers_text,
    print_suggestions,
    print_validation,
)
from mslt_it.errors import MsltError, clipped
from mslt_it.named_models import resolve_model_name
from mslt_it.paths import is_data_folder
from mslt_it.terminal import STDERR, styled

if TYPE_CHECKING:
    from mslt_it.selection import CriterionEvaluation, SelectionResult

STDOUT = stdout_console()


def register(app: typer.Typer) -> None:
    app.command("select")(select)


def set_by_user(ctx: typer.Context, names: tuple[str, ...]) -> frozenset[str]:
    """The parameters among ``names`` given on the command line (or by environment), not left
    at their defaults: a default typed on purpose is a choice too."""
    return frozenset(
        name
        for name in names
        if (source := ctx.get_parameter_source(name)) is not None
        and source.name not in ("DEFAULT", "DEFAULT_MAP")
    )


def select(
    ctx: typer.Context,
    task: Annotated[
        str | None, typer.Option(help=f"A task ({SHIPPED_TASKS}) or one of --tasks-dir.")
    ] = None,
    pool: Annotated[
        str | None, typer.Option(help="Candidate languages, e.g. ar,de,en (default: the task's).")
    ] = None,
    k: Annotated[
        str | None,
        typer.Option(
            "--k",
            help="Set size: 3 (the default), a sweep 1-5, or 2,4; with --fit, the size to fit "
            "on (default: the file's only size).",
        ),
    ] = None,
    criterion: Annotated[
        str | None,
        typer.Option(
            help="size, l2v-syntax (the default), l2v-phonology, l2v-inventory, l2v-family, "
            "l2v-geo, l2v-custom, script, coverage, embedding, random, target-l2v, "
            "target-l2v-<set>, target-l2v-custom, target-embedding, learned (--predictor), "
            "sslt-measured (--predictor fitted with single-source runs)."
        ),
    ] = None,
    top: Annotated[int, typer.Option(help="How many sets to show per size.")] = 5,
    targets: Annotated[
        str | None,
        typer.Option(
            help="Target languages, e.g. bg,sw,ur: for the target-* criteria, learned, "
            "sslt-measured and --suggest; any language mslt-it knows."
        ),
    ] = None,
    include: Annotated[
        str | None, typer.Option(help="Languages forced into every set (they join the pool).")
    ] = None,
    targets_as_sources: Annotated[
        bool,
        typer.Option(
            help="Offer the --targets languages as sources too (by default they are left out "
            "of the pool: zero-shot transfer is measured on languages not trained on)."
        ),
    ] = False,
    seed: Annotated[
        int, typer.Option(help="Seed of the random criterion.", min=0, max=2**32 - 1)
    ] = 0,
    size_model: Annotated[
        str, typer.Option(help="size: xlmr (CC-100), bloom (ROOTS) or mt5 (mC4).")
    ] = "xlmr",
    size_missing: Annotated[
        str,
        typer.Option(help="size, language without a number: error, or last (rank its sets last)."),
    ] = "error",
    l2v_variant: Annotated[
        str, typer.Option(help="lang2vec syntax/phonology/inventory: knn or average.")
    ] = "knn",
    vectors: Annotated[
        Path | None,
        typer.Option(
            help="CSV code,feature…: defines l2v-custom; overrides a lang2vec set whose "
            "feature names it has.",
            parser=nonempty_path,
        ),
    ] = None,
    diversity_weight: Annotated[
        float, typer.Option(help="λ in target-*: closeness + λ · mean pairwise distance.")
    ] = 1.0,
    tokenizer: Annotated[
        str | None,
        typer.Option(help="coverage: tokenizer (Hub id, folder or mslt-it:tiny-world…)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="embedding: model (Hub id, folder or mslt-it:tiny-world…)."),
    ] = None,
    data: Annotated[
        str, typer.Option(help="coverage/embedding text: hub, synthetic or a folder.")
    ] = "synthetic",
    split: Annotated[str, typer.Option(help="Split the text is sampled from.")] = "train",
    sample: Annotated[int, typer.Option(help="Rows per language for coverage/embedding.")] = 200,
    search: Annotated[
        str, typer.Option(help="auto, exhaustive, or pruned (exact branch and bound).")
    ] = "auto",
    evaluate: Annotated[
        Path | None,
        typer.Option(
            help="CSV of measured results (sources,score): rank each criterion's pick.",
            parser=nonempty_path,
        ),
    ] = None,
    fit: Annotated[
        Path | None,
        typer.Option(
            help="Measured results to learn from: a report's scores.csv, or a CSV of sources, "
            "lang (or target), score. Prints held-out skill next to every heuristic's.",
            parser=nonempty_path,
        ),
    ] = None,
    save: Annotated[
        str | None, typer.Option(help="With --fit: write the predictor to this file.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="With --save: replace a predictor file mslt-it wrote.")
    ] = False,
    objective: Annotated[
        str,
        typer.Option(
            help="With --fit: regression (scores around each target's mean) or "
            "lambdarank (LightGBM LambdaRank, one query per target)."
        ),
    ] = "regression",
    cv: Annotated[
        str,
        typer.Option(
            help="With --fit: hold out source sets (sets) or target languages "
            "(targets) in cross-validation."
        ),
    ] = "sets",
    predictor: Annotated[
        Path | None,
        typer.Option(
            help="A predictor from --fit --save: for --criterion learned or sslt-measured, "
            "and --suggest.",
            parser=nonempty_path,
        ),
    ] = None,
    suggest: Annotated[
        int | None,
        typer.Option(
            help="Propose the N unmeasured sets most worth running next (needs --fit "
            "or --predictor)."
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print JSON only on stdout: a list of sets (with --fit: an object with the "
            "validation, the verdict and any suggestions).",
        ),
    ] = False,
    tasks_dir: TasksDir = None,
) -> None:
    """Choose source languages: the best sets of k languages under a criterion.

    Every set is shown with its score under every criterion the options allow.

    lang2vec vectors are fetched once and cached ($MSLT_IT_CACHE, default ~/.cache/mslt-it).

    Example: mslt-it select --task xnli --pool ar,de,en,es,fr,ru,zh --k 3 --criterion l2v-syntax
    """
    use_tasks_dirs(tasks_dir)
    from mslt_it.selection import (
        FEATURE_OPTIONS,
        SelectionOptions,
        evaluate_criteria,
        load_results_csv,
        run_selection,
    )

    if task is None:
        from mslt_it.tasks import all_tasks

        raise MsltError(f"--task: required; one of {', '.join(sorted(all_tasks()))}")
    options = SelectionOptions(
        size_model=size_model,
        size_missing=size_missing,
        l2v_variant=l2v_variant,
        vectors=vectors,
        diversity_weight=diversity_weight,
        tokenizer=resolve_model_name(tokenizer, "--tokenizer") if tokenizer is not None else None,
        model=resolve_model_name(model, "--model") if model is not None else None,
        data=data,
        split=split,
        sample=sample,
        search=search,
        predictor=predictor,
        given=set_by_user(ctx, FEATURE_OPTIONS),
    )
    target_codes = split_codes(targets, "--targets") or None
    if top < 1:
        raise MsltError(f"--top: must be >= 1, got {top}")
    given = {
        "--fit": fit is not None,
        "--suggest": suggest is not None,
        "--save": save is not None,
        "--overwrite": overwrite,
        "--cv": cv != "sets",
        "--objective": objective != "regression",
        "--evaluate": evaluate is not None,
        "--criterion": criterion is not None,  # l2v-syntax given too: refused where ignored
        "--vectors": vectors is not None,
        "--pool": pool is not None,
        "--targets": targets is not None,
        "--include": include is not None,
        "--k": k is not None,
        "--predictor": predictor is not None,
        "--top": "top" in set_by_user(ctx, ("top",)),
    }
    criterion = DEFAULT_CRITERION if criterion is None else criterion
    check_modes(given, criterion)
    check_unread(set_by_user(ctx, UNREAD_WITHOUT), given, criterion, tokenizer, model)
    if given["--top"] and (given["--evaluate"] or given["--fit"] or given["--suggest"]):
        raise MsltError(
            f"--top: {top} sets the rows of a ranking only; --evaluate shows each criterion's "
            "pick, --fit its held-out table and --suggest N its N sets"
        )
    if fit is not None or suggest is not None:
        save_path = file_path(save, "--save") if save is not None else None
        _learn(task, fit, k, objective, cv, seed, options, save_path, overwrite, suggest, predictor,
               split_codes(pool, "--pool") if pool is not None else None, target_codes,
               split_codes(include, "--include"), json_output,
               targets_as_sources)  # fmt: skip
        return
    if evaluate is not None:
        results = load_results_csv(evaluate, task)
        table = evaluate_criteria(results, task, targets=target_codes, seed=seed, options=options)
        note = targets_among_sources(target_codes, results)
        if note:
            STDERR.print(f"note: {note}", highlight=False, soft_wrap=True)
        if json_output:
            _print_json([row.to_dict() for row in table])
        else:
            print_evaluation(table, results, str(evaluate), target_codes)
        return
    result = run_selection(
        task,
        split_codes(pool, "--pool") if pool is not None else None,
        k,  # None: 3, or the predictor's size with --criterion learned
        criterion,
        targets=target_codes,
        include=split_codes(include, "--include"),
        targets_as_sources=targets_as_sources,
        top=top,
        seed=seed,
        options=options,
        on_size=None if json_output else print_size_tables,  # each size as soon as it is found
    )
    for note in result.notes:
        STDERR.print(f"note: {note}", highlight=False, soft_wrap=True)
    if json_output:
        _print_json([ranked.to_dict() for ranked in result.sets])
    else:
        print_captions(result, result.options or options)


def targets_among_sources(
    targets: list[str] | None, results: list[tuple[list[str], float]]
) -> str | None:
    """Why a target-l2v row may look too good: a measured set that trains on a target is rated
    as its own nearest source, so the user hears which targets are also sources, and how often."""
    if not targets:
        return None
    holding = [sources for sources, _ in results if set(sources) & set(targets)]
    if not holding:
        return None
    named = sorted({code for sources in holding for code in sources if code in targets})
    return (
        f"--targets {','.join(named)} {'is' if len(named) == 1 else 'are'} among the sources of "
        f"{len(holding)} of the {len(results)} measured sets; the target-l2v criteria rate such a "
        "set as closest to that target, and a score measured there is not transfer"
    )


def file_path(text: str, option: str) -> Path:
    """A path that names a file: ``out/`` (or an empty name) is refused rather than written as
    a file called ``out``, which is what ``Path("out/")`` would give."""
    if not text.strip() or text.endswith(("/", os.sep)) or Path(text).name in ("", ".", ".."):
        raise MsltError(
            f"{option}: {text!r} names a folder; give a file name, e.g. out/predictor.json"
        )
    return Path(text)


DEFAULT_CRITERION = "l2v-syntax"
"""The paper's best criterion: diversity of the sources' lang2vec syntax vectors."""


def check_modes(given: dict[str, bool], criterion: str) -> None:
    """Options of one mode given in another are refused, not silently ignored: a user who
    wrote ``--save p.json`` without ``--fit`` expects a file. ``given``: which options were
    set (away from their defaults)."""
    fit, learning = given["--fit"], given["--fit"] or given["--suggest"]
    for flag in ("--save", "--overwrite", "--cv", "--objective"):
        if given[flag] and not fit:
            raise MsltError(f"{flag}: only with --fit RESULTS (fitting a predictor)")
    if given["--overwrite"] and not given["--save"]:
        raise MsltError("--overwrite: only with --save FILE (it replaces that file)")
    reads_predictor = given["--suggest"] or criterion in ("learned", "sslt-measured")
    if given["--predictor"] and not reads_predictor and not fit:
        raise MsltError(
            "--predictor: read only by --criterion learned or sslt-measured and by --suggest N"
        )
    for flag in ("--pool", "--targets", "--include"):
        if given[flag] and fit and not given["--suggest"]:
            raise MsltError(
                f"{flag}: --fit learns from the file's sets and targets; {flag} applies to "
                "--suggest N (or to --criterion learned with the saved predictor)"
            )
    if learning and given["--evaluate"]:
        raise MsltError("--evaluate: give --evaluate or --fit/--suggest, one at a time")
    for flag in ("--pool", "--k", "--include", "--criterion"):
        if given["--evaluate"] and given[flag]:
            raise MsltError(
                f"{flag}: --evaluate scores every criterion on the sets in its file; leave "
                f"{flag} out"
            )
    if learning and given["--criterion"]:
        raise MsltError(
            f"--criterion: {clipped(criterion, 40)} does not apply to --fit or --suggest (they "
            "choose with the fitted predictor); leave --criterion out, or rank every set "
            "without them: --criterion learned --predictor FILE"
        )


UNREAD_WITHOUT = ("data", "split", "sample", "diversity_weight", "targets_as_sources", "search")
"""Options that a heuristic ranking reads only beside another option (:func:`check_unread`)."""


def check_unread(
    typed: frozenset[str],
    given: dict[str, bool],
    criterion: str,
    tokenizer: str | None,
    model: str | None,
) -> None:
    """An option that nothing reads is refused, as :func:`check_modes` refuses another mode's:
    ``--data bogus`` was never opened without a criterion reading text, and passed. ``typed``:
    those of :data:`UNREAD_WITHOUT` set by the user. A predictor keeps feature options of its
    own, checked where it is read, so the learned modes are left to that check."""
    if given["--fit"] or given["--suggest"] or given["--predictor"]:
        return
    if criterion in ("learned", "sslt-measured"):
        return
    for name in ("data", "split", "sample"):
        if name in typed and tokenizer is None and model is None:
            raise MsltError(
                f"--{name}: read only for the text of coverage (--tokenizer) or embedding "
                "(--model); give one of them, or leave it out"
            )
    if "diversity_weight" in typed and not given["--targets"]:
        raise MsltError("--diversity-weight: read only by the target-* criteria, with --targets")
    if "targets_as_sources" in typed and not given["--targets"]:
        raise MsltError("--targets-as-sources: only with --targets (it keeps them in the pool)")
    if "search" in typed and given["--evaluate"]:
        raise MsltError("--search: --evaluate scores the sets in its file; nothing is searched")


def _learn(
    task: str,
    fit: Path | None,
    k: str | None,
    objective: str,
    cv: str,
    seed: int,
    options: Any,
    save: Path | None,
    overwrite: bool,
    suggest: int | None,
    predictor_path: Path | None,
    pool: list[str] | None,
    targets: list[str] | None,
    include: list[str],
    json_output: bool,
    targets_as_sources: bool = False,
) -> None:
    """``--fit`` (cross-validate, maybe save) and ``--suggest`` (from the fit or a saved file).

    ``--suggest`` leaves ``--targets`` out of the pool as ``select`` does (unless
    ``--targets-as-sources``); without ``--targets`` the measured targets, sources among them,
    only say where a set's transfer is averaged."""
    from mslt_it.selection import (
        VECTORS_WITH_PREDICTOR,
        check_save_path,
        fit_predictor,
        load_predictor,
        never_run_alone,
        parse_k,
        results_changed,
        suggest_sets,
    )

    if options.vectors is not None:  # (--criterion learned says so in select_sources)
        raise MsltError(VECTORS_WITH_PREDICTOR)
    if save is not None and fit is None:
        raise MsltError("--save: needs --fit RESULTS (the measured results to learn from)")
    if fit is not None and predictor_path is not None:
        raise MsltError("--predictor: give --fit (to fit a new one) or --predictor, not both")
    if suggest is not None and suggest < 1:
        raise MsltError(f"--suggest: must be >= 1, got {suggest}")
    data_folder = options.data if is_data_folder(options.data) else None
    inputs = [p for p in (fit, options.tokenizer, data_folder) if p is not None]
    if save is not None:
        check_save_path(save, overwrite, [Path(p) for p in inputs])
    # Everything that can fail runs before anything is written or printed.
    fitted = None
    if fit is not None:
        sizes = parse_k(k) if k is not None else None
        if sizes is not None and len(sizes) != 1:
            raise MsltError(f"--k: --fit learns one set size at a time, got {k!r}")
        fitted = fit_predictor(
            fit,
            task,
            k=sizes[0] if sizes else None,
            objective=objective,
            cv=cv,
            seed=seed,
            options=options,
        )
        predictor = fitted.predictor
    elif predictor_path is not None:
        predictor = load_predictor(predictor_path)
        changed = results_changed(predictor)
        if changed:
            STDERR.print(f"note: {changed}", highlight=False, soft_wrap=True)
    else:
        raise MsltError("--suggest: needs --fit RESULTS or --predictor FILE")
    suggestions = None
    if suggest is not None:
        suggestions = suggest_sets(
            predictor,
            task,
            suggest,
            pool=pool,
            targets=targets,
            include=include,
            k=k if fit is None else None,  # a fit's --k chose the size fitted on
            seed=seed,
            options=options,
            targets_as_sources=targets_as_sources or not targets,
        )
        if len(suggestions) < suggest:
            STDERR.print(
                f"note: --suggest {suggest}: only {len(suggestions)} unmeasured set(s) to "
                "suggest in the pool",
                highlight=False,
                soft_wrap=True,
            )
        dropped = [code for code in pool or () if code in set(targets or ())]
        if dropped and not targets_as_sources:
            STDERR.print(
                f"note: {','.join(dropped)} left out of --pool: a target is not a source "
                "(--targets-as-sources keeps it)",
                highlight=False,
                soft_wrap=True,
            )
    if save is not None and fitted is not None:
        fitted.predictor.save(save, overwrite=overwrite, inputs=[Path(p) for p in inputs])
    if fitted is not None:
        for note in fitted.measured.notes:
            STDERR.print(f"note: {fit}: {note}", highlight=False, soft_wrap=True)
    alone = never_run_alone(predictor, [c for s in suggestions or [] for c in s.sources])
    if alone:
        STDERR.print(
            f"note: {', '.join(alone)} never ran alone: one run of each alone ({len(alone)} in "
            "all) gives single-source evidence about every set that holds it",
            highlight=False,
            soft_wrap=True,
        )
    if json_output:
        if fitted is None:
            _print_json([s.to_dict() for s in suggestions or []])
        else:
            _print_json(
                {
                    "validation": fitted.validation.to_dict(),
                    "verdict": fitted.validation.verdict(),
                    "saved": str(save) if save is not None else None,
                    "suggestions": [s.to_dict() for s in suggestions or []],
                }
            )
        return
    if fitted is not None:
        print_validation(fitted)
        if save is not None:
            STDOUT.print(f"predictor saved to {save}", highlight=False, soft_wrap=True)
    if suggestions is not None:
        print_suggestions(suggestions)


def tied_ranks(result: SelectionResult) -> str:
    """The shown ranks whose sets score alike under the ranking criterion (``ranks 1-5, rank 9
    and sets not shown``, with the set size when several are shown): their order is
    alphabetical, which a reader of the table would take for a preference (``script`` and
    ``l2v-family`` tie often)."""
    spans = []
    sizes = {s.k for s in result.sets}
    beyond = {info.k for info in result.searches if info.ties_beyond}
    for k in sorted(sizes):
        shown = [s for s in result.sets if s.k == k and s.score is not None]
        where = f" (k={k})" if len(sizes) > 1 else ""
        start = 0
        for end in range(1, len(shown) + 1):
            if end == len(shown) or shown[end].score != shown[start].score:
                last = end == len(shown) and k in beyond  # ties with sets left out too
                if end - start > 1 or last:
                    first = shown[start].rank
                    span = (
                        f"ranks {first}-{shown[end - 1].rank}"
                        if end - start > 1
                        else f"rank {first}"
                    )
                    more = " and sets not shown" if last else ""
                    spans.append(f"{span}{more}{where}")
                start = end
    return ", ".join(spans)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _format(name: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if name == "script":
        return str(round(value))
    if name == "size":
        return f"{value:.4g}"
    return f"{value:.3f}"


def _header(name: str) -> str:
    """``l2v-syntax`` -> ``l2v-`` over ``syntax``: narrow columns, full names."""
    head, _, tail = name.rpartition("-")
    return f"{head}-\n{tail}" if head else name


def _print_wide(table: Table) -> None:
    """On a terminal rich fits the table; into a file or pipe it is printed at full width."""
    print_whole(STDOUT, table)


def print_size_tables(result: SelectionResult) -> None:
    """One table per set size: rank, sources, then every criterion (the ranking one first)."""
    for info in result.searches:
        table = Table(
            title=(
                f"{result.task} · best sets of {info.k} by {result.criterion} · "
                f"{info.method}: {info.scored:,} of {info.total:,} sets scored"
            )
        )
        table.add_column("rank", justify="right")
        table.add_column("sources", no_wrap=True)
        for i, name in enumerate(result.columns):
            header = _header(name)
            table.add_column(styled(header, "bold") if i == 0 else header, justify="right")
        drivers = any(s.drivers for s in result.sets)
        alone = result.criterion == "sslt-measured"
        if drivers:
            table.add_column("each source alone" if alone else "driven by (SHAP)")
        for ranked in (s for s in result.sets if s.k == info.k):
            cells = [_format(name, ranked.scores[name]) for name in result.columns]
            if drivers and alone:
                cells.append("; ".join(f"{name} {value:.4g}" for name, value in ranked.drivers))
            elif drivers:
                cells.append(drivers_text(ranked.drivers))
            table.add_row(str(ranked.rank), ",".join(ranked.sources), *cells)
        _print_wide(table)


def print_captions(result: SelectionResult, options: Any) -> None:
    """What the tables' numbers mean, printed once below all of them."""
    from mslt_it.selection import size_unit

    captions = ["higher is better in every column"]
    ties = tied_ranks(result)
    if ties:
        captions.append(
            f"equal {result.criterion} scores at {ties}: in alphabetical order, not by preference"
        )
    if "size" in result.columns:
        captions.append(f"size: {size_unit(options)}")
    if result.include:
        captions.append(f"forced into every set: {','.join(result.include)}")
    if result.targets:
        captions.append(f"targets: {','.join(result.targets)}")
    if "learned" in result.columns:
        captions.append(f"learned: mean over the targets of {PREDICTED}")
    if "sslt-measured" in result.columns:
        captions.append(
            "sslt-measured: the sources' mean measured score on the targets when trained alone "
            "(on the synthetic grids a good guide for one target, a poor one averaged over "
            "several: see docs/learned-selection.md)"
        )
    shown = [s for s in result.sets if s.sources in result.measured]
    if shown:
        ranks = ", ".join(f"{s.rank} ({','.join(s.sources)})" for s in shown[:10])
        more = f" and {len(shown) - 10} more" if len(shown) > 10 else ""
        captions.append(f"measured already (the predictor was fitted on them): rank {ranks}{more}")
    STDOUT.print("; ".join(captions), highlight=False, soft_wrap=True)


def _pick(row: CriterionEvaluation) -> str:
    if not row.top_pick:
        return "n/a"
    pick = ",".join(row.top_pick)
    return pick if row.tied == 1 else f"{pick} (1st of {row.tied} tied)"


def print_evaluation(
    table: list[CriterionEvaluation],
    results: list[tuple[list[str], float]],
    source: str,
    targets: list[str] | None = None,
) -> None:
    """Each criterion's pick among the measured sets, its measured rank, and Spearman ρ."""
    out = Table(title=f"criteria against {len(results)} measured sets ({source})")
    out.add_column("criterion")
    out.add_column("top pick")
    out.add_column("its result", justify="right")
    out.add_column("rank", justify="right")
    out.add_column("Spearman ρ", justify="right")
    out.add_column("sets scored", justify="right")
    for row in table:
        out.add_row(
            row.criterion,
            _pick(row),
            "n/a" if row.top_pick_result is None else f"{row.top_pick_result:.4g}",
            "n/a" if row.rank is None else f"{row.rank} of {row.out_of}",
            "n/a" if row.spearman is None else f"{row.spearman:+.3f}",
            str(row.scored),
        )
    _print_wide(out)
    best = max(results, key=lambda item: item[1])
    captions = [f"best measured set: {','.join(sorted(best[0]))} ({best[1]:.4g})", "rank 1 = best"]
    if targets:
        captions.append(f"target-l2v criteria: similarity to {','.join(targets)}")
    partial = [row.criterion for row in table if row.scored < len(results)]
    if partial:  # their pick and ρ are over fewer sets than the others'
        captions.append(
            f"{', '.join(partial)}: the sets {'it' if len(partial) == 1 else 'each'} cannot score "
            "are left out of its pick and ρ"
            + (" (--size-missing last ranks them last)" if "size" in partial else "")
        )
    STDOUT.print(
        "; ".join(captions),
        highlight=False,
        soft_wrap=True,
    )
