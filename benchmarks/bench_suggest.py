"""Growing a grid in rounds: does ``select --suggest`` find the best source sets sooner?

    python benchmarks/bench_suggest.py benchmarks/results/synthetic-study/scores.csv \
        [--start 6] [--per-round 3] [--rounds 4] [--repeats 20] [--json FILE]

A replay of a user's rounds on a grid that is already measured (the synthetic study: 35 sets of
three from a pool of seven, each run alone too, scored on 15 languages). The user's goal is the
set with the best mean score on the languages outside the pool (the ones with little data,
the same for every set). Each repeat starts from ``--start`` random sets plus the seven runs of
one source; each round adds ``--per-round`` sets chosen by one strategy, "measured" by reading
their rows from the file:

- **suggest**: ``suggest_sets`` on a predictor fitted (``fit_predictor``, as ``select --fit``)
  on what is measured so far: predicted score plus the fold models' spread;
- **learned, greedy**: the same predictor's best predicted sets (no uncertainty term);
- **sslt-measured**: the sets whose sources score best alone on those languages (no fit);
- **target-l2v**, **l2v-syntax** (the paper's diversity pick), **size**: the heuristics'
  orders for those languages (no fit);
- **random**: the next sets in a random order.

Every strategy starts from the same random sets in a repeat. Printed per round: the mean over
repeats of the best measured set's score on those languages, its regret (the best of all sets
minus it) and how often a top-3 set was found.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("MSLT_IT_PROGRESS", "0")

import numpy as np

from mslt_it.selection.api import select_sources
from mslt_it.selection.learning import fit_predictor, suggest_sets

Set = tuple[str, ...]
Strategy = Callable[[list[Set], int], list[Set]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", help="a report's scores.csv with every set of --k measured")
    parser.add_argument("--task", default="xnli")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--start", type=int, default=6, help="random sets measured first")
    parser.add_argument("--per-round", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the table here")
    args = parser.parse_args()

    grid = Grid.read(args.scores, args.k)
    best = grid.best()
    print(f"{len(grid.sets)} sets of {args.k} from {','.join(grid.pool)}; goal: the mean over "
          f"{','.join(grid.goal)}; best set {'+'.join(best)} ({grid.value[best]:.1f})")  # fmt: skip
    strategies = {
        "suggest": grid.learned(args.task, args.k, args.seed, greedy=False),
        "learned, greedy": grid.learned(args.task, args.k, args.seed, greedy=True),
        "sslt-measured": grid.fixed(grid.sslt_order()),
        **{
            name: grid.fixed(grid.heuristic_order(args.task, args.k, name, args.seed))
            for name in ("target-l2v", "l2v-syntax", "size")
        },
    }
    rng = random.Random(args.seed)
    curves: dict[str, list[list[Set]]] = {name: [] for name in [*strategies, "random"]}
    for repeat in range(args.repeats):
        order = sorted(grid.sets)
        rng.shuffle(order)
        start = order[: args.start]
        strategies["random"] = grid.fixed(order)
        for name, strategy in strategies.items():
            measured = list(start)
            history = [list(measured)]
            for _ in range(args.rounds):
                fresh = [s for s in strategy(measured, args.per_round) if s not in measured]
                measured += fresh[: args.per_round]
                history.append(list(measured))
            curves[name].append(history)
        print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)
    table = grid.table(curves)
    _print(table, args)
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2), encoding="utf-8")


class Grid:
    """The measured grid: every set's rows, the runs of one source, and the goal value."""

    def __init__(self, path: str, rows: list[dict[str, str]], k: int) -> None:
        self.path = path
        self.rows = rows
        by_set: dict[Set, dict[str, float]] = {}
        for row in rows:
            sources = tuple(sorted((row.get("sources") or "").split("+")))
            if sources == ("",):
                continue
            by_set.setdefault(sources, {})[row["lang"]] = float(row["score"])
        self.sets = sorted(s for s in by_set if len(s) == k)
        self.singles = {s[0]: scores for s, scores in by_set.items() if len(s) == 1}
        self.pool = sorted({c for s in self.sets for c in s})
        langs = sorted({lang for scores in by_set.values() for lang in scores})
        self.goal = [lang for lang in langs if lang not in self.pool]
        self.value = {s: float(np.mean([by_set[s][t] for t in self.goal])) for s in self.sets}
        ranked = sorted(self.sets, key=lambda s: -self.value[s])
        self.rank = {s: 1 + sum(self.value[o] > self.value[s] for o in ranked) for s in self.sets}

    @classmethod
    def read(cls, path: str, k: int) -> Grid:
        with open(path, newline="", encoding="utf-8") as handle:
            return cls(path, list(csv.DictReader(handle)), k)

    def best(self) -> Set:
        return min(self.sets, key=lambda s: self.rank[s])

    def fixed(self, order: Sequence[Set]) -> Strategy:
        """A strategy that measures the sets in ``order`` (skipping measured ones)."""
        return lambda measured, n: [s for s in order if s not in measured][:n]

    def sslt_order(self) -> list[Set]:
        """The sets by the mean, over the goal languages, of their sources' scores alone."""

        def alone(s: Set) -> float:
            return float(np.mean([np.mean([self.singles[c][t] for c in s]) for t in self.goal]))

        return sorted(self.sets, key=lambda s: -alone(s))

    def heuristic_order(self, task: str, k: int, criterion: str, seed: int) -> list[Set]:
        ranked = select_sources(
            task, self.pool, k, criterion, targets=self.goal, top=len(self.sets), seed=seed
        )
        return [tuple(r.sources) for r in ranked]

    def measured_file(self, measured: Sequence[Set]) -> str:
        """A scores.csv holding the rows of ``measured`` and of the runs of one source."""
        keep = {"+".join(s) for s in measured} | set(self.singles)
        kept = [row for row in self.rows if "+".join(sorted(row["sources"].split("+"))) in keep]
        out = Path(tempfile.mkdtemp(prefix="bench-suggest-")) / "scores.csv"
        with out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(kept)
        return str(out)

    def learned(self, task: str, k: int, seed: int, greedy: bool) -> Strategy:
        """Fit on what is measured, then take the predictor's suggestions (or, ``greedy``,
        its best predicted sets)."""

        def choose(measured: list[Set], n: int) -> list[Set]:
            fitted = fit_predictor(self.measured_file(measured), task, k=k, seed=seed)
            fresh = len(self.sets) - len(measured)
            found = suggest_sets(
                fitted.predictor, task, fresh if greedy else n, pool=self.pool, targets=self.goal
            )
            if greedy:
                found = sorted(found, key=lambda s: -s.predicted)
            return [tuple(s.sources) for s in found]

        return choose

    def table(self, curves: dict[str, list[list[list[Set]]]]) -> dict[str, list[dict]]:
        """Per strategy and round: mean best value found, mean regret, share with a top-3 set."""
        top = self.value[self.best()]
        out: dict[str, list[dict]] = {}
        for name, repeats in curves.items():
            rounds = []
            for r in range(len(repeats[0])):
                bests = [max(self.value[s] for s in history[r]) for history in repeats]
                ranks = [min(self.rank[s] for s in history[r]) for history in repeats]
                rounds.append(
                    {
                        "measured": len(repeats[0][r]),
                        "best": float(np.mean(bests)),
                        "regret": float(np.mean([top - b for b in bests])),
                        "top3": float(np.mean([rank <= 3 for rank in ranks])),
                    }
                )
            out[name] = rounds
        return out


def _print(table: dict[str, list[dict]], args: argparse.Namespace) -> None:
    sizes = [r["measured"] for r in next(iter(table.values()))]
    head = " | ".join(f"{n} sets" for n in sizes)
    print(f"\nregret (best of all − best measured) / share with a top-3 set, {args.repeats} "
          f"repeats\n\n| strategy | {head} |\n|---|{'---:|' * len(sizes)}")  # fmt: skip
    for name, rounds in table.items():
        cells = " | ".join(f"{r['regret']:.1f} / {r['top3']:.2f}" for r in rounds)
        print(f"| {name} | {cells} |")


if __name__ == "__main__":
    main()
