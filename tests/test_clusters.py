"""Rows that are not independent (XNLI's three hypotheses of one premise, Belebele's questions
of one passage) are resampled together: a task's ``cluster`` rule, its intervals and paired
tests, and an evaluation re-scored (not predicted again) when the rule changes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, evaluate_claims
from hypothesis import given, settings
from hypothesis import strategies as st

from mslt_it.comparisons import NotPairable, RunRows, compare_runs
from mslt_it.errors import MsltError
from mslt_it.evaluation.metrics import bootstrap_interval, mean_interval
from mslt_it.evaluation.plan import definition_sha256
from mslt_it.evaluation.scoring import check_records
from mslt_it.stats import paired_bootstrap, paired_mean_bootstrap
from mslt_it.tasks import get_task
from mslt_it.tasks.definitions import parse_definition

DEFINITION = (
    "name: claims\ntitle: Claims\nkind: classification\n"
    "splits: [test]\nlanguages: [en, de]\n"
    "columns: [claim, evidence, verdict]\nlabels: [supported, refuted]\n"
    "label_column: verdict\n"
    "variables: {claim: row.claim, evidence: row.evidence}\n"
)


def write_task(folder: Path, cluster: str | None = "row.evidence") -> Path:
    """A user task whose 12 rows per language share their evidence three by three."""
    (folder / "tasks").mkdir(parents=True, exist_ok=True)
    line = f"cluster: {cluster}  # rows of one evidence\n" if cluster else ""
    (folder / "tasks" / "claims.yaml").write_text(DEFINITION + line)
    (folder / "prompts" / "claims").mkdir(parents=True, exist_ok=True)
    (folder / "prompts" / "claims" / "plain.yaml").write_text(
        "id: claims/plain\ntask: claims\ndescription: test\n"
        "instruction: 'Claim: {{ claim }}. Evidence: {{ evidence }}. Supported or refuted?'\n"
        "answer: '{{ label_word }}'\n"
        "verbalizers: {supported: supported, refuted: refuted}\n"
    )
    for lang in ("en", "de"):
        rows_folder = folder / "data" / "claims" / lang
        rows_folder.mkdir(parents=True, exist_ok=True)
        rows = [
            {"claim": f"{lang} claim {i}", "evidence": f"evidence {i // 3}", "verdict": i % 2}
            for i in range(12)
        ]
        (rows_folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


# ------------------------------------------------------------------------------ statistics


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.booleans(), min_size=1, max_size=40),
    st.lists(st.booleans(), min_size=1, max_size=40),
    st.integers(0, 2**32 - 1),
)
def test_clusters_of_one_row_each_give_the_row_bootstraps_numbers(first, second, seed) -> None:
    """Each row its own cluster is the plain bootstrap: same draws, same interval and p."""
    n = min(len(first), len(second))
    a, b = np.array(first[:n], float), np.array(second[:n], float)
    singles = [f"row {i}" for i in range(n)]
    plain = paired_bootstrap(a, b, "accuracy", 200, seed)
    grouped = paired_bootstrap(a, b, "accuracy", 200, seed, singles)
    assert grouped.p_value == plain.p_value
    assert grouped.low == pytest.approx(plain.low) and grouped.high == pytest.approx(plain.high)
    assert bootstrap_interval(a, "accuracy", 200, seed, singles) == pytest.approx(
        bootstrap_interval(a, "accuracy", 200, seed)
    )


def test_rows_alike_within_their_cluster_widen_the_interval_about_the_design_effect() -> None:
    """40 clusters of 10 rows, each cluster all right or all wrong: 40 draws, not 400. The
    interval is about √10 ≈ 3.2 times the rows' one; one cluster gives no width at all."""
    correct = np.repeat(np.arange(40) % 2, 10).astype(float)
    keys = [f"passage {i // 10}" for i in range(400)]
    rows = bootstrap_interval(correct, "accuracy", 2000, 0)
    grouped = bootstrap_interval(correct, "accuracy", 2000, 0, keys)
    assert rows is not None and grouped is not None
    ratio = (grouped[1] - grouped[0]) / (rows[1] - rows[0])
    assert 2.5 < ratio < 4.0
    assert bootstrap_interval(correct, "accuracy", 100, 0, ["one"] * 400) == [50.0, 50.0]
    widths = [mean_interval([correct, correct], 2000, 0, k) for k in (None, [keys, keys])]
    assert widths[1][1] - widths[1][0] > 2.5 * (widths[0][1] - widths[0][0])


def test_a_paired_difference_in_clusters_is_less_sure() -> None:
    """B right on 2 more clusters of 10 rows than A: row by row the difference looks certain,
    cluster by cluster (20 of 400 rows, 2 of 40 draws) it is not."""
    base = np.repeat(np.arange(40) % 2, 10).astype(float)
    better = base.copy()
    better[:40][base[:40] == 0] = 1.0  # clusters 0 and 2 (wrong in A) right in B
    keys = [f"passage {i // 10}" for i in range(400)]
    rows = paired_bootstrap(base, better, "accuracy", 2000, 0)
    grouped = paired_bootstrap(base, better, "accuracy", 2000, 0, keys)
    assert rows.difference == grouped.difference == pytest.approx(5.0)
    assert rows.p_value < 0.01 and grouped.p_value > 0.1
    mean = paired_mean_bootstrap([(base, better)], "accuracy", 2000, 0, [keys])
    assert mean.p_value > 0.1


def test_f1_counts_are_summed_per_cluster() -> None:
    counts = np.array([[1, 1, 1], [0, 1, 1], [1, 1, 1], [0, 0, 1]], float)
    one = bootstrap_interval(counts, "f1", 50, 0, ["a"] * 4)
    assert one == [pytest.approx(200 * 2 / 7, abs=1e-3)] * 2


# ------------------------------------------------------------------------------ definitions


def test_shipped_xnli_and_belebele_resample_their_passages_together() -> None:
    xnli, belebele = get_task("xnli"), get_task("belebele")
    assert xnli.cluster_of is not None and belebele.cluster_of is not None
    assert xnli.cluster_of({"premise": "P", "hypothesis": "H", "label": 0}) == "P"
    assert get_task("xcopa").cluster_of is None


def test_the_cluster_line_is_no_part_of_the_definitions_identity(tmp_path: Path) -> None:
    """Adding or editing the rule leaves the digest that predictions are keyed by; any other
    edit changes it."""
    folder = write_task(tmp_path / "a", cluster=None)
    path = folder / "tasks" / "claims.yaml"
    digests = []
    for cluster in (None, "row.evidence", "row.claim"):
        write_task(tmp_path / "a", cluster)
        digests.append(definition_sha256(parse_definition(path)))
    assert len(set(digests)) == 1
    path.write_text(path.read_text().replace("title: Claims", "title: Claims 2"))
    assert definition_sha256(parse_definition(path)) != digests[0]


@pytest.mark.parametrize(
    ("tail", "fragment"),
    [
        ("cluster: row.evidence ~\n  row.claim\n", "cluster: write it on one line of its own"),
        ("'cluster': row.evidence\n", "cluster: write it on one line of its own"),
        ("cluster: >-\n  row.evidence\n", "cluster: write it on one line of its own"),
        ("cluster: row.source\n", "cluster: reads row.source, which is not among the columns"),
        ("cluster: '[row.claim]'\n", "cluster: gives ['text'] (list); allowed: a text or a whole"),
        ("cluster: row.claim.__class__\n", "cluster:"),
    ],
)
def test_a_broken_cluster_rule_is_one_line_naming_it(tmp_path: Path, tail, fragment) -> None:
    folder = write_task(tmp_path, cluster=None)
    path = folder / "tasks" / "claims.yaml"
    path.write_text(DEFINITION + tail)
    with pytest.raises(MsltError) as error:
        parse_definition(path)
    message = str(error.value)
    assert fragment in message and "\n" not in message and "claims.yaml" in message


# ------------------------------------------------------------------------------ evaluation


def evaluate(cli, folder: Path, tiny_model_dir: Path, out: Path, *extra):
    return evaluate_claims(cli, folder, tiny_model_dir, out, "en,de", *extra)


def test_an_evaluation_names_each_rows_cluster_and_a_changed_rule_rescores_it(
    cli, tmp_path: Path, tiny_model_dir: Path
) -> None:
    folder = write_task(tmp_path / "user")
    out = tmp_path / "ev"
    assert evaluate(cli, folder, tiny_model_dir, out).code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["tasks"]["claims"]["languages"]["en"]["clusters"] == 4
    assert results["settings"]["tasks"][0]["cluster"] == "row.evidence"
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert {r["cluster"] for r in records if r["lang"] == "en"} == {
        f"evidence {i}" for i in range(4)
    }
    predictions = [(r["id"], r["output"], r.get("scores")) for r in records]

    write_task(folder, "row.claim")  # every row its own cluster now
    assert_one_line_error(evaluate(cli, folder, tiny_model_dir, out), "cluster rule", "--update")
    again = evaluate(cli, folder, tiny_model_dir, out, "--update")
    assert again.code == 0, again.err
    rescored = json.loads((out / "results.json").read_text())
    assert rescored["tasks"]["claims"]["languages"]["en"]["clusters"] == 12
    timings = json.loads((out / "timings.json").read_text())
    assert timings["examples_predicted"] == 0  # re-scored, nothing predicted
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [(r["id"], r["output"], r.get("scores")) for r in records] == predictions

    write_task(folder, None)  # no rule: no keys, intervals over rows
    assert evaluate(cli, folder, tiny_model_dir, out, "--update").code == 0
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert not any("cluster" in r for r in records)
    plain = json.loads((out / "results.json").read_text())["tasks"]["claims"]["languages"]["en"]
    assert "clusters" not in plain


def test_an_edited_cluster_field_in_predictions_is_one_line(tmp_path: Path) -> None:
    base = {"task": "xnli", "lang": "en", "template": "xnli/en-instruct", "output": "x",
            "gold": "neutral", "adapter": "base", "mode": "generate"}  # fmt: skip
    with pytest.raises(MsltError, match="cluster is 5; allowed: text"):
        check_records([{**base, "id": "1", "cluster": 5}], tmp_path / "p.jsonl")
    with pytest.raises(MsltError, match="lacks the cluster that the first record"):
        check_records([{**base, "id": "1", "cluster": "a"}, {**base, "id": "2"}], tmp_path / "p")


# ------------------------------------------------------------------------------ comparisons


def runs(keys_a: list[str] | None, keys_b: list[str] | None) -> tuple[RunRows, RunRows]:
    ids = [f"r{i:03d}" for i in range(400)]
    base = np.repeat(np.arange(40) % 2, 10)
    better = base.copy()
    better[:40][base[:40] == 0] = 1

    def made(name: str, values, keys) -> RunRows:
        rows = {"xnli": {"sw": dict(zip(ids, map(float, values), strict=True))}}
        clusters = {"xnli": {"sw": dict(zip(ids, keys, strict=True))}} if keys else {}
        return RunRows(name, ("en",), {"xnli": "accuracy"}, rows, clusters=clusters)

    return made("sslt", base, keys_a), made("mslt", better, keys_b)


def test_a_clustered_comparison_is_decided_by_its_bootstrap_not_mcnemar() -> None:
    keys = [f"premise {i // 10}" for i in range(400)]
    by_rows = compare_runs(*runs(None, None))[0]
    by_clusters = compare_runs(*runs(keys, None))[0]
    assert by_rows.p_mcnemar is not None and by_rows.significant
    assert by_clusters.p_mcnemar is None and not by_clusters.significant
    assert by_clusters.only_run == 20  # the disagreements are still counted
    assert compare_runs(*runs(keys, keys))[0] == by_clusters


def test_runs_grouping_rows_otherwise_are_not_compared() -> None:
    keys = [f"premise {i // 10}" for i in range(400)]
    other = [f"premise {i // 5}" for i in range(400)]
    with pytest.raises(NotPairable, match=r"other clusters .*--update"):
        compare_runs(*runs(keys, other))


# ------------------------------------------------------------------------------ resamples


@pytest.mark.parametrize("samples", [1, 2, 39])
def test_too_few_resamples_for_a_95_interval_are_refused(
    cli, tmp_path: Path, tiny_model_dir: Path, samples: int
) -> None:
    """One resample made an "interval" of that resample's score, which need not hold the
    score (33.3 shown with 40.0–40.0)."""
    folder = write_task(tmp_path / "user", None)
    result = cli("eval", "--model", tiny_model_dir, "--task", "claims", "--langs", "en",
                 "--data", folder / "data", "--tasks-dir", folder / "tasks",
                 "--prompts-dir", folder / "prompts", "--template", "claims/plain",
                 "--bootstrap-samples", str(samples), "--out", tmp_path / "ev")  # fmt: skip
    assert_one_line_error(
        result, "--bootstrap-samples", f"{samples}; allowed: 0 (no interval) or 40"
    )
    assert not (tmp_path / "ev").exists()


def test_score_refuses_too_few_resamples_before_reading(cli, tmp_path: Path) -> None:
    (tmp_path / "predictions.jsonl").write_text("")
    result = cli("score", tmp_path / "predictions.jsonl", "--bootstrap-samples", "2")
    assert_one_line_error(result, "--bootstrap-samples: 2; allowed: 0 (no interval) or 40")
    assert not (tmp_path / "rescored.json").exists()


# ------------------------------------------------------------------------------ reading again


def test_a_definition_edited_in_one_process_is_read_again(tmp_path: Path) -> None:
    """Definitions were kept by their folders alone: a notebook's second evaluation after an
    edit used the old task while recording the new file's digest."""
    from mslt_it.tasks import add_tasks_dirs, reset_tasks_dirs

    folder = write_task(tmp_path, "row.evidence")
    add_tasks_dirs([folder / "tasks"])
    try:
        row = {"claim": "c", "evidence": "e", "verdict": 0}
        assert get_task("claims").cluster_of(row) == "e"
        before = (folder / "tasks" / "claims.yaml").stat()
        write_task(tmp_path, "row.claim   ")  # the same size (and maybe the same mtime)
        after = (folder / "tasks" / "claims.yaml").stat()
        assert after.st_size == before.st_size
        assert get_task("claims").cluster_of(row) == "c"
        (folder / "tasks" / "claims.yaml").unlink()
        with pytest.raises(MsltError, match="unknown task 'claims'"):
            get_task("claims")
    finally:
        reset_tasks_dirs()


def test_scoring_looks_a_task_up_once_not_once_per_record(tmp_path: Path, monkeypatch) -> None:
    """Each look-up checks the definitions' files; scoring did three per record."""
    import mslt_it.tasks.definitions as definitions
    from mslt_it.evaluation.scoring import score_records
    from mslt_it.prompts import get_template

    calls = []
    real = definitions.load_definitions
    monkeypatch.setattr(definitions, "load_definitions", lambda f: calls.append(1) or real(f))
    template = get_template("xnli/en-instruct")
    records = [
        {"task": "xnli", "lang": "en", "id": f"xnli/en/test/{i}", "template": template.id,
         "output": "neutral", "gold": "neutral", "mode": "generate", "adapter": "base"}
        for i in range(300)
    ]  # fmt: skip
    check_records(records, tmp_path / "p.jsonl")
    score_records(records, lambda task, template_id: template, samples=0, reparse=True)
    assert len(calls) < 10


FLOW = (
    "{name: claims, title: Claims, kind: classification, splits: [test], "
    "languages: [en, de], columns: [claim, evidence, verdict], labels: [supported, refuted], "
    "label_column: verdict, variables: {claim: \"row.claim ~ ' \n\ncluster: row.evidence\n\n'\", "
    "evidence: row.evidence}, cluster: row.evidence}\n"
)
BLOCK = DEFINITION.replace(
    "variables: {claim: row.claim,",
    "variables: {claim: \"row.claim ~ '\ncluster: row.evidence\n'\",",
)


@pytest.mark.parametrize(
    "text",
    [
        FLOW,
        "\ufeffcluster: row.evidence\n" + BLOCK,
        DEFINITION.replace("variables:", "cluster: &rule row.evidence\nvariables:").replace(
            "claim: row.claim,", "claim: *rule,"
        ),
        DEFINITION.split("variables:")[0]
        + "# c\u2028cluster: row.evidence\u2028variables: {claim: \"row.claim ~ '\n"
        + "cluster: A'\", evidence: row.evidence}\n",
    ],
    ids=[
        "flow-style entry, a line of text beginning cluster:",
        "BOM, then a text line too",
        "the rule anchored and read by a variable",
        "a YAML line break no file line break matches",
    ],
)
def test_a_line_of_another_fields_text_is_never_taken_for_the_rule(tmp_path: Path, text) -> None:
    """Every line beginning ``cluster:`` was left out of the identity: one inside a quoted
    variable, which reaches every prompt, could be edited and the stale predictions kept."""
    folder = write_task(tmp_path, cluster=None)
    path = folder / "tasks" / "claims.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MsltError, match="cluster: write it on one line of its own"):
        parse_definition(path)


def test_a_byte_order_mark_before_the_rule_is_read_past(tmp_path: Path) -> None:
    folder = write_task(tmp_path, cluster=None)
    path = folder / "tasks" / "claims.yaml"
    path.write_text("\ufeffcluster: row.evidence\n" + DEFINITION, encoding="utf-8")
    task = parse_definition(path)
    assert task.cluster_of({"claim": "c", "evidence": "e", "verdict": 0}) == "e"
    with_rule = definition_sha256(task)
    path.write_text("\ufeff" + DEFINITION, encoding="utf-8")
    assert definition_sha256(parse_definition(path)) == with_rule


def test_the_report_says_which_p_a_clustered_comparison_took() -> None:
    """report.md said "McNemar's exact p (accuracy)" above a table of cluster-bootstrap p's."""
    from mslt_it.comparisons import markdown

    keys = [f"premise {i // 10}" for i in range(400)]
    rows = compare_runs(*runs(keys, None))
    assert rows[0].clusters == 40
    text = markdown(rows)
    assert "rows resampled in clusters" in text
    assert "40 for sw): every interval and p above is the cluster bootstrap's" in text
    assert "cluster bootstrap" not in markdown(compare_runs(*runs(None, None)))


def test_score_refuses_too_few_resamples_recorded_by_an_earlier_mslt_it(
    cli, tmp_path: Path, tiny_model_dir: Path
) -> None:
    folder = write_task(tmp_path / "user", None)
    out = tmp_path / "ev"
    assert evaluate(cli, folder, tiny_model_dir, out).code == 0
    results = json.loads((out / "results.json").read_text())
    results["bootstrap"]["samples"] = 2  # as an earlier mslt-it allowed
    (out / "results.json").write_text(json.dumps(results))
    common = ["--tasks-dir", folder / "tasks", "--prompts-dir", folder / "prompts"]
    refused = cli("score", out / "predictions.jsonl", *common)
    assert_one_line_error(refused, "bootstrap.samples: 2; allowed", "--bootstrap-samples 1000")
    assert cli("score", out / "predictions.jsonl", "--bootstrap-samples", "100", *common).code == 0


def test_a_results_file_is_checked_with_one_task_look_up(tmp_path: Path, monkeypatch) -> None:
    import mslt_it.tasks.definitions as definitions
    from mslt_it.selection.api import load_results_csv

    calls = []
    real = definitions.load_definitions
    monkeypatch.setattr(definitions, "load_definitions", lambda f: calls.append(1) or real(f))
    lines = [f"{a}+{b},{i}" for i, (a, b) in enumerate([("en", "de"), ("ar", "zh")] * 1)]
    (tmp_path / "r.csv").write_text("sources,score\n" + "\n".join(lines) + "\nfr+ru,3\n")
    assert len(load_results_csv(tmp_path / "r.csv", "xnli")) == 3
    assert len(calls) <= 1


def test_scores_csv_says_which_intervals_resampled_clusters(
    cli, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """scores.csv mixed row and cluster intervals (runs evaluated before and after a rule)
    without a word."""
    import csv

    folder = write_task(tmp_path / "user")
    assert evaluate(cli, folder, tiny_model_dir, tmp_path / "ev").code == 0
    made = cli("report", tmp_path / "ev", "--out", tmp_path / "report")
    assert made.code == 0, made.err
    with (tmp_path / "report" / "scores.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["lang"]: row["clusters"] for row in rows} == {"en": "4", "de": "4"}
