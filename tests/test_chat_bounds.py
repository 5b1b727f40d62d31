"""A model's chat template is user code: a bomb is refused in one line, a real one passes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error

from mslt_it import chat_bounds, prompt_bounds
from mslt_it.chat_bounds import CHAT_ENVIRONMENT, check_chat_template
from mslt_it.errors import MsltError
from mslt_it.evaluation.prompting import ChatFormat
from mslt_it.modeling import load_tokenizer

NESTED_LOOPS = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"

LLAMA_LIKE = """{{- bos_token }}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none %}
    {%- for t in tools %}{{- t | tojson(indent=4) }}{%- endfor %}
{%- endif %}
{{- system_message }}{{- "<|eot_id|>" }}
{%- set ns = namespace(turns=0) %}
{%- for message in messages %}
    {%- if message['role'] not in ['user', 'assistant'] %}
        {{- raise_exception('roles must be user or assistant') }}
    {%- endif %}
    {%- set ns.turns = ns.turns + 1 %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}
    {%- if message['role'] == 'assistant' %}{% generation %}
    {{- message['content'] | trim + '<|eot_id|>' }}{% endgeneration %}
    {%- else %}{{- message['content'] | trim + '<|eot_id|>' }}{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""


@pytest.fixture(autouse=True)
def short_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Half a second instead of five, and no verdict cached from another test."""
    monkeypatch.setattr(prompt_bounds, "RENDER_SECONDS", 0.5)
    chat_bounds._bound_broken.cache_clear()


def model_with_template(source: Path, target: Path, template: str) -> Path:
    shutil.copytree(source, target)
    (target / "chat_template.jinja").write_text(template)
    return target


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        (NESTED_LOOPS + "x", "took longer than the limit"),
        ("{{ 'x' * 10**10 }}", "exceeds 10,000,000"),
        ("{% for m in messages %}{{ m['content'] | center(10**7) }}{% endfor %}", "exceeds"),
        ("{{ 'x' * 600000 ~ 'x' * 600000 }}", "at most 1,000,000"),
    ],
)
def test_a_chat_template_that_breaks_a_bound_is_refused(template: str, reason: str) -> None:
    with pytest.raises(MsltError) as caught:
        check_chat_template(template, {"bos_token": "<s>"}, "model")
    message = str(caught.value)
    assert message.startswith("model: its chat template breaks a bound") and reason in message
    assert "\n" not in message


def test_real_templates_pass_and_render_as_transformers_does(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(str(tiny_model_dir))
    for template in (tokenizer.chat_template, LLAMA_LIKE):
        check_chat_template(template, tokenizer.special_tokens_map, "model")  # no error
        for messages, add_generation_prompt in chat_bounds.PROBES:
            ours = CHAT_ENVIRONMENT.from_string(template).render(
                messages=messages,
                add_generation_prompt=add_generation_prompt,
                tools=None,
                documents=None,
                date_string="1 Jan 2026",
                **tokenizer.special_tokens_map,
            )
            theirs = tokenizer.apply_chat_template(
                messages,
                chat_template=template,
                add_generation_prompt=add_generation_prompt,
                tokenize=False,
                date_string="1 Jan 2026",
            )
            assert ours == theirs


def test_a_template_that_refuses_a_probe_is_left_to_transformers() -> None:
    check_chat_template("{{ raise_exception('no system turn, please') }}", {}, "model")


def test_a_chat_template_that_does_not_parse_is_one_line(
    cli, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """transformers parses it only when rendering, where ``analyze --chat-template`` met its
    TemplateSyntaxError as an internal error."""
    with pytest.raises(MsltError, match=r"^model: its chat template is not a valid Jinja .*line 1"):
        check_chat_template("{% if %}", {}, "model")
    model = model_with_template(tiny_model_dir, tmp_path / "model", "{% for %}")
    result = cli("analyze", "--model", model, "--langs", "en,de", "--n", "4", "--chat-template",
                 "--out", tmp_path / "an")  # fmt: skip
    assert_one_line_error(result, "--model: its chat template is not a valid Jinja template")


def test_a_template_that_loops_only_on_real_rows_is_stopped_when_rendered(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    tokenizer = load_tokenizer(str(tiny_model_dir))
    template = (
        "{% if 'cat' in messages[-1]['content'] %}" + NESTED_LOOPS + "{% endif %}"
        "{{ messages[-1]['content'] }}"
    )
    chat = ChatFormat(tokenizer, template, None)  # passes the check on the probes
    with pytest.raises(MsltError, match=r"^chat template: cannot render a prompt: .*limit"):
        chat.prompt_text("Premise: the cat sat.")


def test_eval_refuses_a_model_whose_chat_template_is_a_bomb(
    cli, tiny_model_dir: Path, tmp_path: Path
) -> None:
    model = model_with_template(tiny_model_dir, tmp_path / "model", "{{ 'x' * 10**10 }}")
    result = cli(
        "eval", "--model", model, "--suite", "xnli", "--data", "synthetic",
        "--limit", "1", "--langs", "en", "--out", tmp_path / "out",
    )  # fmt: skip
    assert_one_line_error(result, "model: its chat template breaks a bound", "10 ** 10")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["build", "run"])
def test_a_recipes_tokenizer_is_named_by_its_recipe_field(
    cli, tiny_model_dir: Path, tmp_path: Path, command: str
) -> None:
    """A build's token counter named its tokenizer ``--tokenizer``, an option the user of a
    recipe never typed; the recipe and its ``data.tokenizer`` are named, as for its other
    values."""
    broken = "{% for m in messages %}{{ m.missing.field }}{% endfor %}"  # real rows only
    tokenizer = model_with_template(tiny_model_dir, tmp_path / "tok", broken)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: r\ndata: {task: xnli, budget: 8, data: synthetic, tokenizer: "
        f"{tokenizer}}}\nsources: [[en]]\nmodel: {{name_or_path: {tiny_model_dir}}}\n"
        "train: {sft: {max_steps: 1}}\neval: {task: xnli, langs: [en], limit: 2}\n"
    )
    if command == "build":
        result = cli("build", "--recipe", recipe, "--sources", "en", "--out", tmp_path / "ds")
    else:
        result = cli("run", recipe, "--out", tmp_path / "ex")
    assert_one_line_error(result, f"{recipe}: data.tokenizer: the chat template")
    typed = cli("build", "--recipe", recipe, "--sources", "en", "--tokenizer", tokenizer,
                "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(typed, "--tokenizer: the chat template")


def test_a_bad_config_is_named_as_the_config_not_as_the_tokenizer(tiny_model_dir, tmp_path):
    """A tokenizer reads the model's config: ``hidden_size: -5`` was said as "cannot load a
    tokenizer", sending the user to the tokenizer's files."""
    import json

    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "hidden_size": -5}))
    with pytest.raises(MsltError, match=r"--model: cannot load the config from .*hidden size"):
        load_tokenizer(str(model), field="--model")
    (model / "config.json").write_text(json.dumps(config))
    (model / "tokenizer.json").write_text("{")
    with pytest.raises(MsltError, match=r"--model: cannot load a tokenizer from"):
        load_tokenizer(str(model), field="--model")
