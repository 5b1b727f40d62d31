"""How often the targets' average's 95 % interval holds the true average, side by side: every
language's rows drawn on their own (``apart``, what mslt-it did before tasks said ``parallel``)
against each item drawn in every language at once (``joint``, :func:`mslt_it.stats.shared_units`).

Simulated benchmarks of ``--items`` items translated into ``--languages`` languages. Item ``i``
has a difficulty ``d_i ~ N(0, s)`` shared by its translations; language ``l`` adds its own
noise ``e_il ~ N(0, 1)``; a row is right with probability ``sigmoid(0.5 + d_i + e_il)``. ``s``
sets how much an item's difficulty carries across languages (0: not at all). The true average
is the expected accuracy over items, from a million items drawn the same way. Each setting is
simulated ``--datasets`` times; the interval of each is ``mean_interval`` (1,000 resamples).

A second table: the report's paired test of two runs' targets' averages where neither run is
better (:func:`null_pair`), the share of benchmarks it calls significant at 0.05.

    python benchmarks/interval_coverage.py [--items 200] [--languages 6] [--datasets 400]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mslt_it.evaluation.metrics import mean_interval
from mslt_it.stats import paired_mean_bootstrap, shared_units


def simulate(rng: np.random.Generator, items: int, languages: int, spread: float) -> np.ndarray:
    """``(languages, items)`` of 0/1: whether each translated item was answered right."""
    difficulty = rng.normal(0.0, spread, items)
    noise = rng.normal(0.0, 1.0, (languages, items))
    chance = 1.0 / (1.0 + np.exp(-(0.5 + difficulty + noise)))
    return (rng.random((languages, items)) < chance).astype(float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--languages", type=int, default=6)
    parser.add_argument("--datasets", type=int, default=400)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    keys = [f"test/{i}" for i in range(args.items)]
    units = shared_units([keys] * args.languages)
    print("| item spread s | draw | coverage of the true average | mean width (points) |")
    print("|---:|---|---:|---:|")
    started = time.perf_counter()
    for spread in (0.0, 1.0, 2.0, 3.0):
        truth = 100 * simulate(rng, 1_000_000, 1, spread).mean()
        found = {"apart": [], "joint": []}
        for number in range(args.datasets):
            rows = simulate(rng, args.items, args.languages, spread)
            for draw, given in (("apart", None), ("joint", units)):
                low, high = mean_interval(list(rows), 1000, number, None, given)
                found[draw].append((low <= truth <= high, high - low))
        for draw, outcomes in found.items():
            cover = np.mean([hit for hit, _ in outcomes])
            width = np.mean([w for _, w in outcomes])
            print(f"| {spread:.0f} | {draw} | {100 * cover:.1f} % | {width:.1f} |")
    print()
    print("| run-item spread t | draw | paired test significant at 0.05 (true: none) |")
    print("|---:|---|---:|")
    for spread in (0.0, 1.0, 2.0):
        found = {"apart": [], "joint": []}
        for number in range(args.datasets):
            pairs = [tuple(runs) for runs in null_pair(rng, args.items, args.languages, spread)]
            for draw, given in (("apart", None), ("joint", units)):
                test = paired_mean_bootstrap(pairs, "accuracy", 1000, number, None, given)
                found[draw].append(test.p_value < 0.05)
        for draw, outcomes in found.items():
            print(f"| {spread:.0f} | {draw} | {100 * np.mean(outcomes):.1f} % |")
    print(f"\n{time.perf_counter() - started:.0f} s")


def null_pair(
    rng: np.random.Generator, items: int, languages: int, spread: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Two runs equally good in expectation, per language: each item takes a shift of its own
    in each run, ``N(0, t)``, shared by its translations (what a run learned helps or hurts an
    item in every language), the pairs of shifts exchangeable, so neither run is better."""
    shifts = rng.normal(0.0, spread, (2, items))
    noise = rng.normal(0.0, 1.0, (languages, items))
    runs = []
    for shift in shifts:
        chance = 1.0 / (1.0 + np.exp(-(0.5 + noise + shift)))
        runs.append((rng.random((languages, items)) < chance).astype(float))
    return list(zip(runs[0], runs[1], strict=True))


if __name__ == "__main__":
    main()
