"""Adapter sanity: did the adapter change anything at all?

An adapter that was silently not applied (a wrong name, a backend that ignored it, a LoRA whose
weights are all zero) gives the base model's answers, and its scores then look like a plain
failure to transfer (lm-evaluation-harness #2432). Comparing its predictions with the base
model's on the same rows catches it: in rank mode every label's log-likelihood, otherwise the
raw output. Equal on every scored row means the adapter did nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Record = dict[str, Any]

TOLERANCE = 1e-6
"""Log-likelihoods closer than this are equal (the records keep six decimals)."""


def _key(record: Record) -> tuple[str, str, str]:
    return str(record["task"]), str(record["lang"]), str(record["id"])


def same_prompt(a: Record, b: Record) -> bool:
    """Whether two records of one row were asked the same: the same template and prompt text
    (rank mode's records name each choice's context apart, under ``prompt`` too)."""
    return a.get("template") == b.get("template") and a.get("prompt") == b.get("prompt")


def same_prediction(a: Record, b: Record) -> bool:
    """Whether two records of one row hold the same prediction."""
    if a.get("scores") and b.get("scores"):
        first, second = a["scores"], b["scores"]
        return set(first) == set(second) and all(
            float(first[label]) == float(second[label])  # -inf == -inf (their difference is nan)
            or abs(float(first[label]) - float(second[label])) <= TOLERANCE
            for label in first
        )
    return a.get("output") == b.get("output")


def adapter_sanity(
    records: Sequence[Record], base_records: Sequence[Record], base_name: str = "base"
) -> dict[str, Any] | None:
    """``{"compared_with", "rows", "identical_rows", "same_as_base"}`` over the rows both
    record with the same prompt, or ``None`` when they share no such row. An adapter whose
    run.json names another template (or chat template) than the base run's was compared on
    other prompts: an adapter that changed nothing then read as "not the same as the base"."""
    base = {_key(r): r for r in base_records}
    shared = [
        (r, base[_key(r)]) for r in records if _key(r) in base and same_prompt(r, base[_key(r)])
    ]
    if not shared:
        return None
    identical = sum(same_prediction(a, b) for a, b in shared)
    return {
        "compared_with": base_name,
        "rows": len(shared),
        "identical_rows": identical,
        "same_as_base": identical == len(shared),
    }
