"""Atomic writes: nothing half-written is ever left where a user (or a resumed run) would read it.

Every file and directory that mslt-it produces is first written under a temporary name in the same
directory and then renamed into place; a rename within one filesystem is atomic.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from mslt_it.errors import MsltError, clipped, first_line
from mslt_it.files import MAX_JSON_BYTES, read_user_bytes
from mslt_it.jsonlines import first_problem, json_block_size
from mslt_it.terminal import STDERR

OWNER_FILE = ".mslt-it-output.json"
"""The marker that proves mslt-it wrote a folder (:mod:`mslt_it.outputs` checks it)."""

MARKER_FORMAT = 2
"""What a marker's ``format`` says, and what it proves. From 2 on, an output of mslt-it's lying
inside an evaluation is the evaluation's only where the evaluation's own record names it
(:func:`mslt_it.outputs.nested_is_its_own`); a marker without ``format`` (1) was written
before, when any evaluation found inside one was taken for its own."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def shared_file_mode() -> int:
    """The mode an output file gets: what the umask allows (``mkstemp`` alone gives 0600)."""
    return 0o666 & ~_umask()


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON mapping's content, or None when the file is missing, unreadable or not a mapping
    (half-written by a kill, or someone else's file)."""
    try:  # a regular file only, checked on its handle: a FIFO would block, a device never end
        data = json.loads(read_user_bytes(path, "file", MAX_JSON_BYTES).decode("utf-8"))
    except (MsltError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def atomic_write_text(path: str | Path, text: str, *, replace: bool = True) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never a part.

    ``replace=False`` creates ``path`` only if nothing is there, atomically: of two processes
    writing the same new file, one gets :class:`FileExistsError` instead of both "succeeding".
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = temporary_prefix(path.name)
    remove_orphans(path.parent, prefix)
    fd, tmp = tempfile.mkstemp(prefix=prefix + this_writer(), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, shared_file_mode())  # mkstemp makes files private; outputs are not
        if replace:
            os.replace(tmp, path)
        else:
            _create_from(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def temporary_prefix(name: str) -> str:
    """The start of the names of ``name``'s temporaries: hidden, and short enough that a
    250-byte name plus the rest still fits in a file name."""
    return f".{name[:100]}.mslt-"


def this_writer() -> str:
    """Who writes a temporary (host and process), so a later writer can tell one left by a
    process that is gone (``kill -9``) from one still being written."""
    return f"{_host()}-{os.getpid()}."


def _host() -> str:
    return socket.gethostname()[:40]


def remove_orphans(folder: Path, prefix: str) -> None:
    """Remove temporaries of ``prefix`` that a process of this host left when it was killed.

    Only names of exactly mslt-it's form, written on this host by a process id that no longer
    runs: a temporary of a live writer (or of another host sharing the folder) is never
    touched. A reused process id keeps an orphan for later, which is the safe side.
    """
    mine = f"{prefix}{_host()}-"
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(mine)]
    except OSError:
        return
    for entry in entries:
        pid = entry.name[len(mine) :].split(".", 1)[0]
        if not pid.isdigit() or not entry.name.endswith((".tmp", ".old")) or _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


def remove_folder(path: Path, *, emptied: bool = False) -> None:
    """Remove the folder ``path`` whole, or leave it whole: it is renamed aside to a temporary
    of this writer's (:func:`this_writer`) first and removed there, which a later writer
    removes if a kill stops it (:func:`remove_orphans`). Removed in place, a kill mid-way
    left a folder without its marker or its settings beside files no command could tell
    apart from the user's, or trust.

    ``emptied``: an empty folder takes its place at once, with its mode and group (a shared
    folder's setgid group), before the old one is removed: the folder a user's link leads to,
    which a kill during the removal left missing, and every later command refused the link."""
    path = Path(path)
    prefix = temporary_prefix(path.name)
    remove_orphans(path.parent, prefix)
    kept = os.stat(path) if emptied else None
    trash = Path(tempfile.mkdtemp(prefix=prefix + this_writer(), suffix=".old", dir=path.parent))
    os.replace(path, trash / "removed")
    if kept is not None:
        path.mkdir()
        with contextlib.suppress(OSError):  # another owner's group: kept as the system allows
            os.chown(path, -1, kept.st_gid)
        with contextlib.suppress(OSError):
            os.chmod(path, stat.S_IMODE(kept.st_mode))
    remove_trash(trash, str(path))


def remove_trash(trash: Path, what: str) -> None:
    """Remove a folder set aside; one that cannot be removed entirely (a file read-only or
    immutable) is said, not left hidden."""
    shutil.rmtree(trash, ignore_errors=True)
    if trash.exists():
        STDERR.print(
            f"warning: {what} could not be removed entirely; what is left of it is in {trash}",
            highlight=False,
            soft_wrap=True,
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def temporary_folder(folder: Path, name: str) -> Path:
    """A new, empty folder in ``folder`` for writing ``name`` aside, named as only mslt-it names
    its temporaries (this host and process, :func:`temporary_prefix`); a killed writer's are
    removed first. A fixed name could already be the user's folder, or a link to one."""
    prefix = temporary_prefix(name)
    Path(folder).mkdir(parents=True, exist_ok=True)
    remove_orphans(folder, prefix)
    tmp = Path(tempfile.mkdtemp(prefix=prefix + this_writer(), suffix=".tmp", dir=folder))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes folders private; outputs are not
    return tmp


def _create_from(tmp: str, path: Path) -> None:
    """Give ``tmp`` the name ``path`` unless that name exists (a hard link is atomic and
    exclusive; where the file system has none, an exclusive create claims the name first)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some network and FUSE file systems)
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def to_json(data: Any) -> str:
    """Canonical JSON (sorted keys, UTF-8, trailing newline) so equal data gives equal bytes."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def atomic_write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as canonical JSON, atomically."""
    atomic_write_text(path, to_json(data))


def share_files(folder: str | Path) -> None:
    """Give files that libraries wrote private (0600, via ``mkstemp``) the usual mode.

    transformers and safetensors write weights through temporary files, which are owner-only;
    an output folder's other files follow the umask, and a shared group should read all of them.
    """
    mode = shared_file_mode()
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_mode & 0o077 == 0:
            os.chmod(path, mode)


@contextlib.contextmanager
def atomic_directory(
    path: str | Path,
    overwrite: bool = False,
    kind: str | None = None,
    holds_users: Callable[[Path], bool] | None = None,
) -> Iterator[Path]:
    """Yield a temporary sibling directory that becomes ``path`` only if the block succeeds.

    On any exception the temporary directory is removed, so a failed build leaves nothing behind.
    With ``overwrite`` an existing ``path`` is replaced; without it the caller must have checked
    (:func:`mslt_it.outputs.claim_output` does, and refuses folders mslt-it did not write).
    ``kind`` marks the new folder as mslt-it's own output of that kind. ``holds_users`` is asked
    of the replaced folder once it is set aside: the check before the work began cannot see a
    file the user put there while it ran, so such a folder is kept, and said, not removed.
    """
    path = Path(path).resolve()  # "." and "runs/x/.." have no usable name of their own
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = temporary_prefix(path.name)
    tmp = temporary_folder(path.parent, path.name)
    try:
        yield tmp
        share_files(tmp)
        if kind is not None:
            mark_owner(tmp, kind)
        keep_folder_mode(path, tmp)
        if path.exists() and overwrite:
            trash = Path(
                tempfile.mkdtemp(prefix=prefix + this_writer(), suffix=".old", dir=path.parent)
            )
            os.replace(path, trash / "previous")
            os.replace(tmp, path)
            if holds_users is not None and holds_users(trash / "previous"):
                # a name of its own: a temporary's would be a killed writer's to a later one
                kept = Path(
                    tempfile.mkdtemp(prefix=f"{path.name[:100]}.previous-", dir=path.parent)
                )
                os.replace(trash / "previous", kept)
                trash.rmdir()
                STDERR.print(
                    f"warning: the output this one replaced holds files mslt-it did not write "
                    f"(put there while this command ran); it is kept in {kept}",
                    highlight=False,
                    soft_wrap=True,
                )
                return
            remove_trash(trash, "the output this one replaced")
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def keep_folder_mode(existing: Path, new: Path) -> None:
    """Give ``new``, which is to replace the folder ``existing``, that folder's permissions and
    group, and, where the group is shared (setgid), its files and folders that group as they
    would have taken it inside: an empty folder given as ``--out`` (or one replaced with
    ``--overwrite``) made private (0700) or shared with a group came back as the umask makes
    folders, its files in the user's own group."""
    try:
        found = existing.lstat()
    except OSError:  # nothing there: the umask's mode, as for any new folder
        return
    if not stat.S_ISDIR(found.st_mode):
        return
    shared = bool(found.st_mode & stat.S_ISGID)  # its files take its group: so do the new ones
    for path in [new, *(new.rglob("*") if shared else ())]:
        if path.is_symlink():
            continue
        with contextlib.suppress(OSError):  # a group this user is not in: the mode alone
            os.chown(path, -1, found.st_gid)
        if path != new and path.is_dir():
            os.chmod(path, stat.S_IMODE(path.stat().st_mode) | stat.S_ISGID)
    os.chmod(new, stat.S_IMODE(found.st_mode))


def relative_files(folder: Path) -> list[str]:
    """Every file under ``folder`` as a path relative to it, sorted; folders holding their own
    marker are one entry (``name/``), since they vouch for their own files."""
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        for name in list(dirs):
            if (here / name).is_symlink():  # a link to a folder: an entry, not a tree to walk
                dirs.remove(name)
                found.append((here / name).relative_to(folder).as_posix())
            elif (here / name / OWNER_FILE).is_file():
                dirs.remove(name)
                found.append((here / name).relative_to(folder).as_posix() + "/")
        for name in files:
            if name != OWNER_FILE:
                found.append((here / name).relative_to(folder).as_posix())
    return sorted(found)


def empty_folders(folder: Path) -> list[str]:
    """Every folder under ``folder`` that holds nothing at all, as ``name/`` relative to it,
    sorted. :func:`relative_files` lists files, so an empty folder of the user's would go
    unseen by a check of what an output holds (folders with their own marker, and links, are
    not walked into, as there)."""
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = [
            name
            for name in dirs
            if not (here / name).is_symlink() and not (here / name / OWNER_FILE).is_file()
        ]
        if here != Path(folder) and not dirs and not files:
            with os.scandir(here) as entries:  # walk drops what it cannot classify
                if next(entries, None) is None:
                    found.append(here.relative_to(folder).as_posix() + "/")
    return sorted(found)


def layout_has_folder(name: str, patterns: Iterable[str]) -> bool:
    """Whether the folder ``name`` (relative, ``a/b/``) is one that ``patterns`` (as in
    :func:`matches_layout`) lay out: a folder pattern (``*/``) it matches, or the leading parts
    of a file pattern (``checkpoints/`` of ``checkpoints/checkpoint-<n>/*``)."""
    parts = name.rstrip("/").split("/")
    for pattern in patterns:
        wanted = pattern.rstrip("/").split("/")
        is_folder = pattern.endswith("/")
        for index, part in enumerate(parts):
            if index >= len(wanted) or (
                wanted[index] != "**" and not part_matches(part, wanted[index])
            ):
                break
            if wanted[index] == "**":
                return True
        else:
            if len(parts) < len(wanted) or (is_folder and len(parts) == len(wanted)):
                return True
    return False


def part_matches(part: str, pattern: str) -> bool:
    """``fnmatch`` of one path part, where ``<n>`` stands for a whole number only, as the
    Trainer writes it: ``checkpoint-500``, never a user's ``checkpoint-best`` or
    ``checkpoint-05``."""
    if "<n>" not in pattern:
        return fnmatch.fnmatchcase(part, pattern)
    head, _, tail = pattern.partition("<n>")
    middle = part[len(head) : len(part) - len(tail)]
    return (
        len(part) > len(head) + len(tail)
        and part.startswith(head)
        and part.endswith(tail)
        and middle.isascii()
        and middle.isdigit()
        and (middle == "0" or not middle.startswith("0"))
    )


def matches_layout(name: str, patterns: Iterable[str]) -> bool:
    """Whether the relative path ``name`` matches one of ``patterns`` part by part: the same
    number of ``/``-separated parts, each matched by ``fnmatch`` (where ``*`` would cross a
    ``/`` and take ``notes/thesis.docx`` for ``*/*``-shaped output). A last part ``**`` matches
    one part or more (the whole tree of a temporary folder)."""
    parts = name.split("/")
    for pattern in patterns:
        wanted = pattern.split("/")
        if wanted[-1] == "**":
            wanted = wanted[:-1]
            if len(parts) <= len(wanted):
                continue
            parts_here = parts[: len(wanted)]
        elif len(wanted) != len(parts):
            continue
        else:
            parts_here = parts
        if all(part_matches(p, w) for p, w in zip(parts_here, wanted, strict=True)):
            return True
    return False


def mark_owner(
    folder: Path,
    kind: str,
    patterns: tuple[str, ...] | None = None,
    also: set[str] | None = None,
    coming: dict[str, str] | None = None,
) -> None:
    """Record in ``folder`` that mslt-it wrote it, as which kind, and which files it holds now.

    The file list is what proves, later, that ``--overwrite`` loses nothing: a file the user
    added afterwards is not on it (:func:`mslt_it.outputs.foreign_files`). Folders written bit
    by bit (an evaluation, an adapter) are marked again when they finish, listing only the files
    that match their kind's ``patterns`` (or were listed before, ``also``). ``coming``: files
    (name -> fingerprint) written aside and about to be moved in, listed before they appear, so
    a kill between the two never leaves a file of mslt-it's that the marker does not vouch for.
    """
    folder = Path(folder)
    files = {
        name: file_fingerprint(folder / name)
        for name in relative_files(folder)
        if not name.endswith("/")
        and (patterns is None or name in (also or set()) or matches_layout(name, patterns))
    }
    files.update(coming or {})
    atomic_write_json(
        folder / OWNER_FILE,
        {"kind": kind, "written_by": "mslt-it", "format": MARKER_FORMAT, "files": files},
    )


def fingerprint_matches(path: Path, recorded: Any, by_size: bool = False) -> bool:
    """``path`` is still the file whose :func:`file_fingerprint` is ``recorded``. ``by_size``:
    a large file (fingerprinted by size and time) counts by its size alone, as a copy keeps
    sizes, not times."""
    now = file_fingerprint(path)
    if not isinstance(recorded, str) or now == "unreadable":
        return False
    if by_size and recorded.startswith("stat:") and now.startswith("stat:"):
        return recorded.split(":")[1] == now.split(":")[1]
    return now == recorded


FINGERPRINT_BYTES = 16_000_000
"""Files up to this size are fingerprinted by content; larger ones (weights) by size and mtime."""


def file_fingerprint(path: Path) -> str:
    """What a marker remembers of a file it lists, so a file the user changed since is theirs."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return "special"  # a FIFO would block the read, a device never end it
        if info.st_size <= FINGERPRINT_BYTES:
            return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        return f"stat:{info.st_size}:{info.st_mtime_ns}"
    except OSError:
        return "unreadable"


def read_arrow_table(path: Path, field: str) -> Any:
    """A Parquet, CSV or JSON-lines file as an Arrow table; an unreadable one is a user error.

    The error names ``field``, the option or recipe field the path came from.
    """
    import pyarrow as pa

    try:
        if path.suffix == ".parquet":
            return read_parquet_bounded(path, field)
        if path.suffix == ".csv":
            import pyarrow.csv as pcsv

            table = pcsv.read_csv(path)
            header_text(table, path, field)
            dated = {f.name: pa.string() for f in table.schema if _dates_as_text(f.type) != f.type}
            if not dated:
                return table
            return pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(column_types=dated))
        return read_json_table(path, json_block_size(path, field))
    except UnicodeDecodeError as error:
        bad = first_bad_json_line(path)
        raise MsltError(
            f"{field}: cannot read {path}: "
            + (bad or f"not UTF-8 text (byte {error.object[error.start]:#04x} at {error.start})")
        ) from None
    except (pa.ArrowInvalid, OSError) as error:
        bad = first_bad_json_line(path) if isinstance(error, pa.ArrowInvalid) else None
        raise MsltError(f"{field}: cannot read {path}: {bad or first_line(error)}") from error


def header_text(table: Any, path: Path, field: str) -> list[str]:
    """A CSV table's column names, decoded: pyarrow reads a header that is not UTF-8 and
    decodes its names only when they are asked for, after the read, outside any check (an
    internal error wherever a caller first looked at them)."""
    try:
        return table.column_names
    except UnicodeDecodeError as error:
        raise MsltError(
            f"{field}: cannot read {path}: its header line is not UTF-8 text (byte "
            f"{error.object[error.start]:#04x} in a column's name)"
        ) from None


def first_bad_json_line(path: Path) -> str | None:
    """The first line of a JSON-lines file that pyarrow refused, by its number
    (:func:`mslt_it.jsonlines.first_problem`; pyarrow counts its rows from 0 within a block:
    its ``row 1`` was line 2); None for a CSV or Parquet file, or when no line is to blame."""
    if path.suffix not in (".jsonl", ".json"):
        return None
    with path.open("rb") as handle:
        return first_problem(handle)


def read_json_table(path: Path, block_size: int) -> Any:
    """A JSON-lines file as pyarrow reads it, its strings kept text (:func:`_dates_as_text`)."""
    import pyarrow as pa
    import pyarrow.json as pj

    options = pj.ReadOptions(block_size=block_size)
    table = pj.read_json(path, read_options=options)
    table.validate(full=True)  # a string that is not UTF-8 is read, and failed when taken out
    schema = pa.schema([f.with_type(_dates_as_text(f.type)) for f in table.schema])
    if schema == table.schema:
        return table
    parse = pj.ParseOptions(explicit_schema=schema)
    return pj.read_json(path, read_options=options, parse_options=parse)


def _dates_as_text(kind: Any) -> Any:
    """``kind`` with every date, time and timestamp type in it (in lists and structs too) made
    text. Arrow's JSON and CSV readers take a column whose every value looks like a date
    (``"2024-01-01"``) for one, and a premise of dates was refused as "a Python object
    (datetime), not text", naming the template; in a JSON file it is a string."""
    import pyarrow as pa
    import pyarrow.types as pt

    if pt.is_timestamp(kind) or pt.is_date(kind) or pt.is_time(kind):
        return pa.string()
    if pt.is_list(kind) or pt.is_large_list(kind):
        return pa.list_(kind.value_field.with_type(_dates_as_text(kind.value_type)))
    if pt.is_struct(kind):
        return pa.struct([kind.field(i).with_type(_dates_as_text(kind.field(i).type))
                          for i in range(kind.num_fields)])  # fmt: skip
    return kind


MAX_PARQUET_VALUES = 200_000_000
"""Values (rows times list items) a Parquet file may hold: run-length encoding stores a billion
repeats in a few bytes, so the file's size does not bound them."""

MAX_PARQUET_TEXT_BYTES = 4_000_000_000
"""Bytes of text a Parquet file may decode to: a dictionary page holds a long value once, and a
file of a kilobyte can repeat it into gigabytes."""


def read_parquet_bounded(path: Path, field: str) -> Any:
    """A Parquet file as an Arrow table, its decoded size checked before it is decoded.

    Text columns are read dictionary-encoded (each distinct value once, the rows as indices),
    the text they would expand to is summed, and only within :data:`MAX_PARQUET_TEXT_BYTES`
    are they decoded to plain strings, as ``pq.read_table`` returns them.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    metadata, schema = parquet.metadata, parquet.schema_arrow
    twice = [name for name in schema.names if schema.names.count(name) > 1]
    if twice:  # pyarrow's own words: "Multiple matches for FieldRef.Name(claim) in claim: …"
        raise MsltError(
            f"{field}: {path}: column {clipped(twice[0], 60)} appears "
            f"{schema.names.count(twice[0])} times; name each column once"
        )
    values = sum(
        metadata.row_group(g).column(c).num_values
        for g in range(metadata.num_row_groups)
        for c in range(metadata.num_columns)
    )
    if values > MAX_PARQUET_VALUES:
        raise MsltError(
            f"{field}: {path} holds {values:,} values; at most {MAX_PARQUET_VALUES:,} are read "
            "(split it into several files)"
        )
    texts = [
        metadata.schema.column(c).path
        for c in range(metadata.num_columns)
        if metadata.schema.column(c).physical_type == "BYTE_ARRAY"
    ]
    table = pq.read_table(path, read_dictionary=texts)
    decoded = 0
    for column in table.columns:
        for chunk in column.chunks:
            for array in _dictionary_arrays(chunk):
                lengths = pc.binary_length(array.dictionary)
                decoded += pc.sum(pc.take(lengths, array.indices)).as_py() or 0
                if decoded > MAX_PARQUET_TEXT_BYTES:
                    raise MsltError(
                        f"{field}: {path} decodes to more than {MAX_PARQUET_TEXT_BYTES:,} bytes "
                        "of text; a dictionary-encoded file this small cannot be read whole"
                    )
    return table.cast(plain_schema(schema)) if texts else table


def plain_schema(schema: Any) -> Any:
    """``schema`` with Arrow's view types (``string_view``, ``binary_view``, ``list_view``) as
    their plain kinds: a dictionary-encoded column cannot be cast to a view, and the checks that
    follow know the plain ones (a ``binary_view`` column is bytes like ``binary``)."""
    import pyarrow as pa

    def plain(kind: Any) -> Any:
        if pa.types.is_string_view(kind):
            return pa.string()
        if pa.types.is_binary_view(kind):
            return pa.binary()
        if pa.types.is_list_view(kind) or pa.types.is_large_list_view(kind):
            return pa.list_(plain(kind.value_type))
        if pa.types.is_list(kind):
            return pa.list_(plain(kind.value_type))
        if pa.types.is_large_list(kind):
            return pa.large_list(plain(kind.value_type))
        if pa.types.is_struct(kind):
            return pa.struct([field.with_type(plain(field.type)) for field in kind])
        return kind

    return pa.schema([field.with_type(plain(field.type)) for field in schema], schema.metadata)


def _dictionary_arrays(array: Any) -> Iterator[Any]:
    """The dictionary-encoded arrays in ``array``, itself or nested in lists and structs."""
    import pyarrow as pa

    kind = array.type
    if pa.types.is_dictionary(kind):
        yield array
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        yield from _dictionary_arrays(array.flatten())
    elif pa.types.is_struct(kind):
        for index in range(kind.num_fields):
            yield from _dictionary_arrays(array.field(index))


def seal(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with ``sha256`` of everything else in it (canonical JSON).

    What makes a JSON file provably mslt-it's: a ``kind`` field anyone can type, a digest of the
    content only mslt-it writes, so a file edited by hand (a predictor, a rescored.json) is
    told from one mslt-it wrote and is never trusted or replaced as its own.
    """
    return {**document, "sha256": _text_sha256(_canonical(document))}


def is_sealed(document: Any) -> bool:
    """True when ``document`` is a mapping whose ``sha256`` matches the rest (see :func:`seal`)."""
    if not isinstance(document, dict):
        return False
    try:
        return document.get("sha256") == _text_sha256(_canonical(document))
    except ValueError:  # NaN or infinity written into the file
        return False


def _canonical(document: dict[str, Any]) -> str:
    body = {key: value for key, value in document.items() if key != "sha256"}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, allow_nan=False)


def _text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
