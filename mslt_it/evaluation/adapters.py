"""Adapters written by ``mslt-it train``: a PEFT folder with a ``run.json`` beside the weights.

The run manifest is what makes an evaluation faithful to training: it names the base model, the
prompt template (id and file hash), the exact chat template string and the system prompt. This
module reads it and checks an adapter against the model it is about to be evaluated on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mslt_it.errors import MsltError
from mslt_it.files import resolved_path, without_controls
from mslt_it.identity import check_base_unchanged, model_identity, same_model
from mslt_it.named_models import recorded_base, resolve_model_name
from mslt_it.peft_adapters import (
    RUN_FILE,
    check_adapter_folder,
    edited_since_training,
    read_adapter_config,
    read_run_record,
    run_record_edited,
    weights_sha256,
)


@dataclass(frozen=True)
class Adapter:
    """One adapter to evaluate: where it is, what its run manifest says."""

    name: str
    path: Path
    run: dict[str, Any] | None
    base_model: str | None
    sha256: str = field(repr=False, default="")
    edited: str | None = None
    """The file of mslt-it's adapter changed since training (``run.json`` itself, or weights
    run.json does not describe), else None: its recorded sources are then not this adapter's."""

    @property
    def task(self) -> str | None:
        """The task it was trained on, if the manifest says."""
        return ((self.run or {}).get("dataset") or {}).get("task")

    @property
    def sources(self) -> list[str]:
        """Its training (source) languages, if the manifest says and was not edited since
        training (an SSLT adapter's run.json edited to name ar+de+zh was scored and reported
        as that MSLT run; ``analyze`` already named such an adapter by its folder)."""
        if self.edited:
            return []
        return list(((self.run or {}).get("dataset") or {}).get("sources") or [])

    @property
    def edited_note(self) -> str | None:
        """One line on an edited adapter, for the user (None when it is as trained)."""
        if not self.edited:
            return None
        return (
            f"adapter {self.name}: its {self.edited} was edited since training, so the sources "
            "its run.json names are not taken as its own (every language is scored as a "
            "target, and the report names it by its folder)"
        )

    @property
    def template(self) -> dict[str, Any]:
        """The manifest's ``template`` record (id, sha256, verbalizers), or ``{}``."""
        return dict((self.run or {}).get("template") or {})

    @property
    def chat_template(self) -> str | None:
        return (self.run or {}).get("chat_template")

    @property
    def system_prompt(self) -> str | None:
        return (self.run or {}).get("system_prompt")

    @property
    def trust_remote_code(self) -> bool | None:
        return (self.run or {}).get("trust_remote_code")

    def summary(self) -> dict[str, Any]:
        """What results.json records about the adapter. Its path is absolute: a report read
        it from its own working folder, found another adapter of that relative name (or none)
        and said "trained again since this evaluation"."""
        dataset = (self.run or {}).get("dataset") or {}
        return {
            "name": self.name,
            "path": str(self.path.absolute()),
            "sha256": self.sha256,
            "base_model": self.base_model,
            "task": self.task,
            "sources": self.sources,
            "dataset_fingerprint": dataset.get("fingerprint"),
            "template": self.template.get("id"),
            **({"edited": self.edited} if self.edited else {}),  # unedited: as recorded before
        }


def read_adapter(path: str | Path, name: str, require_run: bool = True) -> Adapter:
    """Read an adapter folder; without ``run.json`` it is an error unless ``require_run`` is off."""
    if not str(path).strip():  # Path("") is ".": the working folder was blamed
        raise MsltError("adapter: an empty path; give an adapter folder")
    path = Path(path)
    check_adapter_folder(path, "adapter")
    config = read_adapter_config(path, "adapter")
    run = read_run_record(path, "adapter")
    if run is None and require_run:
        raise MsltError(
            f"adapter: {str(path)!r} has no {RUN_FILE} (not an mslt-it run), so its template is "
            "unknown; pass --template and --allow-template-mismatch to evaluate it anyway"
        )
    base = recorded_base(run) or config.get("base_model_name_or_path")
    edited = edited_since_training(path) or (RUN_FILE if run_record_edited(path) else None)
    return Adapter(name, path, run, base, weights_sha256(path, "adapter"), edited)


TAKEN_NAMES = frozenset(
    {"base", "study.json", "results.json", "predictions.jsonl", "timings.json", "rescored.json"}
)
"""Names a run's folder does not take: the base model's run, and the files an evaluation of
several runs writes (or one run writes) at its top; an adapter folder named ``study.json`` made
a folder where the study's record is written (an internal error, the folder half-written)."""


def adapter_names(paths: list[str]) -> list[str]:
    """A short, unique name per adapter (its folder's name; ``-2``, ``-3`` … on a clash)."""
    names: list[str] = []
    folders: dict[Path, str] = {}
    for raw in paths:
        folder = resolved_path(raw, "adapter")  # a symlink loop is named as one
        if folder in folders:  # `a`, `./a`, `a/` and a link to it: one adapter, run once
            raise MsltError(
                f"adapter: {folders[folder]!r} and {raw!r} are the same folder; give it once"
            )
        folders[folder] = raw
        # it names a folder eval writes: a hidden one (`.chunks`) is where mslt-it keeps its
        # working files, and its run's files were taken for them
        base = without_controls(folder.name).lstrip(".") or "adapter"
        name, number = base, 2
        while name in names or name in TAKEN_NAMES:
            name, number = f"{base}-{number}", number + 1
        names.append(name)
    return names


def check_base_model(adapters: list[Adapter], model: str | None) -> str:
    """The study's base model: ``model``, or the adapters' shared one; any mismatch is an error.

    A run folder (or its base) that was moved or copied keeps the base's old path in run.json:
    ``--model NEW_PATH`` points it at its base, accepted when the folder's content is the one
    training recorded (``base_model_identity``); without ``--model`` a missing recorded base is
    a one-line error that says so. The same rule holds for ``mslt-it analyze``. One of
    mslt-it's own names (``mslt-it:tiny-world``) is its (made) folder, as ``eval --model`` and a
    recipe take it.
    """
    if model is not None:
        model = resolve_model_name(model, "model")
    for adapter in adapters:
        if adapter.base_model is None:
            continue
        if model is None:
            model = adapter.base_model
            if _looks_local(model) and not Path(model).expanduser().exists():
                raise MsltError(
                    f"adapter: {adapter.name} was trained on base model {model!r}, which is not "
                    "there any more (moved?); point it at the base with --model PATH"
                )
        elif not same_model(adapter.base_model, model) and not same_content(adapter, model):
            raise MsltError(
                f"adapter: {adapter.name} was trained on base model {adapter.base_model!r}, not "
                f"--model {model!r}; evaluate it with its own base model"
            )
    if model is None:
        raise MsltError("model: no --model given and the adapters do not name their base model")
    for adapter in adapters:
        check_base_unchanged(
            (adapter.run or {}).get("base_model_identity"), model, f"adapter: {adapter.name}",
            "evaluate it with the base it was trained on, or train it again",
            run_record_edited(adapter.path),
        )  # fmt: skip
    return model


def _looks_local(model: str) -> bool:
    """A path rather than a Hub id (``org/name``): absolute, relative with ./, or ~."""
    return model.startswith(("/", "./", "../", "~"))


def same_content(adapter: Adapter, model: str) -> bool:
    """``model`` is a local folder whose files are those the adapter's base had in training."""
    recorded = (adapter.run or {}).get("base_model_identity")
    folder = Path(model).expanduser()
    if not isinstance(recorded, dict) or "sha256" not in recorded or not folder.is_dir():
        return False
    return model_identity(folder) == recorded
