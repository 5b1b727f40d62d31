"""What every part of the GPU check shares: tokenizer, random model and tokenised mixture.

``prepare`` builds them as ``bench_train.py`` does (an English-centric tokenizer, a random Llama
from a config, the skewed XNLI mixture rendered in memory by ``mslt_it.data``) into a ``Setup``
that the training, evaluation and profile parts read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench_train

from .budget import Sizes

IGNORE_INDEX = -100


@dataclass
class Setup:
    """What every part shares: the device, the model folder, the tokenised mixture."""

    sizes: Sizes
    tmp: Path
    cuda: bool
    model_dir: Path
    n_params: int
    tokenizer: Any
    encoded: list[tuple[list[int], list[int]]]
    peak: float | None
    packages: dict[str, dict[str, Any]]
    data: dict[str, Any]
    dataset_dir: Path | None = None
    step_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def device(self) -> str:
        return "cuda" if self.cuda else "cpu"

    def mfu(self, tokens_per_second: float) -> float | None:
        if not self.peak or not tokens_per_second:
            return None
        return round(6 * self.n_params * tokens_per_second / self.peak, 4)


def mixture_examples(per_language: int, tokenizer_dir: str) -> list[dict[str, Any]]:
    """bench_train's mixture rendered in memory by mslt_it.data (no datasets package needed)."""
    from mslt_it.config import DataConfig
    from mslt_it.data import build_part, checked_template

    config = DataConfig(
        task="xnli",
        sources=bench_train.LANGS,
        budget=per_language,
        budget_mode="per_language",
        tokenizer=tokenizer_dir,
        max_length=512,
    )
    return build_part(config, checked_template(config), None).examples


def encode_examples(
    examples: list[dict[str, Any]], tokenizer: Any, max_length: int
) -> tuple[list[tuple[list[int], list[int]]], dict[str, Any]]:
    """(input ids, labels) of each example through the chat template, the prompt masked as in
    TRL's completion-only loss; over-long examples dropped, as ``train``'s default policy does."""
    prompts = [e["prompt"] for e in examples]
    full = [e["prompt"] + e["completion"] for e in examples]
    prompt_ids = tokenizer.apply_chat_template(
        prompts, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    full_ids = tokenizer.apply_chat_template(full, tokenize=True, return_dict=True)["input_ids"]
    encoded, lengths, dropped = [], {}, 0
    for example, prompt, ids in zip(examples, prompt_ids, full_ids, strict=True):
        lengths.setdefault(example["lang"], []).append(len(ids))
        if len(ids) > max_length:
            dropped += 1
            continue
        cut = len(prompt) if ids[: len(prompt)] == prompt else 0
        encoded.append((list(ids), [IGNORE_INDEX] * cut + list(ids[cut:])))
    means = {lang: round(sum(n) / len(n), 1) for lang, n in lengths.items()}
    return encoded, {"examples": len(examples), "dropped_overlong": dropped, "mean_tokens": means}


def prepare(sizes: Sizes, tmp: Path, packages: dict[str, Any], peak: float | None) -> Setup:
    """Tokenizer, model and mixture, as bench_train.py builds them."""
    import torch

    from mslt_it.modeling import load_tokenizer

    tokenizer_dir = bench_train.english_centric_tokenizer(tmp)
    model_dir = tmp / "model"
    n_params = bench_train.build_model(model_dir, tokenizer_dir, sizes.large_model)
    tokenizer = load_tokenizer(str(model_dir))
    examples = mixture_examples(sizes.per_language, tokenizer_dir)
    encoded, data = encode_examples(examples, tokenizer, sizes.max_length)
    data["languages"] = bench_train.LANGS
    cuda = torch.cuda.is_available()
    return Setup(sizes, tmp, cuda, model_dir, n_params, tokenizer, encoded, peak, packages, data)
