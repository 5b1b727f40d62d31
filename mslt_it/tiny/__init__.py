"""The tiny offline base models that the tests and the demo use, built from scratch, no network.

Every step downstream (build, train, evaluate, analyze) expects a Hugging Face model folder, and
nothing can be downloaded in tests or in the offline demo. This package makes one, in modules of
one job each:

- :mod:`~mslt_it.tiny.model`: the 2-layer Llama (head_dim 64, which vLLM's CPU build requires),
  the byte-level BPE tokenizer with ChatML chat tokens and template, and the saved folder with
  its build record (``mslt_it_tiny.json``);
- :mod:`~mslt_it.tiny.text`: the text its tokenizer (and an optional pre-training) learns from:
  synthetic paragraphs, everyday English words, generic chats;
- :mod:`~mslt_it.tiny.pretrain`: the plain torch pre-training loop and the held-out loss;
- :mod:`~mslt_it.tiny.build`: the base with random weights (``mslt-it tiny-model DIR``,
  ``mslt-it:tiny`` in recipes), the tests' base;
- :mod:`~mslt_it.tiny.world_base`: the base pre-trained on the synthetic world of
  :mod:`mslt_it.world` (``--world``, ``mslt-it:tiny-world``; shipped in
  ``mslt_it/resources/tiny-world``), on which multi-source LoRA transfers further than
  single-source LoRA (the demo).

The result loads with ``AutoModelForCausalLM``/``AutoTokenizer`` with ``trust_remote_code=False``.
Importing this package is light: torch, transformers and tokenizers load when a model is built.
"""

from __future__ import annotations

from mslt_it.tiny.build import build_tiny_model, default_languages
from mslt_it.tiny.model import (
    BOS_TOKEN,
    CHAT_TEMPLATE,
    DEFAULT_VOCAB_SIZE,
    IM_END,
    IM_START,
    INFO_FILE,
    PAD_TOKEN,
    SPECIAL_TOKENS,
    TinyShape,
    read_info,
    save_model,
    tiny_config,
    train_tokenizer,
)
from mslt_it.tiny.pretrain import (
    IGNORE_INDEX,
    Document,
    PretrainSettings,
    language_model_loss,
    pack_blocks,
    pretrain,
)
from mslt_it.tiny.text import (
    ENGLISH_SHARE,
    ENGLISH_WORDS,
    SYSTEM_PROMPT,
    chat_conversations,
    english_documents,
    heldout_texts,
    raw_documents,
    tokenizer_corpus,
)
from mslt_it.tiny.world_base import (
    SHIPPED_SIZED_WORLD_MODEL,
    SHIPPED_WORLD_MODEL,
    WORLD_ROWS_PER_LANGUAGE,
    WORLD_STEPS,
    build_world_model,
    copy_world_model,
    world_documents,
    world_text_digest,
)

__all__ = [
    "BOS_TOKEN",
    "CHAT_TEMPLATE",
    "DEFAULT_VOCAB_SIZE",
    "ENGLISH_SHARE",
    "ENGLISH_WORDS",
    "IGNORE_INDEX",
    "IM_END",
    "IM_START",
    "INFO_FILE",
    "PAD_TOKEN",
    "SHIPPED_SIZED_WORLD_MODEL",
    "SHIPPED_WORLD_MODEL",
    "SPECIAL_TOKENS",
    "SYSTEM_PROMPT",
    "WORLD_ROWS_PER_LANGUAGE",
    "WORLD_STEPS",
    "Document",
    "PretrainSettings",
    "TinyShape",
    "build_tiny_model",
    "build_world_model",
    "chat_conversations",
    "copy_world_model",
    "default_languages",
    "english_documents",
    "heldout_texts",
    "language_model_loss",
    "pack_blocks",
    "pretrain",
    "raw_documents",
    "read_info",
    "save_model",
    "tiny_config",
    "tokenizer_corpus",
    "train_tokenizer",
    "world_documents",
    "world_text_digest",
]
