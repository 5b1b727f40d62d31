"""What a recipe's evaluation costs when it is made again, side by side: reopened (only the
(adapter, task, language) parts whose inputs changed are predicted) against made from scratch
(every adapter on every language, what every re-run did before).

One recipe, four runs (``en``, ``de``, ``sw``, ``en+de``) of the tiny model and the base model,
evaluated in rank mode on local XNLI-shaped rows of five languages. Each ``mslt-it run`` is a
fresh process. After the first run:

1. one language's rows edited (``fr``): reopened, the five runs predict fr alone;
2. the same edit again, with the evaluation folder deleted first: every run, every language;
3. a sixth language added (``ru``): reopened, the new language alone.

    python benchmarks/bench_reeval.py [--rows 200] [--threads 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from bench_watch import timed_run  # the same fresh process the demo's benchmark times

LANGS = ("en", "de", "sw", "fr", "zh")


def write_rows(folder: Path, lang: str, rows: int, hypothesis: str = "h") -> None:
    """XNLI rows for ``lang``: labels cycling, texts numbered."""
    path = folder / "xnli" / lang / "test.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as file:
        for i in range(rows):
            row = {"premise": f"{lang} premise {i}", "hypothesis": f"{hypothesis} {i}"}
            file.write(json.dumps(row | {"label": i % 3}) + "\n")


def write_recipe(path: Path, rows: Path, langs: tuple[str, ...]) -> None:
    path.write_text(
        "name: reeval-bench\ndata: {task: xnli, budget: 64, data: synthetic}\n"
        "sources: [[en], [de], [sw], [en, de]]\nmodel: {name_or_path: mslt-it:tiny}\n"
        "train: {max_length: 128, lora: {r: 8, lora_alpha: 16, target_modules: all-linear}, "
        "sft: {max_steps: 4, per_device_train_batch_size: 8}}\n"
        f"eval: {{task: xnli, langs: [{', '.join(langs)}], data: {rows}, mode: rank, "
        "include_base: true}\n",
        encoding="utf-8",
    )


def predicted(evaluation: Path) -> tuple[int, float]:
    """Examples the last evaluation predicted, and its seconds predicting them, over its runs
    (each run's timings.json): the part that grows with the model."""
    timings = [json.loads(path.read_text()) for path in evaluation.glob("*/timings.json")]
    examples = sum(t["examples_predicted"] for t in timings)
    return examples, sum(t.get("seconds_predicting", 0.0) for t in timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200, help="rows per language")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="work here instead of a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = args.keep or Path(scratch)
        rows, recipe, out = work / "rows", work / "recipe.yaml", work / "out"
        for lang in LANGS:
            write_rows(rows, lang, args.rows)
        write_recipe(recipe, rows, LANGS)
        table = []
        seconds, _ = timed_run(recipe, out, args.threads)
        table.append(("first run (tiny model made, 4 trainings)", seconds, predicted(out / "eval")))
        write_rows(rows, "fr", args.rows, hypothesis="edited")
        seconds, _ = timed_run(recipe, out, args.threads)
        table.append(("fr's rows edited: reopened", seconds, predicted(out / "eval")))
        write_rows(rows, "fr", args.rows, hypothesis="edited again")
        shutil.rmtree(out / "eval")
        seconds, _ = timed_run(recipe, out, args.threads)
        table.append(
            (
                "fr's rows edited: evaluation deleted first (as before)",
                seconds,
                predicted(out / "eval"),
            )
        )
        write_rows(rows, "ru", args.rows)
        write_recipe(recipe, rows, (*LANGS, "ru"))
        seconds, _ = timed_run(recipe, out, args.threads)
        table.append(("ru added: reopened", seconds, predicted(out / "eval")))
    baseline = table[2]  # as every re-run was before
    print(
        "| re-run | examples predicted | seconds predicting | seconds in all | ratio (predicting) |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, seconds, (examples, predicting) in table:
        ratio = f"{predicting / baseline[2][1]:.2f}" if name != table[0][0] else ""
        print(f"| {name} | {examples:,} | {predicting:.1f} | {seconds:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
