"""Token statistics in the manifest: exact per language, whatever thread counted them."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from conftest import assert_one_line_error
from transformers import AutoTokenizer

from mslt_it.config import DataConfig
from mslt_it.data import build_dataset
from mslt_it.errors import MsltError
from mslt_it.tokens import (
    chat_texts,
    fast_chat_template,
    inline_safe,
    length_statistics,
    token_lengths,
)


def transformers_lengths(tokenizer, conversations: list) -> list[int]:
    """Counts through transformers' own path, one text at a time: the reference."""
    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
    return [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]


def test_manifest_counts_equal_transformers_counts_per_language(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    config = DataConfig(
        task="xnli",
        sources=["zh", "en", "hi"],
        budget=240,
        tokenizer=str(tiny_model_dir),
        max_length=64,
    )
    manifest = build_dataset(config, tmp_path / "ds").manifest
    rows = list(datasets.load_from_disk(str(tmp_path / "ds")))
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    for lang in ("zh", "en", "hi"):
        mine = [r["prompt"] + r["completion"] for r in rows if r["lang"] == lang]
        expected = length_statistics(transformers_lengths(tokenizer, mine), 64)
        assert manifest["tokens"]["per_language"][lang] == expected
    written = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert written["tokens"] == manifest["tokens"]
    means = [manifest["tokens"]["per_language"][lang]["mean"] for lang in ("zh", "en", "hi")]
    assert len(set(means)) == 3  # the languages were not mixed up into one count


def test_a_tokenizer_saved_with_truncation_still_gives_full_lengths(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    tokenizer.backend_tokenizer.enable_truncation(max_length=4)
    texts = ["a fairly long sentence with many more than four tokens in it", "short"]
    lengths = token_lengths(texts, tokenizer)
    assert tokenizer.backend_tokenizer.truncation is not None  # the caller's tokenizer untouched
    # transformers switches the backend's truncation off per call: the reference count
    expected = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert lengths == expected and lengths[0] > 4


def test_length_statistics_of_no_examples() -> None:
    assert length_statistics([], 8) == {"total": 0, "mean": 0.0, "max": 0, "over_max_length": 0}
    assert length_statistics([3, 9, 8], 8) == {
        "total": 20,
        "mean": 6.67,
        "max": 9,
        "over_max_length": 1,
    }


def test_a_missing_tokenizer_is_one_line_and_leaves_nothing(cli, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = cli(
        "build", "--task", "xnli", "--data", "synthetic", "--sources", "en", "--budget", "30",
        "--tokenizer", tmp_path / "nowhere", "--out", out,
    )  # fmt: skip
    assert_one_line_error(result, "tokenizer")
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("mslt-it:tny", "'mslt-it:tny' is not one of mslt-it's models (mslt-it:tiny"),
        ("a b", "'a b' is neither a folder here nor a Hub id (org/name)"),
    ],
)
def test_a_tokenizer_name_that_is_no_hub_id_is_said_to_be(cli, tmp_path, name, said) -> None:
    """The Hub's own words ("Repo id must use alphanumeric chars …") answered a name that is
    neither a folder nor a Hub id, and mslt-it's own names, which select and report read as
    their models' tokenizers, were refused by build."""
    build = ("build", "--task", "xnli", "--sources", "en", "--budget", "4", "--tokenizer")
    assert_one_line_error(cli(*build, name, "--out", tmp_path / "ds"), "tokenizer:", said)
    result = cli(*build, "mslt-it:tiny", "--out", tmp_path / "named")
    assert result.code == 0, result.err
    assert json.loads((tmp_path / "named" / "manifest.json").read_text())["tokens"]["per_language"]


def test_a_model_folder_without_its_tokenizer_is_named(cli, tmp_path, tiny_model_dir) -> None:
    """A model's folder of weights and config alone: transformers tried to convert a tokenizer
    and said "You need to have sentencepiece or tiktoken installed to convert a slow tokenizer
    to a", cut mid-sentence, in build, select, train and a recipe's run."""
    import shutil

    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, bare / name)
    result = cli("build", "--task", "xnli", "--sources", "en", "--budget", "4",
                 "--tokenizer", bare, "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, "tokenizer:", "holds no tokenizer (tokenizer.json")
    made = cli("build", "--task", "xnli", "--sources", "en", "--budget", "4",
               "--out", tmp_path / "data")  # fmt: skip
    assert made.code == 0, made.err
    trained = cli("train", "--dataset", tmp_path / "data", "--model", bare,
                  "--out", tmp_path / "ad", "--max-steps", "1")  # fmt: skip
    assert_one_line_error(trained, "--model:", "holds no tokenizer")


GENERATION = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'assistant' %}<A>{% generation %}"
    "{{ m['content'] | trim }}{{ eos_token }}{% endgeneration %}\n{% else %}<{{ m['role'] }}>"
    "{{ m['content'] }}\n{% endif %}{% endfor %}"
)
TEMPLATES = {
    "generation inline": GENERATION,
    "set inside generation": GENERATION.replace(
        "{% generation %}", "{% generation %}{% set n = m['content'] | length %}{{ n }}"
    ),
    "loop inside generation": GENERATION.replace(
        "{% generation %}", "{% generation %}{{ loop.index }}"
    ),
    "namespace and no generation": (
        "{% set ns = namespace(system='') %}{% for m in messages %}{% if m['role'] == 'system' %}"
        "{% set ns.system = m['content'] %}{% else %}[{{ ns.system }}|{{ m['role'] }}] "
        "{{ m['content'] }}\n{% endif %}{% endfor %}{% if add_generation_prompt %}[A]{% endif %}"
    ),
    "trailing newline and whitespace control": (
        "  {%- for m in messages -%}\n {{ m.content }} {%- endfor %}\n"
    ),
}
CONVERSATIONS = [
    [{"role": "user", "content": "Hi  "}, {"role": "assistant", "content": " there\n"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": ""},
    ],
]


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_chat_texts_are_transformers_texts(name: str, tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    tokenizer.chat_template = TEMPLATES[name]
    examples = [{"messages": c} for c in CONVERSATIONS * 3]
    expected = tokenizer.apply_chat_template([e["messages"] for e in examples], tokenize=False)
    assert chat_texts(examples, tokenizer, "--tokenizer") == expected
    assert fast_chat_template(TEMPLATES[name]) is not None  # the fast path was the one taken


def test_inline_generation_only_where_the_text_cannot_differ() -> None:
    from transformers.utils.chat_template_utils import _compile_jinja_template

    environment = _compile_jinja_template(GENERATION).environment
    assert inline_safe(environment.parse(TEMPLATES["generation inline"]))
    assert not inline_safe(environment.parse(TEMPLATES["set inside generation"]))
    assert not inline_safe(environment.parse(TEMPLATES["loop inside generation"]))


def test_the_tiny_models_template_counts_as_transformers_does(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    examples = [{"prompt": c[:-1], "completion": c[-1:]} for c in CONVERSATIONS]
    expected = tokenizer.apply_chat_template([e["prompt"] + e["completion"] for e in examples],
                                             tokenize=False)  # fmt: skip
    assert chat_texts(examples, tokenizer, "--tokenizer") == expected


def test_a_template_that_refuses_a_conversation_raises_as_transformers_does(
    tiny_model_dir: Path,
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('no system role') }}{% endif %}{{ m['content'] }}{% endfor %}"
    )
    with pytest.raises(MsltError, match=r"--tokenizer: the chat template: .*no system role"):
        chat_texts([{"messages": CONVERSATIONS[1]}], tokenizer, "--tokenizer")
    texts = chat_texts([{"messages": CONVERSATIONS[0]}], tokenizer, "--tokenizer")
    assert texts == ["Hi   there\n"]


LOOP = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"


@pytest.mark.parametrize(
    ("template", "said"),
    [
        (LOOP + "{% for m in messages %}{{ m['content'] }}{% endfor %}", "breaks a bound"),
        (  # past the probes (short conversations): loops only on a real row
            "{% if (messages | map(attribute='content') | join) | length > 80 %}"
            + LOOP
            + "{% endif %}{% for m in messages %}{{ m['content'] }}{% endfor %}",
            "--tokenizer: the chat template: cannot render a prompt: the evaluation took longer",
        ),
        (  # memory, not time: each row renders fast (a billion characters killed the process)
            "{% if (messages | map(attribute='content') | join) | length > 80 %}"
            "{{ 'x' * (2000 * 1000) }}{% endif %}{% for m in messages %}{{ m['content'] }}"
            "{% endfor %}",
            "--tokenizer: the chat template: cannot render a prompt: a repetition would build",
        ),
    ],
)
def test_a_chat_template_that_loops_stops_a_build_in_one_line(
    cli, tmp_path: Path, tiny_model_dir: Path, monkeypatch, template: str, said: str
) -> None:
    """The tokenizer was loaded, and its template checked, on the token counter's thread, where
    the render time limit does not hold, and every text rendered without it: a build hung for
    ever, and SIGTERM did not stop it (the main thread waited on the counter's thread)."""
    import shutil

    monkeypatch.setattr("mslt_it.prompt_bounds.RENDER_SECONDS", 0.5)
    folder = tmp_path / "tok"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, folder / name)
    (folder / "chat_template.jinja").write_text(template, encoding="utf-8")
    result = cli("build", "--task", "xnli", "--sources", "en", "--budget", "4",
                 "--tokenizer", folder, "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, said)
    assert not (tmp_path / "ds").exists()


def test_training_lengths_time_the_template_not_the_tokenizer(
    tiny_model_dir: Path, monkeypatch
) -> None:
    """The time limit covered the tokenizing of a whole batch of 512 rows: long rows (23k
    characters) stopped training, blaming the chat template. Each row's render is timed."""
    import time

    from mslt_it.training.checks import token_lengths

    monkeypatch.setattr("mslt_it.prompt_bounds.RENDER_SECONDS", 0.05)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    original = tokenizer.apply_chat_template

    def slow(*args, **kwargs):  # a tokenizer slower than the limit on a batch
        if kwargs.get("tokenize"):
            time.sleep(0.2)
        return original(*args, **kwargs)

    monkeypatch.setattr(tokenizer, "apply_chat_template", slow)
    rows = [{"prompt": [{"role": "user", "content": f"q{i}"}],
             "completion": [{"role": "assistant", "content": "a"}]} for i in range(4)]  # fmt: skip
    assert len(token_lengths(datasets.Dataset.from_list(rows), tokenizer)) == 4
