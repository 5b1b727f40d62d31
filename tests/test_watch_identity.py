"""A training's watch of a task of the user's (``--tasks-dir``) scores through its definition
and its template: both are part of the run's identity. Edited, a re-run said "already holds
this run, complete" and kept the curves of the old files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mslt_it.config import DataConfig
from mslt_it.data import build_dataset
from mslt_it.paths import PROMPTS_DIR, TASKS_DIR

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def user_task(tmp_path: Path) -> tuple[Path, Path]:
    """``mynli``: XNLI's definition and English template under another name, as a user's."""
    tasks, prompts = tmp_path / "tasks", tmp_path / "prompts" / "mynli"
    tasks.mkdir()
    prompts.mkdir(parents=True)
    definition = (TASKS_DIR / "xnli.yaml").read_text(encoding="utf-8")
    lines = [line for line in definition.splitlines() if not line.startswith("hub:")]
    (tasks / "mynli.yaml").write_text(
        "\n".join(lines).replace("name: xnli", "name: mynli") + "\n", encoding="utf-8"
    )
    template = (PROMPTS_DIR / "xnli" / "en-instruct.yaml").read_text(encoding="utf-8")
    (prompts / "en-instruct.yaml").write_text(template.replace("xnli", "mynli"), "utf-8")
    return tasks, prompts.parent


def test_a_watched_user_tasks_definition_and_template_are_the_runs(tiny_model_dir, tmp_path):
    from mslt_it.tasks import add_tasks_dirs, reset_tasks_dirs
    from mslt_it.training import ModelConfig, validate_train_section
    from mslt_it.training.run import plan_run

    tasks, prompts = user_task(tmp_path)
    config = DataConfig(task="xnli", sources=["en"], budget=4, prompts_dir=[str(prompts)])
    built = build_dataset(config, tmp_path / "ds").path
    model = ModelConfig(name_or_path=str(tiny_model_dir))

    def identity(task: str) -> str:
        reset_tasks_dirs()  # as a new `mslt-it train --tasks-dir` starts
        add_tasks_dirs([tasks])
        try:
            section = {"dataset": str(built), "sft": {"use_cpu": True, "max_steps": 2},
                       "watch": [{"task": task, "langs": ["de"], "limit": 3}]}  # fmt: skip
            return plan_run(model, validate_train_section(section), tmp_path / "p").config_hash
        finally:
            reset_tasks_dirs()

    before = identity("mynli")
    shipped = identity("xnli")
    template = prompts / "mynli" / "en-instruct.yaml"
    template.write_text(template.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    edited_template = identity("mynli")
    assert edited_template != before
    definition = tasks / "mynli.yaml"
    definition.write_text(definition.read_text(encoding="utf-8") + "# edited\n", "utf-8")
    assert identity("mynli") not in (before, edited_template)
    assert identity("xnli") == shipped  # a watch of a shipped task: nothing of the user's
