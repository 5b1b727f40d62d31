"""A comparison of models made again keeps what is unchanged: ``compare_models(update=True)``
drops the models no longer compared, and a recipe's compare step is reopened model by model
instead of being removed whole (every compared model was predicted again when a setting or a
task definition changed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mslt_it.errors import MsltError
from mslt_it.evaluation import EvalConfig
from mslt_it.evaluation.compare import compare_models, reopen_comparison
from mslt_it.outputs import listed_files
from mslt_it.recipes import load_recipe
from mslt_it.runner import STEP_RECORD, make_plan, undo_output


def predicted(folder: Path) -> int:
    return json.loads((folder / "timings.json").read_text())["examples_predicted"]


def config(limit: int) -> EvalConfig:
    return EvalConfig(task="xnli", langs=["en", "de"], data="synthetic", mode="rank",
                      limit=limit, chunk_size=2, bootstrap_samples=0)  # fmt: skip


def test_a_comparison_updated_keeps_its_predictions_and_drops_a_model(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    out = tmp_path / "models"
    compare_models(config(4), [str(tiny_model_dir), str(other)], out)
    mine = out / tiny_model_dir.name
    assert predicted(mine) == 8 and predicted(out / "other") == 8
    # the user's: an evaluation of their own (a copy of one of the comparison's) and a file
    shutil.copytree(out / "other", out / "my-eval")
    (out / "notes.txt").write_text("mine")
    kept = (out / "my-eval" / "results.json").read_bytes()

    assert reopen_comparison(out)
    assert (out / "my-eval" / "results.json").read_bytes() == kept  # not reopened
    compare_models(config(6), [str(tiny_model_dir)], out, update=True)
    assert predicted(mine) == 2 * (6 - 4)  # the rows the raised limit adds, nothing else
    assert not (out / "other").exists()  # the comparison's, proven by its record: dropped
    assert (out / "my-eval" / "results.json").read_bytes() == kept
    assert "notes.txt" not in (listed_files(out) or {})  # not claimed as mslt-it's
    scores = (out / "comparison" / "scores.csv").read_text()
    assert "other" not in scores.split("\n", 1)[1]  # the report reads the models compared
    compare_models(config(6), [str(tiny_model_dir)], out, update=True)
    assert predicted(mine) == 0  # finished already: nothing predicted again


def test_a_dropped_models_folder_holding_the_users_files_stays(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Kept for the user's file, and said: it was kept without a word, and a report of the
    folder then showed the model no longer compared."""
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    out = tmp_path / "models"
    compare_models(config(2), [str(tiny_model_dir), str(other)], out)
    (out / "other" / "notes.txt").write_text("mine")
    capsys.readouterr()
    compare_models(config(2), [str(tiny_model_dir)], out, update=True)
    assert (out / "other" / "notes.txt").read_text() == "mine"
    said = capsys.readouterr().err
    assert "a model no longer compared" in said and "notes.txt" in said


def test_a_models_folder_the_comparison_did_not_make_is_refused(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A link named like a model's folder was written through (an evaluation elsewhere
    replaced); a folder of the user's named like a model added was replaced."""
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    out = tmp_path / "models"
    compare_models(config(2), [str(tiny_model_dir)], out)
    (out / "other").mkdir()
    (out / "other" / "results.json").write_text("{}")
    with pytest.raises(MsltError, match="is not one this comparison made"):
        compare_models(config(2), [str(tiny_model_dir), str(other)], out, update=True)
    shutil.rmtree(out / "other")
    (out / "other").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(MsltError, match="is a link"):
        compare_models(config(2), [str(tiny_model_dir), str(other)], out, update=True)
    assert not (tmp_path / "elsewhere").exists()


def test_a_recipes_compare_step_is_reopened_not_removed(tiny_model_dir: Path, tmp_path: Path):
    """The step made again after its settings changed predicts only what they change."""
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    path = tmp_path / "recipe.yaml"

    def compare_step(limit: int):
        path.write_text(
            f"name: t\noutput_dir: {tmp_path / 'out'}\n"
            "data: {task: xnli, budget: 30, data: synthetic}\n"
            f"model: {{name_or_path: {tiny_model_dir}}}\nsources: [[en]]\n"
            f"eval: {{task: xnli, langs: [en, de], mode: rank, limit: {limit}, chunk_size: 2, "
            f"bootstrap_samples: 0, compare_models: [{other}]}}\n"
        )
        return next(s for s in make_plan(load_recipe(path)).steps if s.name == "compare")

    step = compare_step(4)
    assert step.reopen is not None
    step.execute()
    step.mark_done(step.input_hash())
    assert (step.output / STEP_RECORD).is_file()
    step = compare_step(6)
    assert step.status() == "stale"
    undo_output(step, "compare")
    step.execute()
    for name in (tiny_model_dir.name, "other"):
        assert predicted(step.output / name) == 2 * (6 - 4)


def test_a_compare_step_whose_models_were_changed_by_hand_is_not_done(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The step's record covered its inputs and the comparison's own files, not its models'
    evaluations: a model's results edited, or its folder removed, and the step stayed done."""
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    path = tmp_path / "recipe.yaml"
    path.write_text(
        f"name: t\noutput_dir: {tmp_path / 'out'}\n"
        "data: {task: xnli, budget: 30, data: synthetic}\n"
        f"model: {{name_or_path: {tiny_model_dir}}}\nsources: [[en]]\n"
        "eval: {task: xnli, langs: [en], mode: rank, limit: 2, bootstrap_samples: 0, "
        f"compare_models: [{other}]}}\n"
    )

    def compare_step():
        return next(s for s in make_plan(load_recipe(path)).steps if s.name == "compare")

    step = compare_step()
    step.execute()
    step.mark_done(step.input_hash())
    assert compare_step().status() == "done"
    results = step.output / "other" / "results.json"
    kept = results.read_bytes()
    results.write_bytes(kept.replace(b'"accuracy"', b' "accuracy"'))
    step = compare_step()
    assert step.status() == "stale"
    with pytest.raises(MsltError, match=r"other/results\.json', edited since mslt-it wrote it"):
        undo_output(step, "compare")
    results.write_bytes(kept)
    assert compare_step().status() == "done"
    report = step.output / "comparison" / "report.md"
    made = report.read_bytes()
    report.write_bytes(made + b"edited\n")  # the comparison's own report: part of it too
    assert compare_step().status() == "stale"
    report.write_bytes(made)
    assert compare_step().status() == "done"
    shutil.rmtree(step.output / "other")
    step = compare_step()
    assert step.status() == "stale"
    undo_output(step, "compare")
    step.execute()
    assert predicted(step.output / "other") == 2  # made again; the other model kept
    assert predicted(step.output / tiny_model_dir.name) == 0


def test_a_killed_update_adding_a_model_resumes(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record was written once every model was done: a run killed in the model it added
    left a folder the record did not name, and the same command was refused for good."""
    import mslt_it.evaluation.compare as compare

    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    out = tmp_path / "models"
    compare_models(config(2), [str(tiny_model_dir)], out)
    real = compare.evaluate

    class Killed(BaseException):
        """Stands for kill -9."""

    def killed(single, folder, **kwargs):
        if Path(folder).name == "other":
            Path(folder).mkdir()
            raise Killed
        return real(single, folder, **kwargs)

    monkeypatch.setattr(compare, "evaluate", killed)
    with pytest.raises(Killed):
        compare_models(config(2), [str(tiny_model_dir), str(other)], out, update=True)
    monkeypatch.setattr(compare, "evaluate", real)
    compare_models(config(2), [str(tiny_model_dir), str(other)], out, update=True)
    assert predicted(out / "other") == 4


def test_the_record_removed_edited_or_the_users_is_one_line(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Without its record nothing tells the comparison's folders from the user's: a recipe
    re-run removed the whole folder, the user's evaluations in it too."""
    out = tmp_path / "models"
    compare_models(config(2), [str(tiny_model_dir)], out)
    record = out / "models.json"
    kept = record.read_bytes()
    record.unlink()
    for make_again in (
        lambda: compare_models(config(2), [str(tiny_model_dir)], out, update=True),
        lambda: reopen_comparison(out),
    ):
        with pytest.raises(MsltError, match="names the comparison's model folders, was removed"):
            make_again()
    record.write_bytes(kept.replace(b'"models"', b' "models"'))
    with pytest.raises(MsltError, match="was removed or edited"):
        reopen_comparison(out)
    record.write_bytes(kept)
    assert reopen_comparison(out)

    mine = tmp_path / "mine"
    compare_models(config(2), [str(tiny_model_dir)], mine)
    (mine / ".mslt-it-output.json").write_text(
        (mine / ".mslt-it-output.json").read_text().replace('"models.json"', '"x.json"')
    )
    with pytest.raises(MsltError, match="is not mslt-it's"):
        compare_models(config(2), [str(tiny_model_dir)], mine, update=True)


def test_a_model_folder_named_like_the_record_is_renamed() -> None:
    from mslt_it.evaluation.compare import model_folders

    assert model_folders(["models.json", "comparison"]) == {
        "models.json": "models.json-2", "comparison": "comparison-2"
    }  # fmt: skip


def test_a_model_left_out_without_update_stays_the_comparisons(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Made again without one of its models and without --update, the comparison keeps that
    model's evaluation as its own: given again later it is finished, not refused as the user's."""
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    out = tmp_path / "models"
    compare_models(config(2), [str(tiny_model_dir), str(other)], out)
    compare_models(config(2), [str(tiny_model_dir)], out)
    assert (out / "other" / "results.json").is_file()
    compare_models(config(2), [str(tiny_model_dir), str(other)], out)
    assert predicted(out / "other") == 4  # its first evaluation's, finished: not made again
    compare_models(config(2), [str(tiny_model_dir)], out, update=True)
    assert not (out / "other").exists()


def test_an_update_refused_for_the_users_file_changes_nothing_first(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A report in the comparison holding a file of the user's stopped the update only after
    a dropped model's folder was removed (its record still naming it); a file of the user's in
    a kept model's folder stopped it after the other model was evaluated again."""
    from mslt_it.report import write_report

    other, third = tmp_path / "other", tmp_path / "third"
    shutil.copytree(tiny_model_dir, other)
    shutil.copytree(tiny_model_dir, third)
    out = tmp_path / "models"
    compare_models(config(2), [str(tiny_model_dir), str(other)], out)
    write_report([out], out / "rep")
    (out / "rep" / "mine.txt").write_text("mine")
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    with pytest.raises(MsltError, match=r"mine\.txt"):
        compare_models(config(2), [str(tiny_model_dir), str(third)], out, update=True)
    (out / "rep" / "mine.txt").unlink()
    (out / "other" / "notes.txt").write_text("mine")
    with pytest.raises(MsltError, match=r"notes\.txt"):
        compare_models(config(4), [str(tiny_model_dir), str(other)], out, update=True)
    (out / "other" / "notes.txt").unlink()
    after = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert after == {p: b for p, b in before.items() if p.name != "mine.txt"}


def test_an_update_that_stops_keeps_the_models_it_would_drop(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A folder of the user's where the comparison's table goes, or a new model that does not
    load, stopped the update after the models no longer given were removed (and the record
    rewritten). Those models go only once every given model is evaluated."""
    other, broken = tmp_path / "other", tmp_path / "broken"
    shutil.copytree(tiny_model_dir, other)
    shutil.copytree(tiny_model_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    out = tmp_path / "models"
    compare_models(config(2), [str(tiny_model_dir), str(other)], out)
    record = (out / "models.json").read_bytes()
    shutil.rmtree(out / "comparison")
    (out / "comparison").mkdir()
    (out / "comparison" / "notes.md").write_text("mine")
    with pytest.raises(MsltError, match="comparison"):
        compare_models(config(2), [str(tiny_model_dir)], out, update=True)
    assert (out / "other" / "results.json").is_file()
    assert (out / "models.json").read_bytes() == record
    shutil.rmtree(out / "comparison")
    with pytest.raises(MsltError, match="broken"):
        compare_models(config(2), [str(tiny_model_dir), str(broken)], out, update=True)
    assert (out / "other" / "results.json").is_file()
    compare_models(config(2), [str(tiny_model_dir)], out, update=True)
    assert not (out / "other").exists() and (out / "comparison" / "report.md").is_file()
