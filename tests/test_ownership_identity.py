"""Nothing lost, nothing stale: only the marker proves a folder is mslt-it's, and a step's
identity is the content of its inputs, not their paths (issue: the second hostile round)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mslt_it.errors import MsltError
from mslt_it.locks import lock_path, output_lock
from mslt_it.outputs import OWNER_FILE, adopt_output, foreign_files, mark_owner

FAST = ("--batch-size", "8", "--bootstrap-samples", "50")


def results_document(score: float, task: str = "xnli", data: str = "synthetic") -> dict:
    return {
        "kind": "mslt-it eval results",
        "run": "base",
        "mode": "rank",
        "model": "/models/tiny",
        "backend": "hf",
        "adapter": None,
        "data": data,
        "tasks": {
            task: {
                "metric": "accuracy",
                "languages": {"en": {"score": score, "n": 10, "ci95": [score, score]}},
            }
        },
    }


def write_results(folder: Path, document: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(document))
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ----------------------------------------------------------------------- ownership by marker


def test_report_overwrite_never_takes_a_users_folder(cli, tmp_path: Path) -> None:
    """A folder with a report.md of the user's (and their thesis) is not mslt-it's."""
    ev = write_results(tmp_path / "ev", results_document(60.0))
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "report.md").write_text("my notes")
    (mine / "thesis.tex").write_text("\\begin{document}")
    before = snapshot(mine)
    result = cli("report", ev, "--out", mine, "--overwrite")
    assert_one_line_error(result, "did not write", "mslt-it adopt")
    assert snapshot(mine) == before


@pytest.mark.parametrize(
    "marker",
    [
        b"\xff",
        b"[1]",
        b'{"files": 5, "kind": "report", "written_by": "mslt-it"}',
        b'{"files": {"report.md": null}, "kind": "report", "written_by": "mslt-it"}',
    ],
    ids=["not-utf8", "a-list", "files-not-a-mapping", "a-file-without-fingerprint"],
)
def test_a_damaged_marker_is_named_and_proves_nothing(cli, tmp_path: Path, marker) -> None:
    """A marker that is there but damaged was reported as missing (with `adopt` offered), or,
    valid JSON with a file list that is no mapping, taken as proof: the folder is replaced."""
    ev = write_results(tmp_path / "ev", results_document(60.0))
    mine = tmp_path / "rep"
    mine.mkdir()
    (mine / "report.md").write_text("my notes")
    (mine / OWNER_FILE).write_bytes(marker)
    before = snapshot(mine)
    result = cli("report", ev, "--out", mine, "--overwrite")
    assert_one_line_error(result, "did not write", f"its {OWNER_FILE} is damaged")
    assert "adopt" not in result.err and snapshot(mine) == before


def test_build_overwrite_never_takes_a_folder_with_a_manifest_of_the_users(
    cli, tmp_path: Path
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "manifest.json").write_text("{}")
    (mine / "important.csv").write_text("a,b\n1,2\n")
    before = snapshot(mine)
    result = cli("build", "--task", "xnli", "--sources", "en", "--budget", "4", "--out", mine,
                 "--overwrite")  # fmt: skip
    assert_one_line_error(result, "did not write")
    assert snapshot(mine) == before


def test_eval_overwrite_never_replaces_a_users_results(cli, tiny_model_dir, tmp_path) -> None:
    mine = write_results(tmp_path / "mine", {"my": "own results"})
    before = snapshot(mine)
    result = cli("eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en",
                 "--limit", "2", "--mode", "rank", "--out", mine, "--overwrite", *FAST)  # fmt: skip
    assert_one_line_error(result, "did not write")
    assert snapshot(mine) == before


def test_a_file_added_to_an_output_of_mslt_it_is_never_lost(cli, tmp_path: Path) -> None:
    ev = write_results(tmp_path / "ev", results_document(60.0))
    assert cli("report", ev, "--out", tmp_path / "rep").code == 0
    (tmp_path / "rep" / "notes.md").write_text("the user's")
    result = cli("report", ev, "--out", tmp_path / "rep", "--overwrite")
    assert_one_line_error(result, "notes.md", "did not write")
    assert (tmp_path / "rep" / "notes.md").read_text() == "the user's"
    (tmp_path / "rep" / "notes.md").unlink()
    assert cli("report", ev, "--out", tmp_path / "rep", "--overwrite").code == 0


def test_an_output_of_an_older_version_is_adopted_only_when_it_is_exactly_one(
    cli, tmp_path: Path
) -> None:
    ev = write_results(tmp_path / "ev", results_document(60.0))
    assert cli("report", ev, "--out", tmp_path / "rep").code == 0
    (tmp_path / "rep" / OWNER_FILE).unlink()  # as an older mslt-it left it
    refused = cli("report", ev, "--out", tmp_path / "rep", "--overwrite")
    assert_one_line_error(refused, "adopt")
    (tmp_path / "rep" / "thesis.tex").write_text("x")
    assert_one_line_error(cli("adopt", tmp_path / "rep", "--kind", "report"), "thesis.tex")
    assert not (tmp_path / "rep" / OWNER_FILE).exists()
    (tmp_path / "rep" / "thesis.tex").unlink()
    outside = tmp_path / "outside.png"
    outside.write_text("the user's figure")
    (tmp_path / "rep" / "heatmap-extra.png").symlink_to(outside)  # named like a report file
    assert_one_line_error(cli("adopt", tmp_path / "rep", "--kind", "report"), "a link")
    assert not (tmp_path / "rep" / OWNER_FILE).exists()
    (tmp_path / "rep" / "heatmap-extra.png").unlink()
    assert outside.read_text() == "the user's figure"
    assert_one_line_error(cli("adopt", tmp_path / "rep", "--kind", "dataset"), "manifest.json")
    adopted = cli("adopt", tmp_path / "rep", "--kind", "report")
    assert adopted.code == 0, adopted.err
    assert cli("report", ev, "--out", tmp_path / "rep", "--overwrite").code == 0


def test_a_comparison_folder_of_the_users_is_not_replaced(cli, tiny_model_dir, tmp_path) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(tiny_model_dir, twin)
    out = tmp_path / "cmp"
    (out / "comparison").mkdir(parents=True)
    (out / "comparison" / "keep.txt").write_text("mine")
    result = cli("eval", "--model", tiny_model_dir, "--model", twin, "--task", "xnli",
                 "--langs", "en", "--limit", "2", "--mode", "rank",
                 "--out", out, *FAST)  # fmt: skip
    assert result.code == 2, result.err
    assert (out / "comparison" / "keep.txt").read_text() == "mine"


def test_a_failed_several_model_evaluation_leaves_nothing(cli, tiny_model_dir, tmp_path) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(tiny_model_dir, twin)
    result = cli("eval", "--model", tiny_model_dir, "--model", twin, "--task", "xnli",
                 "--langs", "en,zz", "--out", tmp_path / "cmp")  # fmt: skip
    assert_one_line_error(result, "zz")
    assert not (tmp_path / "cmp").exists()
    assert not any(p.name.endswith(".lock") for p in tmp_path.iterdir())


def test_one_model_under_two_spellings_is_refused(cli, tiny_model_dir, tmp_path) -> None:
    spelled = f"{tiny_model_dir}{os.sep}"
    result = cli("eval", "--model", tiny_model_dir, "--model", spelled, "--task", "xnli",
                 "--langs", "en", "--out", tmp_path / "cmp")  # fmt: skip
    assert_one_line_error(result, "same model")
    assert not (tmp_path / "cmp").exists()


def test_an_adapter_given_as_the_model_is_refused(cli, tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    config = {"peft_type": "LORA", "base_model_name_or_path": "org/b"}
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    result = cli("eval", "--model", adapter, "--task", "xnli", "--langs", "en",
                 "--out", tmp_path / "ev")  # fmt: skip
    assert_one_line_error(result, "LoRA adapter", "--adapter")
    assert not (tmp_path / "ev").exists()


def test_marker_lists_files_and_names_what_was_added(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.json").write_text("{}")
    (folder / "sub" / "b.png").write_bytes(b"png")
    mark_owner(folder, "report")
    assert foreign_files(folder) == []
    (folder / "sub" / "c.txt").write_text("user")
    assert foreign_files(folder) == ["sub/c.txt"]
    with pytest.raises(MsltError, match="already marked"):
        adopt_output(folder, "report")


# -------------------------------------------------------------------------- content identity


def write_user_task(folder: Path, gold: str = "verdict") -> Path:
    """A two-label user task read from local files; ``gold`` is the label column."""
    (folder / "tasks").mkdir(parents=True, exist_ok=True)
    (folder / "tasks" / "claims.yaml").write_text(
        "name: claims\ntitle: Claims\nkind: classification\n"
        "splits: [train, test]\nlanguages: [en]\n"
        "columns: [claim, verdict, flipped]\nlabels: [supported, refuted]\n"
        f"label_column: {gold}\n"
        "variables: {claim: row.claim}\n"
    )
    (folder / "prompts" / "claims").mkdir(parents=True, exist_ok=True)
    (folder / "prompts" / "claims" / "plain.yaml").write_text(
        "id: claims/plain\ntask: claims\ndescription: test\n"
        "instruction: 'Claim: {{ claim }}. Supported or refuted?'\n"
        "answer: '{{ label_word }}'\n"
        "verbalizers: {supported: supported, refuted: refuted}\n"
    )
    rows_folder = folder / "data" / "claims" / "en"
    rows_folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", 6), ("test", 6)):
        rows = [
            {"claim": f"claim {i}", "verdict": i % 2, "flipped": 1 - i % 2} for i in range(count)
        ]
        (rows_folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_an_edited_definition_or_data_file_never_gives_the_old_result(
    cli, tiny_model_dir, tmp_path
) -> None:
    user = write_user_task(tmp_path / "user")
    out = tmp_path / "ev"
    command = ["eval", "--model", tiny_model_dir, "--task", "claims", "--langs", "en",
               "--template", "claims/plain", "--data", user / "data", "--mode", "rank",
               "--tasks-dir", user / "tasks", "--prompts-dir", user / "prompts", "--out", out,
               *FAST]  # fmt: skip
    assert cli(*command).code == 0
    first = json.loads((out / "results.json").read_text())["tasks"]["claims"]["languages"]
    assert cli(*command).code == 0  # same inputs: resumed, nothing to do

    write_user_task(user, gold="flipped")  # every gold label flips
    assert_one_line_error(cli(*command), "task definition of task claims changed")
    assert cli(*command, "--overwrite").code == 0
    flipped = json.loads((out / "results.json").read_text())["tasks"]["claims"]["languages"]
    assert flipped["en"]["score"] == pytest.approx(100 - first["en"]["score"])

    test_file = user / "data" / "claims" / "en" / "test.jsonl"
    test_file.write_text(test_file.read_text().replace("claim 0", "another claim"))
    assert_one_line_error(cli(*command), "data rows of en of task claims changed")


def test_a_retrained_model_in_the_same_folder_is_a_new_identity(tiny_model_dir, tmp_path) -> None:
    from mslt_it.identity import model_identity

    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy)
    before = model_identity(copy)
    assert model_identity(copy) == before and "sha256" in before
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert model_identity(copy) != before
    assert model_identity("org/not-here") == {"hub_id": "org/not-here", "revision": None}


# ----------------------------------------------------------------- report: silently wrong


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"score": float("nan"), "n": 10}, "score"),
        ({"score": float("inf"), "n": 10}, "score"),
        ({"score": 1e308, "n": 10}, "outside"),
        ({"score": 50.0, "n": -3}, ".n"),
        ({"score": 20.0, "n": 0}, ".n: 0 is outside 1..1e+12"),
        ({"score": "50", "n": 3}, "not a number"),
        ({"score": 50.0, "n": 3, "ci95": [0, float("nan")]}, "ci95"),
    ],
)
def test_report_refuses_impossible_numbers(cli, tmp_path: Path, entry: dict, fragment: str) -> None:
    document = results_document(50.0)
    document["tasks"]["xnli"]["languages"]["en"] = entry
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "results.json").write_text(json.dumps(document))  # NaN and Infinity as Python writes
    assert_one_line_error(cli("report", ev, "--out", tmp_path / "rep"), fragment)
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize(
    ("adapter", "fragment"),
    [
        ({"sources": ["../../evil"]}, "adapter.sources"),
        ({"sources": ["a|b\n# injected"]}, "adapter.sources"),
        ({"sources": ["=HYPERLINK(1)"]}, "adapter.sources"),
        ({"sources": ["en", "en"]}, "distinct language codes"),
        ({"sources": [""]}, "adapter.sources"),
        ("xyz", "adapter: expected a mapping or null"),
    ],
)
def test_report_refuses_sources_that_are_not_language_codes(cli, tmp_path, adapter, fragment):
    document = {**results_document(50.0), "adapter": adapter}
    write_results(tmp_path / "ev", document)
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "rep")
    assert_one_line_error(result, fragment, str(tmp_path / "ev" / "results.json"))
    assert not (tmp_path / "rep").exists()


def test_a_run_name_never_breaks_a_table_or_starts_a_formula(cli, tmp_path: Path) -> None:
    document = {**results_document(50.0), "run": "=cmd|x\n# heading"}
    document["tasks"]["xnli"]["languages"]["en"]["ci95"] = [40.0, 60.0]
    write_results(tmp_path / "ev", document)
    assert cli("report", tmp_path / "ev", "--out", tmp_path / "rep").code == 0
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "# heading" not in report and "=cmd" not in report
    assert "\n=" not in (tmp_path / "rep" / "scores.csv").read_text()
    document["tasks"]["xnli"]["languages"]["en"]["ci95"] = [60.0, 40.0]
    write_results(tmp_path / "ev2", document)
    result = cli("report", tmp_path / "ev2", "--out", tmp_path / "rep2")
    assert_one_line_error(result, "ci95", "low above its high")


@pytest.mark.parametrize("task", ["../../evil", "/abs/path", "a/b", "..", ""])
def test_a_task_name_from_results_never_becomes_a_path(cli, tmp_path: Path, task: str) -> None:
    first = write_results(tmp_path / "ev" / "a", results_document(50.0, task="xnli"))
    write_results(tmp_path / "ev" / "b", results_document(40.0, task=task))
    before = sorted(p for p in tmp_path.rglob("*"))
    assert_one_line_error(cli("report", first.parent, "--out", tmp_path / "x" / "rep"), "task")
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_report_names_an_unfinished_evaluation_and_warns_per_task(cli, tmp_path: Path) -> None:
    write_results(tmp_path / "ev" / "done", results_document(50.0, task="xcopa", data="/real"))
    write_results(tmp_path / "ev" / "syn", results_document(40.0, task="xnli"))
    chunks = tmp_path / "ev" / "killed" / ".chunks"
    chunks.mkdir(parents=True)
    (chunks / "settings.json").write_text("{}")
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "rep")
    assert result.code == 0, result.err
    assert "killed" in result.err and "unfinished" in result.err
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "unfinished" in text and "killed" in text
    xcopa = (tmp_path / "rep" / "xcopa" / "report.md").read_text()
    xnli = (tmp_path / "rep" / "xnli" / "report.md").read_text()
    assert "SYNTHETIC" not in xcopa and "SYNTHETIC" in xnli


# ---------------------------------------------------------- special files and long names


def test_a_fifo_or_device_as_results_is_refused_without_blocking(cli, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "results.json")
    assert_one_line_error(cli("report", fifo, "--out", tmp_path / "rep"), "FIFO")
    zero = tmp_path / "zero"
    zero.mkdir()
    (zero / "results.json").symlink_to("/dev/zero")
    assert_one_line_error(cli("report", zero, "--out", tmp_path / "rep"), "device")


def test_long_and_dangling_out_names(cli, tmp_path: Path) -> None:
    ev = write_results(tmp_path / "ev", results_document(50.0))
    too_long = tmp_path / ("r" * 300)
    assert_one_line_error(cli("report", ev, "--out", too_long), "at most 255")
    fits = tmp_path / ("r" * 250)  # the lock's name would not fit: it is hashed instead
    assert len(lock_path(fits).name) <= 255
    result = cli("report", ev, "--out", fits)
    assert result.code == 0, result.err
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    assert_one_line_error(cli("report", ev, "--out", dangling), "does not exist")
    deep = tmp_path.joinpath(*["b"] * 2100)  # each name fits, the whole path does not
    for command in (("report", ev, "--out", deep), ("tiny-model", deep)):
        result = cli(*command)
        assert_one_line_error(result, "a path holds at most 4095")
        assert len(result.err) < 300
    assert not (tmp_path / "b").exists()
    fit = tmp_path / "fit.csv"
    assert_one_line_error(
        cli("select", "--task", "xnli", "--fit", fit, "--save", tmp_path / "p\nq.json"),
        "--save",
        "control character",
    )


# ------------------------------------------------------------- generated output-folder states

STATES = st.fixed_dictionaries(
    {
        "exists": st.booleans(),
        "marker": st.sampled_from([None, "report", "dataset", "garbage"]),
        "ours": st.lists(st.sampled_from(["report.md", "scores.csv", "heatmap.png"]), max_size=3),
        "users": st.lists(
            st.sampled_from(["report.md", "thesis.tex", "results.json", "x/notes.md"]),
            max_size=3,
        ),
        "overwrite": st.booleans(),
    }
)


@settings(
    max_examples=int(os.environ.get("MSLT_IT_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(state=STATES)
def test_report_into_any_folder_state_loses_nothing(cli, tmp_path_factory, state) -> None:
    """Whatever the folder holds, ``report`` succeeds or exits 2 with one line, and a file the
    user wrote is never removed or changed."""
    root = tmp_path_factory.mktemp("state")
    ev = write_results(root / "ev", results_document(50.0))
    out = root / "out"
    users: dict[str, bytes] = {}
    if state["exists"]:
        out.mkdir()
        for name in state["ours"]:
            (out / name).write_text("mslt-it's")
        if state["marker"] == "garbage":
            (out / OWNER_FILE).write_text("not json")
        elif state["marker"] is not None:
            mark_owner(out, state["marker"])
        for name in state["users"]:
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"user {name}")
            users[name] = path.read_bytes()
    args = ["report", ev, "--out", out] + (["--overwrite"] if state["overwrite"] else [])
    result = cli(*args)
    if result.code != 0:
        assert_one_line_error(result)
    else:
        assert (out / "report.md").is_file()
    for name, content in users.items():
        if result.code == 0 and name == "report.md":
            continue  # only possible when the user's file was not there to lose (see below)
        assert (out / name).read_bytes() == content, (state, result.err)
    if result.code == 0 and "report.md" in users:
        pytest.fail(f"a user's report.md was replaced: {state}")


# --------------------------------------------------------------------------- a moved run


def test_a_moved_run_is_pointed_at_its_base_by_content(cli, tiny_model_dir, tmp_path) -> None:
    """run.json keeps the base's path: once the base moved, --model NEW points the run at it,
    accepted only when the folder's files are those training recorded."""
    from test_eval_support import study_adapters

    from mslt_it.identity import model_identity

    moved_base = tmp_path / "moved-base"
    shutil.copytree(tiny_model_dir, moved_base)
    run = tmp_path / "run"
    shutil.copytree(study_adapters(tiny_model_dir)["a1"], run)
    record = json.loads((run / "run.json").read_text())
    record["base_model"] = str(tmp_path / "where-it-was")
    record["base_model_identity"] = model_identity(tiny_model_dir)
    (run / "run.json").write_text(json.dumps(record))
    command = ["eval", "--adapter", run, "--task", "xnli", "--langs", "en", "--limit", "2",
               "--mode", "rank", *FAST]  # fmt: skip
    assert_one_line_error(cli(*command, "--out", tmp_path / "a"), "not there any more", "--model")
    moved = cli(*command, "--model", moved_base, "--out", tmp_path / "b")
    assert moved.code == 0, moved.err
    other = tmp_path / "other-base"
    shutil.copytree(tiny_model_dir, other)
    weights = next(other.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert_one_line_error(cli(*command, "--model", other, "--out", tmp_path / "c"), "trained on")


def test_analyze_treats_a_moved_or_other_base_as_eval_does(cli, tiny_model_dir, tmp_path) -> None:
    """analyze: an adapter on another base is a one-line error (it was only a warning); a
    moved base with the recorded content is accepted."""
    from test_eval_support import study_adapters

    from mslt_it.analysis.extract import read_adapter
    from mslt_it.analysis.run import check_adapter_bases
    from mslt_it.identity import model_identity

    run = tmp_path / "run"
    shutil.copytree(study_adapters(tiny_model_dir)["a1"], run)
    record = json.loads((run / "run.json").read_text())
    record["base_model"] = str(tmp_path / "where-it-was")
    record["base_model_identity"] = model_identity(tiny_model_dir)
    (run / "run.json").write_text(json.dumps(record))
    check_adapter_bases(str(tiny_model_dir), [read_adapter(run)])  # same content: accepted
    record["base_model_identity"] = {"sha256": "0" * 64}
    (run / "run.json").write_text(json.dumps(record))
    result = cli("analyze", "--model", tiny_model_dir, "--adapter", run, "--langs", "en,de",
                 "--data", "synthetic", "--n", "8", "--out", tmp_path / "an")  # fmt: skip
    assert_one_line_error(result, "trained on base model")
    assert not (tmp_path / "an").exists()


# ------------------------------------------------------------- the second hostile round's finds


def test_an_output_inside_an_output_answers_for_its_own_files(tmp_path: Path) -> None:
    """A report written into an evaluation folder answers for its files; a finished output of
    another kind moved into a dataset is the user's, whatever its marker says."""
    from mslt_it.io import file_fingerprint
    from mslt_it.outputs import mark_finished

    outer = tmp_path / "ev"
    (outer / "report").mkdir(parents=True)
    (outer / "results.json").write_text("{}")
    (outer / "report" / "report.md").write_text("# r")
    mark_owner(outer / "report", "report")
    written = {"results.json": file_fingerprint(outer / "results.json")}
    mark_finished(outer, "evaluation", coming=written)  # as an evaluation lists what it writes
    assert foreign_files(outer) == []
    (outer / "report" / "notes.txt").write_text("the user's")
    assert foreign_files(outer) == ["report/notes.txt"]
    (outer / "notes.md").write_text("the user's too")
    mark_finished(outer, "evaluation")  # a finished evaluation never claims the user's notes
    assert "notes.md" in foreign_files(outer) and "results.json" not in foreign_files(outer)

    dataset = tmp_path / "d"
    (dataset / "my-model").mkdir(parents=True)
    (dataset / "manifest.json").write_text("{}")
    mark_owner(dataset, "dataset")
    (dataset / "my-model" / "config.json").write_text("{}")
    mark_owner(dataset / "my-model", "model")  # a tiny model the user copied in
    assert foreign_files(dataset) == ["my-model/"]


@pytest.mark.parametrize(
    "name",
    [
        "checkpoints/my-run/model.bin",
        "checkpoints/notes.txt",
        "budget.lock",
        "sub/x.lock",
        ".chunks/mine.jsonl",
        ".draft.tmp",
        ".notes.tmp/a.txt",
        "a/b/.c.mslt-it.lock",
        ".model.mslt-it.lock",  # a lock holds its holder's pid, never text
        "sub/.mslt-it-0123.lock",
        ".mslt-it-step.json",  # a step's record is JSON naming the step
        ".mslt-it-write-check.mine",  # the probe is empty
        ".notes/.mslt-it-step.json",  # in a hidden folder of the user's too
        ".notes/.x.mslt-it.lock",
    ],
)
def test_a_users_file_named_like_a_working_file_is_never_taken(tmp_path: Path, name: str) -> None:
    """Working files are only the names mslt-it gives them, where it puts them: a user's file
    that merely looks like one (a lock, a temporary, a checkpoint of a model's) is theirs."""
    for kind, done in (("model", "config.json"), ("dataset", "manifest.json")):
        folder = tmp_path / kind
        folder.mkdir()
        (folder / done).write_text("{}")
        mark_owner(folder, kind)
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("the user's")
        assert foreign_files(folder) == [name]


@pytest.mark.parametrize(
    "name",
    [
        "checkpoints/checkpoint-best/notes.txt",
        "checkpoints/checkpoint-/a",
        "checkpoints/checkpoint-5x/a",
        "checkpoints/tmp-checkpoint-mine/a",
    ],
)
def test_a_users_folder_named_like_a_checkpoint_is_theirs(tmp_path: Path, name: str) -> None:
    """Only the Trainer's ``checkpoint-<number>`` folders are working files of an adapter."""
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "run.json").write_text("{}")
    mark_owner(folder, "adapter")
    (folder / name).parent.mkdir(parents=True)
    (folder / name).write_text("the user's")
    assert foreign_files(folder) == [name]


def test_a_users_empty_folder_is_theirs_and_the_layouts_own_are_mslt_its(tmp_path: Path) -> None:
    """``--overwrite`` removed a user's empty folders inside an output: no bytes lost, but not
    mslt-it's to remove. Folders the kind lays out (an adapter's emptied ``checkpoints/``, a
    checkpoint being written, staging) stay mslt-it's."""
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "run.json").write_text("{}")
    mark_owner(folder, "adapter")
    for ours in ("checkpoints", "checkpoints/checkpoint-12", ".final.tmp/sub"):
        (folder / ours).mkdir(parents=True, exist_ok=True)
    assert foreign_files(folder) == []
    for theirs in ("drafts", "notes/2026/december", "checkpoints/checkpoint-best"):
        (folder / theirs).mkdir(parents=True)
    assert foreign_files(folder) == [
        "checkpoints/checkpoint-best/",
        "drafts/",
        "notes/2026/december/",
    ]


def test_build_overwrite_keeps_a_users_empty_folder(cli, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build = ("build", "--task", "xnli", "--sources", "en", "--budget", "4", "--out", out)
    assert cli(*build).code == 0
    (out / "for-later").mkdir()
    assert_one_line_error(cli(*build, "--overwrite"), "for-later/", "did not write")
    assert (out / "for-later").is_dir()
    (out / "for-later").rmdir()
    assert cli(*build, "--overwrite").code == 0


def test_a_marker_listing_no_files_vouches_only_for_the_names_its_kind_writes(
    tmp_path: Path,
) -> None:
    """A marker of an older version lists no files: ``*.txt`` and ``*.json`` took a user's
    notes.txt and my_settings.json for an adapter's."""
    folder = tmp_path / "adapter"
    folder.mkdir()
    for name in ("adapter_config.json", "run.json", "tokenizer.json", "notes.txt", "my.json"):
        (folder / name).write_text("{}")
    (folder / OWNER_FILE).write_text(json.dumps({"kind": "adapter", "written_by": "mslt-it"}))
    assert foreign_files(folder) == ["my.json", "notes.txt"]


@pytest.mark.parametrize("kind", ["adapter", "evaluation"])
def test_a_file_dropped_in_while_an_output_is_written_is_never_claimed(
    tmp_path: Path, kind: str
) -> None:
    """A training or an evaluation marks its folder again when it finishes: the files its kind
    writes are listed, and a user's notes written meanwhile (``*.txt`` and ``*.json`` matched
    them) stay the user's, for ``--overwrite`` to stop at."""
    from mslt_it.io import file_fingerprint
    from mslt_it.outputs import mark_finished

    folder = tmp_path / kind
    folder.mkdir()
    mark_owner(folder, kind)
    (folder / "notes.txt").write_text("mine")
    (folder / "sub").mkdir()
    (folder / "sub" / "settings.json").write_text("{}")
    if kind == "evaluation":  # a study's run folder: the user's, named as a run's would be
        (folder / "sub" / "results.json").write_text("{}")
    written = "run.json" if kind == "adapter" else "results.json"
    (folder / written).write_text("{}")
    mark_finished(folder, kind, coming={written: file_fingerprint(folder / written)})
    mark_finished(folder, kind)  # once more at the end, as both kinds do
    users = ["notes.txt", "sub/settings.json"]
    if kind == "evaluation":
        users.insert(1, "sub/results.json")
    assert foreign_files(folder) == users


def test_mslt_its_own_working_files_are_still_its_own(tmp_path: Path) -> None:
    from mslt_it.io import temporary_prefix, this_writer

    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "run.json").write_text("{}")
    mark_owner(folder, "adapter")
    for name in (
        "checkpoints/checkpoint-5/adapter_model.safetensors",
        "checkpoints/README.md",
        ".final.tmp/adapter_config.json",
        f"{temporary_prefix('run.json')}{this_writer()}abc.tmp",
        ".eval.mslt-it.lock",
        ".mslt-it-step.json",
        "sub/.mslt-it-write-check.x1y2",
    ):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("mslt-it's")
    (folder / ".eval.mslt-it.lock").write_text("4242\n")  # as output_lock writes it
    (folder / ".mslt-it-step.json").write_text('{"step": "train", "input_hash": "ab"}')
    (folder / "sub/.mslt-it-write-check.x1y2").write_text("")
    assert foreign_files(folder) == []


def test_a_users_picture_named_like_mkstemps_in_a_report_is_theirs(tmp_path: Path) -> None:
    """A report wrote its pictures aside as ``tmp*.png`` (mkstemp's names), and took a user's
    ``tmp_figure.png`` for one: ``--overwrite`` removed it. They are written under mslt-it's
    own temporary names now."""
    import matplotlib.figure

    from mslt_it import report_plots

    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "report.md").write_text("# r")
    mark_owner(folder, "report")
    (folder / "tmp_figure.png").write_bytes(b"the user's")
    assert foreign_files(folder) == ["tmp_figure.png"]
    written: list[str] = []

    class Figure(matplotlib.figure.Figure):
        def savefig(self, path: str, **options: object) -> None:  # type: ignore[override]
            written.append(Path(path).name)
            assert foreign_files(folder) == ["tmp_figure.png"]  # the picture being written
            Path(path).write_bytes(b"png")

    report_plots.save_figure(Figure(), folder / "heatmap.png")
    assert written[0].startswith(".heatmap.png.mslt-") and written[0].endswith(".tmp")


def test_eval_overwrite_replaces_the_whole_study_and_never_a_users_file(
    cli, tiny_model_dir, tmp_path
) -> None:
    from test_eval_support import study_adapters

    out = tmp_path / "study"
    study = ["eval", "--model", tiny_model_dir, "--adapter", study_adapters(tiny_model_dir)["a1"],
             "--include-base", "--task", "xnli", "--langs", "en", "--limit", "2", "--mode",
             "rank", "--out", out, *FAST]  # fmt: skip
    assert cli(*study).code == 0
    (out / "notes.txt").write_text("mine")
    single = ["eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en", "--limit",
              "3", "--mode", "rank", "--out", out, "--overwrite", *FAST]  # fmt: skip
    assert_one_line_error(cli(*single), "notes.txt")
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    assert cli(*single).code == 0
    assert not (out / "study.json").exists() and not (out / "base").exists()
    assert json.loads((out / "results.json").read_text())["tasks"]["xnli"]["languages"]["en"][
        "n"
    ] == 3  # fmt: skip


@pytest.mark.parametrize("value", ["10**400", "deep"])
def test_report_refuses_huge_integers_and_deep_nesting(cli, tmp_path: Path, value: str) -> None:
    document = results_document(50.0)
    ev = tmp_path / "ev"
    ev.mkdir()
    text = json.dumps(document)
    if value == "deep":
        text = text[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"
    else:
        text = text.replace('"score": 50.0', '"score": ' + str(10**400))
    (ev / "results.json").write_text(text)
    assert_one_line_error(cli("report", ev, "--out", tmp_path / "rep"), "results.json")


def test_select_refuses_a_set_size_range_past_any_pool(cli) -> None:
    result = cli("select", "--task", "xnli", "--k", "1-99999999999999999999", "--criterion", "size")
    assert_one_line_error(result, "--k")


@pytest.mark.parametrize(
    ("field", "fragment"),
    [
        ("bf16=maybe", "train.sft.bf16: must be true or false, got 'maybe'"),
        ("per_device_train_batch_size=99999999999999999999", "larger than"),
        ("dataloader_num_workers=10000", "at most"),
        ("report_to=wandb", "'wandb' is not available here"),
        ("report_to=bogus", "'bogus' is not a logger transformers knows; allowed: none, all,"),
        ("deepspeed=/nonexistent.json", "deepspeed"),
        ("push_to_hub=true", "the Hub is offline"),
        ("truncation_mode=middle", "keep_end, keep_start"),  # a choice TRL lists, checked first
        ("loss_type=mse", "nll, dft, chunked_nll"),
        ("packing_strategy=wrapped", "bfd or bfd_split"),  # crashed mslt-it's length check
        ("dataloader_multiprocessing_context=spawn", "dataloader_num_workers >= 1"),
    ],
)
def test_train_refuses_sft_values_that_fail_late(cli, tiny_model_dir, tmp_path, field, fragment):
    result = cli("train", "--dataset", tmp_path / "no-dataset-needed", "--model", tiny_model_dir,
                 "--max-steps", "1", "--sft", field, "--out", tmp_path / "t")  # fmt: skip
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "t").exists()


def test_a_step_waits_while_a_step_it_reads_is_not_done(tmp_path: Path) -> None:
    """run --dry-run: a train step whose build is stale is not shown done (it will retrain)."""
    from mslt_it.runner import MARKER, Step

    build_out, train_out = tmp_path / "data", tmp_path / "adapter"
    build = Step("build", [], build_out, lambda: "new-data", lambda: None)
    train = Step("train", [], train_out, lambda: "same", lambda: None, after=[build])
    for folder, recorded in ((build_out, "old-data"), (train_out, "same")):
        folder.mkdir()
        (folder / MARKER).write_text(json.dumps({"step": "x", "input_hash": recorded}))
    assert build.status() == "stale" and train.status() == "waiting"
    (build_out / MARKER).write_text(json.dumps({"step": "build", "input_hash": "new-data"}))
    assert train.status() == "done"


def test_small_typos_in_watch_and_grids_are_refused() -> None:
    from pydantic import ValidationError

    from mslt_it.config import AllCombinations
    from mslt_it.training.config import parse_watch

    with pytest.raises(MsltError, match="--watch"):
        parse_watch(["xnli:en,,"])
    with pytest.raises(ValidationError):
        AllCombinations(pool=["en", "de"], k=True)
    assert AllCombinations(pool=["en", "de"], k=2).k == 2


def test_a_report_never_shows_two_numbers_for_one_run_and_language(cli, tmp_path: Path) -> None:
    """Its table reads results.json and its comparisons predictions.jsonl: they must agree."""

    def run(folder: str, adapter: dict | None, outcomes: list[bool]) -> Path:
        score = 100 * sum(outcomes) / len(outcomes)
        document = {**results_document(score), "adapter": adapter, "run": folder}
        document["tasks"]["xnli"]["languages"] = {"de": {"score": score, "n": len(outcomes)}}
        path = write_results(tmp_path / "ev" / folder, document)
        records = [
            {
                "task": "xnli",
                "lang": "de",
                "id": str(i),
                "gold": "yes",
                "parsed": "yes" if ok else "no",
                "correct": ok,
            }
            for i, ok in enumerate(outcomes)
        ]
        (path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        return path

    run("base", None, [True, False, False, False])
    adapter = run("en", {"sources": ["en"]}, [True, True, False, False])
    compare = ("--compare", "base", "SSLT en")
    assert cli("report", tmp_path / "ev", "--out", tmp_path / "rep", *compare).code == 0
    lines = (
        (adapter / "predictions.jsonl")
        .read_text()
        .replace('"parsed": "no", "correct": false', '"parsed": "yes", "correct": true')
    )
    (adapter / "predictions.jsonl").write_text(lines)
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "rep2", *compare)
    assert_one_line_error(result, "xnli/de", "results.json says 50.00", "predictions.jsonl")


def test_a_report_checks_every_runs_table_against_its_predictions(cli, tmp_path: Path) -> None:
    """Compared or not: a score or a count edited in results.json is refused."""
    document = results_document(50.0)
    document["tasks"]["xnli"]["languages"] = {"de": {"score": 80.0, "n": 4}}
    path = write_results(tmp_path / "ev", document)
    records = [
        {
            "task": "xnli",
            "lang": "de",
            "id": str(i),
            "gold": "yes",
            "parsed": "yes" if i < 2 else "no",
            "correct": i < 2,
        }
        for i in range(4)
    ]
    (path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "rep")
    assert_one_line_error(result, "results.json says 80.00", "50.00")
    document["tasks"]["xnli"]["languages"] = {"de": {"score": 50.0, "n": 5}}
    write_results(tmp_path / "ev", document)
    assert_one_line_error(cli("report", tmp_path / "ev", "--out", tmp_path / "rep"), "counts 5")
    document["tasks"]["xnli"]["languages"] = {"de": {"score": 50.0, "n": 4}}
    write_results(tmp_path / "ev", document)
    assert cli("report", tmp_path / "ev", "--out", tmp_path / "rep").code == 0
    # the share of answers that named no label: the report's table shows it too
    records[3]["invalid"] = True
    (path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "rep", "--overwrite")
    assert_one_line_error(result, "invalid_rate of 0.0000", "0.2500")
    document["tasks"]["xnli"]["languages"]["de"]["invalid_rate"] = 0.25
    write_results(tmp_path / "ev", document)
    assert cli("report", tmp_path / "ev", "--out", tmp_path / "rep", "--overwrite").code == 0
    # the clusters its interval resampled: counted from the rows' keys, as the evaluation did
    for number, record in enumerate(records):
        record["cluster"] = f"c{number // 2}"
    (path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    document["tasks"]["xnli"]["languages"]["de"]["clusters"] = 3
    write_results(tmp_path / "ev", document)
    result = cli("report", tmp_path / "ev", "--out", tmp_path / "rep", "--overwrite")
    assert_one_line_error(result, "counts 3 clusters", "names 2")
    document["tasks"]["xnli"]["languages"]["de"]["clusters"] = 2
    write_results(tmp_path / "ev", document)
    assert cli("report", tmp_path / "ev", "--out", tmp_path / "rep", "--overwrite").code == 0


LAYOUTS = {
    "dataset": {
        "manifest.json": '{"fingerprint": "f"}', "state.json": "{}", "dataset_info.json": "{}",
        "data-00000-of-00001.arrow": "a",
    },
    "adapter": {
        "run.json": '{"config_hash": "h"}', "adapter_config.json": "{}",
        "adapter_model.safetensors": "w", "tokenizer.json": "{}", "chat_template.jinja": "t",
        "tensorboard/events.out.tfevents.1.host.2.0": "e",
    },
    "model": {
        "config.json": '{"model_type": "llama"}', "model.safetensors": "w",
        "generation_config.json": "{}", "tokenizer_config.json": "{}", "mslt_it_tiny.json": "{}",
    },
    "experiment": {"recipe.yaml": "name: x\n"},
    "evaluation": {
        "results.json": '{"tasks": {}}', "predictions.jsonl": "{}\n", "timings.json": "{}",
        "base/results.json": "{}", "base/predictions.jsonl": "{}\n",
        "base/.chunks/xnli.en.00000.jsonl": "{}\n",
    },
    "report": {
        "report.md": "# r", "scores.csv": "a", "heatmap.png": "p", "SSLT-en-loss.png": "p",
        "analysis0_tsne.png": "p", "xnli/report.md": "# r", "xnli/gain.png": "p",
    },
    "analysis": {"analysis.json": '{"kind": "mslt-it analysis"}', "pca.png": "p"},
}  # fmt: skip


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("kind", "users"),
    [
        ("dataset", "my-notes/thesis.docx"),
        ("dataset", "my_results.json"),
        ("adapter", "notes.txt"),
        ("adapter", "my.jsonl"),
        ("model", "papers/draft.txt"),
        ("model", "notes.json"),
        ("experiment", "src/code.py"),
        ("experiment", ".git/HEAD"),
        ("evaluation", "report/notes.txt"),
        ("evaluation", "base/my-notes.json"),
        ("report", "analysis-thesis-draft.docx"),
        ("report", "holiday.png"),
        ("analysis", "holiday.png"),
    ],
)
def test_adopt_refuses_a_users_file_in_an_output_of_the_right_layout(
    cli, tmp_path: Path, kind: str, users: str
) -> None:
    """A file a kind never writes is never adopted (a later --overwrite would delete it), even
    where a wide pattern of the marker's (``*/*``, ``*.json``, ``*.txt``) would match it."""
    folder = tmp_path / kind
    for name, text in LAYOUTS[kind].items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        picture = PNG_SIGNATURE if name.endswith(".png") else b""  # a picture says it is one
        (folder / name).write_bytes(picture + text.encode())
    (folder / users).parent.mkdir(parents=True, exist_ok=True)
    (folder / users).write_text("the user's")
    assert_one_line_error(cli("adopt", folder, "--kind", kind), repr(users), "nothing was marked")
    assert not (folder / OWNER_FILE).exists()
    (folder / users).unlink()
    parent = (folder / users).parent
    if parent != folder and not any(parent.iterdir()):  # an empty folder is the user's as well
        parent.rmdir()
    adopted = cli("adopt", folder, "--kind", kind)  # past the layout, its (made-up) content
    if kind == "experiment":  # is read; a recipe's copy is the user's own text, its name alone
        assert adopted.code == 0, adopted.err
    else:  # a file named as mslt-it names its own, not holding what it writes, is the user's
        assert_one_line_error(adopted, "is not a finished output", "nothing was marked")


PARTS = st.sampled_from(
    ["mine", "xnli", "base", "checkpoints", "checkpoint-1", ".chunks", "runs", "report.md",
     "results.json", "scores.csv", "a.png", "x.arrow", "README.md", "tensorboard"]
)  # fmt: skip
"""Path parts an output's layout names, and some it does not, for entries a user adds."""


@settings(
    max_examples=int(os.environ.get("MSLT_IT_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    kind=st.sampled_from(sorted(LAYOUTS)),
    added=st.lists(st.tuples(st.lists(PARTS, min_size=1, max_size=3), st.booleans()), max_size=3),
)
def test_what_adopt_takes_an_overwrite_takes_too(tmp_path_factory, kind, added) -> None:
    """Whatever a user adds to an output (files, empty folders, named like its own or not),
    ``adopt`` either refuses it or marks an output whose every entry is mslt-it's, so the next
    ``--overwrite`` removes all of it. It adopted a report holding an empty ``mine/`` (its
    layout has sub-reports, ``*/``), and the next ``report --overwrite`` stopped there."""
    folder = tmp_path_factory.mktemp("adopt") / kind
    for name, text in LAYOUTS[kind].items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(
            (PNG_SIGNATURE if name.endswith(".png") else b"") + text.encode()
        )
    for parts, is_folder in added:
        path = folder.joinpath(*parts)
        if any(p.is_file() for p in (path, *path.parents)) or path.is_dir():
            continue  # a file cannot hold an entry, and the layout's own stay as written
        if is_folder:
            path.mkdir(parents=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("the user's")
    try:
        adopt_output(folder, kind)
    except MsltError as error:
        assert "nothing was marked" in str(error)
        assert not (folder / OWNER_FILE).exists()
    else:
        assert foreign_files(folder) == []
        # no kind lays out a ``mine``: had the user's entry been made, it was refused
        assert not (folder / "mine").exists(), "a user's folder was adopted"


def test_a_runs_empty_chunk_folder_is_an_evaluations_own(tmp_path: Path) -> None:
    """A run's ``.chunks/`` left empty (a kill between its files' removal and its own) was
    called the user's, so ``--overwrite`` and ``adopt`` stopped at it; a top-level one was not."""
    folder = tmp_path / "evaluation"
    for name, text in LAYOUTS["evaluation"].items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    (folder / "base" / ".chunks" / "xnli.en.00000.jsonl").unlink()
    adopt_output(folder, "evaluation")
    assert foreign_files(folder) == []


@pytest.mark.parametrize("made", ["fifo", "link", "folder"])
@pytest.mark.parametrize("who", ["writer", "reader"])
def test_a_lock_path_that_is_not_a_file_is_one_line_and_stays(tmp_path: Path, made, who) -> None:
    """A FIFO where a folder's lock file goes blocked `report` forever and was an internal
    error for `eval`, and through a link the holder's pid was written over the file it points
    to. Each is refused in one line, and left as it was."""
    from mslt_it.locks import check_not_being_written

    out = tmp_path / "ev"
    out.mkdir()
    lock = lock_path(out)
    victim = tmp_path / "thesis.txt"
    victim.write_text("mine")
    {"fifo": lambda: os.mkfifo(lock), "link": lambda: lock.symlink_to(victim),
     "folder": lock.mkdir}[made]()  # fmt: skip
    with pytest.raises(MsltError, match=r"lock of .* is not a regular file .*; move it away$"):
        if who == "writer":
            with output_lock(out):
                pass
        else:
            check_not_being_written(out, "run dir")
    assert os.path.lexists(lock) and victim.read_text() == "mine"


def test_a_users_file_at_the_lock_path_is_never_written_over(tmp_path: Path) -> None:
    """A user's notes saved under the lock's name were cut to the holder's pid and removed
    with the lock, by a run that then did nothing. A killed holder's lock (its pid) or an
    empty file is taken as before."""
    out = tmp_path / "ov1"
    lock = lock_path(out)
    lock.write_text("dear diary\n")
    refused = pytest.raises(MsltError, match=r"holds something other than a lock .*; move it")
    with refused, output_lock(out):
        pass
    assert lock.read_text() == "dear diary\n"
    for left in ("4242\n", ""):  # a killed holder's, or one made before its pid was written
        lock.write_text(left)
        with output_lock(out):
            assert lock.read_text() == f"{os.getpid()}\n"
        assert not lock.exists()


def test_a_lock_replaced_while_held_is_left_where_it_is(tmp_path: Path) -> None:
    """A writer removed whatever lay at its lock path when it finished: a link (or a FIFO) put
    there meanwhile went with it. Only its own lock file is removed."""
    out = tmp_path / "ev"
    victim = tmp_path / "thesis.txt"
    victim.write_text("mine")
    with output_lock(out):
        lock_path(out).unlink()
        lock_path(out).symlink_to(victim)
    assert lock_path(out).is_symlink() and victim.read_text() == "mine"


def test_a_reader_waits_out_a_writer_of_an_instant(tmp_path: Path) -> None:
    """`score` holds an evaluation for the milliseconds of adding its file to the marker, and a
    second `score` reading it was refused; a reader looks again for half a second."""
    import threading

    from mslt_it.locks import check_not_being_written

    out = tmp_path / "ev"
    out.mkdir()
    handle = os.open(lock_path(out), os.O_RDWR | os.O_CREAT)
    fcntl.flock(handle, fcntl.LOCK_EX)  # another open file: held against this process too
    release = threading.Timer(0.1, lambda: fcntl.flock(handle, fcntl.LOCK_UN))
    release.start()
    try:
        check_not_being_written(out, "run dir")
    finally:
        release.join()
        os.close(handle)
    fcntl_held = os.open(lock_path(out), os.O_RDWR)
    fcntl.flock(fcntl_held, fcntl.LOCK_EX)
    try:  # held for longer than the reader looks: named
        with pytest.raises(MsltError, match="is in use by another mslt-it process"):
            check_not_being_written(out, "run dir")
    finally:
        os.close(fcntl_held)


def test_a_link_where_an_output_stages_its_files_is_removed_not_followed(tmp_path: Path) -> None:
    """A link named like the staging folder of an evaluation or a training, pointing at the
    user's folder: emptying it emptied theirs, and the new files were written into it."""
    from mslt_it.outputs import STAGING, fresh_staging

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("mine")
    out = tmp_path / "out"
    out.mkdir()
    (out / STAGING).symlink_to(mine)
    staged = fresh_staging(out)
    assert not staged.exists() and not staged.is_symlink()
    assert (mine / "thesis.txt").read_text() == "mine"


def test_a_rerun_evaluation_never_reads_or_replaces_an_edited_file(
    cli, tiny_model_dir, tmp_path
) -> None:
    """Run again (here with another seed, which re-scores), an evaluation read predictions
    edited by hand as its own and sealed them, and replaced an edited results.json."""
    out = tmp_path / "ev"
    args = ("eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en", "--limit", "4",
            "--mode", "rank", "--out", out, *FAST)  # fmt: skip
    assert cli(*args).code == 0
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    edited = "".join(json.dumps({**row, "correct": True}) + "\n" for row in rows)
    (out / "predictions.jsonl").write_text(edited)
    before = snapshot(out)
    result = cli(*args, "--seed", "5")
    assert_one_line_error(result, "predictions.jsonl", "edited since")
    assert snapshot(out) == before
    assert_one_line_error(cli(*args, "--seed", "5", "--overwrite"), "predictions.jsonl")
    assert snapshot(out) == before  # --overwrite never takes the user's edit either
    (out / "predictions.jsonl").unlink()
    assert cli(*args, "--seed", "5", "--overwrite").code == 0
    assert (out / "predictions.jsonl").read_text() != edited


@pytest.mark.parametrize("inside", [".chunks", ".final.tmp", ".results.json.mslt-x.tmp"])
def test_no_output_goes_where_mslt_it_clears_its_working_files(
    cli, tiny_model_dir, tmp_path, inside: str
) -> None:
    """A report written into an evaluation's .chunks (or its staging folder) was removed, with
    the user's notes beside it, by the next run of that evaluation."""
    out = tmp_path / "ev"
    args = ("eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en", "--limit", "2",
            "--mode", "rank", "--out", out, *FAST)  # fmt: skip
    assert cli(*args).code == 0
    result = cli("report", out, "--out", out / inside / "report")
    assert_one_line_error(result, "--out", inside, "working space")
    assert not (out / inside).exists()
    # the same name outside any output of mslt-it's is only a name
    assert cli("report", out, "--out", tmp_path / inside / "report").code == 0


def test_an_evaluation_removes_only_its_own_chunk_files(tmp_path) -> None:
    from mslt_it.evaluation.store import RunStore

    store = RunStore(tmp_path, {"a": 1})
    store.prepare(overwrite=False)
    store.save_chunk("xnli", "en", 0, [{"id": "x"}])
    (store.chunks / "mine.txt").write_text("the user's")
    store.drop_chunks()
    assert sorted(p.name for p in store.chunks.iterdir()) == ["mine.txt"]
    (store.chunks / "mine.txt").unlink()
    store.drop_chunks()
    assert not store.chunks.exists()


def test_an_evaluation_of_other_runs_is_not_added_to(cli, tiny_model_dir, tmp_path) -> None:
    """An adapter evaluated into a folder (its results at the top), then the adapter with the
    base (a study, a folder per run): the first results stayed beside the study's, with
    another limit, and a report read both."""
    from test_eval_support import study_adapters

    out = tmp_path / "ev"
    adapter = study_adapters(tiny_model_dir)["a1"]
    common = ("--model", tiny_model_dir, "--adapter", adapter, "--task", "xnli", "--langs", "en",
              "--mode", "rank", "--out", out, *FAST)  # fmt: skip
    assert cli("eval", "--limit", "2", *common).code == 0
    before = snapshot(out)
    result = cli("eval", "--limit", "3", "--include-base", *common)
    assert_one_line_error(result, "holds an evaluation of other runs", "--overwrite")
    assert snapshot(out) == before
    assert cli("eval", "--limit", "3", "--include-base", *common, "--overwrite").code == 0


def test_a_resumed_evaluation_trusts_only_a_chunk_as_it_was_written(tmp_path) -> None:
    """A chunk with "correct" set by hand (its ids unchanged) was read on resume and scored."""
    from mslt_it.evaluation.store import RunStore, read_jsonl

    store = RunStore(tmp_path, {"a": 1})
    store.prepare(overwrite=False)
    records = [{"id": "r0", "correct": False, "output": "a\u2028b\u0085c"}, {"id": "r1"}]
    store.save_chunk("xnli", "en", 0, records)
    assert store.load_chunk("xnli", "en", 0, ["r0", "r1"]) == records  # U+2028 read as text
    store.save_chunk("xnli", "en", 1, [])
    assert store.load_chunk("xnli", "en", 1, []) == []
    path = store.chunk_path("xnli", "en", 0)
    path.write_text(path.read_text().replace('"correct": false', '"correct": true'))
    assert store.load_chunk("xnli", "en", 0, ["r0", "r1"]) is None  # predicted again
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                              for r in records))  # fmt: skip
    assert read_jsonl(tmp_path / "p.jsonl") == records


def test_a_process_that_locked_an_instant_before_is_named(tmp_path: Path) -> None:
    """The holder writes its pid just after it locks: a process starting at the same instant
    found the lock file empty and named no one ("another mslt-it process; wait")."""
    import threading

    from mslt_it.locks import OutputBusy, lock_path, output_lock

    out = tmp_path / "out"
    path = lock_path(out)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(handle, fcntl.LOCK_EX)  # locked, its pid not written yet
    writer = threading.Timer(0.05, lambda: os.write(handle, b"4242\n"))
    writer.start()
    try:
        with pytest.raises(OutputBusy, match=r"\(pid 4242\)"), output_lock(out):
            pass
    finally:
        writer.join()
        os.close(handle)


def test_an_output_with_a_folder_that_cannot_be_listed_is_not_removable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``os.walk`` skips a folder it cannot list: an unreadable ``tensorboard/`` passed the
    check, and the run stopped in it after other outputs were removed."""
    from mslt_it.outputs import check_removable

    out = tmp_path / "adapter"
    (out / "tensorboard").mkdir(parents=True)
    check_removable(out, "train en: output")
    listing = os.scandir

    def refused(path: object = ".") -> object:
        if Path(str(path)) == out / "tensorboard":
            raise PermissionError(13, "Permission denied", str(path))
        return listing(path)

    monkeypatch.setattr(os, "scandir", refused)
    with pytest.raises(MsltError, match=r"train en: output: cannot read .*tensorboard"):
        check_removable(out, "train en: output")


def test_a_write_probe_seen_by_another_process_is_no_users_file(tmp_path: Path) -> None:
    """The write check puts a file in each folder of an output for an instant; another task of
    an array looking for the user's files then took it for one and refused the run."""
    out = tmp_path / "adapter"
    (out / "tensorboard").mkdir(parents=True)
    (out / "run.json").write_text("{}")
    mark_owner(out, "adapter")
    for folder in (out, out / "tensorboard"):
        (folder / ".mslt-it-write-check.k2j3h4").write_text("")
    assert foreign_files(out) == []
    (out / "tensorboard" / "notes.txt").write_text("mine")
    assert foreign_files(out) == ["tensorboard/notes.txt"]


def test_a_file_put_into_a_replaced_output_while_the_command_ran_is_kept(
    cli, tmp_path: Path, capsys
) -> None:
    """``--overwrite`` checked the old output for the user's files once, before the work; a
    file put there while a build ran went with the old output."""
    from mslt_it.outputs import replacing_output

    out = tmp_path / "ds"
    build = ("build", "--task", "xnli", "--sources", "en", "--budget", "4", "--out", out)
    assert cli(*build).code == 0
    with replacing_output(out, "dataset", overwrite=True) as new:
        (new / "rows.txt").write_text("new rows")
        (out / "notes.txt").write_text("the user's")  # while the command runs
    assert (out / "rows.txt").read_text() == "new rows"
    kept = [path for path in tmp_path.rglob("notes.txt")]
    assert [path.read_text() for path in kept] == ["the user's"]
    assert f"kept in {kept[0].parent}" in " ".join(capsys.readouterr().err.split())
    assert not kept[0].parent.name.startswith(".")  # not a temporary a later writer clears
    assert cli(*build, "--overwrite").code == 0  # nothing of the user's there: replaced
    assert not (out / "rows.txt").exists() and kept[0].exists()


def test_chunks_left_without_their_settings_are_not_reused(tmp_path, monkeypatch) -> None:
    """A kill while an --update cleared another model's run removed its settings first: the
    next run took the chunks left for its own, and reported another model's scores as the
    new one's. Chunks no settings name are dropped; a folder is removed whole or not at all."""
    from mslt_it import io
    from mslt_it.evaluation.store import SETTINGS, RunStore

    old = RunStore(tmp_path, {"model": "a"})
    old.prepare(overwrite=False)
    old.save_chunk("xnli", "en", 0, [{"id": "r0"}])
    (old.chunks / SETTINGS).unlink()  # as the kill left it
    new = RunStore(tmp_path, {"model": "b"})
    new.prepare(overwrite=False)
    assert new.load_chunk("xnli", "en", 0, ["r0"]) is None
    new.save_chunk("xnli", "en", 0, [{"id": "r0"}])

    def killed(path, *args, **kwargs):
        raise KeyboardInterrupt  # the kill, mid-removal

    monkeypatch.setattr(io.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        new.prepare(overwrite=True)
    assert not new.chunks.exists()  # renamed aside whole before it was removed
