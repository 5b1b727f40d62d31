"""Zero-shot cross-lingual evaluation: suites, prompts, backends, parsing, metrics, results.

Example::

    from mslt_it.evaluation import EvalConfig, evaluate
    evaluate(EvalConfig(model="models/tiny", suite=["xnli-targets"], limit=50), "runs/eval")

``mslt-it eval`` and ``mslt-it score`` are thin wrappers around :func:`evaluate` and
:func:`rescore_file`; :func:`load_results` reads an output folder back (one run or a study).

Only :class:`EvalConfig` is imported eagerly (it needs pydantic alone), so that
``mslt_it.config`` can re-export it without an import cycle; the rest loads on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from mslt_it.evaluation.config import EvalConfig

_LAZY = {
    "Comparison": "compare",
    "compare_models": "compare",
    "EvalOutcome": "runner",
    "evaluate": "runner",
    "load_results": "runner",
    "reopen_evaluation": "runner",
    "rescore_file": "scoring",
    "Suite": "suites",
    "load_suite": "suites",
    "shipped_suites": "suites",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["EvalConfig", *_LAZY]
