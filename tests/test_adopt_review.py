"""``adopt`` marks only what mslt-it wrote: a file named like an output's must hold what mslt-it
(or the library it saves with) writes there, since the next ``--overwrite`` deletes what the
marker lists. A user's ``report.md`` was adopted as a report and replaced by ``report
--overwrite``; a user's ``results.json`` was adopted as an evaluation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error

from mslt_it.outputs import OWNER_FILE

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

USERS_JSON = '{"my": "settings"}'


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """An evaluation, its report and a dataset, each written by mslt-it."""
    from mslt_it.cli import main

    root = tmp_path_factory.mktemp("made")
    for args in (
        ["eval", "--model", str(tiny_model_dir), "--task", "xnli", "--langs", "en", "--limit",
         "2", "--mode", "rank", "--bootstrap-samples", "40", "--out", str(root / "ev")],
        ["report", str(root / "ev"), "--out", str(root / "rep")],
        ["build", "--task", "xnli", "--sources", "en", "--budget", "8", "--data", "synthetic",
         "--out", str(root / "ds")],
    ):  # fmt: skip
        with pytest.raises(SystemExit) as done:
            main(args)
        assert done.value.code in (0, None)
    return root


def unmarked_copy(source: Path, into: Path) -> Path:
    """A copy of an output without its marker, as an mslt-it older than the marker left it."""
    shutil.copytree(source, into)
    (into / OWNER_FILE).unlink()
    return into


def assert_refused(result, folder: Path, name: str, said: str) -> None:
    """One line naming the file and what it is not; nothing marked."""
    assert_one_line_error(result, f"its {name} is not {said}", "nothing was marked")
    assert not (folder / OWNER_FILE).exists()


def test_a_users_report_md_is_not_adopted_and_survives_the_overwrite(cli, made, tmp_path):
    """The defect as found: the user's chapter, adopted, was replaced by ``report --overwrite``."""
    folder = tmp_path / "ad1"
    folder.mkdir()
    (folder / "report.md").write_text("# My thesis chapter 3, do not lose\n")
    assert_refused(
        cli("adopt", folder, "--kind", "report"), folder, "report.md", "mslt-it's report"
    )
    result = cli("report", made / "ev", "--out", folder, "--overwrite")
    assert result.code == 2
    assert (folder / "report.md").read_text() == "# My thesis chapter 3, do not lose\n"


@pytest.mark.parametrize(
    ("source", "kind", "name", "text"),
    [
        ("rep", "report", "report.md", "# mslt-it report\n\nMy notes on how I ran it.\n"),
        ("rep", "report", "xnli/report.md", "# notes\n"),  # the first: no scores table
        ("rep", "report", "scores.csv", "name,grade\nann,A\n"),
        ("rep", "report", "comparisons.csv", "name,grade\nann,A\n"),
        ("rep", "report", "criteria.md", "# my criteria\n"),
        ("ev", "evaluation", "timings.json", USERS_JSON),
        ("ev", "evaluation", "study.json", '{"runs": {}}'),
        ("ev", "evaluation", "predictions.jsonl", '{"id": "1", "lang": "en"}\n'),
        ("ev", "evaluation", "base/results.json", '{"kind": "my results"}'),
        ("ev", "evaluation", ".chunks/xnli.en.00000.jsonl", '{"a": 1}\n'),
    ],
)
def test_a_users_file_named_like_an_outputs_is_not_adopted(
    cli, made, tmp_path, source, kind, name, text
):
    folder = unmarked_copy(made / source, tmp_path / source)
    (folder / name).parent.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    assert_refused(cli("adopt", folder, "--kind", kind), folder, name, "mslt-it's")


@pytest.mark.parametrize("kind", ["report", "analysis"])
def test_a_picture_mslt_it_did_not_draw_is_not_adopted(cli, made, tmp_path, kind) -> None:
    """mslt-it draws every picture with matplotlib, which names itself in the PNG; the user's
    own picture saved as ``heatmap.png`` (or an older analysis's ``pca.png``) is theirs."""
    if kind == "report":
        folder, name = unmarked_copy(made / "rep", tmp_path / "rep"), "heatmap.png"
    else:
        folder, name = tmp_path / "an", "pca.png"
        folder.mkdir()  # an analysis of a version before the seal: its pictures are unlisted
        (folder / "analysis.json").write_text('{"kind": "mslt-it analysis"}')
    (folder / name).write_bytes(PNG_SIGNATURE + b"\x00\x00\x00\rIHDR my holiday photo")
    assert_refused(cli("adopt", folder, "--kind", kind), folder, name, "a picture mslt-it drew")


def test_a_users_results_json_is_not_adopted_as_an_evaluation(cli, made, tmp_path) -> None:
    folder = tmp_path / "ad2"
    folder.mkdir()
    (folder / "results.json").write_text(USERS_JSON)
    result = cli("adopt", folder, "--kind", "evaluation")
    assert_refused(result, folder, "results.json", "mslt-it's evaluation results")
    assert "'mslt-it eval results'" in result.err
    # with mslt-it's results.json, a user's predictions.jsonl is still the user's
    shutil.copy(made / "ev" / "results.json", folder / "results.json")
    (folder / "predictions.jsonl").write_text('{"a": 1}\n')
    result = cli("adopt", folder, "--kind", "evaluation")
    assert_refused(result, folder, "predictions.jsonl", "mslt-it's predictions")


@pytest.mark.parametrize(
    "name",
    [
        "generation_config.json",
        "tokenizer_config.json",
        "tokenizer.json",
        "mslt_it_tiny.json",
        "special_tokens_map.json",
        "added_tokens.json",
    ],
)
def test_a_users_json_named_like_a_models_file_is_not_adopted(cli, tiny_model_dir, tmp_path, name):
    """Parsing as JSON is not enough: ``{"my": "settings"}`` saved under a model's file name
    was adopted, then deleted by the next ``--overwrite``."""
    folder = unmarked_copy(tiny_model_dir, tmp_path / "model")
    (folder / name).write_text(USERS_JSON)
    assert_refused(cli("adopt", folder, "--kind", "model"), folder, name, "")


def test_a_users_dataset_info_is_not_adopted(cli, made, tmp_path) -> None:
    folder = unmarked_copy(made / "ds", tmp_path / "ds")
    (folder / "dataset_info.json").write_text(USERS_JSON)
    assert_refused(cli("adopt", folder, "--kind", "dataset"), folder, "dataset_info.json", "")


def test_outputs_mslt_it_wrote_are_adopted_older_ones_too(cli, made, tiny_model_dir, tmp_path):
    """What every version wrote is what is checked: a report whose scores.csv has only the
    columns of the first version, and chunks without the seal line older versions did not
    write, are adopted, as are this version's outputs."""
    for name, kind in (("ev", "evaluation"), ("rep", "report"), ("ds", "dataset")):
        folder = unmarked_copy(made / name, tmp_path / name)
        result = cli("adopt", folder, "--kind", kind)
        assert result.code == 0, result.err
    model = unmarked_copy(tiny_model_dir, tmp_path / "model")
    assert cli("adopt", model, "--kind", "model").code == 0
    old = unmarked_copy(made / "rep", tmp_path / "old-rep")
    lines = (old / "scores.csv").read_text().splitlines()
    first_columns = 11  # run, sources, task, lang, metric, score, ci_low, ci_high, n, ...
    trimmed = [",".join(line.split(",")[:first_columns]) for line in lines]
    (old / "scores.csv").write_text("\n".join(trimmed) + "\n")
    assert cli("adopt", old, "--kind", "report").code == 0
    older = unmarked_copy(made / "ev", tmp_path / "old-ev")
    (older / ".chunks").mkdir()
    records = (older / "predictions.jsonl").read_text()
    (older / ".chunks" / "xnli.en.00000.jsonl").write_text(records)
    sealed = records + json.dumps({"chunk_sha256": "0" * 64}) + "\n"
    (older / ".chunks" / "xnli.en.00001.jsonl").write_text(sealed)
    result = cli("adopt", older, "--kind", "evaluation")
    assert result.code == 0, result.err


# -- binary files of a library's: their format proven, not their name alone -------------------

EVENTS = "tensorboard/events.out.tfevents.1700000000.host.1.0"
SENTENCEPIECE = b"\n\x0e\n\x05<unk>\x15\x00\x00\x00\x00\x18\x02"  # a model's first piece
EVENT = b"\t" + b"\x00" * 8 + b"\x1a\rbrain.Event:2"  # wall time 0, file_version
VERSION_RECORD = len(EVENT).to_bytes(8, "little") + b"\x00" * 4 + EVENT


@pytest.fixture(scope="module")
def adapter(made: Path, tiny_model_dir: Path) -> Path:
    """An adapter trained by ``mslt-it train`` (its TensorBoard log too), on ``made``'s data."""
    from mslt_it.cli import main

    out = made / "ad"
    if not out.exists():
        with pytest.raises(SystemExit) as done:
            main(["train", "--dataset", str(made / "ds"), "--model", str(tiny_model_dir),
                  "--out", str(out), "--max-steps", "1"])  # fmt: skip
        assert done.value.code in (0, None)
    return out


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        (EVENTS, "my notes\n", "a TensorBoard event log"),
        ("checkpoints/checkpoint-5/optimizer.pt", "diary\n", "a torch file"),
        ("checkpoints/checkpoint-5/rng_state.pth", "diary\n", "a torch file"),
        ("tokenizer.model", "my thesis\n", "a tokenizer model"),
    ],
)
def test_a_users_text_named_like_a_librarys_binary_is_not_adopted(
    cli, adapter, tmp_path, name, text, said
):
    """adopt took them by name, and the next --overwrite (or a recipe's retraining) removed
    them; ``training_args.bin`` alone was checked."""
    folder = unmarked_copy(adapter, tmp_path / "ad")
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    assert_refused(cli("adopt", folder, "--kind", "adapter"), folder, name, said)


def test_a_librarys_binaries_are_still_adopted(cli, adapter, tiny_model_dir, tmp_path) -> None:
    import torch

    assert list(adapter.glob("tensorboard/events.out.tfevents.*"))  # the training's own log
    folder = unmarked_copy(adapter, tmp_path / "ad")
    (folder / EVENTS).write_bytes(VERSION_RECORD + b"\x00" * 4)
    (folder / "checkpoints/checkpoint-5").mkdir(parents=True)
    torch.save({"state": {}}, folder / "checkpoints/checkpoint-5/optimizer.pt")
    (folder / "tokenizer.model").write_bytes(SENTENCEPIECE)
    (folder / "checkpoints/checkpoint-5/spiece.model").write_bytes(SENTENCEPIECE)
    result = cli("adopt", folder, "--kind", "adapter")
    assert result.code == 0, result.err
    model = unmarked_copy(tiny_model_dir, tmp_path / "model")
    (model / "tokenizer.model").write_text("IQ== 0\nIg== 1\n")  # tiktoken's ranks
    assert cli("adopt", model, "--kind", "model").code == 0


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("checkpoints/checkpoint-5/notes.txt", "my thesis\n", "never holds"),
        ("checkpoints/checkpoint-5/thesis.json", USERS_JSON, "never holds"),
        ("checkpoints/checkpoint-05/trainer_state.json", '{"global_step": 5}', "never holds"),
        ("checkpoints/checkpoint-5/trainer_state.json", USERS_JSON, "the Trainer's state"),
        ("checkpoints/checkpoint-5/adapter_config.json", USERS_JSON, "PEFT's adapter config"),
    ],
)
def test_a_users_file_in_a_checkpoint_is_not_adopted(cli, adapter, tmp_path, name, text, said):
    """A checkpoint's files were ``checkpoints/checkpoint-<n>/*``: any name was adopted (and a
    checkpoint's JSON files were read for their format only), and the next ``--overwrite``
    deleted them. They are the Trainer's names now, each JSON file holding what it writes."""
    folder = unmarked_copy(adapter, tmp_path / "ad")
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    result = cli("adopt", folder, "--kind", "adapter")
    assert_one_line_error(result, name, said, "nothing was marked")
    assert not (folder / OWNER_FILE).exists()


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [("notes/data-1.arrow", "my thesis\n", "Arrow data"),
     ("dataset_dict.json", USERS_JSON, "datasets' dataset dict")],
)  # fmt: skip
def test_a_users_file_named_like_a_datasets_is_not_adopted(cli, made, tmp_path, name, text, said):
    folder = unmarked_copy(made / "ds", tmp_path / "ds")
    (folder / name).parent.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    assert_refused(cli("adopt", folder, "--kind", "dataset"), folder, name, said)


def test_a_users_file_in_an_unfinished_runs_checkpoint_is_the_users(adapter, tmp_path) -> None:
    """A killed training's checkpoints are working files until it finishes; any name there
    was taken for one, so ``train --overwrite`` deleted a user's notes put beside them."""
    from mslt_it.outputs import foreign_files

    folder = tmp_path / "ad"
    shutil.copytree(adapter, folder)
    (folder / "run.json").unlink()  # unfinished: a killed run
    checkpoint = folder / "checkpoints" / "checkpoint-5"
    checkpoint.mkdir(parents=True)
    (checkpoint / "optimizer.pt").write_bytes(b"PK")
    (checkpoint / "spiece.model").write_bytes(SENTENCEPIECE)  # GPT-SW3's, T5's tokenizer
    (checkpoint / "notes.txt").write_text("my thesis")
    assert foreign_files(folder) == ["checkpoints/checkpoint-5/notes.txt"]


def test_a_users_file_among_an_evaluations_chunks_is_the_users(made, tmp_path) -> None:
    """``.chunks/*`` took any file there for a chunk: a resumed evaluation listed a user's
    notes in its marker as its own, and the next ``--overwrite`` removed them."""
    from mslt_it.outputs import foreign_files, listed_files, mark_finished

    folder = tmp_path / "ev"
    shutil.copytree(made / "ev", folder)
    chunks = folder / ".chunks"
    chunks.mkdir()
    (chunks / "settings.json").write_text("{}")
    (chunks / "xnli.en.00000.jsonl").write_text("{}\n")
    (chunks / "notes.txt").write_text("my thesis")
    other_digits = "notes.en.\u0661\u0662\u0663\u0664\u0665.jsonl"  # Arabic-Indic 12345
    (chunks / other_digits).write_text("my thesis")
    theirs = sorted([".chunks/notes.txt", f".chunks/{other_digits}"])
    assert foreign_files(folder) == theirs
    mark_finished(folder, "evaluation")  # as a resumed evaluation marks its folder
    assert ".chunks/notes.txt" not in (listed_files(folder) or {})
    assert foreign_files(folder) == theirs
    from mslt_it.evaluation.store import is_chunk_file

    assert not is_chunk_file(other_digits)  # the store's clean-up leaves it too
