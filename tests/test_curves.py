"""Per-language curves, the mix trained on, transfer watched during training, and their errors.

One short tiny-model run (two sources, one epoch, a loss logged every step, held-out rows and a
watch) serves the checks of the issue: per-language losses average (token-weighted) to the
logged loss, the trained mix equals the manifest's counts (``budget_mode: total``, nothing
truncated), and the watch's last point equals ``mslt-it eval``'s score on the same rows.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error

from mslt_it.config import DataConfig
from mslt_it.data import build_dataset
from mslt_it.errors import MsltError

WATCH_ROWS = 12


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one intra-op thread


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 synthetic XNLI rows, 24 English and 24 Chinese (budget_mode total)."""
    out = tmp_path_factory.mktemp("curves-data") / "ds"
    return build_dataset(DataConfig(task="xnli", sources=["en", "zh"], budget=48), out).path


def train_settings(dataset: Path, **extra) -> dict:
    settings = {
        "dataset": str(dataset),
        "eval_langs": ["sw"],
        "heldout_rows": 4,
        "watch": [{"task": "xnli", "langs": ["en", "sw"], "every": 3, "limit": WATCH_ROWS}],
        "lora": {"r": 8, "lora_alpha": 16, "target_modules": "all-linear"},
        "sft": {
            "max_steps": 6,  # 6 x 8 = 48: one epoch
            "per_device_train_batch_size": 8,
            "learning_rate": 3e-3,
            "logging_steps": 1,
            "eval_steps": 3,
            "gradient_checkpointing": False,
            "save_strategy": "no",
            "seed": 0,
        },
    }
    settings.update(extra)
    return settings


@pytest.fixture(scope="module")
def watched(tiny_model_dir: Path, dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    from mslt_it.training import ModelConfig, validate_train_section
    from mslt_it.training.run import train

    out = tmp_path_factory.mktemp("curves") / "run"
    config = validate_train_section(train_settings(dataset))
    return train(ModelConfig(name_or_path=str(tiny_model_dir)), config, out).out


def read_run(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


def test_language_losses_average_to_the_logged_loss(watched: Path) -> None:
    run = read_run(watched)
    curves = run["curves"]["loss_by_language"]
    assert set(curves) == {"en", "zh"} and len(curves["en"]) == 6
    logged = dict((step, loss) for step, loss in run["loss_history"])
    for step in range(1, 7):
        by_lang = {lang: dict(map(tuple, points))[step] for lang, points in curves.items()}
        tokens = run["curves"]["tokens_by_language"][str(step)]
        weighted = sum(by_lang[k] * tokens[k] for k in by_lang) / sum(tokens.values())
        assert weighted == pytest.approx(logged[step], rel=1e-5), step


def test_the_trained_mix_is_the_manifests_counts(watched: Path, dataset: Path) -> None:
    run = read_run(watched)
    manifest = json.loads((dataset / "manifest.json").read_text())
    mix = run["trained_mix"]
    assert manifest["config"]["budget_mode"] == "total"
    assert {k: v["examples"] for k, v in mix["languages"].items()} == manifest["counts"]
    assert all(v["epochs"] == 1.0 and v["gap"] == 0.0 for v in mix["languages"].values())
    assert mix["over_tolerance"] == [] and mix["examples"] == 48
    assert mix["tokens"] == sum(v["tokens"] for v in mix["languages"].values()) > 48


def test_heldout_loss_per_language_at_eval_steps(watched: Path) -> None:
    run = read_run(watched)
    heldout = run["curves"]["heldout_loss_by_language"]["heldout"]
    assert set(heldout) == {"en", "zh", "sw"}  # both sources and the eval_langs target
    assert [step for step, _ in heldout["sw"]] == [3, 6]
    assert run["heldout"]["rows"] == {"en": 4, "zh": 4, "sw": 4}


def test_losses_are_tensorboard_scalars(watched: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(watched / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/en", "loss/zh", "watch/xnli/sw", "eval_heldout_loss/sw"} <= tags
    assert len(events.Scalars("loss/en")) == 6


def test_the_transfer_curves_last_point_is_the_final_evaluation(
    watched: Path, tmp_path: Path
) -> None:
    from mslt_it.evaluation.config import EvalConfig
    from mslt_it.evaluation.runner import evaluate

    run = read_run(watched)
    curve = run["curves"]["watch"]["xnli"]
    assert [step for step, _ in curve["sw"]] == [3, 6]
    config = EvalConfig(
        adapters=[str(watched)],
        task="xnli",
        langs=["en", "sw"],
        limit=WATCH_ROWS,
        mode="rank",
        backend="hf",
        data="synthetic",
    )
    results = evaluate(config, tmp_path / "eval").results
    (scores,) = results.values()
    for lang in ("en", "sw"):
        assert curve[lang][-1][1] == scores["tasks"]["xnli"]["languages"][lang]["score"], lang


def test_the_report_shows_each_adapters_curves(cli, watched: Path, tmp_path: Path) -> None:
    """report: the loss, transfer and mix figures of every evaluated adapter, and the step at
    which each watched language first reached 50 % (or that it never did)."""
    evaluated = cli("eval", "--adapter", watched, "--task", "xnli", "--langs", "en,sw",
                    "--limit", "4", "--mode", "rank", "--out", tmp_path / "eval",
                    "--bootstrap-samples", "40")  # fmt: skip
    assert evaluated.code == 0, evaluated.err
    reported = cli("report", tmp_path / "eval", "--out", tmp_path / "report")
    assert reported.code == 0, reported.err
    text = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "## Training curves" in text and "first at 50 % accuracy" in text
    figures = sorted(p.name for p in (tmp_path / "report").glob("*-*.png"))
    assert {name.rsplit("-", 1)[1] for name in figures} >= {"loss.png", "transfer.png", "mix.png"}
    assert all(f"]({name})" in text for name in figures)


def test_curves_of_an_adapter_trained_again_since_its_evaluation_are_left_out(
    cli, watched: Path, tmp_path: Path
) -> None:
    """An adapter trained again in its folder after it was evaluated: the report drew the new
    training's curves beside the old weights' scores, without a word."""
    adapter = tmp_path / "adapter"
    shutil.copytree(watched, adapter)
    evaluated = cli("eval", "--adapter", adapter, "--task", "xnli", "--langs", "en",
                    "--limit", "2", "--mode", "rank", "--out", tmp_path / "eval",
                    "--bootstrap-samples", "40")  # fmt: skip
    assert evaluated.code == 0, evaluated.err
    weights = adapter / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b" ")  # other weights, as a new training
    reported = cli("report", tmp_path / "eval", "--out", tmp_path / "report")
    assert reported.code == 0, reported.err
    text = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "Training curves left out: the adapter was trained again since this evaluation" in text
    assert "first at 50 % accuracy" not in text
    assert not list((tmp_path / "report").glob("*-transfer.png"))


def test_plots_and_crossings_come_from_run_json(watched: Path, tmp_path: Path) -> None:
    from mslt_it.training.plots import crossing_steps, plot_run

    run = read_run(watched)
    written = plot_run(run, tmp_path, "watched")
    assert set(written) == {"loss", "transfer", "mix"}
    assert all(path.stat().st_size > 0 for path in written.values())
    crossings = crossing_steps(run)
    for lang, points in run["curves"]["watch"]["xnli"].items():
        reached = [step for step, value in points if value >= 50]
        assert crossings["xnli"][lang] == (reached[0] if reached else None)


@pytest.mark.slow
def test_packed_rows_are_split_by_language(tiny_model_dir, dataset, tmp_path) -> None:
    """One packed row holds both languages; each example still counts in its own."""
    from mslt_it.training import ModelConfig, validate_train_section
    from mslt_it.training.run import train

    settings = train_settings(dataset, packing=True, watch=[], eval_langs=[])
    # one step whose batch holds every packed row: one epoch
    settings["sft"] = {**settings["sft"], "max_steps": 1, "per_device_train_batch_size": 64}
    settings["sft"].pop("eval_steps")
    config = validate_train_section(settings)
    run = train(ModelConfig(name_or_path=str(tiny_model_dir)), config, tmp_path / "p").run
    mix = run["trained_mix"]["languages"]
    assert {k: v["examples"] for k, v in mix.items()} == {"en": 24, "zh": 24}
    assert set(run["curves"]["loss_by_language"]) == {"en", "zh"}


# ---------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, before training starts
# ---------------------------------------------------------------------------------------------


def args(model: Path, dataset: Path, out: Path, *extra: str) -> list:
    return [
        "train", "--dataset", dataset, "--model", model, "--out", out,
        "--max-steps", "5", "--sft", "gradient_checkpointing=false", *extra,
    ]  # fmt: skip


def test_a_watch_language_the_task_lacks(cli, tiny_model_dir, dataset, tmp_path) -> None:
    out = tmp_path / "bad"
    result = cli(*args(tiny_model_dir, dataset, out, "--watch", "xnli:sw,xx"))
    assert_one_line_error(result, "train.watch.0.langs", "'xx'")
    assert not out.exists()


def test_a_watch_step_beyond_max_steps(cli, tiny_model_dir, dataset, tmp_path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  watch:\n    - {task: xnli, langs: [sw], steps: [3, 99]}\n")
    out = tmp_path / "bad"
    result = cli(*args(tiny_model_dir, dataset, out, "--recipe", recipe))
    assert_one_line_error(result, "train.watch.0.steps", "99", "max_steps (5)")
    assert not out.exists()
    # every N steps past the run's end drew one point, the final score, and said nothing
    for every in ("6", "99999999999999999999"):
        watched = cli(*args(tiny_model_dir, dataset, out, "--watch", "xnli:sw", "--watch-every",
                            every))  # fmt: skip
        assert_one_line_error(watched, "train.watch.0.every", every, "max_steps (5)")
        assert not out.exists()


def test_a_malformed_watch_option(cli, tiny_model_dir, dataset, tmp_path) -> None:
    result = cli(*args(tiny_model_dir, dataset, tmp_path / "bad", "--watch", "xnli"))
    assert_one_line_error(result, "--watch", "TASK:LANG")


def test_eval_langs_with_no_rows_left(cli, tiny_model_dir, tmp_path) -> None:
    """XCOPA's validation split has 100 rows; a build that takes them all leaves none."""
    config = DataConfig(task="xcopa", sources=["it"], split="validation", budget=100)
    every_row = build_dataset(config, tmp_path / "xcopa").path
    out = tmp_path / "bad"
    result = cli(
        *args(tiny_model_dir, every_row, out, "--eval-langs", "it", "--sft", "eval_steps=2")
    )
    assert_one_line_error(result, "train.eval_langs", "it has no xcopa/validation rows left")
    assert not out.exists()


def write_user_data(root: Path) -> None:
    """Ten XNLI rows each of en and de, in train and test files of a data folder."""
    for lang, word in (("en", "cat"), ("de", "Katze")):
        folder = root / "xnli" / lang
        folder.mkdir(parents=True)
        rows = [{"premise": f"{word} {i} sits", "hypothesis": f"{word} {i}", "label": i % 3}
                for i in range(10)]  # fmt: skip
        for split in ("train", "test"):
            (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_the_rows_curves_are_measured_on_are_part_of_the_runs_identity(
    tiny_model_dir, tmp_path
) -> None:
    """A target language's file, which the build never read, gives the held-out and watched
    rows: edited, run.json would measure other rows, so the run is another one (a re-run
    said "done" with the old curves)."""
    from mslt_it.training import ModelConfig, validate_train_section
    from mslt_it.training.run import plan_run

    write_user_data(tmp_path / "data")
    config = DataConfig(task="xnli", sources=["en"], budget=4, data=str(tmp_path / "data"))
    built = build_dataset(config, tmp_path / "ds").path
    model = ModelConfig(name_or_path=str(tiny_model_dir))

    def identity(**curves) -> str:
        section = {"dataset": str(built), "sft": {"use_cpu": True, "max_steps": 4}, **curves}
        return plan_run(model, validate_train_section(section), tmp_path / "p").config_hash

    plain = identity()
    watch = {
        "watch": [{"task": "xnli", "langs": ["de"], "limit": 3, "data": str(tmp_path / "data")}]
    }
    before = {"held": identity(eval_langs=["de"]), "watched": identity(**watch)}
    for split in ("train", "test"):  # the held-out rows' split, and the watch's
        target = tmp_path / "data" / "xnli" / "de" / f"{split}.jsonl"
        target.write_text(target.read_text().replace("Katze 0", "Hund 0"))
    assert identity(eval_langs=["de"]) != before["held"]
    assert identity(**watch) != before["watched"]
    assert identity() == plain  # a run without curves keeps its identity


def test_a_source_file_edited_after_the_build_gives_no_heldout_rows(
    cli, tiny_model_dir, tmp_path
) -> None:
    """Rows are named by their place in the file: reordered after the build, the ids the build
    did not use named rows it trained on, and the "held-out" loss was measured on them."""
    from mslt_it.data import load_manifest
    from mslt_it.training.heldout import heldout_dataset
    from mslt_it.training.run import open_dataset

    write_user_data(tmp_path / "data")
    config = DataConfig(task="xnli", sources=["en", "de"], budget=8, data=str(tmp_path / "data"))
    built = build_dataset(config, tmp_path / "ds").path
    manifest = load_manifest(built)
    assert set(manifest["data"]["files_sha256"]) == {"en", "de"}
    used = open_dataset(str(built), "dataset").rows
    _, counts = heldout_dataset(manifest, used, ["de"], 3)  # as built: held out
    assert counts == {"en": 3, "de": 3}
    source = tmp_path / "data" / "xnli" / "en" / "train.jsonl"
    source.write_text("".join(reversed(source.read_text().splitlines(keepends=True))))
    out = tmp_path / "run"
    result = cli(*args(tiny_model_dir, built, out, "--eval-langs", "de"))
    assert_one_line_error(result, "train.dataset", str(source), "changed since the dataset")
    assert not out.exists()


def test_a_source_file_replaced_while_the_build_reads_it_is_refused(
    cli, monkeypatch, tmp_path
) -> None:
    """The digest was taken when the manifest was written: a file replaced while the build read
    it recorded the new file's digest beside rows of the old one, and training trusted them."""
    import mslt_it.corpus
    import mslt_it.tasks.sources

    write_user_data(tmp_path / "data")
    source = tmp_path / "data" / "xnli" / "en" / "train.jsonl"
    for module, name in ((mslt_it.corpus, "read_corpus_table"),
                         (mslt_it.tasks.sources, "read_cached_table")):  # fmt: skip
        reader = getattr(module, name)

        def read_then_replace(path, *args, reader=reader, **kwargs):
            table = reader(path, *args, **kwargs)
            if path == source:  # the user's copy lands while the rows are being taken
                kept = source.read_text()
                source.write_text(kept.replace("cat", "dog"))
                if back["put"]:  # and the first copy back (A, B, A): the digest is A's again
                    source.write_text(kept)
            return table

        monkeypatch.setattr(module, name, read_then_replace)
    out = tmp_path / "ds"
    for put_back in (False, True):
        back = {"put": put_back}
        result = cli("build", "--task", "xnli", "--sources", "en,de", "--budget", "8", "--data",
                     tmp_path / "data", "--out", out)  # fmt: skip
        assert_one_line_error(result, "data:", str(source), "changed while mslt-it read it")
        assert not out.exists()
        source.write_text(source.read_text().replace("dog", "cat"))
    monkeypatch.undo()  # the file now stays as it is: built, and its digest is the rows'
    assert cli("build", "--task", "xnli", "--sources", "en,de", "--budget", "8", "--data",
               tmp_path / "data", "--out", out).code == 0  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    from mslt_it.identity import file_sha256

    assert manifest["data"]["files_sha256"]["en"] == file_sha256(source)


def test_a_hub_split_of_another_revision_gives_no_heldout_rows(monkeypatch, tmp_path) -> None:
    """The Hub is out of reach here: ``load_dataset`` returns rows of the Hub schema with the
    fingerprint ``datasets`` gives each revision. Row ids are places in the split, so after the
    dataset moved to a new revision the ids the build did not use can name trained rows."""
    import datasets

    from mslt_it.data import load_manifest
    from mslt_it.tasks.sources import synthetic_row
    from mslt_it.training.heldout import heldout_dataset
    from mslt_it.training.run import open_dataset

    revision = {"now": "rev-1"}

    def hub(path: str, name: str, split: str) -> datasets.Dataset:
        rows = [synthetic_row("xnli", name, split, i) for i in range(12)]
        if revision["now"] != "rev-1":
            rows.reverse()
        loaded = datasets.Dataset.from_list(rows)
        loaded._fingerprint = f"{name}-{split}-{revision['now']}"
        return loaded

    monkeypatch.setattr(datasets, "load_dataset", hub)
    config = DataConfig(task="xnli", sources=["en", "de"], budget=8, data="hub")
    built = build_dataset(config, tmp_path / "ds").path
    manifest = load_manifest(built)
    assert manifest["data"]["hub_fingerprints"] == {"en": "en-train-rev-1", "de": "de-train-rev-1"}
    used = open_dataset(str(built), "dataset").rows
    _, counts = heldout_dataset(manifest, used, ["de"], 3)
    assert counts == {"en": 3, "de": 3}
    revision["now"] = "rev-2"
    with pytest.raises(MsltError, match=r"facebook/xnli \(config de.*not the revision"):
        heldout_dataset(manifest, used, ["de"], 3)
    for key in ("hub_fingerprints", "files_sha256"):  # hand-edited: refused, not skipped
        edited = {**manifest, "data": {**manifest["data"], key: ["rev-2"]}}
        with pytest.raises(MsltError, match=rf"data.{key} is \['rev-2'\], not a digest"):
            heldout_dataset(edited, used, ["de"], 3)


@pytest.mark.slow
def test_resume_keeps_the_curves_identical(tiny_model_dir, dataset, watched, tmp_path) -> None:
    """Stopped after the step-3 checkpoint and resumed: every curve as in the unbroken run.

    Logging every 2 steps put the checkpoint inside a window, and the resumed run's step-4
    losses covered step 4 alone: the run logs every gcd(3, 2) = 1 steps instead."""
    from mslt_it.training import ModelConfig, outputs, validate_train_section
    from mslt_it.training.run import train

    settings = train_settings(dataset, keep_checkpoints=True)
    settings["sft"] = {**settings["sft"], "save_strategy": "steps", "save_steps": 3}
    settings["sft"]["logging_steps"] = 2
    config = validate_train_section(settings)
    model = ModelConfig(name_or_path=str(tiny_model_dir))
    out = tmp_path / "r"
    first = train(model, config, out).run
    # what a kill after the step-3 checkpoint leaves: no run.json, no later checkpoint
    (out / "run.json").unlink()
    shutil.rmtree(out / "checkpoints" / "checkpoint-6")
    started = json.loads((out / "checkpoints" / "checkpoint-3" / "trainer_state.json").read_text())
    assert started["global_step"] == 3
    outputs.mark_started(out, first["config_hash"], {})
    resumed = train(model, config, out, resume=True).run
    assert resumed["resumed_from_step"] == 3
    for key in ("loss_by_language", "tokens_by_language", "heldout_loss_by_language", "watch"):
        assert resumed["curves"][key] == first["curves"][key], key
    assert resumed["trained_mix"] == first["trained_mix"]
    assert first["curves"] == read_run(watched)["curves"]  # checkpoints change nothing


def test_a_watch_step_beyond_an_epoch_run_fails_before_any_logger_starts(
    cli, tiny_model_dir, dataset, tmp_path, monkeypatch
) -> None:
    """With --epochs the run's length is known only as training starts. The check ran after
    TensorBoard's writer had started a thread, which then failed with a traceback as the
    error removed the output folder."""
    from transformers.integrations import TensorBoardCallback

    started = []
    monkeypatch.setattr(TensorBoardCallback, "on_train_begin", lambda *a, **k: started.append(1))
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  watch:\n    - {task: xnli, langs: [sw], steps: [99]}\n")
    out = tmp_path / "bad"
    result = cli(
        "train", "--dataset", dataset, "--model", tiny_model_dir, "--out", out, "--recipe",
        recipe, "--epochs", "1", "--batch-size", "8", "--sft", "gradient_checkpointing=false",
    )  # fmt: skip
    assert_one_line_error(result, "train.watch", "step 99", "6 steps")
    assert not started and not out.exists()


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ("split: nosuch", "train.watch.0.split: task xnli has no split 'nosuch'"),
        ("data: /nonexistent/rows", "train.watch.0.data:"),
    ],
)
def test_a_watchs_split_and_data_are_named_as_its_fields(
    cli, tiny_model_dir, dataset, tmp_path, entry, said
) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"train:\n  watch:\n    - {{task: xnli, langs: [sw], {entry}}}\n")
    out = tmp_path / "bad"
    assert_one_line_error(cli(*args(tiny_model_dir, dataset, out, "--recipe", recipe)), said)
    assert not out.exists()
