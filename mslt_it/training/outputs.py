"""The output folder of a run: what it already holds, and the ``run.json`` written when done.

A run folder holds ``run.started.json`` (the config hash, written before the first step) while
training, Trainer checkpoints under ``checkpoints/``, and at the end the adapter, the tokenizer
and ``run.json``. ``run.json`` is written last and atomically, so its presence means "complete".
Comparing config hashes tells a finished run of the same configuration (skip it), an unfinished
one (resume it) and a different run (refuse to mix them).
"""

from __future__ import annotations

import json
import shutil
import time
import zipfile
from collections.abc import Collection
from enum import Enum
from pathlib import Path
from typing import Any

from mslt_it.errors import MsltError
from mslt_it.io import atomic_write_json, atomic_write_text, read_json, share_files
from mslt_it.outputs import (
    STAGING,
    first_changed,
    foreign_files,
    mark_finished,
    mark_owner,
    move_in_listed,
    remove_output_folder,
)
from mslt_it.peft_adapters import RUN_FILE, STARTED_FILE
from mslt_it.terminal import STDERR

CHECKPOINTS = "checkpoints"


class OutputState(Enum):
    """What an output folder holds relative to the run about to start."""

    EMPTY = "empty"
    DONE = "done"  # the same run, complete
    DAMAGED = "damaged"  # the same run, complete, but a file of it was removed or changed since
    INCOMPLETE = "incomplete"  # the same run, interrupted
    DIFFERENT = "different"  # another configuration's run
    FOREIGN = "foreign"  # files that are not an mslt-it run


def inspect_output(out: Path, config_hash: str, also: Collection[str] = ()) -> OutputState:
    """Classify ``out`` against the run whose hash is ``config_hash`` (or one of ``also``: the
    same run as an older version hashed it)."""
    accepted = {config_hash, *also}
    if not out.exists() or (out.is_dir() and holds_no_files(out)):
        return OutputState.EMPTY
    if not out.is_dir():
        return OutputState.FOREIGN
    run = read_json(out / RUN_FILE)
    if run is not None:
        if run.get("config_hash") not in accepted:
            return OutputState.DIFFERENT
        if (out / STARTED_FILE).exists():  # killed while tidying: the skip finishes the tidy
            return OutputState.DONE
        return OutputState.DONE if first_changed(out) is None else OutputState.DAMAGED
    started = read_json(out / STARTED_FILE)
    if started is not None:
        same = started.get("config_hash") in accepted
        return OutputState.INCOMPLETE if same else OutputState.DIFFERENT
    return OutputState.FOREIGN


def holds_no_files(folder: Path) -> bool:
    """Nothing but (nested) empty folders, such as the checkpoint folder a Trainer creates."""
    return not any(path.is_file() or path.is_symlink() for path in folder.rglob("*"))


def decide(
    state: OutputState, out: Path, *, resume: bool, overwrite: bool, replace_other: bool = False
) -> str:
    """``"start"``, ``"resume"``, ``"skip"`` or ``"restart"`` (clear the folder), else an error.

    ``replace_other``: a run of another configuration is replaced without ``--overwrite``; for a
    caller that owns the folder and knows its settings changed (a recipe's train step, whose
    run was stopped before the recipe was edited).
    """
    if state is OutputState.EMPTY:
        return "start"
    if overwrite or (replace_other and state is OutputState.DIFFERENT):
        return "restart"
    if state is OutputState.DONE:
        return "skip"
    if state is OutputState.DAMAGED:
        raise MsltError(
            f"--out: {str(out)!r} holds this run, but its {first_changed(out)} was removed or "
            "changed since it finished; pass --overwrite to train it again"
        )
    if state is OutputState.INCOMPLETE:
        if resume:
            return "resume"
        raise MsltError(
            f"--out: {str(out)!r} holds an unfinished run of this configuration; pass --resume to "
            "continue it or --overwrite to start again"
        )
    if state is OutputState.DIFFERENT:
        raise MsltError(
            f"--out: {str(out)!r} holds a different run (another configuration); choose another "
            "folder or pass --overwrite to replace it"
        )
    raise MsltError(
        f"--out: {str(out)!r} exists and is not an mslt-it run; choose another folder or pass "
        "--overwrite to replace it"
    )


def clear(out: Path) -> None:
    """Remove a previous run's folder (after ``--overwrite``), whole or not at all: it is
    renamed aside first (:func:`mslt_it.io.remove_folder`). Removed in place, a file that could
    not be removed (read-only, immutable) stopped the removal half-way, and left a folder
    without its weights or marker that no command would take again. ``--out`` given as a link
    to the run's folder: the link is kept and leads to the folder made again, as a build writes
    through one."""
    if out.is_dir():
        remove_output_folder(out)
    elif out.exists():
        out.unlink()


def remove_empty_folders(out: Path) -> None:
    """Undo what a failed start left: the Trainer's checkpoint folder, if it holds no file."""
    folder = out / CHECKPOINTS
    if folder.is_dir() and holds_no_files(folder):
        shutil.rmtree(folder)


def mark_started(out: Path, config_hash: str, determining: dict[str, Any]) -> None:
    """Record which run this folder is for, before anything else is written into it."""
    out.mkdir(parents=True, exist_ok=True)
    mark_owner(out, "adapter")
    atomic_write_json(
        out / STARTED_FILE,
        {"config_hash": config_hash, "started": time.time(), "config": determining},
    )


def last_checkpoint(out: Path) -> str | None:
    """The newest *complete* checkpoint (its trainer state, and weights and optimizer state
    that read whole), or None.

    A kill during a save can leave a newer checkpoint folder without ``trainer_state.json``, or
    with a file cut short; resuming from it would fail, so it is skipped.
    """
    folder = out / CHECKPOINTS
    if not folder.is_dir():
        return None
    complete = [
        (int(path.name.rsplit("-", 1)[-1]), path)
        for path in folder.glob("checkpoint-*")
        if path.name.rsplit("-", 1)[-1].isdigit() and checkpoint_whole(path)
    ]
    return str(max(complete)[1]) if complete else None


def holds_optimizer_state(path: Path) -> bool:
    """Whether a checkpoint holds the optimizer's and the scheduler's state, which the Trainer
    loads only together and otherwise skips without a word (``optimizer.pt`` or ``.bin``, or
    a sharded ``optimizer*`` folder, with ``scheduler.pt``; DeepSpeed's ``global_step*`` folder
    holds both)."""
    names = [child.name for child in path.iterdir()] if path.is_dir() else []
    if any(name.startswith("global_step") for name in names):  # DeepSpeed's, schedule too
        return True
    return "scheduler.pt" in names and any(name.startswith("optimizer") for name in names)


def checkpoint_whole(path: Path) -> bool:
    """Whether a checkpoint's files read whole: its trainer state as a JSON object, its
    safetensors to their last tensor, and its torch files (optimizer, scheduler, random
    state: zip archives) to their closing directory. Headers and ends only: seconds."""
    state = read_json(path / "trainer_state.json")
    if state is None:
        return False
    if not all(safetensors_whole(weights) for weights in path.glob("*.safetensors")):
        return False
    saved = [*path.glob("*.pt"), *path.glob("*.pth"), *path.glob("*.bin")]
    return all(zipfile.is_zipfile(file) for file in saved)


def safetensors_whole(path: Path) -> bool:
    """Whether a ``.safetensors`` file holds its whole header and every tensor it announces
    (the header is read, not the tensors: a check of seconds for gigabytes)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if size < 8 + length or length > 100_000_000:
                return False
            header = json.loads(handle.read(length))
    except (OSError, ValueError, RecursionError):
        return False
    if not isinstance(header, dict):
        return False
    ends = [
        entry["data_offsets"][1]
        for name, entry in header.items()
        if name != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry
    ]
    return all(isinstance(end, int) for end in ends) and 8 + length + max(ends, default=0) <= size


def sort_adapter_config(out: Path) -> None:
    """PEFT writes ``target_modules`` from a set, in an order that changes from run to run:
    sorted, identical trainings give identical ``adapter_config.json`` files (and hashes)."""
    path = out / "adapter_config.json"
    config = read_json(path)
    if config is None:
        return
    modules = config.get("target_modules")
    if isinstance(modules, list) and all(isinstance(m, str) for m in modules):
        config["target_modules"] = sorted(modules)
        atomic_write_text(path, json.dumps(config, indent=2, sort_keys=True) + "\n")


def finish(out: Path, run: dict[str, Any], keep_checkpoints: bool) -> None:
    """Write ``run.json`` (the completion mark) beside the adapter saved in :data:`STAGING`, list
    them all in the marker, move them into place (``run.json`` last), and tidy the folder.

    Listed before they appear: a kill at any moment leaves only files the marker vouches for
    (or working files), so ``--overwrite`` and ``--resume`` always work."""
    staged = out / STAGING
    sort_adapter_config(staged)
    atomic_write_json(staged / RUN_FILE, run)
    share_files(staged)
    move_in_listed(out, staged, "adapter", last=RUN_FILE)
    tidy(out, keep_checkpoints)


def tidy(out: Path, keep_checkpoints: bool) -> None:
    """A finished run's folder without its start record (and checkpoints, unless kept), listed
    again. Also what a re-run does to a finished folder a kill left untidy."""
    (out / STARTED_FILE).unlink(missing_ok=True)
    if not keep_checkpoints:
        theirs = [name for name in foreign_files(out) if name.startswith(f"{CHECKPOINTS}/")]
        if theirs:  # put there while it trained: the folder is kept, with the user's files
            STDERR.print(
                f"warning: kept {out / CHECKPOINTS}: it holds {theirs[0]!r}, which mslt-it did "
                f"not write ({len(theirs)} such file(s)); remove the folder once you have moved "
                "them",
                highlight=False,
                soft_wrap=True,
            )
        else:
            shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    mark_finished(out, "adapter")  # again, now listing every file of the finished run


def load_run(path: str | Path) -> dict[str, Any]:
    """The ``run.json`` of a run folder (what evaluation and merge read), with a clear error."""
    run = read_json(Path(path) / RUN_FILE)
    if run is None:
        raise MsltError(
            f"run: {str(path)!r} has no readable {RUN_FILE}; is it a finished `mslt-it train` run?"
        )
    return run
