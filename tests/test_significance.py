"""Paired comparisons, rollups and adapter sanity, on constructed predictions with known answers."""

from __future__ import annotations

import csv
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error

from mslt_it.comparisons import AVERAGE, RunRows, compare_runs
from mslt_it.errors import MsltError
from mslt_it.evaluation.sanity import adapter_sanity
from mslt_it.report import write_report
from mslt_it.rollups import gain_rollup, group_of, rollup, tier
from mslt_it.stats import holm, mcnemar_exact, paired_bootstrap, paired_mean_bootstrap

# ------------------------------------------------------------------------------ statistics


def test_identical_runs_give_p_one_and_an_interval_at_zero() -> None:
    rows = np.random.default_rng(0).integers(0, 2, 200).astype(float)
    found = paired_bootstrap(rows, rows.copy(), "accuracy", 1000, 0)
    assert (found.difference, found.low, found.high, found.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert mcnemar_exact(rows > 0, rows > 0).p_value == 1.0
    counts = np.array([[1, 2, 1], [0, 1, 1], [2, 2, 2]] * 10, dtype=float)
    assert paired_bootstrap(counts, counts.copy(), "f1", 500, 1).p_value == 1.0
    both = [(rows, rows.copy()), (rows[:50], rows[:50].copy())]
    assert paired_mean_bootstrap(both, "accuracy", 500, 2).p_value == 1.0


def test_a_run_better_on_every_row_is_significant() -> None:
    worse, better = np.zeros(100), np.ones(100)
    found = paired_bootstrap(worse, better, "accuracy", 1000, 0)
    assert found.difference == 100.0 and found.low == found.high == 100.0
    assert found.p_value == pytest.approx(2 / 1001)  # add-one form: never 0 from 1000 resamples
    test = mcnemar_exact(worse > 0, better > 0)
    assert (test.only_a, test.only_b) == (0, 100)
    assert test.p_value == pytest.approx(2 * 0.5**100)


def test_a_small_gain_on_few_disagreements_is_not_significant() -> None:
    """3 rows won, 1 lost: p = 2·P(X ≤ 1 | n=4, ½) = 2·5/16."""
    a = np.array([1, 0, 0, 0] + [1] * 50 + [0] * 46, dtype=bool)
    b = np.array([0, 1, 1, 1] + [1] * 50 + [0] * 46, dtype=bool)
    test = mcnemar_exact(a, b)
    assert (test.only_a, test.only_b) == (1, 3)
    assert test.p_value == pytest.approx(0.625)
    boot = paired_bootstrap(a.astype(float), b.astype(float), "accuracy", 2000, 0)
    assert boot.difference == pytest.approx(2.0)
    assert boot.low < 0 < boot.high and boot.p_value > 0.05


def test_mcnemar_on_a_hand_counted_table() -> None:
    """Table: both right 40, only A 2, only B 8, both wrong 50. Exact two-sided p =
    2·P(X ≤ 2 | n=10, ½) = 2·(1 + 10 + 45)/1024 = 0.109375."""
    a = [True] * 40 + [True] * 2 + [False] * 8 + [False] * 50
    b = [True] * 40 + [False] * 2 + [True] * 8 + [False] * 50
    test = mcnemar_exact(a, b)
    assert (test.only_a, test.only_b) == (2, 8)
    assert test.p_value == pytest.approx(112 / 1024)


def test_holm_matches_a_hand_worked_reference() -> None:
    """p = (0.01, 0.04, 0.03, 0.005), m = 4. Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03,
    0.03·2 = 0.06, 0.04·1 = 0.04 → raised to 0.06 by the running maximum. Back in input order:
    (0.03, 0.06, 0.06, 0.02) — statsmodels' multipletests(method="holm") gives the same."""
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == [0.02] and holm([]) == []
    ties = holm([0.01, 0.01, 0.2])
    assert ties == pytest.approx([0.03, 0.03, 0.2])


# ------------------------------------------------------------------------- a constructed study

LANGS = ("en", "de", "ar", "zh", "bg", "ru", "hi", "th", "tr", "sw")
MSLT_SOURCES = ("ar", "de", "zh")
TRANSFERS = {"bg": 0.9, "ru": 0.95, "hi": 0.7}
"""Targets MSLT transfers to (its accuracy there); elsewhere both runs sit at chance (1/3)."""


def correctness(run: str, lang: str, rows: int = 100) -> np.ndarray:
    """Each row's correctness, drawn with a fixed seed per run and language."""
    rng = np.random.default_rng(zlib.crc32(f"{run}/{lang}".encode()))
    if run == "sslt":
        rate = 1.0 if lang == "en" else 1 / 3
    elif run == "mslt":
        rate = 1.0 if lang in MSLT_SOURCES else TRANSFERS.get(lang, 1 / 3)
    else:
        rate = 1 / 3
    return rng.random(rows) < rate


def write_run(
    folder: Path, name: str, sources: tuple[str, ...], rows: int = 100, langs=LANGS, **extra
) -> Path:
    """results.json and predictions.jsonl of a run whose rows are :func:`correctness`."""
    folder.mkdir(parents=True)
    records, languages = [], {}
    for lang in langs:
        right = correctness(name, lang, rows)
        for i, ok in enumerate(right):
            records.append({"task": "xnli", "lang": lang, "id": f"xnli/{lang}/test/{i}",
                            "output": "entailment" if ok else "neutral", "gold": "entailment",
                            "parsed": "entailment" if ok else "neutral",
                            "correct": bool(ok), "invalid": False, "mode": "rank",
                            "scores": {"entailment": -0.5 if ok else -2.0,
                                       "neutral": -2.0 if ok else -0.5, "contradiction": -3.0},
                            "template": "xnli/en-instruct", "adapter": name})  # fmt: skip
        score = 100 * float(right.mean())
        languages[lang] = {"score": score, "ci95": [score - 5, score + 5], "n": rows}
    (folder / "predictions.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )
    results = {"kind": "mslt-it eval results", "run": name, "data": "synthetic",
               "model": "tiny", "mode": "rank",
               "adapter": {"sources": list(sources)} if sources else None,
               "tasks": {"xnli": {"metric": "accuracy", "languages": languages}},
               **extra}  # fmt: skip
    (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return folder


@pytest.fixture
def study(tmp_path: Path) -> Path:
    root = tmp_path / "eval"
    write_run(root / "en", "sslt", ("en",))
    write_run(root / "ar+de+zh", "mslt", MSLT_SOURCES)
    return root


def rows_of(run: str, sources: tuple[str, ...]) -> RunRows:
    data = {
        lang: {str(i): float(v) for i, v in enumerate(correctness(run, lang))} for lang in LANGS
    }
    return RunRows(run, sources, {"xnli": "accuracy"}, {"xnli": data})


def test_gains_where_mslt_transfers_are_significant_and_not_where_both_are_at_chance() -> None:
    rows = compare_runs(rows_of("sslt", ("en",)), rows_of("mslt", MSLT_SOURCES))
    found = {r.lang: r for r in rows}
    for lang in TRANSFERS:
        assert found[lang].significant and found[lang].difference > 20, found[lang]
        assert found[lang].ci_low > 0
    for lang in ("th", "tr", "sw"):
        assert not found[lang].significant, found[lang]
        assert found[lang].ci_low < 0 < found[lang].ci_high or found[lang].difference == 0
        assert found[lang].p_holm >= found[lang].p_mcnemar
    average = found[AVERAGE]
    assert average.significant and average.ci_low > 0
    assert average.n == 100 * len([lang for lang in LANGS if lang not in ("en", *MSLT_SOURCES)])


def test_the_report_compares_mslt_with_sslt_and_rolls_up_by_script(
    study: Path, tmp_path: Path
) -> None:
    report = write_report([study], tmp_path / "report")
    text = report.read_text(encoding="utf-8")
    assert "## Paired comparisons" in text and "### MSLT ar+de+zh vs SSLT en (xnli)" in text
    assert "| bg |" in text and "**+" in text
    assert "### By script" in text and "Cyrl" in text and "*MSLT ar+de+zh − SSLT en*" in text
    with (tmp_path / "report" / "comparisons.csv").open(encoding="utf-8") as handle:
        rows = {row["lang"]: row for row in csv.DictReader(handle)}
    assert rows["ru"]["significant"] == "True" and rows["th"]["significant"] == "False"
    assert float(rows["ru"]["ci_low"]) > 0 and rows[AVERAGE]["p_holm"] == ""
    with (tmp_path / "report" / "scores.csv").open(encoding="utf-8") as handle:
        scores = list(csv.DictReader(handle))
    assert len(scores) == 2 * len(LANGS)
    bg = next(r for r in scores if r["run"] == "MSLT ar+de+zh" and r["lang"] == "bg")
    assert (bg["script"], bg["family"], bg["tier"]) == ("Cyrl", "Indo-European", "high")
    assert bg["compared_with"] == "SSLT en" and bg["significant"] == "True"
    assert (tmp_path / "report" / "gain.png").stat().st_size > 0


def test_a_run_without_resamples_has_no_interval_in_the_report(tmp_path: Path) -> None:
    """`eval --bootstrap-samples 0` writes ``ci95: null``: scores.csv leaves the interval empty
    rather than print one of zero width at the score."""
    root = tmp_path / "eval"
    write_run(root / "en", "sslt", ("en",))
    document = json.loads((root / "en" / "results.json").read_text(encoding="utf-8"))
    for entry in document["tasks"]["xnli"]["languages"].values():
        entry["ci95"] = None
    (root / "en" / "results.json").write_text(json.dumps(document), encoding="utf-8")
    write_run(root / "ar+de+zh", "mslt", MSLT_SOURCES)
    write_report([root], tmp_path / "report")
    with (tmp_path / "report" / "scores.csv").open(encoding="utf-8") as handle:
        scores = {(row["run"], row["lang"]): row for row in csv.DictReader(handle)}
    assert (scores["SSLT en", "bg"]["ci_low"], scores["SSLT en", "bg"]["ci_high"]) == ("", "")
    mslt = scores["MSLT ar+de+zh", "bg"]
    assert float(mslt["ci_low"]) + 5 == pytest.approx(float(mslt["score"]), abs=0.01)


def test_compare_asks_for_any_pair_by_its_report_name(cli, study: Path, tmp_path: Path) -> None:
    write_run(study / "base", "base", ())
    out = tmp_path / "report"
    result = cli("report", str(study), "--out", str(out), "--compare", "base", "SSLT en")
    assert result.code == 0, result.err
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "### SSLT en vs base (xnli)" in text and "### MSLT ar+de+zh vs SSLT en" in text


def test_compare_of_runs_on_different_rows_is_one_line(cli, study: Path, tmp_path: Path) -> None:
    write_run(tmp_path / "other", "other", ("es", "fr"), rows=90)
    result = cli("report", str(study), str(tmp_path / "other"), "--out", str(tmp_path / "r"),
                 "--compare", "SSLT en", "MSLT es+fr")  # fmt: skip
    assert_one_line_error(result, "different rows", "xnli/en")
    assert not (tmp_path / "r").exists()


def test_compare_of_runs_on_different_tasks_is_one_line(cli, study: Path, tmp_path: Path) -> None:
    folder = write_run(tmp_path / "paws", "paws", ("es", "fr"))
    for name in ("results.json", "predictions.jsonl"):
        path = folder / name
        path.write_text(path.read_text(encoding="utf-8").replace("xnli", "pawsx"), "utf-8")
    result = cli("report", str(study), str(folder), "--out", str(tmp_path / "r"),
                 "--compare", "SSLT en", "MSLT es+fr")  # fmt: skip
    assert_one_line_error(result, "different tasks")


def test_compare_given_one_run_names_compare_not_out(cli, study: Path, tmp_path: Path) -> None:
    """``--compare base --out r`` took ``--out`` for the second run, and said ``--out`` was
    missing."""
    result = cli("report", study, "--compare", "SSLT en", "--out", tmp_path / "r")
    assert_one_line_error(result, "'--compare'", "'--out' is an option, not a run")
    result = cli("report", study, "--compare", "SSLT en", f"-o{tmp_path / 'r'}")
    assert_one_line_error(result, "'--compare'", "is an option, not a run")
    assert not (tmp_path / "r").exists()


def test_compare_of_an_unknown_run_names_the_runs(cli, study: Path, tmp_path: Path) -> None:
    result = cli("report", str(study), "--out", str(tmp_path / "r"), "--compare", "SSLT en", "x")
    assert_one_line_error(result, "no run 'x'", "MSLT ar+de+zh")


def settings(**changed) -> dict:
    """results.json's ``settings`` of a hf evaluation in rank mode, with ``changed`` keys."""
    task = {"task": "xnli", "split": "test", "template": "xnli/en-instruct",
            "template_sha256": "t1", "max_tokens": 32, "definition_sha256": "d1"}  # fmt: skip
    task.update(changed.pop("task", {}))
    return {"backend": "hf", "mode": "rank", "dtype": "auto", "batch_size": 32,
            "system_prompt": None, "data": "synthetic", "chat_template_sha256": "c1",
            "model": "tiny", "chunk_size": 256, "tasks": [task]} | changed  # fmt: skip


def test_a_pair_evaluated_differently_says_how(tmp_path: Path) -> None:
    """Runs evaluated in another dtype, batch size or template version differ partly by the
    evaluation: the comparison says so under its table; equal settings (the model, adapter and
    chunking aside) say nothing."""
    root = tmp_path / "eval"
    write_run(root / "en", "sslt", ("en",), settings=settings())
    write_run(root / "mslt", "mslt", MSLT_SOURCES,
              settings=settings(model="other", chunk_size=8))  # fmt: skip
    text = write_report([root], tmp_path / "same").read_text(encoding="utf-8")
    assert "### MSLT ar+de+zh vs SSLT en" in text and "Evaluated differently" not in text
    changed = settings(dtype="bfloat16", batch_size=1, task={"template_sha256": "t2"})
    document = json.loads((root / "mslt" / "results.json").read_text())
    document["settings"] = changed
    (root / "mslt" / "results.json").write_text(json.dumps(document))
    text = write_report([root], tmp_path / "changed").read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("**Evaluated differently**"))
    assert "(SSLT en, then MSLT ar+de+zh)" in line
    assert "dtype auto (not resolved) vs bfloat16" in line and "batch_size 32 vs 1" in line
    assert "template (its content)" in line and "mode " not in line and "chunk" not in line


def test_compare_of_rows_with_the_same_ids_but_other_content_is_one_line(
    cli, tmp_path: Path
) -> None:
    """A data file rewritten between two evaluations keeps its ids and gold answers; the
    rows' digests that results.json records tell the texts apart."""
    digests = {lang: "a" * 64 for lang in LANGS}
    write_run(tmp_path / "eval" / "en", "sslt", ("en",),
              settings=settings(task={"rows_sha256": digests}))  # fmt: skip
    other = {**digests, "de": "b" * 64}
    write_run(tmp_path / "eval" / "mslt", "mslt", MSLT_SOURCES,
              settings=settings(task={"rows_sha256": other}))  # fmt: skip
    result = cli("report", tmp_path / "eval", "--out", tmp_path / "r",
                 "--compare", "SSLT en", "MSLT ar+de+zh")  # fmt: skip
    assert_one_line_error(result, "xnli/de", "other content")
    assert not (tmp_path / "r").exists()
    text = write_report([tmp_path / "eval"], tmp_path / "r2").read_text(encoding="utf-8")
    assert "Not compared: MSLT ar+de+zh vs SSLT en" in text and "other content" in text


@pytest.mark.parametrize("said", [True, False], ids=["in-settings", "rows-only"])
def test_a_pair_evaluated_on_other_languages_says_so(tmp_path: Path, said: bool) -> None:
    """Told by the rows each run holds, not by its settings: a copy whose rows lack sw (its
    settings unchanged, or a results.json without settings) was compared on fewer languages,
    and the report said nothing."""
    root = tmp_path / "eval"
    write_run(root / "en", "sslt", ("en",), settings=settings(task={"languages": list(LANGS)}))
    fewer = [lang for lang in LANGS if lang != "sw"]
    named = fewer if said else list(LANGS)
    write_run(root / "mslt", "mslt", MSLT_SOURCES, langs=fewer,
              settings=settings(task={"languages": named}))  # fmt: skip
    text = write_report([root], tmp_path / "r").read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("**Evaluated differently**"))
    assert "languages (sw only in the first): compared on those both have" in line


def test_a_prediction_whose_correct_flag_contradicts_its_answer_is_refused(
    cli, tmp_path: Path
) -> None:
    """The paired tests count ``correct``; one flipped by hand (accuracy kept by flipping
    another) moved McNemar's p without a word."""
    folder = write_run(tmp_path / "eval" / "en", "sslt", ("en",))
    path = folder / "predictions.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert cli("report", tmp_path / "eval", "--out", tmp_path / "ok").code == 0
    records[0]["correct"] = not records[0]["correct"]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = cli("report", tmp_path / "eval", "--out", tmp_path / "r")
    assert_one_line_error(result, "xnli/en/test/0", "correct", "changed after scoring")


@pytest.mark.parametrize("field", ["gold", "parsed", "correct"])
def test_a_row_without_what_its_outcome_is_decided_from_is_refused(
    cli, tmp_path: Path, field: str
) -> None:
    """A wrong row whose ``gold`` and ``parsed`` were deleted and ``correct`` set to true was
    counted as right: the check of ``correct`` against them passed rows that lacked them."""
    folder = write_run(tmp_path / "eval" / "en", "sslt", ("en",))
    path = folder / "predictions.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    wrong = next(record for record in records if not record["correct"])
    wrong.pop(field)
    if field != "correct":
        wrong["correct"] = True
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = cli("report", tmp_path / "eval", "--out", tmp_path / "r")
    assert_one_line_error(result, wrong["id"], f"lacks field {field!r}", "changed after scoring")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flag", ["x", 1, None, [True]])
def test_a_correct_flag_that_is_not_true_or_false_is_named(cli, tmp_path: Path, flag) -> None:
    """``"correct": "x"`` was counted as right and reported as 'says correct is True'."""
    folder = write_run(tmp_path / "eval" / "en", "sslt", ("en",))
    path = folder / "predictions.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    records[0]["correct"] = flag
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = cli("report", tmp_path / "eval", "--out", tmp_path / "r")
    assert_one_line_error(result, "xnli/en/test/0", "correct is", "allowed: true or false")
    assert not (tmp_path / "r").exists()


def test_a_ranked_answer_edited_away_from_its_scores_is_refused(cli, tmp_path: Path) -> None:
    """In rank mode the answer is the best-scored choice; an answer and its ``correct`` edited
    together agreed with each other and were counted."""
    folder = write_run(tmp_path / "eval" / "en", "sslt", ("en",))
    path = folder / "predictions.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        record["parsed"] = record["output"]
        others = {"entailment": -2.0, "neutral": -2.0, "contradiction": -3.0}
        record["scores"] = {**others, record["output"]: -0.5}
    records[1]["scores"] = {"entailment": -1.0, "neutral": -1.0, "contradiction": -3.0}  # a tie
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert cli("report", tmp_path / "eval", "--out", tmp_path / "ok").code == 0
    wrong = records[0]  # its answer, flag and the score stay; its scores rank another first
    wrong["scores"] = {label: -0.5 if label != wrong["parsed"] else -3.0 for label in others}
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = cli("report", tmp_path / "eval", "--out", tmp_path / "r")
    assert_one_line_error(result, "xnli/en/test/0", f"answers {wrong['parsed']!r}",
                          "rank another choice")  # fmt: skip
    # a score that is no number, or no scores at all, hid the same edit
    for shape, fragment in [
        ({**others, wrong["parsed"]: float("nan")}, "is nan; expected a log-likelihood"),
        ({**others, wrong["parsed"]: "x"}, "is 'x'; expected a log-likelihood"),
        ({}, "is of rank mode and has no scores"),
        (None, "is of rank mode and has no scores"),
    ]:
        wrong["scores"] = shape
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        result = cli("report", tmp_path / "eval", "--out", tmp_path / "r")
        assert_one_line_error(result, "xnli/en/test/0", fragment)


def test_baseline_rows_that_differ_are_noted_not_fatal(tmp_path: Path) -> None:
    write_run(tmp_path / "eval" / "en", "sslt", ("en",))
    write_run(tmp_path / "eval" / "mslt", "mslt", MSLT_SOURCES, rows=80)
    text = write_report([tmp_path / "eval"], tmp_path / "r").read_text(encoding="utf-8")
    assert "Not compared: MSLT ar+de+zh vs SSLT en" in text and "different rows" in text
    assert not (tmp_path / "r" / "comparisons.csv").exists()
    # nor drawn or rolled up as a gain: two scores on other rows are no gain
    assert not (tmp_path / "r" / "gain.png").exists() and "gain.png" not in text
    assert "*MSLT ar+de+zh − SSLT en*" not in text


def test_a_pair_not_compared_is_named_by_the_reports_own_labels(tmp_path: Path) -> None:
    """Runs of two evaluations are labelled with their folder in brackets; the note quoted
    them as the error message had them, with the brackets made '_', names the report used
    nowhere else and --compare did not take."""
    for folder, rows in (("e1", 100), ("e2", 80)):
        write_run(tmp_path / folder / "mslt", "mslt", MSLT_SOURCES, rows=rows)
    write_run(tmp_path / "e1" / "en", "sslt", ("en",), rows=100)  # e2's baseline too: none
    text = write_report([tmp_path / "e1", tmp_path / "e2"], tmp_path / "r").read_text()
    note = next(line for line in text.splitlines() if line.startswith("Not compared"))
    named, why = note.removeprefix("Not compared: ").split(": ", 1)
    run, baseline = named.split(" vs ")
    assert why.startswith("the runs were scored on different rows of xnli/")
    assert "e2" in run and "e1" not in run and "SSLT en" in baseline
    for label in (run, baseline):  # each as the scores table labels it
        assert f"| {label} |" in text, label
    (tmp_path / "e2" / "mslt" / "predictions.jsonl").unlink()  # a results.json of the user's
    text = write_report([tmp_path / "e1", tmp_path / "e2"], tmp_path / "r2").read_text()
    note = next(line for line in text.splitlines() if line.startswith("Not compared"))
    assert f"{run} vs {baseline}: {run} has no predictions.jsonl" in note


def test_a_language_whose_metric_was_edited_is_refused(cli, tmp_path: Path) -> None:
    """results.json names the metric per task and per language; the report printed the task's
    and read past an edited language's (the docs promise an edited metric is named)."""
    folder = write_run(tmp_path / "eval" / "en", "sslt", ("en",))
    results = json.loads((folder / "results.json").read_text())
    languages = results["tasks"]["xnli"]["languages"]
    for entry in languages.values():
        entry["metric"] = "accuracy"  # as `mslt-it eval` writes it: read as before
    (folder / "results.json").write_text(json.dumps(results))
    assert cli("report", tmp_path / "eval", "--out", tmp_path / "r").code == 0
    lang = list(languages)[-1]
    languages[lang]["metric"] = "f1"
    (folder / "results.json").write_text(json.dumps(results))
    result = cli("report", tmp_path / "eval", "--out", tmp_path / "r2")
    assert_one_line_error(result, f"xnli.languages.{lang}.metric", "'f1'", "'accuracy'")
    # edited everywhere alike: XNLI is scored by accuracy, whatever the file says
    results["tasks"]["xnli"]["metric"] = "f1"
    for entry in languages.values():
        entry["metric"] = "f1"
    (folder / "results.json").write_text(json.dumps(results))
    result = cli("report", tmp_path / "eval", "--out", tmp_path / "r3")
    assert_one_line_error(result, "tasks.xnli.metric: 'f1'", "mslt-it scores xnli by ('accuracy')")
    # a task mslt-it does not know: its runs must still agree, as they share one table
    for name in ("a", "b"):
        other = json.loads(json.dumps(results).replace('"xnli"', '"mine"'))
        other["tasks"]["mine"]["metric"] = "accuracy" if name == "a" else "exact_match"
        for entry in other["tasks"]["mine"]["languages"].values():
            entry.pop("metric")
        other["run"] = name
        (tmp_path / "mine" / name).mkdir(parents=True)
        (tmp_path / "mine" / name / "results.json").write_text(json.dumps(other))
    result = cli("report", tmp_path / "mine", "--out", tmp_path / "r4")
    assert_one_line_error(result, "tasks.mine.metric is 'accuracy' in ", "a/results.json and "
                          "'exact_match' in ", "b/results.json")  # fmt: skip


def test_a_users_copy_of_predictions_with_a_row_twice_is_refused(cli, tmp_path: Path) -> None:
    """The report counted the last copy of a row written twice (`score` refused the file):
    the number depended on the order of the rows."""
    folder = write_run(tmp_path / "eval" / "en", "sslt", ("en",))
    path = folder / "predictions.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "".join(lines))
    result = cli("report", tmp_path / "eval", "--out", tmp_path / "r")
    row = json.loads(lines[0])["id"]
    assert_one_line_error(result, f"record 2: id {row!r} of 'xnli/en' appears twice")
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------------- rollups


def test_tiers_scripts_and_families_come_from_the_registry() -> None:
    assert [tier(code) for code in ("en", "ar", "sw")] == ["high", "medium", "low"]
    assert tier("not-a-language") == "unknown"
    assert group_of("hi", "script") == "Deva" and group_of("tr", "family") == "Turkic"


def test_rollups_average_targets_only() -> None:
    from mslt_it.report_results import Score

    def score(run: str, lang: str, value: float, source: bool = False) -> Score:
        return Score(run, (), "xnli", lang, "accuracy", value, value, value, 10, 0.0, source)

    scores = [score("a", "ru", 40), score("a", "bg", 60), score("a", "de", 100, True),
              score("a", "fr", 50), score("b", "ru", 70), score("b", "bg", 90),
              score("b", "de", 80), score("b", "fr", 50)]  # fmt: skip
    table = rollup(scores, "script")
    assert table["a"] == {"Cyrl": (50.0, 2), "Latn": (50.0, 1)}
    assert table["b"]["Latn"] == (65.0, 2)
    assert gain_rollup(scores, "a", "b", "script") == {"Cyrl": 30.0, "Latn": 0.0}


# --------------------------------------------------------------------------- adapter sanity


def test_an_adapter_equal_to_the_base_is_flagged(tmp_path: Path) -> None:
    base = [{"task": "t", "lang": "en", "id": str(i), "output": "x", "scores": {"a": -1.0 * i}}
            for i in range(5)]  # fmt: skip
    same = [dict(r, scores={"a": r["scores"]["a"] + 1e-9}) for r in base]
    changed = [dict(r, scores={"a": r["scores"]["a"] - 0.5}) if r["id"] == "3" else r for r in base]
    assert adapter_sanity(same, base)["same_as_base"] is True
    found = adapter_sanity(changed, base)
    assert found["same_as_base"] is False and found["identical_rows"] == 4
    assert adapter_sanity(base, [{**base[0], "id": "other"}]) is None
    # asked with another template (the adapter's run.json names its own): not comparable, and an
    # adapter that changed nothing was "not the same as the base"
    other = [dict(r, template="t/native", scores={"a": 5.0}) for r in base]
    assert adapter_sanity(other, base) is None

    root = tmp_path / "eval"
    write_run(root / "base", "base", ())
    write_run(root / "en", "base", ("en",))  # the base's very rows, under an adapter's name
    text = write_report([root], tmp_path / "r").read_text(encoding="utf-8")
    assert "SSLT en predicts exactly as the base model" in text


def test_an_adapter_is_compared_only_with_a_base_evaluated_alike(tmp_path: Path) -> None:
    """A base ranked by log-likelihood beside an adapter that generated: the generated words
    equalled the base's labels, and the report said in bold that the adapter was probably not
    applied. Sameness with a base evaluated otherwise (mode, template, …) says nothing."""
    root = tmp_path / "eval"
    ranked = {"settings": {"mode": "rank", "tasks": [{"task": "xnli", "max_tokens": 8}]}}
    generated = {"settings": {"mode": "generate", "tasks": [{"task": "xnli", "max_tokens": 8}]}}
    write_run(root / "base", "base", (), **ranked)
    write_run(root / "en", "base", ("en",), **generated)  # the base's very predictions
    text = write_report([root], tmp_path / "r").read_text(encoding="utf-8")
    assert "predicts exactly as the base model" not in text
    write_run(root / "base2", "base", (), **generated)  # a base evaluated alike is found
    text = write_report([root], tmp_path / "r2").read_text(encoding="utf-8")
    assert "SSLT en predicts exactly as the base model" in text


def test_adapter_sanity_recorded_in_results_is_reported(tmp_path: Path) -> None:
    record = {"compared_with": "base", "rows": 1000, "identical_rows": 1000, "same_as_base": True}
    write_run(tmp_path / "eval", "sslt", ("en",), adapter_sanity=record)
    text = write_report([tmp_path / "eval"], tmp_path / "r").read_text(encoding="utf-8")
    assert "predicts exactly as the base model (base) on all 1000 rows" in text


def test_a_recorded_sanity_is_measured_again_where_a_base_is_in_the_report(
    tmp_path: Path,
) -> None:
    """A copy's results.json edited to say the adapter predicts as the base: the report said
    so in bold although both runs' predictions were beside it and differed."""
    record = {"compared_with": "base", "rows": 1000, "identical_rows": 1000, "same_as_base": True}
    root = tmp_path / "eval"
    write_run(root / "base", "base", ())
    write_run(root / "en", "base", ("en",), adapter_sanity=record)
    rows = root / "en" / "predictions.jsonl"
    records = [json.loads(line) for line in rows.read_text(encoding="utf-8").splitlines()]
    for number, row in enumerate(records):
        row["scores"] = {k: v + number + 1.0 for k, v in row["scores"].items()}
    rows.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    text = write_report([root], tmp_path / "r").read_text(encoding="utf-8")
    assert "predicts exactly as the base model" not in text


def test_a_sanity_record_of_more_rows_than_the_run_holds_is_refused(cli, tmp_path: Path) -> None:
    """A copy whose rows were cut kept its results.json's adapter_sanity, and the report said
    the adapter "differs from base on 48 of 48 rows" for a run of 36."""
    record = {"compared_with": "base", "rows": 1200, "identical_rows": 0, "same_as_base": False}
    write_run(tmp_path / "eval", "sslt", ("en",), adapter_sanity=record)
    result = cli("report", tmp_path / "eval", "--out", tmp_path / "r")
    assert_one_line_error(result, "adapter_sanity compares 1200 rows", "holds 1000")
    assert not (tmp_path / "r").exists()


def test_comparing_rows_that_differ_raises() -> None:
    a = rows_of("sslt", ("en",))
    b = RunRows("b", (), {"xnli": "accuracy"}, {"xnli": {"en": {"0": 1.0}}})
    with pytest.raises(MsltError, match="different rows of xnli/en"):
        compare_runs(a, b)


def drawn_plots(monkeypatch) -> dict[str, dict]:
    """What each plot of a report drew: its title, bar heights and legend texts."""
    import matplotlib.pyplot as plt

    from mslt_it import report_plots

    drawn: dict[str, dict] = {}

    def keep(figure, path: Path) -> None:
        axis = figure.axes[0]
        legend = axis.get_legend()
        drawn[path.name] = {
            "title": axis.get_title(),
            "bars": [patch.get_height() for patch in axis.patches],
            "legend": [text.get_text() for text in legend.get_texts()] if legend else [],
        }
        plt.close(figure)

    monkeypatch.setattr(report_plots, "save_figure", keep)
    return drawn


@pytest.mark.parametrize(
    ("budgets", "title", "note"),
    [
        (((40, 16), (40, 16)), "gain over SSLT en at the same data budget", ""),
        # another dataset size at the same steps, and the same size cut short by max_steps
        (
            ((40, 16), (400, 16)),
            "gain over SSLT en; data budgets differ",
            "MSLT ar+de+zh: 400 rows",
        ),
        (((40, 16), (40, 40)), "gain over SSLT en; data budgets differ", "40 rows, 40 trained on"),
        (((40, 16), None), "gain over SSLT en\n", ""),  # one adapter moved away: no claim
        (((40, None), (40, 16)), "gain over SSLT en\n", ""),  # a record of an older version
    ],
)
def test_the_gain_plot_says_one_budget_only_where_the_records_show_it(
    tmp_path: Path, monkeypatch, budgets, title, note
) -> None:
    """The title said "at the same data budget" of adapters trained on 40 and 400 examples
    (or on one dataset, cut short at other steps), and report.md said nothing of it."""
    drawn = drawn_plots(monkeypatch)
    root = tmp_path / "eval"
    for (name, run, sources), budget in zip(
        [("en", "sslt", ("en",)), ("ar+de+zh", "mslt", MSLT_SOURCES)], budgets, strict=True
    ):
        adapter = tmp_path / "adapters" / name
        adapter.mkdir(parents=True)
        if budget is not None:
            rows, trained = budget
            counts = {lang: rows // len(sources) for lang in sources}
            counts[sources[0]] += rows - sum(counts.values())
            record = {"dataset": {"task": "xnli", "sources": list(sources), "counts": counts}}
            if trained is not None:
                record["trained_mix"] = {"examples": trained}
            (adapter / "run.json").write_text(json.dumps(record))
        folder = write_run(root / name, run, sources)
        document = json.loads((folder / "results.json").read_text())
        document["adapter"]["path"] = str(adapter)
        (folder / "results.json").write_text(json.dumps(document))
    text = write_report([root], tmp_path / "report").read_text(encoding="utf-8")
    assert drawn["gain.png"]["title"].startswith(f"MSLT vs SSLT: {title}")
    assert ("**Data budgets differ**" in text) is bool(note)
    assert note in text


def test_a_language_one_run_lacks_is_no_bar_of_zero(tmp_path: Path, monkeypatch) -> None:
    """gain.png drew a language the MSLT run was not evaluated on as a gain of 0, like a
    measured tie; it is a grey cross named in the legend."""
    drawn = drawn_plots(monkeypatch)
    root = tmp_path / "eval"
    write_run(root / "en", "sslt", ("en",))
    write_run(root / "ar+de+zh", "mslt", MSLT_SOURCES, langs=[x for x in LANGS if x != "bg"])
    write_report([root], tmp_path / "report")
    gain = drawn["gain.png"]
    assert len([h for h in gain["bars"] if not np.isnan(h)]) == len(LANGS) - 1
    assert "not evaluated" in gain["legend"]


@pytest.mark.parametrize("given", ["evaluation", "experiment", "results.json"])
def test_a_report_never_reads_an_evaluation_being_written(cli, study, tmp_path, given) -> None:
    """`report` (and `score`) read an evaluation that `eval --update` was rewriting (its
    results gone, its chunks back) and wrote a report naming it unfinished beside its scores.
    An evaluation whose lock another process holds is refused in one line; the report makes
    no lock file."""
    from conftest import hold_lock

    from mslt_it.io import mark_owner

    experiment = tmp_path / "experiment"
    experiment.mkdir()
    evaluation = study.rename(experiment / "eval")
    mark_owner(evaluation, "evaluation")
    path = {"evaluation": evaluation, "experiment": experiment}.get(
        given, evaluation / "en" / "results.json"
    )
    holder = hold_lock(evaluation, 60)
    try:
        before = sorted(p.name for p in tmp_path.rglob("*"))
        result = cli("report", path, "--out", tmp_path / "r")
        assert sorted(p.name for p in tmp_path.rglob("*")) == before  # it made no lock file
        # score read it too, and said "no such file" of predictions an --overwrite had removed
        scored = cli("score", evaluation / "en" / "predictions.jsonl")
        assert_one_line_error(scored, "predictions:", "is in use by another mslt-it")
    finally:
        holder.terminate()  # released, as any writer's lock when it ends
        holder.wait()
    assert_one_line_error(result, "is in use by another mslt-it process (pid")
    assert cli("report", path, "--out", tmp_path / "r").code == 0


def test_a_report_looks_again_once_it_has_read(cli, study, tmp_path, monkeypatch) -> None:
    """An evaluation that began to be written while the report read it (after its first look)
    is refused too, not reported half old, half new."""
    from conftest import hold_lock

    from mslt_it import report
    from mslt_it.io import mark_owner

    mark_owner(study, "evaluation")
    holders = []
    read = report.gather_comparisons

    def reading_while_it_starts(*args, **kwargs):
        found = read(*args, **kwargs)
        holders.append(hold_lock(study, 60))  # `eval --update` starts now
        return found

    monkeypatch.setattr(report, "gather_comparisons", reading_while_it_starts)
    try:
        result = cli("report", study, "--out", tmp_path / "r")
    finally:
        for holder in holders:
            holder.terminate()
            holder.wait()
    assert holders, "the report never read the predictions"
    assert_one_line_error(result, "is in use by another mslt-it process (pid")
    assert not (tmp_path / "r").exists()


def test_a_linked_evaluation_inside_a_folder_is_named_not_left_out(cli, study, tmp_path) -> None:
    """A report of ``mix/`` left out ``mix/other``, a link to another evaluation (the glob does
    not follow links), and exited 0; the link is named, and given too, it is read."""
    mix = tmp_path / "mix"
    mix.mkdir()
    study.rename(mix / "eval")
    other = tmp_path / "other"
    write_run(other, "sslt", ("en",))
    (mix / "other").symlink_to(other)
    assert_one_line_error(
        cli("report", mix, "--out", tmp_path / "r"), "'" + str(mix / "other") + "' is a link"
    )
    assert cli("report", mix, mix / "other", "--out", tmp_path / "r").code == 0


def test_a_run_evaluated_on_its_sources_only_has_no_target_average(tmp_path: Path) -> None:
    """Its "avg (targets)" cell read nan beside the "–" of the other empty cells."""
    root = tmp_path / "eval"
    write_run(root / "en", "sslt", ("en",))
    write_run(root / "ende", "mslt", ("de", "en"), langs=("de", "en"))
    text = write_report([root], tmp_path / "r").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| MSLT de+en |"))
    assert [cell.strip() for cell in row.split("|")[-3:-1]] == ["–", "65.5"]


def test_an_edited_adapter_is_no_base_and_is_said_to_be_edited(tmp_path: Path) -> None:
    """An adapter edited since training has no sources (they are unknown): the report took it
    for the base model, and said in bold that the same adapter beside it was not applied."""
    root = tmp_path / "eval"
    write_run(root / "en", "base", ("en",))
    write_run(root / "edited", "base", (), adapter={"sources": [], "edited": "run.json"})
    text = write_report([root], tmp_path / "r").read_text(encoding="utf-8")
    assert "predicts exactly as the base model" not in text
    assert "its adapter's run.json was edited since training" in text
