"""Hostile task definitions, templates and expressions: a one-line error, never a hang or crash.

Each case is a class from issue 22: unbounded work in a definition's expressions (one bounded
evaluator for templates and definitions), a ``hub.config`` format spec, degenerate label sets
and gold values, errors blamed on the wrong file, and user files that are not regular files.
The property tests generate definitions and expressions and hold the promise: it loads, or it
raises :class:`MsltError` whose message is one line, within the bounds' time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import assert_one_line_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mslt_it.prompt_bounds as bounds
from mslt_it.errors import MsltError
from mslt_it.prompt_bounds import ENVIRONMENT, RenderLimitError, compile_bounded_expression
from mslt_it.tasks import reset_tasks_dirs
from mslt_it.tasks.definitions import forget_definitions, parse_definition
from mslt_it.tasks.expressions import NotPlain, plain_expression

REPO = Path(__file__).resolve().parent.parent

CLASSIFICATION = """\
name: {name}
title: T
kind: classification
splits: [train, test]
languages: [en, de]
columns: [text, label]
labels: [good, bad]
label_column: label
"""

MULTIPLE_CHOICE = """\
name: {name}
title: T
kind: multiple_choice
splits: [test]
languages: [en]
columns: [q, a, b, answer]
labels: [A, B]
choices: "[row.a, row.b]"
"""

CORPUS = """\
name: {name}
title: T
kind: instructions
splits: [train]
languages: [en]
columns: [text, out]
answer: row.out
metric: exact_match
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text.replace("{name}", name))
    return path


def one_line_error(path: Path, *fragments: str) -> str:
    """Parse ``path``; it must fail with a one-line MsltError naming the file and fragments."""
    with pytest.raises(MsltError) as caught:
        parse_definition(path)
    message = str(caught.value)
    assert "\n" not in message and message.strip(), message
    for fragment in (path.name, *fragments):
        assert fragment in message, (fragment, message)
    return message


@pytest.fixture(autouse=True)
def _fresh_task_folders():
    reset_tasks_dirs()
    forget_definitions()
    yield
    reset_tasks_dirs()
    forget_definitions()


# ------------------------------------------------------------------- 1. unbounded expressions


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("row.text | center(9999999)", "center: the width 9,999,999"),
        ("row.text | wordwrap(1, wrapstring='x' * 999999)", "wordwrap would build"),
        ("((row.text ~ '\\n') * 100000) | indent(100)", "indent would build"),
        ("row.text.ljust(5000000)", "str.ljust: the width"),
        ("'{:>{}}'.format(row.text, 9999999)", "str.format: the width"),
        ("('y' * 1000000).join(row.text * 100000)", "str.join would build"),
        ("(row.text * 200000) | replace('t', 'tttttt')", "replace would build"),
        ("([row.text] * 1000) | join('y' * 5000)", "join would build"),
        ("([row.text * 200000] * 1000) | join", "a repetition would build"),
        ("[[[row.text * 100000] * 5] * 5] * 5", "as text"),
        ("'%*d' % (9999999, 1)", "a computed value has"),
        ("[1] | batch(9999999, 0) | list", "batch: the width"),
        ("range(99999) | map('string') | map('center', 999) | list | length", "in all"),
        ("(row.text * 200000) ~ (row.text * 200000)", "'~' would build"),
        ("(row.text * 200000) + (row.text * 200000)", "'+' would build"),
        ("row.text | center(10**9)", "10 ** 9"),
        ("row.text | tojson(indent=100000)", "tojson: the indent"),
        ("'\\\\x00' ~ row.text", "a string literal holds a NUL"),
        ("'%c' % 0 ~ row.text", "made a NUL character the data does not hold"),
        ("'{:c}'.format(0)", "made a NUL character the data does not hold"),
        ("row.text.upper ~ ''", "turns a Python object"),
        ("row.text ~ [1, 2] | reverse | string", "turns a Python object"),
        ("(row.text.upper | string)[30:]", "turns a Python object"),
    ],
)
def test_a_heavy_definition_expression_is_a_one_line_error_at_load(
    tmp_path: Path, expression: str, fragment: str
) -> None:
    quoted = expression.replace('"', '\\"')
    path = write(tmp_path, "heavy", CLASSIFICATION + f'variables: {{v: "{quoted}"}}\n')
    started = time.monotonic()
    message = one_line_error(path, "variables.v", fragment)
    assert "stand-in" not in message  # a bound is the expression's fault on any row
    assert time.monotonic() - started < 20


def test_a_nul_in_the_data_passes_through_as_any_character() -> None:
    """Only a NUL the expression makes is refused: one in a row is the data's own."""
    from mslt_it.tasks.compile import compile_variables

    variables = compile_variables({"v": "row.text ~ '!'", "w": "row.text | upper"}, "t.yaml")
    assert variables({"text": "a\0b"}) == {"v": "a\0b!", "w": "A\0B"}
    made = compile_variables({"v": "row.text ~ ('%c' % 0)"}, "t.yaml")
    with pytest.raises(MsltError, match="made a NUL"):
        made({"text": "ab"})


@pytest.mark.parametrize("text", ["banana", "2.9", "", "two"])
def test_int_and_float_refuse_text_that_is_not_a_number(text: str) -> None:
    """Jinja's ``int`` read ``'banana'`` as 0 and ``'2.9'`` as 2: a gold index nobody wrote.
    Numbers, and text that is one, are read as before; a default keeps Jinja's fallback."""
    from mslt_it.tasks.compile import compile_variables

    variables = compile_variables(
        {"gold": "row.ans | int - 1", "weight": "row.w | float", "kept": "row.ans | int(-1)"},
        "t.yaml",
    )
    assert variables({"ans": " 3 ", "w": "0.5"}) == {"gold": 2, "weight": 0.5, "kept": 3}
    assert variables({"ans": 2, "w": 1})["gold"] == 1
    with pytest.raises(MsltError, match=f"int: {text!r} is not a whole number") as caught:
        variables({"ans": text, "w": "1"})
    assert "gold" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(MsltError, match="float: 'x' is not a number"):
        variables({"ans": "1", "w": "x"})
    assert variables({"ans": 3.0, "w": 1})["gold"] == 2  # a whole number written as 3.0
    for number in (1.9, True, float("nan")):
        with pytest.raises(MsltError, match="is not a whole number"):
            variables({"ans": number, "w": 1})


def test_a_template_that_makes_a_nul_is_refused_at_load(tmp_path: Path) -> None:
    from mslt_it.prompts import get_template

    folder = tmp_path / "prompts" / "xnli"
    folder.mkdir(parents=True)
    (folder / "nul.yaml").write_text(
        "id: xnli/nul\ntask: xnli\ndescription: d\n"
        'instruction: "{{ premise }}{{ \'%c\' % 0 }}"\nanswer: "{{ label_word }}"\n'
        "verbalizers: {entailment: a, neutral: b, contradiction: c}\n",
        encoding="utf-8",
    )
    with pytest.raises(MsltError, match="made a NUL") as caught:
        get_template("xnli/nul", [tmp_path / "prompts"])
    assert "\n" not in str(caught.value)


def test_an_instruction_corpus_prompt_runs_under_the_same_bounds(tmp_path: Path) -> None:
    path = write(tmp_path, "corpus", CORPUS + 'prompt: "row.text | center(5000000)"\n')
    one_line_error(path, "prompt: center: the width")


def test_a_slow_expression_stops_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bounds, "RENDER_SECONDS", 0.3)
    slow = "range(99999) | map('string') | map('wordwrap', 1) | map('wordwrap', 1) | list | length"
    evaluate = compile_bounded_expression(f"{slow} + {slow} + {slow} + {slow} + {slow}")
    started = time.monotonic()
    with pytest.raises(RenderLimitError, match="longer than the limit"):
        for _ in range(100):
            evaluate(row={})
    assert time.monotonic() - started < 10


def test_a_memory_error_is_named_not_an_empty_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exhausted(value: object, *args: object) -> str:
        raise MemoryError

    monkeypatch.setitem(ENVIRONMENT.filters, "exhaust", exhausted)
    path = write(tmp_path, "memory", CLASSIFICATION + 'variables: {v: "row.text | exhaust"}\n')
    one_line_error(path, "variables.v: ran out of memory (MemoryError)")


def test_templates_and_definitions_share_one_bounded_environment() -> None:
    import mslt_it.prompts as prompts

    assert prompts._ENVIRONMENT is ENVIRONMENT
    template = ENVIRONMENT.from_string("{{ 'x' | center(5000000) }}")
    with pytest.raises(RenderLimitError, match="center"):
        bounds.bounded_render(template, {})


def test_ordinary_expressions_still_give_jinjas_result() -> None:
    cases = {
        "'{:>5}'.format(row.a)": "    x",
        "row.a | center(5)": "  x  ",
        "[row.a, row.b] | join(', ')": "x, y",
        "row.a ~ '-' ~ row.b": "x-y",
        "row.a + row.b": "xy",
        "'%03d' % 7": "007",
        "(row.a * 3) | replace('x', 'ab')": "ababab",
        "row.a | indent(2, first=True)": "  x",
        "'a b c' | wordwrap(1)": "a\nb\nc",
    }
    for expression, expected in cases.items():
        assert compile_bounded_expression(expression)(row={"a": "x", "b": "y"}) == expected


@pytest.mark.parametrize(
    "expression", ["row.a ~ row.b", "row.a + row.b", "(row.a ~ row.b) | trim", "row.a + ' '"]
)
def test_the_plain_path_leaves_an_over_long_join_to_jinja(expression: str) -> None:
    plain = plain_expression(ENVIRONMENT, expression)
    assert plain is not None
    jinja = compile_bounded_expression(expression)
    small = {"a": "x ", "b": "y"}
    assert plain(small) == jinja(row=small)
    big = {"a": "x" * 600_000, "b": "y" * 600_000 if "row.b" in expression else ""}
    if "row.b" not in expression:
        big["a"] = "x" * bounds.MAX_CHARACTERS
    with pytest.raises(NotPlain):
        plain(big)
    with pytest.raises(RenderLimitError):
        jinja(row=big)


# ----------------------------------------------------------------------------- 2. hub.config


@pytest.mark.parametrize(
    "config", ["{lang:>5000000000}", "{lang!r}", "{lang.upper}", "{other}", "{0}", "{lang", "{}"]
)
def test_a_hub_config_allows_only_a_bare_lang_field(tmp_path: Path, config: str) -> None:
    text = CLASSIFICATION + f"hub: {{id: x/y, config: '{config}'}}\n"
    path = write(tmp_path, "hub", text)
    one_line_error(path, "hub.config", "only {lang}")


@pytest.mark.parametrize(
    "hub_id", ["/tmp/data", "../../etc", "./x", "a/b/c", "x/../y", "~/data", "a b/c"]
)
def test_a_hub_id_is_never_a_local_path(tmp_path: Path, hub_id: str) -> None:
    """`datasets` reads a local folder given as an id, past mslt-it's file checks."""
    path = write(tmp_path, "hub", CLASSIFICATION + f"hub: {{id: {hub_id!r}}}\n")
    one_line_error(path, "hub.id", "not a Hub dataset id")


@pytest.mark.parametrize(
    ("splits", "said"),
    [
        ("[train, ../../../outside]", "not a split name"),
        ("[train, /etc/passwd]", "not a split name"),
        ("[train, .hidden]", "not a split name"),
        (f"[train, {'s' * 300}]", "not a split name"),
        ("[train, test, test]", "'test' is listed twice"),
    ],
)
def test_split_names_cannot_leave_the_data_folder(tmp_path: Path, splits: str, said: str) -> None:
    """A split names a file (DIR/<task>/<lang>/<split>.jsonl): `../..` read outside `--data`."""
    text = CLASSIFICATION.replace("splits: [train, test]", f"splits: {splits}")
    one_line_error(write(tmp_path, "splits", text), "splits", said)


def test_a_column_listed_twice_is_refused(tmp_path: Path) -> None:
    text = CLASSIFICATION.replace("columns: [text, label]", "columns: [text, label, text]")
    one_line_error(write(tmp_path, "cols", text), "columns", "'text' is listed twice")


def test_a_plain_hub_config_and_literal_braces_work(tmp_path: Path) -> None:
    path = write(tmp_path, "hub", CLASSIFICATION + "hub: {id: x/y, config: 'c_{lang}_{{x}}'}\n")
    assert parse_definition(path).hub_config("de") == "c_de_{x}"


# ------------------------------------------------------------------- 3. degenerate definitions


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ("[a, a]", "names 'a' twice"),
        ("[a]", "at least two distinct"),
        ("[a, b, a]", "names 'a' twice"),
        ("['a', ' ']", "empty name"),
    ],
)
def test_a_degenerate_label_set_is_refused(tmp_path: Path, labels: str, fragment: str) -> None:
    text = CLASSIFICATION.replace("labels: [good, bad]", f"labels: {labels}")
    one_line_error(write(tmp_path, "labels", text), "labels:", fragment)
    text = MULTIPLE_CHOICE.replace("labels: [A, B]", f"labels: {labels}") + "label_column: answer\n"
    one_line_error(write(tmp_path, "slots", text), "labels:", fragment)


def test_a_choices_list_with_another_count_than_the_labels_is_refused(tmp_path: Path) -> None:
    text = MULTIPLE_CHOICE.replace("[row.a, row.b]", "[row.a]") + "label_column: answer\n"
    one_line_error(write(tmp_path, "count", text), "choices:", "gives 1 choices", "labels names 2")


@pytest.mark.parametrize(
    ("example", "fragment"),
    [
        ("{text: x, label: 2}", "holds 2; allowed: a label id, 0 to 1"),
        ("{text: x, label: '1'}", "holds '1'"),
        ("{text: x, label: true}", "holds True"),
        ("{text: x, label: -1}", "holds -1"),
    ],
)
def test_a_classification_example_with_a_bad_gold_label_is_refused(
    tmp_path: Path, example: str, fragment: str
) -> None:
    path = write(tmp_path, "gold", CLASSIFICATION + f"example: {example}\n")
    one_line_error(path, "example:", fragment)


@pytest.mark.parametrize(
    ("gold", "example", "fragment"),
    [
        ("row.answer - 1", "{q: x, a: y, b: z, answer: '2'}", "example: gold: unsupported"),
        ("row.answer", "{q: x, a: y, b: z, answer: 5}", "gold gives index 5; allowed: 0 to 1"),
        ("row.answer", "{q: x, a: y, b: z, answer: 1.0}", "gold gives index 1.0"),
        ("row.answer * 10", "{q: x, a: y, b: z, answer: 1}", "gold gives index 10"),
    ],
)
def test_a_multiple_choice_example_with_a_bad_gold_is_refused(
    tmp_path: Path, gold: str, example: str, fragment: str
) -> None:
    path = write(tmp_path, "mc", MULTIPLE_CHOICE + f"gold: {gold}\nexample: {example}\n")
    one_line_error(path, fragment)


def test_a_good_multiple_choice_definition_with_an_example_loads(tmp_path: Path) -> None:
    text = MULTIPLE_CHOICE + "gold: row.answer - 1\nexample: {q: x, a: y, b: z, answer: 2}\n"
    task = parse_definition(write(tmp_path, "good", text))
    assert task.gold_label({"q": "x", "a": "y", "b": "z", "answer": 2}, "en") == "B"


# ------------------------------------------------------- 4. errors that blamed the wrong thing


def test_a_synthetic_generator_with_other_labels_is_refused_at_load(tmp_path: Path) -> None:
    text = (
        CLASSIFICATION.replace("columns: [text, label]", "columns: [premise, hypothesis, label]")
        + "synthetic: xnli\n"
    )
    one_line_error(write(tmp_path, "nli", text), "synthetic:", "3 labels", "labels names 2")


@pytest.mark.parametrize(
    ("synthetic", "fragment"),
    [("nope", "unknown generator 'nope'"), ("xcopa", "makes multiple_choice rows")],
)
def test_a_synthetic_generator_that_does_not_fit_is_refused(
    tmp_path: Path, synthetic: str, fragment: str
) -> None:
    path = write(tmp_path, "syn", CLASSIFICATION + f"synthetic: {synthetic}\n")
    one_line_error(path, "synthetic:", fragment)


def test_a_synthetic_task_with_a_column_the_generator_lacks_is_refused(tmp_path: Path) -> None:
    text = CLASSIFICATION.replace("labels: [good, bad]", "labels: [a, b, c]") + "synthetic: xnli\n"
    one_line_error(write(tmp_path, "cols", text), "columns: 'text'", "premise")


def test_the_user_task_with_synthetic_xnli_no_longer_crashes_build(cli, tmp_path: Path) -> None:
    text = (
        CLASSIFICATION.replace(
            "columns: [text, label]", "columns: [premise, hypothesis, label]"
        ).replace("splits: [train, test]", "splits: [train, validation]")
        + "synthetic: xnli\n"
    )
    write(tmp_path / "tasks", "nli2", text)
    result = cli("build", "--task", "nli2", "--sources", "en", "--budget", "4",
                 "--tasks-dir", tmp_path / "tasks", "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, "nli2.yaml", "synthetic:")


def test_a_multiple_choice_definition_without_example_is_blamed_once(cli, tmp_path: Path) -> None:
    write(tmp_path / "tasks", "noex", MULTIPLE_CHOICE + "gold: row.answer - 1\n")
    result = cli("prompts", "list", "--tasks-dir", tmp_path / "tasks")
    assert_one_line_error(result, "noex.yaml", "gold:", "give the definition an example row")
    assert "more broken templates" not in result.err


def test_an_unknown_language_registry_column_is_refused_at_load(tmp_path: Path) -> None:
    text = CLASSIFICATION.replace("languages: [en, de]", "languages: {registry: nope}")
    one_line_error(write(tmp_path, "reg", text), "languages.registry: 'nope'", "xnli, pawsx")


@pytest.mark.parametrize(
    ("languages", "fragment"), [("[]", "the list is empty"), ("[en, en]", "'en' is listed twice")]
)
def test_an_empty_or_repeated_language_list_is_refused(
    tmp_path: Path, languages: str, fragment: str
) -> None:
    text = CLASSIFICATION.replace("languages: [en, de]", f"languages: {languages}")
    one_line_error(write(tmp_path, "langs", text), "languages:", fragment)


def test_the_shipped_tasks_folder_given_again_is_not_a_duplicate(cli, tmp_path: Path) -> None:
    link = tmp_path / "again"
    link.symlink_to(REPO / "tasks")
    for folder in (REPO / "tasks", link):
        result = cli("prompts", "list", "--tasks-dir", folder, "--prompts-dir", REPO / "prompts")
        assert result.code == 0, result.err
        assert "defined twice" not in result.err


def test_a_copy_of_a_shipped_definition_is_still_a_duplicate(cli, tmp_path: Path) -> None:
    (tmp_path / "tasks").mkdir()
    shutil.copy(REPO / "tasks" / "xnli.yaml", tmp_path / "tasks" / "xnli.yaml")
    result = cli("prompts", "list", "--tasks-dir", tmp_path / "tasks")
    assert_one_line_error(result, "'xnli' is defined twice")


def test_prompts_list_counts_only_templates_that_are_broken(cli, tmp_path: Path) -> None:
    folder = tmp_path / "prompts" / "xnli"
    folder.mkdir(parents=True)
    for name in ("one", "two"):
        (folder / f"{name}.yaml").write_text(
            f"id: xnli/{name}\ntask: xnli\ndescription: d\ninstruction: '{{{{ nope }}}}'\n"
            "answer: '{{ label_word }}'\n"
            "verbalizers: {entailment: a, neutral: b, contradiction: c}\n"
        )
    result = cli("prompts", "list", "--prompts-dir", tmp_path / "prompts")
    assert_one_line_error(result, "(and 1 more broken templates, listed on stdout)")
    listed = result.out.split("not loaded (2):")[1].splitlines()  # each named, not one of them
    assert len([line for line in listed if line.startswith("- ")]) == 2
    assert sum("one.yaml" in line for line in listed) == 1
    assert sum("two.yaml" in line for line in listed) == 1
    write(tmp_path / "tasks", "broken", "name: broken\n")
    result = cli("prompts", "list", "--tasks-dir", tmp_path / "tasks")
    assert_one_line_error(result, "broken.yaml")
    assert "more broken templates" not in result.err


# ----------------------------------------------------------------- 5. files that are not files


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_definition_or_template_does_not_block(cli, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    os.mkfifo(tasks / "x.yaml")
    started = time.monotonic()
    assert_one_line_error(cli("prompts", "list", "--tasks-dir", tasks), "x.yaml", "FIFO")
    prompts = tmp_path / "prompts" / "xnli"
    prompts.mkdir(parents=True)
    os.mkfifo(prompts / "f.yaml")
    result = cli("prompts", "list", "--prompts-dir", tmp_path / "prompts")
    assert_one_line_error(result, "f.yaml", "FIFO")
    assert time.monotonic() - started < 30


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_a_symlink_to_dev_zero_is_a_one_line_error(cli, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "zero.yaml").symlink_to("/dev/zero")
    assert_one_line_error(cli("prompts", "list", "--tasks-dir", tasks), "zero.yaml", "a device")
    prompts = tmp_path / "prompts" / "xnli"
    prompts.mkdir(parents=True)
    (prompts / "zero.yaml").symlink_to("/dev/zero")
    result = cli("prompts", "list", "--prompts-dir", tmp_path / "prompts")
    assert_one_line_error(result, "zero.yaml", "a device")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_vectors_from_a_device_or_folder_are_one_line_errors(tmp_path: Path) -> None:
    from mslt_it.selection.vectors import load_vectors_csv

    (tmp_path / "v.csv").symlink_to("/dev/zero")
    for path, fragment in ((tmp_path / "v.csv", "a device"), (tmp_path, "a folder")):
        with pytest.raises(MsltError, match=fragment) as caught:
            load_vectors_csv(path)
        assert "\n" not in str(caught.value)


# -------------------------------------------------------------------------- property tests

IDENTIFIER = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-3, 12), st.floats(allow_nan=True), TEXT)
EXPRESSION_PARTS = st.sampled_from(
    [
        "row.a", "row.b", "row.label", "row.missing", "'x'", "1", "10**7", "9999999",
        "row.a | center(9999999)", "row.a | wordwrap(1)", "row.a | indent(999999)",
        "row.a * 999999", "[row.a, row.b]", "row.a ~ row.b", "row.a + row.b", "row.a | trim",
        "row.a.ljust(999999)", "'{:>999999}'.format(row.a)", "row.a | list | join(row.b)",
        "range(99999) | list", "row.a | replace('', row.b)", "row.label - 1", "row.a | int",
        "'%*s' % (999999, row.a)", "(row.a * 1000) | batch(999999, 0) | list",
    ]
)  # fmt: skip
OPERATORS = st.sampled_from([" ~ ", " + ", " * ", " % ", " if row.a else ", ", "])


@st.composite
def expressions(draw: st.DrawFn) -> str:
    parts = draw(st.lists(EXPRESSION_PARTS, min_size=1, max_size=4))
    text = parts[0]
    for part in parts[1:]:
        text = f"({text}){draw(OPERATORS)}({part})"
    if draw(st.booleans()):
        text = f"[{text}]"
    return text


@st.composite
def definitions(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["classification", "multiple_choice", "instructions"]))
    labels = draw(st.lists(st.sampled_from(["a", "b", "c", "a b", " ", ""]), max_size=4))
    lines = [
        "name: gen", "title: T", f"kind: {kind}", "splits: [train]",
        f"languages: {draw(st.sampled_from(['[en]', '[en, en]', '[]', '{registry: xnli}', '{registry: zz}']))}",  # noqa: E501
        "columns: [a, b, label]", f"labels: {labels!r}",
    ]  # fmt: skip
    if kind == "classification":
        lines.append("label_column: label")
    elif kind == "multiple_choice":
        lines.append(f"choices: {draw(expressions())!r}")
        lines.append(
            draw(st.sampled_from(["label_column: label", f"gold: {draw(expressions())!r}"]))
        )
    else:
        lines += [f"prompt: {draw(expressions())!r}", "answer: row.b", "metric: exact_match"]
    if draw(st.booleans()):
        lines.append(f"variables: {{v: {draw(expressions())!r}}}")
    if draw(st.booleans()):
        config = draw(st.sampled_from(["{lang}", "{lang:>99999999}", "x{lang!s}", "{", "c"]))
        lines.append(f"hub: {{id: x/y, config: {config!r}}}")
    if draw(st.booleans()):
        example = {"a": draw(SCALAR), "b": draw(SCALAR), "label": draw(SCALAR)}
        lines.append(f"example: {example!r}".replace("None", "null"))
    if draw(st.booleans()):
        lines.append(
            f"synthetic: {draw(st.sampled_from(['xnli', 'pawsx', 'xcopa', 'bactrianx', 'zz']))}"
        )
    return "\n".join(lines) + "\n"


PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(text=definitions())
def test_any_generated_definition_loads_or_is_a_one_line_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "gen.yaml"
    path.write_text(text)
    started = time.monotonic()
    try:
        task = parse_definition(path)
    except MsltError as error:
        message = str(error)
        assert message.strip() and "\n" not in message, message
        assert "gen.yaml" in message or "tasks-dir" in message, message
    else:
        assert len(set(task.labels)) == len(task.labels)
        assert task.kind == "instructions" or len(task.labels) >= 2
    assert time.monotonic() - started < 30


@PROPERTY
@given(expression=expressions(), a=SCALAR, b=SCALAR, label=SCALAR)
def test_any_generated_expression_evaluates_or_raises_within_the_bounds(
    expression: str, a: object, b: object, label: object
) -> None:
    row = {"a": a, "b": b, "label": label}
    started = time.monotonic()
    try:
        evaluate = compile_bounded_expression(expression)
        value = evaluate(row=row)
    except RenderLimitError as error:
        assert str(error).strip() and "\n" not in str(error)
    except Exception as error:  # the row's own types (TypeError, UndefinedError…)
        assert not isinstance(error, MemoryError | RecursionError)
    else:
        if isinstance(value, str | list):
            assert len(value) <= bounds.MAX_CHARACTERS or "row." in expression
        plain = plain_expression(ENVIRONMENT, expression)
        if plain is not None:
            with contextlib.suppress(NotPlain):
                assert plain(row) == value
    assert time.monotonic() - started < bounds.RENDER_SECONDS + 5


def test_a_check_of_the_whole_definition_does_not_echo_it(tmp_path: Path) -> None:
    """A rule across fields (the label column among the columns) names the rule; it does not
    print the whole definition after it as the value it got."""
    text = CLASSIFICATION.replace("label_column: label", "label_column: nosuch")
    text += "example: {text: " + "long words " * 20 + ", label: 0}\n"
    message = one_line_error(write(tmp_path, "t", text), "label_column: 'nosuch'")
    assert "got {" not in message and "long words" not in message


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'{a}'.format(b=1)", "variables.v: no key 'a' (KeyError)"),
        ("row.__class__.__mro__", "heavy.yaml: variables.v: reads row.__class__"),
    ],
)
def test_an_expressions_error_names_its_field_and_cause(
    tmp_path: Path, expression: str, expected: str
) -> None:
    """A key the expression looked up was said as the key alone (``variables.v: 'a'``), and a
    column check of the whole file was placed at "(top level)" before the field it names."""
    quoted = expression.replace('"', '\\"')
    path = write(tmp_path, "heavy", CLASSIFICATION + f'variables: {{v: "{quoted}"}}\n')
    message = one_line_error(path, expected)
    assert "(top level)" not in message
