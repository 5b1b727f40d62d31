"""What a built dataset's manifest says of where its rows came from, for reading more of them
as the build read them: a training's held-out rows and a watch of the dataset's own task.

Each is proven, not assumed: the data folder, the template file and a task's definition file
are the ones the build recorded (absolute paths, so a training finds them from any folder),
and the template and definition are used only while their digests are the build's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mslt_it.errors import MsltError, clipped
from mslt_it.files import check_regular_file
from mslt_it.prompts import PromptTemplate, get_template, parse_template
from mslt_it.tasks import add_task_file, all_tasks, get_task
from mslt_it.tasks.definitions import user_definition
from mslt_it.yamlfiles import read_text_file


def built_from(manifest: dict[str, Any]) -> str:
    """Where a dataset's rows came from (``hub``, ``synthetic`` or a folder), for reading more
    of them: the absolute folder the build recorded, else its ``data`` setting as given."""
    folder = (manifest.get("data") or {}).get("folder")
    if isinstance(folder, str):
        return folder
    return str((manifest.get("config") or {}).get("data") or "synthetic")


def use_task_of(manifest: dict[str, Any], field: str) -> None:
    """Make the task a dataset was built from known, to read more of its rows (held-out rows,
    a watch of it): a task of a ``--tasks-dir`` folder is read from the definition file the
    manifest names (that file only), once its digest proves it unchanged. A task known
    already (from ``--tasks-dir``) must be the definition the build used."""
    name = str(manifest.get("task"))
    record = manifest.get("task_definition")
    if record is None:
        return  # a shipped task: versioned with mslt-it itself
    path, digest = _definition_record(record, field)
    known = all_tasks().get(name)
    if known is None:
        if not os.path.lexists(path):
            raise MsltError(
                f"{field}: its task {name!r} was defined in {path}, which is gone; give the "
                "folder that defines it now with --tasks-dir"
            )
        check_regular_file(path, f"{field}: its task's definition")
        add_task_file(Path(path))
        known = get_task(name)
    current = user_definition(known)
    if current is None or current.get("sha256") != digest:
        where = current["path"] if current else "mslt-it's own tasks"
        raise MsltError(
            f"{field}: its task {name!r} is defined in {where} now, not as the build read it "
            f"from {path}; build the dataset again"
        )


def _definition_record(record: Any, field: str) -> tuple[str, str]:
    """The file and digest a manifest's ``task_definition`` names, as :func:`_user_task`
    wrote them (``path`` for a dataset built before ``file`` was recorded): an absolute path
    of a sensible length, and a SHA-256."""
    path = record.get("file", record.get("path")) if isinstance(record, dict) else None
    digest = record.get("sha256") if isinstance(record, dict) else None
    if (
        not isinstance(path, str)
        or not isinstance(digest, str)
        or not os.path.isabs(path)
        or len(path) > MAX_PATH_CHARS
        or "\0" in path
    ):
        raise MsltError(
            f"{field}: manifest.json's task_definition {clipped(record, 60)} is not the absolute "
            "path and SHA-256 of a definition file; build the dataset again"
        )
    return path, digest


MAX_PATH_CHARS = 4096
"""The longest path a manifest may name (Linux's PATH_MAX)."""


def built_template(manifest: dict[str, Any], field: str) -> PromptTemplate:
    """The template a dataset was built with, to render more of its task's rows as the build
    did (held-out rows, a watch of its task): read from the file the build read, wherever the
    training runs, and refused unless its digest is the one the build recorded (an edited
    template rendered "held-out" rows the dataset's examples never had)."""
    record = manifest.get("template") or {}
    template_id = str(record.get("id"))
    path = record.get("path")
    if isinstance(path, str) and os.path.isabs(path) and len(path) <= MAX_PATH_CHARS:
        if not os.path.lexists(path):
            raise MsltError(
                f"{field}: its template {template_id!r} was read from {path}, which is gone; "
                "build the dataset again"
            )
        template = parse_template(Path(path), read_text_file(Path(path)), template_id)
    else:  # a dataset built before the path was recorded: by id, from its prompt folders
        template = get_template(template_id, built_prompts_dirs(manifest))
    if template.sha256 != record.get("sha256"):
        raise MsltError(
            f"{field}: its template {template_id!r} ({template.path}) changed since the "
            "dataset was built with it; build the dataset again"
        )
    return template


def built_prompts_dirs(manifest: dict[str, Any]) -> list[str]:
    """The build's prompt folders as absolute paths (as given, for a dataset built before
    they were recorded): another task's template is looked for where the build looked."""
    folders = (manifest.get("template") or {}).get("prompts_dirs")
    if isinstance(folders, list) and all(isinstance(f, str) for f in folders):
        return folders
    return list((manifest.get("config") or {}).get("prompts_dir") or [])
