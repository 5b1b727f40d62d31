"""Model, adapter and dataset folders as inputs: special files never block, damaged weights are
one line, and an adapter is used only on the base whose content it was trained on."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import assert_one_line_error


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A copy of the tiny model (so it can be replaced) and an adapter trained on it."""
    from mslt_it.cli import main

    root = tmp_path_factory.mktemp("trained")
    shutil.copytree(tiny_model_dir, root / "base")
    for args in (
        ["build", "--task", "xnli", "--sources", "en", "--budget", "8", "--data", "synthetic",
         "--out", str(root / "ds")],
        ["train", "--dataset", str(root / "ds"), "--model", str(root / "base"), "--out",
         str(root / "ad"), "--max-steps", "1"],
    ):  # fmt: skip
        with pytest.raises(SystemExit) as done:
            main(args)
        assert done.value.code in (0, None)
    return root


def evaluate(cli, adapter: Path, out: Path, *extra: str):
    return cli(
        "eval", "--adapter", adapter, "--task", "xnli", "--langs", "en", "--data", "synthetic",
        "--mode", "rank", "--limit", "2", "--out", out, *extra,
    )  # fmt: skip


def within(seconds: float, call) -> object:
    """``call()``'s result, failing the test instead of hanging when it blocks."""
    found: list[object] = []
    worker = threading.Thread(target=lambda: found.append(call()), daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(seconds)
    assert found and time.monotonic() - started < seconds, "blocked"
    return found[0]


def test_an_adapter_as_the_model_to_train_on_is_named(cli, trained, tmp_path) -> None:
    """transformers answered an adapter folder as --model with "Unrecognized model … should
    have a `model_type` key": the folder is named for what it is, with its base and merge."""
    result = cli("train", "--dataset", trained / "ds", "--model", trained / "ad",
                 "--out", tmp_path / "ad2", "--max-steps", "1")  # fmt: skip
    assert_one_line_error(result, "is a LoRA adapter, not a base model", str(trained / "base"))
    assert not (tmp_path / "ad2").exists()
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: r\ndata: {task: xnli, budget: 8}\nsources: [en]\n"
        f"model: {{name_or_path: {trained / 'ad'}}}\neval: {{task: xnli, langs: [en]}}\n"
    )
    assert_one_line_error(cli("run", recipe, "--dry-run"), "model.name_or_path", "LoRA adapter")


def test_a_fifo_in_an_adapter_or_dataset_folder_never_blocks(cli, trained, tmp_path) -> None:
    adapter = tmp_path / "ad"
    shutil.copytree(trained / "ad", adapter)
    (adapter / "adapter_model.safetensors").unlink()
    os.mkfifo(adapter / "adapter_model.safetensors")
    result = within(60, lambda: evaluate(cli, adapter, tmp_path / "ev"))
    assert_one_line_error(result, "adapter_model.safetensors", "FIFO")
    result = within(60, lambda: cli("merge", adapter, "--out", tmp_path / "m"))
    assert_one_line_error(result, "FIFO")
    data = tmp_path / "ds"
    shutil.copytree(trained / "ds", data)
    arrow = next(data.glob("*.arrow"))
    arrow.unlink()
    os.mkfifo(arrow)
    train = ("train", "--dataset", data, "--model", trained / "base", "--out", tmp_path / "t")
    assert_one_line_error(within(60, lambda: cli(*train)), "FIFO")
    assert not (tmp_path / "ev").exists() and not (tmp_path / "t").exists()


def test_damaged_weights_and_run_records_are_one_line(cli, trained, tmp_path) -> None:
    base = tmp_path / "base"
    shutil.copytree(trained / "base", base)
    weights = base / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    result = cli(
        "eval", "--model", base, "--task", "xnli", "--langs", "en", "--data", "synthetic",
        "--mode", "rank", "--limit", "2", "--out", tmp_path / "ev",
    )  # fmt: skip
    assert_one_line_error(result, "model: cannot load")
    assert not (tmp_path / "ev").exists()  # nothing half-written for the next run to trip on
    adapter = tmp_path / "ad"
    shutil.copytree(trained / "ad", adapter)
    (adapter / "run.json").write_text("[1, 2")
    assert_one_line_error(cli("merge", adapter, "--out", tmp_path / "m"), "run.json", "damaged")


def test_an_adapter_is_refused_on_a_base_replaced_in_its_folder(cli, trained, tmp_path) -> None:
    assert evaluate(cli, trained / "ad", tmp_path / "before").code == 0
    replaced = tmp_path / "copy"
    shutil.copytree(trained, replaced)  # the run.json names the original base: move both
    adapter = replaced / "ad"
    run = (adapter / "run.json").read_text().replace(str(trained / "base"), str(replaced / "base"))
    (adapter / "run.json").write_text(run)
    assert evaluate(cli, adapter, tmp_path / "moved").code == 0  # same content, new path
    config = replaced / "base" / "config.json"
    config.write_text(config.read_text().replace('"rms_norm_eps": 1e-06', '"rms_norm_eps": 1e-05'))
    # its run.json was edited (the base's path): the edit may be why, and the message says so
    said = ("whose files are not those in", "the base changed since (retrained or replaced), or "
            "its run.json, edited since training, no longer records the base")  # fmt: skip
    assert_one_line_error(evaluate(cli, adapter, tmp_path / "after"), *said)
    analyze = ("analyze", "--model", replaced / "base", "--adapter", adapter, "--langs", "en,de",
               "--n", "4", "--out", tmp_path / "an")  # fmt: skip
    assert_one_line_error(cli(*analyze), *said)
    assert_one_line_error(cli("merge", adapter, "--out", tmp_path / "m"), *said)
    config.write_text(config.read_text().replace('"rms_norm_eps": 1e-05', '"rms_norm_eps": 1e-06'))
    untouched = tmp_path / "untouched"
    shutil.copytree(trained / "ad", untouched)  # its run.json as training wrote it
    config = trained / "base" / "config.json"
    kept = config.read_text()
    config.write_text(kept.replace('"rms_norm_eps": 1e-06', '"rms_norm_eps": 1e-05'))
    try:
        result = cli("merge", untouched, "--out", tmp_path / "m2")
        assert_one_line_error(result, "files have changed since", "(retrained or replaced)")
        assert "run.json" not in result.err
    finally:
        config.write_text(kept)


def test_an_edited_base_identity_is_not_blamed_on_the_base(cli, trained, tmp_path) -> None:
    """run.json's base_model_identity edited, the base byte for byte the trained one: the
    message said the base's files had changed since training."""
    adapter = tmp_path / "ad"
    shutil.copytree(trained / "ad", adapter)
    record = json.loads((adapter / "run.json").read_text())
    record["base_model_identity"] = {"sha256": "0" * 64}
    (adapter / "run.json").write_text(json.dumps(record))
    result = cli("merge", adapter, "--out", tmp_path / "m")
    assert_one_line_error(result, "its run.json, edited since training, no longer records the base")
    assert not (tmp_path / "m").exists()


def test_train_overwrite_keeps_a_users_file_in_the_log_folder(cli, trained, tmp_path) -> None:
    adapter = tmp_path / "ad"
    train = ("train", "--dataset", trained / "ds", "--model", trained / "base", "--out", adapter,
             "--max-steps", "1")  # fmt: skip
    assert cli(*train).code == 0
    (adapter / "tensorboard" / "mylog.txt").write_text("mine")
    assert_one_line_error(cli(*train, "--overwrite"), "mylog.txt")
    assert (adapter / "tensorboard" / "mylog.txt").read_text() == "mine"


def test_a_users_file_named_like_a_log_is_still_theirs(cli, trained, tmp_path) -> None:
    adapter = tmp_path / "ad"
    shutil.copytree(trained / "ad", adapter)
    (adapter / "tensorboard" / "events.out.tfevents.mine").write_text("mine")
    train = ("train", "--dataset", trained / "ds", "--model", trained / "base", "--out", adapter,
             "--max-steps", "1", "--overwrite")  # fmt: skip
    assert_one_line_error(cli(*train), "events.out.tfevents.mine")


def test_score_in_a_runs_subfolder_is_listed_by_the_evaluation(cli, trained, tmp_path) -> None:
    out = tmp_path / "ev"
    assert evaluate(cli, trained / "ad", out, "--include-base").code == 0
    run = next(p for p in out.iterdir() if (p / "predictions.jsonl").is_file())
    assert cli("score", run / "predictions.jsonl").code == 0
    assert evaluate(cli, trained / "ad", out, "--include-base", "--overwrite").code == 0


def test_adopt_and_overwrite_never_block_on_or_lose_special_entries(cli, tmp_path) -> None:
    folder = tmp_path / "rep"
    folder.mkdir()
    (folder / "report.md").write_text("# old report\n")
    os.mkfifo(folder / "p.png")
    result = within(60, lambda: cli("adopt", folder, "--kind", "report"))
    assert_one_line_error(result, "p.png", "not a regular file")
    model = tmp_path / "m"
    assert cli("tiny-model", model).code == 0
    (tmp_path / "precious").mkdir()
    (model / "mylink").symlink_to(tmp_path / "precious")
    assert_one_line_error(cli("tiny-model", model, "--overwrite"), "mylink")
    assert (model / "mylink").is_symlink()
    assert_one_line_error(cli("tiny-model", tmp_path / "w", "--world", "--steps", "0"), "--steps")


@pytest.mark.parametrize(
    ("kind", "files", "fragment"),
    [
        ("model", {"config.json": "{}", "my-finetune.safetensors": "x"}, "no 'model_type'"),
        ("model", {"config.json": '{"model_type": "llama"}'}, "no weights"),
        ("adapter", {"run.json": "{}", "notes.json": "{}"}, "no 'config_hash'"),
        ("dataset", {"manifest.json": "{}", "mine.json": "{}"}, "no 'fingerprint'"),
        ("analysis", {"analysis.json": "not json", "fig.png": "x"}, "analysis.json"),
        ("evaluation", {"results.json": "[1]"}, "not a JSON mapping"),
    ],
)
def test_adopt_takes_only_what_shows_a_finished_output(cli, tmp_path, kind, files, fragment):
    folder = tmp_path / "old"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    assert_one_line_error(cli("adopt", folder, "--kind", kind), "not a finished", fragment)
    assert not (folder / ".mslt-it-output.json").exists()


def test_a_config_field_of_the_wrong_type_names_its_value(cli, tmp_path) -> None:
    """The Hub library's message is two lines, "Validation error for field 'x':" and then the
    why; the first alone named no value and nothing allowed."""
    model = tmp_path / "m"
    assert cli("tiny-model", model).code == 0
    config = json.loads((model / "config.json").read_text())
    config["num_hidden_layers"] = "two"
    (model / "config.json").write_text(json.dumps(config))
    result = cli(
        "analyze", "--model", model, "--langs", "en,de", "--n", "4", "--out", tmp_path / "a"
    )
    assert_one_line_error(result, "num_hidden_layers", "'two'")
    from mslt_it.errors import first_line

    why = "Validation error for field 'x':\n    TypeError: Field 'x' expected int, got str"
    assert first_line(ValueError(why)) == (
        "Validation error for field 'x': TypeError: Field 'x' expected int, got str"
    )
    assert first_line(ValueError("one\ntwo")) == "one"


def test_adopt_reads_only_the_head_of_a_huge_or_special_recipe(cli, tmp_path) -> None:
    """adopt read an experiment's whole recipe.yaml to look at its first 100,000 characters
    (a 1 GB file took 2 GB of memory), and a FIFO there must not block it."""
    import tracemalloc

    from mslt_it.errors import MsltError
    from mslt_it.outputs import adopt_output

    folder = tmp_path / "exp"
    folder.mkdir()
    with (folder / "recipe.yaml").open("wb") as handle:
        handle.truncate(256 * 1024**2)  # sparse: no disk, but a whole read takes 256 MB
    tracemalloc.start()
    try:
        with pytest.raises(MsltError, match=r"recipe\.yaml names no experiment"):
            adopt_output(folder, "experiment")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024**2, peak
    (folder / "recipe.yaml").unlink()
    os.mkfifo(folder / "recipe.yaml")
    result = within(60, lambda: cli("adopt", folder, "--kind", "experiment"))
    assert result.code == 2 and "recipe.yaml" in result.err


def test_analyze_names_a_model_config_that_is_a_fifo(cli, tiny_model_dir, tmp_path) -> None:
    """transformers called it "Unrecognized model … should have a model_type key"."""
    import shutil

    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    (model / "config.json").unlink()
    os.mkfifo(model / "config.json")
    result = within(60, lambda: cli("analyze", "--model", model, "--langs", "en,de", "--n", "4",
                                    "--out", tmp_path / "a"))  # fmt: skip
    assert_one_line_error(result, "--model:", "config.json' is a FIFO")


def test_weights_that_do_not_fit_the_config_are_one_line(cli, tiny_model_dir, tmp_path) -> None:
    """transformers logged an 8-line LOAD REPORT table, then said "look at the above report"."""
    import shutil

    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["vocab_size"] = 10
    (model / "config.json").write_text(json.dumps(config))
    result = cli(
        "analyze", "--model", model, "--langs", "en,de", "--n", "4", "--out", tmp_path / "a"
    )
    assert_one_line_error(result, "do not fit the model's config", "embed_tokens", "MISMATCH")
    assert "LOAD REPORT" not in result.out + result.err
    # more layers than the checkpoint holds: transformers filled them with random weights
    config["vocab_size"] = json.loads((tiny_model_dir / "config.json").read_text())["vocab_size"]
    config["num_hidden_layers"] += 2
    (model / "config.json").write_text(json.dumps(config))
    result = cli("eval", "--model", model, "--task", "xnli", "--langs", "en", "--limit", "2",
                 "--mode", "rank", "--out", tmp_path / "e")  # fmt: skip
    assert_one_line_error(result, "lacks weights the model's config has", "MISSING")
    assert not (tmp_path / "e").exists()


def test_adopt_takes_no_file_whose_own_seal_or_record_disowns_it(cli, tiny_model_dir, tmp_path):
    """A rescored.json written by hand was adopted, and a later `eval --overwrite` deleted it as
    mslt-it's; an analysis's picture edited since was adopted; and an adopted analysis could no
    longer be replaced (`analyze --overwrite` called it another output)."""
    evaluation = tmp_path / "ev"
    evaluation.mkdir()
    (evaluation / "results.json").write_text('{"tasks": {}}')
    (evaluation / "rescored.json").write_text('{"x": 1}')
    result = cli("adopt", evaluation, "--kind", "evaluation")
    assert_one_line_error(result, "'rescored.json', which is not rescored results mslt-it wrote")
    assert not (evaluation / ".mslt-it-output.json").exists()

    args = ["analyze", "--model", tiny_model_dir, "--langs", "en,de", "--n", "4"]
    analysis = tmp_path / "an"
    assert cli(*args, "--projection", "pca", "--out", analysis).code == 0
    picture = next(analysis.glob("*.png"))
    copy = tmp_path / "copy"
    shutil.copytree(analysis, copy)
    with (copy / picture.name).open("ab") as handle:
        handle.write(b"edited")
    assert_one_line_error(cli("adopt", copy, "--kind", "analysis"), picture.name, "does not list")
    assert not (copy / ".mslt-it-output.json").exists()
    assert cli("adopt", analysis, "--kind", "analysis").code == 0
    result = cli(*args, "--projection", "pca", "--out", analysis, "--overwrite")
    assert result.code == 0, result.err
    from mslt_it.outputs import foreign_files

    assert foreign_files(analysis) == []  # its marker follows what analyze wrote

    # An analysis beside an evaluation (in its folder, where a report finds it) is mslt-it's
    # too: the evaluation's --overwrite takes it along instead of calling it the user's.
    evaluation = tmp_path / "ev2"
    ev = ["eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en", "--limit", "2"]
    assert cli(*ev, "--mode", "rank", "--out", evaluation).code == 0
    assert cli(*args, "--projection", "pca", "--out", evaluation).code == 0
    result = cli(*ev, "--mode", "rank", "--out", evaluation, "--overwrite")
    assert result.code == 0, result.err
    assert not (evaluation / "analysis.json").exists()


def test_an_output_never_goes_inside_another_that_does_not_hold_its_kind(cli, tmp_path) -> None:
    """A model written into a dataset (tiny-model, merge) made the dataset's --overwrite stop at
    it as a folder mslt-it did not write; an experiment or an evaluation holds its own kinds."""
    data = tmp_path / "data"
    assert (
        cli("build", "--task", "xnli", "--sources", "en", "--budget", "2", "--out", data).code == 0
    )
    result = cli("tiny-model", data / "m")
    assert_one_line_error(result, "lies inside", "mslt-it's dataset, which never holds a model")
    assert not (data / "m").exists()
    build = ["build", "--task", "xnli", "--sources", "en", "--budget", "2", "--overwrite"]
    assert cli(*build, "--out", data).code == 0  # nothing of another output in its way


@pytest.mark.parametrize(
    ("kind", "folder", "damage", "said"),
    [
        ("dataset", "ds", "rows removed", "its rows cannot be read"),
        ("dataset", "ds", "rows cut", "its rows cannot be read"),
        ("dataset", "ds", "counts edited", "counts are not those of its rows"),
        ("dataset", "ds", "manifest of other rows", "not those its manifest.json's fingerprint"),
        ("model", "base", "weights cut", "its model.safetensors cannot be read"),
        ("model", "base", "last byte cut", "its model.safetensors cannot be read"),
        ("adapter", "ad", "weights cut", "its adapter_model.safetensors cannot be read"),
        ("adapter", "ad", "weights removed", "no weights (*.safetensors, pytorch_model*.bin"),
        ("adapter", "ad", "config corrupt", "cannot read"),
        ("adapter", "ad", "bin of other bytes", "its adapter_model.bin cannot be read"),
        ("model", "base", "shard missing", "names 'model-00002-of-00002.safetensors', which"),
        ("model", "base", "user's text as a tokenizer file", "its special_tokens_map.json is not"),
        ("model", "base", "prose as merges", "its merges.txt is not a BPE merges list"),
        ("model", "base", "chat template broken", "its chat_template.jinja is not a Jinja"),
        ("adapter", "ad", "user's README", "its README.md is not a PEFT or TRL model card"),
        ("adapter", "ad", "text as a picture", "its en-loss.png is not a PNG picture"),
        ("dataset", "ds", None, None),
        ("adapter", "ad", None, None),
        ("model", "base", None, None),
    ],
)
def test_adopt_reads_the_content_it_marks_as_finished(
    cli, trained: Path, tmp_path: Path, kind: str, folder: str, damage: str | None, said: str
) -> None:
    """A dataset whose rows were deleted or cut short, or whose manifest was edited, and a
    model whose weights were cut short were adopted as finished outputs."""
    copy = tmp_path / folder
    shutil.copytree(trained / folder, copy)
    (copy / ".mslt-it-output.json").unlink()  # as an older mslt-it left it
    arrow = next(copy.glob("*.arrow"), None)
    manifest = copy / "manifest.json"
    if damage == "rows removed":
        arrow.unlink()
    elif damage == "rows cut":
        arrow.write_bytes(arrow.read_bytes()[:100])
    elif damage in ("counts edited", "manifest of other rows"):
        record = json.loads(manifest.read_text())
        if damage == "counts edited":
            record["counts"] = {"en": 999}
        else:
            record["fingerprint"] = "0" * 64
        manifest.write_text(json.dumps(record))
    elif damage in ("weights cut", "last byte cut"):
        weights = next(copy.glob("*.safetensors"))
        kept = 1000 if damage == "weights cut" else weights.stat().st_size - 1
        weights.write_bytes(weights.read_bytes()[:kept])
    elif damage == "weights removed":  # training_args.bin, beside it, is no weights file
        (copy / "adapter_model.safetensors").unlink()
    elif damage == "config corrupt":
        (copy / "adapter_config.json").write_text("{bad")
    elif damage == "bin of other bytes":
        (copy / "adapter_model.safetensors").unlink()
        (copy / "adapter_model.bin").write_bytes(b"garbage")
    elif damage == "shard missing":  # the index of a model split in two, the second shard gone
        (copy / "model.safetensors").rename(copy / "model-00001-of-00002.safetensors")
        shards = {"weight_map": {"a": "model-00001-of-00002.safetensors",
                                 "b": "model-00002-of-00002.safetensors"}}  # fmt: skip
        (copy / "model.safetensors.index.json").write_text(json.dumps(shards))
    elif damage == "user's text as a tokenizer file":  # its name says JSON: then it must be
        (copy / "special_tokens_map.json").write_text("my own text\n")
    elif damage == "prose as merges":
        (copy / "merges.txt").write_text("#version: 0.2\nmy own notes on the merges\n")
    elif damage == "chat template broken":
        (copy / "chat_template.jinja").write_text("{% for m in messages %}{{ m }")
    elif damage == "user's README":
        (copy / "README.md").write_text("# my notes\nlibrary_name: peft is what I use\n")
    elif damage == "text as a picture":
        (copy / "en-loss.png").write_text("a picture I meant to draw\n")
    result = cli("adopt", copy, "--kind", kind)
    if said is None:
        assert result.code == 0, result.err
        assert (copy / ".mslt-it-output.json").is_file()
    else:
        assert_one_line_error(result, "is not a finished", said)
        assert not (copy / ".mslt-it-output.json").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["select", "--task", "xnli", "--k", "2", "--pool", "en,de,fr", "--tokenizer", "nope-dir"],
        ["eval", "--model", "nope-dir", "--suite", "xnli", "--langs", "en", "--limit", "2"],
        ["analyze", "--model", "org/nope-dir", "--langs", "en,de", "--n", "4"],
    ],
)
def test_a_name_neither_here_nor_cached_says_so_when_the_hub_is_offline(cli, tmp_path, args):
    """It said transformers' "We couldn't connect to 'https://huggingface.co'", which hid a
    mistyped folder behind a network problem."""
    result = cli(*args, "--out", tmp_path / "out") if args[0] != "select" else cli(*args)
    assert_one_line_error(result, "nope-dir", "no such folder", "HF_HUB_OFFLINE is set")
    assert "couldn't connect" not in result.err


@pytest.mark.parametrize(
    ("folder", "name", "command"),
    [
        ("base", "tokenizer.json", "select"),
        ("base", "tokenizer.json", "eval"),
        ("base", "config.json", "eval"),
        ("ad", "adapter_model.safetensors", "merge"),
        ("base", "tokenizer.json", "eval-link"),  # a link to nothing: "install sentencepiece"
    ],
)
def test_a_folder_where_a_file_is_read_is_named(cli, trained, tmp_path, folder, name, command):
    """A folder named ``tokenizer.json`` or ``config.json`` got the libraries' messages:
    "install sentencepiece or tiktoken", cut mid-sentence, and "should have a model_type key"."""
    copy = tmp_path / folder
    shutil.copytree(trained / folder, copy)
    (copy / ".mslt-it-output.json").unlink()  # the user's folder now
    (copy / name).unlink()
    if command == "eval-link":
        (copy / name).symlink_to("real")  # relative: copy/real, which is not there
    else:
        (copy / name).mkdir()
    said = ("is a link to nothing ('real')" if command == "eval-link" else "' is a folder",)
    command = command.removesuffix("-link")
    args = {
        "select": ["select", "--task", "xnli", "--pool", "ar,de,en", "--k", "2", "--criterion",
                   "coverage", "--tokenizer", copy],
        "eval": ["eval", "--model", copy, "--task", "xnli", "--langs", "en", "--mode", "rank",
                 "--limit", "2", "--out", tmp_path / "ev"],
        "merge": ["merge", copy, "--out", tmp_path / "m"],
    }[command]  # fmt: skip
    assert_one_line_error(cli(*args), f"{copy / name}'", *said, "must hold regular files")
    assert not (tmp_path / "ev").exists() and not (tmp_path / "m").exists()


def test_a_path_through_an_output_and_back_out_does_not_lie_inside_it(
    cli, trained, tmp_path, monkeypatch
) -> None:
    """``--out base/../ds`` is ``ds``: read as text it "lay inside" the model and was refused."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(trained / "base", tmp_path / "base")  # with its marker: mslt-it's model
    build = ["build", "--task", "xnli", "--sources", "en", "--budget", "2", "--out"]
    assert_one_line_error(cli(*build, "base/ds"), "lies inside", "mslt-it's model")
    result = cli(*build, "base/../ds")
    assert result.code == 0, result.err
    assert (tmp_path / "ds" / "manifest.json").is_file()
    assert not (tmp_path / "base" / "ds").exists()
    # base/.. is the folder that holds base, not a folder inside it
    result = cli("tiny-model", "base/..", "--overwrite")
    assert "inside" not in result.err, result.err


def test_a_step_of_an_experiment_is_adopted_with_its_step_record(cli, trained, tmp_path) -> None:
    """Every step of a recipe's experiment holds its ``.mslt-it-step.json``: "a dataset of
    mslt-it never holds" it, so no step, and no experiment, of an older version was adoptable."""
    from mslt_it.runner import MARKER

    step = tmp_path / "data" / "en"
    shutil.copytree(trained / "ds", step)
    (step / ".mslt-it-output.json").unlink()
    (step / MARKER).write_text("my notes")  # not a step record: refused
    assert_one_line_error(cli("adopt", step, "--kind", "dataset"), "is not a JSON mapping")
    (step / MARKER).unlink()
    (step / MARKER).mkdir()  # an empty folder of that name: every later --overwrite refused it
    assert_one_line_error(cli("adopt", step, "--kind", "dataset"), "holds '.mslt-it-step.json/'")
    (step / MARKER).rmdir()
    (step / MARKER).write_text(json.dumps({"step": "build en", "fingerprint": "x"}))
    result = cli("adopt", step, "--kind", "dataset")
    assert result.code == 0, result.err
    experiment = tmp_path / "exp"
    (experiment / "data").mkdir(parents=True)
    (experiment / "recipe.yaml").write_text("name: exp\n")
    shutil.copytree(trained / "ds", experiment / "data" / "de")
    (experiment / "data" / "de" / ".mslt-it-output.json").unlink()  # a step not adopted yet
    result = cli("adopt", experiment, "--kind", "experiment")
    assert_one_line_error(result, "a step not adopted yet? adopt each step first")


def test_an_adopted_evaluation_is_scored_from_its_outputs_not_its_correct_flags(
    cli, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """``eval`` re-scores a finished evaluation it is run on again; it counted each saved
    ``correct``, so a wrong row flagged right by hand in a copy, then adopted, raised the
    score (``score`` and ``report`` read the same file otherwise)."""
    options = ("--model", tiny_model_dir, "--task", "xnli", "--langs", "en", "--mode", "rank",
               "--limit", "8", "--bootstrap-samples", "40")  # fmt: skip
    assert cli("eval", *options, "--out", tmp_path / "first").code == 0
    score = json.loads((tmp_path / "first" / "results.json").read_text())["tasks"]["xnli"]
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "first", copy)
    (copy / ".mslt-it-output.json").unlink()
    lines = (copy / "predictions.jsonl").read_text().splitlines()
    wrong = next(n for n, line in enumerate(lines) if '"correct": false' in line)
    lines[wrong] = lines[wrong].replace('"correct": false', '"correct": true')
    (copy / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    assert cli("adopt", copy, "--kind", "evaluation").code == 0
    assert cli("eval", *options, "--out", copy).code == 0
    again = json.loads((copy / "results.json").read_text())["tasks"]["xnli"]
    assert again["languages"]["en"]["score"] == score["languages"]["en"]["score"]
    # a record of another template is parsed with none of this run's: named, not a KeyError
    other = tmp_path / "other"
    shutil.copytree(tmp_path / "first", other)
    (other / ".mslt-it-output.json").unlink()
    lines = (other / "predictions.jsonl").read_text().splitlines()
    lines[0] = lines[0].replace('"xnli/en-instruct"', '"xnli/zz"')
    (other / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    assert cli("adopt", other, "--kind", "evaluation").code == 0
    assert_one_line_error(cli("eval", *options, "--out", other), "record 1", "'xnli/zz'")
