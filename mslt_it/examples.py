"""What every example of a built dataset shares, benchmark row or corpus exchange alike.

Below both renderers (:mod:`mslt_it.data` for task rows, :mod:`mslt_it.corpus` for instruction
corpora): each language's seeded random stream, and the conversational columns TRL trains on.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from mslt_it.config import DataConfig


def language_rng(seed: int, lang: str) -> np.random.Generator:
    """The random stream of one language's sample: the build's seed and the language."""
    lang_key = int.from_bytes(hashlib.sha256(lang.encode()).digest()[:8], "little")
    return np.random.default_rng([seed, lang_key])


def has_own_system_message(history: list[dict[str, str]] | None) -> bool:
    """Whether a conversation's earlier turns begin with its own system message, which
    :func:`to_chat_columns` keeps in place of the configured one."""
    return bool(history) and history[0]["role"] == "system"


def to_chat_columns(
    instruction: str,
    answer: str,
    config: DataConfig,
    history: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The conversational columns TRL expects for the chosen format.

    ``history`` (earlier turns of a multi-turn conversation) goes before the last user turn, so a
    conversation stays whole in one example; its own system message, if any, wins over the
    configured one.
    """
    prompt = [*(history or []), {"role": "user", "content": instruction}]
    if config.system_prompt and not has_own_system_message(history):
        prompt.insert(0, {"role": "system", "content": config.system_prompt})
    completion = [{"role": "assistant", "content": answer}]
    if config.format == "messages":
        return {"messages": prompt + completion}
    return {"prompt": prompt, "completion": completion}
