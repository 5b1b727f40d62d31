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

A user's corpus file is read by :func:`read_json_lines` rather than by pyarrow alone: a corpus has
long rows (one answer can be megabytes, more than pyarrow's 1 MB block), is often cut short by a
failed download, or is exported as one JSON array; each is a one-line error naming the file and
the line, not pyarrow's "straddling object" or "Column changed from string to object".
:func:`open_corpus_split` opens a split with that reader (and checks a single table's language
column holds text) and is otherwise :func:`mslt_it.tasks.sources.open_split`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import string
from collections.abc import Iterator
from functools import cache, lru_cache
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from mslt_it.config import DataConfig
from mslt_it.errors import MsltError
from mslt_it.examples import has_own_system_message, language_rng, to_chat_columns
from mslt_it.files import MAX_DATA_BYTES, check_regular_file, opened_regular_file
from mslt_it.identity import file_state
from mslt_it.io import read_arrow_table, read_json_table
from mslt_it.jsonlines import LONGEST_LINE, bounded_lines, first_problem, json_block_size
from mslt_it.langid import letter_script
from mslt_it.languages import get_language
from mslt_it.paths import NAMED_DATA, check_data_value
from mslt_it.progress import progress_bar
from mslt_it.prompts import PromptTemplate
from mslt_it.tasks.base import Task
from mslt_it.tasks.instructions import earlier_turns
from mslt_it.tasks.sources import (
    SplitRows,
    check_split,
    file_split,
    local_path,
    open_split,
    read_hashed,
)
from mslt_it.terminal import STDERR
from mslt_it.tokens import TokenCounter

# Each ISO 15924 script the registry uses, as :func:`mslt_it.langid.letter_script` names its
# letters: one classification for a corpus row and a model's answer.
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
    """Runs of consecutive letters by their script (:func:`mslt_it.langid.letter_script`), in
    one scan of the code points (about 0.1 s, once per process)."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    for low, high in SCANNED:
        for code in range(low, high):
            script = letter_script(chr(code))
            if script is None:
                continue
            runs = ranges.setdefault(script, [])
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
    """A digest of the whole exchange, each text with its whitespace runs collapsed.

    Each text goes in after its length, so where one ends stays part of the key: joined by a
    separator, ``("Complete: the cat", "sat on the mat")`` and ``("Complete: the cat sat",
    "on the mat")`` were one exchange (``str.split`` counts ``"\\x1f"`` as whitespace).
    """
    digest = hashlib.blake2b(digest_size=16)
    for text in [*(m["content"] for m in history), prompt, answer]:
        data = " ".join(text.split()).encode()
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.digest()


def say_own_system_messages(own: int, built: int) -> None:
    """A conversation's own system message wins over ``--system-prompt``: said, as the
    manifest records the option as given. Where every conversation has its own, the option
    was put before none and the manifest (and every adapter trained on it, evaluated with
    it) claimed it used: refused."""
    if own == built:
        raise MsltError(
            "system_prompt: every conversation built begins with its own system message, which "
            "mslt-it keeps, so --system-prompt (a recipe's data.system_prompt) would be put "
            "before none; build without it, or remove the conversations' system messages"
        )
    STDERR.print(
        f"note: {own} of {built} conversations keep their own system message; --system-prompt "
        "is put before the others"
    )


def render_corpus(
    config: DataConfig,
    template: PromptTemplate,
    splits: dict[str, SplitRows],
    quotas: dict[str, int],
    counter: TokenCounter | None = None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
    """Sample, clean and render every source language; the examples and per-language counts."""
    seen: set[bytes] = set()
    examples: list[dict[str, Any]] = []
    cleaning: dict[str, dict[str, int]] = {}
    own_system = 0
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
            own_system += sum(1 for e in taken if has_own_system_message(e["history"]))
            progress.advance(bar, len(rendered))
    if config.system_prompt and own_system:
        say_own_system_messages(own_system, len(examples))
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
    script = get_language(lang).script
    order = language_rng(config.seed, lang).permutation(len(split))
    counts = {"examined": 0, "kept": 0, "empty": 0, "duplicates": 0, "script_mismatch": 0}
    verbalizer = template.verbalizer(lang)  # once, not a copy per row
    taken: list[dict[str, Any]] = []
    step = max(64, quota + quota // 4)
    for start in range(0, len(order), step):
        for row in split.rows(order[start : start + step].tolist()):
            if len(taken) == quota:
                break
            counts["examined"] += 1
            rendered = template.render(row, lang, verbalizer)
            history = earlier_turns(template.task, row)
            if not rendered.answer.strip() or not rendered.instruction.strip():
                counts["empty"] += 1  # a row with nothing to read or nothing to answer
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
            f"cleaning ({left_out}) but {quota} were asked for; lower the budget or allow "
            "taking what there is (--take-available / take_available: true)"
        )
    return taken, counts


# ------------------------------------------------------------------------ reading corpus files

MAX_CORPUS_BYTES = MAX_DATA_BYTES
"""Largest local corpus file read (4 GB): it is held in memory whole, as an Arrow table."""

SCAN_BYTES = 1 << 20
"""How much of a file's start is read to tell a JSON array."""


@contextlib.contextmanager
def _open_regular(path: Path, field: str) -> Iterator[IO[bytes]]:
    """``path`` opened for reading if it is a regular file within :data:`MAX_CORPUS_BYTES`
    (:func:`mslt_it.files.opened_regular_file`: a FIFO or a device named ``train.jsonl`` is a
    one-line error instead of a hang or an endless read); its size is the open file's."""
    with opened_regular_file(path, field) as descriptor:
        size = os.fstat(descriptor).st_size
        if size > MAX_CORPUS_BYTES:
            raise MsltError(
                f"{field}: {str(path)!r} is {size:,} bytes; a corpus file may be at most "
                f"{MAX_CORPUS_BYTES:,} bytes (split it into several, or one per language)"
            )
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            yield handle


def _scan(handle: IO[bytes]) -> tuple[int, int | None]:
    """The number of non-blank lines, and the first line that does not start with ``{`` (None
    if every one does), up to a line over :data:`LONGEST_LINE` (counted, not looked at:
    :func:`mslt_it.jsonlines.json_block_size` names it).

    pyarrow is never given such a line: it crashes the process on a file whose first line is
    ``null`` (pyarrow 26) and reads ``null`` after an object as a row of nulls.
    """
    lines = 0
    first_bad = None
    for number, line in bounded_lines(handle):
        if len(line) > LONGEST_LINE:
            lines += 1
            break
        head = line.lstrip()
        if number == 1:
            head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
        if not head:
            continue
        lines += 1
        if first_bad is None and head[:1] != b"{":
            first_bad = number
    return lines, first_bad


def _first_problem(path: Path, field: str) -> str | None:
    """:func:`mslt_it.jsonlines.first_problem` of the corpus file ``path``."""
    with _open_regular(path, field) as handle:
        return first_problem(handle)


def read_json_lines(path: Path, field: str = "data") -> pa.Table:
    """A JSON-lines file as an Arrow table; anything else is one line naming file and line.

    pyarrow reads the file (fast, and the types it infers are those the Hub's loader gives),
    with its block size raised to the longest line; when it refuses the file, a line-by-line
    pass finds the line to blame.
    """
    with _open_regular(path, field) as handle:
        lines, first_bad = _scan(handle)
        handle.seek(0)
        opening = handle.read(SCAN_BYTES).lstrip().removeprefix(b"\xef\xbb\xbf").lstrip()[:1]
    where = f"{field}: {path}"
    if not lines:
        raise MsltError(f"{where}: the file is empty; give JSON lines, one object per line")
    if opening == b"[":
        raise MsltError(
            f"{where}: the file is a JSON array; give JSON lines, one object per line "
            "(e.g. jq -c '.[]' FILE > FILE.jsonl)"
        )
    if first_bad is not None:
        problem = _first_problem(path, field) or f"line {first_bad} is not a JSON object"
        raise MsltError(f"{where}: {problem}")
    # a row nested thousands deep crashes pyarrow's reader; one over 4 MiB is refused
    try:
        table = read_json_table(path, json_block_size(path, field))
    except (pa.ArrowException, OSError, UnicodeDecodeError) as error:
        problem = _first_problem(path, field)
        if problem is None:
            problem = " ".join(str(error).split())[:200] or type(error).__name__
        raise MsltError(f"{where}: {problem}") from None
    _check_columns(table, where)
    return table


def _check_columns(table: pa.Table, where: str) -> None:
    """Every column as pyarrow built it must hold together: pyarrow reads a field whose values
    are lists of nothing but nulls into an array that breaks when read."""
    try:
        table.validate(full=True)
        return
    except pa.ArrowException:
        pass
    for name in table.column_names:
        try:
            table.column(name).validate(full=True)
        except pa.ArrowException as error:
            reason = " ".join(str(error).split())[:120]
            if "Invalid UTF8" in reason:  # bytes that are no text: say so, as for other files
                raise MsltError(
                    f"{where}: field {name!r} is not UTF-8 text ({reason}); save the file as UTF-8"
                ) from None
            raise MsltError(
                f"{where}: field {name!r} ({table.schema.field(name).type}) cannot be read "
                f"({reason}); give it text, numbers, or lists of them"
            ) from None


def read_corpus_table(path: Path, field: str = "data") -> pa.Table:
    """A local corpus file (JSON lines or Parquet), read once per process however many of its
    languages are taken (an unchanged file: the same size, times and inode)."""
    return _read_corpus_table(path.resolve(), file_state(path), field)


@lru_cache(maxsize=8)
def _read_corpus_table(path: Path, state: object, field: str) -> pa.Table:
    if path.suffix == ".jsonl":
        return read_json_lines(path, field)
    with _open_regular(path, field):  # regular and within the size limit
        pass
    return read_arrow_table(path, field)


def open_corpus_split(task: Task, lang: str, split: str, data: str) -> SplitRows:
    """:func:`mslt_it.tasks.sources.open_split`, with local files read by
    :func:`read_corpus_table` and a single table's language column checked."""
    check_data_value(data)  # "" would read the working folder: Path("") is "."
    if data in NAMED_DATA:
        return open_split(task, lang, split, data)
    check_split(task, split)
    root = Path(data)
    path = local_path(root, task, lang, split) if root.is_dir() else None
    if path is None:
        return open_split(task, lang, split, data)  # its one-line error: no folder, no file
    check_regular_file(path, "data")
    table, digest = read_hashed(path, read_corpus_table, MAX_CORPUS_BYTES)
    return file_split(table, path, task, lang, split, digest)
