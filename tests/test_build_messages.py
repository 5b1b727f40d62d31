"""`mslt-it build`'s messages about a user's data: a row of a JSON-lines file is named by its
line, as the file's parse errors name it (from 1, blank lines counted), and a row of a Parquet
file by its row, said to count from 0; a label out of range is told the task's labels, not to
drop a decimal point it does not have; and a blank ``--system-prompt`` is no system prompt.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import CliResult, assert_one_line_error

from mslt_it.config import DataConfig
from mslt_it.runner import read_by_training

LABELS = "(0, 1, 2, or -1 for unlabelled)"


def xnli_line(label: object, premise: str = "p") -> str:
    return f'{{"premise": "{premise}", "hypothesis": "h", "label": {label}}}'


def build_xnli(cli, tmp_path: Path, text: str, *extra: str, out: str = "ds") -> CliResult:
    """``mslt-it build`` of xnli/en from a ``train.jsonl`` holding ``text`` as written."""
    path = tmp_path / "data" / "xnli" / "en" / "train.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return cli("build", "--task", "xnli", "--sources", "en", "--budget", "2", "--data",
               tmp_path / "data", "--out", tmp_path / out, *extra)  # fmt: skip


# ------------------------------------------------------------ 1. one numbering per file


@pytest.mark.parametrize(
    ("second", "fragment"),
    [
        (xnli_line(1)[:-1], "train.jsonl: line 4 is not valid JSON"),  # the parse error
        (xnli_line(7), "train.jsonl: line 4: label 7 is not one of"),
        (xnli_line("1.0"), "train.jsonl: line 4: label 1.0 is not one of"),
        ('{"premise": "p", "hypothesis": "h"}', "train.jsonl: line 4: column 'label' is empty"),
        # pyarrow's own refusal named "row 2" (from 0, blank lines skipped) and no field
        (xnli_line("1e400"), "train.jsonl: line 4: field 'label' is inf"),
    ],
)
def test_a_content_error_names_the_line_a_parse_error_names(
    cli, tmp_path: Path, second: str, fragment: str
) -> None:
    """The same fourth line of a file with blank lines was "line 4" to the parse error and
    "row 1" to every check of its content (counted from 0, blank lines skipped)."""
    text = f"\n{xnli_line(0)}\n\n{second}\n{xnli_line(2)}\n"
    result = build_xnli(cli, tmp_path, text)
    assert_one_line_error(result, fragment)
    assert "row" not in result.err
    assert not (tmp_path / "ds").exists()


def test_a_line_of_two_rows_is_counted_as_one_line(cli, tmp_path: Path) -> None:
    """pyarrow reads two objects on one line as two rows: the row after them is a line on."""
    text = f"{xnli_line(0)} {xnli_line(1)}\n{xnli_line(9)}\n"
    assert_one_line_error(build_xnli(cli, tmp_path, text), "train.jsonl: line 2: label 9 is")


def test_a_many_language_file_names_the_line_of_a_row(cli, tmp_path: Path) -> None:
    """A row of one language in a file of many is named by its line in the file: the near-miss
    check said "(row 2)", the empty cell beside it "row 3", both counted from 0."""
    rows = [
        {"inputs": f"q{i}", "targets": None if i == 3 else f"a{i}", "language": "x",
         "language_code": code, "annotation_type": "original-annotations", "user_id": "u"}
        for i, code in enumerate(["zho", "eng", "zho", "eng"])
    ]  # fmt: skip
    path = tmp_path / "data" / "aya" / "train.jsonl"
    path.parent.mkdir(parents=True)
    lines = [json.dumps(row) for row in rows]
    path.write_text("\n".join([lines[0], "", *lines[1:]]) + "\n", encoding="utf-8")
    args = ("build", "--task", "aya", "--sources", "en", "--budget", "2", "--data",
            tmp_path / "data", "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(cli(*args), "[language_code = eng]: line 5: column 'targets' is empty")
    rows[2]["language_code"] = "ENG"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert_one_line_error(cli(*args), "column 'language_code' holds 'ENG' (line 3), which reads")


def test_a_parquet_row_says_it_counts_from_0(cli, tmp_path: Path) -> None:
    """A Parquet file has no lines: its row is named as a row of the file, counted from 0 (as
    pandas and datasets index it), so that it cannot pass for a line."""
    folder = tmp_path / "data" / "xnli" / "en"
    folder.mkdir(parents=True)
    table = pa.table(
        {"premise": ["a", "b", "c"], "hypothesis": ["a", "b", "c"], "label": [0, 7, 1]}
    )
    pq.write_table(table, folder / "train.parquet")
    result = cli("build", "--task", "xnli", "--sources", "en", "--budget", "2", "--data",
                 tmp_path / "data", "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(
        result, f"train.parquet: row 1 of the file (counted from 0): label 7 is not one of the "
        f"task's labels {LABELS}"
    )  # fmt: skip


# ------------------------------------------------------------ 2. a label out of range


@pytest.mark.parametrize("label", ["10000000000000000000000", "-10000000000000000000000", "1e22"])
def test_a_huge_label_is_told_the_task_labels_not_to_drop_a_decimal_point(
    cli, tmp_path: Path, label: str
) -> None:
    """A whole number beyond int64 was told to "write a whole number, with no decimal point"."""
    result = build_xnli(cli, tmp_path, f"{xnli_line(0)}\n{xnli_line(label)}\n")
    assert_one_line_error(
        result, f"train.jsonl: line 2: label {label.replace('1e22', '1e+22')} is not one of the "
        f"task's labels {LABELS}"
    )  # fmt: skip
    assert "decimal point" not in result.err


def test_a_label_written_as_a_decimal_is_told_how_to_write_it(cli, tmp_path: Path) -> None:
    result = build_xnli(cli, tmp_path, f"{xnli_line(0)}\n\n{xnli_line('2.0')}\n")
    assert_one_line_error(
        result, f"line 3: label 2.0 is not one of the task's labels {LABELS}; write 2, with no "
        "decimal point"
    )  # fmt: skip


# ------------------------------------------------------------ 3. a blank system prompt


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_a_blank_system_prompt_is_no_system_prompt(cli, tmp_path: Path, blank: str) -> None:
    """``''`` wrote no system turn but ``'   '`` wrote a turn of spaces into every example; the
    manifest recorded ``""`` beside None, two identities (a training redone) of one dataset."""
    import datasets

    text = f"{xnli_line(0)}\n{xnli_line(1)}\n"
    outputs = {}
    for name, extra in (("none", ()), ("blank", ("--system-prompt", blank))):
        result = build_xnli(cli, tmp_path, text, "--format", "messages", *extra, out=name)
        assert result.code == 0, result.err
        outputs[name] = tmp_path / name
    for folder in outputs.values():
        rows = datasets.load_from_disk(str(folder)).to_list()
        assert [row["messages"][0]["role"] for row in rows] == ["user", "user"]
    manifests = {name: json.loads((f / "manifest.json").read_text()) for name, f in outputs.items()}
    assert manifests["blank"]["config"]["system_prompt"] is None
    assert manifests["blank"]["fingerprint"] == manifests["none"]["fingerprint"]
    assert read_by_training(outputs["blank"]) == read_by_training(outputs["none"])


def test_a_system_prompt_with_text_is_kept_as_written() -> None:
    """Only a blank prompt is none: one with text keeps its spaces (they reach the model)."""
    settings = {"task": "xnli", "sources": ["en"], "budget": 2}
    assert DataConfig(**settings, system_prompt=" Be kind. ").system_prompt == " Be kind. "
    assert DataConfig(**settings, system_prompt=" \u3000 ").system_prompt is None


# ------------------------------------------------------------ dates are text in JSON and CSV


def test_text_that_looks_like_a_date_stays_text(cli, tmp_path: Path) -> None:
    """Arrow's readers took a column whose every value looks like a date for a timestamp
    column: the build was refused as a template printing a datetime, and an ISO date's text
    would have come back as ``2024-01-01 00:00:00``."""
    from datasets import load_from_disk

    text = xnli_line(0, "2024-01-01") + "\n" + xnli_line(1, "2023-05-06 10:00:00") + "\n"
    assert build_xnli(cli, tmp_path, text).code == 0
    rows = load_from_disk(str(tmp_path / "ds"))
    prompts = " ".join(str(row) for row in rows)
    assert "2024-01-01" in prompts and "2023-05-06 10:00:00" in prompts
    assert "2024-01-01 00:00:00" not in prompts


def test_dates_in_nested_json_and_in_csv_stay_text(tmp_path: Path) -> None:
    from mslt_it.io import read_arrow_table

    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"a": "2024-01-01", "m": [{"c": "2024-01-02 10:00:00"}]}\n')
    csv = tmp_path / "t.csv"
    csv.write_text("a,b\n2024-01-01,1\n2024-01-02T10:00:00,2\n")
    assert read_arrow_table(jsonl, "data").to_pylist() == [
        {"a": "2024-01-01", "m": [{"c": "2024-01-02 10:00:00"}]}
    ]
    assert read_arrow_table(csv, "data").to_pylist() == [
        {"a": "2024-01-01", "b": 1}, {"a": "2024-01-02T10:00:00", "b": 2}
    ]  # fmt: skip


def test_a_parquet_date_column_is_one_line_naming_it(cli, tmp_path: Path) -> None:
    import datetime

    path = tmp_path / "data" / "xnli" / "en" / "train.parquet"
    path.parent.mkdir(parents=True)
    day = datetime.date(2024, 1, 1)
    pq.write_table(
        pa.table({"premise": [day, day], "hypothesis": ["h", "c"], "label": [0, 1]}), path
    )
    result = cli("build", "--task", "xnli", "--sources", "en", "--budget", "2", "--data",
                 tmp_path / "data", "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, "column 'premise' holds date32[day], not text")


def test_a_system_prompt_is_refused_for_conversations_with_their_own(cli, tmp_path: Path) -> None:
    """The conversation's own system message won and the configured one was dropped, while
    the manifest recorded it as used (and adapters trained on it were evaluated with it)."""
    path = tmp_path / "c" / "conversations" / "en" / "train.jsonl"
    path.parent.mkdir(parents=True)
    turns = [{"role": "system", "content": "S"}, {"role": "user", "content": "a"},
             {"role": "assistant", "content": "7"}]  # fmt: skip
    path.write_text(json.dumps({"messages": turns}) + "\n")
    build = ("build", "--task", "conversations", "--data", tmp_path / "c", "--sources", "en",
             "--budget", "1")  # fmt: skip
    result = cli(*build, "--out", tmp_path / "o2", "--system-prompt", "Other")
    assert_one_line_error(result, "--system-prompt: every conversation built begins with its own")
    assert not (tmp_path / "o2").exists()
    assert cli(*build, "--out", tmp_path / "o1").code == 0
    path.write_text(json.dumps({"messages": turns[1:]}) + "\n")  # none of its own: put first
    assert cli(*build, "--out", tmp_path / "o3", "--system-prompt", "Other").code == 0


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (
            ("build", "--task", "xnli", "--sources", "en", "--budget", "2", "--split", "nope"),
            "--split: task xnli has no split 'nope'",
        ),
        (
            ("build", "--task", "xnli", "--sources", "en", "--budget", "2", "--split=nope"),
            "--split: task xnli has no split 'nope'",
        ),
        (
            ("select", "--task", "xnli", "--tasks-dir", "/dev/null"),
            "--tasks-dir: '/dev/null' is not a directory",
        ),
    ],
)
def test_a_setting_typed_as_an_option_is_named_as_typed(cli, tmp_path: Path, command, said):
    """The checks name a setting's field (``split:``), which the user typed as ``--split``."""
    result = cli(*command, *(("--out", tmp_path / "o") if command[0] == "build" else ()))
    assert_one_line_error(result, said)


def test_a_setting_from_a_recipe_keeps_its_name(cli, tmp_path: Path) -> None:
    from mslt_it.cli import as_typed

    assert as_typed("split: no split 'x'", ["build", "--recipe", "r.yaml"]) == "split: no split 'x'"
    assert as_typed("r.yaml: split: no", ["build", "--split", "x"]) == "r.yaml: split: no"
    assert as_typed("sft.max_steps: no", ["train", "--max-steps", "1"]) == "sft.max_steps: no"


@pytest.mark.parametrize(
    "bad",
    [b'{"premise": \n', b'{"premise": "a",}\n', b"\xff\n", b"[1]\n", b'{"premise": "\xff"}\n'],
)
def test_a_broken_json_line_is_named_by_its_line(tmp_path: Path, bad: bytes) -> None:
    """Arrow names a row counted from 0 (``row 1`` for line 2), so the user went to the line
    before the broken one."""
    from mslt_it.errors import MsltError
    from mslt_it.io import read_arrow_table

    path = tmp_path / "test.jsonl"
    good = (json.dumps({"premise": "p", "hypothesis": "h", "label": 0}) + "\n").encode()
    path.write_bytes(good + good + bad + good)
    with pytest.raises(
        MsltError,
        match=r"test\.jsonl: line 3 is (not valid JSON|a list, not a JSON object|not UTF-8 text)",
    ):
        read_arrow_table(path, "data")
