"""The report's training section: how each adapter learned, read from its run.json.

For every run of the report that names an adapter folder, its ``run.json`` (written by
``mslt-it train``) gives per-language loss curves, the transfer curves of ``train.watch`` and the
mix actually trained on. This module draws them (:mod:`mslt_it.training.plots`), names the step
at which each watched language first reaches 50 %, and repeats the trained-mix warnings, so a
reader sees *when* transfer appeared, not only where it ended.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mslt_it.errors import MsltError
from mslt_it.files import MAX_JSON_BYTES, read_user_text
from mslt_it.training.curves import mix_warnings
from mslt_it.training.plots import THRESHOLD, crossing_steps, plot_run


def adapter_runs(documents: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Run name -> the run.json of its adapter, for runs whose adapter folder is still there.

    A run.json that is missing (a moved adapter) is left out; one that is there but unreadable
    is a one-line error, as any other input of the report.
    """
    found: dict[str, dict[str, Any]] = {}
    for name, data in documents.items():
        adapter = data.get("adapter")
        path = adapter.get("path") if isinstance(adapter, dict) else None
        if not isinstance(path, str):
            continue
        run_file = Path(path) / "run.json"
        if not run_file.is_file():
            continue
        try:
            run = json.loads(read_user_text(run_file, "run.json", MAX_JSON_BYTES))
        except ValueError:
            raise MsltError(f"run.json: {run_file} is not readable JSON") from None
        if isinstance(run, dict):
            found[name] = run
    return found


def file_stem(name: str) -> str:
    """A run's label (``MSLT ar+de+zh``) as a file name: letters, digits, ``+``, ``-``, ``_``."""
    return re.sub(r"[^A-Za-z0-9+_-]+", "_", name).strip("_") or "run"


def training_section(runs: dict[str, dict[str, Any]], folder: Path) -> tuple[str, list[str]]:
    """Markdown for the training curves of ``runs`` (drawn into ``folder``) and the warnings."""
    lines: list[str] = []
    warnings: list[str] = []
    for name, run in runs.items():
        figures = plot_run(run, folder, file_stem(name))
        crossings = crossing_steps(run)
        warned = mix_warnings(run)
        warnings += [f"{name}: {line}" for line in warned]
        if not (figures or crossings or warned):
            continue
        sources = ", ".join((run.get("dataset") or {}).get("sources") or []) or "?"
        lines += [f"### {name} (sources: {sources})", ""]
        for task, langs in crossings.items():
            reached = [f"{lang} at step {step}" for lang, step in langs.items() if step is not None]
            never = [lang for lang, step in langs.items() if step is None]
            text = f"{task}: first at {THRESHOLD:g} % accuracy: " + (", ".join(reached) or "none")
            if never:
                text += f"; never: {', '.join(never)}"
            lines += [text + ".", ""]
        lines += [f"- trained mix: {line}" for line in warned]
        lines += [f"![{path.name}]({path.name})" for path in figures.values()]
        lines.append("")
    if not lines:
        return "", warnings
    return "## Training curves\n\n" + "\n".join(lines), warnings
