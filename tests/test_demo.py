"""The demo recipe end to end, as a newcomer runs it: `mslt-it run recipes/demo.yaml`.

It is the proof that the pipeline learns: both runs must score clearly above chance (1/3) on
their own source languages, the report must say the data is synthetic, and a second run must
find every step done and redo nothing.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from mslt_it.paths import RECIPES_DIR

CHANCE = 100 / 3


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
            assert scores[lang] > CHANCE + 20, (run, lang, scores)


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
