"""Hidden-state extraction for ``mslt-it analyze``: batched against one sentence at a time.

Encodes 15 XNLI languages × 1,000 synthetic parallel sentences with the tiny model's tokenizer,
then extracts mean-pooled representations of every layer twice on the same model: batched
(sorted by length, right-padded, ``--batch-size`` per forward pass) and one sentence per forward
pass. Prints sentences per second for each, side by side, their ratio, and the largest
difference between the two results (batching must change the speed, not the numbers). Metrics
for every layer are timed too, since they are the other half of an analysis.

    python benchmarks/bench_analyze.py [--model DIR] [--per-language 1000] [--batch-size 32]
        [--repeats 1]

Without ``--model`` the tiny model is built first (not timed).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MSLT_IT_PROGRESS", "0")

import numpy as np

from mslt_it.analysis.extract import encode_sentences, extract, load_model, resolve_dtype
from mslt_it.analysis.metrics import layer_metrics
from mslt_it.analysis.parallel import load_parallel
from mslt_it.modeling import load_tokenizer

LANGS = ["ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: build the tiny model)")
    parser.add_argument("--per-language", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of each; the median")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or str(tiny_model(Path(tmp)))
        sentences = load_parallel(LANGS, args.per_language, data="synthetic")
        texts = [text for lang in LANGS for text in sentences.texts[lang]]
        tokenizer = load_tokenizer(model_dir)
        start = time.perf_counter()
        encoded = encode_sentences(tokenizer, texts)
        encode_seconds = time.perf_counter() - start
        model = load_model(model_dir, "cpu", resolve_dtype("auto", "cpu"))
        layers = list(range(model.config.num_hidden_layers + 1))
        pad = tokenizer.pad_token_id or 0
        extract(model, encoded, layers, batch_size=args.batch_size, pad_id=pad)  # warm-up

        runs: dict[str, list[float]] = {"batched": [], "one at a time": []}
        results = {}
        for _ in range(args.repeats):  # interleaved, so a change in machine load hits both
            for label, batch_size in (("batched", args.batch_size), ("one at a time", 1)):
                start = time.perf_counter()
                results[label] = extract(model, encoded, layers, batch_size=batch_size, pad_id=pad)
                runs[label].append(time.perf_counter() - start)
        timings = {label: float(np.median(seconds)) for label, seconds in runs.items()}

        start = time.perf_counter()
        for j in range(len(layers)):
            layer_metrics(np.split(results["batched"][j], len(LANGS)))
        metrics_seconds = time.perf_counter() - start

    n = len(encoded)
    tokens = sum(len(ids) for ids in encoded.input_ids)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"sentences: {n} ({len(LANGS)} languages × {args.per_language}), {tokens} tokens")
    print(f"{len(layers)} hidden states per sentence (embeddings + {len(layers) - 1} layers)")
    print(f"median of {args.repeats} interleaved run(s) each")
    print(f"{'tokenize (once, shared by all models)':<40} {encode_seconds:7.2f} s")
    for label, seconds in timings.items():
        name = f"extract, {label}" + (f" (batch {args.batch_size})" if label == "batched" else "")
        print(f"{name:<40} {seconds:7.2f} s  {n / seconds:>8,.0f} sentences/s")
    ratio = timings["one at a time"] / timings["batched"]
    print(f"speed-up batched / one at a time: {ratio:.1f}×")
    difference = float(np.abs(results["batched"] - results["one at a time"]).max())
    print(f"largest |batched − one at a time|: {difference:.2e}")
    print(f"{'metrics, all layers (one model)':<40} {metrics_seconds:7.2f} s")


def tiny_model(folder: Path) -> Path:
    from mslt_it.tiny import build_tiny_model

    return build_tiny_model(folder / "tiny", seed=0)


if __name__ == "__main__":
    main()
