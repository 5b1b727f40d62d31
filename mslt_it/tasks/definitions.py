"""Task definitions: one YAML file per benchmark, checked when loaded, made into a :class:`Task`.

A definition says what YAML can say: the Hub dataset and how a language maps to its config, the
splits, the languages, the columns a row must have, the kind of task, the label space and where a
row's gold label is, the variables prompt templates may use (Jinja expressions over the row,
rendered in the sandbox) and the metric. What YAML cannot express is a small named piece of code
that the definition refers to by its kind (:data:`KINDS`): the BIO tags and span format of NER,
for example. Shipped definitions live in the repository's ``tasks/`` folder; a user adds one by
dropping a file into a folder passed with ``--tasks-dir`` (or a recipe's ``tasks_dir``), as with
lm-evaluation-harness's include path.

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
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mslt_it.errors import MsltError
from mslt_it.tasks.base import COMMON_FIELDS, Row, Task, Verbalizer, common_variables

PLAIN_COLUMN = re.compile(r"^\s*row\.([A-Za-z_][A-Za-z0-9_]*)\s*$")
NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


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
    kind: Literal["classification", "ner"] = Field(description="classification or ner.")
    hub: HubSource
    splits: list[str] = Field(min_length=1, description="The splits the dataset has.")
    languages: list[str] | RegistryLanguages = Field(
        description="Language codes, or {registry: <column>} of languages.csv."
    )
    columns: list[str] = Field(min_length=1, description="The columns every row must have.")
    labels: list[str] = Field(
        min_length=1,
        description="classification: the label names, in the order of their ids; ner: the "
        "entity types.",
    )
    label_column: str | None = Field(
        default=None,
        description="classification: the column holding the gold label id (-1: unlabelled, "
        "dropped and counted).",
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
        reserved = set(KIND_FIELDS[self.kind]) | COMMON_FIELDS
        clash = sorted(set(self.variables) & reserved)
        if clash:
            raise ValueError(f"variables: {clash[0]!r} is provided by the {self.kind} kind already")
        return self


# ------------------------------------------------------------------------------------ kinds


def classification_variables(
    labels: tuple[str, ...], label_column: str
) -> Callable[[Row, Verbalizer, str], dict[str, Any]]:
    """label, label_word and choices from the gold label id and the template's words."""

    def variables(row: Row, verbalizer: Verbalizer, lang: str) -> dict[str, Any]:
        name = labels[row[label_column]]
        return {
            "label": name,
            "label_word": verbalizer[name],
            "choices": [verbalizer[label] for label in labels],
        }

    return variables


KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "classification": ("label", "label_word", "choices"),
    "ner": ("tokens", "sentence", "spans", "entity_types", "none_word"),
}
"""The variables each kind's code provides, beside a definition's own."""


# -------------------------------------------------------------------------------- variables


def compile_variables(spec: dict[str, str], where: str) -> Callable[[Row], dict[str, Any]]:
    """One function from a row to the definition's variables.

    ``row.<column>`` is read directly (most variables are, and the builder renders every row);
    anything else is a Jinja expression compiled once in the bounded sandbox.
    """
    from mslt_it.prompt_bounds import check_literals
    from mslt_it.prompts import _ENVIRONMENT

    plain: dict[str, str] = {}
    compiled: dict[str, Any] = {}
    for name, expression in spec.items():
        match = PLAIN_COLUMN.match(expression)
        if match:
            plain[name] = match.group(1)
            continue
        try:
            check_literals(_ENVIRONMENT, "{{ " + expression + " }}")
            compiled[name] = _ENVIRONMENT.compile_expression(expression, undefined_to_none=False)
        except Exception as error:  # jinja2's TemplateSyntaxError and the bounds' errors
            raise MsltError(f"{where}: variables.{name}: {error}") from None

    def variables(row: Row) -> dict[str, Any]:
        values = {name: row[column] for name, column in plain.items()}
        for name, expression in compiled.items():
            try:
                values[name] = expression(row=row)
            except Exception as error:
                raise MsltError(f"{where}: variables.{name}: {error}") from None
        return values

    return variables


# ------------------------------------------------------------------------------------ build


def build_task(spec: TaskFile, where: str) -> Task:
    """The :class:`Task` a definition describes."""
    own = compile_variables(spec.variables, where)
    labels = tuple(spec.labels)
    if spec.kind == "ner":
        from mslt_it.tasks import ner

        kind_variables = ner.variables
        gold_label = ner.gold_label
        verbalizer_keys = (*labels, ner.NONE_KEY)
        valid_label_ids = None
    else:
        label_column = str(spec.label_column)
        kind_variables = classification_variables(labels, label_column)

        def gold_label(row: Row, lang: str) -> str:
            return labels[row[label_column]]

        verbalizer_keys = labels
        valid_label_ids = frozenset(range(len(labels)))

    def to_variables(row: Row, verbalizer: Verbalizer, lang: str) -> dict[str, Any]:
        return {**common_variables(lang), **own(row), **kind_variables(row, verbalizer, lang)}

    registry = spec.languages.registry if isinstance(spec.languages, RegistryLanguages) else ""
    return Task(
        name=spec.name,
        title=spec.title,
        hub_id=spec.hub.id,
        kind=spec.kind,
        splits=tuple(spec.splits),
        columns=tuple(spec.columns),
        labels=labels,
        verbalizer_keys=verbalizer_keys,
        fields=COMMON_FIELDS | set(spec.variables) | set(KIND_FIELDS[spec.kind]),
        to_variables=to_variables,
        gold_label=gold_label,
        valid_label_ids=valid_label_ids,
        languages_from_registry=registry,
        extra={
            "definition": where,
            "hub_config": spec.hub.config,
            "hub_configs": dict(spec.hub.configs),
            "languages": None if registry else tuple(spec.languages),  # type: ignore[arg-type]
            "metric": spec.metric,
            "synthetic": spec.synthetic,
            "label_column": spec.label_column,
        },
    )


def parse_definition(path: Path) -> Task:
    """Read, validate and build one definition file; every problem is one line naming it."""
    from mslt_it.config import read_text_file, validate_yaml_file

    spec = validate_yaml_file(path, read_text_file(path), TaskFile, "a task definition")
    if spec.name != path.stem:
        raise MsltError(f"{path}: name is {spec.name!r} but the file is called {path.name}")
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
