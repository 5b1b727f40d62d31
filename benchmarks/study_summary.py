"""Summarise a study's ``scores.csv`` (``mslt-it run recipes/synthetic-study.yaml``): the k-curve
on languages outside the source pool, and three-language sets by number of scripts.

    python benchmarks/study_summary.py runs/synthetic-study/report/scores.csv [--pool ar de ...]

"Held out" is the mean over the evaluation languages outside the pool, which no run trained on,
so every run is scored on the same languages (the report's "avg (targets)" leaves out each run's
own sources, a different set per run).
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections import defaultdict

POOL = ["ar", "de", "en", "es", "fr", "ru", "zh"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", help="the report's scores.csv")
    parser.add_argument("--pool", nargs="+", default=POOL, help="the source-language pool")
    args = parser.parse_args()
    held_out = held_out_means(args.scores, set(args.pool))
    print_k_curve(held_out)
    print_by_scripts(held_out)


def held_out_means(path: str, pool: set[str]) -> dict[str, float]:
    """Each run's sources (``a+b+c``) and its mean score on the languages outside the pool."""
    scores: dict[str, list[float]] = defaultdict(list)
    with open(path, encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["lang"] not in pool:
                scores[row["sources"]].append(float(row["score"]))
    return {sources: statistics.mean(values) for sources, values in scores.items()}


def print_k_curve(held_out: dict[str, float]) -> None:
    """Mean, minimum and maximum over the runs with each number of sources."""
    by_k: dict[int, list[float]] = defaultdict(list)
    for sources, score in held_out.items():
        by_k[len(sources.split("+"))].append(score)
    print("| k | runs | mean held out | min | max |\n|---:|---:|---:|---:|---:|")
    for k in sorted(by_k):
        values = by_k[k]
        print(f"| {k} | {len(values)} | {statistics.mean(values):.1f} | {min(values):.1f} "
              f"| {max(values):.1f} |")  # fmt: skip


def print_by_scripts(held_out: dict[str, float]) -> None:
    """Three-language sets grouped by how many writing systems they cover."""
    from mslt_it.languages import get_language

    groups: dict[int, list[float]] = defaultdict(list)
    for sources, score in held_out.items():
        langs = sources.split("+")
        if len(langs) == 3:
            groups[len({get_language(lang).script for lang in langs})].append(score)
    print("\n| scripts in the set | sets | mean held out |\n|---:|---:|---:|")
    for count in sorted(groups):
        print(f"| {count} | {len(groups[count])} | {statistics.mean(groups[count]):.1f} |")


if __name__ == "__main__":
    main()
