"""Bad input, lost data, faults and concurrent runs, tried as a hostile user would.

Each bad input: exit status 2, one line on stderr, no traceback, nothing written. Each data-loss
case: the inputs survive, byte for byte. Concurrency: a second process on the same output stops
at once and names the first; a shared first-time step waits instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
from conftest import assert_one_line_error, hold_lock
from hypothesis import given, settings
from hypothesis import strategies as st

from mslt_it.cli.run import SLURM_MARKER
from mslt_it.errors import MsltError
from mslt_it.locks import output_lock
from mslt_it.outputs import OWNER_FILE

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
    assert_one_line_error(
        cli(*build_args(mine, "--overwrite")), "--out:", "did not write", "thesis"
    )
    assert snapshot(mine) == before


def test_merge_names_its_option_when_refusing_a_users_folder(cli, tmp_path, adapter) -> None:
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("years of work")
    merged = ["merge", adapter[0], "--out", mine, "--overwrite"]
    assert_one_line_error(cli(*merged), "error: --out:", "did not write")
    assert (mine / "chapter1.tex").read_text() == "years of work"


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
        assert_one_line_error(result, "error: --out:", "input")
        assert snapshot(dataset) == before


def test_an_unwritable_output_is_refused_before_any_work(cli, tmp_path: Path) -> None:
    # /proc takes no new files, even from root (a chmod'ed folder would not stop root)
    assert_one_line_error(cli(*build_args(Path("/proc/mslt-it-test/ds"))), "cannot create files")


def test_a_read_only_folder_is_refused(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder the user may not write in: read-only permission bits, and (since root writes
    through them) the kernel's answer simulated too: creating a file in it is EACCES."""
    import errno

    locked = tmp_path / "locked"
    locked.mkdir()
    real_open = os.open
    refused: list[str] = []

    def open_refusing_locked(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and Path(path).parent == locked:
            refused.append(str(path))
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_refusing_locked)
    locked.chmod(0o555)
    try:
        result = cli(*build_args(locked / "ds"))
    finally:
        locked.chmod(0o755)
    assert_one_line_error(result, "cannot create files", "locked", "Permission denied")
    assert refused  # the write was tried, and refused
    assert sorted(p.name for p in locked.iterdir()) == []


def test_local_base_models_are_recorded_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mslt_it.training import ModelConfig

    (tmp_path / "tiny").mkdir()
    monkeypatch.chdir(tmp_path)
    assert ModelConfig(name_or_path="tiny").name_or_path == str(tmp_path / "tiny")
    assert ModelConfig(name_or_path="Qwen/Qwen2.5-0.5B").name_or_path == "Qwen/Qwen2.5-0.5B"


@pytest.fixture(scope="module")
def adapter(dataset: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Two steps of LoRA on the dataset, through the CLI; the dataset's files before and after."""
    from mslt_it.cli import main

    before = snapshot(dataset)
    out = tmp_path_factory.mktemp("adapter") / "a"
    args = ["train", "--dataset", dataset, "--model", tiny_model_dir, "--out", out, *FAST_TRAIN]
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in args])
    assert done.value.code in (0, None)
    return out, before


def test_training_leaves_its_dataset_untouched(adapter, dataset: Path, tiny_model_dir) -> None:
    out, before = adapter
    assert snapshot(dataset) == before  # no cache-*.arrow: inputs are read-only
    run = json.loads((out / "run.json").read_text())
    assert run["base_model"] == str(tiny_model_dir.resolve())


def adapter_tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_adapter_files_are_shared_and_deterministic(
    adapter, dataset: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The same run trained again gives the same adapter, byte for byte; another seed does not
    (so the comparison can tell two trainings apart)."""
    import torch

    from mslt_it.cli import main

    out, _ = adapter
    private = [p.name for p in out.rglob("*") if p.is_file() and p.stat().st_mode & 0o077 == 0]
    assert private == []  # weights included: not 0600
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["target_modules"] == sorted(config["target_modules"])

    def train(folder: Path, *extra: str) -> Path:
        args = ["train", "--dataset", dataset, "--model", tiny_model_dir, "--out", folder,
                *FAST_TRAIN, *extra]  # fmt: skip
        with pytest.raises(SystemExit) as done:
            main([str(a) for a in args])
        assert done.value.code in (0, None)
        return folder

    again = train(tmp_path / "again")
    first, second = adapter_tensors(out), adapter_tensors(again)
    assert sorted(first) == sorted(second) and first
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name
    assert (again / "adapter_model.safetensors").read_bytes() == (
        out / "adapter_model.safetensors"
    ).read_bytes()
    assert (again / "adapter_config.json").read_bytes() == (
        out / "adapter_config.json"
    ).read_bytes()
    other = adapter_tensors(train(tmp_path / "seed1", "--seed", "1"))
    assert any(not torch.equal(tensor, other[name]) for name, tensor in first.items())


def test_truncated_adapter_weights_are_a_one_line_error(
    cli, adapter, tiny_model_dir: Path, tmp_path: Path
) -> None:

    out, _ = adapter
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    weights = broken / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    evaluation = cli(
        "eval", "--adapter", broken, "--task", "xnli", "--langs", "en", "--limit", "2",
        "--out", tmp_path / "ev",
    )  # fmt: skip
    assert_one_line_error(evaluation, "broken")
    assert_one_line_error(cli("merge", broken, "--out", tmp_path / "merged"), "broken")
    assert not (tmp_path / "merged").exists()


def torch_int32():
    import torch

    return torch.int32


def rewrite_weights(folder: Path, change) -> None:
    """Save ``folder``'s adapter weights again through ``change`` (a dict of tensors -> dict)."""
    from safetensors.torch import load_file, save_file

    weights = folder / "adapter_model.safetensors"
    save_file(change(load_file(str(weights))), str(weights))


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: {k.replace("base_model", "x"): v for k, v in d.items()}, "lack"),
        (lambda d: dict(list(d.items())[:1]), "lack"),
        (lambda d: {k: v.to(torch_int32()) for k, v in d.items()}, "floating-point"),
        (lambda d: {k: v * float("nan") for k, v in d.items()}, "NaN"),
        (  # a LoRA weight no module of the config takes: PEFT dropped it without a word
            lambda d: {
                **d,
                next(iter(d)).replace(".lora_A.", ".x.lora_A."): next(iter(d.values())).clone(),
            },
            "gives no module",
        ),
    ],
    ids=["renamed", "one-tensor", "integers", "nan", "extra"],
)
def test_adapter_weights_that_do_not_load_are_a_one_line_error(
    cli, adapter, tiny_model_dir: Path, tmp_path: Path, change, fragment: str
) -> None:
    """PEFT leaves a weight it cannot find at its initial value (LoRA's B at zero) and only
    warns: the adapter was measured as the base model under the adapter's name."""
    out, _ = adapter
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    rewrite_weights(broken, change)
    evaluation = cli(
        "eval", "--adapter", broken, "--task", "xnli", "--langs", "en", "--limit", "2",
        "--mode", "rank", "--out", tmp_path / "ev",
    )  # fmt: skip
    assert_one_line_error(evaluation, "broken", fragment)
    analysis = cli(
        "analyze", "--model", tiny_model_dir, "--adapter", broken, "--langs", "en,de",
        "--n", "4", "--out", tmp_path / "an",
    )  # fmt: skip
    assert_one_line_error(analysis, "--adapter", "broken", fragment)
    assert not (tmp_path / "an" / "analysis.json").exists()


def test_an_adapter_saved_as_bin_is_checked_like_safetensors(cli, adapter, tmp_path: Path) -> None:
    """``adapter_model.bin`` has no header to read names and dtypes from: it is loaded."""
    import torch
    from safetensors.torch import load_file

    out, _ = adapter
    as_bin = tmp_path / "as-bin"
    shutil.copytree(out, as_bin)
    weights = as_bin / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    weights.unlink()
    torch.save(tensors, as_bin / "adapter_model.bin")
    evaluate = (
        "eval", "--adapter", as_bin, "--task", "xnli", "--langs", "en", "--limit", "2",
        "--mode", "rank", "--out",
    )  # fmt: skip
    result = cli(*evaluate, tmp_path / "ev")
    assert result.code == 0, result.err
    torch.save({k: v.to(torch.int32) for k, v in tensors.items()}, as_bin / "adapter_model.bin")
    assert_one_line_error(cli(*evaluate, tmp_path / "ev2"), "as-bin", "floating-point")
    tensors[next(iter(tensors))][0] = float("inf")
    torch.save(tensors, as_bin / "adapter_model.bin")
    assert_one_line_error(cli(*evaluate, tmp_path / "ev3"), "as-bin", "infinite")


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({}, "peft_type is None"),
        ([], "not a JSON object"),
        ({"peft_type": "IA3"}, "peft_type is 'IA3'"),
        ({"peft_type": "LORA", "r": "many"}, "r is 'many'"),
        ({"peft_type": "LORA", "lora_alpha": "x"}, "lora_alpha is 'x'"),
        ({"peft_type": "LORA", "target_modules": 5}, "target_modules is 5"),
        ({"peft_type": "LORA", "lora_dropout": "0.1"}, "lora_dropout is '0.1'"),
        ({"peft_type": "LORA", "modules_to_save": "lm_head"}, "modules_to_save is 'lm_head'"),
        # PEFT failed on it: "'NoneType' object has no attribute 'endswith'"
        ({"peft_type": "LORA", "bias": None}, "bias is None; one of none, all, lora_only"),
    ],
)
def test_a_damaged_adapter_config_is_one_line_naming_its_field(
    cli, adapter, tmp_path: Path, config, fragment: str
) -> None:
    out, _ = adapter
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "adapter_config.json").write_text(json.dumps(config))
    result = cli(
        "eval", "--adapter", broken, "--task", "xnli", "--langs", "en", "--limit", "2",
        "--out", tmp_path / "ev",
    )  # fmt: skip
    assert_one_line_error(result, "adapter_config.json", fragment)
    (broken / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    (broken / "adapter_model.safetensors").unlink()
    result = cli("merge", broken, "--out", tmp_path / "merged")  # the edit, named first
    assert_one_line_error(result, "broken", "adapter_config.json was edited since training")
    (broken / ".mslt-it-output.json").unlink()  # an adapter from elsewhere: no record to keep
    result = cli("merge", broken, "--out", tmp_path / "merged")
    assert_one_line_error(result, "broken", "no weights")


@pytest.mark.parametrize(
    ("name", "content"),
    [("tokenizer.json", "garbage"), ("tokenizer_config.json", '{"tokenizer_class": 5}')],
)
def test_merge_of_an_adapter_with_a_damaged_tokenizer_is_one_line(
    cli, adapter, tmp_path: Path, name: str, content: str
) -> None:
    out, _ = adapter
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / name).write_text(content)
    result = cli("merge", broken, "--out", tmp_path / "merged")
    assert_one_line_error(result, "adapter: cannot load a tokenizer", "broken")
    assert not (tmp_path / "merged").exists()


def test_a_device_this_machine_lacks_is_a_one_line_error(
    cli, adapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    out, _ = adapter
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = cli(
        "eval", "--adapter", out, "--task", "xnli", "--langs", "en", "--limit", "2",
        "--device", "cuda:7", "--out", tmp_path / "ev",
    )  # fmt: skip
    assert_one_line_error(result, "cuda:7", "no CUDA device")


def test_a_device_given_to_vllm_is_refused_not_ignored(cli, tiny_model_dir, tmp_path) -> None:
    """vLLM places the model itself: ``--device cuda:7`` ran on the CPU, rc 0, and
    results.json named no device. Refused before anything is loaded or written (a recipe's
    ``eval.device``, kept for hf, gets a note instead: its experiments still load)."""
    result = cli(
        "eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en", "--limit", "2",
        "--backend", "vllm", "--device", "cuda:7", "--out", tmp_path / "ev",
    )  # fmt: skip
    assert_one_line_error(result, "--device: 'cuda:7' applies to --backend hf only")
    assert not (tmp_path / "ev").exists()
    result = cli(
        "eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en", "--limit", "2",
        "--tensor-parallel-size", "2", "--out", tmp_path / "ev",
    )  # fmt: skip
    assert_one_line_error(result, "--tensor-parallel-size: applies to backend vllm only")
    assert not (tmp_path / "ev").exists()


def test_a_device_without_data_or_a_model_config_transformers_refuses_is_one_line(
    cli, tiny_model_dir, tmp_path: Path
) -> None:
    """``--device meta`` holds no data (an internal error at the first copy); a config whose
    heads do not divide the hidden size, or whose field has the wrong type, is refused by
    transformers' own checks, and that refusal is one line naming the model."""
    common = ["--task", "xnli", "--langs", "en", "--limit", "2", "--mode", "rank"]
    result = cli("eval", "--model", tiny_model_dir, *common, "--device", "meta",
                 "--out", tmp_path / "ev")  # fmt: skip
    assert_one_line_error(result, "--device", "'meta' cannot run a model")
    assert not (tmp_path / "ev").exists()
    for name, value in (("num_attention_heads", 3), ("max_position_embeddings", "abc")):
        model = tmp_path / f"m-{name}"
        shutil.copytree(tiny_model_dir, model)
        config = json.loads((model / "config.json").read_text())
        (model / "config.json").write_text(json.dumps({**config, name: value}))
        result = cli("eval", "--model", model, *common, "--out", tmp_path / f"ev-{name}")
        # a field of the wrong type is named by mslt-it's own check of the model's folder
        said = "cannot load" if name == "num_attention_heads" else "max_position_embeddings is"
        assert_one_line_error(result, said, str(model))
        assert not (tmp_path / f"ev-{name}").exists()


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
        # fields whose default is null were checked by nothing, to fail mid-training
        (["--sft", "neftune_noise_alpha=abc"], "train.sft.neftune_noise_alpha"),
        (["--sft", "neftune_noise_alpha=-5"], "a finite number > 0, or null"),
        (["--sft", "lr_scheduler_kwargs=abc"], "train.sft.lr_scheduler_kwargs: must be a map"),
        (["--sft", "gradient_checkpointing_kwargs=[1]"], "gradient_checkpointing_kwargs"),
        (["--sft", "optim_args=abc"], "train.sft.optim_args: must be key=value pairs"),
        (["--sft", "eval_accumulation_steps=abc"], "eval_accumulation_steps: must be an int"),
        (["--sft", "model_init_kwargs=abc"], "train.sft.model_init_kwargs"),
        (["--sft", "lr_scheduler_type=bogus"], "train.sft.lr_scheduler_type: must be one of"),
        (["--sft", "optim=bogus"], "train.sft.optim: must be one of adamw_torch"),
        (["--lora", "layers_to_transform=abc"], "a list of integers or an integer"),
        (["--lora", "rank_pattern=abc"], "train.lora.rank_pattern: must be a mapping"),
        (["--lora", "init_lora_weights=sideways"], "gaussian, eva"),
    ],
)
def test_nonsense_training_values_fail_before_any_work(
    cli,
    dataset: Path,
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    option: list[str],
    fragment: str,
) -> None:
    from transformers import AutoModelForCausalLM

    out = tmp_path / "adapter"
    loaded: list[tuple] = []
    monkeypatch.setattr(
        AutoModelForCausalLM, "from_pretrained", lambda *a, **k: loaded.append(a) or 1 / 0
    )
    result = cli("train", "--dataset", dataset, "--model", tiny_model_dir, "--out", out, *option)
    assert_one_line_error(result, fragment)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []
    assert loaded == []  # refused up front: the model was never loaded


def test_a_recipe_with_a_bad_lora_rank_fails_its_dry_run(cli, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", "train: {lora: {r: big}}\n")
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


def test_a_report_goes_inside_an_input_only_where_mslt_it_evaluation_holds_it(
    cli, tmp_path: Path
) -> None:
    """A report went inside any folder it read: a folder of the user's, one run of it given
    alone, or the folder of a results.json it was given. Inputs are never written to; only
    mslt-it's evaluation holds a report of its own (its marker answers for it)."""
    from mslt_it.outputs import mark_owner

    mine = tmp_path / "mine"
    write_results(mine / "en", results_document("en", "rank", 50.0, ["en"]))
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "results.json").symlink_to(mine / "en" / "results.json")
    for read, out in (
        (mine, mine / "en" / "r"),
        (mine / "en", mine / "en" / "r"),
        (mine / "en" / "results.json", mine / "en" / "r"),
        (tmp_path / "links" / "results.json", mine / "en" / "r"),  # where the file lies
    ):
        assert_one_line_error(cli("report", read, "--out", out), "lies inside the input")
        assert not out.exists()
    evaluation = tmp_path / "ev"
    write_results(evaluation / "en", results_document("en", "rank", 50.0, ["en"]))
    mark_owner(evaluation, "evaluation", patterns=("*/results.json",))
    result = cli("report", evaluation, "--out", evaluation / "report")
    assert result.code == 0, result.err
    assert (evaluation / "report" / "report.md").is_file()


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


def test_report_shows_only_the_analysis_beside_it_that_analysed_its_adapter(
    cli, tmp_path: Path
) -> None:
    """runs/x/eval and runs/x/analysis: the report includes the analysis of an evaluated
    adapter without being told; another adapter's analysis (an adapter trained again in the
    same folder is another adapter) and a damaged file of that name beside it are left alone
    (not read as ours, not an error)."""
    document = results_document("en", "rank", 90.0, ["en"])
    document["adapter"]["path"] = str(tmp_path / "adapters" / "en")
    document["adapter"]["sha256"] = "a" * 64
    write_results(tmp_path / "eval" / "en", document)
    from mslt_it.io import seal
    from mslt_it.outputs import ANALYSIS_KIND

    ours = {"kind": ANALYSIS_KIND, "meanings": {"cka": "MEANING-OURS"}, "plots": []}
    ours["inputs"] = {"adapters": [{"path": "elsewhere/en", "sha256": "a" * 64}]}
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "analysis.json").write_text(json.dumps(seal(ours)))
    other = {**ours, "meanings": {"cka": "MEANING-OTHER"}}
    other["inputs"] = {"adapters": [{"path": str(tmp_path / "adapters" / "de"), "sha256": "c"}]}
    (tmp_path / "stale").mkdir()  # the adapter in the same folder, before it was trained again
    stale = {**ours, "meanings": {"cka": "MEANING-STALE"}}
    stale["inputs"] = {"adapters": [{"path": str(tmp_path / "adapters" / "en"), "sha256": "b"}]}
    (tmp_path / "stale" / "analysis.json").write_text(json.dumps(seal(stale)))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "analysis.json").write_text(json.dumps(seal(other)))
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "analysis.json").write_bytes(b"\x00{not json")
    edited = {**seal(ours), "meanings": {"cka": "MEANING-EDITED"}}  # the seal no longer holds
    (tmp_path / "edited").mkdir()
    (tmp_path / "edited" / "analysis.json").write_text(json.dumps(edited))
    (tmp_path / "eval" / "junk").mkdir()  # a stray file of that name inside the run folder
    (tmp_path / "eval" / "junk" / "analysis.json").write_text("{x")
    os.mkfifo(tmp_path / "eval" / "en" / "analysis.json")  # and one that would block a read
    result = cli("report", tmp_path / "eval", "--out", tmp_path / "rep")
    assert result.code == 0, result.err
    text = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
    assert "Representation analysis (analysis)" in text and "MEANING-OURS" in text
    assert "MEANING-OTHER" not in text and "(damaged)" not in text
    assert "MEANING-EDITED" not in text and "(junk)" not in text and "(en)" not in text
    assert "MEANING-STALE" not in text


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


HOLD_LOCK_THEN_FINISH = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mslt_it.locks import output_lock
    with output_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(1.0)
        Path(sys.argv[2]).write_text("finished")  # its work, done before it lets go
    """
)


def test_a_shared_first_time_step_waits_for_the_process_doing_it(tmp_path: Path) -> None:
    """The second comer neither fails nor races the holder: when it gets the lock, the holder's
    work is finished (however long that took)."""
    out = tmp_path / "tiny-model"
    finished = tmp_path / "finished"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK_THEN_FINISH, str(out), str(finished)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    assert not finished.exists()  # the holder is at work when this process asks
    with output_lock(out, wait=True):
        seen = finished.read_text() if finished.exists() else None
    holder.wait()
    assert seen == "finished" and holder.returncode == 0


# ------------------------------------------------------------------------------ bad files


def write_recipe(path: Path, body: str) -> Path:
    evaluation = "" if "eval:" in body else "eval: {task: xnli, langs: [en]}\n"
    path.write_text(
        "name: r\ndata: {task: xnli, budget: 10, data: synthetic}\nsources: [en]\n"
        "model: {name_or_path: mslt-it:tiny}\n" + evaluation + body
    )
    return path


def test_a_recipe_key_given_twice_is_an_error(cli, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", "name: again\n")
    assert_one_line_error(cli("run", recipe, "--dry-run"), "duplicate key 'name'")


def test_a_data_folder_without_the_sources_files_is_found_by_the_dry_run(
    cli, tmp_path: Path
) -> None:
    """``data: ../../../../etc`` (a folder, without xnli/en/train) passed the dry run as "todo"
    and stopped the first build."""
    folder = tmp_path / "d" / "xnli" / "de"
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text('{"premise": "p", "hypothesis": "h", "label": 0}\n')
    recipe = write_recipe(tmp_path / "r.yaml", "")
    recipe.write_text(recipe.read_text().replace("data: synthetic", f"data: {tmp_path / 'd'}"))
    result = cli("run", recipe, "--dry-run")
    assert_one_line_error(result, "data.data:", "has no file for xnli/en/train")
    recipe.write_text(recipe.read_text().replace("sources: [en]", "sources: [de]"))
    assert cli("run", recipe, "--dry-run").code == 0


def test_a_recipe_of_nested_aliases_is_refused_with_a_short_message(cli, tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    result = cli("run", tmp_path / "bomb.yaml", "--dry-run")
    assert_one_line_error(result, "expands to more than", "(nested aliases?)")
    assert len(result.err) < 600
    # a list long as written has no aliases to blame
    (tmp_path / "long.yaml").write_text("a: [" + ", ".join(["1"] * 110_000) + "]\n")
    result = cli("run", tmp_path / "long.yaml", "--dry-run")
    assert_one_line_error(result, "holds more than 100,000 values")
    assert "aliases" not in result.err


@pytest.mark.parametrize("command", ["recipe", "suite", "template", "evaluate"])
def test_files_that_are_not_utf8_are_named(cli, tmp_path: Path, command: str) -> None:
    bad = "name: r\ndescription: \xe9t\xe9\n".encode("latin-1")
    if command == "recipe":
        (tmp_path / "r.yaml").write_bytes(bad)
        result = cli("run", tmp_path / "r.yaml", "--dry-run")
    elif command == "suite":
        (tmp_path / "s.yaml").write_bytes(bad)
        result = cli(
            "eval", "--model", tmp_path, "--suite", tmp_path / "s.yaml", "--out", tmp_path / "o"
        )
    elif command == "template":
        (tmp_path / "xnli").mkdir()
        (tmp_path / "xnli" / "latin.yaml").write_bytes(bad)
        result = cli("prompts", "show", "xnli/latin", "--prompts-dir", tmp_path)
    else:
        (tmp_path / "r.csv").write_bytes(b"sources,score\nar+en,\xff\xfe\n")
        result = cli("select", "--task", "xnli", "--evaluate", tmp_path / "r.csv")
    assert_one_line_error(result, "not UTF-8")


def test_a_budget_that_leaves_a_source_empty_fails_the_dry_run(cli, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: r\ndata: {task: xnli, budget: 2, data: synthetic}\nsources: [[en, de, zh]]\n"
        "model: {name_or_path: mslt-it:tiny}\n"
    )
    assert_one_line_error(cli("run", recipe, "--dry-run"), "data.budget: 2", "3 sources")
    assert_one_line_error(cli(*build_args(tmp_path / "ds", "--seed", "-1")), "seed")


def user_template(folder: Path, instruction: str) -> Path:
    (folder / "xnli").mkdir(parents=True)
    (folder / "xnli" / "heavy.yaml").write_text(
        "id: xnli/heavy\ntask: xnli\ndescription: hostile\n"
        f"instruction: \"{instruction}\"\nanswer: '{{{{ label_word }}}}'\n"
        "verbalizers: {entailment: 'yes', neutral: maybe, contradiction: 'no'}\n"
    )
    return folder


@pytest.mark.parametrize(
    ("instruction", "fragment"),
    [
        ("{{ 'x' * 10**9 }} {{ premise }}", "10 ** 9"),
        ("{% for i in range(99999) %}{{ premise }}{% endfor %}", "1,000,000 characters"),
        ("{{ premise | center(1000000000) }}", "larger than a template may use"),
        (  # a tiny structure whose text doubles each time: refused as it is built, not printed
            "{% set ns = namespace(a=[premise]) %}{% for i in range(40) %}"
            "{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a | tojson | length }}",
            "as text",
        ),
        (
            "{% set ns = namespace(a={'k': premise}) %}{% for i in range(40) %}"
            "{% set ns.a = dict(l=ns.a, r=ns.a) %}{% endfor %}{{ ns.a | pprint }}",
            "as text",
        ),
        (
            "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}",
            "longer than the limit",
        ),
    ],
)
def test_template_rendering_is_bounded(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instruction: str, fragment: str
) -> None:
    import mslt_it.prompt_bounds as bounds

    monkeypatch.setattr(bounds, "RENDER_SECONDS", 0.5)
    folder = user_template(tmp_path / "prompts", instruction)
    result = cli(*build_args(tmp_path / "ds", "--template", "xnli/heavy", "--prompts-dir", folder))
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "ds").exists()


def test_one_broken_template_does_not_hide_the_others(cli, tmp_path: Path) -> None:
    folder = user_template(tmp_path / "prompts", "{{ 'x' * 10**9 }}")
    result = cli("prompts", "list", "--prompts-dir", folder)
    assert result.code == 2
    assert "xnli/en-instruct" in result.out  # the shipped templates are still listed
    assert_one_line_error(result, "heavy.yaml")


def test_select_refuses_a_search_that_cannot_finish(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused before any set is scored (not after a search that ran out of time)."""
    from mslt_it.selection import search

    walked: list[tuple] = []
    monkeypatch.setattr(search, "_Walk", lambda *a, **k: walked.append(a) or 1 / 0)
    monkeypatch.setattr(search, "beam_floor", lambda *a, **k: walked.append(a) or 1 / 0)
    assert_one_line_error(cli("select", "--task", "wikiann", "--k", "88"), "C(176,88)")
    assert walked == []


def test_a_search_past_its_time_limit_stops_and_says_how_far_it_got() -> None:
    import numpy as np

    from mslt_it.errors import MsltError
    from mslt_it.selection.search import SearchLimit, best_sets

    n = 40

    class Slow:  # an objective whose every block takes a while and whose bounds never prune
        integral = False

        def scores(self, combos: np.ndarray) -> np.ndarray:
            time.sleep(0.02)
            return np.zeros(len(combos))

        def child_bounds(self, prefix: np.ndarray, start: int, r: int) -> np.ndarray:
            return np.full(n - r + 1 - start, np.inf)

    reports: list[int] = []
    limit = SearchLimit(0.5, 0.1, lambda scored, total, elapsed: reports.append(scored))
    with pytest.raises(MsltError, match="without finishing"):
        best_sets(Slow(), n, 6, 1, method="pruned", leaf_rows=64, limit=limit)  # type: ignore[arg-type]
    assert reports  # progress was reported before it stopped


# --------------------------------------------------------------------------------- score


@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        (b"\x00\x01\xff binary", "not UTF-8"),
        (b"[1, 2]\n", "not a JSON object"),
        (
            b'{"id": "a", "task": "xnli", "lang": "en", "template": "xnli/en-instruct", '
            b'"output": 3, "gold": 0}\n',
            "output must be text",
        ),
        (
            b'{"id": "a", "task": "xnli", "lang": "en", "template": "xnli/en-instruct", '
            b'"output": "yes", "gold": 0}\n' * 2,
            "appears twice",
        ),
        (
            b'{"id": "a", "task": "xnli", "lang": "en", "template": "xnli/en-instruct", '
            b'"output": "yes", "gold": "banana"}\n',
            "gold 'banana' is not a label of task xnli; labels: entailment, neutral, contradiction",
        ),
        (
            b'{"id": "a", "task": "xnli", "lang": "en", "template": "xcopa/en-instruct", '
            b'"output": "yes", "gold": "entailment"}\n',
            "template 'xcopa/en-instruct' is a template of task xcopa, not of xnli",
        ),
    ],
)
def test_score_refuses_damaged_predictions(
    cli, tmp_path: Path, lines: bytes, fragment: str
) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_bytes(lines)
    assert_one_line_error(cli("score", path), fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.jsonl"]


# --------------------------------------------------------------------------------- data


@pytest.mark.parametrize(
    ("labels", "fragment"), [((0, 7), "line 2: label 7"), (("two", "one"), "line 1: label 'two'")]
)
def test_gold_labels_outside_the_label_set_are_an_error(
    cli, tmp_path: Path, labels: tuple[object, object], fragment: str
) -> None:
    folder = tmp_path / "data" / "xnli" / "en"
    folder.mkdir(parents=True)
    rows = [
        {"premise": "a", "hypothesis": "b", "label": labels[0]},
        {"premise": "c", "hypothesis": "d", "label": labels[1]},
    ]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = cli(
        "build", "--task", "xnli", "--sources", "en", "--budget", "1", "--data",
        tmp_path / "data", "--out", tmp_path / "ds",
    )  # fmt: skip
    assert_one_line_error(result, fragment)


# ------------------------------------------------------------------------------ output


def test_off_a_terminal_long_work_prints_plain_progress_lines(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MSLT_IT_PROGRESS"}
    env["MSLT_IT_PROGRESS_SECONDS"] = "0"
    code = "from mslt_it.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, build_args(tmp_path / "ds"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith("loading xnli/") for line in lines), done.stderr
    assert all("\r" not in line and "\x1b" not in line for line in lines)  # no bar redraws


def test_help_at_80_columns_keeps_every_option_name_whole(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "80"}
    shown: dict[str, str] = {}
    for command in ("eval", "train", "analyze", "select", "build", "run"):
        done = subprocess.run(
            [sys.executable, "-c", "from mslt_it.cli import main; main()", command, "--help"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert not re.search(r"--[\w-]+…", done.stdout), (command, done.stdout)  # a cut name
        shown[command] = done.stdout
    assert "--tensor-parallel-size" in shown["eval"]
    assert "--trust-remote-code" in shown["train"]


# -------------------------------------------------------------- second hostile round (files)


def test_score_never_writes_over_its_input_or_a_users_file(cli, tmp_path: Path) -> None:
    predictions = tmp_path / "predictions.jsonl"
    line = (
        '{"id": "a", "task": "xnli", "lang": "en", "template": "xnli/en-instruct", '
        '"output": "yes", "gold": "entailment"}\n'
    )
    predictions.write_text(line)
    mine = tmp_path / "notes.json"
    mine.write_text('{"mine": true}')
    for out, fragment in (
        (predictions, "is an input"),
        (mine, "not a rescored.json written by mslt-it"),
        (tmp_path, "is a folder"),
        (Path("/proc/x.json"), "cannot create files"),
    ):
        assert_one_line_error(cli("score", predictions, "--out", out), fragment)
    assert predictions.read_text() == line and mine.read_text() == '{"mine": true}'
    assert cli("score", predictions).code == 0  # rescored.json beside it, and again:
    assert cli("score", predictions).code == 0

    # A score that stops at its input leaves no folder behind (its lock made them first).
    missing = tmp_path / "gone" / "a" / "predictions.jsonl"
    assert_one_line_error(cli("score", missing), "no such file")
    (tmp_path / "bad.jsonl").write_text("not json\n")
    deep = tmp_path / "deep" / "er" / "r.json"
    assert_one_line_error(cli("score", tmp_path / "bad.jsonl", "--out", deep), "bad.jsonl")
    assert not (tmp_path / "gone").exists() and not (tmp_path / "deep").exists()


def test_score_refuses_an_edited_rescored_file_and_bad_recorded_settings(cli, tmp_path) -> None:
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(
        '{"id": "a", "task": "xnli", "lang": "en", "template": "xnli/en-instruct", '
        '"output": "yes", "gold": "entailment"}\n'
    )
    assert cli("score", predictions).code == 0
    rescored = tmp_path / "rescored.json"
    edited = {**json.loads(rescored.read_text()), "my": "notes"}  # its kind kept
    rescored.write_text(json.dumps(edited))
    assert_one_line_error(cli("score", predictions), "not a rescored.json written by mslt-it")
    assert json.loads(rescored.read_text())["my"] == "notes"
    rescored.unlink()
    for header, fragment in (
        ({"bootstrap": {"seed": "abc"}}, "bootstrap.seed: 'abc'; allowed: 0..4,294,967,295"),
        ({"bootstrap": {"samples": 10**12}}, "bootstrap.samples"),
        ({"bootstrap": [1, 2]}, "bootstrap: expected a mapping"),
        ({"adapter": "foo"}, "adapter: expected a mapping"),
        ({"tasks": {"xnli": "x"}}, "tasks: expected a mapping"),
        ({"bootstrap": {"level": 1.5}}, "bootstrap.level: 1.5"),
    ):
        (tmp_path / "results.json").write_text(json.dumps(header))
        assert_one_line_error(cli("score", predictions), "results.json", fragment)
    assert not rescored.exists()


def test_emit_slurm_never_writes_over_the_recipe_or_a_users_file(cli, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", "")
    before = recipe.read_text()
    assert_one_line_error(cli("run", recipe, "--emit-slurm", recipe), "is an input")
    other = tmp_path / "other.sh"
    other.write_text("echo mine\n")
    assert_one_line_error(cli("run", recipe, "--emit-slurm", other), "not an unedited Slurm")
    assert recipe.read_text() == before and other.read_text() == "echo mine\n"
    job = tmp_path / "job.sh"
    assert cli("run", recipe, "--emit-slurm", job).code == 0
    assert cli("run", recipe, "--emit-slurm", job).code == 0  # its own script: replaced
    # An edited script is the user's now, and so is a file that only quotes the seal's words.
    edited = job.read_text().replace("set -euo pipefail", "module load cuda\nset -euo pipefail")
    job.write_text(edited)
    assert_one_line_error(cli("run", recipe, "--emit-slurm", job), "not an unedited Slurm")
    assert job.read_text() == edited
    other.write_text(f"notes: {SLURM_MARKER} 00\n{SLURM_MARKER}\n")
    assert_one_line_error(cli("run", recipe, "--emit-slurm", other), "not an unedited Slurm")
    os.truncate(other, 200_000_000)  # a huge file is not read to find out
    assert_one_line_error(cli("run", recipe, "--emit-slurm", other), "not an unedited Slurm")


def test_emit_slurm_writes_neither_into_an_input_nor_into_an_experiment(cli, tmp_path: Path):
    """The script in a prompts folder made finished results stale; in the experiment's folder
    (or with a folder ``run`` refuses) it made every array task refuse that folder."""
    prompts = tmp_path / "myprompts"
    (prompts / "xnli").mkdir(parents=True)
    recipe = write_recipe(tmp_path / "r.yaml", f"output_dir: {tmp_path / 'exp'}\n")
    recipe.write_text(recipe.read_text().replace("data: synthetic}", f"data: synthetic, "
                                                 f"prompts_dir: [{prompts}]}}"))  # fmt: skip
    script = prompts / "xnli" / "job.sh"
    assert_one_line_error(cli("run", recipe, "--emit-slurm", script), "inside", "input")
    inside = tmp_path / "exp" / "job.sh"
    assert_one_line_error(cli("run", recipe, "--emit-slurm", inside), "inside the experiment")
    dataset = tmp_path / "ds"  # another output of mslt-it's: its --overwrite stopped at it
    assert cli("build", "--task", "xnli", "--sources", "en", "--budget", "4", "--data",
               "synthetic", "--out", dataset).code == 0  # fmt: skip
    result = cli("run", recipe, "--emit-slurm", dataset / "sub" / "job.sh")
    assert_one_line_error(result, "lies inside", "mslt-it's dataset")
    assert not (dataset / "sub").exists()
    users = tmp_path / "users"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    result = cli("run", recipe, "--out", users, "--emit-slurm", tmp_path / "job.sh")
    assert_one_line_error(result, "did not write")
    assert not script.exists() and not inside.exists() and not (tmp_path / "job.sh").exists()
    (tmp_path / "dangling.sh").symlink_to(tmp_path / "nowhere" / "x.sh")
    assert_one_line_error(cli("run", recipe, "--emit-slurm", tmp_path / "dangling.sh"), "a link")
    assert (tmp_path / "dangling.sh").is_symlink()
    assert cli("run", recipe, "--emit-slurm", tmp_path / "job.sh").code == 0


def test_run_into_a_symlink_loop_is_one_line(cli, tmp_path: Path) -> None:
    """The plan resolved the named model's folder under --out before --out was checked."""
    recipe = write_recipe(tmp_path / "r.yaml", "")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    for extra in (["--dry-run"], ["--emit-slurm", tmp_path / "job.sh"]):
        result = cli("run", recipe, "--out", tmp_path / "loop1", *extra)
        assert_one_line_error(result, "symlink loop")


def test_run_never_writes_into_a_folder_it_did_not_make(cli, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", "")
    victim = tmp_path / "victim"
    (victim / "report").mkdir(parents=True)
    (victim / "report" / "other.txt").write_text("x")
    (victim / "recipe.yaml").write_text("notes")
    before = snapshot(victim)
    assert_one_line_error(cli("run", recipe, "--out", victim), "did not write")
    assert_one_line_error(cli("run", recipe, "--out", tmp_path), "contains the input")
    assert snapshot(victim) == before


def test_a_step_record_inside_a_users_folder_does_not_make_it_an_experiment(cli, tmp_path):
    """Only the marker proves an experiment: a folder holding `*/*/.mslt-it-step.json` was
    taken for an earlier one, its recipe.yaml replaced and the user's files listed as ours."""
    recipe = write_recipe(tmp_path / "r.yaml", "")
    victim = tmp_path / "project"
    (victim / "stuff" / "x").mkdir(parents=True)
    (victim / "stuff" / "x" / ".mslt-it-step.json").write_text("{}")
    (victim / "recipe.yaml").write_text("my precious recipe")
    (victim / "notes.txt").write_text("notes")
    before = snapshot(victim)
    for extra in (["--dry-run"], []):
        result = cli("run", recipe, "--out", victim, *extra)
        assert_one_line_error(result, "did not write", "mslt-it adopt")
    assert snapshot(victim) == before


def test_an_experiment_lists_only_its_recipe_copy_and_keeps_an_edited_one(tmp_path: Path):
    from mslt_it.io import OWNER_FILE
    from mslt_it.recipes import load_recipe
    from mslt_it.runner import claim_experiment_folder, record_recipe_copy

    out = tmp_path / "exp"
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", ""), out)
    claim_experiment_folder(recipe)
    record_recipe_copy(recipe)  # when the run finishes
    (out / "notes.txt").write_text("the user's")
    claim_experiment_folder(recipe)  # a re-run
    record_recipe_copy(recipe)
    marker = json.loads((out / OWNER_FILE).read_text())
    assert marker["kind"] == "experiment" and list(marker["files"]) == ["recipe.yaml"]
    assert (out / "recipe.yaml").read_text() == recipe.path.read_text()
    edited = recipe.path.read_text() + "# a note of the user's\n"
    (out / "recipe.yaml").write_text(edited)
    with pytest.raises(MsltError, match="not the copy of a recipe mslt-it wrote"):
        claim_experiment_folder(recipe)
    assert (out / "recipe.yaml").read_text() == edited
    (out / "recipe.yaml").write_text(recipe.path.read_text())  # what would be written anyway
    claim_experiment_folder(recipe)
    assert (out / "notes.txt").read_text() == "the user's"


def test_a_kill_while_claiming_an_experiment_leaves_one_the_next_run_takes(tmp_path, monkeypatch):
    """The marker comes first (when the run starts), then the copy is listed and written (when
    it finishes): killed between the two, the folder is still known as an experiment (a copy
    written first would make it a folder of unproven files, refused for good)."""
    import mslt_it.runner as runner
    from mslt_it.recipes import load_recipe

    out = tmp_path / "exp"
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", ""), out)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    runner.claim_experiment_folder(recipe)
    with monkeypatch.context() as patch:
        patch.setattr(runner, "atomic_write_text", killed)
        with pytest.raises(KeyboardInterrupt):
            runner.record_recipe_copy(recipe)
    assert not (out / "recipe.yaml").exists()
    runner.claim_experiment_folder(recipe)
    runner.record_recipe_copy(recipe)
    assert (out / "recipe.yaml").read_text() == recipe.path.read_text()


@pytest.mark.parametrize("inside", ["tasks", "data", "prompts", "data/xnli/en"])
def test_an_experiment_inside_a_folder_the_recipe_reads_is_refused(cli, tmp_path, inside):
    for folder in ("tasks", "prompts", "data/xnli/en"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    for split in ("train", "test", "validation"):
        row = {"premise": "p", "hypothesis": "h", "label": 0}
        (tmp_path / "data/xnli/en" / f"{split}.jsonl").write_text(json.dumps(row) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: r\ntasks_dir: [{tmp_path / 'tasks'}]\n"
        f"data: {{task: xnli, budget: 1, data: {tmp_path / 'data'}, "
        f"prompts_dir: [{tmp_path / 'prompts'}]}}\nsources: [en]\n"
        "model: {name_or_path: mslt-it:tiny}\neval: {task: xnli, langs: [en]}\n"
    )
    before = {p: snapshot(tmp_path / p) for p in ("tasks", "data", "prompts")}
    for extra in (["--dry-run"], []):
        result = cli("run", recipe, "--out", tmp_path / inside / "out", *extra)
        assert_one_line_error(result, "lies inside the input")
    assert {p: snapshot(tmp_path / p) for p in before} == before
    assert not (tmp_path / inside / "out").exists()


@pytest.mark.parametrize("layout", ["data/.train.jsonl", "data/checkpoints/train.jsonl"])
def test_a_data_folders_hidden_and_checkpoints_files_are_part_of_its_identity(tmp_path, layout):
    """The readers read a split `.train` and a task named `checkpoints`: what is read is what
    is hashed, or an edit leaves every step done with the old rows."""
    from mslt_it.runner import data_identity

    path = tmp_path / layout
    path.parent.mkdir(parents=True)
    path.write_text('{"premise": "a", "hypothesis": "b", "label": 0}\n')
    first = data_identity(str(tmp_path / "data"))
    path.write_text('{"premise": "a", "hypothesis": "b", "label": 2}\n')
    assert data_identity(str(tmp_path / "data")) != first


@pytest.mark.parametrize(
    "body", ["x: &x [*x]\n", "description: " + "[" * 600 + "]" * 600 + "\n"], ids=["self", "deep"]
)
def test_a_recipe_nested_without_end_is_one_line(cli, tmp_path: Path, body: str) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", body)
    assert_one_line_error(cli("run", recipe, "--dry-run"), "nested too deeply")


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("train: {watch: [{task: nope, langs: [en]}]}\n", "train.watch.0.task: task: unknown"),
        ("train: {watch: [{task: xnli, langs: [qq]}]}\n", "train.watch.0.langs"),
        (
            "train: {watch: [{task: xnli, langs: [en], steps: [9]}], sft: {max_steps: 4}}\n",
            "beyond max_steps (4)",
        ),
        (
            "train: {watch: [{task: xnli, langs: [en, en]}]}\n",
            "train.watch.0.langs: 'en' is given twice",
        ),
        (
            "train: {watch: [{task: xnli, langs: [en]}, {task: xnli, langs: [de]}]}\n",
            "train.watch.1.task: xnli is watched already (train.watch.0)",
        ),
    ],
    ids=["task", "language", "step", "language-twice", "task-twice"],
)
def test_a_watch_the_training_would_refuse_fails_the_dry_run(cli, tmp_path, body, said) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", body)
    assert_one_line_error(cli("run", recipe, "--dry-run"), said)


def test_a_model_path_that_is_not_a_folder_fails_the_dry_run(cli, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    write_recipe(recipe, "")
    recipe.write_text(recipe.read_text().replace("mslt-it:tiny", "/dev/zero"))
    assert_one_line_error(cli("run", recipe, "--dry-run"), "'/dev/zero' is not a folder")
    recipe.write_text(recipe.read_text().replace("/dev/zero", str(tmp_path / "gone")))
    assert_one_line_error(cli("run", recipe, "--dry-run"), "no such folder")


def test_run_out_empty_or_a_fifo_is_named(cli, tmp_path: Path, monkeypatch) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", "")
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(cli("run", recipe, "--dry-run", "-o", ""), "--out: an empty path")
    os.mkfifo(tmp_path / "fifo")
    result = cli("run", recipe, "--dry-run", "-o", tmp_path / "fifo")
    assert_one_line_error(result, "is not a folder (a FIFO or a device)")


def test_analyze_does_not_replace_a_users_plots(cli, tmp_path: Path, tiny_model_dir) -> None:
    out = tmp_path / "an"
    out.mkdir()
    (out / "cka.png").write_bytes(b"mine")
    result = cli("analyze", "--model", tiny_model_dir, "--langs", "en,de", "--n", "4",
                 "--out", out, "--overwrite")  # fmt: skip
    assert_one_line_error(result, "cka.png", "not a picture mslt-it analyze wrote")
    assert (out / "cka.png").read_bytes() == b"mine"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'{"premise": null, "hypothesis": "b", "label": 0}\n', "'premise' is empty"),
        (b'{"premise": "caf\xe9", "hypothesis": "b", "label": 0}\n', "UTF-8"),
    ],
)
def test_local_rows_with_empty_or_undecodable_text_are_refused(
    cli, tmp_path: Path, content: bytes, fragment: str
) -> None:
    folder = tmp_path / "data" / "xnli" / "en"
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_bytes(content)
    result = cli("build", "--task", "xnli", "--sources", "en", "--budget", "1",
                 "--data", tmp_path / "data", "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, fragment)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--budget-mode", "temperature", "--temperature", "1e-320"], "temperature"),
        (["--budget", "99999999999999999999"], "budget"),
    ],
)
def test_extreme_budget_settings_are_refused(cli, tmp_path: Path, args, fragment) -> None:
    assert_one_line_error(cli(*build_args(tmp_path / "ds", *args)), fragment)


def test_a_tiny_temperature_still_splits_the_budget(cli, tmp_path: Path) -> None:
    result = cli(
        *build_args(tmp_path / "ds", "--budget-mode", "temperature", "--temperature", "0.01")
    )
    assert result.code == 0, result.err


def test_more_bad_values_are_one_line_errors(cli, tmp_path: Path, adapter, dataset, tiny_model_dir):
    out, _ = adapter
    train = ["train", "--dataset", dataset, "--model", tiny_model_dir, "--out", tmp_path / "t"]
    assert_one_line_error(cli(*train, "--lora-target", ""), "--lora-target", "empty module name")
    assert_one_line_error(cli("merge", out, "--out", tmp_path / "m", "--dtype", "bogus"), "dtype")
    evaluate = ["eval", "--adapter", out, "--task", "xnli", "--langs", "en"]
    assert_one_line_error(cli(*evaluate, "--seed", "-1", "--out", tmp_path / "e"), "seed")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_recipe_dry_run_checks_its_evaluation(cli, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", "eval: {task: xnli, langs: [xx]}\n")
    assert_one_line_error(cli("run", recipe, "--dry-run"), "eval.langs", "'xx'")


def test_report_refuses_results_without_scores(cli, tmp_path: Path) -> None:
    document = results_document("base", "rank", 1.0)
    document["tasks"]["xnli"]["languages"] = {}
    write_results(tmp_path / "ev" / "base", document)
    assert_one_line_error(
        cli("report", tmp_path / "ev", "--out", tmp_path / "rep"), "no per-language"
    )


@pytest.mark.parametrize(
    ("name", "status", "said"), [("SIGTERM", 143, None), ("SIGINT", 130, "aborted")]
)
def test_a_stopped_command_removes_its_lock_and_temporary_folder(
    tmp_path: Path, name: str, status: int, said: str | None
) -> None:
    """A killed (SIGTERM) or interrupted (Ctrl-C, SIGINT) command unwinds: no lock file, no
    half-written folder. Ctrl-C ended with status 130 and not a word: typer turns the
    KeyboardInterrupt into a returned status itself, past mslt-it's handler."""
    import signal

    env = {**os.environ, "MSLT_IT_PROGRESS": "0"}
    code = "from mslt_it.cli import main; main()"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "tiny-model", str(tmp_path / "tiny"), "--steps", "100000"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".tiny.*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.2)  # wait until it writes (its temporary folder appears at the end)
            if list(tmp_path.glob(".tiny.mslt-it.lock")):
                time.sleep(2)
                break
        process.send_signal(getattr(signal, name))
        _, err = process.communicate(timeout=120)
    finally:  # a run left going (the wait timed out) pretrained 100,000 steps on after the test
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == status, err[-2000:]  # its stderr, should it ever abort (-6)
    if said is not None:
        assert err.strip().splitlines()[-1] == said
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_command_run_in_process_gives_sigterm_back(cli) -> None:
    """main() called in a notebook or a test process kept its SIGTERM handler, so every later
    SIGTERM raised SystemExit in whatever code ran and ``kill`` no longer stopped the process."""
    import signal

    before = signal.getsignal(signal.SIGTERM)
    assert cli("prompts", "list").code == 0
    assert cli("select", "--task", "nope").code == 2
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.slow
def test_an_adapter_records_the_hub_revision_of_its_base(
    dataset: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A Hub id, loaded offline from a local Hub cache of the same layout as a download."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "hub" / "models--mslt--tiny"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "adapter"
    done = subprocess.run(
        [sys.executable, "-c", "from mslt_it.cli import main; main()", "train",
         "--dataset", str(dataset), "--model", "mslt/tiny", "--out", str(out), *FAST_TRAIN],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads((out / "run.json").read_text())
    assert run["base_model"] == "mslt/tiny" and run["base_model_revision"] == commit


def test_a_boolean_or_fraction_is_not_an_integer_in_a_recipe(cli, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", "eval: {task: xnli, langs: [en], limit: true}\n")
    assert_one_line_error(cli("run", recipe, "--dry-run"), "eval.limit", "True")


def test_analyze_refuses_an_adapter_given_twice(cli, adapter, tiny_model_dir, tmp_path) -> None:
    out, _ = adapter
    result = cli("analyze", "--model", tiny_model_dir, "--adapter", out, "--adapter", out,
                 "--langs", "en,de", "--n", "4", "--out", tmp_path / "an")  # fmt: skip
    assert_one_line_error(result, "--adapter", "twice")
    assert not (tmp_path / "an").exists()


def test_a_name_taken_from_an_adapters_folder_holds_no_control_character(
    cli, adapter, tiny_model_dir, tmp_path
) -> None:
    """eval named the folder it writes after the adapter's, escapes and all; analyze put them
    into its labels and plots, where matplotlib printed them raw in its warnings."""
    from mslt_it.analysis.extract import read_adapter
    from mslt_it.files import control_character

    out, _ = adapter
    copy = tmp_path / "ad\x1b[31m\u202ex\u2028"
    shutil.copytree(out, copy)
    assert control_character(read_adapter(copy).label) is None
    result = cli("eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en",
                 "--limit", "2", "--mode", "rank", "--out", tmp_path / "ev",
                 "--adapter", copy, "--include-base")  # fmt: skip
    assert result.code == 0, result.err
    written = [path.name for path in (tmp_path / "ev").rglob("*")]
    assert "ad_[31m_x_" in written and not any(control_character(name) for name in written)


def test_eval_runs_an_adapter_once_however_it_is_spelt(cli, adapter, tiny_model_dir, tmp_path):
    """``a``, ``a/`` and a link to ``a`` were three adapters, evaluated each (as ``a-2``…),
    and a symlink loop was an internal error."""
    out, _ = adapter
    (tmp_path / "link").symlink_to(out)
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    evaluate = ("eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en",
                "--limit", "2", "--mode", "rank", "--out", tmp_path / "ev",
                "--adapter", out)  # fmt: skip
    for other in (f"{out}/", tmp_path / "link"):
        assert_one_line_error(cli(*evaluate, "--adapter", other), "are the same folder")
    assert_one_line_error(cli(*evaluate, "--adapter", tmp_path / "loop1"), "symlink loop")
    assert not (tmp_path / "ev").exists()


# ------------------------------------------------------------- third hostile round (messages)


def test_select_names_the_file_for_its_bad_rows(cli, tmp_path: Path) -> None:
    results = tmp_path / "r.csv"
    results.write_text("sources,score\nar+de+xx,50\nar+de+zh,60\n")
    evaluate = ("select", "--task", "xnli", "--evaluate")
    assert_one_line_error(cli(*evaluate, results), "r.csv:2", "language code 'xx'")
    results.write_text("sources,score\nar+de,50\nar+de+zh,60\n")
    assert_one_line_error(cli(*evaluate, results), "sets of 2 and 3 languages")
    os.mkfifo(tmp_path / "fifo.csv")
    assert_one_line_error(cli(*evaluate, tmp_path / "fifo.csv"), "FIFO")
    (tmp_path / "header.csv").write_text("sources,lang,score\n")
    fit = ("select", "--task", "xnli", "--fit", tmp_path / "header.csv")
    assert_one_line_error(cli(*fit, "--k", "3"), "no measured rows")


def test_a_parser_error_points_at_the_commands_own_help(cli) -> None:
    assert_one_line_error(cli("report", "x", "--compare", "base"), "'mslt-it report --help'")


@pytest.mark.parametrize("scale", ["1e200", "1e308"])
def test_huge_custom_vectors_give_the_distances_of_small_ones(cli, tmp_path, scale) -> None:
    """A cosine ignores each vector's scale, so a user's 1e200 is the same as 1 (it overflowed)."""

    def scores(big: str) -> dict[str, float]:
        path = tmp_path / f"v{big}.csv"
        path.write_text(f"code,f1,f2,f3\nar,{big},0,0\nde,0,1,1\nen,1,1,0\nru,0,0,1\n")
        result = cli(
            "select", "--task", "xnli", "--k", "2", "--pool", "ar,de,en,ru", "--criterion",
            "l2v-custom", "--top", "6", "--vectors", path, "--json",
        )  # fmt: skip
        assert result.code == 0 and "overflow" not in result.err, result.err
        return {"+".join(row["sources"]): row["score"] for row in json.loads(result.out)}

    small, huge = scores("1"), scores(scale)
    assert huge == pytest.approx(small)
    assert small["ar+en"] == pytest.approx(1 - 2**-0.5)


def test_score_refuses_records_of_two_runs_in_one_file(cli, tmp_path: Path) -> None:
    record = {"task": "xnli", "lang": "en", "template": "xnli/en-instruct", "output": "yes",
              "gold": "entailment", "mode": "generate"}  # fmt: skip
    lines = [{**record, "id": "a", "adapter": "ad"}, {**record, "id": "b", "adapter": "../x"}]
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert_one_line_error(cli("score", path), "record 2: adapter", "a file holds one run")


# ------------------------------------------------- third hostile round (analyze, report, score)


def test_report_names_a_run_without_scores_among_others(cli, tmp_path: Path) -> None:
    write_results(tmp_path / "ev" / "a", results_document("a", "rank", 60.0, ["en"]))
    empty = results_document("b", "rank", 50.0, ["de"])
    empty["tasks"] = {}
    write_results(tmp_path / "ev" / "b", empty)
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "rep")
    assert_one_line_error(result, "b/results.json holds no per-language scores")  # not a bug


def test_report_names_a_results_file_that_links_to_nothing(cli, tmp_path: Path) -> None:
    write_results(tmp_path / "ev" / "a", results_document("a", "rank", 60.0, ["en"]))
    (tmp_path / "ev" / "b").mkdir()
    (tmp_path / "ev" / "b" / "results.json").symlink_to(tmp_path / "nowhere")
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "rep")
    assert_one_line_error(result, "b/results.json is a link to nothing")  # not left out
    assert not (tmp_path / "rep").exists()


def test_control_characters_in_a_recorded_model_never_reach_the_report(cli, tmp_path) -> None:
    for name, model in (("a", "\x1b[31mRED\x1b[0m\nfake | row"), ("b", "/models/tiny")):
        document = results_document("base", "rank", 60.0)
        document["model"] = model
        write_results(tmp_path / "ev" / name, document)
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "rep")
    assert result.code == 0, result.err
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "\x1b" not in text and "\nfake" not in text and "| row" not in text
    assert "RED" in text  # still told apart from the other base model


def test_score_reads_only_a_regular_file_within_its_limit(cli, tmp_path, monkeypatch) -> None:
    os.mkfifo(tmp_path / "fifo.jsonl")
    assert_one_line_error(cli("score", tmp_path / "fifo.jsonl"), "is a FIFO")
    path = tmp_path / "ev" / "predictions.jsonl"
    path.parent.mkdir()
    path.write_text(
        '{"id": "a", "task": "xnli", "lang": "en", "template": "xnli/en-instruct", '
        '"output": "yes", "gold": "entailment"}\n'
    )
    os.mkfifo(path.parent / "results.json")  # the run's settings: named, never skipped
    assert_one_line_error(cli("score", path), "results.json beside it", "is a FIFO")
    (path.parent / "results.json").unlink()
    monkeypatch.setattr("mslt_it.evaluation.store.MAX_PREDICTIONS_BYTES", 50)
    assert_one_line_error(cli("score", path), "larger than 50 bytes")


def test_analyze_refuses_a_repeated_column_and_options_parallel_makes_void(
    cli, tiny_model_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "p.csv").write_text("en,en,de\na,b,c\nd,e,f\ng,h,i\n")
    common = ["analyze", "--model", tiny_model_dir, "--langs", "en,de", "--n", "3"]
    result = cli(*common, "--parallel", tmp_path / "p.csv", "--out", tmp_path / "a")
    assert_one_line_error(result, "--parallel", "column 'en' twice")  # not "this is a bug"
    result = cli(*common, "--parallel", tmp_path / "p.csv", "--split", "validation", "--out",
                 tmp_path / "b")  # fmt: skip
    assert_one_line_error(result, "--split: chooses XNLI rows")


def test_analyze_never_writes_inside_its_data_folder(cli, tiny_model_dir, tmp_path) -> None:
    for lang in ("en", "de"):
        folder = tmp_path / "data" / "xnli" / lang
        folder.mkdir(parents=True)
        rows = [{"premise": f"{lang} p {i}", "hypothesis": "h", "label": 0} for i in range(5)]
        (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = snapshot(tmp_path / "data")
    result = cli(
        "analyze", "--model", tiny_model_dir, "--data", tmp_path / "data", "--langs", "en,de",
        "--n", "4", "--out", tmp_path / "data" / "xnli" / "analysis",
    )  # fmt: skip
    assert_one_line_error(result, "lies inside the input")
    assert snapshot(tmp_path / "data") == before


# ------------------------------------------- fourth hostile round (train, merge, adopt, build)


@pytest.mark.parametrize("named", ["../other/data-00000-of-00001.arrow", "/etc/passwd", ".."])
def test_a_dataset_reads_only_its_own_files(
    cli, dataset: Path, tiny_model_dir: Path, tmp_path: Path, named: str
) -> None:
    """state.json names the data files: an edited one must not make training read rows from
    outside the folder, which its identity never hashed."""
    other = tmp_path / "other"
    shutil.copytree(dataset, other)
    redirected = tmp_path / "redirected"
    shutil.copytree(dataset, redirected)
    state = json.loads((redirected / "state.json").read_text())
    state["_data_files"] = [{"filename": named}]
    (redirected / "state.json").write_text(json.dumps(state))
    result = cli(
        "train", "--dataset", redirected, "--model", tiny_model_dir, "--out", tmp_path / "ad",
        *FAST_TRAIN,
    )  # fmt: skip
    assert_one_line_error(result, "train.dataset:", repr(named), "not a file of")
    assert not (tmp_path / "ad").exists()


def test_a_manifest_over_the_size_limit_is_not_read(
    cli, dataset: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr("mslt_it.data.MAX_JSON_BYTES", 100)
    result = cli(
        "train", "--dataset", dataset, "--model", tiny_model_dir, "--out", tmp_path / "ad",
        *FAST_TRAIN,
    )  # fmt: skip
    assert_one_line_error(result, "manifest.json' is larger than 100 bytes")


@pytest.mark.parametrize("damage", ["remove", "truncate"])
def test_a_finished_run_whose_weights_changed_is_not_called_complete(
    cli, adapter, dataset: Path, tiny_model_dir: Path, tmp_path: Path, damage: str
) -> None:
    out = tmp_path / "a"
    shutil.copytree(adapter[0], out)
    weights = out / "adapter_model.safetensors"
    if damage == "remove":
        weights.unlink()
    else:
        weights.write_bytes(weights.read_bytes()[:100])
    result = cli(
        "train", "--dataset", dataset, "--model", tiny_model_dir, "--out", out, *FAST_TRAIN
    )
    assert_one_line_error(result, "holds this run, but its adapter_model.safetensors was removed")


def test_merge_takes_an_adapter_only_as_it_finished(cli, adapter, tmp_path: Path) -> None:
    """Without run.json, merge would skip the check that the base model is unchanged."""
    damaged = tmp_path / "damaged"
    shutil.copytree(adapter[0], damaged)
    (damaged / "run.json").unlink()
    result = cli("merge", damaged, "--out", tmp_path / "m")
    assert_one_line_error(result, "its run.json was removed since training", "nothing was merged")
    (damaged / "run.started.json").write_text("{}")  # as a killed training leaves it
    assert_one_line_error(cli("merge", damaged, "--out", tmp_path / "m"), "unfinished run")
    assert not (tmp_path / "m").exists()
    os.mkfifo(tmp_path / "fifo")
    assert_one_line_error(cli("merge", tmp_path / "fifo", "--out", tmp_path / "m"), "a FIFO")


@pytest.mark.parametrize("edit", ["config", "weights"])
def test_merge_refuses_an_adapter_edited_since_training(cli, adapter, tmp_path, edit) -> None:
    """An adapter whose config or weights were changed after training was merged, and the
    merged model carried run.json's record of the training that made other weights."""
    edited = tmp_path / "edited"
    shutil.copytree(adapter[0], edited)
    if edit == "config":
        config = json.loads((edited / "adapter_config.json").read_text())
        (edited / "adapter_config.json").write_text(json.dumps(config | {"lora_alpha": 1000}))
        said = "its adapter_config.json was edited since training"
    else:
        weights = edited / "adapter_model.safetensors"
        data = bytearray(weights.read_bytes())
        data[-1] ^= 1  # one bit of one weight
        weights.write_bytes(bytes(data))
        said = "its adapter_model.safetensors was edited since training"
    result = cli("merge", edited, "--out", tmp_path / "m")
    assert_one_line_error(result, said, "nothing was merged")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--lora-r", "100000000000"], "train.lora.r (--lora-r): must be an integer in 1..16,384"),
        (["--sft", "dataloader_num_workers=-1"], "dataloader_num_workers: must be an integer >= 0"),
        (["--lora", "bias=bogus"], "train.lora.bias: must be none, all or lora_only"),
        (["--lora", "layers_to_transform=99"], "layers_to_transform: layer 99 is not a layer"),
        (["--lora", "trainable_token_indices=[99999999]"], "PEFT or TRL refused"),
        (["--lora", "modules_to_save=[nope]"], "lora modules_to_save: nope is not a module"),
        # PEFT took these and trained on: a negated update, nothing adapted, a rank of 0
        (["--lora", 'alpha_pattern={"q_proj": -1}'], "alpha_pattern: must be a mapping of"),
        (["--lora", 'rank_pattern={"q_proj": 0}'], "rank_pattern: must be a mapping of"),
        (["--lora", "target_parameters=[foo]"], "lora target_parameters: foo is not a parameter"),
        (["--lora-target", "q_proj,,v_proj"], "holds an empty module name"),  # was two names
        (["--lora-target", "all-linear,q_proj"], "all-linear takes every linear module and"),
        # TRL's message goes on over lines; its first stopped at "but found"
        (["--sft", "load_best_model_at_end=true"], "but found: Evaluation strategy: "),
    ],
)
def test_training_values_peft_or_torch_would_refuse_late_are_one_line(
    cli, dataset: Path, tiny_model_dir: Path, tmp_path: Path, extra: list[str], fragment: str
) -> None:
    result = cli(
        "train", "--dataset", dataset, "--model", tiny_model_dir, "--out", tmp_path / "ad",
        *FAST_TRAIN[:4], *extra,
    )  # fmt: skip
    assert_one_line_error(result, fragment)  # not "internal error … this is a bug"


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ("[]", "is not a JSON object"),
        ('{"model_type": "llama", "hidden_size": -1}', "hidden_size is -1"),
        ('{"model_type": "llama", "vocab_size": 99999999999}', "vocab_size is 99999999999"),
    ],
)
def test_a_model_config_with_impossible_sizes_is_one_line(
    cli, dataset: Path, tiny_model_dir: Path, tmp_path: Path, config: str, fragment: str
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    (model / "config.json").write_text(config)
    result = cli(
        "train", "--dataset", dataset, "--model", model, "--out", tmp_path / "ad", *FAST_TRAIN
    )
    assert_one_line_error(result, "--model:", fragment)


def test_resume_skips_a_checkpoint_whose_weights_were_cut_short(adapter, tmp_path: Path) -> None:
    from mslt_it.training.outputs import last_checkpoint

    for step in (100, 150):
        folder = tmp_path / "checkpoints" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        shutil.copy(adapter[0] / "adapter_model.safetensors", folder)
        (folder / "trainer_state.json").write_text("{}")
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoints" / "checkpoint-150")
    weights = tmp_path / "checkpoints" / "checkpoint-150" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])  # killed while writing its last tensor
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoints" / "checkpoint-100")
    weights.write_bytes(b"\xff" * 100)  # no header at all
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoints" / "checkpoint-100")


def test_resume_skips_a_checkpoint_whose_state_or_optimizer_was_cut_short(tmp_path) -> None:
    """A torn trainer_state.json or optimizer.pt made ``--resume`` an internal error; such a
    checkpoint is skipped like one whose weights were cut short."""
    import torch

    from mslt_it.training.outputs import last_checkpoint

    for step in (100, 150):
        folder = tmp_path / "checkpoints" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        torch.save({"state": {}, "param_groups": []}, folder / "optimizer.pt")
        (folder / "trainer_state.json").write_text(f'{{"global_step": {step}}}')
    newest = tmp_path / "checkpoints" / "checkpoint-150"
    assert last_checkpoint(tmp_path) == str(newest)
    (newest / "trainer_state.json").write_text('{"global_step": ')
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoints" / "checkpoint-100")
    (newest / "trainer_state.json").write_text('{"global_step": 150}')
    optimizer = newest / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:100])
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoints" / "checkpoint-100")


def test_numbers_in_exponent_form_are_numbers() -> None:
    """``1e-4`` (YAML 1.2, Python) was read as text by PyYAML and refused as no number, on the
    command line (the option's own help shows ``learning_rate=1e-4``) and in a recipe."""
    from mslt_it.training.config import parse_assignments
    from mslt_it.yamlfiles import parse_yaml

    parsed = parse_assignments(["learning_rate=1e-4", "x=-2E+3", "y=e5", "z=1.5"], "--sft")
    assert parsed == {"learning_rate": 1e-4, "x": -2000.0, "y": "e5", "z": 1.5}
    assert parse_yaml("a: 1e-4\nb: 3.0e-3\nc: 12\nd: 1e5x", "r") == {
        "a": 1e-4, "b": 3e-3, "c": 12, "d": "1e5x"
    }  # fmt: skip


def test_whole_numbers_are_read_as_yaml_1_2_reads_them() -> None:
    """YAML 1.1 read ``budget: 024`` as octal (20) and ``seed: 010`` as 8 without a word, and
    took ``2_4`` for 24 and ``1:30`` for 90 (base 60); the docs promise YAML 1.2, where ``024`` is
    24, octal is ``0o24``, and the others are text."""
    from mslt_it.yamlfiles import parse_yaml

    text = "a: 024\nb: 010\nc: 2_4\nd: 1:30\ne: 0o24\nf: 0x1F\ng: -07\nh: 1_000.5\ni: .5\nj: .inf"
    assert parse_yaml(text, "r") == {
        "a": 24, "b": 10, "c": "2_4", "d": "1:30", "e": 20, "f": 31, "g": -7, "h": "1_000.5",
        "i": 0.5, "j": float("inf"),
    }  # fmt: skip


def test_only_true_and_false_are_booleans() -> None:
    """YAML 1.1 read ``no``, ``yes``, ``on`` and ``off`` as booleans: Norwegian in a list of
    sources, a verbalizer ``{contradiction: no}`` or ``save_strategy: no`` became False."""
    from mslt_it.yamlfiles import parse_yaml

    text = "sources: [en, no, yes, on, off]\nbf16: true\npacking: False"
    assert parse_yaml(text, "r") == {
        "sources": ["en", "no", "yes", "on", "off"], "bf16": True, "packing": False
    }  # fmt: skip


def test_a_file_or_a_link_loop_as_the_dataset_says_what_it_is(cli, tmp_path: Path) -> None:
    (tmp_path / "file.json").write_text("{}")
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for named, fragment in ((tmp_path / "file.json", "is a file"), (tmp_path / "a", "loop")):
        result = cli("train", "--dataset", named, "--model", "m", "--out", tmp_path / "o")
        assert_one_line_error(result, "dataset", fragment)


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_build_number_that_is_not_finite_is_named_as_such(cli, tmp_path, value) -> None:
    result = cli(
        "build", "--task", "xnli", "--sources", "en,de", "--budget", "10", "--budget-mode",
        "temperature", "--temperature", value, "--out", tmp_path / "ds",
    )  # fmt: skip
    assert_one_line_error(result, "temperature: input should be a finite number")


def test_a_field_mslt_it_sets_says_how_to_set_it(cli, tiny_model_dir, tmp_path: Path) -> None:
    result = cli("train", "--dataset", tmp_path, "--model", tiny_model_dir, "--out",
                 tmp_path / "a", "--lora", "task_type=SEQ_CLS")  # fmt: skip
    assert_one_line_error(result, "train.lora.task_type: set by mslt-it (always CAUSAL_LM)")


def test_an_output_link_loop_is_named_a_loop(cli, tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    result = cli("tiny-model", tmp_path / "a")
    assert_one_line_error(result, "out_dir:", "leads back to itself (a symlink loop)")


RANKED = {"id": "r", "task": "xcopa", "lang": "et", "template": "xcopa/en-instruct", "mode": "rank",
          "output": "1", "gold": "B", "scores": {"A": -1.5, "B": -2.0},
          "choice_lengths": {"A": 1, "B": 1}}  # fmt: skip
"""A rank-mode multiple-choice prediction, as `eval --mode rank` writes it."""


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("scores", {"A": "x", "B": 0}, "scores['A'] is 'x'"),
        ("scores", {"A": float("nan"), "B": 0}, "scores['A'] is nan"),
        ("scores", {"A": True, "B": False}, "scores['A'] is True"),
        ("scores", {"C": 0}, "must map each of the choices A, B"),
        ("scores", {"A": 0}, "must map each of the choices A, B"),
        ("scores", [1, 2], "must map each of the choices A, B"),
        ("scores", "AB", "must map each of the choices A, B"),
        ("choice_lengths", 5, "choice_lengths 5 must map"),
        ("choice_lengths", {"A": "x", "B": 1}, "choice_lengths['A'] is 'x'"),
        ("choice_lengths", {"A": -1, "B": 1}, "choice_lengths['A'] is -1"),
    ],
)
def test_score_names_a_ranked_choice_it_cannot_read(cli, tmp_path, field, value, fragment):
    """A string, a missing label or a list among the scores was an internal error (TypeError,
    KeyError, IndexError); a NaN or a yes/no was scored."""
    rows = [RANKED, {**RANKED, "id": "s", field: value}]
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    result = cli("score", path)
    assert_one_line_error(result, "record 2", fragment)
    assert not (tmp_path / "rescored.json").exists()
    path.write_text(json.dumps(RANKED) + "\n", encoding="utf-8")
    assert cli("score", path).code == 0  # the same file with the good row only


RANKED_LABEL = {"id": "q", "task": "xnli", "lang": "de", "template": "xnli/en-instruct",
                "mode": "rank", "output": "neutral", "gold": "neutral",
                "scores": {"entailment": -3.0, "neutral": -1.0, "contradiction": -2.0}}  # fmt: skip
"""A rank-mode classification prediction: its output is the word of the best-scored label."""


@pytest.mark.parametrize(
    ("output", "reads"),
    [("entailment", "'entailment'"), ("maybe", "None"), ("", "None")],
)
def test_score_refuses_a_ranked_label_its_scores_do_not_choose(cli, tmp_path, output, reads):
    """``score`` parses a rank-mode XNLI row's output again: an output edited to another
    label's word (with its gold) counted as right, against the scores the model chose by."""
    edited = {**RANKED_LABEL, "id": "r", "output": output, "gold": "entailment"}
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in (RANKED_LABEL, edited)))
    result = cli("score", path)
    assert_one_line_error(result, "record 2", f"reads as {reads}", "rank 'neutral' first")
    assert not (tmp_path / "rescored.json").exists()
    tied = {**edited, "scores": {**edited["scores"], "entailment": -1.0}}  # a tie: either stands
    path.write_text("".join(json.dumps(row) + "\n" for row in (RANKED_LABEL, tied)))
    if output == "entailment":
        assert cli("score", path).code == 0
        assert json.loads((tmp_path / "rescored.json").read_text())["tasks"]["xnli"]


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda r: r.pop("mode"), "only rank mode gives, but its mode is (no such field)"),
        (lambda r: r.update(mode=None), "its mode is None"),
        (lambda r: r.update(mode="generate"), "its mode is 'generate'"),
        (lambda r: r.update(scores={"neutral": -1.0}), "must map each of the labels"),
        (lambda r: r.update(scores={**r["scores"], "ENTAILMENT": 0.0}), "must map each of the"),
    ],
)
def test_score_refuses_a_ranked_label_row_whose_mode_or_labels_were_edited(
    cli, tmp_path, edit, fragment
) -> None:
    """The rank check went by a row's mode: a row whose mode was dropped (or made null or
    generate) was parsed from its edited output; scores cut to the edited answer made it the
    best-scored one. Every row edited alike, as a whole file."""
    rows = []
    for i in range(2):
        row = {**RANKED_LABEL, "id": f"r{i}", "output": "entailment", "gold": "entailment"}
        edit(row)
        if "scores" in row and "ENTAILMENT" not in row["scores"] and "mode" in row:
            row["output"] = "neutral"  # the cut scores: the edited answer is the only label
        rows.append(row)
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = cli("score", path)
    assert_one_line_error(result, "record 1", fragment)
    assert not (tmp_path / "rescored.json").exists()


def test_a_row_that_left_its_runs_mode_is_refused(cli, tmp_path: Path) -> None:
    """`score` held each file to one mode only among the rows that have one, and `report` not
    at all: a row whose mode and scores were dropped was read as a generated answer."""
    predictions = evaluated_run(tmp_path / "ev" / "en", "en", ["en"], 5)
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    for record in records[5:]:
        del record["mode"], record["scores"]
        record.update(output="entailment", parsed="entailment", correct=True)
    predictions.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = cli("score", predictions, "--out", tmp_path / "rescored.json")
    assert_one_line_error(result, "record 6: mode (no such field) differs", "'rank'")
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "rep")
    assert_one_line_error(result, "mode (no such field) is not its results.json's 'rank'")
    assert not (tmp_path / "rep").exists()


def test_score_writes_only_beside_its_predictions_inside_an_evaluation(cli, tmp_path) -> None:
    """Into the evaluation's .chunks or staging folder (which the next eval clears, and the
    file with it), or into another run's folder (where it passed for that run's rescoring)."""
    from mslt_it.io import mark_owner

    evaluation = tmp_path / "ev"
    for run in ("base", "adapter"):
        (evaluation / run).mkdir(parents=True)
        (evaluation / run / "predictions.jsonl").write_text(json.dumps(RANKED) + "\n")
    mark_owner(evaluation, "evaluation")
    predictions = evaluation / "base" / "predictions.jsonl"
    for out, fragment in (
        (evaluation / ".final.tmp" / "r.json", "inside '.final.tmp'"),
        (evaluation / ".chunks" / "r.json", "inside '.chunks'"),
        (evaluation / "adapter" / "rescored.json", "in another run's folder of"),
    ):
        assert_one_line_error(cli("score", predictions, "--out", out), "--out:", fragment)
        assert not out.exists()
    assert cli("score", predictions).code == 0
    assert (evaluation / "base" / "rescored.json").is_file()


def test_score_never_writes_into_another_evaluation(cli, tmp_path: Path) -> None:
    from mslt_it.io import mark_owner

    line = (
        '{"id": "a", "task": "xnli", "lang": "en", "template": "xnli/en-instruct", '
        '"output": "entailment", "gold": "entailment"}\n'
    )
    for name in ("mine", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "predictions.jsonl").write_text(line)
        mark_owner(tmp_path / name, "evaluation")
    before = (tmp_path / "other" / OWNER_FILE).read_text()
    result = cli("score", tmp_path / "mine" / "predictions.jsonl", "--out",
                 tmp_path / "other" / "rescored.json")  # fmt: skip
    assert_one_line_error(result, "lies in another mslt-it output")
    assert (tmp_path / "other" / OWNER_FILE).read_text() == before
    assert not (tmp_path / "other" / "rescored.json").exists()
    own = cli("score", tmp_path / "mine" / "predictions.jsonl")  # beside its own: recorded
    assert own.code == 0, own.err
    assert "rescored.json" in json.loads((tmp_path / "mine" / OWNER_FILE).read_text())["files"]


def evaluated_run(folder: Path, name: str, sources: list[str], correct: int) -> Path:
    """A results.json of 10 xnli/en rows and the predictions.jsonl that agrees with it."""
    write_results(folder, results_document(name, "rank", 10.0 * correct, sources))
    right = {"entailment": -1.0, "neutral": -2.0, "contradiction": -3.0}
    wrong = {"entailment": -2.0, "neutral": -1.0, "contradiction": -3.0}
    records = [
        {"id": f"xnli/en/test/{i}", "task": "xnli", "lang": "en", "template": "xnli/en-instruct",
         "output": "entailment" if i < correct else "neutral", "gold": "entailment",
         "parsed": "entailment" if i < correct else "neutral", "correct": i < correct,
         "invalid": False, "mode": "rank", "adapter": name,
         "scores": right if i < correct else wrong}
        for i in range(10)
    ]  # fmt: skip
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder / "predictions.jsonl"


def test_report_pairs_only_rows_of_the_same_data(cli, tmp_path: Path) -> None:
    evaluated_run(tmp_path / "ev" / "en", "en", ["en"], 5)
    other = evaluated_run(tmp_path / "ev" / "de+en", "de+en", ["de", "en"], 7)
    compare = ["--compare", "SSLT en", "MSLT de+en"]
    assert cli("report", tmp_path / "ev", "--out", tmp_path / "r1", *compare).code == 0
    text = other.read_text()
    at = text.rindex('"gold": "entailment"')  # the last row, a wrong one: it stays wrong
    text = text[:at] + text[at:].replace('"gold": "entailment"', '"gold": "contradiction"', 1)
    other.write_text(text)  # one row's gold changed: the same id, not the same row
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "r2", *compare)
    assert_one_line_error(result, "different gold answers", "same data")
    other.write_text("")  # emptied: results.json still counts 10 rows
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "r3")
    assert_one_line_error(result, "counts 10 rows and predictions.jsonl beside it holds none")


def test_report_refuses_an_interval_that_does_not_hold_its_score(cli, tmp_path: Path) -> None:
    """A copy's score edited and its interval left: scores.csv printed 100.00 with 10-50."""
    evaluated_run(tmp_path / "ev" / "en", "en", ["en"], 5)
    assert cli("report", tmp_path / "ev", "--out", tmp_path / "r1").code == 0
    path = tmp_path / "ev" / "en" / "results.json"
    document = json.loads(path.read_text())
    document["tasks"]["xnli"]["languages"]["en"]["ci95"] = [10.0, 40.0]
    path.write_text(json.dumps(document))
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "r2")
    assert_one_line_error(result, ".ci95: [10.0, 40.0] does not hold the score 50")


def test_report_refuses_rows_of_a_language_its_results_lost(cli, tmp_path: Path) -> None:
    """A language taken out of a copy's results.json: the score table left it out while the
    comparisons still paired its rows."""
    predictions = evaluated_run(tmp_path / "ev" / "en", "en", ["en"], 5)
    evaluated_run(tmp_path / "ev" / "de+en", "de+en", ["de", "en"], 7)
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    extra = [{**r, "lang": "de", "id": r["id"].replace("/en/", "/de/")} for r in records]
    predictions.write_text("".join(json.dumps(r) + "\n" for r in records + extra))
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "r")
    assert_one_line_error(
        result, "on xnli/de: predictions.jsonl holds 10 rows and results.json beside it no score"
    )
    assert not (tmp_path / "r").exists()


def test_score_refuses_the_results_of_another_run_beside_its_predictions(cli, tmp_path) -> None:
    predictions = evaluated_run(tmp_path / "ev", "en", ["en"], 5)
    assert cli("score", predictions).code == 0
    document = json.loads((tmp_path / "ev" / "results.json").read_text())
    document["mode"] = "generate"  # the predictions say rank
    (tmp_path / "ev" / "results.json").write_text(json.dumps(document))
    assert_one_line_error(cli("score", predictions), "beside it is of another run", "'generate'")
    document["mode"] = "rank"
    document["tasks"]["xnli"]["languages"] = {"de": document["tasks"]["xnli"]["languages"]["en"]}
    (tmp_path / "ev" / "results.json").write_text(json.dumps(document))
    assert_one_line_error(cli("score", predictions), "it has no xnli/en of the predictions'")
    (tmp_path / "ev" / "results.json").write_text(json.dumps({**document, "run": "de+en"}))
    assert_one_line_error(cli("score", predictions), "of another run (run 'de+en'", "'en'")
    for field, value in (("run", ["m2"]), ("run", 5), ("tasks", None), ("tasks", [])):
        (tmp_path / "ev" / "results.json").write_text(json.dumps({**document, field: value}))
        assert_one_line_error(cli("score", predictions), f"results.json: {field}: ")
    for emptied in ({"xnli": {"languages": {}}}, {}):  # `tasks: {}` was taken as no record
        (tmp_path / "ev" / "results.json").write_text(json.dumps({**document, "tasks": emptied}))
        assert_one_line_error(cli("score", predictions), "it has no xnli/en of the predictions'")


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("p.csv", b"en,de\n", "holds no rows, only its header"),
        ("p.csv", b"en,de\n\xff\xfe,b\nc,d\n", "column 'en' holds binary values, not text"),
        ("p.jsonl", b'{"en": 1, "de": 2}\n{"en": 3, "de": 4}\n', "holds int64 values"),
    ],
)
def test_analyze_names_what_is_wrong_with_a_parallel_file(
    cli, tiny_model_dir: Path, tmp_path: Path, name: str, content: bytes, fragment: str
) -> None:
    (tmp_path / name).write_bytes(content)
    result = cli("analyze", "--model", tiny_model_dir, "--langs", "en,de", "--n", "3",
                 "--parallel", tmp_path / name, "--out", tmp_path / "a")  # fmt: skip
    assert_one_line_error(result, "--parallel:", fragment)  # not "--n: 2 is more than …"


def test_two_scores_of_one_file_never_both_claim_it(cli, tmp_path: Path) -> None:
    predictions = evaluated_run(tmp_path / "ev", "en", ["en"], 5)
    target = tmp_path / "rescored.json"
    holder = hold_lock(target, 60)
    try:
        result = cli("score", predictions, "--out", target)
        assert_one_line_error(result, "being written by another mslt-it process", str(holder.pid))
        assert not target.exists()
    finally:
        holder.kill()
        holder.wait()
    assert cli("score", predictions, "--out", target).code == 0


def test_a_parquet_file_is_read_as_pyarrow_reads_it_and_a_dictionary_bomb_is_refused(
    cli, tmp_path: Path, monkeypatch
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mslt_it.io import read_arrow_table

    plain = tmp_path / "plain.parquet"
    table = pa.table({
        "premise": ["a", "b", None, "a"], "hypothesis": ["c", "d", "e", "f"],
        "label": [0, 1, 2, 0], "tokens": [["x", "y"], [], None, ["z"]],
    })  # fmt: skip
    pq.write_table(table, plain)
    assert read_arrow_table(plain, "data").equals(pq.read_table(plain))
    # 200 rows of one 10,000-character value: a few hundred bytes on disk, 2 MB as text
    folder = tmp_path / "data" / "xnli" / "en"
    folder.mkdir(parents=True)
    long = "x" * 10_000
    rows = {"premise": [long] * 200, "hypothesis": ["h"] * 200, "label": [0] * 200}
    pq.write_table(pa.table(rows), folder / "train.parquet", compression="zstd")
    assert (folder / "train.parquet").stat().st_size < 5_000
    monkeypatch.setattr("mslt_it.io.MAX_PARQUET_TEXT_BYTES", 1_000_000)
    result = cli("build", "--task", "xnli", "--sources", "en", "--budget", "4", "--data",
                 tmp_path / "data", "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, "decodes to more than 1,000,000 bytes of text")
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("kind", ["binary", "list-of-binary", "dictionary-of-binary"])
def test_a_parquet_column_of_bytes_is_refused_not_printed_as_bytes(
    cli, tmp_path: Path, kind: str
) -> None:
    """Parquet's binary columns arrive as Python bytes, which a corpus prompt's ``~`` would
    write as ``b'Translate'``; JSON-lines text that is not UTF-8 is refused likewise."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "data" / "bactrian-x" / "en"
    folder.mkdir(parents=True)
    instruction = [b"Translate", b"Sum up"] if kind == "binary" else ["Translate", "Sum up"]
    table = pa.table({
        "instruction": instruction, "input": ["a", ""], "output": ["b", "c"],
        "id": ["1", "2"],
    })  # fmt: skip
    if kind == "list-of-binary":
        table = table.append_column("extra", pa.array([[b"x"], [b"y"]]))
        table = table.set_column(1, "input", pa.array([[b"a"], [b"b"]]))
    if kind == "dictionary-of-binary":
        table = table.set_column(1, "input", pa.array([b"a", b"b"]).dictionary_encode())
    pq.write_table(table, folder / "train.parquet")
    result = cli("build", "--task", "bactrian-x", "--sources", "en", "--budget", "2", "--data",
                 tmp_path / "data", "--out", tmp_path / "ds")  # fmt: skip
    column = "instruction" if kind == "binary" else "input"
    assert_one_line_error(result, f"column {column!r} holds", "not text")
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [([0, 1, 0.5], "line 3: label 0.5 is not"), ([0, 1, "NaN"], "line 3: label nan is not"),
     ([0.0, 1.0, 2.0], "line 1: label 0.0 is not one of")],
)  # fmt: skip
def test_a_decimal_label_is_named_at_its_own_row(cli, tmp_path: Path, labels, fragment) -> None:
    """One ``0.5`` makes pyarrow read every label as a decimal: the error named row 0's 0.0."""
    folder = tmp_path / "data" / "xnli" / "en"
    folder.mkdir(parents=True)
    lines = [f'{{"premise": "p", "hypothesis": "h", "label": {label}}}' for label in labels]
    (folder / "train.jsonl").write_text("\n".join(lines) + "\n")
    result = cli("build", "--task", "xnli", "--sources", "en", "--budget", "2", "--data",
                 tmp_path / "data", "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, fragment)


def test_a_name_in_an_error_keeps_its_spaces(cli, tmp_path: Path) -> None:
    """Only line breaks are flattened: 'a  b.csv' (two spaces) is named as given, since
    'a b.csv' may be another file, one that exists."""
    (tmp_path / "a b.csv").write_text("sources,lang,score\n")
    result = cli("select", "--task", "xnli", "--fit", tmp_path / "a  b.csv")
    assert_one_line_error(result, "no such file", "a  b.csv")


@pytest.mark.parametrize(
    "args",
    [
        ("prompts", "list", "--prompts-dir", ""),
        ("prompts", "list", "--tasks-dir", " "),
        ("tiny-model", ""),
        ("run", "recipes/demo.yaml", "--emit-slurm", ""),
        ("report", "", "--out", "r"),
        ("build", "--task", "xnli", "--sources", "en", "--budget", "2", "--out", ""),
        ("select", "--task", "xnli", "--fit", ""),
    ],
)
def test_an_empty_path_is_refused_not_read_as_the_current_folder(cli, args) -> None:
    """``Path("")`` is ``.``: an empty value read the current folder (``--prompts-dir ''``) or
    found it in use (``tiny-model ''``). Every path option refuses it by name."""
    result = cli(*args)
    assert_one_line_error(result, "an empty path")


@pytest.mark.parametrize("section", ["data", "eval"])
def test_a_recipe_section_of_the_wrong_type_is_named_as_such(cli, tmp_path, section) -> None:
    """``data: 5`` is a section of the wrong type, not a missing one."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\n{section}: 5\n")
    command = "build" if section == "data" else "eval"
    result = cli(command, "--recipe", recipe, "--out", tmp_path / "o")
    assert_one_line_error(result, f"{section}: expected a section", "got 5")
    recipe.write_text("name: r\n")
    assert_one_line_error(cli(command, "--recipe", recipe, "--out", tmp_path / "o"), "has no")


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.floats(width=32) | st.sampled_from([3e38, -3e38, 4e4, 65504.0]), min_size=1, max_size=8
    ),
    half=st.booleans(),
)
def test_the_finiteness_check_refuses_exactly_the_tensors_with_nan_or_infinity(
    values: list[float], half: bool
) -> None:
    """The check sums first (fast) and tests each value only when the sum is not finite: finite
    values whose sum overflows pass, and every NaN or infinity is caught."""
    import torch

    from mslt_it.peft_adapters import check_finite

    tensor = torch.tensor(values, dtype=torch.float32)
    if half:
        tensor = tensor.to(torch.float16)  # large values become infinities: then refused
    damaged = not bool(tensor.isfinite().all())
    try:
        check_finite("w", tensor, Path("adapter"), "adapter")
    except MsltError as error:
        assert damaged and "NaN or infinite" in str(error)
    else:
        assert not damaged


LOOPS_ON_REAL_ROWS = (  # past the probes (short conversations): loops only on a real row
    "{% if (messages | map(attribute='content') | join) | length > 80 %}{% for i in range(99999)"
    " %}{% for j in range(99999) %}{% endfor %}{% endfor %}{% endif %}"
    "{% for m in messages %}{{ m['content'] }}{% endfor %}"
)


@pytest.mark.parametrize(
    "case", ["fifo", "not-utf8", "huge-file", "huge-render", "loop", "loop-to-answer", "huge-row"]
)
def test_a_hostile_chat_template_for_training_is_one_line(
    cli, tmp_path: Path, dataset: Path, tiny_model_dir: Path, monkeypatch, case: str
) -> None:
    """``--chat-template`` is user input like any template: read as a regular file within a
    size limit, and rendered within the bounds (a billion characters killed the process; a
    template looping only on real rows hung in the length check, with no time limit)."""
    monkeypatch.setattr("mslt_it.prompt_bounds.RENDER_SECONDS", 0.5)
    path = tmp_path / "t.jinja"
    if case == "fifo":
        os.mkfifo(path)
        fragment = "FIFO"
    elif case == "not-utf8":
        path.write_bytes(b"\xff\xfe{{ x }}")
        fragment = "not UTF-8"
    elif case == "huge-file":
        path.write_text("x" * 5_000_000)
        fragment = "model.chat_template"
    elif case == "loop":
        path.write_text(LOOPS_ON_REAL_ROWS)
        fragment = "cannot render a prompt: the evaluation took longer than the limit"
    elif case == "loop-to-answer":  # only with the generation prompt, as TRL renders a prompt
        path.write_text(LOOPS_ON_REAL_ROWS.replace("{% if ", "{% if add_generation_prompt and "))
        fragment = "cannot render a prompt: the evaluation took longer than the limit"
    elif case == "huge-row":  # memory, not time, and only on real rows
        path.write_text(LOOPS_ON_REAL_ROWS.replace(
            LOOPS_ON_REAL_ROWS[LOOPS_ON_REAL_ROWS.index("{% for i"):LOOPS_ON_REAL_ROWS.index(
                "{% endif %}")], "{{ 'x' * (2000 * 1000) }}"))  # fmt: skip
        fragment = "cannot render a prompt: a repetition would build 2,000,000"
    template = str(path) if case != "huge-render" else '{{ "x" * 1000000000 }}'
    fragment = "breaks a bound" if case == "huge-render" else fragment
    result = cli("train", "--dataset", dataset, "--model", tiny_model_dir, "--out",
                 tmp_path / "out", "--chat-template", template, *FAST_TRAIN)  # fmt: skip
    assert_one_line_error(result, "model.chat_template", fragment)
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists()


@pytest.mark.parametrize("field", ["sources", "task"])
def test_training_refuses_a_dataset_whose_manifest_was_edited(
    cli, tmp_path: Path, dataset: Path, tiny_model_dir: Path, field: str
) -> None:
    """run.json records the manifest's sources and task: an edited one recorded a
    multi-source run as single-source, or another task."""
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest[field] = ["en"] if field == "sources" else "pawsx"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    result = cli("train", "--dataset", copy, "--model", tiny_model_dir, "--out",
                 tmp_path / "out", *FAST_TRAIN)  # fmt: skip
    assert_one_line_error(result, "manifest.json", "changed after")
    assert not (tmp_path / "out").exists()


def test_train_settings_given_twice_or_of_the_wrong_shape_are_one_line(
    cli, tmp_path: Path, dataset: Path, tiny_model_dir: Path
) -> None:
    """A recipe's ``train.sft: 5`` was an internal error, and ``--sft max_steps=-1`` beside
    ``--max-steps 2`` silently trained 150 steps."""
    base = ["train", "--dataset", dataset, "--model", tiny_model_dir, "--out", tmp_path / "o"]
    for section, value in (("sft", "5"), ("lora", "[1, 2]")):
        recipe = tmp_path / f"{section}.yaml"
        recipe.write_text(f"train:\n  {section}: {value}\n")
        result = cli(*base, "--recipe", recipe)
        assert_one_line_error(result, f"train.{section}: expected a mapping", value)
    result = cli(*base, "--max-steps", "2", "--sft", "max_steps=-1")
    assert_one_line_error(result, "--sft", "max_steps", "give it once")
    assert not (tmp_path / "o").exists()


def test_overwrite_through_a_link_to_the_run_keeps_the_link(
    cli, tmp_path: Path, adapter, dataset: Path, tiny_model_dir: Path
) -> None:
    out, _ = adapter
    run = tmp_path / "run"
    shutil.copytree(out, run)
    (tmp_path / "link").symlink_to(run)
    result = cli("train", "--dataset", dataset, "--model", tiny_model_dir, "--out",
                 tmp_path / "link", "--overwrite", "--seed", "3", *FAST_TRAIN)  # fmt: skip
    assert result.code == 0, result.err
    assert (tmp_path / "link").is_symlink() and (run / "adapter_model.safetensors").is_file()
    assert json.loads((run / "run.json").read_text())["sft"]["seed"] == 3


@pytest.mark.parametrize("kind", ["string_view", "binary_view"])
def test_a_parquet_view_column_is_read_as_its_plain_kind(cli, tmp_path: Path, kind: str) -> None:
    """A string_view column crashed the reader (a dictionary cannot be cast to a view); read as
    text it builds, and a binary_view one is bytes like binary: refused in one line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "data" / "xnli" / "en"
    folder.mkdir(parents=True)
    view = pa.string_view() if kind == "string_view" else pa.binary_view()
    premises = ["A dog runs.", "A cat sits."]
    values = premises if kind == "string_view" else [p.encode() for p in premises]
    table = pa.table({
        "premise": pa.array(values, type=view), "hypothesis": ["An animal moves.", "x"],
        "label": [0, 2],
    })  # fmt: skip
    pq.write_table(table, folder / "train.parquet")
    result = cli("build", "--task", "xnli", "--sources", "en", "--budget", "2", "--data",
                 tmp_path / "data", "--out", tmp_path / "ds")  # fmt: skip
    if kind == "string_view":
        assert result.code == 0, result.err
    else:
        assert_one_line_error(result, "column 'premise' holds binary", "not text")


def test_a_task_row_over_a_mebibyte_is_read_and_one_over_the_limit_named(cli, tmp_path) -> None:
    """pyarrow's 1 MiB block refused a 2 MB row with "straddles two block boundaries (try to
    increase block size?)", an option no user has; rows up to LONGEST_LINE are read, a longer
    one is named by its line."""
    from mslt_it.jsonlines import LONGEST_LINE

    folder = tmp_path / "data" / "xnli" / "en"
    folder.mkdir(parents=True)
    rows = [{"premise": f"p{i}", "hypothesis": "b", "label": i % 3, "notes": ""} for i in range(3)]
    rows[1]["notes"] = "a " * 1_000_000  # a long row, not a long prompt (at most 1,000,000)
    path = folder / "test.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    args = ["build", "--task", "xnli", "--sources", "en", "--budget", "3", "--split", "test",
            "--data", tmp_path / "data"]  # fmt: skip
    assert cli(*args, "--out", tmp_path / "ds").code == 0
    rows[2]["notes"] = "a" * LONGEST_LINE
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = cli(*args, "--out", tmp_path / "ds2")
    assert_one_line_error(result, "line 3 is longer than 4,194,304 bytes")
    assert not (tmp_path / "ds2").exists()


def _edit_run_record(folder: Path, change) -> None:
    record = json.loads((folder / "run.json").read_text())
    change(record)
    (folder / "run.json").write_text(json.dumps(record))


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda r: r.pop("base_model_identity"), "no longer records base_model_identity"),
        (lambda r: r.update(base_model_identity=None), "no longer records base_model_identity"),
        (lambda r: r.update(base_model=5), "base_model is 5"),
        (None, "run.json was removed since training"),
        (lambda r: r.update(base_model_identity={}), "no longer records base_model_identity"),
        (lambda r: r.update(base_model_identity={"sha256": 5}), "no longer records"),
        ("unmarked", "no longer records base_model_identity"),
    ],
    ids=["identity-removed", "identity-null", "base-a-number", "run-json-removed",
         "identity-empty", "identity-not-text", "marker-removed-too"],
)  # fmt: skip
def test_an_adapter_whose_base_record_was_edited_is_refused_everywhere(
    adapter, tiny_model_dir: Path, tmp_path: Path, cli, edit, fragment: str
) -> None:
    """The check that an adapter runs on the base it was trained on read run.json's
    base_model_identity: edited out (or run.json removed), analyze and merge went on with any
    base, and an adapter from elsewhere has no marker to tell."""
    copy = tmp_path / "a"
    shutil.copytree(adapter[0], copy)
    if edit is None:
        (copy / "run.json").unlink()
    elif edit == "unmarked":  # the marker too: run.json's config_hash still says it is mslt-it's
        _edit_run_record(copy, lambda r: r.pop("base_model_identity"))
        (copy / ".mslt-it-output.json").unlink()
    else:
        _edit_run_record(copy, edit)
    analyze = ("analyze", "--model", tiny_model_dir, "--adapter", copy, "--langs", "en,de",
               "--n", "4", "--out", tmp_path / "an")  # fmt: skip
    evaluate = ("eval", "--model", tiny_model_dir, "--adapter", copy, "--task", "xnli",
                "--langs", "en", "--limit", "2", "--mode", "rank", "--out", tmp_path / "ev",
                "--template", "xnli/en-instruct", "--allow-template-mismatch")  # fmt: skip
    for args in (analyze, evaluate, ("merge", copy, "--out", tmp_path / "m")):
        result = cli(*args)
        if edit is None and args[0] == "merge":
            fragment = "run.json was removed"
        assert_one_line_error(result, fragment)
    assert not any((tmp_path / name).exists() for name in ("an", "ev", "m"))


def test_an_adapter_weights_file_that_is_a_folder_is_one_line(
    adapter, tiny_model_dir: Path, tmp_path: Path, cli
) -> None:
    copy = tmp_path / "a"
    shutil.copytree(adapter[0], copy)
    (copy / "adapter_model.safetensors").unlink()
    (copy / "adapter_model.safetensors").mkdir()
    result = cli("analyze", "--model", tiny_model_dir, "--adapter", copy, "--langs", "en,de",
                 "--n", "4", "--out", tmp_path / "an")  # fmt: skip
    assert_one_line_error(result, "--adapter:", "is a folder")


def test_merge_holds_an_adapter_to_its_recorded_base_when_run_json_names_none(
    adapter, tiny_model_dir: Path, tmp_path: Path, cli
) -> None:
    """Without base_model in run.json, merge took adapter_config.json's base and dropped the
    recorded identity with run.json: an edited adapter_config.json merged onto any model."""
    other = tmp_path / "other"
    assert cli("tiny-model", other, "--seed", "1").code == 0
    copy = tmp_path / "a"
    shutil.copytree(adapter[0], copy)
    _edit_run_record(copy, lambda r: r.pop("base_model"))
    config = json.loads((copy / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(other)
    (copy / "adapter_config.json").write_text(json.dumps(config))
    result = cli("merge", copy, "--out", tmp_path / "m")
    # an edited adapter_config.json is no longer the trained adapter: refused before its base
    assert_one_line_error(result, "adapter_config.json was edited since training")
    assert not (tmp_path / "m").exists()


def test_an_out_that_cannot_be_reached_names_the_option(monkeypatch, tmp_path: Path) -> None:
    """A folder on the way this user may not enter (``/proc/1/root/…``) made the first look at
    ``--out`` a bare ``cannot write or read`` without the option's name."""
    from mslt_it.outputs import check_destination

    real = Path.lstat

    def refused(self: Path, *args, **kwargs):
        if self.name == "zz":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "lstat", refused)
    with pytest.raises(MsltError, match=r"^--out: cannot reach .*zz' \(Permission denied\)"):
        check_destination(tmp_path / "zz")


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda d: d["tasks"]["xnli"].update(metric='=HYPERLINK("x")|y\n# z'), "tasks.xnli.metric"),
        (lambda d: d["tasks"]["xnli"].update(metric="Accuracy"), "not a metric mslt-it scores"),
        (
            lambda d: d["tasks"]["xnli"]["languages"]["en"].update(
                answer_language={"expected": "=cmd|x\n|bad|", "share": 0.5}
            ),
            "answer_language.expected",
        ),
        (
            lambda d: d.update(adapter_sanity={"compared_with": "b", "rows": "abc"}),
            "adapter_sanity.rows",
        ),
        (
            lambda d: d.update(adapter_sanity={"compared_with": 3, "rows": 4, "identical_rows": 0}),
            "adapter_sanity.compared_with",
        ),
    ],
    ids=["metric-formula", "metric-unknown", "expected-language", "sanity-rows", "sanity-name"],
)
def test_report_refuses_results_text_it_would_print_raw(cli, tmp_path: Path, edit, fragment):
    """A metric, an expected answer language or a sanity record reached report.md and
    scores.csv as written: table bars, newlines and spreadsheet formulas from a results.json,
    and a sanity count that was no number was an internal error."""
    document = results_document("en", "rank", 50.0, ["en"])
    edit(document)
    write_results(tmp_path / "ev" / "en", document)
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "rep")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "rep").exists()


def test_report_prints_folder_names_settings_and_sanity_records_as_plain_text(cli, tmp_path):
    """Names a report needs from where it has them: two base runs told apart by their folders'
    names, a sanity record's run and a system prompt that differs between a compared pair."""
    for folder in ("=x|y\n# z", "plain"):
        write_results(tmp_path / "ev" / folder, results_document("base", "rank", 30.0))
    sanity = {"compared_with": "=evil\n| x |\x1b[31m", "rows": 10, "identical_rows": 2}
    document = {**results_document("en", "rank", 50.0, ["en"]), "adapter_sanity": sanity}
    document["system_prompt"] = "Be nice\n| x | y |\r\x1b[31m=1+1"
    write_results(tmp_path / "ev" / "en", document)
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "rep")
    assert result.code == 0, result.err
    text = (tmp_path / "rep" / "report.md").read_text()
    table = (tmp_path / "rep" / "scores.csv").read_text()
    for written in (text, table):
        assert "\x1b" not in written and "\r" not in written and "# z" not in written
        assert "=x" not in written and "| x |" not in written
    assert "base [_x_y_" in text and "differs from _evil_" in text


def test_report_names_a_run_whose_results_were_removed_from_an_evaluation(
    cli, tmp_path: Path
) -> None:
    """An evaluation of several runs lost one results.json: the report left that run out
    without a word, though the evaluation's marker lists the file."""
    from mslt_it.io import mark_owner

    for name, sources in (("en", ["en"]), ("de+fr", ["de", "fr"])):
        write_results(tmp_path / "ev" / name, results_document(name, "rank", 50.0, sources))
    mark_owner(tmp_path / "ev", "evaluation", patterns=("*/results.json",))
    assert cli("report", tmp_path / "ev", "--out", tmp_path / "r1").code == 0
    (tmp_path / "ev" / "en" / "results.json").unlink()
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "r2")
    assert_one_line_error(result, "en/results.json was removed since mslt-it eval wrote it")
    result = cli("report", tmp_path / "ev" / "de+fr", "--out", tmp_path / "r3")  # as asked
    assert result.code == 0, result.err


def test_report_refuses_a_metric_its_predictions_do_not_give(cli, tmp_path: Path) -> None:
    """The check that results.json and predictions.jsonl tell one number ran for accuracy
    only: a results.json relabelled f1 showed any score beside predictions scoring 50."""
    evaluated_run(tmp_path / "ev" / "en", "en", ["en"], 5)
    document = json.loads((tmp_path / "ev" / "en" / "results.json").read_text())
    document["tasks"]["xnli"]["metric"] = "f1"
    (tmp_path / "ev" / "en" / "results.json").write_text(json.dumps(document))
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "rep")
    assert_one_line_error(result, "tasks.xnli.metric: 'f1'", "scores xnli by ('accuracy')")
    # a task of the user's, whose metric mslt-it does not know: its rows tell
    for name in ("results.json", "predictions.jsonl"):
        path = tmp_path / "ev" / "en" / name
        path.write_text(path.read_text().replace("xnli", "mine"))
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "rep")
    assert_one_line_error(result, "scores it by 'f1'", "holds accuracy rows")


def test_report_names_a_predictions_file_that_is_no_regular_file(cli, tmp_path: Path) -> None:
    """A predictions.jsonl that is a FIFO was read as missing, and the run's scores went
    unchecked against its rows without a word."""
    write_results(tmp_path / "ev" / "en", results_document("en", "rank", 50.0, ["en"]))
    os.mkfifo(tmp_path / "ev" / "en" / "predictions.jsonl")
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "rep")
    assert_one_line_error(result, "predictions.jsonl' is a FIFO")


def test_report_refuses_a_folder_that_holds_no_results(cli, tmp_path: Path) -> None:
    """A run's folder given by name whose results.json is gone was left out of the report
    without a word."""
    write_results(tmp_path / "ev" / "en", results_document("en", "rank", 50.0, ["en"]))
    (tmp_path / "empty").mkdir()
    result = cli("report", tmp_path / "ev", tmp_path / "empty", "--out", tmp_path / "rep")
    assert_one_line_error(result, "empty' holds no results.json")


def test_a_note_quoting_the_data_is_plain_text_in_the_report(cli, tmp_path: Path) -> None:
    """ "Not compared" quotes a row's gold answers; from a results file of the user's own they
    could put HTML, links or table rows into report.md."""
    evaluated_run(tmp_path / "ev" / "en", "en", ["en"], 5)
    other = evaluated_run(tmp_path / "ev" / "de+en", "de+en", ["de", "en"], 7)
    gold = "<script>x</script> [click](http://e.vil) | row"
    text = other.read_text()
    at = text.rindex('"gold": "entailment"')  # the last row, a wrong one: it stays wrong
    other.write_text(
        text[:at] + text[at:].replace('"gold": "entailment"', f'"gold": {json.dumps(gold)}', 1)
    )
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "rep")
    assert result.code == 0, result.err
    text = (tmp_path / "rep" / "report.md").read_text()
    note = next(line for line in text.splitlines() if line.startswith("Not compared"))
    assert "different gold answers" in note
    assert not any(mark in note for mark in ("<", ">", "[", "]", "|"))


def adapter_with_record(folder: Path, record: dict, marked: bool) -> Path:
    from mslt_it.io import mark_owner

    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(record))
    if marked:
        mark_owner(folder, "adapter", patterns=("run.json",))
    return folder


def test_report_reads_an_adapters_run_record_as_written_or_leaves_it_out(cli, tmp_path):
    """The training section prints what an adapter's run.json says: one edited since training
    drew curves no training made and printed its text raw, and a malformed one was an internal
    error."""
    record = {
        "dataset": {"sources": ["en"]},
        "curves": {"watch": {"xnli": {"de": [[10, 40.0], [20, 60.0]]}}},
    }
    adapter = adapter_with_record(tmp_path / "ad", record, marked=True)
    document = results_document("en", "rank", 50.0, ["en"])
    document["adapter"]["path"] = str(adapter)
    write_results(tmp_path / "ev" / "en", document)
    assert cli("report", tmp_path / "ev", "--out", tmp_path / "r1").code == 0
    assert "de at step 20" in (tmp_path / "r1" / "report.md").read_text()

    record["dataset"]["sources"] = ["en)\n| injected | row |\n\x1b[31m"]
    (adapter / "run.json").write_text(json.dumps(record))
    assert cli("report", tmp_path / "ev", "--out", tmp_path / "r2").code == 0
    text = (tmp_path / "r2" / "report.md").read_text()
    assert "run.json was changed since `mslt-it train` wrote it" in text
    assert "injected" not in text and "\x1b" not in text

    (adapter / ".mslt-it-output.json").unlink()  # a record from elsewhere: checked instead
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "r3")
    assert_one_line_error(result, "dataset.sources", "is not a plain name")
    record["dataset"]["sources"] = ["en"]
    record["curves"]["watch"] = {"xnli": {"de": 5}}
    (adapter / "run.json").write_text(json.dumps(record))
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "r4")
    assert_one_line_error(result, "curves.watch.xnli.de", "not a list of [step, value] points")


def report_on_a_foreign_record(cli, tmp_path: Path, record: dict):
    """``report`` on an evaluation of an adapter whose run.json is ``record`` and that has no
    marker (a copy from elsewhere), with Python warnings made errors: none may be printed."""
    adapter = adapter_with_record(tmp_path / "ad", record, marked=False)
    document = results_document("en", "rank", 50.0, ["en"])
    document["adapter"]["path"] = str(adapter)
    write_results(tmp_path / "ev" / "en", document)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return cli("report", tmp_path / "ev", "--out", tmp_path / "rep")


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        ({"watch": {"xnli": {"de": [[10**400, 50.0], [4, 60.0]]}}}, "no whole step"),
        ({"watch": {"xnli": {"de": [[2, 10**400]]}}}, "an accuracy lies in 0..100"),
        ({"watch": {"xnli": {"de": [[2, float("nan")], [4, float("inf")]]}}}, "an accuracy"),
        ({"watch": {"xnli": {"de": [[-5, 50.0], [0, 60.0]]}}}, "no whole step"),
        ({"watch": {"xnli": {"de": [[1e308, 50.0]]}}}, "no whole step"),
        ({"watch": {"xnli": {"de": [[True, False]]}}}, "no whole step"),
        ({"loss_by_language": {"en": [[1, 1e308], [2, -1e308]]}}, "a loss lies in 0..1e+06"),
        ({"heldout_loss_by_language": {"heldout": {"en": [[1, "x"]]}}}, "no number"),
        ({"heldout_loss_by_language": [1]}, "curves.heldout_loss_by_language: [1] is not a"),
        ({"sources": "en"}, "dataset.sources: 'en' is not a list of languages"),
        ({"sources": 5}, "dataset.sources: 5 is not a list of languages"),
        ({"sources": True}, "dataset.sources: True is not a list"),
        ({"trained_mix": {"over_tolerance": 5}}, "trained_mix.over_tolerance: 5 is not a list"),
        ({"trained_mix": {"over_tolerance": {"en": 1}}}, "trained_mix.over_tolerance: {'en'"),
    ],
)
def test_curves_from_elsewhere_are_what_train_writes(cli, tmp_path, edit, said) -> None:
    """A run.json from elsewhere (no marker) with a step of 10⁴⁰⁰ was an internal error; an
    infinite accuracy "reached 50 %", a step -5 was printed, huge losses printed matplotlib
    warnings before the error, and ``sources: "en"`` read as the sources ``e, n``."""
    record = {"dataset": {"sources": edit.pop("sources", ["en"])}, "curves": edit}
    if "trained_mix" in edit:
        record["trained_mix"] = edit.pop("trained_mix")
    result = report_on_a_foreign_record(cli, tmp_path, record)
    assert_one_line_error(result, f"{tmp_path / 'ad' / 'run.json'}", said)
    assert not (tmp_path / "rep").exists()


def test_a_diverged_loss_and_many_watched_languages_still_draw(cli, tmp_path) -> None:
    """Real runs: a loss that went to NaN or infinity is a gap in the plot, and a watch of 300
    languages draws without a legend, no warning printed (the text names each one's step)."""
    watch = {f"l{i:03d}": [[1, 10.0], [2, 60.0]] for i in range(300)}
    loss = {"en": [[1, 2.0], [2, float("inf")], [3, float("nan")], [4, 1.0]]}
    record = {
        "dataset": {"sources": ["en"]},
        "curves": {"loss_by_language": loss, "watch": {"xnli": watch}},
    }
    result = report_on_a_foreign_record(cli, tmp_path, record)
    assert result.code == 0 and result.err == "", result.err
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "l299 at step 2" in text and "-transfer.png" in text and "-loss.png" in text


def test_odd_but_valid_curves_from_elsewhere_print_no_warning(cli, tmp_path) -> None:
    """A watch with no languages made matplotlib warn of a legend with no labels; a trained
    share of 1e308 warned from its transforms: lines on stderr beside a finished report."""
    record = {
        "dataset": {"sources": ["en"]},
        "curves": {"watch": {"xnli": {}}},
        "trained_mix": {
            "languages": {
                "en": {"share": 1e308, "promised_share": 1.0, "epochs": 1e308, "gap": 1e308}
            },
            "tolerance": 0.05,
            "over_tolerance": [],
        },
    }
    result = report_on_a_foreign_record(cli, tmp_path, record)
    assert result.code == 0 and result.err == "", result.err


def test_an_adapter_from_elsewhere_is_held_to_the_base_its_peft_config_names(
    adapter, tiny_model_dir: Path, tmp_path: Path, cli
) -> None:
    """A PEFT adapter without run.json or marker (from the Hub, or a copy) names its base in
    adapter_config.json: eval refused another base, analyze went on and wrote results."""
    other = tmp_path / "other"
    assert cli("tiny-model", other, "--seed", "1").code == 0
    copy = tmp_path / "a"
    shutil.copytree(adapter[0], copy)
    for name in ("run.json", ".mslt-it-output.json"):
        (copy / name).unlink()
    assert json.loads((copy / "adapter_config.json").read_text())["base_model_name_or_path"]
    result = cli("analyze", "--model", other, "--adapter", copy, "--langs", "en,de",
                 "--n", "4", "--out", tmp_path / "an")  # fmt: skip
    assert_one_line_error(result, "--adapter:", "was trained on base model", "not --model")
    assert not (tmp_path / "an").exists()


def test_an_answer_as_long_as_the_context_leaves_no_room_for_the_prompt(
    cli, tiny_model_dir, tmp_path
) -> None:
    """--max-tokens at the model's context cut every prompt to its last token (vLLM), or
    generated past the model's positions (transformers): the model answered unseen questions."""
    context = json.loads((tiny_model_dir / "config.json").read_text())["max_position_embeddings"]
    evaluate = ("eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en",
                "--limit", "1", "--mode", "generate", "--out", tmp_path / "ev")  # fmt: skip
    result = cli(*evaluate, "--max-tokens", str(context))
    assert_one_line_error(result, f"--max-tokens: {context} (xnli) leaves no room", f"({context} ")
    assert not (tmp_path / "ev").exists()


def test_a_row_moved_to_another_language_is_refused(cli, tmp_path: Path) -> None:
    """A row edited into another language (its id still naming its own) was scored as that
    language's, by `score` and by `report`."""
    predictions = evaluated_run(tmp_path / "ev" / "en", "en", ["en"], 5)
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    records[3]["lang"] = "de"
    predictions.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = cli("score", predictions, "--out", tmp_path / "rescored.json")
    assert_one_line_error(
        result, "record 4", "'xnli/en/test/3' is a row of 'xnli/en', not of 'xnli/de'"
    )
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "r")
    assert_one_line_error(result, "'xnli/en/test/3' is a row of 'xnli/en', not of 'xnli/de'")
    assert not (tmp_path / "r").exists() and not (tmp_path / "rescored.json").exists()


@pytest.mark.parametrize(
    ("scores", "fragment"),
    [
        ({"entailment": float("nan"), "neutral": -2.0, "contradiction": -3.0}, "is nan"),
        ({"entailment": "x", "neutral": -2.0, "contradiction": -3.0}, "is 'x'"),
        (None, "is of rank mode and has no scores"),
    ],
)
def test_score_refuses_a_ranked_classification_row_without_numbers(
    cli, tmp_path: Path, scores, fragment: str
) -> None:
    """Only multiple-choice rows' scores were checked: an XNLI rank row with a NaN score (its
    answer edited to the gold) was scored as right."""
    predictions = evaluated_run(tmp_path / "ev", "en", ["en"], 5)
    assert cli("score", predictions, "--out", tmp_path / "ok.json").code == 0
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    records[2]["scores"] = scores
    predictions.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = cli("score", predictions, "--out", tmp_path / "rescored.json")
    assert_one_line_error(result, "record 3", fragment)


def test_a_path_through_a_file_is_one_line_for_report_and_score(cli, tmp_path: Path) -> None:
    """The readers' look at an evaluation's lock met NotADirectoryError (a path through a
    file) and said "internal error"; the path is named as before."""
    mine = tmp_path / "f.txt"
    mine.write_text("mine")
    assert_one_line_error(cli("report", mine / "x" / "y", "--out", tmp_path / "r"), "run dir")
    assert_one_line_error(cli("score", mine / "x" / "predictions.jsonl"), "f.txt")
    assert mine.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_an_answer_that_fills_the_models_context_is_refused(
    cli, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Cut to one token, the prompt left the answer running past the model's positions: an
    internal error (IndexError) for a model of learned positions, scored past the context for
    the tiny Llama. lm-evaluation-harness refuses it too."""
    model = tmp_path / "short"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 24}))
    data = tmp_path / "data" / "xcopa" / "et"
    data.mkdir(parents=True)
    long = " ".join(f"word{i}" for i in range(60))
    row = {"premise": "a", "choice1": long, "choice2": "c", "question": "cause", "label": 0}
    (data / "test.jsonl").write_text(json.dumps(row) + "\n")
    result = cli("eval", "--model", model, "--task", "xcopa", "--langs", "et", "--data",
                 tmp_path / "data", "--mode", "rank", "--template", "xcopa/lm-eval",
                 "--out", tmp_path / "r")  # fmt: skip
    assert_one_line_error(result, "xcopa/et: row 'xcopa/et/test/0': its longest choice takes",
                          "the model's context holds 24")  # fmt: skip
    assert not (tmp_path / "r" / "results.json").exists()


@pytest.mark.parametrize("command", ["eval", "analyze"])
def test_a_models_chat_template_huge_on_real_rows_is_one_line(
    cli, tiny_model_dir: Path, tmp_path: Path, command: str
) -> None:
    """transformers' sandbox bounds no output: a template writing millions of characters only
    for real rows (past the probes) was rendered unbounded by eval and analyze."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    huge = (  # one message longer than any probe's: a prompt or a sentence
        "{% if messages | length == 1 and (messages[0]['content'] | length) > 30 %}"
        "{{ 'x' * (2000 * 1000) }}{% endif %}{% for m in messages %}{{ m['content'] }}{% endfor %}"
    )
    (model / "chat_template.jinja").write_text(huge)
    if command == "eval":
        result = cli("eval", "--model", model, "--task", "xnli", "--langs", "en", "--limit", "2",
                     "--mode", "rank", "--out", tmp_path / "out")  # fmt: skip
    else:
        result = cli("analyze", "--model", model, "--langs", "en,de", "--n", "4",
                     "--chat-template", "--out", tmp_path / "out")  # fmt: skip
    assert_one_line_error(result, "cannot render a prompt: a repetition would build 2,000,000")


@pytest.mark.parametrize(("field", "value"), [("id", None), ("id", 7), ("lang", ["et"])])
def test_a_prediction_whose_text_field_is_not_text_is_named(cli, tmp_path, field, value) -> None:
    """``"id": null`` was read as the row "None" by ``score`` and ``report`` alike."""
    path = tmp_path / "predictions.jsonl"
    rows = [RANKED, {**RANKED, "id": "s", field: value}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert_one_line_error(cli("score", path), "record 2", f"{field} must be text")
    assert not (tmp_path / "rescored.json").exists()
    folder = tmp_path / "ev" / "en"
    predictions = evaluated_run(folder, "en", ["en"], 5)
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    records[1][field] = value
    predictions.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "r")
    assert_one_line_error(result, "record 2", f"{field} must be text")


@pytest.mark.parametrize("kind", ["huge", "fifo"])
def test_a_parallel_file_too_large_or_special_is_refused_before_it_is_read(
    cli, tiny_model_dir: Path, tmp_path: Path, monkeypatch, kind: str
) -> None:
    """``--parallel`` was read whole whatever its size (a gigabyte of CSV: 5 GB of memory for
    three sentences); checked as a regular file by its name, then opened."""
    path = tmp_path / "p.csv"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        monkeypatch.setattr("mslt_it.analysis.parallel.MAX_PARALLEL_BYTES", 100)
        path.write_text("en,de\n" + "".join(f"s{i} x,s{i} y\n" for i in range(20)))
    result = cli("analyze", "--model", tiny_model_dir, "--langs", "en,de", "--n", "3",
                 "--parallel", path, "--out", tmp_path / "a")  # fmt: skip
    fragment = "at most 100" if kind == "huge" else "FIFO"
    assert_one_line_error(result, "--parallel:", fragment)


def test_sets_with_the_same_distances_tie_whatever_order_they_were_summed_in(
    cli, tmp_path: Path
) -> None:
    """ar and sw are each at distance 1 from every language of the family vectors: ar,bg,en,es
    and bg,en,es,sw have the same six pair distances, yet summed in pool order they differed in
    the last bit, so one ranked above the other and no tie was named, here and in --evaluate."""
    ranked = cli("select", "--task", "xnli", "--pool", "ar,bg,en,es,sw", "--k", "4",
                 "--criterion", "l2v-family", "--top", "5", "--json")  # fmt: skip
    assert ranked.code == 0, ranked.err
    rows = json.loads(ranked.out)
    last = [row for row in rows if row["rank"] >= 4]
    assert [row["sources"] for row in last] == [["ar", "bg", "en", "es"], ["bg", "en", "es", "sw"]]
    assert last[0]["scores"]["l2v-family"] == last[1]["scores"]["l2v-family"]
    grid = tmp_path / "tie.csv"
    grid.write_text("sources,score\nar+bg+en+es,70\nbg+en+es+sw,60\n")
    evaluated = cli("select", "--task", "xnli", "--evaluate", grid, "--json")
    assert evaluated.code == 0, evaluated.err
    family = next(r for r in json.loads(evaluated.out) if r["criterion"] == "l2v-family")
    assert family["tied"] == 2 and family["spearman"] is None
