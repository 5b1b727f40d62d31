"""`mslt-it analyze` review: adapters in folders of one name, and layers.png's layer axis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mslt_it.analysis import plots
from mslt_it.analysis.extract import Adapter, unique_labels


def lora_adapter(base: Path, folder: Path, seed: int) -> Path:
    """A LoRA adapter of random (non-identity) weights with the run.json training writes; no
    training, so it is cheap, and each seed gives other numbers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base))
    config = LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(folder)
    run = {"base_model": str(base), "dataset": {"task": "xnli", "sources": ["de", "en"]}}
    (folder / "run.json").write_text(json.dumps(run))
    return folder


def labels_of(*adapters: tuple[str, str]) -> list[str]:
    return [a.label for a in unique_labels([Adapter(Path(p), label) for p, label in adapters])]


def test_adapters_in_folders_of_one_name_get_labels_of_their_own() -> None:
    """``runs/a`` and ``x3/a`` were both ``MSLT de+en [a]``: the folder's name alone."""
    assert labels_of(("runs/a", "MSLT de+en"), ("x3/a", "MSLT de+en")) == [
        "MSLT de+en [runs/a]",
        "MSLT de+en [x3/a]",
    ]
    # only as much of the path as tells them apart; a label of its own is kept as it is
    assert labels_of(("ad1", "MSLT de+en"), ("ad2", "MSLT de+en"), ("s", "SSLT en")) == [
        "MSLT de+en [ad1]",
        "MSLT de+en [ad2]",
        "SSLT en",
    ]
    assert labels_of(("a", "M"), ("runs/a", "M")) == ["M [a]", "M [runs/a]"]
    assert labels_of(("base", "base"), ("x/base", "base")) == ["base [base]", "base [x/base]"]


def test_labels_stay_unique_when_a_folder_added_makes_another_clash() -> None:
    """A label that becomes another's once a folder is added is told apart too."""
    found = labels_of(("a", "M [a]"), ("p/a", "M"), ("q/a", "M"))
    assert len(set(found)) == 3 and "base" not in found


def test_analyze_keeps_adapters_in_folders_of_one_name_apart(
    cli, tiny_model_dir, tmp_path: Path, monkeypatch
) -> None:
    """Both adapters were labelled alike: analysis.json gave both runs/a's path and x3/a's
    numbers under it, and the settings table (keyed by label) dropped one of them."""
    monkeypatch.chdir(tmp_path)
    for parent, seed in (("runs", 1), ("x3", 2)):
        (tmp_path / parent).mkdir()
        lora_adapter(tiny_model_dir, tmp_path / parent / "a", seed)
    common = ["--model", tiny_model_dir, "--langs", "en,de", "--n", "10", "--plot-n", "10"]
    common += ["--layers", "2"]
    both = cli("analyze", *common, "--adapter", "runs/a", "--adapter", "x3/a", "--out", "dl2")
    assert both.code == 0, both.err
    alone = cli("analyze", *common, "--adapter", "x3/a", "--out", "x3only")
    assert alone.code == 0, alone.err
    data = json.loads(Path("dl2/analysis.json").read_text())
    labels = ["base", "MSLT de+en [runs/a]", "MSLT de+en [x3/a]"]
    assert [m["label"] for m in data["models"]] == labels
    assert [m["adapter"] for m in data["models"]] == [None, "runs/a", "x3/a"]
    assert [a["label"] for a in data["inputs"]["adapters"]] == labels[1:]
    assert data["settings"]["models"] == labels
    assert all(f"{name} vs" in data["settings_table"] for name in labels[1:])
    assert len(data["settings"]["pairs"]) == 3
    # x3/a's numbers are its own: those it gets analysed alone
    x3_alone = json.loads(Path("x3only/analysis.json").read_text())["models"][1]["layers"][0]
    runs, x3 = (m["layers"][0] for m in data["models"][1:])
    assert x3["cka"]["value"] == pytest.approx(x3_alone["cka"]["value"], abs=1e-5)
    assert runs["cka"]["value"] != pytest.approx(x3_alone["cka"]["value"], abs=1e-5)


def layer_entries(layers: list[int]) -> list[dict[str, Any]]:
    """One model's analysis.json ``layers`` with made-up values."""
    value = {"value": 0.5}
    return [
        {"layer": n, "cka": value, "retrieval": value, "lid": value, "silhouette": value}
        for n in layers
    ]


@pytest.mark.parametrize("layers", [[2], [0, 2], list(range(33))])
def test_layers_png_has_whole_layer_ticks(layers: list[int], monkeypatch) -> None:
    """One analysed layer (``--layers 2``) was drawn on ticks from 1.900 to 2.100 by 0.025."""
    drawn = []
    monkeypatch.setattr(plots, "save_png", lambda figure, _path: drawn.append(figure))
    models = [{"label": "base", "layers": layer_entries(layers)}]
    plots.plot_layers(models, {"retrieval": 0.1, "lid": 0.5}, Path("layers.png"))
    (figure,) = drawn
    for ax in figure.axes:
        low, high = ax.get_xlim()
        shown = [t for t in ax.get_xticks() if low <= t <= high]
        assert shown and all(float(t).is_integer() for t in shown), shown
        assert low < min(layers) and max(layers) < high
    if layers == [2]:
        assert all(list(ax.get_xticks()).count(2.0) == 1 for ax in figure.axes)
