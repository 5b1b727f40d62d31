"""The tasks mslt-it knows, by name: the definitions in ``tasks/`` and the user's folders.

A task is a YAML file (:mod:`mslt_it.tasks.definitions`). The shipped ones sit in the
repository's ``tasks/`` folder; ``--tasks-dir DIR`` (or a recipe's ``tasks_dir``) adds a folder
for the rest of the process, like lm-evaluation-harness's ``--include_path``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from mslt_it.errors import MsltError, allowed
from mslt_it.paths import TASKS_DIR, shipped_folder
from mslt_it.tasks.base import Task

_EXTRA_DIRS: list[Path] = []


def add_tasks_dirs(folders: Iterable[str | Path] | None) -> None:
    """Make the task definitions in ``folders`` known (after the shipped ones), from now on."""
    for folder in folders or ():
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise MsltError(f"tasks-dir: {str(folder)!r} is not a directory")
        if path not in _EXTRA_DIRS:
            _EXTRA_DIRS.append(path)


def reset_tasks_dirs() -> None:
    """Forget the folders added so far (each CLI invocation starts from the shipped tasks)."""
    _EXTRA_DIRS.clear()


def tasks_dirs() -> tuple[Path, ...]:
    """The folders task definitions are read from: the shipped one, then the user's.

    The shipped folder given again as ``--tasks-dir`` adds nothing (its tasks are not defined
    twice).
    """
    shipped = shipped_folder(TASKS_DIR)
    extra = [folder for folder in _EXTRA_DIRS if folder != shipped.resolve()]
    return (shipped, *extra)


def all_tasks() -> dict[str, Task]:
    """Every known task by name (definitions are parsed once per set of folders)."""
    from mslt_it.tasks.definitions import load_definitions

    return load_definitions(tasks_dirs())


def get_task(name: str) -> Task:
    """The task called ``name``; a clear error for anything else."""
    tasks = all_tasks()
    try:
        return tasks[name]
    except KeyError:
        raise MsltError(
            f"task: unknown task {name!r}; known tasks: {allowed(sorted(tasks))} "
            "(add your own with --tasks-dir)"
        ) from None


def check_languages(task: Task, languages: list[str], field: str = "sources") -> None:
    """Raise if any language is not one the task has data for."""
    valid = set(task.languages)
    for lang in languages:
        if lang not in valid:
            raise MsltError(
                f"{field}: task {task.name} has no language {lang!r}; "
                f"its languages: {allowed(task.languages)}"
            )


__all__ = [
    "Task",
    "add_tasks_dirs",
    "all_tasks",
    "check_languages",
    "get_task",
    "reset_tasks_dirs",
    "tasks_dirs",
]
