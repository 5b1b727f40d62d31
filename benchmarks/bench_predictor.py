"""The transfer predictor against the heuristics on a measured grid (the synthetic study).

    python benchmarks/bench_predictor.py runs/synthetic-study/report/scores.csv \
        [--train 12] [--repeats 20] [--k 3] [--sets-only] [--json FILE]

Protocol (issue: "fit on the runs of 12 of the 35 three-language sets, rank the other 23,
repeated over 20 random splits"): for each split, each objective (regression, lambdarank) is
fitted on the 12 sets' rows and ranks the 23 held-out sets on every target language they do
not contain; every heuristic ranks the same sets. Then leave-one-target-out over all 35 sets.
Printed: mean held-out Spearman ρ, NDCG@3 and top-3 hit rate per method, side by side, and the
time of one fit. The file's runs of one source are evidence (features and the sslt-measured
baseline) unless ``--sets-only`` leaves them out, as the predictor was measured before it read
them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MSLT_IT_PROGRESS", "0")

from mslt_it.selection.learning import prepare
from mslt_it.selection.predictor import OBJECTIVES
from mslt_it.selection.validation import paired_difference, random_set_splits, target_folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", help="a report's scores.csv (or sources,lang,score)")
    parser.add_argument("--task", default="xnli")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--train", type=int, default=12, help="measured sets to fit on")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the tables here")
    parser.add_argument(
        "--sets-only", action="store_true", help="leave the runs of one source out of the file"
    )
    args = parser.parse_args()

    started = time.perf_counter()
    scores = _sets_only(args.scores) if args.sets_only else args.scores
    prepared = prepare(scores, args.task, k=args.k, seed=args.seed)
    data = prepared.data
    print(f"{len(data.sets)} sets of {args.k}, {len(data.targets)} targets, {len(data.rows)} rows "
          f"(features in {time.perf_counter() - started:.1f} s)")  # fmt: skip
    out = {}
    splits = random_set_splits(data.sets, args.train, args.repeats, args.seed)
    for mode, kind, chosen in (
        (f"{args.train} sets -> the other {len(data.sets) - args.train}, {args.repeats} splits",
         "sets", splits),
        ("leave one target out", "targets", target_folds(data.sets, data.targets)),
    ):  # fmt: skip
        tables = {}
        for objective in OBJECTIVES:
            begin = time.perf_counter()
            validation = prepared.validate(chosen, objective, args.seed, kind)
            seconds = (time.perf_counter() - begin) / max(validation.splits, 1)
            tables[objective] = (validation, seconds)
        _print(mode, tables)
        out[mode] = {
            objective: {**v.to_dict(), "seconds_per_fit": s} for objective, (v, s) in tables.items()
        }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(out, handle, indent=2)


def _sets_only(path: str) -> str:
    """A copy of ``path`` without the rows of one-source runs."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    kept = [row for row in rows if "+" in (row.get("sources") or "")]
    out = Path(tempfile.mkdtemp(prefix="bench-predictor-")) / "scores.csv"
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    return str(out)


def _print(mode: str, tables: dict) -> None:
    print(f"\n### {mode}\n")
    print("| method | Spearman ρ | NDCG@3 | top-3 hit | groups |\n|---|---:|---:|---:|---:|")
    first = next(iter(tables.values()))[0]
    for objective, (validation, _seconds) in tables.items():
        m = validation.learned
        ci = m.spearman_ci
        print(f"| **learned ({objective})** | **{m.spearman:+.3f}** [{ci[0]:+.2f}, {ci[1]:+.2f}] "
              f"| **{m.ndcg3:.3f}** | **{m.top3:.2f}** | {m.groups} |")  # fmt: skip
    for m in first.methods[1:]:
        print(f"| {m.method} | {m.spearman:+.3f} | {m.ndcg3:.3f} | {m.top3:.2f} | {m.groups} |")
    for objective, (validation, seconds) in tables.items():
        print(f"\n{objective}: {validation.verdict()} ({seconds:.2f} s per fit)")
    _print_differences(first)


def _print_differences(validation) -> None:
    """The default learned ranking minus the strongest others, paired on the same groups, with
    95% intervals from the splits' spread (validation.fold_interval)."""
    learned, others = validation.methods[0], validation.methods[1:]
    chosen = {
        max(others, key=lambda m: m.spearman).method,
        max(others, key=lambda m: m.top3).method,
    }
    chosen |= {m.method for m in others if m.method in ("sslt-measured", "target-l2v")}
    print("\n| learned (regression) minus | ρ | top-3 hit | NDCG@3 |\n|---|---:|---:|---:|")
    for other in (m for m in others if m.method in chosen):
        cells = []
        for metric in ("spearman", "top3", "ndcg3"):
            mean, low, high = paired_difference(learned, other, metric, validation.test_to_train)
            cells.append(f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]")
        print(f"| {other.method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
