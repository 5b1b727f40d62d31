"""The tasks mslt-it knows, by name: the definitions in ``tasks/`` and the user's folders.

A task is a YAML file (:mod:`mslt_it.tasks.definitions`). The shipped ones sit in the
repository's ``tasks/`` folder; ``--tasks-dir DIR`` (:func:`add_tasks_dirs`) adds a folder for
the rest of the process, like lm-evaluation-harness's ``--include_path``. A recipe's
``tasks_dir`` holds until the next recipe is read, whose own folders replace it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from mslt_it.arguments import paths_argument
from mslt_it.errors import MsltError, allowed
from mslt_it.files import resolved_path
from mslt_it.paths import TASKS_DIR, shipped_folder
from mslt_it.tasks.base import Task

_EXTRA_DIRS: list[Path] = []
"""The user's task folders (``--tasks-dir``), and lone definition files (:func:`add_task_file`)."""
_RECIPE_DIRS: list[Path] = []
"""Those of :data:`_EXTRA_DIRS` that the last recipe read added (its ``tasks_dir``), and no
:func:`add_tasks_dirs` call too: the next recipe's replace them (:func:`set_recipe_tasks_dirs`)."""


def _task_folder(folder: str | Path) -> Path:
    path = resolved_path(Path(folder).expanduser(), "tasks-dir")
    if not path.is_dir():
        raise MsltError(f"tasks-dir: {str(folder)!r} is not a directory")
    return path


def add_tasks_dirs(folders: Iterable[str | Path] | None) -> None:
    """Make the task definitions in ``folders`` known (after the shipped ones), from now on."""
    # a list: one folder given as a str was read one character at a time ('m' is not a folder)
    for folder in paths_argument(folders or [], "tasks-dir"):
        path = _task_folder(folder)
        if path in _RECIPE_DIRS:  # given by the user too: theirs now, kept past the recipe
            _RECIPE_DIRS.remove(path)
        if path not in _EXTRA_DIRS:
            _EXTRA_DIRS.append(path)


def set_recipe_tasks_dirs(folders: Iterable[str | Path] | None) -> None:
    """Make a recipe's ``tasks_dir`` folders known in place of the previous recipe's: each
    recipe read (:func:`mslt_it.recipes.load_recipe`) brings its own task folders, and a
    second recipe defining a task of the same name as the first's is no "defined twice". The
    folders given by :func:`add_tasks_dirs` (``--tasks-dir``, a notebook's own call) stay."""
    paths = [_task_folder(f) for f in paths_argument(folders or [], "tasks-dir")]  # all or none
    for path in _RECIPE_DIRS:
        if path in _EXTRA_DIRS:
            _EXTRA_DIRS.remove(path)
    _RECIPE_DIRS.clear()
    for path in paths:
        if path not in _EXTRA_DIRS:
            _EXTRA_DIRS.append(path)
            _RECIPE_DIRS.append(path)


def add_task_file(path: Path) -> None:
    """Make the one task defined in ``path`` known, without the rest of its folder (a dataset's
    own definition, named by its manifest: another file beside it is none of the build's)."""
    given = path.absolute()  # by the name it was found by: a link's target may be named else
    if given not in _EXTRA_DIRS:
        _EXTRA_DIRS.append(given)


@contextlib.contextmanager
def tasks_dirs_kept() -> Iterator[None]:
    """The task folders known before a block, known again after it: a call that makes a
    dataset's own definition known for its work (``train()``: :func:`add_task_file`) left it
    known to the whole notebook, where a second dataset's definition of the same task was
    then refused as not the one its build read."""
    extra, recipe = list(_EXTRA_DIRS), list(_RECIPE_DIRS)
    try:
        yield
    finally:
        _EXTRA_DIRS[:] = extra
        _RECIPE_DIRS[:] = recipe


def reset_tasks_dirs() -> None:
    """Forget the folders added so far (each CLI invocation starts from the shipped tasks)."""
    _EXTRA_DIRS.clear()
    _RECIPE_DIRS.clear()


def tasks_dirs() -> tuple[Path, ...]:
    """The folders task definitions are read from: the shipped one, then the user's.

    The shipped folder given again as ``--tasks-dir`` adds nothing (its tasks are not defined
    twice).
    """
    shipped = shipped_folder(TASKS_DIR)
    extra = [folder for folder in _EXTRA_DIRS if folder != shipped.resolve()]
    return (shipped, *extra)


def all_tasks() -> dict[str, Task]:
    """Every known task by name (definitions are parsed again only when a file or folder
    changes: :func:`mslt_it.tasks.definitions.load_definitions`)."""
    # Deferred for the CLI's start-up: the definitions bring Jinja and pydantic, and every
    # command imports this package to reset the task folders.
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
            "(add your own with --tasks-dir DIR, or tasks_dir: [DIR] in a recipe)"
        ) from None


def default_template(task: str) -> str:
    """``<task>/as-is`` for an instruction corpus, ``<task>/en-instruct`` for a benchmark task.

    A task that is not known yet (a recipe's --tasks-dir is read after its sections) gets the
    benchmark default; an unknown template is reported when the build opens it.
    """
    try:
        known = all_tasks().get(task)
    except MsltError:
        known = None
    return (
        f"{task}/as-is"
        if known is not None and known.kind == "instructions"
        else (f"{task}/en-instruct")
    )


def default_split(task: str) -> str:
    """A mixture part's split when its recipe names none: ``train`` if the task has one, else
    ``validation`` (a benchmark such as XCOPA has only validation and test). A task with
    neither (XWinograd, Belebele: test only) has no default: its rows are what its benchmark
    is evaluated on, and mixing them in without a word trained on the evaluation rows. A task
    not known yet gets ``train``; the build then names the unknown task."""
    try:
        known = all_tasks().get(task)
    except MsltError:
        known = None
    if known is None or "train" in known.splits:
        return "train"
    if "validation" in known.splits:
        return "validation"
    raise MsltError(
        f"split: task {task} has no train or validation split (its splits: "
        f"{', '.join(known.splits)}), and its other rows are what its benchmark is evaluated "
        "on; name the split to mix in if that is meant"
    )


def check_languages(task: Task, languages: list[str], field: str = "sources") -> None:
    """Raise if any language is not one the task has data for."""
    valid = set(task.languages)
    for lang in languages:
        if lang not in valid:
            raise MsltError(
                f"{field}: task {task.name} has no language {lang!r}; "
                f"its languages: {allowed(task.languages)}"
            )


def check_each_once(languages: Sequence[str], field: str) -> None:
    """Raise if a language is given twice (scored twice, or a curve drawn over its twin)."""
    seen: set[str] = set()
    for lang in languages:
        if lang in seen:
            raise MsltError(f"{field}: {lang!r} is given twice; give each language once")
        seen.add(lang)


__all__ = [
    "Task",
    "add_tasks_dirs",
    "all_tasks",
    "check_each_once",
    "check_languages",
    "default_split",
    "default_template",
    "get_task",
    "reset_tasks_dirs",
    "set_recipe_tasks_dirs",
    "tasks_dirs",
]
