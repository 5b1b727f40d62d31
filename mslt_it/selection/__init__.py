"""Choosing source languages for multi-source training (``mslt-it select``).

Lim et al. (ACL 2024) found that about three *diverse* source languages beat the single best one,
and that sets chosen for linguistic diversity (lang2vec syntax/inventory vectors, distinct scripts)
beat sets chosen by pretraining size. This package scores sets of languages by those criteria and
others (token coverage, embedding diversity, closeness to target languages), finds the best sets
exactly (vectorised exhaustive enumeration, or an exact pruned search for large pools), and checks
criteria against measured results.

- :mod:`.vectors`: lang2vec and user vectors, NaN-aware cosine distance, the disk cache;
- :mod:`.objective`: criteria as sums of vectorised, boundable terms;
- :mod:`.search`: exhaustive and pruned search with identical answers;
- :mod:`.criteria`: the named criteria and their options;
- :mod:`.text`: token types and mean embeddings of the task's text;
- :mod:`.context`: the languages a selection works on, and criteria's scores of given sets;
- :mod:`.api`: :func:`select_sources` and :func:`evaluate_criteria`;
- :mod:`.measured`, :mod:`.features`, :mod:`.predictor`, :mod:`.validation`, :mod:`.learning`:
  a transfer predictor fitted on measured results (``select --fit``, ``--criterion learned``,
  ``--suggest``).
"""

from __future__ import annotations

from mslt_it.selection.api import (
    FROM_PREDICTOR,
    VECTORS_WITH_PREDICTOR,
    CriterionEvaluation,
    RankedSet,
    SearchInfo,
    SelectionResult,
    evaluate_criteria,
    evaluate_criteria_markdown,
    load_results_csv,
    parse_k,
    run_selection,
    select_sources,
)
from mslt_it.selection.criteria import CRITERIA, Context, Criterion, SelectionOptions, size_unit
from mslt_it.selection.learning import (
    Fitted,
    Suggestion,
    fit_predictor,
    never_run_alone,
    suggest_sets,
)
from mslt_it.selection.predictor import (
    FEATURE_OPTIONS,
    TransferPredictor,
    check_save_path,
    load_predictor,
    results_changed,
)

__all__ = [
    "CRITERIA",
    "FEATURE_OPTIONS",
    "FROM_PREDICTOR",
    "VECTORS_WITH_PREDICTOR",
    "Context",
    "Criterion",
    "CriterionEvaluation",
    "Fitted",
    "RankedSet",
    "SearchInfo",
    "SelectionOptions",
    "SelectionResult",
    "Suggestion",
    "TransferPredictor",
    "check_save_path",
    "evaluate_criteria",
    "evaluate_criteria_markdown",
    "fit_predictor",
    "load_predictor",
    "load_results_csv",
    "never_run_alone",
    "parse_k",
    "results_changed",
    "run_selection",
    "select_sources",
    "size_unit",
    "suggest_sets",
]
