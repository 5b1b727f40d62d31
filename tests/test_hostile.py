"""Bad input, lost data, faults and concurrent runs, tried as a hostile user would.

Each bad input: exit status 2, one line on stderr, no traceback, nothing written. Each data-loss
case: the inputs survive, byte for byte. Concurrency: a second process on the same output stops
at once and names the first; a shared first-time step waits instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import assert_one_line_error

from mslt_it.outputs import OWNER_FILE, output_lock

FAST_TRAIN = ["--max-steps", "2", "--batch-size", "4", "--lora-r", "4"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its content hash: what must survive unchanged."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def build_args(out: Path, *extra: str) -> list[str]:
    return ["build", "--task", "xnli", "--sources", "en,de", "--budget", "8", "--out", out, *extra]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mslt_it.config import DataConfig
    from mslt_it.data import build_dataset

    out = tmp_path_factory.mktemp("hostile") / "ds"
    return build_dataset(DataConfig(task="xnli", sources=["en", "de"], budget=16), out).path


# ------------------------------------------------------------------------------- lost data


def test_overwrite_refuses_a_folder_mslt_it_did_not_write(cli, tmp_path: Path) -> None:
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("years of work")
    before = snapshot(mine)
    assert_one_line_error(cli(*build_args(mine, "--overwrite")), "did not write", "thesis")
    assert snapshot(mine) == before


def test_overwrite_of_the_working_directory_is_refused_not_a_crash(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(cli(*build_args(Path("."), "--overwrite")), "did not write")
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_overwrite_replaces_mslt_its_own_dataset_and_leaves_nothing_beside_it(
    cli, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    assert cli(*build_args(out)).code == 0
    assert (out / OWNER_FILE).is_file()
    assert cli(*build_args(out, "--seed", "3", "--overwrite")).code == 0
    assert json.loads((out / "manifest.json").read_text())["config"]["seed"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no .ds.old, no temporary


def test_an_output_of_another_kind_is_not_replaced(cli, tmp_path: Path) -> None:
    report = tmp_path / "rep"
    report.mkdir()
    (report / OWNER_FILE).write_text(json.dumps({"kind": "report"}))
    (report / "report.md").write_text("# results")
    assert_one_line_error(cli(*build_args(report, "--overwrite")), "report, not a dataset")
    assert (report / "report.md").read_text() == "# results"


def test_out_naming_a_file_is_refused(cli, tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert_one_line_error(cli(*build_args(target, "--overwrite")), "is a file")
    assert target.read_text() == "x"


def test_train_refuses_to_write_into_its_own_dataset(
    cli, dataset: Path, tiny_model_dir: Path
) -> None:
    before = snapshot(dataset)
    for out in (dataset, dataset / "adapter", dataset.parent):
        result = cli(
            "train", "--dataset", dataset, "--model", tiny_model_dir, "--out", out,
            "--overwrite", *FAST_TRAIN,
        )  # fmt: skip
        assert_one_line_error(result, "input")
        assert snapshot(dataset) == before


def test_an_unwritable_output_is_refused_before_any_work(cli, tmp_path: Path) -> None:
    # /proc takes no new files, even from root (a chmod'ed folder would not stop root)
    assert_one_line_error(cli(*build_args(Path("/proc/mslt-it-test/ds"))), "cannot write")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(cli, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert_one_line_error(cli(*build_args(locked / "ds")), "cannot write")
    finally:
        locked.chmod(0o755)


def test_local_base_models_are_recorded_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mslt_it.training import ModelConfig

    (tmp_path / "tiny").mkdir()
    monkeypatch.chdir(tmp_path)
    assert ModelConfig(name_or_path="tiny").name_or_path == str(tmp_path / "tiny")
    assert ModelConfig(name_or_path="Qwen/Qwen2.5-0.5B").name_or_path == "Qwen/Qwen2.5-0.5B"


@pytest.mark.slow
def test_training_leaves_its_dataset_untouched(
    cli, dataset: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    before = snapshot(dataset)
    out = tmp_path / "adapter"
    result = cli(
        "train", "--dataset", dataset, "--model", tiny_model_dir, "--out", out, *FAST_TRAIN
    )
    assert result.code == 0, result.err
    assert snapshot(dataset) == before  # no cache-*.arrow: inputs are read-only
    run = json.loads((out / "run.json").read_text())
    assert run["base_model"] == str(tiny_model_dir.resolve())


# --------------------------------------------------------------------------- nonsense values


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        (["--max-steps", "0"], "train.sft.max_steps (--max-steps)"),
        (["--max-steps", "-5"], "got -5"),
        (["--epochs", "0"], "num_train_epochs"),
        (["--learning-rate", "nan"], "learning_rate"),
        (["--learning-rate", "-1e-4"], "learning_rate"),
        (["--lora-r", "0"], "train.lora.r"),
        (["--batch-size", "0"], "per_device_train_batch_size"),
        (["--lora-dropout", "2"], "lora_dropout"),
        (["--sft", "per_device_train_batch_size=abc"], "'abc'"),
        (["--lora", "r=big"], "'big'"),
        (["--seed", "-1"], "train.sft.seed"),
        (["--sft", "gradient_checkpointing=maybe"], "true or false"),
    ],
)
def test_nonsense_training_values_fail_before_any_work(
    cli, dataset: Path, tiny_model_dir: Path, tmp_path: Path, option: list[str], fragment: str
) -> None:
    out = tmp_path / "adapter"
    started = time.monotonic()
    result = cli("train", "--dataset", dataset, "--model", tiny_model_dir, "--out", out, *option)
    assert_one_line_error(result, fragment)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []
    assert time.monotonic() - started < 60  # refused up front, not after loading the model


def test_a_recipe_with_a_bad_lora_rank_fails_its_dry_run(cli, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: r\ndata: {task: xnli, budget: 10, data: synthetic}\nsources: [en]\n"
        "model: {name_or_path: mslt-it:tiny}\ntrain: {lora: {r: big}}\n"
    )
    assert_one_line_error(cli("run", recipe, "--dry-run"), "train.lora.r", "'big'")


# ------------------------------------------------------------------------------------ report


def results_document(run: str, mode: str, score: float, sources: list[str] | None = None) -> dict:
    adapter = {"sources": sources, "name": run} if sources else None
    return {
        "kind": "mslt-it eval results",
        "run": run,
        "mode": mode,
        "model": "/models/tiny",
        "backend": "hf",
        "adapter": adapter,
        "data": "synthetic",
        "tasks": {
            "xnli": {
                "metric": "accuracy",
                "languages": {"en": {"score": score, "n": 10, "ci95": [score - 1, score + 1]}},
            }
        },
    }


def write_results(folder: Path, document: dict) -> None:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(document))


def test_report_keeps_runs_of_the_same_name_apart(cli, tmp_path: Path) -> None:
    write_results(tmp_path / "a" / "base", results_document("base", "generate", 0.0))
    write_results(tmp_path / "b" / "base", results_document("base", "rank", 40.0))
    write_results(tmp_path / "c" / "base", results_document("base", "rank", 35.0))
    write_results(tmp_path / "c" / "en", results_document("en", "rank", 90.0, ["en"]))
    result = cli(
        "report", tmp_path / "a", tmp_path / "b", tmp_path / "c", tmp_path / "b",
        "--out", tmp_path / "rep",
    )  # fmt: skip
    assert result.code == 0, result.err
    lines = (tmp_path / "rep" / "scores.csv").read_text().splitlines()[1:]
    runs = {line.split(",")[0]: float(line.split(",")[5]) for line in lines}
    assert len(lines) == 4 == len(runs)  # no row twice, although b was given twice
    assert runs["base (generate)"] == 0.0 and runs["SSLT en"] == 90.0
    rank_runs = {name: score for name, score in runs.items() if name.startswith("base (rank)")}
    assert sorted(rank_runs.values()) == [35.0, 40.0]  # told apart by folder
    assert all("[" in name for name in rank_runs)


@pytest.mark.parametrize(
    "content",
    [b'{"tasks": ', b"\x00\xff\xfe binary", b'["not", "a", "mapping"]', b'{"tasks": {"x": 1}}'],
)
def test_report_refuses_a_damaged_results_file(cli, tmp_path: Path, content: bytes) -> None:
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "results.json").write_bytes(content)
    assert_one_line_error(cli("report", tmp_path / "ev", "--out", tmp_path / "rep"), "results.json")
    assert not (tmp_path / "rep").exists()


# ------------------------------------------------------------------------------- concurrency


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mslt_it.outputs import output_lock
    with output_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def hold_lock(out: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_process_on_the_same_output_is_refused_then_free_after_kill_9(
    cli, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    holder = hold_lock(out, 60)
    try:
        result = cli(*build_args(out))
        assert_one_line_error(result, "being written by another mslt-it process", str(holder.pid))
        assert not out.exists()
    finally:
        holder.kill()  # kill -9: the kernel releases the lock
        holder.wait()
    assert cli(*build_args(out)).code == 0
    assert not list(tmp_path.glob(".*.lock"))  # the lock file goes with its holder


def test_a_shared_first_time_step_waits_for_the_process_doing_it(tmp_path: Path) -> None:
    out = tmp_path / "tiny-model"
    holder = hold_lock(out, 1.5)
    started = time.monotonic()
    with output_lock(out, wait=True):
        waited = time.monotonic() - started
    holder.wait()
    assert waited > 0.5  # it waited for the holder instead of failing or racing it
