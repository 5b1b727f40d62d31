"""The GPU check's profile part: where a training step's time goes, so a low MFU has a reason.

``torch.profiler`` over padded LoRA steps (the training part's model and step): the top kernels
(CUDA) or operators (CPU) by self time, time by kind (matmul, attention, optimizer, other), the
device's busy share and a one-line hint.
"""

from __future__ import annotations

import time
from typing import Any

from .budget import reset_memory, sync
from .setup import Setup
from .training import lora_model, optimizer_for, padded_batches, training_step

KERNEL_KINDS = {
    "matmul": ("gemm", "matmul", "nvjet", "cutlass", "cublas", "addmm", "aten::mm", "aten::bmm"),
    "attention": ("flash", "fmha", "attention", "sdpa", "efficient"),
    "optimizer": ("adam", "multi_tensor", "foreach"),
}


def kernel_kind(name: str) -> str:
    lowered = name.lower()
    return next((k for k, keys in KERNEL_KINDS.items() if any(s in lowered for s in keys)), "other")


def profile_part(setup: Setup, deadline: float) -> dict[str, Any]:
    """The top kernels (CUDA) or operators (CPU) of the padded LoRA training step."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    model = lora_model(setup, qlora=False, attention="sdpa")
    optimizer = optimizer_for(model, setup.cuda)
    batches = padded_batches(setup)
    model.train()
    for _ in range(setup.sizes.warmup_steps):
        training_step(model, optimizer, next(batches)[0], setup.cuda)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if setup.cuda else [])
    steps = [next(batches)[0] for _ in range(setup.sizes.profile_steps)]
    sync()
    started = time.perf_counter()
    with profile(activities=activities) as prof:
        for inputs in steps:
            training_step(model, optimizer, inputs, setup.cuda)
        sync()
    wall = time.perf_counter() - started
    del model, optimizer
    reset_memory()
    rows = kernel_rows(prof.key_averages(), setup.cuda)
    return summarise_profile(rows, wall, setup.sizes.profile_steps, setup.cuda, torch.__version__)


def kernel_rows(averages: Any, cuda: bool) -> list[dict[str, Any]]:
    """(name, calls, self microseconds) of device kernels on CUDA, of operators on CPU."""
    rows = []
    for event in averages:
        if cuda:
            us = getattr(event, "self_device_time_total", None)
            if us is None:
                us = getattr(event, "self_cuda_time_total", 0)
            if "cuda" not in str(getattr(event, "device_type", "")).lower():
                continue
        else:
            us = event.self_cpu_time_total
        if us > 0:
            rows.append({"name": event.key, "calls": event.count, "self_us": float(us)})
    return sorted(rows, key=lambda r: -r["self_us"])


def summarise_profile(
    rows: list[dict[str, Any]], wall: float, steps: int, cuda: bool, torch_version: str
) -> dict[str, Any]:
    """Top 10 by self time, time by kind, and the device's busy share, with a one-line hint."""
    total = sum(r["self_us"] for r in rows) or 1.0
    by_kind: dict[str, float] = {}
    for row in rows:
        kind = kernel_kind(row["name"])
        by_kind[kind] = by_kind.get(kind, 0.0) + row["self_us"]
    top = [
        {
            "name": r["name"][:90],
            "kind": kernel_kind(r["name"]),
            "calls": r["calls"],
            "self_ms": round(r["self_us"] / 1000, 3),
            "share": round(r["self_us"] / total, 4),
        }
        for r in rows[:10]
    ]
    shares = {k: round(v / total, 4) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])}
    busy = round(total / 1e6 / wall, 4) if cuda and wall else None
    return {
        "what": "CUDA kernels" if cuda else "CPU operators (self time)",
        "steps": steps,
        "wall_seconds": round(wall, 3),
        "device_busy_share": busy,
        "time_by_kind": shares,
        "top": top,
        "hint": profile_hint(shares, busy),
        "torch": torch_version,
    }


def profile_hint(shares: dict[str, float], busy: float | None) -> str:
    """Why an MFU is low, in one line, from where the step's time went."""
    if busy is not None and busy < 0.7:
        return (
            f"the GPU is busy {busy:.0%} of the step: launch and Python overhead dominate "
            "(small model or batch); more tokens per step or CUDA graphs would help"
        )
    matmul = shares.get("matmul", 0.0)
    if matmul < 0.5:
        return (
            f"matrix products are {matmul:.0%} of the time: the rest (LoRA's small products, "
            "elementwise kernels, attention, optimizer) bounds the MFU"
        )
    return f"matrix products are {matmul:.0%} of the time: the step is compute-bound"
