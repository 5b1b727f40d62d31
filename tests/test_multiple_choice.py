"""The multiple_choice kind: XCOPA, XStoryCloze, XWinograd and Belebele as task definitions.

Covers the definitions, the synthetic rows, rank mode (one prompt per row, a context that names
the choice scored like lm-eval's "multiple input" mode), generate mode, Belebele added by files
alone, and agreement with lm-evaluation-harness's own task code on the same rows and tiny model
(skipped where lm_eval is not installed; the ``dev`` extra installs it, so CI runs it).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error

from mslt_it.evaluation import EvalConfig, evaluate
from mslt_it.tasks import get_task
from mslt_it.tasks.sources import open_split
from mslt_it.tasks.synthetic import lexicon, synthetic_row

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

NEW_TASKS = {"xcopa": 11, "xstorycloze": 11, "xwinograd": 6}
FAST = ["--limit", "4", "--chunk-size", "4", "--batch-size", "4", "--bootstrap-samples", "50"]
HAS_LM_EVAL = importlib.util.find_spec("lm_eval") is not None


def read_predictions(folder: Path) -> list[dict]:
    lines = (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


# ---------------------------------------------------------------------------- definitions


def test_shipped_multiple_choice_definitions() -> None:
    for name, count in NEW_TASKS.items():
        task = get_task(name)
        assert task.kind == "multiple_choice" and len(task.languages) == count
        assert {"options", "option", "label_word", "choices"} <= task.fields
    assert get_task("xwinograd").hub_config("ja") == "jp"
    assert get_task("xwinograd").hub_config("fr") == "fr"
    belebele = get_task("belebele")
    assert belebele.labels == ("A", "B", "C", "D") and belebele.hub_config("sw") == "swh_Latn"
    assert belebele.extra["synthetic"] is None  # a YAML file and a prompt file, nothing else


def test_gold_and_choices_come_from_the_row() -> None:
    story = get_task("xstorycloze")
    row = synthetic_row("xstorycloze", "en", "eval", 3)
    assert story.gold_label(row, "en") == "AB"[row["answer_right_ending"] - 1]
    winograd = get_task("xwinograd")
    row = synthetic_row("xwinograd", "fr", "test", 5)
    assert winograd.gold_label(row, "fr") == "AB"[int(row["answer"]) - 1]


# ------------------------------------------------------------------------------ synthetic


@pytest.mark.parametrize("name", sorted(NEW_TASKS))
def test_synthetic_rows_have_the_hub_schema_and_are_parallel(name: str) -> None:
    task = get_task(name)
    split = task.splits[-1]
    langs = task.languages[:4]
    for index in range(20):
        rows = [synthetic_row(name, lang, split, index) for lang in langs]
        for row in rows:
            assert set(task.columns) <= set(row)
            task.check_row(row)  # choices and gold index valid
        golds = {task.gold_label(row, lang) for row, lang in zip(rows, langs, strict=True)}
        assert len(golds) == 1  # row i says the same thing in every language


def solve(name: str, row: dict, lang: str) -> int:
    """The cue each synthetic task is built on, read with the language's own lexicon."""
    lex = lexicon(lang)
    words = lambda text: text.rstrip(".。।").split()  # noqa: E731
    if name == "xcopa":
        cue = lex.hedge if row["question"] == "cause" else lex.also
        return 0 if words(row["choice1"])[0] == cue else 1
    if name == "xstorycloze":
        return 0 if words(row["sentence_quiz1"])[0] == lex.also else 1
    before = row["sentence"].split("_")[0]
    return 0 if row["option1"] in before else 1


@pytest.mark.parametrize("name", sorted(NEW_TASKS))
def test_synthetic_labels_follow_a_cue_within_each_language(name: str) -> None:
    """Learnable the way synthetic XNLI is: a rule in the language's own words gives every label,
    and labels are balanced (a constant answer is at chance)."""
    task = get_task(name)
    for lang in ("en", "sw") if "sw" in task.languages else ("en", "fr"):
        rows = open_split(task, lang, task.splits[-1], "synthetic").rows(range(200))
        golds = [task.labels.index(task.gold_label(row, lang)) for row in rows]
        assert [solve(name, row, lang) for row in rows] == golds
        assert 0.35 < sum(golds) / len(golds) < 0.65


# ------------------------------------------------------------------------------ rank mode


def test_rank_scores_a_context_per_choice_as_a_whole_forward_would(tiny_model_dir) -> None:
    """A skipped context tail is fed, not scored: equal to scoring each (context, continuation)
    alone; and the prompt is the contexts' shared prefix, fed once per row."""
    import torch
    from transformers import AutoModelForCausalLM

    from mslt_it.evaluation.candidates import row_candidates
    from mslt_it.evaluation.prompting import ChatFormat
    from mslt_it.generation import BackendOptions, open_backend
    from mslt_it.modeling import load_tokenizer
    from mslt_it.prompts import get_template

    tokenizer = load_tokenizer(str(tiny_model_dir))
    chat = ChatFormat(tokenizer, None, None)
    template = get_template("xwinograd/lm-eval")
    task = get_task("xwinograd")
    rows = [synthetic_row("xwinograd", "en", "test", i) for i in range(4)]
    requests = [row_candidates(template, task, row, "en", chat) for row in rows]
    assert all(not r.shared_context and min(r.skip) > 0 for r in requests)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    for packed in (True, False):
        backend = open_backend(
            "hf", BackendOptions(model=str(tiny_model_dir), dtype="float32", batch_size=4,
                                 device="cpu", pad_token_id=tokenizer.pad_token_id),
        )  # fmt: skip
        if not packed:
            backend._packs_candidates = lambda: False  # the cached-prefix path
        scores = backend.loglikelihood(
            [r.prompt for r in requests], [r.continuations for r in requests],
            skip=[r.skip for r in requests],
        )  # fmt: skip
        for request, row_scores in zip(requests, scores, strict=True):
            for k, score in enumerate(row_scores):
                full = request.prompt + request.continuations[k]
                start = len(request.prompt) + request.skip[k]
                with torch.no_grad():
                    logits = model(torch.tensor([full])).logits[0].log_softmax(-1)
                expected = sum(float(logits[j - 1, full[j]]) for j in range(start, len(full)))
                assert score == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("name", sorted(NEW_TASKS))
def test_rank_and_generate_end_to_end(cli, tiny_model_dir, tmp_path, name: str) -> None:
    task = get_task(name)
    langs = ",".join(task.languages[:2])
    ranked = tmp_path / "rank"
    result = cli("eval", "--model", tiny_model_dir, "--suite", name, "--langs", langs,
                 "--template", f"{name}/lm-eval", "--mode", "rank", "--data", "synthetic",
                 "--out", ranked, *FAST)  # fmt: skip
    assert result.code == 0, result.err
    results = json.loads((ranked / "results.json").read_text())["tasks"][name]
    for lang in task.languages[:2]:
        scored = results["languages"][lang]
        assert scored["n"] == 4 and scored["invalid"] == 0 and "acc_norm" in scored
    assert "acc_norm_unweighted" in results["average"]
    for record in read_predictions(ranked):
        assert set(record["scores"]) == {"A", "B"}
        best = max(record["scores"], key=record["scores"].get)
        assert record["parsed"] == best and record["correct"] == (best == record["gold"])
    generated = tmp_path / "generate"
    result = cli("eval", "--model", tiny_model_dir, "--suite", name, "--langs", langs,
                 "--mode", "generate", "--max-tokens", "4", "--data", "synthetic",
                 "--out", generated, *FAST)  # fmt: skip
    assert result.code == 0, result.err
    records = read_predictions(generated)
    assert len(records) == 8 and all(r["template"] == f"{name}/en-instruct" for r in records)
    assert all("Answer with 1 or 2." in r["prompt"] for r in records)
    for record in records:  # parsed as label words, an unreadable answer counted as invalid
        assert record["invalid"] == (record["parsed"] is None)


def test_mode_errors_are_one_line(cli, tiny_model_dir, tmp_path) -> None:
    base = ["eval", "--model", tiny_model_dir, "--suite", "xcopa", "--langs", "sw",
            "--data", "synthetic", *FAST]  # fmt: skip
    result = cli(*base, "--template", "xcopa/lm-eval", "--mode", "generate",
                 "--out", tmp_path / "a")  # fmt: skip
    assert_one_line_error(result, "xcopa/lm-eval", "use --mode rank")
    result = cli(*base, "--mode", "constrained", "--backend", "vllm", "--out", tmp_path / "b")
    assert_one_line_error(result, "constrained", "multiple-choice")
    result = cli("build", "--task", "xstorycloze", "--sources", "en", "--budget", "4",
                 "--split", "train", "--template", "xstorycloze/lm-eval",
                 "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, "format: plain", "e.g. xstorycloze/en-instruct")
    assert not any(tmp_path.iterdir())
    # a user task with plain templates only is not sent to a template that does not exist
    tasks, prompts = tmp_path / "t", tmp_path / "p" / "pick"
    tasks.mkdir()
    prompts.mkdir(parents=True)
    (tasks / "pick.yaml").write_text(
        "name: pick\ntitle: Pick\nkind: multiple_choice\nhub: {id: x/y}\nsplits: [train]\n"
        "languages: [en]\ncolumns: [q, a, b, gold]\nlabels: [A, B]\n"
        "choices: '[row.a, row.b]'\ngold: row.gold\nvariables: {q: row.q}\n"
        "example: {q: Q, a: x, b: y, gold: 0}\n"
    )
    (prompts / "plain.yaml").write_text(
        "id: pick/plain\ntask: pick\nformat: plain\ndescription: d\n"
        "instruction: '{{ q }}'\nanswer: '{{ option }}'\nverbalizers: {A: '1', B: '2'}\n"
    )
    result = cli("build", "--task", "pick", "--sources", "en", "--budget", "2", "--template",
                 "pick/plain", "--tasks-dir", tasks, "--prompts-dir", tmp_path / "p",
                 "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, "format: plain", "(none for pick yet: write one)")


def test_a_multiple_choice_row_with_a_bad_gold_is_a_one_line_error(cli, tiny_model_dir, tmp_path):
    folder = tmp_path / "data" / "xstorycloze" / "en"
    folder.mkdir(parents=True)
    rows = [synthetic_row("xstorycloze", "en", "eval", i) for i in range(3)]
    rows[2]["answer_right_ending"] = 3
    (folder / "eval.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = cli("eval", "--model", tiny_model_dir, "--suite", "xstorycloze", "--langs", "en",
                 "--data", tmp_path / "data", "--mode", "rank",
                 "--out", tmp_path / "ev")  # fmt: skip
    assert_one_line_error(result, "eval.jsonl: line 3", "gold gives index 2", "0 to 1")
    assert not (tmp_path / "ev").exists()


def test_training_on_a_multiple_choice_task_builds_chat_examples(cli, tmp_path) -> None:
    out = tmp_path / "ds"
    result = cli("build", "--task", "xstorycloze", "--sources", "en,sw", "--budget", "6",
                 "--split", "train", "--template", "xstorycloze/en-instruct",
                 "--out", out)  # fmt: skip
    assert result.code == 0, result.err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"] == "xstorycloze" and manifest["counts"] == {"en": 3, "sw": 3}


# -------------------------------------------------------------------------------- belebele


def belebele_rows(n: int) -> list[dict]:
    """Rows in Belebele's Hub schema, answerable from the passage."""
    rows = []
    for i in range(n):
        answers = [f"word{i}{k}" for k in range(4)]
        right = i % 4
        rows.append({
            "link": f"https://example.org/{i}", "question_number": 1, "dialect": "eng_Latn",
            "ds": "2023-05-03",
            "flores_passage": f"The box holds {answers[right]} and nothing else.",
            "question": f" What does the box hold? ({i})",
            **{f"mc_answer{k + 1}": answers[k] for k in range(4)},
            "correct_answer_num": str(right + 1),
        })  # fmt: skip
    return rows


def test_belebele_from_local_files_in_rank_and_generate_mode(cli, tiny_model_dir, tmp_path):
    folder = tmp_path / "data" / "belebele" / "en"
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text(
        "\n".join(json.dumps(r) for r in belebele_rows(6)) + "\n", encoding="utf-8"
    )
    for mode in ("rank", "generate"):
        out = tmp_path / mode
        result = cli("eval", "--model", tiny_model_dir, "--suite", "belebele", "--langs", "en",
                     "--data", tmp_path / "data", "--mode", mode, "--max-tokens", "3",
                     "--out", out, *FAST)  # fmt: skip
        assert result.code == 0, result.err
        records = read_predictions(out)
        assert [r["gold"] for r in records] == ["A", "B", "C", "D"]
        assert records[0]["prompt"].endswith("D: word03\nAnswer:")
        assert "Q: What does the box hold? (0)\n" in records[0]["prompt"]  # question trimmed


# ----------------------------------------------------------------------- lm-eval agreement


AGREEMENT_LANGS = {"xcopa": ["et", "ht", "zh"], "xstorycloze": ["ar", "en", "zh"],
                   "xwinograd": ["en", "fr", "zh"]}  # fmt: skip
"""Two languages of each task and one in Han script, where characters and bytes differ."""
AGREEMENT_ROWS = [12, 9, 6]
"""Rows per language: unequal, so that a weighted and an unweighted average differ."""
ACC_AND_ACC_NORM = [
    {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
    {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
]
"""lm-eval 0.4.13's XCOPA, XStoryCloze and XWinograd configs list only acc; this asks for both."""


def reporting_acc_norm(monkeypatch: pytest.MonkeyPatch) -> None:
    """lm-eval's tasks, built by ``lm_eval_reference.lm_eval_task``, with ``acc_norm`` added to
    their ``metric_list`` (the configuration field lm-eval reads the metrics to report from)."""
    import lm_eval.api.task as lm_eval_task_module

    class WithAccNorm(lm_eval_task_module.ConfigurableTask):
        def __init__(self, *args, config=None, **kwargs):
            super().__init__(*args, config={**config, "metric_list": ACC_AND_ACC_NORM}, **kwargs)

    monkeypatch.setattr(lm_eval_task_module, "ConfigurableTask", WithAccNorm)


@pytest.mark.skipif(not HAS_LM_EVAL, reason="lm_eval is not installed (pip install -e '.[dev]')")
@pytest.mark.parametrize("name", sorted(NEW_TASKS))
def test_agrees_with_lm_evaluation_harness(
    tiny_model_dir, tmp_path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Same (context, continuation) strings as lm-eval's own task code builds, the same
    log-likelihoods and chosen answer for every row, the same characters ``acc_norm`` divides
    by, the same acc and acc_norm per row, and the same per-language and averaged acc and
    acc_norm as lm-eval's aggregation (its group's weighted mean, and the unweighted one)."""
    import numpy as np
    from lm_eval.api.metrics import aggregate_subtask_metrics
    from lm_eval.models.huggingface import HFLM
    from lm_eval_reference import (
        lm_eval_metrics,
        lm_eval_requests,
        lm_eval_scores,
        lm_eval_task,
        write_rows,
    )

    from mslt_it.prompts import get_template

    reporting_acc_norm(monkeypatch)
    task = get_task(name)
    template = get_template(f"{name}/lm-eval")
    lm = HFLM(pretrained=str(tiny_model_dir), device="cpu", dtype="float32", batch_size=8)
    split = task.splits[-1]
    langs = AGREEMENT_LANGS[name]
    data = tmp_path / "data"
    theirs_by_lang: dict[str, list[dict[str, float]]] = {}
    built_by_lang = {}
    for lang, count in zip(langs, AGREEMENT_ROWS, strict=True):
        rows = open_split(task, lang, split, "synthetic").rows(range(count))
        rows_file = write_rows(rows, data / name / lang / f"{split}.jsonl")
        built = lm_eval_task(name, task.hub_config(lang), rows_file)
        ours = [
            [(r.instruction, template.spec.target_delimiter + r.answer)
             for r in (template.render(row, lang, label=k) for k in range(2))]
            for row in rows
        ]  # fmt: skip
        assert ours == lm_eval_requests(built)
        scores = lm_eval_scores(lm, built)
        metrics = lm_eval_metrics(built, scores)
        assert all({"acc", "acc_norm"} <= set(m) for m in metrics), metrics[0]
        theirs_by_lang[lang] = [
            {**m, "scores": s} for m, s in zip(metrics, scores, strict=True)
        ]  # fmt: skip
        built_by_lang[lang] = built

    config = EvalConfig(
        model=str(tiny_model_dir), task=name, langs=langs, split=split,
        template=f"{name}/lm-eval", mode="rank", data=str(data), backend="hf", device="cpu",
        dtype="float32", batch_size=8, bootstrap_samples=50,
    )  # fmt: skip
    evaluate(config, tmp_path / "out")
    records = read_predictions(tmp_path / "out")
    results = json.loads((tmp_path / "out" / "results.json").read_text())["tasks"][name]
    for lang in langs:
        mine = [r for r in records if r["lang"] == lang]
        built = built_by_lang[lang]
        docs = list(built.eval_docs)
        assert len(mine) == len(docs) == len(theirs_by_lang[lang])
        for record, doc, theirs in zip(mine, docs, theirs_by_lang[lang], strict=True):
            ours_scores = [record["scores"][label] for label in task.labels]
            assert int(np.argmax(ours_scores)) == int(np.argmax(theirs["scores"]))
            assert ours_scores == pytest.approx(theirs["scores"], abs=1e-3)
            # lm-eval divides by the length in characters of each of doc_to_choice's strings
            lengths = [float(len(choice)) for choice in built.doc_to_choice(doc)]
            assert [record["choice_lengths"][label] for label in task.labels] == lengths
            assert float(record["correct"]) == theirs["acc"]
            assert float(record["correct_norm"]) == theirs["acc_norm"]
        aggregate = built.aggregation()
        for metric, ours_key in (("acc", "score"), ("acc_norm", "acc_norm")):
            theirs = 100 * aggregate[metric]([m[metric] for m in theirs_by_lang[lang]])
            assert results["languages"][lang][ours_key] == pytest.approx(theirs, abs=1e-3)
    sizes = [len(theirs_by_lang[lang]) for lang in langs]
    for metric, ours_key, weighted in (
        ("acc", "weighted", True),  # lm-eval's group aggregate: weight_by_size
        ("acc", "unweighted", False),
        ("acc_norm", "acc_norm_unweighted", False),
    ):
        per_language = [
            100 * float(np.mean([m[metric] for m in theirs_by_lang[lang]])) for lang in langs
        ]
        theirs = aggregate_subtask_metrics(per_language, sizes, weight_by_size=weighted)
        assert results["average"][ours_key] == pytest.approx(theirs, abs=1e-3), (metric, ours_key)


@pytest.mark.slow
def test_synthetic_storycloze_is_learnable(cli, tiny_model_dir, tmp_path) -> None:
    """As synthetic XNLI is: an adapter trained on the 360 synthetic training stories answers
    held-out ones (the eval split) right; measured 100 of 100, chance is 50."""
    result = cli("build", "--task", "xstorycloze", "--sources", "en", "--budget", "360",
                 "--split", "train", "--template", "xstorycloze/en-instruct",
                 "--out", tmp_path / "ds")  # fmt: skip
    assert result.code == 0, result.err
    result = cli("train", "--model", tiny_model_dir, "--dataset", tmp_path / "ds",
                 "--out", tmp_path / "adapter", "--lora-r", "16", "--lora-alpha", "32",
                 "--lora-dropout", "0", "--lora-target", "all-linear", "--learning-rate", "3e-3",
                 "--max-steps", "150", "--batch-size", "8", "--max-length", "256",
                 "--sft", "lr_scheduler_type=cosine", "--sft", "warmup_steps=10")  # fmt: skip
    assert result.code == 0, result.err
    result = cli("eval", "--adapter", tmp_path / "adapter", "--suite", "xstorycloze",
                 "--langs", "en", "--mode", "rank", "--limit", "100",
                 "--out", tmp_path / "ev")  # fmt: skip
    assert result.code == 0, result.err
    scores = json.loads((tmp_path / "ev" / "results.json").read_text())["tasks"]["xstorycloze"]
    assert scores["languages"]["en"]["score"] >= 90


def sentencepiece_like_tokenizer(folder: Path):
    """A Llama-2-style tokenizer (a ``▁`` prepended to every text it encodes, spaces as ``▁``,
    byte fallback), trained in a moment on a few words."""
    from tokenizers import Tokenizer, decoders, models, normalizers, trainers
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    model = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    model.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    model.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback()])
    words = ["yes no maybe entailment neutral", "### User: hello ### Assistant: yes"] * 50
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>", "<0x0A>"])
    model.train_from_iterator(words, trainer)
    model.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    PreTrainedTokenizerFast(
        tokenizer_object=model, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


def test_rank_mode_scores_the_answer_tokens_training_saw(tmp_path) -> None:
    """An answer was tokenized apart from its prompt: a SentencePiece tokenizer began it with a
    word-start ``▁`` that training (the conversation tokenized whole) never put after
    ``Assistant:\\n``, so every label's score held a token no answer has."""
    from mslt_it.evaluation.prompting import ChatFormat
    from mslt_it.training.chat import default_chat_template

    tokenizer = sentencepiece_like_tokenizer(tmp_path / "tok")
    template = default_chat_template(tokenizer)
    tokenizer.chat_template = template
    for chat in (ChatFormat(tokenizer, template, None), ChatFormat(tokenizer, None, None)):
        prompt = chat.encode([chat.prompt_text("hello maybe")])[0]
        scored = prompt + chat.answer_ids("yes")
        if chat.chat_template is None:  # training joins the turns with a newline
            trained = tokenizer("hello maybe\nyes")["input_ids"]
        else:
            conversation = [
                {"role": "user", "content": "hello maybe"},
                {"role": "assistant", "content": "yes"},
            ]
            trained = tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True)
            trained = trained["input_ids"]
        assert scored == list(trained)


def test_rank_evaluations_of_an_earlier_answer_tokenization_are_predicted_again(
    tiny_model_dir, tmp_path
) -> None:
    """Scores made when answers were tokenized apart are not this version's: their settings
    lack the answer tokenization, and the change is said to be mslt-it's, not the user's."""
    from mslt_it.evaluation.plan import plan_evaluation, prediction_settings
    from mslt_it.evaluation.store import describe_change

    config = EvalConfig(model=str(tiny_model_dir), suite=["xnli"], langs=["de"], limit=4,
                        mode="rank")  # fmt: skip
    plan = plan_evaluation(config, tmp_path / "out")
    now = prediction_settings(plan, plan.runs[0])
    earlier = {key: value for key, value in now.items() if key != "answer_tokens"}
    said = describe_change(earlier, now)
    assert said.startswith("recorded by an earlier mslt-it") and "rank mode tokenizes" in said


@pytest.mark.skipif(not HAS_LM_EVAL, reason="lm_eval is not installed (pip install -e '.[dev]')")
def test_plain_templates_keep_the_rows_edge_spaces_as_lm_evaluation_harness(tmp_path) -> None:
    """A story whose last sentence ends with a space and an ending that begins with one: the
    rendered context and choice were stripped, so the scored tokens (and ``acc_norm``'s
    characters) were not lm-eval's."""
    from lm_eval_reference import lm_eval_requests, lm_eval_task, write_rows

    from mslt_it.prompts import get_template

    task = get_task("xstorycloze")
    template = get_template("xstorycloze/lm-eval")
    rows = open_split(task, "en", task.splits[-1], "synthetic").rows(range(2))
    rows[0] = {**rows[0], "input_sentence_4": rows[0]["input_sentence_4"] + " ",
               "sentence_quiz2": " " + rows[0]["sentence_quiz2"]}  # fmt: skip
    rows_file = write_rows(rows, tmp_path / "xstorycloze" / "en" / "eval.jsonl")
    built = lm_eval_task("xstorycloze", task.hub_config("en"), rows_file)
    ours = [
        [(r.instruction, template.spec.target_delimiter + r.answer)
         for r in (template.render(row, "en", label=k) for k in range(2))]
        for row in rows
    ]  # fmt: skip
    assert ours == lm_eval_requests(built)


def test_a_plain_templates_runs_record_that_its_text_is_kept_unstripped(
    tiny_model_dir, tmp_path
) -> None:
    """A plain template's prompt is no longer stripped, in generate mode too: a run recorded
    before is another prompt, and says so, in every mode."""
    from mslt_it.evaluation.plan import plan_evaluation, prediction_settings
    from mslt_it.evaluation.store import describe_change

    folder = tmp_path / "data" / "belebele" / "en"
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in belebele_rows(2)))
    for mode in ("generate", "rank"):
        config = EvalConfig(model=str(tiny_model_dir), task="belebele", langs=["en"],
                            data=str(tmp_path / "data"), template="belebele/lm-eval",
                            mode=mode, limit=2)  # fmt: skip
        plan = plan_evaluation(config, tmp_path / mode)
        now = prediction_settings(plan, plan.runs[0])
        earlier = {key: value for key, value in now.items() if key != "plain_text"}
        assert "plain text" not in describe_change(earlier, now)
        assert "stripped before" in describe_change(earlier, now)
    config = EvalConfig(model=str(tiny_model_dir), suite=["xnli"], langs=["en"], limit=2)
    plan = plan_evaluation(config, tmp_path / "instruct")
    assert "plain_text" not in prediction_settings(plan, plan.runs[0])


def test_rows_whose_choices_are_one_text_are_said(cli, tiny_model_dir, tmp_path) -> None:
    """Two choices of one text score alike in rank mode, and the tie goes to the first: such a
    row whose gold is the first was scored right, silently. The template's check sees only
    the task's example row; the evaluation names the data's rows."""
    folder = tmp_path / "data" / "xcopa" / "et"
    folder.mkdir(parents=True)
    rows = [
        {"premise": f"P{i}.", "choice1": "same", "choice2": "same" if i < 2 else f"other{i}",
         "question": "cause", "label": 0}
        for i in range(4)
    ]  # fmt: skip
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = cli("eval", "--model", tiny_model_dir, "--task", "xcopa", "--langs", "et",
                 "--template", "xcopa/lm-eval", "--data", tmp_path / "data", "--mode", "rank",
                 "--out", tmp_path / "ev", *FAST)  # fmt: skip
    assert result.code == 0, result.err
    said = " ".join(result.err.split())
    shown = "('xcopa/et/test/0', 'xcopa/et/test/1')"
    assert f"note: 2 row(s) give two choices the same text {shown}" in said
