"""Sampling an instruction corpus: what real corpora need and benchmark data did not.

Bactrian-X, Aya or a user's chats hold exact duplicates (within a language and across them, where
a translation was left untranslated), empty answers, and rows in another script than the language
they claim. :func:`render_corpus` samples each source language in a seeded random order and
takes rows until the language's quota is met, leaving out, and counting per language:

- **empty**: an answer that is empty or only whitespace;
- **duplicates**: a (prompt, answer) pair already taken, in this language or an earlier one
  (whitespace-normalised, so the same text with other line breaks is still the same);
- **script mismatch**: rows whose letters are mostly not in the language's script (Latin code in
  a Chinese answer does not count against it unless it is most of the text); counted always,
  left out with ``script_mismatch: drop``.

The counts go into the manifest's ``cleaning`` entry; over-long examples are counted in tokens by
the builder's token counter (``tokenizer`` + ``max_length``) as for any dataset.
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from functools import cache
from typing import Any

from mslt_it.config import DataConfig
from mslt_it.errors import MsltError
from mslt_it.progress import progress_bar
from mslt_it.prompts import PromptTemplate
from mslt_it.tasks.sources import SplitRows
from mslt_it.tokens import TokenCounter

# Unicode character-name prefixes of each ISO 15924 script the registry uses.
SCRIPT_NAMES: dict[str, tuple[str, ...]] = {
    "Latn": ("LATIN",),
    "Cyrl": ("CYRILLIC",),
    "Grek": ("GREEK",),
    "Armn": ("ARMENIAN",),
    "Hebr": ("HEBREW",),
    "Arab": ("ARABIC",),
    "Thaa": ("THAANA",),
    "Syrc": ("SYRIAC",),
    "Deva": ("DEVANAGARI",),
    "Beng": ("BENGALI",),
    "Guru": ("GURMUKHI",),
    "Gujr": ("GUJARATI",),
    "Orya": ("ORIYA",),
    "Taml": ("TAMIL",),
    "Telu": ("TELUGU",),
    "Knda": ("KANNADA",),
    "Mlym": ("MALAYALAM",),
    "Sinh": ("SINHALA",),
    "Thai": ("THAI",),
    "Laoo": ("LAO",),
    "Tibt": ("TIBETAN",),
    "Mymr": ("MYANMAR",),
    "Geor": ("GEORGIAN",),
    "Hang": ("HANGUL", "CJK"),
    "Kore": ("HANGUL", "CJK"),
    "Ethi": ("ETHIOPIC",),
    "Cher": ("CHEROKEE",),
    "Cans": ("CANADIAN",),
    "Khmr": ("KHMER",),
    "Mong": ("MONGOLIAN",),
    "Hani": ("CJK",),
    "Jpan": ("CJK", "HIRAGANA", "KATAKANA"),
}
MISMATCH_BELOW = 0.5
"""A row is in another script when less than this share of its letters is in its language's."""


LETTER = re.compile(r"[^\W\d_]")
ASCII_LETTER = re.compile(r"[A-Za-z]")
"""What :data:`LETTER` matches in an ASCII text."""
SCANNED = ((0, 0x10000), (0x20000, 0x2A6E0))
"""Code points scanned for a script's letters: the BMP and CJK extension B."""


@cache
def letter_ranges() -> dict[str, list[tuple[int, int]]]:
    """Runs of consecutive letters by the first word of their Unicode name, in one scan of the
    code points (about 60 ms, once per process)."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    for low, high in SCANNED:
        for code in range(low, high):
            char = chr(code)
            if not char.isalpha():
                continue
            runs = ranges.setdefault(unicodedata.name(char, "").split(" ", 1)[0], [])
            if runs and runs[-1][1] == code - 1:
                runs[-1] = (runs[-1][0], code)
            else:
                runs.append((code, code))
    return ranges


@cache
def script_letters(script: str) -> re.Pattern[str] | None:
    """A character class of every letter of ``script``, so a row is checked by two regular-
    expression scans instead of a Python loop over its characters."""
    names = SCRIPT_NAMES.get(script)
    if names is None:
        return None
    table = letter_ranges()
    runs = [run for name in names for run in table.get(name, [])]
    body = "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in runs)
    return re.compile(f"[{body}]")


@cache
def ascii_share(script: str) -> float | None:
    """The share of any ASCII text's letters in ``script``: 1.0 when every ASCII letter is one of
    the script's (Latin), 0.0 when none is (every other script); None (scan) for a mix."""
    pattern = script_letters(script)
    if pattern is None:
        return None
    inside = len(pattern.findall(string.ascii_letters))
    return {len(string.ascii_letters): 1.0, 0: 0.0}.get(inside)


def script_share(text: str, script: str) -> float | None:
    """The share of ``text``'s letters written in ``script``; None when it has no letters or the
    script is one mslt-it cannot tell.

    An ASCII text (most rows of an English corpus, many of other Latin-script ones) needs no
    scan: its letters are all Latin, so the share is all or nothing (:func:`ascii_share`), the
    number the scans would give at a tenth of their cost.
    """
    pattern = script_letters(script)
    if pattern is None:
        return None
    if text.isascii() and (share := ascii_share(script)) is not None:
        return share if ASCII_LETTER.search(text) else None
    letters = len(LETTER.findall(text))
    if not letters:
        return None
    return len(pattern.findall(text)) / letters


def dedup_key(prompt: str, answer: str, history: list[dict[str, str]]) -> bytes:
    """A digest of the whole exchange with whitespace runs collapsed."""
    text = "\x1f".join([*(m["content"] for m in history), prompt, answer])
    return hashlib.blake2b(" ".join(text.split()).encode(), digest_size=16).digest()


def render_corpus(
    config: DataConfig,
    template: PromptTemplate,
    splits: dict[str, SplitRows],
    quotas: dict[str, int],
    counter: TokenCounter | None = None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
    """Sample, clean and render every source language; the examples and per-language counts."""
    from mslt_it.data import to_chat_columns

    seen: set[bytes] = set()
    examples: list[dict[str, Any]] = []
    cleaning: dict[str, dict[str, int]] = {}
    with progress_bar() as progress:
        bar = progress.add_task("rendering", total=sum(quotas.values()))
        for lang, split in splits.items():
            progress.update(bar, description=f"rendering {lang}")
            taken, counts = take_language(config, template, lang, split, quotas[lang], seen)
            rendered = [
                {
                    "id": example.pop("_id"),
                    "task": template.task.name,
                    "lang": lang,
                    "template_id": template.id,
                    "label": None,
                    **to_chat_columns(example["prompt"], example["answer"], config,
                                      example["history"]),
                }
                for example in taken
            ]  # fmt: skip
            if counter is not None:
                counter.add(lang, rendered)
            examples += rendered
            cleaning[lang] = counts
            progress.advance(bar, len(rendered))
    return examples, cleaning


def take_language(
    config: DataConfig,
    template: PromptTemplate,
    lang: str,
    split: SplitRows,
    quota: int,
    seen: set[bytes],
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Rows of one language in seeded random order until ``quota`` clean ones are taken."""
    from mslt_it.data import language_rng
    from mslt_it.languages import get_language

    script = get_language(lang).script
    order = language_rng(config.seed, lang).permutation(len(split))
    counts = {"examined": 0, "kept": 0, "empty": 0, "duplicates": 0, "script_mismatch": 0}
    turns = template.task.extra["turns"] if template.task.extra["conversation"] else None
    verbalizer = template.verbalizer(lang)  # once, not a copy per row
    taken: list[dict[str, Any]] = []
    step = max(64, quota + quota // 4)
    for start in range(0, len(order), step):
        for row in split.rows(order[start : start + step].tolist()):
            if len(taken) == quota:
                break
            counts["examined"] += 1
            rendered = template.render(row, lang, verbalizer)
            history = [] if turns is None else [  # one exchange per row: no history
                {"role": m["role"], "content": m["content"]} for m in turns(row).history
            ]  # fmt: skip
            if not rendered.answer.strip():
                counts["empty"] += 1
                continue
            share = script_share(rendered.instruction + " " + rendered.answer, script)
            if share is not None and share < MISMATCH_BELOW:
                counts["script_mismatch"] += 1
                if config.script_mismatch == "drop":
                    continue
            key = dedup_key(rendered.instruction, rendered.answer, history)
            if key in seen:
                counts["duplicates"] += 1
                continue
            seen.add(key)
            taken.append(
                {"_id": row["id"], "prompt": rendered.instruction, "answer": rendered.answer,
                 "history": history}
            )  # fmt: skip
        if len(taken) == quota:
            break
    counts["kept"] = len(taken)
    if len(taken) < quota and not config.take_available:
        left_out = f"{counts['duplicates']} duplicates, {counts['empty']} empty answers"
        if config.script_mismatch == "drop":
            left_out += f", {counts['script_mismatch']} in another script"
        raise MsltError(
            f"budget: {lang} has {len(taken)} usable rows in the {config.split} split after "
            f"cleaning ({left_out}) but {quota} were asked for; lower the budget or pass "
            "--take-available"
        )
    return taken, counts
