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
