"""`mslt-it train`: a resume that would not be the same run, the identity of a best-checkpoint
run, truncation settings TRL would undo, a recipe's unknown sections, special files as the
dataset, and the option named beside the field it set."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error

from mslt_it.config import DataConfig
from mslt_it.data import build_dataset

FAST = ["--batch-size", "2", "--lora-r", "4", "--sft", "gradient_checkpointing=false"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one intra-op thread


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("review") / "ds"
    return build_dataset(DataConfig(task="xnli", sources=["en", "de"], budget=16), out).path


def train_args(model: Path, dataset: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", dataset, "--model", model, "--out", out, *FAST, *extra]


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs."""


@pytest.mark.slow
def test_a_checkpoint_without_optimizer_state_is_not_resumed_as_the_same_run(
    cli, tiny_model_dir: Path, dataset: Path, tmp_path: Path, monkeypatch
) -> None:
    """``save_only_model`` checkpoints hold the weights alone; the Trainer resumed from one
    with a fresh optimizer and schedule (warmup again) and run.json kept the config hash of
    the uninterrupted run. ``--resume`` now refuses; ``mslt-it run`` (``replace_other``)
    trains it again, which gives the uninterrupted run's weights."""
    import mslt_it.training.run as run_module
    from mslt_it.training import ModelConfig, validate_train_section

    extra = ("--max-steps", "2", "--save-steps", "1", "--sft", "save_only_model=true")
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert cli(*train_args(tiny_model_dir, dataset, whole, *extra)).code == 0

    def killed(*_args, **_kwargs):
        raise Killed

    monkeypatch.setattr(run_module.outputs, "finish", killed)
    with pytest.raises(Killed):
        cli(*train_args(tiny_model_dir, dataset, stopped, *extra))
    monkeypatch.undo()
    shutil.rmtree(stopped / "checkpoints" / "checkpoint-2")  # killed before its second save
    assert not (stopped / "checkpoints" / "checkpoint-1" / "optimizer.pt").exists()

    refused = cli(*train_args(tiny_model_dir, dataset, stopped, *extra, "--resume"))
    assert_one_line_error(refused, "checkpoint-1", "sft.save_only_model", "--overwrite")
    assert (stopped / "checkpoints" / "checkpoint-1").is_dir()  # nothing touched
    plain = cli(*train_args(tiny_model_dir, dataset, stopped, *extra))  # advised --resume, which
    assert_one_line_error(plain, "checkpoint-1", "cannot be resumed", "--overwrite")  # refused
    assert "--resume" not in plain.err

    section = {
        "dataset": str(dataset),
        "lora": {"r": 4},
        "sft": {
            "per_device_train_batch_size": 2,
            "gradient_checkpointing": False,
            "max_steps": 2,
            "save_steps": 1,
            "save_only_model": True,
        },
    }
    model = ModelConfig(name_or_path=str(tiny_model_dir))
    config = validate_train_section(section)
    run = run_module.train(model, config, stopped, resume=True, replace_other=True).run
    reference = json.loads((whole / "run.json").read_text())
    assert run["config_hash"] == reference["config_hash"]
    assert run["resumed_from_step"] is None and run["steps"] == 2
    weights = "adapter_model.safetensors"
    assert (stopped / weights).read_bytes() == (whole / weights).read_bytes()


def test_the_save_interval_is_part_of_a_best_checkpoint_runs_identity(
    tiny_model_dir: Path, dataset: Path, tmp_path: Path
) -> None:
    """With load_best_model_at_end the saved checkpoints are the candidates for the final
    adapter, so save_steps picks the weights; without it the hash stays as it was."""
    from mslt_it.training import ModelConfig, validate_train_section
    from mslt_it.training.run import plan_run

    model = ModelConfig(name_or_path=str(tiny_model_dir))

    def run_hash(**sft) -> str:
        section = {"dataset": str(dataset), "sft": {"max_steps": 20, **sft}}
        return plan_run(model, validate_train_section(section), tmp_path / "p").config_hash

    best = {
        "eval_steps": 5,
        "eval_strategy": "steps",
        "load_best_model_at_end": True,
        "metric_for_best_model": "eval_heldout_loss",
    }
    assert run_hash(**best, save_steps=5) != run_hash(**best, save_steps=10)
    assert run_hash(save_steps=5) == run_hash(save_steps=10)


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--packing", "--sft", "packing_strategy=bfd_split"], "train.sft.packing_strategy: "),
        (["--sft", "truncation_mode=keep_end"], "train.sft.truncation_mode: 'keep_end'"),
    ],
)
def test_settings_that_undo_truncation_are_refused_before_any_work(
    cli, tiny_model_dir: Path, dataset: Path, tmp_path: Path, extra: list[str], said: str
) -> None:
    """bfd_split split the long examples that truncate had kept (an internal error from the
    length check); keep_end kept their ends, where the recipe's field says the first tokens."""
    out = tmp_path / "run"
    args = train_args(tiny_model_dir, dataset, out, "--max-steps", "1", "--max-length", "40")
    result = cli(*args, "--on-overlength", "truncate", *extra)
    assert_one_line_error(result, said, "on_overlength truncate", "--on-overlength")
    assert not out.exists()


def test_train_recipe_refuses_an_unknown_top_level_key_and_reads_past_other_steps(
    cli, tiny_model_dir: Path, dataset: Path, tmp_path: Path
) -> None:
    """A misspelt ``train:`` trained with the defaults (``mslt-it run`` refuses the same
    file); a whole recipe's sections for other steps are allowed, and ignored."""
    recipe, out = tmp_path / "r.yaml", tmp_path / "run"
    model = f"model: {{name_or_path: {tiny_model_dir}}}\n"
    args = ("train", "--recipe", recipe, "--dataset", dataset, "--out", out, "--max-steps", "1")
    for body, said in (
        ("trian:\n  max_length: 64\n", "trian: unknown field (a typo of 'train'?)"),
        ("x: 1\n", "x: unknown field"),
    ):
        recipe.write_text(model + body)
        assert_one_line_error(cli(*args), f"{recipe}: {said}")
        assert not out.exists()
    recipe.write_text(
        "name: t\ndescription: d\noutput_dir: o\ntasks_dir: []\nsources: [en]\n"
        "data: {task: xnli}\neval: {task: xnli}\nreport: {}\n"
        f"{model}train: {{max_length: 0}}\n"
    )
    assert_one_line_error(cli(*args), "train.max_length")  # the train section's own error


def test_a_device_or_a_fifo_given_as_the_dataset_is_named(
    cli, tiny_model_dir: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path, said in (("/dev/null", "is a device"), (fifo, "is a FIFO (named pipe)")):
        result = cli("train", "--dataset", path, "--model", tiny_model_dir, "--out", tmp_path / "o")
        assert_one_line_error(result, f"train.dataset: {str(path)!r} {said}", "dataset's folder")


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--max-length", "0"], "train.max_length (--max-length): must be > 0, got 0"),
        (
            ["--max-steps", "99999999999999999999"],
            "train.sft.max_steps (--max-steps): 99999999999999999999 is larger than 2147483647",
        ),
    ],
)
def test_a_bad_option_is_named_beside_its_field(
    cli, tiny_model_dir: Path, dataset: Path, tmp_path: Path, extra: list[str], said: str
) -> None:
    out = tmp_path / "o"
    result = cli("train", "--dataset", dataset, "--model", tiny_model_dir, "--out", out, *extra)
    assert_one_line_error(result, said)


def test_a_resumed_run_records_the_intervals_its_checkpoint_kept() -> None:
    """Resumed with --save-steps 5, a run whose checkpoint was saved every 10 steps logged and
    saved every 10 (the Trainer keeps a checkpoint's intervals), and run.json said 5."""
    from types import SimpleNamespace

    from mslt_it.training.run import intervals_used

    args = SimpleNamespace(logging_steps=5, save_steps=5, eval_steps=None)
    state = SimpleNamespace(logging_steps=10, save_steps=10, eval_steps=500)
    sft = {"save_steps": 5, "learning_rate": 1e-4}
    assert intervals_used(sft, args, state) == {
        "save_steps": 10, "learning_rate": 1e-4, "logging_steps": 10
    }  # fmt: skip
    same = SimpleNamespace(logging_steps=0.1, save_steps=10, eval_steps=None)  # a ratio: as is
    assert intervals_used(sft, same, state) == sft


def test_an_unmarked_dataset_whose_rows_are_not_its_manifests_is_refused(
    cli, tiny_model_dir: Path, dataset: Path, tmp_path: Path
) -> None:
    """A copy without its marker, with another build's rows swapped in: the training ran on
    Swahili and Urdu and run.json recorded the manifest's en and de as its sources. No marker
    vouches for such rows, so they are checked against the manifest, as ``adopt`` checks them."""
    from mslt_it.outputs import OWNER_FILE

    other = build_dataset(DataConfig(task="xnli", sources=["sw", "ur"], budget=16), tmp_path / "o")
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    (copy / OWNER_FILE).unlink()
    for arrow in copy.glob("*.arrow"):
        arrow.unlink()
    for arrow in other.path.glob("*.arrow"):
        shutil.copy(arrow, copy / arrow.name)
    result = cli(*train_args(tiny_model_dir, copy, tmp_path / "ad", "--max-steps", "1"))
    assert_one_line_error(result, "its rows are not those its manifest.json's fingerprint names")
    assert not (tmp_path / "ad").exists()


@pytest.mark.slow
def test_a_note_on_the_settings_never_comes_before_an_error_about_the_output(
    cli, tiny_model_dir: Path, dataset: Path, tmp_path: Path
) -> None:
    """``--save-steps 5`` aligns the logging interval, with a note; it was printed while the
    run was planned, so the refusal of the folder came as two lines."""
    out = tmp_path / "ad"
    assert cli(*train_args(tiny_model_dir, dataset, out, "--max-steps", "1")).code == 0
    other = ("--max-steps", "4", "--save-steps", "5", "--learning-rate", "1e-3", "--resume")
    result = cli(*train_args(tiny_model_dir, dataset, out, *other))
    assert_one_line_error(result, "holds a different run")


def test_resume_never_removes_a_users_file_among_the_checkpoints(
    cli, tiny_model_dir: Path, dataset: Path, tmp_path: Path, monkeypatch
) -> None:
    """A killed run's ``checkpoints/`` went whole when the resumed run finished, with the
    user's notes put there (``--overwrite`` names such a file and stops). A resume names them
    and stops; a file put there while a run trains is kept, and said."""
    import mslt_it.training.run as run_module
    from mslt_it.training.outputs import tidy

    out = tmp_path / "ad"
    extra = ("--max-steps", "2", "--save-steps", "1")

    def killed(*_args, **_kwargs):
        raise Killed

    monkeypatch.setattr(run_module.outputs, "finish", killed)
    with pytest.raises(Killed):
        cli(*train_args(tiny_model_dir, dataset, out, *extra))
    monkeypatch.undo()
    notes = out / "checkpoints" / "mine" / "thesis.txt"
    notes.parent.mkdir()
    notes.write_text("my thesis")
    result = cli(*train_args(tiny_model_dir, dataset, out, *extra, "--resume"))
    assert_one_line_error(result, "checkpoints/mine/thesis.txt", "which mslt-it did not write")
    assert notes.read_text() == "my thesis"
    tidy(out, keep_checkpoints=False)  # as a finished run tidies, the notes put there meanwhile
    assert notes.read_text() == "my thesis"
