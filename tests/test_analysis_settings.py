"""`mslt-it analyze`'s settings table: every measure under each pooling, centred or not, per
layer, with the direction the models point in each (the demo's direction, as
docs/analysis-measures.md quotes it, is checked in test_demo.py, which owns the demo run)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_analysis import adapter_dir  # noqa: F401 (a fixture: a LoRA adapter on the tiny model)

from mslt_it.analysis import language_share
from mslt_it.analysis.settings import MEASURES, build_table, direction, markdown, table_layers

# --- the pieces ---------------------------------------------------------------------------------


def test_direction_orders_from_most_to_least_language_agnostic() -> None:
    names = {"base": "base", "SSLT en": "SSLT", "MSLT ar+de+zh": "MSLT"}
    values = {"base": 0.153, "SSLT en": 0.135, "MSLT ar+de+zh": 0.060}
    higher = direction(values, True, names)
    assert higher["text"] == "base > SSLT > MSLT"
    assert higher["order"] == ["base", "SSLT en", "MSLT ar+de+zh"]
    assert higher["cell"] == "base 0.153 > SSLT 0.135 > MSLT 0.060"
    lower = direction(values, False, names)
    assert lower["text"] == "MSLT < SSLT < base"
    tied = direction({"base": 0.5, "SSLT en": 0.5001, "MSLT ar+de+zh": 0.4}, True, names)
    assert tied["text"] == "SSLT = base > MSLT"
    # the signs follow the printed values: 0.6064 and 0.6056 both print 0.606 although they
    # differ by 0.0008; 0.63251 and 0.63249 print 0.633 and 0.632 although they differ by 0.00002
    close = {"base": 0.6056, "SSLT en": 0.6064, "MSLT ar+de+zh": 0.6074}
    assert direction(close, True, names)["cell"] == "MSLT 0.607 > SSLT 0.606 = base 0.606"
    near = direction({"base": 0.63249, "SSLT en": 0.63251, "MSLT ar+de+zh": 0.1}, True, names)
    assert near["cell"] == "SSLT 0.633 > base 0.632 > MSLT 0.100"


def test_table_layers_spread_keeps_first_last_and_plotted() -> None:
    assert table_layers([0, 1, 2], 2) == [0, 1, 2]
    spread = table_layers(list(range(33)), 13)
    assert spread[0] == 0 and spread[-1] == 32 and 13 in spread and len(spread) <= 10


def test_language_share_is_the_variance_of_the_languages_means() -> None:
    rng = np.random.default_rng(0)
    content = rng.normal(size=(50, 8))
    assert language_share([content, content]) == pytest.approx(0.0)
    apart = [content + 100.0, content - 100.0]
    assert language_share(apart) > 0.99
    assert language_share([x - x.mean(0) for x in apart]) == pytest.approx(0.0, abs=1e-12)


def test_markdown_has_a_row_and_a_direction_per_setting() -> None:
    measured = {
        label: {
            (pooling, layer): {m: value + layer / 10 for m in MEASURES}
            for pooling in ("mean", "last")
            for layer in (0, 1)
        }
        for label, value in (("base", 0.1), ("SSLT en", 0.2), ("MSLT ar+de+zh", 0.3))
    }
    table = build_table(measured, [0, 1], constant={("last", 0)})
    text = markdown(table, {"retrieval": 0.01, "lid": 0.2})
    rows = [line for line in text.splitlines() if line.startswith(("| mean", "| last"))]
    assert len(rows) == 4 and "not measured" in rows[2]
    assert "MSLT 0.400 > SSLT 0.300 > base 0.200" in rows[1]  # CKA ↑
    assert "base 0.200 < SSLT 0.300 < MSLT 0.400" in rows[1]  # LID ↓
    mslt_vs_sslt = next(p for p in table["pairs"] if p["model"] == "MSLT ar+de+zh")
    assert mslt_vs_sslt["settings"] == 3  # the constant row counts nowhere
    assert "| MSLT vs SSLT | 3 of 3 |" in text


# --- on the tiny model ---------------------------------------------------------------------------


def test_analyze_writes_the_settings_table(cli, tiny_model_dir, adapter_dir, tmp_path) -> None:  # noqa: F811
    out = tmp_path / "analysis"
    args = ["analyze", "--model", tiny_model_dir, "--adapter", adapter_dir, "--langs", "en,ar,zh"]
    result = cli(*args, "--n", "16", "--out", out)
    assert result.code == 0, result.err
    data = json.loads((out / "analysis.json").read_text())
    settings = data["settings"]
    assert settings["models"] == ["base", "MSLT ar+en+zh"]
    assert [(r["pooling"], r["layer"]) for r in settings["rows"]] == [
        ("mean", 0), ("mean", 1), ("mean", 2), ("last", 0), ("last", 1), ("last", 2),
    ]  # fmt: skip
    for row in settings["rows"]:
        assert set(row["measures"]) == set(MEASURES)
        for measure in row["measures"].values():
            assert set(measure["values"]) == {"base", "MSLT ar+en+zh"}
            assert measure["text"].split(" ")[1] in {">", "<", "="}, measure["text"]
            assert sorted(measure["order"]) == ["MSLT ar+en+zh", "base"]
    rows = {(r["pooling"], r["layer"]): r for r in settings["rows"]}
    assert rows["last", 0]["constant"] and not rows["mean", 2]["constant"]
    # LoRA does not touch the embeddings: at layer 0 the two models are equal on every measure
    assert all("=" in m["text"] for m in rows["mean", 0]["measures"].values())
    # the row of the main setting (mean pooling, not centred) is the main results, reused
    for model in data["models"]:
        main = model["layers"][2]
        same = rows["mean", 2]["measures"]
        for name in ("cka", "retrieval", "lid", "silhouette"):
            assert same[name]["values"][model["label"]] == pytest.approx(
                main[name]["value"], abs=1e-6
            )
    text = data["settings_table"]
    assert "| pooling | layer | CKA ↑ |" in text and "| MSLT vs base |" in text
    assert sum(line.startswith(("| mean |", "| last |")) for line in text.splitlines()) == 6
    assert "every setting" in result.out and "MSLT more language-agnostic than base" in result.out


def test_projection_names_its_picture_and_replaces_the_other(cli, tiny_model_dir, tmp_path) -> None:
    out = tmp_path / "a"
    base = ["analyze", "--model", tiny_model_dir, "--langs", "en,de", "--n", "8", "--out", out]
    assert cli(*base).code == 0 and (out / "tsne.png").is_file()
    result = cli(*base, "--projection", "pca", "--overwrite")
    assert result.code == 0, result.err
    data = json.loads((out / "analysis.json").read_text())
    assert data["plots"][0] == "pca.png" and "pca.png" in result.out
    assert (out / "pca.png").is_file() and not (out / "tsne.png").exists()


def test_a_users_picture_under_the_projections_name_is_kept(cli, tiny_model_dir, tmp_path) -> None:
    out = tmp_path / "a"
    out.mkdir()
    (out / "pca.png").write_bytes(b"mine")
    result = cli(
        "analyze", "--model", tiny_model_dir, "--langs", "en,de", "--n", "8",
        "--projection", "pca", "--out", out,
    )  # fmt: skip
    assert result.code != 0 and "pca.png" in result.err
    assert (out / "pca.png").read_bytes() == b"mine"
