"""Scoring defects a review found: WikiAnn entities with edge punctuation, invented entities,
answer languages of label words that are no language's, acc_norm without lengths, and
malformed entity rows in ``mslt-it score``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import assert_one_line_error
from hypothesis import given, settings
from hypothesis import strategies as st

from mslt_it.comparisons import compare_runs, read_run_rows
from mslt_it.errors import MsltError
from mslt_it.evaluation.scoring import (
    ENTITY_SCORING,
    answer_languages,
    expected_answer_language,
    ner_statistics,
    parse_ranked_choice,
    parse_record,
    score_language,
)
from mslt_it.prompts import get_template
from mslt_it.report_results import answer_language_of
from mslt_it.tasks.ner import TAG_NAMES, entities_from_tags

WIKIANN = get_template("wikiann/en-instruct")


def entity_record(tokens: list[str], tags: list[int], output: str, lang: str = "en") -> dict:
    """A WikiAnn prediction record, parsed with the shipped template's words."""
    record = {"task": "wikiann", "lang": lang, "id": "r", "template": WIKIANN.id, "gold": "",
              "output": output, "tokens": tokens, "ner_tags": tags, "mode": "generate"}  # fmt: skip
    return parse_record(record, WIKIANN)


def rendered_gold(tokens: list[str], tags: list[int], lang: str = "en") -> str:
    """The gold answer as the shipped WikiAnn templates render it (``{{ spans }}``)."""
    return WIKIANN.render({"tokens": tokens, "ner_tags": tags}, lang).answer


# 1. Entity text keeps its edge punctuation ------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "tags"),
    [
        (["He", "joined", "Apple", "Inc.", "today"], [0, 0, 3, 4, 0]),
        (["in", "the", "U.S.", "."], [0, 0, 5, 0]),
        (["Queen", "(", "band", ")"], [3, 4, 4, 4]),
    ],
)
def test_a_gold_answer_with_edge_punctuation_scores_100(tokens, tags) -> None:
    """The gold answer fed back as output scored 0: ``Inc.`` lost its full stop before it was
    looked for among the tokens."""
    output = rendered_gold(tokens, tags)
    record = entity_record(tokens, tags, output)
    scores = score_language([record], "ner", [0, 1], 0)
    assert record["correct"] and not record["invalid"], record["parsed"]
    assert (scores["score"], scores["span_f1"], scores["unaligned"]) == (100.0, 100.0, 0)


def test_the_sentences_quotes_around_an_entity_are_not_the_entitys() -> None:
    """``LOC: "London"`` where the sentence quotes London with tokens of its own: read as
    written it took the quotes' tokens too (a false positive and a miss, F1 0). Quotes that
    are whole tokens at an entity's edge are the sentence's; a gold entity holding such
    tokens (``'' Il Foglio ''``) is then read without them, which an answer cannot tell
    apart (docs/evaluation.md)."""
    tokens = ["He", "visited", '"', "London", '"', "today", "."]
    for tags in ([0, 0, 0, 5, 0, 0, 0], [0, 0, 5, 6, 6, 0, 0]):  # quotes outside, inside
        for output in ('LOC: "London"', 'LOC: "London".', "LOC: London", 'LOC: " London "'):
            record = entity_record(tokens, tags, output)
            assert record["correct"], (output, record["parsed"])
            assert score_language([record], "ner", [0, 1], 0)["score"] == 100.0
    # a gold entity holding such tokens is read without them, as answers are: its own text,
    # with its quotes or without, scores 100 (it scored 0 whatever the answer)
    quoted = ["He", "reads", "''", "Il", "Foglio", "''", "."]
    for output in ("ORG: '' Il Foglio ''", "ORG: Il Foglio", 'ORG: "Il Foglio"'):
        record = entity_record(quoted, [0, 0, 3, 4, 4, 4, 0], output)
        scores = score_language([record], "ner", [0, 1], 0)
        assert record["correct"], (output, record["parsed"])
        assert (scores["score"], scores["span_f1"], scores["unaligned"]) == (100.0, 100.0, 0)
    record = entity_record(quoted, [0, 0, 3, 4, 4, 4, 0], "ORG: reads")
    assert score_language([record], "ner", [0, 1], 0)["score"] == 0.0
    # the quotes place an entity whose text occurs twice: the quoted London is the song's,
    # in either order of the answer (the first London was taken for the ORG: F1 0, correct)
    twice = ["London", "is", "big", ".", '"', "London", '"', "is", "a", "song"]
    tags = [5, 0, 0, 0, 3, 4, 4, 0, 0, 0]
    for output in ('ORG: " London " $$ LOC: London', 'LOC: London $$ ORG: " London "'):
        record = entity_record(twice, tags, output)
        scores = score_language([record], "ner", [0, 1], 0)
        assert record["correct"], (output, record["parsed"])
        assert (scores["score"], scores["span_f1"], scores["unaligned"]) == (100.0, 100.0, 0)


def test_quotes_around_an_entity_not_in_the_sentence_are_still_taken_off() -> None:
    """The fallback: the fewest edge marks that make the text occur, then none at all."""
    tokens, tags = ["Ada", "visited", "Apple", "Inc.", "in", "London"], [1, 0, 3, 4, 0, 5]
    record = entity_record(tokens, tags, 'PER: "Ada" $$ ORG: "Apple Inc." $$ LOC: London.')
    assert record["correct"]
    assert score_language([record], "ner", [0, 1], 0)["score"] == 100.0


PUNCTUATION = ["''", "``", '"', "'", "(", ")", "-", "--", "_", ".", ",", "...", "…", ":", ";",
               "!", "?", "/", "&", "*", "[", "]", "«", "»", "“", "”", "「", "」", "—",
               "·"]  # fmt: skip
PREFIXES = ["", "", "(", "'", '"', "-", "«", "「"]
SUFFIXES = ["", "", ".", ")", "'", "-", ".,", "”", ":", "」"]


@st.composite
def tagged_sentences(draw: st.DrawFn) -> tuple[list[str], list[int], str]:
    """Tokens with punctuation tokens and words carrying edge marks (each word once, so an
    entity's text occurs in one place only), BIO tags in which every entity holds a word, and
    a language the shipped template renders (spaced or not)."""
    kinds = draw(st.lists(st.booleans(), min_size=1, max_size=12))
    tokens = []
    for index, is_word in enumerate(kinds):
        if is_word:
            word = f"Wd{index:02d}"
            tokens.append(draw(st.sampled_from(PREFIXES)) + word + draw(st.sampled_from(SUFFIXES)))
        else:
            tokens.append(draw(st.sampled_from(PUNCTUATION)))
    tags = draw(st.lists(st.integers(0, 6), min_size=len(tokens), max_size=len(tokens)))
    while True:  # an entity of marks only is nowhere a single place in the sentence
        marks_only = [
            (start, end) for _, start, end in entities_from_tags(tags) if not any(kinds[start:end])
        ]
        if not marks_only:
            break
        for start, end in marks_only:
            tags[start:end] = [0] * (end - start)
    lang = draw(st.sampled_from(["en", "de", "zh", "th", "ja"]))
    return tokens, tags, lang


@settings(max_examples=300, deadline=None)
@given(tagged_sentences())
def test_any_rendered_gold_answer_parses_back_to_f1_100(sentence) -> None:
    """Property: the gold answer, rendered as the shipped WikiAnn templates render it, read
    back as a model's output, is the gold: F1 100, exact-span F1 100, nothing unaligned."""
    tokens, tags, lang = sentence
    if not entities_from_tags(tags):
        return  # "None": no entity, F1 0 by seqeval's convention
    output = rendered_gold(tokens, tags, lang)
    record = entity_record(tokens, tags, output, lang)
    scores = score_language([record], "ner", [0, 1], 0)
    assert record["correct"], (output, record["parsed"])
    assert (scores["score"], scores["span_f1"], scores["unaligned"]) == (100.0, 100.0, 0)


# 2. Invented entities are false positives of the headline F1 -------------------------------

SENTENCE = (["Ada", "Lovelace", "met", "Babbage", "in", "London"], [1, 2, 0, 1, 0, 5])
EXACT = "PER: Ada Lovelace $$ PER: Babbage $$ LOC: London"
INVENTED = EXACT + " $$ " + " $$ ".join(f"ORG: Foo{i}" for i in range(5))


def test_invented_entities_lower_the_headline_f1() -> None:
    """Exact answer plus five invented ORGs scored F1 100: alignment dropped them."""
    exact = score_language([entity_record(*SENTENCE, EXACT)], "ner", [0, 1], 0)
    padded = score_language([entity_record(*SENTENCE, INVENTED)], "ner", [0, 1], 0)
    assert exact["score"] == 100.0 and exact["unaligned"] == 0
    assert padded["unaligned"] == 5
    assert padded["score"] == pytest.approx(round(200 * 3 / (3 + 5 + 3), 4))
    assert padded["span_f1"] == padded["score"]


def test_the_interval_resamples_sentences_with_their_invented_entities() -> None:
    records = [entity_record(*SENTENCE, INVENTED if i % 2 else EXACT) for i in range(40)]
    scores = score_language(records, "ner", [0, 1], 500)
    low, high = scores["ci95"]
    assert low < scores["score"] < high < 100.0


@st.composite
def aligned_predictions(draw: st.DrawFn) -> tuple[list[list[int]], list[list[tuple]]]:
    """Sentences of distinct words with gold tags and predicted spans (all in the sentence)."""
    sentences, predictions = [], []
    for _ in range(draw(st.integers(1, 6))):
        n = draw(st.integers(1, 8))
        sentences.append(draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)))
        spans, start = [], 0
        while start < n:
            end = draw(st.integers(start + 1, min(n, start + 3)))
            if draw(st.booleans()):
                spans.append((draw(st.sampled_from(["PER", "ORG", "LOC"])), start, end))
            start = end
        predictions.append(spans)
    return sentences, predictions


@settings(max_examples=200, deadline=None)
@given(aligned_predictions(), st.integers(0, 3))
def test_the_headline_f1_is_seqevals_when_nothing_is_unaligned(data, invented) -> None:
    """With every predicted entity in its sentence, the score is seqeval's entity-level F1
    (XTREME's metric); ``invented`` entities more make it 2·tp / (predicted + invented + gold)."""
    from seqeval.metrics import f1_score
    from seqeval.metrics.sequence_labeling import get_entities

    gold_tags, predicted = data
    records = []
    for tags, spans in zip(gold_tags, predicted, strict=True):
        tokens = [f"w{i}" for i in range(len(tags))]
        output = " $$ ".join(f"{kind}: {' '.join(tokens[s:e])}" for kind, s, e in spans)
        records.append(entity_record(tokens, tags, output or "None"))
    bio = [ner_statistics(r)[0] for r in records]
    gold_bio = [[TAG_NAMES[t] for t in tags] for tags in gold_tags]
    reference = 100 * f1_score(gold_bio, bio, zero_division=0)
    scores = score_language(records, "ner", [0, 1], 0)
    assert scores["unaligned"] == 0
    assert scores["score"] == pytest.approx(round(reference, 4), abs=1e-4)
    if invented:
        records[0] = entity_record(
            records[0]["tokens"], records[0]["ner_tags"],
            records[0]["output"].replace("None", "").strip(" $")
            + "".join(f" $$ LOC: Nowhere{i}" for i in range(invented)),
        )  # fmt: skip
        gold = sum(len(get_entities(tags)) for tags in gold_bio)
        pred = sum(len(get_entities(tags)) for tags in bio) + invented
        pairs = zip(gold_bio, bio, strict=True)
        tp = sum(len(set(get_entities(g)) & set(get_entities(p))) for g, p in pairs)
        again = score_language(records, "ner", [0, 1], 0)
        assert again["unaligned"] == invented
        expected = 200 * tp / (pred + gold) if tp else 0.0
        assert again["score"] == pytest.approx(round(expected, 4), abs=1e-4)


def _write_entity_run(folder: Path, output: str) -> None:
    folder.mkdir(parents=True)
    records = []
    for i in range(6):
        record = entity_record(*SENTENCE, output if i % 3 else EXACT)
        records.append({**record, "id": f"wikiann/en/test/{i}"})
    (folder / "predictions.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )


def test_the_paired_comparison_counts_invented_entities_as_results_do(tmp_path) -> None:
    """The report's paired F1 (comparisons.py) reuses the entity counts: it must give the
    score results.json gives, invented entities and all."""
    _write_entity_run(tmp_path / "a", EXACT)
    _write_entity_run(tmp_path / "b", INVENTED)
    a = read_run_rows("a", tmp_path / "a" / "results.json", ())
    b = read_run_rows("b", tmp_path / "b" / "results.json", ())
    rows = compare_runs(a, b, samples=200)
    lines = (tmp_path / "b" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    scored = score_language([json.loads(line) for line in lines], "ner", [0, 1], 0)
    row = next(r for r in rows if r.lang == "en")
    assert row.baseline_score == 100.0
    assert row.run_score == pytest.approx(scored["score"], abs=1e-4)
    assert row.run_score < 100.0


# 3. Answer languages of label words that are no language's ---------------------------------


def test_entity_lists_and_letters_get_no_answer_language_share() -> None:
    """WikiAnn's PER/ORG/LOC and Belebele's A-D equal English's words, so Russian entity lists
    were counted against "en" (a share of 0.33) and a German answer B as not English."""
    native = get_template("wikiann/native")
    assert expected_answer_language(native, "ru") is None
    russian = [{"output": "PER: Владимир Путин $$ LOC: Москва"}, {"output": "LOC: Москва"}]
    found = answer_languages(russian, native, "ru", False)
    assert found["share"] is None and found["expected"] == "ru" and "note" in found
    belebele = get_template("belebele/lm-eval")
    found = answer_languages([{"output": " B\n\nP: Das Museum wurde 1901 eröffnet."}], belebele,
                             "de", False)  # fmt: skip
    assert found["share"] is None and found["expected"] == "de"
    # the report reads the record: a null share with its language, no error
    assert answer_language_of(found, "results.json: belebele.de") == (None, "de")
    # English label words of an English-instruction template are still English, and one
    # Chinese character is a Chinese word
    assert expected_answer_language(get_template("xnli/en-instruct"), "de") == "en"
    assert expected_answer_language(get_template("pawsx/native"), "zh") == "zh"
    assert expected_answer_language(get_template("xcopa/en-instruct"), "it") is None


def test_the_answer_language_is_told_from_the_part_read_as_the_answer(tmp_path) -> None:
    """A plain template's answer ends at the first blank line; the document a base model
    goes on with after it was identified as the answer's language."""
    folder = tmp_path / "prompts" / "xnli"
    folder.mkdir(parents=True)
    (folder / "plain-de.yaml").write_text(
        "id: xnli/plain-de\ntask: xnli\ndescription: A plain German prompt.\nformat: plain\n"
        "languages: [de]\n"
        'instruction: "{{ premise }} Frage: {{ hypothesis }} Antwort:"\n'
        'answer: "{{ label_word }}"\n'
        "verbalizers: {entailment: ja, neutral: vielleicht, contradiction: nein}\n",
        encoding="utf-8",
    )
    template = get_template("xnli/plain-de", [tmp_path / "prompts"])
    after = "The museum opened in 1901 and its first exhibition showed maps of the old city."
    records = [{"output": f" ja\n\n{after}"}, {"output": f" nein\n\n{after}"}]
    found = answer_languages(records, template, "de", False)
    assert found["share"] == 1.0 and found["identified"] == {"de": 2}


# 4. acc_norm needs every choice's length ------------------------------------------------------


def test_no_choice_lengths_gives_no_acc_norm() -> None:
    """Without ``choice_lengths`` every length was 1, and acc_norm silently equalled acc."""
    row = {"scores": {"A": -10.0, "B": -12.0}, "gold": "B"}
    bare = parse_ranked_choice(dict(row), ["A", "B"])
    assert "correct_norm" not in bare and "parsed_norm" not in bare
    stale = parse_ranked_choice({**row, "correct_norm": True, "parsed_norm": "B"}, ["A", "B"])
    assert "correct_norm" not in stale  # a value left in the file is not counted
    measured = parse_ranked_choice({**row, "choice_lengths": {"A": 5, "B": 40}}, ["A", "B"])
    assert measured["correct_norm"] is True
    assert "acc_norm" not in score_language([bare, measured], "multiple_choice", [0], 0)
    assert score_language([measured], "multiple_choice", [0], 0)["acc_norm"] == 100.0


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


RANKED = {"id": "z", "task": "xcopa", "lang": "it", "template": "xcopa/lm-eval", "output": "a",
          "gold": "A", "mode": "rank", "scores": {"A": -1.0, "B": -2.0},
          "choice_lengths": {"A": 2, "B": 3}}  # fmt: skip


def test_score_refuses_a_choice_length_of_0(cli, tmp_path) -> None:
    path = _write(tmp_path / "predictions.jsonl", [{**RANKED, "choice_lengths": {"A": 0, "B": 3}}])
    assert_one_line_error(cli("score", path), "record 1", "choice_lengths['A'] is 0", ">= 1")
    _write(path, [RANKED])
    assert cli("score", path).code == 0


def test_score_without_choice_lengths_reports_no_acc_norm(cli, tmp_path) -> None:
    bare = {key: value for key, value in RANKED.items() if key != "choice_lengths"}
    path = _write(tmp_path / "predictions.jsonl", [RANKED, {**bare, "id": "y"}])
    assert cli("score", path).code == 0
    rescored = json.loads((tmp_path / "rescored.json").read_text(encoding="utf-8"))
    assert "acc_norm" not in rescored["tasks"]["xcopa"]["languages"]["it"]


# 5. Malformed entity rows in `mslt-it score` ---------------------------------------------------

ENTITY = {"id": "x1", "task": "wikiann", "lang": "en", "template": "wikiann/en-instruct",
          "output": "PER: Ada", "gold": "PER: Ada", "tokens": ["Ada", "went"], "ner_tags": [1, 0],
          "mode": "generate"}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field", "allowed"),
    [
        ({"tokens": None}, "'tokens'", "a list of words"),  # None: the field removed
        ({"ner_tags": [9, 0]}, "ner_tags is [9, 0]", "tag ids 0 to 6"),
        ({"ner_tags": [-1, 0]}, "ner_tags is [-1, 0]", "tag ids 0 to 6"),
        ({"ner_tags": ["B-PER", "O"]}, "ner_tags is", "tag ids 0 to 6"),
        ({"ner_tags": [True, 0]}, "ner_tags is", "tag ids 0 to 6"),
        ({"ner_tags": [1]}, "ner_tags has 1 tag(s) for 2 token(s)", "one tag per token"),
        ({"tokens": [1, "went"]}, "tokens is [1, 'went']", "a list of words"),
        ({"tokens": "Ada went"}, "tokens is 'Ada went'", "a list of words"),
    ],
)
def test_score_names_a_malformed_entity_row_in_one_line(cli, tmp_path, change, field, allowed):
    """Each was a traceback (KeyError, IndexError, TypeError, seqeval's ValueError), and a tag
    of -1 was read as I-LOC."""
    row = {**ENTITY, **change}
    row = {key: value for key, value in row.items() if value is not None}
    path = _write(tmp_path / "predictions.jsonl", [row])
    result = cli("score", path)
    assert_one_line_error(result, str(path), "record 1", "'x1'", field, "allowed:", allowed)
    assert not (tmp_path / "rescored.json").exists()
    _write(path, [ENTITY])
    assert cli("score", path).code == 0


def test_the_entity_counts_hold_the_unaligned_entities() -> None:
    """``ner_statistics``' counts, which comparisons.py pairs: predicted = aligned + unaligned."""
    record = entity_record(*SENTENCE, INVENTED)
    _, entity, exact, unaligned = ner_statistics(record)
    assert unaligned == 5 and entity == [3, 8, 3] and exact == entity
    assert np.array_equal(np.array(entity), np.array(exact))


# An earlier mslt-it's entity scores ---------------------------------------------------------


def test_an_earlier_entity_score_is_named_as_such_and_a_recipe_rescores_it(
    tmp_path, tiny_model_dir
) -> None:
    """results.json scored before invented entities counted disagrees with its predictions as
    they are scored now: the report says so and how to re-score (it said only "one was changed
    after the evaluation"), and a recipe's evaluation of an entity task is stale, to be
    re-scored, while one of XNLI stays done."""
    from mslt_it.evaluation.config import EvalConfig
    from mslt_it.report import check_rows_agree
    from mslt_it.report_results import Results, Score
    from mslt_it.runner import eval_inputs

    _write_entity_run(tmp_path / "b", INVENTED)
    rows = read_run_rows("b", tmp_path / "b" / "results.json", ())
    old = Score("b", (), "wikiann", "en", "f1", 100.0, None, None, 6, 0.0, False)
    with pytest.raises(MsltError, match=r"before 2026-12-07.*run the same `mslt-it eval` again"):
        check_rows_agree(Results([old], False, []), rows)

    entity = eval_inputs(EvalConfig(task="wikiann", langs=["en"]), [tiny_model_dir])
    assert entity["entity_scoring"] == ENTITY_SCORING
    other = eval_inputs(EvalConfig(task="xnli", langs=["en"]), [tiny_model_dir])
    assert "entity_scoring" not in other
