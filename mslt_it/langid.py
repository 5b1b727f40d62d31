"""Which language is a model's answer in? Real languages, the synthetic world's, or unknown.

Instruction-tuned models often answer in the wrong language (English to a German question, a mix
of two), which accuracy alone hides. :class:`AnswerIdentifier` names the language of one answer:

1. an empty answer is ``empty``; one with no letters at all (a number, punctuation) is
   ``no-letters``: it is in no language, so it neither counts for nor against one;
2. an answer that is one of the template's own label words is in the language the template
   uses that word for (``known_words``): a single word is too short for any identifier, but
   the template says what it is;
3. letters of two scripts in one answer (each at least :data:`MIXED_SHARE` of them) is
   ``mixed``;
4. on the synthetic world (``world=True``) answers are made of the invented lexicons' words
   (:mod:`mslt_it.tasks.synthetic`): each word votes for the languages whose lexicon has it; a
   language must cover :data:`WORLD_MAJORITY` of the recognised words, else the answer is
   ``mixed``; words shared by several languages (cognates) are counted for each, and a tie that
   does not include the expected language is ``unknown``;
5. real text goes to `py3langid <https://github.com/adbar/py3langid>`_ (its naive Bayes model,
   139 languages, ships in the wheel: no download at run time). Below
   :data:`MIN_CONFIDENCE` (its length-calibrated probability) the answer is ``unknown``;
   sentences that are each confidently in a different language make it ``mixed``.

Nothing is ever guessed: a language that neither the identifier nor the lexicons cover
(:meth:`AnswerIdentifier.covers`) gets no fidelity number at all.

Why py3langid rather than lingua-language-detector (measured on this project's machine, 15
sentences in 15 XNLI languages, Python 3.11): both identify all 15; py3langid's wheel is 4.6 MB,
loads its model in 1.3 s and takes 0.14 ms a sentence (134 MB resident); lingua's is 96 MB,
takes 35 s to preload all its models and 3.7 ms a sentence (1.3 GB resident). lingua is better
on single words, which the template's label words (step 2) cover here.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.metadata import version
from typing import Any

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from mslt_it.languages import all_languages
from mslt_it.tasks.synthetic import lexicon

EMPTY = "empty"
MIXED = "mixed"
UNKNOWN = "unknown"
NO_LETTERS = "no-letters"
CATEGORIES = (EMPTY, MIXED, UNKNOWN, NO_LETTERS)
"""What an answer can be besides a language code."""

MIN_CONFIDENCE = 0.5
"""py3langid's calibrated probability below which its best language is not taken."""
MIXED_SHARE = 0.2
"""A second script with at least this share of an answer's letters makes it mixed."""
WORLD_MAJORITY = 0.8
"""Share of recognised world words one language must cover for the answer to be in it."""
SEGMENT_LETTERS = 12
"""Sentences shorter than this (in letters) are not identified on their own."""

IDENTIFIED_CHARS = 10_000
"""An answer's language is read from its first characters, which show it (the default answer
budgets are 16 to 160 tokens): read letter by letter, an answer of megabytes in a hand-made
predictions file took minutes."""

UNSPACED = frozenset({"CJK", "THAI", "LAO", "KHMER", "MYANMAR"})
"""Scripts (as :func:`script_of` names them) written without spaces between words."""
WIDTH_FORMS = ("HALFWIDTH ", "FULLWIDTH ")
"""Name prefixes of a letter's narrow or wide form: ``HALFWIDTH KATAKANA LETTER A`` is katakana,
``FULLWIDTH LATIN CAPITAL LETTER A`` Latin."""
LETTER_ALIASES = {"KATAKANA-HIRAGANA": "KATAKANA", "IDEOGRAPHIC": "CJK"}
"""Letters of a script whose names start otherwise: the long-vowel mark ``ー`` of ``コーヒー``
(``KATAKANA-HIRAGANA PROLONGED SOUND MARK``), the iteration mark ``々`` of ``人々``."""
SCRIPT_ALIASES = {"HIRAGANA": "CJK", "KATAKANA": "CJK"}
"""Scripts one language writes together, counted as one when an answer is checked for mixing."""
SENTENCE_END = re.compile(r"(?<=[.!?。！？।۔])\s+|\n+")
EDGE_PUNCTUATION = " \t\n.,;:!?\"'()[]{}«»“”‘’。，、！？।۔"


def letter_script(char: str) -> str | None:
    """The script of a letter as Unicode names it (``LATIN``, ``CYRILLIC``, ``KATAKANA``,
    ``CJK``…), its narrow or wide form counted as the letter's own (:data:`WIDTH_FORMS`).

    The one classification of letters by script: answers here, a corpus row's script in
    :mod:`mslt_it.corpus` (which tells kana from Chinese characters, so it needs the finer
    names). Half-width katakana was another script than Japanese there and CJK here."""
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    for form in WIDTH_FORMS:
        name = name.removeprefix(form)
    first = name.split(" ", 1)[0]
    return LETTER_ALIASES.get(first, first) or None


def script_of(char: str) -> str | None:
    """The script of a letter (:func:`letter_script`) with Japanese's kana counted as ``CJK``,
    so a Japanese answer is not mixed."""
    script = letter_script(char)
    return SCRIPT_ALIASES.get(script, script) if script else None


def scripts(text: str) -> Counter[str]:
    """How many letters of each script ``text`` has."""
    return Counter(script for script in map(script_of, text) if script)


def normalise(text: str) -> str:
    """An answer as compared with label words: trimmed, case folded, whitespace collapsed."""
    return " ".join(text.split()).strip(EDGE_PUNCTUATION).casefold()


@cache
def _identifier() -> Any:
    """py3langid's shipped model with calibrated probabilities, loaded once."""
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def langid_languages() -> frozenset[str]:
    """The language codes py3langid can answer."""
    return frozenset(_identifier().labels) - {"zxx", "und"}


@cache
def world_index() -> dict[str, frozenset[str]]:
    """Every word of the synthetic world's lexicons -> the languages that have it."""
    index: dict[str, set[str]] = {}
    for code in all_languages():
        lex = lexicon(code)
        words = [*lex.words, *lex.operations, *lex.persons, *lex.locations, *lex.organisations]
        words += [lex.negation, lex.hedge, lex.also, lex.contrast, lex.title]
        words += [lex.location_cue, lex.company]
        for word in words:
            index.setdefault(word.casefold(), set()).add(code)
    return {word: frozenset(langs) for word, langs in index.items()}


@cache
def _longest_world_word() -> int:
    return max(map(len, world_index()))


def world_words(text: str) -> list[frozenset[str]]:
    """The languages of each word of ``text`` (empty for a word no lexicon has).

    Space-separated words are looked up whole; a run of letters of a script written without
    spaces (:data:`UNSPACED`) is segmented greedily, longest known word first.
    """
    index = world_index()
    longest = _longest_world_word()
    found: list[frozenset[str]] = []
    for chunk in text.split():
        chunk = chunk.strip(EDGE_PUNCTUATION).casefold()
        if not chunk:
            continue
        letters = scripts(chunk)
        if chunk in index or not letters or letters.most_common(1)[0][0] not in UNSPACED:
            found.append(index.get(chunk, frozenset()))
            continue
        start = 0
        while start < len(chunk):
            for end in range(min(len(chunk), start + longest), start, -1):
                if chunk[start:end] in index:
                    found.append(index[chunk[start:end]])
                    start = end
                    break
            else:
                found.append(frozenset())
                start += 1
    return found


class AnswerIdentifier:
    """Names the language of answers, for one template and one kind of data.

    ``known_words``: label word (as :func:`normalise` writes it) -> the languages the template
    uses it in. ``world``: the rows come from the synthetic world, whose languages are read
    through their lexicons before any real identifier is asked.
    """

    def __init__(self, world: bool = False, known_words: Mapping[str, Iterable[str]] = ()) -> None:
        self.world = world
        self.known_words = {
            normalise(word): frozenset(langs) for word, langs in dict(known_words).items()
        }

    def covers(self, lang: str) -> bool:
        """Whether an answer in ``lang`` can be recognised as such at all."""
        if self.world and lang in all_languages():
            return True
        return lang in langid_languages() or any(lang in v for v in self.known_words.values())

    def identify(self, text: str, expected: str) -> str:
        """A language code, or one of :data:`CATEGORIES`.

        ``expected`` only settles a tie between languages that share the very same words (a
        label word two languages use, a cognate): the answer is then in the expected language
        too, so calling it that is no guess.
        """
        if not text.strip():
            return EMPTY
        known = self.known_words.get(normalise(text))
        text = text[:IDENTIFIED_CHARS]
        letters = scripts(text)
        if not letters:
            return NO_LETTERS
        if known:
            return _pick(known, expected)
        total = sum(letters.values())
        if sum(count >= MIXED_SHARE * total for count in letters.values()) > 1:
            return MIXED
        if self.world:
            found = self._world(text, expected)
            if found is not None:
                return found
        return self._real(text)

    def _world(self, text: str, expected: str) -> str | None:
        """The world language of ``text``, or ``None`` when most of it is no world word."""
        words = world_words(text)
        known = [langs for langs in words if langs]
        if not words or len(known) < 0.5 * len(words):
            return None
        votes = Counter(lang for langs in known for lang in langs)
        best = max(votes.values())
        if best < WORLD_MAJORITY * len(known):
            return MIXED
        return _pick(frozenset(lang for lang, n in votes.items() if n == best), expected)

    def _real(self, text: str) -> str:
        """py3langid's language of ``text``: ``unknown`` when unsure, ``mixed`` when confident
        sentences disagree."""
        identifier = _identifier()
        segments = [s for s in SENTENCE_END.split(text) if sum(scripts(s).values())]
        confident = set()
        for segment in segments if len(segments) > 1 else ():
            if sum(scripts(segment).values()) >= SEGMENT_LETTERS:
                lang, confidence = identifier.classify(segment)
                if confidence >= MIN_CONFIDENCE:
                    confident.add(lang)
        if len(confident) > 1:
            return MIXED
        lang, confidence = identifier.classify(text)
        if confidence < MIN_CONFIDENCE or lang in ("zxx", "und"):
            return UNKNOWN
        return str(lang)


def _pick(langs: frozenset[str], expected: str) -> str:
    """One language from a tie: the expected one if it is among them, the only one, or
    ``unknown``."""
    if expected in langs:
        return expected
    if len(langs) == 1:
        return next(iter(langs))
    return UNKNOWN


def package_version() -> str:
    """py3langid's version, for the results' record of what identified the answers."""
    return f"py3langid {version('py3langid')}"
