"""The tiny base's pre-training text: synthetic paragraphs, English words, generic chats.

Every tokenizer of :mod:`mslt_it.tiny` is trained on this text (the world base's adds the
synthetic world's, :mod:`mslt_it.world`), and a base pre-trained with ``steps`` learns from it.
No exchange pairs a task input with its task label.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from mslt_it.tasks.base import join_tokens
from mslt_it.tasks.synthetic import lexicon, synthetic_text

SYSTEM_PROMPT = "You are a helpful assistant."


def raw_documents(langs: Sequence[str], rows_per_language: int, split: str = "train") -> list[str]:
    """Paragraphs of synthetic sentences, one per task row and language (labels never appear)."""
    docs: list[str] = []
    per_row = 5  # synthetic_text yields five sentences per row: 2 XNLI, 2 PAWS-X, 1 WikiAnn
    for lang in langs:
        sentences = synthetic_text([lang], rows_per_language, split=split)
        for start in range(0, len(sentences), per_row):
            docs.append(" ".join(sentences[start : start + per_row]))
    return docs


def heldout_texts(langs: Sequence[str], rows_per_language: int = 4) -> list[str]:
    """Validation-split paragraphs: text the pre-training never saw."""
    return raw_documents(langs, rows_per_language, split="validation")


# Everyday English words, as any real base model knows them: the instruction vocabulary of the
# prompt templates, the words their answers are made of (label words included, so that a template
# answer is a word the model can already spell), and common words around them. They appear in
# generic copy/pick exchanges only; no exchange pairs a task input with its task label.
_ENGLISH_TEXT = """
the a an and or of to in on at for with from by as is are was were be been it its this that
these those which what who where when how why not no yes none all any each both one two three
four five first second third last next other same different more most less only also just word
words sentence sentences text list answer question premise hypothesis statement claim
entailment neutral contradiction paraphrase entity entities person persons people organisation
organisations organization location locations place places name names type types label labels
number numbers letter letters language languages English meaning PER ORG LOC MISC None true
false maybe perhaps mean means say says follow follows write repeat continue copy count choose
pick separate give find read tell ask use need want like see come go get put keep let help show
try call turn move play run learn change begin end start stop make take think know good bad big
small new old long short high low early late right left open close full day time year man woman
child house city country world water food work school book friend family home hand part life
way case point group problem fact story game music color colour red green blue black white
light dark warm cold fast slow happy sad easy hard real
"""
ENGLISH_WORDS = tuple(_ENGLISH_TEXT.split())


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
