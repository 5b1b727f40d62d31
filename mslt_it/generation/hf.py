"""The transformers backend: batched greedy generation and prefix-shared log-likelihoods.

- Prompts are sorted by length and cut into batches, so padding is small; padding is on the left
  (decoder-only generation continues from the last real token) with position ids that skip it.
- Generation is greedy with the KV cache (``model.generate``), stopping at the stop tokens.
- Log-likelihood scoring encodes each prompt once per example, not once per label
  (lm-evaluation-harness runs prompt + label for every label): each row holds a prompt followed
  by all its candidates, with an attention mask and position ids that make every candidate see
  only the prompt and itself. Where the attention kernel takes no custom mask, a forward over the
  prompts keeps their KV cache and the candidates are scored against copies of it.
- LoRA adapters are PEFT adapters loaded into one ``PeftModel`` (``load_adapter``) and switched
  with ``set_adapter``; the base model loads once, and ``disable_adapter`` gives the base alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mslt_it.errors import MsltError
from mslt_it.generation.base import (
    BackendOptions,
    TokenIds,
    cut_at_stop,
    gather_unprompted,
    resolve_dtype,
    resolve_skip,
    run_device,
    split_unprompted,
)
from mslt_it.modeling import check_device, load_failure, load_report_in_errors, model_load_errors
from mslt_it.peft_adapters import load_adapters
from mslt_it.progress import library_bars_quieted


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first (memory errors show early)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def peft_names(adapters: Mapping[str, Any]) -> dict[str, str]:
    """The name PEFT holds each adapter by: its place, not its run's name, which is its
    folder's (``lora-v1.0``) and which PEFT refuses when it holds a dot (a module's name)."""
    return {name: f"adapter{number}" for number, name in enumerate(adapters)}


class HFBackend:
    """transformers ``AutoModelForCausalLM`` (+ PEFT adapters) behind :class:`Backend`."""

    name = "hf"

    def __init__(self, options: BackendOptions) -> None:
        from transformers import AutoModelForCausalLM, GenerationConfig

        self.options = options
        self.device = check_device(run_device(self.name, options.device))
        self.dtype = resolve_dtype(options.dtype, self.device)
        # transformers' "Loading weights" bar, as the CLI shows it: only with mslt-it's bars on
        with library_bars_quieted():
            try:
                with load_report_in_errors():
                    model = AutoModelForCausalLM.from_pretrained(
                        options.model, dtype=self.dtype, trust_remote_code=options.trust_remote_code
                    )
            except model_load_errors() as error:
                raise MsltError(
                    f"model: cannot load {options.model!r}: {load_failure(options.model, error)}"
                ) from None
            model.to(self.device).eval()
            self.model = self._with_adapters(model, options)
        config_eos = model.generation_config.eos_token_id
        stops = options.stop_token_ids or (
            tuple(config_eos) if isinstance(config_eos, list) else (config_eos,)
        )
        self.stop_token_ids = tuple(t for t in stops if t is not None)
        # greedy as vLLM's temperature 0 is: transformers fills what a generation config leaves
        # unset from the model's generation_config.json (Qwen2.5's repetition_penalty 1.05 and
        # the like), so the model's own is replaced by the defaults once its stops are read
        model.generation_config = GenerationConfig()
        self.pad_token_id = (
            options.pad_token_id if options.pad_token_id is not None else self.stop_token_ids[0]
        )

    @staticmethod
    def _with_adapters(model: Any, options: BackendOptions) -> Any:
        """Wrap the base model in one PeftModel holding every adapter, by its place in
        ``options.adapters`` (:func:`peft_names`)."""
        if not options.adapters:
            return model
        known = peft_names(options.adapters)
        return load_adapters(model, {known[n]: f for n, f in options.adapters.items()}).eval()

    @contextlib.contextmanager
    def _using(self, adapter: str | None) -> Iterator[None]:
        """Activate ``adapter`` (``None``: the base model, adapters disabled) for a block."""
        import torch

        with torch.inference_mode():
            if adapter is None:
                disable = getattr(self.model, "disable_adapter", None)
                with disable() if self.options.adapters and disable else contextlib.nullcontext():
                    yield
                return
            if adapter not in self.options.adapters:
                raise MsltError(
                    f"adapter: {adapter!r} was not loaded; loaded: {list(self.options.adapters)}"
                )
            self.model.set_adapter(peft_names(self.options.adapters)[adapter])
            yield

    def _left_pad(self, prompts: Sequence[TokenIds]) -> tuple[Any, Any]:
        """Input ids and attention mask, padded on the left to the longest prompt."""
        import torch

        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            if prompt:
                ids[row, width - len(prompt) :] = torch.as_tensor(list(prompt))
                mask[row, width - len(prompt) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def generate(
        self, prompts: Sequence[TokenIds], max_tokens: int, adapter: str | None = None
    ) -> list[list[int]]:
        """Greedy continuations, batched by length; each cut at its first stop token."""
        from transformers import GenerationConfig

        config = GenerationConfig(
            max_new_tokens=max_tokens,
            do_sample=False,
            num_beams=1,
            use_cache=True,
            eos_token_id=list(self.stop_token_ids),
            pad_token_id=self.pad_token_id,
        )
        outputs: list[list[int]] = [[] for _ in prompts]
        with self._using(adapter):
            for batch in length_batches([len(p) for p in prompts], self.options.batch_size):
                ids, mask = self._left_pad([prompts[i] for i in batch])
                generated = self.model.generate(
                    input_ids=ids, attention_mask=mask, generation_config=config
                )
                new_tokens = generated[:, ids.shape[1] :].tolist()
                for index, tokens in zip(batch, new_tokens, strict=True):
                    outputs[index] = cut_at_stop(tokens, self.stop_token_ids)
        return outputs

    def loglikelihood(
        self,
        prompts: Sequence[TokenIds],
        continuations: Sequence[Sequence[TokenIds]],
        adapter: str | None = None,
        skip: Sequence[Sequence[int]] | None = None,
    ) -> list[list[float]]:
        """Log-likelihood of every candidate, encoding each prompt once per example (an empty
        prompt: once per candidate, :func:`split_unprompted`)."""
        rows = len(prompts)
        prompts, continuations, skip, origin = split_unprompted(
            prompts, continuations, resolve_skip(skip, continuations)
        )
        scores: list[list[float]] = [[] for _ in prompts]
        score = self._score_packed if self._packs_candidates() else self._score_batch
        with self._using(adapter):
            for batch in length_batches([len(p) for p in prompts], self.options.batch_size):
                batch_scores = score(
                    [prompts[i] for i in batch],
                    [continuations[i] for i in batch],
                    [skip[i] for i in batch],
                )
                for index, row in zip(batch, batch_scores, strict=True):
                    scores[index] = row
        return gather_unprompted(scores, origin, rows)

    def _packs_candidates(self) -> bool:
        """Custom 4D attention masks work with the eager and SDPA attention implementations."""
        config = getattr(self.model, "config", None)
        return getattr(config, "_attn_implementation", None) in ("sdpa", "eager")

    def _score_packed(
        self,
        prompts: Sequence[TokenIds],
        continuations: Sequence[Sequence[TokenIds]],
        skip: Sequence[Sequence[int]],
    ) -> list[list[float]]:
        """One forward per batch: each row is a prompt followed by all of its candidates.

        Candidate ``k`` of a row sits after the prompt at its own offset, with position ids that
        restart where the prompt ends and an attention mask that lets it see the prompt and its
        own earlier tokens only, so it is scored exactly as if it followed the prompt alone. The
        prompt is encoded once for all candidates, and no key/value cache is copied.
        """
        import torch

        ids, prompt_mask = self._left_pad(prompts)
        rows, width = ids.shape
        segments = [[list(c[:-1]) for c in cands] for cands in continuations]
        tail = max(1, max(sum(len(s) for s in row) for row in segments))
        total = width + tail
        feed = torch.full((rows, total), self.pad_token_id, dtype=torch.long)
        feed[:, :width] = ids.cpu()
        positions = torch.zeros((rows, total), dtype=torch.long)
        positions[:, :width] = (prompt_mask.cumsum(-1) - 1).clamp(min=0).cpu()
        allowed = torch.zeros((rows, total, total), dtype=torch.bool)
        prompt_visible = prompt_mask.bool().cpu()
        causal = torch.tril(torch.ones((width, width), dtype=torch.bool))
        allowed[:, :width, :width] = causal & prompt_visible[:, None, :]
        offsets: list[list[int]] = []
        for row, row_segments in enumerate(segments):
            start, length = width, int(prompt_mask[row].sum())
            starts = []
            for segment in row_segments:
                end = start + len(segment)
                starts.append(start)
                if segment:
                    feed[row, start:end] = torch.as_tensor(segment)
                    positions[row, start:end] = torch.arange(length, length + len(segment))
                    allowed[row, start:end, :width] = prompt_visible[row]
                    allowed[row, start:end, start:end] = torch.tril(
                        torch.ones((len(segment), len(segment)), dtype=torch.bool)
                    )
                start = end
            offsets.append(starts)
        allowed[:, torch.arange(total), torch.arange(total)] = True  # padding rows see themselves
        dtype = next(self.model.parameters()).dtype
        mask = torch.zeros((rows, 1, total, total), dtype=dtype)
        mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)
        keep = torch.arange(width - 1, total, device=self.device)
        out = self.model(
            input_ids=feed.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=positions.to(self.device),
            use_cache=False,
            logits_to_keep=keep,
        )
        logprobs = torch.log_softmax(out.logits.float(), dim=-1)  # rows × (tail + 1) × vocab
        scores: list[list[float]] = []
        for row, candidates in enumerate(continuations):
            row_scores = []
            for k, candidate in enumerate(candidates):
                # token 0 follows the prompt (kept index 0); token j follows the segment's j-1th
                places = [0] + [offsets[row][k] - width + j for j in range(1, len(candidate))]
                picked = logprobs[row, places].gather(
                    -1, torch.as_tensor(list(candidate), device=self.device).unsqueeze(-1)
                )
                row_scores.append(float(picked[skip[row][k] :].sum()))
            scores.append(row_scores)
        return scores

    def _score_batch(
        self,
        prompts: Sequence[TokenIds],
        continuations: Sequence[Sequence[TokenIds]],
        skip: Sequence[Sequence[int]] | None = None,
    ) -> list[list[float]]:
        """Fallback for attention kernels without custom masks (e.g. flash-attention).

        One forward over the prompts keeps their KV cache; a second scores every candidate's
        remaining tokens against a copy of its prompt's cache.
        """
        import torch

        skip = resolve_skip(skip, continuations)
        ids, mask = self._left_pad(prompts)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
        )
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # next-token after prompt
        scores = [
            [float(first[b, cands[k][0]]) if skip[b][k] == 0 else 0.0 for k in range(len(cands))]
            for b, cands in enumerate(continuations)
        ]
        longer = [
            (b, k) for b, cands in enumerate(continuations) for k in range(len(cands))
            if len(cands[k]) > 1
        ]  # fmt: skip
        if not longer:
            return scores
        rest = self._score_tails(out.past_key_values, mask, continuations, longer, skip)
        for (b, k), value in zip(longer, rest, strict=True):
            scores[b][k] += value
        return scores

    def _score_tails(
        self,
        cache: Any,
        mask: Any,
        continuations: Sequence[Sequence[TokenIds]],
        pairs: Sequence[tuple[int, int]],
        skip: Sequence[Sequence[int]],
    ) -> list[float]:
        """Log-probability of tokens 2.. of each candidate (those not skipped), fed after its
        prompt's cached keys."""
        import torch

        rows = torch.tensor([b for b, _ in pairs], device=self.device)
        tails = [list(continuations[b][k]) for b, k in pairs]
        width = max(len(t) for t in tails) - 1
        feed = torch.full((len(pairs), width), self.pad_token_id, dtype=torch.long)
        feed_mask = torch.zeros((len(pairs), width), dtype=torch.long)
        for row, tokens in enumerate(tails):
            feed[row, : len(tokens) - 1] = torch.as_tensor(tokens[:-1])
            feed_mask[row, : len(tokens) - 1] = 1
        cache.batch_select_indices(rows)  # one copy of the prompt's keys per candidate
        prefix_mask = mask[rows]
        full_mask = torch.cat([prefix_mask, feed_mask.to(self.device)], dim=1)
        start = prefix_mask.sum(-1, keepdim=True)
        positions = start + torch.arange(width, device=self.device).unsqueeze(0)
        out = self.model(
            input_ids=feed.to(self.device),
            attention_mask=full_mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
        )
        logprobs = torch.log_softmax(out.logits.float(), dim=-1)
        values = []
        for row, tokens in enumerate(tails):
            targets = torch.as_tensor(tokens[1:], device=self.device)
            picked = logprobs[row, : len(tokens) - 1].gather(-1, targets.unsqueeze(-1))
            b, k = pairs[row]
            values.append(float(picked[max(0, skip[b][k] - 1) :].sum()))
        return values

    def close(self) -> None:
        """Drop the model; the caller's next backend starts from free memory."""
        import gc

        import torch

        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
