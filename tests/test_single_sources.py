"""Runs of one source as evidence: `select --fit` keeps them beside the sets of k, the predictor
reads what each source carries alone, and `--criterion sslt-measured` ranks every set by it.

The grids are generated: each source alone scores a random amount on each target, and a set
scores the mean of its sources' amounts plus noise, so the single-source runs carry the whole
signal and no lang2vec feature does.
"""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error

from mslt_it.io import seal
from mslt_it.recipes import expand_sources
from mslt_it.selection.context import make_context
from mslt_it.selection.features import SINGLES_FEATURES, FeatureBuilder, singles_mean
from mslt_it.selection.learning import SSLT_MEASURED, fit_predictor
from mslt_it.selection.measured import load_measured
from mslt_it.selection.predictor import load_predictor
from mslt_it.tasks import get_task

POOL = ["ar", "de", "en", "es", "fr", "ru", "zh"]
LANGS = list(get_task("xnli").languages)


def _grid(path: Path, *, singles: bool = True, seed: int = 0) -> dict[tuple[str, str], float]:
    """All 35 sets of three (and, with ``singles``, the 7 runs of one source) on every target
    they do not hold; returns what each source scores alone on each target."""
    rng = np.random.default_rng(seed)
    alone = {(s, t): float(rng.uniform(30, 90)) for s in POOL for t in LANGS if t != s}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sources", "lang", "score"])
        if singles:
            for (source, target), value in alone.items():
                writer.writerow([source, target, f"{value:.3f}"])
        for sources in itertools.combinations(POOL, 3):
            for target in LANGS:
                if target not in sources:
                    value = np.mean([alone[(s, target)] for s in sources]) + rng.normal(0, 1)
                    writer.writerow(["+".join(sources), target, f"{value:.3f}"])
    return alone


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[tuple[str, str], float]]:
    path = tmp_path_factory.mktemp("singles") / "scores.csv"
    return path, _grid(path)


def test_single_source_runs_are_kept_as_evidence_not_fitted_on(grid) -> None:
    path, alone = grid
    data = load_measured(path, "xnli", LANGS, k=3, min_sets=6)
    assert {len(s) for s in data.sets} == {3} and len(data.sets) == 35
    assert sorted(data.singles) == POOL
    assert data.singles["ar"]["sw"] == pytest.approx(alone[("ar", "sw")], abs=1e-3)
    assert any("runs of 7 single sources (98 rows) kept as evidence" in n for n in data.notes)
    # without --k the file still has two sizes, which stays an error (one line, names them)
    with pytest.raises(Exception, match="sets of 1, 3 languages; pass --k"):
        load_measured(path, "xnli", LANGS, min_sets=6)


def test_the_predictor_reads_what_sources_carry_alone(grid) -> None:
    path, _ = grid
    fitted = fit_predictor(path, "xnli", k=3)
    assert fitted.predictor.feature_names[-3:] == list(SINGLES_FEATURES)
    methods = {m.method: m for m in fitted.validation.methods}
    # the baseline of the single-source runs is scored on the same folds, and here it is right
    assert methods[SSLT_MEASURED].spearman > 0.9
    assert methods["learned"].spearman > 0.6
    assert methods["learned"].spearman > methods["target-l2v"].spearman + 0.4
    # the verdict compares, paired on the same folds, with the best other ranking: -0.05 or
    # -0.06 here, LightGBM's trees differing in the last digits from one CPU to another, its
    # interval touching 0 on one ("not ahead") and just clear of it on another ("behind"; both
    # wordings are test_learning.py's)
    verdict = fitted.validation.verdict()
    assert (
        "best other ranking sslt-measured" in verdict and "learned − sslt-measured -0.0" in verdict
    )
    assert "not ahead of sslt-measured" in verdict or "behind sslt-measured" in verdict


def test_without_single_source_runs_nothing_changes(tmp_path: Path) -> None:
    path = tmp_path / "sets-only.csv"
    _grid(path, singles=False)
    fitted = fit_predictor(path, "xnli")
    assert not fitted.predictor.singles
    assert not set(SINGLES_FEATURES) & set(fitted.predictor.feature_names)
    assert SSLT_MEASURED not in {m.method for m in fitted.validation.methods}


def test_a_held_out_target_hides_its_single_source_runs(grid) -> None:
    """Leaving a target out stands for a language nobody has trained towards: its single-source
    runs are not known there. Here they are the only signal, so a ranking that saw them would
    score ρ near 1; hidden, the held-out target is ranked near chance."""
    path, _ = grid
    fitted = fit_predictor(path, "xnli", k=3, cv="targets")
    methods = {m.method for m in fitted.validation.methods}
    assert SSLT_MEASURED not in methods
    assert abs(fitted.validation.learned.spearman) < 0.3


def test_rank_every_set_by_the_single_source_runs(grid, tmp_path: Path, cli) -> None:
    path, alone = grid
    saved = tmp_path / "p.json"
    fitted = cli("select", "--task", "xnli", "--fit", path, "--k", "3", "--save", saved)
    assert fitted.code == 0, fitted.err
    assert SSLT_MEASURED in fitted.out
    predictor = load_predictor(saved)
    assert predictor.singles["de"]["ur"] == pytest.approx(alone[("de", "ur")], abs=1e-3)
    targets = ["bg", "sw", "ur"]
    ranked = cli("select", "--task", "xnli", "--pool", ",".join(POOL), "--targets",
                 ",".join(targets), "--criterion", SSLT_MEASURED, "--predictor", saved,
                 "--top", "35", "--json")  # fmt: skip
    assert ranked.code == 0, ranked.err
    sets = json.loads(ranked.out)
    assert len(sets) == 35 and sets[0]["criterion"] == SSLT_MEASURED
    expected = max(
        itertools.combinations(POOL, 3),
        key=lambda s: np.mean([singles_mean(predictor.singles, s, t) for t in targets]),
    )
    assert tuple(sets[0]["sources"]) == expected
    first = sets[0]
    assert first["score"] == pytest.approx(
        np.mean([np.mean([alone[(s, t)] for s in expected]) for t in targets]), abs=1e-2
    )
    assert "learned" in first["scores"]  # the file's other criterion, beside it
    assert [name for name, _ in first["drivers"]] == [f"{c} alone" for c in expected]
    table = cli("select", "--task", "xnli", "--pool", ",".join(POOL), "--targets", "sw",
                "--criterion", SSLT_MEASURED, "--predictor", saved)  # fmt: skip
    assert table.code == 0 and "each source alone" in table.out
    learned = cli("select", "--task", "xnli", "--pool", ",".join(POOL), "--targets", "sw",
                  "--criterion", "learned", "--predictor", saved, "--json")  # fmt: skip
    assert SSLT_MEASURED in json.loads(learned.out)[0]["scores"]


def test_sslt_measured_refuses_what_it_cannot_rank(grid, tmp_path: Path, cli) -> None:
    path, _ = grid
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", path, "--k", "3", "--save", saved).code == 0
    rank = ("select", "--task", "xnli", "--criterion", SSLT_MEASURED)
    assert_one_line_error(cli(*rank, "--targets", "sw"), "needs --predictor FILE")
    # a language of the pool that was never run alone
    assert_one_line_error(
        cli(*rank, "--predictor", saved, "--pool", "ar,de,hi,zh", "--targets", "sw"),
        "hi alone on sw was not measured",
    )
    # a predictor fitted without single-source runs
    plain = tmp_path / "sets-only.csv"
    _grid(plain, singles=False)
    other = tmp_path / "plain.json"
    assert cli("select", "--task", "xnli", "--fit", plain, "--save", other).code == 0
    assert_one_line_error(
        cli(*rank, "--predictor", other, "--pool", ",".join(POOL), "--targets", "sw"),
        "has no single-source runs",
    )
    assert_one_line_error(
        cli(*rank, "--predictor", saved, "--vectors", path, "--targets", "sw"), "--vectors"
    )


@pytest.mark.parametrize(
    "singles",
    [
        ["ar"],
        {"ar": {"sw": "high"}},
        {"ar": {"sw": True}},
        {"ar": [1, 2]},
        {"ar": {"sw": 1e999}},
        {"ar": {"sw": 10**400}},  # an integer no float holds
        {"ar": {"sw": 1e308}},  # finite, but a mean of two overflows
        {"ar": {"sw": 2**70}},
    ],
)
def test_a_sealed_file_with_a_bad_singles_table_is_one_line(
    singles, grid, tmp_path: Path, cli
) -> None:
    path, _ = grid
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", path, "--k", "3", "--save", saved).code == 0
    document = json.loads(saved.read_text(encoding="utf-8"))
    try:
        text = json.dumps(seal({**document, "singles": singles}))
    except ValueError:  # infinity cannot be sealed; written as the file would hold it
        text = json.dumps({**document, "singles": singles})
    saved.write_text(text, encoding="utf-8")
    result = cli("select", "--task", "xnli", "--criterion", SSLT_MEASURED, "--predictor", saved,
                 "--pool", ",".join(POOL), "--targets", "sw")  # fmt: skip
    assert_one_line_error(result, "--predictor")


def test_a_predictor_without_singles_written_before_them_still_loads(grid, tmp_path) -> None:
    """Files saved before single-source runs were read have no ``singles`` field."""
    plain = tmp_path / "sets-only.csv"
    _grid(plain, singles=False)
    saved = fit_predictor(plain, "xnli").predictor.save(tmp_path / "p.json")
    document = json.loads(saved.read_text(encoding="utf-8"))
    document.pop("singles")
    saved.write_text(json.dumps(seal(document)), encoding="utf-8")
    assert load_predictor(saved).singles == {}


def test_a_set_with_a_source_never_run_alone_has_no_single_source_evidence(grid) -> None:
    """Partial evidence (two of three sources) would compare sets on different grounds."""
    path, _ = grid
    predictor = fit_predictor(path, "xnli", k=3).predictor
    ctx = make_context(get_task("xnli"), [*POOL, "hi"], targets_as_sources=True)
    builder = FeatureBuilder(ctx, tuple(LANGS), predictor.singles)
    assert not np.isnan(builder.singles_features(("ar", "de", "zh"), "sw")).any()
    assert np.isnan(builder.singles_features(("ar", "de", "hi"), "sw")).all()
    assert np.isnan(singles_mean(predictor.singles, ("ar", "de", "hi"), "sw"))


def test_sslt_measured_ranks_sets_of_any_size(grid, tmp_path: Path, cli) -> None:
    """Runs of one source rank sets of 2 or 4 as well; the model, fitted on sets of 3, is shown
    beside them only for its own size."""
    path, alone = grid
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", path, "--k", "3", "--save", saved).code == 0
    ranked = cli("select", "--task", "xnli", "--pool", ",".join(POOL), "--targets", "sw",
                 "--criterion", SSLT_MEASURED, "--predictor", saved, "--k", "2,4",
                 "--top", "1", "--json")  # fmt: skip
    assert ranked.code == 0, ranked.err
    sets = json.loads(ranked.out)
    assert [s["k"] for s in sets] == [2, 4]
    best_pair = max(itertools.combinations(POOL, 2), key=lambda s: sum(alone[(c, "sw")] for c in s))
    assert tuple(sets[0]["sources"]) == best_pair
    assert "learned" not in sets[0]["scores"]


def test_a_recipe_selects_by_the_single_source_runs(grid, tmp_path: Path, cli) -> None:
    path, _ = grid
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", path, "--k", "3", "--save", saved).code == 0
    spec = {"criterion": SSLT_MEASURED, "k": 3, "pool": POOL, "targets": ["bg", "sw"],
            "predictor": str(saved)}  # fmt: skip
    (run,) = expand_sources({"select": spec}, "xnli")
    ranked = cli("select", "--task", "xnli", "--pool", ",".join(POOL), "--targets", "bg,sw",
                 "--criterion", SSLT_MEASURED, "--predictor", saved, "--top", "1",
                 "--json")  # fmt: skip
    assert list(run.sources) == json.loads(ranked.out)[0]["sources"]


def test_learned_ranks_pools_beyond_the_single_source_runs(grid, tmp_path: Path, cli) -> None:
    """The runs of one source are a column beside `learned`: a pool language never run alone
    leaves that column empty (null) for its sets, and the ranking goes on."""
    path, _ = grid
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", path, "--k", "3", "--save", saved).code == 0
    ranked = cli("select", "--task", "xnli", "--criterion", "learned", "--predictor", saved,
                 "--pool", "ar,de,en,es,hi", "--targets", "sw,ur", "--top", "10",
                 "--json")  # fmt: skip
    assert ranked.code == 0, ranked.err
    sets = json.loads(ranked.out)
    assert len(sets) == 10
    for ranked_set in sets:
        alone = ranked_set["scores"][SSLT_MEASURED]
        assert (alone is None) == ("hi" in ranked_set["sources"])


def test_each_source_alone_adds_up_to_the_score(grid, tmp_path: Path, cli) -> None:
    """With targets among the sources, a set is scored on the targets outside it; the column
    of each source alone is averaged over those same targets."""
    path, _ = grid
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", path, "--k", "3", "--save", saved).code == 0
    ranked = cli("select", "--task", "xnli", "--criterion", SSLT_MEASURED, "--predictor", saved,
                 "--pool", "ar,de,en,es", "--targets", "ar,de,en,es", "--targets-as-sources",
                 "--top", "4", "--json")  # fmt: skip
    assert ranked.code == 0, ranked.err
    for ranked_set in json.loads(ranked.out):
        drivers = [value for _, value in ranked_set["drivers"]]
        assert ranked_set["score"] == pytest.approx(np.mean(drivers))


def test_a_partial_set_of_single_source_runs_is_not_scored_as_a_ranking(tmp_path: Path) -> None:
    """Runs of one source that cover some sets' sources only would rank the rest by the
    alphabet; the baseline is left out of the table, with a note saying why."""
    full = tmp_path / "full.csv"
    _grid(full)
    partial = tmp_path / "partial.csv"
    rows = list(csv.reader(full.open(encoding="utf-8")))
    with partial.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(r for r in rows if r[0] != "zh")
    fitted = fit_predictor(partial, "xnli", k=3)
    assert SSLT_MEASURED not in {m.method for m in fitted.validation.methods}
    assert any(f"{SSLT_MEASURED} not scored" in note for note in fitted.measured.notes)


def test_sslt_measured_errors_name_it_and_its_pool_defaults_to_the_runs(
    grid, tmp_path: Path, cli
) -> None:
    path, _ = grid
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", path, "--k", "3", "--save", saved).code == 0
    rank = ("select", "--task", "xnli", "--criterion", SSLT_MEASURED, "--predictor", saved)
    assert_one_line_error(
        cli(*rank, "--pool", "ar,de,en"), f"--criterion {SSLT_MEASURED}: needs --targets"
    )
    ranked = cli(*rank, "--targets", "sw,ur", "--top", "35", "--json")
    assert ranked.code == 0, ranked.err
    assert {c for s in json.loads(ranked.out) for c in s["sources"]} == set(POOL)


def test_suggest_names_the_languages_never_run_alone(grid, tmp_path: Path, cli) -> None:
    """One run alone is cheaper than any set and informs every set holding the language."""
    path, _ = grid
    saved = tmp_path / "p.json"
    assert cli("select", "--task", "xnli", "--fit", path, "--k", "3", "--save", saved).code == 0
    wider = cli("select", "--task", "xnli", "--predictor", saved, "--suggest", "40",
                "--pool", ",".join([*POOL, "hi", "vi"]), "--json")  # fmt: skip
    assert wider.code == 0, wider.err
    assert "note: hi, vi never ran alone" in wider.err
    json.loads(wider.out)  # the note goes to stderr; stdout stays JSON
    plain = tmp_path / "sets-only.csv"
    _grid(plain, singles=False)
    other = tmp_path / "plain.json"
    assert cli("select", "--task", "xnli", "--fit", plain, "--save", other).code == 0
    unasked = cli("select", "--task", "xnli", "--predictor", other, "--suggest", "5",
                  "--pool", ",".join([*POOL, "hi"]))  # fmt: skip
    assert unasked.code == 0 and "never ran alone" not in unasked.err
