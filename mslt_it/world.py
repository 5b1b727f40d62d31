"""The synthetic world's pre-training text: code-switched sentences and task frames.

Every synthetic language writes one shared concept inventory with its own words (its lexicon in
:mod:`mslt_it.tasks.synthetic`: languages of one family and script share cognates, head-final
ones mirror the word order), and the rows of a split are parallel across languages. Nothing
in the rows themselves tells a model that German word 17 and Swahili word 17 mean the same;
bilingual text does. The tiny base is therefore pre-trained on:

- **code-switched sentences**: synthetic XNLI premises and hypotheses in which a share of the
  words (function words included: the negation and hedge words that XNLI's labels follow) are
  replaced by the same concept's word in a partner language. Partners are chosen by similarity:
  a language switches more often with languages of its own family and script, so typologically
  close languages end up closer in the model, as the paper's selection criteria assume;
- **task frames with random answers**: the chat-formatted prompt of each template mslt-it ships
  for the task (instruction, label words), answered with a *random* label word, so the frame and
  the answer words are known while the task is not (no row is paired with its label).

Measured in the feasibility sketch behind this module: without the code-switching nothing
transferred; without the frames and answer words LoRA learnt nothing. Measured here: with
code-switched task rows alone the negation and hedge words look alike in context, so a model
learnt "an extra function word" but not which (unseen languages at two labels of three); the
shared concept grammar (:func:`grammar_sentence`) gives them contexts of their own. Measured
with cognates and word order added (BENCHMARKS.md, 3 seeds): English alone carries over to few
languages, three sources to whole groups of them (MSLT - SSLT on unseen languages +31.6, +13.9,
+31.6 points, against +20.3, +24.1, -1.2 without them).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from functools import cache

from mslt_it.errors import MsltError
from mslt_it.languages import get_language, pretraining_size
from mslt_it.prompts import load_templates
from mslt_it.tasks.synthetic import CONTENT_WORDS, lexicon, row_rng

SWITCH_RATE = 0.05
"""Share of a sentence's words replaced by a partner language's word for the same concept.

Measured (benchmarks/bench_transfer.py, 3 seeds, BENCHMARKS.md): at 0.15 the languages lined up
so well that English alone transferred almost fully on two seeds (MSLT - SSLT on unseen
languages: +23.5, +0.9, +0.3 points); at 0.05, +20.3, +24.1, -1.2."""
CUE_SHARE = 0.12
"""Chance, at each word of a grammar sentence, that a negation or hedge word comes first.

Measured (BENCHMARKS.md, a new base per variant, 3 seeds): 0.25 made the three-source adapter
steadier on unseen languages (75.8-84.2 against 69.2-89.7 at 0.12) but let English alone carry
over more as well (gaps +4.6, +19.0, +13.2); 0.25 with 3% code-switching +11.4, +6.7, 0.0; 0.4
let English carry over almost fully (seed 0: 95.4, gap -3.5). The shipped base keeps 0.12."""
NEGATION, HEDGE = "<neg>", "<hedge>"

SIZE_CORPUS = "cc100"
"""Whose pre-training sizes the world's languages follow: XLM-R's CC-100 (the shipped table)."""
SIZE_EXPONENT = 0.3
"""How strongly the sized world's amounts of text follow CC-100: a language gets text in
proportion to ``size ** SIZE_EXPONENT``. 0.3 is XLM-R's own sampling exponent (Conneau et al.,
2020): CC-100's 190:1 (English against Swahili) becomes 4.8:1 (English and Russian 1.7 times
the mean, Swahili 0.35), so the smallest languages still learn their words.

Measured (BENCHMARKS.md): on the sized base the demo's effect does not hold (seed 0: English
alone 60.8 against 60.3 for ar+de+zh on the unseen languages; at exponent 0.15, 67.0 against
54.9), so the demo keeps the equal-text base and the sized one serves the study."""


def text_shares(langs: Sequence[str]) -> dict[str, float]:
    """Each language's amount of pre-training text relative to the mean (the mean is 1).

    Follows the language's CC-100 size compressed by :data:`SIZE_EXPONENT`; a language without
    a CC-100 number is an error (no size is invented).
    """
    sizes = {}
    for lang in langs:
        size = pretraining_size(lang, SIZE_CORPUS)
        if size is None or size <= 0:
            raise MsltError(f"world: {lang} has no {SIZE_CORPUS} size to weight its text by")
        sizes[lang] = size**SIZE_EXPONENT
    mean = sum(sizes.values()) / len(sizes)
    return {lang: value / mean for lang, value in sizes.items()}


def scaled_counts(langs: Sequence[str], per_language: int) -> dict[str, int]:
    """``per_language`` on average, spread over ``langs`` by :func:`text_shares` (at least 1)."""
    shares = text_shares(langs)
    return {lang: max(1, round(per_language * shares[lang])) for lang in langs}


def _counts(langs: Sequence[str], per_language: int | Mapping[str, int]) -> dict[str, int]:
    if isinstance(per_language, int):
        return {lang: per_language for lang in langs}
    return {lang: per_language[lang] for lang in langs}


def xnli_concepts(split: str, index: int) -> tuple[list[int | str], list[int | str], int]:
    """Row ``index`` of synthetic XNLI as concepts: premise, hypothesis and label.

    The same random stream as :func:`mslt_it.tasks.synthetic.xnli_row`, so realising these
    concepts in a language without switching gives exactly that row's sentences.
    """
    rng = row_rng("xnli", split, index)
    concepts = range(CONTENT_WORDS)
    premise: list[int | str] = list(rng.choices(concepts, k=rng.randint(6, 12)))
    start = rng.randrange(0, len(premise) - 3)
    hypothesis = premise[start : start + rng.randint(3, 5)]
    label = rng.randrange(3)
    if label > 0:
        hypothesis.insert(rng.randint(0, 1), HEDGE if label == 1 else NEGATION)
    return premise, hypothesis, label


def word(concept: int | str, lang: str) -> str:
    """A concept's word in ``lang``."""
    lex = lexicon(lang)
    if concept == NEGATION:
        return lex.negation
    if concept == HEDGE:
        return lex.hedge
    return lex.words[int(concept)]


def realise(
    concepts: Sequence[int | str],
    lang: str,
    rng: random.Random,
    partners: Sequence[str] = (),
    weights: Sequence[float] = (),
    rate: float = SWITCH_RATE,
) -> str:
    """A sentence of ``lang`` with each word switched to a partner's at ``rate``."""
    words = []
    for concept in concepts:
        speaker = lang
        if partners and rng.random() < rate:
            speaker = rng.choices(partners, weights=weights)[0]
        words.append(word(concept, speaker))
    return lexicon(lang).clause(words)  # in the sentence's language's word order


@cache
def switch_partners(lang: str, langs: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The languages ``lang`` code-switches with and how often: 4× for its own family, 2× for
    its own script, so typological neighbours share more contexts."""
    me = get_language(lang)
    partners, weights = [], []
    for other in langs:
        if other == lang:
            continue
        them = get_language(other)
        weight = 1.0 + 3.0 * (them.family == me.family) + 1.0 * (them.script == me.script)
        partners.append(other)
        weights.append(weight)
    return tuple(partners), tuple(weights)


def code_switched_documents(
    langs: Sequence[str],
    rows_per_language: int | Mapping[str, int],
    seed: int,
    rate: float = SWITCH_RATE,
) -> list[str]:
    """Paragraphs of code-switched premise and hypothesis sentences (labels never appear);
    ``rows_per_language`` is one count for all or a count per language."""
    rng = random.Random(f"mslt-it/world/text/{seed}")
    pool = tuple(langs)
    counts = _counts(langs, rows_per_language)
    docs = []
    for lang in langs:
        partners, weights = switch_partners(lang, pool)
        for index in range(counts[lang]):
            premise, hypothesis, _ = xnli_concepts("train", index)
            docs.append(
                realise(premise, lang, rng, partners, weights, rate)
                + " "
                + realise(hypothesis, lang, rng, partners, weights, rate)
            )
    return docs


def frame_conversations(
    langs: Sequence[str],
    per_language: int | Mapping[str, int],
    seed: int,
    rate: float = SWITCH_RATE,
) -> list[list[dict[str, str]]]:
    """Synthetic XNLI rows in the prompt frames of the shipped XNLI templates, each answered
    with a random label word of the template (never the row's label)."""
    templates = [t for t in load_templates().values() if t.spec.task == "xnli"]
    rng = random.Random(f"mslt-it/world/frames/{seed}")
    pool = tuple(langs)
    counts = _counts(langs, per_language)
    conversations = []
    for lang in langs:
        usable = [t for t in templates if lang in t.languages]
        partners, weights = switch_partners(lang, pool)
        for number in range(counts[lang]):
            premise, hypothesis, _ = xnli_concepts("train", 50_000 + number)
            row = {
                "premise": realise(premise, lang, rng, partners, weights, rate),
                "hypothesis": realise(hypothesis, lang, rng, partners, weights, rate),
                "label": rng.randrange(3),  # a random answer: the frame is known, the task not
            }
            template = rng.choice(usable)
            rendered = template.render(row, lang)
            conversations.append(
                [
                    {"role": "user", "content": rendered.instruction},
                    {"role": "assistant", "content": rendered.answer},
                ]
            )
    return conversations


CLASSES = 20
"""Concept classes of the shared grammar: 400 concepts, 20 classes of 20."""
SUCCESSORS = 3
"""Classes that may follow a class."""


@cache
def grammar(seed: int = 0) -> dict[int | str, tuple[int, ...]]:
    """Which concept classes may follow each class, and the negation and hedge words.

    The same for every language: meaning lives at the concept level, so a word's neighbours
    predict it the same way in every language, and code-switched text ties each language's word
    to the shared concept. The negation and hedge words are followed by classes of their own,
    so their contexts tell them apart (in the task rows they would otherwise look alike).
    """
    rng = random.Random(f"mslt-it/world/grammar/{seed}")
    table: dict[int | str, tuple[int, ...]] = {
        c: tuple(rng.sample(range(CLASSES), SUCCESSORS)) for c in range(CLASSES)
    }
    table[NEGATION] = (0, 1, 2)
    table[HEDGE] = (3, 4, 5)
    return table


def grammar_sentence(rng: random.Random, length: int, seed: int = 0) -> list[int | str]:
    """A sentence of concepts from the shared grammar, with a negation or hedge now and then."""
    per_class = CONTENT_WORDS // CLASSES
    table = grammar(seed)
    concepts: list[int | str] = []
    current: int | str = rng.randrange(CLASSES)
    for _ in range(length):
        if rng.random() < CUE_SHARE:
            current = rng.choice((NEGATION, HEDGE))
            concepts.append(current)
        cls = rng.choice(table[current])
        concepts.append(cls * per_class + rng.randrange(per_class))
        current = cls
    return concepts


def grammar_documents(
    langs: Sequence[str],
    per_language: int | Mapping[str, int],
    seed: int,
    rate: float = SWITCH_RATE,
) -> list[str]:
    """Paragraphs of grammar sentences in every language, code-switched with its partners."""
    rng = random.Random(f"mslt-it/world/grammar-text/{seed}")
    pool = tuple(langs)
    counts = _counts(langs, per_language)
    docs = []
    for lang in langs:
        partners, weights = switch_partners(lang, pool)
        for _ in range(counts[lang]):
            concepts = [grammar_sentence(rng, rng.randint(5, 10)) for _ in range(2)]
            sentences = [realise(c, lang, rng, partners, weights, rate) for c in concepts]
            docs.append(" ".join(sentences))
    return docs
