"""Tasks as data: YAML definitions checked when loaded; a user's task through build, eval, score."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error

from mslt_it.tasks import get_task, tasks_dirs
from mslt_it.tasks.definitions import parse_definition

BROKEN = Path(__file__).parent / "broken_tasks"

EXPECTED = {
    "no-kind.yaml": "kind: required field is missing",
    "bad-kind.yaml": "kind:",
    "label-column-missing.yaml": "'gold' is not among the columns",
    "bad-variable.yaml": "variables.text",
    "name-mismatch.yaml": "name is 'another-name'",
    "unknown-field.yaml": "lables: unknown field",
    "bad-config.yaml": "{lang}",
    "ner-labels.yaml": "entity types are PER, ORG, LOC",
    "reserved-variable.yaml": "'label_word' is provided by the classification kind",
    "dup.yaml": "duplicate key 'name'",
    "not-a-mapping.yaml": "must be a YAML mapping",
    "mc-no-choices.yaml": "choices: a multiple_choice task needs an expression",
    "mc-two-golds.yaml": "either gold (an expression) or label_column",
    "mc-choices-on-classification.yaml": "only a multiple_choice task reads choices",
    "mc-bad-choices.yaml": "mc-bad-choices.yaml: choices:",
    "mc-example-lacks-column.yaml": "example: lacks column 'b'",
    "mc-unknown-column.yaml": "choices: reads row.bb, which is not among the columns",
    "method-not-column.yaml": "variables.text: row.items is the row's method items, not a "
    "column; a column named items is row['items']",
    "labels-alike.yaml": "labels: ['Yes', 'yes '] names 'Yes' and 'yes ' twice (an answer and "
    "its gold are compared case and spacing aside)",
    "id-column.yaml": "columns: 'id' is the row id mslt-it gives each row",
    # not "example: lacks column 'id'", which asked for the column it then refused
    "id-column-example.yaml": "columns: 'id' is the row id mslt-it gives each row",
}


def test_every_broken_definition_has_its_case() -> None:
    assert sorted(p.name for p in BROKEN.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_broken_definition_is_a_one_line_error_naming_file_and_field(
    cli, tmp_path: Path, name: str
) -> None:
    folder = tmp_path / "tasks"
    folder.mkdir()
    shutil.copy(BROKEN / name, folder / name)
    result = cli("build", "--task", "xnli", "--sources", "en", "--budget", "2",
                 "--tasks-dir", folder, "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, name, EXPECTED[name])
    assert not (tmp_path / "ds").exists()


def test_shipped_definitions_describe_the_three_tasks() -> None:
    xnli, pawsx, wikiann = get_task("xnli"), get_task("pawsx"), get_task("wikiann")
    assert len(xnli.languages) == 15 and len(pawsx.languages) == 7
    assert len(wikiann.languages) == 176
    assert xnli.labels == ("entailment", "neutral", "contradiction")
    assert xnli.fields >= {"premise", "hypothesis", "label", "label_word", "choices", "lang"}
    assert wikiann.kind == "ner" and "spans" in wikiann.fields
    assert pawsx.hub_id == "google-research-datasets/paws-x" and pawsx.hub_config("ja") == "ja"
    assert all(path.name == "tasks" for path in tasks_dirs()[:1])


def write_user_task(folder: Path) -> Path:
    """A two-label task with columns of its own and a derived variable (a Jinja expression)."""
    (folder / "tasks").mkdir(parents=True)
    (folder / "tasks" / "claims.yaml").write_text(
        "name: claims\ntitle: Claims\nkind: classification\n"
        "hub: {id: someone/claims, config: 'claims_{lang}'}\n"
        "splits: [train, test]\nlanguages: [en, de]\n"
        "columns: [claim, evidence, verdict]\nlabels: [supported, refuted]\n"
        "label_column: verdict\n"
        "variables: {claim: row.claim, evidence: row.evidence, "
        "both: \"row.claim ~ ' / ' ~ row.evidence\"}\n"
    )
    (folder / "prompts" / "claims").mkdir(parents=True)
    (folder / "prompts" / "claims" / "plain.yaml").write_text(
        "id: claims/plain\ntask: claims\ndescription: test\n"
        "instruction: 'Claim and evidence: {{ both }}. Supported or refuted?'\n"
        "answer: '{{ label_word }}'\n"
        "verbalizers: {supported: supported, refuted: refuted}\n"
    )
    for lang in ("en", "de"):
        rows_folder = folder / "data" / "claims" / lang
        rows_folder.mkdir(parents=True)
        for split, count in (("train", 12), ("test", 6)):
            rows = [
                {"claim": f"{lang} claim {i}", "evidence": f"evidence {i}", "verdict": i % 2}
                for i in range(count)
            ]
            text = "".join(json.dumps(row) + "\n" for row in rows)
            (rows_folder / f"{split}.jsonl").write_text(text)
    return folder


def test_a_user_task_goes_through_build_eval_and_score(
    cli, tmp_path: Path, tiny_model_dir: Path
) -> None:
    folder = write_user_task(tmp_path / "user")
    common = ["--tasks-dir", folder / "tasks", "--prompts-dir", folder / "prompts"]
    built = cli("build", "--task", "claims", "--sources", "en,de", "--budget", "8",
                "--template", "claims/plain", "--data", folder / "data",
                "--out", tmp_path / "ds", *common)  # fmt: skip
    assert built.code == 0, built.err
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["task_definition"]["path"].endswith("claims.yaml")
    assert manifest["counts"] == {"en": 4, "de": 4}

    evaluated = cli("eval", "--model", tiny_model_dir, "--task", "claims", "--langs", "en,de",
                    "--template", "claims/plain", "--data", folder / "data", "--mode", "rank",
                    "--out", tmp_path / "ev", *common)  # fmt: skip
    assert evaluated.code == 0, evaluated.err
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert set(results["tasks"]["claims"]["languages"]) == {"en", "de"}
    lines = (tmp_path / "ev" / "predictions.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["gold"] in ("supported", "refuted") and len(lines) == 12

    scored = cli("score", tmp_path / "ev" / "predictions.jsonl", *common)
    assert scored.code == 0, scored.err


def test_without_its_folder_a_user_task_is_unknown_and_the_error_says_how(cli) -> None:
    assert_one_line_error(
        cli("select", "--task", "claims", "--k", "1"), "unknown task 'claims'", "--tasks-dir"
    )


def test_a_definition_parses_on_its_own(tmp_path: Path) -> None:
    folder = write_user_task(tmp_path)
    task = parse_definition(folder / "tasks" / "claims.yaml")
    assert task.hub_config("de") == "claims_de" and task.languages == ("en", "de")
    variables = task.to_variables(
        {"claim": "c", "evidence": "e", "verdict": 1}, {"supported": "s", "refuted": "r"}, "en"
    )
    assert variables["both"] == "c / e" and variables["label_word"] == "r"


def test_a_definition_named_in_upper_case_yaml_is_named_not_ignored(cli, tmp_path: Path) -> None:
    """``claims.YAML`` was never read: the task was "unknown" with no word on the file."""
    folder = write_user_task(tmp_path / "user")
    definition = folder / "tasks" / "claims.yaml"
    definition.rename(definition.with_suffix(".YAML"))
    assert_one_line_error(
        cli("select", "--task", "claims", "--k", "1", "--tasks-dir", folder / "tasks"),
        "claims.YAML",
        "lower case",
    )


def test_a_definition_in_a_sub_folder_is_named_not_ignored(cli, tmp_path: Path) -> None:
    """``tasks/sub/claims.yaml`` was never read: the task was "unknown" with no word on it."""
    folder = write_user_task(tmp_path / "user")
    (folder / "tasks" / "sub").mkdir()
    (folder / "tasks" / "claims.yaml").rename(folder / "tasks" / "sub" / "claims.yaml")
    result = cli("select", "--task", "claims", "--k", "1", "--tasks-dir", folder / "tasks")
    assert_one_line_error(result, "sub/claims.yaml", "not in a sub-folder")


def test_train_makes_its_datasets_task_known_for_that_call_only(
    cli, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """``train()`` with held-out languages reads the dataset's own task definition: it stayed
    known to the whole process, and a second dataset's definition of the same task (another
    folder) was refused as not the one its build read."""
    from mslt_it.tasks import tasks_dirs
    from mslt_it.training import ModelConfig, TrainConfig
    from mslt_it.training.run import train

    folder = write_user_task(tmp_path / "user")
    built = cli("build", "--task", "claims", "--sources", "en", "--budget", "4",
                "--template", "claims/plain", "--data", folder / "data", "--out", tmp_path / "ds",
                "--tasks-dir", folder / "tasks", "--prompts-dir", folder / "prompts")  # fmt: skip
    assert built.code == 0, built.err
    before = tasks_dirs()
    sft = {"max_steps": 1, "per_device_train_batch_size": 2, "save_strategy": "no"}
    config = TrainConfig(dataset=str(tmp_path / "ds"), sft=sft, eval_langs=["de"], heldout_rows=2)
    train(ModelConfig(name_or_path=str(tiny_model_dir)), config, tmp_path / "adapter")
    assert (tmp_path / "adapter" / "run.json").is_file()
    assert tasks_dirs() == before
