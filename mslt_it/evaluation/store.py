"""Checkpointed predictions: a killed evaluation resumes where it stopped and ends the same.

Each run folder (``OUT`` or ``OUT/<adapter>``) gets a hidden ``.chunks/`` folder while it works:
``settings.json`` (everything that shapes a prediction) and one JSON-lines file per finished chunk
of examples, ``<task>.<lang>.<00000>.jsonl``, each written to a temporary name and renamed into
place. A chunk is trusted on resume only if its lines are exactly the expected example ids, in
order. Chunk boundaries (and so the batches inside them) are fixed by the settings, so a resumed
run computes the remaining chunks exactly as an uninterrupted run would.

When every chunk is done, ``predictions.jsonl`` and ``results.json`` are written atomically and
the chunks are removed. ``results.json`` holds no wall-clock fields (timings go to
``timings.json``), so resumed and uninterrupted runs write identical results.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mslt_it.errors import MsltError
from mslt_it.files import read_user_bytes
from mslt_it.identity import rows_sha256
from mslt_it.io import (
    atomic_write_json,
    atomic_write_text,
    matches_layout,
    read_json,
    remove_folder,
    to_json,
)
from mslt_it.outputs import RESCORED_KIND, TEMPORARY_FILE, read_sealed_json
from mslt_it.paths import NAMED_DATA

CHUNKS = ".chunks"
CHUNK_SEAL = "chunk_sha256"
"""The key of a chunk file's last line: the SHA-256 of the lines before it."""
SETTINGS = "settings.json"
PREDICTIONS = "predictions.jsonl"
RESULTS = "results.json"
TIMINGS = "timings.json"
RESCORED = "rescored.json"
"""``mslt-it score``'s scores of a run's predictions, beside them (see :func:`reopen_run`)."""
LIBRARIES = "library_versions"
"""The key of the chunks' settings that records the versions of :data:`PREDICTION_LIBRARIES`."""
PREDICTION_LIBRARIES = ("torch", "transformers", "tokenizers", "peft", "vllm")
"""The libraries whose version can move a prediction. They are not part of a run's identity (a
finished evaluation stays finished after an upgrade; results.json names the versions it was
made with), but saved chunks are resumed only under the versions that predicted them: a killed
run resumed after an upgrade mixed the chunks of both, results.json naming the last."""


def settings_sha256(settings: dict[str, Any]) -> str:
    """Hash of the canonical JSON of a run's settings, as :func:`identity_of` keeps them."""
    return hashlib.sha256(to_json(identity_of(settings)).encode()).hexdigest()


def identity_of(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings that decide a run's predictions: the model's and the adapter's paths as
    spelled are left out where the digests of their files stand for them (``./tiny/`` after
    ``tiny``, or a folder moved, is the same model: it was "the model changed" and predicted
    again), and so is a data folder's (every task's ``rows_sha256``). A Hub id stays: it is the
    model's name."""
    view = dict(settings)
    if view.get("data") not in (None, *NAMED_DATA):  # a folder: its rows' digests stand for it
        view.pop("data")
    model = view.get("model_identity")
    if isinstance(model, dict) and isinstance(model.get("sha256"), str):
        view.pop("model", None)
    adapter = view.get("adapter")
    if isinstance(adapter, dict) and isinstance(adapter.get("sha256"), str):
        view["adapter"] = {key: value for key, value in adapter.items() if key != "path"}
    return view


class RunStore:
    """The files of one run folder: settings, chunks, predictions and results."""

    def __init__(
        self,
        folder: Path,
        settings: dict[str, Any],
        versions: dict[str, str] | None = None,
        rows: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.settings = settings
        self.rows = rows or {}
        """The rows this run evaluates, per (task, language): what tells saved chunks of a
        smaller ``limit`` as the first of these (:meth:`_same_cells`)."""
        self.sha256 = settings_sha256(settings)
        self.chunks = self.folder / CHUNKS
        self.versions = prediction_versions(versions or {})
        self.note: str | None = None
        """Said by :meth:`prepare` when saved chunks were of other library versions."""

    def is_complete(self) -> bool:
        """True when results.json exists and was made with these very settings."""
        results = self.folder / RESULTS
        if not (results.is_file() and (self.folder / PREDICTIONS).is_file()):
            return False
        try:
            recorded = json.loads(results.read_text(encoding="utf-8")).get("settings_sha256")
        except (OSError, ValueError, RecursionError):
            return False
        return recorded == self.sha256

    def prepare(self, overwrite: bool, restart_changed: bool = False) -> None:
        """Start, resume, or start over (``overwrite``); other settings already there (finished
        or not): an error, or with ``restart_changed`` the run made again, keeping the chunks
        those settings would predict the same (:meth:`_same_cells`)."""
        if overwrite:
            self._clear()
        elif self.is_complete():
            return
        else:
            existing = self._recorded_settings()
            if existing is None:  # chunks no settings name (a kill while clearing): untrusted
                self.drop_chunks()
            elif existing.get("sha256") == self.sha256 and self._versions_changed(existing):
                self.drop_chunks()  # predicted by other library versions: predicted again
                existing = None
            finished = read_json(self.folder / RESULTS) if existing is None else None
            # a finished run of these very settings whose predictions.jsonl is gone (results.json
            # alone cannot be checked or re-scored) is predicted again, as a missing results.json
            # is rebuilt: "other settings" was said of the same settings
            same_finished = isinstance(finished, dict) and (
                finished.get("settings_sha256") == self.sha256
            )
            changed = (existing is not None and existing.get("sha256") != self.sha256) or (
                existing is None and (self.folder / RESULTS).is_file() and not same_finished
            )
            if changed and restart_changed:
                if existing is None:  # finished with other settings: its predictions to reuse
                    reopen_run(self.folder)
                    existing = self._recorded_settings()
                self._clear(keep=self._same_cells(existing))
            elif changed:
                recorded = existing if existing is not None else (finished or {}).get("settings")
                raise MsltError(
                    f"--out: {str(self.folder)!r} holds an evaluation with other settings "
                    f"({describe_change(recorded, self.settings)}); pass --update to predict "
                    "only what changed, --overwrite to evaluate again, or choose another --out"
                )
        self.write_settings()

    def write_settings(self) -> None:
        """The chunks' settings: what names the chunks saved beside them as this run's."""
        self.chunks.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            self.chunks / SETTINGS,
            {"sha256": self.sha256, **self.settings, LIBRARIES: self.versions},
        )

    def _versions_changed(self, recorded: dict[str, Any]) -> bool:
        """Whether saved chunks were predicted under other library versions than this run's
        (:attr:`note` then says which). Chunks of an mslt-it that recorded none are not
        trusted either: their versions cannot be known."""
        self.note = version_change(recorded.get(LIBRARIES), self.versions, self.folder)
        return self.note is not None

    def _clear(self, keep: set[str] | frozenset[str] = frozenset()) -> None:
        """Remove the run's files but the saved chunks named in ``keep``.

        The settings that name the chunks go last (or with the whole folder, renamed aside
        first): a kill that removed them first left chunks of another model without settings,
        which the next run took for its own and reported as the new model's."""
        if keep and self.chunks.is_dir() and not self.chunks.is_symlink():
            for path in self.chunks.iterdir():
                if path.name in keep or path.name == SETTINGS:
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            (self.chunks / SETTINGS).unlink(missing_ok=True)
        elif self.chunks.is_dir() and not self.chunks.is_symlink():
            remove_folder(self.chunks)
        else:
            self.chunks.unlink(missing_ok=True)
        for name in (PREDICTIONS, RESULTS, TIMINGS):
            (self.folder / name).unlink(missing_ok=True)

    def _same_cells(self, recorded: dict[str, Any] | None) -> frozenset[str]:
        """The saved chunks of an unfinished run of other settings that these settings would
        predict the same (:func:`cell_identity`): a language added, or another language's rows
        edited, leaves them to be reused; the rest are predicted again."""
        if not isinstance(recorded, dict) or not self.chunks.is_dir():
            return frozenset()
        if self._versions_changed(recorded):
            return frozenset()
        recorded = {
            key: value for key, value in recorded.items() if key not in ("sha256", LIBRARIES)
        }
        same = {
            (task, lang)
            for task, lang in cells(recorded)
            if self._same_cell(recorded, task, lang) or self._same_first_rows(recorded, task, lang)
        }
        kept = set()
        for path in self.chunks.iterdir():
            task, lang, _ = chunk_cell(path.name)
            if (task, lang) in same and path.is_file() and not path.is_symlink():
                kept.add(path.name)
        return frozenset(kept)

    def _same_cell(self, recorded: dict[str, Any], task: str, lang: str) -> bool:
        identity = cell_identity(recorded, task, lang)
        return identity is not None and identity == cell_identity(self.settings, task, lang)

    def _same_first_rows(self, recorded: dict[str, Any], task: str, lang: str) -> bool:
        """Whether the recorded run evaluated the first of this run's rows of ``task``/``lang``
        under another ``limit``, all else the same: its chunks are this run's first ones
        (chunk boundaries fall at the same rows), so ``--limit 100`` raised to 500 predicts
        only the rows added, and a limit beyond the data given or taken away nothing. Proven
        by content: the recorded rows' digest is that of this run's rows among the first
        ``limit`` places of the split (all, without one; a row's id ends in its place); the
        last, partial chunk holds other ids than this run's and is predicted again."""
        before = recorded.get("limit")
        if before == self.settings.get("limit"):
            return False  # the same rows or none: _same_cell says
        if before is not None and (not isinstance(before, int) or isinstance(before, bool)):
            return False
        identity = cell_identity(recorded, task, lang, rows=False)
        if identity is None or identity != cell_identity(self.settings, task, lang, rows=False):
            return False
        rows = self.rows.get((task, lang), ())
        first = [row for row in rows if before is None or row_place(row) < before]
        entry = task_entry(recorded, task) or {}
        return bool(first) and entry["rows_sha256"][lang] == rows_sha256(first)

    def _recorded_settings(self) -> dict[str, Any] | None:
        path = self.chunks / SETTINGS
        if not path.is_file():
            return None
        return read_json(path) or {}

    def chunk_path(self, task: str, lang: str, index: int) -> Path:
        return self.chunks / f"{task}.{lang}.{index:05d}.jsonl"

    def load_chunk(
        self, task: str, lang: str, index: int, ids: Sequence[str]
    ) -> list[dict[str, Any]] | None:
        """A finished chunk's records, or ``None`` if it is missing or not exactly ``ids``."""
        path = self.chunk_path(task, lang, index)
        if not path.is_file():
            return None
        try:
            text = path.read_text(encoding="utf-8")
            # split at "\n" only: an output may hold U+2028, which str.splitlines splits at
            head, _, seal_line = text.removesuffix("\n").rpartition("\n")
            body = head + "\n" if head else ""
            recorded = json.loads(seal_line).get(CHUNK_SEAL) if text.endswith("\n") else None
            if recorded != hashlib.sha256(body.encode("utf-8")).hexdigest():
                return None  # edited (a "correct" set by hand), cut short, or of an older version
            records = [json.loads(line) for line in body.split("\n")[:-1]]
        except (OSError, ValueError, RecursionError, AttributeError):
            return None
        if [r.get("id") for r in records] != list(ids):
            return None
        return records

    def save_chunk(self, task: str, lang: str, index: int, records: Sequence[dict]) -> None:
        """Write a chunk sealed by the digest of its lines (a last line of its own): a resumed
        run trusts only a chunk as it was written, and predicts an edited one again."""
        body = jsonl(records)
        seal_line = json.dumps({CHUNK_SEAL: hashlib.sha256(body.encode("utf-8")).hexdigest()})
        atomic_write_text(self.chunk_path(task, lang, index), f"{body}{seal_line}\n")

    def finish(
        self,
        records: Sequence[dict[str, Any]],
        results: dict[str, Any],
        timings: dict[str, Any] | None,
        into: Path,
    ) -> None:
        """Write predictions and results ``into`` a folder aside: the caller lists them in the
        marker, moves them into :attr:`folder`, then calls :meth:`drop_chunks`.

        ``timings`` is ``None`` when nothing was predicted this time (a finished run re-scored):
        the timings of the run that did the work stay.
        """
        into.mkdir(parents=True, exist_ok=True)
        atomic_write_text(into / PREDICTIONS, jsonl(records))
        atomic_write_json(
            into / RESULTS,
            {**results, "settings": self.settings, "settings_sha256": self.sha256},
        )
        if timings is not None:
            atomic_write_json(into / TIMINGS, timings)

    def drop_chunks(self) -> None:
        """The saved chunks, once predictions.jsonl holds them: the files this store names (its
        settings, ``<task>.<lang>.<n>.jsonl``, a chunk being written), then the folder if that
        left it empty. Anything else found there is not mslt-it's to remove."""
        if not self.chunks.is_dir() or self.chunks.is_symlink():
            return
        for path in self.chunks.iterdir():
            if path.is_file() and not path.is_symlink() and is_chunk_file(path.name):
                path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: the user's files stay with it
            self.chunks.rmdir()


def version_change(saved: Any, wanted: dict[str, str], folder: Path) -> str | None:
    """What a resumed run says when its saved chunks' library versions (``saved``, as their
    settings record them) are not ``wanted``; None when they are."""
    if saved == wanted:
        return None
    if not isinstance(saved, dict):
        changed = "recorded no library versions"
    else:
        changed = ", ".join(
            f"{name} {saved.get(name, 'absent')} → {wanted.get(name, 'absent')}"
            for name in PREDICTION_LIBRARIES
            if saved.get(name) != wanted.get(name)
        )
    return (
        f"{str(folder)!r}: its saved predictions were made under other library versions "
        f"({changed}); predicted again, so that every prediction is this run's"
    )


def prediction_versions(versions: dict[str, Any]) -> dict[str, str]:
    """The versions among ``versions`` (as results.json records them) that can move a
    prediction (:data:`PREDICTION_LIBRARIES`)."""
    return {
        name: str(versions[name])
        for name in PREDICTION_LIBRARIES
        if isinstance(versions.get(name), str)
    }


def is_chunk_file(name: str) -> bool:
    """A name :class:`RunStore` gives a file in its chunks folder (or a temporary of one)."""
    return (
        name == SETTINGS
        or bool(CHUNK_NAME.fullmatch(name))
        or matches_layout(name, (TEMPORARY_FILE,))
    )


CHUNK_NAME = re.compile(r"([^/]+)\.([^./]+)\.([0-9]{5})\.jsonl")
"""A chunk's name, its number in ASCII digits as the store writes it and the marker's patterns
take it (any Unicode digit took a user's ``notes.en.١٢٣٤٥.jsonl`` for a chunk, and removed it)."""


def chunk_cell(name: str) -> tuple[str | None, str | None, int | None]:
    """The task, language and index a chunk file's name (:meth:`RunStore.chunk_path`) gives;
    Nones for any other name. Language codes hold no dot, so the last two dots part them."""
    found = CHUNK_NAME.fullmatch(name)
    if found is None:
        return None, None, None
    return found.group(1), found.group(2), int(found.group(3))


def cells(settings: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (task, language) a run's settings predict."""
    tasks = settings.get("tasks")
    found = []
    for entry in tasks if isinstance(tasks, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("task"), str):
            langs = entry.get("languages")
            found += [
                (entry["task"], lang)
                for lang in (langs if isinstance(langs, list) else [])
                if isinstance(lang, str)
            ]
    return found


def task_entry(settings: dict[str, Any], task: str) -> dict[str, Any] | None:
    """``task``'s entry among a run's settings' ``tasks`` (None: not there)."""
    tasks = settings.get("tasks")
    return next(
        (
            e
            for e in (tasks if isinstance(tasks, list) else [])
            if isinstance(e, dict) and e.get("task") == task
        ),
        None,
    )


def cell_identity(settings: dict[str, Any], task: str, lang: str, rows: bool = True) -> str | None:
    """What shapes the predictions of one task and language of a run: every setting of the
    run (model, adapter weights, chat template, backend, chunk size...), its task's (template,
    definition, split...), and that language's rows, but not the other tasks and languages.
    Chunks never mix languages, so an evaluation made again after one language's rows were
    edited, or a language was added, predicts only those. None: the task or language is not
    in ``settings``. A task's ``cluster`` rule and ``parallel`` are left out: they decide how
    rows are resampled, no prediction. ``rows=False``: the rows and the ``limit`` that chose
    them left out too (:meth:`RunStore._same_first_rows` proves the rows apart)."""
    entry = task_entry(settings, task)
    digests = entry.get("rows_sha256") if entry is not None else None
    if entry is None or not isinstance(digests, dict) or lang not in digests:
        return None
    left_out = ("tasks", "limit") if not rows else ("tasks",)
    return settings_sha256(
        {
            "run": {k: v for k, v in identity_of(settings).items() if k not in left_out},
            "task": {
                k: v
                for k, v in entry.items()
                if k not in ("languages", "rows_sha256", "cluster", "parallel")
            },
            "rows_sha256": digests[lang] if rows else None,
        }
    )


def row_place(row: Mapping[str, Any]) -> int:
    """A row's place in its split, the last part of the id mslt-it gives it
    (``task/lang/split/index``); an id of another shape is beyond every limit."""
    place = str(row.get("id", "")).rpartition("/")[2]
    return int(place) if place.isdigit() else 2**63


def reopen_run(folder: Path) -> None:
    """Make a finished run unfinished again, with the settings it was made with: its
    predictions become the chunks they were predicted in, its results go.

    The recipe runner does this, in place of removing it, to an evaluation it is to make again
    (an adapter retrained, a language's rows edited): :meth:`RunStore.prepare` then keeps every
    chunk the new settings would predict the same, and until the evaluation finishes no results
    of the old inputs are there to be read. ``score``'s rescored.json goes with them: beside
    the new predictions it described the old ones (``eval --update`` left it, naming
    ``predictions.jsonl``, with the old rows' scores). A run whose settings or predictions
    cannot be read back (an older version's) is only cleared."""
    results = read_json(folder / RESULTS) or {}
    settings = results.get("settings")
    size = settings.get("chunk_size") if isinstance(settings, dict) else None
    recorded = results.get("settings_sha256")
    if (
        isinstance(settings, dict)
        and isinstance(size, int)
        and size > 0
        and recorded == settings_sha256(settings)
    ):
        with contextlib.suppress(MsltError):
            by_cell: dict[tuple[str, str], list[dict[str, Any]]] = {
                cell: [] for cell in cells(settings)
            }
            for record in read_jsonl(folder / PREDICTIONS):
                cell = (record.get("task"), record.get("lang"))
                if cell in by_cell:  # anything else could name a path: not reused
                    by_cell[cell].append(record)
            made_with = results.get("versions")
            store = RunStore(folder, settings, made_with if isinstance(made_with, dict) else {})
            store.write_settings()
            for (task, lang), records in by_cell.items():
                for index, start in enumerate(range(0, len(records), size)):
                    store.save_chunk(task, lang, index, records[start : start + size])
    for name in (RESULTS, PREDICTIONS, TIMINGS):  # results first: nothing reads the others
        (folder / name).unlink(missing_ok=True)
    if read_sealed_json(folder / RESCORED, RESCORED_KIND) is not None:  # score's, unedited
        (folder / RESCORED).unlink()


INPUT_NAMES = {
    "model": "the model",
    "model_identity": "the model's files",
    "adapter": "the adapter",
    "data": "--data",
    "definition_sha256": "the task definition",
    "cluster": "the task's cluster rule (which rows are resampled together; re-scored, nothing "
    "predicted again)",
    "parallel": "the task's parallel (each item drawn in every language at once by the "
    "targets' average; re-scored, nothing predicted again)",
    "rows_sha256": "the data rows",
    "template": "the template",
    "template_sha256": "the template file",
    "chat_template_sha256": "the chat template",
    "stop_tokens": "the stop tokens (the model's and the adapters')",
    "answer_tokens": "how rank mode tokenizes its requests (an earlier mslt-it encoded an answer "
    "apart from its prompt, stripped a plain template's context and choice, or fed a BOS before "
    "contexts sharing no token)",
    "plain_text": "a plain (lm-eval) template's text as rendered (stripped before)",
    "context_length": "the context length prompts are cut to",
    "device": "the kind of device (cpu, cuda) it ran on",
    "vllm_args": "vllm_args (the vLLM engine's arguments)",
}


def describe_change(recorded: dict[str, Any] | None, wanted: dict[str, Any]) -> str:
    """Which input differs between a recorded run's settings and this one's, in words."""
    if not isinstance(recorded, dict):
        return "settings not recorded by this mslt-it version"
    recorded, wanted = identity_of(recorded), identity_of(wanted)
    for key, value in wanted.items():
        old = recorded.get(key)
        if old == value:
            continue
        if key == "dtype" and old == "auto":  # auto was recorded as asked, not as resolved
            return "recorded by an earlier mslt-it, which did not record the dtype auto resolved to"
        device = (recorded.get("device"), wanted.get("device"))
        if key == "dtype" and None not in device and device[0] != device[1]:
            return (
                f"it ran on a {device[0]} in {old}, and runs on a {device[1]} in {value} (the "
                "dtype auto resolves to there)"
            )
        if key not in recorded:  # recorded before the setting was: nothing the user changed
            unrecorded = INPUT_NAMES.get(key, key)
            return f"recorded by an earlier mslt-it, which did not record {unrecorded}"
        if key == "tasks" and same_tasks_reordered(old, value):
            return "the order of the tasks changed, not the tasks (--update keeps every prediction)"
        if key == "tasks" and isinstance(old, list) and len(old) == len(value):
            for before, after in zip(old, value, strict=True):
                if not isinstance(before, dict):
                    break
                for name in [*after, *(key for key in before if key not in after)]:
                    now = after.get(name)  # a key dropped (a rule removed) is a change too
                    if before.get(name) != now:
                        changed = INPUT_NAMES.get(name, name)
                        if (
                            name == "rows_sha256"
                            and isinstance(before.get(name), dict)
                            and isinstance(now, dict)
                        ):
                            langs = [k for k in now if before[name].get(k) != now[k]]
                            changed += f" of {', '.join(langs[:5])}"
                        return f"{changed} of task {after.get('task')} changed"
        return f"{INPUT_NAMES.get(key, key)} changed"
    return "other settings"


def same_tasks_reordered(old: Any, new: Any) -> bool:
    """Whether two settings' task lists hold the same tasks in another order (``--suite pawsx
    --suite xnli`` after ``--suite xnli --suite pawsx`` was "task of task pawsx changed")."""
    if not isinstance(old, list) or not isinstance(new, list) or old == new:
        return False
    key = json.dumps  # the entries are JSON: compared whole, in any order
    return sorted(key(t, sort_keys=True) for t in old) == sorted(
        key(t, sort_keys=True) for t in new
    )


def jsonl(records: Sequence[dict[str, Any]]) -> str:
    """JSON lines, one record each, keys sorted, non-ASCII kept readable."""
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)


MAX_PREDICTIONS_BYTES = 1_000_000_000
"""Largest predictions.jsonl read (each record holds its prompt: a large study's is a few
hundred MB)."""


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file; a bad line is an error naming the file and line."""
    path = Path(path)
    if path.is_dir():
        raise MsltError(f"predictions: {str(path)!r} is a folder; give its predictions.jsonl")
    try:  # a regular file within the limit: a FIFO would block, /dev/zero fill memory
        text = read_user_bytes(path, "predictions", MAX_PREDICTIONS_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise MsltError(f"predictions: {path} is not UTF-8 text (a binary file?)") from None
    records = []
    # "\n" only: a record's text may hold U+2028 or U+0085, which str.splitlines splits at
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise MsltError(f"predictions: {path}:{number} is not JSON: {error.msg}") from None
        except (ValueError, RecursionError) as error:  # a number too long, nesting too deep
            raise MsltError(
                f"predictions: {path}:{number} is not readable JSON: {str(error)[:120]}"
            ) from None
        if not isinstance(record, dict):
            raise MsltError(f"predictions: {path}:{number} is not a JSON object")
        records.append(record)
    return records
