"""Summarise a study's ``scores.csv`` (``mslt-it run recipes/synthetic-study.yaml``): the k-curve
on languages outside the source pool, three-language sets against their single sources, by
number of scripts, and with or without a head-final source (the world's word order).

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
    per_language = held_out_scores(args.scores, set(args.pool))
    held_out = {sources: statistics.mean(s.values()) for sources, s in per_language.items()}
    print_k_curve(held_out)
    print_against_singles(held_out)
    print_by_scripts(held_out)
    print_by_word_order(per_language)
    print_by_size(held_out)


def held_out_scores(path: str, pool: set[str]) -> dict[str, dict[str, float]]:
    """Each run's sources (``a+b+c``) and its score on each language outside the pool."""
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    with open(path, encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["lang"] not in pool:
                scores[row["sources"]][row["lang"]] = float(row["score"])
    return scores


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


def print_against_singles(held_out: dict[str, float]) -> None:
    """How many three-language sets beat the mean, and the best, of their own single sources."""
    triples = {s: v for s, v in held_out.items() if len(s.split("+")) == 3}
    above_mean = above_best = 0
    for sources, score in triples.items():
        singles = [held_out[lang] for lang in sources.split("+") if lang in held_out]
        if len(singles) < 3:
            continue
        above_mean += score > statistics.mean(singles)
        above_best += score > max(singles)
    print(f"\nthree-language sets above the mean of their singles: {above_mean} of {len(triples)}; "
          f"above the best: {above_best} of {len(triples)}")  # fmt: skip


def print_by_word_order(scores: dict[str, dict[str, float]]) -> None:
    """Three-language sets with and without a head-final source, on the held-out head-final
    languages and on the other held-out ones."""
    from mslt_it.tasks.synthetic import is_head_final

    print("\n| three-language sets | sets | held-out head-final | held-out head-initial |")
    print("|---|---:|---:|---:|")
    for label, wanted in (("with a head-final source", True), ("without", False)):
        final, initial = [], []
        for sources, per_lang in scores.items():
            langs = sources.split("+")
            if len(langs) != 3 or any(map(is_head_final, langs)) != wanted:
                continue
            final.append(statistics.mean(v for k, v in per_lang.items() if is_head_final(k)))
            initial.append(statistics.mean(v for k, v in per_lang.items() if not is_head_final(k)))
        if final:
            print(f"| {label} | {len(final)} | {statistics.mean(final):.1f} "
                  f"| {statistics.mean(initial):.1f} |")  # fmt: skip


def print_by_size(held_out: dict[str, float]) -> None:
    """Whether pre-training size acts: Spearman's ρ between a three-language set's summed
    CC-100 size (the size criterion) and its held-out score, and the held-out rank of the
    three largest and the three smallest sources."""
    from scipy.stats import spearmanr

    from mslt_it.languages import pretraining_size

    triples = {s: v for s, v in held_out.items() if len(s.split("+")) == 3}
    sizes = {s: sum(pretraining_size(c, "cc100") or 0.0 for c in s.split("+")) for s in triples}
    rho = spearmanr([sizes[s] for s in triples], [triples[s] for s in triples]).statistic
    order = sorted(triples, key=lambda s: -triples[s])
    largest, smallest = max(sizes, key=sizes.get), min(sizes, key=sizes.get)
    print(f"\nsize (summed CC-100 GiB) against held out, {len(triples)} sets: ρ {rho:+.2f}; "
          f"largest {largest} ranks {order.index(largest) + 1}, smallest {smallest} ranks "
          f"{order.index(smallest) + 1}")  # fmt: skip


if __name__ == "__main__":
    main()
