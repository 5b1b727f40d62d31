"""A model's chat template is user code too: checked within the bounds prompt templates have.

A chat template comes with a model folder (``chat_template.jinja``, ``tokenizer_config.json``)
or an adapter's ``run.json``, often from the Hub, and transformers renders it in Jinja's plain
sandbox: no bound on time, output or arithmetic, so ``{% for i in range(99999) %}{% for j in
range(99999) %}…`` hangs every command that uses the model, and ``{{ 'x' * 10**10 }}`` exhausts
memory. :func:`check_chat_template` compiles the same source in :class:`BoundedSandbox`, set up
as transformers sets up its environment (trimmed blocks, ``loopcontrols``, ``{% generation %}``,
its ``tojson``, ``raise_exception`` and ``strftime_now``), and renders it on a few short
conversations within every bound. A template that breaks a bound there is refused in one line
before transformers renders it. A template that raises on a probe (``raise_exception('roles
must alternate')``) or uses something the check does not know is left to transformers, which
gives its own error when the real conversation comes.

A template can still branch on a message's text to break a bound only for some rows, which
no probe shows. So every real conversation is rendered here too, in the same bounded sandbox
(:func:`bounded_chat_texts`: time, output and arithmetic), before transformers (or TRL)
renders it unbounded, and transformers' own render runs within the time limit
(:func:`bounded_call`, main thread). A build, a training, an evaluation and an analysis all
render through these.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

import jinja2
import jinja2.ext
from jinja2.ext import Extension

from mslt_it.errors import MsltError, first_line
from mslt_it.prompt_bounds import (
    BoundedSandbox,
    RenderLimitError,
    bounded,
    bounded_filter,
    bounded_render,
    check_literals,
    describe,
)

MAX_CHAT_TEMPLATE = 1_000_000
"""Longest chat template source, in characters (real ones are a few thousand)."""

T = TypeVar("T")


class InlineGeneration(Extension):
    """``{% generation %}…{% endgeneration %}`` as its body alone.

    transformers' own extension wraps the body in a macro call so it can record where the
    assistant's tokens are (for an assistant-only loss); when nothing records them the call
    returns the body's text unchanged, so the body rendered in place gives the same text.
    """

    tags = {"generation"}  # noqa: RUF012 (Jinja's Extension declares it as a class attribute)
    priority = 1000  # after transformers' extension, so this one parses the tag

    def parse(self, parser: Any) -> list[Any]:
        next(parser.stream)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _raise_exception(message: str) -> None:
    raise jinja2.TemplateError(message)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: Any = None,
    separators: Any = None,
    sort_keys: bool = False,
) -> str:
    """transformers' ``tojson`` (no HTML escaping, its options)."""
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _environment() -> BoundedSandbox:
    environment = BoundedSandbox(
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        extensions=[InlineGeneration, jinja2.ext.loopcontrols],
    )
    environment.filters["tojson"] = bounded_filter("tojson", _tojson)
    environment.globals["raise_exception"] = _raise_exception
    environment.globals["strftime_now"] = lambda fmt: datetime(2026, 1, 1).strftime(str(fmt)[:100])
    return environment


CHAT_ENVIRONMENT = _environment()
"""Where chat templates are checked: :class:`BoundedSandbox` set up as transformers' is."""

PROBES: tuple[tuple[list[dict[str, str]], bool], ...] = (
    ([{"role": "user", "content": "Premise: a. Hypothesis: b."}], True),
    (
        [
            {"role": "system", "content": "Answer with one word."},
            {"role": "user", "content": "Premise: a. Hypothesis: b."},
        ],
        True,
    ),
    (
        [
            {"role": "user", "content": "Premise: a. Hypothesis: b."},
            {"role": "assistant", "content": "yes"},
        ],
        False,
    ),
)
"""Short conversations as mslt-it writes them (a system turn when a run has one), with and
without the generation prompt."""


def check_chat_template(
    source: Any, special_tokens: dict[str, Any], field: str, what: str = "its chat template"
) -> None:
    """Refuse, in one line naming ``field`` (``what`` names the template after it), a chat
    template that breaks a bound on :data:`PROBES`; anything else is left to transformers
    (see the module's docstring)."""
    if not isinstance(source, str):
        return  # none, or several named templates: transformers chooses and checks
    if len(source) > MAX_CHAT_TEMPLATE:
        raise MsltError(
            f"{field}: {what} has {len(source):,} characters; at most "
            f"{MAX_CHAT_TEMPLATE:,} are read"
        )
    wrong = chat_syntax_error(source)
    if wrong is not None:  # transformers' environment parses as this one: it would fail there
        raise MsltError(f"{field}: {what} is not a valid Jinja template ({wrong})")
    reason = _bound_broken(source, tuple(sorted((k, str(v)) for k, v in special_tokens.items())))
    if reason is not None:
        raise MsltError(
            f"{field}: {what} breaks a bound on a short conversation ({reason}); "
            "mslt-it renders no such template"
        )


@lru_cache(maxsize=16)
def chat_syntax_error(source: str) -> str | None:
    """Where and why ``source`` does not parse, or None; a template that fails to parse fails
    on every conversation, as an internal error inside transformers."""
    try:
        CHAT_ENVIRONMENT.parse(source)
    except jinja2.TemplateSyntaxError as error:
        return f"line {error.lineno}: {first_line(error.message or str(error))}"
    return None


@lru_cache(maxsize=16)
def _bound_broken(source: str, special_tokens: tuple[tuple[str, str], ...]) -> str | None:
    """The bound ``source`` breaks on a probe, or None (cached: a model is loaded many times)."""
    try:
        check_literals(CHAT_ENVIRONMENT, source)
        template = chat_template_of(source)
    except RenderLimitError as error:
        return describe(error)
    except Exception:  # a syntax error, or something this check does not know
        return None
    for messages, add_generation_prompt in PROBES:
        variables = {
            **dict(special_tokens),
            "messages": messages,
            "add_generation_prompt": add_generation_prompt,
            "tools": None,
            "documents": None,
        }
        try:
            bounded_render(template, variables)
        except RenderLimitError as error:
            return describe(error)
        except Exception:  # the template refused the probe, or transformers' rules differ
            continue
    return None


def bounded_call(what: str, call: Callable[[], T], timed: bool = True) -> T:
    """``call()`` (transformers rendering a chat template) within the render time limit, with
    a one-line error naming ``what`` when it runs past it or fails. ``timed=False`` for a call
    that also tokenizes a batch (its time is the tokenizer's, not the template's), once each
    of its conversations rendered within every bound (:func:`bounded_chat_texts`)."""
    try:
        if not timed:
            return call()
        with bounded():
            return call()
    except MsltError:
        raise
    except Exception as error:  # a Jinja error in the template, or the limit
        raise MsltError(f"{what}: cannot render a prompt: {describe(error)}") from None


LONG_ROW = 100_000
"""Characters of a conversation above which a bound it breaks names its size: a row of a
million characters breaks the output bound whatever the template (a long-context corpus)."""


def template_source(tokenizer: Any) -> Any:
    """The chat template transformers renders by default (of several named ones, the default)."""
    try:
        return tokenizer.get_chat_template()
    except Exception:  # none, or no default among named ones: transformers says so itself
        return getattr(tokenizer, "chat_template", None)


@lru_cache(maxsize=16)
def _bounded_template(source: str) -> jinja2.Template | None:
    try:
        return chat_template_of(source)
    except Exception:  # a syntax the check refused already, or one it does not know
        return None


def chat_template_of(source: str) -> jinja2.Template:
    """``source`` compiled in :data:`CHAT_ENVIRONMENT`, its globals one plain dict (as
    :func:`mslt_it.prompts._compile` keeps a prompt template's): Jinja keeps them as a
    ``ChainMap`` and merges it key by key into every render's context, which took half of a
    corpus build's per-example chat render."""
    template = CHAT_ENVIRONMENT.from_string(source)
    template.globals = dict(template.globals)
    return template


def bounded_chat_texts(
    source: Any,
    special_tokens: dict[str, Any],
    conversations: list[list[dict[str, Any]]],
    add_generation_prompt: bool,
    what: str,
) -> list[str | None]:
    """Each conversation rendered with the chat template ``source`` in
    :data:`CHAT_ENVIRONMENT`, within every bound, as transformers renders it (``None`` where
    the template raised, or used something this environment does not know: transformers
    decides those). A bound broken is one line naming ``what``: a template writing
    ``'x' * (30000 * 10000)`` only for long rows had a build killed for its memory."""
    template = _bounded_template(source) if isinstance(source, str) else None
    if template is None:
        return [None] * len(conversations)
    variables = {
        **special_tokens,
        "add_generation_prompt": add_generation_prompt,
        "tools": None,
        "documents": None,
    }
    texts: list[str | None] = []
    for conversation in conversations:
        try:
            texts.append(bounded_render(template, {**variables, "messages": conversation}))
        except RenderLimitError as error:
            size = sum(len(str(turn.get("content", ""))) for turn in conversation)
            row = f" (the row itself holds {size:,} characters)" if size > LONG_ROW else ""
            raise MsltError(f"{what}: cannot render a prompt{row}: {describe(error)}") from None
        except Exception:  # raise_exception(...), or transformers' rules differ
            texts.append(None)
    return texts


def render_chat(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    what: str,
    add_generation_prompt: bool,
    chat_template: str | None = None,
) -> str:
    """transformers' text of one conversation (``chat_template``, else the tokenizer's), once
    rendered within every bound (:func:`bounded_chat_texts`), and within the time limit itself
    (:func:`bounded_call`); one line naming ``what`` when it breaks one or fails."""
    source = chat_template if chat_template is not None else template_source(tokenizer)
    special = tokenizer.special_tokens_map
    bounded_chat_texts(source, special, [messages], add_generation_prompt, what)
    return bounded_call(
        what,
        lambda: tokenizer.apply_chat_template(
            messages,
            chat_template=chat_template,
            add_generation_prompt=add_generation_prompt,
            tokenize=False,
        ),
    )
