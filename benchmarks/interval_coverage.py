"""How often the targets' average's 95 % interval holds the true average, side by side: every
language's rows drawn on their own (``apart``, what mslt-it did before tasks said ``parallel``)
against each item drawn in every language at once (``joint``, :func:`mslt_it.stats.shared_units`).

Simulated benchmarks of ``--items`` items translated into ``--languages`` languages. Item ``i``
has a difficulty ``d_i ~ N(0, s)`` shared by its translations; language ``l`` adds its own
noise ``e_il ~ N(0, 1)``; a row is right with probability ``sigmoid(0.5 + d_i + e_il)``. ``s``
sets how much an item's difficulty carries across languages (0: not at all). The true average
is the expected accuracy over items, from a million items drawn the same way. Each setting is
simulated ``--datasets`` times; the interval of each is ``mean_interval`` (1,000 resamples).

    python benchmarks/interval_coverage.py [--items 200] [--languages 6] [--datasets 400]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mslt_it.evaluation.metrics import mean_interval
from mslt_it.stats import shared_units


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
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
