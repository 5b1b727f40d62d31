"""A model's free-text answer read as one of a template's label words, never crashing.

Models chatter: ``"The answer is: Entailment."``, ``'"ja"'``, ``"答案是矛盾。"``. An answer is read
by finding the template's label words in it (any case, Unicode-normalised, whole words where the
script separates words; see :func:`find_labels` for Chinese, Japanese and Korean). Exactly one
distinct label found gives that label; none or several give ``None``, an *invalid* answer that
is counted and scored wrong.

Below evaluation: a prompt template checks, when it loads, that each of its answers reads back
as its own label here, as a model's answer will be read.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache

# Scripts written without spaces between words (plus Hangul): no word boundary is needed between
# their letters and a label word, except where _starts_word and _ends_word ask for one (short Han
# and kana words, Hangul words).
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
_HAN_RANGES = (
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x2FFFF),  # CJK extensions B-F
)
_HAN_KANA_RANGES = (
    (0x3005, 0x3007),  # iteration and closing marks, ideographic zero
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    *_HAN_RANGES,
)
_HANGUL_RANGES = (
    (0x1100, 0x11FF),  # Hangul jamo
    (0x3130, 0x318F),  # compatibility jamo
    (0xA960, 0xA97F),  # jamo extended A
    (0xAC00, 0xD7FF),  # syllables, jamo extended B
)
ANSWER_LEAD = frozenset("是为為选選择擇は")
"""Characters after which a short Chinese or Japanese label word still begins a word: the
copula and "choose" (答案是是, 答案为是, 我认为是, 选择否) and Japanese ``wa`` (答えははいです).
The copula before its own label word stays two labels, as before (``是否``, "whether")."""
HANGUL_ENDINGS = ("입니다", "입니까", "이다", "이에요", "이요", "예요", "요")
"""Endings of the copula a Korean label word may carry (``예입니다``, ``예요``, ``아니요입니다``);
another syllable after it makes another word (``예를 들어``, "for example")."""
DOTTED_I = "i\u0307"
"""What case folding makes of Turkish ``İ`` (``i`` and a combining dot above), read as ``i``."""


def folded_answer(text: str) -> str:
    """An answer as it is compared with its gold: whitespace runs collapsed, case folded
    (scoring an open answer, the report's check of a prediction's ``correct``, and a task
    definition's labels, which must differ that way)."""
    return " ".join(text.split()).casefold()


def normalize(text: str) -> str:
    """NFKC and case folding, so ``ＹＥＳ``, ``Yes`` and ``yes`` compare equal; Turkish ``İ``
    folds to ``i`` and a dot above (:data:`DOTTED_I`), which is read as ``i``, or ``BELKİ`` would
    not be ``belki``."""
    return unicodedata.normalize("NFKC", text).casefold().replace(DOTTED_I, "i")


def _in_ranges(char: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in ranges)


def _is_continuous(char: str) -> bool:
    return _in_ranges(char, _CONTINUOUS_RANGES)


def _is_han_kana_letter(char: str) -> bool:
    return _is_word_char(char) and _in_ranges(char, _HAN_KANA_RANGES)


def _is_hangul_letter(char: str) -> bool:
    return _is_word_char(char) and _in_ranges(char, _HANGUL_RANGES)


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


def _is_short_han_kana(word: str) -> bool:
    """A Han or kana label word short enough for other words to hold it: one character (``是``
    in ``但是``, ``否`` in ``是否``), or two with a kana (``はい`` in ``てはいけない``). A longer
    word (``いいえ``) or a compound of Han characters (``矛盾``) is rarely part of another word
    and is written straight after the copula (``答案是矛盾``), so it may touch letters."""
    if not _is_han_kana_letter(word[0]):
        return False
    return len(word) == 1 or (len(word) == 2 and not all(_in_ranges(c, _HAN_RANGES) for c in word))


def _starts_word(text: str, start: int, word: str) -> bool:
    """Whether ``word`` found at ``start`` begins a word (see :func:`find_labels`)."""
    if start == 0:
        return True
    before = text[start - 1]
    if _is_hangul_letter(word[0]):
        return not _is_hangul_letter(before)
    if _is_short_han_kana(word):  # after a word that announces an answer: 答案为是, 答えははい
        return not _is_han_kana_letter(before) or before in ANSWER_LEAD
    return _boundary_ok(text, start - 1, word[0])


def _ends_word(text: str, end: int, word: str) -> bool:
    """Whether ``word`` found ending at ``end`` ends a word (see :func:`find_labels`)."""
    if end >= len(text):
        return True
    if _is_hangul_letter(word[-1]):  # an ending of the copula may follow: 예입니다, 예요
        return not _is_hangul_letter(text[end]) or text.startswith(HANGUL_ENDINGS, end)
    return _boundary_ok(text, end, word[-1])


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
    last = ""  # the last part kept, unless it was paired: as normalize()'s ``str.replace``
    for index, char in enumerate(text):
        for part in char.casefold():
            if last + part == DOTTED_I:
                last = ""
                continue
            folded.append(part)
            origin.append(index)
            last = part
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

    Chinese and Japanese write no spaces, so a short Han or kana label word (one character, or
    two with a kana: ``是``, ``否``, ``はい``) counts only at a word start: the character before
    it is no Han, Hiragana or Katakana letter (start of text, punctuation, a space, Latin, a
    digit), or one of :data:`ANSWER_LEAD` (``答案为是``, ``答えははいです``). Otherwise
    the copula in ``答案是：否`` would be a second answer, ``意思是不同的`` ("the meanings are
    different") would be ``是``, and ``言ってはいけない`` would hold ``はい``.
    ``是的``, ``是。`` and ``答案：否`` still read; a negation right before the word stands for a
    word start, so ``不是`` stays :data:`NEGATED`. Korean writes spaces between words but
    attaches particles and endings, so a Hangul label word must stand at a word start (no
    Hangul letter before it) and end there or with a copula's ending (:data:`HANGUL_ENDINGS`:
    ``예``, ``예.``, ``예입니다``, ``예, 맞습니다``; not ``아니예요``, ``예를``).
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
            negated = _is_continuous(word[0]) and text.endswith(NEGATIONS, 0, start)
            if (
                free
                and (negated or _starts_word(text, start, word))
                and _ends_word(text, end, word)
                and (not case_exact or original[origin[start]] == letter)
            ):
                taken[start:end] = [True] * len(word)
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
