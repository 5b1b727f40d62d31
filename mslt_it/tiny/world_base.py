"""The world base: the tiny model pre-trained on the synthetic world, and its shipped copy.

``mslt-it tiny-model --world`` builds it (``mslt-it:tiny-world`` in recipes copies the one
shipped in ``mslt_it/resources/tiny-world``): pre-trained on the synthetic world of
:mod:`mslt_it.world` (code-switched sentences of one shared concept grammar and the XNLI task
rows, and the task's prompt frames answered with *random* label words). On that base transfer
is real, and multi-source LoRA transfers further than single-source LoRA (the demo). Its build
record keeps the SHA-256 of its text, so a change to the world without a rebuilt base is caught.

Why earlier pre-trained bases made LoRA fail (it answered one constant label): they were
pre-trained on raw sentences and generic chats only, so the prompt frame and the answer words
were nearly unknown; with the frame and the words in pre-training (answers random, so the task
itself is not), LoRA learns the task. Without code-switching, nothing transfers; with
code-switched task rows alone, a cue word and its translations look alike in context, so the
model learns "an extra function word" but not which; the shared grammar gives the negation and
hedge words contexts of their own, and translations of them then line up.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from mslt_it import world
from mslt_it.errors import MsltError
from mslt_it.io import atomic_directory
from mslt_it.languages import languages_of_task
from mslt_it.outputs import claim_output
from mslt_it.paths import RESOURCES_DIR, SHIPPED_SIZED_WORLD_MODEL, SHIPPED_WORLD_MODEL
from mslt_it.tiny.base import BaseText, pretrain_base
from mslt_it.tiny.model import DEFAULT_VOCAB_SIZE, INFO_FILE
from mslt_it.tiny.pretrain import PretrainSettings
from mslt_it.tiny.text import chat_conversations, english_documents

WORLD_STEPS = 2000
"""Pre-training steps of the world base (batch 32 x 48 tokens)."""
WORLD_ROWS_PER_LANGUAGE = 700
"""Grammar paragraphs per language (on average, in the sized world) in the world base's text
(half as many task-row paragraphs, three sevenths as many task frames)."""


def world_documents(
    langs: Sequence[str], seed: int, rows: int = WORLD_ROWS_PER_LANGUAGE, *, sized: bool = False
) -> tuple[list[str], list[list[dict[str, str]]], list[list[dict[str, str]]]]:
    """The world base's text: code-switched paragraphs, frames with random answers, chats.

    ``sized``: languages get unequal amounts, in proportion to their compressed CC-100 sizes
    (:func:`mslt_it.world.text_shares`); otherwise ``rows`` each."""

    def count(n: int) -> int | dict[str, int]:
        return world.scaled_counts(langs, n) if sized else n

    docs = world.code_switched_documents(langs, count(rows // 2), seed)
    docs += world.grammar_documents(langs, count(rows), seed)
    docs += english_documents(15 * len(langs), seed)
    frames = world.frame_conversations(langs, count(rows * 3 // 7), seed)  # 3 per 7 rows
    chats = chat_conversations(langs, 40, seed)
    return docs, frames, chats


def world_text_digest(
    docs: Sequence[str],
    frames: Sequence[list[dict[str, str]]],
    chats: Sequence[list[dict[str, str]]],
) -> str:
    """SHA-256 of the world base's pre-training text, kept in its build record so that a change
    to the world (lexicons, word order, grammar) without a rebuilt base is caught by a test."""
    text = json.dumps([list(docs), list(frames), list(chats)], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_world_model(
    out_dir: str | Path,
    *,
    seed: int = 0,
    steps: int = WORLD_STEPS,
    overwrite: bool = False,
    sized: bool = False,
) -> Path:
    """The tiny base pre-trained on the synthetic world (see :func:`build_tiny_model`);
    ``sized``: each language's amount of text follows its CC-100 size (the study's base)."""
    out = Path(out_dir)
    if not 0 <= seed < 2**32:
        raise MsltError(f"seed: must be an integer in [0, 2**32), got {seed}")
    if steps < 1:
        raise MsltError(f"steps: the world base needs at least 1 step, got {steps}")
    with claim_output(out, kind="model", overwrite=overwrite, field="out_dir"):
        return _build_world(out, languages_of_task("xnli"), seed, steps, overwrite, sized)


def _build_world(
    out: Path, langs: list[str], seed: int, steps: int, overwrite: bool, sized: bool
) -> Path:
    """:func:`build_world_model` once ``out`` is claimed."""
    docs, frames, chats = world_documents(langs, seed, sized=sized)
    sizing = {"corpus": world.SIZE_CORPUS, "exponent": world.SIZE_EXPONENT}
    record = {
        "seed": seed,
        "world": True,
        **({"sized": sizing} if sized else {}),
        "languages": langs,
        "world_text_sha256": world_text_digest(docs, frames, chats),
    }
    return pretrain_base(
        out,
        label="tiny world model",
        text=BaseText(docs, chats, frames),
        langs=langs,
        seed=seed,
        settings=PretrainSettings(steps=steps, batch_size=32, block_size=48),
        vocab_size=DEFAULT_VOCAB_SIZE,
        record=record,
        overwrite=overwrite,
    )


def copy_world_model(out: Path, *, sized: bool = False) -> Path:
    """A shipped world base copied to ``out`` (pre-trained here if the package lacks it)."""
    shipped = RESOURCES_DIR / (SHIPPED_SIZED_WORLD_MODEL if sized else SHIPPED_WORLD_MODEL)
    if not (shipped / INFO_FILE).is_file():
        return build_world_model(out, sized=sized)
    with atomic_directory(out, overwrite=False, kind="model") as tmp:
        for path in shipped.iterdir():
            if path.is_file():
                shutil.copyfile(path, tmp / path.name)
    return out
