"""Tasks, the synthetic source and the local / Hub sources share one schema."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mslt_it.errors import MsltError
from mslt_it.tasks import get_task
from mslt_it.tasks.ner import entities_from_tags, format_spans
from mslt_it.tasks.sources import open_split
from mslt_it.tasks.synthetic import lexicon, synthetic_row


def scripts_of(text: str) -> set[str]:
    """Unicode script-ish names of the letters in ``text`` (first word of the char name)."""
    return {unicodedata.name(ch).split()[0] for ch in text if ch.isalpha()}


def test_task_languages_match_the_hub_configs() -> None:
    assert len(get_task("xnli").languages) == 15
    assert sorted(get_task("pawsx").languages) == ["de", "en", "es", "fr", "ja", "ko", "zh"]
    assert len(get_task("wikiann").languages) == 176


def test_unknown_task_lists_the_known_ones() -> None:
    with pytest.raises(MsltError, match=r"unknown task 'xnl'.*xnli"):
        get_task("xnl")


@pytest.mark.parametrize(
    ("lang", "script"),
    [("ar", "ARABIC"), ("ru", "CYRILLIC"), ("zh", "CJK"), ("hi", "DEVANAGARI"), ("el", "GREEK")],
)
def test_synthetic_rows_are_written_in_the_language_script(lang: str, script: str) -> None:
    row = synthetic_row("xnli", lang, "train", 7)
    assert scripts_of(row["premise"]) == {script}


def test_synthetic_rows_are_deterministic_and_differ_by_index() -> None:
    assert synthetic_row("xnli", "sw", "test", 3) == synthetic_row("xnli", "sw", "test", 3)
    assert synthetic_row("xnli", "sw", "test", 3) != synthetic_row("xnli", "sw", "test", 4)


def test_synthetic_xnli_labels_follow_the_language_cues() -> None:
    lex = lexicon("de")
    for i in range(300):
        row = synthetic_row("xnli", "de", "train", i)
        words = row["hypothesis"].rstrip(".").split()
        assert (lex.negation in words) == (row["label"] == 2)
        assert (lex.hedge in words) == (row["label"] == 1)


def test_synthetic_labels_are_balanced() -> None:
    labels = [synthetic_row("xnli", "en", "train", i)["label"] for i in range(3000)]
    for label in (0, 1, 2):
        assert 0.28 < labels.count(label) / len(labels) < 0.39


def test_synthetic_wikiann_spans_agree_with_tags() -> None:
    for i in range(200):
        row = synthetic_row("wikiann", "ru", "train", i)
        assert len(row["tokens"]) == len(row["ner_tags"])
        entities = entities_from_tags(row["ner_tags"])
        assert [f"{k}: {' '.join(row['tokens'][s:e])}" for k, s, e in entities] == row["spans"]


def test_entities_from_tags_follows_seqeval_on_stray_inside_tags() -> None:
    # O B-PER I-PER I-LOC O I-ORG: the stray I-LOC and I-ORG each start an entity.
    assert entities_from_tags([0, 1, 2, 6, 0, 4]) == [("PER", 1, 3), ("LOC", 3, 4), ("ORG", 5, 6)]
    assert entities_from_tags([]) == []


def test_format_spans_uses_the_verbalizer_and_none_word() -> None:
    words = {"PER": "Person", "ORG": "ORG", "LOC": "Ort", "NONE": "Keine"}
    assert format_spans([("PER", "Ada Lovelace"), ("LOC", "London")], words) == (
        "Person: Ada Lovelace $$ Ort: London"
    )
    assert format_spans([], words) == "Keine"


def test_synthetic_pawsx_drops_and_counts_unlabelled_rows() -> None:
    split = open_split(get_task("pawsx"), "en", "train", "synthetic")
    assert 0 < split.dropped < 0.05 * (len(split) + split.dropped)
    rows = split.rows(list(range(0, len(split), 97)))
    assert all(row["label"] in (0, 1) for row in rows)


def write_local(root: Path, task: str, lang: str, split: str, rows: list[dict], kind: str) -> Path:
    folder = root / task / lang
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}.{kind}"
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_local_directory_source_reads_the_hub_schema(tmp_path: Path, kind: str) -> None:
    rows = [synthetic_row("pawsx", "fr", "validation", i) for i in range(20)]
    rows[3]["label"] = -1
    write_local(tmp_path, "pawsx", "fr", "validation", rows, kind)
    split = open_split(get_task("pawsx"), "fr", "validation", str(tmp_path))
    assert len(split) == 19 and split.dropped == 1
    got = split.rows([3])[0]
    assert got["sentence1"] == rows[4]["sentence1"]
    assert got["id"] == "pawsx/fr/validation/4"


def test_local_file_missing_a_column_is_named(tmp_path: Path) -> None:
    rows = [{"premise": "a", "label": 0}]
    path = write_local(tmp_path, "xnli", "de", "train", rows, "jsonl")
    with pytest.raises(MsltError, match=f"{path}: missing column 'hypothesis'"):
        open_split(get_task("xnli"), "de", "train", str(tmp_path))


@pytest.mark.parametrize(
    ("task", "row", "fragment"),
    [
        ("wikiann", {"tokens": ["a"], "ner_tags": [0, 1, 2]}, "1 tokens but 3 ner_tags"),
        ("wikiann", {"tokens": ["b", "c"], "ner_tags": [3]}, "2 tokens but 1 ner_tags"),
        ("wikiann", {"tokens": "ab", "ner_tags": [0, 0]}, "tokens must be a list of words"),
        ("wikiann", {"tokens": [1, 2], "ner_tags": [0, 0]}, "tokens must be a list of words"),
        ("xnli", {"premise": "a", "hypothesis": ["e"], "label": 0}, "column 'hypothesis' holds"),
        ("xnli", {"premise": {"a": 1}, "hypothesis": "h", "label": 0}, "column 'premise' holds"),
    ],
)
def test_rows_that_would_reach_the_prompt_wrong_are_named(
    tmp_path: Path, task: str, row: dict, fragment: str
) -> None:
    """Tags paired with the wrong words, a word split into letters, a list printed as Python
    writes it: each is a one-line error naming the file and row, never a dataset."""
    path = write_local(tmp_path, task, "en", "train", [row, row], "jsonl")
    with pytest.raises(MsltError, match=re.escape(fragment)) as caught:
        open_split(get_task(task), "en", "train", str(tmp_path))
    assert str(path) in str(caught.value)


def test_local_directory_without_the_split_says_what_it_expected(tmp_path: Path) -> None:
    with pytest.raises(MsltError, match=r"no file for xnli/de/test.*test\.parquet"):
        open_split(get_task("xnli"), "de", "test", str(tmp_path))


def test_unknown_split_lists_the_task_splits() -> None:
    with pytest.raises(MsltError, match=r"no split 'dev'.*train, validation, test"):
        open_split(get_task("xnli"), "de", "dev", "synthetic")


def test_hub_source_calls_load_dataset_with_the_config_and_split(monkeypatch) -> None:
    """The Hub is out of reach here: the real code path runs on a Dataset of the Hub schema."""
    calls = []

    def fake_load_dataset(path: str, name: str, split: str) -> datasets.Dataset:
        calls.append((path, name, split))
        rows = [synthetic_row("xnli", name, split, i) for i in range(5)]
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    split = open_split(get_task("xnli"), "sw", "test", "hub")
    assert calls == [("facebook/xnli", "sw", "test")]
    assert len(split) == 5 and split.rows([2])[0]["id"] == "xnli/sw/test/2"


def test_hub_failure_becomes_a_one_line_error(monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'facebook/xnli' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(MsltError, match=r"could not load facebook/xnli \(config sw, split test\)"):
        open_split(get_task("xnli"), "sw", "test", "hub")


def test_a_file_replaced_with_the_same_size_and_time_is_read_again(tmp_path: Path) -> None:
    """The table cache was keyed on size and modification time: a copy of the same size with
    its time set back gave the old rows in the same process, beside the new file's digest."""
    import os

    from mslt_it.tasks.sources import read_cached_table

    path = tmp_path / "train.jsonl"
    path.write_text('{"premise": "cat", "hypothesis": "a", "label": 0}\n')
    first = read_cached_table(path).column("premise").to_pylist()
    times = (path.stat().st_atime_ns, path.stat().st_mtime_ns)
    replacement = tmp_path / "new.jsonl"
    replacement.write_text('{"premise": "dog", "hypothesis": "a", "label": 0}\n')
    os.utime(replacement, ns=times)
    replacement.replace(path)  # another inode, the same size and modification time
    assert first == ["cat"]
    assert read_cached_table(path).column("premise").to_pylist() == ["dog"]
