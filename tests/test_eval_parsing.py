"""Parsing model outputs and scoring them: no string crashes a parser, and F1 is seqeval's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mslt_it.evaluation.metrics import (
    averages,
    bootstrap_interval,
    entity_counts,
    f1_from_counts,
    seqeval_f1,
)
from mslt_it.evaluation.parsing import align_entities, parse_entities, spans_to_bio
from mslt_it.evaluation.scoring import ner_statistics, parse_record, score_language
from mslt_it.label_words import find_labels, parse_label
from mslt_it.prompts import get_template
from mslt_it.tasks import get_task
from mslt_it.tasks.ner import TAG_NAMES, entities_from_tags
from mslt_it.tasks.sources import open_split

XNLI_EN = {"entailment": "entailment", "neutral": "neutral", "contradiction": "contradiction"}
XNLI_DE = {"entailment": "ja", "neutral": "vielleicht", "contradiction": "nein"}
XNLI_ZH = {"entailment": "蕴含", "neutral": "中立", "contradiction": "矛盾"}
PAWSX_WORDS = {"not_paraphrase": "not paraphrase", "paraphrase": "paraphrase"}
NER_WORDS = {"PER": "PER", "ORG": "ORG", "LOC": "LOC", "NONE": "None"}


@pytest.mark.parametrize(
    ("output", "verbalizer", "expected"),
    [
        ("entailment", XNLI_EN, "entailment"),
        ("Entailment.", XNLI_EN, "entailment"),
        ('"NEUTRAL"', XNLI_EN, "neutral"),
        ("The answer is: contradiction!", XNLI_EN, "contradiction"),
        ("**Contradiction**\n\nBecause the hypothesis negates it.", XNLI_EN, "contradiction"),
        ("ＥＮＴＡＩＬＭＥＮＴ", XNLI_EN, "entailment"),  # full-width, NFKC-normalised
        ("Ja.", XNLI_DE, "entailment"),
        ("Die Antwort ist: Nein", XNLI_DE, "contradiction"),
        ("答案是矛盾。", XNLI_ZH, "contradiction"),  # no spaces around the word in Chinese
        ("「中立」", XNLI_ZH, "neutral"),
        ("not paraphrase", PAWSX_WORDS, "not_paraphrase"),  # longer word wins, not both
        ("Paraphrase", PAWSX_WORDS, "paraphrase"),
    ],
)
def test_label_words_are_found_amid_chatter(output, verbalizer, expected):
    assert parse_label(output, verbalizer) == expected


@pytest.mark.parametrize(
    ("output", "verbalizer"),
    [
        ("", XNLI_EN),
        ("I am not sure.", XNLI_EN),
        ("entailment or contradiction", XNLI_EN),  # two labels: invalid, not the first one
        ("janein", XNLI_DE),  # glued Latin letters are not the word "ja"
        ("Jahr", XNLI_DE),  # "ja" inside another word
        ("entailments", XNLI_EN),
    ],
)
def test_no_label_or_several_labels_is_invalid(output, verbalizer):
    assert parse_label(output, verbalizer) is None


YES_NO_ZH = {"paraphrase": "是", "not_paraphrase": "否"}
XNLI_TH = {"entailment": "จริง", "neutral": "อาจจะ", "contradiction": "ขัดแย้ง"}
ABCD = {letter: letter for letter in "ABCD"}
XNLI_VI = {"entailment": "đúng", "neutral": "có thể", "contradiction": "sai"}


@pytest.mark.parametrize(
    ("output", "verbalizer", "expected"),
    [
        ("不是", YES_NO_ZH, None),  # "is not": it was read as 是, the opposite answer
        ("ไม่จริง", XNLI_TH, None),  # "not true" was read as จริง (true)
        ("是的", YES_NO_ZH, "paraphrase"),  # "yes, it is": no negation
        ("HAYIR", {"yes": "evet", "no": "hayır"}, "no"),  # casefold gives i, the word has ı
        ("ΟΧΙ", {"contradiction": "όχι", "neutral": "ίσως", "entailment": "ναι"}, "contradiction"),
        ("نَعَمْ", {"yes": "نعم", "no": "لا"}, "yes"),  # vowel marks
        ("نعـم", {"yes": "نعم", "no": "لا"}, "yes"),  # tatweel
        ("हां", {"yes": "हाँ", "no": "नहीं"}, "yes"),  # anusvara for chandrabindu
        ("١", {"a": "1", "b": "2"}, "a"),  # Arabic-Indic digit
        ("The answer is B, a dog.", ABCD, "B"),  # the article is no second answer
        ("Answer: C. It is a lie.", ABCD, "C"),
        ("b", ABCD, "B"),  # in another case when nothing else names a label
        ("A or B", ABCD, None),
        # a mark on a Latin letter is part of the word: no loose reading drops it
        ("Tôi ở Sài Gòn", XNLI_VI, None),
        ("đụng", XNLI_VI, None),
        ("Si la premisa es cierta", {"entailment": "sí", "contradiction": "no"}, None),
        ("Η απάντηση είναι ΟΧΙ", {"contradiction": "όχι", "entailment": "ναι"}, "contradiction"),
    ],
)
def test_negations_optional_marks_and_letters_are_read_as_a_reader_would(
    output, verbalizer, expected
):
    assert parse_label(output, verbalizer) == expected


def test_optional_marks_are_dropped_only_where_the_words_stay_apart():
    words = {"a": "sài", "b": "sai"}  # alike without their marks: only the strict reading
    assert parse_label("SÀI", words) == "a" and parse_label("sai", words) == "b"
    assert parse_label("SAÍ", words) is None


def test_found_labels_keep_their_order():
    assert find_labels("neutral, then entailment", XNLI_EN) == ["neutral", "entailment"]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_label_parser_never_crashes(text):
    for verbalizer in (XNLI_EN, XNLI_DE, XNLI_ZH, PAWSX_WORDS):
        label = parse_label(text, verbalizer)
        assert label is None or label in verbalizer


@settings(max_examples=300, deadline=None)
@given(
    st.text(),
    st.lists(st.text(min_size=0, max_size=6), max_size=12),
)
def test_entity_parser_and_aligner_never_crash(text, tokens):
    parsed = parse_entities(text, NER_WORDS)
    spans = align_entities(parsed.entities, tokens)
    tags = spans_to_bio(spans, len(tokens))
    assert len(tags) == len(tokens)
    for kind, start, end in spans:
        assert kind in ("PER", "ORG", "LOC") and 0 <= start < end <= len(tokens)
    covered = [i for _, s, e in spans for i in range(s, e)]
    assert len(covered) == len(set(covered))  # no token tagged twice


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("PERORGLOC: $None\nAdaLondon,.")), max_size=60))
def test_entity_parser_on_near_format_strings(text):
    parsed = parse_entities(text, NER_WORDS)
    assert all(kind in ("PER", "ORG", "LOC") and entity for kind, entity in parsed.entities)


def test_entity_answer_is_parsed_and_aligned():
    tokens = ["Ada", "Lovelace", "was", "born", "in", "London", "."]
    parsed = parse_entities("PER: Ada Lovelace $$ LOC: London", NER_WORDS)
    assert parsed.valid and parsed.entities == (("PER", "Ada Lovelace"), ("LOC", "London"))
    spans = align_entities(parsed.entities, tokens)
    assert spans == [("PER", 0, 2), ("LOC", 5, 6)]
    assert spans_to_bio(spans, len(tokens)) == ["B-PER", "I-PER", "O", "O", "O", "B-LOC", "O"]


def test_entity_answers_tolerate_case_quotes_and_chatter():
    assert parse_entities("none", NER_WORDS) == parse_entities('"None."', NER_WORDS)
    assert parse_entities("None", NER_WORDS).valid
    parsed = parse_entities("Entities:\nper: 'Ada Lovelace'\nloc：London", NER_WORDS)
    # the text as written (its edge marks may be the sentence's: "Inc."); the quotes, which
    # the sentence lacks, come off where it is matched to the tokens
    assert parsed.entities == (("PER", "'Ada Lovelace'"), ("LOC", "London"))
    tokens = ["Ada", "Lovelace", "lived", "in", "London"]
    assert align_entities(parsed.entities, tokens) == [("PER", 0, 2), ("LOC", 4, 5)]
    assert not parse_entities("I cannot find any.", NER_WORDS).valid


def test_alignment_joins_chinese_without_spaces_and_skips_hallucinations():
    tokens = ["艾", "达", "住", "在", "伦", "敦"]
    spans = align_entities([("PER", "艾达"), ("LOC", "伦敦"), ("ORG", "谷歌")], tokens)
    assert spans == [("PER", 0, 2), ("LOC", 4, 6)]


def test_alignment_takes_repeated_entities_in_order():
    tokens = ["Paris", "and", "Paris"]
    spans = align_entities([("LOC", "Paris"), ("LOC", "Paris"), ("LOC", "Paris")], tokens)
    assert spans == [("LOC", 0, 1), ("LOC", 2, 3)]


def tags(*names: str) -> list[int]:
    return [TAG_NAMES.index(name) for name in names]


# Hand-checked cases: (gold tags, predicted BIO, expected F1 ×100).
# 1: 2 gold, 2 predicted, 1 right -> P = R = 1/2 -> 50.
# 2: span boundary wrong (B-PER I-PER vs B-PER O) -> no match; 1 gold, 1 pred -> 0.
# 3: I- without B- in gold starts an entity (conlleval); predicted the same -> 100.
# 4: type wrong -> 0; 5: all O on both sides -> 0 (seqeval's zero_division).
HAND_CHECKED = [
    (
        [tags("B-PER", "I-PER", "O", "B-LOC")],
        [["B-PER", "I-PER", "O", "B-ORG"]],
        50.0,
    ),
    ([tags("B-PER", "I-PER", "O")], [["B-PER", "O", "O"]], 0.0),
    ([tags("O", "I-LOC", "I-LOC")], [["O", "B-LOC", "I-LOC"]], 100.0),
    ([tags("B-ORG")], [["B-LOC"]], 0.0),
    ([tags("O", "O")], [["O", "O"]], 0.0),
    (
        [tags("B-PER", "O"), tags("B-LOC", "I-LOC"), tags("B-ORG")],
        [["B-PER", "O"], ["B-LOC", "O"], ["B-ORG"]],
        # gold 3, predicted 3, right 2 -> 2/3 both ways -> 66.666…
        200 / 3,
    ),
]


@pytest.mark.parametrize(("gold", "predicted", "expected"), HAND_CHECKED)
def test_wikiann_f1_equals_seqeval_on_hand_checked_cases(gold, predicted, expected):
    from seqeval.metrics import f1_score

    reference = 100 * f1_score(
        [[TAG_NAMES[t] for t in row] for row in gold], predicted, zero_division=0
    )
    assert seqeval_f1(gold, predicted) == pytest.approx(reference)
    assert reference == pytest.approx(expected)
    # The counts behind the bootstrap agree with seqeval too.
    counts = np.array(
        [
            entity_counts(entities_from_tags(g), _spans_of(p))
            for g, p in zip(gold, predicted, strict=True)
        ]
    ).sum(axis=0)
    assert f1_from_counts(*counts) == pytest.approx(expected)


def _spans_of(bio: list[str]) -> list[tuple[str, int, int]]:
    return entities_from_tags([TAG_NAMES.index(tag) for tag in bio])


@pytest.mark.parametrize("lang", ["en", "zh", "th", "ar", "ja"])
def test_gold_answers_score_100_in_every_script(lang):
    """The template's own answer, parsed and aligned back, reproduces the gold tags."""
    template = get_template("wikiann/en-instruct")
    rows = open_split(get_task("wikiann"), lang, "test", "synthetic").rows(range(30))
    records = []
    for row in rows:
        record = {
            "task": "wikiann",
            "lang": lang,
            "output": template.render(row, lang).answer,
            "gold": get_task("wikiann").gold_label(row, lang),
            "tokens": row["tokens"],
            "ner_tags": row["ner_tags"],
        }
        records.append(parse_record(record, template))
    assert all(r["correct"] and not r["invalid"] for r in records)
    scores = score_language(records, "ner", [0], 100)
    assert scores["score"] == 100.0 and scores["span_f1"] == 100.0
    assert all(ner_statistics(r)[3] == 0 for r in records)  # nothing unaligned


def test_bootstrap_is_seeded_and_brackets_the_score():
    correct = np.array([1.0] * 70 + [0.0] * 30)
    first = bootstrap_interval(correct, "accuracy", 500, 7)
    assert first == bootstrap_interval(correct, "accuracy", 500, 7)
    assert first[0] < 70 < first[1]
    assert bootstrap_interval(correct, "accuracy", 0, 7) is None


def test_averages_unweighted_and_weighted():
    per_language = {"a": {"score": 50.0, "n": 100}, "b": {"score": 100.0, "n": 300}}
    result = averages(per_language, ["a", "b"])
    assert result["unweighted"] == 75.0 and result["weighted"] == 87.5


def test_a_rank_tie_goes_to_the_tasks_first_choice_before_and_after_the_file() -> None:
    """By the order of the record's keys, a tie went to the first label at evaluation and to
    the alphabetically first once ``predictions.jsonl`` (keys sorted) was read back."""
    import json

    from mslt_it.evaluation.scoring import parse_ranked_choice

    record = {"scores": {"yes": -1.5, "no": -1.5}, "gold": "no"}
    again = json.loads(json.dumps(record, sort_keys=True))
    assert parse_ranked_choice(dict(record), ["yes", "no"])["parsed"] == "yes"
    assert parse_ranked_choice(again, ["yes", "no"])["parsed"] == "yes"


def test_an_exact_span_compares_entity_text_as_the_headline_f1_does() -> None:
    """A full-width entity scored 100 F1 and 0 exact-span F1, and was not ``correct``."""
    template = get_template("wikiann/en-instruct")
    record = {"task": "wikiann", "lang": "ja", "id": "r", "gold": "", "output": "LOC: Tokyo",
              "tokens": ["Ｔｏｋｙｏ", "is", "big"], "ner_tags": [5, 0, 0]}  # fmt: skip
    parsed = parse_record(record, template)
    assert parsed["correct"]
    _, entity, exact, _ = ner_statistics(parsed)
    assert entity == exact


def test_rows_scoring_minus_infinity_alike_are_identical() -> None:
    from mslt_it.evaluation.sanity import adapter_sanity

    row = {"task": "xcopa", "lang": "et", "id": "1", "scores": {"0": float("-inf"), "1": -2.0}}
    sanity = adapter_sanity([row], [dict(row, scores=dict(row["scores"]))])
    assert sanity is not None and sanity["identical_rows"] == 1 and sanity["same_as_base"]


def test_a_rank_mode_classification_row_is_the_label_its_scores_rank_first() -> None:
    """The answer text was read back through the parser: a template answer that did not read
    as its label made every row invalid (accuracy 0 with the gold ranked first on each)."""
    template = get_template("xnli/en-instruct")
    tied = {"entailment": -3.0, "neutral": -1.0, "contradiction": -1.0}
    record = {"task": "xnli", "lang": "en", "id": "r", "gold": "neutral", "mode": "rank",
              "output": "", "scores": tied}  # fmt: skip
    parsed = parse_record(record, template)
    assert (parsed["parsed"], parsed["invalid"], parsed["correct"]) == ("neutral", False, True)


def test_a_plain_templates_answer_is_read_up_to_the_first_blank_line() -> None:
    """A base model answers a Belebele document and goes on into the next one; its labels there
    made the answer invalid. lm-eval stops at a blank line; an instruction template does not."""
    output = "B\n\nP: A new museum opened.\nQ: When?\nA: 1900\nB: 1901"
    record = {"task": "belebele", "lang": "en", "id": "r", "gold": "B", "output": output}
    parsed = parse_record(dict(record), get_template("belebele/lm-eval"))
    assert (parsed["parsed"], parsed["invalid"], parsed["correct"]) == ("B", False, True)
    chatty = parse_record(dict(record, output="A\n\nB"), get_template("belebele/lm-eval"))
    assert chatty["parsed"] == "A"
