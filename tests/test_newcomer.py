"""What the README promises, a newcomer gets: one recipe shape, names that work everywhere,
whole output off a terminal, defaults that do not surprise (issue: every example reproduces)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import assert_one_line_error

from mslt_it.paths import EVAL_DIR, PROMPTS_DIR, TASKS_DIR
from mslt_it.tasks import get_task


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


RECIPE = {
    "name": "r",
    "data": {"task": "xnli", "budget": 8},
    "model": {"name_or_path": "mslt-it:tiny"},
    "eval": {"suite": ["xnli"]},
}


def test_sources_at_the_top_or_in_data_are_one_shape(cli, tmp_path: Path) -> None:
    top = write(tmp_path / "top.yaml", {**RECIPE, "sources": ["en", "de"]})
    nested = write(
        tmp_path / "nested.yaml", {**RECIPE, "data": {**RECIPE["data"], "sources": ["en", "de"]}}
    )
    for recipe in (top, nested):
        planned = cli("run", recipe, "--dry-run")
        assert planned.code == 0, planned.err
        assert "en+de" in planned.out or "MSLT" in planned.out
        built = cli("build", "--recipe", recipe, "--out", tmp_path / f"ds-{recipe.stem}")
        assert built.code == 0, built.err
    neither = write(tmp_path / "neither.yaml", RECIPE)
    assert_one_line_error(cli("run", neither, "--dry-run"), "sources", "top level")
    both = write(
        tmp_path / "both.yaml",
        {**RECIPE, "sources": ["en"], "data": {**RECIPE["data"], "sources": ["de"]}},
    )
    assert_one_line_error(cli("run", both, "--dry-run"), "given twice")
    sweep = {"sweep-k": {"pool": ["en", "de"], "k": [1, 2]}}
    grid = write(tmp_path / "grid.yaml", {**RECIPE, "sources": sweep})
    assert_one_line_error(cli("build", "--recipe", grid, "--out", tmp_path / "g"), "--sources")


def test_own_model_names_work_in_compare_models_too(cli, tmp_path: Path, monkeypatch) -> None:
    """`mslt-it:tiny` resolves in eval --model like in a recipe (made once, in the cache)."""
    monkeypatch.setenv("MSLT_IT_CACHE", str(tmp_path / "cache"))
    from mslt_it.named_models import named_model_folder, resolve_model_name

    resolved = resolve_model_name("mslt-it:tiny")
    assert Path(resolved) == named_model_folder("mslt-it:tiny") and Path(resolved).is_dir()
    assert resolve_model_name("org/model") == "org/model"
    result = cli("eval", "--model", "mslt-it:tiny", "--task", "xnli", "--langs", "en",
                 "--limit", "2", "--mode", "rank", "--out", tmp_path / "ev",
                 "--bootstrap-samples", "40")  # fmt: skip
    assert result.code == 0, result.err


def test_prompts_show_prints_the_file_exactly(cli) -> None:
    result = cli("prompts", "show", "xnli/en-instruct")
    assert result.code == 0, result.err
    assert result.out == (PROMPTS_DIR / "xnli" / "en-instruct.yaml").read_text(encoding="utf-8")
    assert "xnli/en-instruct" in result.err  # where it lives, on stderr


def test_tables_off_a_terminal_never_split_an_id(cli) -> None:
    result = cli("prompts", "list")
    assert result.code == 0, result.err
    ids = [
        f"{folder.name}/{path.stem}"
        for folder in PROMPTS_DIR.iterdir()
        if folder.is_dir()
        for path in folder.glob("*.yaml")
    ]
    missing = [template for template in ids if template not in result.out]
    assert not missing, missing[:3]


def test_prompts_render_defaults_to_a_split_the_task_has(cli) -> None:
    result = cli("prompts", "render", "xstorycloze/en-instruct", "--task", "xstorycloze",
                 "--lang", "en")  # fmt: skip
    assert result.code == 0, result.err
    assert "instruction" in result.out


def test_select_leaves_targets_out_of_the_pool_unless_asked(cli) -> None:
    common = ["select", "--task", "xnli", "--pool", "en,de,sw", "--k", "2", "--top", "3",
              "--targets", "sw", "--criterion", "l2v-syntax", "--json"]  # fmt: skip
    result = cli(*common)
    assert result.code == 0, result.err
    assert "sw" not in result.out.split('"targets"')[0]
    allowed = cli(*common, "--targets-as-sources")
    assert allowed.code == 0, allowed.err
    assert '"sw"' in allowed.out.split('"targets"')[0]


def test_help_lists_every_shipped_task_and_suite(cli) -> None:
    tasks = sorted(path.stem for path in TASKS_DIR.glob("*.yaml"))
    suites = sorted(path.stem for path in EVAL_DIR.glob("*.yaml"))
    for command in ("build", "eval", "select"):
        text = " ".join(cli(command, "--help").out.split())
        assert all(task in text.replace("- ", "-") for task in tasks), command
    text = " ".join(cli("eval", "--help").out.split()).replace("- ", "-")
    assert all(suite in text for suite in suites)


def test_eval_task_defaults_to_its_languages_and_evaluation_split(cli, tiny_model_dir, tmp_path):
    result = cli("eval", "--model", tiny_model_dir, "--task", "xstorycloze", "--limit", "1",
                 "--mode", "rank", "--out", tmp_path / "ev",
                 "--bootstrap-samples", "40")  # fmt: skip
    assert result.code == 0, result.err
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert set(results["tasks"]["xstorycloze"]["languages"]) == set(
        get_task("xstorycloze").languages
    )


def _option_help(text: str, option: str) -> str:
    """The help of ``option`` in a command's ``--help`` (its line and the lines that wrap it)."""
    lines = text.split("Options:", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(option + " "))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if line.strip().startswith("-"):
            break
        block.append(line)
    return " ".join(" ".join(block).split())


@pytest.mark.parametrize(
    ("command", "option", "field"),
    [
        ("build", "--budget-mode", "budget_mode"),
        ("build", "--temperature", "temperature"),
        ("build", "--data", "data"),
        ("build", "--split", "split"),
        ("build", "--format", "format"),
        ("build", "--seed", "seed"),
        ("build", "--max-length", "max_length"),
        ("eval", "--data", "data"),
        ("eval", "--backend", "backend"),
        ("eval", "--batch-size", "batch_size"),
        ("eval", "--chunk-size", "chunk_size"),
        ("eval", "--dtype", "dtype"),
        ("eval", "--seed", "seed"),
        ("eval", "--bootstrap-samples", "bootstrap_samples"),
    ],
)
def test_help_states_the_default_each_option_has(cli, command, option, field) -> None:
    """These options default to None on the command line (a recipe's value wins), so typer
    shows no default: the help says it, and says what the settings really default to."""
    from mslt_it.config import DataConfig
    from mslt_it.evaluation.config import EvalConfig

    model = DataConfig if command == "build" else EvalConfig
    default = str(model.model_fields[field].default)
    shown = _option_help(cli(command, "--help").out, option)
    assert "default" in shown, shown
    words = shown.replace("(", " ").replace(")", " ").replace(";", " ").replace(",", " ").split()
    assert default in words, (default, shown)


def test_an_adapter_on_a_named_base_outlives_the_cache(cli, tmp_path: Path, monkeypatch) -> None:
    """Trained on ``mslt-it:tiny``, run.json named the cache's copy only: with the cache
    cleared, ``merge`` had no base and ``eval`` called it moved. The name is recorded, and its
    model made again (the same files: its identity still holds)."""
    import shutil

    monkeypatch.setenv("MSLT_IT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert (
        cli("build", "--task", "xnli", "--sources", "en", "--budget", "4", "--out", "ds").code == 0
    )
    trained = cli("train", "--dataset", "ds", "--model", "mslt-it:tiny", "--out", "ad",
                  "--max-steps", "1", "--batch-size", "2")  # fmt: skip
    assert trained.code == 0, trained.err
    assert json.loads((tmp_path / "ad" / "run.json").read_text())["base_model_name"] == (
        "mslt-it:tiny"
    )
    shutil.rmtree(tmp_path / "cache")
    merged = cli("merge", "ad", "--out", "merged")
    assert merged.code == 0, merged.err
    shutil.rmtree(tmp_path / "cache")
    evaluated = cli("eval", "--adapter", "ad", "--task", "xnli", "--langs", "en", "--limit", "2",
                    "--mode", "rank", "--out", "ev", "--bootstrap-samples", "40")  # fmt: skip
    assert evaluated.code == 0, evaluated.err


def test_a_folder_named_as_a_named_model_is_never_taken_for_it(cli, tmp_path, monkeypatch) -> None:
    """``tiny-model mslt-it:tiny`` wrote a folder that ``--model mslt-it:tiny`` never read: the
    built-in model was evaluated instead, without a word."""
    monkeypatch.chdir(tmp_path)
    result = cli("tiny-model", "mslt-it:tiny")
    assert_one_line_error(result, "out_dir", "mslt-it's model names", "choose another name")
    assert not (tmp_path / "mslt-it:tiny").exists()
    (tmp_path / "mslt-it:tiny").mkdir()  # made some other way
    evaluate = ["eval", "--model", "mslt-it:tiny", "--task", "xnli", "--langs", "en",
                "--limit", "2", "--out", tmp_path / "ev"]  # fmt: skip
    result = cli(*evaluate)
    assert_one_line_error(result, "model: mslt-it:tiny names mslt-it's model", "./mslt-it:tiny")
    (tmp_path / "mslt-it:tiny").rmdir()
    (tmp_path / "mslt-it:tiny").write_text("a file")  # not a folder: said as it is
    assert_one_line_error(cli(*evaluate), "a file or folder here")
