"""The report's training section: how each adapter learned, read from its run.json.

For every run of the report that names an adapter folder, its ``run.json`` (written by
``mslt-it train``) gives per-language loss curves, the transfer curves of ``train.watch`` and the
mix actually trained on. This module draws them (:mod:`mslt_it.training.plots`), names the step
at which each watched language first reaches 50 %, and repeats the trained-mix warnings, so a
reader sees *when* transfer appeared, not only where it ended.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mslt_it.errors import MsltError, clipped
from mslt_it.files import MAX_JSON_BYTES, read_user_text
from mslt_it.outputs import changed_since_written
from mslt_it.peft_adapters import weights_sha256
from mslt_it.report_results import TASK_NAME
from mslt_it.training.curves import mix_warnings
from mslt_it.training.limits import is_int
from mslt_it.training.plots import THRESHOLD, crossing_steps, plot_run


def adapter_runs(documents: dict[str, dict[str, Any]]) -> dict[str, tuple[Path, Any]]:
    """Run name -> (path, content) of its adapter's run.json, for runs whose adapter folder is
    still there. In place of the content, why its curves are left out (the section says so):
    mslt-it train wrote the file and it was changed since (curves from an edited record are
    not the training's), or the adapter was trained again since it was evaluated (the curves
    of other weights than the ones scored were drawn beside their scores without a word).

    An adapter folder that is gone (moved, removed) is said; a folder without run.json (an
    adapter trained elsewhere) has no curves to draw; a run.json that is there but unreadable
    is a one-line error, as any other input of the report.
    """
    found: dict[str, tuple[Path, Any]] = {}
    for name, data in documents.items():
        adapter = data.get("adapter")
        path = adapter.get("path") if isinstance(adapter, dict) else None
        if not isinstance(path, str):
            continue
        run_file = Path(path) / "run.json"
        if not Path(path).exists():  # said: the curves were left out without a word
            if Path(path).is_absolute():
                found[name] = (
                    run_file,
                    f"its adapter folder {path} is not there (moved or removed)",
                )
            else:  # an earlier mslt-it's, read from this folder
                found[name] = (run_file, elsewhere(path, "is not there"))
            continue
        if not run_file.is_file():  # an adapter trained elsewhere: no curves to draw
            continue
        if changed_since_written(run_file, "adapter"):
            found[name] = (run_file, EDITED)
            continue
        scored = adapter.get("sha256")
        if isinstance(scored, str) and scored != weights_sha256(Path(path), "adapter"):
            if Path(path).is_absolute():
                found[name] = (run_file, RETRAINED)
            else:
                found[name] = (
                    run_file,
                    elsewhere(path, "holds other weights than the ones scored"),
                )
            continue
        try:
            run = json.loads(read_user_text(run_file, "run.json", MAX_JSON_BYTES))
        except (ValueError, RecursionError):
            raise MsltError(f"run.json: {run_file} is not readable JSON") from None
        if isinstance(run, dict):
            found[name] = (run_file, run)
    return found


@dataclass(frozen=True)
class Budget:
    """What an adapter trained on, from its run.json: the dataset's rows (the sum of
    ``dataset.counts``) and the examples training went through (``trained_mix.examples``,
    repeats counted; None in a record of a version before it, or a run from elsewhere)."""

    rows: int
    trained: int | None

    def __str__(self) -> str:
        trained = "" if self.trained is None else f", {self.trained:,} trained on"
        return f"{self.rows:,} rows{trained}"


def _count(value: Any) -> int | None:
    return value if is_int(value) and value >= 0 else None


def training_budgets(runs: dict[str, tuple[Path, Any]]) -> dict[str, Budget]:
    """Run name -> its adapter's :class:`Budget`, for the runs whose record says it; what the
    gain and k-sweep plots' claim "at the same data budget" is checked against."""
    budgets: dict[str, Budget] = {}
    for name, (_, run) in runs.items():
        dataset = run.get("dataset") if isinstance(run, dict) else None
        counts = dataset.get("counts") if isinstance(dataset, dict) else None
        if not isinstance(counts, dict) or not counts:
            continue
        rows = [_count(value) for value in counts.values()]
        if any(count is None for count in rows):
            continue
        mix = run.get("trained_mix")
        trained = _count(mix.get("examples")) if isinstance(mix, dict) else None
        budgets[name] = Budget(sum(count for count in rows if count is not None), trained)
    return budgets


def same_budget(budgets: dict[str, Budget], runs: list[str]) -> bool | None:
    """True when every run in ``runs`` had one dataset size and went through one number of
    examples, False when two known numbers differ (rows, or examples trained on: a run cut
    short by ``max_steps``), None when some are unknown (an adapter moved away, or not
    mslt-it's) and the known ones agree: then the plots claim nothing either way."""
    known = [budgets[run] for run in runs if run in budgets]
    trained = {budget.trained for budget in known if budget.trained is not None}
    if len({budget.rows for budget in known}) > 1 or len(trained) > 1:
        return False
    every = known and len(known) == len(runs) and all(b.trained is not None for b in known)
    return True if every else None


def budget_note(budgets: dict[str, Budget], runs: list[str]) -> str:
    """A line for the report when the runs' adapters trained on different amounts of data:
    their gains are not the paper's comparison at one budget."""
    if same_budget(budgets, runs) is not False:
        return ""
    listed = "; ".join(f"{run}: {budgets[run]}" for run in runs if run in budgets)
    return (
        f"**Data budgets differ** (from each adapter's run.json: {listed}): gains between "
        "these runs are not at the same data budget."
    )


def check_printed_names(run: dict[str, Any], path: Path) -> None:
    """The names a training section prints from a run.json (sources, watched tasks and
    languages, languages off their promised share) are plain names: a run.json from elsewhere
    could put table rows or escapes into report.md."""
    dataset = run.get("dataset") if isinstance(run.get("dataset"), dict) else {}
    watch = (run.get("curves") or {}).get("watch") if isinstance(run.get("curves"), dict) else {}
    mix = run.get("trained_mix") if isinstance(run.get("trained_mix"), dict) else {}
    names = [
        *(("dataset.sources", code) for code in dataset.get("sources") or []),
        *(("curves.watch", task) for task in (watch if isinstance(watch, dict) else {})),
        *(
            (f"curves.watch.{task}", lang)
            for task, langs in (watch if isinstance(watch, dict) else {}).items()
            for lang in (langs if isinstance(langs, dict) else {})
        ),
        *(("trained_mix.over_tolerance", code) for code in mix.get("over_tolerance") or []),
    ]
    for place, name in names:
        if not isinstance(name, str) or not TASK_NAME.match(name.replace("+", "_")):
            raise MsltError(f"run.json: {path}: {place}: {clipped(name, 40)} is not a plain name")


MAX_STEP = 10**9
MAX_POINTS = 100_000
MAX_LOSS = 1e6


def check_curves(run: dict[str, Any], path: Path) -> None:
    """The curves a training section draws are what ``mslt-it train`` writes: per series a list
    of ``[step, value]`` with whole steps in 0..10⁹, watch accuracies in 0..100 and losses in
    0..10⁶ (or not finite: a diverged step, drawn as a gap). A run.json from elsewhere with a
    step of 10⁴⁰⁰ was an internal error, one with an infinite accuracy "reached 50 %", and one
    with ``sources: "en"`` was printed as the sources ``e, n``."""
    where = f"run.json: {path}"
    for section, key in (("dataset", "sources"), ("trained_mix", "over_tolerance")):
        parent = run.get(section)
        codes = parent.get(key) if isinstance(parent, dict) else None
        if codes is not None and not (
            isinstance(codes, list) and all(isinstance(code, str) for code in codes)
        ):
            raise MsltError(
                f"{where}: {section}.{key}: {clipped(codes, 40)} is not a list of languages"
            )
    curves = run.get("curves")
    if curves is None:
        return
    if not isinstance(curves, dict):
        raise MsltError(f"{where}: curves: {clipped(curves, 40)} is not a mapping")
    series = [("curves.loss_by_language", curves.get("loss_by_language"), False)]
    for key, accuracy in (("heldout_loss_by_language", False), ("watch", True)):
        place = f"curves.{key}"
        series += [
            (f"{place}.{name}", langs, accuracy)
            for name, langs in _mapping(curves.get(key), place, where).items()
        ]
    for place, langs, accuracy in series:
        for lang, points in _mapping(langs, place, where).items():
            _check_points(points, f"{where}: {place}.{lang}", accuracy)


def _mapping(value: Any, place: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MsltError(f"{where}: {place}: {clipped(value, 40)} is not a mapping")
    return value


def _check_points(points: Any, where: str, accuracy: bool) -> None:
    if not isinstance(points, list) or len(points) > MAX_POINTS:
        raise MsltError(f"{where}: {clipped(points, 40)} is not a list of [step, value] points")
    for point in points:
        step, value = point if isinstance(point, list) and len(point) == 2 else (None, None)
        if type(step) is not int or not 0 <= step <= MAX_STEP:
            raise MsltError(f"{where}: {clipped(point, 40)} has no whole step in 0..{MAX_STEP:,}")
        if type(value) not in (int, float):
            raise MsltError(f"{where}: {clipped(point, 40)} has no number for its value")
        if accuracy and not 0 <= value <= 100:  # NaN and infinities fail this too
            raise MsltError(f"{where}: {clipped(point, 40)}: an accuracy lies in 0..100")
        if not accuracy and math.isfinite(value) and not 0 <= value <= MAX_LOSS:
            raise MsltError(f"{where}: {clipped(point, 40)}: a loss lies in 0..{MAX_LOSS:g}")


def file_stem(name: str) -> str:
    """A run's label (``MSLT ar+de+zh``) as a file name: letters, digits, ``+``, ``-``, ``_``.

    A label that cleaning changes beyond a space into ``_`` gets the first 8 hex digits of its
    SHA-256 appended: labels that differ only in other characters (``SSLT en [eval/实验甲]``
    and ``SSLT en [eval/实验乙]``, ``seed.1`` and ``seed_1``) were cleaned to one name, and the
    second run's curves overwrote the first's. A label clean but for its spaces (``SSLT en``,
    every label of sources) keeps its name, as earlier reports named its files; the rare clash
    left (``a b`` beside ``a_b``) is :func:`unique_stems`'s.
    """
    stem = re.sub(r"[^A-Za-z0-9+_-]+", "_", name).strip("_") or "run"
    if stem == name.replace(" ", "_"):
        return stem
    return f"{stem}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def unique_stems(names: list[str]) -> dict[str, str]:
    """Each name's :func:`file_stem`, one per name whatever the names: a clean label could
    still spell another's cleaned stem and digest, or differ from it only in case (one file on
    a case-insensitive disk), so a stem already taken gets ``-2``, ``-3``… until it is free.
    Each kind of curve ends its file name alike (``-loss.png``), so distinct stems never share
    a file."""
    taken: set[str] = set()
    stems: dict[str, str] = {}
    for name in names:
        stem = candidate = file_stem(name)
        number = 1
        while candidate.casefold() in taken:
            number += 1
            candidate = f"{stem}-{number}"
        stems[name] = candidate
        taken.add(candidate.casefold())
    return stems


EDITED = "its run.json was changed since `mslt-it train` wrote it"
RETRAINED = (
    "the adapter was trained again since this evaluation (its weights are not the ones scored); "
    "evaluate it again"
)


def elsewhere(path: str, found: str) -> str:
    """Why curves are left out when a relative adapter path (as an earlier mslt-it recorded
    it) leads, from this working folder, to no adapter or to other weights than the ones
    scored: the adapter may have been moved or trained again, or the evaluation ran from
    another folder."""
    return (
        f"{path}, read from this working folder (the evaluation recorded it relative), {found}: "
        "the adapter was moved or trained again, or the evaluation ran from another folder "
        "(run the report from there)"
    )


def training_section(runs: dict[str, tuple[Path, Any]], folder: Path) -> tuple[str, list[str]]:
    """Markdown for the training curves of ``runs`` (drawn into ``folder``) and the warnings."""
    lines: list[str] = []
    mix_notes: list[str] = []
    stems = unique_stems(list(runs))
    for name, (path, run) in runs.items():
        if isinstance(run, str):  # why it is left out
            lines += [f"### {name}", "", f"Training curves left out: {run}.", ""]
            continue
        check_curves(run, path)  # first: the shapes the names are read from
        check_printed_names(run, path)
        try:
            with warnings.catch_warnings():  # matplotlib's, on odd values of a foreign record
                warnings.simplefilter("ignore")
                figures = plot_run(run, folder, stems[name])
            crossings = crossing_steps(run)
            warned = mix_warnings(run)
        except (
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            IndexError,
            OverflowError,
        ) as error:
            raise MsltError(
                f"run.json: {path} is not a run record mslt-it train writes "
                f"({type(error).__name__}: {error!s:.80})"
            ) from None
        mix_notes += [f"{name}: {line}" for line in warned]
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
        return "", mix_notes
    return "## Training curves\n\n" + "\n".join(lines), mix_notes
