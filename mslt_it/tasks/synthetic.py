"""A deterministic, offline stand-in for mslt-it's benchmarks in any supported language.

Each language gets an invented lexicon written in its own script. Rows have the real datasets'
schema and labels that a tiny model can learn from cues that are consistent *within* a language
but spelled differently *across* languages, which is the situation cross-lingual transfer faces:

- XNLI: the hypothesis is a fragment of the premise; a contradiction inserts the language's
  negation word, a neutral hypothesis inserts its hedge word ("perhaps"), an entailment neither.
- PAWS-X: sentence 2 restates sentence 1; a non-paraphrase swaps two words and inserts the
  language's contrast word, a paraphrase inserts its "also" word. A few training rows carry the
  label -1, as unlabelled rows do in the wild, so the dropping path is exercised.
- WikiAnn: persons follow the language's title word, locations its "in" word, and organisations
  end in its "company" word (which belongs to the entity). No content word is spelled like an
  entity name, so a token's tag does not change from row to row. (About 5 % of persons and
  locations have another entity inserted between the cue word and the name; kept, as the
  shipped bases record a held-out loss on these rows.)
- XCOPA: the right alternative carries the language's "also" word when the question asks for the
  effect and its hedge word when it asks for the cause; the wrong one carries the other word.
- XStoryCloze: the right ending repeats the story's last word after the "also" word; the wrong
  ending carries the negation word and a word the story never used. Both endings then take 1-3
  filler words drawn alike, so their lengths (3-5 words) say nothing about which is right.
- Bactrian-X: an instruction is the language's word for one operation on the input words (copy
  them, reverse them, give the first, the last or the longest, count them), and the output follows
  from the input, so an adapter can learn the operations and answer held-out instructions.
- XWinograd: of the two names, the story mentions one before the blank; that one fills it, and
  the text after the blank repeats the word that followed the name.

Row ``i`` of a split is generated from its own seed, so any subset of rows costs only that subset.
That seed does not depend on the language: row ``i`` in German and row ``i`` in Arabic say the same
thing word for word through each language's lexicon, as XNLI's rows are translations of each other.
So the rows are parallel sentences for representation analysis, and transfer between languages is a
question of mapping surface forms, which is what multi-source training is meant to help with.

Where their real counterparts' typology says so, languages share more than meaning:

- **cognates**: languages of one family that write one script (en, de, es, fr; ru, bg…) share
  the forms of :data:`COGNATE_SHARE` of their content words, each a common root with, half the
  time, a last letter of the language's own. The task's cue words (negation, hedge, "also"…)
  stay each language's own, so a label is never given away by spelling;
- **word order**: languages that lang2vec's syntax features (``S_OBJECT_BEFORE_VERB``, the
  shipped ``syntax_knn`` set) mark as object-before-verb (de, hi, tr, ur, ja, ko…) write the
  sentences of the sentence-pair tasks (XNLI, PAWS-X) head-final, as the mirror image of the
  head-initial order. The other tasks keep one order: their answers name positions (the first
  or last word, the word after a name, an entity's span).
"""

from __future__ import annotations

import random
import unicodedata
import zlib
from dataclasses import dataclass, replace
from functools import cache

from mslt_it.languages import all_languages, get_language
from mslt_it.tasks.base import SCRIPTIO_CONTINUA, Row, Task, join_tokens
from mslt_it.tasks.ner import row_entities
from mslt_it.typology import shipped_feature

SPLIT_SIZES: dict[str, dict[str, int]] = {
    "xnli": {"train": 100_000, "validation": 2_490, "test": 5_010},
    "pawsx": {"train": 49_401, "validation": 2_000, "test": 2_000},
    "wikiann": {"train": 20_000, "validation": 10_000, "test": 10_000},
    "xcopa": {"validation": 100, "test": 500},
    "xstorycloze": {"train": 360, "eval": 1_511},
    "xwinograd": {"test": 2_325},
    "bactrianx": {"train": 67_017},
}

OPERATIONS = ("copy", "reverse", "first", "last", "longest", "count")
"""The synthetic instructions, each named by a word of the language's own."""

# Unicode blocks from which each script's letters are drawn (letters only, no combining marks).
SCRIPT_BLOCKS: dict[str, tuple[tuple[int, int], ...]] = {
    "Latn": ((0x61, 0x7A),),
    "Cyrl": ((0x430, 0x44F),),
    "Grek": ((0x3B1, 0x3C9),),
    "Armn": ((0x561, 0x586),),
    "Hebr": ((0x5D0, 0x5EA),),
    "Arab": ((0x627, 0x64A),),
    "Thaa": ((0x780, 0x7A5),),
    "Syrc": ((0x710, 0x72C),),
    "Deva": ((0x915, 0x939),),
    "Beng": ((0x995, 0x9B9),),
    "Guru": ((0xA15, 0xA39),),
    "Gujr": ((0xA95, 0xAB9),),
    "Orya": ((0xB15, 0xB39),),
    "Taml": ((0xB95, 0xBB9),),
    "Telu": ((0xC15, 0xC39),),
    "Knda": ((0xC95, 0xCB9),),
    "Mlym": ((0xD15, 0xD39),),
    "Sinh": ((0xD9A, 0xDC6),),
    "Thai": ((0xE01, 0xE2E),),
    "Laoo": ((0xE81, 0xEAE),),
    "Tibt": ((0xF40, 0xF6C),),
    "Mymr": ((0x1000, 0x1021),),
    "Geor": ((0x10D0, 0x10F0),),
    "Hang": ((0xAC00, 0xAE00),),
    "Kore": ((0xAC00, 0xAE00),),
    "Ethi": ((0x1200, 0x1350),),
    "Cher": ((0x13A0, 0x13F4),),
    "Cans": ((0x1401, 0x1470),),
    "Khmr": ((0x1780, 0x17A2),),
    "Mong": ((0x1820, 0x1842),),
    "Hani": ((0x4E00, 0x5200),),
    "Jpan": ((0x3041, 0x3096), (0x30A1, 0x30FA), (0x4E00, 0x4F00)),
}
FULL_STOP = {"Hani": "。", "Jpan": "。", "Deva": "।", "Beng": "।", "Arab": ".", "Thai": ""}

CONTENT_WORDS = 400
NAMES_PER_TYPE = 60
COGNATE_SHARE = 0.4
"""Share of content concepts whose words are cognates within a family and script."""


@dataclass(frozen=True)
class Lexicon:
    """The invented vocabulary of one language."""

    lang: str
    script: str
    words: tuple[str, ...]
    negation: str
    hedge: str
    also: str
    contrast: str
    title: str
    location_cue: str
    company: str
    persons: tuple[str, ...]
    locations: tuple[str, ...]
    organisations: tuple[str, ...]
    operations: tuple[str, ...] = ()
    head_final: bool = False

    def sentence(self, tokens: list[str]) -> str:
        """Join words as the language writes them and end with its full stop."""
        text = join_tokens(tokens, self.lang)
        return text + FULL_STOP.get(self.script, ".")

    def clause(self, tokens: list[str]) -> str:
        """A sentence of a sentence-pair task, in the language's word order."""
        return self.sentence(tokens[::-1] if self.head_final else tokens)


@cache
def script_alphabet(script: str) -> tuple[str, ...]:
    """The letters synthetic words in ``script`` are made of."""
    blocks = SCRIPT_BLOCKS.get(script, SCRIPT_BLOCKS["Latn"])
    letters = [
        chr(code)
        for start, end in blocks
        for code in range(start, end + 1)
        if unicodedata.category(chr(code)).startswith("L")
    ]
    return tuple(letters)


@cache
def own_lexicon(lang: str) -> Lexicon:
    """``lang``'s own invented words, before cognates and word order (:func:`lexicon`)."""
    script = get_language(lang).script
    rng = random.Random(f"mslt-it/lexicon/{lang}")
    letters = draw_letters(rng, script)
    lengths = (1, 2, 2) if is_ideographic(script) else (2, 3, 4, 5, 6)
    seen: set[str] = set()

    def new_word() -> str:
        for _ in range(10_000):
            word = "".join(rng.choice(letters) for _ in range(rng.choice(lengths)))
            if word not in seen:
                seen.add(word)
                return word
        raise RuntimeError(f"synthetic lexicon of {lang} ({script}) ran out of distinct words")

    def name() -> str:
        word = new_word()
        return word[:1].upper() + word[1:]

    function_words = [new_word() for _ in range(7)]
    words = tuple(new_word() for _ in range(CONTENT_WORDS))
    return Lexicon(
        lang=lang,
        script=script,
        words=words,
        negation=function_words[0],
        hedge=function_words[1],
        also=function_words[2],
        contrast=function_words[3],
        title=function_words[4],
        location_cue=function_words[5],
        company=function_words[6],
        persons=tuple(name() for _ in range(NAMES_PER_TYPE)),
        locations=tuple(name() for _ in range(NAMES_PER_TYPE)),
        organisations=tuple(name() for _ in range(NAMES_PER_TYPE)),
        operations=tuple(new_word() for _ in OPERATIONS),  # drawn last: earlier words unchanged
    )


@cache
def lexicon(lang: str) -> Lexicon:
    """The invented lexicon of ``lang``, the same on every machine and every run: its own words,
    with its family's cognates and its word order (see the module's docstring)."""
    own = own_lexicon(lang)
    words = with_cognates(own, letters_of(lang))
    return replace(own, words=words, head_final=is_head_final(lang))


def is_ideographic(script: str) -> bool:
    """Whether words of ``script`` are one or two characters long (Han, kana…): a script written
    without spaces, Thai excepted."""
    return script in SCRIPTIO_CONTINUA and script != "Thai"


def draw_letters(rng: random.Random, script: str) -> list[str]:
    """The letters a lexicon's words are made of, drawn from ``script``'s alphabet.

    Ideographic words are one or two characters long, so they need a larger character set.
    """
    alphabet = list(script_alphabet(script))
    return rng.sample(alphabet, k=min(len(alphabet), 120 if is_ideographic(script) else 18))


def letters_of(lang: str) -> list[str]:
    """The letters ``lang``'s own words are drawn from (the first draws of its lexicon's stream)."""
    return draw_letters(random.Random(f"mslt-it/lexicon/{lang}"), own_lexicon(lang).script)


@cache
def is_head_final(lang: str) -> bool:
    """Whether lang2vec (shipped ``syntax_knn``) puts the object before the verb in ``lang``.

    A language lang2vec lacks is head-initial, the registry's majority.
    """
    value = object_before_verb().get(get_language(lang).iso639_3, 0.0)
    return value > 0.5  # NaN compares false: unknown stays head-initial


@cache
def object_before_verb() -> dict[str, float]:
    """lang2vec's ``S_OBJECT_BEFORE_VERB`` for every language in the shipped syntax set."""
    return shipped_feature("syntax_knn", "S_OBJECT_BEFORE_VERB")


@cache
def cognate_group(lang: str) -> tuple[str, ...]:
    """The registry's languages of ``lang``'s family that write its script (itself included);
    empty for an isolate, a constructed language or a family of one."""
    me = get_language(lang)
    if me.family in UNRELATED_FAMILIES:
        return ()
    group = tuple(
        code
        for code, other in sorted(all_languages().items())
        if other.family == me.family and other.script == me.script
    )
    return group if len(group) > 1 else ()


UNRELATED_FAMILIES = frozenset({"Language isolate", "Constructed", "Creole", "Pidgin", "Other"})
"""Registry families whose members share no inherited words."""


def with_cognates(own: Lexicon, letters: list[str]) -> tuple[str, ...]:
    """``own.words`` with the group's cognate forms in place of the cognate concepts' words.

    A cognate form that would coincide with another word of the language keeps the own word,
    so every word still names one concept. The language's entity names count as its words here:
    in a caseless script a name is written like a word, and a form equal to one would make the
    same token an entity in one WikiAnn row and ``O`` in another.
    """
    if not cognate_group(own.lang):
        return own.words
    roots = cognate_roots(own.script, get_language(own.lang).family)
    taken = set(own.words) | {own.negation, own.hedge, own.also, own.contrast, own.title}
    taken |= {own.location_cue, own.company, *own.operations}
    taken |= {*own.persons, *own.locations, *own.organisations}
    words = list(own.words)
    for concept, root in roots.items():
        rng = random.Random(f"mslt-it/cognate/{own.lang}/{concept}")
        form = root[:-1] + rng.choice(letters) if len(root) > 1 and rng.random() < 0.5 else root
        if form not in taken:
            taken.discard(words[concept])
            taken.add(form)
            words[concept] = form
    return tuple(words)


@cache
def cognate_roots(script: str, family: str) -> dict[int, str]:
    """The shared roots of one family and script: concept -> root, for a share of the concepts."""
    rng = random.Random(f"mslt-it/cognates/{family}/{script}")
    letters = draw_letters(rng, script)
    lengths = (1, 2, 2) if is_ideographic(script) else (3, 4, 5, 6)
    concepts = sorted(rng.sample(range(CONTENT_WORDS), round(COGNATE_SHARE * CONTENT_WORDS)))
    roots: dict[int, str] = {}
    seen: set[str] = set()
    for concept in concepts:
        root = "".join(rng.choice(letters) for _ in range(rng.choice(lengths)))
        while root in seen:
            root = "".join(rng.choice(letters) for _ in range(rng.choice(lengths)))
        seen.add(root)
        roots[concept] = root
    return roots


def row_rng(task: str, split: str, index: int) -> random.Random:
    """The same stream in every language: rows with one index are translations of each other."""
    return random.Random(f"mslt-it/{task}/{split}/{index}")


def xnli_row(lang: str, split: str, index: int) -> Row:
    """Row ``index`` of synthetic XNLI in ``lang``."""
    lex = lexicon(lang)
    rng = row_rng("xnli", split, index)
    premise = rng.choices(lex.words, k=rng.randint(6, 12))
    start = rng.randrange(0, len(premise) - 3)
    hypothesis = premise[start : start + rng.randint(3, 5)]
    label = rng.randrange(3)
    if label > 0:
        cue = lex.hedge if label == 1 else lex.negation
        hypothesis.insert(rng.randint(0, 1), cue)
    return {
        "premise": lex.clause(premise),
        "hypothesis": lex.clause(hypothesis),
        "label": label,
    }


def pawsx_row(lang: str, split: str, index: int) -> Row:
    """Row ``index`` of synthetic PAWS-X in ``lang``."""
    lex = lexicon(lang)
    rng = row_rng("pawsx", split, index)
    first = rng.choices(lex.words, k=rng.randint(6, 12))
    second = list(first)
    label = rng.randrange(2)
    if label == 1:
        second.insert(rng.randint(0, 2), lex.also)
    else:
        i, j = rng.sample(range(len(second)), 2)
        second[i], second[j] = second[j], second[i]
        second.insert(rng.randint(0, 2), lex.contrast)
    if is_unlabelled(lang, split, index):
        label = -1
    return {
        "id": index,
        "sentence1": lex.clause(first),
        "sentence2": lex.clause(second),
        "label": label,
    }


def is_unlabelled(lang: str, split: str, index: int) -> bool:
    """About 2% of synthetic PAWS-X training rows are labelled -1 (decided by a cheap hash)."""
    return split == "train" and zlib.crc32(f"pawsx/{index}".encode()) % 50 == 0


def wikiann_row(lang: str, split: str, index: int) -> Row:
    """Row ``index`` of synthetic WikiAnn in ``lang`` (tags: O, B/I-PER, B/I-ORG, B/I-LOC)."""
    lex = lexicon(lang)
    rng = row_rng("wikiann", split, index)
    tokens: list[str] = rng.choices(lex.words, k=rng.randint(3, 8))
    tags: list[int] = [0] * len(tokens)
    for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
        kind = rng.choice(("PER", "ORG", "LOC"))
        if kind == "PER":
            names = rng.sample(lex.persons, rng.randint(1, 2))
            piece, piece_tags = [lex.title, *names], [0, 1] + [2] * (len(names) - 1)
        elif kind == "ORG":
            piece, piece_tags = [rng.choice(lex.organisations), lex.company], [3, 4]
        else:
            piece, piece_tags = [lex.location_cue, rng.choice(lex.locations)], [0, 5]
        at = rng.randint(0, len(tokens))
        while at < len(tags) and tags[at] in (2, 4, 6):  # never split an entity
            at += 1
        tokens[at:at] = piece
        tags[at:at] = piece_tags
    entities = row_entities({"tokens": tokens, "ner_tags": tags}, lang)
    spans = [f"{kind}: {text}" for kind, text in entities]
    return {"tokens": tokens, "ner_tags": tags, "langs": [lang] * len(tokens), "spans": spans}


def xcopa_row(lang: str, split: str, index: int) -> Row:
    """Row ``index`` of synthetic XCOPA in ``lang`` (label: the right alternative, 0 or 1)."""
    lex = lexicon(lang)
    rng = row_rng("xcopa", split, index)
    premise = rng.choices(lex.words, k=rng.randint(4, 8))
    question = rng.choice(("cause", "effect"))
    right_cue, wrong_cue = (lex.hedge, lex.also) if question == "cause" else (lex.also, lex.hedge)
    right = [right_cue, *rng.choices(lex.words, k=rng.randint(2, 5))]
    wrong = [wrong_cue, *rng.choices(lex.words, k=rng.randint(2, 5))]
    label = rng.randrange(2)
    first, second = (right, wrong) if label == 0 else (wrong, right)
    return {
        "premise": lex.sentence(premise),
        "choice1": lex.sentence(first),
        "choice2": lex.sentence(second),
        "question": question,
        "label": label,
        "idx": index,
        "changed": False,
    }


def xstorycloze_row(lang: str, split: str, index: int) -> Row:
    """Row ``index`` of synthetic XStoryCloze in ``lang`` (answer_right_ending: 1 or 2)."""
    lex = lexicon(lang)
    rng = row_rng("xstorycloze", split, index)
    story = [rng.choices(lex.words[:200], k=rng.randint(3, 6)) for _ in range(4)]
    # Both endings: cue word, key word, then 1-3 filler words drawn alike, so the ending's length
    # says nothing about which is right (a fixed length for either would give the answer away).
    right = [lex.also, story[3][-1], *rng.choices(lex.words[:200], k=rng.randint(1, 3))]
    wrong = [lex.negation, rng.choice(lex.words[200:])]
    wrong += rng.choices(lex.words[:200], k=rng.randint(1, 3))
    answer = rng.randint(1, 2)
    endings = (right, wrong) if answer == 1 else (wrong, right)
    row: Row = {"story_id": f"{split}-{index}"}
    for number, sentence in enumerate(story, start=1):
        row[f"input_sentence_{number}"] = lex.sentence(sentence)
    row.update(
        sentence_quiz1=lex.sentence(endings[0]),
        sentence_quiz2=lex.sentence(endings[1]),
        answer_right_ending=answer,
    )
    return row


def xwinograd_row(lang: str, split: str, index: int) -> Row:
    """Row ``index`` of synthetic XWinograd in ``lang`` (answer: "1" or "2", as on the Hub)."""
    lex = lexicon(lang)
    rng = row_rng("xwinograd", split, index)
    first, second = rng.sample(lex.persons, 2)
    mentioned = rng.randrange(2)
    name = (first, second)[mentioned]
    verb = rng.choice(lex.words)
    before = [*rng.choices(lex.words, k=rng.randint(1, 3)), name, verb, lex.also]
    after = [verb, *rng.choices(lex.words, k=rng.randint(1, 3))]
    return {
        "sentence": lex.sentence([*before, "_", *after]),
        "option1": first,
        "option2": second,
        "answer": str(mentioned + 1),
    }


def bactrianx_row(lang: str, split: str, index: int) -> Row:
    """Row ``index`` of synthetic Bactrian-X in ``lang``: instruction, input, output, id."""
    lex = lexicon(lang)
    rng = row_rng("bactrianx", split, index)
    operation = rng.randrange(len(OPERATIONS))
    words = rng.sample(lex.words, rng.randint(3, 6))
    return {
        "instruction": lex.sentence([lex.operations[operation]]),
        "input": " ".join(words),  # spaced in every script, so the words are countable
        "output": apply_operation(OPERATIONS[operation], words),
        "id": f"{split}-{index}",
    }


def apply_operation(operation: str, words: list[str]) -> str:
    """The answer to a synthetic instruction: the operation applied to the input words."""
    if operation == "copy":
        return " ".join(words)
    if operation == "reverse":
        return " ".join(words[::-1])
    if operation == "first":
        return words[0]
    if operation == "last":
        return words[-1]
    if operation == "longest":
        return max(words, key=len)  # the first of the longest
    return str(len(words))


GENERATORS = {
    "xnli": xnli_row,
    "pawsx": pawsx_row,
    "wikiann": wikiann_row,
    "xcopa": xcopa_row,
    "xstorycloze": xstorycloze_row,
    "xwinograd": xwinograd_row,
    "bactrianx": bactrianx_row,
}

GENERATOR_KINDS: dict[str, tuple[str, int]] = {
    "xnli": ("classification", 3),
    "pawsx": ("classification", 2),
    "wikiann": ("ner", 0),
    "xcopa": ("multiple_choice", 2),
    "xstorycloze": ("multiple_choice", 2),
    "xwinograd": ("multiple_choice", 2),
    "bactrianx": ("instructions", 0),
}
"""Each generator's kind of rows and number of labels (ids 0 to n-1; 0 for kinds without a
label set). A task definition naming a generator must match it; its columns are those of a row
the generator makes (:func:`generator_columns`)."""


@cache
def generator_columns(name: str) -> tuple[str, ...]:
    """The columns of the rows generator ``name`` makes (read off one row)."""
    return tuple(GENERATORS[name]("en", "validation", 0))


def synthetic_row(task: str, lang: str, split: str, index: int) -> Row:
    """Row ``index`` of the synthetic ``task`` data in ``lang``, in the task's Hub schema."""
    return GENERATORS[task](lang, split, index)


def synthetic_text(langs: list[str], rows_per_language: int, split: str = "train") -> list[str]:
    """Plain sentences of every task in ``langs``: pre-training text for the tiny model."""
    texts: list[str] = []
    for lang in langs:
        for i in range(rows_per_language):
            nli = xnli_row(lang, split, i)
            texts += [nli["premise"], nli["hypothesis"]]
            paws = pawsx_row(lang, split, i)
            texts += [paws["sentence1"], paws["sentence2"]]
            texts.append(join_tokens(wikiann_row(lang, split, i)["tokens"], lang))
    return texts


def sample_row(task: Task, lang: str) -> Row:
    """One row to try a template on: synthetic where the task has a generator, else the
    definition's ``example``, else a stand-in with every column filled (text, label 0, one
    untagged token)."""
    generator = task.extra.get("synthetic")
    if generator in SPLIT_SIZES:
        return synthetic_row(generator, lang, "validation", 0)
    if task.extra.get("example") is not None:
        return dict(task.extra["example"])
    row: Row = {column: "text" for column in task.columns}
    if task.kind == "ner":
        row.update(tokens=["text"], ner_tags=[0])
    label_column = task.extra.get("label_column")
    if label_column:
        row[label_column] = 0
    return row
