"""Pydantic models of a recipe's parts: one place for validation.

Every field is documented; unknown keys are errors (a typo must not be silently ignored), and
:func:`validate_section` turns pydantic's errors into the one-line form users see:
``data.budget: must be > 0, got -4``.
"""

from __future__ import annotations

import reprlib
from collections.abc import Hashable
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mslt_it.errors import MsltError
from mslt_it.files import read_user_text

M = TypeVar("M", bound=BaseModel)


class MixturePart(BaseModel):
    """Another task or corpus mixed into a dataset, with its own share of the budget."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(description="Task or corpus name, e.g. xnli or bactrian-x.")
    share: float = Field(gt=0, lt=1, description="Its fraction of the budget (0 < share < 1).")
    template: str | None = Field(
        default=None, description="Its prompt template (default as for the main task)."
    )
    data: str | None = Field(default=None, description="Where its rows come from (default: data).")
    split: str | None = Field(
        default=None,
        description="Its split; default train, or the task's first split when it has no train "
        "split (xcopa: validation).",
    )


class DataConfig(BaseModel):
    """How to build an instruction dataset (``mslt-it build``; the ``data`` section of a recipe)."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(
        description="Task or instruction corpus: xnli, pawsx, wikiann, xstorycloze, bactrian-x, "
        "aya, instructions, conversations, or one from a --tasks-dir."
    )
    sources: list[str] = Field(
        description="Source language codes, e.g. [en, de, zh].", min_length=1
    )
    budget: int = Field(
        strict=True,
        description="Number of examples: the total (split across sources) or per language.",
        gt=0,
        le=10**9,
    )
    budget_mode: Literal["total", "per_language", "temperature"] = Field(
        default="total",
        description=(
            "total: budget split equally across sources (the paper's setting, so single- and "
            "multi-source runs see the same amount of data); per_language: budget from each "
            "source; temperature: total budget split with share ∝ rows^(1/T)."
        ),
    )
    temperature: float = Field(
        default=3.33,
        ge=0.01,
        le=1000,
        description="T of temperature sampling (3.33 is mT5's and XLM-R's α = 0.3).",
    )
    take_available: bool = Field(
        default=False,
        description="Take all rows of a language that has fewer than asked, instead of failing.",
    )
    template: str | None = Field(
        default=None,
        description="Prompt template id; default '<task>/en-instruct' ('<task>/as-is' for an "
        "instruction corpus).",
    )
    prompts_dir: list[str] = Field(default=[], description="Extra folders of prompt templates.")
    data: str = Field(
        default="synthetic",
        description="'hub', 'synthetic', or a folder laid out as DIR/<task>/<lang>/<split>.jsonl",
    )
    split: str = Field(default="train", description="Which split to sample from.")
    format: Literal["prompt-completion", "messages"] = Field(
        default="prompt-completion",
        description=(
            "prompt-completion: conversational prompt/completion columns (TRL trains the "
            "completion only); messages: one conversation column (TRL's assistant_only_loss)."
        ),
    )
    system_prompt: str | None = Field(
        default=None, description="Optional system message put before every instruction."
    )
    seed: int = Field(
        strict=True,
        default=0,
        ge=0,
        lt=2**32,
        description="Seed of the sample and of the mixture's order.",
    )
    tokenizer: str | None = Field(
        default=None, description="Tokenizer (Hub id or folder) for token counts per language."
    )
    max_length: int = Field(
        strict=True,
        default=512,
        gt=0,
        description="Token length above which an example counts as too long.",
    )
    script_mismatch: Literal["count", "drop"] = Field(
        default="count",
        description="Instruction corpora: rows mostly written in another script than their "
        "language's are counted per language (count) or also left out (drop).",
    )
    mixture: list[MixturePart] = Field(
        default=[],
        description="Other tasks or corpora mixed in, each with its share of the budget; the "
        "main task gets the rest. Every part uses the same source languages.",
    )

    @field_validator("sources")
    @classmethod
    def _no_duplicate_sources(cls, sources: list[str]) -> list[str]:
        duplicates = sorted({s for s in sources if sources.count(s) > 1})
        if duplicates:
            raise ValueError(f"duplicate source language {duplicates[0]!r}")
        return sources

    @model_validator(mode="after")
    def _default_template(self) -> DataConfig:
        if self.template is None:
            self.template = default_template(self.task)
        return self

    @model_validator(mode="after")
    def _default_mixture_splits(self) -> DataConfig:
        for part in self.mixture:
            if part.split is None:
                part.split = default_split(part.task)
        return self

    @model_validator(mode="after")
    def _shares_leave_room(self) -> DataConfig:
        total = sum(part.share for part in self.mixture)
        if total >= 1:
            raise ValueError(
                f"mixture: the shares add up to {total:g}; they must leave the main task a share "
                "(sum < 1)"
            )
        tasks = [self.task, *(part.task for part in self.mixture)]
        repeated = sorted({t for t in tasks if tasks.count(t) > 1})
        if repeated:
            raise ValueError(f"mixture: task {repeated[0]!r} appears twice")
        return self

    @model_validator(mode="after")
    def _every_source_gets_an_example(self) -> DataConfig:
        if self.budget_mode == "total" and self.sources and self.budget < len(self.sources):
            raise ValueError(
                f"budget {self.budget} cannot give each of the {len(self.sources)} sources an "
                f"example; use at least {len(self.sources)}"
            )
        return self


def default_template(task: str) -> str:
    """``<task>/as-is`` for an instruction corpus, ``<task>/en-instruct`` for a benchmark task.

    A task that is not known yet (a recipe's --tasks-dir is read after its sections) gets the
    benchmark default; an unknown template is reported when the build opens it.
    """
    from mslt_it.tasks import all_tasks

    try:
        known = all_tasks().get(task)
    except MsltError:
        known = None
    return (
        f"{task}/as-is"
        if known is not None and known.kind == "instructions"
        else (f"{task}/en-instruct")
    )


def default_split(task: str) -> str:
    """A mixture part's split when its recipe names none: ``train`` if the task has one, else
    the first split its definition lists (a benchmark such as XCOPA has only validation and
    test). A task not known yet gets ``train``; the build then names the unknown task."""
    from mslt_it.tasks import all_tasks

    try:
        known = all_tasks().get(task)
    except MsltError:
        known = None
    if known is None or "train" in known.splits:
        return "train"
    return known.splits[0]


_SHORT = reprlib.Repr()  # keyword arguments only from Python 3.12
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxlevel = 60, 60, 6, 4, 2


def _short(value: Any) -> str:
    """A bounded repr: an error message never echoes a whole (or alias-expanded) input."""
    return _SHORT.repr(value)


def describe_error(error: ValidationError, prefix: str = "") -> str:
    """``section.field: problem, got value`` from pydantic's first error."""
    first = error.errors()[0]
    parts = [prefix] if prefix else []
    parts += [str(p) for p in first["loc"]]
    where = ".".join(parts) or "(top level)"
    kind, given = first["type"], _short(first.get("input"))
    if kind == "extra_forbidden":
        return f"{where}: unknown field (a typo?)"
    if kind == "missing":
        return f"{where}: required field is missing"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        symbol = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<"}.get(kind, "<=")
        bound = next(iter(first.get("ctx", {}).values()), "?")
        return f"{where}: must be {symbol} {bound}, got {given}"
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message[0].lower()}{message[1:]}, got {given}"


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
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


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
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_YAML_NODES:
            raise MsltError(
                f"{where}: expands to more than {MAX_YAML_NODES:,} values (nested aliases?)"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise MsltError(f"{where}: not valid YAML: {_yaml_problem(error)}") from None
    finally:
        loader.dispose()


def _yaml_problem(error: yaml.YAMLError) -> str:
    """``duplicate key 'name' (line 5, column 1)``: PyYAML's problem and where, on one line."""
    problem = getattr(error, "problem", None) or str(error).strip().splitlines()[0]
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
    data = parse_yaml(text, str(path))
    if not isinstance(data, dict):
        raise MsltError(f"{path}: {what} must be a YAML mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise MsltError(f"{path}: {describe_error(error)}") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping safely (:func:`parse_yaml`); anything but a mapping is an error."""
    path = Path(path)
    if path.is_dir():
        raise MsltError(f"recipe: {str(path)!r} is a folder; give a YAML file")
    if not path.is_file():
        raise MsltError(f"recipe: no such file {str(path)!r}")
    data = parse_yaml(read_text_file(path), str(path))
    if not isinstance(data, dict):
        raise MsltError(f"{path}: expected a YAML mapping at the top level")
    return data


class DataSection(DataConfig):
    """A recipe's ``data`` section: a :class:`DataConfig` whose sources come from ``sources``."""

    sources: list[str] = Field(default=[], description="Filled in per run from `sources`.")


class AllCombinations(BaseModel):
    """Every k-language subset of a pool: the paper's C(7,3) = 35 sets."""

    model_config = ConfigDict(extra="forbid")
    pool: list[str] = Field(min_length=1)
    k: int = Field(gt=0)

    @model_validator(mode="after")
    def _k_fits(self) -> AllCombinations:
        if self.k > len(self.pool):
            raise ValueError(f"k = {self.k} is larger than the pool ({len(self.pool)} languages)")
        return self


class SweepK(BaseModel):
    """One selected (or first) set per size k: the paper's k = 1…5 curve."""

    model_config = ConfigDict(extra="forbid")
    pool: list[str] = Field(min_length=1)
    k: list[int] = Field(min_length=1)
    criterion: str = Field(default="l2v-syntax", description="How the set of each size is chosen.")

    @model_validator(mode="after")
    def _k_fits(self) -> SweepK:
        for k in self.k:
            if not 0 < k <= len(self.pool):
                raise ValueError(f"k = {k} must be between 1 and the pool size {len(self.pool)}")
        return self


class SelectSpec(BaseModel):
    """Sources chosen by ``mslt-it select``'s criteria (its top-ranked set)."""

    model_config = ConfigDict(extra="forbid")
    criterion: str = Field(description="A selection criterion, e.g. l2v-syntax.")
    k: int = Field(gt=0)
    pool: list[str] = Field(min_length=1)
    targets: list[str] = Field(default=[], description="Target languages (target-aware criteria).")
    include: list[str] = Field(default=[], description="Languages forced into the set.")
    seed: int = 0
    size_model: Literal["xlmr", "bloom", "mt5"] = Field(
        default="xlmr",
        description="size: whose pretraining sizes: xlmr (CC-100), bloom (ROOTS), mt5 (mC4).",
    )
    size_missing: Literal["error", "last"] = Field(
        default="error",
        description="size: a pool language without a size is an error, or ranks its sets last "
        "(BLOOM's ROOTS has no German or Russian).",
    )

    @model_validator(mode="after")
    def _k_fits(self) -> SelectSpec:
        if self.k > len(self.pool):
            raise ValueError(f"k = {self.k} is larger than the pool ({len(self.pool)} languages)")
        return self


class ReportConfig(BaseModel):
    """What the report compares."""

    model_config = ConfigDict(extra="forbid")
    baseline: str | None = Field(
        default=None, description="Run id to compare every other run against (default: first)."
    )
    size_model: Literal["xlmr", "bloom", "mt5"] = Field(
        default="xlmr",
        description="The criteria table's size criterion: whose pretraining sizes (xlmr: "
        "CC-100, bloom: ROOTS, mt5: mC4); languages without one rank last.",
    )


class RecipeConfig(BaseModel):
    """A whole experiment: data, sources (one set or a grid), model, training, evaluation, report.

    ``model``, ``train`` and ``eval`` are validated by the models of the modules that use them
    (:class:`mslt_it.training.ModelConfig`, :class:`mslt_it.training.TrainConfig`,
    :class:`mslt_it.evaluation.EvalConfig`), where TRL and PEFT fields pass through.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Short name; outputs go to runs/<name> unless output_dir says.")
    description: str = Field(default="", description="What the experiment asks, for the report.")
    output_dir: str | None = Field(default=None, description="Where every run's outputs go.")
    tasks_dir: list[str] = Field(
        default=[], description="Extra folders of task definitions (YAML), as --tasks-dir."
    )
    data: DataSection
    sources: Any = Field(
        description=(
            "[en, de] (one run); [[en], [ar, en, zh]] (several); {all-combinations: {pool, k}}; "
            "{sweep-k: {pool, k: [1, 2, 3]}}; {select: {criterion, k, pool}}; or a list mixing "
            "language lists and {select: …} entries."
        )
    )
    model: dict[str, Any] = Field(
        description="The base model: {name_or_path, trust_remote_code, chat_template}; "
        "name_or_path `mslt-it:tiny` builds the tiny offline model, `mslt-it:tiny-world` the one "
        "pre-trained on the synthetic world (see mslt_it.tiny)."
    )
    train: dict[str, Any] = Field(default={}, description="mslt-it train settings.")
    eval: dict[str, Any] = Field(default={}, description="mslt-it eval settings.")
    report: ReportConfig = ReportConfig()

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if not name or any(c in name for c in "/\\ ") or name.startswith("."):
            raise ValueError("use letters, digits, '-', '_' or '.' (no spaces or slashes)")
        return name
