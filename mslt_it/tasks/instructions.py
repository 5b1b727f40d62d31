"""The ``instructions`` kind: instruction corpora (Bactrian-X, Aya, the user's own chats).

A row is either one exchange, whose user turn and answer are Jinja expressions over the row
(``prompt``, ``answer``), or a whole conversation (``messages``: a list of ``{role, content}``
ending with the assistant). Either way it becomes :class:`Turns`: the earlier turns (kept whole,
as history), the last user turn and the answer. Templates see ``prompt``, ``answer`` and
``history``; the shipped ``<corpus>/as-is`` template passes the turn through unchanged.

This is code rather than YAML because a conversation's shape (roles, order, the final answer)
has to be checked row by row, and the builder needs the history apart from the final exchange.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mslt_it.tasks.base import Row, Task, Verbalizer
from mslt_it.tasks.compile import compile_variables, remember_rows
from mslt_it.tasks.schema import TaskFile

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Turns:
    """A row as conversation: earlier turns, the last user turn and the answer to it."""

    history: list[dict[str, str]]
    prompt: str
    answer: str


@dataclass(frozen=True)
class TurnReader:
    """A definition's prompt/answer (or messages) expressions, compiled once.

    ``compute`` remembers its last rows (:func:`~mslt_it.tasks.compile.remember_rows`), so
    the row check, the template's variables and the builder's history share one evaluation.
    """

    compute: Callable[[Row], dict[str, Any]]
    conversation: bool

    def turns(self, row: Row) -> Turns:
        values = self.compute(row)
        if not self.conversation:
            return Turns([], values["prompt"], values["answer"])
        messages = list(values["messages"])
        return Turns(messages[:-2], messages[-2]["content"], messages[-1]["content"])

    def check(self, row: Row) -> None:
        """Raise ``ValueError`` naming what is wrong with a row's turns."""
        values = self.compute(row)
        if not self.conversation:
            for field in ("prompt", "answer"):
                if not isinstance(values[field], str):
                    kind = type(values[field]).__name__
                    raise ValueError(f"{field} must be text, got {kind}")
            return
        check_conversation(values["messages"])


def check_conversation(messages: Any) -> None:
    """A list of {role, content} texts: optional system first, user and assistant alternating,
    the assistant last."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list of {role, content}")
    for number, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"messages[{number}] must be a mapping of role and content")
        if message.get("role") not in ROLES:
            raise ValueError(
                f"messages[{number}].role is {message.get('role')!r}; allowed: {', '.join(ROLES)}"
            )
        if not isinstance(message.get("content"), str):
            raise ValueError(f"messages[{number}].content must be text")
    turns = [m["role"] for m in messages if m["role"] != "system"]
    if any(m["role"] == "system" for m in messages[1:]):
        raise ValueError("messages: a system message may only come first")
    expected = ["user", "assistant"] * (len(turns) // 2 + 1)
    if len(turns) < 2 or turns != expected[: len(turns)] or turns[-1] != "assistant":
        raise ValueError(
            "messages: user and assistant must alternate, starting with the user and ending "
            f"with the assistant (got {' '.join(turns)})"
        )


def turn_reader(spec: TaskFile, where: str) -> TurnReader:
    """Compile a definition's prompt and answer, or messages, expressions."""
    if spec.messages is not None:
        expressions = {"messages": spec.messages}
    else:
        expressions = {"prompt": str(spec.prompt), "answer": str(spec.answer)}
    compute = compile_variables(expressions, where, fields={k: k for k in expressions})
    return TurnReader(remember_rows(compute), spec.messages is not None)


def kind_variables(reader: TurnReader) -> Callable[..., dict[str, Any]]:
    """prompt, answer and history: what an instructions template may use."""

    def variables(
        row: Row, verbalizer: Verbalizer, lang: str, label: int | None = None
    ) -> dict[str, Any]:
        turns = reader.turns(row)
        return {"prompt": turns.prompt, "answer": turns.answer, "history": turns.history}

    return variables


def earlier_turns(task: Task, row: Row) -> list[dict[str, str]]:
    """The turns of a multi-turn conversation before its last exchange, as the builder puts
    them into the prompt (role and content only); none for a task of one exchange per row."""
    if not task.extra.get("conversation"):
        return []
    return [{"role": m["role"], "content": m["content"]} for m in task.extra["turns"](row).history]
