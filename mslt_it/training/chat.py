"""The chat template a run trains with, which is the one evaluation must use.

A model is trained on text rendered by a chat template; if evaluation renders prompts any other
way, the model sees a format it was never trained on and scores drop for no visible reason. So the
template is resolved once here, saved with the tokenizer next to the adapter, and written verbatim
to ``run.json``.

Instruct models bring their own template. A base model has none; it gets mslt-it's default below:
plain ``### Role:`` headers, which a base model can follow without new tokens (new special tokens
would need new, untrained embeddings), with the assistant's answer and the tokenizer's own EOS
token inside ``{% generation %}`` markers, so TRL can train on the answer only and the model
learns to stop.
"""

from __future__ import annotations

from typing import Any

from mslt_it.chat_bounds import MAX_CHAT_TEMPLATE, check_chat_template
from mslt_it.errors import MsltError, first_line
from mslt_it.files import read_user_text
from mslt_it.prompt_bounds import bounded

# Prefix-preserving: the prompt rendered with add_generation_prompt is exactly the text that
# precedes the answer in the full conversation, as TRL's prompt-completion masking needs. Nothing
# follows the last assistant turn's EOS, so no token after it is trained.
DEFAULT_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '### Assistant:\\n' }}"
    "{%- generation %}{{- message['content'] + eos_token }}{%- endgeneration %}"
    "{%- if not loop.last %}{{- '\\n\\n' }}{%- endif %}"
    "{%- else %}"
    "{{- '### ' + message['role'] | capitalize + ':\\n' + message['content'] + '\\n\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '### Assistant:\\n' }}{%- endif %}"
)
BOS_PREFIX = "{{- bos_token }}"


def default_chat_template(tokenizer: Any) -> str:
    """mslt-it's template, starting with BOS exactly when the tokenizer itself adds one.

    ``apply_chat_template`` adds no special tokens, so a model pre-trained with a BOS (Llama,
    Mistral) needs it in the template, and one pre-trained without (BLOOM, Qwen) must not get it.
    """
    if tokenizer.eos_token is None:
        raise MsltError(
            "model: the tokenizer has no EOS token and no chat template; set model.chat_template "
            "to a template that ends the assistant's turn with a token the model can learn to emit"
        )
    ids = tokenizer("a")["input_ids"]
    adds_bos = tokenizer.bos_token_id is not None and bool(ids) and ids[0] == tokenizer.bos_token_id
    return (BOS_PREFIX if adds_bos else "") + DEFAULT_CHAT_TEMPLATE


CHAT_TEMPLATE_SUFFIXES = (".jinja", ".j2")
"""A ``model.chat_template`` ending so is a file to read; any other value is the template."""

CHAT_TEMPLATE_FILE_BYTES = 4 * MAX_CHAT_TEMPLATE
"""The largest chat template file read: its text within the size any chat template has."""


def resolve_chat_template(tokenizer: Any, override: str | None) -> str:
    """Set and return the template a run trains with.

    ``override``: ``None`` (the tokenizer's own, else the default), ``"default"``, a path to a
    ``.jinja``/``.j2`` file, or a Jinja string.
    """
    if override is None:
        template = tokenizer.chat_template or default_chat_template(tokenizer)
    elif override == "default":
        template = default_chat_template(tokenizer)
    elif override.endswith(CHAT_TEMPLATE_SUFFIXES):
        # a regular file (a FIFO would block), UTF-8, within the size any chat template has
        template = read_user_text(override, "model.chat_template", CHAT_TEMPLATE_FILE_BYTES)
    else:
        template = override
    if isinstance(template, dict):  # a tokenizer shipping named variants: train with the default
        template = template["default"]
    # within the bounds every user template has, before transformers renders it unbounded
    check_chat_template(
        template, tokenizer.special_tokens_map, "model.chat_template", "the chat template"
    )
    tokenizer.chat_template = template
    check_renders(tokenizer)
    return template


PROBE_QUESTION, PROBE_ANSWER = "mslt-it probe question", "mslt-it probe answer"


def check_renders(tokenizer: Any) -> None:
    """Render a probe conversation, so a broken template fails here and not mid-preparation,
    and one that leaves out the user's turn or the answer is named as such: a value that is
    no ``.jinja`` file (``hello``, ``/dev/zero``) is a template of its own text, and failed
    later as "no example is left to train on ... raise --max-length"."""
    probe = [
        {"role": "user", "content": PROBE_QUESTION},
        {"role": "assistant", "content": PROBE_ANSWER},
    ]
    try:
        with bounded():
            rendered = tokenizer.apply_chat_template(probe, tokenize=False)
    except Exception as error:  # jinja2 raises many kinds; all mean the same thing here
        first = first_line(error)
        raise MsltError(f"model.chat_template: the template does not render: {first}") from None
    missing = [part for part in (PROBE_QUESTION, PROBE_ANSWER) if part not in str(rendered)]
    if missing:
        turn = "the user's message" if missing[0] == PROBE_QUESTION else "the assistant's answer"
        raise MsltError(
            f"model.chat_template: the template does not render {turn} (a conversation's messages "
            "are its `messages`); a value that is not a .jinja or .j2 file is read as the "
            "template itself"
        )


def stop_token_ids(tokenizer: Any, model: Any) -> set[int]:
    """Token ids that end generation: the tokenizer's EOS and the model's generation EOS ids.

    Instruct models often end a turn with a token other than the tokenizer's EOS (Llama 3's
    ``<|eot_id|>``); generation stops at any id in the generation config, so any of them counts as
    "the model learnt to stop".
    """
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    generation = getattr(model, "generation_config", None)
    eos = getattr(generation, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    elif isinstance(eos, list | tuple):
        ids.update(int(i) for i in eos)
    return ids


def has_generation_markers(template: str) -> bool:
    """Whether ``{% generation %}`` marks the assistant's tokens (needed for messages data)."""
    from trl.chat_template_utils import has_generation_markers as trl_has_markers

    return bool(trl_has_markers(template))
