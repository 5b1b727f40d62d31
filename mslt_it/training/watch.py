"""Transfer curves: target languages scored in rank mode while the adapter trains.

Everything is settled before the model loads (:func:`plan_watch`): the task and its languages,
the template the run trains with (the dataset's, for its own task), the split and rows
``mslt-it eval`` would read (the first ``limit``), every row's rank-mode candidates, and the
steps. A bad language, a step past ``max_steps`` or an empty split is a one-line error then.

At a watch step the adapter is scored as it is, in the training process (no copy of the model):
the rows go through :func:`mslt_it.evaluation.runner.rank_chunk` and the transformers backend's
``loglikelihood`` (prompt encoded once per row, every candidate scored against it), which is the
code ``mslt-it eval --mode rank --backend hf`` runs. The model is switched to eval mode for the
scoring and back; nothing random is drawn, so a watched run trains exactly as an unwatched one.
Accuracies go into the Trainer's log entry (``watch``), so checkpoints keep them and ``--resume``
continues the curve.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mslt_it.built_data import built_from, built_prompts_dirs, built_template
from mslt_it.errors import MsltError, field_named
from mslt_it.evaluation.metrics import accuracy
from mslt_it.evaluation.plan import RunPlan, evaluation_split
from mslt_it.evaluation.prompting import ChatFormat
from mslt_it.evaluation.runner import rank_chunk
from mslt_it.generation.base import BackendOptions
from mslt_it.generation.hf import HFBackend
from mslt_it.prompts import get_template
from mslt_it.tasks import default_template, get_task
from mslt_it.tasks.definitions import user_definition
from mslt_it.tasks.sources import check_split, open_split
from mslt_it.training.config import WatchConfig, check_watch
from mslt_it.training.curves import write_scalars

DEFAULT_POINTS = 10


@dataclass
class WatchTask:
    """One ``train.watch`` entry, resolved: rows, template and chat format per language."""

    spec: WatchConfig
    task: Any
    template: Any
    split: str
    data: str
    rows: dict[str, list[dict[str, Any]]]


@dataclass
class WatchPlan:
    """Every watched task, the chat format the run trains with, and the requested steps."""

    tasks: list[WatchTask]
    chat: Any
    seconds: float = 0.0
    points: int = 0
    steps: set[int] = field(default_factory=set)


def plan_watch(
    specs: list[WatchConfig],
    manifest: dict[str, Any],
    tokenizer: Any,
    chat_template: str,
    max_steps: int,
) -> WatchPlan | None:
    """Check and load what the watch needs; errors name ``train.watch``."""
    if not specs:
        return None

    config = manifest.get("config") or {}
    check_watch(specs, max_steps)
    tasks = []
    for number, spec in enumerate(specs):
        where = f"train.watch.{number}"
        task = get_task(spec.task)
        if task.name == manifest.get("task"):  # rendered as the dataset's rows were
            template = built_template(manifest, "train.dataset")
        else:
            template = get_template(default_template(task.name), built_prompts_dirs(manifest))
        for lang in spec.langs:
            template.check_language(lang)
        split = spec.split or evaluation_split(task)
        with field_named(f"{where}.split", "split"):
            check_split(task, split)
        data = spec.data or built_from(manifest)
        rows = {}
        for lang in spec.langs:
            with field_named(f"{where}.data", "data"):
                opened = open_split(task, lang, split, data)
            count = min(len(opened), spec.limit)
            if count == 0:
                raise MsltError(f"{where}.langs: {opened.origin} has no usable {lang} rows")
            rows[lang] = opened.rows(list(range(count)))
        tasks.append(WatchTask(spec, task, template, split, data, rows))
    system = config.get("system_prompt")
    return WatchPlan(tasks, ChatFormat(tokenizer, chat_template, system))


def watched_files(plan: WatchPlan | None, dataset_task: str | None) -> dict[str, dict[str, str]]:
    """The user's files a watched task other than the dataset's is scored through: its
    definition (``--tasks-dir``) and its template (the dataset's own are checked against the
    build's digests). Part of the run's identity: an edited one made the run "complete" with
    the curves of the old one. Shipped files are mslt-it's version, so a run that watches
    shipped tasks keeps its identity (as a recipe's step hash does)."""
    found: dict[str, dict[str, str]] = {}
    for number, entry in enumerate(plan.tasks if plan is not None else []):
        if entry.task.name == dataset_task:
            continue
        files: dict[str, str] = {}
        definition = user_definition(entry.task)
        if definition:
            files["definition"] = definition["sha256"]
        if entry.template.user_sha256 is not None:
            files["template"] = entry.template.user_sha256
        if files:
            found[f"watch.{number}"] = files
    return found


def watch_steps(plan: WatchPlan, max_steps: int) -> set[int]:
    """The steps to score at: each spec's ``every`` and ``steps``, and always the last step."""
    steps = {max_steps}
    for entry in plan.tasks:
        spec = entry.spec
        for step in spec.steps:
            if step > max_steps:
                raise MsltError(
                    f"train.watch: step {step} is beyond the run's {max_steps} steps; "
                    f"watch steps must lie in 1..{max_steps}"
                )
        steps.update(spec.steps)
        if spec.every and spec.every > max_steps:  # a curve of one point, the final score
            raise MsltError(
                f"train.watch: every {spec.every} steps is beyond the run's {max_steps} steps; "
                f"watch every 1..{max_steps} steps"
            )
        every = spec.every or (None if spec.steps else max(1, max_steps // DEFAULT_POINTS))
        if every:
            steps.update(range(every, max_steps + 1, every))
    return steps


def in_process_backend(model: Any, tokenizer: Any, batch_size: int = 32) -> Any:
    """The transformers backend around the model being trained (its adapter active).

    :class:`~mslt_it.generation.hf.HFBackend` loads its model in ``__init__``; the watch needs its
    scoring on a model already in memory, so the backend's attributes are set here as its
    ``__init__`` sets them (a ``HFBackend.from_model`` constructor would make this one call).
    """

    backend = HFBackend.__new__(HFBackend)
    backend.options = BackendOptions(model="(the model being trained)", batch_size=batch_size)
    backend.device = next(model.parameters()).device
    backend.dtype = next(model.parameters()).dtype
    backend.model = model
    eos = tokenizer.eos_token_id
    backend.stop_token_ids = (eos,) if eos is not None else ()
    pad = tokenizer.pad_token_id
    backend.pad_token_id = pad if pad is not None else eos
    return backend


def score(plan: WatchPlan, model: Any, tokenizer: Any) -> dict[str, dict[str, float]]:
    """Accuracy (x100, as results.json) per task and language of the model as it is now."""

    run = RunPlan("watch", None, Path("."), {}, {}, plan.chat)
    backend = in_process_backend(model, tokenizer)
    was_training = model.training
    model.eval()
    found: dict[str, dict[str, float]] = {}
    try:
        for entry in plan.tasks:
            for lang, rows in entry.rows.items():
                records = rank_chunk(None, run, entry.task, entry.template, lang, rows, backend)
                correct = [bool(r["correct"]) for r in records]
                found.setdefault(entry.task.name, {})[lang] = round(float(accuracy(correct)), 4)
    finally:
        model.train(was_training)
    return found


def watch_callback(plan: WatchPlan, tokenizer: Any, tensorboard: Any = None) -> Any:
    """A TrainerCallback that scores the watched languages at the planned steps."""
    from transformers import TrainerCallback

    class TransferWatch(TrainerCallback):
        """Scores at ``on_step_end``, before the step's log and checkpoint are written."""

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            plan.steps = watch_steps(plan, state.max_steps)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step not in plan.steps:
                return
            started = time.monotonic()
            scores = score(plan, kwargs["model"], tokenizer)
            plan.seconds += time.monotonic() - started
            plan.points += 1
            state.log_history.append({"step": state.global_step, "watch": scores})
            for task, values in scores.items():
                write_scalars(tensorboard, f"watch/{task}", values, state.global_step)

    return TransferWatch()


def watch_record(plan: WatchPlan | None, sources: list[str]) -> dict[str, Any] | None:
    """run.json's description of the watch (the curves themselves are under ``curves``)."""
    if plan is None:
        return None
    return {
        "tasks": [
            {
                "task": entry.task.name,
                "langs": list(entry.spec.langs),
                "split": entry.split,
                "data": entry.data,
                "limit": entry.spec.limit,
                "template": entry.template.id,
                "rows": {lang: len(rows) for lang, rows in entry.rows.items()},
            }
            for entry in plan.tasks
        ],
        "steps": sorted(plan.steps),
        "sources": sources,
        "mode": "rank",
        "seconds_this_session": round(plan.seconds, 2),
        "points_this_session": plan.points,
    }
