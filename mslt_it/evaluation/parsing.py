"""Turn a model's free-text answer into a set of entity spans, never crashing (a label is
read in :mod:`mslt_it.label_words`).

A WikiAnn answer (``PER: Ada Lovelace $$ LOC: London`` or the none word) becomes ``(type, text)``
pairs, which :func:`align_entities` maps back onto the sentence's tokens so that the XTREME metric
(seqeval over BIO tags) can score them. An entity's text is matched as written first
(``Apple Inc.``, ``U.S.``, ``Queen ( band )`` are the sentence's own tokens); a text that occurs
nowhere in the sentence loses quotes and punctuation at its edges (``"London".``), the fewest
characters that make it occur, and quotes matching whole tokens at its edges are the
sentence's (:func:`located`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mslt_it.label_words import normalize
from mslt_it.tasks.ner import ENTITY_TYPES, NONE_KEY

_QUOTES_AND_PUNCTUATION = " \t\r\n\"'`“”‘’«»„‚「」『』《》〈〉()[]{}<>*_.,;:!?。、，；：！？·-–—"


@dataclass(frozen=True)
class ParsedEntities:
    """Entities read from a span-format answer.

    ``valid`` is False when the answer is neither the none word nor has a single readable
    ``TYPE: text`` item: such an answer is counted as invalid (and predicts no entities).
    """

    entities: tuple[tuple[str, str], ...]
    valid: bool


_ITEM_SEPARATOR = re.compile(r"\s*\${2,}\s*|\s*\n+\s*")
_TYPE_SEPARATOR = re.compile(r"\s*[:：]\s*")


def parse_entities(output: str, verbalizer: Mapping[str, str]) -> ParsedEntities:
    """``"PER: Ada Lovelace $$ LOC: London"`` -> ``(("PER", "Ada Lovelace"), ("LOC", "London"))``.

    Type words are the template's (``verbalizer[PER]`` …), matched in any case; items that do not
    read as ``TYPE: text`` are skipped. The none word alone means no entities (a valid answer).
    """
    stripped = output.strip().strip(_QUOTES_AND_PUNCTUATION)
    none_word = normalize(verbalizer.get(NONE_KEY, "None")).strip()
    if normalize(stripped) == none_word:
        return ParsedEntities((), True)
    types = {normalize(verbalizer.get(kind, kind)).strip(): kind for kind in ENTITY_TYPES}
    entities: list[tuple[str, str]] = []
    for item in _ITEM_SEPARATOR.split(output.strip()):
        parts = _TYPE_SEPARATOR.split(item.strip(), maxsplit=1)
        if len(parts) != 2:
            continue
        kind = types.get(normalize(parts[0]).strip(_QUOTES_AND_PUNCTUATION))
        text = " ".join(parts[1].split())  # as written: its edge marks may be the sentence's
        if kind is not None and text.strip(_QUOTES_AND_PUNCTUATION):
            entities.append((kind, text))
    return ParsedEntities(tuple(entities), bool(entities))


def squash(text: str) -> str:
    """Comparison form of an entity's text: normalised, without any whitespace."""
    return "".join(normalize(text).split())


_EDGE_MARKS = "".join(
    sorted({char for mark in _QUOTES_AND_PUNCTUATION for char in normalize(mark) if mark.strip()})
)
""":data:`_QUOTES_AND_PUNCTUATION` as :func:`squash` writes them (NFKC: ``，`` is ``,``)."""
_EDGE_CUTS = 3
"""Edge marks taken off one by one before all of a side's are (a run of 40 marks is not tried
40 × 40 ways)."""


def edge_cuts(target: str) -> list[str]:
    """``target`` (squashed) and its forms with edge marks taken off, fewest marks first; the
    last is the text without any edge mark. One made only of marks has no other form."""
    left = len(target) - len(target.lstrip(_EDGE_MARKS))
    if left == len(target):
        return [target]
    right = len(target) - len(target.rstrip(_EDGE_MARKS))
    lefts = sorted({*range(min(left, _EDGE_CUTS) + 1), left})
    rights = sorted({*range(min(right, _EDGE_CUTS) + 1), right})
    cuts = sorted(((i, j) for i in lefts for j in rights), key=lambda cut: (sum(cut), cut))
    return list(dict.fromkeys(target[i : len(target) - j] for i, j in cuts))


def located(text: str, squashed: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The form of an entity's ``text`` looked for in the sentence (whose tokens are
    ``squashed``), with the token spans where it occurs: the text as written when it occurs
    there (``U.S.``, ``Apple Inc.``, ``" London "``), else the first of :func:`edge_cuts` that
    does (``"London".`` is ``London``), else the text without its edge marks and no span (an
    entity the sentence does not hold). Where it is found, :func:`trimmed_span` leaves out
    quote tokens of their own at its edges: they place the entity (``" London "``, the second
    London of the sentence), they are not part of it. Found once for the alignment and the
    comparison alike."""
    forms = edge_cuts(squash(text))
    for form in forms:
        spans = _occurrences(squashed, form)
        if spans:
            return form, spans
    return forms[-1], []


BRACKETS = ("()", "[]", "{}", "（）", "【】")
"""Bracket pairs (as :func:`squash` writes them) that an entity may close itself."""


def _foreign_token(squashed: Sequence[str], start: int, end: int, at: int) -> bool:
    """Whether token ``at`` of the span is marks alone that are the sentence's: a quote of its
    own (``" London "``), or a bracket the span does not also open or close (``Queen ( band
    )`` closes its own)."""
    token = squashed[at]
    if not token or token.strip(_EDGE_MARKS):
        return False
    joined = "".join(squashed[start:end])
    pairs = [pair for pair in BRACKETS if set(token) & set(pair)]
    return not pairs or any(joined.count(pair[0]) != joined.count(pair[1]) for pair in pairs)


def trimmed_span(squashed: Sequence[str], start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` without the quote tokens of their own at its edges
    (:func:`_foreign_token`); a span that would lose every token keeps them all."""
    while end - start > 1:
        if _foreign_token(squashed, start, end, start):
            start += 1
        elif _foreign_token(squashed, start, end, end - 1):
            end -= 1
        else:
            break
    return start, end


def gold_entity_spans(
    spans: Sequence[tuple[str, int, int]], tokens: Sequence[str]
) -> list[tuple[str, int, int]]:
    """Gold ``(type, start, end)`` spans read as answers are (:func:`trimmed_span`): the gold
    ``'' Il Foglio ''`` is ``Il Foglio``, as ``'' Il Foglio ''``, ``Il Foglio`` and ``"Il
    Foglio"`` in an answer are; an answer cannot tell an entity's quotes from the sentence's,
    so neither side keeps them."""
    squashed = [squash(token) for token in tokens]
    return [(kind, *trimmed_span(squashed, start, end)) for kind, start, end in spans]


def compared_entities(
    entities: Sequence[tuple[str, str]], tokens: Sequence[str]
) -> list[tuple[str, str]]:
    """``(type, text)`` pairs as they are compared with the gold ones (exact-span F1, a
    record's ``correct``): each text's :func:`located`, and where it occurs, the text of
    its first occurrence's :func:`trimmed_span`, as the alignment takes it."""
    squashed = [squash(token) for token in tokens]
    found = []
    for kind, text in entities:
        form, occurrences = located(text, squashed)
        if occurrences:
            start, end = trimmed_span(squashed, *occurrences[0])
            form = "".join(squashed[start:end])
        found.append((kind, form))
    return found


def align_entities(
    entities: Sequence[tuple[str, str]], tokens: Sequence[str]
) -> list[tuple[str, int, int]]:
    """Map ``(type, text)`` pairs onto token spans ``(type, start, end)`` of the sentence.

    Texts are compared without whitespace (so Chinese joined with "" and English joined with " "
    both match) and case-folded, as written first (:func:`located`). Each entity takes its
    first occurrence that starts after the previous entity's span, else its first free
    occurrence anywhere; an entity that does not occur in the sentence, or only overlapping a
    span already taken, cannot be tagged and is dropped: it is *unaligned*, a false positive of
    the headline F1 (:func:`mslt_it.evaluation.scoring.ner_statistics`) and of the exact
    span-set F1.
    """
    squashed = [squash(token) for token in tokens]
    taken = [False] * len(tokens)
    spans: list[tuple[str, int, int]] = []
    cursor = 0
    for kind, text in entities:
        target, candidates = located(text, squashed)
        if not target:
            continue
        free = [(s, e) for s, e in candidates if not any(taken[s:e])]
        after = [(s, e) for s, e in free if s >= cursor]
        chosen = (after or free or [None])[0]
        if chosen is None:
            continue
        cursor = chosen[1]
        start, end = trimmed_span(squashed, *chosen)  # its own quote tokens place it only
        taken[start:end] = [True] * (end - start)
        spans.append((kind, start, end))
    return sorted(spans, key=lambda span: span[1])


def _occurrences(squashed: Sequence[str], target: str) -> list[tuple[int, int]]:
    """Token spans whose concatenated (squashed) text equals ``target``."""
    found = []
    for start in range(len(squashed)):
        if not squashed[start] or not target.startswith(squashed[start]):
            continue
        joined = ""
        for end in range(start, len(squashed)):
            joined += squashed[end]
            if joined == target:
                found.append((start, end + 1))
                break
            if not target.startswith(joined):
                break
    return found


def spans_to_bio(spans: Sequence[tuple[str, int, int]], length: int) -> list[str]:
    """BIO tag names for a sentence of ``length`` tokens from non-overlapping spans."""
    tags = ["O"] * length
    for kind, start, end in spans:
        tags[start] = f"B-{kind}"
        for i in range(start + 1, end):
            tags[i] = f"I-{kind}"
    return tags
