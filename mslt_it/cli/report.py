"""``mslt-it report``: tables and plots from one or more evaluation outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mslt_it.cli.common import nonempty_path
from mslt_it.terminal import STDERR, plain_console

STDOUT = plain_console()


def two_runs(ctx: typer.Context, value: tuple[str, str] | None) -> tuple[str, str] | None:
    """``--compare``'s two runs. Given one (``--compare base --out r``, ``--compare base -or``),
    it took the next option for the second run, and the error blamed ``--out`` as missing."""
    options = [
        name
        for param in ctx.command.params
        for name in (*param.opts, *getattr(param, "secondary_opts", ()))
        if name.startswith("-")
    ]
    for run in value or ():
        if any(is_option(run, name) for name in options):
            given = " ".join(repr(run) for run in value or ())
            raise typer.BadParameter(
                f"takes two runs, baseline first (A B), got {given}: {run!r} is an option, "
                "not a run"
            )
    return value


def is_option(word: str, name: str) -> bool:
    """Whether ``word`` on a command line gives the option ``name``: ``--out``, ``--out=r``,
    ``-o`` or ``-or`` (a short option's value may follow it)."""
    if name.startswith("--"):
        return word == name or word.startswith(f"{name}=")
    return word.startswith(name)


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Folders holding results.json files.", parser=nonempty_path)
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder for report.md, CSV, PNGs.", parser=nonempty_path),
    ],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing report folder.")] = False,
    compare: Annotated[
        tuple[str, str] | None,
        typer.Option(
            "--compare",
            help="Two runs to compare row by row, baseline first, named as the report labels "
            "them ('SSLT en', 'MSLT ar+de+zh', 'base'). Every MSLT run is compared with the "
            "SSLT baseline anyway.",
            metavar="A B",
            callback=two_runs,
        ),
    ] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            help="Tokenizer (folder, Hub id or mslt-it:tiny-world) whose fertility on the "
            "evaluation rows is plotted against the scores, with its rank correlation."
        ),
    ] = None,
) -> None:
    """Write report.md, scores.csv and plots (heatmap, SSLT vs MSLT gain with paired intervals,
    k-sweep, fertility), and comparisons.csv when there is a comparison to make.

    Example: mslt-it report runs/demo/eval --out runs/demo/report --compare base "SSLT en"
    """
    from mslt_it.report import write_report
    from mslt_it.report_results import find_unfinished

    path = write_report(
        run_dirs,
        out,
        overwrite=overwrite,
        compare=[compare] if compare else [],
        tokenizer=tokenizer,
    )
    for folder in find_unfinished(run_dirs):
        STDERR.print(
            f"warning: {folder} is an unfinished evaluation (no results.json); it is not in "
            "the report",
            soft_wrap=True,
            markup=False,
        )
    STDOUT.print(f"report → {path}")
