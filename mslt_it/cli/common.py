"""Small helpers shared by the command modules."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from mslt_it.errors import MsltError
from mslt_it.files import one_line
from mslt_it.paths import EVAL_DIR, TASKS_DIR
from mslt_it.terminal import plain_console


def split_codes(value: str | None, field: str) -> list[str]:
    """``"en,de, zh"`` -> ``["en", "de", "zh"]``; an empty item is an error naming the option."""
    if value is None:
        return []
    codes = [code.strip() for code in value.split(",")]
    if any(not code for code in codes):
        raise MsltError(f"{field}: empty language code in {value!r}; write codes like en,de,zh")
    return codes


def nonempty_path(value: str | Path) -> Path:
    """The parser of every path option: ``Path("")`` is ``.``, so an empty value would silently
    mean the current folder (``--prompts-dir ''`` read it, ``tiny-model ''`` found it in use)."""
    return Path(nonempty_path_text(value))


def nonempty_path_text(value: str | Path) -> str:
    """:func:`nonempty_path` for an option kept as text (a folder passed on to a config)."""
    if isinstance(value, Path):
        return str(value)
    if not value.strip():
        raise typer.BadParameter("an empty path; give a file or folder")
    return value


PromptsDir = Annotated[
    list[str] | None,
    typer.Option(help="Extra folder of prompt templates (repeatable).", parser=nonempty_path_text),
]
"""The option every command that reads templates offers (see mslt_it.prompts)."""


TasksDir = Annotated[
    list[Path] | None,
    typer.Option(
        "--tasks-dir",
        help="Extra folder of task definitions (one YAML file per task; repeatable).",
        parser=nonempty_path,
    ),
]
"""The option every command that takes a task offers (see mslt_it.tasks.definitions)."""


def use_tasks_dirs(folders: list[Path] | None) -> None:
    """Make a command's ``--tasks-dir`` folders known before it looks up any task."""
    from mslt_it.tasks import add_tasks_dirs

    add_tasks_dirs(folders)


FULL_WIDTH = 4096
"""The widest a table is printed off a terminal: a pipe or a file gets whole lines."""


def stdout_console() -> Console:
    """The console a command prints its results on (tables through :func:`print_whole`): a
    :class:`~mslt_it.terminal.PlainConsole`, so names and paths print as they are."""
    return plain_console()


def print_whole(console: Console, table: Any) -> None:
    """On a terminal, Rich fits the table to the window; into a file or a pipe it is printed as
    wide as its longest cells need, its title on a line of its own, so ids and paths are never
    split mid-word. A title is one line: a newline in a name it quotes is shown escaped."""
    table = copy.copy(table)  # its title is shown one line, escaped (and below, on its own)
    if isinstance(table.title, str):
        table.title = one_line(table.title)
    if console.is_terminal:  # laid out as a table (its title centred), not as a long line
        console.print(table, soft_wrap=False)
        return
    options = console.options.update(max_width=FULL_WIDTH)
    width = max(80, console.measure(table, options=options).maximum)
    whole = plain_console(width=width, file=console.file)
    if table.title is not None:  # its own line: Rich wraps a title to the table's width
        whole.print(table.title)
        table.title = None
    whole.print(table, soft_wrap=False)


def shipped_names(folder: Path) -> str:
    """The names of the YAML files in one of mslt-it's shipped folders (tasks/, eval/), for help
    texts: listed from the folder, so a newly shipped task or suite appears without an edit."""
    return ", ".join(sorted(path.stem for path in folder.glob("*.yaml"))) or "none found"


SHIPPED_TASKS = shipped_names(TASKS_DIR)
SHIPPED_SUITES = shipped_names(EVAL_DIR)
