"""Rank-mode multiple choice against lm-evaluation-harness, side by side in one run.

For XCOPA, XStoryCloze and XWinograd (synthetic rows in the Hub schema, two languages each) on
the tiny model (or ``--model``): lm-eval's own task code (its YAML and utils, the dataset pointed
at a local file) builds the (context, continuation) requests and ``HFLM.loglikelihood`` scores
them; mslt-it renders its ``<task>/lm-eval`` templates and scores with its ``hf`` backend, which
feeds each row's shared context once for all choices. Reported per task: whether the request
strings are identical, whether both choose the same answer on every row, the largest log-
probability difference, examples per second of both and the ratio.

    python benchmarks/bench_multiple_choice.py [--model DIR] [--rows 100] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MSLT_IT_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_eval import best_of, machine, tiny_model
from lm_eval_reference import (
    lm_eval_requests,
    lm_eval_scores,
    lm_eval_task,
    write_rows,
)

TASKS = {"xcopa": ["sw", "zh"], "xstorycloze": ["en", "hi"], "xwinograd": ["en", "ja"]}
BATCH = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: build the tiny model)")
    parser.add_argument("--rows", type=int, default=100, help="rows per language")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    numbers: dict[str, Any] = {"machine": machine(), "rows_per_language": args.rows}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = args.model or str(tiny_model(root))
        from lm_eval.models.huggingface import HFLM

        lm = HFLM(pretrained=model, device="cpu", dtype="float32", batch_size=BATCH)
        for task, langs in TASKS.items():
            numbers[task] = compare_task(model, lm, task, langs, args.rows, root)
    print(json.dumps(numbers, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=2) + "\n", encoding="utf-8")


def compare_task(
    model: str, lm: Any, name: str, langs: list[str], rows: int, root: Path
) -> dict[str, Any]:
    """One task: identical requests and choices, and examples/s of both."""
    import numpy as np

    from mslt_it.evaluation.candidates import row_candidates
    from mslt_it.evaluation.prompting import ChatFormat
    from mslt_it.generation import BackendOptions, open_backend
    from mslt_it.modeling import load_tokenizer
    from mslt_it.prompts import get_template
    from mslt_it.tasks import get_task
    from mslt_it.tasks.sources import open_split

    task = get_task(name)
    template = get_template(f"{name}/lm-eval")
    tokenizer = load_tokenizer(model)
    chat = ChatFormat(tokenizer, None, None)
    backend = open_backend(
        "hf",
        BackendOptions(model=model, dtype="float32", batch_size=BATCH, device="cpu",
                       pad_token_id=tokenizer.pad_token_id),
    )  # fmt: skip
    split = task.splits[-1]
    same_requests, ours_all, theirs_all = True, [], []
    ours_seconds = theirs_seconds = 0.0
    for lang in langs:
        data = open_split(task, lang, split, "synthetic").rows(range(rows))
        built = lm_eval_task(name, task.hub_config(lang), write_rows(data, root / name / lang))
        ours_strings = [
            [(r.instruction, template.spec.target_delimiter + r.answer)
             for r in (template.render(row, lang, label=k) for k in range(len(task.labels)))]
            for row in data
        ]  # fmt: skip
        same_requests &= ours_strings == lm_eval_requests(built)

        def score_ours(rows_: list[dict] = data, lang_: str = lang) -> list[list[float]]:
            requests = [row_candidates(template, task, row, lang_, chat) for row in rows_]
            return backend.loglikelihood(
                [r.prompt for r in requests], [r.continuations for r in requests],
                skip=[r.skip for r in requests],
            )  # fmt: skip

        ours, seconds = best_of(score_ours)
        ours_seconds += seconds
        theirs, seconds = best_of(lambda b=built: lm_eval_scores(lm, b))
        theirs_seconds += seconds
        ours_all += ours
        theirs_all += theirs
    ours_array, theirs_array = np.array(ours_all), np.array(theirs_all)
    n = len(ours_all)
    return {
        "examples": n,
        "identical_requests": bool(same_requests),
        "identical_choices": bool((ours_array.argmax(1) == theirs_array.argmax(1)).all()),
        "max_abs_logprob_difference": float(np.abs(ours_array - theirs_array).max()),
        "ours_examples_per_second": round(n / ours_seconds, 2),
        "lm_eval_examples_per_second": round(n / theirs_seconds, 2),
        "speedup": round(theirs_seconds / ours_seconds, 2),
    }


if __name__ == "__main__":
    main()
