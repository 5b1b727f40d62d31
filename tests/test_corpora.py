"""Instruction corpora as sources: Bactrian-X, Aya and the user's own files, cleaned and mixed.

The Hub paths are tested on local files of the Hub's schema (Bactrian-X: one file per language;
Aya: one table with ISO 639-3 language codes); no network is used.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import assert_one_line_error

from mslt_it.tasks import get_task
from mslt_it.tasks.synthetic import OPERATIONS, apply_operation, bactrianx_row, lexicon


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def read_dataset(folder: Path) -> list[dict]:
    import datasets

    return list(datasets.load_from_disk(str(folder)))


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def bactrian_rows(lang: str, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        row = bactrianx_row(lang, "train", i)
        row["id"] = f"alpaca-{i}"
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- definitions


def test_corpus_definitions() -> None:
    bactrian, aya = get_task("bactrian-x"), get_task("aya")
    assert bactrian.kind == aya.kind == "instructions"
    assert len(bactrian.languages) == 52 and bactrian.hub_config("sw") == "sw"
    assert {"ar", "de", "en", "es", "fr", "ru", "zh"} <= set(bactrian.languages)
    assert aya.language_value("ar") == "arb" and aya.language_value("en") == "eng"
    assert get_task("conversations").extra["conversation"]


EXPECTED_OUTPUT = {  # each operation, written out again here: not the generator's own code
    "copy": lambda words: " ".join(words),
    "reverse": lambda words: " ".join(reversed(words)),
    "first": lambda words: words[0],
    "last": lambda words: words[-1],
    "longest": lambda words: next(w for w in words if len(w) == max(map(len, words))),
    "count": lambda words: str(len(words)),
}


@pytest.mark.parametrize("lang", ["en", "sw", "ar", "zh"])
def test_synthetic_instructions_follow_from_the_input(lang: str) -> None:
    """Each instruction word names one operation, and the output is that operation applied to
    the input's words (the expected output computed here from the row's text alone)."""
    lex = lexicon(lang)
    assert len(set(lex.operations)) == len(OPERATIONS) == len(EXPECTED_OUTPUT)
    seen = set()
    for index in range(300):
        row = bactrianx_row(lang, "train", index)
        word = row["instruction"].rstrip(".。।")
        operation = OPERATIONS[lex.operations.index(word)]
        seen.add(operation)
        words = row["input"].split()
        assert 3 <= len(words) <= 6
        assert row["output"] == EXPECTED_OUTPUT[operation](words), (operation, row)
        assert row["output"] == apply_operation(operation, words)  # the function users call
    assert seen == set(OPERATIONS)


# ---------------------------------------------------------------------------------- build


def test_bactrian_x_files_are_cleaned_and_counted(cli, tmp_path: Path) -> None:
    data = tmp_path / "data"
    en, sw = bactrian_rows("en", 20), bactrian_rows("sw", 20)
    en[3] = dict(en[2], id="dup")  # a duplicate within English
    en[5]["output"] = "  \n"  # an empty answer
    sw[0] = dict(en[0])  # left untranslated: a duplicate across languages (the later
    # source alphabetically, as sources are sorted, keeps none)
    sw[1]["output"] = sw[1]["instruction"] = "Это ответ на русском языке."  # another script
    write_jsonl(data / "bactrian-x" / "en" / "train.jsonl", en)
    write_jsonl(data / "bactrian-x" / "sw" / "train.jsonl", sw)
    out = tmp_path / "ds"
    result = cli("build", "--task", "bactrian-x", "--sources", "en,sw", "--budget", "36",
                 "--data", data, "--out", out)  # fmt: skip
    assert result.code == 0, result.err
    cleaning = manifest_of(out)["cleaning"]
    assert cleaning["en"] == {"examined": 20, "kept": 18, "empty": 1, "duplicates": 1,
                              "script_mismatch": 0}  # fmt: skip
    assert cleaning["sw"]["duplicates"] == 1 and cleaning["sw"]["script_mismatch"] == 1
    assert cleaning["sw"]["kept"] == 18  # the Cyrillic row is counted, kept by default
    examples = read_dataset(out)
    pairs = [(e["prompt"][-1]["content"], e["completion"][0]["content"]) for e in examples]
    assert len(set(pairs)) == len(pairs) == 36
    assert all(answer.strip() for _, answer in pairs)
    dropped = tmp_path / "dropped"
    result = cli("build", "--task", "bactrian-x", "--sources", "en,sw", "--budget", "34",
                 "--data", data, "--script-mismatch", "drop", "--out", dropped)  # fmt: skip
    assert result.code == 0, result.err
    assert manifest_of(dropped)["cleaning"]["sw"]["kept"] == 17
    assert not any("русском" in e["completion"][0]["content"] for e in read_dataset(dropped))


def test_too_few_clean_rows_is_a_one_line_error(cli, tmp_path: Path) -> None:
    data = tmp_path / "data"
    rows = bactrian_rows("en", 6)
    rows[1] = dict(rows[0])
    write_jsonl(data / "bactrian-x" / "en" / "train.jsonl", rows)
    result = cli("build", "--task", "bactrian-x", "--sources", "en", "--budget", "6",
                 "--data", data, "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, "en has 5 usable rows", "1 duplicates", "--take-available")
    assert not (tmp_path / "ds").exists()


def test_a_source_left_with_no_example_is_a_one_line_error(cli, tmp_path: Path) -> None:
    """sw's file an untranslated copy of en's: every sw row a duplicate, --take-available
    built "en, sw" of English alone (counts sw: 0), a run of one source fewer than it says."""
    data = tmp_path / "data"
    rows = bactrian_rows("en", 6)
    write_jsonl(data / "bactrian-x" / "en" / "train.jsonl", rows)
    write_jsonl(data / "bactrian-x" / "sw" / "train.jsonl", rows)
    result = cli("build", "--task", "bactrian-x", "--sources", "en,sw", "--budget", "12",
                 "--take-available", "--data", data, "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, "budget: sw gives no example", "fewer sources")
    assert not (tmp_path / "ds").exists()
    # so does a mixed-in part: sw's instructions all duplicates, its XNLI rows many
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: m\ndata: {task: xnli, budget: 24, take_available: true, mixture: [{task: "
        f"bactrian-x, share: 0.5, data: {data}}}]}}\nsources: [en, sw]\n"
        "model: {name_or_path: 'mslt-it:tiny'}\neval: {task: xnli, langs: [en]}\n"
    )
    result = cli("build", "--recipe", recipe, "--sources", "en,sw", "--out", tmp_path / "ds")
    assert_one_line_error(result, "budget: sw gives no example of bactrian-x")
    assert not (tmp_path / "ds").exists()


def test_aya_single_table_is_split_by_its_language_column(cli, tmp_path: Path) -> None:
    rows = [
        {"inputs": f"q{i}", "targets": f"a{i}", "language": "x", "language_code": code,
         "annotation_type": "original-annotations", "user_id": "u"}
        for i, code in enumerate(["eng", "swh", "eng", "zho", "swh", "eng", "arb"])
    ]  # fmt: skip
    rows[3]["inputs"], rows[3]["targets"] = "问题", "答案"
    write_jsonl(tmp_path / "data" / "aya" / "train.jsonl", rows)
    out = tmp_path / "ds"
    result = cli("build", "--task", "aya", "--sources", "en,sw", "--budget", "4",
                 "--budget-mode", "per_language", "--take-available",
                 "--data", tmp_path / "data", "--out", out)  # fmt: skip
    assert result.code == 0, result.err
    by_lang: dict[str, set[str]] = {}
    for example in read_dataset(out):
        by_lang.setdefault(example["lang"], set()).add(example["completion"][0]["content"])
    assert by_lang == {"en": {"a0", "a2", "a5"}, "sw": {"a1", "a4"}}
    assert "language_code = swh" in manifest_of(out)["data"]["origins"]["sw"]


@pytest.mark.parametrize("written", ["ENG", "eng ", " Eng"])
def test_a_language_written_another_way_is_named_not_left_out(cli, tmp_path, written) -> None:
    """Rows of `EN` for `en` were left out without a word: the build took the others, and its
    budget error never named them. Another language's rows are no near miss (zho stays)."""
    rows = [
        {"inputs": f"q{i}", "targets": f"a{i}", "language": "x", "language_code": code,
         "annotation_type": "original-annotations", "user_id": "u"}
        for i, code in enumerate(["eng", "zho", written, "eng"])
    ]  # fmt: skip
    write_jsonl(tmp_path / "data" / "aya" / "train.jsonl", rows)
    result = cli("build", "--task", "aya", "--sources", "en", "--budget", "2",
                 "--data", tmp_path / "data", "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(
        result, f"column 'language_code' holds {written!r} (line 3), which reads as 'eng'"
    )
    assert not (tmp_path / "ds").exists()


def test_a_row_of_a_many_language_file_is_named_by_its_place_in_the_file(cli, tmp_path) -> None:
    """Rows were counted among one language's rows only: "row 1" named the file's row 2, a
    valid row of another place, while the near-miss check beside it counted from 1."""
    rows = [
        {"inputs": f"q{i}", "targets": None if i == 3 else f"a{i}", "language": "x",
         "language_code": code, "annotation_type": "original-annotations", "user_id": "u"}
        for i, code in enumerate(["zho", "eng", "zho", "eng"])
    ]  # fmt: skip
    write_jsonl(tmp_path / "data" / "aya" / "train.jsonl", rows)
    result = cli("build", "--task", "aya", "--sources", "en", "--budget", "2",
                 "--data", tmp_path / "data", "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, "[language_code = eng]: line 4: column 'targets' is empty")


def test_multi_turn_conversations_stay_whole(cli, tmp_path: Path) -> None:
    conversation = [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Colour of the sky?"},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "And grass?"},
        {"role": "assistant", "content": "Green."},
    ]
    single = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    write_jsonl(tmp_path / "data" / "conversations" / "en" / "train.jsonl",
                [{"messages": conversation}, {"messages": single}])  # fmt: skip
    out = tmp_path / "ds"
    result = cli("build", "--task", "conversations", "--sources", "en", "--budget", "2",
                 "--data", tmp_path / "data", "--system-prompt", "Be kind.",
                 "--out", out)  # fmt: skip
    assert result.code == 0, result.err
    assert "note: 1 of 2 conversations keep their own system message" in result.err
    examples = {e["completion"][0]["content"]: e for e in read_dataset(out)}
    assert examples["Green."]["prompt"] == conversation[:4]  # its own system message kept
    assert examples["Hello"]["prompt"] == [{"role": "system", "content": "Be kind."}, single[0]]
    messages = tmp_path / "messages"
    result = cli("build", "--task", "conversations", "--sources", "en", "--budget", "2",
                 "--data", tmp_path / "data", "--format", "messages",
                 "--out", messages)  # fmt: skip
    assert result.code == 0, result.err
    assert conversation in [e["messages"] for e in read_dataset(messages)]


BROKEN = {
    "missing column": ([{"instruction": "a", "input": ""}], "missing column 'output'"),
    "wrong type": (
        [{"instruction": "a", "input": "", "output": 5}],
        "column 'output' holds int64, not text",
    ),
    "a list as text": (  # reached the prompt as "['x']"
        [{"instruction": ["x"], "input": "", "output": "a"}],
        "column 'instruction' holds list<item: string>, not text",
    ),
    "bad conversation": (None, "must alternate"),
    "not json": ("{oops\n", "line 1 is not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_corpus_file_is_one_line_and_writes_nothing(cli, tmp_path: Path, case: str):
    rows, fragment = BROKEN[case]
    task = "conversations" if case == "bad conversation" else "instructions"
    path = tmp_path / "data" / task / "en" / "train.jsonl"
    if case == "bad conversation":
        write_jsonl(path, [{"messages": [{"role": "assistant", "content": "x"}]}])
    elif isinstance(rows, str):
        path.parent.mkdir(parents=True)
        path.write_text(rows, encoding="utf-8")
    else:
        write_jsonl(path, rows)
    result = cli("build", "--task", task, "--sources", "en", "--budget", "1",
                 "--data", tmp_path / "data", "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "ds").exists()


# ------------------------------------------------------------------------ budgets, mixtures


def test_budgets_are_equal_across_a_grid(tmp_path: Path) -> None:
    from mslt_it.config import DataConfig
    from mslt_it.data import build_dataset

    sizes = []
    for sources in (["en"], ["ar", "de", "en"], ["es", "fr", "ru"], ["de", "ru", "zh"]):
        config = DataConfig(task="bactrian-x", sources=sources, budget=60, data="synthetic")
        manifest = build_dataset(config, tmp_path / "+".join(sources)).manifest
        sizes.append(manifest["num_examples"])
        assert len(set(manifest["counts"].values())) == 1
    assert sizes == [60, 60, 60, 60]


def test_a_mixture_gives_each_part_its_share(cli, tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "data:\n  task: bactrian-x\n  sources: [en, de, zh]\n  budget: 90\n  data: synthetic\n"
        "  mixture:\n    - {task: xnli, share: 0.3, template: xnli/en-instruct}\n",
        encoding="utf-8",
    )
    out = tmp_path / "ds"
    result = cli("build", "--recipe", recipe, "--out", out)
    assert result.code == 0, result.err
    manifest = manifest_of(out)
    parts = {part["task"]: part for part in manifest["mixture"]}
    assert parts["bactrian-x"]["budget"] == 63 and parts["xnli"]["budget"] == 27
    assert parts["xnli"]["counts"] == {"en": 9, "de": 9, "zh": 9}
    tasks = [e["task"] for e in read_dataset(out)]
    assert tasks.count("xnli") == 27 and tasks.count("bactrian-x") == 63
    assert manifest["num_examples"] == 90
    recipe.write_text(
        "data:\n  task: bactrian-x\n  sources: [en]\n  budget: 10\n"
        "  mixture:\n    - {task: xnli, share: 0.6}\n    - {task: pawsx, share: 0.5}\n",
        encoding="utf-8",
    )
    assert_one_line_error(cli("build", "--recipe", recipe, "--out", tmp_path / "x"), "mixture")
    empty = tmp_path / "empty-data"  # the part reads the recipe's folder, which lacks it
    rows = [{"instruction": f"a{i}", "input": "", "output": "b"} for i in range(8)]
    write_jsonl(empty / "instructions" / "en" / "train.jsonl", rows)
    recipe.write_text(
        f"data:\n  task: instructions\n  sources: [en]\n  budget: 8\n  data: {empty}\n"
        "  mixture:\n    - {task: xnli, share: 0.5, template: xnli/en-instruct}\n",
        encoding="utf-8",
    )
    result = cli("build", "--recipe", recipe, "--out", tmp_path / "y")
    assert_one_line_error(result, "data.mixture.0.data: no file for xnli/en/")


def test_the_section_7_recipes_plan(cli) -> None:
    root = Path(__file__).resolve().parents[1] / "recipes" / "paper"
    result = cli("run", root / "bactrianx-all-combinations.yaml", "--dry-run")
    assert result.code == 0, result.err
    assert "all 35 runs" in result.out and "MSLT ar+de+en" in result.out
    result = cli("run", root / "bactrianx-criteria.yaml", "--dry-run")
    assert result.code == 0, result.err
    assert "select size k=3" in result.out and "select l2v-syntax" in result.out
    from mslt_it.recipes import load_recipe

    recipe = load_recipe(root / "bactrianx-all-combinations.yaml")
    assert recipe.train.lora["r"] == 64 and recipe.train.lora["target_modules"] == [
        "query_key_value"
    ]
    assert recipe.train.sft["max_steps"] == 5000 and recipe.train.max_length == 512
    assert recipe.eval.suite == ["xcopa-lm-eval", "xstorycloze-lm-eval", "xwinograd-lm-eval"]
    assert len(load_recipe(root / "bactrianx-small.yaml").runs) == 36


def test_a_synthetic_instruction_adapter_beats_the_base_on_held_out_rows(
    cli, tiny_model_dir, tmp_path: Path
) -> None:
    """Trained on synthetic Bactrian-X-style instructions (the user-files path), measured on
    held-out rows: teacher-forced accuracy on the answer tokens, against the base model on the
    same tokens. (Generation on the random tiny base stays at 0 exact match: copying words needs
    a pre-trained base.)"""
    for split, n, stream in (("train", 1500, "train"), ("test", 60, "heldout")):
        rows = [bactrianx_row("en", stream, i) for i in range(n)]
        write_jsonl(tmp_path / "data" / "instructions" / "en" / f"{split}.jsonl", rows)
    for split, budget in (("train", 1200), ("test", 60)):
        result = cli("build", "--task", "instructions", "--sources", "en", "--budget", budget,
                     "--split", split, "--data", tmp_path / "data",
                     "--out", tmp_path / split)  # fmt: skip
        assert result.code == 0, result.err
    result = cli("train", "--model", tiny_model_dir, "--dataset", tmp_path / "train",
                 "--eval-dataset", tmp_path / "test", "--out", tmp_path / "adapter",
                 "--lora-r", "16", "--lora-alpha", "32", "--lora-dropout", "0",
                 "--lora-target", "all-linear", "--learning-rate", "3e-3", "--max-steps", "150",
                 "--batch-size", "8", "--max-length", "256",
                 "--sft", "lr_scheduler_type=cosine", "--sft", "warmup_steps=10")  # fmt: skip
    assert result.code == 0, result.err
    run = json.loads((tmp_path / "adapter" / "run.json").read_text(encoding="utf-8"))
    assert run["answer_metrics_on"] == "eval_dataset"
    assert run["base_answer_token_accuracy"] < 0.05  # measured: 0.000
    assert run["answer_token_accuracy"] > 0.15  # measured: 0.270
