"""Builder throughput against tokenization alone, side by side in one run.

Builds 7 languages × 10,000 synthetic XNLI examples with token statistics (sample, render, write,
tokenize), then times the same tokenizer alone on the same texts. The goal: the whole build takes
no more than 2× the time of tokenization alone.

    python benchmarks/bench_build.py [--tokenizer DIR] [--per-language 10000]

Without ``--tokenizer`` the tiny model's tokenizer is built first (not timed).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MSLT_IT_PROGRESS", "0")

from mslt_it.config import DataConfig
from mslt_it.data import build_dataset, chat_texts, token_lengths
from mslt_it.modeling import load_tokenizer

LANGS = ["ar", "de", "en", "es", "fr", "ru", "zh"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", help="tokenizer folder (default: build the tiny model)")
    parser.add_argument("--per-language", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_dir = args.tokenizer or str(tiny_tokenizer(Path(tmp)))
        config = DataConfig(
            task="xnli",
            sources=LANGS,
            budget=args.per_language,
            budget_mode="per_language",
            tokenizer=tokenizer_dir,
        )
        start = time.perf_counter()
        result = build_dataset(config, Path(tmp) / "ds")
        build_seconds = time.perf_counter() - start

        import datasets

        examples = list(datasets.load_from_disk(str(result.path)))
        tokenizer = load_tokenizer(tokenizer_dir)
        texts = chat_texts(examples, tokenizer)
        start = time.perf_counter()
        token_lengths(texts, tokenizer)
        tokenize_seconds = time.perf_counter() - start

    n = result.manifest["num_examples"]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"examples: {n} ({len(LANGS)} languages × {args.per_language})")
    for label, seconds in (
        ("build (sample, render, tokenize, write)", build_seconds),
        ("tokenizer alone on the same texts", tokenize_seconds),
    ):
        print(f"{label:<42} {seconds:6.2f} s  {n / seconds:>9,.0f} examples/s")
    print(f"ratio build / tokenize-only: {build_seconds / tokenize_seconds:.2f} (goal ≤ 2)")


def tiny_tokenizer(folder: Path) -> Path:
    from mslt_it.tiny import build_tiny_model

    return build_tiny_model(folder / "tiny", seed=0)


if __name__ == "__main__":
    main()
