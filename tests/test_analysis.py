"""`mslt-it analyze`: metrics on constructed embeddings, parallel data, extraction, the command."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error

from mslt_it.analysis import (
    cka_matrix,
    language_id_accuracy,
    language_silhouette,
    linear_cka,
    load_parallel,
    parse_layers,
    retrieval_matrix,
)
from mslt_it.analysis.extract import (
    encode_sentences,
    extract,
    load_model,
    resolve_dtype,
    run_label,
)
from mslt_it.analysis.metrics import mean_off_diagonal
from mslt_it.errors import MsltError
from mslt_it.peft_adapters import weights_sha256

# --- metrics on constructed embeddings ----------------------------------------------------------


def constructed(agnostic: bool, n: int = 60, d: int = 16, langs: int = 3, seed: int = 0):
    """Representations of n parallel sentences in several languages.

    Language-agnostic: every language is the sentence's content plus a little noise.
    Language-specific: mostly per-language noise plus a large per-language offset, so languages
    form separate clusters and the content is hard to find.
    """
    rng = np.random.default_rng(seed)
    content = rng.normal(size=(n, d))
    reps = []
    for _ in range(langs):
        if agnostic:
            reps.append(content + 0.1 * rng.normal(size=(n, d)))
        else:
            offset = 6.0 * rng.normal(size=d)
            reps.append(0.3 * content + rng.normal(size=(n, d)) + offset)
    return reps


def all_metrics(reps):
    return {
        "cka": mean_off_diagonal(cka_matrix(reps)),
        "retrieval": mean_off_diagonal(retrieval_matrix(reps)),
        "lid": language_id_accuracy(reps),
        "silhouette": language_silhouette(reps),
    }


def test_every_metric_moves_the_expected_way() -> None:
    mixed, separated = all_metrics(constructed(True)), all_metrics(constructed(False))
    assert mixed["cka"] > 0.95 and separated["cka"] < 0.5
    assert mixed["retrieval"] > 0.95 and separated["retrieval"] < 0.5
    assert mixed["lid"] < 0.6 and separated["lid"] == 1.0  # chance is 1/3
    assert mixed["silhouette"] < 0.05 and separated["silhouette"] > 0.5


def test_cka_is_one_for_identical_and_invariant_to_scaling_and_rotation() -> None:
    rng = np.random.default_rng(1)
    for n, d in ((50, 8), (20, 64)):  # the feature-space and the Gram-matrix forms
        x = rng.normal(size=(n, d))
        rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
        y = rng.normal(size=(n, d))
        assert linear_cka(x, x) == pytest.approx(1.0)
        assert linear_cka(x, 3.7 * x) == pytest.approx(1.0)
        assert linear_cka(x, x @ rotation) == pytest.approx(1.0)
        assert linear_cka(x, 0.2 * x @ rotation + 5.0) == pytest.approx(1.0)  # offset too
        assert linear_cka(x, y) < 0.9
        assert linear_cka(x, y) == pytest.approx(cka_matrix([x, y])[0, 1])
    assert linear_cka(x[:, :5], x) == pytest.approx(cka_matrix([x[:, :5], x])[0, 1])


def test_centering_recovers_retrieval_hidden_by_language_offsets() -> None:
    rng = np.random.default_rng(2)
    content = rng.normal(size=(80, 16))
    reps = [content + 30.0 * rng.normal(size=16) for _ in range(3)]
    plain = retrieval_matrix(reps)
    centred = retrieval_matrix(reps, center=True)
    assert np.isnan(np.diag(plain)).all()
    assert mean_off_diagonal(centred) == 1.0 > mean_off_diagonal(plain)


def test_layers_spec() -> None:
    assert parse_layers("all", 3) == [0, 1, 2]
    assert parse_layers("-1", 33) == [32]
    assert parse_layers("16, 8,-1,8", 33) == [8, 16, 32]
    for bad in ("3", "-4", "x"):
        with pytest.raises(MsltError, match="--layers"):
            parse_layers(bad, 3)


# --- parallel sentences ------------------------------------------------------------------------


def test_synthetic_sentences_are_parallel_sampled_and_distinct() -> None:
    a = load_parallel(["en", "de", "zh"], 50, data="synthetic", seed=3)
    b = load_parallel(["en", "de", "zh"], 50, data="synthetic", seed=3)
    assert a == b and a.n == 50 and len(set(a.texts["en"])) == 50
    from mslt_it.tasks.synthetic import xnli_row

    index = int(a.ids[7].rsplit("/", 1)[1])
    assert a.texts["zh"][7] == xnli_row("zh", "test", index)["premise"]
    assert a.texts["en"][7] == xnli_row("en", "test", index)["premise"]


def xnli_all_languages(rows: int = 6):
    """A local Dataset in the schema of facebook/xnli's all_languages config (3 languages)."""
    import datasets

    langs = ["de", "en", "fr"]
    features = datasets.Features(
        {
            "premise": datasets.Translation(languages=langs),
            "hypothesis": datasets.TranslationVariableLanguages(languages=langs),
            "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
        }
    )
    records = []
    for i in range(rows):
        premise = i // 3  # as in XNLI: each premise comes with three hypotheses
        records.append(
            {
                "premise": {lang: f"{lang} premise {premise}" for lang in langs},
                "hypothesis": {lang: f"{lang} hypothesis {i}" for lang in langs},
                "label": i % 3,
            }
        )
    return datasets.Dataset.from_list(records, features=features)


def test_hub_all_languages_rows_are_aligned_and_premises_deduplicated(monkeypatch) -> None:
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        return xnli_all_languages(rows=9)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    premises = load_parallel(["en", "fr"], 3, data="hub", split="validation")
    assert calls == [("facebook/xnli", "all_languages", "validation")]
    assert sorted(premises.texts["en"]) == ["en premise 0", "en premise 1", "en premise 2"]
    assert [t.replace("fr", "en") for t in premises.texts["fr"]] == premises.texts["en"]
    hypotheses = load_parallel(["de", "en"], 9, data="hub", field="hypothesis")
    assert [t.replace("de", "en") for t in hypotheses.texts["de"]] == hypotheses.texts["en"]
    with pytest.raises(MsltError, match=r"--n: 4 is more than the 3 distinct"):
        load_parallel(["en", "fr"], 4, data="hub")


def write_split(root: Path, lang: str, labels: list[int]) -> None:
    folder = root / "xnli" / lang
    folder.mkdir(parents=True)
    lines = [
        json.dumps({"premise": f"{lang} p{i}", "hypothesis": f"{lang} h{i}", "label": label})
        for i, label in enumerate(labels)
    ]
    (folder / "test.jsonl").write_text("\n".join(lines) + "\n")


def test_local_per_language_files_must_be_aligned(tmp_path: Path) -> None:
    write_split(tmp_path, "en", [0, 1, 2, 0, 1, 2])
    write_split(tmp_path, "de", [0, 1, 2, 0, 1, 2])
    write_split(tmp_path, "fr", [1, 2, 0, 1, 2, 0])  # shifted by one row
    write_split(tmp_path, "es", [0, 1, 2, 0, 1])  # one row short
    ok = load_parallel(["en", "de"], 6, data=str(tmp_path))
    assert [t.replace("de", "en") for t in ok.texts["de"]] == ok.texts["en"]
    with pytest.raises(MsltError, match=r"not aligned.*labelled 0 in en but 1 in fr"):
        load_parallel(["en", "fr"], 6, data=str(tmp_path))
    with pytest.raises(MsltError, match=r"not aligned.*row counts differ \(en 6, es 5\)"):
        load_parallel(["en", "es"], 3, data=str(tmp_path))


def test_rows_left_out_as_unlabelled_are_said_when_counts_differ(tmp_path: Path) -> None:
    """Both files held 6 rows; one row of German unlabelled was dropped, and the error said
    only "row counts differ (en 6, de 5)", which sent the user looking for a missing line."""
    write_split(tmp_path, "en", [0, 1, 2, 0, 1, 2])
    write_split(tmp_path, "de", [0, 1, -1, 0, 1, 2])
    with pytest.raises(MsltError, match=r"left out \(de 1\) \(en 6, de 5\)"):
        load_parallel(["en", "de"], 3, data=str(tmp_path))


def test_a_csv_header_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    """pyarrow decodes a CSV's column names only when asked: a byte that is not UTF-8 in the
    header was an internal error (``UnicodeDecodeError``) after the read."""
    path = tmp_path / "pairs.csv"
    path.write_bytes(b"en,de,x\xff\nhello,hallo,1\nyes,ja,2\nno,nein,3\n")
    with pytest.raises(MsltError, match=r"header line is not UTF-8 text \(byte 0xff"):
        load_parallel(["en", "de"], 3, parallel_file=path)


def test_parallel_file(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("id,en,sw\na,hello,habari\nb,thank you,asante\nd,yes,ndiyo\nc,,tupu\n")
    sentences = load_parallel(["en", "sw"], 3, parallel_file=path)
    assert sentences.texts == {
        "en": ["hello", "thank you", "yes"],
        "sw": ["habari", "asante", "ndiyo"],
    }
    assert sentences.ids == ["a", "b", "d"]
    with pytest.raises(MsltError, match="has no column 'de'"):
        load_parallel(["en", "de"], 3, parallel_file=path)
    with pytest.raises(MsltError, match=r"--n: 4 is more than the 3 .* use --n 3 or less"):
        load_parallel(["en", "sw"], 4, parallel_file=path)
    # too few rows for any --n: "use --n 1 or less" named a value --n refuses
    path.write_text("en,sw\nyes,ndiyo\nyes,ndiyo\nno,hapana\n")
    with pytest.raises(MsltError, match=r"holds 2 distinct .* needs 3 or more$"):
        load_parallel(["en", "sw"], 3, parallel_file=path)


def test_an_id_column_names_rows_unless_it_is_indonesian(tmp_path: Path) -> None:
    """The ``id`` column named the rows whatever it was: with ``--langs en,id`` the Indonesian
    sentences became the rows' names, and ids given twice lost which row a result was of."""
    path = tmp_path / "pairs.csv"
    path.write_text("en,id\nThe cat sleeps.,Kucing tidur.\nIt rains.,Hujan turun.\n"
                    "I like tea.,Saya suka teh.\nThe door is open.,Pintu terbuka.\n")  # fmt: skip
    sentences = load_parallel(["en", "id"], 4, parallel_file=path)
    assert sentences.ids == [f"pairs.csv/{i}" for i in range(4)]
    assert sorted(sentences.texts["id"]) == sorted(
        ["Kucing tidur.", "Hujan turun.", "Saya suka teh.", "Pintu terbuka."]
    )
    path.write_text("id,en,sw\na,hello,habari\na,yes,ndiyo\nb,no,hapana\n")
    with pytest.raises(MsltError, match=r"column 'id' names the row 'a' more than once"):
        load_parallel(["en", "sw"], 3, parallel_file=path)


def test_a_parquet_files_category_columns_are_text(tmp_path: Path) -> None:
    """A dictionary-encoded column (pandas' ``category``) was refused as "not text"."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "pairs.parquet"
    german = pa.array(["eins", "zwei", "drei", "vier"]).dictionary_encode()
    pq.write_table(pa.table({"en": ["one", "two", "three", "four"], "de": german}), path)
    sentences = load_parallel(["en", "de"], 4, parallel_file=path)
    assert sorted(sentences.texts["de"]) == ["drei", "eins", "vier", "zwei"]
    numbers = pa.array([1, 2, 3, 4]).dictionary_encode()
    pq.write_table(pa.table({"en": ["one", "two", "three", "four"], "de": numbers}), path)
    with pytest.raises(MsltError, match="column 'de' holds int64 values, not text"):
        load_parallel(["en", "de"], 4, parallel_file=path)


# --- representations ---------------------------------------------------------------------------


def test_pooling_covers_only_the_sentence_and_batching_changes_nothing(tiny_model_dir) -> None:
    from mslt_it.modeling import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    texts = load_parallel(["en", "ar", "zh"], 5).texts
    sentences = [t for lang in ("en", "ar", "zh") for t in texts[lang]]
    plain = encode_sentences(tokenizer, sentences)
    assert plain.input_ids[0][0] == tokenizer.bos_token_id and 0 not in plain.positions[0]
    chat = encode_sentences(tokenizer, sentences, chat_template=True)
    first = chat.positions[0]
    assert tokenizer.decode([chat.input_ids[0][i] for i in first]).strip() == sentences[0]

    model = load_model(str(tiny_model_dir), "cpu", resolve_dtype("auto", "cpu"))
    for pooling in ("mean", "last"):
        batched = extract(model, plain, [0, 1, 2], pooling=pooling, batch_size=7)
        single = extract(model, plain, [0, 1, 2], pooling=pooling, batch_size=1)
        assert batched.shape == (3, len(sentences), model.config.hidden_size)
        np.testing.assert_allclose(batched, single, atol=2e-5)


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("constant", "does not hold the sentence"),
        ("{{ messages[0].content | upper }}", "does not hold the sentence"),
        ('{{ raise_exception("no user turns here") }}', "cannot render a prompt: no user turns"),
        (
            "{{ messages.__class__.__mro__ }}",
            "cannot render a prompt: access to attribute '__class__'",
        ),
    ],
)
def test_a_chat_template_that_loses_or_refuses_the_sentence_is_one_line(
    tiny_model_dir, template: str, fragment: str
) -> None:
    """Rendering the sentences was outside every guard (an internal error for a template that
    raises, as real ones do for turns they do not take), and a template that dropped the
    sentence was pooled over its own text: every measure was of the template."""
    from mslt_it.modeling import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    tokenizer.chat_template = template
    with pytest.raises(MsltError, match=r"^--chat-template: the model's chat template") as error:
        encode_sentences(tokenizer, ["A sentence of the data."], chat_template=True)
    assert fragment in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("points", [2, 3, 4])
def test_tsne_projects_the_fewest_points_plot_n_allows(points: int) -> None:
    """`--plot-n 1` with two languages is 2 points: t-SNE's perplexity floor of 2 was not below
    the count, and sklearn's ValueError an internal error."""
    from mslt_it.analysis.plots import project

    x = np.random.default_rng(0).normal(size=(points, 8))
    coordinates, _ = project(x, "tsne", seed=0)
    assert coordinates.shape == (points, 2) and np.isfinite(coordinates).all()


def test_run_labels() -> None:
    assert run_label({"dataset": {"sources": ["en"]}}) == "SSLT en"
    assert run_label({"dataset": {"sources": ["ar", "en", "zh"]}}) == "MSLT ar+en+zh"
    assert run_label({}) is None


# --- the command -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA adapter with non-identity weights and the run.json `mslt-it train` writes."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    config = LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    folder = tmp_path_factory.mktemp("adapters") / "mslt"
    get_peft_model(base, config).save_pretrained(folder)
    run = {
        "base_model": str(tiny_model_dir),
        "dataset": {"task": "xnli", "sources": ["ar", "en", "zh"]},
        "template": "xnli/en-instruct",
    }
    (folder / "run.json").write_text(json.dumps(run))
    return folder


def assert_png(path: Path) -> None:
    from PIL import Image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.width > 400 and image.height > 300


def test_analyze_end_to_end(cli, tiny_model_dir, adapter_dir, tmp_path: Path) -> None:
    out = tmp_path / "analysis"
    args = ["analyze", "--model", tiny_model_dir, "--adapter", adapter_dir]
    args += ["--langs", "en,ar,zh", "--data", "synthetic", "--n", "24", "--out", out]
    result = cli(*args)
    assert result.code == 0, result.err
    assert "MSLT ar+en+zh" in result.out and "analysis.json" in result.out
    data = json.loads((out / "analysis.json").read_text())
    inputs = data["inputs"]
    assert inputs["langs"] == ["en", "ar", "zh"] and inputs["n"] == 24
    assert inputs["layers"] == [0, 1, 2] and inputs["plot_layer"] == 2
    assert inputs["pooling"] == "mean" and inputs["data"] == "synthetic"
    # dtype and device auto, as they resolved: bf16 on a GPU moves the numbers
    assert inputs["dtype"] == "auto" and inputs["ran_on"] == {"dtype": "float32", "device": "cpu"}
    assert inputs["adapters"][0]["label"] == "MSLT ar+en+zh"
    # the adapter's identity, as results.json records it: a report matches the two by it
    assert inputs["adapters"][0]["sha256"] == weights_sha256(adapter_dir)
    assert set(data["meanings"]) == {"cka", "retrieval", "lid", "silhouette"}
    assert data["chance"] == {"retrieval": pytest.approx(1 / 24), "lid": pytest.approx(1 / 3)}
    assert [m["label"] for m in data["models"]] == ["base", "MSLT ar+en+zh"]
    for model in data["models"]:
        assert [entry["layer"] for entry in model["layers"]] == [0, 1, 2]
        for entry in model["layers"]:
            assert 0 <= entry["cka"]["value"] <= 1 and 0 <= entry["retrieval"]["value"] <= 1
            assert 0 <= entry["lid"]["value"] <= 1 and -1 <= entry["silhouette"]["value"] <= 1
            assert [row[i] for i, row in enumerate(entry["cka"]["pairs"])] == [1.0] * 3
            assert [row[i] for i, row in enumerate(entry["retrieval"]["pairs"])] == [None] * 3
    base, adapted = (m["layers"][2]["cka"]["pairs"] for m in data["models"])
    assert base != adapted  # the adapter changes the last layer, not the embeddings
    assert data["models"][0]["layers"][0] == data["models"][1]["layers"][0]
    assert data["plots"] == ["tsne.png", "layers.png", "cka.png"]
    for name in data["plots"]:
        assert_png(out / name)
    again = cli(*args)
    assert_one_line_error(again, "--out", "--overwrite")
    (out / "cka.png").unlink()  # as a kill while the pictures were moved in leaves it
    assert_one_line_error(cli(*args), "lacks its cka.png", "stopped before", "--overwrite")
    assert cli(*args, "--overwrite").code == 0
    assert_png(out / "cka.png")
    (out / "tsne.png").write_text("mine")  # a picture edited: named, not "pass --overwrite"
    assert_one_line_error(cli(*args), "tsne.png exists and is not a picture mslt-it analyze")


def test_analyze_options_pca_last_pooling_chosen_layers(cli, tiny_model_dir, tmp_path) -> None:
    out = tmp_path / "a"
    result = cli(
        "analyze", "--model", tiny_model_dir, "--langs", "en,de", "--n", "12",
        "--layers", "0,-1", "--pooling", "last", "--projection", "pca", "--center",
        "--chat-template", "--plot-layer", "0", "--out", out,
    )  # fmt: skip
    assert result.code == 0, result.err
    data = json.loads((out / "analysis.json").read_text())
    assert data["inputs"]["layers"] == [0, 2] and data["inputs"]["plot_layer"] == 0
    assert data["inputs"]["center"] is True and data["inputs"]["chat_template"] is True
    assert [m["label"] for m in data["models"]] == ["base"]
    assert data["plots"] == ["pca.png", "layers.png", "cka.png"]  # named after the projection
    assert_png(out / "pca.png")
    assert not (out / "tsne.png").exists()
    # last-token pooling at the embeddings: every sentence ends in the chat template's token.
    # Its CKA 0 and silhouette 0 measure nothing: no value, as the tables say "not measured"
    first, last = data["models"][0]["layers"]
    assert first["constant"] and not last["constant"]
    assert {name: first[name]["value"] for name in ("cka", "retrieval", "lid", "silhouette")} == (
        dict.fromkeys(("cka", "retrieval", "lid", "silhouette"))
    )
    assert first["cka"]["pairs"] is None
    assert isinstance(last["cka"]["value"], float) and isinstance(last["lid"]["value"], float)


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--langs", "en,xx"], ["--langs", "'xx'"]),
        (["--langs", "en"], ["--langs", "at least two"]),
        (["--layers", "7"], ["--layers", "7", "0..2"]),
        (["--n", "6000"], ["--n", "6000", "5010"]),
        (["--plot-layer", "1", "--layers", "0,2"], ["--plot-layer"]),
        (["--pooling", "max"], ["--pooling", "mean, last"]),
        (["--n", "2"], ["--n", "3 or more", "CKA of two centred points is 1"]),
        (["--layers", "0_1"], ["--layers", "'0_1' is not a layer"]),  # int() read it as 1
        (["--layers", "\u0661"], ["--layers", "is not a layer"]),  # an Arabic-Indic 1
    ],
)
def test_analyze_errors_are_one_line(cli, tiny_model_dir, tmp_path, extra, fragments) -> None:
    args = {"--langs": "en,de", "--n": "8"}
    for key, value in zip(extra[::2], extra[1::2], strict=True):
        args[key] = value
    flat = [item for pair in args.items() for item in pair]
    result = cli("analyze", "--model", tiny_model_dir, *flat, "--out", tmp_path / "x")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "edit", [None, "adapter_config.json", "adapter_model.safetensors", "run.json"]
)
def test_an_adapter_edited_since_training_is_not_named_by_its_run_record(
    cli, tiny_model_dir, adapter_dir, tmp_path: Path, edit: str | None
) -> None:
    """An adapter of mslt-it's whose config or weights were edited since training was analysed
    as "MSLT ar+en+zh", run.json's name for a training that made other weights (``merge``
    refuses it). It is named by its folder now, and the warning says why."""
    from mslt_it.identity import model_identity
    from mslt_it.io import mark_owner

    folder = tmp_path / "scaled"
    shutil.copytree(adapter_dir, folder)
    run = json.loads((folder / "run.json").read_text())
    run["base_model_identity"] = model_identity(tiny_model_dir)  # as `mslt-it train` writes it
    (folder / "run.json").write_text(json.dumps(run))
    mark_owner(folder, "adapter")
    if edit == "adapter_config.json":
        config = json.loads((folder / edit).read_text())
        (folder / edit).write_text(json.dumps({**config, "lora_alpha": 5000}))
    elif edit == "adapter_model.safetensors":  # the weights scaled by hand
        from safetensors.torch import load_file, save_file

        save_file({k: 100 * t for k, t in load_file(folder / edit).items()}, folder / edit)
    if edit == "run.json":  # a single-source run told to be the three sources (or the reverse)
        run["dataset"]["sources"] = ["en"]
        (folder / edit).write_text(json.dumps(run))
    args = ["analyze", "--model", tiny_model_dir, "--adapter", folder, "--langs", "en,de"]
    result = cli(*args, "--n", "4", "--plot-n", "4", "--layers", "2", "--out", tmp_path / "an")
    assert result.code == 0, result.err
    data = json.loads((tmp_path / "an" / "analysis.json").read_text())
    labels = [model["label"] for model in data["models"]]
    if edit is None:
        assert labels == ["base", "MSLT ar+en+zh"] and data["warnings"] == []
    else:
        assert labels == ["base", "scaled"]
        assert data["warnings"] == [
            f"scaled: its {edit} was edited since training, so it is named by its folder, not "
            "by its run.json (which no longer describes these weights' training)"
        ]
        assert data["inputs"]["adapters"][0]["dataset"] is None


def test_another_command_names_an_analysis_as_one(cli, tiny_model_dir, tmp_path: Path) -> None:
    """``tiny-model`` (or ``merge``) ``--overwrite`` at an analysis said its sealed files were
    not mslt-it's and advised ``adopt``; it is named as the analysis it is."""
    out = tmp_path / "an"
    args = ["--langs", "en,de", "--n", "4", "--plot-n", "4", "--layers", "2", "--out", out]
    assert cli("analyze", "--model", tiny_model_dir, *args).code == 0
    before = sorted(p.name for p in out.iterdir())
    result = cli("tiny-model", out, "--overwrite")
    assert_one_line_error(result, "holds an mslt-it analysis, not a model")
    assert sorted(p.name for p in out.iterdir()) == before


def test_an_adapter_as_the_model_is_named(cli, adapter_dir, tmp_path: Path) -> None:
    """transformers answered "Unrecognized model … should have a `model_type` key"."""
    args = ["--langs", "en,de", "--n", "4", "--out", tmp_path / "an"]
    result = cli("analyze", "--model", adapter_dir, *args)
    assert_one_line_error(result, "--model:", "is a LoRA adapter", "and the adapter as --adapter")
    assert not (tmp_path / "an").exists()


def test_analyze_rejects_a_folder_that_is_not_an_adapter(cli, tiny_model_dir, tmp_path) -> None:
    result = cli(
        "analyze", "--model", tiny_model_dir, "--adapter", tmp_path, "--langs", "en,de",
        "--n", "8", "--out", tmp_path / "x",
    )  # fmt: skip
    assert_one_line_error(result, "--adapter", "adapter_config.json")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("option", ["--adapter", "--model"])
def test_a_folder_holding_no_model_is_named_before_its_files_are(
    cli, tiny_model_dir, tmp_path, option
) -> None:
    """``--adapter /usr`` (or ``''`` in a busy folder) was walked whole, and a device deep
    inside named as the problem: "'…/cryptdisks.service' is a device"."""
    folder = tmp_path / "usr"
    (folder / "lib" / "deep").mkdir(parents=True)
    os.mkfifo(folder / "lib" / "deep" / "pipe")
    given = {"--adapter": ["--model", tiny_model_dir, "--adapter", folder],
             "--model": ["--model", folder]}[option]  # fmt: skip
    result = cli("analyze", *given, "--langs", "en,de", "--n", "8", "--out", tmp_path / "x")
    said = "not a PEFT adapter folder" if option == "--adapter" else "holds no model"
    assert_one_line_error(result, option, said)
    assert "pipe" not in result.err
    if option == "--adapter":  # '' is no folder (Path('') is '.': the working folder was named)
        given = ["--model", tiny_model_dir, "--adapter", ""]
        result = cli("analyze", *given, "--langs", "en,de", "--n", "8", "--out", tmp_path / "x")
        assert_one_line_error(result, "--adapter: an empty path")


def test_analyze_never_writes_into_a_model_or_a_dataset(cli, tiny_model_dir, tmp_path) -> None:
    """Written into a copy of the base, the analysis changed the model's identity (every adapter
    trained on it was refused after); into a dataset, it stopped the dataset's --overwrite."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    assert cli("build", "--task", "xnli", "--sources", "en", "--budget", "4",
               "--out", tmp_path / "ds").code == 0  # fmt: skip
    analyze = ("analyze", "--model", tiny_model_dir, "--langs", "en,de", "--n", "4",
               "--projection", "pca", "--out")  # fmt: skip
    for out in (model, model / "analysis", tmp_path / "ds"):
        before = sorted(p.name for p in out.parent.rglob("*"))
        assert_one_line_error(cli(*analyze, out), "mslt-it's", "choose another folder")
        assert sorted(p.name for p in out.parent.rglob("*")) == before


def test_a_failed_overwrite_with_another_projection_keeps_the_earlier_pictures(
    cli, tiny_model_dir, tmp_path, monkeypatch
) -> None:
    """The earlier projection's picture was removed before the new pictures were drawn: a
    failure (or a kill) then left an analysis.json listing a picture that was gone."""
    from mslt_it.analysis import run as analysis_run

    out = tmp_path / "a"
    args = ("analyze", "--model", tiny_model_dir, "--langs", "en,de", "--n", "8",
            "--layers", "-1", "--out", out)  # fmt: skip
    assert cli(*args, "--projection", "pca").code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def fails(*_args, **_kwargs):
        raise MsltError("drawing failed")

    monkeypatch.setattr(analysis_run, "draw_plots", fails)
    assert_one_line_error(cli(*args, "--projection", "tsne", "--overwrite"), "drawing failed")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    monkeypatch.undo()
    assert cli(*args, "--projection", "tsne", "--overwrite").code == 0
    assert (out / "tsne.png").is_file() and not (out / "pca.png").exists()


def test_analyze_overwrite_replaces_only_its_own_unedited_pictures(cli, tiny_model_dir, tmp_path):
    """The folder may hold others' files, so ownership is the sealed analysis.json and the
    fingerprints it lists: a picture edited since, or a forged analysis.json, stops the run."""
    out = tmp_path / "a"
    args = ("analyze", "--model", tiny_model_dir, "--langs", "en,de", "--n", "8",
            "--layers", "-1", "--projection", "pca", "--out", out)  # fmt: skip
    assert cli(*args).code == 0
    assert cli(*args, "--overwrite").code == 0  # its own pictures, unchanged: replaced
    (out / "layers.png").write_bytes(b"my edit")
    assert_one_line_error(cli(*args, "--overwrite"), "layers.png", "edited since")
    assert (out / "layers.png").read_bytes() == b"my edit"
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / "analysis.json").write_text('{"kind": "mslt-it analysis"}')
    (forged / "cka.png").write_bytes(b"precious")
    result = cli(*args[:-1], forged, "--overwrite")
    assert_one_line_error(result, "analysis.json", "not an analysis.json written by mslt-it")
    assert (forged / "cka.png").read_bytes() == b"precious"


@pytest.mark.parametrize("stop_at", ["drawing", "moving"])
def test_a_killed_analysis_never_leaves_pictures_nothing_can_replace(
    cli, tiny_model_dir, tmp_path, monkeypatch, stop_at: str
) -> None:
    """Pictures are drawn aside, recorded in analysis.json, then moved into place: a run stopped
    while drawing leaves no picture in the folder, and one stopped between the record and the
    moves leaves the earlier pictures, still provably analyze's. The next run replaces both."""
    import mslt_it.analysis.run as analysis_run

    out = tmp_path / "a"
    args = ("analyze", "--model", tiny_model_dir, "--langs", "en,de", "--n", "8",
            "--layers", "-1", "--projection", "pca", "--out", out)  # fmt: skip
    assert cli(*args).code == 0
    before = {p.name: p.read_bytes() for p in out.glob("*.png")}

    class Killed(BaseException):
        """Stands for kill -9: nothing after it runs."""

    if stop_at == "drawing":

        def killed(*_args, **_kwargs):
            raise Killed

        monkeypatch.setattr(analysis_run, "plot_cka", killed)
    else:
        import mslt_it.outputs as outputs_module  # where the recorded pictures are moved in

        monkeypatch.setattr(outputs_module.os, "replace", lambda *_: (_ for _ in ()).throw(Killed))
    changed = (*args[:5], "--n", "10", *args[7:])
    with pytest.raises(Killed):
        cli(*changed, "--overwrite")
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == before
    monkeypatch.undo()
    result = cli(*changed, "--overwrite")
    assert result.code == 0, result.err
    document = json.loads((out / "analysis.json").read_text())
    assert document["inputs"]["n"] == 10
    assert not list(out.glob(".*.tmp"))
    assert cli(*changed, "--overwrite").code == 0  # and again: its own pictures


def test_analysis_stages_its_pictures_where_no_users_folder_can_be(
    cli, tiny_model_dir, tmp_path
) -> None:
    """analyze writes into a folder that is not its own (beside an evaluation's files): a fixed
    staging name there could be the user's folder, or a link to one, and was emptied."""
    out, elsewhere = tmp_path / "a", tmp_path / "mine"
    (out / ".analysis-pictures.tmp").mkdir(parents=True)
    (out / ".analysis-pictures.tmp" / "thesis.txt").write_text("mine")
    elsewhere.mkdir()
    (elsewhere / "tsne.png").write_bytes(b"my picture")
    (out / ".final.tmp").symlink_to(elsewhere)
    args = ("analyze", "--model", tiny_model_dir, "--langs", "en,de", "--n", "8",
            "--layers", "-1", "--out", out)  # fmt: skip
    result = cli(*args)
    assert result.code == 0, result.err
    assert (out / ".analysis-pictures.tmp" / "thesis.txt").read_text() == "mine"
    assert [p.name for p in elsewhere.iterdir()] == ["tsne.png"]
    assert (elsewhere / "tsne.png").read_bytes() == b"my picture"
    assert (out / "tsne.png").is_file()
    assert sorted(p.name for p in out.glob(".*")) == [".analysis-pictures.tmp", ".final.tmp"]


def test_sentences_cut_to_the_same_tokens_are_not_measured(cli, tiny_model_dir, tmp_path) -> None:
    """``--max-length 1`` leaves every sentence one token: the main table printed numbers
    (CKA 0.000, LID 0.500) the settings table called unmeasured, and the warnings blamed
    last-token pooling."""
    result = cli(
        "analyze", "--model", tiny_model_dir, "--langs", "en,de", "--n", "5", "--plot-n", "5",
        "--max-length", "1", "--out", tmp_path / "a",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "not measured" in result.out and "0.500" not in result.out
    assert "--max-length cut them all to the same tokens" in result.err
    assert "last-token pooling" not in result.err
    document = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert all(entry["constant"] for entry in document["models"][0]["layers"])


def test_a_language_of_one_text_is_said_to_be_one_text(cli, tiny_model_dir, tmp_path) -> None:
    """Every German sentence "Hallo.", mean pooling: the warning blamed last-token pooling at
    the embeddings for every layer, neither of which the run used."""
    path = tmp_path / "same.csv"
    path.write_text("en,de\nThe cat sleeps.,Hallo.\nIt rains today.,Hallo.\n"
                    "I like tea.,Hallo.\nThe door is open.,Hallo.\n")  # fmt: skip
    result = cli("analyze", "--model", tiny_model_dir, "--parallel", path, "--langs", "en,de",
                 "--n", "4", "--plot-n", "4", "--out", tmp_path / "a")  # fmt: skip
    assert result.code == 0, result.err
    said = " ".join(result.err.split())
    assert "every de sentence has the same representation (they are one text)" in said
    assert "last-token pooling" not in said


def test_one_adapter_under_two_spellings_is_refused(tmp_path: Path, monkeypatch) -> None:
    """``--adapter ad --adapter ./ad/`` analysed one adapter twice under one label, and the
    settings table, keyed by label, kept one of them."""
    from mslt_it.analysis.run import AnalysisConfig, check_options

    (tmp_path / "ad").mkdir()
    monkeypatch.chdir(tmp_path)
    for spellings in (["ad", "ad"], ["ad", f"{tmp_path}/ad/"]):
        config = AnalysisConfig(model="m", langs=["en", "de"], adapters=spellings)
        with pytest.raises(MsltError, match=r"^--adapter: .*(given twice|are one)"):
            check_options(config)


def test_auto_is_bfloat16_only_on_a_gpu_that_has_it(monkeypatch) -> None:
    """analyze resolved ``auto`` to bfloat16 on any GPU (evaluation asks whether it has it):
    a V100 ran it slowly or not at all."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert resolve_dtype("auto", "cuda") == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert resolve_dtype("auto", "cuda:0") == torch.bfloat16
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("float16", "cpu") == torch.float16
