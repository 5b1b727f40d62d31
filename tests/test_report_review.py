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

import numpy as np
import pytest

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
    assert header[-3:] == ["source", "clusters", "joint_items"] and header == COLUMNS
    assert header[:3] == ["baseline", "run", "task"] and header[-4] == "only_run"
    assert [line[-3] for line in lines] == ["True", "True", "False", "False", "False"]
    assert {line[-2] for line in lines} == {""}  # rows resampled one by one
    assert {line[-1] for line in lines} == {"False"}  # no run says its task is parallel


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


# ---------------------------------------------------------------- baselines, pairs and plots


def test_an_mslt_run_is_measured_against_the_sslt_run_of_its_own_model(
    monkeypatch, tmp_path: Path
) -> None:
    """Two models, each with SSLT en and MSLT ar+de+zh: model B's MSLT run was compared with
    (and drawn as a gain over) model A's SSLT run, the first single-source run found. Each is
    measured against its own model's."""
    from test_significance import MSLT_SOURCES, write_run

    from mslt_it.report import write_report

    drawn = drawn_figures(monkeypatch)
    root = tmp_path / "eval"
    for model in ("modelA", "modelB"):
        write_run(root / model / "en", "sslt", ("en",), model=model)
        write_run(root / model / "mslt", "mslt", MSLT_SOURCES, model=model)
    text = write_report([root], tmp_path / "report").read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("### MSLT")]
    assert headings == [
        f"### MSLT ar+de+zh ({model}) vs SSLT en ({model}) (xnli)" for model in ("modelA", "modelB")
    ]
    titles = {name: axis.get_title() for name, axis in drawn.items() if name.startswith("gain")}
    assert set(titles) == {"gain.png", "gain-2.png"}
    assert "gain over SSLT en (modelA)" in titles["gain.png"]
    assert "gain over SSLT en (modelB)" in titles["gain-2.png"]
    legend = [t.get_text() for t in drawn["gain-2.png"].get_legend().get_texts()]
    assert "MSLT ar+de+zh (modelB)" in legend and "MSLT ar+de+zh (modelA)" not in legend


def test_a_model_without_its_own_sslt_run_is_not_compared_and_said_so(tmp_path: Path) -> None:
    """Model B has an MSLT run and no SSLT run: its gain over model A's SSLT run would be the
    models' difference. It is not compared, and the report says why."""
    from test_significance import MSLT_SOURCES, write_run

    from mslt_it.report import write_report

    root = tmp_path / "eval"
    write_run(root / "a" / "en", "sslt", ("en",), model="modelA")
    write_run(root / "a" / "mslt", "mslt", MSLT_SOURCES, model="modelA")
    write_run(root / "b" / "mslt", "mslt", MSLT_SOURCES, model="modelB")
    text = write_report([root], tmp_path / "report").read_text(encoding="utf-8")
    assert "### MSLT ar+de+zh (modelA) vs SSLT en (xnli)" in text
    assert "### MSLT ar+de+zh (modelB) vs" not in text
    note = next(line for line in text.splitlines() if line.startswith("Not compared"))
    assert note.startswith("Not compared: MSLT ar+de+zh (modelB) vs SSLT en: no SSLT run of")
    assert "(modelB)" in note.split(": ", 2)[2]
    assert "*MSLT ar+de+zh (modelB) − SSLT en*" not in text  # nor rolled up as a gain


def test_the_criteria_baseline_takes_single_runs_of_the_runs_own_model() -> None:
    """``sslt-measured`` keyed single runs by their source alone: model B's SSLT en and SSLT de
    overwrote model A's, and model A's MSLT de+en was guessed from model B's scores."""
    from mslt_it.report import single_source_baseline
    from mslt_it.report_results import Score

    scores = []
    for model, bg in (("A", 30.0), ("B", 90.0)):
        runs = [(f"SSLT {src} ({model})", (src,)) for src in ("en", "de")]
        for run, sources in [*runs, (f"MSLT de+en ({model})", ("de", "en"))]:
            scores += [
                Score(run, sources, "xnli", lang, "accuracy", bg if lang == "bg" else 50.0,
                      None, None, 10, 0.0, lang in sources, model=model)
                for lang in ("en", "de", "bg")
            ]  # fmt: skip
    results = Results(scores, False, [])
    singles = [f"SSLT {src} ({model})" for model in "AB" for src in ("en", "de")]
    found = single_source_baseline(results, ["MSLT de+en (A)", "MSLT de+en (B)"], singles)
    assert found == {"sslt-measured": [30.0, 90.0]}


def write_tasks(
    folder: Path, name: str, sources: tuple[str, ...], rows: dict[str, int], metric: str
) -> None:
    """results.json and predictions.jsonl of a run on several tasks (``rows`` per task)."""
    from test_significance import LANGS, correctness

    folder.mkdir(parents=True)
    records, tasks = [], {}
    for task, count in rows.items():
        languages = {}
        for lang in LANGS:
            right = correctness(name, lang, count)
            records += [
                {"task": task, "lang": lang, "id": f"{task}/{lang}/test/{i}", "gold": "yes",
                 "output": "yes" if ok else "no", "parsed": "yes" if ok else "no",
                 "correct": bool(ok), "invalid": False}
                for i, ok in enumerate(right)
            ]  # fmt: skip
            score = 100 * float(right.mean())
            languages[lang] = {"score": score, "ci95": [score - 5, score + 5], "n": count}
        tasks[task] = {"metric": metric, "languages": languages}
    lines = "".join(json.dumps(record) + "\n" for record in records)
    (folder / "predictions.jsonl").write_text(lines, encoding="utf-8")
    document = {"run": name, "model": "tiny", "adapter": {"sources": list(sources)}, "tasks": tasks}
    (folder / "results.json").write_text(json.dumps(document), encoding="utf-8")


def test_one_tasks_unpairable_rows_leave_the_other_tasks_comparisons(tmp_path: Path) -> None:
    """SSLT en scored 50 rows of pawsx and MSLT 100: the pair was "not compared" as a whole,
    and its xnli comparisons (the same rows) and gain plot were gone too."""
    from test_significance import MSLT_SOURCES

    from mslt_it.report import write_report

    root = tmp_path / "eval"
    write_tasks(root / "en", "sslt", ("en",), {"xnli": 100, "pawsx": 50}, "accuracy")
    write_tasks(root / "mslt", "mslt", MSLT_SOURCES, {"xnli": 100, "pawsx": 100}, "accuracy")
    write_report([root], tmp_path / "report")
    xnli = (tmp_path / "report" / "xnli" / "report.md").read_text(encoding="utf-8")
    pawsx = (tmp_path / "report" / "pawsx" / "report.md").read_text(encoding="utf-8")
    assert "### MSLT ar+de+zh vs SSLT en (xnli)" in xnli and "Not compared" not in xnli
    assert (tmp_path / "report" / "xnli" / "gain.png").exists()
    note = next(line for line in pawsx.splitlines() if line.startswith("Not compared"))
    assert note.startswith("Not compared: MSLT ar+de+zh vs SSLT en: the runs were scored on ")
    assert "different rows of pawsx/" in note
    assert "## Paired comparisons" not in pawsx
    assert not (tmp_path / "report" / "pawsx" / "gain.png").exists()


def test_comparisons_csv_names_the_metric_results_json_names(tmp_path: Path) -> None:
    """An exact_match task's comparisons were labelled "accuracy" (how its rows are counted),
    beside a scores table headed exact_match."""
    from test_significance import MSLT_SOURCES

    from mslt_it.report import write_report

    root = tmp_path / "eval"
    write_tasks(root / "en", "sslt", ("en",), {"aya": 100}, "exact_match")
    write_tasks(root / "mslt", "mslt", MSLT_SOURCES, {"aya": 100}, "exact_match")
    write_report([root], tmp_path / "report")
    with (tmp_path / "report" / "comparisons.csv").open(encoding="utf-8") as handle:
        assert {row["metric"] for row in csv.DictReader(handle)} == {"exact_match"}


def test_a_pair_asked_twice_is_compared_once(tmp_path: Path) -> None:
    """``compare=[pair, pair]`` gave the pair's table two rows per language, comparisons.csv
    two lines, and its summary each language twice."""
    from test_significance import MSLT_SOURCES, write_run

    from mslt_it.report import write_report

    root = tmp_path / "eval"
    write_run(root / "en", "sslt", ("en",))
    write_run(root / "mslt", "mslt", MSLT_SOURCES)
    write_run(root / "base", "base", ())
    pair = ("base", "SSLT en")
    text = write_report([root], tmp_path / "report", compare=[pair, pair]).read_text()
    assert text.count("### SSLT en vs base (xnli)") == 1
    section = text.split("### SSLT en vs base (xnli)")[1].split("###")[0]
    assert len([line for line in section.splitlines() if line.startswith("| bg |")]) == 1
    assert "sources of a run: en." in section
    with (tmp_path / "report" / "comparisons.csv").open(encoding="utf-8") as handle:
        lines = [row for row in csv.DictReader(handle) if row["baseline"] == "base"]
    assert len([row for row in lines if row["lang"] == "bg"]) == 1


def test_a_p_value_is_printed_on_its_side_of_alpha() -> None:
    """p = 0.0496 (significant) and 0.0504 (not) both printed 0.050, and only one was bold."""
    from mslt_it.comparisons import ALPHA, _p

    assert (_p(0.0496), _p(0.0504), _p(0.04996)) == ("0.0496", "0.050", "0.04996")
    assert (_p(0.123), _p(0.05), _p(0.0004)) == ("0.123", "0.050", "<0.001")
    for p in np.linspace(0.001, 0.2, 4001):
        shown = _p(float(p))
        assert (float(shown) < ALPHA) == (p < ALPHA), (p, shown)


def test_gain_figures_share_one_y_range_and_one_colour_per_run(monkeypatch, tmp_path) -> None:
    """gain.png and gain-2.png are read together: each was autoscaled to its own runs (a gain
    of 3 as tall as one of 9) and restarted the colour cycle (run 7 in run 1's colour)."""
    from mslt_it import report_plots

    drawn = drawn_figures(monkeypatch)
    pairs = [("ar", "de"), ("ar", "sw"), ("de", "sw"), ("ar", "zh"), ("de", "zh"), ("sw", "zh"),
             ("ar", "ru"), ("de", "ru"), ("ru", "zh")]  # fmt: skip
    written = report_plots.gain_plot(gain_results(pairs), tmp_path / "gain.png")
    assert written == ["gain.png", "gain-2.png"]
    first, second = drawn["gain.png"], drawn["gain-2.png"]
    assert first.get_ylim() == second.get_ylim()
    low, high = first.get_ylim()
    assert low <= 0 and high >= 9  # every gain drawn (1 to 9) within it
    runs = [f"MSLT {'+'.join(pair)}" for pair in pairs]
    by_run = {}
    for axis in (first, second):
        for container in axis.containers:
            label = container.get_label()
            if label in runs:
                by_run[label] = {bar.get_facecolor() for bar in container.patches}
    assert set(by_run) == set(runs) and all(len(found) == 1 for found in by_run.values())
    assert len({next(iter(found)) for found in by_run.values()}) == len(runs)


def test_a_language_the_baseline_lacks_is_a_grey_cross_in_the_gain_plot(
    monkeypatch, tmp_path: Path
) -> None:
    """The gain plot's languages were the baseline's: one only the MSLT run was evaluated on
    vanished without the grey × that marks one the MSLT run lacks."""
    from mslt_it import report_plots

    drawn = drawn_figures(monkeypatch)
    results = gain_results([("ar", "de")])
    results = Results(
        [s for s in results.scores if not (s.run == "SSLT en" and s.lang == "sw")], False, []
    )
    report_plots.gain_plot(results, tmp_path / "gain.png")
    axis = drawn["gain.png"]
    assert [tick.get_text() for tick in axis.get_xticklabels()] == ["en", "ar", "de", "sw"]
    legend = [text.get_text() for text in axis.get_legend().get_texts()]
    assert "not evaluated" in legend
    (cross,) = [line for line in axis.get_lines() if line.get_marker() == "x"]
    assert list(cross.get_xdata()) == [3.0] and list(cross.get_ydata()) == [0.0]


def test_the_k_sweep_band_is_an_interval_of_the_plotted_mean(monkeypatch, tmp_path) -> None:
    """The band was the mean of the languages' own intervals: targets all at 50 with wide
    intervals got a wide band around a mean that no resample of them moves, and targets from 20
    to 80 with narrow intervals a narrow one. It is a bootstrap over the target languages of
    the plotted mean, and the legend says so."""
    from mslt_it import report_plots
    from mslt_it.report_results import Score

    drawn = drawn_figures(monkeypatch)
    langs = ("en", "ar", "de", "zh", "sw", "hi")
    runs = {"SSLT en": ("en",), "MSLT ar+de": ("ar", "de"), "MSLT ar+de+zh": ("ar", "de", "zh")}
    spread = {"en": 20.0, "sw": 50.0, "hi": 80.0}

    def score(run: str, lang: str) -> Score:
        sources = runs[run]
        value = spread.get(lang, 50.0) if len(sources) == 3 else 50.0
        width = 1.0 if len(sources) == 3 else 20.0
        return Score(run, sources, "xnli", lang, "accuracy", value, value - width,
                     value + width, 100, 0.0, lang in sources)  # fmt: skip

    results = Results([score(run, lang) for run in runs for lang in langs], False, [])
    assert report_plots.k_sweep_plot(results, tmp_path / "k_sweep.png")
    axis = drawn["k_sweep.png"]
    (band,) = axis.collections
    points = band.get_paths()[0].vertices
    at = {k: sorted(y for x, y in points if x == k) for k in (1, 2, 3)}
    assert at[1][0] == at[1][-1] == pytest.approx(50.0)  # every target at 50: no spread
    assert at[3][0] < 35 and at[3][-1] > 65  # targets 20, 50, 80: the mean moves with them
    legend = [text.get_text() for text in axis.get_legend().get_texts()]
    assert report_plots.KSWEEP_BAND in legend and "target languages resampled" in legend[1]


def write_entity_run(folder: Path, field: str, value: Any) -> None:
    """A user's NER run whose row 0 of de has ``field`` set to ``value``."""
    folder.mkdir(parents=True)
    records, languages = [], {}
    for lang in ("en", "de"):
        for i in range(10):
            record = {"task": "wikiann", "lang": lang, "id": f"wikiann/{lang}/test/{i}",
                      "tokens": ["John", "lives"], "ner_tags": [1, 0], "parsed": [["PER", "John"]],
                      "gold": [["PER", "John"]], "output": "PER: John", "invalid": False,
                      "correct": True}  # fmt: skip
            if lang == "de" and i == 0:
                record[field] = value
            records.append(record)
        languages[lang] = {"score": 100.0, "ci95": [100.0, 100.0], "n": 10}
    lines = "".join(json.dumps(record) + "\n" for record in records)
    (folder / "predictions.jsonl").write_text(lines, encoding="utf-8")
    document = {"run": "a", "model": "tiny", "adapter": {"sources": ["en"]},
                "tasks": {"wikiann": {"metric": "f1", "languages": languages}}}  # fmt: skip
    (folder / "results.json").write_text(json.dumps(document), encoding="utf-8")


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("parsed", "PER John", "[type, text] pairs"),
        ("parsed", [["PER"]], "[type, text] pairs"),
        ("ner_tags", "B O", "tag ids 0 to 6"),
        ("ner_tags", ["B", "O"], "tag ids 0 to 6"),
        ("ner_tags", [99, 0], "tag ids 0 to 6"),
        ("tokens", "John lives", "a list of words"),
    ],
)
def test_a_malformed_entity_row_is_a_one_line_error(
    cli, tmp_path: Path, field: str, value: Any, allowed: str
) -> None:
    """An entity row of a user's predictions.jsonl whose parsed is not a list of pairs, or
    whose ner_tags are text or out of range, stopped the report with "internal error … this is
    a bug". It is a one-line error naming the file, the row, the field and what is allowed."""
    from conftest import assert_one_line_error

    write_entity_run(tmp_path / "eval" / "a", field, value)
    result = cli("report", tmp_path / "eval", "--out", tmp_path / "report")
    assert_one_line_error(
        result, "predictions.jsonl", "'wikiann/de/test/0'", f"{field} is", "allowed:", allowed
    )


def test_one_model_spelled_two_ways_is_one_model(tmp_path: Path) -> None:
    """The SSLT run evaluated with ``--model models/tiny`` and the MSLT run with its absolute
    path hold one model (their settings record one digest of its files): the MSLT run is still
    measured against that SSLT run, and no "run | model" table shows it as two models."""
    from test_significance import MSLT_SOURCES, write_run

    from mslt_it.report import write_report

    root = tmp_path / "eval"
    same = {"model_identity": {"sha256": "ab" * 32}}
    write_run(root / "en", "sslt", ("en",), model="models/tiny", settings=same)
    write_run(root / "mslt", "mslt", MSLT_SOURCES, model="/abs/models/tiny", settings=same)
    text = write_report([root], tmp_path / "report").read_text(encoding="utf-8")
    assert "### MSLT ar+de+zh vs SSLT en (xnli)" in text, text
    assert "| run | model |" not in text and "Not compared" not in text

    other = {"model_identity": {"sha256": "cd" * 32}}  # another model's files: two models
    write_run(root / "other", "mslt", MSLT_SOURCES, model="/abs/models/tiny", settings=other)
    text = write_report([root], tmp_path / "report2").read_text(encoding="utf-8")
    assert "| run | model |" in text
    assert "no SSLT run of its base model" in text


def test_a_results_file_with_a_byte_order_mark_or_a_fifo_is_said_plainly(
    cli, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """A byte-order mark (an editor's) was "Unexpected UTF-8 BOM (decode using utf-8-sig)",
    Python's advice; a FIFO named results.json was "neither a folder nor a results.json"."""
    from conftest import assert_one_line_error

    evaluation = tmp_path / "ev"
    made = cli("eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en", "--limit",
               "2", "--mode", "rank", "--bootstrap-samples", "0", "--out", evaluation)  # fmt: skip
    assert made.code == 0
    copy = tmp_path / "copy" / "a"
    copy.mkdir(parents=True)
    for name in ("results.json", "predictions.jsonl"):
        (copy / name).write_bytes((evaluation / name).read_bytes())
    results = copy / "results.json"
    results.write_bytes(b"\xef\xbb\xbf" + results.read_bytes())
    assert cli("report", copy.parent, "--out", tmp_path / "r").code == 0
    fifo = tmp_path / "f" / "results.json"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    result = cli("report", fifo, "--out", tmp_path / "r2")
    assert_one_line_error(result, "is a FIFO (named pipe), neither a folder nor a results.json")


def test_an_mslt_run_is_measured_against_the_sslt_run_of_its_own_evaluation(tmp_path: Path):
    """Two experiments reported together: the first one's SSLT run was the second's baseline
    too, scored on other rows, and the pair went under "Not compared"."""
    from mslt_it.report_results import load_results, sslt_baseline

    for experiment in ("one", "two"):
        evaluation = tmp_path / experiment / "eval"
        write_results(evaluation / "en", f"{experiment}-en", ["en"], "xnli", ["en", "sw"])
        write_results(evaluation / "mix", f"{experiment}-mix", ["ar", "de", "en"], "xnli", ["sw"])
    results = load_results([tmp_path / "one" / "eval", tmp_path / "two" / "eval"])
    for experiment in ("one", "two"):
        mslt = next(r for r, f in results.files.items() if f.parent.name == "mix"
                    and f.parents[2].name == experiment)  # fmt: skip
        baseline = sslt_baseline(results, mslt, "xnli")
        assert results.files[baseline].parents[2].name == experiment


def test_an_mslt_run_is_measured_against_an_sslt_run_on_its_own_rows(tmp_path: Path):
    """Single-run evaluations side by side share no evaluation folder: the first SSLT run was
    taken, scored on other rows, where another was scored on the MSLT run's rows."""
    from mslt_it.report_results import load_results, sslt_baseline

    folders = {}
    for name, sources, rows in (("a_s", ["en"], "r4"), ("a_m", ["de", "en"], "r4"),
                                ("b_s", ["en"], "r6"), ("b_m", ["de", "en"], "r6")):  # fmt: skip
        folder = tmp_path / "sep" / name
        write_results(folder, name, sources, "xnli", ["en", "sw"])
        document = json.loads((folder / "results.json").read_text())
        document["settings"] = {"tasks": [{"task": "xnli", "rows_sha256": {"sw": rows}}]}
        (folder / "results.json").write_text(json.dumps(document))
        folders[name] = folder
    results = load_results(list(folders.values()))
    label = {f.parent.name: run for run, f in results.files.items()}
    assert sslt_baseline(results, label["b_m"], "xnli") == label["b_s"]
    assert sslt_baseline(results, label["a_m"], "xnli") == label["a_s"]


def test_a_symlink_loop_as_out_or_run_dir_is_one_line(cli, tmp_path: Path) -> None:
    """The check that a report inside an evaluation reads it resolved the paths first: a loop
    was Python's RuntimeError there."""
    write_results(tmp_path / "eval" / "en", "en", ["en"], "xnli", ["en"])
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    result = cli("report", tmp_path / "eval", "--out", tmp_path / "a")
    assert result.code == 2 and "symlink loop" in result.err and "internal" not in result.err
