"""What a report shows is what was measured: analysis pictures as analyze recorded them, every
picture link of a report of several tasks resolving to a file it wrote (each task showing its
own runs' curves), and the heatmap's colours on the scores' whole scale."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from mslt_it.io import FINGERPRINT_BYTES, seal
from mslt_it.outputs import ANALYSIS_KIND
from mslt_it.report_results import Results


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


# ------------------------------------------------------------------------------ second review


def write_curves(folder: Path, loss: float) -> Path:
    """An adapter folder whose run.json has one en loss curve starting at ``loss``."""
    folder.mkdir(parents=True)
    run = {
        "dataset": {"sources": ["en"], "counts": {"en": 10}},
        "curves": {"loss_by_language": {"en": [[0, loss], [10, loss / 2]]}},
    }
    (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return folder


def test_runs_whose_names_clean_to_one_stem_keep_their_own_curves(tmp_path: Path) -> None:
    """Two SSLT en runs in folders 实验甲 and 实验乙 are labelled apart by their folders, which
    a file name cannot hold: both were cleaned to ``SSLT_en``, the second run's curves overwrote
    the first's, and both sections showed the same picture."""
    from mslt_it.report import write_report

    for folder, loss in (("实验甲", 1.0), ("实验乙", 9.0)):
        path = str(write_curves(tmp_path / "adapters" / folder, loss))
        write_results(tmp_path / "eval" / folder, "en", ["en"], "xnli", ["en", "de"], path=path)
    text = write_report([tmp_path / "eval"], tmp_path / "report").read_text(encoding="utf-8")
    curves = text[text.index("## Training curves") :]
    sections = {
        block.split("\n", 1)[0]: [link for link in IMAGE_LINK.findall(block) if "-loss" in link]
        for block in curves.split("### ")[1:]
    }
    assert len(sections) == 2 and all(len(links) == 1 for links in sections.values())
    (first,), (second,) = sections.values()
    assert first != second
    assert (tmp_path / "report" / first).read_bytes() != (tmp_path / "report" / second).read_bytes()


def test_a_clean_label_keeps_its_file_stem_and_no_two_labels_share_one() -> None:
    """Labels a report prints (``SSLT en``) keep the names earlier reports gave their files;
    labels that cleaning would merge (``seed.1``, ``seed_1``), differ only in case (one file
    on a case-insensitive disk) or spell another's stem get stems of their own."""
    from mslt_it.report_curves import file_stem, unique_stems

    assert file_stem("SSLT en") == "SSLT_en" and file_stem("MSLT ar+de+zh") == "MSLT_ar+de+zh"
    assert file_stem("seed.1") != file_stem("seed_1") == "seed_1"
    assert re.fullmatch(r"seed_1-[0-9a-f]{8}", file_stem("seed.1"))
    names = ["seed.1", "seed_1", "a b", "a_b", "A_B", file_stem("seed.1"), "x/y", "x\\y"]
    stems = unique_stems(names)
    assert len({stem.casefold() for stem in stems.values()}) == len(names)
    assert all(re.fullmatch(r"[A-Za-z0-9+_-]+", stem) for stem in stems.values())


def gain_results(multi: list[tuple[str, ...]]) -> Any:
    """Results of SSLT en and one MSLT run per source set of ``multi``, on en, ar, de, sw."""
    from mslt_it.report_results import Score

    runs = [("SSLT en", ("en",)), *((f"MSLT {'+'.join(s)}", s) for s in multi)]
    scores = [
        Score(run=run, sources=sources, task="xnli", lang=lang, metric="accuracy",
              score=40.0 + number, low=None, high=None, n=10, invalid_rate=0.0,
              is_source=lang in sources)
        for number, (run, sources) in enumerate(runs) for lang in ("en", "ar", "de", "sw")
    ]  # fmt: skip
    return Results(scores, False, [])


def drawn_figures(monkeypatch) -> dict[str, Any]:
    """The figures the report's plots save, by file name (each still saved)."""
    from mslt_it import report_plots

    drawn: dict[str, Any] = {}
    save = report_plots.save_figure

    def keep(figure: Any, path: Path) -> None:
        drawn[path.name] = figure.axes[0]
        save(figure, path)

    monkeypatch.setattr(report_plots, "save_figure", keep)
    return drawn


def test_the_gain_plot_hatches_the_languages_a_run_trained_on(monkeypatch, tmp_path) -> None:
    """SSLT en against MSLT ar+de: the bars of en, ar and de are in-language learning, and were
    drawn like sw's zero-shot transfer. They are hatched, in the run's colour, with one legend
    entry saying why."""
    from mslt_it import report_plots

    drawn = drawn_figures(monkeypatch)
    written = report_plots.gain_plot(gain_results([("ar", "de")]), tmp_path / "gain.png")
    assert written == ["gain.png"]
    axis = drawn["gain.png"]
    bars = [patch for patch in axis.patches if patch.get_height() == patch.get_height()]
    langs = [tick.get_text() for tick in axis.get_xticklabels()]
    assert langs == ["en", "ar", "de", "sw"] and len(bars) == 4
    assert [bar.get_hatch() for bar in bars] == ["//", "//", "//", None]
    assert len({bar.get_facecolor() for bar in bars}) == 1
    legend = [text.get_text() for text in axis.get_legend().get_texts()]
    assert legend == ["MSLT ar+de", report_plots.SOURCE_LABEL]


def test_every_mslt_run_is_drawn_in_a_gain_plot(monkeypatch, tmp_path: Path) -> None:
    """Nine MSLT runs: only the first six were drawn, and the report said nothing of the other
    three. Each figure holds six at most (gain.png, gain-2.png), and report.md shows both."""
    from mslt_it import report, report_plots

    drawn = drawn_figures(monkeypatch)
    pairs = [("ar", "de"), ("ar", "sw"), ("de", "sw"), ("ar", "zh"), ("de", "zh"), ("sw", "zh"),
             ("ar", "ru"), ("de", "ru"), ("ru", "zh")]  # fmt: skip
    results = gain_results(pairs)
    written = report_plots.make_plots(results, tmp_path)
    assert [name for name in written if name.startswith("gain")] == ["gain.png", "gain-2.png"]
    legends = {
        name: [t.get_text() for t in drawn[name].get_legend().get_texts()]
        for name in ("gain.png", "gain-2.png")
    }
    shown = [run for names in legends.values() for run in names if run.startswith("MSLT")]
    assert shown == [f"MSLT {'+'.join(pair)}" for pair in pairs]
    assert len([run for run in legends["gain.png"] if run.startswith("MSLT")]) == 6
    text = report.markdown(results, written, "", "", None)
    for name in ("gain.png", "gain-2.png"):
        assert f"]({name})" in text and (tmp_path / name).stat().st_size > 0


def test_comparisons_mark_the_languages_a_run_trained_on(tmp_path: Path) -> None:
    """A significant difference on a run's own source is in-language learning: comparisons.csv
    says which rows are sources (a column appended after the others), the table names them,
    and the summary line lists targets and sources apart."""
    from mslt_it.comparisons import (
        AVERAGE,
        COLUMNS,
        RunRows,
        compare_runs,
        markdown,
        write_comparisons,
    )

    def run(name: str, sources: tuple[str, ...], right: dict[str, int]) -> RunRows:
        rows = {
            lang: {str(i): float(i < count) for i in range(60)} for lang, count in right.items()
        }
        return RunRows(name, sources, {"xnli": "accuracy"}, {"xnli": rows})

    baseline = run("SSLT en", ("en",), {"en": 60, "de": 30, "sw": 0, "hi": 30})
    mslt = run("MSLT ar+de", ("ar", "de"), {"en": 0, "de": 30, "sw": 60, "hi": 30})
    rows = compare_runs(baseline, mslt, samples=200)
    assert {r.lang: r.source for r in rows} == {
        "en": True, "de": True, "sw": False, "hi": False, AVERAGE: False
    }  # fmt: skip
    text = markdown(rows)
    assert "| en (source) |" in text and "| de (source) |" in text and "| sw |" in text
    assert "Significant after Holm: targets: sw; sources of a run: en." in text
    none = markdown([r for r in rows if r.lang in ("de", "hi")])
    assert "Significant after Holm: targets: none; sources of a run: none." in none
    write_comparisons(rows, tmp_path / "comparisons.csv")
    with (tmp_path / "comparisons.csv").open(encoding="utf-8") as handle:
        header, *lines = list(csv.reader(handle))
    assert header[-1] == "source" and header[:-1] == COLUMNS[:-1]
    assert header[:3] == ["baseline", "run", "task"] and header[-2] == "only_run"
    assert [line[-1] for line in lines] == ["True", "True", "False", "False", "False"]


def test_the_scores_table_says_when_runs_average_other_targets(tmp_path: Path) -> None:
    """SSLT en's avg (targets) leaves en out and MSLT ar+de's keeps it: two means over other
    languages side by side, without a word. A sentence says so where it is true, and only
    there: runs whose sources leave the same targets get none."""
    from mslt_it.report import OWN_TARGETS, own_targets_note, write_report

    for name, sources in (("en", ["en"]), ("ar+de", ["ar", "de"])):
        write_results(tmp_path / "eval" / name, name, sources, "xnli", ["en", "ar", "de", "sw"])
    text = write_report([tmp_path / "eval"], tmp_path / "report").read_text(encoding="utf-8")
    table_end = text.index("Averages are unweighted")
    note = text.index(OWN_TARGETS)
    assert table_end < note and "paired comparisons below average" not in text  # none made
    assert own_targets_note(gain_results([("ar", "de")]), compared=True)[0].endswith(
        "the paired comparisons below average the languages that are a source of neither run."
    )
    alone = gain_results([]).scores  # SSLT en on en, ar, de, sw
    again = [replace(s, run="SSLT en (gen)") for s in alone]  # the same sources
    assert own_targets_note(Results([*alone, *again], False, []), compared=True) == []
    fewer = [s for s in alone if s.lang != "sw"]  # the same sources, other languages
    mixed = Results([*fewer, *again], False, [])
    assert own_targets_note(mixed, compared=False) == []


def test_a_bootstrap_p_value_is_never_zero() -> None:
    """A run better on every row put every resample on one side: p was 0.0000 in
    comparisons.csv, a certainty no bootstrap gives. The add-one form makes the smallest p
    2 / (B + 1); identical runs still give 1."""
    import numpy as np

    from mslt_it.stats import paired_bootstrap, paired_mean_bootstrap

    worse, better = np.zeros(50), np.ones(50)
    assert paired_bootstrap(worse, better, "accuracy", 999, 0).p_value == 2 / 1000
    assert paired_bootstrap(better, worse, "accuracy", 999, 0).p_value == 2 / 1000
    pairs = [(worse, better), (worse[:10], better[:10])]
    assert paired_mean_bootstrap(pairs, "accuracy", 499, 0).p_value == 2 / 500
    counts = np.array([[1, 1, 1]] * 20, dtype=float)
    missed = np.array([[0, 1, 1]] * 20, dtype=float)
    assert paired_bootstrap(missed, counts, "f1", 99, 0).p_value == 2 / 100
    assert paired_bootstrap(counts, counts.copy(), "f1", 99, 0).p_value == 1.0
