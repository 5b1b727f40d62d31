"""A review of `mslt-it build`'s data edge: values of the wrong type in text columns, a column
of a closed set of values (a definition's ``values``), ``--data ""``, and the messages naming a
label that is not a whole number or a file of empty rows. Each is one line naming the file,
row, column and value (exit status 2), before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import CliResult, assert_one_line_error

from mslt_it.errors import MsltError
from mslt_it.paths import is_data_folder
from mslt_it.tasks.definitions import parse_definition

XNLI_ROWS = [{"premise": f"p {i}", "hypothesis": f"h {i}", "label": i % 3} for i in range(6)]
XCOPA_ROWS = [
    {"premise": f"p{i}", "choice1": "a", "choice2": "b", "question": "cause", "label": i % 2}
    for i in range(6)
]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_lines(path: Path, lines: list[str]) -> Path:
    """Lines written as given: JSON that ``json.dumps`` would not write (``1.0`` kept)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def build(cli, data: Path, out: Path, task: str = "xnli", *extra: str) -> CliResult:
    split = "validation" if task == "xcopa" else "train"
    lang = "it" if task == "xcopa" else "en"
    return cli("build", "--task", task, "--sources", lang, "--split", split, "--budget", "2",
               "--data", data, "--out", out, *extra)  # fmt: skip


# ------------------------------------------------------------ 1. text columns hold text


@pytest.mark.parametrize(
    ("column", "value", "kind"),
    [("hypothesis", True, "bool"), ("premise", 0.5, "double"), ("premise", 3, "int64")],
)
def test_a_number_or_bool_in_a_text_column_is_refused(
    cli, tmp_path: Path, column: str, value: object, kind: str
) -> None:
    """A JSON ``true`` or ``0.5`` reached the prompt as ``Hypothesis: True``/``Premise: 0.5``."""
    rows = [{**row, column: value} for row in XNLI_ROWS]
    write_jsonl(tmp_path / "data" / "xnli" / "en" / "train.jsonl", rows)
    result = build(cli, tmp_path / "data", tmp_path / "ds")
    assert_one_line_error(
        result, "train.jsonl:", f"column {column!r} holds {kind}, not text", "JSON string"
    )
    assert not (tmp_path / "ds").exists()


def test_a_parquet_int_column_read_as_text_is_refused(cli, tmp_path: Path) -> None:
    """A Parquet int64 premise built ``Premise: 3``."""
    folder = tmp_path / "data" / "xnli" / "en"
    folder.mkdir(parents=True)
    table = pa.table({"premise": [3, 4, 5], "hypothesis": ["a", "b", "c"], "label": [0, 1, 2]})
    pq.write_table(table, folder / "train.parquet")
    result = build(cli, tmp_path / "data", tmp_path / "ds")
    assert_one_line_error(result, "column 'premise' holds int64, not text", "string column")


@pytest.mark.parametrize(("column", "value"), [("premise", 7), ("choice2", False)])
def test_a_multiple_choice_text_column_is_checked_too(
    cli, tmp_path: Path, column: str, value: object
) -> None:
    """XCOPA's premise (a variable) and choices are text; its label, the gold, is a number."""
    rows = [{**row, column: value} for row in XCOPA_ROWS]
    write_jsonl(tmp_path / "data" / "xcopa" / "it" / "validation.jsonl", rows)
    result = build(cli, tmp_path / "data", tmp_path / "ds", "xcopa")
    assert_one_line_error(result, f"column {column!r} holds", "not text; task xcopa reads it")


def test_the_columns_gold_reads_may_be_numbers_and_the_others_may_not(cli, tmp_path: Path) -> None:
    """XStoryCloze's ``answer_right_ending`` (1 or 2, read by ``gold``) is a number on the Hub;
    its sentences are text."""
    rows = [
        {**{f"input_sentence_{n}": f"s{n}" for n in range(1, 5)},
         "sentence_quiz1": "a", "sentence_quiz2": "b", "answer_right_ending": 1 + i % 2}
        for i in range(4)
    ]  # fmt: skip
    path = write_jsonl(tmp_path / "data" / "xstorycloze" / "en" / "train.jsonl", rows)
    args = ("build", "--task", "xstorycloze", "--sources", "en", "--budget", "2", "--data",
            tmp_path / "data")  # fmt: skip
    assert cli(*args, "--out", tmp_path / "ok").code == 0
    write_jsonl(path, [{**row, "input_sentence_3": 3} for row in rows])
    result = cli(*args, "--out", tmp_path / "ds")
    assert_one_line_error(result, "column 'input_sentence_3' holds int64, not text")


# ------------------------------------------------------------ 2. a closed set of values


def test_a_value_outside_a_columns_closed_set_is_refused(cli, tmp_path: Path) -> None:
    """XCOPA's question is cause or effect: "why" built "What is the more plausible why?"."""
    rows = [dict(row) for row in XCOPA_ROWS]
    rows[2]["question"] = "why"
    write_jsonl(tmp_path / "data" / "xcopa" / "it" / "validation.jsonl", rows)
    result = build(cli, tmp_path / "data", tmp_path / "ds", "xcopa")
    assert_one_line_error(
        result, "validation.jsonl: line 3: column 'question' is 'why'; allowed (text): cause"
    )


CLAIMS = """\
name: claims
title: Claims
kind: classification
splits: [train]
languages: [en, de]
columns: [claim, stance, verdict]
labels: [supported, refuted]
label_column: verdict
variables: {claim: row.claim, stance: row.stance}
"""


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ("values: {mood: [for, against]}\n", "values: 'mood' is not among the columns"),
        ("values: {stance: []}\n", "values.stance: the list is empty"),
        ("values: {stance: [for, for]}\n", "'for' is listed twice"),
        ("values: {verdict: ['0', '1']}\n", "'verdict' is the label column"),
        (
            "values: {stance: [for, against]}\nexample: {claim: c, stance: maybe, verdict: 0}\n",
            "example: column 'stance' is 'maybe'; allowed (values.stance): for, against",
        ),
    ],
)
def test_a_definitions_values_are_checked_when_it_loads(
    tmp_path: Path, extra: str, fragment: str
) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(CLAIMS + extra)
    with pytest.raises(MsltError, match=r"claims\.yaml") as caught:
        parse_definition(path)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


# ------------------------------------------------------------ 4. --data ""


@pytest.mark.parametrize("blank", ["", "  "])
def test_an_empty_data_value_is_refused_not_read_as_the_working_folder(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blank: str
) -> None:
    """``Path("")`` is ``.``: ``--data ""`` (an unset variable) read the working folder."""
    write_jsonl(tmp_path / "xnli" / "en" / "train.jsonl", XNLI_ROWS)
    monkeypatch.chdir(tmp_path)
    result = cli("prompts", "render", "xnli/en-instruct", "--task", "xnli", "--lang", "en",
                 "--split", "train", "--data", blank)  # fmt: skip
    assert_one_line_error(result, "data: an empty path", "give hub, synthetic or a folder")
    with pytest.raises(MsltError, match=r"^data: an empty path"):
        is_data_folder(blank)  # select, analyze and recipes decide "a folder?" here


def test_build_refuses_an_empty_data_value(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A corpus task found its file in the working folder itself (``bactrian-x/en/…``)."""
    result = build(cli, "", tmp_path / "ds")  # type: ignore[arg-type]
    assert_one_line_error(result, "data: an empty path")
    rows = [{"instruction": "Say hi", "input": "", "output": "hi", "id": "1"}] * 3
    write_jsonl(tmp_path / "bactrian-x" / "en" / "train.jsonl", rows)
    monkeypatch.chdir(tmp_path)
    result = cli("build", "--task", "bactrian-x", "--sources", "en", "--budget", "1",
                 "--data", "", "--out", tmp_path / "corpus")  # fmt: skip
    assert_one_line_error(result, "data: an empty path")
    assert not (tmp_path / "corpus").exists()


# ------------------------------------------------------------ 5. messages


@pytest.mark.parametrize(
    ("label", "fragment"),
    [
        ("1180591620717411303424", "line 3: label 1180591620717411303424 is not one of"),
        ("1.0", "line 3: label 1.0 is not one of the task's labels (0, 1, 2, or -1"),
    ],
)
def test_a_label_read_as_a_decimal_is_named_at_its_row(
    cli, tmp_path: Path, label: str, fragment: str
) -> None:
    """A label too large for int64, or written ``1.0``, made pyarrow read every label as a
    decimal: the error named no row and showed row 0's label as ``0.0``."""
    labels = ["0", label, "2", "0"]
    lines = [f'{{"premise": "p", "hypothesis": "h", "label": {value}}}' for value in labels]
    write_lines(tmp_path / "data" / "xnli" / "en" / "train.jsonl", ["", *lines])  # blank: no row
    result = build(cli, tmp_path / "data", tmp_path / "ds")
    assert_one_line_error(result, fragment)
    assert "0.0" not in result.err


def test_a_decimal_label_is_named_among_its_languages_rows(cli, tmp_path: Path) -> None:
    """In one table of every language, the row named is the first of the language built,
    counted in the file."""
    (tmp_path / "tasks").mkdir()
    definition = CLAIMS.replace("splits: [train]", "splits: [train]\nlanguage_column: language")
    (tmp_path / "tasks" / "claims.yaml").write_text(definition)
    lines = [
        '{"claim": "c", "stance": "s", "verdict": 0, "language": "en"}',
        '{"claim": "c", "stance": "s", "verdict": 1.0, "language": "de"}',
        '{"claim": "c", "stance": "s", "verdict": 1, "language": "en"}',
        '{"claim": "c", "stance": "s", "verdict": 1.0, "language": "en"}',
    ]
    write_lines(tmp_path / "data" / "claims" / "train.jsonl", lines)
    result = cli("build", "--task", "claims", "--sources", "en", "--budget", "2", "--data",
                 tmp_path / "data", "--tasks-dir", tmp_path / "tasks", "--template", "claims/as-is",
                 "--prompts-dir", write_template(tmp_path), "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, "[language = en]: line 4: label 1.0 is not one of")


def write_template(root: Path) -> Path:
    folder = root / "prompts" / "claims"
    folder.mkdir(parents=True)
    (folder / "as-is.yaml").write_text(
        "id: claims/as-is\ntask: claims\ndescription: The claim.\n"
        'instruction: "{{ claim }}"\nanswer: "{{ label_word }}"\n'
        "verbalizers: {supported: 'yes', refuted: 'no'}\n"
    )
    return root / "prompts"


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ([0.0, 1.0, 2.0], "the label column holds double; labels are whole numbers (0, 1, 2"),
        ([0.0, 1.2e21, 1.0], "row 1 of the file (counted from 0): label 1.2e+21 is not one of"),
    ],
)
def test_a_parquet_label_column_of_decimals_shows_no_misleading_example(
    cli, tmp_path: Path, labels: list[float], fragment: str
) -> None:
    folder = tmp_path / "data" / "xnli" / "en"
    folder.mkdir(parents=True)
    table = pa.table({"premise": ["a", "b", "c"], "hypothesis": ["a", "b", "c"], "label": labels})
    pq.write_table(table, folder / "train.parquet")
    result = build(cli, tmp_path / "data", tmp_path / "ds")
    assert_one_line_error(result, fragment)
    assert "(0.0, …)" not in result.err


def test_a_file_of_empty_rows_is_not_said_to_hold_no_rows(cli, tmp_path: Path) -> None:
    """``{}`` lines are rows with nothing in them: "holds no rows" misdescribed the file."""
    write_lines(tmp_path / "data" / "xnli" / "en" / "train.jsonl", ["{}", "{}"])
    result = build(cli, tmp_path / "data", tmp_path / "ds")
    assert_one_line_error(
        result,
        "train.jsonl: its 2 rows hold none of the columns task xnli needs (premise, "
        "hypothesis, label)",
    )


def test_a_blank_data_is_refused_by_analyze_and_in_a_recipes_parts(cli, tmp_path: Path) -> None:
    """``analyze --data ""`` analysed the synthetic rows; a recipe's mixture part (or watch
    entry) with ``data: ""`` took the build's data, without a word."""
    result = cli("analyze", "--model", "mslt-it:tiny", "--langs", "en,de", "--data", "",
                 "--n", "4", "--out", tmp_path / "an")  # fmt: skip
    assert_one_line_error(result, "data: an empty path")
    assert not (tmp_path / "an").exists()
    recipe = tmp_path / "r.yaml"
    for extra in ('  mixture: [{task: pawsx, share: 0.5, data: ""}]\n', ""):
        watch = (
            "" if extra else 'train:\n  watch: [{task: xnli, langs: [en], steps: [1], data: ""}]\n'
        )
        recipe.write_text(
            "name: t\ndata:\n  task: xnli\n  budget: 60\n" + extra
            + "sources: [[en]]\nmodel:\n  name_or_path: mslt-it:tiny\n" + watch
            + "eval:\n  suite: [xnli]\n"
        )  # fmt: skip
        result = cli("run", recipe, "--dry-run", "-o", tmp_path / "out")
        assert_one_line_error(result, "data: an empty path")
