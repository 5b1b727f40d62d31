"""The demo recipe end to end, as a newcomer runs it: `mslt-it run recipes/demo.yaml`.

It is the proof that the pipeline learns and that the synthetic world shows what MSLT is for:
both runs score ≥ 90 on their own sources, the three-source run beats English alone by ≥ 10
points on the languages neither saw (intervals apart), the report says the data is synthetic,
and a second run finds every step done and redoes nothing.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from mslt_it.paths import RECIPES_DIR


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo run in a fresh folder (its `runs/` is relative to the working directory)."""
    import os

    from mslt_it.cli import main

    workdir = tmp_path_factory.mktemp("demo")
    shutil.copy(RECIPES_DIR / "demo.yaml", workdir / "demo.yaml")
    before = Path.cwd()
    os.chdir(workdir)
    try:
        with pytest.raises(SystemExit) as done:
            main(["run", "demo.yaml"])
    finally:
        os.chdir(before)
    assert done.value.code == 0
    return workdir / "runs" / "demo"


def score_rows(report: Path) -> list[dict[str, str]]:
    with (report / "scores.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_both_runs_learn_their_source_languages(demo: Path) -> None:
    results = json.loads(next((demo / "eval").rglob("results.json")).read_text())
    assert results, "no evaluation results"
    rows = score_rows(demo / "report")
    sources = {"SSLT en": ["en"], "MSLT ar+de+zh": ["ar", "de", "zh"]}
    for run, langs in sources.items():
        scores = {row["lang"]: float(row["score"]) for row in rows if row["run"] == run}
        assert scores, (run, rows[:3])
        for lang in langs:
            assert scores[lang] >= 90, (run, lang, scores)


@pytest.mark.slow
def test_multi_source_training_transfers_to_unseen_languages(demo: Path) -> None:
    """The paper's effect in this world: MSLT beats SSLT on every language neither trained on
    by ≥ 10 points on average, and the two zero-shot averages' 95% intervals do not overlap."""
    results = {}
    for path in (demo / "eval").rglob("results.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        results[tuple((data.get("adapter") or {}).get("sources") or ())] = data["tasks"]["xnli"]
    sslt, mslt = results[("en",)], results[("ar", "de", "zh")]
    unseen = [lang for lang in sslt["languages"] if lang not in {"en", "ar", "de", "zh"}]

    def mean(run: dict) -> float:
        return sum(run["languages"][lang]["score"] for lang in unseen) / len(unseen)

    assert mean(mslt) - mean(sslt) >= 10, (mean(mslt), mean(sslt))
    sslt_high = sslt["average_targets"]["ci95"][1]
    mslt_low = mslt["average_targets"]["ci95"][0]
    assert mslt_low > sslt_high, (mslt["average_targets"], sslt["average_targets"])


@pytest.mark.slow
def test_report_says_the_data_is_synthetic_and_shows_plots(demo: Path) -> None:
    report = demo / "report"
    text = (report / "report.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in text
    for plot in ("heatmap.png", "gain.png"):
        assert (report / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({plot})" in text


@pytest.mark.slow
def test_a_second_run_redoes_nothing(demo: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    adapters = sorted(demo.glob("adapters/*/adapter_model.safetensors"))
    stamps = [path.stat().st_mtime_ns for path in adapters]
    monkeypatch.chdir(demo.parent.parent)
    result = cli("run", "demo.yaml", "--dry-run")
    assert result.code == 0, result.err
    assert "todo" not in result.out and "waiting" not in result.out, result.out
    result = cli("run", "demo.yaml")
    assert result.code == 0, result.err
    assert [path.stat().st_mtime_ns for path in adapters] == stamps


@pytest.mark.slow
def test_multi_source_representations_are_more_language_agnostic(demo: Path, cli) -> None:
    """`mslt-it analyze` on the two adapters, at the representation the answer is read from (the
    last token of the chat-formatted hypothesis): MSLT's are more alike across languages (CKA
    up) and tell the language apart less (language-ID probe down) than SSLT's."""
    out = demo / "analysis"
    result = cli("analyze", "--model", demo / "tiny-model", "--adapter", demo / "adapters" / "en",
                 "--adapter", demo / "adapters" / "ar+de+zh", "--langs", "en,de,ar,sw,zh,th,tr",
                 "--data", "synthetic", "--n", "300", "--field", "hypothesis", "--chat-template",
                 "--pooling", "last", "--center", "--out", out)  # fmt: skip
    assert result.code == 0, result.err
    models = json.loads((out / "analysis.json").read_text(encoding="utf-8"))["models"]
    last = {m["label"]: m["layers"][-1] for m in models}
    sslt, mslt = last["SSLT en"], last["MSLT ar+de+zh"]
    assert mslt["cka"]["value"] > sslt["cka"]["value"] + 0.03  # measured: 0.221 against 0.106
    assert mslt["lid"]["value"] < sslt["lid"]["value"]  # measured: 0.9886 against 0.9905


@pytest.mark.slow
def test_the_transfer_effect_holds_on_another_seed(tmp_path: Path, monkeypatch) -> None:
    """The demo with data and training seed 2 instead of 0 (a seed of BENCHMARKS.md's three:
    measured there +31.6 points; seed 1's +13.9 is left to the benchmark, too close to the bar
    to assert): each run learns its sources, and three sources beat English alone by ≥ 10
    points on the languages neither saw."""
    import yaml

    from mslt_it.cli import main

    recipe = yaml.safe_load((RECIPES_DIR / "demo.yaml").read_text(encoding="utf-8"))
    recipe["data"]["seed"] = recipe["train"]["sft"]["seed"] = 2
    recipe["name"] = "demo-seed2"
    (tmp_path / "seed2.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["run", "seed2.yaml", "--out", str(tmp_path / "run")])
    assert done.value.code == 0
    rows = score_rows(tmp_path / "run" / "report")
    scores = {(row["run"], row["lang"]): float(row["score"]) for row in rows}
    sources = {"SSLT en": ["en"], "MSLT ar+de+zh": ["ar", "de", "zh"]}
    for run, langs in sources.items():
        assert all(scores[run, lang] >= 90 for lang in langs), (run, scores)
    unseen = sorted({lang for _, lang in scores} - {"en", "ar", "de", "zh"})
    assert len(unseen) == 11

    def mean(run: str) -> float:
        return sum(scores[run, lang] for lang in unseen) / len(unseen)

    assert mean("MSLT ar+de+zh") - mean("SSLT en") >= 10, (mean("MSLT ar+de+zh"), mean("SSLT en"))
