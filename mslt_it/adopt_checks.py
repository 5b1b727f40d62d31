"""What ``mslt-it adopt`` reads before it marks a folder: the content, not only the names.

:func:`mslt_it.outputs.adopt_output` proves a folder's layout (a finished output's record, no
file of another kind). That let a dataset whose rows were truncated or deleted, or whose
manifest counts were edited, and a model whose weights were cut short, be marked as a finished
output of mslt-it's, which ``--overwrite`` and a recipe's re-run then trust. Here the content
is checked against what the folder says of itself: a dataset's rows against its manifest's
fingerprint and counts, every safetensors file's header, an adapter's config and weights as
``merge``, ``eval`` and ``analyze`` will read them (a marked adapter without weights was only
found out by the next command).
"""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path
from typing import NoReturn

from mslt_it.data import fingerprint
from mslt_it.errors import MsltError, first_line
from mslt_it.io import read_json
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
