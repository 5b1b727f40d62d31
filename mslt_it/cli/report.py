"""``mslt-it report``: tables and plots from one or more evaluation outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

STDOUT = Console()


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
    from mslt_it.report import write_report

    path = write_report(run_dirs, out, overwrite=overwrite)
    STDOUT.print(f"report → {path}")
