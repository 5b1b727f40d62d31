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

The marker is ``.mslt-it-output.json`` (``{"kind": …}``), written by :func:`mark_owner` into every
output folder. Folders written before the marker existed are recognised by their kind's own
completion file (:data:`LEGACY_MARKERS`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from mslt_it.errors import MsltError

OWNER_FILE = ".mslt-it-output.json"

LEGACY_MARKERS: dict[str, tuple[str, ...]] = {
    "dataset": ("manifest.json",),
    "adapter": ("run.json", "run.started.json"),
    "evaluation": ("results.json", "study.json", ".chunks"),
    "report": ("report.md",),
    "analysis": ("analysis.json",),
    "model": ("mslt_it_tiny.json",),
}
"""Files by which an output of each kind, written before :data:`OWNER_FILE`, is recognised."""


def mark_owner(folder: Path, kind: str) -> None:
    """Record in ``folder`` that mslt-it wrote it, and as which kind of output."""
    from mslt_it.io import atomic_write_json

    atomic_write_json(Path(folder) / OWNER_FILE, {"kind": kind, "written_by": "mslt-it"})


def owner_kind(folder: Path) -> str | None:
    """The kind of output mslt-it wrote into ``folder``, or None if it did not write it."""
    from mslt_it.io import read_json

    marker = read_json(folder / OWNER_FILE)
    if marker is not None and isinstance(marker.get("kind"), str):
        return marker["kind"]
    for kind, names in LEGACY_MARKERS.items():
        if any((folder / name).exists() for name in names):
            return kind
    return None


def holds_anything(folder: Path) -> bool:
    """True when ``folder`` holds at least one entry."""
    try:
        return any(folder.iterdir())
    except OSError:
        return True


def _describe(path: Path) -> str:
    return repr(str(path))


def _a(kind: str) -> str:
    """``an evaluation``, ``a dataset``: the article for a kind of output."""
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def check_not_an_input(
    out: Path,
    inputs: Iterable[str | Path | None],
    field: str,
    inside_ok: bool = False,
    noun: str = "folder",
) -> None:
    """``out`` must not be an input, hold one, or lie inside one: inputs are never written to.

    ``inside_ok``: a new folder inside an input folder is fine (a report written beside the
    evaluations it reads; nothing of the input is replaced). ``noun`` is what the message asks
    for instead (``folder``, ``file``).
    """
    target = out.resolve()
    for given in inputs:
        if given is None or str(given) == "":
            continue
        source = Path(given).expanduser()
        if not source.exists():
            continue  # a Hub id, or an input checked (and reported) by its own option
        source = source.resolve()
        if target == source:
            raise MsltError(
                f"{field}: {_describe(out)} is an input of this command; inputs are "
                f"never written to, choose another {noun}"
            )
        if source.is_relative_to(target):
            raise MsltError(
                f"{field}: {_describe(out)} contains the input {_describe(source)}; "
                "choose another folder"
            )
        if target.is_relative_to(source) and source.is_dir() and not inside_ok:
            raise MsltError(
                f"{field}: {_describe(out)} lies inside the input "
                f"{_describe(source)}; inputs are never written to, choose another "
                "folder"
            )


def check_replaceable(out: Path, kind: str, overwrite: bool, field: str) -> None:
    """An existing ``out`` is replaced only with ``--overwrite`` and only if mslt-it wrote it."""
    if not out.is_dir() or not holds_anything(out):
        return
    if not overwrite:
        raise MsltError(
            f"{field}: {_describe(out)} already exists; choose another folder or pass --overwrite"
        )
    found = owner_kind(out)
    if found is None:
        raise MsltError(
            f"{field}: {_describe(out)} holds files that mslt-it did not write; --overwrite "
            "replaces only mslt-it's own outputs, choose another folder"
        )
    if found != kind:
        raise MsltError(
            f"{field}: {_describe(out)} holds an mslt-it {found}, not {_a(kind)}; --overwrite "
            "replaces only an output of the same kind, choose another folder"
        )


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
        raise MsltError(f"{field}: {_describe(folder)} is a file, not a folder")
    try:
        handle, probe = tempfile.mkstemp(prefix=".mslt-it-write-check.", dir=folder)
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise MsltError(f"{field}: cannot create files in {_describe(folder)} ({reason})") from None
    os.close(handle)
    os.unlink(probe)


def lock_path(out: Path) -> Path:
    """The lock file of ``out``: a hidden sibling, so it exists before ``out`` does."""
    resolved = out.resolve()
    return resolved.parent / f".{resolved.name}.mslt-it.lock"


_HELD: set[Path] = set()  # locks this process holds: taking one again is a no-op


@contextlib.contextmanager
def output_lock(out: Path, field: str = "--out", wait: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` for the block.

    Another holder is a one-line error naming its process, or with ``wait`` (shared first-time
    steps such as building the tiny model, which parallel runs all need) this process waits for
    it. The lock is ``flock`` on a sibling file, released by the kernel when a process ends (even
    on ``kill -9``), so a crashed run never leaves a stale lock. The file is removed on release;
    an opener that raced with the removal sees another inode and tries again. Re-entrant within
    a process.
    """
    path = lock_path(out)
    if path in _HELD:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = _acquire(path, out, field, wait)
    _HELD.add(path)
    try:
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}\n".encode())
        yield
    finally:
        _HELD.discard(path)
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(handle)


def _acquire(path: Path, out: Path, field: str, wait: bool) -> int:
    """An open, locked handle on ``path`` (the file that is there now, not a removed one)."""
    for _attempt in range(100):
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _read_holder(handle)
            os.close(handle)
            if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise MsltError(
                    f"{field}: {_describe(out)} is being written by another mslt-it process"
                    f"{holder}; wait for it to finish or choose another folder"
                ) from None
            raise
        if _same_file(handle, path):
            return handle
        os.close(handle)  # removed by its previous holder while we waited: open it again
    raise MsltError(f"{field}: could not lock {_describe(out)}; try again")


def _same_file(handle: int, path: Path) -> bool:
    try:
        return os.fstat(handle).st_ino == os.stat(path).st_ino
    except OSError:
        return False


def _read_holder(handle: int) -> str:
    try:
        pid = os.pread(handle, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def check_destination(
    out: str | Path,
    *,
    field: str = "--out",
    inputs: Iterable[str | Path | None] = (),
    inside_ok: bool = False,
) -> Path:
    """What every output folder needs, whoever owns it: a path, not a file, not one of the
    command's inputs (:func:`check_not_an_input`), and writable. Returns it as a ``Path``."""
    if str(out).strip() == "":  # before Path(), which reads "" as "."
        raise MsltError(f"{field}: an empty path; give a folder")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MsltError(f"{field}: {_describe(out)} is a file; give a folder")
    check_not_an_input(out, inputs, field, inside_ok)
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
    found = owner_kind(out)
    if found is None:
        raise MsltError(
            f"{field}: {_describe(out)} exists and holds files that mslt-it did not write; "
            "choose another folder"
        )
    if found != kind:
        raise MsltError(
            f"{field}: {_describe(out)} holds an mslt-it {found}, not {_a(kind)}; "
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
    inside_ok: bool = False,
) -> Iterator[Path]:
    """Check ``out`` (:func:`check_destination`), lock it, and check its owner under the lock
    (:func:`check_owner`), so no other process can change what the check saw."""
    out = check_destination(out, field=field, inputs=inputs, inside_ok=inside_ok)
    with output_lock(out, field):
        check_owner(out, kind=kind, overwrite=overwrite, field=field, existing_ok=existing_ok)
        yield out


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
    path = Path(path)
    if path.is_dir():
        raise MsltError(f"{field}: {_describe(path)} is a folder; give a file")
    check_not_an_input(path, inputs, field, noun="file")
    if path.exists() and not path.is_file():
        raise MsltError(f"{field}: {_describe(path)} is not a regular file")
    if path.is_file() and not ours(path):
        raise MsltError(
            f"{field}: {_describe(path)} exists and is not {what} written by mslt-it; "
            "choose another file"
        )
    check_writable(path.parent, field)
    return path


def json_kind_is(kind: str) -> Callable[[Path], bool]:
    """``ours`` for :func:`check_output_file`: a JSON file whose ``kind`` is ``kind``."""

    def test(path: Path) -> bool:
        try:
            data = json.loads(path.read_bytes()[:10_000_000].decode("utf-8"))
        except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
            return False
        return isinstance(data, dict) and data.get("kind") == kind

    return test
