"""Several base models on one benchmark: an evaluation per model, and a comparison report.

``mslt-it eval --model A --model B …`` evaluates each model with the same settings into
``OUT/<model>/`` (resumable, like any evaluation) and writes ``OUT/comparison/`` through the
report: a models × languages table (``scores.csv``, ``report.md``) and heatmap. Benchmarking
models across languages is one of the main uses of mslt-it, so it is one command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mslt_it.errors import MsltError
from mslt_it.evaluation.config import EvalConfig

COMPARISON = "comparison"


@dataclass
class Comparison:
    """What :func:`compare_models` wrote: each model's evaluation and the report."""

    outcomes: dict[str, Any]  # model -> EvalOutcome
    report: Path


def model_folders(models: list[str]) -> dict[str, str]:
    """Model -> the name of its subfolder: a folder's name, or ``org--name`` for a Hub id.

    Names that would collide get ``-2``, ``-3``…; ``comparison`` is reserved for the report.
    """
    folders: dict[str, str] = {}
    taken = {COMPARISON}
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


def compare_models(
    config: EvalConfig, models: list[str], out: str | Path, overwrite: bool = False
) -> Comparison:
    """Evaluate every model in ``models`` with ``config``'s settings, then compare them."""
    from mslt_it.evaluation.runner import evaluate
    from mslt_it.outputs import check_destination, check_owner, mark_owner
    from mslt_it.report import write_report

    out = Path(out)
    duplicates = sorted({m for m in models if models.count(m) > 1})
    if duplicates:
        raise MsltError(f"--model: {duplicates[0]!r} is given twice")
    if config.adapters:
        raise MsltError("--adapter: adapters belong to one base model; compare models without them")
    out = check_destination(out, inputs=models)
    check_owner(out, kind="evaluation", existing_ok=True)  # an earlier comparison resumes
    out.mkdir(parents=True, exist_ok=True)
    mark_owner(out, "evaluation")
    outcomes = {}
    folders = model_folders(models)
    for model in models:
        single = config.model_copy(update={"model": model})
        outcomes[model] = evaluate(single, out / folders[model], overwrite=overwrite)
    report = write_report([out / folders[m] for m in models], out / COMPARISON, overwrite=True)
    return Comparison(outcomes, report)
