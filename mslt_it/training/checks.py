"""The checks that catch silent failures before any training step runs.

Three things go wrong without a word in today's toolkits, and each is caught here:

- **over-long examples**: TRL truncates them (cutting off the answer and the end-of-turn token)
  or, with packing, drops their overflow. :func:`apply_overlength_policy` drops, truncates or
  stops, and counts what happened per language.
- **every label masked**: a template or data problem that leaves no answer token to learn from;
  the loss is then a flat zero or the model learns nothing.
- **the end-of-turn token never trained**: the model never learns to stop and rambles at inference
  while the training loss looks healthy.

The label checks run on what TRL will actually train on: the trainer's own prepared dataset
(``trainer.train_dataset``, after TRL's tokenisation, label masking, truncation and packing) fed
through the trainer's own collator (``trainer.data_collator``), batch by batch. Nothing about TRL's
masking is re-implemented; only token lengths are computed ahead (to decide what to drop), with
the same ``apply_chat_template`` call TRL makes, and :func:`verify_lengths` then checks them
against TRL's prepared rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mslt_it.chat_bounds import bounded_call, bounded_chat_texts, template_source
from mslt_it.errors import MsltError

IGNORE_INDEX = -100


def conversations(dataset: Any) -> list[list[dict[str, str]]]:
    """Each row as the full conversation TRL tokenises (prompt + completion, or messages)."""
    if "messages" in dataset.column_names:
        return list(dataset["messages"])
    return [p + c for p, c in zip(dataset["prompt"], dataset["completion"], strict=True)]


def token_lengths(dataset: Any, tokenizer: Any, batch_size: int = 512) -> list[int]:
    """Token count of each row, through the chat template exactly as TRL tokenises it.

    Every row (and each prompt alone, with the generation prompt) is rendered here first
    within every bound: a template can branch on a row's text to loop, or to write millions of
    characters, only there (past the probes of ``check_chat_template``), and TRL renders the
    same rows with none."""
    convs = conversations(dataset)
    if "prompt" in dataset.column_names:  # TRL renders each prompt alone, generation prompt on
        check_within_bounds(tokenizer, list(dataset["prompt"]), add_generation_prompt=True)
    lengths: list[int] = []
    for start in range(0, len(convs), batch_size):
        encoded = render_tokens(tokenizer, convs[start : start + batch_size])
        lengths.extend(len(ids) for ids in encoded["input_ids"])
    return lengths


def render_tokens(tokenizer: Any, convs: list[list[dict[str, str]]]) -> Any:
    """``apply_chat_template(convs, tokenize=True, return_dict=True)`` once each conversation
    rendered within every bound; one line when it fails."""
    check_within_bounds(tokenizer, convs, add_generation_prompt=False)
    return bounded_call(  # untimed: tokenizing 512 long rows may take longer than the limit
        CHAT_TEMPLATE_FIELD,
        lambda: tokenizer.apply_chat_template(convs, tokenize=True, return_dict=True),
        timed=False,
    )


CHAT_TEMPLATE_FIELD = "model.chat_template"


def check_within_bounds(
    tokenizer: Any, convs: list[list[dict[str, str]]], add_generation_prompt: bool
) -> None:
    """Each conversation rendered within every bound (time, output, arithmetic), as TRL will
    render it unbounded: a template can loop, or write a billion characters, only for some
    rows, or only with the generation prompt."""
    bounded_chat_texts(
        template_source(tokenizer),
        tokenizer.special_tokens_map,
        convs,
        add_generation_prompt,
        CHAT_TEMPLATE_FIELD,
    )


@dataclass
class OverlengthReport:
    """What happened to examples longer than ``max_length``, per language."""

    policy: str
    max_length: int
    per_language: dict[str, int]
    kept: int
    total: int

    def as_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "max_length": self.max_length,
            "per_language": self.per_language,
            "examples_kept": self.kept,
            "examples_total": self.total,
        }


def apply_overlength_policy(
    dataset: Any, lengths: list[int], max_length: int, policy: str
) -> tuple[Any, OverlengthReport]:
    """Drop, keep (for TRL to truncate) or refuse the examples longer than ``max_length``.

    A language that would lose every example is an error whatever the policy says: a
    multi-source run that silently becomes a fewer-source run answers a different question.
    """
    langs = list(dataset["lang"])
    over = Counter(lang for lang, n in zip(langs, lengths, strict=True) if n > max_length)
    per_language = {lang: over.get(lang, 0) for lang in dict.fromkeys(langs)}
    n_over = sum(over.values())
    summary = ", ".join(f"{lang}: {n}" for lang, n in per_language.items() if n)
    if n_over and policy == "error":
        raise MsltError(
            f"max_length: {n_over} examples are longer than {max_length} tokens ({summary}); "
            "raise --max-length or pass --on-overlength drop|truncate"
        )
    if policy == "drop" and n_over:
        totals = Counter(langs)
        emptied = [lang for lang in per_language if over.get(lang, 0) == totals[lang]]
        if emptied:
            raise MsltError(
                f"max_length: every {', '.join(emptied)} example is longer than {max_length} "
                "tokens, so the language would vanish from the mixture; raise --max-length"
            )
        keep = [i for i, n in enumerate(lengths) if n <= max_length]
        dataset = dataset.select(keep)
    report = OverlengthReport(policy, max_length, per_language, len(dataset), len(lengths))
    return dataset, report


def verify_lengths(
    prepared: Any, kept: Any, expected: list[int], max_length: int, packing: bool
) -> dict[str, int]:
    """Check TRL's prepared rows against the lengths computed ahead; return its drops per language.

    This is what shows that :func:`token_lengths` tokenises as TRL does; a mismatch is a bug (or a
    chat template that renders differently each time), never something to train through. Without
    packing TRL also drops rows that truncation left without any trained label: those are
    returned, so they are counted rather than lost without a word.
    """
    capped = [min(n, max_length) for n in expected]
    if packing:
        got = sorted(n for row in prepared["seq_lengths"] for n in row)
        if got != sorted(capped):
            raise RuntimeError(
                "TRL's packed sequence lengths differ from the lengths computed ahead"
            )
        return {}
    want = dict(zip(kept["id"], capped, strict=True))
    for row_id, ids in zip(prepared["id"], prepared["input_ids"], strict=True):
        if want.get(row_id) != len(ids):
            raise RuntimeError(
                f"example {row_id}: TRL prepared {len(ids)} tokens where {want.get(row_id)} were "
                "expected; the chat template may not render deterministically"
            )
    missing = set(want) - set(prepared["id"])
    dropped = Counter(
        lang for row_id, lang in zip(kept["id"], kept["lang"], strict=True) if row_id in missing
    )
    return dict(dropped)


@dataclass
class LabelReport:
    """What the loss will see, counted over TRL's collated batches."""

    batches: int = 0
    trained_tokens: int = 0
    answer_tokens: int = 0
    stop_tokens: int = 0
    masked_batches: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "batches_checked": self.batches,
            "trained_tokens": self.trained_tokens,
            "answer_tokens": self.answer_tokens,
            "end_of_turn_tokens": self.stop_tokens,
        }


def blank_token_ids(tokenizer: Any, ids: set[int]) -> set[int]:
    """Those of ``ids`` that decode to whitespace only (the newline after a turn, say)."""
    return {i for i in ids if not tokenizer.decode([i]).strip()}


def count_labels(trainer: Any, stop_ids: set[int], tokenizer: Any) -> LabelReport:
    """Run the trainer's collator over its prepared dataset and count the trained labels.

    Batches are taken in dataset order with the per-device batch size: the sampler shuffles, but
    a batch is fully masked only if each of its rows is, so the order does not change the verdict.
    """
    import torch

    dataset = trainer.train_dataset
    columns = [c for c in ("input_ids", "labels", "seq_lengths") if c in dataset.column_names]
    rows = dataset.select_columns(columns)
    size = trainer.args.per_device_train_batch_size
    report = LabelReport()
    blanks: dict[int, bool] = {}
    stop = torch.tensor(sorted(stop_ids), dtype=torch.long)
    for start in range(0, len(rows), size):
        batch = trainer.data_collator([rows[i] for i in range(start, min(start + size, len(rows)))])
        labels = batch["labels"]
        trained = labels[labels != IGNORE_INDEX]
        report.batches += 1
        if trained.numel() == 0:
            report.masked_batches.append(report.batches - 1)
            continue
        is_stop = torch.isin(trained, stop)
        content = trained[~is_stop]
        for token in set(content.unique().tolist()) - blanks.keys():
            blanks[token] = not tokenizer.decode([token]).strip()
        blank = torch.tensor([blanks[t] for t in content.tolist()], dtype=torch.bool)
        report.trained_tokens += int(trained.numel())
        report.stop_tokens += int(is_stop.sum())
        report.answer_tokens += int((~blank).sum()) if blank.numel() else 0
    return report


def check_stop_token_template(tokenizer: Any, stop_ids: set[int]) -> None:
    """For messages data, TRL's own probe: is the end-of-turn token inside the assistant mask?

    TRL only warns about this; it is checked here first so the run stops with one clear line.
    """
    from trl.chat_template_utils import is_chat_template_stop_token_trained

    if not is_chat_template_stop_token_trained(tokenizer):
        raise_missing_stop(tokenizer, stop_ids)


def raise_missing_stop(tokenizer: Any, stop_ids: set[int]) -> None:
    names = ", ".join(repr(tokenizer.convert_ids_to_tokens(i)) for i in sorted(stop_ids))
    raise MsltError(
        f"labels: the end-of-turn token ({names or 'none defined'}) never appears among the "
        "trained labels, so the model would never learn to stop; use a chat template that "
        "ends the assistant's turn with it inside {% generation %} (model.chat_template)"
    )


def check_labels(report: LabelReport, stop_ids: set[int], tokenizer: Any) -> None:
    """Stop, in one line, when the loss would train nothing useful."""
    if report.batches == 0:
        raise MsltError(
            "labels: no example is left to train on: TRL drops examples that truncation to "
            "max_length leaves without a trained token; raise --max-length until answers fit "
            "(--on-overlength drop would leave none either)"
        )
    if report.masked_batches:
        first = report.masked_batches[0]
        raise MsltError(
            f"labels: every label of {len(report.masked_batches)} of {report.batches} batches is "
            f"masked (the first is batch {first}), so they train nothing; check the dataset's "
            "completions and --max-length"
        )
    if report.answer_tokens == 0:
        raise MsltError(
            "labels: no answer token is trained (every label is masked or an end-of-turn "
            "token); are the dataset's completions empty?"
        )
    if report.stop_tokens == 0:
        raise_missing_stop(tokenizer, stop_ids)
