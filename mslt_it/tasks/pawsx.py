"""PAWS-X: paraphrase identification in 7 languages (``google-research-datasets/paws-x``)."""

from __future__ import annotations

from typing import Any

from mslt_it.tasks.base import COMMON_FIELDS, Row, Task, Verbalizer, common_variables

LABELS = ("not_paraphrase", "paraphrase")  # label ids 0, 1; rows labelled -1 are dropped


def to_variables(row: Row, verbalizer: Verbalizer, lang: str) -> dict[str, Any]:
    """Template variables of one PAWS-X row."""
    return {
        **common_variables(lang),
        "sentence1": row["sentence1"],
        "sentence2": row["sentence2"],
        "label": LABELS[row["label"]],
        "label_word": verbalizer[LABELS[row["label"]]],
        "choices": [verbalizer[name] for name in LABELS],
    }


def gold_label(row: Row, lang: str) -> str:
    """The gold label's canonical name."""
    return LABELS[row["label"]]


TASK = Task(
    name="pawsx",
    title="PAWS-X",
    hub_id="google-research-datasets/paws-x",
    kind="classification",
    splits=("train", "validation", "test"),
    columns=("sentence1", "sentence2", "label"),
    labels=LABELS,
    verbalizer_keys=LABELS,
    fields=COMMON_FIELDS | {"sentence1", "sentence2", "label", "label_word", "choices"},
    to_variables=to_variables,
    gold_label=gold_label,
    valid_label_ids=frozenset({0, 1}),
)
