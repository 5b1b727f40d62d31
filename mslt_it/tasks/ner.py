"""The ``ner`` kind: what a task definition cannot say in YAML about named-entity recognition.

BIO tag ids (WikiAnn's: O, B/I-PER, B/I-ORG, B/I-LOC) become entity spans the way seqeval reads
them, and an instruction's answer lists the entities in the mT5/XTREME span format,
``PER: Ada Lovelace $$ LOC: London``, or the template's word for "none". A definition of kind
``ner`` (``tasks/wikiann.yaml``) gets these variables and this gold answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mslt_it.tasks.base import Row, Verbalizer, join_tokens

TAG_NAMES = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
ENTITY_TYPES = ("PER", "ORG", "LOC")
NONE_KEY = "NONE"
SPAN_SEPARATOR = " $$ "


def entities_from_tags(tags: Sequence[int]) -> list[tuple[str, int, int]]:
    """Entity spans ``(type, start, end)`` (end exclusive) from BIO tag ids.

    An I- tag that does not continue an entity of its type starts a new one, as seqeval does.
    """
    spans: list[tuple[str, int, int]] = []
    current: tuple[str, int] | None = None
    for i, tag_id in enumerate(tags):
        tag = TAG_NAMES[tag_id]
        prefix, _, kind = tag.partition("-")
        continues = prefix == "I" and current is not None and current[0] == kind
        if current is not None and not continues:
            spans.append((current[0], current[1], i))
            current = None
        if prefix == "B" or (prefix == "I" and not continues):
            current = (kind, i)
    if current is not None:
        spans.append((current[0], current[1], len(tags)))
    return spans


def format_spans(entities: Sequence[tuple[str, str]], verbalizer: Verbalizer) -> str:
    """``[("PER", "Ada Lovelace")]`` -> ``"PER: Ada Lovelace"`` with the template's type words."""
    if not entities:
        return verbalizer[NONE_KEY]
    return SPAN_SEPARATOR.join(f"{verbalizer[kind]}: {text}" for kind, text in entities)


def row_entities(row: Row, lang: str) -> list[tuple[str, str]]:
    """The row's entities as ``(type, surface text)`` pairs, in sentence order."""
    tokens = row["tokens"]
    return [
        (kind, join_tokens(tokens[start:end], lang))
        for kind, start, end in entities_from_tags(row["ner_tags"])
    ]


def variables(
    row: Row, verbalizer: Verbalizer, lang: str, label: int | None = None
) -> dict[str, Any]:
    """The kind's template variables of one row (the definition adds the common ones).

    ``label`` is not used: an NER answer is the row's entities, not one label of a set.
    """
    entities = row_entities(row, lang)
    return {
        "tokens": list(row["tokens"]),
        "sentence": join_tokens(row["tokens"], lang),
        "spans": format_spans(entities, verbalizer),
        "entity_types": [verbalizer[kind] for kind in ENTITY_TYPES],
        "none_word": verbalizer[NONE_KEY],
    }


def gold_label(row: Row, lang: str) -> str:
    """Canonical gold answer (English type tags), whatever the template's words."""
    canonical = {**{kind: kind for kind in ENTITY_TYPES}, NONE_KEY: "None"}
    return format_spans(row_entities(row, lang), canonical)
