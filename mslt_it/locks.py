"""Locks on the folders mslt-it writes, and the look a reader takes at them.

A command that writes a folder holds ``flock`` on a hidden sibling file for as long as it
writes (:func:`output_lock`): a second writer stops at once naming the first, and the kernel
releases the lock of a killed process, so a ``kill -9`` never leaves a lock that blocks. A
reader (``report``, ``score``) only looks (:func:`check_not_being_written`) and makes no file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from mslt_it.errors import MsltError

NAME_MAX = 255
"""The longest file name (in bytes) Linux and macOS file systems take."""


def lock_path(out: Path) -> Path:
    """The lock file of ``out``: a hidden sibling, so it exists before ``out`` does.

    A long folder name would push ``.NAME.mslt-it.lock`` past :data:`NAME_MAX`; such a lock is
    named by a digest of the name instead.
    """
    resolved = out.resolve()
    name = f".{resolved.name}.mslt-it.lock"
    if len(name.encode()) > NAME_MAX:
        digest = hashlib.sha256(resolved.name.encode()).hexdigest()[:32]
        name = f".mslt-it-{digest}.lock"
    return resolved.parent / name


_HELD: set[Path] = set()  # locks this process holds: taking one again is a no-op


class OutputBusy(MsltError):
    """``out`` is locked by another mslt-it process. A caller that chose the folder itself (a
    recipe's step) rewrites the message in its own words from ``out`` and ``holder``."""

    def __init__(self, message: str, out: Path, holder: str) -> None:
        super().__init__(message)
        self.out = out
        self.holder = holder


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
    made = missing_folders(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = _acquire(path, out, field, wait)
    if not _a_lock_file(handle):  # a user's file by that name: written over, then removed
        os.close(handle)
        raise MsltError(
            f"{field}: {described(path)}, where mslt-it keeps the lock of {described(out)}, "
            "holds something other than a lock (a process id); move it away"
        )
    _HELD.add(path)
    try:
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}\n".encode())
        yield
    finally:
        _HELD.discard(path)
        if _same_file(handle, path):  # what is there now is ours: not a link put in its place
            with contextlib.suppress(OSError):
                os.unlink(path)
        os.close(handle)
        # the folders made for the lock go if nothing was written in them (a command that
        # stopped at its input left `score a/b/predictions.jsonl`'s a/b/ behind)
        for folder in made:
            with contextlib.suppress(OSError):
                folder.rmdir()


def check_not_being_written(folder: Path, field: str) -> None:
    """A one-line error when another mslt-it process holds ``folder``'s lock (it is writing
    it): a reader (``report``) read an evaluation that ``eval --update`` was rewriting, and
    wrote a report listing it as unfinished beside its scores. Only looks: a lock file is
    opened for reading where one exists (a writer made it), never made, and released at once.
    """
    path = lock_path(folder)
    if path in _HELD:
        return  # this process writes it (a recipe's report reads the evaluation it just made)
    try:
        handle = _open_lock(path, os.O_RDONLY, folder, field)
    except (FileNotFoundError, NotADirectoryError):
        return  # no lock file: nobody holds it (a holder's is there until it is released)
    except PermissionError:
        return  # another user's lock file, private: this reader cannot tell, and reads on
    try:
        try:
            _glance(handle)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise MsltError(
                f"{field}: {described(folder)} is in use by another mslt-it process"
                f"{_read_holder(handle)} (writing it, or reading it for a recipe's report); "
                "wait for it to finish"
            ) from None
        fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


def check_none_being_written(folders: Iterable[Path | None], field: str) -> None:
    """:func:`check_not_being_written` for each of ``folders`` (each once; None skipped): a
    reader looks before it reads and again once it has read, so an evaluation that began to be
    written in between is not read half old, half new."""
    for folder in dict.fromkeys(folders):
        if folder is not None:
            check_not_being_written(folder, field)


def missing_folders(folder: Path) -> list[Path]:
    """The folders ``mkdir(parents=True)`` would make for ``folder``, deepest first."""
    missing = []
    while not folder.exists() and not folder.is_symlink() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing


def _open_lock(path: Path, flags: int, out: Path, field: str) -> int:
    """An open handle on the lock file ``path``, only where it is a regular file: a FIFO there
    blocked a reader forever (and flock on it was an internal error), and through a link the
    holder's pid was written over the file it points to. Neither is followed nor removed."""
    try:
        handle = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO):  # a link, a folder,
            raise  # a socket
        handle = None
    if handle is not None and stat.S_ISREG(os.fstat(handle).st_mode):
        return handle
    if handle is not None:
        os.close(handle)
    raise MsltError(
        f"{field}: {described(path)}, where mslt-it keeps the lock of {described(out)}, is not "
        "a regular file (a link, a FIFO, a device or a folder); move it away"
    )


def _acquire(path: Path, out: Path, field: str, wait: bool) -> int:
    """An open, locked handle on ``path`` (the file that is there now, not a removed one)."""
    for _attempt in range(100):
        handle = _open_lock(path, os.O_RDWR | os.O_CREAT, out, field)
        try:
            _lock(handle, wait)
        except OSError as error:
            holder = _read_holder(handle)
            os.close(handle)
            if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise OutputBusy(
                    f"{field}: {described(out)} is being written by another mslt-it process"
                    f"{holder}; wait for it to finish or choose another folder",
                    out,
                    holder,
                ) from None
            raise
        if _same_file(handle, path):
            return handle
        os.close(handle)  # removed by its previous holder while we waited: open it again
    raise MsltError(f"{field}: could not lock {described(out)}; try again")


READER_GLANCE_TRIES = 5
"""How often a writer tries a lock before it names its holder: a reader's look
(:func:`check_not_being_written`) holds it for an instant, and the writer was refused."""

WRITE_INSTANT_TRIES = 10
"""How often a reader looks before it names a holder: ``score`` holds an evaluation for the
milliseconds it takes to add its rescored.json to the marker, and a second ``score`` was
refused."""


def _lock(handle: int, wait: bool) -> None:
    """``flock`` the lock exclusively: waiting, or trying a few times over a tenth of a second."""
    if wait:
        fcntl.flock(handle, fcntl.LOCK_EX)
    else:
        _flock_trying(handle, fcntl.LOCK_EX, READER_GLANCE_TRIES, 0.02)


def _glance(handle: int) -> None:
    """``flock`` the lock shared, trying again over half a second."""
    _flock_trying(handle, fcntl.LOCK_SH, WRITE_INSTANT_TRIES, 0.05)


def _flock_trying(handle: int, operation: int, tries: int, pause: float) -> None:
    """``flock(operation)`` without waiting, ``tries`` times ``pause`` seconds apart; raises the
    last ``OSError`` when the lock stays held (or at once, for any other error)."""
    for attempt in range(tries):
        try:
            fcntl.flock(handle, operation | fcntl.LOCK_NB)
            return
        except OSError as error:
            busy = error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)
            if not busy or attempt == tries - 1:
                raise
            time.sleep(pause)


LOCK_CONTENT = re.compile(rb"[0-9]{1,20}\n?")
"""What a lock file holds: nothing (just made) or its last holder's process id."""


def _a_lock_file(handle: int) -> bool:
    """Whether the locked file is empty or holds a process id, as every lock mslt-it left
    does (a killed holder's too): a user's notes saved under the lock's name were cut to the
    new holder's pid and removed with the lock."""
    try:
        content = os.pread(handle, 64, 0)
    except OSError:
        return False
    return not content or LOCK_CONTENT.fullmatch(content) is not None


def _same_file(handle: int, path: Path) -> bool:
    """Whether ``path`` itself (not what a link there points to) is the file of ``handle``."""
    try:
        held, there = os.fstat(handle), os.lstat(path)
    except OSError:
        return False
    return (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)


def _read_holder(handle: int) -> str:
    """`` (pid N)`` of the process holding the lock. It writes its pid just after it locks, so
    a process that starts at the same instant may find the file empty: it looks again for a
    moment before it names no one."""
    for _attempt in range(10):
        try:
            pid = os.pread(handle, 32, 0).decode(errors="replace").strip()
        except OSError:
            return ""
        if pid.isdigit():
            return f" (pid {pid})"
        time.sleep(0.02)
    return ""


def described(path: Path) -> str:
    """``path`` as every message quotes it."""
    return repr(str(path))
