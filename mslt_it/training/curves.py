"""Per-language curves from the losses the trainer already computes, and the mix it trained on.

TRL's ``SFTTrainer.compute_loss`` calls the model with ``fused_lm_head=True``, which returns the
log-probability of every next-token label (``log_probs``, zero where the label is masked) and
``label_mask``; it sums them into the loss and keeps nothing per token. A PyTorch forward hook on
the trainer's model reads that same output (no second forward pass, nothing subclassed) and
splits it by language:

- **which language a token is**: each example's tokens are looked up by content in a
  :class:`LanguageIndex` built from the rows TRL prepared (their ``lang`` column) or, for packed
  rows (which keep only ``input_ids``/``labels``/``seq_lengths``), from the same chat-template
  tokenisation :mod:`.checks` verifies against TRL's. A packed row is split where its position ids
  restart, so each of its examples is counted in its own language. Every example TRL prepared is
  looked up once before training (:meth:`LanguageIndex.verify`): a miss is a bug, not a guess.
- **per-language loss**: summed negative log-likelihood and trained-token counts per language,
  reset at each Trainer log; ``on_log`` writes their token-weighted means into the log entry
  (``state.log_history``, hence ``trainer_state.json`` and every checkpoint: resume keeps the
  curves) and TensorBoard scalars ``loss/<lang>``.
- **the mix trained on**: examples and trained tokens per language since the start, cumulative,
  stored in each log entry and before each checkpoint, so a resumed run continues the count.

The Trainer's logged ``loss`` is the mean of its steps' token-weighted losses over the logging
window; the per-language losses are token-weighted over the window. With ``logging_steps: 1``
(or equal tokens per step) their token-weighted mean is the logged loss exactly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mslt_it.training.checks import conversations, render_tokens

UNKNOWN = -1


@dataclass
class LanguageIndex:
    """Example content -> language: the key is the hash of the example's token ids."""

    langs: list[str]
    max_length: int | None
    keys: dict[int, int] = field(default_factory=dict)
    ambiguous: int = 0

    def lang_id(self, lang: str) -> int:
        if lang not in self.langs:
            self.langs.append(lang)
        return self.langs.index(lang)

    def add(self, ids: Sequence[int], lang: str) -> None:
        """Remember one example (cut to ``max_length``, as TRL truncates or packs it)."""
        cut = ids[: self.max_length] if self.max_length else ids
        key = hash(tuple(cut))
        index = self.lang_id(lang)
        known = self.keys.get(key)
        if known is not None and known != index:
            self.ambiguous += 1  # the same tokens in two languages: the first one counts
            return
        self.keys[key] = index

    def find(self, ids: Sequence[int]) -> int:
        return self.keys.get(hash(tuple(ids)), UNKNOWN)

    def segments(self, row: Sequence[int], seq_lengths: Sequence[int] | None) -> list[list[int]]:
        """The examples of one prepared row (one, or several when packed)."""
        if not seq_lengths:
            return [list(row)]
        out, start = [], 0
        for length in seq_lengths:
            out.append(list(row[start : start + length]))
            start += length
        return out

    def verify(self, prepared: Any, name: str) -> dict[str, int]:
        """Look up every example TRL prepared; return the examples per language.

        A miss means the content lookup does not see what TRL trains on, which would make every
        per-language number wrong: stop, like :func:`.checks.verify_lengths` does.
        """
        packed = "seq_lengths" in prepared.column_names
        columns = ["input_ids", "seq_lengths"] if packed else ["input_ids"]
        counts: dict[str, int] = {}
        for row in prepared.select_columns(columns):
            for segment in self.segments(row["input_ids"], row.get("seq_lengths")):
                found = self.find(segment)
                if found == UNKNOWN:
                    raise RuntimeError(
                        f"{name}: an example TRL prepared ({len(segment)} tokens) matches no "
                        "tokenised row, so its language is unknown"
                    )
                lang = self.langs[found]
                counts[lang] = counts.get(lang, 0) + 1
        return counts

    def token_languages(self, input_ids: Any, attention_mask: Any, position_ids: Any) -> Any:
        """(batch, length) tensors of language ids (-1: padding or unknown) and example numbers.

        Rows are split where position ids restart (padding-free packing) and cut at the
        attention mask (right padding), which is how the collator built them.
        """
        import torch

        ids = input_ids.detach().cpu()
        langs = torch.full(ids.shape, UNKNOWN, dtype=torch.long)
        examples = torch.full(ids.shape, UNKNOWN, dtype=torch.long)
        mask = attention_mask.detach().cpu() if attention_mask is not None else None
        positions = position_ids.detach().cpu() if position_ids is not None else None
        number = 0
        for b in range(ids.shape[0]):
            end = int(mask[b].sum()) if mask is not None and mask.dim() == 2 else ids.shape[1]
            starts = [0]
            if positions is not None:
                starts = (positions[b, :end] == 0).nonzero().flatten().tolist() or [0]
            bounds = [*starts, end]
            row = ids[b].tolist()
            for start, stop in itertools.pairwise(bounds):
                if stop > start:
                    langs[b, start:stop] = self.find(row[start:stop])
                    examples[b, start:stop] = number
                    number += 1
        return langs, examples


def language_index(
    tokenizer: Any,
    max_length: int | None,
    datasets: Iterable[tuple[Any, Any]],
    langs: Sequence[str] = (),
) -> LanguageIndex:
    """The index of every (prepared, raw) dataset pair a run trains or evaluates on.

    Unpacked prepared rows carry TRL's own ``input_ids`` and the ``lang`` column: they are used
    as they are. Packed rows lost the ``lang`` column, so the raw rows are tokenised through the
    chat template exactly as :func:`.checks.token_lengths` does (which TRL's lengths confirm).
    """

    index = LanguageIndex(list(langs), max_length)
    for prepared, raw in datasets:
        if prepared is None:
            continue
        names = prepared.column_names
        if "lang" in names and "seq_lengths" not in names:
            for ids, lang in zip(prepared["input_ids"], prepared["lang"], strict=True):
                index.add(ids, lang)
            continue
        convs, row_langs = conversations(raw), list(raw["lang"])
        for start in range(0, len(convs), 512):
            encoded = render_tokens(tokenizer, convs[start : start + 512])
            for ids, lang in zip(encoded["input_ids"], row_langs[start : start + 512], strict=True):
                index.add(ids, lang)
    return index


@dataclass
class Sums:
    """Summed negative log-likelihood, trained tokens and examples per language id."""

    nll: dict[int, float] = field(default_factory=dict)
    tokens: dict[int, int] = field(default_factory=dict)
    examples: dict[int, int] = field(default_factory=dict)

    def add(self, other_nll: dict[int, float], tokens: dict[int, int], examples: dict[int, int]):
        for key, value in other_nll.items():
            self.nll[key] = self.nll.get(key, 0.0) + value
        for key, value in tokens.items():
            self.tokens[key] = self.tokens.get(key, 0) + value
        for key, value in examples.items():
            self.examples[key] = self.examples.get(key, 0) + value

    def clear(self) -> None:
        self.nll.clear()
        self.tokens.clear()
        self.examples.clear()


class LanguageTracker:
    """The forward hook's accumulators: a training window, the cumulative mix, an eval pass."""

    def __init__(self, index: LanguageIndex) -> None:
        self.index = index
        self.window = Sums()
        self.total = Sums()
        self.eval = Sums()

    def hook(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        """``register_forward_hook(..., with_kwargs=True)``: split one forward's token losses."""
        log_probs = getattr(output, "log_probs", None)
        mask = getattr(output, "label_mask", None)
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if log_probs is None or mask is None or input_ids is None:
            return  # not TRL's loss forward (generation, rank scoring, answer metrics)
        import torch

        langs, examples = self.index.token_languages(
            input_ids, kwargs.get("attention_mask"), kwargs.get("position_ids")
        )
        if log_probs.shape[-1] == langs.shape[-1] - 1:
            langs, examples = langs[:, 1:], examples[:, 1:]  # log_probs[:, j]: label j + 1
        keep = mask.cpu() & (langs >= 0)
        picked = langs[keep]
        count = len(self.index.langs)
        nll = torch.bincount(
            picked, weights=-log_probs.detach()[keep.to(log_probs.device)].double().cpu(),
            minlength=count,
        )  # fmt: skip
        token_list = torch.bincount(picked, minlength=count).tolist()
        nll_list = nll.tolist()
        trained = torch.unique(examples[keep])  # examples with at least one trained label
        lang_of = dict(zip(examples[keep].tolist(), picked.tolist(), strict=True))
        per_example: dict[int, int] = {}
        for number in trained.tolist():
            per_example[lang_of[number]] = per_example.get(lang_of[number], 0) + 1
        tokens = {i: n for i, n in enumerate(token_list) if n}
        target = self.window if module.training else self.eval
        target.add({i: v for i, v in enumerate(nll_list) if token_list[i]}, tokens, per_example)
        if module.training:
            self.total.add({}, tokens, per_example)


def reduce_sums(sums: Sums, count: int) -> tuple[list[float], list[int], list[int]]:
    """Sums over every process of a data-parallel run (each saw its own shard)."""
    nll = [sums.nll.get(i, 0.0) for i in range(count)]
    tokens = [sums.tokens.get(i, 0) for i in range(count)]
    examples = [sums.examples.get(i, 0) for i in range(count)]
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        import torch

        values = torch.tensor([*nll, *tokens, *examples], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            values = values.cuda()
        dist.all_reduce(values)
        flat = values.cpu().tolist()
        nll = flat[:count]
        tokens = [round(v) for v in flat[count : 2 * count]]
        examples = [round(v) for v in flat[2 * count :]]
    return nll, tokens, examples


def means(langs: Sequence[str], nll: list[float], tokens: list[int]) -> dict[str, float]:
    return {
        lang: round(nll[i] / tokens[i], 6)
        for i, lang in enumerate(langs)
        if i < len(tokens) and tokens[i]
    }


def curves_callback(tracker: LanguageTracker, tensorboard: Any = None) -> Any:
    """A TrainerCallback that writes the tracker's numbers into the Trainer's log entries."""
    from transformers import TrainerCallback

    class LanguageCurves(TrainerCallback):
        """Per-language losses and the cumulative mix, into ``state.log_history``."""

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            tracker.window.clear()
            tracker.total.clear()
            for entry in reversed(state.log_history):  # resumed: continue the count
                mix = entry.get("trained_mix")
                if mix:
                    for lang, counts in mix.items():
                        i = tracker.index.lang_id(lang)
                        tracker.total.tokens[i] = counts["tokens"]
                        tracker.total.examples[i] = counts["examples"]
                    break

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if control.should_save and not control.should_log:
                state.log_history.append({"step": state.global_step, "trained_mix": mix()})

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            logs = logs or {}
            entry = state.log_history[-1] if state.log_history else {}
            langs = tracker.index.langs
            if "loss" in logs:
                nll, tokens, _ = reduce_sums(tracker.window, len(langs))
                tracker.window.clear()
                losses = means(langs, nll, tokens)
                entry["loss_by_language"] = losses
                entry["tokens_by_language"] = {
                    lang: tokens[i] for i, lang in enumerate(langs) if tokens[i]
                }
                total = sum(tokens)
                if total:
                    entry["loss_token_weighted"] = round(sum(nll) / total, 6)
                entry["trained_mix"] = mix()
                write_scalars(tensorboard, "loss", losses, state.global_step)
            elif any(k.startswith("eval_") and k.endswith("_loss") for k in logs):
                nll, tokens, _ = reduce_sums(tracker.eval, len(langs))
                tracker.eval.clear()
                losses = means(langs, nll, tokens)
                entry["eval_loss_by_language"] = losses
                name = next(k for k in logs if k.startswith("eval_") and k.endswith("_loss"))
                write_scalars(tensorboard, name, losses, state.global_step)

    def mix() -> dict[str, dict[str, int]]:
        langs = tracker.index.langs
        _, tokens, examples = reduce_sums(tracker.total, len(langs))
        return {
            lang: {"examples": examples[i], "tokens": tokens[i]}
            for i, lang in enumerate(langs)
            if examples[i] or tokens[i]
        }

    return LanguageCurves()


def write_scalars(tensorboard: Any, prefix: str, values: dict[str, float], step: int) -> None:
    """``prefix/<lang>`` scalars through the TensorBoard callback's writer, when it has one."""
    writer = getattr(tensorboard, "tb_writer", None)
    if writer is None:
        return
    for lang, value in values.items():
        writer.add_scalar(f"{prefix}/{lang}", value, step)
    writer.flush()


# ---------------------------------------------------------------------------------------------
# From the log history to run.json
# ---------------------------------------------------------------------------------------------


def language_curves(history: list[dict[str, Any]]) -> dict[str, Any]:
    """run.json's ``curves``: per-language training and held-out loss, watch accuracies."""
    train: dict[str, list[list[float]]] = {}
    tokens: dict[str, dict[str, int]] = {}
    heldout: dict[str, dict[str, list[list[float]]]] = {}
    watch: dict[str, dict[str, list[list[float]]]] = {}
    for entry in history:
        step = entry.get("step")
        for lang, value in (entry.get("loss_by_language") or {}).items():
            train.setdefault(lang, []).append([step, value])
        if entry.get("tokens_by_language"):
            tokens[str(step)] = entry["tokens_by_language"]
        if "eval_loss_by_language" in entry:
            name = next(
                (k[5:-5] for k in entry if k.startswith("eval_") and k.endswith("_loss")), "eval"
            )
            name = name or "eval"
            for lang, value in entry["eval_loss_by_language"].items():
                heldout.setdefault(name, {}).setdefault(lang, []).append([step, value])
        for task, scores in (entry.get("watch") or {}).items():
            for lang, value in scores.items():
                watch.setdefault(task, {}).setdefault(lang, []).append([step, value])
    return {
        "loss_by_language": train,
        "tokens_by_language": tokens,  # step -> trained tokens per language in its window
        "heldout_loss_by_language": heldout,
        "watch": watch,
    }


def trained_mix(
    history: list[dict[str, Any]],
    rows: dict[str, int],
    manifest: dict[str, Any],
    tolerance: float,
) -> dict[str, Any]:
    """What the trainer consumed per language, against what the manifest promised.

    ``promised`` is the manifest's count per language (the budget as built); a language's
    ``gap`` is its share of the examples trained on over its share of the promise, minus one.
    """
    consumed: dict[str, dict[str, int]] = {}
    for entry in reversed(history):
        if entry.get("trained_mix"):
            consumed = entry["trained_mix"]
            break
    promised: dict[str, int] = dict(manifest.get("counts") or {})
    langs = list(dict.fromkeys([*promised, *rows, *consumed]))
    total_examples = sum(c.get("examples", 0) for c in consumed.values())
    total_tokens = sum(c.get("tokens", 0) for c in consumed.values())
    total_promised = sum(promised.values())
    total_rows = sum(rows.values())
    table: dict[str, Any] = {}
    over: list[str] = []
    for lang in langs:
        got = consumed.get(lang, {})
        examples, tokens = got.get("examples", 0), got.get("tokens", 0)
        share = examples / total_examples if total_examples else 0.0
        want = promised.get(lang, 0) / total_promised if total_promised else 0.0
        gap = (share / want - 1) if want else None
        noise = shuffle_noise(want, total_examples, total_rows)
        table[lang] = {
            "examples": examples,
            "tokens": tokens,
            "rows": rows.get(lang, 0),
            "epochs": round(examples / rows[lang], 4) if rows.get(lang) else None,
            "promised": promised.get(lang, 0),
            "share": round(share, 6),
            "token_share": round(tokens / total_tokens, 6) if total_tokens else 0.0,
            "promised_share": round(want, 6),
            "gap": None if gap is None else round(gap, 6),
            "shuffle_noise": round(noise, 6),
        }
        if gap is None or abs(share - want) > max(tolerance * want, NOISE_SDS * noise):
            over.append(lang)
    config = manifest.get("config") or {}
    return {
        "languages": table,
        "examples": total_examples,
        "tokens": total_tokens,
        "budget": {"budget": config.get("budget"), "budget_mode": config.get("budget_mode")},
        "tolerance": tolerance,
        "over_tolerance": over,
    }


NOISE_SDS = 3.0
"""How many standard deviations of :func:`shuffle_noise` a share may stray before a warning."""


def shuffle_noise(share: float, examples: int, rows: int) -> float:
    """The standard deviation of a language's share of ``examples`` drawn epoch after epoch
    from a shuffled dataset of ``rows`` rows where it holds ``share``: whole epochs give its
    share exactly, the last partial epoch a draw without replacement (hypergeometric).

    A run of 4 examples from 40 rows of en and de trained on 3 of one: the 5 % tolerance
    alone warned of a mixing fault on every short run."""
    partial = examples % rows if rows else 0
    if partial == 0 or rows < 2:
        return 0.0
    variance = partial * share * (1 - share) * (rows - partial) / (rows - 1)
    return math.sqrt(variance) / examples


def mix_warnings(run: dict[str, Any]) -> list[str]:
    """One line per language whose trained share is further from the promise than allowed."""
    mix = run.get("trained_mix") or {}
    lines = []
    for lang in mix.get("over_tolerance", []):
        row = mix["languages"][lang]
        gap = "not promised" if row["gap"] is None else f"{row['gap']:+.1%}"
        lines.append(
            f"{lang}: trained on {row['share']:.1%} of the examples, the manifest promised "
            f"{row['promised_share']:.1%} ({gap}, tolerance {mix['tolerance']:.0%})"
        )
    return lines
