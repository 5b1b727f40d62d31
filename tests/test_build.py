"""`mslt-it build`: mixtures, budgets, determinism, manifests and clean failures."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest
from conftest import assert_one_line_error

from mslt_it.config import DataConfig
from mslt_it.data import build_dataset, plan_quotas, split_by_largest_remainder
from mslt_it.errors import MsltError

BASE = ["build", "--task", "xnli", "--data", "synthetic"]


def read_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_build_splits_the_total_budget_equally(cli, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = cli(*BASE, "--sources", "en,de,zh", "--budget", "300", "--out", out)
    assert result.code == 0, result.err
    dataset = datasets.load_from_disk(str(out))
    assert Counter(dataset["lang"]) == {"en": 100, "de": 100, "zh": 100}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"en": 100, "de": 100, "zh": 100}
    assert manifest["template"]["id"] == "xnli/en-instruct"
    assert {"datasets", "transformers", "python"} <= set(manifest["versions"])
    example = dataset[0]
    assert (
        example["prompt"][0]["role"] == "user" and example["completion"][0]["role"] == "assistant"
    )
    assert example["completion"][0]["content"] == example["label"]
    assert {"task", "lang", "template_id", "id"} <= set(example)


def test_same_inputs_give_the_same_bytes_and_another_seed_another_sample(cli, tmp_path) -> None:
    args = [*BASE, "--sources", "en,sw", "--budget", "200"]
    assert cli(*args, "--out", tmp_path / "a").code == 0
    assert cli(*args, "--out", tmp_path / "b").code == 0
    assert cli(*args, "--seed", "1", "--out", tmp_path / "c").code == 0
    assert read_bytes(tmp_path / "a") == read_bytes(tmp_path / "b")
    manifests = [json.loads((tmp_path / n / "manifest.json").read_text()) for n in "ac"]
    assert manifests[0]["fingerprint"] != manifests[1]["fingerprint"]
    ids = [set(datasets.load_from_disk(str(tmp_path / n))["id"]) for n in "ac"]
    assert ids[0] != ids[1]


def test_single_and_multi_source_runs_see_the_same_amount_of_data(tmp_path: Path) -> None:
    single = build_dataset(DataConfig(task="xnli", sources=["en"], budget=90), tmp_path / "s")
    multi = build_dataset(
        DataConfig(task="xnli", sources=["en", "de", "ar"], budget=90), tmp_path / "m"
    )
    assert single.manifest["num_examples"] == multi.manifest["num_examples"] == 90


def test_budget_modes() -> None:
    available = {"en": 1000, "de": 100, "sw": 10}
    per_language = DataConfig(
        task="xnli", sources=list(available), budget=5, budget_mode="per_language"
    )
    assert plan_quotas(available, per_language) == {"en": 5, "de": 5, "sw": 5}
    temperature = DataConfig(
        task="xnli", sources=list(available), budget=100, budget_mode="temperature", temperature=2
    )
    quotas = plan_quotas(available, temperature)
    assert sum(quotas.values()) == 100
    # share ∝ rows^(1/T): sqrt(1000) : sqrt(100) : sqrt(10) -> 70.6, 22.3, 7.1 of 100
    assert quotas == {"en": 71, "de": 22, "sw": 7}


def test_temperature_sampling_that_starves_a_source_is_an_error() -> None:
    """A source language given no examples is not a source: the run would be another one."""
    starving = DataConfig(
        task="xnli", sources=["en", "de"], budget=10, budget_mode="temperature", temperature=1
    )
    with pytest.raises(MsltError, match="gives de none of the 10 examples") as caught:
        plan_quotas({"en": 1000, "de": 3}, starving)
    assert "\n" not in str(caught.value)
    raised = starving.model_copy(update={"temperature": 100.0, "budget": 6})
    assert plan_quotas({"en": 1000, "de": 3}, raised) == {"en": 3, "de": 3}


def test_largest_remainder_split_adds_up_exactly() -> None:
    for total in (1, 7, 100, 1001):
        shares = split_by_largest_remainder(total, np.ones(3))
        assert sum(shares) == total and max(shares) - min(shares) <= 1


def test_too_few_rows_is_an_error_unless_taking_what_there_is(cli, tmp_path: Path) -> None:
    args = ["build", "--task", "xnli", "--sources", "en,de", "--split", "validation"]
    failed = cli(*args, "--budget", "6000", "--out", tmp_path / "x")
    assert_one_line_error(failed, "has only 2490 usable rows", "--take-available")
    assert not (tmp_path / "x").exists()
    taken = cli(*args, "--budget", "6000", "--take-available", "--out", tmp_path / "y")
    assert taken.code == 0
    assert json.loads((tmp_path / "y/manifest.json").read_text())["counts"] == {
        "en": 2490,
        "de": 2490,
    }


def test_messages_format_and_in_language_template(cli, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = cli(
        *BASE, "--sources", "de,ru", "--budget", "20", "--format", "messages",
        "--template", "xnli/native", "--out", out,
    )  # fmt: skip
    assert result.code == 0, result.err
    example = datasets.load_from_disk(str(out))[0]
    assert [m["role"] for m in example["messages"]] == ["user", "assistant"]
    assert example["messages"][1]["content"] in {
        "ja",
        "vielleicht",
        "nein",
        "да",
        "возможно",
        "нет",
    }


def test_wikiann_answers_use_the_span_format(tmp_path: Path) -> None:
    result = build_dataset(
        DataConfig(task="wikiann", sources=["en", "ar"], budget=200), tmp_path / "w"
    )
    answers = [e["completion"][0]["content"] for e in datasets.load_from_disk(str(result.path))]
    assert "None" in answers
    with_entities = [a for a in answers if a != "None"]
    assert with_entities and all(
        part.split(": ", 1)[0] in {"PER", "ORG", "LOC"}
        for a in with_entities
        for part in a.split(" $$ ")
    )


def test_recipe_data_section_with_options_overriding(cli, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data:\n  task: pawsx\n  sources: [en, ja]\n  budget: 40\n  seed: 3\n")
    result = cli("build", "--recipe", recipe, "--budget", "20", "--out", tmp_path / "ds")
    assert result.code == 0, result.err
    manifest = json.loads((tmp_path / "ds/manifest.json").read_text())
    assert manifest["counts"] == {"en": 10, "ja": 10} and manifest["seed"] == 3


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--task", "xnl", "--sources", "en", "--budget", "9"], ["unknown task 'xnl'", "xnli"]),
        (["--task", "xnli", "--sources", "en,xx", "--budget", "9"], ["no language 'xx'", "ar, bg"]),
        (["--task", "pawsx", "--sources", "en,sw", "--budget", "9"], ["no language 'sw'"]),
        (["--task", "xnli", "--sources", "en", "--budget", "0"], ["budget: must be > 0, got 0"]),
        (["--task", "xnli", "--sources", "en", "--budget", "-4"], ["budget: must be > 0, got -4"]),
        (  # it named "(top level)", not the budget
            ["--task", "xnli", "--sources", "en,de", "--budget", "1"],
            ["error: --budget: 1 cannot give each of the 2 sources"],
        ),
        (
            ["--task", "xnli", "--sources", "en,de,en", "--budget", "9"],
            ["duplicate source", "'en'"],
        ),
        (
            ["--task", "xnli", "--sources", "en", "--budget", "9", "--split", "dev"],
            ["no split 'dev'"],
        ),
        (
            ["--task", "xnli", "--sources", "en", "--budget", "9", "--template", "x/y"],
            ["unknown id"],
        ),
        (
            ["--task", "xnli", "--sources", "en", "--budget", "9", "--template", "pawsx/native"],
            ["is a pawsx template, not xnli"],
        ),
        (
            ["--task", "xnli", "--sources", "en", "--budget", "9", "--budget-mode", "all"],
            ["--budget-mode", "'all'"],
        ),
        (  # it was ignored without a word
            ["--task", "xnli", "--sources", "en", "--budget", "9", "--temperature", "2"],
            ["--temperature: 2.0 is read only with budget_mode temperature", "is 'total'"],
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(cli, tmp_path, args, fragments) -> None:
    out = tmp_path / "ds"
    assert_one_line_error(cli("build", *args, "--out", out), *fragments)
    assert list(tmp_path.iterdir()) == []


def test_a_local_file_missing_a_column_fails_cleanly(cli, tmp_path: Path) -> None:
    folder = tmp_path / "data" / "xnli" / "en"
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text('{"premise": "a", "label": 0}\n')
    out = tmp_path / "ds"
    result = cli(
        *BASE[:3], "--data", tmp_path / "data", "--sources", "en", "--budget", "1", "--out", out
    )
    assert_one_line_error(result, "missing column 'hypothesis'", "train.jsonl")
    assert not out.exists()


def utf16_file(folder: Path) -> None:
    text = '{"premise": "a", "hypothesis": "b", "label": 0}\n'
    (folder / "train.jsonl").write_bytes(text.encode("utf-16"))


def huge_label_file(folder: Path) -> None:
    (folder / "train.jsonl").write_text(
        f'{{"premise": "a", "hypothesis": "b", "label": {"9" * 501}}}\n'
    )


def parquet_with_a_column_twice(folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = ["premise", "premise", "hypothesis", "label"]
    table = pa.table(
        [pa.array(["a"]), pa.array(["c"]), pa.array(["b"]), pa.array([0])], names=names
    )
    pq.write_table(table, folder / "train.parquet")


@pytest.mark.parametrize(
    ("write", "said"),
    [
        (utf16_file, "line 1 is not UTF-8 text (byte 0xff)"),  # it named a newline's byte
        (huge_label_file, "label too large a number (read as infinite)"),  # it said "label inf"
        (parquet_with_a_column_twice, "column 'premise' appears 2 times"),  # pyarrow's words
    ],
)
def test_a_local_file_is_named_for_what_is_wrong_in_it(cli, tmp_path: Path, write, said) -> None:
    folder = tmp_path / "data" / "xnli" / "en"
    folder.mkdir(parents=True)
    write(folder)
    out = tmp_path / "ds"
    result = cli(
        *BASE[:3], "--data", tmp_path / "data", "--sources", "en", "--budget", "1", "--out", out
    )
    assert_one_line_error(result, said)
    assert not out.exists()


def test_an_existing_output_folder_is_kept_unless_overwritten(cli, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    args = [*BASE, "--sources", "en", "--budget", "10", "--out", out]
    assert cli(*args).code == 0
    assert_one_line_error(cli(*args), "already exists", "--overwrite")
    assert cli(*args, "--seed", "5", "--overwrite").code == 0
    assert json.loads((out / "manifest.json").read_text())["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_overwrite_is_advised_only_where_it_would_replace(
    cli, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """A folder of the user's, or an output of another kind, was told to pass --overwrite,
    which then refused it: the reason is said at once."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("n")
    ours = tmp_path / "ours"
    assert cli(*BASE, "--sources", "en", "--budget", "10", "--out", ours).code == 0
    (ours / "notes.txt").write_text("n")  # --overwrite stops at it: named first
    for out, said in (
        (mine, "did not write"),
        (tiny_model_dir, "holds an mslt-it model"),
        (ours, "holds 'notes.txt', which mslt-it did not write"),
    ):
        result = cli(*BASE, "--sources", "en", "--budget", "10", "--out", out)
        assert_one_line_error(result, said)
        assert "pass --overwrite" not in result.err


def test_token_statistics_per_language(cli, tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "ds"
    args = [*BASE, "--sources", "en,zh,hi", "--budget", "300", "--tokenizer", tiny_model_dir]
    result = cli(*args, "--max-length", "60", "--out", out)
    assert result.code == 0, result.err
    tokens = json.loads((out / "manifest.json").read_text())["tokens"]
    assert tokens["max_length"] == 60
    for lang in ("en", "zh", "hi"):
        stats = tokens["per_language"][lang]
        assert 0 < stats["mean"] <= stats["max"] and stats["total"] > 100 * 10
        assert 0 <= stats["over_max_length"] <= 100
    assert sum(s["over_max_length"] for s in tokens["per_language"].values()) > 0
    assert "mean tokens" in result.out


def test_error_messages_keep_their_brackets(cli, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data:\n  task: xnli\n  sources: [en]\n  budget: [3]\n")
    result = cli("build", "--recipe", recipe, "--out", tmp_path / "ds")
    assert_one_line_error(result, "data.budget", "got [3]")


def test_arrow_table_falls_back_when_the_sample_misses_a_type() -> None:
    from mslt_it.data import arrow_table

    examples = [{"a": None, "b": [1]}] * 300 + [{"a": "late", "b": [2, 3]}]
    table = arrow_table(examples, sample=256)
    assert table.column("a").type == "string" and table.to_pylist() == examples


def test_rendering_reports_its_progress_within_a_language() -> None:
    """A slow template shows its pace as it goes, not only when a language is done."""
    from mslt_it.data import PROGRESS_EVERY, render_language
    from mslt_it.prompts import get_template
    from mslt_it.tasks import get_task
    from mslt_it.tasks.sources import open_split

    rows = open_split(get_task("xnli"), "en", "train", "synthetic").rows(list(range(250)))
    config = DataConfig(task="xnli", sources=["en"], budget=250)
    told: list[int] = []
    examples = render_language(config, get_template("xnli/en-instruct"), "en", rows, told.append)
    assert told == [PROGRESS_EVERY, PROGRESS_EVERY, 50] and len(examples) == 250


def test_an_empty_tokenizer_is_refused_not_ignored(cli, tmp_path) -> None:
    """``--tokenizer ''`` built the dataset without token statistics and said nothing."""
    result = cli("build", "--task", "xnli", "--sources", "en", "--budget", "4", "--data",
                 "synthetic", "--tokenizer", "", "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, "tokenizer", "at least 1 character")
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("part", ["instruction", "answer"])
def test_a_template_that_renders_empty_on_some_rows_is_refused(cli, tmp_path, part) -> None:
    """The load-time check renders the task's example row only: a template empty on every
    other row built a dataset of empty prompts or empty answers, exit 0."""
    empty_on_some = "{% if premise|length % 2 == 0 %}{% else %}VALUE{% endif %}"
    parts = {"instruction": "{{ premise }}", "answer": "{{ label_word }}"}
    parts[part] = empty_on_some.replace("VALUE", parts[part])
    folder = tmp_path / "prompts" / "xnli"
    folder.mkdir(parents=True)
    (folder / "some.yaml").write_text(
        "id: xnli/some\ntask: xnli\ndescription: empty on some rows\n"
        f'instruction: "{parts["instruction"]}"\nanswer: "{parts["answer"]}"\n'
        "verbalizers: {entailment: e, neutral: n, contradiction: c}\n"
    )
    out = tmp_path / "ds"
    result = cli("build", "--task", "xnli", "--sources", "en", "--budget", "30", "--data",
                 "synthetic", "--template", "xnli/some", "--prompts-dir", tmp_path / "prompts",
                 "--out", out)  # fmt: skip
    assert_one_line_error(result, f"some.yaml: {part} renders empty text on row 'xnli/en/train/")
    assert not out.exists()


@pytest.mark.parametrize(("budget", "sources"), [(20, ["de", "en"]), (41, ["de", "en", "zh"])])
def test_a_mixture_splits_the_total_budget_equally_between_languages(
    cli, tmp_path: Path, budget: int, sources: list[str]
) -> None:
    """Each part gave its odd examples to the first language: de 11, en 9 of 20."""
    recipe = tmp_path / "mix.yaml"
    recipe.write_text(
        f"data: {{task: bactrian-x, data: synthetic, budget: {budget}, sources: {sources}, "
        "mixture: [{task: xnli, share: 0.25}, {task: pawsx, share: 0.3}]}\n"
    )
    result = cli("build", "--recipe", recipe, "--out", tmp_path / "ds")
    assert result.code == 0, result.err
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    counts = manifest["counts"]
    assert sum(counts.values()) == budget and max(counts.values()) - min(counts.values()) <= 1
    for part in manifest["mixture"]:  # and each part as even as its own budget allows
        assert max(part["counts"].values()) - min(part["counts"].values()) <= 1


@pytest.mark.parametrize(("task", "split"), [("xwinograd", None), ("xcopa", "validation")])
def test_a_mixed_in_benchmark_never_defaults_to_its_evaluation_rows(
    cli, tmp_path: Path, task: str, split: str | None
) -> None:
    """A part without a split took the task's first: XWinograd's test split, the rows its
    suite evaluates, was trained on without a word."""
    recipe = tmp_path / "mix.yaml"
    recipe.write_text(
        "name: mix\ndata: {task: bactrian-x, data: synthetic, budget: 20, "
        f"mixture: [{{task: {task}, share: 0.25}}]}}\nsources: [[th, zh]]\n"
        "model: {name_or_path: mslt-it:tiny}\neval: {task: xnli, langs: [en]}\n"
    )
    result = cli("build", "--recipe", recipe, "--sources", "th,zh", "--out", tmp_path / "ds")
    dry = cli("run", recipe, "--dry-run")
    if split is None:
        for refused in (result, dry):
            assert_one_line_error(refused, f"{recipe}: data.mixture.0.split", "no train or")
        return
    assert result.code == 0, result.err
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["mixture"][1]["split"] == split


@pytest.mark.parametrize("share", ["0", "-0.5", ".nan", "'0.5'", "1.0"])
def test_a_recipes_bad_share_names_the_recipe_whatever_checks_it(
    cli, tmp_path: Path, share: str
) -> None:
    """A share the field's own bounds refuse named no file; one the mixture check refuses
    (1e-300) named the recipe."""
    recipe = tmp_path / "mix.yaml"
    recipe.write_text(
        "data: {task: bactrian-x, data: synthetic, budget: 20, sources: [en], "
        f"mixture: [{{task: xnli, share: {share}}}]}}\n"
    )
    result = cli("build", "--recipe", recipe, "--out", tmp_path / "ds")
    assert_one_line_error(result, f"{recipe}: data.mixture.0.share")
    typed = cli("build", "--recipe", recipe, "--budget", "0", "--out", tmp_path / "ds")
    assert_one_line_error(typed, "data.budget")  # typed here, not the recipe's
    assert str(recipe) not in typed.err


def test_script_mismatch_drop_without_a_corpus_is_refused_not_ignored(cli, tmp_path: Path) -> None:
    """It built XNLI as without it, and the manifest recorded `drop`."""
    build = ("build", "--sources", "en", "--budget", "10", "--script-mismatch", "drop")
    result = cli(*build, "--task", "xnli", "--out", tmp_path / "ds")
    assert_one_line_error(result, "--script-mismatch: drop leaves out rows of instruction corpora",
                          "xnli holds no corpus")  # fmt: skip
    assert not (tmp_path / "ds").exists()
    assert cli(*build, "--task", "bactrian-x", "--out", tmp_path / "corpus").code == 0
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "data: {task: xnli, data: synthetic, budget: 20, sources: [en], script_mismatch: drop}\n"
    )
    said = f"{recipe}: data.script_mismatch: drop"
    assert_one_line_error(cli("build", "--recipe", recipe, "--out", tmp_path / "r"), said)
    recipe.write_text(recipe.read_text().replace("drop}", "drop, mixture: [{task: bactrian-x, "
                                                 "share: 0.5}]}"))  # fmt: skip
    assert cli("build", "--recipe", recipe, "--out", tmp_path / "mixed").code == 0


def test_a_set_of_sources_is_one_dataset_however_it_is_typed(cli, tmp_path: Path) -> None:
    """``zh,de,en`` gave the odd example to zh and shuffled in another order than ``en,de,zh``:
    another dataset, fingerprint and training for the same set of languages."""
    manifests = []
    for order in ("en,de,zh", "zh,de,en"):
        out = tmp_path / order.replace(",", "")
        assert cli("build", "--task", "xnli", "--sources", order, "--budget", "100",
                   "--out", out).code == 0  # fmt: skip
        manifests.append(json.loads((out / "manifest.json").read_text()))
    assert manifests[0]["fingerprint"] == manifests[1]["fingerprint"]
    assert manifests[0]["counts"] == manifests[1]["counts"]


def test_a_dataset_smaller_than_its_budget_is_said(cli, tmp_path: Path) -> None:
    """``--take-available`` built 8 of a budget of 10 (de had 3 rows) and said nothing: runs
    compared at the same budget were not."""
    for lang, rows in (("en", 20), ("de", 3)):
        folder = tmp_path / "data" / "xnli" / lang
        folder.mkdir(parents=True)
        (folder / "train.jsonl").write_text("".join(
            json.dumps({"premise": f"p {lang} {i}", "hypothesis": f"h {i}", "label": i % 3}) + "\n"
            for i in range(rows)))  # fmt: skip
    build = ("build", "--task", "xnli", "--sources", "en,de", "--data", tmp_path / "data")
    result = cli(*build, "--budget", "10", "--take-available", "--out", tmp_path / "short")
    assert result.code == 0, result.err
    assert "8 examples of the 10 asked for" in " ".join(result.err.split())
    assert "de 3, en 5" in result.err
    whole = cli(*build, "--budget", "6", "--out", tmp_path / "whole")
    assert whole.code == 0 and "asked for" not in whole.err


def test_max_length_without_a_tokenizer_is_refused(cli, tmp_path: Path) -> None:
    """Nothing counts tokens without ``--tokenizer``: ``--max-length 5`` was recorded in the
    manifest and read by nothing."""
    out = tmp_path / "ds"
    result = cli(*BASE, "--sources", "en", "--budget", "3", "--max-length", "5", "--out", out)
    assert_one_line_error(result, "--max-length: read only with --tokenizer")
    assert not out.exists()


def test_an_empty_out_folder_keeps_its_permissions(cli, tmp_path: Path) -> None:
    """docs/outputs.md: an empty folder is used as it is. A folder the user made private came
    back as the umask makes folders (0755), and so did one replaced with --overwrite."""
    out = tmp_path / "private"
    out.mkdir(mode=0o700)
    out.chmod(0o2710)  # private to its owner, shared with its group, setgid
    args = [*BASE, "--sources", "en", "--budget", "4", "--out", out]
    assert cli(*args).code == 0
    assert (out / "manifest.json").is_file()
    assert oct(out.stat().st_mode & 0o7777) == oct(0o2710)
    assert cli(*args, "--seed", "1", "--overwrite").code == 0
    assert oct(out.stat().st_mode & 0o7777) == oct(0o2710)


def test_a_shared_out_folder_gives_its_group_to_the_files_in_it(cli, tmp_path: Path) -> None:
    """Files written inside a setgid folder take its group: the output, written aside and
    moved in, had the user's own group in every file and folder but the top one."""
    import grp
    import os

    others = [g.gr_gid for g in grp.getgrall() if g.gr_gid != os.getgid()]
    if os.geteuid() != 0 or not others:
        pytest.skip("needs a second group this user may give files (root here)")
    out = tmp_path / "shared"
    out.mkdir()
    os.chown(out, -1, others[0])
    out.chmod(0o2775)
    assert cli(*BASE, "--sources", "en", "--budget", "4", "--out", out).code == 0
    for path in [out, *out.rglob("*")]:
        if not path.is_symlink():
            assert path.stat().st_gid == others[0], path
            assert not path.is_dir() or path.stat().st_mode & 0o2000, path


def test_build_recipe_refuses_what_run_refuses_besides_missing_fields(cli, tmp_path: Path) -> None:
    """Only the data section was read: a typo elsewhere (a top-level ``prompts_dir``, meant
    for ``data:``) was ignored, and the build used other prompts than the user set."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("sources: [en]\nprompts_dir: [x]\ndata: {task: xnli, data: synthetic}\n")
    result = cli("build", "--recipe", recipe, "--budget", "5", "--out", tmp_path / "ds")
    assert_one_line_error(result, "r.yaml: prompts_dir: unknown field")
    recipe.write_text("sources: [en]\nmodel: 7\ndata: {task: xnli, data: synthetic}\n")
    result = cli("build", "--recipe", recipe, "--budget", "5", "--out", tmp_path / "ds")
    assert_one_line_error(result, "r.yaml: model")
    recipe.write_text(
        "sources: [en]\ntrain: {sft: {max_stepz: 1}}\ndata: {task: xnli, data: synthetic}\n"
    )
    result = cli("build", "--recipe", recipe, "--budget", "5", "--out", tmp_path / "ds")
    assert_one_line_error(result, "r.yaml: train.sft.max_stepz")
    recipe.write_text("sources: [en]\ndata: {task: xnli, data: synthetic}\n")  # no name, budget
    assert cli("build", "--recipe", recipe, "--budget", "5", "--out", tmp_path / "ds").code == 0
