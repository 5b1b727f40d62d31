"""Content identity: what a step's output depends on, as digests of content, never of paths.

A path is not an identity: a task definition edited in place, a data file replaced, a model
re-trained into the same folder all keep their paths. Every step (build, train, eval, a recipe's
skip) records the digests below, and a changed digest means the step's old output is stale.

Hashing a 7B model's weights takes seconds; the digest of each file is remembered under its
``(path, size, mtime, inode)`` in ``$MSLT_IT_CACHE/digests.json``, so an unchanged file is hashed
once per machine (the same rule ``make`` and ``rsync`` trust).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from mslt_it.errors import MsltError
from mslt_it.files import MAX_TEXT_BYTES, opened_regular_file, read_user_bytes
from mslt_it.io import atomic_write_json, read_json
from mslt_it.progress import progress_bar

CHUNK = 1 << 22
MODEL_FILES = (".safetensors", ".bin", ".json", ".model", ".jinja", ".txt", ".py", ".tiktoken")
"""The files of a model or adapter folder that shape its outputs (weights, configs, tokenizer)."""
DATA_FILES = (".jsonl", ".json", ".parquet", ".csv", ".arrow", ".tsv")
"""The files of a data folder (task data, corpora, built datasets) whose rows a step reads."""


def cache_folder() -> Path:
    """``$MSLT_IT_CACHE``, else ``$XDG_CACHE_HOME/mslt-it``, else ``~/.cache/mslt-it``."""
    explicit = os.environ.get("MSLT_IT_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mslt-it"


_MEMORY: dict[str, str] = {}


def _stat_key(path: Path) -> str | None:
    """What a file's remembered digest is kept under. The change time is in it: an edit that
    keeps the size and sets the modification time back (``touch -r``) still moves it, and no
    user can set it back, so such a file is hashed again instead of read as unchanged."""
    state = file_state(path)
    if state is None:
        return None
    return "|".join(map(str, (path.resolve(), *state)))


def file_state(path: str | Path) -> tuple[int, int, int, int] | None:
    """A file's size, modification and change times and inode: any write or replacement
    moves at least one (the change time cannot be set back), so equal states before and after
    a read mean the bytes read are the bytes hashed before it."""
    try:
        info = Path(path).stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino


def _disk_cache() -> dict[str, Any]:
    return read_json(cache_folder() / "digests.json") or {}


def _remembered(key: str | None) -> str | None:
    """The digest this machine already computed for the file at ``key``, if any."""
    if key is None:
        return None
    if key in _MEMORY:
        return _MEMORY[key]
    known = _disk_cache().get(key)
    if isinstance(known, str):
        _MEMORY[key] = known
        return known
    return None


def file_sha256(
    path: str | Path, read: Callable[[int], None] | None = None, field: str = "file"
) -> str:
    """SHA-256 of a regular file's bytes, remembered by its stat key (see the module's text).

    ``read`` is told the size of each block read (a progress bar's advance). Anything but a
    regular file (a FIFO would block for ever, a folder has no bytes) is a one-line error naming
    ``field``."""
    path = Path(path)
    key = _stat_key(path)
    known = _remembered(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with opened_regular_file(path, field) as handle:
        while block := os.read(handle, CHUNK):
            digest.update(block)
            if read is not None:
                read(len(block))
    value = digest.hexdigest()
    if key is not None:
        _MEMORY[key] = value
        if path.stat().st_size >= CHUNK:  # only large files are worth a disk entry
            with contextlib.suppress(OSError):
                cache = _disk_cache()
                cache[key] = value
                atomic_write_json(cache_folder() / "digests.json", cache)
    return value


def tree_sha256(
    folder: str | Path, suffixes: Iterable[str] = MODEL_FILES, *, users: bool = False
) -> str:
    """One digest over the names and contents of a folder's files with the given suffixes.

    Folders behind links are followed, as the readers of a data folder follow them (a task's
    folder linked into ``DIR``): a file that is read is a file that is hashed. ``users``: a
    folder of the user's (data, templates), whose readers read hidden files and folders named
    ``checkpoints`` too (a split ``.train``, a task ``checkpoints``), so none is passed over;
    otherwise an output of mslt-it's, whose markers and checkpoints are not its content.
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    wanted = tuple(suffixes)
    files = [
        relative
        for relative in sorted(_files_below(folder, users), key=lambda path: path.parts)
        if relative.suffix in wanted and (folder / relative).is_file()
    ]
    sizes = {relative: (folder / relative).stat().st_size for relative in files}
    unread = sum(  # small files are never remembered on disk, and never slow
        size
        for relative, size in sizes.items()
        if size >= CHUNK and _remembered(_stat_key(folder / relative)) is None
    )
    with contextlib.ExitStack() as stack:
        read = None
        if unread >= PROGRESS_BYTES:  # a 7B model's first hash takes a minute: say so
            progress = stack.enter_context(progress_bar())
            task = progress.add_task(f"hashing {folder.name or folder} (MiB)", total=unread >> 20)
            read = _advance_mib(progress, task)
        for relative in files:
            value = file_sha256(folder / relative, read if sizes[relative] >= CHUNK else None)
            digest.update(f"{relative.as_posix()}\0{value}\n".encode())
    return digest.hexdigest()


PROGRESS_BYTES = 1 << 30
"""Unhashed bytes in a folder from which hashing it shows progress (about 2 s of reading)."""


def _advance_mib(progress: Any, task: Any) -> Callable[[int], None]:
    """A ``read`` callback advancing ``task`` by whole MiB (the bar's unit)."""
    pending = 0

    def read(size: int) -> None:
        nonlocal pending
        pending += size
        if pending >= 1 << 20:
            progress.advance(task, pending >> 20)
            pending &= (1 << 20) - 1

    return read


def _files_below(folder: Path, every: bool = False) -> Iterator[Path]:
    """Paths (relative to ``folder``) of every entry below it that is not a folder, following
    linked folders once each (a link cycle ends where a folder repeats). Unless ``every``,
    hidden entries and ``checkpoints`` are passed over: mslt-it's own markers, working files
    and checkpoints."""
    seen: set[str] = set()
    for root, folders, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            folders[:] = []
            continue
        seen.add(real)
        if not every:
            folders[:] = [n for n in folders if not n.startswith(".") and n != "checkpoints"]
        below = Path(root).relative_to(folder)
        yield from (below / name for name in names if every or not name.startswith("."))


def model_identity(name_or_path: str | Path) -> dict[str, Any]:
    """A model's identity: a local folder's content digest, or a Hub id and its revision.

    For a Hub id the revision is the commit the local cache resolves ``main`` to (offline runs
    read it from the cache); without one, only the id is known, and the output says so.
    """
    path = Path(str(name_or_path)).expanduser()
    if path.is_dir():
        return {"sha256": tree_sha256(path)}
    return {"hub_id": str(name_or_path), "revision": hub_revision(str(name_or_path))}


TOKENIZER_FILES = (".json", ".model", ".txt", ".tiktoken", ".jinja", ".py")
"""A tokenizer's files in a model folder (its vocabulary, merges, configs), weights aside."""


def tokenizer_identity(name_or_path: str | Path) -> dict[str, Any]:
    """A tokenizer's identity: a local folder's tokenizer files (a model's weights do not
    change how it splits text, and a 7B model's would take a minute to hash), or a Hub id and
    its revision."""
    path = Path(str(name_or_path)).expanduser()
    if path.is_dir():
        return {"sha256": tree_sha256(path, TOKENIZER_FILES)}
    return model_identity(name_or_path)


def model_changed(recorded: Any, name_or_path: str | Path) -> bool:
    """True when ``name_or_path`` no longer holds the model ``recorded`` (a training's
    ``base_model_identity``): a folder's files differ from their recorded digest, or the Hub
    cache resolves to another revision. False when they agree or nothing can be compared.

    A path is not an identity: a base retrained or replaced in the same folder would
    otherwise carry adapters trained on the old one, with numbers that mean nothing.
    """
    if not isinstance(recorded, dict):
        return False
    path = Path(str(name_or_path)).expanduser()
    if isinstance(recorded.get("sha256"), str) and path.is_dir():
        return model_identity(path) != recorded
    before = recorded.get("revision")
    if isinstance(recorded.get("hub_id"), str) and isinstance(before, str) and not path.exists():
        now = hub_revision(str(name_or_path))
        return isinstance(now, str) and now != before
    return False


def same_model(a: str, b: str) -> bool:
    """Two model references name the same model: equal ids, or the same folder on disk (a
    copy elsewhere is compared by content, against the identity its training recorded)."""
    if a == b:
        return True
    path_a, path_b = Path(a).expanduser(), Path(b).expanduser()
    if path_a.exists() and path_b.exists():
        return path_a.resolve() == path_b.resolve()
    return a.rstrip("/") == b.rstrip("/")


def check_base_unchanged(
    recorded: Any, base: str | Path, who: str, instead: str, record_edited: bool = False
) -> None:
    """A one-line error when the base model ``who`` was trained on (``recorded``, its
    training's ``base_model_identity``) has changed in ``base`` since (:func:`model_changed`);
    ``instead`` says what the command does about it (``eval``, ``analyze`` and ``merge``).
    ``record_edited``: the run.json holding ``recorded`` was edited since training, so the
    difference may be the edit's, and the message does not blame the base alone."""
    if model_changed(recorded, base):
        if record_edited:
            raise MsltError(
                f"{who} was trained on a base model whose files are not those in {str(base)!r}: "
                "the base changed since (retrained or replaced), or its run.json, edited since "
                f"training, no longer records the base it was trained on; {instead}"
            )
        raise MsltError(
            f"{who} was trained on a base model whose files have changed since in {str(base)!r} "
            f"(retrained or replaced); {instead}"
        )


def hub_revision(repo_id: str) -> str | None:
    """The commit the Hugging Face cache holds for ``repo_id``'s ``main``, or None."""
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:
        return None
    ref = Path(HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}" / "refs" / "main"
    try:
        return read_user_bytes(ref, "model", 1000).decode().strip() or None
    except (ValueError, OSError):
        return None


def text_file_sha256(path: str | Path, field: str) -> str:
    """SHA-256 of a small user file (a definition, a suite), read under the usual limits."""
    return hashlib.sha256(read_user_bytes(path, field, MAX_TEXT_BYTES)).hexdigest()


def rows_sha256(rows: Iterable[Any]) -> str:
    """SHA-256 of rows as canonical JSON: the data a step actually read, wherever it came from."""
    digest = hashlib.sha256()
    for row in rows:
        text = json.dumps(row, sort_keys=True, ensure_ascii=False, default=str)
        digest.update(text.encode())
        digest.update(b"\n")
    return digest.hexdigest()
