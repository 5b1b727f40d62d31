"""The vLLM backend: one ``vllm.LLM`` engine serves the base model and every LoRA adapter.

- Prompts go in as token ids (``TokensPrompt``), rendered by the caller through the chat template
  that training used; vLLM never applies a template of its own.
- Greedy decoding with an explicit ``max_tokens`` (vLLM's default is 16 tokens, too few for
  WikiAnn answers) and the stop tokens of the chat template.
- Adapters are ``LoRARequest``s on an engine started with ``enable_lora=True`` and a
  ``max_lora_rank`` that fits the largest adapter's ``r``, so a study's adapters share one loaded
  base model; requests for several adapters may even share a batch.
- Constrained mode uses vLLM's structured outputs with a ``choice`` list; the API was renamed
  (``GuidedDecodingParams``/``guided_decoding`` → ``StructuredOutputsParams``/
  ``structured_outputs``), so both are found by feature detection.

vLLM starts worker processes with ``spawn``: a script that calls this must guard its entry point
with ``if __name__ == "__main__":`` (the ``mslt-it`` command does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mslt_it.errors import MsltError, clipped, first_line
from mslt_it.generation.base import (
    BackendOptions,
    TokenIds,
    cut_at_stop,
    dtype_name,
    resolve_dtype,
    resolve_skip,
    run_device,
)
from mslt_it.orphans import ChildrenWatchdog
from mslt_it.peft_adapters import (
    adapter_rank,
    base_module_names,
    check_weight_values,
    check_weights_targeted,
    read_adapter_config,
)

# vLLM accepts only these LoRA ranks for max_lora_rank.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# On a CPU build the "GPU memory" share sizes the KV cache out of host memory; vLLM's default
# (0.9) leaves nothing for anything else on a shared machine.
CPU_MEMORY_UTILIZATION = 0.3


def max_lora_rank(adapters: Mapping[str, Path]) -> int:
    """The smallest rank vLLM accepts that fits every adapter."""
    ranks = {name: adapter_rank(path) for name, path in adapters.items()}
    largest = max(ranks.values())
    for rank in VLLM_LORA_RANKS:
        if rank >= largest:
            return rank
    name = next(name for name, rank in ranks.items() if rank == largest)
    raise MsltError(
        f"adapter: {name}: LoRA rank {largest} is above vLLM's largest supported rank "
        f"{VLLM_LORA_RANKS[-1]}; use --backend hf"
    )


ENGINE_FAILURES = ("EngineDeadError", "EngineGenerateError")
"""vLLM's errors for an engine that failed while serving (its worker processes print why):
said in one line, not as an internal error of mslt-it's."""

SET_BY_MSLT_IT = {
    "model": "--model",
    "tokenizer": "--model (the tokenizer training saved)",
    "dtype": "--dtype",
    "trust_remote_code": "--trust-remote-code",
    "tensor_parallel_size": "--tensor-parallel-size",
    "enable_lora": "--adapter",
}
"""Engine arguments mslt-it sets from its own options: given in ``vllm_args`` they would
evaluate another model than ``results.json`` names, or another precision than it records."""

SERVED_MODULES_TO_SAVE = {"classifier", "score"}
"""The only ``modules_to_save`` vLLM's LoRA serves (a classification head)."""


def check_engine_args(engine_args: Mapping[str, Any], adapters: Mapping[str, Path]) -> None:
    """``vllm_args`` that would change what is evaluated, or that the adapters need otherwise,
    as one line before the engine's half a minute to start."""
    for key in engine_args:
        if key in SET_BY_MSLT_IT:
            raise MsltError(
                f"vllm_args.{key}: set by mslt-it from {SET_BY_MSLT_IT[key]}; leave it out"
            )
    rank = engine_args.get("max_lora_rank")
    if adapters and rank is not None:
        needed = max(adapter_rank(path) for path in adapters.values())
        fits = [r for r in VLLM_LORA_RANKS if r >= needed]
        if not isinstance(rank, int) or isinstance(rank, bool):
            raise MsltError(
                f"vllm_args.max_lora_rank: {clipped(rank, 20)} is not a whole number; allowed: "
                f"{', '.join(map(str, fits))}, or leave it out (mslt-it sets "
                f"{max_lora_rank(adapters)})"
            )
        if rank < needed:
            raise MsltError(
                f"vllm_args.max_lora_rank: {rank} is below the adapters' largest rank "
                f"({needed}); leave it out (mslt-it sets {max_lora_rank(adapters)})"
            )


def check_servable(adapters: Mapping[str, Path]) -> None:
    """Adapters vLLM's LoRA cannot serve, as one line before the engine starts (its engine
    died serving them, with tracebacks from its worker processes)."""
    for name, path in adapters.items():
        why = unserved_feature(read_adapter_config(path, "adapter"))
        if why is not None:
            raise MsltError(
                f"adapter: {name}: vLLM does not serve adapters with {why}; use --backend hf"
            )


SERVED_INITS = ("gaussian", "eva", "orthogonal", "mica", "lora_ga")
"""``init_lora_weights`` names whose saved adapter is a plain LoRA (vLLM's ``PEFTHelper``); the
others (PiSSA, OLoRA, CorDA, LoftQ) changed the base model's weights when PEFT loaded them."""

UNSERVED_FLAGS = {
    "use_dora": "DoRA (use_dora)",
    "lora_bias": "LoRA biases (lora_bias)",
    "alora_invocation_tokens": "Activated LoRA (alora_invocation_tokens)",
    "layer_replication": "layer_replication",
    "use_bdlora": "block-diagonal LoRA (use_bdlora)",
    "use_qalora": "QALoRA (use_qalora)",
}
"""Config fields that, set, make vLLM refuse an adapter (``PEFTHelper.validate_legal``)."""


def unserved_feature(config: Mapping[str, Any]) -> str | None:
    """What in an adapter's config vLLM's LoRA cannot serve, as vLLM's own check sees it
    (``PEFTHelper.validate_legal``): a trained ``lm_head`` or embedding (``modules_to_save``),
    DoRA, biases (``lora_bias`` or PEFT's ``bias``), an init that changed the base model, and
    the rarer variants of :data:`UNSERVED_FLAGS`; None when it serves it. vLLM finds these
    only once its engine is up, and its workers die of them with tracebacks."""
    saved = config.get("modules_to_save") or []
    unserved = sorted(set(saved) - SERVED_MODULES_TO_SAVE) if isinstance(saved, list) else []
    if unserved:
        return f"modules_to_save {unserved}"
    for field, what in UNSERVED_FLAGS.items():
        if config.get(field):
            return what
    bias = config.get("bias", "none")
    if bias != "none":  # as vLLM's check reads it (null too; read_adapter_config refuses it)
        return f"trained biases (bias {clipped(bias, 20)}; vLLM serves only 'none')"
    init = config.get("init_lora_weights")
    if isinstance(init, str) and init.lower() not in SERVED_INITS:
        return (
            f"init_lora_weights {clipped(init, 20)}, which changed the base model's weights "
            "(convert it to a plain LoRA with PEFT first)"
        )
    return None


def structured_choice(choices: Sequence[str]) -> dict[str, Any]:
    """SamplingParams keyword for a choice constraint, in whichever API this vLLM has."""
    from vllm import sampling_params

    if hasattr(sampling_params, "StructuredOutputsParams"):
        return {"structured_outputs": sampling_params.StructuredOutputsParams(choice=list(choices))}
    if hasattr(sampling_params, "GuidedDecodingParams"):  # vLLM < 0.11
        return {"guided_decoding": sampling_params.GuidedDecodingParams(choice=list(choices))}
    raise MsltError(
        "mode: this vLLM has neither StructuredOutputsParams nor GuidedDecodingParams; "
        "use --mode rank or --mode generate"
    )


def has_logprob_token_ids() -> bool:
    """Whether this vLLM returns the log-probabilities of chosen tokens (``logprob_token_ids``)."""
    from vllm import SamplingParams

    fields = getattr(SamplingParams, "__struct_fields__", None) or getattr(
        SamplingParams, "__dataclass_fields__", {}
    )
    return "logprob_token_ids" in fields


def engine_arguments(options: BackendOptions) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM`` for the options (the user's engine_args win)."""
    import torch

    on_gpu = torch.cuda.is_available()
    dtype = resolve_dtype(options.dtype, run_device("vllm"))
    arguments: dict[str, Any] = {
        "model": options.model,
        "tokenizer": options.model,
        "dtype": dtype_name(dtype),
        "trust_remote_code": options.trust_remote_code,
        "tensor_parallel_size": options.tensor_parallel_size,
        "seed": 0,
    }
    if not on_gpu:
        arguments["gpu_memory_utilization"] = CPU_MEMORY_UTILIZATION
    if options.adapters:
        arguments.update(
            enable_lora=True,
            max_lora_rank=max_lora_rank(options.adapters),
            max_loras=min(len(options.adapters), 8),
        )
    arguments.update(options.engine_args)
    return arguments


def import_engine() -> tuple[Any, Any]:
    """``vllm.LLM`` and ``LoRARequest``, imported without vLLM's import-time warnings about the
    machine ("Triton is installed, but doesn't include CPU backend"): a line above every error
    of mslt-it's that follows, and about nothing the user can change."""
    import logging

    import vllm.logger  # noqa: F401  (configures vLLM's logger, whose level is lowered below)

    logger = logging.getLogger("vllm")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from vllm import LLM
        from vllm.lora.request import LoRARequest
    finally:
        logger.setLevel(level)
    return LLM, LoRARequest


def engine_error(error: BaseException) -> str:
    """vLLM's refusal in one line: its pydantic errors name the field first, not a count."""
    details = getattr(error, "errors", None)
    if callable(details):
        try:
            first = details()[0]
            return f"{'.'.join(map(str, first['loc'])) or 'engine'}: {first['msg']}"
        except (TypeError, IndexError, KeyError):
            pass
    return first_line(error)


def start_engine(LLM: Any, arguments: Mapping[str, Any], user_args: bool) -> Any:
    """``LLM(**arguments)``, its refusals and failures in one line. Its field is ``vllm_args``
    only where the user gave some (``user_args``): without them, vLLM refused what mslt-it
    chose for this model, and nothing in ``vllm_args`` is to blame."""
    try:
        return LLM(**arguments)
    except (TypeError, ValueError) as error:  # an unknown vllm_args key, a value it refuses
        if user_args:
            raise MsltError(
                f"vllm_args: vLLM cannot start with them: {engine_error(error)}"
            ) from None
        raise MsltError(f"backend: vllm: vLLM cannot start: {engine_error(error)}") from None
    except RuntimeError as error:
        # vLLM V1's engine process failed (most often out of memory for the weights or the KV
        # cache): "Engine core initialization failed. See root cause above"; a bug of mslt-it's
        # it is not, and the remedies are the user's
        field = "vllm_args" if user_args else "backend: vllm"
        raise MsltError(
            f"{field}: the vLLM engine failed to start ({clipped_line(error)}); its log above says "
            "why: most often too little memory (try a smaller max_model_len or a larger "
            "gpu_memory_utilization in vllm_args), else a --tensor-parallel-size beyond the "
            "devices (or, on a CPU, NUMA nodes) it can use, or a model it cannot read "
            "(--backend hf names such a model's problem before loading)"
        ) from None


def clipped_line(error: BaseException, limit: int = 200) -> str:
    """:func:`first_line`, cut to ``limit`` characters."""
    line = first_line(error)
    return line if len(line) <= limit else line[: limit - 1] + "…"


DEFAULT_LOGPROB_TOKEN_CAP = 128
"""vLLM's ``MAX_LOGPROB_TOKEN_IDS`` where a version does not export it."""


def logprob_token_cap() -> int:
    """The most ``logprob_token_ids`` one vLLM request may ask for (vLLM refuses more)."""
    from vllm import sampling_params

    return int(getattr(sampling_params, "MAX_LOGPROB_TOKEN_IDS", DEFAULT_LOGPROB_TOKEN_CAP))


def token_chunks(tokens: set[int], size: int) -> list[list[int]]:
    """``tokens``, sorted, in lists of at most ``size``."""
    ordered = sorted(tokens)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


class VLLMBackend:
    """``vllm.LLM`` (+ ``LoRARequest`` adapters) behind :class:`Backend`."""

    name = "vllm"

    def __init__(self, options: BackendOptions) -> None:
        self.options = options
        base_modules = base_module_names(options.model) if options.adapters else None
        for path in options.adapters.values():  # before the engine's half a minute to start
            check_weight_values(Path(path))
            check_weights_targeted(Path(path), base_modules=base_modules)
        check_servable(options.adapters)
        check_engine_args(options.engine_args, options.adapters)
        arguments = engine_arguments(options)  # its own errors name their field (adapter: …)
        LLM, LoRARequest = import_engine()
        self.watchdog = ChildrenWatchdog()  # vLLM's engine processes die with this one
        self.llm = start_engine(LLM, arguments, bool(options.engine_args))
        self.requests = {
            name: LoRARequest(name, number, str(Path(path).resolve()))
            for number, (name, path) in enumerate(options.adapters.items(), start=1)
        }
        eos = self.llm.get_tokenizer().eos_token_id
        self.stop_token_ids = tuple(options.stop_token_ids) or ((eos,) if eos is not None else ())

    def _lora(self, adapter: str | None) -> Any:
        if adapter is None:
            return None
        if adapter not in self.requests:
            raise MsltError(f"adapter: {adapter!r} was not loaded; loaded: {list(self.requests)}")
        return self.requests[adapter]

    def _params(self, **kwargs: Any) -> Any:
        from vllm import SamplingParams

        return SamplingParams(
            temperature=0.0,
            stop_token_ids=list(self.stop_token_ids),
            detokenize=False,
            **kwargs,
        )

    def _run(self, prompts: Sequence[TokenIds], params: Any, adapter: str | None) -> list[Any]:
        from vllm.inputs import TokensPrompt

        requests = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        lora = self._lora(adapter)
        try:
            return self.llm.generate(requests, params, use_tqdm=False, lora_request=lora)
        except Exception as error:
            if type(error).__name__ not in ENGINE_FAILURES:
                raise
            raise MsltError(
                f"backend vllm: the engine stopped while answering ({first_line(error)}); its "
                "own log above gives the cause; try --backend hf"
            ) from None

    def generate(
        self, prompts: Sequence[TokenIds], max_tokens: int, adapter: str | None = None
    ) -> list[list[int]]:
        """Greedy continuations; each cut at its first stop token."""
        if not prompts:
            return []
        outputs = self._run(prompts, self._params(max_tokens=max_tokens), adapter)
        return [cut_at_stop(o.outputs[0].token_ids, self.stop_token_ids) for o in outputs]

    def choose(
        self,
        prompts: Sequence[TokenIds],
        choices: Sequence[Sequence[str]],
        max_tokens: int,
        adapter: str | None = None,
    ) -> list[list[int]]:
        """Greedy generation restricted to one of ``choices[i]`` (structured outputs)."""
        if not prompts:
            return []
        params = [
            self._params(max_tokens=max_tokens, **structured_choice(options)) for options in choices
        ]
        outputs = self._run(prompts, params, adapter)
        return [cut_at_stop(o.outputs[0].token_ids, self.stop_token_ids) for o in outputs]

    def loglikelihood(
        self,
        prompts: Sequence[TokenIds],
        continuations: Sequence[Sequence[TokenIds]],
        adapter: str | None = None,
        skip: Sequence[Sequence[int]] | None = None,
    ) -> list[list[float]]:
        """Sum of next-token log-probabilities over each candidate's tokens after its prompt.

        Each distinct prefix (the prompt, then the prompt plus the first tokens of a candidate)
        is one request for a single next token, asking for the log-probabilities of exactly the
        tokens the candidates need there. Requests that share the prompt hit vLLM's prefix cache,
        so the prompt is encoded once per example. (``prompt_logprobs`` would be one request per
        candidate, but it bypasses the prefix cache and fails with LoRA on vLLM's CPU build.)
        """
        skip = resolve_skip(skip, continuations)
        needed: dict[tuple[int, ...], set[int]] = {}
        for prompt, candidates, skips in zip(prompts, continuations, skip, strict=True):
            for candidate, skipped in zip(candidates, skips, strict=True):
                for j in range(skipped, len(candidate)):
                    needed.setdefault((*prompt, *candidate[:j]), set()).add(int(candidate[j]))
        logprobs = self._next_token_logprobs(needed, adapter)
        scores: list[list[float]] = []
        for prompt, candidates, skips in zip(prompts, continuations, skip, strict=True):
            row = []
            for candidate, skipped in zip(candidates, skips, strict=True):
                row.append(
                    sum(
                        logprobs[((*prompt, *candidate[:j]), int(candidate[j]))]
                        for j in range(skipped, len(candidate))
                    )
                )
            scores.append(row)
        return scores

    def _next_token_logprobs(
        self, needed: Mapping[tuple[int, ...], set[int]], adapter: str | None
    ) -> dict[tuple[tuple[int, ...], int], float]:
        """(prefix, token) -> log P(token | prefix), from one-token requests."""
        prefixes = list(needed)
        if not prefixes:
            return {}
        found: dict[tuple[tuple[int, ...], int], float] = {}
        if has_logprob_token_ids():
            # vLLM takes at most logprob_token_cap() tokens a request (128): a prefix where more
            # are wanted (a choice among many words) is asked in several, which share its cache
            cap = logprob_token_cap()
            asked = [(p, chunk) for p in prefixes for chunk in token_chunks(needed[p], cap)]
            params = [self._params(max_tokens=1, logprob_token_ids=chunk) for _, chunk in asked]
            outputs = self._run([p for p, _ in asked], params, adapter)
            for (prefix, chunk), output in zip(asked, outputs, strict=True):
                entry = output.outputs[0].logprobs[0]
                for token in chunk:
                    found[(prefix, token)] = float(entry[token].logprob)
            return found
        # Older vLLM: force each wanted token with allowed_token_ids; logprobs are raw (before the
        # restriction), so the sampled token's log-probability is the model's.
        pairs = [(p, t) for p in prefixes for t in sorted(needed[p])]
        params = [self._params(max_tokens=1, logprobs=0, allowed_token_ids=[t]) for _, t in pairs]
        outputs = self._run([p for p, _ in pairs], params, adapter)
        for (prefix, token), output in zip(pairs, outputs, strict=True):
            found[(prefix, token)] = float(output.outputs[0].logprobs[0][token].logprob)
        return found

    def close(self) -> None:
        """Shut the engine down (its worker processes too)."""
        import gc

        engine = getattr(self.llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
        if callable(shutdown):
            shutdown()
        self.llm = None
        gc.collect()
        self.watchdog.stop()
