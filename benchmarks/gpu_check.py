"""The GPU check: every number users decide by, in one call, within a hard time budget.

A GPU is lent for minutes, without network, on a machine that has torch, transformers, peft and
accelerate but not trl, datasets or bitsandbytes (they can travel as wheels:
``benchmarks/gpu_wheels.txt``). So this script reads only what the machine has (a random Llama
built from a config, synthetic XNLI data), says at start which optional packages import and
which parts it will therefore skip, and stops every part at its share of the budget, recording
what it skipped and why. ``--smoke`` runs the same code with tiny sizes on a CPU in well under two
minutes (``tests/test_gpu_check.py``), so a typo never costs GPU minutes.

Parts:

1. **training**: LoRA r=16 on all linear layers, max length 512, bf16 on CUDA (float32 on CPU),
   on the skewed multilingual mixture of ``bench_train.py`` (en, zh, hi, th through an
   English-centric tokenizer): tokens/s, peak memory, MFU (6·N·tokens/s over the device's dense
   bf16 peak: an upper bound for LoRA, which skips the frozen weights' gradients). A plain torch
   loop over PEFT's model, padded and packed (position ids that restart per example: SDPA,
   or flash-attention 2 if it imports), QLoRA when bitsandbytes imports on CUDA, and the same
   through ``mslt_it.training.run.train`` (TRL's SFTTrainer) when trl and datasets import.
2. **evaluation**: the same model through mslt-it's ``hf`` backend: greedy generation batched
   (32, 64, 128) against one prompt at a time on 200 XNLI prompts, and rank mode; whether the
   outputs are identical across batch sizes.
3. **profile**: ``torch.profiler``'s top kernels of a training step, so a low MFU has a reason.

    python benchmarks/gpu_check.py --out DIR [--smoke] [--peak-tflops X] [--budget-s 480]

writes ``DIR/gpu_check.json`` (after every measurement, so a killed run keeps what it measured)
and ``DIR/gpu_check.md``, a summary to paste into BENCHMARKS.md's GPU section.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import importlib
import importlib.util
import json
import os
import platform
import random
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The GPU machine gets a copy of the checkout, not an installed package.
if importlib.util.find_spec("mslt_it") is None:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import bench_eval  # noqa: E402  (sets the offline and quiet-progress environment too)
import bench_train  # noqa: E402

WHEELS_FILE = HERE / "gpu_wheels.txt"
SCHEMA = 1
LORA = {"r": 16, "lora_alpha": 32, "target_modules": "all-linear"}
LEARNING_RATE = 2e-4
IGNORE_INDEX = -100
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


# ---------------------------------------------------------------------------------------------
# Optional packages, the budget, the device
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Setup: tokenizer, model, mixture
# ---------------------------------------------------------------------------------------------


@dataclass
class Setup:
    """What every part shares: the device, the model folder, the tokenised mixture."""

    sizes: Sizes
    tmp: Path
    cuda: bool
    model_dir: Path
    n_params: int
    tokenizer: Any
    encoded: list[tuple[list[int], list[int]]]
    peak: float | None
    packages: dict[str, dict[str, Any]]
    data: dict[str, Any]
    dataset_dir: Path | None = None
    step_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def device(self) -> str:
        return "cuda" if self.cuda else "cpu"

    def mfu(self, tokens_per_second: float) -> float | None:
        if not self.peak or not tokens_per_second:
            return None
        return round(6 * self.n_params * tokens_per_second / self.peak, 4)


def mixture_examples(per_language: int, tokenizer_dir: str) -> list[dict[str, Any]]:
    """bench_train's mixture rendered in memory by mslt_it.data (no datasets package needed)."""
    from mslt_it.config import DataConfig
    from mslt_it.data import build_part, checked_template

    config = DataConfig(
        task="xnli",
        sources=bench_train.LANGS,
        budget=per_language,
        budget_mode="per_language",
        tokenizer=tokenizer_dir,
        max_length=512,
    )
    return build_part(config, checked_template(config), None).examples


def encode_examples(
    examples: list[dict[str, Any]], tokenizer: Any, max_length: int
) -> tuple[list[tuple[list[int], list[int]]], dict[str, Any]]:
    """(input ids, labels) of each example through the chat template, the prompt masked as in
    TRL's completion-only loss; over-long examples dropped, as ``train``'s default policy does."""
    prompts = [e["prompt"] for e in examples]
    full = [e["prompt"] + e["completion"] for e in examples]
    prompt_ids = tokenizer.apply_chat_template(
        prompts, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    full_ids = tokenizer.apply_chat_template(full, tokenize=True, return_dict=True)["input_ids"]
    encoded, lengths, dropped = [], {}, 0
    for example, prompt, ids in zip(examples, prompt_ids, full_ids, strict=True):
        lengths.setdefault(example["lang"], []).append(len(ids))
        if len(ids) > max_length:
            dropped += 1
            continue
        cut = len(prompt) if ids[: len(prompt)] == prompt else 0
        encoded.append((list(ids), [IGNORE_INDEX] * cut + list(ids[cut:])))
    means = {lang: round(sum(n) / len(n), 1) for lang, n in lengths.items()}
    return encoded, {"examples": len(examples), "dropped_overlong": dropped, "mean_tokens": means}


def prepare(sizes: Sizes, tmp: Path, packages: dict[str, Any], peak: float | None) -> Setup:
    """Tokenizer, model and mixture, as bench_train.py builds them."""
    import torch

    from mslt_it.modeling import load_tokenizer

    tokenizer_dir = bench_train.english_centric_tokenizer(tmp)
    model_dir = tmp / "model"
    n_params = bench_train.build_model(model_dir, tokenizer_dir, sizes.large_model)
    tokenizer = load_tokenizer(str(model_dir))
    examples = mixture_examples(sizes.per_language, tokenizer_dir)
    encoded, data = encode_examples(examples, tokenizer, sizes.max_length)
    data["languages"] = bench_train.LANGS
    cuda = torch.cuda.is_available()
    return Setup(sizes, tmp, cuda, model_dir, n_params, tokenizer, encoded, peak, packages, data)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

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
    # TRL flattens several packed rows into one sequence; SDPA then attends densely across all.
    rows = setup.sizes.packed_rows if attention == "flash_attention_2" else 1
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


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Profile
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

RUN_LABELS = {
    "lora_padded_torch": "LoRA, padded, plain torch loop",
    "lora_packed_torch": "LoRA, packed, plain torch loop",
    "qlora_padded_torch": "QLoRA (NF4), padded, plain torch loop",
    "lora_padded_trl": "LoRA, padded, mslt-it train (TRL)",
    "lora_packed_trl": "LoRA, packed, mslt-it train (TRL)",
}


def fmt(value: Any, pattern: str = "{:,.0f}", unit: str = "") -> str:
    return "" if value is None else pattern.format(value) + unit


def status_note(entry: dict[str, Any]) -> str:
    if entry.get("status", "done") == "done":
        return "done"
    return f"{entry['status']}: {entry.get('reason', '')}"


def markdown(report: dict[str, Any]) -> str:
    """The summary to paste into BENCHMARKS.md's GPU section."""
    m, model, data = report["machine"], report.get("model", {}), report.get("data", {})
    lines = [
        f"`{report['command']}` — {report['date']}, {m['device']}, Python {m['python']}, "
        f"torch {m['torch']}, transformers {m['transformers']}, peft {m['peft']}; "
        f"{report['mode']} mode, budget {report['budget']['total_s']:.0f} s "
        f"(spent {report['budget'].get('spent_s', 0):.0f} s).",
        "",
        f"Optional packages: {package_line(report['packages'])}.",
        f"Model: random Llama, {model.get('parameters', 0) / 1e6:.1f}M parameters, "
        f"{model.get('dtype', '?')}, LoRA r=16 on all linear layers, max length "
        f"{model.get('max_length', '?')}. Data: synthetic XNLI "
        f"{'+'.join(data.get('languages', []))}, mean tokens "
        + ", ".join(f"{k} {v:.0f}" for k, v in data.get("mean_tokens", {}).items())
        + f". MFU peak: {report.get('peak_source', 'unknown')}.",
        "",
        "| part | configuration | throughput | peak memory MB | MFU | note |",
        "|---|---|---:|---:|---:|---|",
    ]
    lines += training_rows(report["parts"]["training"])
    lines += evaluation_rows(report["parts"]["evaluation"])
    lines += profile_rows(report["parts"]["profile"])
    return "\n".join(lines) + "\n"


def package_line(packages: dict[str, dict[str, Any]]) -> str:
    return ", ".join(
        f"{name} {info['version']}" if info["importable"] else f"{name} ✗"
        for name, info in packages.items()
    )


def training_rows(part: dict[str, Any]) -> list[str]:
    rows = []
    for name, run in part.get("runs", {}).items():
        rate = run.get("tokens_per_second")
        mfu = run.get("mfu")
        note = status_note(run)
        if "packing_isolation" in run:
            note += f"; examples isolated: {run['packing_isolation']['isolated']}"
        if run.get("attention"):
            note += f"; {run['attention']}, {run.get('rows_per_step')} per step"
        rows.append(
            f"| training | {RUN_LABELS[name]} | {fmt(rate, unit=' tokens/s')} | "
            f"{fmt(run.get('peak_memory_mb'))} | {fmt(mfu, '{:.1%}')} | {note} |"
        )
    return rows or [f"| training | | | | | {status_note(part)} |"]


def evaluation_rows(part: dict[str, Any]) -> list[str]:
    if "generate_single" not in part:
        return [f"| evaluation | | | | | {status_note(part)} |"]
    single = part["generate_single"]
    rows = [
        f"| evaluation | generate, one at a time ({single['examples']} of {part['prompts']}) | "
        f"{fmt(single['examples_per_second'], '{:,.2f}')} ex/s | | | "
        f"{single.get('stopped', 'done')} |"
    ]
    for key, entry in part.items():
        if not key.startswith("generate_batch_"):
            continue
        if "examples_per_second" not in entry:
            rows.append(f"| evaluation | generate, batch {key[15:]} | | | | {status_note(entry)} |")
            continue
        rows.append(
            f"| evaluation | generate, batch {key[15:]} ({part['prompts']} prompts) | "
            f"{fmt(entry['examples_per_second'], '{:,.2f}')} ex/s | | | "
            f"{fmt(entry.get('speedup_vs_single'), '{:.1f}')}× one at a time; identical: "
            f"{entry['identical_to_single'] and entry['identical_across_batch_sizes']} |"
        )
    rank = part.get("rank", {})
    if "examples_per_second" in rank:
        rows.append(
            f"| evaluation | rank, batch {rank['batch_size']} | "
            f"{fmt(rank['examples_per_second'], '{:,.2f}')} ex/s | | | same labels as batch 1: "
            f"{rank['identical_choices_vs_batch_1']} |"
        )
    return rows


def profile_rows(part: dict[str, Any]) -> list[str]:
    if "top" not in part:
        return [f"| profile | | | | | {status_note(part)} |"]
    kinds = ", ".join(f"{k} {v:.0%}" for k, v in part["time_by_kind"].items())
    busy = part["device_busy_share"]
    rows = [
        f"| profile | {part['what']}, {part['steps']} padded LoRA step(s) | | | | "
        f"{kinds}{'' if busy is None else f'; device busy {busy:.0%}'}: {part['hint']} |"
    ]
    rows += [
        f"| profile | top {i}: `{row['name'][:60]}` ({row['kind']}) | {row['calls']} calls | | | "
        f"{row['self_ms']:,.1f} ms, {row['share']:.0%} |"
        for i, row in enumerate(part["top"][:5], start=1)
    ]
    return rows


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[gpu_check] {message}", file=sys.stderr, flush=True)


def summary_line(entry: dict[str, Any]) -> str:
    if "tokens_per_second" in entry:
        return f"{entry['tokens_per_second']:,.0f} tokens/s ({status_note(entry)})"
    return status_note(entry)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for gpu_check.json and .md")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CPU rehearsal")
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak, for MFU")
    parser.add_argument("--budget-s", type=float, default=480.0, help="hard time budget")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    budget = Budget(args.budget_s)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    packages = package_report(read_wheel_list())
    for name, info in packages.items():
        log(f"{name}: {info.get('version') or 'does not import'} (for {info['needed_by']})")
    missing_core = [m for m in CORE if not packages.get(m, {}).get("importable")]
    if missing_core:
        reason = f"mslt_it needs {', '.join(missing_core)}: install the wheels of gpu_wheels.txt"
        log(reason)
        stopped = {"schema": SCHEMA, "status": "failed", "reason": reason, "packages": packages}
        (out / "gpu_check.json").write_text(json.dumps(stopped, indent=2) + "\n", "utf-8")
        return 2
    return run_check(args, budget, out, packages)


def run_check(
    args: argparse.Namespace, budget: Budget, out: Path, packages: dict[str, dict[str, Any]]
) -> int:
    """Set up, then training, evaluation and profile, each within its share."""
    import torch

    from mslt_it.io import atomic_write_json, atomic_write_text

    sizes = SMOKE if args.smoke else FULL
    cuda = torch.cuda.is_available()
    info = machine()
    peak, peak_source = peak_flops(info["device"] if cuda else "", args.peak_tflops)
    skips = planned_skips(packages, cuda)
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "command": "python benchmarks/gpu_check.py " + " ".join(sys.argv[1:] or ["--out", "DIR"]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": "smoke" if args.smoke else "full",
        "machine": info,
        "budget": {"total_s": args.budget_s, "weights": PART_WEIGHTS},
        "packages": packages,
        "planned_skips": skips,
        "peak_bf16_flops": peak,
        "peak_source": peak_source,
        "sizes": dataclasses.asdict(sizes),
        "parts": {p: {"status": "skipped", "reason": "not reached"} for p in PART_WEIGHTS},
    }
    for run, reason in skips.items():
        log(f"will skip {run}: {reason}")

    def save() -> None:
        report["budget"]["spent_s"] = round(time.monotonic() - budget.started, 1)
        atomic_write_json(out / "gpu_check.json", report)
        if "model" in report:
            atomic_write_text(out / "gpu_check.md", markdown(report))

    with tempfile.TemporaryDirectory() as tmp_name:
        started = time.monotonic()
        setup = prepare(sizes, Path(tmp_name), packages, peak)
        report["setup_seconds"] = round(time.monotonic() - started, 1)
        report["model"] = {
            "parameters": setup.n_params,
            "shape": bench_train.model_shape(sizes.large_model),
            "dtype": "bfloat16" if cuda else "float32",
            "max_length": sizes.max_length,
            "lora": LORA,
        }
        report["data"] = setup.data
        log(f"setup {report['setup_seconds']} s: {setup.n_params / 1e6:.1f}M parameters")
        save()
        run_parts(setup, budget, skips, report, save)
    save()
    log(f"wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    return 0


def run_parts(
    setup: Setup, budget: Budget, skips: dict[str, str], report: dict[str, Any], save: Callable
) -> None:
    """Each part in turn, with its share of the time left, the alarm as its backstop."""
    parts_left = list(PART_WEIGHTS)
    for part in PART_WEIGHTS:
        share = budget.share(part, parts_left)
        parts_left.remove(part)
        started = time.monotonic()
        deadline = started + share
        if part == "training":
            found = training_part(setup, skips, deadline, save)
        elif part == "evaluation":
            found = guarded(lambda d=deadline: evaluation_part(setup, d), share)
        else:
            found = guarded(lambda d=deadline: profile_part(setup, d), share)
        found["share_seconds"] = round(share, 1)
        found.setdefault("wall_seconds", round(time.monotonic() - started, 1))
        report["parts"][part] = found
        log(f"{part}: {status_note(found)} ({share:.0f} s share)")
        save()


if __name__ == "__main__":
    sys.exit(main())
