"""A model's free-text answer read as one of a template's label words, never crashing.

Models chatter: ``"The answer is: Entailment."``, ``'"ja"'``, ``"答案是矛盾。"``. An answer is read
by finding the template's label words in it (any case, Unicode-normalised, whole words where the
script separates words). Exactly one distinct label found gives that label; none or several
give ``None``, an *invalid* answer that is counted and scored wrong.

Below evaluation: a prompt template checks, when it loads, that each of its answers reads back
as its own label here, as a model's answer will be read.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache

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


def folded_answer(text: str) -> str:
    """An answer as it is compared with its gold: whitespace runs collapsed, case folded
    (scoring an open answer, the report's check of a prediction's ``correct``, and a task
    definition's labels, which must differ that way)."""
    return " ".join(text.split()).casefold()


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
    """:func:`normalize`, then without the marks a non-Latin script may write or leave out
    (Greek accents, which capitals drop; Arabic vowel marks and tatweel; Devanagari's nasal
    marks; an emoji keycap), Turkish's dotless ı as i, and every decimal digit as ASCII: ``ΟΧΙ``
    is ``όχι``, ``HAYIR`` is ``hayır``, ``نَعَمْ`` is ``نعم`` and ``١`` is ``1``. A mark on a Latin
    letter stays: it is part of the word (Vietnamese ``sai`` is not ``Sài``, Spanish ``si`` is
    not ``sí``). Tried only when the stricter reading finds no label, and only where it keeps a
    template's words apart."""
    folded = unicodedata.normalize("NFD", normalize(text)).replace("ı", "i")
    kept: list[str] = []
    latin = False  # whether the last base character was a Latin letter
    for char in folded:
        category = unicodedata.category(char)
        if char == "\u0640" or category == "Cf" or (category in ("Mn", "Me") and not latin):
            continue
        if category not in ("Mn", "Me"):
            latin = unicodedata.name(char, "").startswith("LATIN")
        digit = unicodedata.decimal(char, None)
        kept.append(str(digit) if digit is not None else char)
    return unicodedata.normalize("NFC", "".join(kept))


@lru_cache(maxsize=256)
def _loose_apart(words: tuple[str, ...]) -> bool:
    """Whether a template's words stay distinct read loosely (cached: a verbalizer per row)."""
    folded = [loose(word).strip() for word in words]
    return len(set(folded)) == len(folded)


def _has_cased_letter(words: Iterable[str]) -> bool:
    return any(len(w.strip()) == 1 and w.strip().lower() != w.strip().upper() for w in words)


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
    words = tuple(verbalizer.values())
    readings: list[tuple[Callable[[str], str], bool]] = [(normalize, False)]
    if _has_cased_letter(words):
        readings.insert(0, (normalize, True))
    if _loose_apart(words):
        readings.append((loose, False))
    for fold, exact_letters in readings:
        labels = find_labels(output, verbalizer, fold, exact_letters)
        if labels:
            return labels[0] if len(labels) == 1 and labels[0] != NEGATED else None
    return None
