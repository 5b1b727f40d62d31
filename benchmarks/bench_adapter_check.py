"""Checking a LoRA adapter's weights after PEFT loads them: header read vs a second full read.

An adapter whose weights did not load (renamed, missing, integers, NaN) used to be measured as
the base model, so mslt-it checks every adapter it loads (``mslt_it.peft_adapters``). With
transformers the check reads names and dtypes from the safetensors header and tests the
parameters PEFT already loaded for finiteness; the first version read the whole file again.
vLLM loads adapters itself, so for it the file is still read once more, before its engine
starts. This measures both on a file of a 7B model's rank-64 LoRA shape (Llama-7B: 32 layers,
q/k/v/o of 4096 × 4096, float32: 0.27 GB), in one process, best of ``--repeats``. The file is
in the page cache after the first read (a cold read from disk costs more). The finiteness
check sums each tensor first and tests values one by one only when the sum is not finite; the
last row shows what testing every value costs.

``--cold`` empties the page cache before each timed run (root only: ``/proc/sys/vm/drop_caches``),
so the second read comes from disk, as after a training on another machine or a long queue.

Usage: python benchmarks/bench_adapter_check.py [--rank 64] [--layers 32] [--repeats 3] [--cold]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from mslt_it.peft_adapters import check_finite, check_floating, stored_dtypes


def lora_weights(rank: int, layers: int, hidden: int = 4096) -> dict[str, torch.Tensor]:
    """PEFT's names and shapes for LoRA on q/k/v/o of a Llama-shaped model."""
    weights = {}
    for layer in range(layers):
        for module in ("q_proj", "k_proj", "v_proj", "o_proj"):
            stem = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            weights[f"{stem}.lora_A.weight"] = torch.randn(rank, hidden) * 0.01
            weights[f"{stem}.lora_B.weight"] = torch.randn(hidden, rank) * 0.01
    return weights


def drop_page_cache() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def best(action, repeats: int, cold: bool = False) -> float:
    times = []
    for _ in range(repeats):
        if cold:
            drop_page_cache()
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="empty the page cache before each run")
    args = parser.parse_args()
    loaded = lora_weights(args.rank, args.layers)  # stands for the parameters PEFT loaded
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        save_file(loaded, str(folder / "adapter_model.safetensors"))
        size = (folder / "adapter_model.safetensors").stat().st_size

        def header_check() -> None:  # the transformers path now
            stored = stored_dtypes(folder, "adapter")
            for key, tensor in loaded.items():
                check_floating(key, stored[key], folder, "adapter")
                check_finite(key, tensor, folder, "adapter")

        def second_read() -> None:  # the first version; still vLLM's path
            tensors = load_file(str(folder / "adapter_model.safetensors"), device="cpu")
            for key, tensor in tensors.items():
                check_floating(key, tensor.dtype, folder, "adapter")
                check_finite(key, tensor, folder, "adapter")

        header = best(header_check, args.repeats, args.cold)
        full = best(second_read, args.repeats, args.cold)
        header_only = best(lambda: stored_dtypes(folder, "adapter"), args.repeats, args.cold)
        per_value = best(
            lambda: [bool(tensor.isfinite().all()) for tensor in loaded.values()], args.repeats
        )
    cache = "emptied before each run" if args.cold else "warm"
    print(f"adapter: {len(loaded)} tensors, {size / 1e9:.2f} GB (rank {args.rank}); cache {cache}")
    print(f"| check (best of {args.repeats}) | time |")
    print("|---|---:|")
    print(f"| header + finiteness of loaded tensors | {header:.3f} s |")
    print(f"| of which the header read | {header_only * 1000:.1f} ms |")
    print(f"| second full read + checks | {full:.3f} s |")
    print(f"| (finiteness tested value by value, no sum first) | {per_value:.3f} s |")
    print(f"| header / second read | **{header / full:.2f}** |")


if __name__ == "__main__":
    main()
