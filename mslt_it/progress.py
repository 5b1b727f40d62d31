"""Rich progress bars on stderr, so progress never mixes with a command's output on stdout."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")
STDERR = Console(stderr=True)


def progress_enabled() -> bool:
    """Bars show on a terminal; ``MSLT_IT_PROGRESS=0/1`` forces them off or on."""
    forced = os.environ.get("MSLT_IT_PROGRESS")
    if forced is not None:
        return forced not in ("0", "", "false")
    return sys.stderr.isatty()


def progress_bar() -> Progress:
    """A progress display with counts, elapsed and remaining time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
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


def training_progress_callback() -> object:
    """A Trainer callback that draws one Rich bar (steps, latest loss) instead of tqdm's.

    The Trainer's own callbacks print every log as a Python dict (on stdout, between the bars);
    the losses are kept in ``run.json``'s ``loss_history`` instead.
    """
    from transformers import TrainerCallback

    class RichTrainingProgress(TrainerCallback):
        def __init__(self) -> None:
            self.progress: Progress | None = None
            self.task = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero and progress_enabled():
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
