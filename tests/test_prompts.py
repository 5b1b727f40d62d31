"""Prompt templates: validated when loaded, rendered in a sandbox, pluggable from a folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import assert_one_line_error

from mslt_it.errors import MsltError
from mslt_it.languages import languages_of_task
from mslt_it.prompts import get_template, load_templates
from mslt_it.tasks.synthetic import synthetic_row

GOOD = """\
id: xnli/mine
task: xnli
description: a user's template
instruction: "P: {{ premise }} H: {{ hypothesis }}"
answer: "{{ label_word }}"
verbalizers: {entailment: A, neutral: B, contradiction: C}
"""


def write_template(root: Path, text: str, name: str = "xnli/mine") -> Path:
    path = root / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_shipped_templates_load_with_two_per_task() -> None:
    templates = load_templates()
    for task in ("xnli", "pawsx", "wikiann"):
        assert sum(t.spec.task == task for t in templates.values()) >= 2


@pytest.mark.parametrize("template_id", ["xnli/native", "wikiann/native"])
def test_in_language_templates_cover_every_xnli_language(template_id: str) -> None:
    assert set(get_template(template_id).languages) == set(languages_of_task("xnli"))


def test_in_language_template_renders_instruction_and_answer_in_the_language() -> None:
    template = get_template("xnli/native")
    row = synthetic_row("xnli", "de", "train", 0) | {"label": 2}
    rendered = template.render(row, "de")
    assert rendered.instruction.startswith("Prämisse:")
    assert rendered.answer == "nein"


def test_a_template_dropped_in_a_prompts_dir_is_found(tmp_path: Path) -> None:
    write_template(tmp_path, GOOD)
    template = get_template("xnli/mine", [tmp_path])
    rendered = template.render(synthetic_row("xnli", "en", "train", 1) | {"label": 1}, "en")
    assert rendered.instruction.startswith("P: ") and rendered.answer == "B"
    assert "xnli/mine" in load_templates([tmp_path])


@pytest.mark.parametrize("where", ["mine.yaml", "xnli/drafts/mine.yml"])
def test_a_template_outside_a_task_folder_is_named_not_ignored(
    tmp_path: Path, cli, where: str
) -> None:
    """A file at ``<dir>/mine.yaml`` (or a folder too deep) is never read: one line says where
    templates live, for every command that reads the folder, instead of an unknown id."""
    stray = tmp_path / where
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text(GOOD, encoding="utf-8")
    for args in (
        ("prompts", "list", "--prompts-dir", tmp_path),
        ("prompts", "show", "xnli/mine", "--prompts-dir", tmp_path),
    ):
        assert_one_line_error(cli(*args), where, "<task>")
    # a problem of that file alone: the others are listed, and load
    assert "xnli/en-instruct" in cli("prompts", "list", "--prompts-dir", tmp_path).out
    assert get_template("xnli/en-instruct", [tmp_path]).id == "xnli/en-instruct"
    stray.unlink()
    assert cli("prompts", "list", "--prompts-dir", tmp_path).code == 0


def test_instruction_and_answer_render_as_if_apart(tmp_path: Path) -> None:
    """A ``{% set %}`` in the instruction must not reach the answer (they render in one pass)."""
    text = GOOD.replace(
        'instruction: "P: {{ premise }} H: {{ hypothesis }}"',
        "instruction: \"{% set label_word = 'leaked' %}P: {{ premise }} {{ label_word }}\"",
    )
    write_template(tmp_path, text)
    rendered = get_template("xnli/mine", [tmp_path]).render(
        synthetic_row("xnli", "en", "train", 1) | {"label": 0}, "en"
    )
    assert rendered.instruction.endswith("leaked") and rendered.answer == "A"


def test_rows_holding_the_part_separator_render_whole(tmp_path: Path) -> None:
    from mslt_it.prompts import PART_SEPARATOR

    write_template(tmp_path, GOOD)
    template = get_template("xnli/mine", [tmp_path])
    row = {"premise": f"a{PART_SEPARATOR}b", "hypothesis": f"c{PART_SEPARATOR}d", "label": 2}
    rendered = template.render(row, "en")
    assert rendered.instruction == f"P: a{PART_SEPARATOR}b H: c{PART_SEPARATOR}d"
    assert rendered.answer == "C"


def test_a_field_the_task_lacks_is_named_with_the_file(tmp_path: Path) -> None:
    path = write_template(tmp_path, GOOD.replace("{{ premise }}", "{{ premis }}"))
    with pytest.raises(MsltError, match=f"{path}: instruction uses field 'premis'"):
        get_template("xnli/mine", [tmp_path])


def test_a_missing_verbalizer_is_named_with_the_file(tmp_path: Path) -> None:
    path = write_template(tmp_path, GOOD.replace(", contradiction: C", ""))
    with pytest.raises(MsltError, match=f"{path}: verbalizers is missing .*'contradiction'"):
        get_template("xnli/mine", [tmp_path])


@pytest.mark.parametrize("word", ["a", "Ａ", "'A '"])
def test_verbalizer_words_must_be_distinct(tmp_path: Path, word: str) -> None:
    """As an answer is read (NFKC, case folded): a full-width Ａ passed, and every answer of
    the two labels was read as the first."""
    write_template(tmp_path, GOOD.replace("neutral: B", f"neutral: {word}"))
    with pytest.raises(MsltError, match="must be distinct"):
        get_template("xnli/mine", [tmp_path])


ANSWER = '"{{ label_word }}"'


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        (
            ANSWER,
            '"yes"',
            "labels 'entailment' and 'neutral' render the same instruction and answer for ar;",
        ),
        (
            ANSWER,
            "\"{% if label == 'entailment' %}yes{% else %}no{% endif %}\"",
            "labels 'neutral' and 'contradiction' render the same instruction and answer for ar;",
        ),
        (ANSWER, ANSWER + '\nby_lang: {de: {answer: "x"}}', "for de;"),
        ('"P: {{ premise }} H: {{ hypothesis }}"', '"  "', "instruction renders empty text"),
        (
            ANSWER,
            "\"{{ label_word if label != 'neutral' else '' }}\"",
            "answer renders empty text on the task's example row in language 'ar' for label "
            "'neutral'",
        ),
        ("B,", '"\\x1b[31m",', "verbalizers.neutral is '\\x1b[31m', which holds a control"),
        (  # the gold answer in the prompt: generate mode showed it to the model
            '"P: {{ premise }} H: {{ hypothesis }}"',
            '"{{ label_word }} {{ premise }}"',
            "the instruction for ar differs between labels 'entailment' and 'neutral'",
        ),
        ('"P: {{ premise }} H: {{ hypothesis }}"', '"{{ label }}: {{ premise }}"', "must not hold"),
        (  # read back as no label: every right answer of generate mode was invalid
            ANSWER,
            '"{{ label_word }}ly"',
            "the answer for label 'entailment' in ar ('Aly') does not read as that label",
        ),
        (  # read back as another label's word too
            ANSWER,
            "\"{{ label_word }}{% if label == 'neutral' %} or C{% endif %}\"",
            "the answer for label 'neutral' in ar ('B or C') does not read as that label",
        ),
    ],
)
def test_a_template_that_cannot_teach_its_labels_is_refused(
    tmp_path: Path, old: str, new: str, said: str
) -> None:
    """An answer that ignores the label (or does so in one language) teaches nothing; a build
    made a dataset of empty prompts, or trained an empty answer for one label, and a label word
    of control characters only was trained as the answer."""
    assert old in GOOD
    path = write_template(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(MsltError) as caught:
        get_template("xnli/mine", [tmp_path])
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(f"{path}: ") and said in str(caught.value), caught.value


def test_unknown_keys_in_a_template_are_errors(tmp_path: Path) -> None:
    write_template(tmp_path, GOOD + "verbalisers: {}\n")
    with pytest.raises(MsltError, match="verbalisers: unknown field"):
        get_template("xnli/mine", [tmp_path])


def test_the_sandbox_refuses_to_reach_into_python_objects(tmp_path: Path) -> None:
    attack = GOOD.replace("{{ premise }}", "{{ premise.__class__.__mro__[1].__subclasses__() }}")
    write_template(tmp_path, attack)
    # named as what it is: "cannot render ace" read as a name of the template's own
    with pytest.raises(MsltError, match="cannot render the task's example row in language 'ar'"):
        get_template("xnli/mine", [tmp_path])


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("{{ premise }}", "{{ premise.__class__ }}", "instruction"),
        ("{{ label_word }}", "{{ label_word.__class__ }}", "answer"),
        ("{{ label_word }}", "{% for i in range(10) %}{{ i.x }}{% endfor %}", "answer"),
        (
            "verbalizers:",
            "by_lang: {ar: {answer: '{{ label_word.__class__ }}'}}\nverbalizers:",
            "by_lang.ar.answer",
        ),
    ],
)
def test_a_render_error_names_the_field_that_failed(
    tmp_path: Path, old: str, new: str, field: str
) -> None:
    """Instruction and answer render as one: the error named neither (a broken answer read
    "cannot render the task's example row", like a broken instruction)."""
    path = write_template(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(
        MsltError, match=f"^{re.escape(str(path))}: {re.escape(field)}: cannot render"
    ):
        get_template("xnli/mine", [tmp_path])


def test_undefined_attributes_fail_instead_of_rendering_empty(tmp_path: Path) -> None:
    write_template(tmp_path, GOOD.replace("{{ premise }}", "{{ premise.nonexistent }}"))
    with pytest.raises(MsltError, match="cannot render"):
        get_template("xnli/mine", [tmp_path])


def test_jinja_syntax_errors_name_the_part_and_line(tmp_path: Path) -> None:
    write_template(tmp_path, GOOD.replace("{{ premise }}", "{{ premise }"))
    with pytest.raises(MsltError, match="instruction: Jinja syntax error on line 1"):
        get_template("xnli/mine", [tmp_path])


def test_id_must_match_the_file_place(tmp_path: Path) -> None:
    write_template(tmp_path, GOOD, name="xnli/other")
    with pytest.raises(MsltError, match="id is 'xnli/mine' but the file's place says 'xnli/other'"):
        get_template("xnli/other", [tmp_path])


def test_a_template_of_another_task_than_its_folder_is_named(tmp_path: Path) -> None:
    """`xnli/mine` with `task: pawsx` loaded as a pawsx template, which `prompts list --task
    xnli` then left out; an unknown task's message did not say which file."""
    pawsx = GOOD.replace("task: xnli", "task: pawsx").replace(
        '"P: {{ premise }} H: {{ hypothesis }}"', '"{{ sentence1 }} {{ sentence2 }}"'
    )
    path = write_template(tmp_path, pawsx.replace("neutral: B, contradiction: C", "x: B"))
    with pytest.raises(MsltError, match=r"task: 'pawsx', but the id 'xnli/mine' places it"):
        get_template("xnli/mine", [tmp_path])
    path.unlink()
    path = write_template(tmp_path, GOOD.replace("xnli", "claims"), name="claims/mine")
    with pytest.raises(MsltError, match=rf"^{path}: task: unknown task 'claims'"):
        get_template("claims/mine", [tmp_path])


def test_a_jinja_expression_nested_past_the_parser_is_one_line(cli, tmp_path: Path) -> None:
    """80 brackets deep, Jinja's parser hit Python's recursion limit: an internal error from
    every `prompts` command, and `list` showed no table."""
    deep = "(" * 80 + "1" + ")" * 80
    write_template(tmp_path, GOOD.replace("{{ premise }}", f"{{{{ {deep} }}}}{{{{ premise }}}}"))
    with pytest.raises(MsltError, match="instruction: nested too deeply for Jinja's parser"):
        get_template("xnli/mine", [tmp_path])
    listed = cli("prompts", "list", "--prompts-dir", tmp_path)
    assert listed.code == 2 and "xnli/en-instruct" in listed.out
    assert "nested too deeply" in listed.err and "Traceback" not in listed.err


def test_a_template_defined_twice_is_an_error(tmp_path: Path) -> None:
    write_template(tmp_path, GOOD.replace("xnli/mine", "xnli/en-instruct"), "xnli/en-instruct")
    with pytest.raises(MsltError, match="defined twice"):
        load_templates([tmp_path])


def test_prompts_commands(cli, tmp_path: Path) -> None:
    listed = cli("prompts", "list", "--task", "pawsx")
    assert listed.code == 0 and "pawsx/native" in listed.out and "xnli/native" not in listed.out
    shown = cli("prompts", "show", "wikiann/en-instruct")
    assert shown.code == 0 and "{{ spans }}" in shown.out
    rendered = cli("prompts", "render", "xnli/native", "--task", "xnli", "--lang", "ru")
    assert rendered.code == 0 and "Посылка:" in rendered.out
    write_template(tmp_path, GOOD)
    mine = cli(
        "prompts",
        "render",
        "xnli/mine",
        "--task",
        "xnli",
        "--lang",
        "sw",
        "--prompts-dir",
        tmp_path,
    )
    assert mine.code == 0 and "P: " in mine.out


def test_prompts_render_errors_are_one_line(cli) -> None:
    assert_one_line_error(
        cli("prompts", "render", "pawsx/native", "--task", "pawsx", "--lang", "sw"),
        "task pawsx has no language 'sw'",
    )
    assert_one_line_error(
        cli("prompts", "render", "xnli/native", "--task", "wikiann", "--lang", "de"),
        "is for xnli, not wikiann",
    )
    assert_one_line_error(cli("prompts", "show", "xnli/nope"), "unknown id 'xnli/nope'")


def test_a_row_too_long_to_render_is_named_beside_the_template() -> None:
    """A 1.5-million-character premise breaks the output bound: the error names the row (the
    data's fault), not only the template file."""
    template = get_template("xnli/en-instruct")
    row = {"premise": "x" * 1_500_000, "hypothesis": "h", "label": 0, "id": "xnli/en/test/7"}
    said = r"en-instruct\.yaml: instruction: cannot render row xnli/en/test/7: "
    with pytest.raises(MsltError, match=said):
        template.render(row, "en")


def test_show_copies_the_file_exactly_and_escapes_it_on_a_terminal(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`prompts show X > mine.yaml` copies the file byte for byte; on a terminal a
    right-to-left override in a comment reordered the text the user read."""
    import sys

    text = GOOD.replace("\n", "  # note \u202eevil\n", 1)
    write_template(tmp_path, text)
    copied = cli("prompts", "show", "xnli/mine", "--prompts-dir", tmp_path)
    assert copied.code == 0 and copied.out == text
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    shown = cli("prompts", "show", "xnli/mine", "--prompts-dir", tmp_path)
    assert "\\u202eevil" in shown.out and "\u202e" not in shown.out


@pytest.mark.parametrize("character", ["\x1b", "\x07", "\x7f"])
def test_a_control_character_in_any_yaml_file_is_one_line(
    tmp_path: Path, cli, character: str
) -> None:
    """PyYAML refuses a control character (in a comment too) before parsing: that was an
    internal error for templates, task definitions and recipes alike."""
    write_template(tmp_path / "p", GOOD + f"# note {character}\n")
    said = f"not valid YAML: the control character {character!r} (line "
    assert_one_line_error(
        cli("prompts", "show", "xnli/mine", "--prompts-dir", tmp_path / "p"), said
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\n# {character}\n")
    assert_one_line_error(cli("run", recipe, "--dry-run"), "r.yaml: not valid YAML", said)
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "mine.yaml").write_text(f"name: mine\n# {character}\n")
    assert_one_line_error(cli("prompts", "list", "--tasks-dir", tmp_path / "t"), said)


def test_render_shows_a_conversations_earlier_turns_as_build_writes_them(cli, tmp_path) -> None:
    """``render`` showed the last exchange alone where the built prompt holds the system
    message and the earlier turns before it; and a tab in a row printed as spaces."""
    import json

    folder = tmp_path / "d" / "conversations" / "de"
    folder.mkdir(parents=True)
    messages = [
        {"role": "system", "content": "Sei kurz."},
        {"role": "user", "content": "Nenne eine Primzahl."},
        {"role": "assistant", "content": "7"},
        {"role": "user", "content": "Noch\teine?"},
        {"role": "assistant", "content": "11"},
    ]
    (folder / "train.jsonl").write_text(json.dumps({"messages": messages}) + "\n")
    result = cli("prompts", "render", "conversations/as-is", "--task", "conversations",
                 "--lang", "de", "--data", tmp_path / "d", "--split", "train")  # fmt: skip
    assert result.code == 0, result.err
    shown = result.out
    order = ["earlier turn: system", "Sei kurz.", "earlier turn: user", "Nenne eine Primzahl.",
             "earlier turn: assistant", "7", "instruction", "Noch\\teine?",
             "answer", "11"]  # fmt: skip
    positions = [shown.index(text) for text in order]
    assert positions == sorted(positions)


def test_a_template_named_in_upper_case_yaml_is_named_not_ignored(tmp_path: Path, cli) -> None:
    """``xnli/mine.YAML`` was never read and never named: ``list`` left it out without a word."""
    (tmp_path / "xnli").mkdir()
    (tmp_path / "xnli" / "mine.YAML").write_text(GOOD, encoding="utf-8")
    listed = cli("prompts", "list", "--prompts-dir", tmp_path)
    assert_one_line_error(listed, "mine.YAML", "lower case")
    assert "xnli/en-instruct" in listed.out
    assert_one_line_error(cli("prompts", "show", "xnli/mine", "--prompts-dir", tmp_path),
                          "unknown id 'xnli/mine'", "mine.YAML")  # fmt: skip
    (tmp_path / "notes.yaml").write_text(GOOD, encoding="utf-8")  # listed first, not the one
    assert_one_line_error(cli("prompts", "show", "xnli/mine", "--prompts-dir", tmp_path),
                          "mine.YAML")  # fmt: skip
    said = cli("prompts", "show", "xnli/other", "--prompts-dir", tmp_path).err
    assert "2 YAML file(s) not read" in said and "notes.yaml" not in said  # no other's file


def test_a_newline_in_a_broken_templates_name_is_shown_as_one(tmp_path: Path, cli) -> None:
    """The CLI makes a message's line breaks spaces, so a template named ``a<newline>b.yaml``
    was named ``a b.yaml`` (another file) in the error; the name now shows its escape."""
    folder = tmp_path / "p" / "xnli"
    folder.mkdir(parents=True)
    (folder / "a\nb.yaml").write_text("id: [oops\n")
    said = cli("prompts", "list", "--prompts-dir", tmp_path / "p")
    assert_one_line_error(said, "a\\nb.yaml: not valid YAML")
    (folder / "a\nb.yaml").write_text("- a list\n")
    said = cli("prompts", "list", "--prompts-dir", tmp_path / "p")
    assert_one_line_error(said, "a\\nb.yaml: a template must be a YAML mapping")


@pytest.mark.parametrize(
    ("row", "verbalizer", "fragment"),
    [
        (None, None, "row: got None; expected a mapping"),
        ("x", None, "row: got the string 'x'"),
        ({"premise": "p"}, None, "row: lacks the column 'hypothesis' that xnli reads"),
        ("sample", ["a", "b", "c"], "verbalizer: got a list"),
        ("sample", {"entailment": "yes"}, "verbalizer: gives no word for neutral, contradiction"),
    ],
)
def test_render_names_a_bad_row_or_verbalizer(row, verbalizer, fragment) -> None:
    """A notebook's ``render(None, "en")`` was a TypeError deep in the task's code, and a row
    without its hypothesis a bare KeyError."""
    from mslt_it.tasks import get_task
    from mslt_it.tasks.synthetic import sample_row

    template = get_template("xnli/en-instruct")
    row = sample_row(get_task("xnli"), "en") if row == "sample" else row
    with pytest.raises(MsltError, match=re.escape(fragment)):
        template.render(row, "en", verbalizer=verbalizer)


def test_render_reads_only_the_columns_it_needs_from_any_row() -> None:
    """A column nobody reads (aya's language_code), the label when ``label=`` gives it, and a
    pandas row are rendered as before the row checks."""
    import pandas as pd

    from mslt_it.tasks import get_task
    from mslt_it.tasks.synthetic import sample_row

    row = sample_row(get_task("xnli"), "en")
    template = get_template("xnli/en-instruct")
    unlabelled = {key: value for key, value in row.items() if key != "label"}
    assert template.render(unlabelled, "en", label=0).answer == "entailment"
    assert template.render(pd.Series(row), "en") == template.render(row, "en")
    aya = get_template("aya/as-is").render({"inputs": "hi", "targets": "yo"}, "en")
    assert aya.answer == "yo"
