"""Items of a parallel benchmark (XNLI, XCOPA, PAWS-X, XStoryCloze, Belebele: row N of every
language is one item translated) are hard or easy in every language at once, so the targets'
average draws each item in all of them together: a task's ``parallel``, its intervals and
paired tests, and an evaluation re-scored (not predicted again) when it changes."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, evaluate_claims
from hypothesis import given, settings
from hypothesis import strategies as st

from mslt_it.comparisons import AVERAGE, RunRows, compare_runs, markdown
from mslt_it.errors import MsltError
from mslt_it.evaluation.metrics import mean_interval
from mslt_it.evaluation.plan import definition_sha256
from mslt_it.evaluation.scoring import check_records, parallel_units
from mslt_it.stats import paired_mean_bootstrap, shared_units
from mslt_it.tasks import get_task
from mslt_it.tasks.definitions import parse_definition

DEFINITION = (
    "name: claims\ntitle: Claims\nkind: classification\n"
    "splits: [test]\nlanguages: [en, de, sw]\n"
    "columns: [claim, evidence, verdict]\nlabels: [supported, refuted]\n"
    "label_column: verdict\n"
    "variables: {claim: row.claim, evidence: row.evidence}\n"
)
PARALLEL = "parallel: true  # row N is one claim in every language\n"


def write_task(folder: Path, tail: str = PARALLEL, rows: dict[str, int] | None = None) -> Path:
    """A user task of 12 rows per language (``rows``: other counts), row N one claim."""
    (folder / "tasks").mkdir(parents=True, exist_ok=True)
    (folder / "tasks" / "claims.yaml").write_text(DEFINITION + tail)
    (folder / "prompts" / "claims").mkdir(parents=True, exist_ok=True)
    (folder / "prompts" / "claims" / "plain.yaml").write_text(
        "id: claims/plain\ntask: claims\ndescription: test\n"
        "instruction: 'Claim: {{ claim }}. Evidence: {{ evidence }}. Supported or refuted?'\n"
        "answer: '{{ label_word }}'\n"
        "verbalizers: {supported: supported, refuted: refuted}\n"
    )
    for lang in ("en", "de", "sw"):
        rows_folder = folder / "data" / "claims" / lang
        rows_folder.mkdir(parents=True, exist_ok=True)
        made = [
            {"claim": f"{lang} claim {i}", "evidence": f"evidence {i}", "verdict": i % 2}
            for i in range((rows or {}).get(lang, 12))
        ]
        (rows_folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in made))
    return folder


# ------------------------------------------------------------------------------ statistics


def width(interval) -> float:
    return interval[1] - interval[0]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.booleans(), min_size=1, max_size=40),
    st.integers(1, 5),
    st.integers(0, 2**32 - 1),
)
def test_one_language_drawn_by_items_is_its_own_draw(correct, group, seed) -> None:
    """With one language the items are its rows (or its clusters): the same numbers as
    drawing that language alone, clustered or not."""
    values = np.array(correct, float)
    items = [f"test/{i}" for i in range(len(values))]
    for keys in (None, [f"passage {i // group}" for i in range(len(values))]):
        units = shared_units([items], [keys])
        assert units is not None
        joint = mean_interval([values], 200, seed, [keys], units)
        assert joint == pytest.approx(mean_interval([values], 200, seed, [keys]))


def test_items_hard_in_every_language_widen_the_average_by_the_languages_root() -> None:
    """Four languages right and wrong on the same 200 items: drawn apart, the average's
    interval is that of 800 independent rows, half the truth (√4); drawn by items it is one
    language's. Languages whose errors are unrelated gain nothing from being drawn jointly."""
    rng = np.random.default_rng(3)
    same = rng.integers(0, 2, 200).astype(float)
    items = [f"test/{i}" for i in range(200)]
    units = shared_units([items] * 4)
    apart = mean_interval([same] * 4, 2000, 0)
    joint = mean_interval([same] * 4, 2000, 0, None, units)
    alone = mean_interval([same], 2000, 0)
    assert 1.7 < width(joint) / width(apart) < 2.3
    assert width(joint) == pytest.approx(width(alone), rel=0.1)
    unrelated = [rng.integers(0, 2, 200).astype(float) for _ in range(4)]
    ratio = width(mean_interval(unrelated, 2000, 0, None, units)) / width(
        mean_interval(unrelated, 2000, 0)
    )
    assert 0.8 < ratio < 1.25


def test_a_language_cluster_brings_its_items_in_every_language() -> None:
    """XNLI: three hypotheses of one premise in English are one unit, with their rows in
    German; a cluster in either language joins its items everywhere."""
    items = [["test/0", "test/1", "test/2", "test/3"], ["test/3", "test/2", "test/1", "test/0"]]
    units = shared_units(items, [["p", "p", "q", "r"], None])
    assert units is not None
    assert units[0].tolist() == [0, 0, 1, 2] and units[1].tolist() == [2, 1, 0, 0]
    alike = shared_units(items, [["p", "p", "q", "r"], ["s", "t", "u", "u"]])
    assert alike is not None and alike[1].tolist() == [2, 1, 0, 0]  # de groups them alike
    # de's items 1 and 2 together would join en's clusters p and q: chained, clusters that
    # group the items otherwise merged into a few units (one, on a whole file), and the
    # average's interval came out narrower than any language's. Drawn apart:
    assert shared_units(items, [["p", "p", "q", "r"], ["s", "t", "t", "u"]]) is None
    assert shared_units([["test/0", "test/1"], ["test/0"]]) is None  # other items
    assert shared_units([["test/0", "test/1"], ["test/0", "test/2"]]) is None
    assert shared_units([["test/0", "test/0"], ["test/0", "test/0"]]) is None  # an item twice
    assert parallel_units([["xnli/en/test/0"], ["xnli/de/test/0"]]) is not None
    assert parallel_units([["xnli/en/test/0"], ["row 0"]]) is None  # not mslt-it's ids


def test_a_paired_average_drawn_by_items_is_less_sure() -> None:
    """B beats A on the same 12 of 200 items in each of four languages: drawn apart, the
    average's gain looks surer than it is; identical runs still give [0, 0] and p = 1."""
    base = np.zeros(200)
    base[::2] = 1.0
    better = base.copy()
    better[1:24:2] = 1.0
    items = [f"test/{i}" for i in range(200)]
    units = shared_units([items] * 4)
    pairs = [(base, better)] * 4
    apart = paired_mean_bootstrap(pairs, "accuracy", 2000, 0)
    joint = paired_mean_bootstrap(pairs, "accuracy", 2000, 0, None, units)
    assert apart.difference == joint.difference == pytest.approx(6.0)
    assert joint.high - joint.low > 1.7 * (apart.high - apart.low)
    same = paired_mean_bootstrap([(base, base)] * 4, "accuracy", 500, 0, None, units)
    assert (same.low, same.high, same.p_value) == (0.0, 0.0, 1.0)


def test_a_mean_difference_that_cancels_exactly_is_counted_in_both_tails() -> None:
    """Resampled mean differences that are exactly 0 came out as ±1e-15 and were counted in
    one tail only: p too small. The p is the one exact fractions give on the same draws."""
    rng = np.random.default_rng(5)
    pairs = []
    for n in (30, 45, 21, 17):
        a = (rng.random(n) < 0.6).astype(float)
        pairs.append((a, np.where(rng.random(n) < 0.05, 1 - a, a)))
    draws = np.random.default_rng([0, 1])  # the bootstrap's own draws, language by language
    exact = [Fraction(0)] * 2000
    for a, b in pairs:
        index = draws.integers(0, len(a), size=(2000, len(a)))
        gained = (b[index].sum(axis=1) - a[index].sum(axis=1)).astype(int)
        exact = [total + Fraction(int(g), len(a)) for total, g in zip(exact, gained, strict=True)]
    zeros = sum(value == 0 for value in exact)
    below, above = sum(v <= 0 for v in exact), sum(v >= 0 for v in exact)
    assert zeros > 10  # the case the float sums got wrong
    found = paired_mean_bootstrap(pairs, "accuracy", 2000, [0, 1])
    assert found.p_value == pytest.approx(min(1.0, 2 * (min(below, above) + 1) / 2001))


def test_units_follow_their_rows_in_any_order() -> None:
    """Every language but the first in another row order (values, items and clusters moved
    together): the same draws, the same interval. Values moved without their items are other
    rows, and give another one."""
    rng = np.random.default_rng(7)
    n = 60
    values = [rng.integers(0, 2, n).astype(float) for _ in range(3)]
    items = [[f"test/{i}" for i in range(n)] for _ in range(3)]
    clusters = [[f"{lang} passage {i // 3}" for i in range(n)] for lang in "abc"]
    base = mean_interval(values, 500, 0, clusters, shared_units(items, clusters))
    for lang in (1, 2):
        order = rng.permutation(n)
        values[lang] = values[lang][order]
        items[lang] = [items[lang][i] for i in order]
        clusters[lang] = [clusters[lang][i] for i in order]
    assert mean_interval(values, 500, 0, clusters, shared_units(items, clusters)) == base
    values[2] = values[2][rng.permutation(n)]
    assert mean_interval(values, 500, 0, clusters, shared_units(items, clusters)) != base


# ------------------------------------------------------------------------------ definitions


def test_the_shipped_parallel_benchmarks_say_so() -> None:
    for name in ("xnli", "xcopa", "pawsx", "xstorycloze", "belebele"):
        assert get_task(name).parallel, name
    for name in ("wikiann", "xwinograd"):  # other sentences in every language
        assert not get_task(name).parallel, name


def test_the_parallel_line_is_no_part_of_the_definitions_identity(tmp_path: Path) -> None:
    path = write_task(tmp_path, "") / "tasks" / "claims.yaml"
    digests = []
    for tail in ("", PARALLEL, "parallel: false\n", "cluster: row.evidence\n" + PARALLEL):
        path.write_text(DEFINITION + tail)
        digests.append(definition_sha256(parse_definition(path)))
    assert len(set(digests)) == 1
    assert parse_definition(path).parallel


@pytest.mark.parametrize(
    ("tail", "fragment"),
    [
        ("parallel: 'yes'\n", "parallel"),
        ("parallel: 1\n", "parallel"),
        ("'parallel': true\n", "parallel: write it on one line of its own"),
        ("parallel: &p true\n", "parallel: write it on one line of its own"),
        ("parallel:\n  true\n", "parallel: write it on one line of its own"),
        ("description: >-\n  x\nparallel: true\nparallel: true\n", "parallel"),
    ],
)
def test_a_broken_parallel_entry_is_one_line_naming_it(tmp_path: Path, tail, fragment) -> None:
    path = write_task(tmp_path, "") / "tasks" / "claims.yaml"
    path.write_text(DEFINITION + tail)
    with pytest.raises(MsltError) as error:
        parse_definition(path)
    message = str(error.value)
    assert fragment in message and "\n" not in message and "claims.yaml" in message


def test_a_variables_line_beginning_parallel_is_never_left_out(tmp_path: Path) -> None:
    """A quoted variable's line beginning ``parallel:`` reaches every prompt: were it left out
    of the identity, editing it would keep the stale predictions."""
    path = write_task(tmp_path, "") / "tasks" / "claims.yaml"
    text = DEFINITION.replace(
        "variables: {claim: row.claim,", "variables: {claim: \"row.claim ~ '\nparallel: A'\","
    )
    path.write_text(text + PARALLEL)
    with pytest.raises(MsltError, match="parallel: write it on one line of its own"):
        parse_definition(path)


# ------------------------------------------------------------------------------ evaluation


def evaluate(cli, folder: Path, tiny_model_dir: Path, out: Path, *extra):
    return evaluate_claims(cli, folder, tiny_model_dir, out, "en,de,sw", *extra)


def test_an_evaluation_draws_items_jointly_and_a_changed_entry_rescores_it(
    cli, tmp_path: Path, tiny_model_dir: Path
) -> None:
    folder = write_task(tmp_path / "user")
    out = tmp_path / "ev"
    first = evaluate(cli, folder, tiny_model_dir, out)
    assert first.code == 0, first.err
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["tasks"][0]["parallel"] is True
    joint = results["tasks"]["claims"]["average_targets"]
    assert joint["joint_items"] is True and joint["ci95"] is not None
    low, high = joint["ci95"]
    assert low <= joint["unweighted"] <= high
    shown = next(line for line in first.out.splitlines() if "targets" in line)
    assert f"{low:.1f}–{high:.1f}" in shown  # the console's table shows the interval too
    predictions = (out / "predictions.jsonl").read_text()

    write_task(folder, "")  # not parallel now: languages drawn apart, nothing predicted
    assert_one_line_error(evaluate(cli, folder, tiny_model_dir, out), "parallel", "--update")
    again = evaluate(cli, folder, tiny_model_dir, out, "--update")
    assert again.code == 0, again.err
    rescored = json.loads((out / "results.json").read_text())
    assert "parallel" not in rescored["settings"]["tasks"][0]
    assert rescored["tasks"]["claims"]["average_targets"]["joint_items"] is False
    assert json.loads((out / "timings.json").read_text())["examples_predicted"] == 0
    assert (out / "predictions.jsonl").read_text() == predictions
    languages = rescored["tasks"]["claims"]["languages"]
    assert languages == results["tasks"]["claims"]["languages"]  # per language: unchanged


def test_clusters_grouping_the_items_otherwise_are_drawn_apart(
    cli, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """The hostile pass's file: en and sw pair rows 0-1, 2-3…, de pairs 1-2, 3-4…; chained,
    every row was one unit, the average's interval [50, 50] and a report's -8.3 points
    "significant" at p < 0.001 where no language's difference was."""
    folder = write_task(tmp_path / "user", PARALLEL + "cluster: row.evidence\n")
    for lang in ("en", "de", "sw"):
        shift = 1 if lang == "de" else 0
        made = [
            {"claim": f"{lang} claim {i}", "evidence": f"e{(i + shift) // 2}",
             "verdict": 0 if i % 4 < 2 else 1}
            for i in range(12)
        ]  # fmt: skip
        path = folder / "data" / "claims" / lang / "test.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in made))
    out = tmp_path / "ev"
    assert evaluate(cli, folder, tiny_model_dir, out).code == 0
    average = json.loads((out / "results.json").read_text())["tasks"]["claims"]["average_targets"]
    assert average["joint_items"] is False and "units" not in average
    assert average["ci95"][1] - average["ci95"][0] > 10


def test_an_id_naming_another_split_or_no_place_is_one_line(tmp_path: Path) -> None:
    """An id edited to ``test/03`` or another split's names another item: the joint draw
    stopped without a word, and the interval narrowed."""
    base = {"task": "xnli", "lang": "de", "template": "xnli/en-instruct", "output": "x",
            "gold": "neutral", "adapter": "base", "mode": "generate"}  # fmt: skip
    first = {**base, "id": "xnli/de/test/0"}
    for edited, fragment in [
        ("xnli/de/test/03", "ends in '03'; an id mslt-it makes ends in the row's place"),
        ("xnli/de/test/3.0", "ends in '3.0'"),
        ("xnli/de/test/-1", "ends in '-1'"),
        ("xnli/de/validation/3", "names split 'validation', where the task's first record"),
    ]:
        with pytest.raises(MsltError) as error:
            check_records([first, {**base, "id": edited}], tmp_path / "p.jsonl")
        assert fragment in str(error.value) and "\n" not in str(error.value)
    check_records([first, {**base, "id": "xnli/de/test/3"}, {**base, "id": "row 9"}], tmp_path)


def test_languages_holding_other_items_are_drawn_apart(
    cli, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """A parallel task whose German file stops at row 10: the items differ, so no joint
    draw, and results.json says so."""
    folder = write_task(tmp_path / "user", rows={"de": 10})
    out = tmp_path / "ev"
    assert evaluate(cli, folder, tiny_model_dir, out).code == 0
    average = json.loads((out / "results.json").read_text())["tasks"]["claims"]["average_targets"]
    assert average["joint_items"] is False and average["ci95"] is not None


# ------------------------------------------------------------------------------ comparisons


LANGS = ("sw", "hi", "ur")


def two_runs(parallel_a: bool, parallel_b: bool | None = None, shuffled: bool = False):
    """SSLT en against MSLT en+de, both on 200 XNLI items in three target languages, MSLT
    right on the same 12 more items in each (``shuffled``: each language's rows recorded in
    another order, as a hand-merged file may hold them)."""
    base = np.zeros(200)
    base[::2] = 1.0
    better = base.copy()
    better[1:24:2] = 1.0
    orders = {lang: np.random.default_rng(n).permutation(200) for n, lang in enumerate(LANGS)}

    def made(name: str, values: np.ndarray, parallel: bool) -> RunRows:
        rows = {"xnli": {}}
        for lang in LANGS:
            order = orders[lang] if shuffled else range(200)
            rows["xnli"][lang] = {f"xnli/{lang}/test/{i}": float(values[i]) for i in order}
        tasks = frozenset({"xnli"}) if parallel else frozenset()
        return RunRows(name, ("en",), {"xnli": "accuracy"}, rows, parallel=tasks)

    both = parallel_a if parallel_b is None else parallel_b
    return made("sslt", base, parallel_a), made("mslt", better, both)


def average_row(runs):
    return next(r for r in compare_runs(*runs) if r.lang == AVERAGE)


def test_a_comparison_of_parallel_runs_draws_items_in_every_language() -> None:
    apart = average_row(two_runs(False))
    joint = average_row(two_runs(True))
    assert not apart.joint_items and joint.joint_items
    assert average_row(two_runs(True, False)) == apart  # both runs' word: one recorded false
    assert average_row(two_runs(False, True)) == apart  # (or by an earlier mslt-it) is apart
    assert joint.difference == pytest.approx(apart.difference)
    assert joint.ci_high - joint.ci_low > 1.4 * (apart.ci_high - apart.ci_low)
    assert joint.clusters == 200 and apart.clusters is None  # the items drawn
    assert "draws each item in every target language" in markdown([joint])
    assert "draws each item" not in markdown([apart])


def test_a_comparison_pairs_each_item_whatever_order_its_rows_were_recorded_in() -> None:
    """Rows recorded in another order in each language: the same items drawn, the same
    numbers (the values and the units follow one order of the ids)."""
    assert average_row(two_runs(True, shuffled=True)) == average_row(two_runs(True))
