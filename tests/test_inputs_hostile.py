"""Hostile inputs at the data edge (issue 22): corpus files, mixtures, recipes' tasks_dir, and
folders that are not models. Each must build, or fail with one line naming file, field, value
and what is allowed (exit status 2, no traceback, nothing left in --out).

The corpus cases go through :func:`mslt_it.corpus.open_corpus_split`, the reader that names the
line to blame, which the builder opens every local split with.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import CliResult, assert_one_line_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mslt_it import corpus, modeling
from mslt_it.errors import MsltError
from mslt_it.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
ROW_KEYS = ("instruction", "input", "output")


def rows(n: int, **extra: object) -> list[dict[str, object]]:
    return [
        {"instruction": f"Say {i}.", "input": "", "output": f"ok {i}", **extra} for i in range(n)
    ]


def jsonl(items: list[object]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def corpus_file(
    root: Path, text: str | bytes, lang: str | None = "en", task: str = "instructions"
) -> Path:
    """``root/<task>/<lang>/train.jsonl`` (or the one table of every language)."""
    folder = root / task / lang if lang else root / task
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.jsonl"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def build_corpus(cli, root: Path, out: Path, *extra: str) -> CliResult:
    return cli("build", "--task", "instructions", "--sources", "en", "--budget", "3",
               "--data", root, "--out", out, *extra)  # fmt: skip


# ------------------------------------------------------------------------- 1. corpus files


def test_a_line_of_3_mb_is_read(cli, tmp_path: Path) -> None:
    # a long line, not a long prompt (user expressions build at most 1,000,000 characters)
    long = {
        "instruction": "Say it.",
        "input": "",
        "output": "y " * 300_000,
        "notes": "x" * 3_000_000,
    }
    corpus_file(tmp_path / "data", jsonl([*rows(5), long]))
    result = build_corpus(cli, tmp_path / "data", tmp_path / "ds", "--budget", "6")
    assert result.code == 0, result.err
    assert json.loads((tmp_path / "ds" / "manifest.json").read_text())["num_examples"] == 6


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (jsonl(rows(4)) + '{"instruction": "cut', ("line 5 is not valid JSON", "cut short")),
        (jsonl(rows(2)) + "{'instruction': 1}\n" + jsonl(rows(2)), ("line 3 is not valid JSON",)),
        (  # json's "… at" messages: the column follows, not a comma
            jsonl(rows(2)) + '{"broken\n' + jsonl(rows(2)),
            ("line 3 is not valid JSON (Invalid control character at column 9)",),
        ),
        (json.dumps(rows(4)), ("a JSON array", "one object per line")),
        ("\n" + json.dumps(rows(4), indent=2), ("a JSON array",)),
        (jsonl([*rows(2), "just text", *rows(2)]), ("line 3 is text", "not a JSON object")),
        (jsonl([*rows(2), [1, 2]]), ("line 3 is a list",)),
        (
            jsonl([*rows(2), {"instruction": "a", "input": "", "output": {"x": 1}}]),
            ("line 3", "field 'output' is an object", "text on line 1"),
        ),
        (
            jsonl([{"instruction": "a", "input": "", "output": 1}, *rows(2)]),
            ("line 2", "field 'output' is text", "a number on line 1"),
        ),
        ("\n \n\n", ("the file is empty",)),
        ("null\n", ("line 1 is null", "not a JSON object")),  # pyarrow 26 crashes on it
        (jsonl([*rows(2), None]), ("line 3 is null",)),  # pyarrow reads a row of nulls
        (jsonl(rows(2)) + "\n\n" + jsonl([{"output": 1}]), ("line 5", "'output'")),
    ],
)
def test_a_broken_corpus_file_names_its_line(
    cli, tmp_path: Path, text: str, fragments: tuple[str, ...]
) -> None:
    path = corpus_file(tmp_path / "data", text)
    result = build_corpus(cli, tmp_path / "data", tmp_path / "ds")
    assert_one_line_error(result, str(path), *fragments)
    assert not (tmp_path / "ds").exists()


def test_a_language_column_of_numbers_names_the_column(cli, tmp_path: Path) -> None:
    path = corpus_file(tmp_path / "data", jsonl(rows(6, language=3)), lang=None)
    result = build_corpus(cli, tmp_path / "data", tmp_path / "ds")
    assert_one_line_error(result, str(path), "column 'language'", "int64", "as text", "'en'")
    assert not (tmp_path / "ds").exists()


def test_a_language_column_of_text_still_filters(cli, tmp_path: Path) -> None:
    corpus_file(tmp_path / "data", jsonl(rows(4, language="en") + rows(4, language="de")), None)
    result = build_corpus(cli, tmp_path / "data", tmp_path / "ds", "--sources", "en,de")
    assert result.code == 0, result.err


def test_a_fifo_as_corpus_file_is_refused_not_waited_on(cli, tmp_path: Path) -> None:
    folder = tmp_path / "data" / "instructions" / "en"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "train.jsonl")
    with pytest.raises(MsltError, match="FIFO"):
        corpus.read_json_lines(folder / "train.jsonl")
    with pytest.raises(MsltError, match="FIFO"):
        corpus.read_corpus_table(folder / "train.jsonl")


def test_a_corpus_over_the_size_limit_is_refused(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corpus, "MAX_CORPUS_BYTES", 100)
    path = corpus_file(tmp_path / "data", jsonl(rows(10)))
    result = build_corpus(cli, tmp_path / "data", tmp_path / "ds")
    assert_one_line_error(result, str(path), "may be at most 100 bytes")


def test_a_task_file_of_blank_lines_is_said_to_hold_no_rows(
    cli, tmp_path: Path, tiny_model_dir
) -> None:
    """Blank lines only read as a table of no columns: eval said "missing column 'premise' …
    (found: )" (a build's reader already said the file is empty)."""
    folder = tmp_path / "data" / "xnli" / "en"
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text("\n\n")
    result = cli("eval", "--model", tiny_model_dir, "--task", "xnli", "--langs", "en",
                 "--data", tmp_path / "data", "--limit", "2", "--out", tmp_path / "ev")  # fmt: skip
    assert_one_line_error(result, "test.jsonl: holds no rows; task xnli needs rows with columns")
    assert not (tmp_path / "ev").exists()


@pytest.mark.parametrize("task", ["xnli", "instructions"])
def test_a_data_file_over_the_limit_is_refused_before_it_is_hashed(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, task: str
) -> None:
    """A 50 GB sparse file was hashed whole (minutes) before the size limit refused it, and a
    task's own data files had no limit at all."""
    import mslt_it.tasks.sources as sources
    from mslt_it.files import MAX_DATA_BYTES

    def no_hashing(path):
        raise AssertionError(f"{path} was hashed")

    monkeypatch.setattr(sources, "file_sha256", no_hashing)
    folder = tmp_path / "data" / task / "en"
    folder.mkdir(parents=True)
    with (folder / "train.jsonl").open("wb") as handle:
        handle.truncate(MAX_DATA_BYTES + 1)  # sparse: no disk used
    result = cli("build", "--task", task, "--sources", "en", "--budget", "2",
                 "--data", tmp_path / "data", "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, "train.jsonl", f"may be at most {MAX_DATA_BYTES:,} bytes")
    assert not (tmp_path / "ds").exists()


def test_the_reader_reads_what_pyarrow_reads(tmp_path: Path) -> None:
    path = corpus_file(tmp_path, jsonl(rows(3)))
    table = corpus.read_json_lines(path)
    assert table.num_rows == 3 and set(ROW_KEYS) <= set(table.column_names)
    split = corpus.open_corpus_split(get_task("instructions"), "en", "train", str(tmp_path))
    assert len(split) == 3


# -------------------------------------------------------------------- 2. mixtures, tasks_dir


def mixture_recipe(path: Path, mixture: str, sources: str = "[sw, zh]") -> Path:
    path.write_text(
        f"name: m\ndata:\n  task: bactrian-x\n  sources: {sources}\n  budget: 20\n"
        f"  mixture: [{mixture}]\nsources: {sources}\nmodel: {{name_or_path: 'mslt-it:tiny'}}\n"
        "eval: {task: xnli, langs: [sw]}\n",
        encoding="utf-8",
    )
    return path


def test_a_mixture_part_without_a_split_takes_one_it_has(cli, tmp_path: Path) -> None:
    recipe = mixture_recipe(tmp_path / "r.yaml", "{task: xcopa, share: 0.3}")
    result = cli("build", "--recipe", recipe, "--out", tmp_path / "ds")
    assert result.code == 0, result.err
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert [(p["task"], p["split"]) for p in manifest["mixture"]] == [
        ("bactrian-x", "train"),
        ("xcopa", "validation"),
    ]
    from mslt_it.config import DataConfig, MixturePart
    from mslt_it.data import with_defaults

    mixture = [MixturePart(task="pawsx", share=0.5)]
    config = DataConfig(task="xnli", sources=["en"], budget=4, mixture=mixture)
    assert config.mixture[0].split is None  # the schema checks shape; the registry resolves
    assert with_defaults(config).mixture[0].split == "train"
    assert with_defaults(config).template == "xnli/en-instruct"


def test_a_mixture_parts_local_files_are_recorded_with_their_digests(cli, tmp_path) -> None:
    """The manifest named a part's folder but held no digest of the files its rows came from:
    a part's file edited after the build left every recorded digest as it was."""
    import hashlib

    rows = [{"premise": f"p{i}", "hypothesis": f"h{i}", "label": i % 3} for i in range(8)]
    files = {}
    for lang in ("sw", "zh"):
        files[lang] = tmp_path / "mine" / "xnli" / lang / "train.jsonl"
        files[lang].parent.mkdir(parents=True)
        files[lang].write_text("".join(json.dumps(row) + "\n" for row in rows))
    part = f"{{task: xnli, share: 0.3, data: {tmp_path / 'mine'}}}"
    recipe = mixture_recipe(tmp_path / "r.yaml", part)
    result = cli("build", "--recipe", recipe, "--out", tmp_path / "ds")
    assert result.code == 0, result.err
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    recorded = manifest["mixture"][1]["files_sha256"]
    assert recorded == {
        lang: hashlib.sha256(path.read_bytes()).hexdigest() for lang, path in files.items()
    }


@pytest.mark.parametrize(
    ("mixture", "fragments"),
    [
        (
            "{task: xcopa, share: 0.3, split: train}",
            ("data.mixture.0: split:", "'train'", "validation, test"),
        ),
        ("{task: xnli, share: 0.2}, {task: nope, share: 0.3}", ("data.mixture.1: task:", "'nope'")),
        ("{task: xnli, share: 0.01}", ("data.mixture.0.share: 0.01", "too few")),
        ("{task: xnli, share: 0.3, template: xnli/zzz}", ("data.mixture.0: template:", "zzz")),
        ("{task: xnli, share: 0.3, data: /nonexistent}", ("data.mixture.0.data:", "nonexistent")),
        ("{task: xwinograd, share: 0.3}", ("data.mixture.0.split:", "xwinograd has no train")),
        ("{task: xwinograd, share: 0.3, split: test}", ("data.mixture.0: sources:", "xwinograd")),
        (
            "{task: xnli, share: 0.2}, {task: xstorycloze, share: 0.3, template: xnli/en-instruct}",
            ("data.mixture.1: template:", "not xstorycloze"),
        ),
        ("{task: xnli, share: 0.3, colour: red}", ("data.mixture.0.colour", "unknown field")),
        ("{task: xnli, share: 1.5}", ("data.mixture.0.share", "< 1")),
        ("{task: xnli, share: true}", ("data.mixture.0.share", "a valid number")),
        ("{task: xnli, share: 0.95}", ("data.mixture: the shares", "leave bactrian-x 1 of")),
    ],
)
def test_a_mixture_error_keeps_its_path(
    cli, tmp_path: Path, mixture: str, fragments: tuple[str, ...]
) -> None:
    recipe = mixture_recipe(tmp_path / "r.yaml", mixture)
    assert_one_line_error(cli("build", "--recipe", recipe, "--out", tmp_path / "ds"), *fragments)
    assert not (tmp_path / "ds").exists()
    assert_one_line_error(cli("run", recipe, "--dry-run"), str(recipe), *fragments)


def own_corpus(root: Path) -> Path:
    """A --tasks-dir corpus ``mychats`` with its as-is template and a file of English rows."""
    (root / "tasks").mkdir(parents=True)
    text = (ROOT / "tasks" / "instructions.yaml").read_text(encoding="utf-8")
    (root / "tasks" / "mychats.yaml").write_text(
        text.replace("name: instructions", "name: mychats"), encoding="utf-8"
    )
    (root / "prompts" / "mychats").mkdir(parents=True)
    text = (ROOT / "prompts" / "instructions" / "as-is.yaml").read_text(encoding="utf-8")
    (root / "prompts" / "mychats" / "as-is.yaml").write_text(
        text.replace("instructions", "mychats"), encoding="utf-8"
    )
    corpus_file(root / "data", jsonl(rows(6)), task="mychats")
    recipe = root / "r.yaml"
    recipe.write_text(
        f"name: own\ntasks_dir: [{root / 'tasks'}]\n"
        f"data: {{task: mychats, sources: [en], budget: 3, data: {root / 'data'}, "
        f"prompts_dir: [{root / 'prompts'}]}}\nsources: [en]\n"
        "model: {name_or_path: 'mslt-it:tiny'}\n"
        f"eval: {{task: mychats, langs: [en], split: train, data: {root / 'data'}, "
        f"prompts_dir: [{root / 'prompts'}], template: mychats/as-is}}\n",
        encoding="utf-8",
    )
    return recipe


def test_build_recipe_honours_its_tasks_dir(cli, tmp_path: Path) -> None:
    recipe = own_corpus(tmp_path)
    result = cli("build", "--recipe", recipe, "--out", tmp_path / "ds")
    assert result.code == 0, result.err
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["template"]["id"] == "mychats/as-is"  # the corpus default, not en-instruct


def test_run_sees_the_recipes_own_tasks_when_defaulting(tmp_path: Path) -> None:
    from mslt_it.recipes import load_recipe, recipe_section

    recipe = own_corpus(tmp_path)
    loaded = load_recipe(recipe)
    assert loaded.data_config(loaded.runs[0]).template == "mychats/as-is"
    assert recipe_section(recipe, "eval")["task"] == "mychats"


def test_a_bad_tasks_dir_in_a_recipe_names_the_recipe(cli, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("tasks_dir: [/nonexistent]\ndata: {task: xnli, sources: [en], budget: 2}\n")
    assert_one_line_error(cli("build", "--recipe", recipe, "--out", tmp_path / "ds"),
                          str(recipe), "tasks_dir: ", "/nonexistent")  # fmt: skip
    recipe.write_text("tasks_dir: here\ndata: {task: xnli, sources: [en], budget: 2}\n")
    assert_one_line_error(cli("build", "--recipe", recipe, "--out", tmp_path / "ds"),
                          str(recipe), "tasks_dir: expected a list")  # fmt: skip


# --------------------------------------------------------------------- 3. folders as models


@pytest.fixture(scope="module")
def dataset_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mslt_it.config import DataConfig
    from mslt_it.data import build_dataset

    out = tmp_path_factory.mktemp("ds") / "ds"
    build_dataset(DataConfig(task="xnli", sources=["en"], budget=4), out)
    return out


def test_a_dataset_as_model_says_it_holds_no_model(cli, dataset_folder: Path, tmp_path) -> None:
    result = cli("train", "--model", dataset_folder, "--dataset", dataset_folder,
                 "--out", tmp_path / "run")  # fmt: skip
    assert_one_line_error(result, "--model", "holds no model (no config.json)", "dataset")
    assert not (tmp_path / "run").exists()
    result = cli("eval", "--model", dataset_folder, "--task", "xnli", "--langs", "en",
                 "--out", tmp_path / "ev")  # fmt: skip
    assert_one_line_error(result, "holds no model", "no config.json")
    assert "sentencepiece" not in result.err
    result = cli("build", "--task", "xnli", "--sources", "en", "--budget", "2",
                 "--tokenizer", dataset_folder, "--out", tmp_path / "ds")  # fmt: skip
    assert_one_line_error(result, "tokenizer", "holds no model or tokenizer")


def test_model_folder_checks(tmp_path: Path, tiny_model_dir: Path) -> None:
    with pytest.raises(MsltError, match=r"holds no model .*it is empty"):
        modeling.check_model_folder(str(tmp_path), "--model")
    with pytest.raises(MsltError, match="holds no model or tokenizer"):
        modeling.load_tokenizer(str(tmp_path))
    modeling.check_model_folder(str(tiny_model_dir))
    modeling.check_model_folder("org/name")  # a Hub id: the Hub decides
    assert modeling.load_tokenizer(str(tiny_model_dir)) is not None
    deep = tmp_path / "deep"
    shutil.copytree(tiny_model_dir, deep)
    (deep / "tokenizer.json").write_text("[" * 100_000)  # Python's JSON reader recurses
    with pytest.raises(MsltError, match=r"cannot load a tokenizer .*recursion"):
        modeling.load_tokenizer(str(deep))


def test_a_recipe_whose_model_is_a_dataset_fails_its_dry_run(
    cli, dataset_folder: Path, tmp_path: Path
) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: r\ndata: {task: xnli, budget: 4}\nsources: [en]\n"
        f"model: {{name_or_path: {dataset_folder}}}\neval: {{task: xnli, langs: [en]}}\n",
        encoding="utf-8",
    )
    assert_one_line_error(cli("run", recipe, "--dry-run"), "model.name_or_path", "holds no model")


# ------------------------------------------------------------------------- property tests

HOSTILE = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
corpus_rows = st.lists(
    st.one_of(
        st.fixed_dictionaries({key: st.text(min_size=1, max_size=30) for key in ROW_KEYS}),
        st.dictionaries(st.sampled_from([*ROW_KEYS, "language", "id"]), json_values, max_size=5),
        json_values,
    ),
    min_size=0,
    max_size=8,
)


def assert_promise(result: CliResult, out: Path) -> None:
    """Success, or exit 2 with one line and nothing left in --out."""
    assert "Traceback" not in result.err and "internal error" not in result.err, result.err
    if result.code != 0:
        assert_one_line_error(result)
        assert not out.exists(), list(out.iterdir())


@HOSTILE
@given(items=corpus_rows, cut=st.none() | st.integers(0, 400), as_array=st.booleans())
def test_any_corpus_file_builds_or_fails_in_one_line(
    cli, tmp_path: Path, items: list[object], cut: int | None, as_array: bool
) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    text = json.dumps(items) if as_array else jsonl(items)
    corpus_file(root / "data", text.encode()[:cut] if cut is not None else text.encode())
    out = root / "ds"
    assert_promise(build_corpus(cli, root / "data", out, "--take-available"), out)


@HOSTILE
@given(languages=st.lists(json_values, min_size=1, max_size=6))
def test_any_language_column_builds_or_fails_in_one_line(
    cli, tmp_path: Path, languages: list[object]
) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    items = [
        dict(row, language=lang) for row, lang in zip(rows(len(languages)), languages, strict=True)
    ]
    corpus_file(root / "data", jsonl(items), lang=None)
    out = root / "ds"
    assert_promise(build_corpus(cli, root / "data", out, "--take-available"), out)


@HOSTILE
@given(
    task=st.sampled_from(["xnli", "xcopa", "xwinograd", "nope", "instructions"]),
    share=st.floats(0.001, 0.99),
    split=st.none() | st.sampled_from(["train", "validation", "test", "eval", "x"]),
)
def test_any_mixture_part_builds_or_fails_naming_its_path(
    cli, tmp_path: Path, task: str, share: float, split: str | None
) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    part = f"{{task: {task}, share: {share}" + (f", split: {split}}}" if split else "}")
    recipe = mixture_recipe(root / "r.yaml", part)
    out = root / "ds"
    result = cli("build", "--recipe", recipe, "--out", out)
    assert_promise(result, out)
    if result.code != 0:
        assert "data.mixture" in result.err, result.err


# ------------------------------------------------------------- JSON lines before pyarrow reads


def true_depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((true_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((true_depth(v) for v in value.values()), default=0)
    return 0


JSON_VALUES = st.recursive(
    st.none() | st.integers() | st.text(alphabet='[]{}"\\ab\n\t,:'),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(value=JSON_VALUES, ascii_only=st.booleans())
def test_a_rows_depth_is_measured_as_json_nests_not_as_its_brackets(
    value: object, ascii_only: bool
) -> None:
    """Brackets, quotes and backslashes inside strings never count; the structure does."""
    from mslt_it.jsonlines import _deepest

    line = json.dumps({"row": value}, ensure_ascii=ascii_only).encode()
    shallow = json.dumps({"row": [[1]]}).encode()
    assert _deepest([line]) == 1 + true_depth(value)
    assert _deepest([shallow, line, shallow]) == max(3, 1 + true_depth(value))


def test_a_row_nested_past_the_limit_is_one_line_not_a_crash(tmp_path: Path) -> None:
    """pyarrow's reader crashes the process on a row nested 20,000 deep (a 40 KB file); the
    check refuses it first, and a row that only holds brackets in its text is read."""
    import subprocess
    import sys

    split = tmp_path / "data" / "xnli" / "en"
    split.mkdir(parents=True)
    row = {"premise": "[[[[{{{{" * 5000, "hypothesis": "b", "label": 0}
    (split / "test.jsonl").write_text(
        json.dumps(row)
        + "\n"
        + '{"premise":"a","hypothesis":"b","label":0,"x":'
        + "[" * 20_000
        + "]" * 20_000
        + "}\n"
    )
    command = [sys.executable, "-m", "mslt_it", "prompts", "render", "xnli/en-instruct"]
    command += ["--task", "xnli", "--lang", "en", "--split", "test", "--data", tmp_path / "data"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, (done.returncode, done.stderr[-500:])
    assert done.stderr.count("\n") == 1 and "a row nests 20,001 levels deep" in done.stderr
    # A build reads local files through the corpus reader: it checks them too (it crashed).
    (split / "train.jsonl").write_bytes((split / "test.jsonl").read_bytes())
    build = [sys.executable, "-m", "mslt_it", "build", "--task", "xnli", "--sources", "en"]
    build += ["--budget", "1", "--data", tmp_path / "data", "--out", tmp_path / "built"]
    done = subprocess.run(build, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, (done.returncode, done.stderr[-500:])
    assert done.stderr.count("\n") == 1 and "a row nests 20,001 levels deep" in done.stderr
    assert not (tmp_path / "built").exists()
    (split / "test.jsonl").write_text(json.dumps(row) + "\n")
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
