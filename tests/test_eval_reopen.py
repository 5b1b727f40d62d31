"""An evaluation made again keeps exactly the predictions whose inputs did not change.

Generated settings before and after a change (rows of some languages edited, languages added
or dropped, a task's template or a run-wide setting changed): the chunks kept are those of the
(task, language) cells whose every input is the same, computed here independently of
:func:`mslt_it.evaluation.store.cell_identity`. A finished run reopened gives back every
prediction it held, in its chunks."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mslt_it.evaluation.store import (
    PREDICTIONS,
    RESULTS,
    RunStore,
    chunk_cell,
    jsonl,
    reopen_run,
    settings_sha256,
)

TASKS = ("xnli", "pawsx", "my.task")
LANGS = ("en", "de", "sw", "zh-Hans")


def run_settings(cells: dict[str, dict[str, str]], run_wide: str, template: dict[str, str]) -> dict:
    """Settings shaped as :func:`mslt_it.evaluation.plan.prediction_settings` writes them."""
    return {
        "model": "m",
        "adapter": {"sha256": run_wide},
        "chunk_size": 2,
        "tasks": [
            {
                "task": task,
                "split": "test",
                "languages": list(rows),
                "template": template.get(task, "t"),
                "rows_sha256": rows,
            }
            for task, rows in cells.items()
        ],
    }


def rows_of(task: str, lang: str, digest: str) -> list[dict[str, Any]]:
    count = 1 + len(digest) % 4  # the rows' number follows their content, as it would
    return [
        {"id": f"{task}/{lang}/test/{i}", "task": task, "lang": lang, "output": digest}
        for i in range(count)
    ]


def save_all(store: RunStore, cells: dict[str, dict[str, str]]) -> None:
    for task, rows in cells.items():
        for lang, digest in rows.items():
            records = rows_of(task, lang, digest)
            for index, start in enumerate(range(0, len(records), 2)):
                store.save_chunk(task, lang, index, records[start : start + 2])


CELLS = st.dictionaries(
    st.sampled_from(TASKS),
    st.dictionaries(st.sampled_from(LANGS), st.sampled_from(["a", "bb", "ccc", "dddd"])),
    min_size=1,
)
SETTINGS = st.tuples(
    CELLS, st.sampled_from(["w1", "w2"]), st.dictionaries(st.sampled_from(TASKS), st.just("u"))
)


VERSIONS = st.sampled_from([{"torch": "2.13.0", "numpy": "2.1"}, {"torch": "2.14.0"}])


@settings(max_examples=150, deadline=None)
@given(
    before=SETTINGS,
    after=SETTINGS,
    finished=st.booleans(),
    made_with=VERSIONS,
    resumed_with=VERSIONS,
)
def test_the_chunks_kept_are_those_of_unchanged_cells(
    before, after, finished, made_with, resumed_with
) -> None:
    """From a run killed halfway (its chunks) or a finished one (its predictions); made under
    one torch and resumed under another, nothing is kept (numpy moves no prediction)."""
    old, new = run_settings(*before), run_settings(*after)
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(Path(folder), old, made_with)
        store.prepare(overwrite=False)
        save_all(store, before[0])
        if finished:
            records = [
                r
                for t, rows in before[0].items()
                for lang, d in rows.items()
                for r in rows_of(t, lang, d)
            ]
            store.finish(records, {"versions": made_with}, None, Path(folder))
            store.drop_chunks()
        again = RunStore(Path(folder), new, resumed_with)
        again.prepare(overwrite=False, restart_changed=True)
        if again.is_complete():  # the same settings, finished: nothing to predict, whatever
            assert finished and old == new  # the versions (results.json names its own)
            return
        upgraded = made_with["torch"] != resumed_with["torch"]
        assert (again.note is not None) == upgraded

        (old_cells, old_wide, old_templates), (new_cells, new_wide, new_templates) = before, after
        for task, rows in new_cells.items():
            for lang, digest in rows.items():
                same = (
                    not upgraded
                    and old_wide == new_wide
                    and old_templates.get(task) == new_templates.get(task)
                    and old_cells.get(task, {}).get(lang) == digest
                )
                ids = [r["id"] for r in rows_of(task, lang, digest)]
                # ids alone do not tell: rows edited in place keep them (this chunk's may match)
                assert (again.load_chunk(task, lang, 0, ids[:2]) is not None) == same, (task, lang)
        kept = {chunk_cell(p.name)[:2] for p in again.chunks.iterdir()} - {(None, None)}
        for task, lang in kept:
            assert not upgraded and old_wide == new_wide
            assert old_templates.get(task) == new_templates.get(task)
            assert old_cells[task][lang] == new_cells.get(task, {}).get(lang)
        assert json.loads((again.chunks / "settings.json").read_text())["sha256"] == again.sha256


@settings(max_examples=60, deadline=None)
@given(cells=CELLS, size=st.integers(1, 5))
def test_a_reopened_run_gives_back_every_prediction_in_its_chunks(cells, size) -> None:
    run = run_settings(cells, "w", {})
    run["chunk_size"] = size
    records = [
        r
        for task, rows in cells.items()
        for lang, d in rows.items()
        for r in rows_of(task, lang, d)
    ]
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / PREDICTIONS).write_text(jsonl(records))
        document = {"settings": run, "settings_sha256": settings_sha256(run)}
        (folder / RESULTS).write_text(json.dumps(document))
        reopen_run(folder)
        assert not (folder / RESULTS).exists() and not (folder / PREDICTIONS).exists()

        store = RunStore(folder, run)
        store.prepare(overwrite=False)  # the same settings: resumed, nothing to predict
        found = []
        for task, rows in cells.items():
            for lang, digest in rows.items():
                ids = [r["id"] for r in rows_of(task, lang, digest)]
                for index, start in enumerate(range(0, len(ids), size)):
                    chunk = store.load_chunk(task, lang, index, ids[start : start + size])
                    assert chunk is not None, (task, lang, index)
                    found += chunk
        assert found == records


def test_a_run_whose_settings_cannot_be_read_back_is_only_cleared(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / PREDICTIONS).write_text('{"id": "x", "task": "xnli", "lang": "en"}\n')
    (run / RESULTS).write_text(json.dumps({"settings": {"chunk_size": 2}}))  # no digest
    reopen_run(run)
    assert list(run.iterdir()) == []

    # A record of a cell the settings do not name is not written anywhere (its name is a path).
    settings_ = run_settings({"xnli": {"en": "a"}}, "w", {})
    records = [*rows_of("xnli", "en", "a"), {"id": "y", "task": "xnli", "lang": "../../esc"}]
    (run / PREDICTIONS).write_text(jsonl(records))
    document = {"settings": settings_, "settings_sha256": settings_sha256(settings_)}
    (run / RESULTS).write_text(json.dumps(document))
    reopen_run(run)
    assert sorted(p.name for p in (run / ".chunks").iterdir()) == [
        "settings.json",
        "xnli.en.00000.jsonl",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
