"""A dataset without mslt-it's marker: the cost of proving its rows are its manifest's.

``mslt-it train`` (and ``adopt``) checks such a dataset's rows against its manifest's
fingerprint and counts (:func:`mslt_it.data.manifest_mismatch`), streaming the rows once. A
dataset ``mslt-it build`` marked is vouched for by its marker and is not read this way. This
measures the check beside the steps every training of that dataset takes anyway: reading it
(``datasets.load_from_disk``) and tokenizing every row with the tiny model's tokenizer, as
the length check before training does. Best of ``--repeats``.

Usage: python benchmarks/bench_manifest_check.py [--budget 40000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import datasets

from mslt_it.config import DataConfig
from mslt_it.data import build_dataset, load_manifest, manifest_mismatch
from mslt_it.modeling import load_tokenizer
from mslt_it.named_models import resolve_model_name


def best(repeats: int, work) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=40_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "ds"
        config = DataConfig(task="xnli", sources=["en", "de", "fr", "es"], budget=args.budget)
        build_dataset(config, folder)
        manifest = load_manifest(folder)
        rows = datasets.load_from_disk(str(folder), keep_in_memory=True)
        tokenizer = load_tokenizer(resolve_model_name("mslt-it:tiny", "model"))
        texts = [row[0]["content"] + row2[0]["content"] for row, row2 in
                 zip(rows["prompt"], rows["completion"], strict=True)]  # fmt: skip

        def check() -> None:
            assert manifest_mismatch(rows, manifest) is None

        read = best(args.repeats, lambda: datasets.load_from_disk(str(folder), keep_in_memory=True))
        tokenized = best(args.repeats, lambda: tokenizer(texts))
        checked = best(args.repeats, check)
        print(f"rows: {len(rows):,}")
        print(f"read (load_from_disk): {read:.2f} s")
        print(f"tokenize every row: {tokenized:.2f} s")
        print(f"manifest check: {checked:.2f} s ({checked / tokenized:.2f}x the tokenizing)")


if __name__ == "__main__":
    main()
