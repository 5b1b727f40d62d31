"""Turn a model's free-text answer into a label or a set of entity spans, never crashing.

Models chatter: ``"The answer is: Entailment."``, ``'"ja"'``, ``"答案是矛盾。"``. A classification
answer is read by finding the template's label words in it (any case, Unicode-normalised, whole
words where the script separates words). Exactly one distinct label found gives that label;
none or several give ``None``, an *invalid* answer that is counted and scored wrong.

A WikiAnn answer (``PER: Ada Lovelace $$ LOC: London`` or the none word) becomes ``(type, text)``
pairs, which :func:`align_entities` maps back onto the sentence's tokens so that the XTREME metric
(seqeval over BIO tags) can score them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from mslt_it.tasks.ner import ENTITY_TYPES, NONE_KEY

# Scripts written without spaces between words (plus Hangul, whose particles attach to words):
# a label word may touch other letters there, so no word boundary is required.
_CONTINUOUS_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x2FFFF),  # CJK extensions B-F
)
_QUOTES_AND_PUNCTUATION = " \t\r\n\"'`“”‘’«»„‚「」『』《》〈〉()[]{}<>*_.,;:!?。、，；：！？·-–—"


def normalize(text: str) -> str:
    """NFKC and case folding, so ``ＹＥＳ``, ``Yes`` and ``yes`` compare equal."""
    return unicodedata.normalize("NFKC", text).casefold()


def _is_continuous(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CONTINUOUS_RANGES)


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_" or unicodedata.category(char).startswith("M")


def _boundary_ok(text: str, index: int, word_edge: str) -> bool:
    """True when the character at ``index`` (outside the match) does not glue onto the word."""
    if index < 0 or index >= len(text):
        return True
    neighbour = text[index]
    if not (_is_word_char(neighbour) and _is_word_char(word_edge)):
        return True
    return _is_continuous(neighbour) or _is_continuous(word_edge)


NEGATIONS = ("不", "没", "沒", "非", "無", "无", "未", "別", "别", "ไม่")
"""Words that negate the word they are written against in a script without spaces: ``不是``
("is not") holds the label word ``是`` ("yes"), and was read as it. A label word right after
one is no answer (invalid), not the opposite label: the template's words are what a model is
asked for. (Where words are spaced, ``not entailment`` is a known limit: see the docs.)"""
NEGATED = "\x00negated"
"""Found in place of a label whose word a :data:`NEGATIONS` word negates."""


def loose(text: str) -> str:
    """:func:`normalize`, then without the marks a script may write or leave out (accents,
    Arabic vowel marks and tatweel, Devanagari's nasal marks, an emoji keycap), Turkish's
    dotless ı as i, and every decimal digit as ASCII: ``ΟΧΙ`` is ``όχι``, ``HAYIR`` is
    ``hayır``, ``نَعَمْ`` is ``نعم`` and ``١`` is ``1``. Tried only when the stricter reading finds
    no label, and only where it keeps a template's words apart."""
    folded = unicodedata.normalize("NFD", normalize(text)).replace("ı", "i")
    kept = []
    for char in folded:
        if unicodedata.category(char) in ("Mn", "Me", "Cf") or char == "\u0640":
            continue
        digit = unicodedata.decimal(char, None)
        kept.append(str(digit) if digit is not None else char)
    return unicodedata.normalize("NFC", "".join(kept))


def _folded(output: str) -> tuple[str, list[int]]:
    """``normalize(output)`` and, for each of its characters, where it came from in the NFKC
    text (case folding may change the length: ``ß`` is ``ss``)."""
    text = unicodedata.normalize("NFKC", output)
    folded, origin = [], []
    for index, char in enumerate(text):
        for part in char.casefold():
            folded.append(part)
            origin.append(index)
    return "".join(folded), origin


def find_labels(
    output: str,
    verbalizer: Mapping[str, str],
    fold: Callable[[str], str] = normalize,
    exact_letters: bool = False,
) -> list[str]:
    """The distinct labels whose words occur in ``output``, in order of first appearance.

    Longer words are matched first and their characters used up, so a label word inside another
    (``paraphrase`` in ``not paraphrase``) is not counted twice. ``exact_letters``: a label word
    of one cased letter (Belebele's ``A``-``D``) matches in its own case only, so the article
    in "B, a dog" is no second answer. A label word negated in a script without spaces
    (``不是``) counts as :data:`NEGATED`.
    """
    if fold is normalize:
        text, origin = _folded(output)
        original = unicodedata.normalize("NFKC", output)
    else:
        text, origin, original = fold(output), [], ""
    taken = [False] * len(text)
    found: list[tuple[int, str]] = []
    words = sorted(
        ((word, fold(word).strip(), label) for label, word in verbalizer.items()),
        key=lambda item: -len(item[1]),
    )
    for given, word, label in words:
        if not word:
            continue
        letter = given.strip()
        case_exact = (
            exact_letters and origin and len(letter) == 1 and letter.lower() != letter.upper()
        )
        start = text.find(word)
        while start != -1:
            end = start + len(word)
            free = not any(taken[start:end])
            if (
                free
                and _boundary_ok(text, start - 1, word[0])
                and _boundary_ok(text, end, word[-1])
                and (not case_exact or original[origin[start]] == letter)
            ):
                taken[start:end] = [True] * len(word)
                negated = _is_continuous(word[0]) and text[:start].endswith(NEGATIONS)
                found.append((start, NEGATED if negated else label))
            start = text.find(word, start + 1)
    labels: list[str] = []
    for _, label in sorted(found):
        if label not in labels:
            labels.append(label)
    return labels


def parse_label(output: str, verbalizer: Mapping[str, str]) -> str | None:
    """The one label ``output`` names, or ``None`` (invalid) when it names none or several.

    Read three ways, each only when the one before finds no label: one-letter label words in
    their own case; every word in any case (:func:`normalize`); without optional marks
    (:func:`loose`, where the template's words stay distinct that way)."""
    readings: list[tuple[Callable[[str], str], bool]] = [(normalize, True), (normalize, False)]
    words = [loose(word).strip() for word in verbalizer.values()]
    if len(set(words)) == len(words):
        readings.append((loose, False))
    for fold, exact_letters in readings:
        labels = find_labels(output, verbalizer, fold, exact_letters)
        if labels:
            return labels[0] if len(labels) == 1 and labels[0] != NEGATED else None
    return None


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
        text = " ".join(parts[1].split()).strip(_QUOTES_AND_PUNCTUATION)
        if kind is not None and text:
            entities.append((kind, text))
    return ParsedEntities(tuple(entities), bool(entities))


def squash(text: str) -> str:
    """Comparison form of an entity's text: normalised, without any whitespace."""
    return "".join(normalize(text).split())


def align_entities(
    entities: Sequence[tuple[str, str]], tokens: Sequence[str]
) -> list[tuple[str, int, int]]:
    """Map ``(type, text)`` pairs onto token spans ``(type, start, end)`` of the sentence.

    Texts are compared without whitespace (so Chinese joined with "" and English joined with " "
    both match) and case-folded. Each entity takes its first occurrence that starts after the
    previous entity's span, else its first free occurrence anywhere; an entity that does not occur
    in the sentence, or only overlapping a span already taken, cannot be tagged and is dropped
    (it still counts against the exact span-set F1).
    """
    squashed = [squash(token) for token in tokens]
    taken = [False] * len(tokens)
    spans: list[tuple[str, int, int]] = []
    cursor = 0
    for kind, text in entities:
        target = squash(text)
        if not target:
            continue
        candidates = _occurrences(squashed, target)
        free = [(s, e) for s, e in candidates if not any(taken[s:e])]
        after = [(s, e) for s, e in free if s >= cursor]
        chosen = (after or free or [None])[0]
        if chosen is None:
            continue
        start, end = chosen
        taken[start:end] = [True] * (end - start)
        spans.append((kind, start, end))
        cursor = end
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
