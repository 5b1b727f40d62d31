"""What a hostile pass on ``mslt-it run`` found: a folder written ``~/…`` read as ``./~/…``
while a step's identity hashed the home folder's, Slurm tasks that needed the virtualenv on
their PATH, and a user's folder where a new run's output goes said only after other runs."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error

RECIPE = """\
name: t
{extra}data: {{task: xnli, budget: 4, data: {data}{prompts}}}
sources: [[en], [de]]
model: {{name_or_path: mslt-it:tiny}}
eval: {{task: xnli, langs: [en]{eval_data}}}
"""


def recipe(tmp_path: Path, data: str = "synthetic", extra: str = "", prompts: str = "",
           eval_data: str = "") -> Path:  # fmt: skip
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.format(data=data, extra=extra, prompts=prompts, eval_data=eval_data))
    return path


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"data": "~/d"}, "data.data: "),
        ({"extra": "output_dir: ~/out\n"}, "output_dir: "),
        ({"prompts": ", prompts_dir: [~/p]"}, "data.prompts_dir: '~/p'"),
        ({"eval_data": ", data: ~/e"}, "eval.data: '~/e'"),
    ],
)
def test_a_folder_written_from_home_is_refused_where_it_would_be_read_as_is(
    cli, tmp_path, monkeypatch, fields, said
):
    """``data: ~/d`` was read as ``./~/d`` while the step's identity hashed ``$HOME/d``: the
    files read were never hashed, and an edit of them left every step done."""
    monkeypatch.chdir(tmp_path)
    result = cli("run", recipe(tmp_path, **fields), "--dry-run")
    assert_one_line_error(result, said, "begins with ~", "full path")
    assert not (tmp_path / "runs").exists()


def test_home_folders_given_on_the_command_line_as_is(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = cli("run", recipe(tmp_path), "--out", "~/o", "--dry-run")
    assert_one_line_error(out, "--out: '~/o'", "begins with ~")
    built = cli("build", "--task", "xnli", "--sources", "en", "--budget", "4", "--data", "~/d",
                "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(built, "data: begins with ~", "'~/d'")
    templates = cli("build", "--task", "xnli", "--sources", "en", "--budget", "4",
                    "--prompts-dir", "~/p", "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(templates, "prompts-dir: '~/p'", "begins with ~")
    # a folder named ~ is still a folder: ./~/d is not refused for its name
    (tmp_path / "~" / "d").mkdir(parents=True)
    named = cli("build", "--task", "xnli", "--sources", "en", "--budget", "4", "--data", "./~/d",
                "--out", tmp_path / "ds")  # fmt: skip
    assert "begins with ~" not in named.err


def test_a_slurm_task_runs_mslt_it_with_the_python_that_wrote_it(cli, tmp_path, monkeypatch):
    """Every task ran a bare ``mslt-it``: without the virtualenv on the job's PATH each exited
    127, after task 0 had queued the final job."""
    monkeypatch.chdir(tmp_path)
    assert cli("run", recipe(tmp_path), "--emit-slurm", tmp_path / "job.sh").code == 0
    lines = (tmp_path / "job.sh").read_text().splitlines()
    program = f"{shlex.quote(str(Path(sys.executable).absolute()))} -m mslt_it run "
    commands = [line.strip() for line in lines if " run " in line and not line.startswith("#")]
    assert len(commands) == 2 and all(line.startswith(program) for line in commands)
    # what the tasks run works from any folder, with no PATH at all
    ran = subprocess.run(
        [sys.executable, "-m", "mslt_it", "run", "--help"], cwd="/", env={},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0 and "--only" in ran.stdout


def test_a_users_folder_where_a_new_runs_output_goes_is_said_first(cli, tmp_path, monkeypatch):
    """``runs/t/data/de`` holding a file of the user's: the run trained the other runs first,
    then stopped with "--out: … --overwrite replaces only …", options ``run`` has not; and
    ``--dry-run`` said nothing."""
    from mslt_it.recipes import load_recipe
    from mslt_it.runner import claim_experiment_folder

    monkeypatch.chdir(tmp_path)
    path = recipe(tmp_path)
    claim_experiment_folder(load_recipe(path))  # an experiment of mslt-it's, begun
    mine = tmp_path / "runs" / "t" / "data" / "de" / "mine.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("mine")
    for extra in (["--dry-run"], []):
        result = cli("run", path, *extra)
        assert_one_line_error(result, "build de: output", "mine.txt", "did not write")
        assert "--overwrite" not in result.err
    assert not (tmp_path / "runs" / "t" / "data" / "en").exists()  # nothing ran
    assert mine.read_text() == "mine"


@pytest.mark.parametrize(
    "args",
    [
        ["build", "--task", "xnli", "--sources", "en", "--budget", "4", "--out", "~/x"],
        ["tiny-model", "~/t"],
        ["analyze", "--model", "m", "--langs", "en,de", "--n", "4", "--out", "~/a"],
    ],
)
def test_every_output_written_from_home_is_refused(cli, tmp_path, monkeypatch, args):
    """``--out '~/x'`` wrote ``./~/x`` under a message naming ``~/x``; a training's checkpoints
    went to the home folder's ``x`` (transformers expands it), the adapter to ``./~/x``."""
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(cli(*args), "'~/", "begins with ~")
    assert not (tmp_path / "~").exists()


def test_a_model_folder_written_from_home_is_the_home_folders(
    cli, tiny_model_dir, tmp_path, monkeypatch
):
    """``train --model '~/m'`` trained on the home folder's ``m``; ``eval --model '~/m'``
    passed the folder check and then asked the Hub for a repo of that name."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "m").symlink_to(tiny_model_dir, target_is_directory=True)
    result = cli("eval", "--model", "~/m", "--task", "xnli", "--langs", "en", "--limit", "2",
                 "--mode", "rank", "--bootstrap-samples", "40",
                 "--out", tmp_path / "ev")  # fmt: skip
    assert result.code == 0, result.err


def test_inputs_written_from_home_that_are_read_as_written_say_so(
    cli, tiny_model_dir, tmp_path, monkeypatch
):
    """``train --dataset '~/d'`` said "has no manifest.json", ``eval --adapter '~/a'`` "no such
    folder" and ``report '~/e'`` "does not exist", of ``./~/…``, with the home folder's there."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    train = cli("train", "--dataset", "~/d", "--model", tiny_model_dir, "--out", tmp_path / "o")
    assert_one_line_error(train, "'~/d'", "begins with ~")
    adapter = cli("eval", "--model", tiny_model_dir, "--adapter", "~/a", "--task", "xnli",
                  "--langs", "en", "--out", tmp_path / "e")  # fmt: skip
    assert_one_line_error(adapter, "'~/a'", "begins with ~")
    assert_one_line_error(cli("report", "~/e", "--out", tmp_path / "r"), "'~/e'", "begins with ~")


def test_a_dry_run_of_one_run_shows_only_the_steps_it_would_run(cli, tmp_path, monkeypatch):
    """``--only RUN --dry-run`` showed the other runs' training and the shared evaluation and
    report as if they would run."""
    monkeypatch.chdir(tmp_path)
    path = recipe(tmp_path)
    whole = cli("run", path, "--dry-run")
    assert whole.code == 0, whole.err
    assert "eval" in whole.out and "report" in whole.out
    one = cli("run", path, "--only", "de", "--dry-run")
    assert one.code == 0, one.err
    rows = [line.split()[1] for line in one.out.splitlines() if line.startswith("│ ")]
    assert rows == ["build", "train"] and "SSLT de" in one.out and "SSLT en" not in one.out
    assert "report are made by `mslt-it run` without --only" in one.err


def test_a_recipe_comparing_models_evaluates_its_adapters_step(
    tmp_path, monkeypatch, tiny_model_dir
):
    """The eval step passed the recipe's compare_models on to evaluate(), which refuses them
    (they are the compare step's): every recipe comparing models stopped after training."""
    from mslt_it import runner
    from mslt_it.recipes import load_recipe

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "r.yaml"
    path.write_text(
        RECIPE.format(data="synthetic", extra="", prompts="", eval_data="").replace(
            "langs: [en]", "langs: [en], limit: 2, mode: rank, compare_models: [mslt-it:tiny-world]"
        )
    )
    recipe = load_recipe(path, output_dir=tmp_path / "runs")
    runner.run_evaluation(recipe, tiny_model_dir, {}, tmp_path / "runs" / "eval")
    assert (tmp_path / "runs" / "eval" / "results.json").is_file()


def test_a_later_recipe_leaves_an_earlier_recipes_plan_its_tasks(tmp_path, monkeypatch):
    """Reading a second recipe replaced the first's task folders: planning the first then
    failed with "unknown task"."""
    from mslt_it import runner
    from mslt_it.recipes import load_recipe
    from mslt_it.tasks import reset_tasks_dirs

    monkeypatch.chdir(tmp_path)
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    shipped = Path(runner.__file__).resolve().parent.parent / "tasks" / "xnli.yaml"
    (tasks / "myxnli.yaml").write_text(shipped.read_text().replace("name: xnli", "name: myxnli"))
    first = tmp_path / "a.yaml"
    first.write_text(
        RECIPE.format(data="synthetic", extra=f"tasks_dir: [{tasks}]\n", prompts="", eval_data="")
        .replace("task: xnli, budget", "task: myxnli, template: xnli/en-instruct, budget")
        .replace("eval: {task: xnli", "eval: {task: myxnli, template: xnli/en-instruct")
    )
    second = tmp_path / "b.yaml"
    second.write_text(RECIPE.format(data="synthetic", extra="", prompts="", eval_data=""))
    try:
        a = load_recipe(first, output_dir=tmp_path / "a")
        load_recipe(second, output_dir=tmp_path / "b")
        plan = runner.make_plan(a)
        assert {step.status() for step in plan.steps} <= {"todo", "waiting"}
    finally:
        reset_tasks_dirs()
