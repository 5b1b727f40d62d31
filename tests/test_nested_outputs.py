"""An output inside another is the host's only where the host proves it made it.

A comparison (``eval --model A --model B``) holds its models' evaluations, and each proves itself
mslt-it's with its marker; so did a user's own evaluation placed beside them (``eval --out
CMP/mine``, or a copy), and the comparison's ``--overwrite`` removed it. The comparison's record
(``models.json``) is what names its models' folders now: any other evaluation inside is the
user's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mslt_it.errors import MsltError
from mslt_it.evaluation import EvalConfig, evaluate
from mslt_it.evaluation.compare import compare_models
from mslt_it.io import OWNER_FILE
from mslt_it.outputs import foreign_files
from mslt_it.report import write_report


def config(model: str | Path = "") -> EvalConfig:
    return EvalConfig(task="xnli", langs=["en"], data="synthetic", mode="rank", limit=2,
                      bootstrap_samples=0, model=str(model))  # fmt: skip


@pytest.fixture
def comparison(tiny_model_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "models"
    compare_models(config(), [str(tiny_model_dir)], out)
    return out


def test_a_users_evaluation_copied_into_a_comparison_survives_its_overwrite(
    tiny_model_dir: Path, comparison: Path
) -> None:
    mine = comparison / "my-eval"
    shutil.copytree(comparison / tiny_model_dir.name, mine)
    kept = (mine / "results.json").read_bytes()
    assert foreign_files(comparison) == ["my-eval/"]
    with pytest.raises(MsltError, match="holds 'my-eval/', an mslt-it evaluation that is not"):
        compare_models(config(), [str(tiny_model_dir)], comparison, overwrite=True)
    assert (mine / "results.json").read_bytes() == kept
    shutil.rmtree(mine)
    compare_models(config(), [str(tiny_model_dir)], comparison, overwrite=True)  # its own go
    assert (comparison / tiny_model_dir.name / "results.json").is_file()


def test_an_evaluation_into_a_comparison_is_refused_unless_one_of_its_models(
    tiny_model_dir: Path, comparison: Path
) -> None:
    with pytest.raises(MsltError, match="holds no evaluation but its own models'"):
        evaluate(config(tiny_model_dir), comparison / "mine")
    assert not (comparison / "mine").exists()
    with pytest.raises(MsltError, match="mslt-it's evaluation, which never holds an evaluation"):
        evaluate(config(tiny_model_dir), comparison / tiny_model_dir.name / "deeper")
    evaluate(config(tiny_model_dir), comparison / tiny_model_dir.name, overwrite=True)


def test_an_evaluation_inside_a_single_evaluation_is_the_users(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    one = tmp_path / "one"
    evaluate(config(tiny_model_dir), one)
    with pytest.raises(MsltError, match="mslt-it's evaluation, which never holds an evaluation"):
        evaluate(config(tiny_model_dir), one / "inner")
    shutil.copytree(one, tmp_path / "copy")
    shutil.move(tmp_path / "copy", one / "inner")  # moved in by hand
    assert foreign_files(one) == ["inner/"]
    with pytest.raises(MsltError, match="holds 'inner/', an mslt-it evaluation that is not"):
        evaluate(config(tiny_model_dir), one, overwrite=True)
    assert (one / "inner" / "results.json").is_file()


def test_a_report_of_an_evaluation_written_into_it_goes_with_it(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    one = tmp_path / "one"
    evaluate(config(tiny_model_dir), one)
    write_report([one], one / "report")
    assert foreign_files(one) == []
    evaluate(config(tiny_model_dir), one, overwrite=True)
    assert not (one / "report").exists()


def test_a_comparison_marked_before_the_record_keeps_its_rule(
    tiny_model_dir: Path, comparison: Path
) -> None:
    """A marker without ``format`` and no models.json was written when every evaluation inside
    an evaluation was taken for its own: its comparisons are still removed whole by their
    --overwrite."""
    shutil.copytree(comparison / tiny_model_dir.name, comparison / "other")
    marker = json.loads((comparison / OWNER_FILE).read_text())
    del marker["format"]
    del marker["files"]["models.json"]
    (comparison / "models.json").unlink()
    (comparison / OWNER_FILE).write_text(json.dumps(marker))
    assert foreign_files(comparison) == []


def test_a_comparison_with_its_record_but_no_format_keeps_to_its_record(
    tiny_model_dir: Path, comparison: Path
) -> None:
    """Comparisons made between the record and the format hold models.json but no format:
    read by the old rule, an evaluation put into one was taken for its own, and removed."""
    marker = json.loads((comparison / OWNER_FILE).read_text())
    del marker["format"]
    (comparison / OWNER_FILE).write_text(json.dumps(marker))
    with pytest.raises(MsltError, match="holds no evaluation but its own models'"):
        evaluate(config(tiny_model_dir), comparison / "mine")
    shutil.copytree(comparison / tiny_model_dir.name, comparison / "mine")
    assert foreign_files(comparison) == ["mine/"]


@pytest.mark.parametrize("written", ['"2"', "null", "true", "[2]"])
def test_a_marker_whose_format_is_no_number_proves_nothing(
    tiny_model_dir: Path, comparison: Path, written: str
) -> None:
    """It was compared with 2 as it was: an internal error (a TypeError)."""
    marker = json.loads((comparison / OWNER_FILE).read_text())
    marker["format"] = json.loads(written)
    (comparison / OWNER_FILE).write_text(json.dumps(marker))
    with pytest.raises(MsltError, match="damaged"):
        compare_models(config(), [str(tiny_model_dir)], comparison, overwrite=True)
    assert (comparison / tiny_model_dir.name / "results.json").is_file()


def test_an_edited_record_is_named_when_the_comparison_is_overwritten(
    tiny_model_dir: Path, comparison: Path
) -> None:
    record = comparison / "models.json"
    record.write_text(record.read_text().replace('"models"', ' "models"'))
    with pytest.raises(MsltError, match=r"models\.json.*was removed or edited.*remove the"):
        compare_models(config(), [str(tiny_model_dir)], comparison, overwrite=True)
    assert (comparison / tiny_model_dir.name / "results.json").is_file()


def test_a_report_never_goes_into_a_run_folder_of_the_evaluation_it_reads(
    tiny_model_dir: Path, comparison: Path
) -> None:
    """Given the comparison, its model's folder holds a results.json the report reads: a report
    written there lay inside its own input (the comparison's folder itself may hold one)."""
    inside_run = comparison / tiny_model_dir.name / "rep"
    with pytest.raises(MsltError, match="lies inside the input"):
        write_report([comparison], inside_run)
    assert not inside_run.exists()
    write_report([comparison], comparison / "rep")
    assert (comparison / "rep" / "report.md").is_file()
