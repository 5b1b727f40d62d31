"""Training throughput with and without packing, and peak memory of LoRA against QLoRA.

One run, side by side, on a synthetic XNLI mixture whose languages differ in token length
(en, zh, hi, th: Latin, Han, Devanagari and Thai scripts tokenise very differently):

- LoRA, padded batches      -> tokens/s (non-padding tokens), padding share of the batches
- LoRA, packed (best-fit)   -> tokens/s; ratio packed / padded
- QLoRA (4-bit NF4), padded -> peak memory; ratio QLoRA / LoRA

Each configuration runs in its own process through ``mslt_it.training.run.train`` (the real
pipeline), so peak memory is per configuration: ``torch.cuda.max_memory_allocated`` on a GPU,
the process's peak RSS on CPU (which includes Python and the libraries, ~0.7 GB).

The model is built from a config with random weights (throughput does not depend on them): on a
GPU a ~0.5B-parameter Llama in bf16, with an MFU estimate 6·N·tokens/s / peak FLOPs (6·N
overstates LoRA's work, which skips the frozen weights' gradients: read it as an upper bound);
on CPU a ~30M one in fp32.

    python benchmarks/bench_train.py [--steps 20] [--per-language 120] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MSLT_IT_PROGRESS", "0")

LANGS = ["en", "zh", "hi", "th"]
# Dense bf16 peak FLOP/s by GPU name fragment, for the MFU estimate.
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12}
CONFIGS = {
    "lora": {"qlora": False, "packing": False},
    "lora+packing": {"qlora": False, "packing": True},
    "qlora": {"qlora": True, "packing": False},
}
MAX_LENGTH = 512


def model_shape(gpu: bool) -> dict[str, int]:
    """~0.5B parameters on a GPU; ~30M on CPU, where the bigger one would take minutes a step."""
    if gpu:
        return {
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_hidden_layers": 28,
            "num_attention_heads": 16,
            "num_key_value_heads": 8,
        }
    return {
        "hidden_size": 512,
        "intermediate_size": 1536,
        "num_hidden_layers": 8,
        "num_attention_heads": 8,
        "num_key_value_heads": 8,
    }


def build_model(folder: Path, tokenizer_dir: str, gpu: bool) -> int:
    """A random Llama sized by :func:`model_shape`, saved with the tokenizer; returns N."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        **model_shape(gpu),
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def build_mixture(folder: Path, per_language: int, tokenizer_dir: str) -> dict[str, Any]:
    from mslt_it.config import DataConfig
    from mslt_it.data import build_dataset

    config = DataConfig(
        task="xnli",
        sources=LANGS,
        budget=per_language,
        budget_mode="per_language",
        tokenizer=tokenizer_dir,
        max_length=512,
    )
    return build_dataset(config, folder).manifest


def child(spec: dict[str, Any]) -> None:
    """Run one configuration (in its own process) and print its measurements as JSON."""
    import torch

    from mslt_it.training import ModelConfig, validate_train_section
    from mslt_it.training.run import train

    gpu = torch.cuda.is_available()
    sft = {
        "max_steps": spec["steps"],
        # A packed row holds several examples: --packed-batch-size rows per step (default 1). With
        # more, padding-free collation flattens the rows into one sequence, and SDPA (no varlen
        # kernel) then computes dense attention across all of them: slower, not faster.
        "per_device_train_batch_size": spec[
            "packed_batch_size" if spec["packing"] else "batch_size"
        ],
        "logging_steps": spec["steps"],
        "save_strategy": "no",
        "gradient_checkpointing": False,
        "warmup_steps": 0,
        "seed": 0,
    }
    config = validate_train_section(
        {
            "dataset": spec["dataset"],
            "max_length": MAX_LENGTH,
            "packing": spec["packing"],
            "qlora": spec["qlora"],
            "lora": {"r": 16, "lora_alpha": 32, "target_modules": "all-linear"},
            "sft": sft,
        }
    )
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    result = train(ModelConfig(name_or_path=spec["model"]), config, spec["out"])
    run = result.run
    weights_mb = weights_footprint_mb(spec["model"], spec["qlora"])  # after the peak was taken
    print(
        "RESULT "
        + json.dumps(
            {
                "tokens_per_second": run["tokens_per_second"],
                "tokens_seen": run["tokens_seen"],
                "train_seconds": run["train_seconds"],
                "peak_memory_mb": run["peak_memory_mb"],
                "steps": run["steps"],
                "weights_mb": weights_mb,
            }
        )
    )


def weights_footprint_mb(model_dir: str, qlora: bool) -> float:
    """The base model's weights in memory as the run loads them (4-bit for QLoRA)."""
    import torch

    from mslt_it.training.model import compute_dtype, load_base_model

    gpu = torch.cuda.is_available()
    model = load_base_model(
        model_dir,
        trust_remote_code=False,
        qlora=qlora,
        dtype=compute_dtype(gpu, False),
        gradient_checkpointing=False,
    )
    return round(model.get_memory_footprint() / 2**20, 1)


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line.removeprefix("RESULT "))
    raise RuntimeError(f"{spec['name']} failed:\n{done.stderr[-3000:]}")


def padding_share(dataset_dir: str, model_dir: str, batch_size: int) -> float:
    """Share of padding in padded batches of the mixture (what packing removes)."""
    import datasets
    from transformers import AutoTokenizer

    from mslt_it.training.checks import token_lengths

    lengths = token_lengths(
        datasets.load_from_disk(dataset_dir), AutoTokenizer.from_pretrained(model_dir)
    )
    real = padded = 0
    for start in range(0, len(lengths), batch_size):
        batch = lengths[start : start + batch_size]
        real += sum(batch)
        padded += max(batch) * len(batch)
    return 1 - real / padded


def english_centric_tokenizer(folder: Path) -> str:
    """A byte-level BPE learnt from English text only, with the tiny model's chat template.

    Like the tokenizers of most English-centric LLMs, it needs several tokens per character in
    other scripts, so the mixture's languages differ in length as they do on real models (the
    tiny model's own tokenizer, learnt from every script, makes them all about equal).
    """
    from mslt_it.tiny import chat_conversations, raw_documents, tokenizer_corpus, train_tokenizer

    corpus = tokenizer_corpus(raw_documents(["en"], 300), chat_conversations(["en"], 200, 0))
    tokenizer = train_tokenizer(corpus, vocab_size=4096)
    tokenizer.save_pretrained(folder / "tokenizer")
    return str(folder / "tokenizer")


def gpu_peak_flops() -> float | None:
    import torch

    name = torch.cuda.get_device_name()
    return next((flops for key, flops in PEAK_BF16_FLOPS.items() if key in name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tokenizer",
        help="tokenizer folder with a chat template (default: an English-centric one)",
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--per-language", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=4, help="examples per padded batch")
    parser.add_argument("--packed-batch-size", type=int, default=1, help="packed rows per step")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return

    import torch

    gpu = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tokenizer_dir = args.tokenizer or english_centric_tokenizer(tmp)
        n_params = build_model(tmp / "model", tokenizer_dir, gpu)
        manifest = build_mixture(tmp / "data", args.per_language, tokenizer_dir)
        share = padding_share(str(tmp / "data"), str(tmp / "model"), args.batch_size)
        results = {}
        for name, flags in CONFIGS.items():
            spec = {
                "name": name,
                "model": str(tmp / "model"),
                "dataset": str(tmp / "data"),
                "out": str(tmp / f"run-{name}"),
                "steps": args.steps,
                "batch_size": args.batch_size,
                "packed_batch_size": args.packed_batch_size,
                **flags,
            }
            started = time.perf_counter()
            results[name] = run_child(spec)
            results[name]["wall_seconds"] = round(time.perf_counter() - started, 1)

    report(results, manifest, share, n_params, gpu, args)


def report(
    results: dict[str, dict[str, Any]],
    manifest: dict[str, Any],
    share: float,
    n_params: int,
    gpu: bool,
    args: argparse.Namespace,
) -> None:
    import torch

    device = torch.cuda.get_device_name() if gpu else f"CPU ({os.cpu_count()} cores)"
    print(
        f"machine: {platform.machine()}, {device}, Python {platform.python_version()}, "
        f"torch {torch.__version__}"
    )
    means = {lang: s["mean"] for lang, s in manifest["tokens"]["per_language"].items()}
    print(
        f"model: random Llama, {n_params / 1e6:.1f}M parameters, "
        f"{'bf16' if gpu else 'fp32'}; LoRA r=16 on all linear layers"
    )
    print(
        f"data: synthetic XNLI {'+'.join(LANGS)}, {args.per_language} per language; "
        "mean tokens " + ", ".join(f"{k} {v:.0f}" for k, v in means.items())
    )
    print(
        f"steps {args.steps}; padded: {args.batch_size} examples per batch ({share:.0%} padding); "
        f"packed: {args.packed_batch_size} row(s) of {MAX_LENGTH} tokens per step; "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        f"{'config':<14}{'tokens/s':>10}{'peak MB':>9}{'weights MB':>11}{'tokens':>8}"
        f"{'train s':>9}{'wall s':>8}"
    )
    for name, r in results.items():
        print(
            f"{name:<14}{r['tokens_per_second']:>10,.0f}{r['peak_memory_mb']:>9,.0f}"
            f"{r['weights_mb']:>11,.1f}{r['tokens_seen']:>8,}{r['train_seconds']:>9.1f}"
            f"{r['wall_seconds']:>8.1f}"
        )
    speedup = results["lora+packing"]["tokens_per_second"] / results["lora"]["tokens_per_second"]
    memory = results["qlora"]["peak_memory_mb"] / results["lora"]["peak_memory_mb"]
    print(f"packing speed-up (tokens/s, packed / padded): {speedup:.2f}x")
    weights = results["qlora"]["weights_mb"] / results["lora"]["weights_mb"]
    print(f"peak memory QLoRA / LoRA: {memory:.2f} (weights alone: {weights:.2f})")
    if gpu and (peak := gpu_peak_flops()):
        for name, r in results.items():
            mfu = 6 * n_params * r["tokens_per_second"] / peak
            print(f"MFU estimate {name}: {mfu:.1%} (6·N·tokens/s / {peak / 1e12:.0f} TFLOP/s)")


if __name__ == "__main__":
    main()
