"""What a report shows is what was measured: analysis pictures as analyze recorded them, every
picture link of a report of several tasks resolving to a file it wrote (each task showing its
own runs' curves), and the heatmap's colours on the scores' whole scale."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from mslt_it.io import FINGERPRINT_BYTES, seal
from mslt_it.outputs import ANALYSIS_KIND


def write_results(
    folder: Path, run: str, sources: list[str], task: str, langs: list[str], **adapter
):
    """A results.json of ``run`` on ``task`` (no predictions: the report's table needs none)."""
    folder.mkdir(parents=True)
    languages = {lang: {"score": 40.0, "n": 10, "ci95": [35.0, 45.0]} for lang in langs}
    document = {
        "kind": "mslt-it eval results", "run": run, "mode": "rank", "model": "/models/tiny",
        "backend": "hf", "data": "synthetic",
        "adapter": {"sources": sources, "name": run, **adapter},
        "tasks": {task: {"metric": "accuracy", "languages": languages}},
    }  # fmt: skip
    (folder / "results.json").write_text(json.dumps(document), encoding="utf-8")


def digest(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def test_analysis_pictures_are_copied_only_as_analysis_json_records_them(
    cli, tmp_path: Path
) -> None:
    """A picture put in place of analyze's (another report's gain.png as tsne.png) was copied
    and shown under the analysis's numbers; a 300 MB one was copied whole. Each is left out,
    named in a note, as are one too large to be recorded by content and a FIFO; the picture
    analyze drew is copied byte for byte."""
    write_results(tmp_path / "eval" / "en", "en", ["en"], "xnli", ["en"], sha256="a" * 64)
    analysis = tmp_path / "analysis"
    analysis.mkdir()
    drawn = {name: f"PNG drawn: {name}".encode() for name in ("tsne.png", "layers.png")}
    for name, content in drawn.items():
        (analysis / name).write_bytes(content)
    (analysis / "tsne.png").write_bytes(b"PNG of another report's gain plot")
    large = analysis / "cka.png"
    with large.open("wb") as handle:  # its digest is right: only its size keeps it out
        handle.truncate(FINGERPRINT_BYTES + 1)
    os.mkfifo(analysis / "pca.png")  # would block a copy
    document = {
        "kind": ANALYSIS_KIND, "meanings": {"cka": "MEANING"},
        "inputs": {"adapters": [{"path": "adapters/en", "sha256": "a" * 64}]},
        "plots": ["tsne.png", "layers.png", "cka.png", "pca.png"],
        "files": {
            **{name: digest(content) for name, content in drawn.items()},
            "cka.png": digest(bytes(FINGERPRINT_BYTES + 1)), "pca.png": digest(b""),
        },
    }  # fmt: skip
    (analysis / "analysis.json").write_text(json.dumps(seal(document)), encoding="utf-8")
    result = cli("report", tmp_path / "eval", "--out", tmp_path / "report")
    assert result.code == 0, result.err
    report = tmp_path / "report"
    text = (report / "report.md").read_text(encoding="utf-8")
    assert "MEANING" in text
    assert (report / "analysis0_layers.png").read_bytes() == drawn["layers.png"]
    assert "](analysis0_layers.png)" in text
    for name in ("tsne.png", "cka.png", "pca.png"):
        assert not (report / f"analysis0_{name}").exists()
        assert f"analysis0_{name}" not in text
    note = next(line for line in text.splitlines() if line.startswith("Pictures left out"))
    assert "tsne.png" in note and "cka.png" in note and "pca.png" in note
    assert "layers.png" not in note


def write_adapter(folder: Path, sources: list[str]) -> Path:
    """An adapter folder whose run.json has a loss curve per source (what the report draws)."""
    folder.mkdir(parents=True)
    curves = {lang: [[0, 2.0], [10, 1.0]] for lang in sources}
    run = {
        "dataset": {"sources": sources, "counts": {lang: 100 for lang in sources}},
        "curves": {"loss_by_language": curves},
    }
    (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return folder


IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


def test_every_picture_link_of_a_report_of_two_tasks_resolves(cli, tmp_path: Path) -> None:
    """xnli runs in one evaluation, a pawsx run in another: the combined report.md linked the
    training curves without their task's folder (files that were not there), the pawsx
    section drew the curves of runs evaluated on xnli only, and an analysis among the results
    was an internal error."""
    adapters = tmp_path / "adapters"
    for run, sources in (("en", ["en"]), ("ar+de+zh", ["ar", "de", "zh"])):
        path = str(write_adapter(adapters / run, sources))
        write_results(tmp_path / "eval" / run, run, sources, "xnli", ["en", "ar", "sw"], path=path)
    (tmp_path / "eval" / "analysis").mkdir()
    (tmp_path / "eval" / "analysis" / "cka.png").write_bytes(b"PNG drawn")
    document = {
        "kind": ANALYSIS_KIND,
        "plots": ["cka.png"],
        "files": {"cka.png": digest(b"PNG drawn")},
    }
    (tmp_path / "eval" / "analysis" / "analysis.json").write_text(json.dumps(seal(document)))
    path = str(write_adapter(adapters / "de", ["de"]))
    write_results(tmp_path / "eval3" / "de", "de", ["de"], "pawsx", ["en", "de"], path=path)
    result = cli("report", tmp_path / "eval", tmp_path / "eval3", "--out", tmp_path / "report")
    assert result.code == 0, result.err
    reports = sorted((tmp_path / "report").rglob("report.md"))
    assert len(reports) == 3
    for report in reports:
        links = IMAGE_LINK.findall(report.read_text(encoding="utf-8"))
        assert links, report
        for link in links:
            assert (report.parent / link).is_file(), f"{report}: {link}"
    top = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "](xnli/MSLT_ar+de+zh-loss.png)" in top and "](pawsx/SSLT_de-loss.png)" in top
    assert "/analysis0_cka.png)" in top
    pawsx = (tmp_path / "report" / "pawsx" / "report.md").read_text(encoding="utf-8")
    assert "SSLT_de-loss.png" in pawsx
    assert "MSLT ar+de+zh" not in pawsx and "SSLT en" not in pawsx
    assert not list((tmp_path / "report" / "pawsx").glob("MSLT*"))
    xnli = (tmp_path / "report" / "xnli" / "report.md").read_text(encoding="utf-8")
    assert "SSLT de" not in xnli and not list((tmp_path / "report" / "xnli").glob("SSLT_de*"))


def test_the_heatmap_colours_scores_on_their_whole_scale(monkeypatch, tmp_path: Path) -> None:
    """Every cell 30 and one 25: stretched to the data, the 25 was the darkest colour on a
    25..30 bar. The scale is 0..100 whatever the scores, as CKA's is 0..1."""
    from mslt_it import report_plots
    from mslt_it.report_results import Results, Score

    scores = [
        Score(run=run, sources=(), task="xnli", lang=lang, metric="accuracy",
              score=25.0 if (run, lang) == ("b", "de") else 30.0, low=None, high=None, n=10,
              invalid_rate=0.0, is_source=False)
        for run in ("a", "b") for lang in ("en", "de")
    ]  # fmt: skip
    drawn = []
    monkeypatch.setattr(report_plots, "save_figure", lambda figure, path: drawn.append(figure))
    report_plots.heatmap(Results(scores, False, []), tmp_path / "heatmap.png")
    (image,) = drawn[0].axes[0].get_images()
    assert image.get_clim() == (0.0, 100.0)
