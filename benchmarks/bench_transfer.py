"""Transfer in the synthetic world: SSLT (English) against MSLT (three sources), on 3 seeds.

For each seed: build both datasets at one total budget (synthetic XNLI, xnli/en-instruct), train a
LoRA adapter on the given base with the demo's settings, and evaluate both adapters in rank mode
on all 15 XNLI languages. Reported per seed and on average: accuracy on each adapter's own
sources, the mean over unseen target languages (those in neither adapter's sources), and the gap.

    python benchmarks/bench_transfer.py --base DIR [--seeds 0 1 2] [--limit 100] [--json FILE]
        [--lr LR] [--rank R] [--steps N] [--targets q_proj,v_proj] [--dropout P]
        [--weight-decay W] [--mslt ar,en,zh]

``--base``: a world base (``mslt-it tiny-model DIR --world``) or any tiny model folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MSLT_IT_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LANGS = ["ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh"]
SSLT = ["en"]
MSLT = ["ar", "de", "zh"]  # the demo's selection: l2v-syntax, k = 3, from ar de en es fr ru zh
BUDGET = 2400
TRAIN = {
    "max_length": 256,
    "lora": {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear"},
    "sft": {
        "learning_rate": 3.0e-3,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 10,
        "max_steps": 300,
        "per_device_train_batch_size": 8,
        "gradient_checkpointing": False,
        "logging_steps": 50,
        "save_steps": 1000,
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="base model folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--limit", type=int, default=100, help="test rows per language")
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("--lr", type=float, help="LoRA learning rate (default: the demo's)")
    parser.add_argument("--rank", type=int, help="LoRA rank (default: the demo's)")
    parser.add_argument("--steps", type=int, help="training steps (default: the demo's)")
    parser.add_argument("--targets", help="LoRA target modules, comma-separated (default: all)")
    parser.add_argument("--dropout", type=float, help="LoRA dropout (default: the demo's, 0)")
    parser.add_argument("--weight-decay", type=float, help="AdamW weight decay (default: 0)")
    parser.add_argument("--mslt", help="the MSLT set, comma-separated (default: ar,de,zh)")
    args = parser.parse_args()
    override_training(args)
    if args.mslt:
        MSLT[:] = args.mslt.split(",")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            started = time.perf_counter()
            scores = {
                name: adapter_scores(
                    args.base, sources, seed, args.limit, Path(tmp) / f"{name}{seed}"
                )
                for name, sources in (("sslt", SSLT), ("mslt", MSLT))
            }
            runs.append(summarise(seed, scores, time.perf_counter() - started))
            print(json.dumps(runs[-1]), flush=True)
    gaps = [run["gap"] for run in runs]
    summary = {"base": args.base, "runs": runs, "mean_gap": round(statistics.mean(gaps), 2)}
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def override_training(args: argparse.Namespace) -> None:
    """Apply the command line's LoRA overrides to :data:`TRAIN` (for experiments)."""
    if args.lr is not None:
        TRAIN["sft"]["learning_rate"] = args.lr
    if args.steps is not None:
        TRAIN["sft"]["max_steps"] = args.steps
    if args.rank is not None:
        TRAIN["lora"].update(r=args.rank, lora_alpha=2 * args.rank)
    if args.targets:
        TRAIN["lora"]["target_modules"] = args.targets.split(",")
    if args.dropout is not None:
        TRAIN["lora"]["lora_dropout"] = args.dropout
    if args.weight_decay is not None:
        TRAIN["sft"]["weight_decay"] = args.weight_decay


def adapter_scores(
    base: str, sources: list[str], seed: int, limit: int, root: Path
) -> dict[str, Any]:
    """Build, train and evaluate one adapter; its per-language accuracy and intervals."""
    from mslt_it.config import DataConfig
    from mslt_it.data import build_dataset
    from mslt_it.evaluation import EvalConfig, evaluate
    from mslt_it.training import ModelConfig
    from mslt_it.training.config import validate_train_section
    from mslt_it.training.run import train

    data = DataConfig(task="xnli", sources=sources, budget=BUDGET, template="xnli/en-instruct",
                      data="synthetic", seed=seed)  # fmt: skip
    build_dataset(data, root / "data")
    settings = json.loads(json.dumps(TRAIN))
    settings["sft"]["seed"] = seed
    config = validate_train_section(settings, "train").model_copy(
        update={"dataset": str(root / "data")}
    )
    train(ModelConfig(name_or_path=base), config, root / "adapter")
    evaluation = EvalConfig(adapters=[str(root / "adapter")], task="xnli", langs=LANGS,
                            mode="rank", limit=limit, data="synthetic", backend="hf",
                            bootstrap_samples=1000)  # fmt: skip
    results = evaluate(evaluation, root / "eval").results
    languages = next(iter(results.values()))["tasks"]["xnli"]["languages"]
    return {lang: (v["score"], v["ci95"]) for lang, v in languages.items()}


def summarise(seed: int, scores: dict[str, dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Own-source accuracy of each adapter, and both adapters' mean over the shared targets."""
    targets = [lang for lang in LANGS if lang not in SSLT + MSLT]

    def mean(name: str, langs: list[str]) -> float:
        return round(statistics.mean(scores[name][lang][0] for lang in langs), 2)

    return {
        "seed": seed,
        "sslt_on_sources": mean("sslt", SSLT),
        "mslt_on_sources": mean("mslt", MSLT),
        "sslt_targets": mean("sslt", targets),
        "mslt_targets": mean("mslt", targets),
        "gap": round(mean("mslt", targets) - mean("sslt", targets), 2),
        "per_language": {name: {k: v[0] for k, v in s.items()} for name, s in scores.items()},
        "seconds": round(seconds, 1),
    }


if __name__ == "__main__":
    main()
