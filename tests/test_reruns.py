"""Re-running after a change, an interruption or an overwrite: the right steps are redone, and
nothing of the user's is lost on the way (a hostile pass's findings, each pinned here)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import assert_one_line_error, hold_lock

from mslt_it.errors import MsltError
from mslt_it.identity import DATA_FILES, tree_sha256
from mslt_it.recipes import load_recipe
from mslt_it.runner import claim_experiment_folder, execute_plan, make_plan


def small_recipe(tmp_path: Path, learning_rate: str = "3.0e-3") -> Path:
    """One tiny run with the default ``report_to: tensorboard``, so its log is in the folder."""
    path = tmp_path / "small.yaml"
    path.write_text(
        f"name: small\noutput_dir: {tmp_path / 'out'}\n"
        "data: {task: xnli, budget: 16, data: synthetic}\nsources: [en]\n"
        "model: {name_or_path: mslt-it:tiny}\n"
        "train: {max_length: 128, lora: {r: 4, lora_alpha: 8, target_modules: all-linear}, "
        f"sft: {{learning_rate: {learning_rate}, max_steps: 2, per_device_train_batch_size: 4}}}}\n"
        "eval: {task: xnli, langs: [en], data: synthetic, limit: 2, mode: rank}\n"
    )
    return path


def no_results(evaluation: Path) -> bool:
    """A reopened evaluation: its predictions kept as chunks to reuse, nothing a report reads."""
    found = [*evaluation.rglob("results.json"), *evaluation.rglob("predictions.jsonl")]
    return not found and not (evaluation / "study.json").exists()


def interrupt() -> None:
    raise KeyboardInterrupt


@pytest.mark.slow
def test_an_edited_recipe_retrains_over_its_own_log_and_over_a_killed_run(cli, tmp_path) -> None:
    recipe = small_recipe(tmp_path)
    assert cli("run", recipe).code == 0
    adapter = tmp_path / "out" / "adapters" / "en"
    assert list((adapter / "tensorboard").iterdir()), "the default writes a TensorBoard log"
    first = (adapter / "run.json").read_text()

    small_recipe(tmp_path, learning_rate="2.0e-3")
    statuses = {s.name: s.status() for s in make_plan(load_recipe(recipe)).steps}
    assert statuses == {"build": "done", "train": "stale", "eval": "waiting", "report": "waiting"}
    interrupted = make_plan(load_recipe(recipe))
    interrupted.steps[1].execute = interrupt  # killed while training again
    with pytest.raises(KeyboardInterrupt):
        execute_plan(interrupted)
    # The old evaluation and report are gone, not left looking current; the built data stays.
    # The evaluation is reopened (its predictions kept as chunks to reuse): no results there.
    assert not (tmp_path / "out" / "report").exists()
    assert no_results(tmp_path / "out" / "eval")
    assert (tmp_path / "out" / "data" / "en" / "manifest.json").is_file()
    result = cli("run", recipe)
    assert result.code == 0, result.err  # the log is the run's own, not a user's file
    second = (adapter / "run.json").read_text()
    assert json.loads(second)["config_hash"] != json.loads(first)["config_hash"]

    # A run killed before its step was marked, then the recipe edited: the leftover is replaced.
    (adapter / ".mslt-it-step.json").unlink()
    small_recipe(tmp_path, learning_rate="1.0e-3")
    assert [s.status() for s in make_plan(load_recipe(recipe)).steps][1] == "todo"
    result = cli("run", recipe)
    assert result.code == 0, result.err
    assert (
        json.loads((adapter / "run.json").read_text())["config_hash"]
        != json.loads(second)["config_hash"]
    )

    # A user's file in it is never taken along.
    (adapter / "notes.txt").write_text("mine")
    small_recipe(tmp_path, learning_rate="4.0e-3")
    assert_one_line_error(cli("run", recipe), "notes.txt", "did not write")
    assert (adapter / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_train_overwrite_never_deletes_a_users_file(cli, tiny_model_dir, tmp_path) -> None:
    data = tmp_path / "ds"
    built = cli(
        *[
            "build",
            "--task",
            "xnli",
            "--sources",
            "en",
            "--budget",
            "8",
            "--data",
            "synthetic",
            "--out",
        ],
        data,
    )
    assert built.code == 0, built.err
    args = ["train", "--dataset", data, "--model", tiny_model_dir, "--max-steps", "1"]
    assert cli(*args, "--out", tmp_path / "ad").code == 0
    (tmp_path / "ad" / "notes.txt").write_text("my notes")
    result = cli(*args, "--out", tmp_path / "ad", "--overwrite")
    assert_one_line_error(result, "notes.txt", "did not write")
    assert (tmp_path / "ad" / "notes.txt").read_text() == "my notes"
    (tmp_path / "ad" / "notes.txt").unlink()
    assert cli(*args, "--out", tmp_path / "ad", "--overwrite").code == 0  # its own log is fine


@pytest.mark.slow
def test_train_overwrite_that_cannot_remove_a_file_leaves_no_half_folder(
    cli, tiny_model_dir, tmp_path, monkeypatch
) -> None:
    """The old run was removed in place: a file that could not be removed (immutable, or in a
    read-only folder) stopped the removal half-way, with the weights and marker gone, and the
    folder was then refused as the user's. It is renamed aside first: the new run is trained,
    and what could not be removed is said and left aside."""
    data = tmp_path / "ds"
    built = cli("build", "--task", "xnli", "--sources", "en", "--budget", "8", "--out", data)
    assert built.code == 0, built.err
    args = ["train", "--dataset", data, "--model", tiny_model_dir, "--max-steps", "1"]
    assert cli(*args, "--out", tmp_path / "ad").code == 0
    old_run = json.loads((tmp_path / "ad" / "run.json").read_text())
    unlink = os.unlink

    def stuck(path, *rest, **options):  # as an immutable file: shutil.rmtree cannot remove it
        if os.fspath(path) == "run.json":
            raise PermissionError(1, "Operation not permitted", "run.json")
        return unlink(path, *rest, **options)

    monkeypatch.setattr(os, "unlink", stuck)
    result = cli(*args, "--out", tmp_path / "ad", "--overwrite", "--learning-rate", "1e-3")
    monkeypatch.setattr(os, "unlink", unlink)
    assert result.code == 0, result.err
    assert "could not be removed entirely" in result.err
    new_run = json.loads((tmp_path / "ad" / "run.json").read_text())
    assert new_run != old_run and (tmp_path / "ad" / "adapter_model.safetensors").is_file()
    assert cli(*args, "--out", tmp_path / "ad", "--learning-rate", "1e-3").code == 0  # done


def test_a_data_folder_linked_into_the_data_root_is_hashed_by_content(tmp_path: Path) -> None:
    real = tmp_path / "real" / "claims" / "en"
    real.mkdir(parents=True)
    (real / "test.jsonl").write_text('{"claim": "a", "verdict": 0}\n')
    root = tmp_path / "linked"
    root.mkdir()
    (root / "claims").symlink_to(tmp_path / "real" / "claims")
    (root / "loop").symlink_to(root)  # a cycle ends where a folder repeats
    before = tree_sha256(root, DATA_FILES)
    (real / "test.jsonl").write_text('{"claim": "a", "verdict": 1}\n')
    assert tree_sha256(root, DATA_FILES) != before


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('name: "a\\0b"', "name: a NUL character"),
        ('output_dir: "o\\0"', "output_dir: a NUL character"),
        ('tasks_dir: ["t\\0"]', "tasks_dir.0: a NUL character"),
        ('name: "a\\nb"', "name: use letters"),
        ('name: "ok\\u202e"', "name: use letters"),
    ],
)
def test_control_characters_in_a_recipe_are_one_line_errors(cli, tmp_path, line, fragment) -> None:
    body = {"name": "name: ok", "output_dir": "", "tasks_dir": ""}
    body[line.split(":")[0]] = line
    path = tmp_path / "r.yaml"
    path.write_text(
        "\n".join(v for v in body.values() if v)
        + "\ndata: {task: xnli, budget: 8, data: synthetic}\nsources: [en]\n"
        "model: {name_or_path: mslt-it:tiny}\neval: {task: xnli, langs: [en]}\n"
    )
    assert_one_line_error(cli("run", path, "--dry-run"), fragment)


def test_a_fifo_recipe_or_data_file_is_named_and_never_blocks(cli, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "r.yaml")
    os.makedirs(tmp_path / "d" / "xnli" / "en")
    os.mkfifo(tmp_path / "d" / "xnli" / "en" / "train.jsonl")
    results = []
    worker = threading.Thread(
        target=lambda: results.extend(
            [
                cli("run", tmp_path / "r.yaml", "--dry-run"),
                cli(
                    *["build", "--task", "xnli", "--sources", "en", "--budget", "4", "--data"],
                    tmp_path / "d",
                    "--out",
                    tmp_path / "ds",
                ),
            ]
        ),
        daemon=True,
    )
    started = time.monotonic()
    worker.start()
    worker.join(60)
    assert not worker.is_alive() and time.monotonic() - started < 60
    assert_one_line_error(results[0], "recipe", "FIFO")
    assert_one_line_error(results[1], "data", "FIFO")


def user_prompts(folder: Path, instruction: str = "Premise: {{ premise }}") -> Path:
    (folder / "xnli").mkdir(parents=True, exist_ok=True)
    (folder / "xnli" / "mine.yaml").write_text(
        f"id: xnli/mine\ntask: xnli\ndescription: d\ninstruction: '{instruction}'\n"
        "answer: '{{ label_word }}'\n"
        "verbalizers: {entailment: 'yes', neutral: maybe, contradiction: 'no'}\n"
    )
    return folder


def prompts_recipe(tmp_path: Path, data: str = "synthetic", eval_extra: str = "") -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(
        f"name: t\noutput_dir: {tmp_path / 'out'}\n"
        f"data: {{task: xnli, budget: 8, data: {data}, template: xnli/mine, "
        f"prompts_dir: [{tmp_path / 'p'}]}}\nsources: [en]\n"
        f"model: {{name_or_path: mslt-it:tiny}}\neval: {{task: xnli, langs: [en]{eval_extra}}}\n"
    )
    return path


def test_an_eval_prompts_dir_with_another_file_of_the_trained_id_fails_the_dry_run(
    cli, tmp_path
) -> None:
    """``eval.prompts_dir`` holding another file under the trained template's id passed the
    dry run; the evaluation refused it once every adapter was trained, and advised a re-run."""
    user_prompts(tmp_path / "p")
    user_prompts(tmp_path / "p2", instruction="Other: {{ premise }}")
    path = prompts_recipe(tmp_path, eval_extra=f", prompts_dir: [{tmp_path / 'p2'}]")
    result = cli("run", path, "--dry-run")
    assert_one_line_error(result, "eval.prompts_dir: its 'xnli/mine'", "p2/xnli/mine.yaml")
    user_prompts(tmp_path / "p2")  # the same file again: the same template
    assert cli("run", path, "--dry-run").code == 0
    allowed = prompts_recipe(
        tmp_path, eval_extra=f", prompts_dir: [{tmp_path / 'p'}], allow_template_mismatch: true"
    )
    assert cli("run", allowed, "--dry-run").code == 0


def test_the_eval_section_finds_the_template_the_data_section_trained_with(tmp_path) -> None:
    from mslt_it.runner import eval_inputs

    user_prompts(tmp_path / "p")
    recipe = load_recipe(prompts_recipe(tmp_path))
    assert recipe.eval.prompts_dir == [str(tmp_path / "p")]
    before = eval_inputs(recipe.eval, ["org/model"])
    user_prompts(tmp_path / "p", instruction="Now: {{ premise }}")
    assert eval_inputs(recipe.eval, ["org/model"]) != before  # an edited template is new input


def test_an_input_edited_while_its_step_runs_leaves_the_step_stale(tmp_path, monkeypatch) -> None:
    """The step record took the inputs' identity after the step ran: a template edited while
    the build ran was recorded as what the dataset was built from, and every later run trained
    on rows of the old template as done."""
    import mslt_it.runner

    user_prompts(tmp_path / "p")
    recipe = prompts_recipe(tmp_path)
    built = mslt_it.runner.build_dataset

    def build_then_edit(*args, **kwargs):
        result = built(*args, **kwargs)
        user_prompts(tmp_path / "p", instruction="Now: {{ premise }}")
        return result

    class Stop(Exception):
        pass

    def stop_at_training(step, state: str) -> None:
        if step.name == "train" and state == "running":
            raise Stop

    monkeypatch.setattr(mslt_it.runner, "build_dataset", build_then_edit)
    with pytest.raises((Stop, MsltError)) as caught:  # the training: "build en is stale again"
        execute_plan(make_plan(load_recipe(recipe)), on_step=stop_at_training)
    assert "stale again" in str(caught.value)
    build = next(step for step in make_plan(load_recipe(recipe)).steps if step.name == "build")
    assert build.status() == "stale"


def test_an_edited_template_of_a_mixed_in_task_makes_the_build_stale(tmp_path) -> None:
    """A mixture part's template is as much the build's input as the main task's."""
    user_prompts(tmp_path / "p")
    path = tmp_path / "m.yaml"
    path.write_text(
        f"name: m\noutput_dir: {tmp_path / 'out'}\n"
        f"data: {{task: bactrian-x, budget: 20, data: synthetic, prompts_dir: [{tmp_path / 'p'}], "
        "mixture: [{task: xnli, share: 0.5, template: xnli/mine}]}\nsources: [[de, en]]\n"
        "model: {name_or_path: mslt-it:tiny}\neval: {task: xnli, langs: [en]}\n"
    )

    def build_hash() -> str:
        plan = make_plan(load_recipe(path))
        return next(step for step in plan.steps if step.name == "build").input_hash()

    before = build_hash()
    assert build_hash() == before
    user_prompts(tmp_path / "p", instruction="Now: {{ premise }}")
    assert build_hash() != before


def test_a_training_is_stale_when_its_chat_template_file_or_watched_rows_change(
    tmp_path: Path,
) -> None:
    """The recipe names a chat template file and a folder the watch scores: their content,
    not their paths, is what the training read (edited, the adapter and its curves were
    kept). The watched folder is an input, never an output."""
    from mslt_it.runner import recipe_inputs, train_inputs

    (tmp_path / "chat.jinja").write_text("{{ messages }}")
    watched = tmp_path / "wdata" / "xnli" / "en"
    watched.mkdir(parents=True)
    (watched / "test.jsonl").write_text('{"premise": "p", "hypothesis": "h", "label": 0}\n')
    path = tmp_path / "w.yaml"
    path.write_text(
        f"name: w\noutput_dir: {tmp_path / 'out'}\n"
        "data: {task: xnli, budget: 8, data: synthetic}\nsources: [en]\n"
        f"model: {{name_or_path: mslt-it:tiny, chat_template: {tmp_path / 'chat.jinja'}}}\n"
        "train: {sft: {max_steps: 2}, watch: [{task: xnli, langs: [en], limit: 1, "
        f"data: {tmp_path / 'wdata'}}}]}}\n"
        "eval: {task: xnli, langs: [en]}\n"
    )
    recipe = load_recipe(path)
    before = train_inputs(recipe)
    assert set(before) == {"chat_template", "watch.0"}
    (tmp_path / "chat.jinja").write_text("{{ messages }}!")
    after_template = train_inputs(recipe)
    assert after_template["chat_template"] != before["chat_template"]
    (watched / "test.jsonl").write_text('{"premise": "p", "hypothesis": "h", "label": 1}\n')
    assert train_inputs(recipe)["watch.0"] != after_template["watch.0"]
    assert str(tmp_path / "wdata") in recipe_inputs(recipe)


@pytest.mark.parametrize(
    ("data", "eval_extra", "fragment"),
    [
        ("synthetic", ", template: xnli/missing", "eval.template: unknown id 'xnli/missing'"),
        ("nonexist", "", "data.data: 'nonexist' is not a folder"),
        ("synthetic", ", data: nonexist", "eval.data: 'nonexist' is not a folder"),
    ],
)
def test_what_the_later_steps_need_is_checked_by_the_dry_run(
    cli, tmp_path, data, eval_extra, fragment
) -> None:
    user_prompts(tmp_path / "p")
    result = cli("run", prompts_recipe(tmp_path, data, eval_extra), "--dry-run")
    assert_one_line_error(result, fragment)


def test_a_killed_writers_temporaries_are_cleared_by_the_next_write(tmp_path: Path) -> None:
    """kill -9 leaves a hidden temporary; the next write of that name removes it, and never
    one of a live process or of another host sharing the folder."""
    import socket
    import subprocess
    import sys

    from mslt_it.io import atomic_directory, atomic_write_text

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = int(gone.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host = socket.gethostname()[:40]
    try:
        orphan = tmp_path / f".p.json.mslt-{host}-{dead}.x1.tmp"
        orphan.write_text("half")
        folder = tmp_path / f".out.mslt-{host}-{dead}.x2.tmp"
        folder.mkdir()
        (folder / "part").write_text("half")
        kept = [
            tmp_path / f".p.json.mslt-{host}-{live.pid}.x3.tmp",
            tmp_path / f".p.json.mslt-otherhost-{dead}.x4.tmp",
            tmp_path / ".p.json.x5.tmp",  # not mslt-it's form
        ]
        for path in kept:
            path.write_text("busy")
        atomic_write_text(tmp_path / "p.json", "{}")
        with atomic_directory(tmp_path / "out") as building:
            (building / "done").write_text("yes")
        assert not orphan.exists() and not folder.exists()
        assert all(path.exists() for path in kept)
        assert (tmp_path / "out" / "done").read_text() == "yes"
    finally:
        live.kill()
        live.wait()


def test_an_output_replaced_but_not_removed_is_said(tmp_path, monkeypatch, capsys) -> None:
    """--overwrite swapped the new output in and could not remove the old one (an immutable
    file): it said "written" and left the old one in a hidden folder beside it, without a word."""
    import shutil

    from mslt_it import io

    with io.atomic_directory(tmp_path / "out") as building:
        (building / "v").write_text("1")
    removing = shutil.rmtree
    monkeypatch.setattr(io.shutil, "rmtree", lambda path, **kw: None)  # nothing can be removed
    with io.atomic_directory(tmp_path / "out", overwrite=True) as building:
        (building / "v").write_text("2")
    monkeypatch.setattr(io.shutil, "rmtree", removing)
    assert (tmp_path / "out" / "v").read_text() == "2"
    left = [p for p in tmp_path.iterdir() if p.name.endswith(".old")]
    assert len(left) == 1
    said = capsys.readouterr().err
    assert "could not be removed entirely" in said and str(left[0]) in said.replace("\n", "")


@pytest.mark.parametrize("bad", ["out\nnl", "a\u202eb", "a\x1b[31mb"])
def test_control_characters_in_output_paths_are_refused(cli, tmp_path, bad) -> None:
    build = ("build", "--task", "xnli", "--sources", "en", "--budget", "4", "--data", "synthetic")
    assert_one_line_error(cli(*build, "--out", tmp_path / bad), "control character")
    path = tmp_path / "r.yaml"
    path.write_text(
        f"name: r\noutput_dir: {json.dumps(str(tmp_path / bad))}\n"
        "data: {task: xnli, budget: 8, data: synthetic}\nsources: [en]\n"
        "model: {name_or_path: mslt-it:tiny}\neval: {task: xnli, langs: [en]}\n"
    )
    assert_one_line_error(cli("run", path, "--dry-run"), "output_dir", "control character")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.yaml"]


def test_a_missing_eval_prompts_dir_fails_the_dry_run(cli, tmp_path) -> None:
    user_prompts(tmp_path / "p")
    path = prompts_recipe(tmp_path, eval_extra=f", prompts_dir: [{tmp_path / 'nope'}]")
    assert_one_line_error(cli("run", path, "--dry-run"), "eval.prompts_dir", "nope")


@pytest.mark.slow
def test_edited_outputs_of_a_finished_step_are_never_trusted(cli, tmp_path) -> None:
    """An edited built dataset makes its build stale (and the edit, the user's, stops the run);
    an adapter trained again makes the evaluation stale, and a changed evaluation the report."""
    recipe = small_recipe(tmp_path)
    assert cli("run", recipe).code == 0
    root = tmp_path / "out"
    arrow = next((root / "data" / "en").glob("*.arrow"))
    original = arrow.read_bytes()
    arrow.write_bytes(original + b"\0")
    steps = {s.name: s.status() for s in make_plan(load_recipe(recipe)).steps}
    assert steps["build"] == "stale"
    assert_one_line_error(cli("run", recipe), arrow.name, "edited since mslt-it wrote it")
    arrow.write_bytes(original)
    assert {s.name: s.status() for s in make_plan(load_recipe(recipe)).steps}["build"] == "done"
    weights = root / "adapters" / "en" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes())  # the same settings, new content: a retrained
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    marker = json.loads((root / "adapters" / "en" / ".mslt-it-output.json").read_text())
    from mslt_it.io import file_fingerprint

    marker["files"]["adapter_model.safetensors"] = file_fingerprint(weights)
    (root / "adapters" / "en" / ".mslt-it-output.json").write_text(json.dumps(marker))
    steps = {s.name: s.status() for s in make_plan(load_recipe(recipe)).steps}
    assert steps["train"] == "stale"  # its record says what it held: not these weights
    from mslt_it.runner import content_hash

    step_record = root / "adapters" / "en" / ".mslt-it-step.json"
    retrained = {**json.loads(step_record.read_text()), "output": content_hash(marker["files"])}
    step_record.write_text(json.dumps(retrained))  # as a training again records it
    steps = {s.name: s.status() for s in make_plan(load_recipe(recipe)).steps}
    assert steps["train"] == "done" and steps["eval"] == "stale"
    assert cli("run", recipe).code == 0
    steps = {s.name: s.status() for s in make_plan(load_recipe(recipe)).steps}
    assert set(steps.values()) == {"done"}


def test_a_local_eval_folder_without_the_split_fails_the_dry_run(cli, tmp_path) -> None:
    folder = tmp_path / "mydata" / "xnli" / "en"
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text('{"premise": "a", "hypothesis": "b", "label": 0}\n')
    user_prompts(tmp_path / "p")
    path = prompts_recipe(tmp_path, eval_extra=f", data: {tmp_path / 'mydata'}, split: test")
    assert_one_line_error(cli("run", path, "--dry-run"), "eval.data", "no file for xnli/en/test")


def test_a_data_folder_that_cannot_be_searched_is_named(cli, tmp_path, monkeypatch) -> None:
    """A language's folder without search permission (as a user other than root meets it)
    was "cannot write or read mydata/xnli/en/train.parquet": the first name looked for, of a
    file that need not exist, in words for a file that could not be written."""
    folder = tmp_path / "mydata" / "xnli" / "en"
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text('{"premise": "a", "hypothesis": "b", "label": 0}\n')
    lstat = os.lstat

    def denied(path, *rest, **options):
        if Path(path).parent == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return lstat(path, *rest, **options)

    monkeypatch.setattr(os, "lstat", denied)
    user_prompts(tmp_path / "p")
    path = prompts_recipe(tmp_path, eval_extra=f", data: {tmp_path / 'mydata'}, split: test")
    result = cli("run", path, "--dry-run")
    assert_one_line_error(result, "eval.data: cannot look in", "xnli/en'", "must be readable")


@pytest.mark.parametrize("made", ["fifo", "folder", "huge"])
def test_a_local_eval_file_that_is_not_readable_data_fails_the_dry_run(cli, tmp_path, made) -> None:
    """A FIFO, a folder or a file past the size limit where the evaluation's split belongs
    passed the dry run, and stopped the run once every adapter was trained."""
    folder = tmp_path / "mydata" / "xnli" / "en"
    folder.mkdir(parents=True)
    test = folder / "test.jsonl"
    if made == "fifo":
        os.mkfifo(test)
    elif made == "folder":
        test.mkdir()
    else:
        with test.open("wb") as handle:
            handle.truncate(6 * 1024**3)  # sparse: no disk used
    user_prompts(tmp_path / "p")
    path = prompts_recipe(tmp_path, eval_extra=f", data: {tmp_path / 'mydata'}, split: test")
    said = {"fifo": "is a FIFO", "folder": "is a folder", "huge": "a data file may be at most"}
    assert_one_line_error(cli("run", path, "--dry-run"), "eval.data", said[made])


def test_hashing_a_large_folder_the_first_time_shows_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 7B model's first hash reads ~15 GB: a line says so (off a terminal, plain lines); the
    digest is the same with or without it, and a remembered folder is silent."""
    import mslt_it.identity as identity

    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(os.urandom(6 << 20))
    (model / "config.json").write_text("{}", encoding="utf-8")
    quiet = identity.tree_sha256(model)  # below the threshold: no progress
    assert "hashing" not in capsys.readouterr().err
    (model / "model.safetensors").write_bytes(os.urandom(6 << 20))  # new content, unhashed
    monkeypatch.setattr(identity, "PROGRESS_BYTES", 1 << 20)
    monkeypatch.delenv("MSLT_IT_PROGRESS", raising=False)
    monkeypatch.setenv("MSLT_IT_PROGRESS_SECONDS", "0")
    monkeypatch.setenv("MSLT_IT_CACHE", str(tmp_path / "cache"))
    shown = identity.tree_sha256(model)
    err = capsys.readouterr().err
    assert "hashing model (MiB): 6/6" in err, err
    assert shown != quiet
    identity._MEMORY.clear()  # the disk cache answers now: nothing left to read, nothing said
    assert identity.tree_sha256(model) == shown
    assert "hashing" not in capsys.readouterr().err
    import shutil

    shutil.copytree(model, tmp_path / "copy")
    monkeypatch.setattr(identity, "PROGRESS_BYTES", 1 << 40)
    assert identity.tree_sha256(tmp_path / "copy") == shown  # read again, without progress


def test_a_step_whose_output_another_process_writes_is_named_by_the_step(cli, tmp_path) -> None:
    """Two `run`s of one recipe: the second stops at the step the first is writing, and the
    message speaks of that step and the recipe, not of an option the user never gave."""
    recipe = small_recipe(tmp_path)
    claim_experiment_folder(load_recipe(recipe))  # as the first `run` did
    holder = hold_lock(tmp_path / "out" / "data" / "en", 60)
    try:
        result = cli("run", recipe)
    finally:
        holder.kill()
        holder.wait()
    assert_one_line_error(
        result, "build en: '", "in use", "another mslt-it process", str(holder.pid)
    )
    assert "--out" not in result.err
    assert "wait for it to finish" in result.err and "choose another" not in result.err


def test_a_recipes_model_folder_switched_to_another_named_model_is_made_again(
    tiny_model_dir, tmp_path
) -> None:
    """A recipe keeps one model folder for mslt-it's named models: switched from
    ``mslt-it:tiny`` to ``mslt-it:tiny-world``, the folder held the random weights, and the
    adapters trained on them were reported as the world base's."""
    import shutil

    from mslt_it.named_models import (
        TINY_MODEL,
        TINY_WORLD_MODEL,
        ensure_named_model,
        named_model_in,
    )
    from mslt_it.tiny.world_base import RESOURCES_DIR, SHIPPED_WORLD_MODEL

    folder = tmp_path / "tiny-model"
    shutil.copytree(tiny_model_dir, folder)
    assert named_model_in(folder) == TINY_MODEL
    assert ensure_named_model(TINY_MODEL, folder) == folder  # the one asked for: kept
    ensure_named_model(TINY_WORLD_MODEL, folder)
    assert named_model_in(folder) == TINY_WORLD_MODEL
    shipped = RESOURCES_DIR / SHIPPED_WORLD_MODEL / "model.safetensors"
    assert (folder / "model.safetensors").read_bytes() == shipped.read_bytes()
    (folder / "notes.txt").write_text("mine")  # the user's file: the folder is not replaced
    with pytest.raises(Exception, match=r"notes\.txt"):
        ensure_named_model(TINY_MODEL, folder)
    assert (folder / "notes.txt").read_text() == "mine"
    assert named_model_in(folder) == TINY_WORLD_MODEL
    (folder / "notes.txt").unlink()
    record = json.loads((folder / "mslt_it_tiny.json").read_text())
    (folder / "mslt_it_tiny.json").write_text(json.dumps({**record, "world": False}))
    assert named_model_in(folder) is None  # edited: it names a model its weights are not
    with pytest.raises(Exception, match=r"mslt_it_tiny\.json"):
        ensure_named_model(TINY_MODEL, folder)  # the edited record is the user's: not removed
    assert json.loads((folder / "mslt_it_tiny.json").read_text())["world"] is False


@pytest.mark.parametrize("record", ["[]", "{", '{"input_hash": 5}', ""])
def test_a_damaged_step_record_means_the_step_is_redone(tmp_path, record: str) -> None:
    """A step record the user damaged was an internal error (``list indices must be integers``)
    in every command that read the plan; its output is from unknown inputs: stale."""
    from mslt_it.runner import MARKER, Step

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / MARKER).write_text(record)
    step = Step("report", [], tmp_path / "out", lambda: "abc", lambda: None)
    assert step.status() == "stale"


def test_a_same_size_edit_with_its_time_set_back_is_hashed_again(
    tmp_path: Path, monkeypatch
) -> None:
    """A large file's digest is remembered across processes by its stat; ``touch -r`` after a
    same-size edit kept size, modification time and inode, and the old digest was used."""
    import mslt_it.identity as identity

    monkeypatch.setenv("MSLT_IT_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"0" * (identity.CHUNK + 10))
    before = identity.file_sha256(path)
    times = path.stat()
    time.sleep(0.01)
    with path.open("r+b") as handle:  # in place: the same inode and size
        handle.write(b"1")
    os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))
    identity._MEMORY.clear()  # another process: only the disk cache is left
    assert identity.file_sha256(path) != before


def test_only_one_run_retrained_clears_the_old_evaluation_and_a_refused_run_keeps_the_recipe(
    cli, tmp_path, monkeypatch
) -> None:
    """``run --only en`` (a Slurm array task) retrained the adapter and left the evaluation and
    report of the old one looking current; a run that stopped at a user's file had already
    replaced the experiment's recipe.yaml, beside results of the recipe before."""
    recipe = small_recipe(tmp_path)
    assert cli("run", recipe).code == 0
    out = tmp_path / "out"
    first = recipe.read_text()
    assert (out / "recipe.yaml").read_text() == first

    (out / "eval" / "notes.txt").write_text("mine")
    recipe.write_text(first.replace("limit: 2", "limit: 3"))
    assert_one_line_error(cli("run", recipe), "notes.txt")
    assert (out / "recipe.yaml").read_text() == first  # the recipe of the results there
    assert (out / "eval" / "notes.txt").read_text() == "mine"
    (out / "eval" / "notes.txt").unlink()

    # Every folder to be made again is looked at before any is removed: the adapter was gone,
    # and the report of it left, when the user's file was found in the report's folder.
    small_recipe(tmp_path, learning_rate="2.0e-3")
    (out / "report" / "notes.txt").write_text("mine")
    assert_one_line_error(cli("run", recipe), "report (all)", "notes.txt", "did not write")
    assert (out / "adapters" / "en" / ".mslt-it-step.json").is_file()
    assert (out / "eval" / "results.json").is_file()
    (out / "report" / "notes.txt").unlink()
    record = out / "adapters" / "en" / "run.json"
    written = record.read_text()
    record.write_text(written + " ")  # a file mslt-it wrote, edited: the user's now
    assert_one_line_error(cli("run", recipe), "run.json", "edited since mslt-it wrote it")
    record.write_text(written)
    assert (out / "report" / "report.md").is_file()

    # The model folder edited: its training would stop there, after the stale adapter and the
    # report were removed. Named first, by the dry run too; and so is a folder that cannot go.
    config = out / "tiny-model" / "generation_config.json"
    kept = config.read_text()
    config.write_text(kept + " ")
    for args in ((recipe, "--dry-run"), (recipe,)):
        assert_one_line_error(cli("run", *args), "tiny-model", "generation_config.json")
    assert (out / "adapters" / "en" / ".mslt-it-step.json").is_file()
    assert (out / "report" / "report.md").is_file()
    config.write_text(kept)
    from mslt_it import outputs

    def read_only(path: Path, field: str) -> None:
        if Path(path) == out / "report":
            raise MsltError(f"{field}: cannot create files in {path} (Permission denied)")

    monkeypatch.setattr(outputs, "check_writable", read_only)
    assert_one_line_error(cli("run", recipe), "report (all): output", "Permission denied")
    assert (out / "adapters" / "en" / ".mslt-it-step.json").is_file()
    # a dataset to build again too: the report, waiting for that build, was looked at after it
    edited = recipe.read_text()
    recipe.write_text(edited.replace("budget: 16", "budget: 12"))
    assert_one_line_error(cli("run", recipe), "report (all): output", "Permission denied")
    assert (out / "data" / "en" / ".mslt-it-step.json").is_file()
    recipe.write_text(edited)
    monkeypatch.undo()

    # Another process holding the old evaluation: waited for briefly (tasks of an array clear
    # it at once), then named; never removed under its writer.
    from mslt_it import runner

    steps = make_plan(load_recipe(recipe)).steps
    monkeypatch.setattr(runner, "CLEAR_WAIT_SECONDS", 0.5)
    holder = hold_lock(out / "eval", 30)
    try:
        with pytest.raises(MsltError, match="another mslt-it process"):
            runner.clear_outputs_to_redo(steps)
        assert (out / "eval" / "results.json").is_file()
    finally:
        holder.kill()
        holder.wait()
    result = cli("run", recipe, "--only", "en")
    assert result.code == 0, result.err
    assert no_results(out / "eval") and not (out / "report").exists()
    assert (out / "recipe.yaml").read_text() == recipe.read_text()
    statuses = {s.name: s.status() for s in make_plan(load_recipe(recipe)).steps}
    assert statuses == {"build": "done", "train": "done", "eval": "todo", "report": "waiting"}


def test_a_training_is_stale_when_the_rows_of_its_held_out_loss_change(tmp_path: Path) -> None:
    """Held-out rows (of train.eval_langs, and the sources' unused ones) are read from the
    data folder when training, not from the dataset: an edited target file re-made the build,
    whose rows (and fingerprint) stayed the same, so the training and its curves were kept."""
    from mslt_it.runner import train_inputs

    row = '{{"id": "{i}", "premise": "p {i}", "hypothesis": "h", "label": {label}}}\n'
    for lang in ("en", "sw"):
        folder = tmp_path / "rows" / "xnli" / lang
        folder.mkdir(parents=True)
        for split in ("train", "test"):
            text = "".join(row.format(i=i, label=i % 3) for i in range(12))
            (folder / f"{split}.jsonl").write_text(text)
    path = tmp_path / "h.yaml"
    path.write_text(
        f"name: h\noutput_dir: {tmp_path / 'out'}\n"
        f"data: {{task: xnli, budget: 8, data: {tmp_path / 'rows'}}}\nsources: [en]\n"
        "model: {name_or_path: mslt-it:tiny}\n"
        "train: {sft: {max_steps: 2, eval_steps: 1}, eval_langs: [sw], heldout_rows: 2}\n"
        "eval: {task: xnli, langs: [en]}\n"
    )
    recipe = load_recipe(path)
    before = train_inputs(recipe)
    target = tmp_path / "rows" / "xnli" / "sw" / "train.jsonl"
    target.write_text(target.read_text().replace('"p 0"', '"p zero"'))
    recipe = load_recipe(path)
    assert train_inputs(recipe)["heldout"] != before["heldout"]
    other = tmp_path / "rows" / "xnli" / "de"  # nobody's held-out language: its hash holds
    other.mkdir()
    (other / "train.jsonl").write_text(row.format(i=0, label=0))
    assert train_inputs(load_recipe(path)) == train_inputs(recipe)
    path.write_text(path.read_text().replace(", eval_steps: 1}, eval_langs: [sw]", "}"))
    assert "heldout" not in train_inputs(load_recipe(path))  # no held-out loss: hash as before


def test_a_build_is_stale_when_a_mixed_in_tasks_rows_or_its_tokenizer_change(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    """A mixture part without a data folder of its own reads the recipe's, whose files are all
    the build's input. The tokenizer of the manifest's token statistics was hashed by its
    name, not its files."""
    import shutil

    from mslt_it.runner import build_inputs

    rows = {
        "xnli": '{{"id": "{i}", "premise": "p {i}", "hypothesis": "h", "label": {label}}}\n',
        "pawsx": '{{"id": "{i}", "sentence1": "a {i}", "sentence2": "b", "label": {binary}}}\n',
    }
    for task, row in rows.items():
        for lang in ("de", "en"):
            folder = tmp_path / "rows" / task / lang
            folder.mkdir(parents=True)
            lines = (row.format(i=i, label=i % 3, binary=i % 2) for i in range(12))
            (folder / "train.jsonl").write_text("".join(lines))
    tokenizer = tmp_path / "tok"
    shutil.copytree(tiny_model_dir, tokenizer)
    path = tmp_path / "m.yaml"
    path.write_text(
        f"name: m\noutput_dir: {tmp_path / 'out'}\n"
        f"data: {{task: xnli, budget: 8, data: {tmp_path / 'rows'}, tokenizer: {tokenizer}, "
        "mixture: [{task: pawsx, share: 0.5}]}\nsources: [[de, en]]\n"
        "model: {name_or_path: mslt-it:tiny}\neval: {task: xnli, langs: [en]}\n"
    )

    def inputs() -> dict:
        recipe = load_recipe(path)
        return build_inputs(recipe.data_config(recipe.runs[0]))

    before = inputs()
    part = tmp_path / "rows" / "pawsx" / "de" / "train.jsonl"
    part.write_text(part.read_text().replace('"a 0"', '"a zero"'))
    after_part = inputs()
    assert after_part["data"] != before["data"]  # the recipe's folder, the part's rows in it
    vocabulary = tokenizer / "tokenizer.json"
    vocabulary.write_text(vocabulary.read_text().replace('"merges"', '"merges" ', 1))
    assert inputs()["tokenizer"] != after_part["tokenizer"]


def test_a_training_is_stale_when_its_watched_tasks_own_files_change(tmp_path: Path) -> None:
    """The watch scores a task through its definition and template: the user's copies of
    them, edited, kept the transfer curves of the old ones."""

    from mslt_it.paths import PROMPTS_DIR, TASKS_DIR
    from mslt_it.runner import train_inputs

    (tmp_path / "T").mkdir()
    definition = (TASKS_DIR / "pawsx.yaml").read_text().replace("name: pawsx", "name: mypaws")
    (tmp_path / "T" / "mypaws.yaml").write_text(definition)
    (tmp_path / "P" / "mypaws").mkdir(parents=True)
    template = (PROMPTS_DIR / "pawsx" / "en-instruct.yaml").read_text()
    template = template.replace("pawsx/en-instruct", "mypaws/en-instruct")
    (tmp_path / "P" / "mypaws" / "en-instruct.yaml").write_text(template.replace("pawsx", "mypaws"))
    path = tmp_path / "w.yaml"
    path.write_text(
        f"name: w\noutput_dir: {tmp_path / 'out'}\ntasks_dir: [{tmp_path / 'T'}]\n"
        f"data: {{task: xnli, budget: 8, data: synthetic, prompts_dir: [{tmp_path / 'P'}]}}\n"
        "sources: [en]\nmodel: {name_or_path: mslt-it:tiny}\n"
        "train: {sft: {max_steps: 2}, watch: [{task: mypaws, langs: [en], limit: 1}]}\n"
        "eval: {task: xnli, langs: [en]}\n"
    )
    before = train_inputs(load_recipe(path))["watch.0.files"]
    assert set(before) == {"definition", "template"}
    edited = tmp_path / "P" / "mypaws" / "en-instruct.yaml"
    edited.write_text(edited.read_text() + "\n# edited\n")
    after_template = train_inputs(load_recipe(path))["watch.0.files"]
    assert after_template["template"] != before["template"]
    mine = tmp_path / "T" / "mypaws.yaml"
    mine.write_text(mine.read_text() + "\n# edited\n")
    assert train_inputs(load_recipe(path))["watch.0.files"]["definition"] != before["definition"]


@pytest.mark.slow
def test_a_dataset_built_again_with_the_same_rows_keeps_its_training(tmp_path: Path) -> None:
    """A build hashes every file of its data folder: an edit to another language's file made
    it again, which cleared its training before it ran, although the rows came out the same.
    The training is now kept while it waits for the build, and looked at once the build is
    done: the same rows and template keep it, a changed template digest or changed rows redo
    it, and then its evaluation and report are removed before it trains."""
    row = '{{"id": "{i}", "premise": "p {i}", "hypothesis": "h", "label": {label}}}\n'
    for lang in ("en", "de"):
        folder = tmp_path / "rows" / "xnli" / lang
        folder.mkdir(parents=True)
        lines = (row.format(i=i, label=i % 3) for i in range(12))
        (folder / "train.jsonl").write_text("".join(lines))
    user_prompts(tmp_path / "p")
    path = tmp_path / "k.yaml"
    path.write_text(
        f"name: k\noutput_dir: {tmp_path / 'out'}\n"
        f"data: {{task: xnli, budget: 8, data: {tmp_path / 'rows'}, template: xnli/mine, "
        f"prompts_dir: [{tmp_path / 'p'}]}}\nsources: [en]\n"
        "model: {name_or_path: mslt-it:tiny}\n"
        "train: {max_length: 128, lora: {r: 4, lora_alpha: 8, target_modules: all-linear}, "
        "sft: {max_steps: 2, per_device_train_batch_size: 4}}\n"
        "eval: {task: xnli, langs: [en], data: synthetic, limit: 2, mode: rank}\n"
    )

    def run(kill_at: str | None = None) -> list[tuple[str, str]]:
        plan = make_plan(load_recipe(path))
        if kill_at:
            next(step for step in plan.steps if step.name == kill_at).execute = interrupt
        ran: list[tuple[str, str]] = []
        execute_plan(plan, on_step=lambda step, what: ran.append((step.name, what)))
        return ran

    out = tmp_path / "out"
    weights = out / "adapters" / "en" / "adapter_model.safetensors"
    run()
    trained = weights.stat().st_mtime_ns

    other = tmp_path / "rows" / "xnli" / "de" / "train.jsonl"
    other.write_text(other.read_text().replace('"p 0"', '"p zero"'))
    statuses = [step.status() for step in make_plan(load_recipe(path)).steps]
    assert statuses == ["stale", "waiting", "waiting", "waiting"]
    ran = run()
    assert ran[:2] == [("build", "running"), ("build", "done")]
    assert set(ran[2:]) == {(name, "skipped (done)") for name in ("train", "eval", "report")}
    assert weights.stat().st_mtime_ns == trained

    template = tmp_path / "p" / "xnli" / "mine.yaml"
    template.write_text(template.read_text() + "# a comment: the same rows, another digest\n")
    with pytest.raises(KeyboardInterrupt):  # killed while training again
        run(kill_at="train")
    assert no_results(out / "eval") and not (out / "report").exists()
    assert ("train", "running") in run()
    assert weights.stat().st_mtime_ns != trained
    assert [step.status() for step in make_plan(load_recipe(path)).steps] == ["done"] * 4


def test_where_a_template_was_read_from_is_no_part_of_what_training_reads(
    tmp_path: Path,
) -> None:
    """A manifest records its template file's absolute path and the prompt folders (to read
    more rows of its task as the build did); a dataset built again from a moved prompt folder
    keeps its training, as its rows and the template's digest are the same."""
    from mslt_it.runner import read_by_training

    read = []
    for place in ("a", "b"):
        folder = tmp_path / place
        folder.mkdir()
        template = {"id": "xnli/mine", "sha256": "0" * 64, "path": f"/{place}/xnli/mine.yaml",
                    "prompts_dirs": [f"/{place}"]}  # fmt: skip
        (folder / "manifest.json").write_text(
            json.dumps({"fingerprint": "f", "template": template})
        )
        read.append(read_by_training(folder))
    assert read[0] == read[1] and read[0]["template"] == {"id": "xnli/mine", "sha256": "0" * 64}


def test_a_training_holds_its_dataset_while_it_trains_and_is_marked(tmp_path: Path) -> None:
    """Another `mslt-it run` of the edited recipe rebuilt the dataset while this one trained on
    the old rows, and the adapter was marked done from the new ones. The dataset's lock is
    held from the training's start to its mark, so that process waits, then is named."""
    import fcntl

    from mslt_it.locks import lock_path

    plan = make_plan(load_recipe(small_recipe(tmp_path)))
    build, train = plan.steps[:2]
    held: list[bool] = []

    def training() -> None:
        handle = os.open(lock_path(build.output), os.O_RDWR)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.append(False)
        except BlockingIOError:
            held.append(True)
        finally:
            os.close(handle)
        raise KeyboardInterrupt

    train.execute = training
    with pytest.raises(KeyboardInterrupt):
        execute_plan(plan)
    assert held == [True] and (build.output / "manifest.json").is_file()


def test_a_step_made_stale_while_the_run_goes_on_is_named(tmp_path: Path) -> None:
    """Data edited during a run made a finished build stale again; the training's turn then
    said only "an earlier step has not finished", after every step had printed done."""
    plan = make_plan(load_recipe(small_recipe(tmp_path)))
    build = plan.steps[0]

    def edited_after_the_build(step, what: str) -> None:
        if step is build and what == "done":
            build.input_hash = lambda: "inputs edited meanwhile"

    with pytest.raises(MsltError, match=r"^train en: build en is stale again: its inputs changed"):
        execute_plan(plan, on_step=edited_after_the_build)


def test_a_step_this_run_made_and_another_process_removed_is_named(tmp_path: Path) -> None:
    """Another `run` of an edited recipe removed the dataset this run had just built: the run
    said "build en has not run", of a step it had printed done."""
    import shutil

    plan = make_plan(load_recipe(small_recipe(tmp_path)))
    build = plan.steps[0]

    def removed_by_another(step, what: str) -> None:
        if step is build and what == "done":
            shutil.rmtree(build.output)

    with pytest.raises(MsltError, match=r"^train en: build en, made by this run, was removed"):
        execute_plan(plan, on_step=removed_by_another)


def write_eval_rows(root: Path, lang: str, hypothesis: str = "h") -> None:
    folder = root / "xnli" / lang
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"premise": f"p{i} {lang}", "hypothesis": hypothesis, "label": i % 3} for i in range(3)]
    (folder / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def predicted(out: Path) -> dict[str, int]:
    """How many examples each run of the evaluation in ``out`` predicted this time."""
    return {
        path.parent.name: json.loads(path.read_text())["examples_predicted"]
        for path in sorted(out.glob("*/timings.json"))
    }


@pytest.mark.slow
def test_an_evaluation_made_again_predicts_only_what_changed(cli, tmp_path: Path) -> None:
    """An edited language's rows, an added language or a retrained adapter re-evaluated every
    adapter on every language (for a grid of 7B adapters, hours): the evaluation is reopened
    and only what changed is predicted, with the results of an evaluation made afresh."""
    rows = tmp_path / "rows"
    for lang in ("en", "de"):
        write_eval_rows(rows, lang)
    recipe = tmp_path / "grid.yaml"
    text = (
        f"name: grid\noutput_dir: {tmp_path / 'out'}\n"
        "data: {task: xnli, budget: 8, data: synthetic}\nsources: [[en], [de]]\n"
        "model: {name_or_path: mslt-it:tiny}\n"
        "train: {max_length: 128, lora: {r: 4, lora_alpha: 8, target_modules: all-linear}, "
        "sft: {learning_rate: 3.0e-3, max_steps: 1, per_device_train_batch_size: 4}}\n"
        f"eval: {{task: xnli, langs: [en, de], data: {rows}, mode: rank, include_base: true}}\n"
    )
    recipe.write_text(text)
    assert cli("run", recipe).code == 0
    ev = tmp_path / "out" / "eval"
    assert predicted(ev) == {"base": 6, "de": 6, "en": 6}

    write_eval_rows(rows, "de", hypothesis="edited")  # one language's rows
    result = cli("run", recipe)
    assert result.code == 0, result.err
    assert predicted(ev) == {"base": 3, "de": 3, "en": 3}
    kept = {run: (ev / run / "predictions.jsonl").read_text() for run in predicted(ev)}
    scores = (tmp_path / "out" / "report" / "scores.csv").read_text()

    # The same evaluation made from scratch: the same predictions, the same report.
    shutil.rmtree(ev)
    assert cli("run", recipe).code == 0
    assert predicted(ev) == {"base": 6, "de": 6, "en": 6}
    assert {run: (ev / run / "predictions.jsonl").read_text() for run in kept} == kept
    assert (tmp_path / "out" / "report" / "scores.csv").read_text() == scores

    write_eval_rows(rows, "fr")  # a language added, the base model no longer evaluated
    recipe.write_text(text.replace("[en, de]", "[en, de, fr]").replace("true", "false"))
    assert cli("run", recipe).code == 0
    assert predicted(ev) == {"de": 3, "en": 3}
    assert not (ev / "base").exists()

    # One adapter trained again (its folder deleted): that adapter alone, if its weights moved.
    weights = tmp_path / "out" / "adapters" / "de" / "adapter_model.safetensors"
    before = weights.read_bytes()
    shutil.rmtree(weights.parent)
    assert cli("run", recipe).code == 0
    assert predicted(ev) == {"de": 0 if weights.read_bytes() == before else 9, "en": 0}


def test_the_record_of_one_step_put_beside_another_steps_output_is_not_trusted(
    tmp_path: Path,
) -> None:
    """The folder of build ``en`` was given German rows (the files of build ``de``, its marker
    included) while keeping its own step record: the record said "done", and the run trained
    "SSLT en" on German. The record says what its output held; another output is stale."""
    recipe = tmp_path / "two.yaml"
    recipe.write_text(
        f"name: two\noutput_dir: {tmp_path / 'out'}\n"
        "data: {task: xnli, budget: 8, data: synthetic}\nsources: [[en], [de]]\n"
        "model: {name_or_path: mslt-it:tiny}\n"
        "eval: {task: xnli, langs: [en], data: synthetic, limit: 2, mode: rank}\n"
    )
    plan = make_plan(load_recipe(recipe))
    claim_experiment_folder(plan.recipe)
    builds = [step for step in plan.steps if step.name == "build"]
    for step in builds:
        step.execute()
        step.mark_done(step.input_hash())
    assert [step.status() for step in builds] == ["done", "done"]
    english, german = (tmp_path / "out" / "data" / run for run in ("en", "de"))
    record = (english / ".mslt-it-step.json").read_bytes()
    shutil.rmtree(english)
    shutil.copytree(german, english)
    (english / ".mslt-it-step.json").write_bytes(record)
    again = [step for step in make_plan(load_recipe(recipe)).steps if step.name == "build"]
    assert [step.status() for step in again] == ["stale", "done"]


@pytest.mark.slow
def test_an_adopted_copy_of_an_experiment_is_done(cli, tmp_path: Path) -> None:
    """A copied experiment whose markers were lost, adopted step by step: adopt listed each
    step's record with its files, the record's digest of the output no longer matched, and
    the next run built, trained and evaluated everything again."""
    recipe = small_recipe(tmp_path)
    assert cli("run", recipe).code == 0
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "out", copy)
    for marker in copy.rglob(".mslt-it-output.json"):
        marker.unlink()
    kinds = {"data/en": "dataset", "adapters/en": "adapter", "eval": "evaluation",
             "report": "report", "tiny-model": "model", ".": "experiment"}  # fmt: skip
    for folder, kind in kinds.items():
        adopted = cli("adopt", copy / folder, "--kind", kind)
        assert adopted.code == 0, adopted.err
    statuses = {s.title: s.status() for s in make_plan(load_recipe(recipe, copy)).steps}
    assert set(statuses.values()) == {"done"}, statuses
    # the recipe named otherwise (relative, absolute) is the same recipe: nothing to redo
    relative = Path(os.path.relpath(recipe))
    statuses = {s.title: s.status() for s in make_plan(load_recipe(relative, copy)).steps}
    assert set(statuses.values()) == {"done"}, statuses


def test_the_experiments_recipe_copy_is_the_recipe_its_steps_ran(tmp_path: Path) -> None:
    """The copy was read from the recipe's file when the run ended: a recipe edited while the
    run went on was kept beside results made from the one read at the start."""
    from mslt_it.runner import RECIPE_COPY, record_recipe_copy

    path = small_recipe(tmp_path)
    recipe = load_recipe(path)
    ran = path.read_text()
    path.write_text(ran.replace("3.0e-3", "9.9e-1"))
    claim_experiment_folder(recipe)
    record_recipe_copy(recipe)
    assert (recipe.output_dir / RECIPE_COPY).read_text() == ran


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_special_results_file_in_the_evaluation_is_one_line_not_a_hang(
    tmp_path: Path, kind: str
) -> None:
    """The report step hashed every ``results.json`` below the evaluation with a plain open: a
    FIFO hung even ``run --dry-run``, a folder was an internal error."""
    plan = make_plan(load_recipe(small_recipe(tmp_path)))
    report = next(step for step in plan.steps if step.name == "report")
    odd = report.output.parent / "eval" / "old-run" / "results.json"
    odd.parent.mkdir(parents=True)
    os.mkfifo(odd) if kind == "fifo" else odd.mkdir()
    assert report.upstream is not None
    with pytest.raises(MsltError, match=r"^report: .*results\.json.* is a (FIFO|folder)"):
        report.upstream()


@pytest.mark.slow
def test_only_one_run_leaves_another_runs_stale_adapter_to_it(cli, tmp_path: Path) -> None:
    """``run --only en`` after an edit removed every stale adapter, the other run's too: hours
    of its training gone by a command said to build and train one run."""
    recipe = small_recipe(tmp_path)
    recipe.write_text(recipe.read_text().replace("sources: [en]", "sources: [[en], [de]]"))
    assert cli("run", recipe).code == 0
    out = tmp_path / "out"
    recipe.write_text(recipe.read_text().replace("3.0e-3", "2.0e-3"))
    (out / "adapters" / "de" / "notes.txt").write_text("mine")  # in the run left alone
    assert cli("run", recipe, "--only", "en", "--dry-run").code == 0  # as the run: not refused
    assert cli("run", recipe, "--only", "en").code == 0
    assert (out / "adapters" / "de" / "adapter_model.safetensors").is_file()
    assert (out / "adapters" / "de" / "notes.txt").read_text() == "mine"
    assert not (out / "eval" / "results.json").exists()  # of the old en: stale for every run
    plan = {step.title: step.status() for step in make_plan(load_recipe(recipe)).steps}
    assert plan["train en"] == "done" and plan["train de"] == "stale"


@pytest.mark.parametrize("host", ["adapter", "experiment"])
def test_an_experiment_is_never_written_inside_another_output(cli, tmp_path, host) -> None:
    """``run --out EXP/adapters/en/x`` wrote a whole experiment inside an adapter, and the
    experiment around it then found its adapter stale."""
    from mslt_it.io import mark_owner

    holder = tmp_path / "holder"
    holder.mkdir()
    mark_owner(holder, host)
    recipe = small_recipe(tmp_path)
    for args in (("--dry-run",), ()):
        result = cli("run", recipe, "--out", holder / "x", *args)
        assert_one_line_error(result, "output_dir (or --out)", f"mslt-it's {host}")
    assert not (holder / "x").exists()


def test_a_recipe_of_another_name_does_not_take_over_an_experiment(cli, tmp_path) -> None:
    """Two recipes sharing an ``output_dir``: the second replaced the first's evaluation and
    report, without a word, and left its adapters beside them."""
    from mslt_it.runner import record_recipe_copy

    path = small_recipe(tmp_path)
    recipe = load_recipe(path)
    claim_experiment_folder(recipe)
    record_recipe_copy(recipe)
    other = tmp_path / "other.yaml"
    other.write_text(path.read_text().replace("name: small", "name: other"))
    assert_one_line_error(cli("run", other, "--dry-run"), "named 'small', not 'other'")
    path.write_text(path.read_text().replace("limit: 2", "limit: 3"))  # edited, same name
    assert cli("run", path, "--dry-run").code == 0


def test_a_recipe_that_saves_no_optimizer_state_is_refused_before_any_work(cli, tmp_path) -> None:
    """``sft.save_only_model: true``: a killed training could not be resumed as the same run, so
    ``run`` trained it again from step 0, and one cut by a time limit each time never ended."""
    recipe = small_recipe(tmp_path)
    recipe.write_text(
        recipe.read_text().replace("max_steps: 2,", "max_steps: 2, save_only_model: true,")
    )
    for args in (("--dry-run",), ()):
        assert_one_line_error(cli("run", recipe, *args), "train.sft.save_only_model", "step 0")
    assert not (tmp_path / "out").exists()


def test_a_named_model_is_only_a_marked_copy_of_the_shipped_base(tmp_path, monkeypatch) -> None:
    """A folder without mslt-it's marker whose record says ``world`` was used as
    ``mslt-it:tiny-world``, and a copy of an earlier release's base as this one's: only the
    marker proves the folder is ours, and only the shipped bytes that it is this base."""
    from mslt_it import named_models
    from mslt_it.io import OWNER_FILE
    from mslt_it.named_models import TINY_WORLD_MODEL, ensure_named_model, named_model_in
    from mslt_it.paths import RESOURCES_DIR, SHIPPED_WORLD_MODEL

    folder = ensure_named_model(TINY_WORLD_MODEL, tmp_path / "cache" / "tiny-world")
    assert named_model_in(folder) == TINY_WORLD_MODEL
    release = tmp_path / "release"  # the next version ships a base with other weights
    shutil.copytree(RESOURCES_DIR / SHIPPED_WORLD_MODEL, release / SHIPPED_WORLD_MODEL)
    weights = release / SHIPPED_WORLD_MODEL / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(named_models, "RESOURCES_DIR", release)
    named_models.shipped_digests.cache_clear()
    assert named_model_in(folder) is None  # stale: made again by the next resolve
    monkeypatch.undo()
    named_models.shipped_digests.cache_clear()
    assert named_model_in(folder) == TINY_WORLD_MODEL
    (folder / OWNER_FILE).unlink()  # a folder of the user's, whatever its record says
    assert named_model_in(folder) is None


def test_a_watch_is_stale_only_when_its_own_languages_rows_change(tmp_path: Path) -> None:
    """A watch hashed the whole data folder: editing a language nobody watched (or trained on)
    retrained every adapter of the grid. Only the watched languages' files count now."""
    from mslt_it.runner import train_inputs

    rows = '{"premise": "p", "hypothesis": "h", "label": 0}\n'
    for lang in ("en", "sw", "de"):
        (tmp_path / "wdata" / "xnli" / lang).mkdir(parents=True)
        (tmp_path / "wdata" / "xnli" / lang / "test.jsonl").write_text(rows)
    path = tmp_path / "w.yaml"
    path.write_text(
        f"name: w\noutput_dir: {tmp_path / 'out'}\n"
        "data: {task: xnli, budget: 8, data: synthetic}\nsources: [en]\n"
        "model: {name_or_path: mslt-it:tiny}\n"
        "train: {sft: {max_steps: 2}, watch: [{task: xnli, langs: [sw, en], limit: 1, "
        f"data: {tmp_path / 'wdata'}}}]}}\n"
        "eval: {task: xnli, langs: [en]}\n"
    )
    recipe = load_recipe(path)
    before = train_inputs(recipe)["watch.0"]
    (tmp_path / "wdata" / "xnli" / "de" / "test.jsonl").write_text(rows + rows)
    assert train_inputs(recipe)["watch.0"] == before
    (tmp_path / "wdata" / "xnli" / "sw" / "test.jsonl").write_text(rows + rows)
    assert train_inputs(recipe)["watch.0"] != before


def test_an_empty_eval_langs_list_in_a_recipe_is_refused(cli, tmp_path) -> None:
    """``eval.langs: []`` read as "not given" and evaluated every language of the task, where
    ``--langs ''`` is refused."""
    path = small_recipe(tmp_path)
    path.write_text(path.read_text().replace("langs: [en]", "langs: []"))
    assert_one_line_error(cli("run", path, "--dry-run"), "eval.langs", "an empty list")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_an_analysis_beside_the_evaluation_made_again_makes_the_report_stale(cli, tmp_path) -> None:
    """The report shows an analysis of an evaluated adapter found beside the evaluation
    (``runs/x/analysis``); one added there, or made again with other settings, left the report
    step done, with no analysis or the old one's numbers and pictures."""
    recipe = small_recipe(tmp_path)
    assert cli("run", recipe).code == 0
    root = tmp_path / "out"
    model = next(p.parent for p in root.glob("*/mslt_it_tiny.json"))

    def analyze(*extra: str) -> None:
        common = ["--model", model, "--adapter", root / "adapters" / "en", "--n", "3"]
        result = cli("analyze", *common, "--out", root / "analysis", *extra)
        assert result.code == 0, result.err

    def report_status() -> str:
        return {s.name: s.status() for s in make_plan(load_recipe(recipe)).steps}["report"]

    analyze("--langs", "en,de", "--projection", "pca")
    assert report_status() == "stale"
    assert cli("run", recipe).code == 0
    assert report_status() == "done"
    report = (root / "report" / "report.md").read_text()
    assert "Representation analysis (analysis)" in report and "LID probe 0.5;" in report
    analyze("--langs", "en,de,fr,ar", "--projection", "pca", "--overwrite")
    assert report_status() == "stale"
    assert cli("run", recipe).code == 0
    assert "LID probe 0.25;" in (root / "report" / "report.md").read_text()
    shutil.rmtree(root / "analysis")
    assert report_status() == "stale"


def test_a_linked_folder_replaced_keeps_its_mode_and_group_and_is_never_missing(
    tmp_path, monkeypatch
) -> None:
    """``--overwrite`` through a user's link removed the folder the link leads to, then made it
    again: a kill during the removal left the link dangling (every later command refused it),
    and the folder made again lost a shared folder's mode and setgid group."""
    import mslt_it.io as io

    real = tmp_path / "shared"
    (real / "checkpoints").mkdir(parents=True)
    (real / "checkpoints" / "state.pt").write_bytes(b"old")
    os.chmod(real, 0o2770)
    os.chown(real, -1, 1)  # another group (root may give it)
    io.remove_folder(real, emptied=True)
    assert list(real.iterdir()) == []
    assert (os.stat(real).st_mode & 0o7777, os.stat(real).st_gid) == (0o2770, 1)
    (real / "run.json").write_text("{}")

    def killed(trash, what):
        raise KeyboardInterrupt

    monkeypatch.setattr(io, "remove_trash", killed)
    with pytest.raises(KeyboardInterrupt):
        io.remove_folder(real, emptied=True)
    assert real.is_dir() and list(real.iterdir()) == []  # there, empty: the link leads on


def test_a_killed_removals_set_aside_copy_goes_when_the_output_is_next_claimed(tmp_path) -> None:
    """``train --overwrite`` killed while it removed the old run left it set aside, hidden
    beside the output; the next training (without ``--overwrite``) kept it, unsaid, and only
    another removal of that name cleared it."""
    import subprocess
    import sys

    from mslt_it.io import temporary_prefix, this_writer
    from mslt_it.outputs import claim_output

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = this_writer().replace(f"-{os.getpid()}.", f"-{done.stdout.strip()}.")
    left = tmp_path / f"{temporary_prefix('ad')}{dead}x1.old"
    (left / "removed" / "checkpoints").mkdir(parents=True)
    live = tmp_path / f"{temporary_prefix('ad')}{this_writer()}x2.old"  # a writer still at it
    live.mkdir()
    with claim_output(tmp_path / "ad", kind="adapter"):
        pass
    assert not left.exists() and live.is_dir()
