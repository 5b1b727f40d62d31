"""From prediction records to scores: shared by ``mslt-it eval`` and ``mslt-it score``.

A prediction record (one line of ``predictions.jsonl``) keeps the model's raw ``output``, so it
can be parsed again later, e.g. with corrected label words, without running a model. Parsing is
the template's job (its verbalizer in the record's language); scoring is per task and language.
"""

from __future__ import annotations

import json
import math
import os
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it.arguments import int_argument, path_argument, paths_argument
from mslt_it.errors import MsltError, allowed, clipped
from mslt_it.evaluation.metrics import (
    accuracy,
    averages,
    bootstrap_interval,
    entity_counts,
    f1_from_counts,
    mean_interval,
    span_counts,
)
from mslt_it.evaluation.parsing import (
    align_entities,
    compared_entities,
    gold_entity_spans,
    parse_entities,
    spans_to_bio,
    squash,
)
from mslt_it.evaluation.store import RESULTS, read_jsonl
from mslt_it.files import MAX_JSON_BYTES, read_user_bytes
from mslt_it.label_words import folded_answer, parse_label
from mslt_it.langid import CATEGORIES, EMPTY, NO_LETTERS, AnswerIdentifier, package_version
from mslt_it.outputs import RESCORED_KIND
from mslt_it.prompts import PromptTemplate, get_template
from mslt_it.stats import samples_problem, shared_units, unit_count
from mslt_it.tasks import get_task
from mslt_it.tasks.base import Task, join_tokens, row_id_parts
from mslt_it.tasks.ner import TAG_NAMES, entities_from_tags

Record = dict[str, Any]
ENTITY_SCORING = (
    "2026-12-07: entities as written, edge quote tokens aside; invented ones false positives"
)
"""How an entity list is scored, named by the day it last changed: a recipe's finished
evaluation of an entity task is re-scored when it changes (its predictions are kept), as
its report would otherwise find results.json's F1 and its predictions' disagree. Before:
edge punctuation was taken off every entity ("Apple Inc." missed its token), and entities
found nowhere in the sentence cost nothing."""

METRICS = {
    "classification": "accuracy",
    "multiple_choice": "accuracy",
    "ner": "f1",
    "instructions": "exact_match",
}
"""The headline metric of each kind (x100 in results). An instruction's answer is right when it
equals the reference with whitespace runs collapsed and case folded."""


def parse_record(record: Record, template: PromptTemplate) -> Record:
    """Fill ``parsed``, ``invalid`` and ``correct`` from ``output`` with the template's words."""
    # the template's task, looked up once: a lookup per record checks the definitions' files
    task = template.task if template.spec.task == record["task"] else get_task(record["task"])
    verbalizer = template.verbalizer(record["lang"])
    if task.kind == "multiple_choice" and record.get("scores"):
        return parse_ranked_choice(record, task.labels)
    if task.kind == "instructions":
        answer = " ".join(record["output"].split())
        record.update(
            parsed=answer,
            invalid=not answer,
            correct=folded_answer(answer) == folded_answer(str(record["gold"])),
        )
        return record
    if task.kind == "classification" and record.get("mode") == "rank" and record.get("scores"):
        scores = record["scores"]  # the model chose by them: never invalid (a tie: task order)
        label = max((name for name in task.labels if name in scores), key=lambda n: scores[n])
        record.update(parsed=label, invalid=False, correct=label == record["gold"])
        return record
    if task.kind != "ner":
        label = parse_label(read_part(record["output"], template), verbalizer)
        record.update(parsed=label, invalid=label is None, correct=label == record["gold"])
        return record
    parsed = parse_entities(record["output"], verbalizer)
    gold = gold_entities(record["tokens"], record["ner_tags"], "en")
    gold_set = sorted((kind, squash(text)) for kind, text in gold)
    predicted = [[kind, text] for kind, text in parsed.entities]
    record.update(
        parsed=predicted,
        invalid=not parsed.valid,
        correct=sorted(compared_entities(parsed.entities, record["tokens"])) == gold_set,
    )
    return record


PLAIN_UNTIL = "\n\n"
"""Where a plain template's answer ends: lm-evaluation-harness's ``generate_until`` default."""


def read_part(output: str, template: PromptTemplate) -> str:
    """The part of a generated ``output`` that is read as the answer. A plain (lm-eval)
    template prompts a base model with a document, which goes on after its answer into the
    next one (``B\n\nP: A new museum…``), and the labels there made the answer invalid;
    lm-eval stops generating at a blank line, so the answer is read up to the first."""
    return output.split(PLAIN_UNTIL, 1)[0] if template.plain else output


def parse_ranked_choice(record: Record, order: Sequence[str]) -> Record:
    """A rank-mode multiple-choice record: the best log-likelihood, raw and per character.

    ``acc`` takes the highest sum of log-probabilities; ``acc_norm`` divides each by its
    choice's length in characters first, as lm-evaluation-harness does. A tie goes to the
    first choice in the task's ``order`` (lm-evaluation-harness's ``argmax``): by the order of
    the record's keys, ``predictions.jsonl`` (keys sorted) re-scored another choice than the
    evaluation had.

    A record without ``choice_lengths`` (an edited file, a version that wrote none) gets no
    ``parsed_norm`` or ``correct_norm``: every length taken as 1 made ``acc_norm`` equal ``acc``
    without a word, and :func:`score_language` reports ``acc_norm`` only where every record has
    it.
    """
    scores: dict[str, float] = record["scores"]
    lengths: dict[str, int] | None = record.get("choice_lengths")
    ranked = [label for label in order if label in scores]
    best = max(ranked, key=lambda label: scores[label])
    record.update(parsed=best, invalid=False, correct=best == record["gold"])
    if not lengths:  # a stale parsed_norm from the file would be counted
        record.pop("parsed_norm", None)
        record.pop("correct_norm", None)
        return record
    best_norm = max(ranked, key=lambda label: scores[label] / lengths[label])
    record.update(parsed_norm=best_norm, correct_norm=best_norm == record["gold"])
    return record


def ner_statistics(record: Record) -> tuple[list[str], list[int], list[int], int]:
    """Predicted BIO tags, entity counts, exact span counts, unaligned entities.

    The entity counts ``(tp, predicted, gold)`` are seqeval's over the aligned spans, with each
    *unaligned* predicted entity (one the sentence does not hold: :func:`align_entities`
    drops it) added to ``predicted``, a false positive: invented entities lowered no score.
    With none unaligned (and no gold entity edged by quote tokens of its own,
    :func:`~mslt_it.evaluation.parsing.gold_entity_spans`), their F1 is seqeval's (the XTREME
    metric). The headline F1, its
    bootstrap and the report's paired comparisons all count these.
    """
    tokens, tags, lang = record["tokens"], record["ner_tags"], record["lang"]
    predicted = [(kind, text) for kind, text in record["parsed"]]
    spans = align_entities(predicted, tokens)
    unaligned = len(predicted) - len(spans)
    gold_spans = gold_entity_spans(entities_from_tags(tags), tokens)
    gold_pairs = [(kind, join_tokens(tokens[s:e], lang)) for kind, s, e in gold_spans]
    tp, n_pred, n_gold = entity_counts(gold_spans, spans)
    exact = list(span_counts(_squashed(gold_pairs), compared_entities(predicted, tokens)))
    return spans_to_bio(spans, len(tokens)), [tp, n_pred + unaligned, n_gold], exact, unaligned


def gold_entities(tokens: Sequence[str], tags: Sequence[int], lang: str) -> list[tuple[str, str]]:
    """A sentence's gold ``(type, text)`` entities as answers are compared with them
    (:func:`~mslt_it.evaluation.parsing.gold_entity_spans`: quote tokens at an entity's
    edge left out)."""
    spans = gold_entity_spans(entities_from_tags(tags), tokens)
    return [(kind, join_tokens(tokens[start:end], lang)) for kind, start, end in spans]


def _squashed(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Entity texts compared without whitespace and case (Chinese is joined with "")."""
    return [(kind, squash(text)) for kind, text in pairs]


def score_language(
    records: Sequence[Record], kind: str, seed: Sequence[int], samples: int
) -> dict[str, Any]:
    """Score, count, invalid rate and bootstrap interval of one language's records (whole
    clusters resampled where the records name theirs: ``clusters`` counts them)."""
    n = len(records)
    invalid = sum(1 for r in records if r["invalid"])
    result: dict[str, Any] = {
        "n": n,
        "invalid": invalid,
        "invalid_rate": _r(invalid / n if n else 0),
    }
    clusters = record_clusters(records)
    if clusters is not None:
        result["clusters"] = len(set(clusters))
    if kind != "ner":
        correct = np.array([bool(r["correct"]) for r in records], dtype=float)
        result.update(
            metric=METRICS[kind],
            score=_r(accuracy(correct)),
            ci95=bootstrap_interval(correct, "accuracy", samples, seed, clusters),
        )
        if records and all("correct_norm" in r for r in records):
            normalised = np.array([bool(r["correct_norm"]) for r in records], dtype=float)
            result["acc_norm"] = _r(accuracy(normalised))
        return result
    stats = [ner_statistics(r) for r in records]
    entity = np.array([s[1] for s in stats], dtype=float).reshape(-1, 3)
    exact = np.array([s[2] for s in stats], dtype=float).reshape(-1, 3)
    result.update(
        metric="f1",  # seqeval's F1 (seqeval_f1) when no entity is unaligned, else below it
        score=_r(f1_from_counts(*entity.sum(axis=0))),
        ci95=bootstrap_interval(entity, "f1", samples, seed, clusters),
        span_f1=_r(f1_from_counts(*exact.sum(axis=0))),
        unaligned=int(sum(s[3] for s in stats)),
    )
    return result


def record_clusters(records: Sequence[Record]) -> list[str] | None:
    """The records' cluster keys (their task's ``cluster`` rule), None where they have none
    (:func:`check_records` holds a file to all or none of a language's)."""
    if not records or "cluster" not in records[0]:
        return None
    return [record["cluster"] for record in records]


def _r(value: float) -> float:
    return round(float(value), 4)


def score_records(
    records: Sequence[Record],
    template_for: Callable[[str, str], PromptTemplate],
    seed: int = 0,
    samples: int = 1000,
    sources: Sequence[str] = (),
    reparse: bool = False,
    world: bool = False,
) -> dict[str, Any]:
    """Per-task, per-language scores and averages of a run's records.

    ``template_for(task, template_id)`` gives the template to parse with; with ``reparse`` the
    stored ``parsed`` fields are recomputed first. ``sources`` (the adapter's training languages)
    are left out of the ``targets`` average, the zero-shot number. Generated answers also get
    their language identified (:func:`answer_languages`); ``world``: the rows are the synthetic
    world's, whose languages are read through their lexicons.
    """
    by_task: dict[str, dict[str, list[Record]]] = {}
    for record in records:
        if reparse:
            parse_record(record, template_for(record["task"], record["template"]))
        by_task.setdefault(record["task"], {}).setdefault(record["lang"], []).append(record)
    tasks: dict[str, Any] = {}
    for task_name, per_lang in by_task.items():
        task = get_task(task_name)
        languages = {
            lang: score_language(
                rows, task.kind, [seed, zlib.crc32(f"{task_name}/{lang}".encode())], samples
            )
            for lang, rows in per_lang.items()
        }
        for lang, rows in per_lang.items():
            if any(r.get("mode") == "generate" for r in rows):
                template = template_for(task_name, rows[0]["template"])
                languages[lang]["answer_language"] = answer_languages(rows, template, lang, world)
        order = list(per_lang)
        targets = [lang for lang in order if lang not in set(sources)]
        tasks[task_name] = {
            "metric": METRICS[task.kind],
            "languages": languages,
            "average": averages(languages, order),
            "average_targets": averages(languages, targets),
        }
        if task.kind != "ner" and targets:  # the zero-shot number, with its uncertainty
            correct = [
                np.array([bool(r["correct"]) for r in per_lang[lang]], float) for lang in targets
            ]
            clusters = [record_clusters(per_lang[lang]) for lang in targets]
            units = None
            if task.parallel:
                ids = [[str(r["id"]) for r in per_lang[lang]] for lang in targets]
                units = parallel_units(ids, clusters)
            average = tasks[task_name]["average_targets"]
            average["ci95"] = mean_interval(
                correct,
                samples,
                [seed, zlib.crc32(f"{task_name}/targets".encode())],
                clusters,
                units,
            )
            average["joint_items"] = units is not None
            if units is not None:  # each an item with its rows in every language (and the
                average["units"] = unit_count(units)  # items its clusters join)
    return tasks


def row_item(row_id: str) -> str | None:
    """The item a row is in every language: its id's ``split/index`` (mslt-it's ids are
    ``task/lang/split/index``; row N of a parallel benchmark's split is one item translated).
    None for an id mslt-it did not make."""
    parts = row_id_parts(row_id)
    return f"{parts[2]}/{parts[3]}" if parts is not None else None


def parallel_units(
    ids: Sequence[Sequence[str]], clusters: Sequence[Sequence[str] | None] | None = None
) -> list[np.ndarray] | None:
    """Per language, its rows' units drawn in every language at once
    (:func:`~mslt_it.stats.shared_units`) for rows of a ``parallel`` task by their ids; None
    where the languages do not hold the same items (a row left out of one language: unlabelled,
    or beyond its data), whose rows are then drawn language by language."""
    items: list[list[str]] = []
    for language in ids:
        keys = [row_item(row_id) for row_id in language]
        named = [key for key in keys if key is not None]
        if len(named) != len(keys):
            return None
        items.append(named)
    return shared_units(items, clusters)


def expected_answer_language(template: PromptTemplate, lang: str) -> str | None:
    """The language a right answer to ``lang``'s prompt is written in: ``lang``, or English for
    a template whose label words in ``lang`` are its English ones (English-instruction
    templates such as ``xnli/en-instruct``); None where the label words are no language's
    (:func:`language_neutral`): no share of answers in a language can be told there."""
    if language_neutral(template, lang):
        return None
    words = template.verbalizer(lang)
    english = lang != "en" and "en" in template.languages
    return "en" if words and english and words == template.verbalizer("en") else lang


def language_neutral(template: PromptTemplate, lang: str) -> bool:
    """Whether ``template``'s answers in ``lang`` are in no language of their own: an entity
    list (WikiAnn's ``PER: Владимир Путин``: type tags, and the sentence's own words copied),
    or label words that are each one Latin letter or a number (Belebele's ``A``-``D``, XCOPA's
    ``1``/``2``). Such words equal English's in every language, and were counted as English:
    a Russian entity list was a wrong answer language. A one-character word of a script
    (Chinese ``是``/``否``, Korean ``예``) is its language's."""
    if template.task.kind == "ner":
        return True
    words = [word.strip() for word in template.verbalizer(lang).values()]
    return bool(words) and all(
        word.isdecimal() or (len(word) == 1 and word.isascii() and word.isalpha()) for word in words
    )


def known_words(template: PromptTemplate) -> dict[str, set[str]]:
    """Each label word of the template -> the answer languages it is used in (none for a
    language whose words are no language's)."""
    found: dict[str, set[str]] = {}
    for lang in template.languages:
        expected = expected_answer_language(template, lang)
        if expected is None:
            continue
        for word in template.verbalizer(lang).values():
            found.setdefault(word, set()).add(expected)
    return found


def answer_languages(
    records: Sequence[Record], template: PromptTemplate, lang: str, world: bool
) -> dict[str, Any]:
    """Answer-language fidelity of one language's generated answers.

    ``share``: answers identified as the expected language, over the answers that have letters
    (a bare number or an empty answer is in no language: all of them empty gave a share of 0,
    not none); ``identified``: the count of each language and of
    :data:`mslt_it.langid.CATEGORIES`. A language no identifier covers gets ``share: null``
    and every answer ``unknown``: never a guess. Each answer is identified in the part of its
    output that is read as the answer (:func:`read_part`: a plain template's document after
    it is not the answer). Where the answers are in no language of their own
    (:func:`language_neutral`: WikiAnn's entity lists, Belebele's letters) ``share`` is null
    and ``expected`` the prompt's language, with a note; the languages are still counted.
    """
    expected = expected_answer_language(template, lang)
    neutral = expected is None
    identifier = AnswerIdentifier(world=world, known_words=known_words(template))
    found: dict[str, Any] = {"expected": lang if neutral else expected}
    found["identifier"] = package_version()
    if world:
        found["identifier"] += " + the synthetic world's lexicons"
    if expected is not None and not identifier.covers(expected):
        found.update(share=None, identified={"unknown": len(records)})
        found["note"] = f"no identifier covers {expected!r}"
        return found
    counts = Counter(
        identifier.identify(read_part(str(r["output"]), template), expected or lang)
        for r in records
    )
    lettered = len(records) - counts.get(NO_LETTERS, 0) - counts.get(EMPTY, 0)
    share = counts.get(expected, 0) / lettered if lettered and not neutral else None
    ordered = sorted(counts.items(), key=lambda item: (item[0] in CATEGORIES, -item[1], item[0]))
    found.update(share=None if share is None else _r(share), identified=dict(ordered))
    if neutral:
        found["note"] = (
            "the answers are in no language of their own (entity lists, or label words that are "
            "letters or numbers): no share"
        )
    return found


REQUIRED_FIELDS = ("id", "task", "lang", "template", "output", "gold")

ABSENT = "(no such field)"
"""How a field a record lacks is compared and named (a field's value is never this text)."""


def shown(value: Any) -> str:
    """A record's value in a message; :data:`ABSENT` as it reads."""
    return ABSENT if value is ABSENT else clipped(value, 60)


TEXT_FIELDS = ("id", "task", "lang", "template", "output")
"""Fields mslt-it writes as text: any other type is an edited file."""

ONE_RUN_FIELDS = ("adapter", "mode")
"""Fields every record of one predictions file shares: it is one run's output."""


def check_records(records: Sequence[Record], path: Path) -> None:
    """Every line an mslt-it prediction: required fields, a text output, each id once."""
    seen: set[tuple[str, str, str]] = set()
    first: dict[str, Any] = {}
    clustered: dict[str, bool] = {}
    splits: dict[str, str] = {}  # each task's split, as its first record's id names it
    tasks: dict[str, Task | None] = {}  # each looked up once: a lookup checks the files
    for number, record in enumerate(records, start=1):
        missing = [key for key in REQUIRED_FIELDS if key not in record]
        if missing:
            raise MsltError(
                f"predictions: {path} record {number} lacks field {missing[0]!r}; "
                "not mslt-it output"
            )
        for key in ONE_RUN_FIELDS:  # records of two runs would be pooled into one score
            value = record.get(key, ABSENT)  # a field dropped from some rows is a change too
            if first.setdefault(key, value) != value:
                raise MsltError(
                    f"predictions: {path} record {number}: {key} {shown(value)} differs from "
                    f"the first record's {shown(first[key])}; a file holds one run"
                )
        not_text = next((key for key in TEXT_FIELDS if not isinstance(record[key], str)), None)
        if not_text is not None:  # an id of null was read as the row "None"
            raise MsltError(
                f"predictions: {path} record {number}: {not_text} must be text, "
                f"got {type(record[not_text]).__name__}"
            )
        name = record["task"]
        task = tasks[name] if name in tasks else tasks.setdefault(name, _known_task(name))
        if task is not None and task.kind == "ner":  # a crash deep in the scoring, or -1 read
            # as I-LOC
            problem = entity_fields_problem(record)
            if problem is not None:
                raise MsltError(
                    f"predictions: {path} record {number} (id {clipped(record['id'], 60)}): "
                    f"{problem}"
                )
        cluster = record.get("cluster", ABSENT)
        cell = f"{record['task']}/{record['lang']}"
        if cluster is not ABSENT and not isinstance(cluster, str):
            raise MsltError(
                f"predictions: {path} record {number}: cluster is {shown(cluster)}; allowed: "
                "text (the key of the rows resampled together)"
            )
        if clustered.setdefault(cell, cluster is not ABSENT) != (cluster is not ABSENT):
            raise MsltError(
                f"predictions: {path} record {number}: "
                + ("has a cluster" if cluster is not ABSENT else "lacks the cluster")
                + f" that the first record of {clipped(cell, 60)} "
                + ("lacks" if cluster is not ABSENT else "has")
                + "; a language's records all name their cluster or none does"
            )
        if record.get("scores") is not None:  # a multiple-choice row's, against its choices
            check_ranked(record, f"predictions: {path} record {number}", task)
        problem = ranked_answer_problem(record, answer=False)  # any rank row's, as numbers
        if problem is not None:
            raise MsltError(f"predictions: {path} record {number} {problem}")
        key = (str(record["task"]), str(record["lang"]), str(record["id"]))
        parts = row_id_parts(key[2])
        if parts is not None:
            splits.setdefault(key[0], parts[2])
        problem = id_problem(key[2], splits.get(key[0]))
        if problem is not None:  # a row of another split, or place, read as another item
            raise MsltError(f"predictions: {path} record {number}: {problem}")
        named = misplaced_row(record)
        if named is not None:
            raise MsltError(
                f"predictions: {path} record {number}: id {clipped(key[2], 60)} is a row of "
                f"{named!r}, not of {clipped(f'{key[0]}/{key[1]}', 60)}; "
                "the file was changed after the evaluation"
            )
        if key in seen:
            raise MsltError(
                f"predictions: {path} record {number}: id {key[2]!r} ({key[0]}/{key[1]}) "
                "appears twice; each example is scored once"
            )
        seen.add(key)


def _known_task(task: str) -> Task | None:
    """``task``, or None for a task this installation does not know (scoring names it)."""
    try:
        return get_task(task)
    except MsltError:
        return None


NER_TOKENS = "a list of words (text), one per tag"
NER_TAGS = f"a list of tag ids 0 to {len(TAG_NAMES) - 1} ({', '.join(TAG_NAMES)})"


def entity_fields_problem(record: Record) -> str | None:
    """What makes an entity (NER) record's ``tokens`` or ``ner_tags`` unusable, naming the
    field and what is allowed; None when they can be scored. A missing field, a tag out of
    range, text among the tags or a number among the tokens was a traceback (KeyError,
    IndexError, TypeError), and a tag of -1 was read as the last tag, I-LOC."""
    for key in ("tokens", "ner_tags"):
        if key not in record:
            allowed_here = NER_TOKENS if key == "tokens" else NER_TAGS
            return f"lacks field {key!r}; allowed: {allowed_here}"
    tokens, tags = record["tokens"], record["ner_tags"]
    if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
        return f"tokens is {shown(tokens)}; allowed: {NER_TOKENS}"
    if not isinstance(tags, list) or not all(
        type(tag) is int and 0 <= tag < len(TAG_NAMES) for tag in tags
    ):
        return f"ner_tags is {shown(tags)}; allowed: {NER_TAGS}"
    if len(tokens) != len(tags):
        return (
            f"ner_tags has {len(tags)} tag(s) for {len(tokens)} token(s); allowed: one tag per "
            "token"
        )
    return None


PLACE = re.compile(r"0|[1-9][0-9]*")
"""The last part of a row id mslt-it makes: the row's place in its split, as Python writes it."""


def id_problem(row_id: str, split: str | None) -> str | None:
    """What is wrong with an id of mslt-it's shape (``task/lang/split/index``), else None:
    an index that is no place in a split (``03``, ``3.0``, ``-1``), or a split other than
    ``split`` (the task's other records'; one run evaluates one split of a task). Its item
    in every language is its split and place, so either edit named another item. An id of
    another shape is not mslt-it's: nothing to hold it to."""
    parts = row_id_parts(row_id)
    if parts is None:
        return None
    if not PLACE.fullmatch(parts[3]):
        return (
            f"id {clipped(row_id, 60)} ends in {clipped(parts[3], 20)}; an id mslt-it makes "
            "ends in the row's place in its split, a whole number (the file was changed)"
        )
    if split is not None and parts[2] != split:
        return (
            f"id {clipped(row_id, 60)} names split {clipped(parts[2], 20)}, where the task's "
            f"first record names {clipped(split, 20)}; a run evaluates one split of a task "
            "(the file was changed)"
        )
    return None


def misplaced_row(record: Record) -> str | None:
    """The ``task/lang`` a record's id names when it is not the record's own, else None.
    mslt-it eval's ids are ``task/lang/split/index``; a row edited into another language (or
    task) would be scored as that language's without a word."""
    parts = row_id_parts(str(record["id"]))
    if parts is None:  # not an id mslt-it made: nothing to hold it to
        return None
    named = f"{parts[0]}/{parts[1]}"
    return named if named != f"{record['task']}/{record['lang']}" else None


def ranked_answer_problem(record: Record, answer: bool = True) -> str | None:
    """What is wrong with a rank-mode record's answer, or None. Its ``scores`` (a
    log-likelihood per choice, the model's measurement) must be numbers (or -Infinity), and its
    ``parsed`` a best-scored choice (a tie lets either stand): ``correct`` is checked against
    ``parsed``, so an answer edited with its flag, or beside a score made NaN, passed. Needs no
    task definition (``report`` has none of a user's tasks). ``answer=False``: the scores only
    (``score`` parses the answer again, with the templates' current words)."""
    if "ner_tags" in record:
        return None
    mode = record.get("mode", ABSENT)
    if mode != "rank":  # only a rank-mode answer has scores: one without was edited
        if "scores" in record:
            return f"has scores, which only rank mode gives, but its mode is {shown(mode)}"
        return None
    scores, parsed = record.get("scores"), record.get("parsed")
    if not isinstance(scores, dict) or not scores:
        return f"is of rank mode and has no scores (got {clipped(scores, 40)})"
    for label, value in scores.items():
        if not log_likelihood(value):
            return (
                f"scores[{clipped(label, 30)}] is {clipped(value, 30)}; expected {LOG_LIKELIHOOD}"
            )
    if parsed is None or not answer:
        return None
    if not best_scored(parsed, scores):
        return (
            f"answers {clipped(parsed, 40)} but its scores {clipped(scores, 80)} rank another "
            "choice first"
        )
    return None


def best_scored(answer: Any, scores: dict[str, Any]) -> bool:
    """Whether ``answer`` is a label of ``scores`` with the highest one (a tie lets either
    stand): what a rank-mode row's answer must be, parsed or read from its output."""
    return isinstance(answer, str) and answer in scores and scores[answer] >= max(scores.values())


def check_ranked(record: Record, where: str, task: Task | None = None) -> None:
    """A rank-mode record's ``scores`` (a log-likelihood per choice or label) and
    ``choice_lengths`` (each choice's characters) name exactly the task's choices, with numbers:
    the best is taken from them again, and a string, a missing label or a NaN was a crash or a
    score; a classifier's scores cut to the gold label made any output the best. ``task``:
    the record's, when the caller has it."""
    task = task if task is not None else get_task(str(record["task"]))
    if task.kind not in ("multiple_choice", "classification"):
        return
    labels = sorted(task.labels)
    _check_per_choice(
        record["scores"], f"{where}: scores", labels, "its log-likelihood", log_likelihood,
        LOG_LIKELIHOOD, "labels" if task.kind == "classification" else "choices",
    )  # fmt: skip
    if task.kind != "multiple_choice":  # a classifier's answer: its output, held to the scores
        return  # by check_against_templates
    if record.get("choice_lengths") is not None:
        _check_per_choice(
            record["choice_lengths"], f"{where}: choice_lengths", labels,
            "its length in characters", lambda v: _real(v) and isinstance(v, int) and v >= 1,
            "a whole number >= 1 (characters; acc_norm divides by it)",
        )  # fmt: skip


def _check_per_choice(
    value: Any,
    field: str,
    labels: list[str],
    what: str,
    valid: Callable[[Any], bool],
    expected: str,
    noun: str = "choices",
) -> None:
    """``value`` maps exactly the choices (or labels) ``labels`` to items ``valid`` takes."""
    if not isinstance(value, dict) or sorted(value) != labels:
        raise MsltError(
            f"{field} {clipped(value, 60)} must map each of the {noun} {allowed(labels)} to {what}"
        )
    for label, item in value.items():
        if not valid(item):
            raise MsltError(f"{field}[{label!r}] is {clipped(item, 40)}; expected {expected}")


LOG_LIKELIHOOD = "a log-likelihood (a number, or -Infinity)"


def log_likelihood(value: Any) -> bool:
    """A rank-mode choice's score: a number, or -Infinity (a choice the model cannot produce);
    not NaN, +Infinity or a yes/no."""
    return _real(value) and not math.isnan(value) and value != math.inf


def _real(value: Any) -> bool:
    """A JSON number (a yes/no is an int to Python, not a number to a user)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_same_run(header: dict[str, Any], records: Sequence[Record], beside: Path) -> None:
    """The results.json beside the predictions must be their run's: its recorded seed,
    resamples and sources are reused, and another run's would be stamped on these scores."""
    mode = header.get("mode")
    theirs = {record.get("mode") for record in records}
    told = any("mode" in record for record in records)  # rows of a version that wrote none
    if mode is not None and told and mode not in theirs:
        raise MsltError(
            f"predictions: {beside} beside it is of another run (mode {clipped(mode, 20)}, the "
            f"predictions' {clipped(sorted(map(str, theirs))[0], 20)}); move it away or re-run the "
            "evaluation"
        )
    run = header.get("run")
    if run is not None and not isinstance(run, str):
        raise MsltError(f"predictions: {beside}: run: {clipped(run, 40)} is not a run's name")
    if "tasks" in header and not isinstance(header["tasks"], dict):
        raise MsltError(
            f"predictions: {beside}: tasks: {clipped(header['tasks'], 40)} is not a mapping of "
            "tasks"
        )
    named = {record.get("adapter") for record in records} - {None}
    if isinstance(run, str) and named and run not in named:  # each record names its run
        raise MsltError(
            f"predictions: {beside} beside it is of another run (run {clipped(run, 40)}, the "
            f"predictions' {clipped(sorted(map(str, named))[0], 40)}); move it away or re-run "
            "the evaluation"
        )
    tasks = header.get("tasks")
    if not isinstance(tasks, dict):  # no results.json, or one of a version before tasks
        return
    for record in records:
        task = tasks.get(str(record["task"]))
        languages = task.get("languages") if isinstance(task, dict) else None
        if not isinstance(languages, dict) or str(record["lang"]) not in languages:
            raise MsltError(
                f"predictions: {beside} beside it is of another run: it has no "
                f"{record['task']}/{record['lang']} of the predictions'; move it away or re-run "
                "the evaluation"
            )


def check_against_templates(
    records: Sequence[Record], path: Path, template_for: Callable[[str, str], PromptTemplate]
) -> None:
    """Each record's template is one of its task's, and its gold one of the task's labels: a
    line edited to another task's template or to a label the task lacks would be parsed with
    the wrong words, or count as wrong, without a word."""
    for number, record in enumerate(records, start=1):
        task, template_id = str(record["task"]), str(record["template"])
        template = template_for(task, template_id)
        if template.spec.task != task:
            raise MsltError(
                f"predictions: {path} record {number}: template {template_id!r} is a template "
                f"of task {template.spec.task}, not of {task}"
            )
        labels = template.task.labels
        kind = template.task.kind
        if kind in ("classification", "multiple_choice") and record["gold"] not in labels:
            raise MsltError(
                f"predictions: {path} record {number}: gold {clipped(record['gold'], 60)} is not a "
                f"label of task {task}; labels: {allowed(labels)}"
            )
        if kind == "classification" and record.get("mode") == "rank":
            _check_ranked_output(record, template, f"predictions: {path} record {number}")


def _check_ranked_output(record: Record, template: PromptTemplate, where: str) -> None:
    """A rank-mode classification row's ``output`` is the answer its ``scores`` rank first (the
    model chose by them); ``score`` parses the output again, so an output edited to another
    label's word was counted, and words changed in the template since the evaluation parse
    differently from the words the scores were measured on."""
    scores = record["scores"]  # numbers, per check_records
    label = parse_label(record["output"], template.verbalizer(str(record["lang"])))
    if not best_scored(label, scores):
        best = max(scores, key=lambda name: scores[name])
        raise MsltError(
            f"{where}: output {clipped(record['output'], 40)} reads as "
            f"{clipped(label, 30)} with the template's words, but its scores rank {best!r} "
            "first; the file or the template's words changed after the evaluation (rank-mode "
            "scores hold for the words they were measured on: evaluate again)"
        )


MAX_SEED = 2**32 - 1
MAX_SAMPLES = 1_000_000
"""The bounds ``mslt-it score --seed`` and ``--bootstrap-samples`` hold options to; a
``results.json`` beside the predictions is held to the same."""


def recorded_settings(header: dict[str, Any], where: Path) -> dict[str, Any]:
    """What a run recorded in its ``results.json`` and ``score`` reuses (seed, resamples, the
    adapter's sources, each task's template digests), checked field by field: the file is
    the user's to edit, and a wrong value is a one-line error naming it, not a crash."""

    def whole(value: Any, field: str, high: int, default: int) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
            raise MsltError(
                f"predictions: {where}: {field}: {clipped(value, 40)}; allowed: 0..{high:,}"
            )
        return value

    bootstrap = header.get("bootstrap") or {}
    if not isinstance(bootstrap, dict):
        raise MsltError(f"predictions: {where}: bootstrap: expected a mapping")
    if bootstrap.get("level", 0.95) != 0.95:
        raise MsltError(
            f"predictions: {where}: bootstrap.level: {clipped(bootstrap['level'], 40)}; mslt-it's "
            "intervals are 95% ones (0.95)"
        )
    adapter = header.get("adapter") or {}
    if not isinstance(adapter, dict):
        raise MsltError(f"predictions: {where}: adapter: expected a mapping or null")
    sources = adapter.get("sources") or []
    if not isinstance(sources, list) or not all(isinstance(c, str) for c in sources):
        raise MsltError(f"predictions: {where}: adapter.sources: expected language codes")
    tasks = header.get("tasks") or {}
    if not isinstance(tasks, dict) or not all(isinstance(t, dict) for t in tasks.values()):
        raise MsltError(f"predictions: {where}: tasks: expected a mapping of task to results")
    digests = {}
    for name, task in tasks.items():
        template = task.get("template") or {}
        digests[name] = template if isinstance(template, dict) else {}
    return {
        "seed": whole(bootstrap.get("seed"), "bootstrap.seed", MAX_SEED, 0),
        "samples": whole(bootstrap.get("samples"), "bootstrap.samples", MAX_SAMPLES, 1000),
        "sources": sources,
        "tasks": digests,
    }


def bounded_whole(value: object, name: str, most: int) -> int:
    """A whole number from 0 to ``most`` (the CLI's bounds), else a one-line error naming it:
    ``samples=10**9`` ran out of memory, ``-5`` and ``100.5`` failed deep inside."""
    number = int_argument(value, name)
    if not 0 <= number <= most:
        raise MsltError(f"{name}: {number} is out of range; allowed: 0 to {most:,}")
    return number


def rescore_file(
    predictions: str | Path,
    prompts_dir: Sequence[str | Path] | str | Path = (),
    seed: int | None = None,
    samples: int | None = None,
) -> dict[str, Any]:
    """Re-parse and re-score a saved ``predictions.jsonl`` with the templates' current words.

    No model is loaded. Settings that the run recorded (seed, bootstrap samples, the adapter's
    source languages) come from the ``results.json`` beside the file when there is one.
    ``prompts_dir``: folders of the user's templates, or one folder (a str or a pathlib.Path).
    ``seed``: 0 to 2**32 - 1; ``samples``: 0 (no interval) or 40 to 1,000,000, as
    ``mslt-it score`` allows.
    """
    path = path_argument(predictions, "predictions")
    prompts_dir = [str(folder) for folder in paths_argument(prompts_dir, "prompts_dir", one=True)]
    if seed is not None:
        seed = bounded_whole(seed, "seed", MAX_SEED)
    if samples is not None:
        samples = bounded_whole(samples, "samples", MAX_SAMPLES)
        problem = samples_problem(samples)
        if problem is not None:
            raise MsltError(f"--bootstrap-samples: {problem}")

    records = read_jsonl(path)
    if not records:
        raise MsltError(f"predictions: {path} has no records")
    check_records(records, path)
    header: dict[str, Any] = {}
    beside = path.parent / RESULTS
    if os.path.lexists(beside):  # a FIFO, a folder or a broken link there is named, not skipped
        raw = read_user_bytes(beside, "predictions: the results.json beside it", MAX_JSON_BYTES)
        try:
            header = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            raise MsltError(f"predictions: {beside} beside it is damaged") from None
        if not isinstance(header, dict):
            raise MsltError(f"predictions: {path.parent / RESULTS} beside it is not a mapping")
    recorded = recorded_settings(header, path.parent / RESULTS)
    check_same_run(header, records, beside)
    seed = recorded["seed"] if seed is None else seed
    if samples is None:
        samples = recorded["samples"]
        problem = samples_problem(samples)
        if problem is not None:  # recorded by an mslt-it that allowed 1 to 39
            raise MsltError(
                f"predictions: {path.parent / RESULTS}: bootstrap.samples: {problem}; re-score "
                "with --bootstrap-samples 1000 (or 0)"
            )
    sources = recorded["sources"]
    templates: dict[str, PromptTemplate] = {}

    def template_for(task: str, template_id: str) -> PromptTemplate:
        if template_id not in templates:
            templates[template_id] = get_template(template_id, prompts_dir)
        return templates[template_id]

    check_against_templates(records, path, template_for)
    tasks = score_records(
        records,
        template_for,
        seed=seed,
        samples=samples,
        sources=sources,
        reparse=True,
        world=header.get("data") == "synthetic",
    )
    for name, data in tasks.items():
        previous = recorded["tasks"].get(name, {})
        template_ids = sorted({r["template"] for r in records if r["task"] == name})
        data["template"] = {
            "id": template_ids[0] if len(template_ids) == 1 else template_ids,
            "sha256": {t: templates[t].sha256 for t in template_ids},
            "recorded_sha256": previous.get("sha256"),
        }
    kept = {
        k: header[k] for k in ("run", "model", "adapter", "backend", "mode", "data") if k in header
    }
    return {
        "kind": RESCORED_KIND,
        "predictions": str(path),
        **kept,
        "bootstrap": {"samples": samples, "seed": seed, "level": 0.95},
        "tasks": tasks,
    }
