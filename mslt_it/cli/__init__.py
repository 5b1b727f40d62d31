"""The ``mslt-it`` command. Thin: it parses, calls library functions, and prints.

Each command lives in its own module of this package with a ``register(app)`` function; modules
are found by listing the package, so adding a command touches no shared file. A user error
(:class:`~mslt_it.errors.MsltError`) prints ``error: …`` on one line and exits with status 2, with
no traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click
import typer
from rich.console import Console
from rich.markup import escape

from mslt_it.errors import MsltError
from mslt_it.progress import quiet_library_progress_bars

app = typer.Typer(
    name="mslt-it",
    help="Multilingual instruction tuning with multi-source language training (MSLT).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def register_commands() -> None:
    """Import every command module of this package and let it add its commands."""
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        imported = importlib.import_module(f"{__name__}.{module.name}")
        register = getattr(imported, "register", None)
        if register is not None:
            register(app)


register_commands()

STDERR = Console(stderr=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and of ``python -m mslt_it``."""
    quiet_library_progress_bars()
    try:
        status = app(args=argv, prog_name="mslt-it", standalone_mode=False)
    except MsltError as error:
        # escape: messages hold brackets ('mslt-it[qlora]', ['en']) that Rich would read as markup
        STDERR.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        STDERR.print("aborted")
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(2)
    sys.exit(status if isinstance(status, int) else 0)
