"""mslt-it's own model names (``mslt-it:tiny``, ``mslt-it:tiny-world``,
``mslt-it:tiny-world-sized``), resolved the same way
wherever a model is named: a recipe's ``model.name_or_path`` or ``eval.compare_models``, and
``mslt-it eval --model``. Each is made once into a folder (built, or copied from the package) and
then used like any local model.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from mslt_it.errors import MsltError, clipped
from mslt_it.identity import cache_folder, file_sha256
from mslt_it.io import read_json
from mslt_it.locks import output_lock
from mslt_it.outputs import check_nothing_foreign, first_changed, owner_kind, remove_own_output
from mslt_it.paths import (
    MODEL_NAMESPACE,
    RESOURCES_DIR,
    SHIPPED_SIZED_WORLD_MODEL,
    SHIPPED_WORLD_MODEL,
)

NAMESPACE = MODEL_NAMESPACE
TINY_MODEL = "mslt-it:tiny"
TINY_WORLD_MODEL = "mslt-it:tiny-world"
TINY_SIZED_WORLD_MODEL = "mslt-it:tiny-world-sized"
TINY_MODELS = (TINY_MODEL, TINY_WORLD_MODEL, TINY_SIZED_WORLD_MODEL)


def is_named_model(name: str | Path | None) -> bool:
    """Whether ``name`` is one of mslt-it's own model names."""
    return str(name) in TINY_MODELS


def named_model_folder(name: str) -> Path:
    """Where a named model lives outside a recipe: one copy per machine, in mslt-it's cache."""
    return cache_folder() / "models" / name.split(":", 1)[1]


def check_replaceable(name: str, folder: Path) -> None:
    """If ``folder`` holds another model than ``name`` (or an edited one), making ``name``
    replaces it: name a file of the user's in it now, before a run removes anything stale
    (found by the first training, it stopped the run with its adapters gone)."""
    folder = Path(folder)
    if folder.is_dir() and named_model_in(folder) != name:
        check_nothing_foreign(folder, f"model {name}: its folder")


def ensure_named_model(name: str, folder: Path) -> Path:
    """Make ``name`` in ``folder`` unless it is there; parallel processes (a Slurm array) wait for
    the one making it. The world base is copied from the one shipped in the package.

    A folder holding another of these models (a recipe switched from ``mslt-it:tiny`` to
    ``mslt-it:tiny-world`` keeps one model folder) is replaced, once its marker proves nothing
    of the user's is in it: trained on the old one, every step after would be attributed to
    the new name."""
    folder = Path(folder)
    if folder.is_dir() and named_model_in(folder) == name:
        return folder
    from mslt_it.tiny import build_tiny_model, copy_world_model  # torch: only when one is made

    with output_lock(folder, field="model", wait=True):
        if folder.is_dir() and named_model_in(folder) == name:  # made meanwhile by another
            return folder
        if folder.exists():
            remove_own_output(folder, f"model {name}: its folder")
        if name in (TINY_WORLD_MODEL, TINY_SIZED_WORLD_MODEL):
            copy_world_model(folder, sized=name == TINY_SIZED_WORLD_MODEL)
        else:
            build_tiny_model(folder, seed=0)
    return folder


BUILD_RECORD = "mslt_it_tiny.json"
"""The build record every tiny model folder holds (:data:`mslt_it.tiny.model.INFO_FILE`)."""


def named_model_in(folder: Path) -> str | None:
    """Which of mslt-it's models ``folder`` holds, by its build record: the world bases record
    ``world`` (and ``sized``), the random base neither. Only while mslt-it's marker is there
    and lists every file unchanged (an edited record would name a model the weights are not;
    a folder without the marker is the user's, whatever its record says), and, for a world
    base, while its files are the ones this package ships: a copy made from an earlier
    release's base was used as this one's."""
    folder = Path(folder)
    record = read_json(folder / BUILD_RECORD)
    if record is None or owner_kind(folder) != "model" or first_changed(folder) is not None:
        return None  # edited since, or never proved ours: the user's folder, not a model of ours
    if record.get("world") is not True:
        return TINY_MODEL
    name = TINY_SIZED_WORLD_MODEL if record.get("sized") else TINY_WORLD_MODEL
    return name if holds_shipped_files(folder, SHIPPED_FOLDERS[name]) else None


SHIPPED_FOLDERS = {
    TINY_WORLD_MODEL: SHIPPED_WORLD_MODEL,
    TINY_SIZED_WORLD_MODEL: SHIPPED_SIZED_WORLD_MODEL,
}
"""The folder in the package's resources each world base is copied from."""


@lru_cache(maxsize=4)
def shipped_digests(shipped: str) -> dict[str, str] | None:
    """SHA-256 of each file of a world base the package ships (None: the package lacks it, and
    the base is pre-trained where it is used)."""
    folder = RESOURCES_DIR / shipped
    if not (folder / BUILD_RECORD).is_file():
        return None
    return {path.name: file_sha256(path) for path in sorted(folder.iterdir()) if path.is_file()}


def holds_shipped_files(folder: Path, shipped: str) -> bool:
    """Whether ``folder`` holds every file of the shipped world base ``shipped``, byte for byte
    (a few MB, hashed once per process and file state)."""
    digests = shipped_digests(shipped)
    if digests is None:
        return True
    return all(
        (folder / name).is_file() and file_sha256(folder / name) == digest
        for name, digest in digests.items()
    )


def check_model_name(name: str, field: str = "model") -> None:
    """A name in mslt-it's namespace must be one of its models; anything else is left to the
    loaders (the Hub would only say ``mslt-it:tiny-wrld`` is not a valid repository id)."""
    if not str(name).strip():
        raise MsltError(f"{field}: an empty name; give a Hub id, a folder or mslt-it:NAME")
    if str(name).startswith(NAMESPACE) and not is_named_model(name):
        known = ", ".join(TINY_MODELS)
        raise MsltError(f"{field}: {clipped(name, 80)} is not one of mslt-it's models ({known})")
    if is_named_model(name) and (Path(name).exists() or Path(name).is_symlink()):
        raise MsltError(  # the named model was used, and the folder of the same name ignored
            f"{field}: {name} names mslt-it's model, and a file or folder here has that name "
            f"too; write ./{name} for the folder, or rename it"
        )


def resolve_model_name(name: str, field: str = "model") -> str:
    """A model name as a loader takes it: mslt-it's own names become their (made) folder, and a
    folder written ``~/m`` the home folder's ``m``, as training always took it (transformers
    does not expand ``~``: ``eval --model '~/m'`` passed the folder check, then was read as a
    Hub repo id)."""
    check_model_name(name, field)
    if name.startswith("~"):
        return str(Path(name).expanduser())
    if not is_named_model(name):
        return name
    return str(ensure_named_model(name, named_model_folder(name)))


def recorded_base(run: dict | None) -> str | None:
    """The base model a training's run.json names, as a loader takes it: its ``base_model``,
    unless that folder is gone and the run was trained on one of mslt-it's named models
    (``base_model_name``), which is then made again (one copy per machine, as any command
    makes it). An adapter trained on ``mslt-it:tiny-world`` named the cache's copy only: once
    the cache was cleared, ``merge`` had no base and ``eval`` called it moved."""
    base = (run or {}).get("base_model")
    if not isinstance(base, str):
        return None
    name = (run or {}).get("base_model_name")
    if is_named_model(name) and not Path(base).expanduser().exists():
        return str(ensure_named_model(str(name), named_model_folder(str(name))))
    return base


def base_model_name(folder: str) -> dict[str, str]:
    """``{"base_model_name": NAME}`` when ``folder`` holds one of mslt-it's named models (for a
    run's record, :func:`recorded_base`), else nothing."""
    path = Path(folder).expanduser()
    name = named_model_in(path) if path.is_dir() else None
    return {"base_model_name": name} if name is not None else {}
