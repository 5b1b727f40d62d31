"""Where the files users plug in live: task definitions, prompts, eval suites and recipes.

They are data, not code, and sit at the top of the repository, where users read and copy them;
an editable install (``pip install -e .``, what the README says) keeps them there. A plain
``pip install .`` or a wheel does not carry them: :func:`shipped_folder` then says so in one line
instead of every template and suite looking "unknown". Users add their own folders with
``--prompts-dir`` and suite files by path.
"""

from __future__ import annotations

from pathlib import Path

from mslt_it.errors import MsltError

REPO_ROOT = Path(__file__).resolve().parent.parent
PROMPTS_DIR = REPO_ROOT / "prompts"
EVAL_DIR = REPO_ROOT / "eval"
TASKS_DIR = REPO_ROOT / "tasks"
RECIPES_DIR = REPO_ROOT / "recipes"
RESOURCES_DIR = Path(__file__).resolve().parent / "resources"

NAMED_DATA = ("hub", "synthetic")
"""The values of ``--data`` (and a recipe's ``data``) that name a built-in source, not a folder:
the Hugging Face Hub, and the offline synthetic world."""


def is_data_folder(data: object) -> bool:
    """Whether ``data`` names a folder of the user's (not None, and not one of
    :data:`NAMED_DATA`): what a folder check, an identity or an input list must read."""
    return data is not None and data not in NAMED_DATA


def shipped_folder(folder: Path) -> Path:
    """``folder`` (one of the folders above) if this install has it, else a one-line error."""
    if not folder.is_dir():
        raise MsltError(
            f"{folder.name}/: mslt-it's shipped {folder.name} folder is missing from this install "
            f"({folder}); install mslt-it from a clone with `pip install -e .`"
        )
    return folder
