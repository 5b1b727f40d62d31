"""The tasks mslt-it knows, by name."""

from __future__ import annotations

from mslt_it.errors import MsltError, allowed
from mslt_it.tasks import pawsx, wikiann, xnli
from mslt_it.tasks.base import Task

TASKS: dict[str, Task] = {task.name: task for task in (xnli.TASK, pawsx.TASK, wikiann.TASK)}


def get_task(name: str) -> Task:
    """The task called ``name``; a clear error for anything else."""
    try:
        return TASKS[name]
    except KeyError:
        raise MsltError(f"task: unknown task {name!r}; known tasks: {allowed(TASKS)}") from None


def check_languages(task: Task, languages: list[str], field: str = "sources") -> None:
    """Raise if any language is not one the task has data for."""
    valid = set(task.languages)
    for lang in languages:
        if lang not in valid:
            raise MsltError(
                f"{field}: task {task.name} has no language {lang!r}; "
                f"its languages: {allowed(task.languages)}"
            )


__all__ = ["TASKS", "Task", "check_languages", "get_task"]
