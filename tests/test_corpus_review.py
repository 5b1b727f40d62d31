"""Corpus cleaning and reading, after a review: duplicates told apart where the answer starts,
a huge line refused without being read whole, read errors as one line, and one classification
of letters by script for corpus rows and answers (half-width katakana is Japanese)."""

from __future__ import annotations

import json
import sys
import tracemalloc
from pathlib import Path

import pytest
from conftest import assert_one_line_error

from mslt_it import corpus
from mslt_it.errors import MsltError
from mslt_it.jsonlines import LONGEST_LINE
from mslt_it.langid import AnswerIdentifier


def write_rows(root: Path, lang: str, rows: list[dict[str, str]]) -> None:
    folder = root / "bactrian-x" / lang
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    (folder / "train.jsonl").write_text(text, encoding="utf-8")


def cleaning(out: Path, lang: str) -> dict[str, int]:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))["cleaning"][lang]


def test_exchanges_that_split_the_same_words_differently_are_not_duplicates(
    cli, tmp_path: Path
) -> None:
    """The fields were joined by "\\x1f", which str.split() takes for whitespace: the two
    first rows were one exchange and the build had one usable row of two."""
    rows = [
        {"instruction": "Complete: the cat", "input": "", "output": "sat on the mat"},
        {"instruction": "Complete: the cat sat", "input": "", "output": "on the mat"},
        {"instruction": "Complete:  the\ncat", "input": "", "output": "sat on\tthe mat "},
    ]
    write_rows(tmp_path / "data", "en", rows)
    out = tmp_path / "ds"
    result = cli("build", "--task", "bactrian-x", "--sources", "en", "--budget", "3",
                 "--take-available", "--data", tmp_path / "data", "--out", out)  # fmt: skip
    assert result.code == 0, result.err
    # the third row is the first with other whitespace: still a duplicate
    assert cleaning(out, "en") == {
        "examined": 3, "kept": 2, "empty": 0, "duplicates": 1, "script_mismatch": 0
    }  # fmt: skip


def test_a_line_far_over_the_limit_is_refused_without_being_read_whole(tmp_path: Path) -> None:
    """A file of one 800 MB line held 1.7 GB before the 4 MiB line limit refused it: the scan
    for non-object lines read every line whole first."""
    path = tmp_path / "instructions" / "en" / "train.jsonl"
    path.parent.mkdir(parents=True)
    size = 24 * LONGEST_LINE  # 96 MiB, sparse: no disk used
    with path.open("wb") as handle:
        handle.write(b'{"output": "')
        handle.truncate(size)
    tracemalloc.start()
    try:
        with pytest.raises(MsltError, match="line 1 is longer than 4,194,304 bytes"):
            corpus.read_json_lines(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < size / 2, f"{peak:,} bytes held at once"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/mem")
def test_a_corpus_file_that_fails_to_read_is_one_line(tmp_path: Path) -> None:
    """A regular file whose read fails (/proc/self/mem at offset 0: an I/O error) raised a bare
    OSError, a traceback: the corpus reader had its own copy of the opening code of
    :func:`mslt_it.files.opened_regular_file`, without its handling of read errors."""
    path = tmp_path / "instructions" / "en" / "train.jsonl"
    path.parent.mkdir(parents=True)
    path.symlink_to("/proc/self/mem")
    with pytest.raises(MsltError, match=r"^data: cannot read .*train\.jsonl"):
        corpus.read_json_lines(path)


def test_half_width_katakana_is_japanese_in_a_corpus_row(cli, tmp_path: Path) -> None:
    """Half-width katakana (ｺｰﾋｰ) was "another script" than Japanese for cleaning, while the
    answer-language check counted it as Japanese."""
    rows = [
        {"instruction": "ｺｰﾋｰｦﾉﾐﾏｽｶ", "input": "", "output": "ﾊｲ､ﾉﾐﾏｽ"},
        {"instruction": "ｹｰｷﾊｱﾘﾏｽｶ", "input": "", "output": "ｲｲｴ"},
    ]
    write_rows(tmp_path / "data", "ja", rows)
    out = tmp_path / "ds"
    result = cli("build", "--task", "bactrian-x", "--sources", "ja", "--budget", "2",
                 "--script-mismatch", "drop", "--data", tmp_path / "data",
                 "--out", out)  # fmt: skip
    assert result.code == 0, result.err
    assert cleaning(out, "ja")["script_mismatch"] == 0
    # another script is still told: a Russian row in the Japanese file
    write_rows(tmp_path / "data", "ja", [*rows, {"instruction": "Это ответ?", "input": "",
                                                 "output": "Да, это ответ."}])  # fmt: skip
    result = cli("build", "--task", "bactrian-x", "--sources", "ja", "--budget", "3",
                 "--script-mismatch", "drop", "--data", tmp_path / "data",
                 "--out", tmp_path / "ds2")  # fmt: skip
    assert_one_line_error(result, "ja has 2 usable rows", "1 in another script")


@pytest.mark.parametrize(
    "answer", ["コーヒーとケーキをください", "時々、人々は色々な国々へ行きます"]
)
def test_a_japanese_answer_with_its_marks_is_not_mixed(answer: str) -> None:
    """The long-vowel mark ー and the iteration mark 々 are Japanese letters whose Unicode
    names start KATAKANA-HIRAGANA and IDEOGRAPHIC: they were counted as a second script, and
    ``コーヒー`` (two of four letters) was a mixed answer."""
    assert AnswerIdentifier().identify(answer, "ja") == "ja"
