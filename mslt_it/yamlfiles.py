"""Reading the files users give: text and YAML, size-capped, with one-line errors.

The ground floor under every YAML the package reads (recipes, eval suites, task definitions,
prompt templates): :func:`parse_yaml` refuses Python objects, duplicate keys and alias bombs;
:func:`read_text_file` reads a regular UTF-8 file of bounded size; :func:`validate_section` and
:func:`validate_yaml_file` turn pydantic's errors into the one-line form users see
(``data.budget: must be > 0, got -4``). It imports nothing of mslt-it's but the ground.
"""

from __future__ import annotations

import difflib
import json
import re
import reprlib
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from mslt_it.errors import MsltError, first_line
from mslt_it.files import one_line, read_user_text, resolved_path

M = TypeVar("M", bound=BaseModel)


_SHORT = reprlib.Repr()  # keyword arguments only from Python 3.12
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxlevel = 60, 60, 6, 4, 2


def _short(value: Any) -> str:
    """A bounded repr: an error message never echoes a whole (or alias-expanded) input."""
    return _SHORT.repr(value)


YAML_SUFFIXES = (".yaml", ".yml")
"""The endings of the YAML files mslt-it reads from a folder (templates, task definitions)."""


def yaml_in_other_case(path: Path) -> bool:
    """A YAML file named ``x.YAML`` or ``x.Yml``: listing ``*.yaml`` never finds it, so it was
    skipped without a word; the folders' readers name it."""
    return path.suffix.lower() in YAML_SUFFIXES and path.suffix not in YAML_SUFFIXES


def problem_besides_missing(model: type[BaseModel], data: Any) -> str | None:
    """What :func:`validate_section` would say of ``data``, a required field missing aside:
    ``build --recipe`` reads one section of a recipe and takes the rest from its options, yet
    a typo elsewhere (a top-level ``prompts_dir``) was silently ignored where ``run`` refused
    it. None when nothing else is wrong."""
    try:
        model.model_validate(data)
    except ValidationError as error:
        if any(e["type"] != "missing" for e in error.errors()):
            return describe_error(error, missing_ok=True)
    return None


def describe_error(error: ValidationError, prefix: str = "", missing_ok: bool = False) -> str:
    """``section.field: problem, got value`` from pydantic's first error; an unknown field
    before any other, since a misspelt key is also the required one missing (``budgt`` for
    ``budget``), and the typo is what the user has to fix. ``missing_ok``: a required field
    missing is no error to name (see :func:`problem_besides_missing`)."""
    errors = error.errors()
    named = [e for e in errors if not (missing_ok and e["type"] == "missing")] or errors
    first = next((e for e in errors if e["type"] == "extra_forbidden"), named[0])
    kind, given = first["type"], _short(first.get("input"))
    loc = tuple(first["loc"])
    key_error = kind == "invalid_key" or (kind == "string_type" and loc[-1:] == ("[key]",))
    if key_error:  # pydantic's loc of a key that is no text is its position, or ends in [key]
        loc = loc[:-2] if loc[-1:] == ("[key]",) else loc[:-1]
    parts = [prefix] if prefix else []
    parts += [str(p) for p in loc]
    where = ".".join(parts) or "(top level)"
    if key_error:
        return f"{where}: {key_not_a_name(first.get('input'))}"
    if kind == "extra_forbidden":
        missing = [
            str(e["loc"][-1])
            for e in errors
            if e["type"] == "missing" and e["loc"] and e["loc"][:-1] == first["loc"][:-1]
        ]
        return f"{where}: {unknown_field(str(first['loc'][-1]), missing)}"
    if kind == "missing":
        return f"{where}: required field is missing"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        symbol = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<"}.get(kind, "<=")
        bound = next(iter(first.get("ctx", {}).values()), "?")
        return f"{where}: must be {symbol} {bound}, got {given}"
    message = first["msg"].removeprefix("Value error, ")
    key, said, rest = message.partition(": ")
    if said and isinstance(first.get("input"), dict) and key in first["input"]:
        # a check of one key of a mapping (train.sft's lr_scheduler_kwargs, a section's
        # budget) names its value itself: the key joins the path, the mapping is not repeated
        return f"{where}.{key}: {rest}" if parts else f"{key}: {rest}"
    if not first["loc"] and not parts and said and " " not in key:  # a whole file's check
        return message  # that names its field itself ("variables.both: …"): no "(top level)"
    if not first["loc"]:  # a check of the whole section: its input is all of it, not a value
        return f"{where}: {message[0].lower()}{message[1:]}"
    return f"{where}: {message[0].lower()}{message[1:]}, got {given}"


def unknown_field(name: str, candidates: Iterable[str]) -> str:
    """``unknown field (a typo of 'train'?)``: the closest of ``candidates`` to ``name``, if
    one is close, for every message that meets a field it does not know."""
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f"unknown field ({f'a typo of {close[0]!r}?' if close else 'a typo?'})"


def key_not_a_name(key: Any, of: str = "") -> str:
    """A mapping key YAML read as a value (``true:``, ``null:``, ``5:``), said as YAML wrote it
    with the way out: Python's ``True``/``None`` is not what the user typed."""
    written = json.dumps(key, default=str)
    return (
        f"key {written} is not a name{of} (YAML reads true, false, null and numbers as values); "
        f"write it in quotes, '{written}', or remove it"
    )


def validate_section(model: type[M], data: Any, prefix: str = "") -> M:
    """Validate ``data`` as ``model``; errors become one-line :class:`MsltError`."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise MsltError(describe_error(error, prefix)) from None


MAX_INPUT_BYTES = 2_000_000
"""Largest recipe, suite or template file read (a recipe is a few KB)."""

MAX_YAML_NODES = 100_000
"""Most YAML nodes a document may expand to, aliases counted at every use ("billion laughs")."""


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (it keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):  # `? [a, b]`: PyYAML's own message is a TypeError
                raise yaml.constructor.ConstructorError(
                    None, None, "a key is a list or a mapping; keys are names", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)
"""A date (``2024-01-01``) is read as the text it is: no field of mslt-it's is a date, and the
loader owns this choice (vLLM's import rewrote PyYAML's shared safe loader to the same effect,
so a recipe or definition read differently after an evaluation with vLLM than before)."""

YAML_1_1_TAGS = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
"""The scalars PyYAML resolves by YAML 1.1's rules, each replaced below by YAML 1.2's."""

_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag not in YAML_1_1_TAGS]
    for first, resolvers in _StrictLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
"""Whole numbers as YAML 1.2 reads them: YAML 1.1 read ``budget: 024`` as octal (20) and
``seed: 010`` as 8 without a word, took ``2_4`` for 24 and ``1:30`` for 90 (base 60); in YAML
1.2 ``024`` is 24, octal is written ``0o24``, and the others are text (refused as no number)."""


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    return int(text, 0) if text[:2] in ("0o", "0x") else int(text, 10)


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)

_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
"""Numbers with a fraction or an exponent as YAML 1.2 reads them: ``1e-4`` is a number, as in
Python (PyYAML, YAML 1.1, read a float only with a dot and left ``learning_rate: 1e-4`` a
string), and ``1_000.5`` or ``1:30.0`` (base 60) are text, as ``2_4`` is. A whole number matches
the int resolver first."""

_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
"""Only ``true`` and ``false`` are booleans, as in YAML 1.2: YAML 1.1 also read ``no``, ``yes``,
``on`` and ``off``, so Norwegian (``sources: [en, no]``), a verbalizer ``{contradiction: no}`` or
``save_strategy: no`` became ``False``."""


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes in ``node`` with every alias expanded (memoised, so linear in the document)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a recursive alias counts once
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(
            _expanded_size(key, sizes) + _expanded_size(value, sizes) for key, value in node.value
        )
    else:
        total = 1
    sizes[id(node)] = min(total, MAX_YAML_NODES + 1)
    return sizes[id(node)]


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML safely: no Python objects, no duplicate keys, no alias bombs; one-line errors.

    ``where`` names the file (or option) in the message.
    """
    if len(text) > MAX_INPUT_BYTES:
        raise MsltError(f"{where}: {len(text):,} characters; at most {MAX_INPUT_BYTES:,} are read")
    try:
        return _parse(text, where)
    except RecursionError:  # PyYAML and the checks below recurse once per level
        raise MsltError(
            f"{where}: values nested too deeply, or an alias that holds itself (x: &x [*x]); "
            "mslt-it's files are a few levels deep"
        ) from None


def compose_yaml(text: str) -> yaml.Node | None:
    """The node tree of ``text`` as the definitions' loader reads it (positions of keys and
    values, aliases as the anchored node again); a one-line error for text it cannot read."""
    try:
        return yaml.compose(text, Loader=_StrictLoader)
    except yaml.YAMLError as error:
        raise MsltError(f"not valid YAML: {first_line(str(error))}") from None


def _parse(text: str, where: str) -> Any:
    try:
        loader = _StrictLoader(text)  # it reads the text first: a control character stops it
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        shown = repr(chr(error.character)) if isinstance(error.character, int) else "a byte"
        raise MsltError(
            f"{where}: not valid YAML: the control character {shown} (line {line}, column "
            f"{column}); YAML allows none but tab and line breaks, in comments too"
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}
        if _expanded_size(node, sizes) > MAX_YAML_NODES:
            aliases = len(sizes) <= MAX_YAML_NODES  # written out, fewer: its aliases expand
            raise MsltError(
                f"{where}: {'expands to' if aliases else 'holds'} more than "
                f"{MAX_YAML_NODES:,} values{' (nested aliases?)' if aliases else ''}"
            )
        document = loader.construct_document(node)
    except yaml.YAMLError as error:
        raise MsltError(f"{where}: not valid YAML: {_yaml_problem(error)}") from None
    finally:
        loader.dispose()
    found = _nul_at(document, "")
    if found is not None:
        raise MsltError(
            f"{where}: {found or '(top level)'}: a NUL character; no name, path or text of "
            "mslt-it holds one"
        )
    return document


def _nul_at(value: Any, where: str) -> str | None:
    """Where (``data.prompts_dir.0``) the first string holding a NUL character is, or None.

    A NUL is never part of a name, a path or a prompt, and the operating system refuses it in a
    path with an exception that would name no field; so it is refused here, for every YAML file.
    """
    if isinstance(value, str):
        return where if "\0" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            found = _nul_at(key, inner) if isinstance(key, str) else None
            found = found if found is not None else _nul_at(item, inner)
            if found is not None:
                return found
    if isinstance(value, list):
        for number, item in enumerate(value):
            found = _nul_at(item, f"{where}.{number}" if where else str(number))
            if found is not None:
                return found
    return None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """``duplicate key 'name' (line 5, column 1)``: PyYAML's problem and where, on one line."""
    problem = getattr(error, "problem", None) or first_line(error)
    mark = getattr(error, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem}{where}"[:200]


def read_text_file(path: Path, where: str | None = None) -> str:
    """A UTF-8 text file, size-capped; unreadable, binary, oversized or not a regular file (a
    FIFO, a device, a folder) is a one-line error (:func:`mslt_it.files.read_user_text`)."""
    return read_user_text(path, where or str(path), MAX_INPUT_BYTES)


def validate_yaml_file(path: Path, text: str, model: type[M], what: str) -> M:
    """Parse ``text`` (the file ``path``) as a YAML mapping and validate it as ``model``.

    Task definitions and prompt templates are read this way; every problem is one line that
    names the file (and, from pydantic, the field).
    """
    where = one_line(str(path))  # a newline in the name shown as one, not as a space
    data = parse_yaml(text, where)
    if not isinstance(data, dict):
        raise MsltError(f"{where}: {what} must be a YAML mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise MsltError(f"{where}: {describe_error(error)}") from None


def load_yaml(path: str | Path, field: str = "recipe") -> dict[str, Any]:
    """Read a YAML mapping safely (:func:`parse_yaml`); anything but a mapping is an error.
    ``field`` names the file in errors (``recipe``, ``suite``)."""
    return load_yaml_text(path, field)[0]


def load_yaml_text(path: str | Path, field: str = "recipe") -> tuple[dict[str, Any], str]:
    """:func:`load_yaml`, with the text the mapping was parsed from: what a run records as its
    recipe is what it read, not the file as it is when the run ends."""
    path = Path(path)
    if path.is_dir():
        raise MsltError(f"{field}: {str(path)!r} is a folder; give a YAML file")
    if not path.exists():
        resolved_path(path, field)  # a link loop is said to be one
        raise MsltError(f"{field}: no such file {str(path)!r}")
    text = read_text_file(path, field)
    where = one_line(str(path))
    data = parse_yaml(text, where)
    if not isinstance(data, dict):
        raise MsltError(f"{where}: expected a YAML mapping at the top level")
    return data, text
