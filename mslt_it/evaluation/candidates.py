"""Rank mode's candidates: for every label of a row, a context and the continuation to score.

A classification template gives one instruction and one answer per label word; a multiple-choice
template may also put the choice in the context (lm-evaluation-harness's "multiple input" mode,
XWinograd's). Either way each label ``k`` renders to a pair ``(context_k, continuation_k)`` and
its score is ``log P(continuation_k | context_k)``.

- A **chat** template's context is the chat-formatted instruction and its continuation the
  answer as the chat template writes it, end of turn included (:class:`ChatFormat`).
- A **plain** template (``format: plain``) is a language-model prompt as lm-eval builds it: the
  context is the instruction as it is, the continuation ``target_delimiter + answer``, split into
  tokens the way lm-eval's ``_encode_pair`` does (trailing spaces of the context move to the
  continuation, the pair is encoded whole and the context's own encoding cut off its front).

The contexts' longest common token prefix is fed once per row (the backend's prompt) and each
candidate carries the rest of its context as tokens that are fed but not scored (``skip``): the
context is encoded once per row however many choices there are. Contexts that share no token
(XWinograd's sentence that begins with the blank, with a tokenizer that adds no BOS, as
BLOOM's) share an empty prompt: each is fed bare, as lm-eval feeds it (an empty one is the
prefix token alone); a BOS before them all moved every score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mslt_it.errors import MsltError
from mslt_it.evaluation.prompting import ChatFormat
from mslt_it.prompts import PromptTemplate
from mslt_it.tasks.base import Row, Task


@dataclass(frozen=True)
class RowCandidates:
    """One row's rank-mode request: a shared prompt and one continuation per label."""

    prompt: list[int]
    continuations: list[list[int]]
    skip: list[int]
    answers: list[str]
    contexts: list[str]
    norm_lengths: list[int]

    @property
    def shared_context(self) -> bool:
        return all(s == 0 for s in self.skip)


def row_candidates(
    template: PromptTemplate, task: Task, row: Row, lang: str, chat: ChatFormat
) -> RowCandidates:
    """Every label's (context, continuation) for ``row``, as token ids sharing one prompt."""
    rendered = [template.render(row, lang, label=k) for k in range(len(task.labels))]
    contexts: list[str] = []
    context_ids: list[list[int]] = []
    continuation_ids: list[list[int]] = []
    encoded: dict[str, list[int]] = {}

    def encode_once(text: str, encode: Callable[[str], list[int]]) -> list[int]:
        """A context shared by every label (the usual case) is encoded once per row."""
        if text not in encoded:
            encoded[text] = encode(text)
        return encoded[text]

    for example in rendered:
        if template.plain:
            continuation_text = template.spec.target_delimiter + example.answer
            context, continuation = plain_pair(
                chat.tokenizer, example.instruction, continuation_text, encode_once
            )
            contexts.append(example.instruction)
        else:
            text = chat.prompt_text(example.instruction)
            context = encode_once(text, lambda t: chat.encode([t])[0])
            continuation = chat.answer_ids(example.answer)
            contexts.append(text)
        if not continuation:
            raise MsltError(
                f"template: {template.id}: the answer {example.answer!r} encodes to no tokens"
            )
        context_ids.append(context)
        continuation_ids.append(continuation)
    answers = [example.answer for example in rendered]
    return _shared(context_ids, continuation_ids, answers, contexts, chat.tokenizer)


def plain_pair(
    tokenizer: Any,
    context: str,
    continuation: str,
    encode_once: Callable[[str, Callable[[str], list[int]]], list[int]],
) -> tuple[list[int], list[int]]:
    """lm-evaluation-harness's ``_encode_pair`` for causal models, with the tokenizer's defaults.

    Trailing whitespace of the context moves into the continuation; the whole text is encoded and
    the continuation is what follows the context's own encoding (through ``encode_once``: the
    same context for every choice is encoded once).
    """
    spaces = len(context) - len(context.rstrip())
    if spaces:
        continuation = context[-spaces:] + continuation
        context = context[:-spaces]

    def encode(text: str) -> list[int]:
        return list(tokenizer(text)["input_ids"])

    whole = encode(context + continuation)
    own = encode_once(context, encode)
    return own, whole[len(own) :]


def _shared(
    context_ids: Sequence[list[int]],
    continuation_ids: Sequence[list[int]],
    answers: list[str],
    contexts: list[str],
    tokenizer: Any,
) -> RowCandidates:
    """Split the candidates into their contexts' common prefix and what each adds after it.

    An empty context is the prefix token alone (lm-eval's rule: BOS, else EOS), and only that
    one: the others stay bare, as lm-eval feeds them."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    context_ids = [ids if ids else [start] for ids in context_ids]
    first = context_ids[0]
    common = len(first)
    for other in context_ids[1:]:
        common = min(common, len(other))
        for i in range(common):
            if other[i] != first[i]:
                common = i
                break
    prompt = list(context_ids[0][:common])
    continuations = [
        [*ctx[common:], *cont] for ctx, cont in zip(context_ids, continuation_ids, strict=True)
    ]
    skip = [len(ctx) - common for ctx in context_ids]
    return RowCandidates(
        prompt, continuations, skip, answers, contexts, norm_lengths(answers, contexts)
    )


def norm_lengths(answers: Sequence[str], contexts: Sequence[str]) -> list[int]:
    """The characters ``acc_norm`` divides each log-likelihood by, as lm-eval counts them.

    lm-eval divides by the length of each *choice* string: the continuation where the choices are
    continuations, the context where they are contexts (multiple-input mode, where every
    continuation is the same text).
    """
    if len(set(answers)) == 1 and len(set(contexts)) > 1:
        return [max(1, len(c)) for c in contexts]
    return [max(1, len(a)) for a in answers]
