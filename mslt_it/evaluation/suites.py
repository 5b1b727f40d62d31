"""Evaluation suites: YAML files that name a task, its languages, a split and a template.

As in lm-evaluation-harness, a suite is data, not code. The shipped ones live in ``eval/``
(``xnli``, ``pawsx``, ``wikiann``, ``xnli-targets``); a user passes a path to their own::

    name: xnli-targets
    description: XNLI test set in the 8 languages outside the source pool.
    task: xnli
    split: test
    template: xnli/en-instruct     # the default when the adapter's run.json names none
    languages: [bg, el, hi, sw, th, tr, ur, vi]
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mslt_it.config import describe_error, load_yaml
from mslt_it.errors import MsltError, allowed
from mslt_it.files import resolved_path
from mslt_it.paths import EVAL_DIR, shipped_folder
from mslt_it.tasks import check_languages, get_task
from mslt_it.tasks.sources import check_split

SUITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Suite(BaseModel):
    """The schema of a suite file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Short name, used in results and reports.")
    description: str = Field(default="", description="What the suite measures.")
    task: str = Field(description="Task name (tasks/*.yaml or a --tasks-dir definition).")
    split: str = Field(default="test", description="Split to evaluate.")
    template: str | None = Field(default=None, description="Default prompt template id.")
    languages: list[str] = Field(min_length=1, description="Languages to evaluate.")


def shipped_suites() -> dict[str, Path]:
    """Suite name -> file, for the suites in ``eval/``."""
    return {path.stem: path for path in sorted(shipped_folder(EVAL_DIR).glob("*.yaml"))}


def resolve_suite_path(name_or_path: str) -> Path:
    """A shipped suite's name or a YAML file's path -> the file; anything else is an error."""
    shipped = shipped_suites()
    if name_or_path in shipped:
        return shipped[name_or_path]
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.exists() or path.is_symlink():
        resolved_path(path, "suite")  # a symlink loop is named as one
        raise MsltError(
            f"suite: {name_or_path!r} is not a regular file (a folder, a FIFO or a device); "
            "give a YAML file"
        )
    if path.parent.as_posix() == EVAL_DIR.name and path.suffix == ".yaml" and path.stem in shipped:
        # "eval/xnli.yaml" from another working directory; "nosuch/xnli.yaml" is no suite
        return shipped[path.stem]
    raise MsltError(
        f"suite: unknown suite {name_or_path!r}; shipped: {allowed(shipped)}, or a YAML file path"
    )


def load_suite(name_or_path: str) -> Suite:
    """Load and check a suite: its task, split and languages must exist."""
    path = resolve_suite_path(name_or_path)
    data = load_yaml(path, "suite")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as error:
        raise MsltError(f"{path}: {describe_error(error)}") from None
    task = get_task(suite.task)
    check_split(task, suite.split)
    check_languages(task, suite.languages, field=f"{path}: languages")
    repeated = sorted({lang for lang in suite.languages if suite.languages.count(lang) > 1})
    if repeated:
        raise MsltError(f"{path}: languages: {repeated[0]!r} is listed twice")
    if not SUITE_NAME.match(suite.name):
        raise MsltError(
            f"{path}: name: {suite.name[:80]!r}; use letters, digits, '-', '_' or '.' (results "
            "and reports are named by it)"
        )
    return suite
