"""Where the files users plug in live: task definitions, prompts, eval suites and recipes.

They are data, not code, and sit at the top of the repository, where users read and copy them;
an editable install (``pip install -e .``, what the README says) reads them there. A wheel
(``pip install .``, ``pip install git+URL``) cannot hold files beside the package, so it carries
a copy inside it, ``mslt_it/shipped/`` (``setup.py``), read when present. Should neither be there,
:func:`shipped_folder` says so in one line instead of every template and suite looking
"unknown". Users add their own folders with ``--prompts-dir`` and suite files by path.
"""

from __future__ import annotations

from pathlib import Path

from mslt_it.errors import MsltError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
SHIPPED_DIR = PACKAGE_DIR / "shipped"
"""A wheel's copy of the top-level folders (``setup.py``); absent in a clone."""


def _data_folder(name: str) -> Path:
    """The package's copy of a top-level folder when this is a wheel's install, else the
    clone's folder. Never the reverse: beside an installed package lies ``site-packages``,
    whose ``eval/`` or ``tasks/`` may be another distribution's."""
    inside = SHIPPED_DIR / name
    return inside if SHIPPED_DIR.is_dir() else REPO_ROOT / name


PROMPTS_DIR = _data_folder("prompts")
EVAL_DIR = _data_folder("eval")
TASKS_DIR = _data_folder("tasks")
RECIPES_DIR = _data_folder("recipes")
RESOURCES_DIR = PACKAGE_DIR / "resources"
SHIPPED_WORLD_MODEL = "tiny-world"
"""The world base shipped in ``mslt_it/resources/`` (``mslt-it tiny-model --world`` makes it)."""
SHIPPED_SIZED_WORLD_MODEL = "tiny-world-sized"
"""The sized world base shipped beside it (``mslt-it tiny-model --world --sized``)."""
MODEL_NAMESPACE = "mslt-it:"
"""How mslt-it's own model names begin (:mod:`mslt_it.named_models`): every command reads
``mslt-it:tiny`` as its model, so no folder is made under such a name."""


def check_not_a_model_name(folder: object, field: str) -> None:
    """Refuse to make a folder whose name reads as one of mslt-it's model names: ``--model
    mslt-it:tiny`` would not find it."""
    if str(folder).startswith(MODEL_NAMESPACE):
        raise MsltError(
            f"{field}: {str(folder)!r} reads as one of mslt-it's model names "
            f"({MODEL_NAMESPACE}…), which every command resolves to its own model; choose "
            "another name"
        )


NAMED_DATA = ("hub", "synthetic")
"""The values of ``--data`` (and a recipe's ``data``) that name a built-in source, not a folder:
the Hugging Face Hub, and the offline synthetic world."""


BLANK_DATA = "an empty path; give hub, synthetic or a folder"
"""Why a blank ``data`` is refused (:func:`check_data_value`, and a config's fields)."""


def is_blank(data: object) -> bool:
    """Whether ``data`` is empty or blank text: ``Path("")`` is ``.``, so ``--data ""`` (an
    unset shell variable) silently read, hashed and recorded the working folder."""
    return isinstance(data, str) and not data.strip()


HOME_TILDE = (
    "begins with ~, which is not expanded here (a shell expands it before a path unquoted); "
    "write the full path (of a folder named ~ too)"
)
"""Why a folder given as ``~/…`` is refused where mslt-it reads or writes it as it is: a
recipe's ``data: ~/d`` read ``./~/d`` while a step's identity hashed the home folder's ``d``
(so an edit of the files read left every step done), and ``output_dir: ~/x`` wrote ``./~/x``
under a plan that printed ``~/x``."""


def home_tilde(value: object) -> bool:
    """Whether a folder's text begins with ``~`` (see :data:`HOME_TILDE`)."""
    return isinstance(value, str) and value.startswith("~")


def check_folder_text(value: object, field: str) -> None:
    """Refuse a folder given as ``~/…`` (:data:`HOME_TILDE`) in one line naming ``field``."""
    if home_tilde(value):
        raise MsltError(f"{field}: {value!r} {HOME_TILDE}")


def check_data_value(data: object, field: str = "data") -> None:
    """Refuse a blank ``data`` (:func:`is_blank`), or one given as ``~/…``
    (:func:`check_folder_text`), in one line naming ``field``."""
    if is_blank(data):
        raise MsltError(f"{field}: {BLANK_DATA} (got {data!r})")
    check_folder_text(data, field)


def is_data_folder(data: object) -> bool:
    """Whether ``data`` names a folder of the user's (not None, and not one of
    :data:`NAMED_DATA`): what a folder check, an identity or an input list must read. A blank
    value is refused here (:func:`check_data_value`), where every such decision is made."""
    check_data_value(data)
    return data is not None and data not in NAMED_DATA


def shipped_folder(folder: Path) -> Path:
    """``folder`` (one of the folders above) if this install has it, else a one-line error."""
    if not folder.is_dir():
        raise MsltError(
            f"{folder.name}/: mslt-it's shipped {folder.name} folder is missing from this install "
            f"({folder}); install mslt-it again, from a clone with `pip install -e .` or a wheel "
            "built by its setup.py"
        )
    return folder
