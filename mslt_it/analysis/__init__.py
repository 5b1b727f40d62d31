"""Representation analysis: are sentences that mean the same closer across languages?

Lim et al. (ACL 2024) argue that multi-source training makes a model's representations more
language-agnostic. This package measures that on parallel sentences, layer by layer, for a base
model and its LoRA adapters: linear CKA between languages, translation retrieval, a
language-identification probe and a silhouette score, plus t-SNE/PCA, layer and CKA plots, and a
table of every measure under each pooling, centred or not, layer by layer, with the direction the
models point in each (docs/analysis-measures.md says why one setting is not enough).

- :mod:`~mslt_it.analysis.parallel`: the parallel sentences (XNLI on the Hub, a folder,
  synthetic, or a file), with their alignment checked;
- :mod:`~mslt_it.analysis.extract`: pooled hidden states, batched, adapters switched on one base;
- :mod:`~mslt_it.analysis.metrics`: the four metrics on plain arrays (usable on any embeddings);
- :mod:`~mslt_it.analysis.settings`: the settings table and its Markdown;
- :mod:`~mslt_it.analysis.plots`: the figures;
- :mod:`~mslt_it.analysis.run`: :func:`run_analysis`, which ties them together.
"""

from __future__ import annotations

from mslt_it.analysis.metrics import (
    MEANINGS,
    cka_matrix,
    language_id_accuracy,
    language_share,
    language_silhouette,
    layer_metrics,
    linear_cka,
    retrieval_matrix,
)
from mslt_it.analysis.parallel import ParallelSentences, load_parallel
from mslt_it.analysis.run import AnalysisConfig, AnalysisResult, parse_layers, run_analysis

__all__ = [
    "MEANINGS",
    "AnalysisConfig",
    "AnalysisResult",
    "ParallelSentences",
    "cka_matrix",
    "language_id_accuracy",
    "language_share",
    "language_silhouette",
    "layer_metrics",
    "linear_cka",
    "load_parallel",
    "parse_layers",
    "retrieval_matrix",
    "run_analysis",
]
