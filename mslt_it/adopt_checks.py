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
and the next ``--overwrite`` deleted it.
"""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import NoReturn

from mslt_it.chat_bounds import chat_syntax_error
from mslt_it.data import fingerprint
from mslt_it.errors import MsltError, first_line
from mslt_it.io import read_json, relative_files
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
            fault = format_fault(folder / name)
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
    if name == "training_args.bin":
        return None if zipfile.is_zipfile(path) else "a torch file"
    return None


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
    examples = list(rows)
    if fingerprint(examples) != manifest.get("fingerprint"):
        _refuse(folder, "its rows are not those its manifest.json's fingerprint names")
    counts = Counter(str(example.get("lang")) for example in examples)
    recorded = manifest.get("counts")
    if isinstance(recorded, dict) and recorded != dict(counts):
        _refuse(folder, "its manifest.json's counts are not those of its rows")


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
