"""``mslt-it report``: tables and plots from one or more evaluation outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mslt_it.cli.common import nonempty_path
from mslt_it.terminal import STDERR, plain_console

STDOUT = plain_console()


OPTIONS = ("--out", "-o", "--overwrite", "--no-overwrite", "--tokenizer", "--compare", "--help")
"""This command's options: a value of ``--compare`` spelled as one was swallowed."""


def two_runs(value: tuple[str, str] | None) -> tuple[str, str] | None:
    """``--compare``'s two runs. Given one (``--compare base --out r``), it took ``--out`` for
    the second run, and the error blamed ``--out`` as missing."""
    for name in value or ():
        if name.split("=", 1)[0] in OPTIONS:
            given = " ".join(repr(run) for run in value or ())
            raise typer.BadParameter(
                f"takes two runs, baseline first (A B), got {given}: {name!r} is an option, "
                "not a run"
            )
    return value


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
            callback=lambda value: two_runs(value),
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
