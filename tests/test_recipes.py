"""Recipes: grid expansion, validation with one-line errors, plans that skip finished steps."""

from __future__ import annotations

import math
import shlex
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import assert_one_line_error

from mslt_it.errors import MsltError
from mslt_it.languages import get_language
from mslt_it.recipes import expand_sources, load_recipe

BROKEN = Path(__file__).parent / "broken_recipes"
POOL = ["ar", "de", "en", "es", "fr", "ru", "zh"]


def test_all_combinations_gives_the_papers_35_three_language_sets() -> None:
    runs = expand_sources({"all-combinations": {"pool": POOL, "k": 3}}, "xnli")
    assert len(runs) == 35
    assert len({run.run_id for run in runs}) == 35
    assert all(len(run.sources) == 3 and run.label.startswith("MSLT") for run in runs)


def test_explicit_lists_and_single_list() -> None:
    assert [r.run_id for r in expand_sources(["en", "de"], "xnli")] == ["de+en"]
    runs = expand_sources([["en"], ["zh", "ar", "en"], ["en"]], "xnli")
    assert [r.run_id for r in runs] == ["en", "ar+en+zh"]  # duplicates removed, order kept
    assert runs[0].label == "SSLT en" and runs[1].label == "MSLT ar+en+zh"


def test_select_and_sweep_k_use_the_selection_criteria() -> None:
    selected = expand_sources({"select": {"criterion": "script", "k": 3, "pool": POOL}}, "xnli")
    assert len(selected) == 1 and len(selected[0].sources) == 3
    scripts = {get_language(code).script for code in selected[0].sources}
    assert len(scripts) == 3  # the most writing systems three of these languages can have
    sweep = expand_sources(
        {"sweep-k": {"pool": POOL, "k": [1, 2, 4], "criterion": "script"}}, "xnli"
    )
    assert [len(r.sources) for r in sweep] == [1, 2, 4]


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ({"criterion": "learned"}, "criterion learned: needs predictor FILE"),
        ({"criterion": "coverage"}, "criterion coverage: needs tokenizer"),
        ({"criterion": "embedding"}, "criterion embedding: needs model"),
        ({"criterion": "l2v-custom"}, "needs vectors"),
        ({"criterion": "size", "size_model": "bloom"}, "pass size_missing last"),
        (  # the command line refused these together; a recipe ranked by its vectors unsaid
            {"criterion": "learned", "predictor": "p.json", "vectors": "v.csv"},
            "vectors: not with a predictor",
        ),
        (  # ignored without a word
            {"criterion": "l2v-syntax", "predictor": "p.json"},
            "predictor: read only by criterion learned or sslt-measured",
        ),
    ],
)
def test_select_errors_name_the_recipe_fields_not_the_command_line(entry: dict, said: str) -> None:
    """A recipe's user wrote fields: the selection code's ``--criterion``, ``--predictor`` and
    ``--tokenizer`` are said as the ``select:`` entry's field names."""

    body = {"k": 2, "pool": ["ar", "de", "en"]} | entry
    with pytest.raises(MsltError) as caught:
        expand_sources([{"select": body}], "xnli")
    message = str(caught.value)
    assert message.startswith("sources.0.select: ") and said in message
    assert " --" not in message.replace("select --fit --save", "")


def test_select_entries_take_the_tokenizer_model_and_vectors_select_takes(tmp_path: Path) -> None:
    """coverage, embedding and l2v-custom work from a recipe, mslt-it's own model names too."""
    pool = ["ar", "de", "en"]
    vectors = tmp_path / "v.csv"
    vectors.write_text("code,a,b\nar,1,0\nde,0,1\nen,1,1\n", encoding="utf-8")
    custom = expand_sources(
        [{"select": {"criterion": "l2v-custom", "k": 2, "pool": pool, "vectors": str(vectors)}}],
        "xnli",
    )
    assert custom[0].sources == ("ar", "de")  # the one pair at cosine distance 1
    for field, criterion in (("tokenizer", "coverage"), ("model", "embedding")):
        body = {"criterion": criterion, "k": 2, "pool": pool, field: "mslt-it:tiny-world"}
        assert len(expand_sources([{"select": body}], "xnli")[0].sources) == 2


EXPECTED = {
    "unknown-top-key.yaml": "trian: unknown field",
    "negative-budget.yaml": "data.budget: must be > 0, got -4",
    "budget-not-int.yaml": "data.budget: ",
    "unknown-data-key.yaml": "data.seeds: unknown field",
    "misspelt-key.yaml": "data.budgt: unknown field (a typo of 'budget'?)",
    "unknown-language.yaml": "no language 'xx'",
    "language-task-lacks.yaml": "task xnli has no language 'ja'",
    "k-larger-than-pool.yaml": "k = 3 is larger than the pool (2 languages)",
    "sweep-k-too-large.yaml": "k = 5 must be between 1 and the pool size 3",
    "unknown-grid.yaml": "expected one key of all-combinations, sweep-k, select",
    "missing-model.yaml": "model: required field is missing",
    "missing-model-name.yaml": "model.name_or_path: required field is missing",
    "unknown-task.yaml": "data.task: unknown task 'nli'",
    "unknown-template.yaml": "data.template: unknown id 'xnli/nope'",
    "not-yaml.yaml": "not valid YAML",
    "not-a-mapping.yaml": "expected a YAML mapping",
    "grid-too-large.yaml": "sources.all-combinations: C(37, 18) = ",
    "select-k-not-int.yaml": "sources.0.select.k: ",
    "sweep-k-not-int.yaml": "sources.sweep-k.k.1: ",
    "temperature-without-its-mode.yaml": "data.temperature: 2 is read only with budget_mode temp",
    "train-max-length-a-boolean.yaml": "train.max_length: input should be a valid integer, got Tr",
    "scheduler-argument-unknown.yaml": "train.sft.lr_scheduler_kwargs: lr_scheduler_type 'cosine' "
    "has no argument 'num_cycle'; it takes only num_cycles",
    "scheduler-argument-not-a-number.yaml": "train.sft.lr_scheduler_kwargs: lr_scheduler_type "
    "'cosine': num_cycles must be a finite number, got 'abc'",
    "sft-key-a-number.yaml": "train.sft: key 5 is not a name of a field of SFTConfig",
    "lora-key-a-boolean.yaml": "train.lora: key true is not a name of a field of LoraConfig",
    "key-a-list.yaml": "not valid YAML: a key is a list or a mapping; keys are names (line 2",
    "output-dir-empty.yaml": "output_dir: an empty path; give a folder",
    "top-key-null.yaml": "(top level): key null is not a name (YAML reads true, false, null",
    "data-key-a-boolean.yaml": "data: key true is not a name",
    # a field of TRL's or PEFT's config one level too high: "unknown field (a typo?)"
    "sft-field-under-train.yaml": "train.max_steps: a field of SFTConfig; write it under "
    "train.sft.max_steps",
    "lora-field-under-train.yaml": "train.lora_alpha: a field of LoraConfig; write it under "
    "train.lora.lora_alpha",
    "owned-field-under-train.yaml": "train.trust_remote_code: set by mslt-it (use "
    "model.trust_remote_code)",
    # a watch's split and rows: found by the dry run, not after the first build
    "watch-split-missing.yaml": "train.watch.0.split: task xnli has no split 'dev'",
    "watch-folder-missing.yaml": "train.watch.0.data: 'no-such-folder' is not a folder",
    "watch-no-synthetic-rows.yaml": "train.watch.0.data: task belebele has no synthetic rows",
    # found at load, not once the first dataset was built or every adapter trained
    "sft-bf16-and-fp16.yaml": "train.sft: bf16 and fp16 are both true",
    "eval-template-not-the-trained-one.yaml": "eval.template: 'xnli/native' is not the template "
    "the adapters are trained with ('xnli/en-instruct', data.template); set "
    "eval.allow_template_mismatch: true",
    # YAML 1.2: 2_4 is text (YAML 1.1 read it as 24, and 024 as octal 20)
    "budget-octal-style.yaml": "data.budget: input should be a valid integer, got '2_4'",
    "chat-template-file-missing.yaml": "model.chat_template: no such file 'no-such-template.jinja'",
    "tensor-parallel-with-hf.yaml": "eval.tensor_parallel_size: applies to backend vllm only",
}


def test_the_broken_corpus_is_fully_covered() -> None:
    assert sorted(p.name for p in BROKEN.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_broken_recipe_gives_its_one_line_error(cli, name: str) -> None:
    result = cli("run", BROKEN / name, "--dry-run")
    assert_one_line_error(result, EXPECTED[name])


def test_a_missing_recipe_file_is_named(cli, tmp_path: Path) -> None:
    assert_one_line_error(cli("run", tmp_path / "nope.yaml"), "no such file", "nope.yaml")


def write_recipe(tmp_path: Path, sources: str = "[[en], [de, en]]", budget: int = 30) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(
        f"name: t\noutput_dir: {tmp_path / 'out'}\n"
        f"data: {{task: xnli, budget: {budget}, data: synthetic}}\n"
        f"model: {{name_or_path: mslt-it:tiny}}\nsources: {sources}\n"
        "eval: {task: xnli, langs: [en]}\n"
    )
    return path


def test_dry_run_shows_the_plan_and_runs_nothing(cli, tmp_path: Path) -> None:
    result = cli("run", write_recipe(tmp_path), "--dry-run")
    assert result.code == 0, result.err
    for fragment in ("SSLT en", "MSLT de+en", "build", "train", "eval", "report", "todo"):
        assert fragment in result.out
    # the tiny model is a step of its own, which the table of runs has no row for
    assert f"(made once into {tmp_path / 'out' / 'tiny-model'}: todo)" in result.out.replace(
        "\n", ""
    )
    assert not (tmp_path / "out").exists()


def test_dry_run_says_a_device_vllm_does_not_read(cli, tmp_path: Path) -> None:
    """The evaluation said it when it ran; the dry run, which is for such news, did not."""
    path = write_recipe(tmp_path)
    text = path.read_text()
    path.write_text(text.replace("langs: [en]}", "langs: [en], backend: vllm, device: cuda:1}"))
    result = cli("run", path, "--dry-run")
    assert result.code == 0, result.err
    assert "eval.device 'cuda:1' is read by backend hf only" in " ".join(result.err.split())
    path.write_text(text.replace("langs: [en]}", "langs: [en], device: cpu}"))
    assert "eval.device" not in cli("run", path, "--dry-run").err


def test_compare_models_adds_a_compare_step(tmp_path: Path) -> None:
    from mslt_it.runner import make_plan

    path = write_recipe(tmp_path)
    path.write_text(
        path.read_text().replace("langs: [en]}", "langs: [en], compare_models: [org/other]}")
    )
    steps = make_plan(load_recipe(path)).steps
    compare = [s for s in steps if s.name == "compare"]
    assert len(compare) == 1 and compare[0].output == tmp_path / "out" / "models"
    assert compare[0].status() == "todo" and steps[-1].name == "report"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("name_or_path: mslt-it:tiny}", "name_or_path: mslt-it:tiny-wrld}", "model.name_or_path"),
        ("langs: [en]}", "langs: [en], compare_models: [mslt-it:big]}", "eval.compare_models"),
    ],
)
def test_an_unknown_mslt_it_model_fails_before_anything_runs(
    cli, tmp_path: Path, old: str, new: str, field: str
) -> None:
    """A misspelt named model is caught with the recipe, not after the first run's data."""
    path = write_recipe(tmp_path)
    path.write_text(path.read_text().replace(old, new))
    result = cli("run", path)
    assert_one_line_error(result, field, "not one of mslt-it's models", "mslt-it:tiny-world")
    assert not (tmp_path / "out").exists()


def test_a_lora_target_the_model_lacks_is_named_before_any_dataset_is_built(
    cli, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """It was found when the first training started, after every build (hours, on a corpus).
    A dotted name is matched as PEFT matches it, by its whole end (``nope.q_proj`` passed
    because its last part was a module's)."""
    path = write_recipe(tmp_path)
    text = path.read_text().replace("mslt-it:tiny}", f"{tiny_model_dir}}}")
    for target in ("qv_proj", "nope.q_proj", "model.layers.99.self_attn.q_proj"):
        path.write_text(text + f"train: {{lora: {{target_modules: [q_proj, {target}]}}}}\n")
        result = cli("run", path)
        assert_one_line_error(result, f"{target} is not a linear module", "q_proj")
        assert not (tmp_path / "out" / "data").exists()


def test_build_steps_are_skipped_when_their_inputs_are_unchanged(tmp_path: Path) -> None:
    from mslt_it.runner import make_plan

    recipe = load_recipe(write_recipe(tmp_path))
    plan = make_plan(recipe)
    builds = [s for s in plan.steps if s.name == "build"]
    trains = [s for s in plan.steps if s.name == "train"]
    assert [s.status() for s in builds] == ["todo", "todo"]
    assert [s.status() for s in trains] == ["waiting", "waiting"]
    for step in builds:
        step.execute()
        step.mark_done(step.input_hash())
    assert [s.status() for s in make_plan(load_recipe(write_recipe(tmp_path))).steps[:2]] == [
        "done",
        "todo",
    ]
    changed = make_plan(load_recipe(write_recipe(tmp_path, budget=60)))
    assert changed.steps[0].status() == "stale"


def test_emit_slurm_writes_one_array_task_per_run(cli, tmp_path: Path, monkeypatch) -> None:
    script = tmp_path / "job.sh"
    sources = "{all-combinations: {pool: [ar, de, en, es], k: 2}}"
    result = cli("run", write_recipe(tmp_path, sources), "--emit-slurm", script)
    assert result.code == 0, result.err
    text = script.read_text()
    assert "#SBATCH --array=0-5" in text
    assert "--only" in text and "ar+de" in text and "es+en" not in text
    # The printed command can be pasted into a shell, whatever the script is called.
    spaced = tmp_path / "my job.sh"
    result = cli("run", write_recipe(tmp_path, sources), "--emit-slurm", spaced)
    assert result.code == 0, result.err
    assert f"sbatch '{spaced}'" in result.out.replace("\n", "")
    monkeypatch.chdir(tmp_path)
    dashed = cli("run", write_recipe(tmp_path, sources), "--emit-slurm=-job.sh")
    assert dashed.code == 0, dashed.err
    assert "sbatch ./-job.sh" in dashed.out


def test_an_output_dir_of_other_outputs_is_named_for_what_it_holds(cli, tmp_path) -> None:
    """An experiment's adapters/ as another's output_dir was said to hold "files that mslt-it
    did not write": they are mslt-it's adapters; the folder lacks an experiment's marker."""
    from mslt_it.outputs import mark_owner

    adapters = tmp_path / "adapters"
    (adapters / "en").mkdir(parents=True)
    (adapters / "en" / "run.json").write_text("{}")
    mark_owner(adapters / "en", "adapter", patterns=("run.json",))
    recipe = write_recipe(tmp_path)
    result = cli("run", recipe, "--out", adapters, "--dry-run")
    assert_one_line_error(result, "did not write as an experiment (no experiment's", "choose")
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "manifest.json").write_text("{}")
    mark_owner(tmp_path / "ds", "dataset", patterns=("manifest.json",))
    result = cli("run", recipe, "--out", tmp_path / "ds", "--dry-run")
    assert_one_line_error(result, "holds an mslt-it dataset, not an experiment of a recipe")


def test_a_recipes_tokenizer_is_checked_with_the_recipe(cli, tmp_path, monkeypatch) -> None:
    """data.tokenizer was read first by a build: a misspelt one passed the dry run, and its
    error lacked the recipe and the field. A named one is no input a dry run makes."""
    monkeypatch.setenv("MSLT_IT_CACHE", str(tmp_path / "cache"))
    recipe = write_recipe(tmp_path)
    text = recipe.read_text()
    for name, said in (
        ("mslt-it:tinny", "data.tokenizer: 'mslt-it:tinny' is not one of mslt-it's models"),
        ("foo bar", "data.tokenizer: 'foo bar' is neither a folder here nor a Hub id"),
    ):
        recipe.write_text(text.replace("data: {", f"data: {{tokenizer: '{name}', "))
        assert_one_line_error(cli("run", recipe, "--dry-run"), str(recipe), said)
    recipe.write_text(text.replace("data: {", "data: {tokenizer: 'mslt-it:tiny-world', "))
    planned = cli("run", recipe, "--dry-run")
    assert planned.code == 0, planned.err
    assert not (tmp_path / "cache" / "models").exists()  # it showed the plan and stopped


def test_a_slurm_task_works_where_its_script_was_written(cli, tmp_path, monkeypatch) -> None:
    """A recipe's relative paths (data, tasks_dir, output_dir) are read from the working folder:
    a script submitted from another folder ran its tasks there, on other data."""
    import os
    import subprocess

    written_in = tmp_path / "project"
    written_in.mkdir()
    monkeypatch.chdir(written_in)
    assert cli("run", write_recipe(tmp_path), "--emit-slurm", "job.sh").code == 0
    stubs = tmp_path / "bin"
    stubs.mkdir()
    stub = stubs / "mslt-it"
    stub.write_text(f"#!/bin/sh\npwd > {tmp_path / 'where'}\n")
    stub.chmod(0o755)
    script = written_in / "job.sh"  # its tasks run the Python that wrote it: the stub instead
    program = f"{shlex.quote(str(Path(sys.executable).absolute()))} -m mslt_it"
    script.write_text(script.read_text().replace(program, str(stub)))
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "1"}
    elsewhere = tmp_path / "submitted-from"
    elsewhere.mkdir()
    done = subprocess.run(["bash", str(script)], cwd=elsewhere, env=env)
    assert done.returncode == 0
    assert (tmp_path / "where").read_text().strip() == str(written_in)


def test_out_replaces_the_recipes_output_folder(cli, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    plan = cli("run", recipe, "--out", elsewhere, "--dry-run")
    assert plan.code == 0, plan.err
    assert str(elsewhere) in plan.out.replace("\n", "").replace(" ", "").replace("│", "")
    assert load_recipe(recipe, output_dir=elsewhere).output_dir == elsewhere
    assert load_recipe(recipe).output_dir == tmp_path / "out"
    script = tmp_path / "job.sh"
    assert cli("run", recipe, "--out", elsewhere, "--emit-slurm", script).code == 0
    assert f"--out {elsewhere.resolve()}" in script.read_text()  # every array task writes there
    assert not elsewhere.exists() and not (tmp_path / "out").exists()


def test_a_recipes_folders_and_tasks_are_named_as_the_recipe_writes_them(
    cli, tmp_path: Path
) -> None:
    """A recipe's errors named options `run` does not have (--tasks-dir, prompts-dir), and a
    bad data.prompts_dir was blamed on the first mixture entry, which has no such field."""
    recipe = write_recipe(tmp_path)
    text = recipe.read_text()
    recipe.write_text(text.replace("task: xnli, budget", "task: nosuch, budget"))
    assert_one_line_error(cli("run", recipe, "--dry-run"), "data.task", "'nosuch'",
                          "tasks_dir: [DIR] in a recipe")  # fmt: skip
    missing = tmp_path / "nowhere"
    mixed = text.replace(
        "data: synthetic}",
        f"data: synthetic, prompts_dir: [{missing}], mixture: [{{task: pawsx, share: 0.5}}]}}",
    )
    recipe.write_text(mixed)
    result = cli("run", recipe, "--dry-run")
    assert_one_line_error(result, "data.prompts_dir: ", str(missing), "not a directory")
    assert "mixture" not in result.err
    recipe.write_text(f"tasks_dir: [{missing}]\n{text}")
    assert_one_line_error(cli("run", recipe, "--dry-run"), "tasks_dir: ", str(missing))
    # a broken definition in tasks_dir is named by its file (it read "data./…/weird.yaml: …")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    broken = Path(__file__).parent / "broken_tasks" / "bad-variable.yaml"
    (tasks / "bad-variable.yaml").write_text(broken.read_text())
    recipe.write_text(f"tasks_dir: [{tasks}]\n{text}")
    result = cli("run", recipe, "--dry-run")
    assert_one_line_error(result, f"{recipe}: {tasks / 'bad-variable.yaml'}: variables.text")
    assert "data./" not in result.err


def test_only_an_unknown_run_is_an_error(cli, tmp_path: Path) -> None:
    assert_one_line_error(
        cli("run", write_recipe(tmp_path), "--only", "fr"), "no run 'fr'", "de+en"
    )


def test_criteria_table_ranks_the_largest_grid_among_runs_of_several_sizes(tmp_path: Path) -> None:
    """A study with single sources and a k-sweep beside the 35 three-language sets still gets
    its criteria table, over the 35."""
    import itertools

    from mslt_it.report import criteria_section
    from mslt_it.report_results import Results, Score

    pool = ["ar", "de", "en", "es", "fr", "ru", "zh"]
    sets = [(lang,) for lang in pool] + list(itertools.combinations(pool, 3)) + [pool[:4]]
    scores = []
    for number, sources in enumerate(sets):
        for lang in ["bg", "sw", *sources]:
            value = 40.0 + number % 17
            scores.append(Score(run=f"r{number}", sources=tuple(sources), task="xnli", lang=lang,
                                metric="accuracy", score=value, low=value, high=value, n=10,
                                invalid_rate=0.0, is_source=lang in sources))  # fmt: skip
    text = criteria_section(Results(scores, True, []), tmp_path)
    assert "of 35" in text and "l2v-syntax" in text
    assert (tmp_path / "criteria.md").is_file()


def test_criteria_table_scores_the_runs_of_one_source_beside_the_criteria(tmp_path: Path) -> None:
    """Where the study ran each source alone, the table has a row sslt-measured: each set
    scored by its sources' mean score alone on its non-source languages. Here the sets score
    exactly that (plus a constant), so that row must rank them perfectly; without a run of
    one source the row is left out."""
    import itertools

    from mslt_it.report import criteria_section
    from mslt_it.report_results import Results, Score

    pool = ["ar", "de", "en", "es", "fr", "ru", "zh"]
    targets = ["bg", "sw", "ur"]
    rng = np.random.default_rng(0)
    alone = {(s, t): float(rng.uniform(30, 90)) for s in pool for t in targets}

    def score(run: str, sources: tuple[str, ...], lang: str, value: float) -> Score:
        return Score(run=run, sources=sources, task="xnli", lang=lang, metric="accuracy",
                     score=value, low=value, high=value, n=10, invalid_rate=0.0,
                     is_source=lang in sources)  # fmt: skip

    def study(singles: list[str]) -> list[Score]:
        scores = [score(f"SSLT {s}", (s,), t, alone[(s, t)]) for s in singles for t in targets]
        for sources in itertools.combinations(pool, 3):
            run = "+".join(sources)
            scores += [
                score(run, sources, t, 5 + float(np.mean([alone[(s, t)] for s in sources])))
                for t in targets
            ]
        return scores

    text = criteria_section(Results(study(pool), True, []), tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| sslt-measured |"))
    assert "| 1 of 35 |" in row and "+1.000" in row
    assert "runs of one source" in text
    missing_one = criteria_section(Results(study(pool[1:]), True, []), tmp_path)
    row = next(line for line in missing_one.splitlines() if line.startswith("| sslt-measured |"))
    assert row.endswith("| 20 |") and "ar" not in row.split("|")[2]  # C(6,3) sets without ar
    none = criteria_section(Results(study([]), True, []), tmp_path)
    assert "sslt-measured" not in none


def test_a_report_of_several_evaluation_tasks_has_a_section_each(tmp_path: Path) -> None:
    """After one training run evaluated on XCOPA and XStoryCloze (languages shared): a section,
    tables and plots per task, where one table would have had two scores in a cell."""
    from mslt_it.report import _write
    from mslt_it.report_results import Results, Score

    scores = []
    for run, sources in (("SSLT en", ("en",)), ("MSLT ar+en+zh", ("ar", "en", "zh"))):
        for task, langs in (("xcopa", ["sw", "zh", "id"]), ("xstorycloze", ["sw", "zh", "en"])):
            for number, lang in enumerate(langs):
                value = 50.0 + number + len(sources)
                scores.append(Score(run=run, sources=sources, task=task, lang=lang,
                                    metric="accuracy", score=value, low=value - 5,
                                    high=value + 5, n=100, invalid_rate=0.0,
                                    is_source=lang in sources))  # fmt: skip
    report = _write(Results(scores, True, []), tmp_path / "report", recipe=None)
    text = report.read_text(encoding="utf-8")
    assert "# xcopa" in text and "# xstorycloze" in text and "SYNTHETIC" in text
    for task in ("xcopa", "xstorycloze"):
        assert (tmp_path / "report" / task / "heatmap.png").is_file()
        assert f"]({task}/heatmap.png)" in text
        assert (tmp_path / "report" / task / "report.md").is_file()
    assert len((tmp_path / "report" / "scores.csv").read_text().splitlines()) == 13


def test_settings_added_later_leave_finished_steps_done_while_at_their_defaults() -> None:
    """A recipe run before `mixture` and `script_mismatch` existed keeps its build hashes."""
    from mslt_it.config import DataConfig
    from mslt_it.runner import hashed_settings

    plain = DataConfig(task="xnli", sources=["en"], budget=4)
    assert not {"mixture", "script_mismatch"} & set(hashed_settings(plain))
    dropped = plain.model_copy(update={"script_mismatch": "drop"})
    assert hashed_settings(dropped)["script_mismatch"] == "drop"


def test_what_the_run_would_refuse_is_the_only_line_even_in_a_dry_run(cli, tmp_path) -> None:
    recipe = write_recipe(tmp_path)
    result = cli("run", recipe, "--only", "fr")
    assert_one_line_error(result, "--only")
    assert result.out == ""  # the plan is not printed before the error
    result = cli("run", recipe, "--dry-run", "--out", tmp_path)  # holds the recipe: an input
    assert_one_line_error(result, "output_dir (or --out)", "contains the input")
    assert result.out == ""
    script = tmp_path / "job.sh"
    assert_one_line_error(cli("run", recipe, "--emit-slurm", script, "--only", "en"), "--only")
    assert_one_line_error(cli("run", recipe, "--emit-slurm", script, "--dry-run"), "--dry-run")
    assert not script.exists()
    assert cli("run", recipe, "--emit-slurm", script).code == 0
    assert str(recipe.resolve()) in script.read_text()  # a job starts in another folder


def test_the_reports_identity_holds_what_it_prints_of_the_recipe(tmp_path: Path) -> None:
    """report.md prints the recipe's name, path and description: a new description left the
    old one in a report the plan called done."""
    import json

    from mslt_it.runner import MARKER, make_plan

    path = write_recipe(tmp_path)
    (tmp_path / "out" / "eval").mkdir(parents=True)
    (tmp_path / "out" / "eval" / MARKER).write_text(json.dumps({"input_hash": "finished"}))

    def report_hash() -> str:
        steps = make_plan(load_recipe(path)).steps
        return next(s for s in steps if s.name == "report").input_hash()

    first = report_hash()
    assert first is not None and report_hash() == first
    path.write_text("description: a new one\n" + path.read_text())
    assert report_hash() != first


def test_the_plan_prints_an_output_folder_as_it_is(cli, tmp_path: Path) -> None:
    """``x[red]y`` was printed as ``xy`` (Rich markup), and ``[/]`` was an internal error."""
    for name in ("x[red]y", "q[/]o"):
        plan = cli("run", write_recipe(tmp_path), "--out", tmp_path / name, "--dry-run")
        assert plan.code == 0, plan.err
        assert name in plan.out.replace("\n", "").replace(" ", "").replace("│", "")
        assert "todo" in plan.out and "[yellow]" not in plan.out  # the status is styled text


@pytest.mark.parametrize(
    ("models", "said"),
    [
        ("['{tmp}/nope']", "eval.compare_models.0: no such folder"),
        ("[org/other, '{tmp}/file.txt']", "eval.compare_models.1: "),
        ("['{m}', '{m}/']", "eval.compare_models.1: '{m}/' and '{m}' are the same model"),
        ("[nosuch/]", "eval.compare_models.0: no such folder 'nosuch/'"),
        ("[mslt-it:tiny]", "'mslt-it:tiny' is given twice (also as model.name_or_path)"),
        ("[nosuch/model]", "eval.compare_models.0: cannot load 'nosuch/model': no such folder"),
        (
            "['{tmp}/config-only']",
            "eval.compare_models.0: the folder '{tmp}/config-only' holds no weights",
        ),
        (
            "['{tmp}/no-tokenizer']",
            "eval.compare_models.0: the folder '{tmp}/no-tokenizer' holds no tokenizer",
        ),
        ("['{tmp}/adapter']", "eval.compare_models.0: '{tmp}/adapter' is a LoRA adapter"),
        ("['{tmp}/no-weights']", "eval.compare_models.0: the folder '{tmp}/no-weights' holds no"),
        ("[org/other, org/other]", "'org/other' is given twice"),
    ],
)
def test_compare_models_are_checked_before_anything_runs(
    cli, tmp_path, tiny_model_dir, models, said
) -> None:
    """A missing folder, a repeat or the recipe's own model in compare_models passed the dry
    run and failed only after every build, training and evaluation."""
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "config-only").mkdir()
    shutil.copy(Path(tiny_model_dir) / "config.json", tmp_path / "config-only")
    shutil.copytree(
        tiny_model_dir, tmp_path / "no-weights", ignore=shutil.ignore_patterns("*.safe*")
    )
    shutil.copytree(
        tiny_model_dir,
        tmp_path / "no-tokenizer",
        ignore=shutil.ignore_patterns("*token*", "*.jinja", "vocab*", "merges*"),
    )
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text('{"base_model_name_or_path": "b"}')
    path = write_recipe(tmp_path)
    said = said.replace("{tmp}", str(tmp_path)).replace("{m}", str(tiny_model_dir))
    listed = models.replace("{tmp}", str(tmp_path)).replace("{m}", str(tiny_model_dir))
    path.write_text(
        path.read_text().replace("langs: [en]}", f"langs: [en], compare_models: {listed}}}")
    )
    assert_one_line_error(cli("run", path, "--dry-run"), said)
    assert not (tmp_path / "out").exists()


def test_select_reads_the_text_of_the_recipes_own_rows(tmp_path: Path, monkeypatch) -> None:
    """coverage and embedding read text: a recipe's select entry read synthetic rows whatever
    its data.data said (and a corpus without them was an error naming a field that does not
    exist)."""
    from mslt_it import recipes

    seen = []

    def record(**kwargs):
        seen.append((kwargs["options"].data, kwargs["options"].split))
        best, search = SimpleNamespace(sources=("de", "en")), SimpleNamespace(ties_beyond=False)
        return SimpleNamespace(sets=[best], searches=[search], measured=frozenset(), notes=[])

    monkeypatch.setattr(recipes, "run_selection", record)
    entry = {"select": {"criterion": "coverage", "k": 2, "pool": ["de", "en", "fr"]}}
    runs = expand_sources([entry], "xnli", str(tmp_path), "validation")
    assert seen == [(str(tmp_path), "validation")] and runs[0].sources == ("de", "en")


@pytest.mark.parametrize(
    "sft",
    [
        {"lr_scheduler_type": "cosine", "lr_scheduler_kwargs": {"num_cycles": 0.25}},
        {"lr_scheduler_type": "cosine_with_min_lr", "lr_scheduler_kwargs": {"min_lr_rate": 0.1}},
        {"lr_scheduler_type": "reduce_lr_on_plateau", "lr_scheduler_kwargs": {"factor": 0.5}},
        {"lr_scheduler_kwargs": {}},
    ],
)
def test_scheduler_arguments_the_schedule_takes_are_kept(sft: dict) -> None:
    """The check builds the schedule (:func:`check_scheduler_kwargs`): what it takes passes."""
    from mslt_it.training import validate_train_section

    assert validate_train_section({"sft": sft}).sft == sft


@pytest.mark.parametrize(
    ("sft", "said"),
    [
        ({"lr_scheduler_kwargs": {"num_cycles": 0.5}}, "'linear' has no argument"),  # the default
        ({"lr_scheduler_type": "cosine_with_min_lr", "lr_scheduler_kwargs": {"x": 1}}, "'x'"),
        ({"lr_scheduler_type": "cosine", "lr_scheduler_kwargs": {"num_cycles": 1e308}}, "1e+308"),
        # a NaN cycle count trained at a learning rate of 0 (the schedule clamps it), and the
        # text 'NaN' (YAML 1.2 reads NaN so) or true were taken as numbers
        *(
            ({"lr_scheduler_type": "cosine", "lr_scheduler_kwargs": {"num_cycles": value}}, said)
            for value, said in ((math.nan, "got nan"), ("NaN", "got 'NaN'"), (True, "got True"))
        ),
        (
            {
                "lr_scheduler_type": "cosine_with_min_lr",
                "lr_scheduler_kwargs": {"min_lr": math.inf},
            },
            "min_lr must be a finite number, got inf",
        ),
        # constant schedules were built without them: dropped without a word
        (
            {"lr_scheduler_type": "constant", "lr_scheduler_kwargs": {"num_cycles": 2}},
            "'constant' has no argument 'num_cycles'; it takes none",
        ),
        (
            {"lr_scheduler_type": "reduce_lr_on_plateau", "lr_scheduler_kwargs": {"bogus": 1}},
            "has no argument 'bogus'; it takes only cooldown, eps, factor",
        ),
    ],
)
def test_scheduler_arguments_it_cannot_take_are_one_line(sft: dict, said: str) -> None:
    from mslt_it.training import validate_train_section

    with pytest.raises(MsltError) as caught:
        validate_train_section({"sft": sft})
    message = str(caught.value)
    assert message.startswith("train.sft.lr_scheduler_kwargs: ") and said in message, message


def test_a_schedule_that_needs_arguments_is_refused_without_them() -> None:
    """cosine_with_min_lr without min_lr or min_lr_rate was an internal error at training."""
    from mslt_it.training import validate_train_section

    with pytest.raises(MsltError) as caught:
        validate_train_section({"sft": {"lr_scheduler_type": "cosine_with_min_lr"}})
    message = str(caught.value)
    assert message.startswith(
        "train.sft.lr_scheduler_type: 'cosine_with_min_lr' needs lr_scheduler_kwargs (One of"
    ), message


def test_a_select_entry_keeps_its_targets_as_sources_when_told_so() -> None:
    """The error said to pass --targets-as-sources, which no recipe field took."""
    body = {"criterion": "l2v-syntax", "k": 2, "pool": ["bg", "ar", "de"], "targets": ["bg", "ar"]}
    with pytest.raises(MsltError) as caught:
        expand_sources([{"select": body}], "xnli")
    assert "(1 language: de); bg,ar left out of it as targets (targets_as_sources keeps" in str(
        caught.value
    )
    (run,) = expand_sources([{"select": body | {"targets_as_sources": True}}], "xnli")
    assert len(run.sources) == 2 and set(run.sources) <= {"bg", "ar", "de"}


@pytest.mark.parametrize("seed", [-1, 2**32, True])
def test_a_select_entry_takes_the_seeds_the_command_takes(seed: object) -> None:
    """`mslt-it select --seed` takes 0..2**32-1; a recipe took -1 and 2**40, picks no command
    could make again."""
    body = {"criterion": "random", "k": 2, "pool": ["ar", "de", "en"], "seed": seed}
    with pytest.raises(MsltError, match=r"^sources\.0\.select\.seed: "):
        expand_sources([{"select": body}], "xnli")


def test_a_select_entry_tied_at_the_top_says_its_pick_is_alphabetical() -> None:
    """Four Latin-script languages tie under ``script``: the plan called de+en "select script",
    a preference it is not; a set alone at the top keeps its plain origin."""
    tied = expand_sources([{"select": {"criterion": "script", "k": 2,
                                       "pool": ["de", "en", "es", "fr"]}}], "xnli")  # fmt: skip
    assert tied[0].sources == ("de", "en")
    assert "tied at the top; the first alphabetically" in tied[0].origin
    alone = expand_sources([{"select": {"criterion": "l2v-syntax", "k": 2,
                                        "pool": ["ar", "de", "en"]}}], "xnli")  # fmt: skip
    assert alone[0].origin == "select l2v-syntax k=2"


def test_a_select_entrys_include_joins_its_pool_as_select_include_does() -> None:
    """``select --pool ar,de --include en --k 3`` picks ar+de+en; the recipe refused it (k
    larger than the pool of two)."""
    runs = expand_sources(
        [{"select": {"criterion": "l2v-syntax", "k": 3, "pool": ["ar", "de"], "include": ["en"]}}],
        "xnli",
    )
    assert runs[0].sources == ("ar", "de", "en")
    with pytest.raises(MsltError, match="larger than the pool and include"):
        expand_sources(
            [{"select": {"criterion": "l2v-syntax", "k": 4, "pool": ["ar", "de"],
                         "include": ["en"]}}], "xnli",
        )  # fmt: skip


def test_a_select_entry_whose_criterion_scores_no_set_is_refused() -> None:
    """No pool language has a BLOOM size here: every set was "n/a", and the recipe ran the
    alphabetically first as the size criterion's pick."""
    entry = {"criterion": "size", "k": 1, "pool": ["de", "ru"], "size_model": "bloom",
             "size_missing": "last"}  # fmt: skip
    with pytest.raises(MsltError, match="no set of 1 from the pool gets a score") as caught:
        expand_sources([{"select": entry}], "xnli")
    assert "no pretraining size for de, ru" in str(caught.value)
