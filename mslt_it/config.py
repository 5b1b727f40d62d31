"""Pydantic models of a recipe's parts: one place for validation.

Every field is documented; unknown keys are errors (a typo must not be silently ignored), and
:func:`~mslt_it.yamlfiles.validate_section` turns pydantic's errors into the one-line form users
see: ``data.budget: must be > 0, got -4``. The models check shape only: a task's default
template and a mixture part's default split are the task registry's answer, resolved where the
settings are used (:func:`mslt_it.data.with_defaults`), not by the schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from mslt_it.files import control_character
from mslt_it.paths import BLANK_DATA, HOME_TILDE, home_tilde, is_blank
from mslt_it.yamlfiles import (  # their old home was here: re-exported, see __all__
    MAX_INPUT_BYTES,
    MAX_YAML_NODES,
    describe_error,
    load_yaml,
    parse_yaml,
    read_text_file,
    validate_section,
    validate_yaml_file,
)


def nonblank_data(value: str | None) -> str | None:
    """A ``data`` field's value, unless blank (:func:`mslt_it.paths.is_blank`): a mixture part
    or watch entry with ``data: ""`` silently took the build's data instead."""
    if is_blank(value):
        raise ValueError(BLANK_DATA)
    if home_tilde(value):
        raise ValueError(HOME_TILDE)
    return value


DataSource = Annotated[str, AfterValidator(nonblank_data)]
"""Where rows come from: ``hub``, ``synthetic`` or a folder (never blank)."""


class MixturePart(BaseModel):
    """Another task or corpus mixed into a dataset, with its own share of the budget."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    task: str = Field(description="Task or corpus name, e.g. xnli or bactrian-x.")
    share: float = Field(
        strict=True, gt=0, lt=1, description="Its fraction of the budget (0 < share < 1)."
    )
    template: str | None = Field(
        default=None, description="Its prompt template (default as for the main task)."
    )
    data: DataSource | None = Field(
        default=None, description="Where its rows come from (default: data)."
    )
    split: str | None = Field(
        default=None,
        description="Its split; default train, or the task's first split when it has no train "
        "split (xcopa: validation).",
    )


def blank_is_none(system_prompt: str | None) -> str | None:
    """A blank system prompt (``''``, ``'   '``) is none: the one rule by which a build
    records it and an evaluation compares and renders it (``'   '`` wrote a system turn of
    spaces; an adapter an earlier mslt-it recorded with ``""`` is one trained without)."""
    return None if system_prompt is None or not system_prompt.strip() else system_prompt


class DataConfig(BaseModel):
    """How to build an instruction dataset (``mslt-it build``; the ``data`` section of a recipe)."""

    @staticmethod
    def check_temperature_is_read(settings: dict[str, Any], field: str) -> None:
        """``temperature`` shapes the split only with ``budget_mode: temperature``: given with
        another mode, the build ignored it without a word. Checked on what the user wrote (a full
        config written back, as a manifest keeps it, holds the default beside any mode)."""
        mode = settings.get("budget_mode") or "total"
        if settings.get("temperature") is not None and mode != "temperature":
            raise ValueError(
                f"{field}: {settings['temperature']!r} is read only with budget_mode temperature, "
                f"and budget_mode is {mode!r}; leave it out or set budget_mode: temperature"
            )

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

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
        strict=True,  # `true` is not 1, `"yes"` is not true (YAML 1.2 reads both as given)
        default=3.33,
        ge=0.01,
        le=1000,
        description="T of temperature sampling (3.33 is mT5's and XLM-R's α = 0.3).",
    )
    take_available: bool = Field(
        strict=True,
        default=False,
        description="Take all rows of a language that has fewer than asked, instead of failing "
        "(the dataset is then smaller than the budget, and the build says so).",
    )
    template: str | None = Field(
        default=None,
        description="Prompt template id; default '<task>/en-instruct' ('<task>/as-is' for an "
        "instruction corpus).",
    )
    prompts_dir: list[str] = Field(default=[], description="Extra folders of prompt templates.")
    data: DataSource = Field(
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
        default=None,
        description="Optional system message put before every instruction (blank: none); a "
        "conversation's own system message is kept instead.",
    )
    seed: int = Field(
        strict=True,
        default=0,
        ge=0,
        lt=2**32,
        description="Seed of the sample and of the mixture's order.",
    )
    tokenizer: str | None = Field(
        default=None,
        min_length=1,  # "" counted nothing and said nothing
        description="Tokenizer (Hub id or folder) for token counts per language.",
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

    @field_validator("system_prompt")
    @classmethod
    def _blank_system_prompt_is_none(cls, text: str | None) -> str | None:
        """A blank system prompt (``''``, ``'   '``) is no system prompt, recorded as None like
        one never given. ``''`` already wrote no system turn while ``'   '`` wrote a turn of
        spaces into every example, which a TRL user would not expect: the chat template then
        renders a system header around nothing, or (Qwen's) gives up its default system
        message for it. And ``""``, ``"   "`` and None in the manifest were three identities
        of one dataset, so a training was redone for nothing."""
        return blank_is_none(text)

    @field_validator("sources")
    @classmethod
    def _one_order_of_sources(cls, sources: list[str]) -> list[str]:
        """Each source once, in one order: a set of languages is one dataset however it is
        typed (``zh,de,en`` gave the odd example to zh, shuffled in another order and made
        another fingerprint than ``en,de,zh``; a recipe's runs were already sorted)."""
        duplicates = sorted({s for s in sources if sources.count(s) > 1})
        if duplicates:
            raise ValueError(f"duplicate source language {duplicates[0]!r}")
        return sorted(sources)

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
                f"budget: {self.budget} cannot give each of the {len(self.sources)} sources an "
                f"example; use at least {len(self.sources)}"
            )
        return self


class DataSection(DataConfig):
    """A recipe's ``data`` section: a :class:`DataConfig` whose sources come from ``sources``."""

    sources: list[str] = Field(default=[], description="Filled in per run from `sources`.")


class AllCombinations(BaseModel):
    """Every k-language subset of a pool: the paper's C(7,3) = 35 sets."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    pool: list[str] = Field(min_length=1)
    k: int = Field(gt=0, strict=True)  # `k: true` is a typo, not 1

    @model_validator(mode="after")
    def _k_fits(self) -> AllCombinations:
        if self.k > len(self.pool):
            raise ValueError(f"k = {self.k} is larger than the pool ({len(self.pool)} languages)")
        return self


class SweepK(BaseModel):
    """One selected (or first) set per size k: the paper's k = 1…5 curve."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    pool: list[str] = Field(min_length=1)
    k: list[Annotated[int, Field(strict=True)]] = Field(min_length=1)
    criterion: str = Field(default="l2v-syntax", description="How the set of each size is chosen.")

    @model_validator(mode="after")
    def _k_fits(self) -> SweepK:
        for k in self.k:
            if not 0 < k <= len(self.pool):
                raise ValueError(f"k = {k} must be between 1 and the pool size {len(self.pool)}")
        return self


class SelectSpec(BaseModel):
    """Sources chosen by ``mslt-it select``'s criteria (its top-ranked set)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    criterion: str = Field(description="A selection criterion, e.g. l2v-syntax.")
    k: int = Field(gt=0, strict=True)
    pool: list[str] = Field(min_length=1)
    targets: list[str] = Field(default=[], description="Target languages (target-aware criteria).")
    include: list[str] = Field(default=[], description="Languages forced into the set.")
    targets_as_sources: bool = Field(
        default=False,
        strict=True,
        description="Keep the targets in the pool (as `select --targets-as-sources`).",
    )
    seed: int = Field(default=0, strict=True, ge=0, lt=2**32)
    size_model: Literal["xlmr", "bloom", "mt5"] = Field(
        default="xlmr",
        description="size: whose pretraining sizes: xlmr (CC-100), bloom (ROOTS), mt5 (mC4).",
    )
    size_missing: Literal["error", "last"] = Field(
        default="error",
        description="size: a pool language without a size is an error, or ranks its sets last "
        "(BLOOM's ROOTS has no German or Russian).",
    )
    predictor: Path | None = Field(
        default=None,
        description="learned or sslt-measured: a predictor file from `select --fit --save` "
        "(with targets).",
    )
    vectors: Path | None = Field(
        default=None,
        description="l2v-custom: a CSV of code,feature… rows (as `select --vectors`).",
    )
    tokenizer: str | None = Field(
        default=None,
        description="coverage: a tokenizer, Hub id or folder (as `select --tokenizer`).",
    )
    model: str | None = Field(
        default=None,
        description="embedding: a model, Hub id or folder (as `select --model`).",
    )

    @model_validator(mode="after")
    def _k_fits(self) -> SelectSpec:
        languages = set(self.pool) | set(self.include)  # `include` joins the pool, as in select
        if self.k > len(languages):
            raise ValueError(
                f"k = {self.k} is larger than the pool and include ({len(languages)} languages)"
            )
        return self


class ReportConfig(BaseModel):
    """What the report compares."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
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

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

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
        "pre-trained on the synthetic world, `mslt-it:tiny-world-sized` the one pre-trained on "
        "text whose amount per language follows CC-100 (see mslt_it.tiny)."
    )
    train: dict[str, Any] = Field(default={}, description="mslt-it train settings.")
    eval: dict[str, Any] = Field(default={}, description="mslt-it eval settings.")
    report: ReportConfig = ReportConfig()

    @field_validator("output_dir")
    @classmethod
    def _plain_output_dir(cls, folder: str | None) -> str | None:
        if folder is not None and not folder.strip():  # `--out ""` is refused the same way
            raise ValueError("an empty path; give a folder, or leave output_dir out")
        found = control_character(folder) if folder is not None else None
        if found is not None:
            raise ValueError(f"holds the control character {found!r}; a folder name has none")
        if home_tilde(folder):
            raise ValueError(HOME_TILDE)
        return folder

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if (
            not name
            or name.startswith(".")
            or not all(c.isalnum() or c in "-_." for c in name)
            or len(name.encode()) > 200
        ):
            raise ValueError(
                "use letters, digits, '-', '_' or '.' (no spaces, slashes or control characters; "
                "not starting with '.'; at most 200 bytes)"
            )
        return name


__all__ = [
    "MAX_INPUT_BYTES",
    "MAX_YAML_NODES",
    "AllCombinations",
    "DataConfig",
    "DataSection",
    "MixturePart",
    "RecipeConfig",
    "ReportConfig",
    "SelectSpec",
    "SweepK",
    "describe_error",
    "load_yaml",
    "parse_yaml",
    "read_text_file",
    "validate_section",
    "validate_yaml_file",
]
