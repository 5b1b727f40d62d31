"""What a re-run of a recipe costs after an edit to its data folder, side by side.

A build hashes every file of its local data folder, so an edit to any language's file makes
every build stale. A rebuilt dataset with the same rows and template keeps its training (and
the evaluation and report made from it); before, the trainings were cleared before the builds
ran. This script runs one small recipe on local rows (XNLI-shaped JSON lines for en, de, sw;
runs ``en`` and ``en+de``; ``sw`` is only evaluated), each ``mslt-it run`` in a fresh process:

1. the first run (tiny model made, two builds, two trainings, evaluation, report);
2. after an edit to ``sw``'s file, which no run trains on: the builds run again, nothing else;
3. after an edit to every ``en`` row: the builds, both trainings, the
   evaluation and the report run again; what step 2 cost before the change.

    python benchmarks/bench_rerun.py [--steps 60] [--threads 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench_watch import timed_run  # the same fresh process the demo's benchmark times

ROWS = 200


def write_rows(folder: Path) -> None:
    """XNLI rows for en, de and sw: 200 each, labels cycling, texts numbered."""
    for lang in ("en", "de", "sw"):
        path = folder / "xnli" / lang / "train.jsonl"
        path.parent.mkdir(parents=True)
        with path.open("w", encoding="utf-8") as file:
            for i in range(ROWS):
                row = {"id": str(i), "premise": f"{lang} premise {i}", "hypothesis": f"h {i}"}
                file.write(json.dumps(row | {"label": i % 3}) + "\n")


def write_recipe(path: Path, rows: Path, steps: int) -> None:
    path.write_text(
        f"name: rerun-bench\ndata: {{task: xnli, budget: {ROWS}, data: {rows}}}\n"
        "sources: [[en], [en, de]]\nmodel: {name_or_path: mslt-it:tiny}\n"
        "train: {max_length: 128, lora: {r: 8, lora_alpha: 16, target_modules: all-linear}, "
        f"sft: {{max_steps: {steps}, per_device_train_batch_size: 8}}}}\n"
        "eval: {task: xnli, langs: [en, de, sw], data: synthetic, limit: 50, mode: rank}\n",
        encoding="utf-8",
    )


def run(recipe: Path, out: Path, threads: int) -> tuple[float, list[str]]:
    """One ``mslt-it run`` in a fresh process: its wall time and the steps it ran."""
    seconds, printed = timed_run(recipe, out, threads)
    ran = [line.split(":")[0] for line in printed.splitlines() if line.endswith(": running")]
    return seconds, ran


def edit(path: Path, old: str, new: str) -> None:
    """Replace every ``old`` in the file (each row that holds it)."""
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="training steps per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="work here instead of a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = args.keep or Path(scratch)
        rows, recipe, out = work / "rows", work / "recipe.yaml", work / "out"
        write_rows(rows)
        write_recipe(recipe, rows, args.steps)
        first, _ = run(recipe, out, args.threads)
        edit(rows / "xnli" / "sw" / "train.jsonl", "sw premise", "sw Premise")
        other, other_ran = run(recipe, out, args.threads)
        edit(rows / "xnli" / "en" / "train.jsonl", "en premise", "en Premise")
        sampled, sampled_ran = run(recipe, out, args.threads)
    print("| re-run | steps run | seconds | ratio to the retraining re-run |")
    print("|---|---|---:|---:|")
    print(f"| first run (tiny model made) | all | {first:.1f} | {first / sampled:.2f} |")
    print(
        f"| after an edit to sw's file (no run trains on it) | {', '.join(other_ran)} | "
        f"{other:.1f} | {other / sampled:.2f} |"
    )
    print(f"| after an edit to every en row | {', '.join(sampled_ran)} | {sampled:.1f} | 1.00 |")


if __name__ == "__main__":
    main()
