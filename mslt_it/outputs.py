"""Output folders: checked before any work, owned by what wrote them, locked while written.

Every command that writes a folder calls :func:`claim_output` before its first slow step
(:func:`check_destination` alone where the folder may hold others' files too). It refuses, with
a one-line error naming the option:

- an output that is a file, or that is, contains or lies inside one of the command's inputs
  (``train --dataset D --out D`` would otherwise delete the dataset it reads);
- an existing folder without ``--overwrite``, and *with* ``--overwrite`` a folder that mslt-it
  did not write, or that holds another kind of output (a dataset is not replaced by an adapter):
  only folders whose marker says mslt-it wrote them are ever replaced;
- a folder it cannot write into (read-only, no permission), found by creating a file there, so
  the check also holds for root and for read-only mounts;

and it takes an exclusive lock, so a second process on the same output stops at once and says
which process holds it, instead of both writing and one silently losing.

The marker is ``.mslt-it-output.json`` (``{"kind": …, "files": […]}``), written by
:func:`mark_owner` into every output folder. Only the marker proves ownership: a folder holding a
file named like an output (``manifest.json``) is not guessed to be mslt-it's. Outputs of versions
before the marker are adopted explicitly (:func:`adopt_output`, ``mslt-it adopt``), which checks
that the folder holds exactly the files of its kind. Replacing an output also refuses when files
the marker does not list were added to it since (:func:`foreign_files`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from mslt_it.arguments import expect, path_argument
from mslt_it.errors import MsltError, allowed
from mslt_it.files import control_character, resolved_path
from mslt_it.io import (
    MARKER_FORMAT,
    OWNER_FILE,
    atomic_directory,
    atomic_write_json,
    empty_folders,
    file_fingerprint,
    fingerprint_matches,
    is_sealed,
    layout_has_folder,
    mark_owner,
    matches_layout,
    read_json,
    relative_files,
    remove_folder,
    remove_orphans,
    temporary_prefix,
)
from mslt_it.locks import NAME_MAX, described, output_lock
from mslt_it.paths import check_folder_text

TENSORBOARD_LOGS = (
    "tensorboard/events.out.tfevents.[0-9]*",
    "tensorboard/*/events.out.tfevents.[0-9]*",
)
"""The logs a training writes with ``report_to: tensorboard`` (TensorBoard names them
``events.out.tfevents.<time>.<host>.<pid>.<n>``; ``add_scalars`` one folder down)."""

STEP_RECORD = ".mslt-it-step.json"
"""What a recipe's run leaves in each finished step's folder (:data:`mslt_it.runner.MARKER`)."""

SENTENCEPIECE_FILES = (
    "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "sentencepiece.model",
    "spm.model", "source.spm", "target.spm",
)  # fmt: skip
"""The names slow tokenizers save their SentencePiece model under (Llama's, T5's and GPT-SW3's,
XLM-R's and mBART's, DeBERTa-v2's, Marian's two)."""

TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.json", "vocab.txt", "merges.txt", "chat_template.jinja", *SENTENCEPIECE_FILES,
)  # fmt: skip
"""The files ``save_pretrained`` writes for a tokenizer (with its chat template): a
tokenizer's vocabulary files are named by its class (``vocab_files_names``); a checkpoint of a
GPT-SW3 model held ``spiece.model``, which a narrower list took for a user's file."""

CHECKPOINT_FILES = (
    "adapter_model.safetensors", "adapter_model.bin", "adapter_config.json", "README.md",
    "training_args.bin", "trainer_state.json", "optimizer.pt", "optimizer.bin", "scheduler.pt",
    "scaler.pt", "rng_state.pth", "rng_state_*.pth", "latest", "zero_to_fp32.py",
    *TOKENIZER_FILES,
)  # fmt: skip
"""What the Trainer writes into a checkpoint of a LoRA training (PEFT's adapter and card, the
tokenizer, the optimizer, scheduler, scaler and RNG states, one per process, and DeepSpeed's
pointer and script): a checkpoint's files are these by name, never ``*``, which took a user's
notes put there for a checkpoint's file, and ``--overwrite`` deleted them."""


def checkpoint_files(folder: str) -> tuple[str, ...]:
    """:data:`CHECKPOINT_FILES` as patterns under ``folder`` (``checkpoints/checkpoint-<n>``)."""
    return tuple(f"{folder}/{name}" for name in CHECKPOINT_FILES)


ADOPTABLE_FILES: dict[str, tuple[str, ...]] = {
    "dataset": (
        "manifest.json", "dataset_info.json", "state.json", "dataset_dict.json", "data-*.arrow",
        "*/dataset_info.json", "*/state.json", "*/data-*.arrow",
    ),
    "adapter": (
        "run.json", "run.started.json", "adapter_config.json", "adapter_model.safetensors",
        "adapter_model.bin", "training_args.bin", "README.md", *TOKENIZER_FILES,
        "*-loss.png", "*-transfer.png", "*-mix.png", "checkpoints/README.md",
        *checkpoint_files("checkpoints/checkpoint-<n>"), "runs/*/events.out.tfevents.*",
        *TENSORBOARD_LOGS,
    ),
    "model": (
        "mslt_it_tiny.json", "config.json", "generation_config.json", "run.json",
        "model.safetensors", "model-*.safetensors", "model.safetensors.index.json",
        "pytorch_model*.bin", "pytorch_model.bin.index.json", *TOKENIZER_FILES,
    ),
    "experiment": ("recipe.yaml", "*/", "*/*/", "*/.mslt-it-step.json", "*/*/.mslt-it-step.json"),
    "evaluation": (
        "results.json", "predictions.jsonl", "timings.json", "study.json", "rescored.json",
        ".chunks/", ".chunks/*.jsonl", "*/", "*/results.json", "*/predictions.jsonl",
        "*/timings.json", "*/rescored.json", "*/.chunks/", "*/.chunks/*.jsonl",
    ),
    "report": (
        "report.md", "scores.csv", "comparisons.csv", "criteria.md", "heatmap.png", "gain.png",
        "gain-[0-9]*.png", "k_sweep.png", "fertility.png", "*-loss.png", "*-transfer.png",
        "*-mix.png", "analysis[0-9]*_*.png", "*/", "*/report.md", "*/scores.csv",
        "*/comparisons.csv", "*/criteria.md", "*/heatmap.png", "*/gain.png", "*/gain-[0-9]*.png",
        "*/k_sweep.png", "*/fertility.png",
    ),
    "analysis": ("analysis.json", "tsne.png", "pca.png", "layers.png", "cka.png"),
}  # fmt: skip
"""The names each kind of output writes: what ``adopt`` accepts in a folder of that kind, what
a finished output's marker lists (:func:`mark_finished`), and what a marker of an older
version, which lists no files, vouches for. Patterns as wide as ``*.json`` or ``*.txt`` took a
user's notes for mslt-it's. An experiment holds only its recipe and its steps, and an
evaluation only its runs' files and outputs of its own (a comparison, a report), each adopted
(marked) first.
Matched part by part (:func:`matches_layout`), so ``*`` never crosses a ``/``."""


DONE_FILES: dict[str, tuple[str, ...]] = {
    "dataset": ("manifest.json",),
    "adapter": ("run.json",),
    "evaluation": ("results.json", "study.json"),
    "report": ("report.md",),
    "analysis": ("analysis.json",),
    "model": ("mslt_it_tiny.json", "config.json"),
    "experiment": ("recipe.yaml",),
}
"""The file that shows a finished output of each kind: one of them must be there to adopt it."""


def _marker(folder: Path) -> dict | None:
    """The marker of ``folder``, or None: missing, or damaged (not JSON, no kind, a file list
    that is not a mapping of fingerprints; a marker is written whole, so only an edit damages
    one), and a damaged marker proves nothing."""
    marker = read_json(folder / OWNER_FILE)
    if marker is None or not isinstance(marker.get("kind"), str):
        return None
    files = marker.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        return None  # each listed file's fingerprint is text
    version = marker.get("format", 1)
    if type(version) is not int:  # "2", null, true: written by no mslt-it
        return None
    return marker


def _why_not_owned(folder: Path) -> str:
    """Why ``folder``, which holds files, is not proved mslt-it's: its marker is missing, or
    there but damaged (``adopt`` marks an older version's output, not a damaged one)."""
    if os.path.lexists(folder / OWNER_FILE):
        return (
            f"its {OWNER_FILE} is damaged, so nothing proves it mslt-it's; remove the folder "
            "yourself if it is, or choose another"
        )
    return (
        f"it has no {OWNER_FILE}; choose another folder (an output of an older mslt-it: "
        "`mslt-it adopt FOLDER --kind KIND`)"
    )


def _sealed_analysis(folder: Path) -> str | None:
    """``"analysis"`` where ``folder`` holds ``mslt-it analyze``'s sealed analysis.json, which
    proves its files without a marker: named as the analysis it is, not as files mslt-it did
    not write (with advice to ``adopt`` it)."""
    if read_sealed_json(folder / "analysis.json", ANALYSIS_KIND) is not None:
        return "analysis"
    return None


def owner_kind(folder: Path) -> str | None:
    """The kind of output mslt-it wrote into ``folder`` (its marker says so), or None.

    Only the marker proves it: a folder that merely holds a file named like one of mslt-it's
    (``manifest.json``, ``report.md``) is the user's (see :func:`adopt_output` for outputs of
    versions before the marker).
    """
    marker = _marker(Path(folder))
    return marker["kind"] if marker is not None else None


def listed_files(folder: Path) -> dict[str, Any] | None:
    """The files the marker of ``folder`` lists with their fingerprints (None: no marker, or
    one of a version that listed none)."""
    marker = _marker(Path(folder))
    listed = marker.get("files") if marker is not None else None
    return listed if isinstance(listed, dict) else None


WORKING_FILES = (
    ".*.mslt-*.tmp", ".*.mslt-*.tmp/**", ".*.mslt-*.old/**",
    "*/.*.mslt-*.tmp", "*/.*.mslt-*.tmp/**", "*/.*.mslt-*.old/**",
    ".*.mslt-it.lock", ".mslt-it-*.lock", "*/.*.mslt-it.lock", "*/.mslt-it-*.lock",
    ".mslt-it-step.json", "*/.mslt-it-step.json",
    ".mslt-it-write-check.*", "*/.mslt-it-write-check.*",
)  # fmt: skip
"""Files any output may hold between its markings, named as only mslt-it names them
(:func:`mslt_it.io.temporary_prefix`, :func:`mslt_it.locks.lock_path`, a recipe step's record,
the probe of :func:`check_writable`, which another task of a Slurm array may see for an
instant), matched part by part (:func:`matches_layout`): a user's ``notes.lock`` or
``checkpoints/mine/`` is theirs."""

LOCK_NAMES = (".*.mslt-it.lock", ".mslt-it-*.lock")
PROBE_NAME = ".mslt-it-write-check.*"


def _regular_size(path: Path) -> int | None:
    """The size of ``path`` when it is a regular file (never a link followed), else None."""
    try:
        found = os.lstat(path)
    except OSError:
        return None
    return found.st_size if stat.S_ISREG(found.st_mode) else None


def _holds_a_lock(path: Path) -> bool:
    """What :func:`mslt_it.locks.output_lock` writes: nothing yet, or its holder's pid."""
    size = _regular_size(path)
    if size is None or size > 32:
        return False
    try:
        return re.fullmatch(rb"(\d+\n)?", path.read_bytes()) is not None
    except OSError:
        return False


def _holds_a_step_record(path: Path) -> bool:
    """What a recipe's run records in a finished step's folder (``step`` and ``input_hash``)."""
    if _regular_size(path) is None:
        return False
    record = read_json(path)
    return record is not None and isinstance(record.get("step"), str) and "input_hash" in record


WORKING_FILE_CONTENT: tuple[tuple[str, Callable[[Path], bool]], ...] = (
    *((name, _holds_a_lock) for name in LOCK_NAMES),
    (STEP_RECORD, _holds_a_step_record),
    (PROBE_NAME, lambda path: _regular_size(path) == 0),
)
"""Working files whose content says what they are, checked beside their names: a user's
``.rep.mslt-it.lock`` or ``.mslt-it-step.json`` holding notes was taken for a lock or a
step's record by name alone, and ``--overwrite`` removed it."""


def is_working_file(folder: Path, name: str, working: tuple[str, ...]) -> bool:
    """Whether ``name`` in ``folder`` is one of the ``working`` files, by its name and, where
    it has one, by its content (:data:`WORKING_FILE_CONTENT`)."""
    if not matches_layout(name, working):
        return False
    base = name.rsplit("/", 1)[-1]
    check = next((c for pattern, c in WORKING_FILE_CONTENT if fnmatch.fnmatch(base, pattern)), None)
    return check is None or check(folder / name)


CHUNK_FILES = ("settings.json", "*.*.[0-9][0-9][0-9][0-9][0-9].jsonl", ".*.mslt-*.tmp")
"""What an evaluation writes into a run's ``.chunks/`` (:mod:`mslt_it.evaluation.store`): its
settings, ``<task>.<lang>.<n>.jsonl`` and a chunk being written. ``.chunks/*`` took a user's
notes there for a chunk: a resumed evaluation listed them in its marker as its own, and the
next ``--overwrite`` removed them."""

KIND_WORKING_FILES: dict[str, tuple[str, ...]] = {
    "adapter": (
        *checkpoint_files("checkpoints/checkpoint-<n>"),
        *checkpoint_files("checkpoints/tmp-checkpoint-<n>"), "checkpoints/README.md",
        ".final.tmp/**",
    ),
    "evaluation": (
        *(f"{run}.chunks/{name}" for run in ("", "*/") for name in CHUNK_FILES),
        ".final.tmp/**",
    ),
}  # fmt: skip
"""Working files of one kind: the Trainer's checkpoints, an evaluation's chunks and staging
folders."""

UNFINISHED_WORKING_FILES: dict[str, tuple[str, ...]] = {
    "adapter": ("run.started.json", *TENSORBOARD_LOGS),
}
"""Working files of one kind, while its output is unfinished: a training writes its start
record after its marker, and its TensorBoard log (``report_to: tensorboard``, the default) as it
runs. Once finished, the marker lists them with their fingerprints like any other file."""

NESTED_KINDS: dict[str, tuple[str, ...]] = {
    "experiment": ("dataset", "adapter", "evaluation", "report", "analysis", "model"),
    "evaluation": ("evaluation", "report"),
}
"""The outputs of its own an output may hold, each answering for its files with its marker: a
recipe's steps; a comparison's models and report, or a report written into an evaluation
folder. An evaluation inside an evaluation is its own only where its record names it
(:func:`nested_is_its_own`). Any other output found inside (a model copied into a dataset) is
the user's, and ``--overwrite`` stops at it."""

MODELS_RECORD = "models.json"
"""``OUT/models.json``: which folders of a comparison (``eval --model A --model B``) are its
models' evaluations (model -> folder), sealed and listed in the comparison's marker. It alone
proves a folder one of the comparison's: a user's own evaluation, or a copy of a model's,
placed beside them is an evaluation of mslt-it's too, and was reopened, dropped and, with
``--overwrite``, removed with them."""

MODELS_KIND = "mslt-it model comparison"

COMPARISON = "comparison"
"""``OUT/comparison/``: a comparison's report of its models, part of it as they are."""


def models_record(folder: Path) -> dict[str, str] | None:
    """Model -> folder as ``folder``'s :data:`MODELS_RECORD` names them, when its marker lists
    the record unchanged and it is sealed and well formed; else None (no record, or one removed,
    edited or the user's: nothing it says is proved)."""
    listed = listed_files(folder) or {}
    record = Path(folder) / MODELS_RECORD
    if MODELS_RECORD not in listed or not fingerprint_matches(record, listed[MODELS_RECORD]):
        return None
    data = read_sealed_json(record, MODELS_KIND)
    models = data.get("models") if data is not None else None
    if not isinstance(models, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in models.items()
    ):
        return None
    return models


def nested_is_its_own(folder: Path, name: str, nested: str | None) -> bool:
    """Whether the output of kind ``nested`` in ``folder``'s subfolder ``name`` is ``folder``'s
    (:data:`NESTED_KINDS`), so that replacing ``folder`` may take it along. An evaluation in an
    evaluation must be named by the host's :data:`MODELS_RECORD`: only a comparison makes
    evaluations inside its own, and a user's ``eval --out CMP/mine`` (or a copy of one) was
    removed by the comparison's ``--overwrite``. A host marked before :data:`MARKER_FORMAT` 2
    keeps the rule it was written under (any evaluation inside is its own), unless it holds the
    record already (a comparison made before the format was)."""
    marker = _marker(Path(folder))
    kind = marker["kind"] if marker is not None else None
    if nested is None or nested not in NESTED_KINDS.get(kind or "", ()):
        return False
    if (kind, nested) != ("evaluation", "evaluation"):
        return True
    recorded = models_record(folder)
    if recorded is not None:  # a comparison made before the format but with its record
        return name.rstrip("/") in recorded.values()
    return marker.get("format", 1) < MARKER_FORMAT


def working_files(kind: str, folder: Path | None = None) -> tuple[str, ...]:
    """The working files an output of ``kind`` may hold: :data:`WORKING_FILES`, and its kind's
    own while it is unfinished (no :data:`DONE_FILES` in ``folder``)."""
    finished = folder is not None and any(
        (folder / name).is_file() for name in DONE_FILES.get(kind, ())
    )
    always = (*WORKING_FILES, *KIND_WORKING_FILES.get(kind, ()))
    return always if finished else (*always, *UNFINISHED_WORKING_FILES.get(kind, ()))


def foreign_files(folder: Path) -> list[str]:
    """Files in mslt-it's output ``folder`` that mslt-it did not write (the user added them).

    A file is mslt-it's when the marker lists it unchanged (:func:`file_fingerprint`: a file
    the user edited is theirs now), when it lies in an output of its own that this kind holds
    (:data:`NESTED_KINDS`, whose marker answers for it), or when it is one of the working files
    (:func:`working_files`). A marker of an older version lists no files; then only the names
    its kind writes (:data:`ADOPTABLE_FILES`, as ``adopt`` accepts) vouch, never a pattern as
    wide as ``*.txt``. An empty folder is the user's unless the kind's layout has it
    (``checkpoints/``): removing it loses no bytes, but it was not mslt-it's to remove.
    """
    folder = Path(folder)
    marker = _marker(folder)
    if marker is None:
        return relative_files(folder)
    kind = marker["kind"]
    listed = marker.get("files")
    working = working_files(kind, folder)
    older = () if isinstance(listed, dict) else ADOPTABLE_FILES.get(kind, ())
    if not isinstance(listed, dict):
        listed = {}

    def ours(name: str) -> bool:
        if is_working_file(folder, name, working) or matches_layout(name, older):
            return True
        return name in listed and listed[name] == file_fingerprint(folder / name)

    found: list[str] = []
    for name in relative_files(folder):
        if not name.endswith("/"):
            if not ours(name):
                found.append(name)
        elif nested_is_its_own(folder, name, owner_kind(folder / name)):
            found += [name + inner for inner in foreign_files(folder / name)]  # its marker answers
        else:  # another output moved in: the user's, with everything in it
            found.append(name)
    found += unclaimed_empty_folders(folder, kind, listed, older)
    return sorted(found)


def unclaimed_empty_folders(
    folder: Path, kind: str, listed: Collection[str] = (), older: tuple[str, ...] = ()
) -> list[str]:
    """The empty folders in ``folder`` (an output of ``kind``) that are the user's: neither
    laid out by the kind's working files (``checkpoints/``) or by ``older`` names, nor a folder
    of a ``listed`` file. One answer for :func:`foreign_files` and ``adopt``, which accepted an
    empty folder that the next ``--overwrite`` then refused as the user's."""
    # ``*/.x.mslt-1.tmp`` is a working file in any folder: it lays out no folder of its own
    # (``*`` would take a user's ``mine/`` for one). A kind's own ``*/.chunks/*`` lays out a
    # run's ``X/.chunks/`` (left empty by a kill), that whole name and no shorter one.
    working = working_files(kind, folder)
    layout = (*(p for p in working if not p.startswith("*/")), *older)
    anywhere = set(WORKING_FILES)
    inner = [
        pattern.rsplit("/", 1)[0]
        for pattern in working
        if pattern.startswith("*/") and pattern not in anywhere and pattern.count("/") > 1
    ]
    return [
        name
        for name in empty_folders(folder)  # a user's empty folder is theirs too
        if not layout_has_folder(name, layout)
        and not matches_layout(name.rstrip("/"), inner)
        and not any(f.startswith(name) for f in listed)
    ]


def output_intact(folder: Path) -> bool:
    """Every file the marker lists is still there, unchanged (small files by content, large
    ones by size: a copied folder keeps sizes, not times). A folder without a marker, or with
    one of a version that listed no files, cannot tell and counts as intact."""
    return first_changed(folder) is None


def first_changed(folder: Path) -> str | None:
    """The first file the marker lists that is gone or changed (see :func:`output_intact`).
    Files in a hidden working folder (:func:`in_hidden_folder`) are listed while the output is
    finished and moved in from there, so their going is no change: after a kill in between,
    a finished file was called removed ("its .final.tmp/README.md was removed")."""
    return next(iter(changed_files(folder)), None)


def changed_files(folder: Path) -> list[str]:
    """Every file the marker lists that is gone or changed (see :func:`first_changed`): a
    removed file first in the list hid an edited one after it. A comparison's models'
    evaluations (its :data:`MODELS_RECORD`) and its report are part of it: a model's results
    or the report edited by hand, or removed, left a recipe's comparison step "done"."""
    folder = Path(folder)
    marker = _marker(folder)
    listed = marker.get("files") if marker is not None else None
    if not isinstance(listed, dict):
        return []
    changed = [
        name
        for name, recorded in listed.items()
        if not in_hidden_folder(name)
        and not fingerprint_matches(folder / name, recorded, by_size=True)
    ]
    recorded = models_record(folder)
    if recorded is None:
        return changed
    parts = {name: "evaluation" for name in recorded.values()} | {COMPARISON: "report"}
    for name, kind in sorted(parts.items()):
        if owner_kind(folder / name) != kind or (folder / name).is_symlink():
            changed.append(name + "/")
        else:
            changed += [f"{name}/{inner}" for inner in changed_files(folder / name)]
    return changed


def mark_finished(folder: Path, kind: str, coming: dict[str, str] | None = None) -> None:
    """Mark a folder written bit by bit (an evaluation, an adapter) when it finishes, listing
    only the files its kind writes: a file the user dropped in meanwhile is never claimed.
    ``coming``: files about to be moved in (see :func:`mslt_it.io.mark_owner`)."""
    known = _marker(Path(folder))
    earlier = known.get("files") if known is not None else None
    written = () if kind in LISTED_AS_WRITTEN else ADOPTABLE_FILES.get(kind, ())
    mark_owner(
        folder,
        kind,
        patterns=(*written, *working_files(kind)),
        also=set(earlier) if isinstance(earlier, dict) else set(),
        coming=coming,
    )


LISTED_AS_WRITTEN = ("evaluation",)
"""Kinds whose every file is listed as it is written (moved in from staging, or recorded, as
``score`` records a rescored.json): at the end nothing else is theirs. A user's
``my-run/results.json`` dropped into a study while it ran matched ``*/results.json``."""


STAGING = ".final.tmp"
"""Where an output's finished files are written before they are recorded and moved in (a
working file: hidden, ``.tmp``)."""


WORKING_FOLDER_NAMES = (".chunks", STAGING)
"""Folders inside an output that mslt-it clears as its own working space (an evaluation's saved
chunks, the staging folder): never an output's own ``--out``, where a later run of the output
around it would clear the user's files with them."""


TEMPORARY_FILE = ".*.mslt-*.tmp"
"""How :func:`mslt_it.io.temporary_prefix` names a file or folder being written."""

TEMPORARY_NAMES = (TEMPORARY_FILE, ".*.mslt-*.old")
"""The same, and a folder being replaced."""


def in_hidden_folder(name: str | Path) -> bool:
    """Whether a path (relative to an output) lies in a hidden folder: an output's working
    space (:data:`WORKING_FOLDER_NAMES`), whose files the marker may list while it is being
    finished, but which holds no finished result (a killed evaluation's staged results.json
    was reported, and called a run, from there)."""
    return any(part.startswith(".") for part in Path(name).parts[:-1])


def check_not_working_space(out: Path, field: str) -> None:
    """``out`` is not, and is not inside, a working folder of an mslt-it output (its
    ``.chunks``, its staging folder, a temporary ``.name.mslt-….tmp``), as written or where
    its links lead (a link to a killed evaluation's staging folder was read as results)."""
    try:
        resolved = Path(out).resolve()
    except (OSError, RuntimeError):  # a loop: named by whoever opens it
        resolved = Path(out)
    for path in dict.fromkeys([Path(out), resolved]):
        parts = path.parts
        for index, part in enumerate(parts):
            working = part in WORKING_FOLDER_NAMES or matches_layout(part, TEMPORARY_NAMES)
            if working and owner_kind(Path(*parts[:index])) is not None:
                raise MsltError(
                    f"{field}: {described(Path(out))} is inside {part!r}, a folder mslt-it "
                    "clears as its own working space; choose another folder"
                )


def fresh_staging(folder: Path, name: str = STAGING) -> Path:
    """An empty staging folder ``name`` in ``folder``: a killed run's is cleared (the caller
    holds ``folder``'s lock, which keeps live writers out)."""
    staged = Path(folder) / name
    if staged.is_symlink():
        staged.unlink()  # the link itself, never what it points to
    elif staged.exists() and not staged.is_dir():
        raise MsltError(
            f"{described(staged)} is a file mslt-it did not write, where it writes its output "
            "aside before moving it in; move it away"
        )
    shutil.rmtree(staged, ignore_errors=True)
    return staged


def move_into(folder: Path, staged: Path, names: Iterable[str]) -> None:
    """Move ``names`` (paths relative to ``staged``, in this order) into ``folder``, then drop
    ``staged``. Called once they are recorded, so no file appears unrecorded."""
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged / name, folder / name)
    shutil.rmtree(staged, ignore_errors=True)


def move_in_listed(folder: Path, staged: Path, kind: str, last: str | None = None) -> None:
    """Move the files written aside in ``staged`` into ``folder``, listing them in its marker
    first; ``last`` (the completion mark, ``run.json``) moves after every other file."""
    names = [name for name in relative_files(staged) if not name.endswith("/")]
    mark_finished(folder, kind, coming={n: file_fingerprint(staged / n) for n in names})
    move_into(folder, staged, sorted(names, key=lambda n: n == last))


def adopt_output(
    folder: str | Path, kind: str, prove: Callable[[Path, str], None] | None = None
) -> list[str]:
    """Mark an output of an mslt-it version older than :data:`OWNER_FILE` as mslt-it's own.

    Proof instead of a guess: the folder must hold a finished output of ``kind`` (one of its
    :data:`DONE_FILES`) and nothing but files of that kind (:data:`ADOPTABLE_FILES`), and
    ``prove`` (the content's own checks, from a layer that reads datasets and weights:
    :mod:`mslt_it.adopt_checks`) must pass while the folder is locked; then the marker is
    written and the adopted files are returned. ``mslt-it adopt FOLDER --kind KIND``.
    """
    field = "folder"
    expect(kind, str, "kind", f"one of {allowed(DONE_FILES)}")
    if kind not in DONE_FILES:
        raise MsltError(f"--kind: unknown kind {kind!r}; choose one of {allowed(DONE_FILES)}")
    folder = path_argument(folder, field)
    if not folder.is_dir():
        resolved_path(folder, field)  # a link loop is one, not "not a folder"
        raise MsltError(f"{field}: {described(folder)} is not a folder")
    found = owner_kind(folder)
    if found is not None:
        raise MsltError(f"{field}: {described(folder)} is already marked as an mslt-it {found}")
    if not any((folder / name).is_file() for name in DONE_FILES[kind]):  # before any walk
        raise MsltError(
            f"{field}: {described(folder)} holds no {' or '.join(DONE_FILES[kind])}, so it is "
            f"not a finished {kind}; nothing was marked"
        )
    missing = unfinished_part(folder, kind)
    if missing is not None:
        raise MsltError(
            f"{field}: {described(folder)} is not a finished {kind} of mslt-it's ({missing}); "
            "nothing was marked"
        )
    with output_lock(folder, field):
        files = relative_files(folder)
        special = [
            n
            for n in files
            if not n.endswith("/") and not (folder / n).is_symlink() and not (folder / n).is_file()
        ]
        if special:
            raise MsltError(
                f"{field}: {described(folder)} holds {special[0]!r}, which is not a regular file "
                "(a FIFO or a device); nothing was marked"
            )
        links = [n for n in files if (folder / n).is_symlink()]
        if links:
            raise MsltError(
                f"{field}: {described(folder)} holds {links[0]!r}, a link (mslt-it writes files, "
                "never links, and an overwrite would follow it); nothing was marked"
            )
        # a recipe's record of the step an output is (runner.MARKER): named as only mslt-it
        # names it, and in every step of an experiment, which was then not adoptable
        layout = (*ADOPTABLE_FILES[kind], STEP_RECORD)
        strangers = [n for n in files if not matches_layout(n, layout)]
        # an empty folder that an --overwrite would keep as the user's is not adopted
        strangers += unclaimed_empty_folders(folder, kind)
        if strangers:
            steps = (
                " (a step not adopted yet? adopt each step first)" if kind == "experiment" else ""
            )
            raise MsltError(
                f"{field}: {described(folder)} holds {strangers[0]!r}, which {_a(kind)} of "
                f"mslt-it never holds ({len(strangers)} such file(s)){steps}; move them away "
                "first, nothing was marked"
            )
        check_seals(folder, kind, files)
        if prove is not None:
            prove(folder, kind)
        mark_owner(folder, kind)
    return files


def check_seals(folder: Path, kind: str, files: list[str]) -> None:
    """The files that say what they are must say it truly: a ``rescored.json`` or
    ``analysis.json`` names its kind, and its seal, where it has one (versions before the seal
    wrote none), matches; a sealed analysis.json's pictures are the ones it lists. ``adopt``
    claimed a rescored.json written by hand, and a later ``eval --overwrite`` deleted it as
    mslt-it's own."""
    field = "folder"
    kinds = {"rescored.json": RESCORED_KIND, "analysis.json": ANALYSIS_KIND}
    for name in files:
        expected = kinds.get(Path(name).name)
        if expected is None:
            continue
        data = read_json(folder / name)
        if (
            not isinstance(data, dict)
            or data.get("kind") != expected
            or ("sha256" in data and not is_sealed(data))
        ):
            raise MsltError(
                f"{field}: {described(folder)} holds {name!r}, which is not "
                f"{expected.removeprefix('mslt-it ')} mslt-it wrote (written by hand, or edited "
                "since); move it away first, nothing was marked"
            )
    analysis = read_json(folder / "analysis.json") if kind == "analysis" else None
    if not is_sealed(analysis) or not isinstance(analysis.get("files"), dict):
        return  # an analysis of a version before the seal lists no pictures
    for name in files:
        if name != "analysis.json" and analysis["files"].get(name) != file_fingerprint(
            folder / name
        ):
            raise MsltError(
                f"{field}: {described(folder)} holds {name!r}, which its analysis.json does not "
                "list as written (edited since, or not the analysis's); move it away first, "
                "nothing was marked"
            )


FINISHED_RECORDS: dict[str, tuple[str, str]] = {
    "dataset": ("manifest.json", "fingerprint"),
    "adapter": ("run.json", "config_hash"),
    "analysis": ("analysis.json", "kind"),
    "model": ("config.json", "model_type"),
}
"""The record a finished output of a kind holds, and a field every such record has."""

WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "adapter_model.bin")
"""Weight files as transformers and PEFT name them (``*.bin`` alone took a Trainer's
``training_args.bin`` for weights)."""


def unfinished_part(folder: Path, kind: str) -> str | None:
    """What shows ``folder`` is not a finished output of ``kind`` (its record is not one, its
    weights are missing), or None. ``adopt`` claims a folder on the user's word; this keeps the
    word to what the folder shows, so a later ``--overwrite`` cannot take a folder of notes."""
    if kind in FINISHED_RECORDS:
        name, key = FINISHED_RECORDS[kind]
        record = read_json(folder / name)
        if (folder / name).is_file() and (record is None or key not in record):
            return f"its {name} has no {key!r}"
    if kind in ("adapter", "model") and not any(
        path.is_file() for pattern in WEIGHTS for path in folder.glob(pattern)
    ):
        return f"no weights ({', '.join(WEIGHTS)})"
    if kind == "evaluation":
        results = read_json(folder / "results.json") or read_json(folder / "study.json")
        if results is None:
            return "its results.json or study.json is not a JSON mapping"
    if kind == "experiment":
        recipe = folder / "recipe.yaml"
        if not recipe.is_file():  # a FIFO would block, a device never end
            return "its recipe.yaml is not a regular file"
        with recipe.open("rb") as handle:  # its head is enough, whatever its size
            text = handle.read(100_000).decode("utf-8", errors="replace")
        if "name:" not in text:
            return "its recipe.yaml names no experiment"
    return None


def holds_anything(folder: Path) -> bool:
    """True when ``folder`` holds at least one entry."""
    try:
        return any(folder.iterdir())
    except OSError:
        return True


def _a(kind: str) -> str:
    """``an evaluation``, ``a dataset``: the article for a kind of output."""
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def check_not_an_input(
    out: Path,
    inputs: Iterable[str | Path | None],
    field: str,
    inside_kind: str | None = None,
    noun: str = "folder",
) -> None:
    """``out`` must not be an input, hold one, or lie inside one: inputs are never written to.

    ``inside_kind``: an output of this kind may lie inside an input that is mslt-it's output
    holding that kind (:data:`NESTED_KINDS`: a report written into the evaluation it reads;
    nothing of the input is replaced, and the evaluation's marker answers for it). Inside a
    folder of the user's, or a run folder of an evaluation given alone, it is refused: a
    report was written into the user's own input. ``noun`` is what the message asks for
    instead (``folder``, ``file``).
    """
    target = resolved_path(out, field)
    sources: list[Path] = []
    for given in inputs:
        if given is None or str(given) == "":
            continue
        source = Path(given).expanduser()
        if not source.exists():
            continue  # a Hub id, or an input checked (and reported) by its own option
        sources.append(source.resolve())
        if sources[-1].is_dir():
            sources += linked_folders(sources[-1])
    for source in sources:
        if target == source:
            raise MsltError(
                f"{field}: {described(out)} is an input of this command; inputs are "
                f"never written to, choose another {noun}"
            )
        if source.is_relative_to(target):
            raise MsltError(
                f"{field}: {described(out)} contains the input {described(source)}; "
                "choose another folder"
            )
        if (
            target.is_relative_to(source)
            and source.is_dir()
            and inside_kind not in NESTED_KINDS.get(owner_kind(source) or "", ())
        ):
            raise MsltError(
                f"{field}: {described(out)} lies inside the input "
                f"{described(source)}; inputs are never written to, choose another "
                "folder"
            )


LINK_SEARCH_DEPTH = 3
"""How deep :func:`linked_folders` looks: a data folder is ``DIR/<task>/<lang>/<split>``."""

LINK_SEARCH_ENTRIES = 20_000
"""Entries :func:`linked_folders` reads at most (a data folder of every task and language
holds a few thousand)."""


def linked_folders(folder: Path) -> list[Path]:
    """The folders that links inside an input folder lead to, and links inside those (read
    through a link, ``data/claims`` pointing elsewhere, they are inputs too, and an ``--out``
    inside one lay inside the data it read), to the depth a data folder has."""
    found: list[Path] = []
    waiting, visited, seen = [(folder, LINK_SEARCH_DEPTH)], {folder}, 0
    while waiting:
        parent, depth = waiting.pop(0)
        try:
            entries = list(os.scandir(parent))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > LINK_SEARCH_ENTRIES:
                return found
            try:
                if entry.is_symlink():
                    below = Path(entry.path).resolve()
                    if not below.is_dir():
                        continue
                    found.append(below)
                elif entry.is_dir():
                    below = Path(entry.path)
                else:
                    continue
            except (OSError, RuntimeError):
                continue  # a loop or a link to nothing: read as no folder
            if depth > 1 and below not in visited:
                visited.add(below)
                waiting.append((below, depth - 1))
    return found


def check_replaceable(out: Path, kind: str, overwrite: bool, field: str) -> None:
    """An existing ``out`` is replaced only with ``--overwrite`` and only if mslt-it wrote it."""
    if not out.is_dir() or not holds_anything(out):
        return
    # what --overwrite would refuse is said first: advised to pass it, the user was refused
    found = owner_kind(out) or _sealed_analysis(out)
    if found is None:
        raise MsltError(
            f"{field}: {described(out)} holds files that mslt-it did not write, and --overwrite "
            f"replaces only mslt-it's own outputs: {_why_not_owned(out)}"
        )
    if found != kind:
        raise MsltError(
            f"{field}: {described(out)} holds an mslt-it {found}, not {_a(kind)}; --overwrite "
            "replaces only an output of the same kind, choose another folder"
        )
    check_nothing_foreign(out, field)  # --overwrite would stop there: said before advised
    if not overwrite:
        raise MsltError(
            f"{field}: {described(out)} already exists; choose another folder or pass --overwrite"
        )


def remove_own_output(out: Path, field: str) -> None:
    """Remove mslt-it's output ``out`` whole, once :func:`check_nothing_foreign` proves that
    nothing of the user's goes with it."""
    check_nothing_foreign(out, field)
    remove_output_folder(out)


def remove_output_folder(out: Path) -> None:
    """Remove the output folder ``out``, renamed aside first (:func:`remove_folder`: a kill
    leaves it whole, still ours, or gone). Given as the user's link, the link stays and leads
    to an empty folder in its target's place, as build and report write through it; removed,
    the output was made anew beside the link's old target, left stale."""
    if out.is_symlink():
        remove_folder(out.resolve(), emptied=True)
    else:
        remove_folder(out)


def drop_derived_reports(out: Path, field: str, keep: Collection[str] = ()) -> list[str]:
    """Remove the reports written into the output ``out`` (``report EV --out EV/rep``), which
    are made from it: ``eval --update`` made the evaluation again and left them showing the
    numbers before, where ``--overwrite`` took them along. Only reports the marker proves
    ``out``'s own (:func:`nested_is_its_own`) and that hold nothing of the user's
    (:func:`check_nothing_foreign`); ``keep`` names those the caller makes again itself (a
    comparison's ``comparison/``). Returns the names removed."""
    reports = derived_reports(out, keep)  # never a link: each is the folder itself
    for report in reports:  # all proven before one goes: a refusal leaves every one in place
        check_nothing_foreign(report, field)
    for report in reports:
        remove_folder(report)
    return [report.name for report in reports]


def derived_reports(out: Path, keep: Collection[str] = ()) -> list[Path]:
    """The reports written into the output ``out`` that are its own (:func:`nested_is_its_own`),
    but those ``keep`` names."""
    return [
        child
        for child in (sorted(out.iterdir()) if out.is_dir() else ())
        if child.name not in keep
        and not child.is_symlink()
        and child.is_dir()
        and owner_kind(child) == "report"
        and nested_is_its_own(out, child.name + "/", "report")
    ]


def check_nothing_foreign(out: Path, field: str, within: str = "") -> None:
    """Replacing mslt-it's ``out`` (or, given ``within``, its folder of that name: a training's
    ``checkpoints/``) must not take a file of the user's with it."""
    strangers = [name for name in foreign_files(out) if name.startswith(within)]
    if strangers:
        written = _listed_by_its_output(out, strangers[0])
        placed = owner_kind(out / strangers[0]) if strangers[0].endswith("/") else None
        how = (
            "edited since mslt-it wrote it"
            if written
            else f"an mslt-it {placed} that is not part of it"
            if placed
            else "which mslt-it did not write"
        )
        raise MsltError(
            f"{field}: {described(out)} holds {strangers[0]!r}, {how} ({len(strangers)} such "
            "file(s)); move them out of it or choose another folder"
        )


def _listed_by_its_output(out: Path, name: str) -> bool:
    """Whether the marker of the output holding ``name`` (``out``, or an output of its own
    inside it: a comparison's model) lists it, so that it is there because it was edited."""
    head, _, rest = name.partition("/")
    if rest and _marker(out / head) is not None:
        return _listed_by_its_output(out / head, rest)
    listed = (_marker(out) or {}).get("files")
    return isinstance(listed, dict) and name in listed


def check_writable(path: Path, field: str) -> None:
    """Create and remove a file in ``path`` (or its nearest existing parent) to prove it writable.

    ``os.access`` is not enough: it says yes to root on a read-only folder's permission bits and
    does not know every read-only mount.
    """
    folder = Path(path)
    while not folder.exists():
        if folder.parent == folder:
            break
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        raise MsltError(f"{field}: {described(folder)} is a file, not a folder")
    try:
        handle, probe = tempfile.mkstemp(prefix=".mslt-it-write-check.", dir=folder)
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise MsltError(f"{field}: cannot create files in {described(folder)} ({reason})") from None
    os.close(handle)
    os.unlink(probe)


def check_removable(out: Path, field: str) -> None:
    """``out`` and every folder in it take a file, and so does the folder holding it: a run that
    clears several outputs proves each can go before it removes any (a read-only one found
    midway stopped the run with the others already gone)."""
    check_writable(out.parent, field)

    def unreadable(error: OSError) -> None:  # os.walk skips a folder it cannot list
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise MsltError(f"{field}: cannot read {described(Path(error.filename))} ({reason})")

    for folder, _, _ in os.walk(out, onerror=unreadable):  # a link goes, not its target
        check_writable(Path(folder), field)


PATH_MAX = 4096
"""Linux's limit on a whole path, its final NUL included (macOS's is 1024, and says so)."""


def check_path_names(path: Path, field: str) -> None:
    """Every part of ``path`` fits in a file name (:data:`NAME_MAX` bytes) and holds no control
    character (:func:`mslt_it.files.control_character`)."""
    found = control_character(str(path))
    if found is not None:
        raise MsltError(
            f"{field}: {str(path)!r} holds the control character {found!r}; a folder or file "
            "name mslt-it writes has none"
        )
    for part in path.parts:
        if len(part.encode()) > NAME_MAX:
            raise MsltError(
                f"{field}: the name {part[:40]!r}… is {len(part.encode())} bytes; a file name "
                f"holds at most {NAME_MAX}"
            )
    whole = len(os.path.abspath(path).encode())
    if whole >= PATH_MAX:
        raise MsltError(
            f"{field}: {str(path)[:40]!r}… is a path of {whole} bytes (from /); a path holds at "
            f"most {PATH_MAX - 1}"
        )


def check_reachable(out: Path, field: str) -> None:
    """``out`` can be looked at: a folder on the way that this user may not enter
    (``/proc/1/root/…``) made the first look at it an error without the option's name."""
    try:
        out.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return  # not there yet (or under a file): the checks below say so
    except OSError as error:
        raise MsltError(
            f"{field}: cannot reach {described(out)} ({error.strerror or error}); give a folder "
            "you may write to"
        ) from None


def check_destination(
    out: str | Path,
    *,
    field: str = "--out",
    inputs: Iterable[str | Path | None] = (),
    inside_kind: str | None = None,
) -> Path:
    """What every output folder needs, whoever owns it: a path, not a file, not one of the
    command's inputs (:func:`check_not_an_input`), and writable. Returns it as a ``Path``."""
    if str(out).strip() == "":  # before Path(), which reads "" as "."
        raise MsltError(f"{field}: an empty path; give a folder")
    check_folder_text(str(out), field)  # "~/x" was written as ./~/x (a Trainer's checkpoints
    out = Path(out)  # went to the home folder's x), under a message that named ~/x
    check_path_names(out, field)
    check_not_working_space(out, field)
    check_reachable(out, field)
    if out.is_symlink() and not out.exists():
        target = str(os.readlink(out))
        try:
            out.resolve(strict=False)
            why = "which does not exist"
        except (RuntimeError, OSError):  # Path.resolve names a loop this way
            why = "which leads back to itself (a symlink loop)"
        raise MsltError(
            f"{field}: {described(out)} is a symlink to {target!r}, {why}; give a folder"
        )
    if out.exists() and not out.is_dir():
        what = "a file" if out.is_file() else "not a folder (a FIFO or a device)"
        raise MsltError(f"{field}: {described(out)} is {what}; give a folder")
    check_not_an_input(out, inputs, field, inside_kind)
    check_writable(out if out.is_dir() else out.parent, field)
    return out


def check_owner(
    out: Path,
    *,
    kind: str,
    overwrite: bool = False,
    field: str = "--out",
    existing_ok: bool = False,
) -> None:
    """An existing ``out`` must be mslt-it's own output of ``kind``.

    ``existing_ok``: the caller decides what an existing folder of this kind means (resume, skip,
    an evaluation's per-run settings); otherwise it is replaced only with ``--overwrite``.
    """
    if not (existing_ok and out.is_dir() and holds_anything(out)):
        check_replaceable(out, kind, overwrite, field)
        return
    found = owner_kind(out) or _sealed_analysis(out)
    if found is None:
        raise MsltError(
            f"{field}: {described(out)} exists and holds files that mslt-it did not write: "
            f"{_why_not_owned(out)}"
        )
    if found != kind:
        raise MsltError(
            f"{field}: {described(out)} holds an mslt-it {found}, not {_a(kind)}; "
            "choose another folder"
        )


@contextlib.contextmanager
def claim_output(
    out: str | Path,
    *,
    kind: str,
    overwrite: bool = False,
    inputs: Iterable[str | Path | None] = (),
    field: str = "--out",
    existing_ok: bool = False,
    inside_kind: str | None = None,
) -> Iterator[Path]:
    """Check ``out`` (:func:`check_destination`), lock it, and check its owner under the lock
    (:func:`check_owner`), so no other process can change what the check saw."""
    out = check_destination(out, field=field, inputs=inputs, inside_kind=inside_kind)
    check_host(out, kind, field)
    with output_lock(out, field):
        for place in dict.fromkeys([out, out.resolve()]):  # through a link: its target's too
            remove_orphans(place.parent, temporary_prefix(place.name))  # a killed writer's
            # set-aside copy (a removal stopped half-way) went only at the next removal
        check_owner(out, kind=kind, overwrite=overwrite, field=field, existing_ok=existing_ok)
        yield out


HOST_LEVELS = None
"""How many folders up an output looks for another output of mslt-it's it would lie in: all of
them (six, and ``select --save EV/a/b/c/d/e/f/p.json`` was written inside an evaluation)."""


def replacing_output(
    path: Path, kind: str, overwrite: bool
) -> contextlib.AbstractContextManager[Path]:
    """:func:`mslt_it.io.atomic_directory` for an output of ``kind``: a replaced output that
    holds a file the user put there while the command ran (:func:`foreign_files`) is kept."""
    return atomic_directory(
        path, overwrite=overwrite, kind=kind, holds_users=lambda old: bool(foreign_files(old))
    )


def check_file_outside_outputs(path: Path, field: str) -> None:
    """A file mslt-it writes on its own (``run --emit-slurm``, ``select --save``) does not go
    inside another of its outputs: the holder's marker does not list it, so the holder's
    ``--overwrite`` stopped at it as a file mslt-it did not write, which it was not."""
    holder = marked_output(path, levels=HOST_LEVELS)
    if holder is not None:
        raise MsltError(
            f"{field}: {str(path)!r} lies inside {str(holder)!r}, mslt-it's "
            f"{owner_kind(holder)}, whose --overwrite would then stop at a file its marker does "
            "not list; write it outside it"
        )


def check_host(out: Path, kind: str, field: str) -> None:
    """An output goes inside another of mslt-it's only where that one holds its kind
    (:data:`NESTED_KINDS`: a recipe's steps in an experiment, a report or comparison in an
    evaluation). A model written into a dataset (``tiny-model DATA/m``, ``merge --out
    DATA/m``) was a stranger there, and the dataset's ``--overwrite`` then refused it as a
    folder mslt-it did not write."""
    holder = marked_output(out, levels=HOST_LEVELS)
    host = owner_kind(holder) if holder is not None else None
    if host is None:
        return
    inside = located(out).relative_to(holder).as_posix()
    if nested_is_its_own(holder, inside, kind):  # of a kind it holds, and its own
        return
    if kind in NESTED_KINDS.get(host, ()) and models_record(holder) is not None:
        raise MsltError(
            f"{field}: {described(out)} lies inside {str(holder)!r}, mslt-it's {host}, which "
            f"holds no {kind} but its own models' (its {MODELS_RECORD} names them); choose a "
            "folder outside it"
        )
    raise MsltError(
        f"{field}: {described(out)} lies inside {str(holder)!r}, mslt-it's {host}, which never "
        f"holds {_a(kind)}; choose a folder outside it"
    )


def check_output_file(
    path: str | Path,
    *,
    field: str,
    inputs: Iterable[str | Path | None] = (),
    ours: Callable[[Path], bool],
    what: str,
) -> Path:
    """Checks for a command that writes one file (``score --out``, ``run --emit-slurm``).

    Never an input, a folder or a device; an existing file only if ``ours`` says mslt-it wrote
    it (an earlier ``what``); and its folder writable. Then the atomic write cannot destroy
    anything of the user's.
    """
    if str(path).strip() == "":  # before Path(), which reads "" as "."
        raise MsltError(f"{field}: an empty path; give a file")
    check_folder_text(str(path), field)
    path = Path(path)
    check_path_names(path, field)
    if path.is_symlink():  # replaced by the write, even a link to nowhere: the user's link
        resolved_path(path, field)  # a loop is said as one
        raise MsltError(f"{field}: {described(path)} is a link; give the path of a file")
    if path.is_dir():
        raise MsltError(f"{field}: {described(path)} is a folder; give a file")
    check_not_an_input(path, inputs, field, noun="file")
    if path.exists() and not path.is_file():
        raise MsltError(f"{field}: {described(path)} is not a regular file")
    if path.is_file() and not ours(path):
        raise MsltError(
            f"{field}: {described(path)} exists and is not {what} written by mslt-it; "
            "choose another file"
        )
    check_writable(path.parent, field)
    return path


def sealed_json_of_kind(kind: str) -> Callable[[Path], bool]:
    """``ours`` for :func:`check_output_file`: a JSON file whose ``kind`` is ``kind`` and whose
    seal (:func:`mslt_it.io.seal`) still matches, so a file edited since is the user's."""
    return lambda path: read_sealed_json(path, kind) is not None


def read_sealed_json(path: Path, kind: str) -> dict[str, Any] | None:
    """The content of ``path`` when it is a JSON file of mslt-it's of ``kind``, sealed and
    unedited (:func:`sealed_json_of_kind`); else None. Only a regular file is read, to a size
    limit (:func:`mslt_it.io.read_json`): a FIFO of that name never blocks."""
    data = read_json(path)
    if data is None or data.get("kind") != kind or not is_sealed(data):
        return None
    return data


ANALYSIS_KIND = "mslt-it analysis"
"""The ``kind`` of an analysis.json, which its seal proves mslt-it's."""

RESCORED_KIND = "mslt-it rescored results"
"""The ``kind`` of a rescored.json (:func:`mslt_it.evaluation.scoring.rescore_file`)."""
"""The ``kind`` in analysis.json (``mslt-it analyze``): with its seal, what proves a file of
that name is an analysis mslt-it wrote, to replace it or to show it in a report."""


def located(path: str | Path, field: str = "path") -> Path:
    """``path`` where the system finds it: its folder resolved (``..`` after a link, and the
    links themselves), its own name kept. Read as text, ``t0/../m`` lay inside ``t0``. A link
    loop is one line naming ``field`` (:func:`mslt_it.files.resolved_path`)."""
    path = Path(path).absolute()
    if path.name in ("", ".", ".."):  # no name of its own: ``ds/..`` is the folder above ds
        return resolved_path(path, field)
    return resolved_path(path.parent, field) / path.name


def marked_output(path: Path, levels: int | None = 3) -> Path | None:
    """The output of mslt-it's that ``path`` lies in: its folder or the nearest one above (up
    to ``levels``; None: up to the root) holding a marker (an evaluation's run subfolder
    belongs to the evaluation)."""
    folder = located(path).parent
    for _ in range(levels if levels is not None else len(folder.parts)):
        if _marker(folder) is not None:
            return folder
        if folder.parent == folder:
            break
        folder = folder.parent
    return None


def changed_since_written(path: Path, kind: str) -> bool:
    """Whether ``path`` lies in an output of ``kind`` whose marker lists it, and it was changed
    or removed since (what mslt-it wrote is known only there; elsewhere nothing can tell)."""
    folder = marked_output(path)
    if folder is None or owner_kind(folder) != kind:
        return False
    listed = listed_files(folder) or {}
    name = located(path).relative_to(folder).as_posix()
    return name in listed and not fingerprint_matches(Path(path), listed[name], by_size=True)


def record_file(path: Path, removed: Iterable[Path] = ()) -> None:
    """Add a file mslt-it just wrote into one of its outputs (``score``'s rescored.json in an
    evaluation, or in one of its runs' subfolders; ``analyze``'s files beside an evaluation or
    in an adopted analysis) to that output's marker, and take off the ``removed`` ones, so
    replacing it later takes the file along instead of calling it the user's. Elsewhere
    nothing is done."""
    folder = marked_output(path)
    marker = _marker(folder) if folder is not None else None
    if folder is None or marker is None or not isinstance(marker.get("files"), dict):
        return

    def name(of: Path) -> str:
        return located(of).relative_to(folder).as_posix()

    gone = {name(p) for p in removed}
    files = {k: v for k, v in marker["files"].items() if k not in gone}
    files[name(path)] = file_fingerprint(Path(path))
    atomic_write_json(folder / OWNER_FILE, {**marker, "files": files})
