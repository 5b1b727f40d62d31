"""A predictor file's LightGBM models are user input: edited and re-sealed (its digests are
plain SHA-256), they must give one line, never a native crash (SIGABRT) or a prediction that
never ends. `mslt_it.selection.model_text` checks every line before LightGBM reads it."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mslt_it.errors import MsltError
from mslt_it.io import seal
from mslt_it.selection.model_text import checked_model_text

POOL = ["ar", "de", "en", "es", "fr", "ru", "zh"]
TARGETS = ["bg", "el", "hi", "sw", "th", "tr", "ur", "vi"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A predictor fitted on a small grid whose scores depend on the sets."""
    from mslt_it.selection.learning import fit_predictor

    folder = tmp_path_factory.mktemp("model-text")
    rng = np.random.default_rng(0)
    with (folder / "scores.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sources", "lang", "score"])
        for sources in itertools.combinations(POOL, 3):
            for target in TARGETS:
                value = 50 + 10 * ("ru" in sources) + 5 * ("ar" in sources) + rng.normal(0, 2)
                writer.writerow(["+".join(sources), target, f"{value:.2f}"])
    fitted = fit_predictor(folder / "scores.csv", "xnli", k=3)
    return fitted.predictor.save(folder / "p.json")


def resealed(document: dict, number: int, text: str) -> dict:
    """``document`` with model ``number`` replaced by ``text``, its digest and seal redone, as
    anyone editing the file can."""
    document = {key: value for key, value in document.items() if key != "sha256"}
    models = list(document["models"])
    models[number] = {"sha256": hashlib.sha256(text.encode()).hexdigest(), "text": text}
    return seal({**document, "models": models})


def test_the_checked_text_predicts_exactly_as_the_original(saved: Path) -> None:
    import lightgbm

    document = json.loads(saved.read_text(encoding="utf-8"))
    features = len(document["features"])
    rows = np.random.default_rng(1).uniform(-1, 6, (50, features))
    rows[::5, 3] = np.nan  # missing values take the path a split says
    for model in document["models"]:
        original = lightgbm.Booster(model_str=model["text"])
        checked = lightgbm.Booster(
            model_str=checked_model_text(model["text"], features, document["objective"])
        )
        assert np.array_equal(original.predict(rows), checked.predict(rows))
        contributions = original.predict(rows, pred_contrib=True)
        assert np.array_equal(contributions, checked.predict(rows, pred_contrib=True))


EDITS = [
    ("num_leaves=7", "num_leaves=9999999", "num_leaves"),
    ("split_feature=", "split_feature=999 ", "split_feature"),
    ("left_child=", "left_child=0 ", "left_child"),
    ("threshold=", "threshold=nan ", "threshold"),
    ("leaf_value=", "leaf_value=1e308 ", "leaf_value"),
    ("num_cat=0", "num_cat=1", "categorical"),
    ("decision_type=", "decision_type=1 ", "decision_type"),
]


@pytest.mark.parametrize(("old", "new", "named"), EDITS[:2], ids=[e[2] for e in EDITS[:2]])
def test_an_edited_and_resealed_model_is_one_line_in_a_fresh_process(
    saved: Path, tmp_path: Path, old: str, new: str, named: str
) -> None:
    """In its own process (`python -m mslt_it`): a native abort would be exit 134 with pages of
    output, not one line and exit 2."""
    document = json.loads(saved.read_text(encoding="utf-8"))
    text = document["models"][1]["text"]
    assert old in text
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(resealed(document, 1, text.replace(old, new, 1))))
    result = subprocess.run(
        [sys.executable, "-m", "mslt_it", "select", "--task", "xnli", "--criterion", "learned",
         "--predictor", str(edited), "--targets", "bg,sw", "--pool", ",".join(POOL)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "models[1] is not a LightGBM model" in lines[0], result.stderr
    assert named in lines[0] or "values" in lines[0] or "tree" in lines[0], lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize(("old", "new", "named"), EDITS[2:], ids=[e[2] for e in EDITS[2:]])
def test_every_other_edit_is_one_line(saved: Path, tmp_path: Path, cli, old, new, named) -> None:
    document = json.loads(saved.read_text(encoding="utf-8"))
    text = document["models"][1]["text"]
    assert old in text
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(resealed(document, 1, text.replace(old, new, 1))))
    ranked = ["select", "--task", "xnli", "--criterion", "learned", "--predictor", edited,
              "--targets", "bg,sw", "--pool", ",".join(POOL)]  # fmt: skip
    assert_one_line_error(cli(*ranked), "models[1] is not a LightGBM model")


def test_the_same_edits_through_the_cli_fixture(saved: Path, tmp_path: Path, cli) -> None:
    document = json.loads(saved.read_text(encoding="utf-8"))
    text = document["models"][0]["text"]
    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps(resealed(document, 0, text[: len(text) // 3])))
    ranked = ["select", "--task", "xnli", "--criterion", "learned", "--predictor", cut,
              "--targets", "bg,sw", "--pool", ",".join(POOL)]  # fmt: skip
    assert_one_line_error(cli(*ranked), "--predictor", "models[0]", "end of trees")
    suggest = ["select", "--task", "xnli", "--predictor", cut, "--suggest", "2"]
    assert_one_line_error(cli(*suggest), "models[0]")


def test_tree_sizes_that_do_not_match_the_trees_are_never_read(saved: Path, tmp_path, cli):
    """LightGBM reads each tree at the offsets `tree_sizes` gives (past the text when they are
    wrong); the checked copy leaves the line out, so the trees are read one after another."""
    document = json.loads(saved.read_text(encoding="utf-8"))
    text = document["models"][0]["text"]
    edited = tmp_path / "edited.json"
    edited.write_text(
        json.dumps(resealed(document, 0, text.replace("tree_sizes=", "tree_sizes=9", 1)))
    )
    ranked = ["select", "--task", "xnli", "--criterion", "learned", "--targets", "bg,sw",
              "--pool", ",".join(POOL), "--top", "3", "--json", "--predictor"]  # fmt: skip
    first, second = cli(*ranked, saved), cli(*ranked, edited)
    assert first.code == 0 and second.code == 0, second.err
    assert json.loads(second.out) == json.loads(first.out)


NASTY = ["nan", "inf", "-inf", "-1", "-999", "0", "999999", "1e308", "", "x", "1_0", "7 8", " "]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    line=st.integers(min_value=0, max_value=10_000),
    token=st.integers(min_value=0, max_value=50),
    value=st.sampled_from(NASTY),
    operation=st.sampled_from(["replace", "delete", "duplicate", "cut"]),
)
def test_any_edit_is_refused_or_predicts_finite_numbers(
    saved: Path, line: int, token: int, value: str, operation: str
) -> None:
    """Whatever one edit does to a model text, the check refuses it with a MsltError, or
    LightGBM reads what the check gave it and predicts finite numbers on finite rows."""
    import lightgbm

    document = json.loads(saved.read_text(encoding="utf-8"))
    features = len(document["features"])
    lines = document["models"][0]["text"].split("\n")
    at = line % len(lines)
    if operation == "replace" and "=" in lines[at]:
        key, _, values = lines[at].partition("=")
        parts = values.split(" ")
        parts[token % len(parts)] = value
        lines[at] = f"{key}={' '.join(parts)}"
    elif operation == "delete":
        del lines[at]
    elif operation == "duplicate":
        lines.insert(at, lines[at])
    else:
        lines = lines[:at]
    try:
        text = checked_model_text("\n".join(lines), features, document["objective"])
    except MsltError as error:
        assert "\n" not in str(error)
        return
    booster = lightgbm.Booster(model_str=text)
    rows = np.random.default_rng(2).uniform(-1, 6, (8, features))
    assert np.isfinite(booster.predict(rows)).all()


def test_a_version_or_set_size_edited_and_resealed_is_refused(saved: Path, tmp_path, cli) -> None:
    document = json.loads(saved.read_text(encoding="utf-8"))
    edited = tmp_path / "edited.json"
    ranked = ["select", "--task", "xnli", "--criterion", "learned", "--predictor", edited,
              "--targets", "bg,sw", "--pool", ",".join(POOL)]  # fmt: skip
    plain = {key: value for key, value in document.items() if key != "sha256"}
    trained_on = document["trained_on"]
    for change, fragment in (
        ({"version": True}, "version"),
        ({"k": 2}, "sets of 3"),
        ({"trained_on": {**trained_on, "sets": []}}, "trained_on.sets is empty"),
        ({"trained_on": {**trained_on, "sets": ["xx+yy+zz"]}}, "not a language of xnli"),
        ({"trained_on": {**trained_on, "targets": ["ja"]}}, "'ja', not a language of xnli"),
    ):
        edited.write_text(json.dumps(seal({**plain, **change})), encoding="utf-8")
        assert_one_line_error(cli(*ranked), "--predictor", fragment)
