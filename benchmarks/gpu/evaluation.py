"""The GPU check's evaluation part: mslt-it's ``hf`` backend on XNLI prompts.

Greedy generation batched (each batch size of the sizes) against one prompt at a time, whether
the outputs are identical across batch sizes, and rank mode's label log-likelihoods against
batch 1, all within the part's deadline.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import bench_eval

from .budget import Sizes, sync
from .setup import Setup


def evaluation_part(setup: Setup, deadline: float) -> dict[str, Any]:
    """Greedy generation batched vs one at a time, and rank mode, through the ``hf`` backend."""
    from mslt_it.evaluation.prompting import stop_token_ids
    from mslt_it.generation import BackendOptions, open_backend

    model = str(setup.model_dir)
    prompts, answers = bench_eval.xnli_workload(model, setup.sizes.eval_per_language)
    tokenizer = setup.tokenizer
    ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    options = BackendOptions(
        model=model,
        batch_size=setup.sizes.eval_batch_sizes[0],
        stop_token_ids=stop_token_ids(model, tokenizer),
        pad_token_id=tokenizer.pad_token_id,
    )
    backend = open_backend("hf", options)
    found: dict[str, Any] = {"prompts": len(ids), "max_new_tokens": setup.sizes.max_new_tokens}
    backend.generate(ids[:2], setup.sizes.max_new_tokens)  # warm-up, untimed
    batched = generate_batched(backend, ids, setup.sizes, deadline, found)
    if setup.cuda:  # before the one-at-a-time run, which takes whatever time is left
        found["float32_control"] = float32_control(options, ids, setup.sizes, deadline)
    single = generate_single(backend, ids, setup.sizes.max_new_tokens, deadline)
    found["generate_single"] = single["record"]
    compare_outputs(found, batched, single["outputs"])
    found["rank"] = rank_mode(backend, ids, answers, tokenizer, deadline)
    backend.close()
    if single["record"].get("stopped") or len(batched) < len(setup.sizes.eval_batch_sizes):
        found["status"], found["reason"] = "partial", "budget: see generate_single and batches"
    return found


def with_batch_size(backend: Any, size: int) -> None:
    """One loaded model for every batch size: the backend reads its batch size per call."""
    backend.options = dataclasses.replace(backend.options, batch_size=size)


def generate_batched(
    backend: Any, ids: list[list[int]], sizes: Sizes, deadline: float, found: dict[str, Any]
) -> dict[int, list[list[int]]]:
    """Every prompt at each batch size (sorted by length, left-padded), while time allows."""
    outputs = {}
    for size in sizes.eval_batch_sizes:
        if time.monotonic() > deadline:
            found[f"generate_batch_{size}"] = {"status": "skipped", "reason": "budget"}
            continue
        with_batch_size(backend, size)
        sync()
        started = time.perf_counter()
        outputs[size] = backend.generate(ids, sizes.max_new_tokens)
        sync()
        seconds = time.perf_counter() - started
        found[f"generate_batch_{size}"] = {
            "examples_per_second": round(len(ids) / seconds, 2),
            "new_tokens_per_second": round(sum(map(len, outputs[size])) / seconds, 1),
            "seconds": round(seconds, 2),
        }
    return outputs


def generate_single(
    backend: Any, ids: list[list[int]], max_tokens: int, deadline: float
) -> dict[str, Any]:
    """One prompt per call until done or until the time for rank mode is all that is left."""
    with_batch_size(backend, 1)
    reserve = 0.25 * max(0.0, deadline - time.monotonic())
    outputs: list[list[int]] = []
    seconds = 0.0
    for prompt in ids:
        if outputs and time.monotonic() + seconds / len(outputs) > deadline - reserve:
            break
        started = time.perf_counter()
        outputs += backend.generate([prompt], max_tokens)
        seconds += time.perf_counter() - started
    record: dict[str, Any] = {
        "examples": len(outputs),
        "examples_per_second": round(len(outputs) / seconds, 2) if seconds else 0.0,
        "seconds": round(seconds, 2),
    }
    if len(outputs) < len(ids):
        record["stopped"] = f"budget: {len(outputs)} of {len(ids)} prompts"
    return {"record": record, "outputs": outputs}


def compare_outputs(
    found: dict[str, Any], batched: dict[int, list[list[int]]], single: list[list[int]]
) -> None:
    """Greedy outputs must not depend on the batch: each batch size against one at a time (on
    the prompts both ran) and against the other batch sizes (on all prompts)."""
    single_rate = found["generate_single"]["examples_per_second"]
    identical = True
    reference = next(iter(batched.values()), None)
    for size, outputs in batched.items():
        same_single = outputs[: len(single)] == single
        same_batches = outputs == reference
        agree = sum(a == b for a, b in zip(outputs, single, strict=False))
        entry = found[f"generate_batch_{size}"]
        entry["identical_to_single"] = same_single
        entry["single_agreement"] = round(agree / len(single), 4) if single else None
        entry["identical_across_batch_sizes"] = same_batches
        if single_rate:
            entry["speedup_vs_single"] = round(entry["examples_per_second"] / single_rate, 2)
        identical = identical and same_single and same_batches
    found["greedy_identical"] = identical and bool(batched) and bool(single)


def float32_control(
    options: Any, ids: list[list[int]], sizes: Sizes, deadline: float
) -> dict[str, Any]:
    """The same comparison in float32, on a few prompts: is a bf16 difference numerics or a bug?

    bf16 rounds each matrix product's result, and a batch of other lengths runs other kernels
    with another summation order, so near-tied logits (a random model's are all near-tied) can
    flip greedily chosen tokens. Padding or masking errors would change float32 outputs too.
    """
    from mslt_it.generation import open_backend

    if time.monotonic() > deadline:
        return {"status": "skipped", "reason": "budget"}
    prompts = ids[: min(len(ids), 16)]
    backend = open_backend("hf", dataclasses.replace(options, dtype="float32"))
    with_batch_size(backend, sizes.eval_batch_sizes[0])
    batched = backend.generate(prompts, sizes.max_new_tokens)
    with_batch_size(backend, 1)
    single = [backend.generate([prompt], sizes.max_new_tokens)[0] for prompt in prompts]
    backend.close()
    agree = sum(a == b for a, b in zip(batched, single, strict=True))
    return {
        "prompts": len(prompts),
        "batch_size": sizes.eval_batch_sizes[0],
        "identical_to_single": batched == single,
        "single_agreement": round(agree / len(prompts), 4),
    }


def rank_mode(
    backend: Any, ids: list[list[int]], answers: list[list[str]], tokenizer: Any, deadline: float
) -> dict[str, Any]:
    """Label log-likelihoods at the first batch size, and the chosen labels against batch 1."""
    if time.monotonic() > deadline:
        return {"status": "skipped", "reason": "budget"}
    cache: dict[str, list[int]] = {}
    candidates = [
        [cache.setdefault(a, tokenizer(a, add_special_tokens=False)["input_ids"]) for a in row]
        for row in answers
    ]
    size = bench_eval.BATCH if len(ids) >= bench_eval.BATCH else max(2, len(ids) // 2)
    with_batch_size(backend, size)
    sync()
    started = time.perf_counter()
    scores = backend.loglikelihood(ids, candidates)
    seconds = time.perf_counter() - started
    subset = min(len(ids), 32)
    with_batch_size(backend, 1)
    alone = backend.loglikelihood(ids[:subset], candidates[:subset])

    def choices(rows: list[list[float]]) -> list[int]:
        return [max(range(len(r)), key=r.__getitem__) for r in rows]

    return {
        "batch_size": size,
        "examples_per_second": round(len(ids) / seconds, 2),
        "identical_choices_vs_batch_1": choices(scores[:subset]) == choices(alone),
        "compared_examples": subset,
    }
