"""The ``mslt-it`` command. Thin: it parses, calls library functions, and prints.

Each command lives in its own module of this package with a ``register(app)`` function; modules
are found by listing the package, so adding a command touches no shared file.

Every way out of :func:`main` is one of four, whatever typer or click version is installed:

- a user error (:class:`~mslt_it.errors.MsltError`): ``error: …`` on one line, exit status 2;
- a usage error (unknown option or command, missing option, a value of the wrong type): typer's
  message on one line with the command's ``--help`` hint, exit status 2;
- a bug (any other exception): ``internal error: <type>: <message>`` on one line, exit status 1,
  the traceback only with ``MSLT_IT_DEBUG=1``;
- success, or an explicit exit from a command.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import os
import pkgutil
import re
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import NoReturn

import typer

from mslt_it.errors import MsltError, clipped, first_line
from mslt_it.files import escaped_controls
from mslt_it.progress import quiet_library_progress_bars
from mslt_it.tasks import reset_tasks_dirs
from mslt_it.terminal import STDERR, STDOUT_GONE_STATUS, labelled, silence_stdout

DEBUG_VARIABLE = "MSLT_IT_DEBUG"
ENVIRONMENT_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT})
"""OSErrors that the machine raises, not mslt-it: a one-line error, exit status 2."""
MESSAGE_LIMIT = 400  # characters of an exception's message that an error line echoes

app = typer.Typer(
    name="mslt-it",
    help="Multilingual instruction tuning with multi-source language training (MSLT).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: Rich tables cut long option names at 80 columns
)


def register_commands() -> None:
    """Import every command module of this package and let it add its commands."""
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        imported = importlib.import_module(f"{__name__}.{module.name}")
        register = getattr(imported, "register", None)
        if register is not None:
            register(app)


register_commands()


def click_exceptions() -> ModuleType:
    """The module whose exception classes the installed typer raises for usage errors.

    typer ≥ 0.29 vendors click as ``typer._click``: ``click.ClickException`` does not catch what
    it raises. Older typer raises click's own classes. Asking typer, not click, covers both.
    """
    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:
        return importlib.import_module("click.exceptions")


def drop_script_folder_from_path() -> None:
    """Take a console script's own folder (the virtualenv's ``bin/``) off ``sys.path``.

    Python puts the folder of the script it runs first on ``sys.path``. Some wheels install
    scripts named like their package there (lang2vec's ``bin/lang2vec.py``), which then shadow
    the package for every ``import`` of a console script, and only there: ``python -m`` and
    pytest never see it. Nothing mslt-it imports lives in ``bin/``.
    """
    if not sys.argv or not sys.argv[0] or not sys.path:
        return
    script_folder = os.path.dirname(os.path.abspath(sys.argv[0]))
    if os.path.abspath(sys.path[0] or os.curdir) == script_folder and _is_scripts_folder(
        script_folder
    ):
        del sys.path[0]


def _is_scripts_folder(folder: str) -> bool:
    """True for the folder that holds the interpreter's installed scripts (``bin``/``Scripts``)."""
    import sysconfig

    scripts = sysconfig.get_path("scripts")
    return scripts is not None and os.path.abspath(scripts) == folder


LINE_BREAKS = re.compile(r"\s*[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]\s*")
"""Every character ``str.splitlines`` breaks at, with the white space around it."""


def one_line(text: str) -> str:
    """``text`` on one line, cut to :data:`MESSAGE_LIMIT` characters, other control characters
    escaped (:func:`mslt_it.files.escaped_controls`: an escape in a file's name). Only line
    breaks become spaces: the spaces inside a quoted name stay as given (``'a  b.csv'`` is not
    ``'a b.csv'``, which may be another file)."""
    flat = escaped_controls(LINE_BREAKS.sub(" ", str(text).strip()))
    return flat if len(flat) <= MESSAGE_LIMIT else flat[: MESSAGE_LIMIT - 1] + "…"


FIELD = re.compile(r"[a-z][a-z0-9_-]*")


def as_typed(message: str, words: list[str]) -> str:
    """A message about a setting (``split: task xnli has no split 'nope'``) names the option
    the user typed, ``--split``, where that option is on the command line: the library's
    checks name its fields, which a command reads from its options (or a recipe's)."""
    field, said, rest = message.partition(": ")
    if not said or not FIELD.fullmatch(field):
        return message
    flag = "--" + field.replace("_", "-")
    typed = any(word == flag or word.startswith(flag + "=") for word in words)
    return f"{flag}: {rest}" if typed else message


def print_error(prefix: str, message: str) -> None:
    # the message as it is: its brackets ('mslt-it[qlora]', ['en']) are not markup
    STDERR.print(labelled(prefix, "bold red", one_line(message)), soft_wrap=True)


def usage_message(error: Exception, argv: list[str] | None = None) -> str:
    """typer's message for a usage error, with the failing command's ``--help`` hint (the
    parser's own errors carry no command: then the command named on the line)."""
    context = getattr(error, "ctx", None)
    command = context.command_path if context is not None else "mslt-it"
    words = sys.argv[1:] if argv is None else argv
    if context is None and words and words[0] in typer.main.get_command(app).commands:
        command = f"mslt-it {words[0]}"
    message = error.format_message()
    value = given_value(error, words)
    if value is not None and repr(value) not in message:  # typer's type errors leave it out
        message = f"{message.rstrip('.')}, got {clipped(value, 60)}"
    return f"{message} (see '{command} --help')"


def given_value(error: Exception, words: list[str]) -> str | None:
    """What the user gave the option a usage error is about (``--top abc``, ``--seed=-1``): the
    last time it is given on the line, or None (an argument, a flag, an option not given)."""
    param = getattr(error, "param", None)
    names = set(getattr(param, "opts", ()) or ()) | set(getattr(param, "secondary_opts", ()) or ())
    if not names or getattr(param, "is_flag", False):
        return None
    found = None
    for number, word in enumerate(words):
        name, equals, rest = word.partition("=")
        if name in names:
            found = rest if equals else (words[number + 1] if number + 1 < len(words) else None)
    return found


def show_help(error: Exception) -> None:
    """``mslt-it`` or a command group without arguments: its help, as ``--help`` prints it."""
    context = getattr(error, "ctx", None)
    if context is not None:
        text = context.get_help()
        if text:
            typer.echo(text)


INTERRUPTED_STATUS = 130
"""What typer returns (``standalone_mode=False``) for a command stopped by Ctrl-C (SIGINT): it
turns KeyboardInterrupt into ``Exit(130)`` itself, so the handler above never saw it and a
stopped command ended without a word. No command of mslt-it's ends with this status."""


@contextlib.contextmanager
def stopping_cleanly_on_sigterm() -> Iterator[None]:
    """``kill`` (SIGTERM, what Slurm and timeouts send) unwinds like Ctrl-C while a command runs:
    temporary folders and output locks are removed on the way out instead of left behind (exit
    status 143). The handler before is put back after: ``main`` called in a notebook or a test
    process left every later SIGTERM raising SystemExit in whatever code ran, so the process
    could no longer be stopped with ``kill``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and of ``python -m mslt_it``."""
    if sys.stdout is None:  # started with standard output closed (`>&-`): nothing could print
        print_error("error:", "standard output is closed; give it a file, e.g. > out.txt")
        sys.exit(2)
    try:
        with stopping_cleanly_on_sigterm():
            run_command(argv)
    except SystemExit as done:
        sys.exit(flushed(done.code))


def flushed(code: object) -> object:
    """``code``, once what was printed reached standard output: a full disk (``> /dev/full``)
    found when Python flushed it at exit printed three lines of its own and exit status 120.
    Standard output that cannot take it is then pointed at /dev/null, so nothing is tried
    twice."""
    try:
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # the reader stopped early (`| head`): nothing to say
        silence_stdout()
        return STDOUT_GONE_STATUS
    except OSError as error:
        silence_stdout()
        if code in (0, None):  # else the error was said already (the same full disk, often)
            print_error("error:", f"cannot write to standard output: {error.strerror or error}")
            return 2
        return code


def run_command(argv: list[str] | None = None) -> None:
    """:func:`main` once standard output is known to be there: every way out is a
    ``SystemExit`` with the status of the module docstring's four cases."""
    drop_script_folder_from_path()
    quiet_library_progress_bars()
    reset_tasks_dirs()  # --tasks-dir applies to one invocation (main runs many in a notebook)
    # bitsandbytes warns on every import when the optional `kernels` package is absent (its CPU
    # 4-bit path works without it): noise that would break the one-line-error rule
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    # a name in a script the plot's font lacks (a folder's, a language's) is drawn as a box;
    # matplotlib's warning per glyph would print that name raw, once per figure and character
    warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
    exceptions = click_exceptions()
    try:
        try:
            status = app(args=argv, prog_name="mslt-it", standalone_mode=False)
        finally:
            reset_tasks_dirs()
    except MsltError as error:
        print_error("error:", as_typed(str(error), sys.argv[1:] if argv is None else argv))
        sys.exit(2)
    except typer.Exit as done:
        sys.exit(getattr(done, "exit_code", 0))
    except (typer.Abort, KeyboardInterrupt):
        STDERR.print("aborted")
        sys.exit(INTERRUPTED_STATUS)
    except exceptions.ClickException as error:
        if type(error).__name__ == "NoArgsIsHelpError":
            show_help(error)
        else:
            print_error("error:", usage_message(error, argv))
        sys.exit(2)
    except BrokenPipeError:  # standard output's reader went away (`| head`): said by the code
        silence_stdout()
        sys.exit(STDOUT_GONE_STATUS)
    except OSError as error:
        if error.errno not in ENVIRONMENT_ERRNOS:
            raise_or_report_bug(error)
        # the machine refused (permissions, a read-only or full disk): not a bug in mslt-it
        where = f" {error.filename}" if error.filename else ""
        print_error("error:", f"cannot write or read{where}: {error.strerror or error}")
        sys.exit(2)
    except MemoryError:
        # the machine ran out of memory (MemoryError's own text is empty): say so, exit 2
        print_error("error:", "out of memory; use a smaller input, --limit or batch size")
        sys.exit(2)
    except Exception as error:  # a bug: one line, the traceback on request
        if rust_errno(error) in ENVIRONMENT_ERRNOS:  # safetensors or tokenizers on a full disk
            print_error("error:", f"cannot write or read: {first_line(error)}")
            sys.exit(2)
        raise_or_report_bug(error)
    if status == INTERRUPTED_STATUS:  # typer's answer to Ctrl-C: returned, not raised
        STDERR.print("aborted")
    sys.exit(status if isinstance(status, int) else 0)


RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")
"""How a library written in Rust (safetensors, tokenizers) words an OSError: its message ends in
``No space left on device (os error 28)``, on a plain ``Exception`` with no ``errno``."""


def rust_errno(error: Exception) -> int | None:
    """The errno a Rust library's error carries in its text, or None."""
    found = RUST_OS_ERROR.search(str(error))
    return int(found.group(1)) if found else None


def raise_or_report_bug(error: BaseException) -> NoReturn:
    """A bug: one line and exit status 1; with ``MSLT_IT_DEBUG=1`` the whole traceback."""
    if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
        raise error
    print_error(
        "internal error:",
        f"{type(error).__name__}: {error}; this is a bug in mslt-it; "
        f"run again with {DEBUG_VARIABLE}=1 for the traceback",
    )
    sys.exit(1)
