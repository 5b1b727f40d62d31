"""lm-evaluation-harness's own task code on local rows, as the reference mslt-it is checked against.

lm-eval's XCOPA, XStoryCloze and XWinograd tasks are built from its own YAML configs and utility
functions (``lm_eval/tasks/<task>/``), with only the dataset redirected to a local JSONL file of
the Hub schema, so the (context, continuation) requests and the per-choice log-likelihoods come
from lm-eval's code path (``ConfigurableTask.construct_requests``, ``HFLM.loglikelihood``).
Used by ``tests/test_multiple_choice.py`` and ``benchmarks/bench_multiple_choice.py``; needs
``lm_eval==0.4.13`` (installed with the ``dev`` extra).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

LM_EVAL_TASKS = {
    "xcopa": ("xcopa_{config}", "test"),
    "xstorycloze": ("xstorycloze_{config}", "eval"),
    "xwinograd": ("xwinograd_{config}", "test"),
}
"""mslt-it task -> (lm-eval task name by Hub config, the split lm-eval evaluates)."""


def write_rows(rows: list[dict[str, Any]], path: Path) -> Path:
    """Rows as JSONL (the Hub schema; mslt-it's ``id`` left out, as the Hub has none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps({k: v for k, v in row.items() if k != "id"}) + "\n")
    return path


@cache
def task_manager() -> Any:
    """lm-eval's index of its task configs, made once per process: it reads every YAML file
    lm-eval ships (about 10 s each time), and nothing here changes them."""
    from lm_eval.tasks import TaskManager

    return TaskManager()


def lm_eval_task(task: str, config: str, rows_file: Path) -> Any:
    """lm-eval's task for one language, reading its evaluation split from ``rows_file``."""
    from lm_eval.api.task import ConfigurableTask

    name, split = LM_EVAL_TASKS[task]
    manager = task_manager()
    entry = manager._entry(name.format(config=config))
    settings = manager._factory._load_full_config(entry, None)
    settings.update(
        dataset_path="json",
        dataset_name=None,
        dataset_kwargs={"data_files": {split: str(rows_file)}},
        training_split=None,
        validation_split=split if split != "test" else None,
        test_split="test" if split == "test" else None,
    )
    built = ConfigurableTask(config=settings)
    built.build_all_requests(limit=None, rank=0, world_size=1)
    return built


def lm_eval_requests(built: Any) -> list[list[tuple[str, str]]]:
    """Per document, its (context, continuation) pairs in choice order."""
    per_doc: dict[int, list[tuple[int, tuple[str, str]]]] = {}
    for instance in built.instances:
        per_doc.setdefault(instance.doc_id, []).append((instance.idx, tuple(instance.args)))
    return [[args for _, args in sorted(per_doc[d])] for d in sorted(per_doc)]


def lm_eval_scores(model: Any, built: Any) -> list[list[float]]:
    """Per document, lm-eval's log-likelihood of each choice (``HFLM.loglikelihood``)."""
    results = model.loglikelihood(built.instances, disable_tqdm=True)
    per_doc: dict[int, list[tuple[int, float]]] = {}
    for instance, (score, _) in zip(built.instances, results, strict=True):
        per_doc.setdefault(instance.doc_id, []).append((instance.idx, float(score)))
    return [[s for _, s in sorted(per_doc[d])] for d in sorted(per_doc)]


def lm_eval_metrics(built: Any, scores: list[list[float]]) -> list[dict[str, float]]:
    """lm-eval's own ``process_results`` (acc, and acc_norm where the task reports it)."""
    docs = list(built.eval_docs)
    return [
        built.process_results(doc, [(s, False) for s in row])
        for doc, row in zip(docs, scores, strict=True)
    ]
