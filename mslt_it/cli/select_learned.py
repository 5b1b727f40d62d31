"""What ``mslt-it select --fit`` and ``--suggest`` print: the held-out table and the next runs."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.table import Table

from mslt_it.cli.common import print_whole, stdout_console
from mslt_it.terminal import styled

if TYPE_CHECKING:
    from mslt_it.selection.learning import Fitted, Suggestion
    from mslt_it.selection.validation import Validation

STDOUT = stdout_console()


PREDICTED = (
    "the predictor's output: with --objective regression a score relative to the target's "
    "average measured set, with lambdarank an order without unit"
)
"""What a learned prediction is, by objective (a LambdaRank score is no number of points)."""


def drivers_text(drivers: tuple[tuple[str, float], ...] | list[tuple[str, float]]) -> str:
    """``name +0.42; name -0.13``: the features that move a prediction, with their SHAP values."""
    return "; ".join(f"{name} {value:+.2f}" for name, value in drivers)


def _number(value: float, spec: str) -> str:
    """A table cell: the value, or n/a where no group defines it (NaN)."""
    return "n/a" if math.isnan(value) else format(value, spec)


def print_validation(fitted: Fitted) -> None:
    """The learned ranking's held-out metrics next to every heuristic's, on the same splits."""
    validation: Validation = fitted.validation
    data = fitted.measured
    held_out = "source sets" if validation.mode == "sets" else "target languages"
    table = Table(
        title=(
            f"held-out ranking of {len(data.sets)} measured sets on {len(data.targets)} "
            f"target{'s' if len(data.targets) != 1 else ''} · {validation.splits} folds, "
            f"no {held_out[:-1]} both trained and tested on"
        )
    )
    for column in ("method", "Spearman ρ", "NDCG@3", "top-3 hit", "groups"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for method in validation.methods:
        name = styled(method.method, "bold") if method.method == "learned" else method.method
        table.add_row(
            name,
            f"{method.spearman:+.3f}",
            _number(method.ndcg3, ".3f"),
            _number(method.top3, ".2f"),
            str(method.groups),
        )
    print_whole(STDOUT, table)
    STDOUT.print(
        "Each (fold, target) group ranks the held-out sets without that target; ρ of a "
        "constant ranking counts as 0; NDCG@3 gains are scores above the group's worst; "
        "top-3 hit: the measured best set is in the ranking's top 3 (in groups of more than 3 "
        "sets; n/a: none); tied sets count in every order of them.",
        highlight=False,
        soft_wrap=True,
    )
    STDOUT.print(validation.verdict(), highlight=False, soft_wrap=True)


def print_suggestions(suggestions: list[Suggestion]) -> None:
    """The next sets to measure, with predicted score, uncertainty and what drives them."""
    table = Table(title="unmeasured sets most worth running (predicted + uncertainty)")
    for column in ("rank", "sources", "predicted", "± folds", "priority", "driven by"):
        justify = "right" if column in ("rank", "predicted", "± folds", "priority") else "left"
        table.add_column(column, justify=justify)
    for s in suggestions:
        table.add_row(
            str(s.rank),
            ",".join(s.sources),
            f"{s.predicted:+.2f}",
            f"{s.uncertainty:.2f}",
            f"{s.priority:+.2f}",
            drivers_text(s.drivers),
        )
    print_whole(STDOUT, table)
    STDOUT.print(
        f"predicted: mean over the targets of {PREDICTED}; ± folds: spread across the "
        "cross-validation models; driven by: SHAP values.",
        highlight=False,
        soft_wrap=True,
    )
