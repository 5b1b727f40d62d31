"""From a rendered instruction to the exact token ids a model saw in training.

The built dataset's prompt is ``[{"role": "user", "content": instruction}]`` (a system message
first when the run had one); at evaluation the same conversation goes through the same chat
template (the string recorded in run.json) with the generation prompt added, and is tokenized
without adding special tokens again (the template already has them). Both backends receive these
ids, so vLLM and transformers see byte-identical prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mslt_it.chat_bounds import check_chat_template, render_chat
from mslt_it.errors import MsltError


@dataclass
class ChatFormat:
    """The chat template and system prompt one run evaluates with."""

    tokenizer: Any
    chat_template: str | None
    system_prompt: str | None
    where: str = "chat template"
    """Whose template it is, for errors: with several adapters, which one's ``run.json``."""
    _answers: dict[str, list[int]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        # an adapter's run.json may carry another template than the tokenizer's (checked there)
        check_chat_template(self.chat_template, self.tokenizer.special_tokens_map, self.where, "it")

    def messages(self, instruction: str) -> list[dict[str, str]]:
        """The conversation the dataset builder writes for an instruction."""
        messages = [{"role": "user", "content": instruction}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return messages

    def prompt_text(self, instruction: str) -> str:
        """The prompt as text, generation prompt included."""
        if self.chat_template is None:
            system = f"{self.system_prompt}\n\n" if self.system_prompt else ""
            return f"{system}{instruction}\n"
        messages = self.messages(instruction)
        return render_chat(self.tokenizer, messages, self.where, True, self.chat_template)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of prompt texts; special tokens only where no chat template adds them."""
        add_special = self.chat_template is None
        encoded = self.tokenizer(list(texts), add_special_tokens=add_special)
        return [list(ids) for ids in encoded["input_ids"]]

    def answer_ids(self, answer: str) -> list[int]:
        """Token ids of an assistant answer as the chat template writes it after the prompt.

        The tail that the template adds after the generation prompt for this answer, up to and
        including the end-of-turn token: a candidate's score in rank mode is the probability of
        the whole answer *and* of stopping there, which is what greedy generation would need.

        The tail is tokenized where it stands, after a prompt (the ids of prompt and tail
        encoded whole, less the prompt's own), as training tokenized each conversation whole:
        a SentencePiece tokenizer (Llama-2, Mistral) begins a text encoded on its own with a
        word-start ``▁`` that the model never saw after ``Assistant:\n``, and every label's
        score then held a token no answer has. Where the prompt's ids do not begin the whole
        (the tail merged into the prompt's last token), the tail is encoded alone.
        """
        if answer in self._answers:
            return self._answers[answer]
        tail = self.answer_text(answer)
        prompt = self.prompt_text("?")  # every prompt ends alike: the generation prompt
        own, whole = self.encode([prompt, prompt + tail])
        if whole[: len(own)] == own and len(whole) > len(own):
            ids = whole[len(own) :]
        else:
            ids = list(self.tokenizer(tail, add_special_tokens=False)["input_ids"])
        if not ids:
            raise MsltError(f"template: the answer {answer!r} encodes to no tokens")
        self._answers[answer] = ids
        return ids

    def answer_text(self, answer: str) -> str:
        """The text the chat template writes for an assistant answer (see :meth:`answer_ids`)."""
        if self.chat_template is None:
            return answer
        probe = self.messages("?")
        answered = [*probe, {"role": "assistant", "content": answer}]  # a row's choice, in rank
        prompt = render_chat(self.tokenizer, probe, self.where, True, self.chat_template)
        full = render_chat(self.tokenizer, answered, self.where, False, self.chat_template)
        if not full.startswith(prompt) or answer not in full[len(prompt) :]:
            return answer  # a template that rewrites the history: score the bare answer
        tail = full[len(prompt) :]
        eos = self.tokenizer.eos_token
        after = tail.index(answer) + len(answer)
        if eos and eos in tail[after:]:
            return tail[: tail.index(eos, after) + len(eos)]
        return tail[:after]


def stop_token_ids(model: str, tokenizer: Any, trust_remote_code: bool = False) -> tuple[int, ...]:
    """End-of-turn tokens: the tokenizer's eos and the model's generation-config eos ids."""
    stops: list[int] = []
    if tokenizer.eos_token_id is not None:
        stops.append(int(tokenizer.eos_token_id))
    try:
        from transformers import GenerationConfig

        config = GenerationConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
        eos = config.eos_token_id
        for token in eos if isinstance(eos, list) else [eos]:
            if token is not None and int(token) not in stops:
                stops.append(int(token))
    except (OSError, ValueError, RecursionError):
        pass  # no generation_config.json: the tokenizer's eos is all there is
    if not stops:
        raise MsltError(f"model: {model!r} has no eos token; cannot tell where an answer ends")
    return tuple(stops)
