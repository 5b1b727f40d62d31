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
expressions over the row, and a single-table corpus names its ``language_column``.

Every expression is evaluated in the bounded sandbox templates use (:mod:`mslt_it.prompt_bounds`).
A definition is checked whole when it loads (:func:`parse_definition`): at least two distinct
labels, a synthetic generator that makes rows of its kind and label count, a known registry
column, and its values computed once on its ``example`` (or a stand-in row), so a wrong gold or
choice expression blames the definition, not every template tried on it. Shipped definitions live
in the repository's ``tasks/`` folder; a user adds one by dropping a file into a folder passed
with ``--tasks-dir`` (or a recipe's ``tasks_dir``), as with lm-evaluation-harness's include path.

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

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2 import nodes
from jinja2.parser import Parser
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mslt_it.errors import MsltError, allowed
from mslt_it.files import MAX_TEXT_BYTES, read_user_bytes
from mslt_it.languages import REGISTRY_COLUMNS, all_languages, languages_of_task
from mslt_it.paths import TASKS_DIR
from mslt_it.prompt_bounds import (
    ENVIRONMENT,
    RenderLimitError,
    compile_bounded_expression,
    describe,
    format_fields,
)
from mslt_it.tasks import ner
from mslt_it.tasks.base import COMMON_FIELDS, Row, Task, Verbalizer, common_variables
from mslt_it.tasks.expressions import NotPlain, plain_expression

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
        """Only a bare ``{lang}``: a format spec (``{lang:>5000000000}``) or a conversion would
        let a definition allocate without bound, and nothing else is ever substituted."""
        try:
            fields = format_fields(config)
        except ValueError:
            fields = [(None, None, None)]
        for field, spec, conversion in fields:
            if field != "lang" or spec or conversion:
                raise ValueError(
                    "may use only {lang} as a placeholder, with no format spec or conversion "
                    "(write {{ and }} for literal braces)"
                )
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
            if tuple(self.labels) != ner.ENTITY_TYPES:
                raise ValueError(
                    f"labels: the ner kind reads WikiAnn's BIO tags, whose entity types are "
                    f"{', '.join(ner.ENTITY_TYPES)}"
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


class LimitError(MsltError):
    """An expression exceeded a bound of :mod:`mslt_it.prompt_bounds`: the expression's fault
    whatever row it ran on."""


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
    plain: dict[str, str] = {}
    compiled: dict[str, tuple[Callable[[Row], str] | None, Callable[..., Any]]] = {}
    for name, expression in spec.items():
        match = PLAIN_COLUMN.match(expression)
        if match:
            plain[name] = match.group(1)
            continue
        try:
            jinja = compile_bounded_expression(expression)
        except Exception as error:  # jinja2's TemplateSyntaxError and the bounds' errors
            place = fields.get(name, f"variables.{name}")
            raise MsltError(f"{where}: {place}: {describe(error)}") from None
        compiled[name] = (plain_expression(ENVIRONMENT, expression), jinja)

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
            except Exception as error:  # the bounds, a type error on this row's data, …
                place = fields.get(name, f"variables.{name}")
                kind = LimitError if isinstance(error, RenderLimitError) else MsltError
                raise kind(f"{where}: {place}: {describe(error)}") from None
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
    """Listed languages must be ones mslt-it knows (names, scripts, lang2vec codes), each once;
    a registry column must be one ``languages.csv`` has (else the task fails later, namelessly).
    """
    if isinstance(spec.languages, RegistryLanguages):
        if spec.languages.registry not in REGISTRY_COLUMNS:
            raise MsltError(
                f"{path}: languages.registry: {spec.languages.registry!r} is not a column of "
                f"mslt-it's language registry; allowed: {allowed(REGISTRY_COLUMNS)}"
            )
        return
    if not spec.languages:
        raise MsltError(f"{path}: languages: the list is empty; name at least one language")
    known = all_languages()
    seen: set[str] = set()
    for code in spec.languages:
        if code not in known:
            raise MsltError(
                f"{path}: languages: {code!r} is not in mslt-it's language registry "
                "(mslt_it/resources/languages.csv); use its codes, e.g. en, sw, zh"
            )
        if code in seen:
            raise MsltError(f"{path}: languages: {code!r} is listed twice; list each once")
        seen.add(code)


def check_labels(spec: TaskFile, path: Path) -> None:
    """A label set a model can be scored on: at least two distinct, non-empty names.

    One label (or two spellings of one) would score 100 % on any model.
    """
    if spec.kind not in ("classification", "multiple_choice"):
        return
    what = "choice slots" if spec.kind == "multiple_choice" else "labels"
    labels = spec.labels
    blank = [label for label in labels if not label.strip()]
    if blank:
        raise MsltError(f"{path}: labels: {labels!r} has an empty name; name every one")
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise MsltError(
            f"{path}: labels: {labels!r} names {twice[0]!r} twice; a {spec.kind} task needs "
            f"distinct {what}"
        )
    if len(labels) < 2:
        raise MsltError(
            f"{path}: labels: {labels!r} has {len(labels)}; a {spec.kind} task needs at least "
            f"two distinct {what} (one would score 100 % on any model)"
        )


def check_choices_count(spec: TaskFile, path: Path) -> None:
    """A ``choices`` expression written as a list (``[row.a, row.b]``) has one item per slot."""
    if spec.kind != "multiple_choice" or spec.choices is None:
        return
    try:
        node = Parser(ENVIRONMENT, spec.choices, state="variable").parse_expression()
    except jinja2.TemplateSyntaxError:
        return  # compile_variables names the syntax error
    if isinstance(node, nodes.List | nodes.Tuple) and len(node.items) != len(spec.labels):
        raise MsltError(
            f"{path}: choices: {spec.choices!r} gives {len(node.items)} choices; labels names "
            f"{len(spec.labels)} ({', '.join(spec.labels)}): one choice per label"
        )


SYNTHETIC_ROWS: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "xnli": ("classification", 3, ("premise", "hypothesis", "label")),
    "pawsx": ("classification", 2, ("id", "sentence1", "sentence2", "label")),
    "wikiann": ("ner", 0, ("tokens", "ner_tags", "langs", "spans")),
    "xcopa": (
        "multiple_choice",
        2,
        ("premise", "choice1", "choice2", "question", "label", "idx", "changed"),
    ),
    "xstorycloze": (
        "multiple_choice",
        2,
        (
            "story_id",
            "input_sentence_1",
            "input_sentence_2",
            "input_sentence_3",
            "input_sentence_4",
            "sentence_quiz1",
            "sentence_quiz2",
            "answer_right_ending",
        ),
    ),
    "xwinograd": ("multiple_choice", 2, ("sentence", "option1", "option2", "answer")),
    "bactrianx": ("instructions", 0, ("instruction", "input", "output", "id")),
}
"""What each generator of :mod:`mslt_it.tasks.synthetic` makes: the kind, the number of labels
(label ids 0 to n-1; 0 for kinds without a label set) and the columns of a row. A definition
naming a generator must match it, or its rows break at the first label beyond its own."""


def check_synthetic(spec: TaskFile, path: Path) -> None:
    """The definition's kind, labels and columns fit the synthetic generator it names."""
    generator = spec.synthetic
    if generator is None:
        return
    if generator not in SYNTHETIC_ROWS:
        raise MsltError(
            f"{path}: synthetic: unknown generator {generator!r}; known: {allowed(SYNTHETIC_ROWS)}"
        )
    kind, count, columns = SYNTHETIC_ROWS[generator]
    if spec.kind != kind:
        fitting = [name for name, shape in SYNTHETIC_ROWS.items() if shape[0] == spec.kind]
        raise MsltError(
            f"{path}: synthetic: the {generator} generator makes {kind} rows, not "
            f"{spec.kind} ones; allowed for {spec.kind}: {allowed(fitting) or 'none'}"
        )
    if count and len(spec.labels) != count:
        raise MsltError(
            f"{path}: synthetic: the {generator} generator's rows have {count} labels (ids 0 to "
            f"{count - 1}), but labels names {len(spec.labels)}: {', '.join(spec.labels)}"
        )
    for column in spec.columns:
        if column not in columns:
            raise MsltError(
                f"{path}: columns: {column!r} is not a column of the synthetic {generator} rows; "
                f"they have: {', '.join(columns)}"
            )


def stand_in_row(spec: TaskFile) -> Row:
    """The row a definition without synthetic rows is tried on: its ``example``, else every
    column filled (text, label 0, one untagged token), as
    :func:`mslt_it.tasks.sources.sample_row` gives templates."""
    if spec.example is not None:
        return dict(spec.example)
    row: Row = {column: "text" for column in spec.columns}
    if spec.kind == "ner":
        row.update(tokens=["text"], ner_tags=[0])
    if spec.label_column:
        row[spec.label_column] = 0
    return row


def first_language(spec: TaskFile) -> str:
    """A language of the definition, to try its variables in."""
    if isinstance(spec.languages, RegistryLanguages):
        if spec.languages.registry == "all":
            return next(iter(all_languages()))
        return languages_of_task(spec.languages.registry)[0]
    return spec.languages[0]


def check_sample(task: Task, spec: TaskFile, path: Path) -> None:
    """Compute the definition's values on its example (or the stand-in row) once, at load.

    A gold index of the wrong type, choices that are no list of texts, or an expression that
    cannot read the row are the definition's fault: said here once, naming the file and field,
    rather than as a failure of every template tried on the row later. A definition with a
    synthetic generator and no example is checked against the generator instead.
    """
    if spec.synthetic is not None and spec.example is None:
        return
    row = stand_in_row(spec)
    lang = first_language(spec)
    try:
        if spec.kind == "classification":
            gold = row.get(str(spec.label_column))
            count = len(spec.labels)
            if isinstance(gold, bool) or not isinstance(gold, int) or not 0 <= gold < count:
                raise ValueError(
                    f"label_column {spec.label_column!r} holds {gold!r}; allowed: a label id, "
                    f"0 to {count - 1}"
                )
        if task.check_row is not None:
            task.check_row(row)
        words = {key: key for key in task.verbalizer_keys}
        labelled = spec.kind in ("classification", "multiple_choice")
        for label in (None, *range(len(spec.labels))) if labelled else (None,):
            task.to_variables(row, words, lang, label)
    except Exception as error:  # MsltError from an expression, ValueError from a check, …
        reason = describe(error).removeprefix(f"{path}: ")
        if spec.example is not None or isinstance(error, LimitError):
            place = "example: " if spec.example is not None else ""
            raise MsltError(f"{path}: {place}{reason}") from None
        raise MsltError(
            f"{path}: {reason} (on a stand-in row whose columns all hold 'text'; give the "
            "definition an example row in the dataset's schema)"
        ) from None


def parse_definition(path: Path) -> Task:
    """Read, validate and build one definition file; every problem is one line naming it."""
    from mslt_it.config import read_text_file, validate_yaml_file

    spec = validate_yaml_file(path, read_text_file(path), TaskFile, "a task definition")
    if spec.name != path.stem:
        raise MsltError(f"{path}: name is {spec.name!r} but the file is called {path.name}")
    check_language_codes(spec, path)
    check_labels(spec, path)
    check_choices_count(spec, path)
    check_synthetic(spec, path)
    task = build_task(spec, str(path))
    check_sample(task, spec, path)
    return task


def definition_files(folders: Iterable[Path]) -> list[Path]:
    """The ``*.yaml`` files of the given folders, in order, each file once.

    A file reached twice (the shipped ``tasks/`` given again as ``--tasks-dir``, a folder and a
    symlink to it) is one definition, not a task defined twice: files are told apart by their
    resolved path.
    """
    found = []
    seen: set[Path] = set()
    for folder in folders:
        if not folder.is_dir():
            raise MsltError(f"tasks-dir: {str(folder)!r} is not a directory")
        for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
            resolved = path.resolve()
            if resolved not in seen:
                seen.add(resolved)
                found.append(path)
    return found


@lru_cache(maxsize=16)
def load_definitions(folders: tuple[Path, ...]) -> dict[str, Task]:
    """Every task defined in ``folders``; a name defined twice (in two files) is an error."""
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
    where = task.extra.get("definition")
    if not where:
        return None
    path = Path(where).resolve()
    if path.is_relative_to(TASKS_DIR.resolve()):
        return None
    data = read_user_bytes(path, "task definition", MAX_TEXT_BYTES)
    return {"path": str(path), "sha256": hashlib.sha256(data).hexdigest()}
