"""Task definitions: one YAML file per benchmark, checked when loaded, made into a :class:`Task`.

A definition says what YAML can say: the Hub dataset and how a language maps to its config, the
splits, the languages, the columns a row must have, the kind of task, the label space and where a
row's gold label is, the variables prompt templates may use (Jinja expressions over the row,
rendered in the sandbox) and the metric. What YAML cannot express is a small named piece of code
that the definition refers to by its kind (:data:`KINDS`): the BIO tags and span format of NER,
for example. A ``multiple_choice`` task reads its choices from the row (``choices``, a Jinja
expression giving a list of texts) and its gold choice from a column or an expression (``gold``);
its ``labels`` name the choice slots (``[A, B]``), which templates give words to (``1``/``2``)
for generate mode. An ``instructions`` task is an instruction corpus (Bactrian-X, Aya, the
user's own JSONL): ``prompt`` and ``answer`` (or ``messages``, a whole conversation) are Jinja
expressions over the row, and a single-table corpus names its ``language_column``. Shipped
definitions live in the repository's ``tasks/`` folder; a user adds
one by dropping a file into a folder passed with ``--tasks-dir`` (or a recipe's ``tasks_dir``), as
with lm-evaluation-harness's include path.

    name: xnli
    title: XNLI
    kind: classification
    hub: {id: facebook/xnli, config: "{lang}"}
    splits: [train, validation, test]
    languages: {registry: xnli}
    columns: [premise, hypothesis, label]
    labels: [entailment, neutral, contradiction]
    label_column: label
    variables: {premise: row.premise, hypothesis: row.hypothesis}
    metric: accuracy
    synthetic: xnli
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mslt_it.errors import MsltError
from mslt_it.tasks.base import COMMON_FIELDS, Row, Task, Verbalizer, common_variables

PLAIN_COLUMN = re.compile(r"^\s*row\.([A-Za-z_][A-Za-z0-9_]*)\s*$")
NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
ROW_REFERENCE = re.compile(r"\brow\.([A-Za-z_][A-Za-z0-9_]*)")


class HubSource(BaseModel):
    """Where the rows live on the Hugging Face Hub."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The dataset id, e.g. facebook/xnli.")
    config: str = Field(
        default="{lang}",
        description="The config of a language: a format string with {lang} (the language code).",
    )
    configs: dict[str, str] = Field(
        default={}, description="Exceptions: language code -> config name."
    )

    @field_validator("config")
    @classmethod
    def _has_lang(cls, config: str) -> str:
        try:
            config.format(lang="xx")
        except (KeyError, IndexError, ValueError):
            raise ValueError("may use only {lang} as a placeholder") from None
        return config


class RegistryLanguages(BaseModel):
    """The languages of a column of mslt-it's language registry (``languages.csv``)."""

    model_config = ConfigDict(extra="forbid")
    registry: str = Field(description="A membership column of languages.csv: xnli, pawsx, wikiann.")


class TaskFile(BaseModel):
    """A task definition file; every field is checked when the file is loaded."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The task's name, as commands and templates say it.")
    title: str = Field(description="How reports name it (e.g. XNLI).")
    kind: Literal["classification", "ner", "multiple_choice", "instructions"] = Field(
        description="classification, ner, multiple_choice or instructions."
    )
    hub: HubSource | None = Field(
        default=None, description="The Hub dataset; none for data that only lives in files."
    )
    splits: list[str] = Field(min_length=1, description="The splits the dataset has.")
    languages: list[str] | RegistryLanguages = Field(
        description="Language codes, or {registry: <column>} of languages.csv ({registry: all}: "
        "every language mslt-it knows)."
    )
    columns: list[str] = Field(min_length=1, description="The columns every row must have.")
    labels: list[str] = Field(
        default=[],
        description="classification: the label names, in the order of their ids; ner: the "
        "entity types; multiple_choice: one name per choice slot, in the choices' order; "
        "instructions: none.",
    )
    label_column: str | None = Field(
        default=None,
        description="classification: the column holding the gold label id (-1: unlabelled, "
        "dropped and counted); multiple_choice: the column holding the gold choice's index "
        "(from 0), unless `gold` says how to compute it.",
    )
    choices: str | None = Field(
        default=None,
        description="multiple_choice: a Jinja expression over `row` giving the list of choice "
        "texts, e.g. `[row.choice1, row.choice2]`.",
    )
    gold: str | None = Field(
        default=None,
        description="multiple_choice: a Jinja expression over `row` giving the gold choice's "
        "index from 0, e.g. `row.answer_right_ending - 1`.",
    )
    prompt: str | None = Field(
        default=None,
        description="instructions: a Jinja expression over `row` giving the user's turn, e.g. "
        "`row.instruction ~ ('\\n\\n' ~ row.input if row.input else '')`.",
    )
    answer: str | None = Field(
        default=None,
        description="instructions: a Jinja expression over `row` giving the assistant's answer.",
    )
    messages: str | None = Field(
        default=None,
        description="instructions: a Jinja expression giving a whole conversation (a list of "
        "{role, content}, ending with the assistant), instead of prompt and answer.",
    )
    language_column: str | None = Field(
        default=None,
        description="A single table of many languages: the column naming each row's language "
        "(rows are filtered by it).",
    )
    language_values: Literal["code", "iso639_3"] = Field(
        default="code",
        description="What language_column holds: mslt-it's codes (en) or ISO 639-3 (eng).",
    )
    language_value_exceptions: dict[str, str] = Field(
        default={}, description="Language code -> the value language_column holds for it."
    )
    example: dict[str, Any] | None = Field(
        default=None,
        description="One row in the dataset's schema: templates are tried on it when loaded "
        "(tasks without a synthetic generator).",
    )
    variables: dict[str, str] = Field(
        default={},
        description="Template variables: name -> a Jinja expression over `row` "
        "(`row.premise`, `row.tokens | join(' ')`).",
    )
    metric: str = Field(default="accuracy", description="accuracy (classification) or f1 (ner).")
    synthetic: str | None = Field(
        default=None, description="The synthetic generator of offline rows (xnli, pawsx, wikiann)."
    )

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not NAME.match(name):
            raise ValueError("use lowercase letters, digits, '-' or '_', starting with a letter")
        return name

    @model_validator(mode="after")
    def _consistent(self) -> TaskFile:
        if self.kind != "instructions" and not self.labels:
            raise ValueError(f"labels: a {self.kind} task needs its labels")
        if self.kind != "instructions" and (self.prompt or self.answer or self.messages):
            field = "prompt" if self.prompt else "answer" if self.answer else "messages"
            raise ValueError(f"{field}: only an instructions task reads prompts from the row")
        if self.kind == "instructions":
            self._check_instructions()
        if self.kind != "multiple_choice" and (self.choices or self.gold):
            field = "choices" if self.choices else "gold"
            raise ValueError(f"{field}: only a multiple_choice task reads choices from the row")
        if self.kind == "multiple_choice":
            self._check_multiple_choice()
        if self.kind == "classification":
            if self.label_column is None:
                raise ValueError("label_column: a classification task needs one")
            if self.label_column not in self.columns:
                raise ValueError(f"label_column: {self.label_column!r} is not among the columns")
            if self.metric != "accuracy":
                raise ValueError(
                    f"metric: a classification task is scored by accuracy, not {self.metric!r}"
                )
        if self.kind == "ner":
            missing = [c for c in ("tokens", "ner_tags") if c not in self.columns]
            if missing:
                raise ValueError(f"columns: an ner task needs {', '.join(missing)}")
            if self.metric != "f1":
                raise ValueError(f"metric: an ner task is scored by f1, not {self.metric!r}")
            from mslt_it.tasks.ner import ENTITY_TYPES

            if tuple(self.labels) != ENTITY_TYPES:
                raise ValueError(
                    f"labels: the ner kind reads WikiAnn's BIO tags, whose entity types are "
                    f"{', '.join(ENTITY_TYPES)}"
                )
        self._check_row_references()
        if self.example is not None:
            missing = [c for c in self.columns if c not in self.example]
            if missing:
                raise ValueError(f"example: lacks column {missing[0]!r}")
        reserved = set(KIND_FIELDS[self.kind]) | COMMON_FIELDS
        clash = sorted(set(self.variables) & reserved)
        if clash:
            raise ValueError(f"variables: {clash[0]!r} is provided by the {self.kind} kind already")
        return self

    def _check_instructions(self) -> None:
        if self.messages is None and (self.prompt is None or self.answer is None):
            raise ValueError("prompt: an instructions task needs prompt and answer, or messages")
        if self.messages is not None and (self.prompt or self.answer):
            raise ValueError("messages: give messages or prompt and answer, not both")
        if self.labels:
            raise ValueError("labels: an instructions task has no labels (its answers are text)")
        if self.metric != "exact_match":
            raise ValueError(
                f"metric: an instructions task is scored by exact_match, not {self.metric!r}"
            )

    def _check_row_references(self) -> None:
        """Every ``row.<column>`` an expression reads is a declared column (checked in the data
        when a split opens), so a misspelt one fails here, not halfway through a build."""
        expressions = {f"variables.{k}": v for k, v in self.variables.items()}
        expressions.update({"choices": self.choices or "", "gold": self.gold or ""})
        expressions.update(
            {
                "prompt": self.prompt or "",
                "answer": self.answer or "",
                "messages": self.messages or "",
            }
        )
        for field, expression in expressions.items():
            for column in ROW_REFERENCE.findall(expression):
                if column not in self.columns:
                    raise ValueError(
                        f"{field}: reads row.{column}, which is not among the columns "
                        f"({', '.join(self.columns)})"
                    )

    def _check_multiple_choice(self) -> None:
        if self.choices is None:
            raise ValueError("choices: a multiple_choice task needs an expression for its choices")
        if (self.gold is None) == (self.label_column is None):
            raise ValueError(
                "gold: a multiple_choice task needs either gold (an expression) or label_column"
            )
        if self.label_column is not None and self.label_column not in self.columns:
            raise ValueError(f"label_column: {self.label_column!r} is not among the columns")
        if len(self.labels) < 2:
            raise ValueError("labels: a multiple_choice task names at least two choice slots")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels: the choice slots' names must be distinct")
        if self.metric != "accuracy":
            raise ValueError(
                f"metric: a multiple_choice task is scored by accuracy, not {self.metric!r}"
            )


# ------------------------------------------------------------------------------------ kinds


KindVariables = Callable[[Row, Verbalizer, str, "int | None"], dict[str, Any]]


def classification_variables(labels: tuple[str, ...], label_column: str) -> KindVariables:
    """label, label_word and choices from the gold label id and the template's words."""

    def variables(
        row: Row, verbalizer: Verbalizer, lang: str, label: int | None = None
    ) -> dict[str, Any]:
        name = labels[row[label_column] if label is None else label]
        return {
            "label": name,
            "label_word": verbalizer[name],
            "choices": [verbalizer[label] for label in labels],
        }

    return variables


@dataclass(frozen=True)
class ChoiceReader:
    """A multiple-choice row's choice texts and gold index, as its definition computes them.

    Both are checked on every row a split opens (:meth:`check`), so a row with the wrong number
    of choices or an index out of range is a one-line error before any model is loaded.
    """

    labels: tuple[str, ...]
    compute: Callable[[Row], dict[str, Any]]

    def gold(self, row: Row) -> int:
        return self.compute(row)["gold"]

    def check(self, row: Row) -> None:
        """Raise ``ValueError`` naming what is wrong with a row's choices or gold index."""
        values = self.compute(row)
        options, gold = values["options"], values["gold"]
        if not isinstance(options, list | tuple) or not all(isinstance(o, str) for o in options):
            raise ValueError(f"choices must give a list of texts, got {options!r}"[:200])
        if len(options) != len(self.labels):
            raise ValueError(
                f"choices gives {len(options)} choices; the task has {len(self.labels)} "
                f"({', '.join(self.labels)})"
            )
        if isinstance(gold, bool) or not isinstance(gold, int) or not 0 <= gold < len(options):
            raise ValueError(f"the gold index is {gold!r}; allowed: 0 to {len(options) - 1}")


def multiple_choice_variables(reader: ChoiceReader) -> KindVariables:
    """label, label_word, choices (the slots' words), options (the texts), option, answer_index."""
    labels = reader.labels

    def variables(
        row: Row, verbalizer: Verbalizer, lang: str, label: int | None = None
    ) -> dict[str, Any]:
        values = reader.compute(row)
        options = list(values["options"])
        index = values["gold"] if label is None else label
        return {
            "label": labels[index],
            "label_word": verbalizer[labels[index]],
            "choices": [verbalizer[name] for name in labels],
            "options": options,
            "option": options[index],
            "answer_index": index,
        }

    return variables


KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "classification": ("label", "label_word", "choices"),
    "ner": ("tokens", "sentence", "spans", "entity_types", "none_word"),
    "multiple_choice": ("label", "label_word", "choices", "options", "option", "answer_index"),
    "instructions": ("prompt", "answer", "history"),
}
"""The variables each kind's code provides, beside a definition's own."""


# -------------------------------------------------------------------------------- variables


def compile_variables(
    spec: dict[str, str], where: str, fields: dict[str, str] | None = None
) -> Callable[[Row], dict[str, Any]]:
    """One function from a row to the definition's variables.

    ``row.<column>`` is read directly (most variables are, and the builder renders every row);
    anything else is a Jinja expression compiled once in the bounded sandbox. A simple text one
    (columns glued, trimmed, chosen by a condition) is evaluated in plain Python instead
    (:mod:`mslt_it.tasks.expressions`): Jinja's result at a fraction of its per-row cost, with
    Jinja still evaluating any row the plain form does not cover. ``fields`` names each
    variable's place in the definition for error messages (default ``variables.<name>``).
    """
    fields = fields or {}
    from mslt_it.prompt_bounds import check_literals
    from mslt_it.prompts import _ENVIRONMENT
    from mslt_it.tasks.expressions import NotPlain, plain_expression

    plain: dict[str, str] = {}
    compiled: dict[str, tuple[Callable[[Row], str] | None, Any]] = {}
    for name, expression in spec.items():
        match = PLAIN_COLUMN.match(expression)
        if match:
            plain[name] = match.group(1)
            continue
        try:
            check_literals(_ENVIRONMENT, "{{ " + expression + " }}")
            jinja = _ENVIRONMENT.compile_expression(expression, undefined_to_none=False)
        except Exception as error:  # jinja2's TemplateSyntaxError and the bounds' errors
            raise MsltError(f"{where}: {fields.get(name, f'variables.{name}')}: {error}") from None
        compiled[name] = (plain_expression(_ENVIRONMENT, expression), jinja)

    def variables(row: Row) -> dict[str, Any]:
        values = {name: row[column] for name, column in plain.items()}
        for name, (python, jinja) in compiled.items():
            if python is not None:
                try:
                    values[name] = python(row)
                    continue
                except NotPlain:
                    pass
            try:
                values[name] = jinja(row=row)
            except Exception as error:
                place = fields.get(name, f"variables.{name}")
                raise MsltError(f"{where}: {place}: {error}") from None
        return values

    return variables


REMEMBERED_ROWS = 8192
"""Rows whose computed values :func:`remember_rows` keeps: more than the builder takes at once."""


def remember_rows(compute: Callable[[Row], dict[str, Any]]) -> Callable[[Row], dict[str, Any]]:
    """``compute`` with its last rows' values kept, by the row's identity.

    A row's choices or turns are read by its check, by every rendering of the row (one per
    choice in rank mode) and by its gold label; each Jinja evaluation costs tens of
    microseconds. The reference held keeps a remembered row's id from being reused.
    """
    recent: OrderedDict[int, tuple[Row, dict[str, Any]]] = OrderedDict()

    def remembered(row: Row) -> dict[str, Any]:
        known = recent.get(id(row))
        if known is not None and known[0] is row:
            return known[1]
        values = compute(row)
        recent[id(row)] = (row, values)
        if len(recent) > REMEMBERED_ROWS:
            recent.popitem(last=False)
        return values

    return remembered


# ------------------------------------------------------------------------------------ build


def build_task(spec: TaskFile, where: str) -> Task:
    """The :class:`Task` a definition describes."""
    own = compile_variables(spec.variables, where)
    labels = tuple(spec.labels)
    check_row = None
    turns = None
    if spec.kind == "ner":
        from mslt_it.tasks import ner

        kind_variables = ner.variables
        gold_label = ner.gold_label
        verbalizer_keys = (*labels, ner.NONE_KEY)
        valid_label_ids = None
    elif spec.kind == "instructions":
        from mslt_it.tasks import instructions

        reader = instructions.turn_reader(spec, where)
        kind_variables = instructions.kind_variables(reader)
        turns = reader.turns

        def gold_label(row: Row, lang: str) -> str:
            return reader.turns(row).answer

        verbalizer_keys = ()
        valid_label_ids = None
        check_row = reader.check
    elif spec.kind == "multiple_choice":
        reader = choice_reader(spec, where)
        kind_variables = multiple_choice_variables(reader)

        def gold_label(row: Row, lang: str) -> str:
            return labels[reader.gold(row)]

        verbalizer_keys = labels
        valid_label_ids = None
        check_row = reader.check
    else:
        label_column = str(spec.label_column)
        kind_variables = classification_variables(labels, label_column)

        def gold_label(row: Row, lang: str) -> str:
            return labels[row[label_column]]

        verbalizer_keys = labels
        valid_label_ids = frozenset(range(len(labels)))

    def to_variables(
        row: Row, verbalizer: Verbalizer, lang: str, label: int | None = None
    ) -> dict[str, Any]:
        variables = common_variables(lang)
        if spec.variables:  # most definitions have none: no empty evaluation per row
            variables.update(own(row))
        variables.update(kind_variables(row, verbalizer, lang, label))
        return variables

    registry = spec.languages.registry if isinstance(spec.languages, RegistryLanguages) else ""
    return Task(
        name=spec.name,
        title=spec.title,
        hub_id=spec.hub.id if spec.hub else "",
        kind=spec.kind,
        splits=tuple(spec.splits),
        columns=tuple(spec.columns),
        labels=labels,
        verbalizer_keys=verbalizer_keys,
        fields=COMMON_FIELDS | set(spec.variables) | set(KIND_FIELDS[spec.kind]),
        to_variables=to_variables,
        gold_label=gold_label,
        valid_label_ids=valid_label_ids,
        check_row=check_row,
        languages_from_registry=registry,
        extra={
            "definition": where,
            "hub_config": spec.hub.config if spec.hub else "{lang}",
            "hub_configs": dict(spec.hub.configs) if spec.hub else {},
            "language_column": spec.language_column,
            "language_values": spec.language_values,
            "language_value_exceptions": dict(spec.language_value_exceptions),
            "conversation": spec.messages is not None,
            "turns": turns,
            "languages": None if registry else tuple(spec.languages),  # type: ignore[arg-type]
            "metric": spec.metric,
            "synthetic": spec.synthetic,
            "label_column": spec.label_column,
            "example": dict(spec.example) if spec.example is not None else None,
        },
    )


def choice_reader(spec: TaskFile, where: str) -> ChoiceReader:
    """The choices and gold expressions of a multiple-choice definition, compiled once."""
    gold = spec.gold if spec.gold is not None else f"row.{spec.label_column}"
    compute = compile_variables(
        {"options": str(spec.choices), "gold": gold},
        where,
        fields={"options": "choices", "gold": "gold" if spec.gold else "label_column"},
    )
    return ChoiceReader(tuple(spec.labels), remember_rows(compute))


def check_language_codes(spec: TaskFile, path: Path) -> None:
    """Listed languages must be ones mslt-it knows (names, scripts, lang2vec codes)."""
    from mslt_it.languages import all_languages

    if isinstance(spec.languages, RegistryLanguages):
        return
    known = all_languages()
    for code in spec.languages:
        if code not in known:
            raise MsltError(
                f"{path}: languages: {code!r} is not in mslt-it's language registry "
                "(mslt_it/resources/languages.csv); use its codes, e.g. en, sw, zh"
            )


def parse_definition(path: Path) -> Task:
    """Read, validate and build one definition file; every problem is one line naming it."""
    from mslt_it.config import read_text_file, validate_yaml_file

    spec = validate_yaml_file(path, read_text_file(path), TaskFile, "a task definition")
    if spec.name != path.stem:
        raise MsltError(f"{path}: name is {spec.name!r} but the file is called {path.name}")
    check_language_codes(spec, path)
    return build_task(spec, str(path))


def definition_files(folders: Iterable[Path]) -> list[Path]:
    """The ``*.yaml`` files of the given folders, in order."""
    found = []
    for folder in folders:
        if not folder.is_dir():
            raise MsltError(f"tasks-dir: {str(folder)!r} is not a directory")
        found += sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    return found


@lru_cache(maxsize=16)
def load_definitions(folders: tuple[Path, ...]) -> dict[str, Task]:
    """Every task defined in ``folders``; a name defined twice is an error."""
    tasks: dict[str, Task] = {}
    for path in definition_files(folders):
        task = parse_definition(path)
        if task.name in tasks:
            raise MsltError(
                f"tasks-dir: task {task.name!r} is defined twice: "
                f"{tasks[task.name].extra['definition']} and {path}"
            )
        tasks[task.name] = task
    return tasks


def user_definition(task: Task) -> dict[str, str] | None:
    """``{path, sha256}`` of a task defined outside mslt-it's own ``tasks/`` (a ``--tasks-dir``).

    Recorded in a dataset's manifest and in a recipe step's input hash, so a dataset says which
    definition made it and an edited definition rebuilds it. Shipped definitions are versioned
    with mslt-it itself (its version is in every manifest).
    """
    import hashlib

    from mslt_it.paths import TASKS_DIR

    where = task.extra.get("definition")
    if not where:
        return None
    path = Path(where).resolve()
    if path.is_relative_to(TASKS_DIR.resolve()):
        return None
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
