"""The ``eval`` section of a recipe (``mslt-it eval``): one validated, documented pydantic model.

Unknown keys are errors, as in every recipe section; the lead re-exports :class:`EvalConfig` from
:mod:`mslt_it.config`. Checks that need more than one field or the file system (a suite or a task,
the adapters' base model) happen when the evaluation is planned, with one-line errors too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from mslt_it.modeling import looks_like_a_path
from mslt_it.stats import samples_problem


class EvalConfig(BaseModel):
    """What to evaluate, on which data, with which backend (the ``eval`` section of a recipe)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        default=None,
        description=(
            "Base model (Hub id or folder). Optional with adapters: their run.json names it; "
            "given, it must be the adapters' base model."
        ),
    )
    adapters: list[str] = Field(
        default=[],
        description=(
            "LoRA adapter folders written by `mslt-it train` (PEFT + run.json). Several are "
            "evaluated against one loaded base model, each into its own subfolder of --out."
        ),
    )
    include_base: bool = Field(
        strict=True,  # `true` is not 1, `"yes"` is not true (YAML 1.2 reads both as given)
        default=False,
        description="With adapters, also evaluate the base model alone ('base').",
    )
    compare_models: list[str] = Field(
        default=[],
        description=(
            "Recipes: other base models (Hub ids or folders) evaluated with the same settings "
            "beside the recipe's model, into OUTPUT/models/<model>/ with a models x languages "
            "comparison (OUTPUT/models/comparison). On the command line, repeat --model."
        ),
    )
    suite: list[str] = Field(
        default=[],
        description="Evaluation suites: names in eval/ (xnli, pawsx, wikiann, xcopa, ...) or "
        "YAML files. Alternative to task + langs.",
    )
    task: str | None = Field(
        default=None, description="Task (xnli, xcopa, ... or a --tasks-dir one) without suite."
    )
    langs: list[str] | None = Field(
        default=None,
        description="Languages to evaluate; with a suite, a subset of its languages.",
    )
    split: str | None = Field(
        default=None, description="Split to evaluate (default: the suite's, else 'test')."
    )
    template: str | None = Field(
        default=None,
        description=(
            "Prompt template id. Default: the adapter's (from run.json), else the suite's, else "
            "'<task>/en-instruct'. Differing from the adapter's needs allow_template_mismatch."
        ),
    )
    allow_template_mismatch: bool = Field(
        strict=True,
        default=False,
        description=(
            "Evaluate with a template (or template file) other than the one the adapter was "
            "trained with. Off by default: one template both ways."
        ),
    )
    prompts_dir: list[str] = Field(default=[], description="Extra folders of prompt templates.")
    system_prompt: str | None = Field(
        default=None,
        description="System message before every instruction (default: the adapter's run.json).",
    )
    data: str = Field(
        default="synthetic",
        description="'hub', 'synthetic', or a folder laid out as DIR/<task>/<lang>/<split>.jsonl",
    )
    limit: int | None = Field(
        strict=True,
        default=None,
        gt=0,
        description="Evaluate only the first N rows of each language (the same items of a "
        "parallel benchmark; unlabelled ones among them left out).",
    )
    backend: Literal["hf", "vllm"] = Field(
        default="hf", description="hf (transformers + PEFT) or vllm (LLM engine + LoRARequest)."
    )
    mode: Literal["generate", "rank", "constrained"] = Field(
        default="generate",
        description=(
            "generate: greedy free generation, then parsing; rank: the label word with the "
            "highest log-likelihood after the prompt; constrained: greedy generation restricted "
            "to the label words (vllm only)."
        ),
    )
    max_tokens: int | None = Field(
        strict=True,
        default=None,
        gt=0,
        le=65536,
        description="Most new tokens per answer in generate mode (default 32; 160 for wikiann).",
    )
    batch_size: int = Field(
        strict=True, default=32, gt=0, le=65536, description="Examples per forward pass (hf)."
    )
    chunk_size: int = Field(
        strict=True,
        default=256,
        gt=0,
        description="Examples per checkpointed chunk: a killed run resumes from the last chunk.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto",
        description="Model dtype: auto is bfloat16 on a GPU that supports it, float32 on CPU.",
    )
    device: str | None = Field(default=None, description="hf device (default: cuda if available).")
    tensor_parallel_size: int = Field(
        strict=True, default=1, gt=0, description="vLLM tensor parallelism."
    )
    vllm_args: dict[str, Any] = Field(
        default={},
        description="Extra keyword arguments for vllm.LLM (e.g. gpu_memory_utilization).",
    )
    trust_remote_code: bool | None = Field(
        strict=True,
        default=None,
        description="Let the model folder run code (default: run.json's, else off).",
    )
    seed: int = Field(
        strict=True,
        default=0,
        ge=0,
        lt=2**32,
        description="Seed of the bootstrap confidence intervals.",
    )
    bootstrap_samples: int = Field(
        strict=True,
        default=1000,
        ge=0,
        le=1_000_000,
        description="Bootstrap resamples per language (0: no interval; else at least 40).",
    )

    @field_validator("model")
    @classmethod
    def _model_folder_exists(cls, model: str | None) -> str | None:

        if model is not None and looks_like_a_path(model) and not Path(model).expanduser().exists():
            raise ValueError("no such folder (a Hub id looks like org/name)")
        return model

    @field_validator("tensor_parallel_size")
    @classmethod
    def _parallel_is_vllms(cls, size: int, info: ValidationInfo) -> int:
        """Backend hf runs the model on one device: a size above 1 was silently ignored."""
        if size != 1 and info.data.get("backend", "hf") != "vllm":
            raise ValueError(
                "applies to backend vllm only; backend hf runs the model on one device"
            )
        return size

    @field_validator("vllm_args")
    @classmethod
    def _engine_length_is_whole(cls, arguments: dict[str, Any]) -> dict[str, Any]:
        """``max_model_len`` is the context prompts are cut to before vLLM sees them: ``"64"``
        (which vLLM reads as 64) cut them to the model's 1024 and the engine refused them,
        an internal error after its start; ``true`` was a context of one token."""
        length = arguments.get("max_model_len")  # None: vLLM's own default
        if length is not None and (
            isinstance(length, bool) or not isinstance(length, int) or length < 1
        ):
            raise ValueError(
                f"max_model_len is {length!r}; allowed: a whole number of tokens above 0, or "
                "null (vLLM's default)"
            )
        return arguments

    @field_validator("bootstrap_samples")
    @classmethod
    def _enough_samples(cls, samples: int) -> int:
        problem = samples_problem(samples)
        if problem is not None:
            raise ValueError(problem)
        return samples

    @field_validator("langs")
    @classmethod
    def _langs_not_empty(cls, langs: list[str] | None) -> list[str] | None:
        if langs == []:  # else read as "not given": every language of the task or suite
            raise ValueError("an empty list; give at least one language, or leave langs out")
        return langs

    @field_validator("langs", "suite", "adapters")
    @classmethod
    def _no_duplicates(cls, values: list[str] | None) -> list[str] | None:
        if values is None:
            return values
        duplicates = sorted({v for v in values if values.count(v) > 1})
        if duplicates:
            raise ValueError(f"duplicate entry {duplicates[0]!r}")
        return values
