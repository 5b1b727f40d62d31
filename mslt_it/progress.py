"""Progress on stderr, so it never mixes with a command's output on stdout.

On a terminal: Rich bars. Off one (a log file, CI, a Slurm job): a plain line per task every
``MSLT_IT_PROGRESS_SECONDS`` (default 30) and when it finishes, so long training and evaluation
still say how far they are. ``MSLT_IT_PROGRESS=0`` turns both off, ``=1`` forces the bars.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from mslt_it.files import one_line
from mslt_it.terminal import STDERR

T = TypeVar("T")


def progress_enabled() -> bool:
    """Bars show on a terminal; ``MSLT_IT_PROGRESS=0/1`` forces them off or on."""
    forced = os.environ.get("MSLT_IT_PROGRESS")
    if forced is not None:
        return forced not in ("0", "", "false")
    return sys.stderr.isatty()


def plain_progress_enabled() -> bool:
    """Plain lines instead of bars: off a terminal, unless ``MSLT_IT_PROGRESS`` says otherwise."""
    return os.environ.get("MSLT_IT_PROGRESS") is None and not sys.stderr.isatty()


def plain_interval() -> float:
    """Seconds between two plain progress lines of one task (``MSLT_IT_PROGRESS_SECONDS``)."""
    try:
        return max(0.0, float(os.environ.get("MSLT_IT_PROGRESS_SECONDS", "30")))
    except ValueError:
        return 30.0


@dataclass
class _PlainTask:
    description: str
    total: float | None
    completed: float = 0
    started: float = field(default_factory=time.monotonic)
    reported: float = field(default_factory=time.monotonic)
    done: bool = False
    printed: bool = False


class PlainProgress:
    """The part of Rich's ``Progress`` mslt-it uses, printing a plain line now and then."""

    def __init__(self) -> None:
        self.tasks: dict[int, _PlainTask] = {}
        self.interval = plain_interval()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        for task in self.tasks.values():
            if not task.done and task.printed:
                self._print(task)
            task.done = True

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        key = len(self.tasks)
        self.tasks[key] = _PlainTask(description, total)
        return key

    def update(
        self,
        task_id: int,
        *,
        description: str | None = None,
        completed: float | None = None,
        advance: float | None = None,
        total: float | None = None,
        **_: Any,
    ) -> None:
        task = self.tasks[task_id]
        if description is not None:
            task.description = description
        if total is not None:
            task.total = total
        if completed is not None:
            task.completed = completed
        if advance is not None:
            task.completed += advance
        self._maybe_print(task)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def track(
        self, items: Iterable[T], total: float | None = None, description: str = "working"
    ) -> Iterator[T]:
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        key = self.add_task(description, total=total)
        for item in items:
            yield item
            self.advance(key)

    def _maybe_print(self, task: _PlainTask) -> None:
        """A line every interval; a last one when a task that printed finishes. Work shorter
        than one interval prints nothing (a quick command's error stays its only line)."""
        finished = task.total is not None and task.completed >= task.total
        if finished and not task.done:
            task.done = True
            if task.printed or time.monotonic() - task.started >= self.interval:
                self._print(task)
        elif not finished and time.monotonic() - task.reported >= self.interval:
            self._print(task)

    def _print(self, task: _PlainTask) -> None:
        task.printed = True
        task.reported = time.monotonic()
        elapsed = task.reported - task.started
        total = f"/{task.total:g}" if task.total is not None else ""
        print(
            f"{one_line(task.description)}: {task.completed:g}{total}, {elapsed:.0f} s",
            file=sys.stderr,
            flush=True,
        )


class DescriptionColumn(ProgressColumn):
    """A task's description in bold, as it is: it may name a user's folder or run, whose
    brackets are not markup and whose control characters (a newline too) are shown escaped."""

    def render(self, task: Task) -> Text:
        return Text(one_line(task.description), style="bold")


def progress_bar() -> Progress | PlainProgress:
    """A progress display with counts, elapsed and remaining time (plain lines off a terminal)."""
    if plain_progress_enabled():
        return PlainProgress()
    return Progress(
        DescriptionColumn(),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=STDERR,
        disable=not progress_enabled(),
        transient=False,
    )


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items`` behind a progress bar."""
    with progress_bar() as progress:
        yield from progress.track(items, total=total, description=description)


def quiet_library_progress_bars() -> None:
    """Silence the tqdm bars of transformers, the Hub and datasets when mslt-it's bars are off.

    Off a terminal (CI, a log file) their carriage-return redraws are noise; on one, mslt-it
    shows its own Rich bars for the long steps. Environment variables reach libraries imported
    later without importing them now (which would slow every command, ``--help`` included).
    """
    if progress_enabled():
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


@contextlib.contextmanager
def library_bars_quieted() -> Iterator[None]:
    """:func:`quiet_library_progress_bars` for one library call, then each bar as it was.

    A notebook's call to ``train``, ``build_tiny_model`` or a model load with mslt-it's bars off
    (``MSLT_IT_PROGRESS=0``, or off a terminal) prints no tqdm bar either, as the CLI prints
    none ("Loading weights", "Writing model shards"); afterwards transformers', the Hub's and
    datasets' bars are on or off as the user had them, and the environment is left alone
    (``HF_HUB_DISABLE_PROGRESS_BARS`` stayed set after ``train``). The libraries are imported
    here, not told through the environment: a library imported during the call would read
    the variables once and keep its bars off for good.
    """
    if progress_enabled():
        yield
        return
    from transformers.utils import logging as hf_logging

    try:  # an evaluation-only machine may lack datasets (the GPU machines do)
        import datasets
    except ImportError:
        datasets = None
    # the module: the package's attribute of that name is its tqdm class
    hub_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")

    transformers_bars = hf_logging.is_progress_bar_enabled()
    hub_states = dict(hub_tqdm.progress_bar_states)
    datasets_bars = datasets is not None and not datasets.utils.are_progress_bars_disabled()
    with warnings.catch_warnings():  # HF_..._DISABLE_PROGRESS_BARS=0, the user's: it wins
        warnings.simplefilter("ignore")
        hf_logging.disable_progress_bar()  # the Hub's too
        if datasets is not None:
            datasets.disable_progress_bars()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if transformers_bars:
                hf_logging.enable_progress_bar()
            hub_tqdm.progress_bar_states.clear()
            hub_tqdm.progress_bar_states.update(hub_states)
            if datasets_bars:
                datasets.enable_progress_bars()


def training_progress_callback() -> object:
    """A Trainer callback that draws one Rich bar (steps, latest loss) instead of tqdm's.

    The Trainer's own callbacks print every log as a Python dict (on stdout, between the bars);
    the losses are kept in ``run.json``'s ``loss_history`` instead.
    """
    from transformers import TrainerCallback

    class RichTrainingProgress(TrainerCallback):
        def __init__(self) -> None:
            self.progress: Progress | PlainProgress | None = None
            self.task = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero and (progress_enabled() or plain_progress_enabled()):
                self.progress = progress_bar()
                self.progress.start()
                self.task = self.progress.add_task("training", total=state.max_steps)
                self.progress.update(self.task, completed=state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.update(self.task, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.progress is not None and logs and "loss" in logs:
                loss = float(logs["loss"])
                self.progress.update(self.task, description=f"training (loss {loss:.3f})")

        def on_train_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.stop()
                self.progress = None

    return RichTrainingProgress()
