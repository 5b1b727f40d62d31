"""The GPU check's ground floor: sizes, optional packages, the time budget, the device.

Everything the parts share and decide with before any work: the workload sizes (full or smoke),
which optional packages import and therefore which runs are skipped, each part's share of the
budget and the alarm that stops a run that overruns it (``guarded``), the device and its dense
bf16 peak for MFU, and small helpers (``log``, CUDA ``sync``, ``reset_memory``). It imports no
other module of the package (only ``bench_train``, for its peak table), so every other one can
import it.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import platform
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import bench_train

WHEELS_FILE = Path(__file__).resolve().parents[1] / "gpu_wheels.txt"
# Dense bf16 FLOP/s by device-name fragment (longest fragment wins: "H100 PCIe" before "H100").
PEAK_BF16_FLOPS = {
    **bench_train.PEAK_BF16_FLOPS,
    "H100 PCIe": 756e12,
    "H100 NVL": 835e12,
    "A10": 125e12,
    "L40": 181e12,
    "L4": 121e12,
}
# Each part's weight in the budget left after setup; time a part leaves unused goes to the next.
PART_WEIGHTS = {"training": 0.55, "evaluation": 0.30, "profile": 0.15}
# What each run needs beyond torch, transformers, peft and accelerate (import names).
REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "lora_padded_torch": (),
    "lora_packed_torch": (),
    "qlora_padded_torch": ("bitsandbytes",),
    "lora_padded_trl": ("trl", "datasets"),
    "lora_packed_trl": ("trl", "datasets"),
}
CORE = ("pydantic",)  # mslt_it itself cannot import without it


@dataclass(frozen=True)
class Sizes:
    """Workload sizes: the real check, or tiny ones that rehearse the same code on a CPU."""

    large_model: bool  # bench_train's ~0.5B shape, else its ~30M one
    per_language: int  # training examples per language of the mixture
    max_length: int
    batch_size: int  # padded examples per step
    packed_rows: int  # packed rows of max_length per step
    warmup_steps: int  # untimed steps first (CUDA kernels, allocator)
    max_steps: int  # timed steps at most
    eval_per_language: int  # XNLI prompts per language (bench_eval's 5 languages)
    eval_batch_sizes: tuple[int, ...]
    max_new_tokens: int
    profile_steps: int


FULL = Sizes(True, 120, 512, 8, 4, 3, 40, 40, (32, 64, 128), 32, 3)
SMOKE = Sizes(False, 6, 256, 2, 1, 1, 3, 2, (2, 4, 8), 6, 1)


@dataclass(frozen=True)
class Wheel:
    """One line of gpu_wheels.txt: an import name, what needs it, how to fetch its wheel."""

    module: str
    needed_by: str
    download: str | None


def read_wheel_list(path: Path = WHEELS_FILE) -> list[Wheel]:
    """The packages named in gpu_wheels.txt (``module | needed by | command``, ``-``: none)."""
    wheels = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        module, needed_by, command = (part.strip() for part in line.split("|", 2))
        wheels.append(Wheel(module, needed_by, None if command.startswith("-") else command))
    return wheels


def probe_import(module: str) -> dict[str, Any]:
    """Whether ``module`` imports here, with its version or the first line of the error."""
    try:
        imported = importlib.import_module(module)
    except Exception as error:  # any failure (missing, or a broken CUDA build) means "skip"
        return {"importable": False, "error": first_line(error)}
    version = getattr(imported, "__version__", None)
    if version is None:  # some packages keep it only in their distribution's metadata
        dists = metadata.packages_distributions().get(module, [])
        version = metadata.version(dists[0]) if dists else "?"
    return {"importable": True, "version": str(version)}


def package_report(wheels: list[Wheel]) -> dict[str, dict[str, Any]]:
    """Every package of the wheel list: importable or not, and what needs it."""
    return {
        w.module: {**probe_import(w.module), "needed_by": w.needed_by, "wheel": w.download}
        for w in wheels
    }


def planned_skips(packages: dict[str, dict[str, Any]], cuda: bool) -> dict[str, str]:
    """Runs that cannot happen on this machine, each with its reason, decided before any work."""
    skips = {}
    for run, needs in REQUIREMENTS.items():
        missing = [m for m in needs if not packages.get(m, {}).get("importable")]
        if missing:
            skips[run] = f"needs {', '.join(missing)}, which does not import here (gpu_wheels.txt)"
        elif run.startswith("qlora") and not cuda:
            skips[run] = "needs CUDA: bitsandbytes' 4-bit training on a CPU says nothing of a GPU"
    return skips


class PartTimeout(BaseException):
    """Raised by the alarm when a run outlives its share (a BaseException: nothing swallows it)."""


@contextlib.contextmanager
def hard_stop(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds``: the backstop for a step or a call that overruns."""

    def ring(_signum: int, _frame: Any) -> None:
        raise PartTimeout(f"stopped by the budget after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.5))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Budget:
    """The whole check's seconds; each part gets its weight's share of what is left."""

    total_s: float
    started: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        return self.total_s - (time.monotonic() - self.started)

    def share(self, part: str, parts_left: list[str]) -> float:
        """Seconds for ``part``: the time left split by the weights of the parts still to run."""
        weights = sum(PART_WEIGHTS[p] for p in parts_left)
        return max(0.0, self.left() * PART_WEIGHTS[part] / weights)


def grace(share: float) -> float:
    """How long past its soft deadline a run may go before the alarm stops it."""
    return 5 + 0.1 * share


def guarded(measure: Callable[[], dict[str, Any]], share: float | None = None) -> dict[str, Any]:
    """Run one measurement so that neither an error nor the budget's alarm ends the check."""
    started = time.monotonic()
    try:
        if share is None:
            found = measure()
        else:
            with hard_stop(share + grace(share)):
                found = measure()
    except PartTimeout as stop:
        reset_memory()
        return {"status": "partial", "reason": str(stop)}
    except Exception as error:
        reset_memory()
        return {
            "status": "failed",
            "reason": first_line(error),
            "traceback": traceback.format_exc()[-4000:],
        }
    found.setdefault("status", "done")
    found["wall_seconds"] = round(time.monotonic() - started, 1)
    return found


def peak_flops(device_name: str, given_tflops: float | None) -> tuple[float | None, str]:
    """The dense bf16 peak for MFU: given, or from the table; never guessed."""
    if given_tflops:
        return given_tflops * 1e12, "--peak-tflops"
    for key in sorted(PEAK_BF16_FLOPS, key=len, reverse=True):
        if key in device_name:
            return PEAK_BF16_FLOPS[key], f"table ({key})"
    return None, "unknown device: pass --peak-tflops for MFU"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import accelerate
    import peft
    import torch
    import transformers

    cuda = torch.cuda.is_available()
    return {
        "device": torch.cuda.get_device_name() if cuda else f"CPU ({os.cpu_count()} cores)",
        "cuda": cuda,
        "cuda_version": torch.version.cuda,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "accelerate": accelerate.__version__,
    }


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:300] if text else ''}".rstrip(": ")


def sync() -> None:
    """Wait for queued CUDA work, so a wall-clock time covers it."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_memory() -> None:
    """Free what the last run left and restart the peak counter (CUDA; RSS peaks only grow)."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def log(message: str) -> None:
    print(f"[gpu_check] {message}", file=sys.stderr, flush=True)
