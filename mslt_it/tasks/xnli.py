"""XNLI: natural language inference in 15 languages (``facebook/xnli``)."""

from __future__ import annotations

from typing import Any

from mslt_it.tasks.base import COMMON_FIELDS, Row, Task, Verbalizer, common_variables

LABELS = ("entailment", "neutral", "contradiction")  # label ids 0, 1, 2 in the dataset


def to_variables(row: Row, verbalizer: Verbalizer, lang: str) -> dict[str, Any]:
    """Template variables of one XNLI row."""
    return {
        **common_variables(lang),
        "premise": row["premise"],
        "hypothesis": row["hypothesis"],
        "label": LABELS[row["label"]],
        "label_word": verbalizer[LABELS[row["label"]]],
        "choices": [verbalizer[name] for name in LABELS],
    }


def gold_label(row: Row, lang: str) -> str:
    """The gold label's canonical name."""
    return LABELS[row["label"]]


TASK = Task(
    name="xnli",
    title="XNLI",
    hub_id="facebook/xnli",
    kind="classification",
    splits=("train", "validation", "test"),
    columns=("premise", "hypothesis", "label"),
    labels=LABELS,
    verbalizer_keys=LABELS,
    fields=COMMON_FIELDS | {"premise", "hypothesis", "label", "label_word", "choices"},
    to_variables=to_variables,
    gold_label=gold_label,
    valid_label_ids=frozenset({0, 1, 2}),
)
