"""An evaluation's identity is what decides its predictions: the dtype ``auto`` resolves to and
the kind of device it runs on belong to it; the spelling of a model's or adapter's path, whose
files' digests stand for it, does not."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error
from test_eval_support import study_adapters

from mslt_it.evaluation import EvalConfig
from mslt_it.evaluation.plan import plan_evaluation, precision, prediction_settings
from mslt_it.evaluation.store import RunStore, cell_identity, describe_change, settings_sha256

FAST = ["--limit", "4", "--chunk-size", "2", "--batch-size", "4", "--bootstrap-samples", "50"]


@pytest.fixture(scope="module")
def adapters(tiny_model_dir: Path) -> dict[str, Path]:
    return study_adapters(tiny_model_dir)


def settings_of(tiny_model_dir: Path, tmp_path: Path, **options) -> dict:
    config = EvalConfig(model=str(tiny_model_dir), suite=["xnli"], langs=["de"], limit=4,
                        **options)  # fmt: skip
    plan = plan_evaluation(config, tmp_path / "out")
    return prediction_settings(plan, plan.runs[0])


def pretend_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)


def test_auto_is_recorded_as_the_dtype_it_resolves_to_on_the_device_it_runs_on(monkeypatch):
    """``dtype: auto`` was recorded as asked: a run begun on a CPU (float32) and resumed on a
    GPU (bfloat16) mixed chunks of both precisions under one identity."""
    assert precision("hf", "auto", None) == {"dtype": "float32", "device": "cpu"}
    assert precision("hf", "bfloat16", "cpu") == {"dtype": "bfloat16", "device": "cpu"}
    pretend_gpu(monkeypatch)
    assert precision("hf", "auto", None) == {"dtype": "bfloat16", "device": "cuda"}
    assert precision("hf", "auto", "cpu") == {"dtype": "float32", "device": "cpu"}
    assert precision("hf", "float32", "cuda:1") == {"dtype": "float32", "device": "cuda"}
    # vLLM places the model itself: a --device it does not read decides nothing
    assert precision("vllm", "auto", "cpu") == {"dtype": "bfloat16", "device": "cuda"}


def test_a_run_begun_on_a_cpu_is_not_resumed_on_a_gpu(tiny_model_dir, tmp_path, monkeypatch):
    """The chunks predicted in float32 are not taken as the bfloat16 run's, and the reason is
    said; an earlier mslt-it's ``auto`` is said to be unresolved, not "dtype changed"."""
    on_cpu = settings_of(tiny_model_dir, tmp_path)
    assert (on_cpu["dtype"], on_cpu["device"]) == ("float32", "cpu")
    pretend_gpu(monkeypatch)
    on_gpu = settings_of(tiny_model_dir, tmp_path)
    assert (on_gpu["dtype"], on_gpu["device"]) == ("bfloat16", "cuda")
    assert settings_sha256(on_cpu) != settings_sha256(on_gpu)
    assert cell_identity(on_cpu, "xnli", "de") != cell_identity(on_gpu, "xnli", "de")

    folder = tmp_path / "run"
    begun = RunStore(folder, on_cpu)
    begun.prepare(overwrite=False)
    begun.save_chunk("xnli", "de", 0, [{"id": "1"}])
    resumed = RunStore(folder, on_gpu)
    resumed.prepare(overwrite=False, restart_changed=True)
    assert resumed.load_chunk("xnli", "de", 0, ["1"]) is None

    earlier = {**on_cpu, "dtype": "auto"}
    earlier.pop("device")
    said = describe_change(earlier, on_cpu)
    assert said.startswith("recorded by an earlier mslt-it") and "dtype auto resolved" in said


def test_an_open_backends_precision_is_the_runs(tiny_model_dir, tmp_path):
    """``evaluate(backend=...)`` predicts with the backend as it was opened: its settings say
    its precision, not the config's."""
    import torch

    from mslt_it.generation.base import BackendOptions

    class Opened:
        name = "hf"
        options = BackendOptions(model=str(tiny_model_dir))
        dtype = torch.bfloat16
        device = "cpu"

    config = EvalConfig(model=str(tiny_model_dir), suite=["xnli"], langs=["de"], limit=4)
    plan = plan_evaluation(config, tmp_path / "out")
    settings = prediction_settings(plan, plan.runs[0], Opened())
    assert (settings["dtype"], settings["device"]) == ("bfloat16", "cpu")


def test_the_same_model_and_adapter_spelled_otherwise_is_the_same_evaluation(
    cli, tiny_model_dir, adapters, tmp_path
):
    """``--model ./tiny/`` after ``--model tiny`` (or the adapter's path likewise) was "the model
    changed": refused, or with --update every prediction made again, though the files were the
    same. The folders' digests are the identity; a changed file still is a change."""
    os.chdir(tmp_path)
    (tmp_path / "base").symlink_to(tiny_model_dir, target_is_directory=True)
    shutil.copytree(adapters["a1"], tmp_path / "a1")
    out = tmp_path / "ev"
    common = ["eval", "--task", "xnli", "--langs", "en", "--mode", "rank", "--out", out, *FAST]
    first = cli(*common, "--model", "base", "--adapter", "a1")
    assert first.code == 0, first.err
    predicted = json.loads((out / "timings.json").read_text())["examples_predicted"]
    assert predicted == 4
    again = cli(*common, "--model", "./base/", "--adapter", str(tmp_path / "a1") + "/")
    assert again.code == 0, again.err
    assert "other settings" not in again.err
    timings = json.loads((out / "timings.json").read_text())
    assert timings["examples_predicted"] == 4  # the first run's: nothing predicted again

    config = json.loads((tmp_path / "a1" / "adapter_config.json").read_text())
    config["lora_alpha"] = config["lora_alpha"] * 2  # the adapter's content: a change still
    (tmp_path / "a1" / "adapter_config.json").write_text(json.dumps(config))
    assert_one_line_error(cli(*common, "--model", "base", "--adapter", "a1"), "other settings")


def test_runs_evaluated_on_other_devices_are_said_to_be_evaluated_differently():
    """Two runs of ``dtype: auto``, one on a CPU and one on a GPU, were compared as evaluated
    alike; the resolved dtype and the device now tell them apart under the comparison."""
    from mslt_it.comparisons import evaluation_differences

    tasks = [{"task": "xnli", "split": "test"}]
    cpu = {"settings": {"dtype": "float32", "device": "cpu", "tasks": tasks}}
    gpu = {"settings": {"dtype": "bfloat16", "device": "cuda", "tasks": tasks}}
    said = evaluation_differences(cpu, gpu, "xnli")
    assert "dtype float32 vs bfloat16" in said and "device cpu vs cuda" in said
    assert evaluation_differences(cpu, cpu, "xnli") == []


class OpenBackend:
    """A backend already open, as ``evaluate(backend=...)`` takes it: checked before use."""

    name = "hf"
    dtype = None
    device = None

    def __init__(self, model: Path, adapters: dict[str, Path], stops: tuple[int, ...]) -> None:
        from mslt_it.generation.base import BackendOptions

        self.options = BackendOptions(model=str(model), adapters=adapters)
        self.stop_token_ids = stops

    def generate(self, *args, **kwargs):
        raise AssertionError("predicted with a backend that holds other models")

    loglikelihood = generate


def test_an_open_backend_must_hold_the_plans_model_adapters_and_stops(
    tiny_model_dir, adapters, tmp_path
):
    """An open backend was matched to the evaluation by adapter name alone: a backend holding
    another study's adapter ``a1`` (folders are names) had its predictions recorded as this
    one's, with this adapter's digest."""
    from mslt_it.errors import MsltError
    from mslt_it.evaluation import evaluate
    from mslt_it.evaluation.plan import plan_evaluation

    other = tmp_path / "other" / "a1"
    shutil.copytree(adapters["a2"], other)  # another study's a1: a2's weights
    config = EvalConfig(model=str(tiny_model_dir), adapters=[str(adapters["a1"])],
                        suite=["xnli"], langs=["en"], limit=2)  # fmt: skip
    stops = plan_evaluation(config, tmp_path / "plan").stop_tokens
    cases = [
        (OpenBackend(tiny_model_dir, {"a1": other}, stops), "holds other weights"),
        (OpenBackend(tiny_model_dir, {}, stops), "no adapter named 'a1'"),
        (OpenBackend(adapters["a1"], {"a1": adapters["a1"]}, stops), "not the files of"),
        (OpenBackend(tiny_model_dir, {"a1": adapters["a1"]}, ()), "stops at tokens"),
        (OpenBackend(tiny_model_dir, {"a1": adapters["a1"]}, (*stops, 7)), "stops at tokens"),
    ]
    for index, (backend, said) in enumerate(cases):
        with pytest.raises(MsltError, match=said):
            evaluate(config, tmp_path / f"out{index}", backend=backend)
    # refused before the output folder is touched: --overwrite removed the evaluation first
    done = tmp_path / "done"
    evaluate(config, done)
    kept = (done / "results.json").read_text()
    for overwrite, update in ((True, False), (False, True)):
        with pytest.raises(MsltError, match="holds other weights"):
            evaluate(config, done, overwrite=overwrite, update=update, backend=cases[0][0])
        assert (done / "results.json").read_text() == kept


def test_a_backend_of_the_users_that_says_nothing_of_its_precision_is_one_line(
    tiny_model_dir, tmp_path
):
    from mslt_it.errors import MsltError
    from mslt_it.evaluation.plan import plan_evaluation

    class Bare:
        name = "mine"

    config = EvalConfig(model=str(tiny_model_dir), suite=["xnli"], langs=["en"], limit=2)
    plan = plan_evaluation(config, tmp_path / "plan")
    with pytest.raises(MsltError, match="neither its dtype and device"):
        prediction_settings(plan, plan.runs[0], Bare())


def test_a_setting_an_earlier_mslt_it_did_not_record_is_said_so():
    """A run recorded before the device was read "device None vs cpu", and its ``auto`` as if
    it were a dtype."""
    from mslt_it.comparisons import evaluation_differences

    tasks = [{"task": "xnli", "split": "test"}]
    earlier = {"settings": {"dtype": "auto", "tasks": tasks}}
    now = {"settings": {"dtype": "float32", "device": "cpu", "tasks": tasks}}
    said = evaluation_differences(earlier, now, "xnli")
    assert "device not recorded vs cpu" in said
    assert "dtype auto (not resolved) vs float32" in said


def test_a_run_moved_to_another_device_is_said_so_and_a_data_folder_is_its_rows():
    """A run said "dtype changed" of a run whose user changed nothing but the machine; and
    ``--data ./d/`` after ``--data d`` was "other settings" though every row was the same."""
    recorded = {"dtype": "float32", "device": "cpu", "data": "d", "tasks": []}
    wanted = {**recorded, "dtype": "bfloat16", "device": "cuda"}
    said = describe_change(recorded, wanted)
    assert "ran on a cpu in float32, and runs on a cuda in bfloat16" in said
    assert settings_sha256({**recorded, "data": "./d/"}) == settings_sha256(recorded)
    assert settings_sha256({**recorded, "data": "synthetic"}) != settings_sha256(recorded)


def test_a_blank_system_prompt_is_none(tiny_model_dir, tmp_path):
    """``--system-prompt '   '`` wrote a system turn of spaces before every prompt, where ``''``
    wrote none and training records either as none: one evaluation, one identity."""
    for blank in ("", "   "):
        assert settings_of(tiny_model_dir, tmp_path, system_prompt=blank)["system_prompt"] is None
    said = settings_of(tiny_model_dir, tmp_path, system_prompt=" Be brief. ")["system_prompt"]
    assert said == " Be brief. "


def test_limit_takes_the_same_items_in_every_language(tiny_model_dir, tmp_path):
    """``--limit 4`` took the first four *labelled* rows: rows 0-3 in en, rows 0, 2, 3, 4 in a
    language whose row 1 is unlabelled, so the languages were compared on other items. The
    first four rows of every language now, the unlabelled one left out and counted."""
    for lang in ("en", "de"):
        folder = tmp_path / "data" / "xnli" / lang
        folder.mkdir(parents=True)
        rows = [
            {
                "premise": f"p{i}",
                "hypothesis": f"h{i}",
                "label": -1 if (lang, i) == ("de", 1) else 0,
            }
            for i in range(8)
        ]
        (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = EvalConfig(model=str(tiny_model_dir), task="xnli", langs=["en", "de"], limit=4,
                        data=str(tmp_path / "data"))  # fmt: skip
    plan = plan_evaluation(config, tmp_path / "out")
    ids = {lang: [row["id"].rsplit("/", 1)[1] for row in plan.rows[("xnli", lang)]]
           for lang in ("en", "de")}  # fmt: skip
    assert ids == {"en": ["0", "1", "2", "3"], "de": ["0", "2", "3"]}
    assert plan.unlabelled == {("xnli", "en"): 0, ("xnli", "de"): 1}


def test_adapters_trained_with_a_blank_prompt_share_their_template_with_the_base():
    """An earlier mslt-it recorded a blank system prompt as "", training now as None: the
    study's base run lost the adapters' shared template (they seemed to differ) and took
    the tokenizer's."""
    from types import SimpleNamespace

    from mslt_it.evaluation.plan import _shared_adapter

    def adapter(prompt):
        return SimpleNamespace(template={"id": "xnli/en-instruct"}, chat_template="c",
                               system_prompt=prompt)  # fmt: skip

    earlier, now = adapter(""), adapter(None)
    assert _shared_adapter([earlier, now]) is earlier
    assert _shared_adapter([earlier, adapter("Be brief.")]) is None


def write_claims(folder: Path, edited: int | None = None) -> Path:
    """XNLI rows of en and de in a folder, 12 each (``edited``: that de row's premise
    changed)."""
    for lang in ("en", "de"):
        rows = [
            {"premise": f"{lang} p{i}" + (" (edited)" if (lang, i) == ("de", edited) else ""),
             "hypothesis": f"h{i}", "label": i % 3}
            for i in range(12)
        ]  # fmt: skip
        (folder / "xnli" / lang).mkdir(parents=True, exist_ok=True)
        (folder / "xnli" / lang / "test.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows)
        )
    return folder


def test_a_raised_limit_predicts_only_the_rows_it_adds(cli, tiny_model_dir, tmp_path):
    """``--limit 5`` then ``--limit 9 --update`` predicted all nine rows again: the rows'
    digest and the limit were each language's identity. The chunks of the first rows are
    reused where their rows are proven the same (their digest among this run's first five);
    the last, partial chunk (row 4) is predicted again with the rows added. The predictions
    are a fresh ``--limit 9``'s; a lowered limit, or an edited first row, predicts again."""
    data = write_claims(tmp_path / "data")
    common = ["eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en,de",
              "--mode", "rank", "--data", data, "--chunk-size", "2", "--batch-size", "2",
              "--bootstrap-samples", "50"]  # fmt: skip

    def predicted(out: Path) -> int:
        return json.loads((out / "timings.json").read_text())["examples_predicted"]

    def lines(out: Path) -> list[dict]:
        found = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "seconds"} for r in found]

    out = tmp_path / "ev"
    assert cli(*common, "--limit", "5", "--out", out).code == 0
    assert_one_line_error(cli(*common, "--limit", "9", "--out", out), "limit", "--update")
    raised = cli(*common, "--limit", "9", "--out", out, "--update")
    assert raised.code == 0, raised.err
    assert predicted(out) == 2 * (9 - 4)  # per language rows 4 to 8
    fresh = tmp_path / "fresh"
    assert cli(*common, "--limit", "9", "--out", fresh).code == 0
    assert lines(out) == lines(fresh)
    results = [json.loads((f / "results.json").read_text()) for f in (out, fresh)]
    assert results[0]["tasks"] == results[1]["tasks"]

    assert cli(*common, "--limit", "12", "--out", out, "--update").code == 0
    assert predicted(out) == 2 * (12 - 8)  # row 8's chunk again, with 9 to 11

    write_claims(data, edited=1)  # a first row edited: de's rows are not the first ones
    assert cli(*common, "--limit", "5", "--out", fresh, "--overwrite").code == 0
    assert cli(*common, "--limit", "12", "--out", fresh, "--update").code == 0
    assert predicted(fresh) == 4 + 12  # en's rows 4 to 11, every de row
    assert cli(*common, "--limit", "6", "--out", fresh, "--update").code == 0
    assert predicted(fresh) == 2 * 6  # lowered: nothing proves the first rows the same
    assert cli(*common, "--out", fresh, "--update").code == 0  # no limit: all 12 rows
    assert cli(*common, "--limit", "30", "--out", fresh, "--update").code == 0
    assert predicted(fresh) == 0  # beyond the data: the same 12 rows, nothing predicted
    assert cli(*common, "--limit", "12", "--out", fresh, "--update").code == 0
    assert predicted(fresh) == 0  # lowered to the data's end: still the same rows
