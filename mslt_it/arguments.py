"""Checks of a library call's arguments: a wrong type is a one-line :class:`MsltError`.

The CLI hands every library function the types it declares; a notebook user may hand it
anything. Unchecked, a wrong type failed deep inside (``TypeError: expected str, bytes or
os.PathLike object, not int``) or, worse, was used: a string where a list of language codes is
expected was read one character at a time (``--pool: unknown language code 'a'``). Each check
here names the argument, what was given and what is allowed, and returns the value as the
function uses it. Called at the public entry points only (:func:`mslt_it.data.build_dataset`,
:func:`mslt_it.training.run.train`, …), never on values the code made itself.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from mslt_it.errors import MsltError, clipped
from mslt_it.yamlfiles import validate_section

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

PATH = "a path (str or pathlib.Path)"


def given(value: object) -> str:
    """What the user gave, for an error message: a text or number as written, else its type
    (a whole dict or config printed would be no one line)."""
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, type):
        return f"the class {value.__qualname__} (not one of its instances)"
    if isinstance(value, str | Path):
        kind = "the string" if isinstance(value, str) else "the path"
        return f"{kind} {clipped(str(value), 60)}"
    return f"a {type(value).__module__}.{type(value).__qualname__}".replace("a builtins.", "a ")


def expect(value: Any, types: type[T] | tuple[type, ...], name: str, allowed: str) -> T:
    """``value`` if it is one of ``types`` (a bool is not an int here, though Python says it is),
    else ``name: got …; expected <allowed>``."""
    accepted = types if isinstance(types, tuple) else (types,)
    if isinstance(value, accepted) and (bool in accepted or not isinstance(value, bool)):
        return value
    raise MsltError(f"{name}: got {given(value)}; expected {allowed}")


def checked_config(config: M, name: str) -> M:
    """``config`` (a pydantic config) validated again: a field set after construction
    (``config.sources = "en,de"``, ``config.budget = "4"``) skipped pydantic's checks, and was
    read one character at a time or failed deep inside (``TypeError: divmod()``)."""
    try:
        return validate_section(type(config), config.model_dump(warnings=False))
    except MsltError as error:
        raise MsltError(f"{name}: {error}") from None


def path_argument(value: object, name: str) -> Path:
    """A file or folder argument as a :class:`~pathlib.Path`: a str or an ``os.PathLike``, not
    empty (``Path("")`` is the current folder, which nobody means by nothing)."""
    if not isinstance(value, str | os.PathLike) or isinstance(value, bytes):
        raise MsltError(f"{name}: got {given(value)}; expected {PATH}")
    path = Path(value)
    if not str(value).strip():
        raise MsltError(f"{name}: an empty path; give a file or folder")
    return path


def paths_argument(value: object, name: str, *, one: bool = False) -> list[Path]:
    """A list of paths. ``one``: a single path stands for a list of it alone (where one is the
    common case, as one evaluation to report); otherwise a single path is refused, never read
    as the list of its characters."""
    if one and isinstance(value, str | os.PathLike) and not isinstance(value, bytes):
        return [path_argument(value, name)]
    items = sequence_argument(value, name, "a list of paths (each a str or pathlib.Path)")
    return [path_argument(item, f"{name}.{number}") for number, item in enumerate(items)]


def codes_argument(value: object, name: str) -> list[str]:
    """A list of language codes (``["ar", "de"]``): a string is refused with the list it may
    have meant (``"ar,de"`` was read as the codes ``a``, ``r``, ``,``, …)."""
    if isinstance(value, str):
        meant = [code.strip() for code in value.split(",") if code.strip()] or ["en"]
        raise MsltError(
            f"{name}: got {given(value)}; expected a list of language codes, such as {meant!r}"
        )
    items = sequence_argument(value, name, "a list of language codes, such as ['ar', 'de']")
    for number, code in enumerate(items):
        expect(code, str, f"{name}.{number}", "a language code (a string such as 'de')")
    return list(items)


def sequence_argument(value: object, name: str, allowed: str) -> Sequence[Any]:
    """A list or tuple (a str, a set's arbitrary order, a dict's keys are not what is meant)."""
    return expect(value, (list, tuple), name, allowed)


def int_argument(value: object, name: str) -> int:
    """A whole number as an ``int``: any :class:`numbers.Integral` (``numpy.int64(3)`` from an
    array is 3), not a bool (nor numpy's), nor its text (``"1"`` is refused rather than read)."""
    if isinstance(value, numbers.Integral) and not is_bool(value):
        return int(value)
    raise MsltError(f"{name}: got {given(value)}; expected an integer")


def is_bool(value: object) -> bool:
    """A bool, Python's or numpy's (``numpy.bool_`` is no subclass of bool)."""
    kind = type(value)
    return isinstance(value, bool) or (kind.__module__ == "numpy" and "bool" in kind.__name__)


def flag_argument(value: object, name: str) -> bool:
    """A flag: True or False only (``overwrite="no"`` read as True and replaced the output)."""
    return expect(value, bool, name, "True or False")


def paths_or_one_argument(value: object, name: str) -> list[Path]:
    """A list of folders where one folder alone (a str or a Path) is the common case: read as
    the list of it (``"prompts"`` was read as the folders ``p``, ``r``, …)."""
    return paths_argument(value, name, one=True)
