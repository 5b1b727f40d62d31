"""What ``mslt-it adopt`` reads before it marks a folder: the content, not only the names.

:func:`mslt_it.outputs.adopt_output` proves a folder's layout (a finished output's record, no
file of another kind). That let a dataset whose rows were truncated or deleted, or whose
manifest counts were edited, and a model whose weights were cut short, be marked as a finished
output of mslt-it's, which ``--overwrite`` and a recipe's re-run then trust. Here the content
is checked against what the folder says of itself: a dataset's rows against its manifest's
fingerprint and counts, every safetensors file's header, an adapter's config and weights as
``merge``, ``eval`` and ``analyze`` will read them (a marked adapter without weights was only
found out by the next command), and every file whose name says its format (JSON, JSON lines,
PNG, a BPE merges list, a WordPiece vocabulary, a Jinja chat template, PEFT's model card, a
torch archive) in that format: a user's text saved as ``special_tokens_map.json`` was adopted,
and the next ``--overwrite`` deleted it. A format is not enough either (:func:`content_fault`):
a file must hold what mslt-it, or the library it saves with, writes under its name, as every
version wrote it: a user's ``report.md`` was adopted as a report, and ``report --overwrite``
replaced it; a ``results.json`` of the user's settings was adopted as an evaluation.
"""

from __future__ import annotations

import csv
import json
import re
import zipfile
from pathlib import Path
from typing import NoReturn

from mslt_it.chat_bounds import chat_syntax_error
from mslt_it.data import manifest_mismatch
from mslt_it.errors import MsltError, first_line
from mslt_it.evaluation.store import CHUNK_SEAL
from mslt_it.io import read_json, relative_files
from mslt_it.outputs import SENTENCEPIECE_FILES
from mslt_it.peft_adapters import read_adapter_config


def check_adoptable_content(folder: Path, kind: str) -> None:
    """One line naming what does not hold, else nothing (the folder is then marked)."""
    if kind == "dataset":
        _check_dataset_rows(folder)
    if kind == "adapter":
        _check_adapter_files(folder)
    if kind in ("adapter", "model"):
        _check_safetensors(folder)
        _check_torch_files(folder)
        _check_shards(folder)
    for name in relative_files(folder):
        if not name.endswith("/"):  # a folder with its own marker vouches for its files
            fault = format_fault(folder / name) or content_fault(folder / name)
            if fault is not None:
                _refuse(folder, f"its {name} is not {fault}")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def format_fault(path: Path) -> str | None:
    """What ``path`` fails to be by its name (``"a JSON mapping"``), or None when it is what its
    name says, or its name says no format mslt-it can check (a Markdown report, a CSV)."""
    name, suffix = path.name, path.suffix
    if suffix == ".json":
        return None if read_json(path) is not None else "a JSON mapping"
    if suffix == ".jsonl":
        return None if _json_lines(path) else "JSON lines (one mapping per line)"
    if suffix == ".png":
        with path.open("rb") as handle:
            return None if handle.read(8) == PNG_SIGNATURE else "a PNG picture"
    if name == "merges.txt":
        return None if _token_lines(path, parts=2) else "a BPE merges list (two tokens a line)"
    if name == "vocab.txt":
        return None if _token_lines(path, parts=1) else "a vocabulary (one token a line)"
    if suffix == ".jinja":
        return None if _jinja_parses(path) else "a Jinja chat template"
    if name == "README.md":  # an adapter's is PEFT's model card, its checkpoints' TRL's
        return None if _model_card(_head(path)) else "a PEFT or TRL model card"
    if suffix == ".arrow":  # datasets writes Arrow's stream format; its file format, ARROW1
        head = _head(path)[:6]
        return None if head[:4] == b"\xff\xff\xff\xff" or head == b"ARROW1" else "Arrow data"
    if name == "training_args.bin" or suffix in (".pt", ".pth"):  # a checkpoint's optimizer,
        return None if zipfile.is_zipfile(path) else "a torch file"  # scheduler, RNG state
    if name in SENTENCEPIECE_FILES:
        return None if _sentencepiece_or_tiktoken(_head(path)) else "a tokenizer model"
    if name.startswith("events.out.tfevents."):
        return None if _tensorboard_events(_head(path)) else "a TensorBoard event log"
    return None


def _sentencepiece_or_tiktoken(head: bytes) -> bool:
    """What ``save_pretrained`` writes as ``tokenizer.model``: SentencePiece's model (a
    protobuf whose first field is its pieces: byte 0x0a), or tiktoken's ranks (lines of a
    base64 token and its rank). A user's notes by that name were adopted, then deleted."""
    if head[:1] == b"\n":
        return True
    lines = head.split(b"\n")[:-1] or [head]
    pattern = re.compile(rb"[A-Za-z0-9+/]+=* [0-9]+")
    return bool(lines) and all(pattern.fullmatch(line) for line in lines[:50])


def _tensorboard_events(head: bytes) -> bool:
    """A TensorBoard log: TFRecords (an 8-byte length, its 4-byte check, the data), the first
    of which is the ``brain.Event:N`` version record TensorBoard begins every log with."""
    if len(head) < 12:
        return False
    length = int.from_bytes(head[:8], "little")
    return length < 4096 and b"brain.Event:" in head[12 : 12 + length]


OWN_FIELDS: dict[str, tuple[str, str | None, str]] = {
    "results.json": ("kind", "mslt-it eval results", "mslt-it's evaluation results"),
    "study.json": ("kind", "mslt-it eval study", "mslt-it's evaluation study"),
    "timings.json": ("examples_predicted", None, "mslt-it's evaluation timings"),
    "run.json": ("config_hash", None, "mslt-it's training record"),
    "run.started.json": ("config_hash", None, "mslt-it's training record"),
    "mslt_it_tiny.json": ("heldout_loss", None, "mslt-it's tiny-model record"),
    "config.json": ("model_type", None, "transformers' model config"),
    "generation_config.json": ("transformers_version", None, "transformers' generation config"),
    "tokenizer_config.json": ("tokenizer_class", None, "transformers' tokenizer config"),
    "tokenizer.json": ("model", None, "a tokenizers tokenizer"),
    "dataset_info.json": ("features", None, "datasets' dataset info"),
    "state.json": ("_data_files", None, "datasets' dataset state"),
    "dataset_dict.json": ("splits", None, "datasets' dataset dict"),
    "trainer_state.json": ("global_step", None, "the Trainer's state"),
    "adapter_config.json": ("peft_type", None, "PEFT's adapter config"),
}  # fmt: skip
"""A JSON file of each name an output holds: the field (and value) every version of mslt-it,
or of the library that saves it, wrote into it, and what the file is. A field added since is
never asked for: an older output is what ``adopt`` is for."""

TOKEN_IDS = ("vocab.json", "added_tokens.json")
"""A tokenizer's files that map each token to its id."""

RECORD_FIELDS = ("id", "task", "lang", "template", "output", "gold")
"""What every prediction record mslt-it wrote holds (``base_record`` since the first version;
``score`` reads no record without them)."""

SCORES_HEADER = (
    "run", "sources", "task", "lang", "metric", "score", "ci_low", "ci_high", "n",
    "invalid_rate", "is_source",
)  # fmt: skip
"""How every version's ``scores.csv`` header begins (later versions add columns after it)."""

COMPARISONS_HEADER = ("baseline", "run", "task", "lang", "metric", "n")
"""How every version's ``comparisons.csv`` header begins."""

MARKDOWN_OPENINGS: dict[str, tuple[str, str | None, str]] = {
    "report.md": ("# mslt-it report", "## Scores (", "mslt-it's report"),
    "criteria.md": ("| criterion | top pick |", None, "mslt-it's selection criteria"),
}
"""How each Markdown file a report writes begins, and the section it always has (a report's
scores table; its sub-reports, one per task, are written the same way)."""

MATPLOTLIB_MARK = b"Matplotlib version"
"""What matplotlib, which draws every picture mslt-it writes, puts in a PNG's head (its
``Software`` text chunk, written before the image data)."""


def content_fault(path: Path) -> str | None:
    """What ``path``, already in the format its name says, fails to be of what mslt-it writes
    under that name (``"mslt-it's report, which begins with ..."``), or None. Its format
    alone let a user's own ``report.md`` or ``results.json`` be adopted, and the next
    ``--overwrite`` delete it."""
    name = path.name
    if name in OWN_FIELDS:
        return _field_fault(path, *OWN_FIELDS[name])
    if name in TOKEN_IDS:
        return _token_ids_fault(path)
    if name == "special_tokens_map.json":
        return _special_tokens_fault(path)
    if name == "predictions.jsonl" or (path.suffix == ".jsonl" and path.parent.name == ".chunks"):
        return _records_fault(path)
    if name in MARKDOWN_OPENINGS:
        return _markdown_fault(path, *MARKDOWN_OPENINGS[name])
    if name == "scores.csv":
        return _header_fault(path, SCORES_HEADER, "mslt-it's scores table")
    if name == "comparisons.csv":
        return _header_fault(path, COMPARISONS_HEADER, "mslt-it's paired comparisons")
    if path.suffix == ".png" and MATPLOTLIB_MARK not in _head(path):
        return "a picture mslt-it drew, a PNG that names matplotlib in its head"
    return None


def _field_fault(path: Path, key: str, value: str | None, what: str) -> str | None:
    """``what`` unless the file is a mapping holding ``key`` (equal to ``value``, if given)."""
    data = read_json(path) or {}
    if key in data and (value is None or data[key] == value):
        return None
    holding = f"{key!r}: {value!r}" if value is not None else repr(key)
    return f"{what}, a JSON mapping with {holding}"


def _token_ids_fault(path: Path) -> str | None:
    """A vocabulary's or added tokens' file maps each token to its id, a whole number."""
    data = read_json(path) or {}
    if all(isinstance(v, int) and not isinstance(v, bool) for v in data.values()):
        return None
    return "a tokenizer's token-to-id mapping, every value an id"


def _special_tokens_fault(path: Path) -> str | None:
    """transformers names each special token ``*_token`` (``eos_token``), or a list of them
    ``*_tokens`` (``additional_special_tokens``)."""
    data = read_json(path) or {}
    if all(key.endswith(("_token", "_tokens")) for key in data):
        return None
    return "transformers' special tokens map, keys such as 'eos_token'"


def _records_fault(path: Path) -> str | None:
    """Every line a prediction record (:data:`RECORD_FIELDS`); a chunk's last line may be its
    seal, which versions since the seal write. Read line by line: predictions can be large."""
    what = f"mslt-it's predictions, JSON lines each with {', '.join(map(repr, RECORD_FIELDS))}"
    chunk, sealed = path.parent.name == ".chunks", False
    try:
        with path.open(encoding="utf-8") as handle:
            for line in filter(str.strip, handle):
                record = json.loads(line)
                if sealed or not isinstance(record, dict):
                    return what  # the seal is a chunk's last line
                sealed = chunk and set(record) == {CHUNK_SEAL}
                if not sealed and not all(key in record for key in RECORD_FIELDS):
                    return what
    except (OSError, ValueError, RecursionError):
        return what
    return None


def _markdown_fault(path: Path, title: str, section: str | None, what: str) -> str | None:
    """``what`` unless the file's first line begins ``title`` and, where given, a line begins
    ``section``."""
    lines = _lines(path) or [""]
    if lines[0].startswith(title) and (
        section is None or any(line.startswith(section) for line in lines)
    ):
        return None
    having = f" and has its {section.rstrip(' (')!r} table" if section else ""
    return f"{what}, which begins with {title!r}{having}"


def _header_fault(path: Path, columns: tuple[str, ...], what: str) -> str | None:
    """The CSV's header begins with ``columns``."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader([handle.readline(HEAD_BYTES)]), [])
    except (OSError, ValueError, csv.Error):
        header = []
    if tuple(header[: len(columns)]) == columns:
        return None
    return f"{what}, a CSV whose header begins {','.join(columns)}"


HEAD_BYTES = 4096


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(HEAD_BYTES)


def _model_card(head: bytes) -> bool:
    """Front matter naming the library that wrote the card (``library_name: peft`` or
    ``transformers``), as PEFT and TRL write it."""
    return head.startswith(b"---") and any(
        f"library_name: {library}".encode() in head for library in ("peft", "transformers")
    )


def _lines(path: Path) -> list[str] | None:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):
        return None


def _json_lines(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip() and not isinstance(json.loads(line), dict):
                    return False
    except (OSError, ValueError, RecursionError):
        return False
    return True


def _token_lines(path: Path, parts: int) -> bool:
    """Every line holds ``parts`` tokens (a merges list may start with ``#version``)."""
    lines = _lines(path)
    if lines is None:
        return False
    if parts == 2 and lines and lines[0].startswith("#"):
        lines = lines[1:]
    return all(len(line.split()) == parts and line == line.strip() for line in lines if line)


def _jinja_parses(path: Path) -> bool:
    """Parses as transformers parses a chat template (``{% generation %}`` included)."""
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return False
    return chat_syntax_error(source) is None


def _check_adapter_files(folder: Path) -> None:
    try:
        read_adapter_config(folder, field="folder")
    except MsltError as error:
        _refuse(folder, str(error).removeprefix("folder: "))


def _check_dataset_rows(folder: Path) -> None:
    import datasets

    manifest = read_json(folder / "manifest.json") or {}
    try:
        rows = datasets.load_from_disk(str(folder), keep_in_memory=True)
    except Exception as error:  # datasets raises many kinds for a damaged folder
        _refuse(folder, f"its rows cannot be read ({first_line(error)})")
    if not isinstance(rows, datasets.Dataset):
        _refuse(folder, "it holds a DatasetDict, not a dataset from mslt-it build")
    mismatch = manifest_mismatch(rows, manifest)
    if mismatch is not None:
        _refuse(folder, mismatch)


def _check_safetensors(folder: Path) -> None:
    from safetensors import safe_open

    for path in sorted(folder.rglob("*.safetensors")):
        try:
            # opening reads the header and checks that its offsets cover the file exactly:
            # weights cut anywhere, even by their last byte, do not open
            with safe_open(str(path), "pt"):
                pass
        except Exception as error:  # safetensors raises its own error for a cut file
            _refuse(folder, f"its {path.relative_to(folder)} cannot be read ({first_line(error)})")


def _check_torch_files(folder: Path) -> None:
    """A ``.bin`` of weights is a zip archive (``torch.save``); one cut short has lost the
    directory at its end, and one of other bytes has none: opening the directory is enough."""
    for pattern in ("adapter_model.bin", "pytorch_model*.bin"):
        for path in sorted(folder.rglob(pattern)):
            try:
                with zipfile.ZipFile(path):
                    pass
            except (zipfile.BadZipFile, OSError) as error:
                why = f"not a whole torch file: {first_line(error)}"
                _refuse(folder, f"its {path.relative_to(folder)} cannot be read ({why})")


def _check_shards(folder: Path) -> None:
    """Every file a sharded model's index names is there: a missing shard was adopted, and
    the model then failed to load in the next command."""
    for index in sorted(folder.glob("*.index.json")):
        weight_map = (read_json(index) or {}).get("weight_map")
        if not isinstance(weight_map, dict):
            _refuse(folder, f"its {index.name} has no weight_map")
        for name in sorted({str(shard) for shard in weight_map.values()}):
            if not (folder / name).is_file():
                _refuse(folder, f"its {index.name} names {name!r}, which is not there")


def _refuse(folder: Path, why: str) -> NoReturn:
    raise MsltError(
        f"folder: {str(folder)!r} is not a finished output of mslt-it's ({why}); nothing was marked"
    )
