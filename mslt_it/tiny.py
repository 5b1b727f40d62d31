"""A tiny causal LM and tokenizer, built offline, that the tests and the demo use as a base model.

Nothing can be downloaded in tests or in the offline demo, yet every step downstream (build,
train, evaluate, analyze) expects a Hugging Face model folder. :func:`build_tiny_model` makes one
from scratch in well under a minute on two CPU cores:

- a byte-level BPE tokenizer trained on the synthetic text of the task languages, with ChatML
  chat tokens and a chat template whose ``{% generation %}`` markers cover the assistant's
  ``<|im_end|>`` (so TRL's ``assistant_only_loss`` trains the model to stop);
- a 2-layer Llama (head_dim 64, which vLLM's CPU build requires), left at its random
  initialisation by default (``mslt-it:tiny``): the tests' base. On it LoRA learns each source
  language, but nothing transfers: the synthetic languages share nothing the model knows.
- with ``world=True`` (``mslt-it tiny-model --world``, ``mslt-it:tiny-world`` in recipes, shipped
  in ``mslt_it/resources/tiny-world``), pre-trained on the synthetic world of
  :mod:`mslt_it.world`: code-switched sentences of one shared concept grammar and the XNLI task
  rows, and the task's prompt frames answered with *random* label words. On that base transfer
  is real, and multi-source LoRA transfers further than single-source LoRA (the demo).

  Why earlier pre-trained bases made LoRA fail (it answered one constant label): they were
  pre-trained on raw sentences and generic chats only, so the prompt frame and the answer words
  were nearly unknown; with the frame and the words in pre-training (answers random, so the task
  itself is not), LoRA learns the task. Without code-switching, nothing transfers; with
  code-switched task rows alone, a cue word and its translations look alike in context, so the
  model learns "an extra function word" but not which; the shared grammar gives the negation and
  hedge words contexts of their own, and translations of them then line up.

The result loads with ``AutoModelForCausalLM``/``AutoTokenizer`` with ``trust_remote_code=False``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mslt_it.errors import MsltError

DEFAULT_PRETRAIN_STEPS = 0  # see the module docstring
DEFAULT_VOCAB_SIZE = 8192

PAD_TOKEN = "<|pad|>"
BOS_TOKEN = "<|begin_of_text|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, IM_START, IM_END)

# ChatML. The assistant's <|im_end|> sits inside {% generation %} so that it is among the trained
# labels; the newline after it is outside, so the prompt rendered with add_generation_prompt is a
# prefix of prompt + completion, as TRL's prompt-completion processing needs.
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

SYSTEM_PROMPT = "You are a helpful assistant."
IGNORE_INDEX = -100  # label of a token that is context only, as in transformers

Document = tuple[list[int], list[int]]
"""One pre-training document: input ids and labels (``IGNORE_INDEX`` where not trained)."""
INFO_FILE = "mslt_it_tiny.json"


@dataclass(frozen=True)
class TinyShape:
    """The architecture: small enough for 2 CPU cores, head_dim 64 for vLLM's CPU attention."""

    hidden_size: int = 128
    num_attention_heads: int = 2
    num_key_value_heads: int = 2
    head_dim: int = 64
    num_hidden_layers: int = 2
    intermediate_size: int = 384
    max_position_embeddings: int = 1024


@dataclass(frozen=True)
class PretrainSettings:
    """The short full-parameter pre-training run."""

    steps: int = DEFAULT_PRETRAIN_STEPS
    batch_size: int = 8
    block_size: int = 128
    learning_rate: float = 3e-3
    warmup_fraction: float = 0.05
    weight_decay: float = 0.01
    raw_rows_per_language: int = 60
    chats_per_language: int = 120
    english_docs_per_language: int = 15
    broad_heads_per_layer: int = 1


def default_languages() -> list[str]:
    """The 15 XNLI languages, ja and ko (PAWS-X), and the 40 XTREME WikiAnn ones, deduplicated."""
    from mslt_it.languages import XTREME_WIKIANN, languages_of_task

    return list(dict.fromkeys([*languages_of_task("xnli"), "ja", "ko", *XTREME_WIKIANN]))


# --------------------------------------------------------------------------------------------
# Pre-training text
# --------------------------------------------------------------------------------------------


def raw_documents(langs: Sequence[str], rows_per_language: int, split: str = "train") -> list[str]:
    """Paragraphs of synthetic sentences, one per task row and language (labels never appear)."""
    from mslt_it.tasks.synthetic import synthetic_text

    docs: list[str] = []
    per_row = 5  # synthetic_text yields five sentences per row: 2 XNLI, 2 PAWS-X, 1 WikiAnn
    for lang in langs:
        sentences = synthetic_text([lang], rows_per_language, split=split)
        for start in range(0, len(sentences), per_row):
            docs.append(" ".join(sentences[start : start + per_row]))
    return docs


# Everyday English words, as any real base model knows them: the instruction vocabulary of the
# prompt templates, the words their answers are made of (label words included, so that a template
# answer is a word the model can already spell), and common words around them. They appear in
# generic copy/pick exchanges only; no exchange pairs a task input with its task label.
ENGLISH_WORDS = tuple(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "which",
        "what",
        "who",
        "where",
        "when",
        "how",
        "why",
        "not",
        "no",
        "yes",
        "none",
        "all",
        "any",
        "each",
        "both",
        "one",
        "two",
        "three",
        "four",
        "five",
        "first",
        "second",
        "third",
        "last",
        "next",
        "other",
        "same",
        "different",
        "more",
        "most",
        "less",
        "only",
        "also",
        "just",
        "word",
        "words",
        "sentence",
        "sentences",
        "text",
        "list",
        "answer",
        "question",
        "premise",
        "hypothesis",
        "statement",
        "claim",
        "entailment",
        "neutral",
        "contradiction",
        "paraphrase",
        "entity",
        "entities",
        "person",
        "persons",
        "people",
        "organisation",
        "organisations",
        "organization",
        "location",
        "locations",
        "place",
        "places",
        "name",
        "names",
        "type",
        "types",
        "label",
        "labels",
        "number",
        "numbers",
        "letter",
        "letters",
        "language",
        "languages",
        "English",
        "meaning",
        "PER",
        "ORG",
        "LOC",
        "MISC",
        "None",
        "true",
        "false",
        "yes",
        "no",
        "maybe",
        "perhaps",
        "mean",
        "means",
        "say",
        "says",
        "follow",
        "follows",
        "true",
        "false",
        "write",
        "repeat",
        "continue",
        "copy",
        "count",
        "choose",
        "pick",
        "separate",
        "list",
        "give",
        "name",
        "find",
        "read",
        "tell",
        "ask",
        "answer",
        "use",
        "need",
        "want",
        "like",
        "see",
        "come",
        "go",
        "get",
        "put",
        "keep",
        "let",
        "help",
        "show",
        "try",
        "call",
        "turn",
        "move",
        "play",
        "run",
        "learn",
        "change",
        "begin",
        "end",
        "start",
        "stop",
        "make",
        "take",
        "think",
        "know",
        "good",
        "bad",
        "big",
        "small",
        "new",
        "old",
        "long",
        "short",
        "high",
        "low",
        "early",
        "late",
        "right",
        "left",
        "open",
        "close",
        "full",
        "day",
        "time",
        "year",
        "man",
        "woman",
        "child",
        "house",
        "city",
        "country",
        "world",
        "water",
        "food",
        "work",
        "school",
        "book",
        "friend",
        "family",
        "home",
        "hand",
        "part",
        "life",
        "way",
        "case",
        "point",
        "group",
        "problem",
        "fact",
        "story",
        "game",
        "music",
        "color",
        "colour",
        "red",
        "green",
        "blue",
        "black",
        "white",
        "light",
        "dark",
        "warm",
        "cold",
        "fast",
        "slow",
        "happy",
        "sad",
        "easy",
        "hard",
        "true",
        "real",
    ]
)
ENGLISH_WORDS = tuple(dict.fromkeys(ENGLISH_WORDS))

# Share of the chat exchanges (and of English paragraphs per language) that use English words.
# A token the model rarely sees keeps an embedding that is mostly the vocabulary's common
# direction; LoRA, which cannot move embeddings, then cannot make the model say it. Measured:
# with English words rare, LoRA could not even learn to answer a constant "neutral".
ENGLISH_SHARE = 0.3


def english_documents(count: int, seed: int) -> list[str]:
    """Paragraphs of random English words: the base's (tiny) knowledge of English."""
    rng = random.Random(f"mslt-it/tiny/english/{seed}")
    return [" ".join(rng.choices(ENGLISH_WORDS, k=rng.randint(8, 30))) for _ in range(count)]


def _english_exchange(rng: random.Random) -> tuple[str, str]:
    """A generic exchange over English words: repeat a list, or pick its first or last word."""
    words = rng.sample(ENGLISH_WORDS, k=rng.randint(2, 5))
    listed = ", ".join(words)
    kind = rng.randrange(3)
    if kind == 0:
        return f"Repeat the words: {listed}.", listed
    if kind == 1:
        return f"Which word is first in the list? Answer with one word: {listed}.", words[0]
    return f"Which word is last in the list? Answer with one word: {listed}.", words[-1]


def _exchange(lang: str, rng: random.Random) -> tuple[str, str]:
    """One generic (instruction, answer) pair over invented words: copy, continue, count, pick.

    These teach the chat format, ending a turn with <|im_end|>, and attending back to the user's
    text, without touching any task's labels.
    """
    from mslt_it.tasks.base import join_tokens
    from mslt_it.tasks.synthetic import lexicon

    if rng.random() < ENGLISH_SHARE:
        return _english_exchange(rng)
    lex = lexicon(lang)
    words = rng.choices(lex.words, k=rng.randint(4, 10))
    sentence = lex.sentence(words)
    kind = rng.randrange(7)
    if kind == 5:
        present = rng.choice(words)
        absent = rng.choice([w for w in lex.words if w not in words])
        options = [present, absent]
        rng.shuffle(options)
        return (
            f"Sentence: {sentence}\nWhich of these words occurs in the sentence? "
            f"Answer with one word: {options[0]}, {options[1]}.",
            present,
        )
    if kind == 0:
        return f"Repeat the sentence.\nSentence: {sentence}", sentence
    if kind == 1:
        k = rng.randint(1, 3)
        return (
            f"Write the first {k} words of the sentence.\nSentence: {sentence}",
            join_tokens(words[:k], lang),
        )
    if kind == 2:
        half = rng.randint(2, len(words) - 1)
        return f"Continue the text: {join_tokens(words[:half], lang)}", lex.sentence(words[half:])
    if kind == 3:
        return f"What is the last word of the sentence?\nSentence: {sentence}", words[-1]
    if kind == 4:
        return (
            f"How many words does the sentence have? Answer with a number.\nSentence: {sentence}",
            str(len(words)),
        )
    i, j = sorted(rng.sample(range(len(words)), 2))
    options = [words[i], words[j]]
    rng.shuffle(options)
    return (
        f"Sentence: {sentence}\nWhich word comes first in the sentence? "
        f"Answer with one word: {options[0]}, {options[1]}.",
        words[i],
    )


def chat_conversations(
    langs: Sequence[str], per_language: int, seed: int
) -> list[list[dict[str, str]]]:
    """Generic chat conversations (sometimes with a system turn, sometimes two rounds)."""
    rng = random.Random(f"mslt-it/tiny/chat/{seed}")
    conversations: list[list[dict[str, str]]] = []
    for lang in langs:
        for _ in range(per_language):
            messages: list[dict[str, str]] = []
            if rng.random() < 0.2:
                messages.append({"role": "system", "content": SYSTEM_PROMPT})
            for _ in range(2 if rng.random() < 0.2 else 1):
                question, answer = _exchange(lang, rng)
                messages.append({"role": "user", "content": question})
                messages.append({"role": "assistant", "content": answer})
            conversations.append(messages)
    return conversations


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


def train_tokenizer(texts: Sequence[str], vocab_size: int) -> Any:
    """A byte-level BPE (lossless for every script) with ChatML tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        extra_special_tokens=[IM_START],
        chat_template=CHAT_TEMPLATE,
        model_max_length=TinyShape().max_position_embeddings,
        clean_up_tokenization_spaces=False,
    )


def tokenizer_corpus(
    docs: Sequence[str], conversations: Sequence[list[dict[str, str]]]
) -> list[str]:
    """Text the BPE merges are learnt from: the raw paragraphs and every chat message."""
    messages = [m["content"] for conv in conversations for m in conv]
    # Each English word alone (as an answer starts) and in running text (after a space), often
    # enough that BPE gives it a token of its own, as a real tokenizer would.
    cased = [*ENGLISH_WORDS, *(word.capitalize() for word in ENGLISH_WORDS)]
    english = [*cased, " ".join(cased)] * 20
    roles = ["system", "user", "assistant"] * 500
    return [*docs, *messages, *english, *roles]


# --------------------------------------------------------------------------------------------
# Model and pre-training
# --------------------------------------------------------------------------------------------


def tiny_config(tokenizer: Any, shape: TinyShape) -> Any:
    """A LlamaConfig sized by ``shape`` whose special token ids match ``tokenizer``."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        head_dim=shape.head_dim,
        max_position_embeddings=shape.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )


def pack_blocks(documents: Sequence[Document], block_size: int, seed: int) -> Any:
    """Shuffle documents and cut their concatenation into rows of ``(input_ids, labels)``.

    Returns a long tensor of shape ``(rows, 2, block_size)``.
    """
    import torch

    order = list(range(len(documents)))
    random.Random(seed).shuffle(order)
    ids = [token for i in order for token in documents[i][0]]
    labels = [label for i in order for label in documents[i][1]]
    rows = len(ids) // block_size
    stacked = torch.tensor([ids[: rows * block_size], labels[: rows * block_size]])
    return stacked.view(2, rows, block_size).transpose(0, 1).contiguous()


def _keep_heads_broad(model: Any, heads: int) -> list[Any]:
    """Freeze the query/key rows of the last ``heads`` heads of every layer at their random init.

    Their attention scores stay near zero, so these heads keep averaging over the whole context,
    as every head of a random model does. Measured: after even 100 steps of pre-training all
    heads attend to the last few tokens, and LoRA could no longer learn a task whose cue sits
    earlier in the prompt (it stayed at the majority class), while on a random model it did.
    The frozen heads keep that route open; the others learn the usual local and copy patterns.
    Returns the hook handles, to be removed after pre-training.
    """
    import torch

    config = model.config
    handles = []
    for layer in model.model.layers:
        attention = layer.self_attn
        for proj, count in (
            (attention.q_proj, config.num_attention_heads),
            (attention.k_proj, config.num_key_value_heads),
        ):
            mask = torch.ones_like(proj.weight)
            mask[(count - heads) * config.head_dim :] = 0.0
            handles.append(proj.weight.register_hook(lambda grad, mask=mask: grad * mask))
    return handles


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def pretrain(
    model: Any,
    blocks: Any,
    settings: PretrainSettings,
    seed: int,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Full-parameter causal-LM training with a plain torch loop; returns the loss per step."""
    import torch

    generator = torch.Generator().manual_seed(seed)

    # The usual split: no weight decay on embeddings and norm weights, which decay would shrink
    # towards a vocabulary LoRA cannot separate any more.
    def decays(name: str, param: Any) -> bool:
        # q/k are left undecayed too, so that the frozen rows of the broad heads stay exact
        return param.ndim == 2 and not any(k in name for k in ("embed", "q_proj", "k_proj"))

    named = list(model.named_parameters())
    decayed = [p for name, p in named if decays(name, p)]
    kept = [p for name, p in named if not decays(name, p)]
    handles = _keep_heads_broad(model, settings.broad_heads_per_layer)
    optimizer = torch.optim.AdamW(
        [
            {"params": decayed, "weight_decay": settings.weight_decay},
            {"params": kept, "weight_decay": 0.0},
        ],
        lr=settings.learning_rate,
        betas=(0.9, 0.95),
    )
    warmup = max(1, int(settings.steps * settings.warmup_fraction))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(step, settings.steps, warmup)
    )
    model.train()
    losses: list[float] = []
    order = torch.randperm(len(blocks), generator=generator)
    cursor = 0
    for step in range(settings.steps):
        if cursor + settings.batch_size > len(order):
            order, cursor = torch.randperm(len(blocks), generator=generator), 0
        batch = blocks[order[cursor : cursor + settings.batch_size]]
        cursor += settings.batch_size
        loss = model(input_ids=batch[:, 0], labels=batch[:, 1]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1])
    for handle in handles:
        handle.remove()
    model.eval()
    return losses


def language_model_loss(model: Any, tokenizer: Any, texts: Sequence[str]) -> float:
    """Mean next-token loss over ``texts`` (each prefixed with bos), token-weighted.

    Used to show that pre-training happened: a trained base must beat a random one clearly.
    """
    import torch

    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for text in texts:
            ids = [tokenizer.bos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]
            batch = torch.tensor([ids])
            loss = model(input_ids=batch, labels=batch).loss
            total += loss.item() * (len(ids) - 1)
            count += len(ids) - 1
    return total / max(1, count)


def heldout_texts(langs: Sequence[str], rows_per_language: int = 4) -> list[str]:
    """Validation-split paragraphs: text the pre-training never saw."""
    return raw_documents(langs, rows_per_language, split="validation")


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread for the build, then restore the caller's setting.

    The tiny matrices gain little from a second thread, and on a busy machine (a test run beside
    other jobs) OpenMP threads that spin-wait for a shared core made each step 5-10x slower.
    One thread also keeps the float reductions, hence the weights, the same on any core count.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _seed_everything(seed: int) -> None:
    """Seed every generator the build touches, so a seed gives the same model twice."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _tokenize_documents(
    tokenizer: Any, docs: Sequence[str], conversations: Sequence[list[dict[str, str]]]
) -> list[Document]:
    """Raw paragraphs as ``bos text``, every token a label; conversations through the template.

    In conversations only the assistant turns (with their ``<|im_end|>``) are labels, as in
    supervised fine-tuning: the user's random words would otherwise drown the few tokens that
    teach the generic skills (copy, pick, count) and ending a turn.
    """
    encoded = tokenizer(list(docs), add_special_tokens=False)["input_ids"]
    documents: list[Document] = []
    for ids in encoded:
        tokens = [tokenizer.bos_token_id, *ids]
        documents.append((tokens, tokens))
    chats = tokenizer.apply_chat_template(
        list(conversations), return_dict=True, return_assistant_tokens_mask=True
    )
    for ids, mask in zip(chats["input_ids"], chats["assistant_masks"], strict=True):
        labels = [token if bit else IGNORE_INDEX for token, bit in zip(ids, mask, strict=True)]
        documents.append((list(ids), labels))
    return documents


WORLD_STEPS = 2000
"""Pre-training steps of the world base (batch 32 x 48 tokens)."""
WORLD_ROWS_PER_LANGUAGE = 700
"""Grammar paragraphs per language in the world base's text (half as many task-row paragraphs,
three sevenths as many task frames)."""


def world_documents(
    langs: Sequence[str], seed: int, rows: int = WORLD_ROWS_PER_LANGUAGE
) -> tuple[list[str], list[list[dict[str, str]]], list[list[dict[str, str]]]]:
    """The world base's text: code-switched paragraphs, frames with random answers, chats."""
    from mslt_it import world

    docs = world.code_switched_documents(langs, rows // 2, seed)
    docs += world.grammar_documents(langs, rows, seed)
    docs += english_documents(15 * len(langs), seed)
    frames = world.frame_conversations(langs, rows * 3 // 7, seed)
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


def build_tiny_model(
    out_dir: str | Path,
    *,
    languages: Sequence[str] | None = None,
    seed: int = 0,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    pretrain_steps: int = DEFAULT_PRETRAIN_STEPS,
    overwrite: bool = False,
    world: bool = False,
) -> Path:
    """Build the tiny model folder at ``out_dir`` and return its path.

    The folder appears only when the whole build succeeded (it is written under a temporary name
    and renamed). ``pretrain_steps=0`` leaves the weights random, which only tests want.
    ``world=True`` pre-trains on the synthetic world (:mod:`mslt_it.world`: code-switched text
    and the task frames with random answers) in the XNLI languages, for ``pretrain_steps``
    (default :data:`WORLD_STEPS`).
    """
    if world:
        return build_world_model(
            out_dir, seed=seed, steps=pretrain_steps or WORLD_STEPS, overwrite=overwrite
        )
    out = Path(out_dir)
    if not 0 <= seed < 2**32:
        raise MsltError(f"seed: must be an integer in [0, 2**32), got {seed}")
    if pretrain_steps < 0:
        raise MsltError(f"steps: {pretrain_steps} is negative; use 0 or more")
    if vocab_size < 512:
        raise MsltError(f"vocab_size: {vocab_size} is too small; use 512 or more")
    langs = list(dict.fromkeys(languages)) if languages else default_languages()
    from mslt_it.languages import get_language

    for lang in langs:
        get_language(lang)  # an unknown code fails here, with the registry's message
    from mslt_it.outputs import claim_output

    with claim_output(out, kind="model", overwrite=overwrite, field="out_dir"):
        return _build(out, langs, seed, vocab_size, pretrain_steps, overwrite)


def _build(
    out: Path, langs: list[str], seed: int, vocab_size: int, pretrain_steps: int, overwrite: bool
) -> Path:
    """:func:`build_tiny_model` once its arguments are checked and ``out`` is claimed."""
    started = time.monotonic()
    from transformers import LlamaForCausalLM

    from mslt_it.progress import progress_bar

    shape = TinyShape()
    settings = PretrainSettings(steps=pretrain_steps)
    _seed_everything(seed)
    with _one_thread(), progress_bar() as progress:
        tok_task = progress.add_task("tiny model: tokenizer", total=1)
        docs = raw_documents(langs, settings.raw_rows_per_language)
        docs += english_documents(settings.english_docs_per_language * len(langs), seed)
        conversations = chat_conversations(langs, settings.chats_per_language, seed)
        tokenizer = train_tokenizer(tokenizer_corpus(docs, conversations), vocab_size)
        progress.advance(tok_task)

        model = LlamaForCausalLM(tiny_config(tokenizer, shape))
        blocks = pack_blocks(
            _tokenize_documents(tokenizer, docs, conversations), settings.block_size, seed
        )
        train_task = progress.add_task("tiny model: pre-training", total=settings.steps)
        losses = pretrain(
            model,
            blocks,
            settings,
            seed,
            on_step=lambda _step, _loss: progress.advance(train_task),
        )
        heldout_loss = language_model_loss(model, tokenizer, heldout_texts(langs))
    record = {"seed": seed, "languages": langs}
    save_model(
        out, model, tokenizer, record, (settings, blocks, losses, heldout_loss, started), overwrite
    )
    return out


def save_model(
    out: Path,
    model: Any,
    tokenizer: Any,
    record: dict[str, Any],
    run: tuple[PretrainSettings, Any, list[float], float, float],
    overwrite: bool,
) -> None:
    """Write the model, its tokenizer and the build record (``mslt_it_tiny.json``) into place.

    ``run`` is what the build measured: the settings, the packed blocks, the losses, the held-out
    loss and when the build started.
    """
    import torch
    from transformers import GenerationConfig

    from mslt_it.io import atomic_directory, atomic_write_json

    settings, blocks, losses, heldout_loss, started = run
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    tail = losses[-20:]
    info = {
        **record,
        "vocab_size": len(tokenizer),
        "shape": asdict(TinyShape()),
        "pretrain": asdict(settings),
        "pretrain_tokens_per_epoch": int(blocks[:, 0].numel()),
        "final_pretrain_loss": round(sum(tail) / len(tail), 4) if tail else None,
        "heldout_loss": round(heldout_loss, 4),
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch_version": torch.__version__,
        "build_seconds": round(time.monotonic() - started, 1),
    }
    with atomic_directory(out, overwrite=overwrite, kind="model") as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / INFO_FILE, info)


def build_world_model(
    out_dir: str | Path, *, seed: int = 0, steps: int = WORLD_STEPS, overwrite: bool = False
) -> Path:
    """The tiny base pre-trained on the synthetic world (see :func:`build_tiny_model`)."""
    from mslt_it.languages import languages_of_task
    from mslt_it.outputs import claim_output

    out = Path(out_dir)
    if not 0 <= seed < 2**32:
        raise MsltError(f"seed: must be an integer in [0, 2**32), got {seed}")
    if steps < 1:
        raise MsltError(f"steps: the world base needs at least 1 step, got {steps}")
    with claim_output(out, kind="model", overwrite=overwrite, field="out_dir"):
        return _build_world(out, languages_of_task("xnli"), seed, steps, overwrite)


def _build_world(out: Path, langs: list[str], seed: int, steps: int, overwrite: bool) -> Path:
    """:func:`build_world_model` once ``out`` is claimed."""
    started = time.monotonic()
    from transformers import LlamaForCausalLM

    from mslt_it.progress import progress_bar

    shape = TinyShape()
    settings = PretrainSettings(steps=steps, batch_size=32, block_size=48)
    _seed_everything(seed)
    with _one_thread(), progress_bar() as progress:
        tok_task = progress.add_task("tiny world model: tokenizer", total=1)
        docs, frames, chats = world_documents(langs, seed)
        tokenizer = train_tokenizer(tokenizer_corpus(docs, frames + chats), DEFAULT_VOCAB_SIZE)
        progress.advance(tok_task)
        documents = _tokenize_documents(tokenizer, docs, chats)
        for text in tokenizer.apply_chat_template(frames, tokenize=False):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            documents.append((ids, ids))  # the frame is language-model text: every token trained
        model = LlamaForCausalLM(tiny_config(tokenizer, shape))
        blocks = pack_blocks(documents, settings.block_size, seed)
        train_task = progress.add_task("tiny world model: pre-training", total=settings.steps)
        losses = pretrain(
            model, blocks, settings, seed, on_step=lambda _s, _l: progress.advance(train_task)
        )
        heldout_loss = language_model_loss(model, tokenizer, heldout_texts(langs))
    record = {
        "seed": seed,
        "world": True,
        "languages": langs,
        "world_text_sha256": world_text_digest(docs, frames, chats),
    }
    save_model(
        out, model, tokenizer, record, (settings, blocks, losses, heldout_loss, started), overwrite
    )
    return out


SHIPPED_WORLD_MODEL = "tiny-world"
"""The world base shipped in ``mslt_it/resources/`` (``mslt-it tiny-model --world`` makes it)."""


def copy_world_model(out: Path) -> Path:
    """The shipped world base copied to ``out`` (pre-trained here if the package lacks it)."""
    import shutil

    from mslt_it.io import atomic_directory
    from mslt_it.paths import RESOURCES_DIR

    shipped = RESOURCES_DIR / SHIPPED_WORLD_MODEL
    if not (shipped / INFO_FILE).is_file():
        return build_world_model(out)
    with atomic_directory(out, overwrite=False, kind="model") as tmp:
        for path in shipped.iterdir():
            if path.is_file():
                shutil.copyfile(path, tmp / path.name)
    return out


def read_info(model_dir: str | Path) -> dict[str, Any]:
    """The build record (seed, languages, losses…) of a tiny model folder."""
    return json.loads((Path(model_dir) / INFO_FILE).read_text(encoding="utf-8"))
