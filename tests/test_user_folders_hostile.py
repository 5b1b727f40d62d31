"""A user's task definitions, templates and suites, from a hostile pass: each case was an
internal error, a file read or written where it must not be, or text that differed run to run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error

from mslt_it.errors import MsltError
from mslt_it.prompt_bounds import ENVIRONMENT

ROOT = Path(__file__).resolve().parents[1]

CLAIMS = """\
name: claims
title: Claims
kind: classification
splits: [train, test]
languages: [en, de]
columns: [claim, verdict]
labels: [supported, refuted]
label_column: verdict
variables: {claim: row.claim}
example: {claim: The sky is blue., verdict: 0}
"""

TEMPLATE = """\
id: claims/en-instruct
task: claims
description: DESCRIPTION
instruction: "Claim: {{ claim }}\\nIs it supported? Answer {{ choices | join(' or ') }}."
answer: "{{ label_word }}"
verbalizers: {supported: "true", refuted: "false"}
"""


def user_folders(root: Path, description: str = "English instruction.") -> tuple[Path, Path]:
    """A tasks folder with `claims`, a prompts folder with its template, and local rows."""
    (root / "tasks").mkdir(parents=True)
    (root / "tasks" / "claims.yaml").write_text(CLAIMS)
    (root / "prompts" / "claims").mkdir(parents=True)
    text = TEMPLATE.replace("DESCRIPTION", json.dumps(description))
    (root / "prompts" / "claims" / "en-instruct.yaml").write_text(text)
    for lang in ("en", "de"):
        (root / "data" / "claims" / lang).mkdir(parents=True)
        for split in ("train", "test"):
            rows = [{"claim": f"c{i}", "verdict": i % 2} for i in range(4)]
            (root / "data" / "claims" / lang / f"{split}.jsonl").write_text(
                "".join(json.dumps(row) + "\n" for row in rows)
            )
    return root / "tasks", root / "prompts"


def build_claims(root: Path, budget: int) -> list[object]:
    """``mslt-it build`` of `claims` in English from :func:`user_folders`' folders under
    ``root`` (``--out`` left to the test)."""
    folders = ["--tasks-dir", root / "tasks", "--prompts-dir", root / "prompts"]
    chosen = ["--task", "claims", "--sources", "en", "--budget", str(budget)]
    return ["build", *chosen, "--data", root / "data", *folders]


def test_build_and_eval_never_write_into_the_task_or_prompt_folders(
    cli, tmp_path: Path, tiny_model_dir: Path
) -> None:
    tasks, prompts = user_folders(tmp_path)
    given = ["--tasks-dir", tasks, "--prompts-dir", prompts, "--data", tmp_path / "data"]
    build = ["build", "--task", "claims", "--sources", "en", "--budget", "2", *given]
    assert_one_line_error(cli(*build, "--out", tasks / "out"), "lies inside the input")
    evaluate = ["eval", "--model", tiny_model_dir, "--task", "claims", "--langs", "en",
                "--mode", "rank", "--limit", "2", *given]  # fmt: skip
    assert_one_line_error(cli(*evaluate, "--out", prompts / "out"), "lies inside the input")
    assert_one_line_error(cli(*evaluate, "--out", tasks / "out"), "lies inside the input")
    assert not (tasks / "out").exists() and not (prompts / "out").exists()


def test_a_data_folder_read_through_a_link_is_an_input_too(
    cli, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """``--data shadow`` where ``shadow/claims`` links to the real task folder: an ``--out``
    inside that folder lay inside the data read, though not inside ``shadow`` itself."""
    tasks, prompts = user_folders(tmp_path / "real")
    (tmp_path / "shadow").mkdir()
    (tmp_path / "shadow" / "claims").symlink_to(tmp_path / "real" / "data" / "claims")
    given = ["--tasks-dir", tasks, "--prompts-dir", prompts, "--data", tmp_path / "shadow"]
    inside = tmp_path / "real" / "data" / "claims" / "zz"
    build = ["build", "--task", "claims", "--sources", "en", "--budget", "2", *given]
    assert_one_line_error(cli(*build, "--out", inside), "lies inside the input")
    evaluate = ["eval", "--model", tiny_model_dir, "--task", "claims", "--langs", "en",
                "--mode", "rank", "--limit", "2", *given]  # fmt: skip
    assert_one_line_error(cli(*evaluate, "--out", inside), "lies inside the input")
    assert not inside.exists()
    assert cli(*build, "--out", tmp_path / "ds").code == 0  # beside it: fine
    # a link inside the folder a link leads to: data/claims -> hop, hop/en -> the real rows
    (tmp_path / "hop").mkdir()
    (tmp_path / "hop" / "en").symlink_to(tmp_path / "real" / "data" / "claims" / "en")
    (tmp_path / "shadow" / "claims").unlink()
    (tmp_path / "shadow" / "claims").symlink_to(tmp_path / "hop")
    deeper = tmp_path / "real" / "data" / "claims" / "en" / "zz"
    assert_one_line_error(cli(*build, "--out", deeper), "lies inside the input")
    assert not deeper.exists()


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("{claim: row.claim}", "{claim: row.claim.__class__}", "variables.claim: "),
        ("{claim: row.claim}", "{claim: row.claim.upper}", "variables.claim: "),
        ("{claim: row.claim}", "{claim: row.claim, x: row.nothing}", "variables.x: "),
        ("{claim: row.claim}", "{claim: row.claim, x: row.claim.mro}", "variables.x: "),
        ("{claim: row.claim}", "{claim: row.claim, x: '[row.claim.nosuch]'}", "variables.x: "),
        ("{claim: row.claim}", "{claim: row.claim, x: '{1: row.claim.__class__}'}", "variables.x"),
        ("{claim: The sky is blue.,", "{claim: !!binary aGk=,", "example: claim: \"b'hi'\" is a"),
    ],
    ids=["unsafe", "method", "unused-missing", "unused-unsafe", "in-list", "in-mapping", "bytes"],
)
def test_a_definitions_bad_variable_is_named_in_the_definition(
    cli, tmp_path: Path, old: str, new: str, fragment: str
) -> None:
    """A variable the sandbox refuses, or that holds a method, failed only where a template
    printed it: the error named the template, and an unused one passed. Both are the
    definition's, said when it is loaded."""
    tasks, prompts = user_folders(tmp_path)
    definition = tasks / "claims.yaml"
    definition.write_text(definition.read_text().replace(old, new))
    given = ["--tasks-dir", tasks, "--prompts-dir", prompts, "--data", tmp_path / "data"]
    build = ["build", "--task", "claims", "--sources", "en", "--budget", "2", *given]
    result = cli(*build, "--out", tmp_path / "ds")
    assert_one_line_error(result, "claims.yaml: ", fragment)
    assert "en-instruct" not in result.err
    assert not (tmp_path / "ds").exists()


def test_a_template_id_with_a_control_character_is_refused_and_never_printed_raw(
    cli, tmp_path: Path
) -> None:
    """A template's id comes from its file's name and is printed in titles and headers: an
    escape in it recoloured the terminal. It is refused, and the error shows it escaped."""
    tasks, prompts = user_folders(tmp_path)
    odd = "claims/a\x1b[31mRED"
    text = TEMPLATE.replace("id: claims/en-instruct", 'id: "claims/a\\x1b[31mRED"')
    (prompts / "claims" / "a\x1b[31mRED.yaml").write_text(text.replace("DESCRIPTION", "d"))
    given = ["--tasks-dir", tasks, "--prompts-dir", prompts, "--data", tmp_path / "data"]
    build = ["build", "--task", "claims", "--sources", "en", "--budget", "2", "--template", odd]
    for args in ([*build, *given, "--out", tmp_path / "ds"], ["prompts", "show", odd, *given[:4]]):
        result = cli(*args)
        assert_one_line_error(result, "id: holds the control character '\\x1b'")
        assert "\x1b" not in result.err and "\x1b" not in result.out
    assert not (tmp_path / "ds").exists()


def test_a_build_that_cleaning_leaves_empty_is_one_line(cli, tmp_path: Path) -> None:
    folder = tmp_path / "data" / "conversations" / "en"
    folder.mkdir(parents=True)
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]
    (folder / "train.jsonl").write_text(json.dumps({"messages": turns}) + "\n")
    args = ["build", "--task", "conversations", "--data", tmp_path / "data", "--sources", "en",
            "--budget", "1", "--out", tmp_path / "out", "--take-available"]  # fmt: skip
    assert_one_line_error(cli(*args), "no example is left to write")
    assert not (tmp_path / "out").exists()


def test_symlink_loops_and_editor_lock_files(cli, tmp_path: Path) -> None:
    tasks, prompts = user_folders(tmp_path)
    os.symlink("loop", tmp_path / "loop")
    listed = ["prompts", "list", "--tasks-dir"]
    assert_one_line_error(cli(*listed, tmp_path / "loop"), "tasks-dir", "symlink loop")
    os.symlink("x.yaml", tasks / "x.yaml")
    assert_one_line_error(cli(*listed, tasks), "tasks-dir", "symlink loop")
    (tasks / "x.yaml").unlink()
    os.symlink("root@host.1:1", tasks / ".#claims.yaml")  # an editor's lock: hidden, dangling
    os.symlink("root@host.1:1", prompts / "claims" / ".#en-instruct.yaml")
    result = cli(*listed, tasks, "--prompts-dir", prompts, "--task", "claims")
    assert result.code == 0, result.err
    assert "claims/en-instruct" in result.out
    score = ["score", tmp_path / "p.jsonl", "--out", tmp_path / "loop"]
    (tmp_path / "p.jsonl").write_text("{}\n")
    assert_one_line_error(cli(*score), "symlink loop")


def test_a_description_is_shown_as_written_not_as_markup(cli, tmp_path: Path) -> None:
    description = "[bold red]M[/bold red] [/] \x1b[31mred"
    tasks, prompts = user_folders(tmp_path, description)
    result = cli("prompts", "list", "--tasks-dir", tasks, "--prompts-dir", prompts)
    assert result.code == 0, result.err
    assert "[bold red]M[/bold red] [/]" in result.out
    assert "\x1b" not in result.out


@pytest.mark.parametrize(
    "source",
    ["{{ range(1000) | random }}", "{{ lipsum(1) }}", "{{ lipsum }}"],
    ids=["random", "lipsum", "lipsum-bare"],
)
def test_templates_cannot_draw_by_chance(source: str) -> None:
    """The same row and template give the same bytes: a dataset's fingerprint depends on it."""
    with pytest.raises(Exception) as caught:
        ENVIRONMENT.from_string(source).render()
    assert "random" in str(caught.value) or "lipsum" in str(caught.value)


SET_ORDER = """
import sys
from mslt_it.prompt_bounds import ENVIRONMENT
source = "{{ (row.keys() - ['id']) | join(',') }} "
source += "{% for k in row.items() - [] %}{{ k[0] }}{% endfor %}"
row = {name: 1 for name in ("id", "alpha", "beta", "gamma", "delta", "eps", "zeta")}
print(ENVIRONMENT.from_string(source).render(row=row))
"""


def test_a_set_in_a_template_has_the_same_order_in_every_process() -> None:
    """``row.keys() - ['id']`` is a set, which iterated in another order in each process (string
    hashes are salted per process): the same row and template gave other prompts and another
    dataset fingerprint in each run. It is sorted."""
    outputs = set()
    for seed in ("1", "2", "3", "4"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", SET_ORDER], capture_output=True, text=True, env=env, check=True
        )
        outputs.add(done.stdout)
    assert outputs == {"alpha,beta,delta,eps,gamma,zeta alphabetadeltaepsgammaidzeta\n"}


@pytest.mark.parametrize(
    "printed",
    ["joiner()", "cycler(1, 2)", "range", "claim.upper", "claim | attr('upper')", "[joiner()]"],
)
def test_a_template_printing_a_python_object_is_refused(cli, tmp_path, printed: str) -> None:
    """An object printed bare is its memory address: other text, and another dataset
    fingerprint, in every run. Calling a helper (a joiner's separator) still prints text."""
    _, prompts = user_folders(tmp_path)
    template = prompts / "claims" / "en-instruct.yaml"
    template.write_text(
        TEMPLATE.replace("Claim: {{ claim }}", f"{{{{ {printed} }}}} {{{{ claim }}}}")
    )
    args = build_claims(tmp_path, 2)
    result = cli(*args, "--out", tmp_path / "ds")
    assert_one_line_error(result, "prints a Python object")
    assert not (tmp_path / "ds").exists()
    template.write_text(
        TEMPLATE.replace(
            "Claim: {{ claim }}", "{% set j = joiner('/') %}{{ j() }}{{ j() }}{{ claim }}"
        )
    )
    assert cli(*args, "--out", tmp_path / "ds").code == 0
    from datasets import load_from_disk

    text = str(load_from_disk(str(tmp_path / "ds")).to_list())
    assert "/c" in text and "0x" not in text


def test_a_template_printing_none_is_refused_and_testing_it_is_not(cli, tmp_path) -> None:
    """A variable that is none on some rows reached those prompts as the word None (a null
    cell in the data is refused for that reason); a template may still test it."""
    tasks, prompts = user_folders(tmp_path)
    definition = tasks / "claims.yaml"
    definition.write_text(
        CLAIMS.replace(
            "variables: {claim: row.claim}",
            "variables: {claim: row.claim, note: \"'checked' if row.claim != 'c2' else none\"}",
        )
    )
    template = prompts / "claims" / "en-instruct.yaml"
    args = build_claims(tmp_path, 4)
    template.write_text(TEMPLATE.replace("Claim: {{ claim }}", "Claim: {{ claim }} {{ note }}"))
    result = cli(*args, "--out", tmp_path / "ds")
    assert_one_line_error(result, "prints none", "the word None")
    assert not (tmp_path / "ds").exists()
    tested = "Claim: {{ claim }}{% if note %} ({{ note }}){% endif %}"
    template.write_text(TEMPLATE.replace("Claim: {{ claim }}", tested))
    assert cli(*args, "--out", tmp_path / "ds").code == 0
    from datasets import load_from_disk

    text = str(load_from_disk(str(tmp_path / "ds")).to_list())
    assert "c1 (checked)" in text and "None" not in text


@pytest.mark.parametrize(
    "made",
    [
        "'Note: ' ~ note",
        "note | string",
        "note | upper",
        "'%s' % note",
        "'%s, %s' % (claim, note)",
        "'%(n)s' % {'n': note, 'c': claim}",
        "'{}'.format(note)",
        "'{!r}'.format(note)",
        "note | pprint",
        "'%s' | format(note)",
        "[claim, note] | join(', ')",
        "[{'n': note}] | join(attribute='n')",
        "'E' | replace('E', note)",
        "['a', 'b'] | join(note)",
        "{'e': note} | urlencode",
        "[('q', note)] | urlencode",
    ],
)
def test_a_template_turning_none_into_text_is_refused(cli, tmp_path, made: str) -> None:
    """Printing none was refused, but ``'Note: ' ~ note`` (or a filter, a format) turned it into
    the word None first and the prompt read "Note: None" on the rows where it is missing."""
    tasks, prompts = user_folders(tmp_path)
    (tasks / "claims.yaml").write_text(
        CLAIMS.replace(
            "variables: {claim: row.claim}",
            "variables: {claim: row.claim, note: \"'checked' if row.claim != 'c2' else none\"}",
        )
    )
    template = prompts / "claims" / "en-instruct.yaml"
    template.write_text(TEMPLATE.replace("Claim: {{ claim }}", f"Claim: {{{{ {made} }}}}"))
    args = build_claims(tmp_path, 4)
    result = cli(*args, "--out", tmp_path / "ds")
    assert_one_line_error(result, "turns none (a missing value) into text", "the word None")
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("{{ '%%(n)s %(c)s' % {'n': n, 'c': 'x'} }}", "%(n)s x"),  # an escaped key prints no value
        ("{{ 'aa' | replace('a', 'b', n) }}", "bb"),  # a none count is replace's default
        ("{{ [n, 'a'] | reject('none') | join(',') }}", "a"),
        ("{{ n | tojson }} {{ n | default('-', true) }}", "null -"),
        ("{{ '%(b(x))s' % {'b(x)': 't', 'b': n} }}", "t"),  # Python's key holds the parentheses
    ],
)
def test_a_none_that_becomes_no_text_is_allowed(template: str, text: str) -> None:
    assert ENVIRONMENT.from_string(template).render(n=None) == text


def test_a_key_a_format_lacks_is_not_called_a_none() -> None:
    for template in ("{{ '%(zz)s' % {'a': 't'} }}", "{{ '%(zz)s' | format(a='t') }}"):
        with pytest.raises(KeyError, match="zz"):
            ENVIRONMENT.from_string(template).render()


def test_a_definition_turning_none_into_text_is_refused(cli, tmp_path) -> None:
    """A definition's expression is held to the same rule as a template: its variable would
    carry the word None into every prompt that prints it."""
    tasks, _ = user_folders(tmp_path)
    (tasks / "claims.yaml").write_text(
        CLAIMS.replace(
            "variables: {claim: row.claim}",
            "variables: {claim: \"row.claim ~ (' (checked)' if row.claim != 'c2' else none)\"}",
        )
    )
    args = build_claims(tmp_path, 4)
    result = cli(*args, "--out", tmp_path / "ds")
    assert_one_line_error(result, "turns none (a missing value) into text with '~'")
    assert not (tmp_path / "ds").exists()


def test_a_variable_failing_on_one_row_names_the_row(cli, tmp_path) -> None:
    """A bound broken by one row of thousands named only the definition's field: the row that
    broke it had to be searched for."""
    tasks, _ = user_folders(tmp_path)
    big = "('x' * 600000 if row.claim == 'c2' else 'y') * 2"
    (tasks / "claims.yaml").write_text(
        CLAIMS.replace(
            "variables: {claim: row.claim}", f'variables: {{claim: row.claim, big: "{big}"}}'
        )
    )
    args = build_claims(tmp_path, 4)
    result = cli(*args, "--out", tmp_path / "ds")
    assert_one_line_error(
        result, "claims.yaml: variables.big on row 'claims/en/train/", "1,200,000"
    )
    row = result.err.split(" on row ")[1].split(":")[0].strip("'")
    data = tmp_path / "data" / "claims" / "en" / "train.jsonl"
    index = int(row.rsplit("/", 1)[1])
    assert json.loads(data.read_text().splitlines()[index])["claim"] == "c2"
    assert not (tmp_path / "ds").exists()


def test_a_chat_template_may_join_a_missing_token() -> None:
    """A model's chat template is rendered by transformers, where ``bos_token ~ …`` with no
    such token is the template's own choice: its bounds check does not refuse it."""
    from mslt_it.chat_bounds import check_chat_template

    source = "{{ none ~ '' }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
    check_chat_template(source, {}, "--chat-template")


@pytest.mark.parametrize(
    "made",
    [
        "claim.upper ~ ''",
        "claim.upper | string",
        "'%s' % claim.upper",
        "'{}'.format(claim.upper)",
        "claim.upper | pprint",
        "[claim.upper] | join",
        "joiner(',') ~ ''",
        "(claim | map('upper')) ~ ''",
        "claim.upper | string | upper",
        "(claim.upper | string)[30:]",
        "claim.upper | e",
        "cycler(1, 2) | string | upper",
        "'{!s:.45}'.format(claim.upper)",
        "[1, 2] | reverse | string",
    ],
)
def test_a_template_turning_a_python_object_into_text_is_refused(cli, tmp_path, made: str) -> None:
    """Turned into text before it is printed, an object is its memory address all the same:
    another dataset fingerprint in every run. The same text in the data is the data's own."""
    _, prompts = user_folders(tmp_path)
    template = prompts / "claims" / "en-instruct.yaml"
    template.write_text(TEMPLATE.replace("Claim: {{ claim }}", f"{{{{ {made} }}}} {{{{ claim }}}}"))
    args = build_claims(tmp_path, 2)
    result = cli(*args, "--out", tmp_path / "ds")
    assert_one_line_error(result, "a Python object")
    assert not (tmp_path / "ds").exists()


def test_python_object_text_in_the_data_passes_through(cli, tmp_path) -> None:
    user_folders(tmp_path)
    quoted = "it printed <function f at 0x7f3a2b1c0d60> here"
    for split in ("train", "test"):
        rows = [{"claim": f"{quoted} {i}", "verdict": i % 2} for i in range(4)]
        (tmp_path / "data" / "claims" / "en" / f"{split}.jsonl").write_text(
            "".join(json.dumps(row) + "\n" for row in rows)
        )
    args = build_claims(tmp_path, 2)
    result = cli(*args, "--out", tmp_path / "ds")
    assert result.code == 0, result.err
    from datasets import load_from_disk

    assert quoted in str(load_from_disk(str(tmp_path / "ds")).to_list())


@pytest.mark.parametrize(
    "source",
    ["{{ [x.nosuch] }}", "{{ {'k': x.nosuch} }}", "{{ [x] | map(attribute='nosuch') | list }}"],
)
def test_a_misspelt_name_inside_a_list_or_mapping_is_an_error(source: str) -> None:
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        ENVIRONMENT.from_string(source).render(x={"a": 1})
    assert ENVIRONMENT.from_string("{{ x.nosuch is defined }}").render(x={}) == "False"


def test_suites_repeat_no_language_and_name_no_path(cli, tmp_path: Path, tiny_model_dir) -> None:
    evaluate = ["eval", "--model", tiny_model_dir, "--data", "synthetic", "--mode", "rank",
                "--limit", "2", "--out", tmp_path / "out", "--suite"]  # fmt: skip
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\ntask: xnli\nsplit: test\nlanguages: [bg, bg]\n")
    assert_one_line_error(cli(*evaluate, suite), "languages: 'bg' is listed twice")
    suite.write_text("name: ../x\ntask: xnli\nsplit: test\nlanguages: [bg]\n")
    assert_one_line_error(cli(*evaluate, suite), "name: '../x'")
    os.mkfifo(tmp_path / "fifo")
    assert_one_line_error(cli(*evaluate, tmp_path / "fifo"), "suite:", "not a regular file")
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 2_100_000 + "\n")
    assert_one_line_error(cli(*evaluate, big), "suite:")
    assert not (tmp_path / "out").exists()


def test_the_shipped_tasks_still_load_with_the_name_checks(tmp_path: Path) -> None:
    from mslt_it.tasks.definitions import parse_definition

    for path in sorted((ROOT / "tasks").glob("*.yaml")):
        parse_definition(path)
    copy = tmp_path / "xnli.yaml"
    shutil.copy(ROOT / "tasks" / "xnli.yaml", copy)
    copy.write_text(copy.read_text().replace("facebook/xnli", "../xnli"))
    with pytest.raises(MsltError, match="not a Hub dataset id"):
        parse_definition(copy)


def test_two_files_for_one_split_are_refused_not_one_silently_read(cli, tmp_path: Path) -> None:
    """With test.parquet beside test.jsonl, the Parquet file was read and edits to the JSONL
    ignored without a word."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tasks, prompts = user_folders(tmp_path)
    folder = tmp_path / "data" / "claims" / "en"
    pq.write_table(pa.table({"claim": ["p"], "verdict": [0]}), folder / "test.parquet")
    args = ["prompts", "render", "claims/en-instruct", "--task", "claims", "--lang", "en",
            "--split", "test", "--tasks-dir", tasks, "--prompts-dir", prompts,
            "--data", tmp_path / "data"]  # fmt: skip
    assert_one_line_error(cli(*args), "both", "test.parquet", "test.jsonl", "keep one")
    (folder / "test.jsonl").unlink()
    assert cli(*args).code == 0


def test_a_folder_that_changes_while_it_is_listed_is_one_line(cli, monkeypatch, tmp_path) -> None:
    """``glob`` raises when a sub-folder vanishes between listing and reading it (another
    process cleaning up, or ``/proc``): a one-line error, not an internal one."""
    tasks, prompts = user_folders(tmp_path)
    real_glob = Path.glob

    def vanishing(self, pattern):
        if self in (tasks, prompts):
            raise FileNotFoundError(2, "No such file or directory", str(self / "d38"))
        return real_glob(self, pattern)

    monkeypatch.setattr(Path, "glob", vanishing)
    for option, folder in (("--prompts-dir", prompts), ("--tasks-dir", tasks)):
        result = cli("prompts", "list", option, folder)
        assert_one_line_error(result, "cannot list", "d38", "change")


def test_render_shows_control_characters_as_escapes(cli, tmp_path: Path) -> None:
    """A template (or a row) that holds terminal escapes cannot retitle the window or recolour
    the screen through `prompts render`: they are shown as escapes."""
    tasks, prompts = user_folders(tmp_path)
    template = prompts / "claims" / "en-instruct.yaml"
    escapes = "\\\\x1b]0;pwned\\\\x07\\\\x1b[31m"
    template.write_text(
        TEMPLATE.replace("Claim: {{ claim }}", f"{{{{ '{escapes}' }}}}{{{{ claim }}}}")
    )
    args = ["claims/en-instruct", "--task", "claims", "--lang", "en", "--data", tmp_path / "data"]
    result = cli("prompts", "render", *args, "--tasks-dir", tasks, "--prompts-dir", prompts)
    assert result.code == 0, result.err
    assert "\x1b" not in result.out and "\x07" not in result.out
    assert "\\x1b]0;pwned\\x07\\x1b[31mc0" in result.out


@pytest.mark.parametrize(
    ("labels", "index", "message"),
    [
        # every row unlabelled: "between 0 and -1" named an --index the user never gave
        (
            [-1, -1],
            0,
            "--split: claims/en split test holds no labelled rows (2 unlabelled left out)",
        ),
        # --index counts labelled rows only, and says so
        (
            [-1, 1, -1],
            1,
            "between 0 and 0, got 1 (it counts the split's labelled rows; 2 unlabelled left out)",
        ),
    ],
)
def test_render_names_a_split_of_unlabelled_rows(cli, tmp_path, labels, index, message) -> None:
    tasks, prompts = user_folders(tmp_path)
    rows = [{"claim": f"c{i}", "verdict": label} for i, label in enumerate(labels)]
    (tmp_path / "data" / "claims" / "en" / "test.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in rows)
    )
    args = ["claims/en-instruct", "--task", "claims", "--lang", "en", "--split", "test"]
    folders = ["--data", tmp_path / "data", "--tasks-dir", tasks, "--prompts-dir", prompts]
    result = cli("prompts", "render", *args, "--index", str(index), *folders)
    assert_one_line_error(result, message)


def test_a_date_in_yaml_is_read_as_text_whatever_was_imported_before(cli, tmp_path: Path) -> None:
    """vLLM's import rewrites PyYAML's shared safe loader so that dates stay text; a definition
    read before it saw a date, after it text. mslt-it's loader reads a date as text itself."""
    import yaml

    from mslt_it.yamlfiles import parse_yaml

    shared = yaml.SafeLoader.yaml_constructors
    saved = shared["tag:yaml.org,2002:timestamp"]
    try:
        for constructor in (saved, shared["tag:yaml.org,2002:str"]):
            shared["tag:yaml.org,2002:timestamp"] = constructor
            assert parse_yaml("when: 2024-01-01", "x") == {"when": "2024-01-01"}
    finally:
        shared["tag:yaml.org,2002:timestamp"] = saved
    tasks, prompts = user_folders(tmp_path)
    definition = tasks / "claims.yaml"
    definition.write_text(definition.read_text().replace("The sky is blue.", "2024-01-01"))
    given = ["--tasks-dir", tasks, "--prompts-dir", prompts, "--data", tmp_path / "data"]
    result = cli("build", "--task", "claims", "--sources", "en", "--budget", "2", *given,
                 "--out", tmp_path / "ds")  # fmt: skip
    assert result.code == 0, result.err


def test_held_out_rows_of_a_users_task_are_read_wherever_training_runs(
    cli, tmp_path: Path, tiny_model_dir: Path, monkeypatch
) -> None:
    """`train --eval-langs` on a dataset of a --tasks-dir task said "unknown task" (and
    pointed at an option train lacked), and data and prompt folders given relative to the
    build's folder were looked for in the training's (a template of that id there rendered
    the rows). The manifest names the definition and template files; each is used once its
    digest proves it the build's, and nothing else of their folders is read."""
    from mslt_it.tasks import add_tasks_dirs, reset_tasks_dirs
    from mslt_it.training import ModelConfig, validate_train_section
    from mslt_it.training.run import plan_run

    tasks, prompts = user_folders(tmp_path)
    monkeypatch.chdir(tmp_path)
    built = cli("build", "--task", "claims", "--sources", "en", "--budget", "2", "--data", "data",
                "--tasks-dir", tasks, "--prompts-dir", "prompts", "--out", "ds")  # fmt: skip
    assert built.code == 0, built.err
    (tasks / "junk.yaml").write_text("name: junk\nbogus: [\n")  # beside it: not the build's
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    section = {"dataset": str(tmp_path / "ds"), "eval_langs": ["de"],
               "sft": {"use_cpu": True, "max_steps": 2}}  # fmt: skip

    def plan():
        reset_tasks_dirs()  # as a new `mslt-it train` starts
        model = ModelConfig(name_or_path=str(tiny_model_dir))
        return plan_run(model, validate_train_section(section), tmp_path / "p")

    try:
        assert plan().heldout_counts == {"en": 2, "de": 4}
    finally:
        reset_tasks_dirs()
    train = ["train", "--dataset", tmp_path / "ds", "--model", tiny_model_dir,
             "--out", tmp_path / "run", "--eval-langs", "de"]  # fmt: skip
    template = prompts / "claims" / "en-instruct.yaml"
    template.write_text(template.read_text() + "# edited\n")
    assert_one_line_error(cli(*train), "train.dataset", "template 'claims/en-instruct'",
                          "changed since the dataset was built")  # fmt: skip
    definition = tasks / "claims.yaml"
    kept = definition.read_text()
    definition.write_text(kept + "# edited\n")
    assert_one_line_error(cli(*train), "train.dataset", "'claims'", "build the dataset again")
    definition.unlink()
    assert_one_line_error(cli(*train), "train.dataset", str(definition), "is gone", "--tasks-dir")
    definition.mkdir()
    assert_one_line_error(cli(*train), "train.dataset", "is a folder")
    definition.rmdir()
    assert not (tmp_path / "run").exists()
    (tmp_path / "moved").mkdir()  # the same definition elsewhere, given as --tasks-dir
    (tmp_path / "moved" / "claims.yaml").write_text(kept)
    template.write_text(template.read_text().removesuffix("# edited\n"))
    reset_tasks_dirs()
    add_tasks_dirs([tmp_path / "moved"])
    try:
        model = ModelConfig(name_or_path=str(tiny_model_dir))
        assert plan_run(model, validate_train_section(section), tmp_path / "p").heldout_counts
    finally:
        reset_tasks_dirs()  # the next test starts from the shipped tasks


def test_a_definition_found_through_a_link_of_its_tasks_name_is_found_again(
    cli, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """The manifest named the link's target (claims-v1.yaml), and `train --eval-langs` then
    refused that file for not being named after its task, though its digest was the build's."""
    from mslt_it.tasks import reset_tasks_dirs
    from mslt_it.training import ModelConfig, validate_train_section
    from mslt_it.training.run import plan_run

    tasks, _ = user_folders(tmp_path)
    (tmp_path / "defs").mkdir()
    (tasks / "claims.yaml").rename(tmp_path / "defs" / "claims-v1.yaml")
    (tasks / "claims.yaml").symlink_to(tmp_path / "defs" / "claims-v1.yaml")
    built = cli(*build_claims(tmp_path, 2), "--out", tmp_path / "ds")
    assert built.code == 0, built.err
    section = {"dataset": str(tmp_path / "ds"), "eval_langs": ["de"],
               "sft": {"use_cpu": True, "max_steps": 2}}  # fmt: skip
    reset_tasks_dirs()  # as a new `mslt-it train` starts
    try:
        model = ModelConfig(name_or_path=str(tiny_model_dir))
        plan = plan_run(model, validate_train_section(section), tmp_path / "p")
        assert plan.heldout_counts == {"en": 2, "de": 4}
    finally:
        reset_tasks_dirs()


@pytest.mark.parametrize(
    "record",
    ["x", [], {"path": 5, "sha256": "0"}, {"path": "rel/claims.yaml", "sha256": "0"},
     {"path": "/" + "a" * 5000, "sha256": "0"}, {"path": "/x\0y", "sha256": "0"},
     {"path": "/x.yaml"}],
)  # fmt: skip
def test_a_manifests_definition_record_that_is_no_path_is_one_line(record) -> None:
    """A hand-edited manifest (its seal made again) named a 5,000-character path: the
    training stopped as an internal error (ENAMETOOLONG), or said "defined in None"."""
    from mslt_it.built_data import use_task_of

    with pytest.raises(MsltError, match=r"^train.dataset: manifest.json's task_definition .* "
                       "is not the absolute path and SHA-256"):  # fmt: skip
        use_task_of({"task": "claims", "task_definition": record}, "train.dataset")


def test_a_symlink_loop_is_said_to_be_one_by_every_command(cli, tmp_path: Path) -> None:
    """``report``, ``adopt``, ``train --recipe`` and ``run`` said a loop did not exist, was no
    folder or no file; ``score`` through a link into one was an internal error."""
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    os.symlink(tmp_path / "a", tmp_path / "p.jsonl")
    loop = tmp_path / "a"
    for command, field in (
        (["report", loop, "--out", tmp_path / "r"], "run dir"),
        (["adopt", loop, "--kind", "adapter"], "folder"),
        (["score", tmp_path / "p.jsonl"], "predictions"),
        (["train", "--recipe", loop, "--out", tmp_path / "t"], "--recipe"),
        (["run", loop], "recipe"),
    ):
        assert_one_line_error(cli(*command), f"{field}: ", "is a symlink loop")
