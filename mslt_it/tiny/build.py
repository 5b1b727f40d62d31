"""The tiny base with random weights (``mslt-it tiny-model DIR``): the tests' and tools' base.

Nothing can be downloaded in tests or in the offline demo, yet every step downstream (build,
train, evaluate, analyze) expects a Hugging Face model folder. :func:`build_tiny_model` makes one
from scratch in well under a minute on two CPU cores: the tokenizer of :mod:`mslt_it.tiny.model`
trained on the text of :mod:`mslt_it.tiny.text` in the task languages, and the 2-layer Llama
left at its random initialisation (``mslt-it:tiny``). On it LoRA learns each source language,
but nothing transfers: the synthetic languages share nothing the model knows. ``steps`` (the
CLI's ``--steps``) pre-trains it on that text first; ``world=True`` builds the world base
instead (:mod:`mslt_it.tiny.world_base`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mslt_it.arguments import codes_argument, flag_argument, int_argument, path_argument
from mslt_it.errors import MsltError
from mslt_it.languages import XTREME_WIKIANN, get_language, languages_of_task
from mslt_it.outputs import claim_output
from mslt_it.paths import check_not_a_model_name
from mslt_it.progress import library_bars_quieted
from mslt_it.random_state import kept_random_state
from mslt_it.tiny.base import BaseText, pretrain_base
from mslt_it.tiny.model import DEFAULT_VOCAB_SIZE
from mslt_it.tiny.pretrain import PretrainSettings
from mslt_it.tiny.text import chat_conversations, english_documents, raw_documents
from mslt_it.tiny.world_base import WORLD_STEPS, build_world_model


def default_languages() -> list[str]:
    """The 15 XNLI languages, ja and ko (PAWS-X), and the 40 XTREME WikiAnn ones, deduplicated."""
    return list(dict.fromkeys([*languages_of_task("xnli"), "ja", "ko", *XTREME_WIKIANN]))


def build_tiny_model(
    out_dir: str | Path,
    *,
    languages: Sequence[str] | None = None,
    seed: int = 0,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    pretrain_steps: int = 0,
    overwrite: bool = False,
    world: bool = False,
    sized: bool = False,
) -> Path:
    """Build the tiny model folder at ``out_dir`` and return its path.

    The folder appears only when the whole build succeeded (it is written under a temporary name
    and renamed). ``pretrain_steps=0`` leaves the weights random, which only tests want.
    ``world=True`` pre-trains on the synthetic world (:mod:`mslt_it.world`: code-switched text
    and the task frames with random answers) in the XNLI languages, for ``pretrain_steps``
    (default :data:`WORLD_STEPS`).

    The build seeds Python's, numpy's and torch's generators with ``seed``; they are put back
    as they were when it returns (:func:`~mslt_it.random_state.kept_random_state`).
    """
    out = path_argument(out_dir, "out_dir")
    check_not_a_model_name(out_dir, "out_dir")
    if languages is not None:
        languages = codes_argument(languages, "languages")
    seed = int_argument(seed, "seed")  # numpy's integers as ints
    vocab_size = int_argument(vocab_size, "vocab_size")
    pretrain_steps = int_argument(pretrain_steps, "pretrain_steps")
    for name, flag in (("overwrite", overwrite), ("world", world), ("sized", sized)):
        flag_argument(flag, name)
    if world:
        with kept_random_state(), library_bars_quieted():
            return build_world_model(
                out,
                seed=seed,
                steps=pretrain_steps or WORLD_STEPS,
                overwrite=overwrite,
                sized=sized,
            )
    if sized:
        raise MsltError("sized: only the world base has sized text; add --world")
    if not 0 <= seed < 2**32:
        raise MsltError(f"seed: must be an integer in [0, 2**32), got {seed}")
    if pretrain_steps < 0:
        raise MsltError(f"steps: {pretrain_steps} is negative; use 0 or more")
    if vocab_size < 512:
        raise MsltError(f"vocab_size: {vocab_size} is too small; use 512 or more")
    langs = list(dict.fromkeys(languages)) if languages else default_languages()
    for lang in langs:
        get_language(lang)  # an unknown code fails here, with the registry's message
    with (
        kept_random_state(),
        library_bars_quieted(),
        claim_output(out, kind="model", overwrite=overwrite, field="out_dir"),
    ):
        return _build(out, langs, seed, vocab_size, pretrain_steps, overwrite)


def _build(
    out: Path, langs: list[str], seed: int, vocab_size: int, pretrain_steps: int, overwrite: bool
) -> Path:
    """:func:`build_tiny_model` once its arguments are checked and ``out`` is claimed."""
    settings = PretrainSettings(steps=pretrain_steps)
    docs = raw_documents(langs, settings.raw_rows_per_language)
    docs += english_documents(settings.english_docs_per_language * len(langs), seed)
    chats = chat_conversations(langs, settings.chats_per_language, seed)
    return pretrain_base(
        out,
        label="tiny model",
        text=BaseText(docs, chats),
        langs=langs,
        seed=seed,
        settings=settings,
        vocab_size=vocab_size,
        record={"seed": seed, "languages": langs},
        overwrite=overwrite,
    )
