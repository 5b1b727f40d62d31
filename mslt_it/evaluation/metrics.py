"""Scores per language, bootstrap intervals, and averages over languages.

- XNLI and PAWS-X: accuracy ×100; an invalid answer is wrong.
- WikiAnn: entity-level micro F1 ×100 from counts, ``2·tp / (predicted + gold)``, where
  ``predicted`` holds the entities aligned to the sentence's tokens and those that could not be
  (an entity the sentence does not hold is a false positive). With none unaligned it is
  seqeval's F1 over BIO tags, the XTREME metric (:func:`seqeval_f1`, the tests' reference);
  the exact span-set F1 over ``(type, text)`` pairs is beside it.
- A 95% percentile bootstrap interval per language, resampling examples with a fixed seed
  (whole clusters of them where the task's definition names a ``cluster``: rows sharing a
  passage are not independent draws).
- Averages over languages: unweighted (XTREME's convention: every language counts the same)
  and weighted by examples. The targets' average has an interval too, its items drawn in every
  language at once where the task's rows are ``parallel`` (translations of the same items).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from mslt_it.stats import language_resampled_scores, resampled_scores
from mslt_it.tasks.ner import TAG_NAMES


def accuracy(correct: Sequence[bool]) -> float:
    """Percentage of correct answers (0 for no answers)."""
    return 100.0 * float(np.mean(correct)) if len(correct) else 0.0


def f1_from_counts(tp: float, n_pred: float, n_gold: float) -> float:
    """Micro F1 ×100 from true positives and the predicted and gold entity counts."""
    if n_pred == 0 or n_gold == 0 or tp == 0:
        return 0.0
    precision, recall = tp / n_pred, tp / n_gold
    return 100.0 * 2 * precision * recall / (precision + recall)


def entity_counts(
    gold_spans: Sequence[tuple[str, int, int]], predicted: Sequence[tuple[str, int, int]]
) -> tuple[int, int, int]:
    """``(true positives, predicted, gold)`` entities of one sentence, as seqeval counts them
    (``gold_spans``: the gold tags' entities, as :func:`~mslt_it.evaluation.parsing.
    gold_entity_spans` reads them; ``predicted``: the aligned spans; the scorer adds the
    unaligned entities to it)."""
    gold = set(gold_spans)
    pred = set(predicted)
    return len(gold & pred), len(pred), len(gold)


def span_counts(
    gold: Sequence[tuple[str, str]], predicted: Sequence[tuple[str, str]]
) -> tuple[int, int, int]:
    """``(true positives, predicted, gold)`` over multisets of ``(type, text)`` pairs."""
    gold_counter = Counter((kind, " ".join(text.split())) for kind, text in gold)
    pred_counter = Counter((kind, " ".join(text.split())) for kind, text in predicted)
    tp = sum((gold_counter & pred_counter).values())
    return tp, sum(pred_counter.values()), sum(gold_counter.values())


def seqeval_f1(gold_tags: Sequence[Sequence[int]], predicted_bio: Sequence[Sequence[str]]) -> float:
    """seqeval's entity-level micro F1 ×100 (its default, conlleval-compatible mode): what the
    headline F1 equals when no predicted entity is unaligned."""
    from seqeval.metrics import f1_score

    if not gold_tags:
        return 0.0
    y_true = [[TAG_NAMES[t] for t in tags] for tags in gold_tags]
    return 100.0 * float(f1_score(y_true, [list(tags) for tags in predicted_bio], zero_division=0))


def bootstrap_interval(
    values: np.ndarray,
    statistic: str,
    samples: int,
    seed: int | Sequence[int],
    clusters: Sequence[str] | None = None,
) -> list[float] | None:
    """95% percentile interval of the statistic over examples resampled with replacement.

    ``values`` holds one row per example: a 0/1 column for ``"accuracy"``, or ``(tp, n_pred,
    n_gold)`` for ``"f1"``, so micro F1 is recomputed from summed counts in each resample (a
    sentence's unaligned entities, in its ``n_pred``, go with it). ``clusters``: each
    example's cluster key (a task's ``cluster`` rule), clusters resampled whole
    (:func:`mslt_it.stats.resampled_scores`).
    """
    if samples == 0 or len(values) == 0:
        return None
    rng = np.random.default_rng(seed)
    (scores,) = resampled_scores([values], statistic, clusters, samples, rng)
    low, high = np.percentile(scores, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def mean_interval(
    correct: Sequence[np.ndarray],
    samples: int,
    seed: int | Sequence[int],
    clusters: Sequence[Sequence[str] | None] | None = None,
    units: Sequence[np.ndarray] | None = None,
) -> list[float] | None:
    """95% interval of the unweighted mean accuracy over languages (languages are fixed,
    examples are the sample): each language's examples (or ``clusters``: per language, its
    examples' cluster keys or None) resampled on their own, or, with ``units``
    (:func:`mslt_it.stats.shared_units`), each item drawn in every language at once."""
    if samples == 0 or not correct or any(len(values) == 0 for values in correct):
        return None
    rng = np.random.default_rng(seed)
    languages = [[np.asarray(values, dtype=float)] for values in correct]
    means = np.zeros(samples)
    for (scores,) in language_resampled_scores(
        languages, "accuracy", samples, rng, clusters, units
    ):
        means += scores
    low, high = np.percentile(means / len(correct), [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def averages(per_language: dict[str, dict[str, Any]], languages: Sequence[str]) -> dict[str, Any]:
    """Unweighted (XTREME) and example-weighted means of the score over ``languages``."""
    chosen = [lang for lang in languages if lang in per_language]
    if not chosen:
        return {"languages": [], "unweighted": None, "weighted": None}
    scores = np.array([per_language[lang]["score"] for lang in chosen])
    counts = np.array([per_language[lang]["n"] for lang in chosen], dtype=float)
    weighted = float((scores * counts).sum() / counts.sum()) if counts.sum() else 0.0
    found: dict[str, Any] = {
        "languages": chosen,
        "unweighted": round(float(scores.mean()), 4),
        "weighted": round(weighted, 4),
    }
    if all("acc_norm" in per_language[lang] for lang in chosen):  # rank-mode multiple choice
        norm = np.array([per_language[lang]["acc_norm"] for lang in chosen])
        found["acc_norm_unweighted"] = round(float(norm.mean()), 4)
    return found
