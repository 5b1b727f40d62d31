"""The GPU check's training part: LoRA tokens/s, peak memory and MFU per configuration.

A plain torch loop over PEFT's model, padded and packed (best-fit rows, position ids restarting
per example, with a check that packed examples stay isolated), QLoRA when bitsandbytes imports
on CUDA, and the same through ``mslt_it.training.run.train`` (TRL) when trl and datasets
import; each run within its share of the part's time. The profile part reuses its model and step.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import bench_train

from .budget import REQUIREMENTS, guarded, log, reset_memory, sync
from .setup import IGNORE_INDEX, Setup
from .summary import status_note

LORA = {"r": 16, "lora_alpha": 32, "target_modules": "all-linear"}
LEARNING_RATE = 2e-4

Batch = tuple[dict[str, Any], int]  # model inputs, real (non-padding) tokens


def padded_batches(setup: Setup) -> Iterator[Batch]:
    """Shuffled batches padded to their longest example, as TRL's collator pads, endlessly."""
    import torch

    pad = setup.tokenizer.pad_token_id
    rng = random.Random(0)
    size = min(setup.sizes.batch_size, len(setup.encoded))
    while True:
        order = list(range(len(setup.encoded)))
        rng.shuffle(order)
        for start in range(0, len(order) - size + 1, size):
            rows = [setup.encoded[i] for i in order[start : start + size]]
            width = max(len(ids) for ids, _ in rows)
            ids = torch.full((size, width), pad, dtype=torch.long)
            labels = torch.full((size, width), IGNORE_INDEX, dtype=torch.long)
            mask = torch.zeros((size, width), dtype=torch.long)
            for r, (row_ids, row_labels) in enumerate(rows):
                ids[r, : len(row_ids)] = torch.tensor(row_ids)
                labels[r, : len(row_ids)] = torch.tensor(row_labels)
                mask[r, : len(row_ids)] = 1
            inputs = {"input_ids": ids, "labels": labels, "attention_mask": mask}
            yield to_device(inputs, setup.device), int(mask.sum())


def best_fit(lengths: list[int], capacity: int) -> list[list[int]]:
    """Best-fit decreasing bins of example indices (TRL's ``bfd`` strategy): examples stay whole."""
    bins: list[list[int]] = []
    free: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        fits = [b for b in range(len(bins)) if free[b] >= lengths[index]]
        if fits:
            best = min(fits, key=lambda b: free[b])
            bins[best].append(index)
            free[best] -= lengths[index]
        else:
            bins.append([index])
            free.append(capacity - lengths[index])
    return bins


def packed_row(
    examples: list[tuple[list[int], list[int]]], width: int, pad: int
) -> tuple[list[int], list[int], list[int]]:
    """One row: examples end to end, position ids restarting at each (the padding-free signal
    transformers turns into a block-diagonal mask), the tail padded as its own sequence."""
    ids, labels, positions = [], [], []
    for row_ids, row_labels in examples:
        ids += row_ids
        labels += row_labels
        positions += list(range(len(row_ids)))
    rest = width - len(ids)
    return ids + [pad] * rest, labels + [IGNORE_INDEX] * rest, positions + list(range(rest))


def packed_batches(setup: Setup) -> Iterator[Batch]:
    """Rows of max_length tokens packed best-fit, ``packed_rows`` a step, endlessly."""
    import torch

    width, pad = setup.sizes.max_length, setup.tokenizer.pad_token_id
    bins = best_fit([len(ids) for ids, _ in setup.encoded], width)
    rng = random.Random(0)
    size = min(setup.sizes.packed_rows, len(bins))
    while True:
        rng.shuffle(bins)
        for start in range(0, len(bins) - size + 1, size):
            rows = [
                packed_row([setup.encoded[i] for i in b], width, pad)
                for b in bins[start : start + size]
            ]
            inputs = {
                "input_ids": torch.tensor([r[0] for r in rows]),
                "labels": torch.tensor([r[1] for r in rows]),
                "position_ids": torch.tensor([r[2] for r in rows]),
            }
            real = sum(len(setup.encoded[i][0]) for b in bins[start : start + size] for i in b)
            yield to_device(inputs, setup.device), real


def to_device(inputs: dict[str, Any], device: str) -> dict[str, Any]:
    return {key: value.to(device) for key, value in inputs.items()}


def packing_attention(setup: Setup) -> str:
    """flash-attention 2 where it imports on CUDA (varlen kernel), else SDPA (masked dense)."""
    if setup.cuda and setup.packages.get("flash_attn", {}).get("importable"):
        return "flash_attention_2"
    return "sdpa"


def lora_model(setup: Setup, *, qlora: bool, attention: str) -> Any:
    """The base through mslt_it's loader (4-bit for QLoRA) with LoRA on every linear layer."""
    from peft import LoraConfig, get_peft_model

    from mslt_it.training.model import compute_dtype, load_base_model

    base = load_base_model(
        str(setup.model_dir),
        trust_remote_code=False,
        qlora=qlora,
        dtype=compute_dtype(setup.cuda, False),
        gradient_checkpointing=False,
        init_kwargs={"attn_implementation": attention},
    )
    if not qlora:  # bitsandbytes already put the 4-bit base on the GPU
        base.to(setup.device)
    return get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", **LORA))


@dataclass
class StepStats:
    """Timed training steps (warm-up excluded)."""

    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    stopped: str | None = None

    def as_json(self) -> dict[str, Any]:
        rate = self.tokens / self.seconds if self.seconds else 0.0
        return {
            "timed_steps": self.steps,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 3),
            "tokens_per_second": round(rate, 1),
            "tokens_per_step": round(self.tokens / self.steps, 1) if self.steps else 0,
            "first_loss": round(self.losses[0], 4) if self.losses else None,
            "last_loss": round(self.losses[-1], 4) if self.losses else None,
        }


def training_step(model: Any, optimizer: Any, inputs: dict[str, Any], cuda: bool) -> float:
    """One optimizer step; bf16 autocast on CUDA, as the Trainer's mixed precision does."""
    import torch

    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    with autocast:
        loss = model(**inputs, use_cache=False).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach().item()  # waits for the step's kernels


def optimizer_for(model: Any, cuda: bool) -> Any:
    import torch

    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(trainable, lr=LEARNING_RATE, fused=cuda or None)


def timed_steps(setup: Setup, model: Any, batches: Iterator[Batch], deadline: float) -> StepStats:
    """Warm-up steps, then timed steps until ``max_steps`` or until the next would pass the
    deadline (predicted from the mean step so far)."""
    optimizer = optimizer_for(model, setup.cuda)
    model.train()
    stats = StepStats()
    for step in range(setup.sizes.warmup_steps + setup.sizes.max_steps):
        if stats.steps and time.monotonic() + stats.seconds / stats.steps > deadline:
            stats.stopped = f"budget: {stats.steps} of {setup.sizes.max_steps} timed steps"
            break
        inputs, real = next(batches)
        sync()
        started = time.perf_counter()
        loss = training_step(model, optimizer, inputs, setup.cuda)
        elapsed = time.perf_counter() - started
        stats.losses.append(loss)
        if step >= setup.sizes.warmup_steps:
            stats.steps, stats.tokens, stats.seconds = (
                stats.steps + 1,
                stats.tokens + real,
                stats.seconds + elapsed,
            )
    return stats


def packing_isolation(setup: Setup, model: Any) -> dict[str, Any]:
    """Does a packed example see only itself? Its logits in a packed row against alone, next to
    the same row under one causal mask (what leaking across examples would look like)."""
    import torch

    first, second = setup.encoded[0][0], setup.encoded[1][0]
    row = torch.tensor([first + second], device=setup.device)
    restart = torch.tensor([list(range(len(first))) + list(range(len(second)))]).to(row.device)
    model.eval()
    with torch.no_grad():
        alone = model(input_ids=row[:, len(first) :], use_cache=False).logits[0].float()
        packed = model(input_ids=row, position_ids=restart, use_cache=False).logits[0].float()
        leaky = (
            model(
                input_ids=row,
                position_ids=restart,
                attention_mask=torch.ones_like(row),
                use_cache=False,
            )
            .logits[0]
            .float()
        )
    model.train()
    isolated = (packed[len(first) :] - alone).abs().max().item()
    leaking = (leaky[len(first) :] - alone).abs().max().item()
    return {
        "max_logit_difference_packed_vs_alone": round(isolated, 5),
        "max_logit_difference_if_leaking": round(leaking, 5),
        "isolated": isolated < 0.1 * leaking,
    }


def plain_run(setup: Setup, name: str, deadline: float) -> dict[str, Any]:
    """One configuration through a plain torch loop over PEFT's model (no trl, no datasets)."""
    from mslt_it.training.record import peak_memory_mb

    packed, qlora = "packed" in name, name.startswith("qlora")
    attention = packing_attention(setup) if packed else "sdpa"
    reset_memory()
    model = lora_model(setup, qlora=qlora, attention=attention)
    batches = packed_batches(setup) if packed else padded_batches(setup)
    stats = timed_steps(setup, model, batches, deadline)
    found = {
        "attention": attention,
        "rows_per_step": setup.sizes.packed_rows if packed else setup.sizes.batch_size,
        **stats.as_json(),
        "peak_memory_mb": peak_memory_mb(),
        "memory": "torch.cuda.max_memory_allocated" if setup.cuda else "process peak RSS so far",
    }
    found["mfu"] = setup.mfu(found["tokens_per_second"])
    if packed:
        found["packing_isolation"] = packing_isolation(setup, model)
    if stats.steps:
        setup.step_seconds[name] = stats.seconds / stats.steps
    if stats.stopped:
        found["status"], found["reason"] = "partial", stats.stopped
    del model
    reset_memory()
    return found


def trl_run(setup: Setup, name: str, deadline: float) -> dict[str, Any]:
    """The same through ``mslt_it.training.run.train`` (TRL's SFTTrainer), what users run.

    Its step count is sized from the plain loop's step time so that TRL's own set-up, label
    checks and answer metrics fit in the share too; its tokens/s includes the first step.
    """
    from mslt_it.training import ModelConfig, validate_train_section
    from mslt_it.training.run import train

    packed = "packed" in name
    if setup.dataset_dir is None:
        setup.dataset_dir = setup.tmp / "dataset"
        bench_train.build_mixture(
            setup.dataset_dir, setup.sizes.per_language, str(setup.tmp / "tokenizer")
        )
    attention = packing_attention(setup) if packed else "sdpa"
    # TRL flattens a step's packed rows into one sequence whose position ids restart per
    # example; transformers builds the block-diagonal mask from them under SDPA too (the plain
    # loop's isolation check measures that on this device), so both loops take the same rows.
    rows = setup.sizes.packed_rows
    steps = trl_steps(setup, name.replace("_trl", "_torch"), deadline)
    sft = {
        "max_steps": steps,
        "per_device_train_batch_size": rows if packed else setup.sizes.batch_size,
        "logging_steps": steps,
        "save_strategy": "no",
        "gradient_checkpointing": False,
        "warmup_steps": 0,
        "seed": 0,
    }
    if attention != "sdpa":  # SDPA is transformers' default; say nothing TRL would warn about
        sft["model_init_kwargs"] = {"attn_implementation": attention}
    config = validate_train_section(
        {
            "dataset": str(setup.dataset_dir),
            "max_length": setup.sizes.max_length,
            "packing": packed,
            "lora": LORA,
            "sft": sft,
        }
    )
    reset_memory()
    run = train(ModelConfig(name_or_path=str(setup.model_dir)), config, setup.tmp / name).run
    reset_memory()
    return {
        "attention": attention,
        "rows_per_step": sft["per_device_train_batch_size"],
        "steps": run["steps"],
        "tokens": run["tokens_seen"],
        "seconds": run["train_seconds"],
        "tokens_per_second": run["tokens_per_second"],
        "final_loss": run["final_loss"],
        "peak_memory_mb": run["peak_memory_mb"],
        "memory": "torch.cuda.max_memory_allocated" if setup.cuda else "process peak RSS so far",
        "mfu": setup.mfu(run["tokens_per_second"] or 0),
    }


def trl_steps(setup: Setup, plain_name: str, deadline: float) -> int:
    """As many steps as half the time left allows at the plain loop's pace (2 at least)."""
    wanted = setup.sizes.warmup_steps + setup.sizes.max_steps
    pace = setup.step_seconds.get(plain_name)
    if not pace:
        return wanted
    return max(2, min(wanted, int(0.5 * (deadline - time.monotonic()) / pace)))


def training_part(setup: Setup, skips: dict[str, str], deadline: float, save: Callable) -> dict:
    """Every training configuration, each with an equal share of what the part has left."""
    runs = {name: {"status": "skipped", "reason": skips.get(name, "")} for name in REQUIREMENTS}
    todo = [name for name in REQUIREMENTS if name not in skips]
    for index, name in enumerate(todo):
        share = (deadline - time.monotonic()) / (len(todo) - index)
        if share < 1:
            runs[name]["reason"] = "budget: no time left in the part"
            continue
        measure = trl_run if name.endswith("_trl") else plain_run
        runs[name] = guarded(
            lambda m=measure, n=name, s=share: m(setup, n, time.monotonic() + s), share
        )
        runs[name]["seconds_in_budget"] = round(share, 1)
        log(f"training {name}: {summary_line(runs[name])}")
        save()
    return {"runs": runs, **part_status(runs)}


def part_status(runs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Done when every run this machine can do was measured in full (a run skipped for a
    missing package or device is not a shortfall); else the word that says how it fell short."""
    states = [r["status"] for r in runs.values()]
    if "done" not in states and "partial" not in states:
        return {"status": "skipped", "reason": "no run was measured: see runs"}
    short = [name for name, r in runs.items() if r["status"] in ("partial", "failed")]
    short += [n for n, r in runs.items() if r.get("reason", "").startswith("budget")]
    if short:
        return {
            "status": "partial",
            "reason": f"stopped, failed or out of time: {', '.join(short)}",
        }
    return {"status": "done"}


def summary_line(entry: dict[str, Any]) -> str:
    if "tokens_per_second" in entry:
        return f"{entry['tokens_per_second']:,.0f} tokens/s ({status_note(entry)})"
    return status_note(entry)
