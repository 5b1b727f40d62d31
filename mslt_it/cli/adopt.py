"""``mslt-it adopt``: mark an output of an older mslt-it as mslt-it's own, after checking it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mslt_it.adopt_checks import check_adoptable_content
from mslt_it.cli.common import nonempty_path, stdout_console
from mslt_it.outputs import DONE_FILES, adopt_output

STDOUT = stdout_console()


def register(app: typer.Typer) -> None:
    app.command("adopt")(adopt)


def adopt(
    folder: Annotated[
        Path,
        typer.Argument(help="An output folder written by an older mslt-it.", parser=nonempty_path),
    ],
    kind: Annotated[str, typer.Option(help=f"What the folder holds: {', '.join(DONE_FILES)}.")],
) -> None:
    """Mark FOLDER as mslt-it's output of KIND, so --overwrite and resume may use it.

    Only the marker file (.mslt-it-output.json) proves that mslt-it wrote a folder; outputs of
    versions before it have none. adopt writes it after checking that the folder holds a
    finished output of KIND and nothing but files of that kind.

    Example: mslt-it adopt runs/old-report --kind report
    """
    files = adopt_output(folder, kind, prove=check_adoptable_content)
    STDOUT.print(f"adopted {folder} as an mslt-it {kind} ({len(files)} files)", soft_wrap=True)
