"""`mslt-it select --fit / --criterion learned / --suggest`: a transfer predictor learnt from
measured results, validated on held-out sets next to the heuristics.

The measured results here are generated: scores from known features plus noise (the predictor
must recover the ranking and beat the heuristics), and pure noise (it must not claim skill).
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mslt_it.errors import MsltError
from mslt_it.io import seal
from mslt_it.recipes import expand_sources
from mslt_it.selection.context import make_context
from mslt_it.selection.features import FeatureBuilder, feature_names
from mslt_it.selection.learning import fit_predictor, suggest_sets
from mslt_it.selection.measured import load_measured
from mslt_it.selection.predictor import load_predictor
from mslt_it.selection.validation import ndcg_at, spearman, top_hit
from mslt_it.tasks import get_task

POOL = ["ar", "de", "en", "es", "fr", "ru", "zh"]
TASK = get_task("xnli")
LANGS = list(TASK.languages)


def _planted(path: Path, noise: float, *, signal: bool = True, seed: int = 0) -> dict:
    """A grid of all 35 three-language sets on every XNLI target: score = 40 · the target's
    syntax similarity to its nearest source + 10 · the set's syntax diversity + noise."""
    builder = FeatureBuilder(make_context(TASK, POOL, targets_as_sources=True), tuple(LANGS))
    names = builder.names
    nearest = names.index("target: syntax nearest source") - len(builder.set_features(POOL[:3]))
    rng = np.random.default_rng(seed)
    truth = {}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sources", "lang", "score"])
        for sources in itertools.combinations(POOL, 3):
            for target in LANGS:
                if target in sources:
                    continue
                planted = 40 * builder.target_features(sources, target)[nearest]
                planted += 10 * builder.set_features(sources)[1]
                value = (planted if signal else 0.0) + rng.normal(0, noise)
                truth[(sources, target)] = planted
                writer.writerow(["+".join(sources), target, f"{50 + value:.3f}"])
    return truth


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("planted") / "scores.csv"
    _planted(path, noise=0.3)
    return path


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("noise") / "scores.csv"
    _planted(path, noise=5.0, signal=False, seed=1)
    return path


def test_metrics_on_known_rankings() -> None:
    measured = np.array([10.0, 20.0, 30.0, 40.0])
    assert spearman(measured, measured) == pytest.approx(1.0)
    assert spearman(-measured, measured) == pytest.approx(-1.0)
    assert spearman(np.ones(4), measured) == 0.0  # a constant ranking says nothing
    assert ndcg_at(measured, measured) == pytest.approx(1.0)
    worst_first = (0 + 10 / np.log2(3) + 20 / np.log2(4)) / (30 + 20 / np.log2(3) + 10 / np.log2(4))
    assert ndcg_at(-measured, measured) == pytest.approx(worst_first)
    assert top_hit(np.array([0.0, 0.0, 1.0, 2.0]), measured) == 1.0
    assert top_hit(np.array([3.0, 2.0, 1.0, 0.0]), measured) == 0.0
    assert np.isnan(top_hit(measured[:3], measured[:3]))  # of 3 sets, every top 3 holds the best


def _over_every_tie_order(scores: np.ndarray, measured: np.ndarray) -> tuple[float, float | None]:
    """NDCG@3 and top-3 hit averaged over every order of the tied sets, by enumeration."""
    groups: dict[float, list[int]] = {}
    for index in np.argsort(-scores, kind="stable").tolist():
        groups.setdefault(float(scores[index]), []).append(index)
    hits, ndcgs = [], []
    for orders in itertools.product(*(itertools.permutations(g) for g in groups.values())):
        ranking = np.empty(len(scores))
        ranking[[i for group in orders for i in group]] = -np.arange(len(scores), dtype=float)
        hits.append(top_hit(ranking, measured))
        ndcgs.append(ndcg_at(ranking, measured))
    return float(np.mean(hits)), None if ndcgs[0] is None else float(np.mean(ndcgs))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3)), min_size=4, max_size=7),
)
def test_tied_sets_count_as_every_order_of_them(pairs: list[tuple[int, int]]) -> None:
    """A heuristic that scores sets alike (script, l2v-family) is in no order among them: its
    NDCG@3 and top-3 hit are their means over every order of the ties (alphabetical ties had
    given it the luck of the languages' names)."""
    scores = np.array([float(a) for a, _ in pairs])
    measured = np.array([float(b) for _, b in pairs])
    hit, ndcg = _over_every_tie_order(scores, measured)
    assert top_hit(scores, measured) == pytest.approx(hit)
    got = ndcg_at(scores, measured)
    assert (got is None) == (ndcg is None)
    if ndcg is not None:
        assert got == pytest.approx(ndcg)


def test_planted_structure_is_recovered_and_beats_every_heuristic(planted: Path) -> None:
    fitted = fit_predictor(planted, "xnli")
    learned = fitted.validation.learned
    assert learned.method == "learned" and learned.groups >= 50
    assert learned.spearman > 0.6, learned
    assert fitted.validation.skill
    for heuristic in fitted.validation.methods[1:]:
        assert learned.spearman > heuristic.spearman, heuristic
        assert learned.top3 >= heuristic.top3 - 0.05, heuristic
    verdict = fitted.validation.verdict()
    assert "No evidence" not in verdict and "behind" not in verdict
    # ahead by +0.18 on the mean, on each of the 5 folds; 5 folds of 7 sets are too few for an
    # interval of the difference clear of 0 (target-l2v reads much of what was planted)
    assert re.search(r"learned − \S+ \+0\.[1-9]", verdict), verdict


def test_leave_one_target_out_never_trains_on_the_tested_target(planted: Path) -> None:
    fitted = fit_predictor(planted, "xnli", cv="targets")
    assert fitted.validation.mode == "targets"
    assert fitted.validation.splits == len(LANGS)
    assert fitted.validation.learned.spearman > 0.5


def test_pure_noise_claims_no_skill(noise: Path, cli) -> None:
    fitted = fit_predictor(noise, "xnli")
    assert abs(fitted.validation.learned.spearman) < 0.2
    assert not fitted.validation.skill
    result = cli("select", "--task", "xnli", "--fit", noise)
    assert result.code == 0, result.err
    assert "No evidence of skill" in result.out


def test_lambdarank_objective_learns_the_planted_ranking(planted: Path) -> None:
    fitted = fit_predictor(planted, "xnli", objective="lambdarank")
    assert fitted.predictor.objective == "lambdarank"
    assert fitted.validation.learned.spearman > 0.5


def test_saved_predictor_ranks_like_the_fitted_one_and_explains_with_shap(
    planted: Path, tmp_path: Path, cli
) -> None:
    saved = tmp_path / "predictor.json"
    result = cli("select", "--task", "xnli", "--fit", planted, "--save", saved)
    assert result.code == 0, result.err
    assert "learned" in result.out and saved.is_file()
    predictor = load_predictor(saved)
    fitted = fit_predictor(planted, "xnli")
    builder = FeatureBuilder(make_context(TASK, POOL, targets_as_sources=True), tuple(LANGS))
    rows = builder.rows([(("ar", "de", "zh"), "sw"), (("de", "en", "ru"), "ur")])
    assert np.allclose(predictor.predict(rows), fitted.predictor.predict(rows))
    # SHAP values (TreeSHAP) plus the expected value add up to the prediction
    full = predictor.model.predict(rows, pred_contrib=True)
    assert np.allclose(full.sum(axis=1), predictor.predict(rows))
    assert len(predictor.fold_models) == 5
    ranked = cli(
        "select",
        "--task",
        "xnli",
        "--pool",
        ",".join(POOL),
        "--targets",
        "bg,sw,ur",
        "--criterion",
        "learned",
        "--predictor",
        saved,
        "--top",
        "35",
        "--json",
    )
    assert ranked.code == 0, ranked.err
    sets = json.loads(ranked.out)
    assert len(sets) == 35 and sets[0]["criterion"] == "learned"
    assert all(s["drivers"] and s["drivers"][0][0] in predictor.feature_names for s in sets)
    scores = [s["score"] for s in sets]
    assert scores == sorted(scores, reverse=True)
    truth = _planted(tmp_path / "again.csv", noise=0.0)
    best_true = max(
        (s for s in itertools.combinations(POOL, 3)),
        key=lambda s: np.mean([truth[(s, t)] for t in ("bg", "sw", "ur")]),
    )
    top5 = [tuple(s["sources"]) for s in sets[:5]]
    assert best_true in top5, (best_true, top5)


def test_suggest_proposes_unmeasured_sets_a_recipe_can_take(planted: Path, tmp_path: Path, cli):
    rows = list(csv.DictReader(planted.open(encoding="utf-8")))
    measured_sets = sorted({r["sources"] for r in rows})[:12]
    partial = tmp_path / "partial.csv"
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["sources", "lang", "score"])
        writer.writeheader()
        writer.writerows(r for r in rows if r["sources"] in measured_sets)
    saved = tmp_path / "p.json"
    fit = cli("select", "--task", "xnli", "--fit", partial, "--save", saved, "--suggest", "4")
    assert fit.code == 0, fit.err
    assert "most worth running" in fit.out
    result = cli("select", "--task", "xnli", "--predictor", saved, "--suggest", "5", "--json")
    assert result.code == 0, result.err
    suggestions = json.loads(result.out)
    assert len(suggestions) == 5
    picked = {"+".join(s["sources"]) for s in suggestions}
    assert not picked & set(measured_sets)
    assert all(s["scores"]["uncertainty"] >= 0 for s in suggestions)
    priorities = [s["score"] for s in suggestions]
    assert priorities == sorted(priorities, reverse=True)
    runs = expand_sources([s["sources"] for s in suggestions], "xnli")
    assert [list(r.sources) for r in runs] == [s["sources"] for s in suggestions]
    ranked = ["select", "--task", "xnli", "--criterion", "learned", "--predictor", saved]
    ranked += ["--pool", ",".join(POOL), "--targets", "bg,sw,ur"]
    order = json.loads(cli(*ranked, "--top", "9", "--json").out)
    fitted_on = [f"{s['rank']} ({','.join(s['sources'])})" for s in order
                 if "+".join(s["sources"]) in measured_sets]  # fmt: skip
    table = cli(*ranked, "--top", "9")
    assert table.code == 0, table.err
    said = re.search(r"measured already \(the predictor was fitted on them\): rank (.*)$",
                     " ".join(table.out.split()))  # fmt: skip
    assert fitted_on and len(fitted_on) < len(order)  # the caption has something to tell
    assert (said.group(1).split(", ") if said else []) == fitted_on
    # --targets are no sources for --suggest either (it suggested sets holding them), and one
    # forced in with --include is refused, as by select, unless --targets-as-sources
    asked = ["select", "--task", "xnli", "--predictor", saved, "--suggest", "100", "--json"]
    asked += ["--pool", "ar,de,en,es,fr,ru,zh,bg,sw", "--targets", "bg,sw"]
    result = cli(*asked)
    assert result.code == 0, result.err
    picked = [s["sources"] for s in json.loads(result.out)]
    assert picked and not any({"bg", "sw"} & set(p) for p in picked)
    assert "bg,sw left out of --pool: a target is not a source" in result.err
    assert f"--suggest 100: only {len(picked)} unmeasured set(s)" in " ".join(result.err.split())
    allowed = json.loads(cli(*asked, "--targets-as-sources").out)
    assert any("sw" in s["sources"] for s in allowed)
    assert_one_line_error(cli(*asked, "--include", "sw"), "--include: sw is also a target")
    small = ["select", "--task", "xnli", "--predictor", saved, "--suggest", "3"]
    assert_one_line_error(  # it said every set of 3 from en, fr "is measured"
        cli(*small, "--pool", "ar,de,en,fr", "--targets", "ar,de"),
        "the predictor's set size: 3 is larger than the pool (2 languages: en, fr); ar,de left",
    )


def test_suggest_uncertainty_comes_from_the_fold_models(planted: Path) -> None:
    predictor = fit_predictor(planted, "xnli").predictor
    predictor.trained_on["sets"] = predictor.trained_on["sets"][:10]
    out = suggest_sets(predictor, "xnli", 25)
    assert len(out) == 25
    assert any(s.uncertainty > 0 for s in out)
    for s in out:
        assert s.priority == pytest.approx(s.predicted + s.uncertainty)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _grid(k: int = 3, score: str = "50") -> list[list[str]]:
    return [["+".join(s), "sw", score] for s in itertools.combinations(POOL, k)]


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        ([["ar+de+zh", "sw", "60"], ["ar+de+zh", "ur", "50"]], "at least 6 measured sets"),
        (_grid(3) + _grid(2), "pass --k"),
        ([["ar+de+zh", "xx", "60"]], "'xx' is not a language"),
        ([["ar+de+zh", "ko", "60"]], "not a language of task xnli"),
        ([*_grid(3)[:-1], ["es+fr+ru", "sw", "nan"]], "not finite"),
        ([*_grid(3)[:-1], ["es+fr+ru", "sw", "high"]], "not a number"),
        ([*_grid(3), ["ar+de+en", "sw", "40"]], "average repeated runs"),
        # read row by row, it stops at the first repeat (all rows were parsed first: a 59 MB
        # file took 2 GB and 20 s to say line 3), before the broken line at the end
        (
            [["ar+de+en", "sw", "40"], ["ar+de+en", "sw", "41"], ["x", "sw", "9" * 140_000]],
            "r.csv:3: ar+de+en on sw is also on line 2",
        ),
        ([["ar+ar+de", "sw", "60"]], "lists a language twice"),
        ([*_grid(3)[:-1], ["es+fr+ru", "sw", "1e308"]], "out of range"),
        ([*_grid(3)[:-1], ["es+fr+ru", "sw", "7_0"]], "not a number"),
        ([*_grid(3)[:-1], ["es+fr+ru+", "sw", "70"]], "empty name"),
        ([*_grid(3)[:-1], ["+", "sw", "70"]], "empty name"),
        ([*_grid(3)[:-1], ["es+fr+ru", "sw", "9" * 140_000]], "not a readable CSV line"),
        (
            [*_grid(3)[:-1], ["es+fr+ru", "sw", "9" * 100]],
            "99…' is out of range",
        ),
        (
            [*_grid(3)[:-1], ["es+fr+ru", "sw", "a" * 100]],
            "aa…' is not a number",
        ),
    ],
)
def test_bad_results_files_are_one_line_errors(rows, fragment, tmp_path: Path, cli) -> None:
    path = _write(tmp_path / "r.csv", ["sources", "lang", "score"], rows)
    before = path.read_bytes()
    result = cli("select", "--task", "xnli", "--fit", path, "--save", tmp_path / "p.json")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "p.json").exists()
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("rows", "said"),
    [
        ('"es+fr+en,bg,0.5\nde+ar+zh,bg,0.4\n', "r.csv:2: a quote opened in this row is never"),
        # on the last line, with no line end after it: the cell held no line break
        ('de+ar+zh,bg,0.4\n"es+fr+en,bg,0.5', "r.csv:3: a quote opened in this row is never"),
        ('de+ar+zh,bg,0.4\nes+fr+en,bg,"0.5', "r.csv:3: a quote opened in this row is never"),
        # a quote further on closed it: named where it opened, not where the reader stopped
        ('"es+fr+en,bg,0.5\nde,bg,0.4\n"en",sw,1\n', "r.csv:2: a quoted cell runs from this"),
        # and so when its cell outgrew the reader's limit before any quote closed it
        ('"es+fr+en,bg,0.5\n' + "de,bg,0.4\n" * 20_000, "r.csv:2: a quoted cell runs from this"),
    ],
    ids=["mid-file", "last-line", "last-cell", "closed-later", "past-the-limit"],
)
def test_a_quote_never_closed_is_named_not_read_as_one_cell(
    tmp_path: Path, cli, rows: str, said: str
) -> None:
    """An opening quote never closed made the rest of the file one cell, and the message
    blamed a language code made of it ("unknown language code '0.5\\nde'")."""
    path = tmp_path / "r.csv"
    path.write_text("sources,lang,score\n" + rows)
    assert_one_line_error(cli("select", "--task", "xnli", "--fit", path), said)


def test_a_space_after_a_closing_quote_is_read_as_before(tmp_path: Path, cli) -> None:
    """Read strictly, `"ar+de+zh" ,sw,60` was refused; the cell is trimmed, as before."""
    path = tmp_path / "r.csv"
    rows = "\n".join(",".join(row) for row in _grid(3))
    path.write_text('sources,lang,score\n"' + rows.replace(",", '" ,', 1) + "\n")
    result = cli("select", "--task", "xnli", "--fit", path)
    assert result.code == 0, result.err


def test_a_task_cell_is_read_as_the_other_cells_are(tmp_path: Path, cli) -> None:
    """Spaces around a cell are trimmed in every column, the task's too (a spreadsheet's
    " xnli" was "no rows of task xnli; its task column has xnli")."""
    rows = [[" xnli ", *row] for row in _grid(3)]
    path = _write(tmp_path / "r.csv", ["task", "sources", "lang", "score"], rows)
    result = cli("select", "--task", "xnli", "--fit", path)
    assert "no rows of task" not in result.err
    assert result.code == 0, result.err


def test_bad_options_are_one_line_errors(planted: Path, tmp_path: Path, cli) -> None:
    wrong = _write(tmp_path / "cols.csv", ["set", "score"], [["ar+de+zh", "1"]])
    assert_one_line_error(cli("select", "--task", "xnli", "--fit", wrong), "needs columns")
    assert_one_line_error(
        cli("select", "--task", "xnli", "--fit", tmp_path / "missing.csv"), "no such file"
    )
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.csv"
        os.mkfifo(fifo)
        assert_one_line_error(cli("select", "--task", "xnli", "--fit", fifo), "regular file")
    assert_one_line_error(
        cli("select", "--task", "xnli", "--fit", planted, "--k", "2-3"), "one set size"
    )
    assert_one_line_error(
        cli("select", "--task", "xnli", "--fit", planted, "--k", "2"), "no sets of 2"
    )
    assert_one_line_error(
        cli("select", "--task", "xnli", "--fit", planted, "--objective", "ndcg"), "--objective"
    )
    assert_one_line_error(cli("select", "--task", "xnli", "--fit", planted, "--cv", "x"), "--cv")
    assert_one_line_error(
        cli("select", "--task", "xnli", "--criterion", "learned", "--targets", "sw"),
        "--predictor",
    )
    assert_one_line_error(cli("select", "--task", "xnli", "--suggest", "3"), "--predictor")
    # The default named on the line is refused where it is not used, as any other criterion is.
    for criterion in ("l2v-syntax", "size"):
        assert_one_line_error(
            cli("select", "--task", "xnli", "--fit", planted, "--criterion", criterion),
            f"--criterion: '{criterion}' does not apply to --fit",
        )
    assert_one_line_error(
        cli("select", "--task", "xnli", "--criterion", "foo"),
        "target-embedding, learned, sslt-measured",
    )
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", planted, "--save", saved).code == 0
    assert_one_line_error(
        cli("select", "--task", "xnli", "--criterion", "learned", "--predictor", saved),
        "--targets",
    )
    assert_one_line_error(
        cli(
            "select",
            "--task",
            "xnli",
            "--criterion",
            "learned",
            "--predictor",
            saved,
            "--targets",
            "sw",
            "--k",
            "2",
        ),
        "fitted on sets of 3",
    )
    assert_one_line_error(
        cli(
            "select",
            "--task",
            "pawsx",
            "--criterion",
            "learned",
            "--predictor",
            saved,
            "--targets",
            "ko",
        ),
        f"--predictor: {saved}: fitted on task xnli",  # the file named, as in every other
    )
    assert_one_line_error(
        cli("select", "--task", "xnli", "--predictor", saved, "--suggest", "0"), "--suggest"
    )


def test_save_never_replaces_what_is_not_a_predictor(planted: Path, tmp_path: Path, cli) -> None:
    mine = tmp_path / "notes.json"
    mine.write_text('{"my": "notes"}', encoding="utf-8")
    result = cli("select", "--task", "xnli", "--fit", planted, "--save", mine)
    assert_one_line_error(result, "exists")
    result = cli("select", "--task", "xnli", "--fit", planted, "--save", mine, "--overwrite")
    assert_one_line_error(result, "not a predictor")
    assert mine.read_text(encoding="utf-8") == '{"my": "notes"}'
    assert_one_line_error(
        cli("select", "--task", "xnli", "--fit", planted, "--save", planted, "--overwrite"),
        "is an input",
    )
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", planted, "--save", saved).code == 0
    assert (
        cli("select", "--task", "xnli", "--fit", planted, "--save", saved, "--overwrite").code == 0
    )
    document = json.loads(saved.read_text(encoding="utf-8"))
    document["models"][0]["text"] = document["models"][0]["text"].replace("Tree=0", "Tree=9", 1)
    saved.write_text(json.dumps(document), encoding="utf-8")
    assert_one_line_error(
        cli("select", "--task", "xnli", "--predictor", saved, "--suggest", "2"),
        "changed after it was saved",
    )
    text = "not a model"
    document["models"][0] = {"sha256": hashlib.sha256(text.encode()).hexdigest(), "text": text}
    saved.write_text(json.dumps(seal(document)), encoding="utf-8")
    assert_one_line_error(
        cli("select", "--task", "xnli", "--predictor", saved, "--suggest", "2"),
        "not a LightGBM model",
    )
    assert_one_line_error(
        cli("select", "--task", "xnli", "--fit", planted, "--save", tmp_path / ("a" * 300)),
        "a file name holds at most 255",
    )
    saved.write_text("[1, 2", encoding="utf-8")
    assert_one_line_error(
        cli("select", "--task", "xnli", "--predictor", saved, "--suggest", "2"), "not JSON"
    )


def test_a_report_scores_csv_is_read_as_it_is(tmp_path: Path) -> None:
    """The report's columns: base-model rows and rows on a set's own sources are left out."""
    header = ["run", "sources", "task", "lang", "metric", "score", "is_source"]
    rows = [["base", "", "xnli", "sw", "accuracy", "33.0", "False"]]
    for s in itertools.combinations(POOL, 3):
        for lang in ("sw", "ar"):
            rows.append(["+".join(s), "+".join(s), "xnli", lang, "accuracy", "50", str(lang in s)])
        rows.append(["+".join(s), "+".join(s), "pawsx", "de", "accuracy", "50", "False"])
    data = load_measured(_write(tmp_path / "scores.csv", header, rows), "xnli", LANGS)
    assert len(data.sets) == 35
    assert data.targets == ["ar", "sw"]
    assert all(row.target not in row.sources for row in data.rows)
    assert any("base models" in note for note in data.notes)
    assert any("own source" in note for note in data.notes)
    assert any("other tasks" in note for note in data.notes)


CELLS = st.one_of(
    st.sampled_from(["ar+de+zh", "en", "de+en", "xx", "", "ar,ru", "nan", "inf", "1e400"]),
    st.text(max_size=8),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.tuples(CELLS, CELLS, CELLS), max_size=12))
def test_any_results_file_loads_or_is_one_error(rows, tmp_path: Path) -> None:
    """Whatever the cells, loading gives rows a predictor can use or one MsltError line."""
    path = tmp_path / "h.csv"
    _write(path, ["sources", "lang", "score"], [list(r) for r in rows])
    try:
        data = load_measured(path, "xnli", LANGS)
    except MsltError as error:
        assert "\n" not in str(error)
        return
    assert len(data.sets) >= 2
    assert all(np.isfinite(row.score) and row.target not in row.sources for row in data.rows)


def test_feature_names_match_the_rows() -> None:
    builder = FeatureBuilder(make_context(TASK, POOL, targets_as_sources=True), tuple(LANGS))
    assert builder.names == feature_names(False)
    assert builder.rows([(("ar", "de", "zh"), "sw")]).shape == (1, len(builder.names))


def test_token_coverage_features_with_a_tokenizer(planted: Path, tiny_model_dir: Path) -> None:
    """With --tokenizer the rows gain token types (the set's share of the vocabulary, the share
    of the target's types the sources have), coverage joins the heuristics, and the saved
    predictor keeps the tokenizer so that ranking computes the same columns: a set's own in any
    pool (divided by the pool's types, a set's value had moved with --pool)."""
    from mslt_it.selection import SelectionOptions

    options = SelectionOptions(tokenizer=str(tiny_model_dir), sample=20)
    fitted = fit_predictor(planted, "xnli", options=options)
    names = fitted.predictor.feature_names
    own = "set: token types (share of the vocabulary)"
    assert own in names and "target: token types covered" in names
    assert "coverage" in [m.method for m in fitted.validation.methods]
    assert fitted.predictor.options["tokenizer"] == str(tiny_model_dir)
    builder = FeatureBuilder(make_context(TASK, POOL, options=options, targets_as_sources=True),
                             tuple(LANGS))  # fmt: skip
    row = builder.rows([(("ar", "de", "zh"), "sw"), (("ar", "de", "zh"), "ar")])
    covered = names.index("target: token types covered")
    assert 0.0 < row[0, covered] < 1.0
    assert row[1, covered] == 1.0  # a source's own types are all covered
    wider = FeatureBuilder(make_context(TASK, [*POOL, "el", "th"], options=options,
                                        targets_as_sources=True), tuple(LANGS))  # fmt: skip
    column = names.index(own)
    assert 0.0 < row[0, column] < 1.0
    assert wider.rows([(("ar", "de", "zh"), "sw")])[0, column] == row[0, column]
    out = suggest_sets(fitted.predictor, "xnli", 3, pool=[*POOL, "el"], targets=["bg", "sw"])
    assert len(out) == 3


def test_a_predictor_knows_its_tokenizer_by_content(
    planted: Path, tiny_model_dir: Path, tmp_path: Path, cli, monkeypatch
) -> None:
    """A path is not an identity: the tokenizer retrained in the same folder is refused, and the
    same files under another path are accepted."""
    tokenizer = tmp_path / "tok"
    tokenizer.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json"):
        shutil.copy(tiny_model_dir / name, tokenizer / name)
    monkeypatch.chdir(tmp_path)
    saved = tmp_path / "p.json"
    fit = ("select", "--task", "xnli", "--fit", planted, "--tokenizer", "tok", "--sample", "20")
    assert cli(*fit, "--save", saved).code == 0
    ranked = ("select", "--task", "xnli", "--criterion", "learned", "--predictor", saved,
              "--targets", "bg,sw", "--sample", "20", "--json")  # fmt: skip
    first = cli(*ranked)
    assert first.code == 0, first.err
    elsewhere = cli(*ranked, "--tokenizer", tokenizer)  # the same files, another spelling
    assert elsewhere.code == 0, elsewhere.err
    assert json.loads(elsewhere.out) == json.loads(first.out)
    config = json.loads((tokenizer / "tokenizer.json").read_text(encoding="utf-8"))
    config["added_tokens"] = [*config.get("added_tokens", []), {**config["added_tokens"][0],
                              "id": 99999, "content": "<new>"}]  # fmt: skip
    (tokenizer / "tokenizer.json").write_text(json.dumps(config), encoding="utf-8")
    assert_one_line_error(cli(*ranked), "--tokenizer", "changed since", "fit it again")


def test_a_hand_edited_predictor_is_refused(planted: Path, tmp_path: Path, cli) -> None:
    """The seal covers the task, k and feature list as well as the models: a predictor edited
    to claim another task or set size is refused, re-sealed or not if its features differ."""
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", planted, "--save", saved).code == 0
    original = json.loads(saved.read_text(encoding="utf-8"))
    ranked = ("select", "--task", "xnli", "--criterion", "learned", "--predictor", saved,
              "--targets", "bg,sw")  # fmt: skip
    for field, value in (("task", "pawsx"), ("k", 2), ("trained_on", {"sets": [1, 2]})):
        saved.write_text(json.dumps({**original, field: value}), encoding="utf-8")
        assert_one_line_error(cli(*ranked), "changed after it was saved")
    saved.write_text(json.dumps(seal({**original, "features": ["a", "b", "c"]})), "utf-8")
    assert_one_line_error(cli(*ranked), "not the ones this mslt-it computes")
    saved.write_text(json.dumps(seal({**original, "k": 0})), "utf-8")
    assert_one_line_error(cli(*ranked), "field 'k' is 0")
    saved.write_text(json.dumps(seal({**original, "trained_on": {"sets": [1]}})), "utf-8")
    assert_one_line_error(cli(*ranked), "trained_on.sets")
    for name, value, fragment in (
        ("sample", "abc", "options.sample"),
        ("sample", [1], "options.sample"),
        ("sample", True, "options.sample"),
        ("sample", 0, "--sample: must be >= 1"),
        ("size_model", {}, "options.size_model"),
        ("size_model", "nosuch", "--size-model"),
        ("tokenizer", False, "options.tokenizer"),
        ("tokenizer", "", "options.tokenizer"),
    ):
        options = {**original["options"], name: value}
        saved.write_text(json.dumps(seal({**original, "options": options})), "utf-8")
        assert_one_line_error(cli(*ranked), str(saved), fragment)


def test_nothing_is_written_or_noted_when_a_later_step_fails(tmp_path: Path, cli) -> None:
    """--suggest is checked, and suggestions made, before the predictor is saved; notes about
    the file are printed only when the command succeeds."""
    rows = [["", "sw", "33"], *_grid(3, "50"), ["ar+de+en", "ar", "90"]]
    path = _write(tmp_path / "r.csv", ["sources", "lang", "score"], rows)
    saved = tmp_path / "p.json"
    result = cli("select", "--task", "xnli", "--fit", path, "--save", saved, "--suggest", "0")
    assert_one_line_error(result, "--suggest")
    assert not saved.exists()
    result = cli("select", "--task", "xnli", "--fit", path, "--save", saved, "--suggest", "2")
    assert_one_line_error(result, "every set of 3")
    assert not saved.exists()
    done = cli("select", "--task", "xnli", "--fit", path, "--json")
    assert done.code == 0, done.err
    assert "base models" in done.err
    assert json.loads(done.out, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    twice = _write(tmp_path / "d.csv", ["sources", "lang", "score", "score"], [])
    assert_one_line_error(cli("select", "--task", "xnli", "--fit", twice), "appears twice")


def test_the_order_of_the_rows_changes_nothing(planted: Path, tmp_path: Path) -> None:
    """A results file is a set of measurements: shuffled, it fits the same predictor."""
    lines = planted.read_text(encoding="utf-8").splitlines()
    body = lines[1:]
    np.random.default_rng(3).shuffle(body)
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    a, b = fit_predictor(planted, "xnli"), fit_predictor(shuffled, "xnli")
    builder = FeatureBuilder(make_context(TASK, POOL, targets_as_sources=True), tuple(LANGS))
    rows = builder.rows([(("ar", "es", "ru"), "hi"), (("de", "fr", "zh"), "th")])
    assert np.array_equal(a.predictor.predict(rows), b.predictor.predict(rows))
    assert a.validation.to_dict() == b.validation.to_dict()


def test_a_recipe_selects_its_sources_with_a_predictor(planted: Path, tmp_path: Path, cli) -> None:
    """`sources: {select: {criterion: learned, predictor: FILE, targets: [...]}}` trains on the
    predictor's best set, the one `select --criterion learned` ranks first."""
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", planted, "--save", saved).code == 0
    spec = {"criterion": "learned", "k": 3, "pool": POOL, "targets": ["bg", "sw", "ur"],
            "predictor": str(saved)}  # fmt: skip
    (run,) = expand_sources({"select": spec}, "xnli")
    ranked = cli("select", "--task", "xnli", "--pool", ",".join(POOL), "--targets", "bg,sw,ur",
                 "--criterion", "learned", "--predictor", saved, "--top", "1",
                 "--json")  # fmt: skip
    assert list(run.sources) == json.loads(ranked.out)[0]["sources"]
    with pytest.raises(MsltError, match=r"select: criterion learned: needs predictor"):
        expand_sources({"select": {**spec, "predictor": None}}, "xnli")


def test_line_ends_and_header_spaces_do_not_change_what_is_read(tmp_path: Path) -> None:
    """Old-Mac files end lines with a bare CR; hand-written headers have spaces after commas."""
    rows = [[s, "sw", str(40 + i)] for i, s in enumerate(r[0] for r in _grid(3))]
    plain = _write(tmp_path / "plain.csv", ["sources", "lang", "score"], rows)
    text = plain.read_text(encoding="utf-8").replace("\r\n", "\n")
    (tmp_path / "cr.csv").write_text(text.replace("\n", "\r"), encoding="utf-8", newline="")
    spaced = text.replace("sources,lang,score", "sources, lang , score")
    (tmp_path / "spaced.csv").write_text(spaced, encoding="utf-8")
    expected = load_measured(plain, "xnli", LANGS).rows
    assert len(expected) == 35
    for name in ("cr.csv", "spaced.csv"):
        assert load_measured(tmp_path / name, "xnli", LANGS).rows == expected, name


def test_options_outside_their_mode_are_refused_not_ignored(planted: Path, tmp_path: Path, cli):
    """--save without --fit wrote nothing and said nothing; now each such option is an error."""
    saved = tmp_path / "p.json"
    base = ["select", "--task", "xnli"]
    for args, fragment in (
        (["--save", saved], "--save: only with --fit"),
        (["--cv", "targets"], "--cv: only with --fit"),
        (["--objective", "lambdarank"], "--objective: only with --fit"),
        (["--fit", planted, "--criterion", "learned"], "--criterion"),
        (["--fit", planted, "--evaluate", planted], "--evaluate"),
        (["--fit", planted, "--targets", "sw"], "--targets: --fit learns"),
        (["--fit", planted, "--top", "0"], "--top"),
        (["--fit", planted, "--vectors", planted], "--vectors: not with a predictor"),
        (
            ["--criterion", "learned", "--predictor", saved, "--vectors", planted],
            "--vectors: not with a predictor",
        ),
        (["--suggest", "2", "--predictor", saved, "--vectors", planted], "--vectors: not with"),
        (["--evaluate", planted, "--pool", "ar,de,en"], "--pool: --evaluate scores"),
        (["--evaluate", planted, "--k", "3"], "--k: --evaluate scores"),
        # --top was ignored by both without a word
        (["--evaluate", planted, "--top", "3"], "--top: 3 sets the rows of a ranking only"),
        (["--suggest", "2", "--predictor", saved, "--top", "9"], "--top: 9 sets the rows"),
    ):
        assert_one_line_error(cli(*base, *args), fragment)
    assert not saved.exists()


def test_suggest_keeps_include_k_and_never_suggests_what_it_cannot_predict(
    planted: Path, tmp_path: Path, cli
) -> None:
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", planted, "--save", saved).code == 0
    pool = "ar,de,en,es,fr,hi,ru,vi,zh"
    base = ["select", "--task", "xnli", "--predictor", saved, "--suggest", "4", "--json"]
    result = cli(*base, "--pool", pool, "--include", "vi")
    assert result.code == 0, result.err
    suggested = json.loads(result.out)
    assert len(suggested) == 4 and all("vi" in s["sources"] for s in suggested)
    assert_one_line_error(cli(*base, "--pool", pool, "--k", "2"), "fitted on sets of 3, got 2")
    # every unmeasured set of ar,de,en,hi holds hi: nothing to predict on the target hi
    kept = ["--targets-as-sources"]
    assert_one_line_error(
        cli(*base, "--pool", "ar,de,en,hi", "--targets", "hi", *kept), "holds all of the targets"
    )
    # with a second target, the sets holding hi are predicted on it: finite JSON only
    result = cli(*base, "--pool", "ar,de,en,hi", "--targets", "hi,sw", *kept)
    assert result.code == 0, result.err
    assert "NaN" not in result.out and all(np.isfinite(s["score"]) for s in json.loads(result.out))
    assert_one_line_error(
        cli("select", "--task", "pawsx", "--predictor", saved, "--suggest", "2"),
        "fitted on task xnli",
    )


def test_a_predictor_ranks_its_own_set_size_and_refuses_other_feature_options(
    tmp_path: Path, cli
) -> None:
    """Without --k, --criterion learned ranks sets of the predictor's size (the docs' promise);
    an option that changes what a feature means (--size-model) must match the predictor's."""
    rows = [[s, t, str(40 + 5 * i + j)] for i, s in enumerate(POOL) for j, t in
            enumerate(("sw", "ur", "bg")) if s != t]  # fmt: skip
    singles = _write(tmp_path / "k1.csv", ["sources", "lang", "score"], rows)
    saved = tmp_path / "k1.json"
    assert cli("select", "--task", "xnli", "--fit", singles, "--save", saved).code == 0
    learned = ["select", "--task", "xnli", "--criterion", "learned", "--predictor", saved]
    result = cli(*learned, "--targets", "sw", "--pool", ",".join(POOL), "--json")
    assert result.code == 0, result.err
    assert {len(s["sources"]) for s in json.loads(result.out)} == {1}
    assert_one_line_error(
        cli(*learned, "--targets", "sw", "--size-model", "mt5"), "--size-model", "'xlmr'"
    )


def test_an_option_typed_at_its_default_is_held_to_the_predictors_too(
    planted: Path, tmp_path: Path, cli
) -> None:
    """`--size-model xlmr` (the default) against a predictor fitted on ROOTS sizes was dropped
    without a word, and the table read bloom's; so was `size_model: xlmr` in a recipe."""
    saved = tmp_path / "bloom.json"
    fit = ["select", "--task", "xnli", "--fit", planted, "--size-model", "bloom", "--save", saved]
    assert cli(*fit).code == 0
    learned = ["select", "--task", "xnli", "--criterion", "learned", "--predictor", saved,
               "--targets", "bg", "--pool", ",".join(POOL)]  # fmt: skip
    assert cli(*learned).code == 0  # left out: the predictor's value applies
    assert cli(*learned, "--size-model", "bloom").code == 0
    result = cli(*learned, "--size-model", "xlmr")
    assert_one_line_error(result, "--size-model: 'xlmr' differs from the predictor's 'bloom'")
    average = tmp_path / "average.json"  # fitted on lang2vec's average vectors, not knn
    assert cli(*fit[:5], "--l2v-variant", "average", "--save", average).code == 0
    learned[learned.index(saved)] = average
    result = cli(*learned, "--l2v-variant", "knn")
    assert_one_line_error(result, "--l2v-variant: 'knn' differs from the predictor's 'average'")
    spec = {"criterion": "learned", "k": 3, "pool": POOL, "targets": ["bg"],
            "predictor": str(tmp_path / "bloom.json")}  # fmt: skip
    assert expand_sources({"select": spec}, "xnli")
    with pytest.raises(MsltError, match=r"sources\.select: size_model: 'xlmr' differs"):
        expand_sources({"select": {**spec, "size_model": "xlmr"}}, "xnli")


def test_no_set_the_predictor_cannot_score_is_picked(planted: Path, tmp_path: Path, cli):
    """With every set holding every target, each set's learned score was n/a and the first of
    them was the pick, exit 0 (a recipe planned its training)."""
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", planted, "--save", saved).code == 0
    args = ["select", "--task", "xnli", "--criterion", "learned", "--predictor", saved,
            "--targets", "bg", "--pool", "ar,bg,de", "--targets-as-sources"]  # fmt: skip
    assert_one_line_error(cli(*args), "no set of 3 gets a score", "every set holds all of bg")
    spec = {"criterion": "learned", "k": 3, "pool": ["ar", "bg", "de"], "targets": ["bg"],
            "predictor": str(saved), "targets_as_sources": True}  # fmt: skip
    with pytest.raises(MsltError, match="no set of 3 gets a score"):
        expand_sources({"select": spec}, "xnli")


def test_sweep_k_names_its_own_field_when_refusing_a_predictor_criterion() -> None:
    """It said `sources.select: … needs predictor FILE`, and sweep-k has no such field."""
    sweep = {"sweep-k": {"criterion": "learned", "pool": POOL, "k": [3]}}
    with pytest.raises(MsltError, match=r"^sources\.sweep-k\.criterion: 'learned' reads a"):
        expand_sources(sweep, "xnli")
    # an unknown criterion lists only those sweep-k takes (learned was listed, then refused)
    sweep["sweep-k"]["criterion"] = "nonsense"
    with pytest.raises(MsltError, match=r"^sources\.sweep-k\.criterion: unknown") as error:
        expand_sources(sweep, "xnli")
    assert "l2v-syntax" in str(error.value) and "learned" not in str(error.value)


def test_two_processes_saving_one_new_predictor_cannot_both_succeed(
    planted: Path, tmp_path: Path
) -> None:
    """The check before the save and the save are apart in time; the file is created only if
    nothing is there (a hard link), so the second writer gets the one-line error."""
    fitted = fit_predictor(planted, "xnli", k=3)
    path = tmp_path / "p.json"
    fitted.predictor.save(path)
    first = path.read_bytes()
    path.unlink()
    from mslt_it.selection import predictor as module

    checks = module.check_save_path
    try:  # the other process writes between this one's check and its save

        def checked_then_written(*args: object, **kwargs: object) -> Path:
            checked = checks(*args, **kwargs)
            path.write_text("theirs")
            return checked

        module.check_save_path = checked_then_written
        with pytest.raises(MsltError, match="exists; pass --overwrite"):
            fitted.predictor.save(path)
    finally:
        module.check_save_path = checks
    assert path.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]  # no temporary left
    assert first


def test_a_number_too_long_to_read_is_a_one_line_error(planted: Path, tmp_path: Path, cli):
    """Python refuses integers of more than 4,300 digits with a ValueError that is not a
    JSONDecodeError; a predictor file holding one is refused like any damaged file."""
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", planted, "--save", saved).code == 0
    text = saved.read_text(encoding="utf-8").replace('"k": 3', '"k": ' + "9" * 5000, 1)
    saved.write_text(text, encoding="utf-8")
    result = cli("select", "--task", "xnli", "--predictor", saved, "--suggest", "2")
    assert_one_line_error(result, "not a predictor file")


def test_paired_differences_come_from_the_spread_of_the_splits() -> None:
    """learned − other on the groups both ranked; the interval from the splits' means, widened
    by how much the splits' training rows overlap (held-out rows per training row)."""
    from mslt_it.selection.validation import MethodScore, paired_difference

    def method(name: str, rhos: list[float]) -> MethodScore:
        groups = [(i // 3, rho, None, float(rho > 0)) for i, rho in enumerate(rhos)]
        return MethodScore(name, float(np.mean(rhos)), 0.0, 0.0, len(rhos), None, groups)

    rng = np.random.default_rng(0)
    base = list(rng.normal(0, 0.3, 60))
    same = paired_difference(method("a", base), method("b", base), "spearman", 0.25)
    assert same == (0.0, 0.0, 0.0)
    lifted = [r + 0.2 for r in base]
    better = paired_difference(method("a", lifted), method("b", base), "spearman", 0.25)
    assert better[0] == pytest.approx(0.2) and better[1] == pytest.approx(0.2)
    noisy = [r + 0.2 + rng.normal(0, 0.5) for r in base]
    mean, low, high = paired_difference(method("a", noisy), method("b", base), "spearman", 0.25)
    assert low < mean < high and low > -0.2 and high < 0.6
    overlapping = paired_difference(method("a", noisy), method("b", base), "spearman", 2.0)
    assert overlapping[0] == mean and overlapping[1] < low and overlapping[2] > high
    # NDCG@3 undefined in every group: no difference to report
    undefined = paired_difference(method("a", base), method("b", base), "ndcg3", 0.25)
    assert all(np.isnan(undefined))


def _validate_planted(per_fold: list[list[float]]) -> object:
    """A cross-validation whose learned ranking scores each held-out target of fold f with
    ``per_fold[f]`` (one entry per target, applied to that target's 8 held-out sets)."""
    from mslt_it.selection.validation import Split, cross_validate

    sets = [(f"s{i}",) for i in range(8 * len(per_fold))]
    targets = [f"t{j}" for j in range(len(per_fold[0]))]
    rows = [(s, t, float(i % 8)) for i, s in enumerate(sets) for t in targets]
    splits = [
        Split(frozenset(sets[: 8 * f] + sets[8 * f + 8 :]), tuple(sets[8 * f : 8 * f + 8]))
        for f in range(len(per_fold))
    ]
    fold_of = {s: i // 8 for i, s in enumerate(sets)}

    def predict(model: object, test: list[int]) -> np.ndarray:  # sign * measured: ρ ±1
        sign = lambda i: per_fold[fold_of[rows[i][0]]][targets.index(rows[i][1])]  # noqa: E731
        return np.array([sign(i) * rows[i][2] for i in test])

    return cross_validate(rows, splits, lambda train: None, predict, {}, mode="sets")


def test_the_learned_interval_comes_from_whole_folds_not_groups() -> None:
    """Fold 0 ranks every target perfectly, fold 1 mostly in reverse: 60 groups made a narrow
    interval above 0 ("skill"); two folds cannot tell, and four with one reversed are no
    evidence either."""
    from mslt_it.selection.validation import fold_interval

    two = _validate_planted([[1.0] * 30, [-1.0] * 20 + [1.0] * 10])
    assert two.learned.groups == 60 and two.learned.spearman > 0.3
    assert two.learned.spearman_ci is not None and not two.skill
    assert two.learned.spearman_ci == (-1.0, 1.0)  # as wide as ρ goes, not beyond (±1.4 was)
    assert all(np.isnan(fold_interval({0: [0.5] * 30}, 0.25)[1:]))  # one fold: no spread
    four = _validate_planted([[1.0] * 5, [1.0] * 5, [1.0] * 5, [-1.0] * 5])
    assert four.learned.spearman_ci is not None and not four.skill
    assert four.learned.spearman_ci[0] < 0 < four.learned.spearman
    every = _validate_planted([[1.0] * 5] * 4)
    assert every.skill


def test_the_verdict_names_the_ranking_a_fit_is_behind_and_one_it_is_not_ahead_of() -> None:
    from mslt_it.selection.validation import MethodScore, Validation

    def method(name: str, rhos: list[float]) -> MethodScore:
        groups = [(i // 4, rho, None, 0.0) for i, rho in enumerate(rhos)]
        return MethodScore(name, float(np.mean(rhos)), 0.0, 0.0, len(rhos), (0.2, 0.6), groups)

    learned = [0.4 + 0.01 * (i % 3) for i in range(20)]  # 5 folds of 4 targets
    ahead = [r + 0.3 for r in learned]
    behind = Validation("sets", 5, [method("learned", learned), method("other", ahead)], [], 0.25)
    assert "behind other" in behind.verdict() and "rank with other instead" in behind.verdict()
    noisy = [r + (0.5 if i // 4 == 0 else -0.1) for i, r in enumerate(learned)]
    tie = Validation("sets", 5, [method("learned", learned), method("other", noisy)], [], 0.25)
    assert "not ahead of other" in tie.verdict() and "behind" not in tie.verdict()


def test_a_heuristic_that_cannot_score_a_set_ranks_it_last_on_every_measure() -> None:
    """NaN (a size unknown) made ρ 0 while NDCG@3 and the top-3 hit ranked the set last."""
    from mslt_it.selection.validation import ndcg_at, spearman, top_hit

    measured = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    unknown_worst = np.array([np.nan, 2.0, 3.0, 4.0, 5.0])
    assert spearman(unknown_worst, measured) == pytest.approx(1.0)
    assert ndcg_at(unknown_worst, measured) == pytest.approx(1.0)
    assert top_hit(unknown_worst, measured) == 1.0
    unknown_best = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    last = np.array([1.0, 2.0, 3.0, 4.0, 0.0])  # the best set, unscored, ranked last
    assert spearman(unknown_best, measured) == pytest.approx(spearman(last, measured))
    assert spearman(last, measured) < 0.5
    assert spearman(np.full(5, np.nan), measured) == 0.0


@pytest.mark.parametrize("name", ["out/", "", ".", "..", "out/.."])
def test_save_to_a_folder_name_is_refused_before_any_work(
    name: str, planted: Path, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--save out/` would otherwise write a file called `out`."""
    monkeypatch.chdir(tmp_path)
    result = cli("select", "--task", "xnli", "--fit", planted, "--save", name)
    assert_one_line_error(result, "--save", "names a folder")
    assert list(tmp_path.iterdir()) == []


def test_save_is_written_where_the_system_finds_it(
    planted: Path, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--save '~/p.json'` (quoted) wrote ./~/p.json, said as "saved to ~/p.json";
    `--save x/../p.json` made a folder x to climb out of, and saw no file at ./p.json to
    protect."""
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(
        cli("select", "--task", "xnli", "--fit", planted, "--save", "~/p.json"),
        "--save: '~/p.json' begins with ~",
    )
    Path("p.json").write_text("mine", encoding="utf-8")
    assert_one_line_error(
        cli("select", "--task", "xnli", "--fit", planted, "--save", "x/../p.json", "--overwrite"),
        "is not a predictor mslt-it wrote",
    )
    assert Path("p.json").read_text(encoding="utf-8") == "mine"
    Path("p.json").unlink()
    assert cli("select", "--task", "xnli", "--fit", planted, "--save", "x/../p.json").code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]


def test_a_predictor_with_a_byte_order_mark_is_read(planted: Path, tmp_path: Path, cli) -> None:
    """An editor's byte-order mark was refused with Python's "decode using utf-8-sig"."""
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", planted, "--save", saved).code == 0
    saved.write_bytes(b"\xef\xbb\xbf" + saved.read_bytes())
    ranked = ["select", "--task", "xnli", "--criterion", "learned", "--predictor", saved]
    result = cli(*ranked, "--pool", ",".join(POOL), "--targets", "bg,sw,ur", "--top", "2")
    assert result.code == 0, result.err


def test_options_a_mode_does_not_read_are_refused(planted: Path, tmp_path: Path, cli) -> None:
    """A --predictor beside a heuristic criterion, --overwrite without --save and an empty
    --tokenizer were accepted and ignored: the user believed they acted."""
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", planted, "--save", saved).code == 0
    for args, fragment in (
        (("--criterion", "size", "--predictor", saved), "--predictor: read only by"),
        (("--criterion", "size", "--predictor", tmp_path / "none.json"), "--predictor"),
        (("--fit", planted, "--overwrite"), "--overwrite: only with --save"),
        (("--criterion", "coverage", "--tokenizer", ""), "--tokenizer: an empty name"),
    ):
        assert_one_line_error(cli("select", "--task", "xnli", *args), fragment)


def test_a_tokenizer_that_is_a_fifo_or_missing_folder_is_named(tmp_path: Path, cli) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    ranked = ("select", "--task", "xnli", "--criterion", "coverage", "--tokenizer")
    assert_one_line_error(cli(*ranked, fifo), "--tokenizer:", "is not a folder")
    assert_one_line_error(cli(*ranked, tmp_path / "gone"), "--tokenizer: no such folder")


def test_save_inside_the_tokenizer_folder_is_refused(planted: Path, tmp_path, cli, tiny_model_dir):
    tokenizer = tmp_path / "tok"
    shutil.copytree(tiny_model_dir, tokenizer)
    before = sorted(p.name for p in tokenizer.iterdir())
    fit = ("select", "--task", "xnli", "--fit", planted, "--tokenizer", tokenizer)
    assert_one_line_error(cli(*fit, "--save", tokenizer / "p.json"), "--save", "inside the input")
    assert sorted(p.name for p in tokenizer.iterdir()) == before


def test_save_inside_another_output_is_refused(planted: Path, tmp_path, cli, tiny_model_dir):
    """A predictor saved into a model folder was a file that folder's marker does not list:
    its ``--overwrite`` then stopped at it, calling it a file mslt-it did not write."""
    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    fit = ("select", "--task", "xnli", "--fit", planted)
    assert_one_line_error(cli(*fit, "--save", model / "p.json"), "--save", "mslt-it's model")
    assert not (model / "p.json").exists()
    deep = model.joinpath(*"abcdefg", "p.json")  # every folder up, not six
    assert_one_line_error(cli(*fit, "--save", deep), "--save", "mslt-it's model")
    assert not (model / "a").exists()


def test_a_predictor_says_when_its_results_file_changed(planted: Path, tmp_path: Path, cli):
    results = tmp_path / "scores.csv"
    shutil.copy(planted, results)
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", results, "--save", saved).code == 0
    suggest = ("select", "--task", "xnli", "--predictor", saved, "--suggest", "1",
               "--pool", "ar,de,en,es,fr,hi,ru,zh")  # fmt: skip
    ranked = ("select", "--task", "xnli", "--criterion", "learned", "--predictor", saved,
              "--targets", "bg", "--top", "1")  # fmt: skip
    for args in (suggest, ranked):
        result = cli(*args)
        assert result.code == 0 and "changed since" not in result.err, result.err
    with results.open("a", encoding="utf-8") as handle:
        handle.write("ar+de+en,bg,99\n")
    for args in (suggest, ranked):
        result = cli(*args)
        assert result.code == 0, result.err
        assert "changed since this predictor was fitted" in result.err
    results.unlink()  # moved away: the predictor stands alone, nothing to say
    assert "changed since" not in cli(*suggest).err


def test_two_held_out_groups_give_no_interval_and_no_claim(planted: Path, tmp_path, cli) -> None:
    rows = list(csv.DictReader(planted.open(encoding="utf-8")))
    two = tmp_path / "two.csv"
    with two.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["sources", "lang", "score"])
        writer.writeheader()
        writer.writerows(r for r in rows if r["lang"] in ("bg", "sw"))
    result = cli("select", "--task", "xnli", "--fit", two, "--cv", "targets")
    assert result.code == 0, result.err
    verdict = " ".join(result.out.split())
    assert "2 held-out groups in 2 folds: too few for an interval" in verdict  # 5 needed
    assert "No evidence of skill" in verdict and "95% CI" not in verdict.split("Each (fold")[-1]


def test_a_target_listed_in_the_pool_is_left_out_with_a_note(cli) -> None:
    args = ("select", "--task", "xnli", "--criterion", "target-l2v", "--targets", "bg",
            "--pool", "ar,bg,de", "--k", "2", "--json")  # fmt: skip
    result = cli(*args)
    assert result.code == 0, result.err
    assert json.loads(result.out)[0]["sources"] == ["ar", "de"]
    assert "bg left out of --pool" in result.err
    kept = cli(*args, "--targets-as-sources")
    assert "left out" not in kept.err


def test_a_moved_tokenizer_folder_is_named_not_called_changed(
    planted, tmp_path, cli, tiny_model_dir
):
    tokenizer = tmp_path / "tok"
    shutil.copytree(tiny_model_dir, tokenizer)
    saved = tmp_path / "p.json"
    fit = ("select", "--task", "xnli", "--fit", planted, "--tokenizer", tokenizer, "--save", saved)
    assert cli(*fit).code == 0
    tokenizer.rename(tmp_path / "moved")
    ranked = ("select", "--task", "xnli", "--criterion", "learned", "--predictor", saved,
              "--targets", "bg", "--top", "1")  # fmt: skip
    assert_one_line_error(cli(*ranked), "--tokenizer: no such folder", "where it is now")
    assert cli(*ranked, "--tokenizer", tmp_path / "moved").code == 0


def test_a_predictor_records_the_digest_of_the_rows_it_read(
    planted: Path, tmp_path: Path, monkeypatch
) -> None:
    """The results file was read twice, once to fit and once to digest: edited in between, the
    predictor held the old rows under the new file's digest and never said it was stale."""
    from mslt_it.selection import learning
    from mslt_it.selection.predictor import results_changed

    results = tmp_path / "scores.csv"
    shutil.copy(planted, results)
    read = results.read_bytes()
    prepare = learning.prepare

    def edited_meanwhile(*args, **kwargs):
        prepared = prepare(*args, **kwargs)
        with results.open("a", encoding="utf-8") as handle:
            handle.write("ar+de+en,bg,99\n")
        return prepared

    monkeypatch.setattr(learning, "prepare", edited_meanwhile)
    fitted = fit_predictor(results, "xnli")
    assert fitted.predictor.trained_on["file_sha256"] == hashlib.sha256(read).hexdigest()
    assert "changed since" in (results_changed(fitted.predictor) or "")


@pytest.mark.parametrize(
    ("header", "row", "fragment"),
    [
        (["sources", "lang", "score"], ["ar+de+zh", "sw", "60", "99"], "4 cells, the header has 3"),
        (["sources", "lang", "score", "score"], ["ar+de+zh", "sw", "60", "1"], "'score' appears"),
        (["sources", "lang", "target", "score"], ["ar+de+zh", "sw", "ar", "60"], "both 'lang'"),
    ],
)
def test_a_results_file_whose_cells_are_ambiguous_is_refused(
    header, row, fragment, tmp_path: Path, cli
) -> None:
    """A cell past the header vanished, a repeated column's last cell won, and a target column
    beside a lang column was ignored: each decided a score's meaning by a guess."""
    rows = [[*cells[:2], *(["ar"] if "target" in header else []), cells[2]] for cells in _grid(3)]
    rows = [[*r, "1"] if header.count("score") == 2 else r for r in rows]
    path = _write(tmp_path / "r.csv", header, [*rows[1:], row])
    assert_one_line_error(cli("select", "--task", "xnli", "--fit", path), fragment)


@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        ("sources,score,sources\nar+de+zh,75.6,es+fr+zh\nes+fr+zh,64.8,ar+de+zh\n",
         "'sources' appears"),
        ("sources,score\nar+de+zh,75.6,99\nes+fr+zh,64.8\n", ":2: 3 cells, the header has 2"),
        ("sources,lang,score\nar+de+zh,sw,75\nar+de+zh,ur,64\n",
         ":3: set ar+de+zh is also on line 2"),
        ("sources,score\n", "e.csv: holds 0 measured sets"),
        ("sources,score\nar+de+zh,75.6\n", "e.csv: holds 1 measured set;"),
    ],
)  # fmt: skip
def test_evaluate_refuses_a_file_it_would_misread(lines, fragment, tmp_path: Path, cli) -> None:
    path = tmp_path / "e.csv"
    path.write_text(lines, encoding="utf-8")
    assert_one_line_error(cli("select", "--task", "xnli", "--evaluate", path), fragment)


def test_select_option_messages_name_the_real_problem(tmp_path: Path, cli) -> None:
    vectors = tmp_path / "v.csv"
    vectors.write_text("code,f1,f1\nar,1,2\nde,3,4\n", encoding="utf-8")
    ranked = ("select", "--task", "xnli", "--k", "1")
    assert_one_line_error(
        cli(*ranked, "--pool", "ar,de", "--vectors", vectors, "--criterion", "l2v-custom"),
        "feature 'f1' appears twice",
    )
    assert_one_line_error(
        cli(*ranked, "--pool", "ar,de", "--targets", "ar,de", "--criterion", "target-l2v"),
        "every language of it (ar,de) is a target",
    )
    for weight in ("inf", "1.79e308", "-1"):  # 1.79e308 is finite, but the sum overflowed
        assert_one_line_error(
            cli(*ranked, "--criterion", "l2v-syntax", "--diversity-weight", weight),
            "--diversity-weight: must be a number from 0 to 1e+06",
        )


@pytest.mark.parametrize(
    "tokenizer_json", ["{}", '{"added_tokens": [], "model": {}}'], ids=["empty", "no-model-type"]
)
def test_a_damaged_tokenizer_is_a_one_line_error(tokenizer_json: str, tmp_path: Path, cli):
    folder = tmp_path / "tok"
    folder.mkdir()
    (folder / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
    ranked = ("select", "--task", "xnli", "--pool", "ar,de,en", "--k", "2", "--criterion")
    assert_one_line_error(
        cli(*ranked, "coverage", "--tokenizer", folder), "--tokenizer: cannot load"
    )
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert_one_line_error(cli(*ranked, "coverage", "--tokenizer", loop), "a link that leads to no")


def test_a_path_is_printed_as_it_is_never_as_markup(tmp_path: Path, cli) -> None:
    """Rich read ``[...]`` in a printed path as markup: ``q[/]z.csv`` was an internal error
    after the predictor was already saved, ``c[red]d.csv`` printed as ``cd.csv``, and an escape
    character in the name reached the terminal raw."""
    own_source_row = ["ar+de+zh", "ar", "60"]  # left out, with a note naming the file
    (tmp_path / "q[").mkdir()  # so that "q[/]…" names a file: "[/]" closes no markup tag
    name = "q[/]z[red]\x1b[31m.csv"
    path = _write(tmp_path / name, ["sources", "lang", "score"], [*_grid(3), own_source_row])
    saved = tmp_path / "p[/]x[red].json"
    result = cli("select", "--task", "xnli", "--fit", path, "--save", saved)
    assert result.code == 0, result.err
    assert saved.is_file()
    assert "q[/]z[red]\\x1b[31m.csv" in result.err and "\x1b" not in result.err
    assert "p[/]x[red].json" in result.out.replace("\n", "")
    measured = [[sources, str(i)] for i, (sources, _, _) in enumerate(_grid(3)[:5])]
    evaluate = _write(tmp_path / "q[/]v[red].csv", ["sources", "score"], measured)
    result = cli("select", "--task", "xnli", "--evaluate", evaluate)
    assert result.code == 0, result.err
    assert "q[/]v[red].csv" in result.out.replace("\n", "")


def test_a_top3_hit_no_group_defines_is_shown_as_such(planted: Path, tmp_path: Path, cli) -> None:
    """Six measured sets leave 3 in each held-out group, whose top 3 always holds the best: the
    column read 1.00 for every method, a heuristic that says nothing included."""
    rows = list(csv.DictReader(planted.open(encoding="utf-8")))
    six = sorted({r["sources"] for r in rows})[:6]
    path = tmp_path / "six.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["sources"] in six)
    table = cli("select", "--task", "xnli", "--fit", path)
    assert table.code == 0, table.err
    cells = [line.split("│")[4].strip() for line in table.out.splitlines() if "│" in line]
    assert cells and set(cells) == {"n/a"}, cells
    document = json.loads(cli("select", "--task", "xnli", "--fit", path, "--json").out)
    assert all(m["top3_hit"] is None for m in document["validation"]["methods"])


def test_ranking_recalls_what_the_cross_validation_said(noise: Path, tmp_path: Path, cli) -> None:
    """A predictor with no skill ranked sets without a word once --fit's table was gone: its
    verdict is kept in the file and recalled where it ranks. A verdict that is no plain text
    (a file from elsewhere) or a file saved before verdicts were kept says nothing."""
    from dataclasses import replace

    from mslt_it.selection.predictor import validation_note

    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", noise, "--save", saved).code == 0
    ranked = cli("select", "--task", "xnli", "--criterion", "learned", "--predictor", saved,
                 "--targets", "bg,sw", "--pool", ",".join(POOL), "--json")  # fmt: skip
    assert ranked.code == 0, ranked.err
    said = " ".join(ranked.err.split())
    assert "when fitted, cross-validated on held-out source sets: no evidence of skill" in said
    predictor = fit_predictor(noise, "xnli").predictor
    assert validation_note(predictor) is not None
    for verdict in (None, "no skill \x1b[2J", "x" * 2000):
        edited = replace(predictor, validation={**predictor.validation, "verdict": verdict})
        assert validation_note(edited) is None


@given(st.lists(st.sampled_from([0.1, 0.5, 0.6, 0.7, 0.9]), min_size=1, max_size=30))
@settings(max_examples=60, deadline=None)
def test_lambdarank_grades_equal_scores_alike_and_copies_like_their_rows(scores) -> None:
    """A stable argsort graded a row's copy (single-source columns hidden) above the row, and
    three equal scores 0, 1 and 3: the ranker learned "columns hidden" as "more relevant"."""
    from mslt_it.selection.measured import Measured, MeasuredTransfer
    from mslt_it.selection.predictor import GRADES, _grades

    rows = [Measured(("ar", f"s{i}"), "bg", s) for i, s in enumerate(scores)]
    labels, _, _ = _grades(MeasuredTransfer(rows, "r.csv"))
    doubled, _, _ = _grades(MeasuredTransfer(rows + rows, "r.csv"))
    assert list(doubled) == list(labels) * 2
    for i, j in itertools.combinations(range(len(scores)), 2):
        if scores[i] == scores[j]:
            assert labels[i] == labels[j]
        elif scores[i] < scores[j]:
            assert labels[i] <= labels[j]
    assert all(0 <= grade < GRADES for grade in labels)


def test_pure_noise_rarely_claims_skill(tmp_path: Path) -> None:
    """Files of pure noise (every set on 8 targets outside its pool): a 95% interval may claim
    skill on one in 40. Resampling (fold, target) groups claimed it on 10 files of seeds 0-59,
    5 of them in the 11 here (the fold interval: 1 of 60, seed 54), since the targets of one
    fold share its model and the folds most of their training rows."""
    targets = ["bg", "sw", "ur", "hi", "th", "tr", "el", "vi"]
    claims = []
    for seed in range(45, 56):
        rng = np.random.default_rng(seed)
        path = tmp_path / f"noise{seed}.csv"
        lines = ["sources,target,score"] + [
            f"{'+'.join(sources)},{target},{rng.uniform(30, 80):.2f}"
            for sources in itertools.combinations(POOL, 3)
            for target in targets
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        claims.append(fit_predictor(path, "xnli").validation.skill)
    assert sum(claims) <= 1


def test_a_recipes_learned_pick_carries_what_select_says_of_it(
    noise: Path, tmp_path: Path, cli
) -> None:
    """The plan showed a noise predictor's pick as "select learned k=3" with none of the notes
    ``select`` prints (no evidence of skill, results changed since the fit), nor that the set
    was measured already."""
    results = tmp_path / "scores.csv"
    results.write_bytes(noise.read_bytes())
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", results, "--save", saved).code == 0
    with results.open("a", encoding="utf-8") as file:  # changed after the fit
        file.write("ar+de+fr,bg,60\n")
    spec = {"criterion": "learned", "k": 3, "pool": POOL, "targets": ["bg", "sw", "ur"],
            "predictor": str(saved)}  # fmt: skip
    (run,) = expand_sources([{"select": spec}], "xnli")
    said = " ".join(run.notes)
    assert all(note.startswith("sources.0.select: ") for note in run.notes)
    assert "no evidence of skill" in said and "changed since this predictor was fitted" in said
    assert "measured already" in run.origin  # every set of the pool is in the noise grid


def test_a_predictors_calls_check_their_arguments(planted: Path, tmp_path: Path) -> None:
    """``save(overwrite="no")`` replaced the file ("no" is true), ``save(inputs="p.json")``
    read the string's '.' as the current folder, and ``never_run_alone(p, "ar,de")`` returned
    its characters."""
    from mslt_it.selection.learning import never_run_alone

    predictor = fit_predictor(planted, "xnli").predictor
    saved = predictor.save(tmp_path / "p.json")
    before = saved.read_bytes()
    with pytest.raises(MsltError, match="overwrite: got the string 'no'"):
        predictor.save(saved, overwrite="no")
    assert saved.read_bytes() == before
    with pytest.raises(MsltError, match="inputs: got the string"):
        predictor.save(tmp_path / "q.json", inputs="p.json")
    with pytest.raises(MsltError, match="languages: got the string 'ar,de'"):
        never_run_alone(predictor, "ar,de")
    with pytest.raises(MsltError, match="n: got the string '3'"):
        suggest_sets(predictor, "xnli", "3")
    with pytest.raises(MsltError, match="--predictor: got None"):
        load_predictor(None)
