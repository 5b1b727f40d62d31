"""Builder throughput against tokenization alone, side by side in one run.

Builds 7 languages × 10,000 synthetic XNLI examples with token statistics (sample, render, write,
tokenize), then times the same tokenizer alone on the same texts. The goal: the whole build takes
no more than 2× the time of tokenization alone. ``--corpus`` builds Bactrian-X instead: 52
languages × 1,000 rows read from local JSONL files in the Hub's schema (written first, not timed),
cleaned as a corpus is (duplicates, empty answers, scripts).

    python benchmarks/bench_build.py [--tokenizer DIR] [--per-language 10000]
    python benchmarks/bench_build.py --corpus [--per-language 1000]

Without ``--tokenizer`` the tiny model's tokenizer is built first (not timed). "Tokenizer alone" is
the fastest way to run it: its Rust backend's ``encode_batch`` on every core, counting lengths,
as the builder does; transformers' ``tokenizer(texts)`` is timed beside it for reference.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MSLT_IT_PROGRESS", "0")

import datasets

from mslt_it.config import DataConfig
from mslt_it.data import build_dataset
from mslt_it.modeling import load_tokenizer
from mslt_it.tokens import chat_texts, token_lengths

LANGS = ["ar", "de", "en", "es", "fr", "ru", "zh"]
BUILD = "build (sample, render, tokenize, write)"
TOKENIZER = "tokenizer alone on the same texts"
TRANSFORMERS = "  for reference: transformers' tokenizer(texts)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", help="tokenizer folder (default: build the tiny model)")
    parser.add_argument("--per-language", type=int, default=None, help="10,000 (1,000 corpus)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; medians are compared")
    parser.add_argument("--corpus", action="store_true", help="Bactrian-X files, 52 languages")
    parser.add_argument(
        "--answer-words", type=int, default=0, help="corpus: pad each answer to this many words"
    )
    args = parser.parse_args()
    per_language = args.per_language or (1_000 if args.corpus else 10_000)
    times: dict[str, list[float]] = {BUILD: [], TOKENIZER: [], TRANSFORMERS: []}
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_dir = args.tokenizer or str(tiny_tokenizer(Path(tmp)))
        langs, task, data = LANGS, "xnli", "synthetic"
        if args.corpus:
            from mslt_it.tasks import get_task

            task = "bactrian-x"
            langs = list(get_task(task).languages)
            data = str(corpus_files(Path(tmp) / "data", langs, per_language, args.answer_words))
        config = DataConfig(
            task=task,
            sources=langs,
            budget=per_language,
            budget_mode="per_language",
            tokenizer=tokenizer_dir,
            data=data,
        )
        tokenizer = load_tokenizer(tokenizer_dir)
        for round_ in range(args.repeats):  # interleaved, so drift hits every side alike
            start = time.perf_counter()
            result = build_dataset(config, Path(tmp) / f"ds{round_}")
            times[BUILD].append(time.perf_counter() - start)

            rows = list(datasets.load_from_disk(str(result.path)))
            texts = chat_texts(rows, tokenizer, "--tokenizer")
            start = time.perf_counter()
            token_lengths(texts, tokenizer)
            times[TOKENIZER].append(time.perf_counter() - start)
            start = time.perf_counter()
            tokenizer(texts, add_special_tokens=False, return_attention_mask=False)
            times[TRANSFORMERS].append(time.perf_counter() - start)

    n = result.manifest["num_examples"]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"examples: {n} {task} ({len(langs)} languages × {per_language}), {args.repeats} rounds")
    for label, seconds in times.items():
        runs = ", ".join(f"{s:.2f}" for s in seconds)
        median = statistics.median(seconds)
        print(f"{label:<48} {median:6.2f} s  {n / median:>9,.0f} examples/s  (runs: {runs})")
    ratio = statistics.median(times[BUILD]) / statistics.median(times[TOKENIZER])
    print(f"ratio build / tokenizer alone (medians): {ratio:.2f} (goal ≤ 2)")


def corpus_files(root: Path, langs: list[str], rows: int, answer_words: int = 0) -> Path:
    """Bactrian-X-schema JSONL per language (synthetic rows), as a local copy of the Hub's.

    ``answer_words`` pads each answer with words of the language's synthetic lexicon, to see how
    the ratio moves with the answers' length (the synthetic answers are one to six words).
    """
    import json
    import random

    from mslt_it.tasks.synthetic import bactrianx_row, lexicon

    for lang in langs:
        folder = root / "bactrian-x" / lang
        folder.mkdir(parents=True)
        words = lexicon(lang).words
        lines = []
        for i in range(rows):
            row = bactrianx_row(lang, "train", i)
            if answer_words:
                extra = random.Random(i).choices(words, k=answer_words)
                row["output"] = " ".join([row["output"], *extra])
            lines.append(json.dumps(row, ensure_ascii=False))
        (folder / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def tiny_tokenizer(folder: Path) -> Path:
    from mslt_it.tiny import build_tiny_model

    return build_tiny_model(folder / "tiny", seed=0)


if __name__ == "__main__":
    main()
