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
- :mod:`.api`: :func:`select_sources` and :func:`evaluate_criteria`.
"""

from __future__ import annotations

from mslt_it.selection.api import (
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
from mslt_it.selection.criteria import CRITERIA, Context, Criterion, SelectionOptions

__all__ = [
    "CRITERIA",
    "Context",
    "Criterion",
    "CriterionEvaluation",
    "RankedSet",
    "SearchInfo",
    "SelectionOptions",
    "SelectionResult",
    "evaluate_criteria",
    "evaluate_criteria_markdown",
    "load_results_csv",
    "parse_k",
    "run_selection",
    "select_sources",
]
