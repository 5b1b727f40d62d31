"""The GPU check: every number users decide by, in one call, within a hard time budget.

A GPU is lent for minutes, without network, on a machine that has torch, transformers, peft and
accelerate but not trl, datasets or bitsandbytes (they can travel as wheels:
``benchmarks/gpu_wheels.txt``). So this script reads only what the machine has (a random Llama
built from a config, synthetic XNLI data), says at start which optional packages import and
which parts it will therefore skip, and stops every part at its share of the budget, recording
what it skipped and why. ``--smoke`` runs the same code with tiny sizes on a CPU in well under two
minutes (``tests/test_gpu_check.py``), so a typo never costs GPU minutes.

Parts:

1. **training**: LoRA r=16 on all linear layers, max length 512, bf16 on CUDA (float32 on CPU),
   on the skewed multilingual mixture of ``bench_train.py`` (en, zh, hi, th through an
   English-centric tokenizer): tokens/s, peak memory, MFU (6·N·tokens/s over the device's dense
   bf16 peak: an upper bound for LoRA, which skips the frozen weights' gradients). A plain torch
   loop over PEFT's model, padded and packed (position ids that restart per example: SDPA,
   or flash-attention 2 if it imports), QLoRA when bitsandbytes imports on CUDA, and the same
   through ``mslt_it.training.run.train`` (TRL's SFTTrainer) when trl and datasets import.
2. **evaluation**: the same model through mslt-it's ``hf`` backend: greedy generation batched
   (32, 64, 128) against one prompt at a time on 200 XNLI prompts, and rank mode; whether the
   outputs are identical across batch sizes.
3. **profile**: ``torch.profiler``'s top kernels of a training step, so a low MFU has a reason.

    python benchmarks/gpu_check.py --out DIR [--smoke] [--peak-tflops X] [--budget-s 480]

writes ``DIR/gpu_check.json`` (after every measurement, so a killed run keeps what it measured)
and ``DIR/gpu_check.md``, a summary to paste into BENCHMARKS.md's GPU section.

This file parses the arguments and runs the parts in turn; the parts themselves, the budget and
the summary live in ``benchmarks/gpu/``, one module each (see its ``__init__.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The GPU machine gets a copy of the checkout, not an installed package.
if importlib.util.find_spec("mslt_it") is None:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import bench_eval  # noqa: E402, F401  (first: sets the offline and quiet-progress environment)
import bench_train  # noqa: E402
from gpu.budget import (  # noqa: E402
    CORE,
    FULL,
    PART_WEIGHTS,
    SMOKE,
    Budget,
    guarded,
    log,
    machine,
    package_report,
    peak_flops,
    planned_skips,
    read_wheel_list,
)
from gpu.evaluation import evaluation_part  # noqa: E402
from gpu.profile import profile_part  # noqa: E402
from gpu.setup import Setup, prepare  # noqa: E402
from gpu.summary import markdown, status_note  # noqa: E402
from gpu.training import LORA, training_part  # noqa: E402

SCHEMA = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for gpu_check.json and .md")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CPU rehearsal")
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak, for MFU")
    parser.add_argument("--budget-s", type=float, default=480.0, help="hard time budget")
    parser.add_argument(
        "--parts",
        type=part_list,
        default=list(PART_WEIGHTS),
        help="comma-separated parts to run, sharing the budget (default: training,evaluation,"
        "profile)",
    )
    return parser.parse_args(argv)


def part_list(text: str) -> list[str]:
    """``training,profile`` -> the parts in the order they run; an unknown name is an error."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(PART_WEIGHTS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{', '.join(unknown) or 'nothing'}: choose from {', '.join(PART_WEIGHTS)}"
        )
    return [part for part in PART_WEIGHTS if part in names]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    budget = Budget(args.budget_s)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    packages = package_report(read_wheel_list())
    for name, info in packages.items():
        log(f"{name}: {info.get('version') or 'does not import'} (for {info['needed_by']})")
    missing_core = [m for m in CORE if not packages.get(m, {}).get("importable")]
    if missing_core:
        reason = f"mslt_it needs {', '.join(missing_core)}: install the wheels of gpu_wheels.txt"
        log(reason)
        stopped = {"schema": SCHEMA, "status": "failed", "reason": reason, "packages": packages}
        (out / "gpu_check.json").write_text(json.dumps(stopped, indent=2) + "\n", "utf-8")
        return 2
    return run_check(args, budget, out, packages)


def run_check(
    args: argparse.Namespace, budget: Budget, out: Path, packages: dict[str, dict[str, Any]]
) -> int:
    """Set up, then training, evaluation and profile, each within its share."""
    import torch

    from mslt_it.io import atomic_write_json, atomic_write_text

    sizes = SMOKE if args.smoke else FULL
    cuda = torch.cuda.is_available()
    info = machine()
    peak, peak_source = peak_flops(info["device"] if cuda else "", args.peak_tflops)
    skips = planned_skips(packages, cuda)
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "command": "python benchmarks/gpu_check.py " + " ".join(sys.argv[1:] or ["--out", "DIR"]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": "smoke" if args.smoke else "full",
        "machine": info,
        "budget": {"total_s": args.budget_s, "weights": PART_WEIGHTS},
        "packages": packages,
        "planned_skips": skips,
        "peak_bf16_flops": peak,
        "peak_source": peak_source,
        "sizes": dataclasses.asdict(sizes),
        "parts": {
            p: {"status": "skipped", "reason": "not reached" if p in args.parts else "not asked"}
            for p in PART_WEIGHTS
        },
    }
    for run, reason in skips.items():
        log(f"will skip {run}: {reason}")

    def save() -> None:
        report["budget"]["spent_s"] = round(time.monotonic() - budget.started, 1)
        atomic_write_json(out / "gpu_check.json", report)
        if "model" in report:
            atomic_write_text(out / "gpu_check.md", markdown(report))

    with tempfile.TemporaryDirectory() as tmp_name:
        started = time.monotonic()
        setup = prepare(sizes, Path(tmp_name), packages, peak)
        report["setup_seconds"] = round(time.monotonic() - started, 1)
        report["model"] = {
            "parameters": setup.n_params,
            "shape": bench_train.model_shape(sizes.large_model),
            "dtype": "bfloat16" if cuda else "float32",
            "max_length": sizes.max_length,
            "lora": LORA,
        }
        report["data"] = setup.data
        log(f"setup {report['setup_seconds']} s: {setup.n_params / 1e6:.1f}M parameters")
        save()
        run_parts(setup, budget, skips, report, save, args.parts)
    save()
    log(f"wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    return 0


def run_parts(
    setup: Setup,
    budget: Budget,
    skips: dict[str, str],
    report: dict[str, Any],
    save: Callable,
    parts: list[str],
) -> None:
    """Each asked part in turn, with its share of the time left, the alarm as its backstop."""
    parts_left = list(parts)
    for part in parts:
        share = budget.share(part, parts_left)
        parts_left.remove(part)
        started = time.monotonic()
        deadline = started + share
        if part == "training":
            found = training_part(setup, skips, deadline, save)
        elif part == "evaluation":
            found = guarded(lambda d=deadline: evaluation_part(setup, d), share)
        else:
            found = guarded(lambda d=deadline: profile_part(setup, d), share)
        found["share_seconds"] = round(share, 1)
        found.setdefault("wall_seconds", round(time.monotonic() - started, 1))
        report["parts"][part] = found
        log(f"{part}: {status_note(found)} ({share:.0f} s share)")
        save()


if __name__ == "__main__":
    sys.exit(main())
