"""Several base models on one benchmark: an evaluation per model, and a comparison report.

``mslt-it eval --model A --model B …`` evaluates each model with the same settings into
``OUT/<model>/`` (resumable, like any evaluation) and writes ``OUT/comparison/`` through the
report: a models × languages table (``scores.csv``, ``report.md``) and heatmap. Benchmarking
models across languages is one of the main uses of mslt-it, so it is one command.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mslt_it.arguments import checked_config, expect, path_argument, sequence_argument
from mslt_it.errors import MsltError
from mslt_it.evaluation.config import EvalConfig
from mslt_it.evaluation.plan import plan_evaluation
from mslt_it.evaluation.runner import (
    evaluate,
    reopen_evaluation,
    said_reports_removed,
    saved_predictions,
)
from mslt_it.io import atomic_write_json, remove_folder, seal
from mslt_it.locks import output_lock
from mslt_it.named_models import resolve_model_name
from mslt_it.outputs import (
    COMPARISON,
    MODELS_KIND,
    MODELS_RECORD,
    OWNER_FILE,
    check_destination,
    check_nothing_foreign,
    check_owner,
    check_replaceable,
    drop_derived_reports,
    foreign_files,
    holds_anything,
    listed_files,
    mark_finished,
    mark_owner,
    models_record,
    owner_kind,
    record_file,
    remove_own_output,
)
from mslt_it.report import write_report
from mslt_it.terminal import STDERR


@dataclass
class Comparison:
    """What :func:`compare_models` wrote: each model's evaluation and the report."""

    outcomes: dict[str, Any]  # model -> EvalOutcome
    report: Path


def model_folders(models: list[str]) -> dict[str, str]:
    """Model -> the name of its subfolder: a folder's name, or ``org--name`` for a Hub id.

    Names that would collide get ``-2``, ``-3``…; ``comparison`` is reserved for the report,
    ``models.json`` for the record of the folders (:data:`MODELS_RECORD`).
    """
    folders: dict[str, str] = {}
    taken = {COMPARISON, MODELS_RECORD}
    for model in models:
        path = Path(model)
        base = path.name if path.exists() else model.replace("/", "--")
        base = re.sub(r"[^A-Za-z0-9._+-]", "_", base).strip("._") or "model"
        name, index = base, 2
        while name in taken:
            name, index = f"{base}-{index}", index + 1
        taken.add(name)
        folders[model] = name
    return folders


def model_identity(model: str) -> str:
    """What makes two spellings of one model the same: a local folder's real path, else the id."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def check_distinct_models(models: list[str], fields: str | list[str]) -> None:
    """Each model once, however it is spelt (``m``, ``m/``, a link to ``m``): a model evaluated
    twice would be compared with itself. ``fields`` names each entry (or all of them)."""
    named = [fields] * len(models) if isinstance(fields, str) else fields
    seen: dict[str, tuple[str, str]] = {}
    for model, field in zip(models, named, strict=True):
        identity = model_identity(model)
        if identity in seen:
            first, where = seen[identity]
            same = "is given twice" if model == first else f"and {first!r} are the same model"
            also = f" (also as {where})" if where != field else ""  # the recipe's own model
            raise MsltError(f"{field}: {model!r} {same}{also}; give it once")
        seen[identity] = (model, field)


def compare_models(
    config: EvalConfig,
    models: list[str],
    out: str | Path,
    overwrite: bool = False,
    update: bool = False,
) -> Comparison:
    """Evaluate every model in ``models`` with ``config``'s settings, then compare them.

    ``update`` remakes each model's evaluation for new options as ``eval --update`` does,
    keeping the predictions they leave alike (a comparison given another language was refused
    with the advice to pass ``--update``, which it refused in turn).

    Every model is planned (checked: its files, languages, templates) before anything is
    written, so a bad option leaves no folder behind. The comparison report in ``OUT/comparison``
    is derived from the evaluations and is re-made each time, but only if mslt-it's marker proves
    the folder its own and it holds nothing mslt-it did not write.
    """
    config = expect(config, EvalConfig, "config", "a mslt_it.evaluation.EvalConfig")
    config = checked_config(config, "config")
    out = path_argument(out, "out")
    listed = sequence_argument(models, "models", "a list of models (Hub ids or folders)")
    if not listed:
        raise MsltError("models: an empty list; give the models to compare (two or more)")
    for number, model in enumerate(listed):
        expect(model, (str, os.PathLike), f"models.{number}", "a Hub id, a folder or mslt-it:NAME")
    # a folder as a Path too, as every other path argument takes it
    models = [resolve_model_name(os.fspath(model)) for model in listed]
    check_distinct_models(models, "--model")
    if config.adapters:
        raise MsltError("--adapter: adapters belong to one base model; compare models without them")
    out = check_destination(out, inputs=models)
    folders = model_folders(models)
    for model in models:  # every mistake found before anything is written
        plan_evaluation(config.model_copy(update={"model": model}), out / folders[model])
    created = not out.exists()
    try:
        # The whole study under one lock: a second process on OUT stops at once, before it
        # could replace one model's finished evaluation while the first works on the next.
        with output_lock(out):
            check_owner(out, kind="evaluation", existing_ok=True, overwrite=overwrite)
            if overwrite and out.is_dir() and holds_anything(out):
                recorded_models(out)  # a record edited is said as such, not as the user's files
                remove_own_output(out, "--out")  # the whole study: no model's old results kept
            earlier: dict[str, str] = {}
            if not overwrite and out.is_dir():
                check_no_single_evaluation(out)
                recorded = recorded_models(out)
                check_model_folders(out, folders, recorded)
                earlier = recorded or {}
                # the table is written last: what would stop it (a file or a folder of the
                # user's in its place) is said before any model is evaluated or dropped
                check_destination(out / COMPARISON, field="--out")
                check_replaceable(out / COMPARISON, "report", True, "--out")
                if update:
                    # nothing goes before every folder is proven free of the user's files: a
                    # refusal halfway left a dropped model removed, the record still naming it
                    # (the reports are proven by drop_derived_reports, all before one goes)
                    for folder in folders.values():
                        if is_evaluation_folder(out / folder):
                            check_nothing_foreign(out / folder, "--out")
                    reports = drop_derived_reports(out, "--out", keep=(COMPARISON,))
                    said_reports_removed(out, reports)
            out.mkdir(parents=True, exist_ok=True)
            if not (out / OWNER_FILE).is_file():  # marked again, it listed the user's files
                mark_owner(out, "evaluation")  # found there as mslt-it's
            # before any model's folder, so a killed run resumes; a model left out stays the
            # comparison's until --update drops it, once every given model is evaluated (a
            # model that would not load stopped the update after the others were removed)
            left_out = {
                m: f for m, f in earlier.items() if m not in folders and f not in folders.values()
            }
            record = out / MODELS_RECORD
            atomic_write_json(record, seal({"kind": MODELS_KIND, "models": left_out | folders}))
            record_file(record)
            outcomes = {}
            for model in models:
                single = config.model_copy(update={"model": model, "compare_models": []})
                outcomes[model] = evaluate(
                    single, out / folders[model], overwrite=overwrite, update=update
                )
            dropped = set(earlier.values()) - set(folders.values())
            if update and dropped:
                drop_other_models(out, dropped)
                atomic_write_json(record, seal({"kind": MODELS_KIND, "models": folders}))
                record_file(record)
            report = write_report(
                [out / folders[m] for m in models], out / COMPARISON, overwrite=True
            )
            mark_finished(out, "evaluation")
    except MsltError:
        if created and out.is_dir() and not saved_predictions(out):
            shutil.rmtree(out, ignore_errors=True)
        raise
    return Comparison(outcomes, report)


def recorded_models(out: Path) -> dict[str, str] | None:
    """Model -> folder as ``OUT/models.json`` names them (:func:`models_record`); None for a
    comparison of an earlier mslt-it, which wrote none. A record removed or edited since (or a
    file of the user's by that name) is one line: without it nothing tells the comparison's
    folders from the user's, so neither reopening nor ``--overwrite`` takes them."""
    listed = listed_files(out) or {}
    record = out / MODELS_RECORD
    if MODELS_RECORD not in listed:
        if os.path.lexists(record):
            raise MsltError(
                f"--out: {str(record)!r} is not mslt-it's (its marker does not list it); move "
                "it out of the comparison or choose another --out"
            )
        return None
    models = models_record(out)
    if models is None:
        raise MsltError(
            f"--out: {str(record)!r}, which names the comparison's model folders, was removed "
            "or edited; without it mslt-it cannot tell them from yours: restore it, or remove "
            "the comparison yourself to evaluate every model again"
        )
    return models


def check_model_folders(
    out: Path, folders: dict[str, str], recorded: dict[str, str] | None
) -> None:
    """Each model's folder is a folder of this comparison's, or not there yet: an evaluation
    written through a link, or into a folder the comparison did not make (the user's own
    evaluation named like a model added to it), replaced what was there. ``recorded``: what
    ``OUT/models.json`` names (:func:`recorded_models`; None in a comparison of an earlier
    mslt-it, whose folders are taken as its own, as they were)."""
    for model, name in folders.items():
        folder = out / name
        if folder.is_symlink():
            raise MsltError(
                f"--out: {str(folder)!r} (the folder of model {model!r}) is a link; a "
                "comparison writes each model's evaluation into a folder of its own"
            )
        if recorded is not None and name not in recorded.values() and os.path.lexists(folder):
            raise MsltError(
                f"--out: {str(folder)!r} (the folder of model {model!r}) is not one this "
                "comparison made; move it out of the comparison or choose another --out"
            )


def drop_other_models(out: Path, dropped: set[str]) -> None:
    """A comparison made again (``update``) without some of its models: their evaluations go
    (``dropped``: folders ``OUT/models.json`` names), where the marker proves them evaluations
    of mslt-it's with nothing of the user's in them (one with the user's files stays, no longer
    the comparison's; the report never reads it). Nothing else in the folder is touched."""
    for name in sorted(dropped):
        folder = out / name
        if name == COMPARISON or not is_evaluation_folder(folder):
            continue
        strangers = foreign_files(folder)
        if not strangers:
            remove_folder(folder)
            continue
        STDERR.print(  # kept, and no longer the comparison's: said, or the user's report
            f"note: kept {str(folder)!r}, a model no longer compared, for the file of yours in "
            f"it ({strangers[0]!r}); it is not part of the comparison now: move it out of "
            f"{str(out)!r} (a report of the folder reads it, and --overwrite stops at it)",
            highlight=False,
            soft_wrap=True,
        )


def is_evaluation_folder(folder: Path) -> bool:
    """A folder (not a link to one) whose marker says mslt-it wrote an evaluation there."""
    return folder.is_dir() and not folder.is_symlink() and owner_kind(folder) == "evaluation"


def reopen_comparison(out: Path) -> bool:
    """Make a finished comparison unfinished again, model by model (:func:`reopen_evaluation`),
    so that making it again with ``update`` predicts only what changed: a recipe whose
    evaluation settings or task definitions changed re-predicted every compared model. Only
    the folders ``OUT/models.json`` names; False without that record (a comparison of an
    earlier mslt-it: removed whole, as it was) or where one cannot be reopened; a record
    removed or edited is one line (:func:`recorded_models`)."""
    recorded = recorded_models(out)
    if recorded is None:
        return False
    models = [out / name for name in sorted(set(recorded.values()))]
    reopened = [reopen_evaluation(folder) for folder in models if is_evaluation_folder(folder)]
    return all(reopened)  # every one reopened, not only those before the first False


ONE_MODEL_FILES = ("results.json", "predictions.jsonl", ".chunks")
"""What an evaluation of one model holds at its top, where a comparison has a folder per model."""


def check_no_single_evaluation(out: Path) -> None:
    """A comparison is not written over an evaluation of one model: its results at the top
    would stay, and a report of the folder would show them as another run."""
    found = next((name for name in ONE_MODEL_FILES if (out / name).exists()), None)
    if found is not None:
        raise MsltError(
            f"--out: {str(out)!r} holds an evaluation of one model ({found} at its top); a "
            "comparison writes a folder per model: choose another folder or pass --overwrite"
        )
