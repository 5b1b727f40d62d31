"""The consoles mslt-it prints on: users' text shown as it is.

What a command prints quotes its input: file and folder names, a recipe's name, a task's
description, a note about a results file. Rich reads ``[...]`` in a string as markup, so a path
``q[/]z.csv`` was an internal error (after a predictor had already been saved) and
``c[red]d.csv`` printed as ``cd.csv``; an escape character in a name reached the terminal raw.
Every string these consoles print, in a line, a table cell or a title, goes through
:meth:`PlainConsole.render_str`: no markup, no emoji codes, no highlighting, and control
characters shown escaped. Style is given as :class:`rich.text.Text` (see :func:`labelled`),
never written inside the text.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

from mslt_it.files import escaped_controls

STDOUT_GONE_STATUS = 128 + signal.SIGPIPE
"""Exit status when the reader of standard output went away (``| head``): that of a process
killed by SIGPIPE, as ``yes | head`` gives."""


def silence_stdout() -> None:
    """Point standard output at /dev/null: one that cannot take output (a reader gone, a full
    disk) would fail again when Python flushes it at exit."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):  # not a file (a test's buffer)
        pass


class PlainConsole(Console):
    """A Rich console on which a string is only ever text (its own brackets, its escapes)."""

    def on_broken_pipe(self) -> None:
        """The reader went away (``| head``): Rich exits with status 1, which reads as a bug;
        this is what a command cut short by its reader gives (:data:`STDOUT_GONE_STATUS`)."""
        self.quiet = True
        silence_stdout()
        raise SystemExit(STDOUT_GONE_STATUS)

    def render_str(self, text: str, **options: Any) -> Text:
        """``text`` as it is: markup, emoji codes and highlighting off, controls escaped."""
        options.update(markup=False, emoji=False, highlight=False)
        return super().render_str(escaped_controls(text), **options)


def plain_console(**options: Any) -> PlainConsole:
    """A :class:`PlainConsole` (``stderr=True`` for the error stream, ``file``, ``width``…).

    Lines are not wrapped (``soft_wrap``): into a file or a pipe, Rich would break a long path
    at 80 columns, and the path read back would be another.
    """
    return PlainConsole(**{"soft_wrap": True, **options})


STDERR = plain_console(stderr=True)
"""Where notes, warnings, errors and progress go: never mixed with a command's output."""


def labelled(label: str, style: str, text: str) -> Text:
    """``label`` in ``style`` (``warning:`` in yellow), then ``text`` exactly as it is."""
    return Text.assemble((escaped_controls(label), style), " ", escaped_controls(text))


def styled(text: str, style: str) -> Text:
    """``text`` as it is, in ``style`` (a bold name, a bold column header)."""
    return Text(escaped_controls(text), style=style)
