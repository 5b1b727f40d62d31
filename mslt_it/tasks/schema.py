"""The schema of a task definition file (pydantic): its fields and the checks one file allows.

Only shape is checked here (a field's type, fields that go together, columns an expression
reads); what needs other files or the registry (known language codes, a synthetic generator of
the right kind, the values on an example row) is checked by :mod:`mslt_it.tasks.definitions`
when the file is loaded.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from mslt_it.prompt_bounds import format_fields
from mslt_it.tasks import ner
from mslt_it.tasks.base import COMMON_FIELDS
from mslt_it.template_values import PRINTABLE

NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
SPLIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""A split's name: it becomes a file name (``DIR/<task>/<lang>/<split>.jsonl``), so no path."""
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?$")
"""A Hub dataset id, ``owner/name`` or ``name``: never a local path, which `datasets` would read
past mslt-it's file checks."""
ROW_REFERENCE = re.compile(r"\brow\.([A-Za-z_][A-Za-z0-9_]*)")
ROW_ITEM = re.compile(r"""\brow\[\s*(['"])(.+?)\1\s*\]""")
"""``row['column']``, the other way an expression reads a column."""


def columns_read(expression: str) -> set[str]:
    """The columns an expression reads (``row.x`` or ``row['x']``)."""
    return set(ROW_REFERENCE.findall(expression)) | {m[1] for m in ROW_ITEM.findall(expression)}


KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "classification": ("label", "label_word", "choices"),
    "ner": ("tokens", "sentence", "spans", "entity_types", "none_word"),
    "multiple_choice": ("label", "label_word", "choices", "options", "option", "answer_index"),
    "instructions": ("prompt", "answer", "history"),
}
"""The variables each kind's code provides, beside a definition's own."""


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

    @field_validator("id")
    @classmethod
    def _hub_id(cls, value: str) -> str:
        if not HUB_ID.match(value) or ".." in value:
            raise ValueError(
                f"{value[:80]!r} is not a Hub dataset id; write owner/name (letters, digits, "
                "'-', '_', '.'), never a path (local data: --data DIR)"
            )
        return value

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


def check_row_value(value: Any, where: str, depth: int = 0) -> None:
    """An example cell must be what a data file's cell can be (JSON's kinds, which a template
    prints the same way in every run: :data:`mslt_it.template_values.PRINTABLE`, nested in
    lists and mappings): a ``!!binary`` or ``!!set`` value is none of them."""
    if isinstance(value, PRINTABLE):
        return
    if isinstance(value, list) and depth < 16:
        for item in value:
            check_row_value(item, where, depth + 1)
        return
    if isinstance(value, dict) and depth < 16:
        for key, item in value.items():
            check_row_value(key, where, depth + 1)
            check_row_value(item, where, depth + 1)
        return
    raise ValueError(
        f"{where}: {str(value)[:40]!r} is a {type(value).__name__}; a row holds text, numbers, "
        "true/false, null, lists and mappings"
    )


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
    values: dict[str, list[str]] = Field(
        default={},
        description="Columns of a closed set of text values: column -> the values allowed "
        "(e.g. XCOPA's {question: [cause, effect]}); every row a split opens is checked.",
    )
    metric: str = Field(default="accuracy", description="accuracy (classification) or f1 (ner).")
    cluster: str | None = Field(
        default=None,
        description="A Jinja expression over `row` giving the key of the rows that are not "
        "independent of each other (`row.premise`: XNLI's hypotheses of one premise); "
        "bootstrap intervals and the report's paired tests resample such rows together. "
        "Written on one line; it decides no prediction, so editing it re-scores an "
        "evaluation and predicts nothing again.",
    )
    parallel: StrictBool = Field(
        default=False,
        description="true where row N of every language's split is the same item translated "
        "(XNLI, XCOPA, PAWS-X, XStoryCloze, Belebele; not WikiAnn or XWinograd): the targets' "
        "average's interval and paired test then draw each item in every language at once, "
        "since an item hard in one language is hard in the others. Written on one line; it "
        "decides no prediction, so editing it re-scores an evaluation and predicts nothing "
        "again.",
    )
    synthetic: str | None = Field(
        default=None, description="The synthetic generator of offline rows (xnli, pawsx, wikiann)."
    )

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not NAME.match(name):
            raise ValueError("use lowercase letters, digits, '-' or '_', starting with a letter")
        return name

    @field_validator("splits")
    @classmethod
    def _plain_splits(cls, splits: list[str]) -> list[str]:
        for split in splits:
            if not SPLIT.match(split) or ".." in split:
                raise ValueError(
                    f"{split[:80]!r} is not a split name; use letters, digits, '-', '_' or '.' "
                    "(at most 64, starting with a letter or digit): it names a file"
                )
        _no_repeats(splits, "split")
        return splits

    @field_validator("columns")
    @classmethod
    def _columns_once(cls, columns: list[str]) -> list[str]:
        """Each column once, and none named ``id``: that is the id mslt-it gives each row
        (``task/lang/split/number``, which results and comparisons match rows by), so a data
        column of that name was replaced by it without a word. Checked with the columns, before
        the example that must hold them (which asked for an ``id`` it would then refuse)."""
        _no_repeats(columns, "column")
        if "id" in columns:
            raise ValueError(
                "'id' is the row id mslt-it gives each row (task/lang/split/number), which "
                "replaces a data column of that name; name the column otherwise"
            )
        return columns

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
        self._check_values()
        if self.example is not None:
            missing = [c for c in self.columns if c not in self.example]
            if missing:
                raise ValueError(f"example: lacks column {missing[0]!r}")
            for column, value in self.example.items():
                check_row_value(value, f"example: {column}")
        reserved = set(KIND_FIELDS[self.kind]) | COMMON_FIELDS
        clash = sorted(set(self.variables) & reserved)
        if clash:
            raise ValueError(f"variables: {clash[0]!r} is provided by the {self.kind} kind already")
        return self

    def _check_values(self) -> None:
        """Each ``values`` entry names a declared column and lists its values once each; the
        example row, if any, holds one of them (it is the row templates are tried on)."""
        for column, values in self.values.items():
            if column == self.label_column:
                raise ValueError(
                    f"values: {column!r} is the label column; its values are the labels"
                )
            if column not in self.columns:
                raise ValueError(
                    f"values: {column[:80]!r} is not among the columns ({', '.join(self.columns)})"
                )
            if not values:
                raise ValueError(f"values.{column}: the list is empty; list the values allowed")
            _no_repeats(values, f"values.{column}: value")
            found = (self.example or {}).get(column, values[0])
            if found not in values:
                raise ValueError(
                    f"example: column {column!r} is {str(found)[:40]!r}; allowed (values."
                    f"{column}): {', '.join(values)}"
                )

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

    def expressions(self) -> dict[str, str]:
        """Every expression over ``row`` the definition holds, by its field (``variables.x``,
        ``choices``, ``gold``, ``prompt``, ``answer``, ``messages``, ``cluster``; those unset
        left out)."""
        found = {f"variables.{name}": source for name, source in self.variables.items()}
        optional = {
            "choices": self.choices,
            "gold": self.gold,
            "prompt": self.prompt,
            "answer": self.answer,
            "messages": self.messages,
            "cluster": self.cluster,
        }
        found.update({field: source for field, source in optional.items() if source})
        return found

    def _check_row_references(self) -> None:
        """Every ``row.<column>`` an expression reads is a declared column (checked in the data
        when a split opens), so a misspelt one fails here, not halfway through a build."""
        for field, expression in self.expressions().items():
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


def _no_repeats(values: list[str], what: str) -> None:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{what} {repeated[0][:80]!r} is listed twice")
