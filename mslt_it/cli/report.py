"""``mslt-it report``: tables and plots from one or more evaluation outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mslt_it.cli.common import stdout_console

STDOUT = stdout_console()
STDERR = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Folders holding results.json files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.md, CSV, PNGs.")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing report folder.")] = False,
) -> None:
    """Write report.md, scores.csv and plots (heatmap, SSLT vs MSLT gain, k-sweep).

    Example: mslt-it report runs/demo/eval --out runs/demo/report
    """
    from mslt_it.report import find_unfinished, write_report

    path = write_report(run_dirs, out, overwrite=overwrite)
    for folder in find_unfinished(run_dirs):
        STDERR.print(
            f"warning: {folder} is an unfinished evaluation (no results.json); it is not in "
            "the report",
            soft_wrap=True,
            markup=False,
        )
    STDOUT.print(f"report → {path}")
