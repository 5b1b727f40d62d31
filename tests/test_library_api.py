"""The library as a notebook calls it: every command is a function a user can call too, so the
function, not the command, checks what it is given, resolves mslt-it's model names, and leaves
the caller's process as it found it (random generators, library bars, environment)."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from mslt_it.config import DataConfig
from mslt_it.data import build_dataset
from mslt_it.errors import MsltError
from mslt_it.report import write_report
from mslt_it.selection import (
    SelectionOptions,
    evaluate_criteria,
    fit_predictor,
    load_results_csv,
    select_sources,
)
from mslt_it.tasks import add_tasks_dirs
from mslt_it.tiny import build_tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HF_BARS = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")
SFT = {"max_steps": 2, "per_device_train_batch_size": 2, "save_strategy": "no"}


def one_line_error(call: Callable[[], Any], *fragments: str) -> str:
    """``call`` raises an MsltError of one line holding every fragment; its message."""
    with pytest.raises(MsltError) as raised:
        call()
    message = str(raised.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def small_dataset(folder: Path) -> Path:
    return build_dataset(DataConfig(task="xnli", sources=["en"], budget=8), folder).path


def random_states() -> tuple[Any, ...]:
    """Every global generator a build or a training seeds, as comparable values."""
    import torch

    numpy_state = np.random.get_state()
    return (
        random.getstate(),
        numpy_state[0],
        numpy_state[1].tolist(),
        numpy_state[2:],
        torch.initial_seed(),
        torch.random.get_rng_state().tolist(),
    )


@pytest.fixture
def bars_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """mslt-it's bars off (``MSLT_IT_PROGRESS=0``, as in a notebook that asked for none), the
    libraries' own bars on and their variables unset, as a fresh notebook has them; the
    libraries' state is put back afterwards (an in-process CLI run of another test may have
    turned them off)."""
    import datasets
    from transformers.utils import logging as hf_logging

    monkeypatch.setenv("MSLT_IT_PROGRESS", "0")
    for name in HF_BARS:
        monkeypatch.delenv(name, raising=False)
    before = (hf_logging.is_progress_bar_enabled(), datasets.utils.are_progress_bars_disabled())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf_logging.enable_progress_bar()
        datasets.enable_progress_bars()
    yield hf_logging
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (hf_logging.enable_progress_bar if before[0] else hf_logging.disable_progress_bar)()
        (datasets.disable_progress_bars if before[1] else datasets.enable_progress_bars)()


@pytest.fixture
def named_tiny(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``mslt-it:tiny`` already made in a fresh cache (a copy of the session's tiny model,
    which is what the name builds)."""
    monkeypatch.setenv("MSLT_IT_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "models" / "tiny"
    shutil.copytree(tiny_model_dir, folder)
    return folder


# -- checks the CLI made alone ----------------------------------------------------------------


def test_temperature_without_its_budget_mode_is_refused(tmp_path: Path) -> None:
    """The library built it and recorded temperature 3.33, the 2.0 given dropped."""
    config = DataConfig(task="xnli", sources=["ar"], budget=6, temperature=2.0)
    one_line_error(
        lambda: build_dataset(config, tmp_path / "ds"),
        "temperature: 2.0 is read only with budget_mode temperature",
    )
    assert not (tmp_path / "ds").exists()


def test_max_length_without_a_tokenizer_is_refused(tmp_path: Path) -> None:
    config = DataConfig(task="xnli", sources=["ar"], budget=6, max_length=10)
    one_line_error(
        lambda: build_dataset(config, tmp_path / "ds"), "max_length: 10 is read only with"
    )
    assert not (tmp_path / "ds").exists()


def test_script_mismatch_drop_without_a_corpus_is_refused(tmp_path: Path) -> None:
    config = DataConfig(task="xnli", sources=["ar"], budget=6, script_mismatch="drop")
    one_line_error(lambda: build_dataset(config, tmp_path / "ds"), "script_mismatch: drop")


def test_a_config_written_back_whole_still_builds(tmp_path: Path) -> None:
    """A recipe's data section and a manifest hold every default beside any mode: only a value
    other than the default is a setting given for nothing."""
    whole = DataConfig(task="xnli", sources=["ar"], budget=6).model_dump()
    built = build_dataset(DataConfig.model_validate(whole), tmp_path / "ds")
    assert built.manifest["config"]["temperature"] == 3.33
    tempered = DataConfig(
        task="xnli", sources=["ar", "en"], budget=6, budget_mode="temperature", temperature=2.0
    )
    assert build_dataset(tempered, tmp_path / "t").manifest["config"]["temperature"] == 2.0


def test_a_recipe_with_max_length_and_no_tokenizer_is_refused_when_loaded(tmp_path: Path) -> None:
    """Each build of the recipe would refuse it: said once, naming the file, before any run."""
    from mslt_it.recipes import load_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: r\ndata: {task: xnli, budget: 4, max_length: 128}\nsources: [[en]]\n"
        "model: {name_or_path: mslt-it:tiny}\n"
    )
    one_line_error(lambda: load_recipe(recipe), f"{recipe}: data.max_length: 128 is read only")


def test_a_model_name_is_no_folder_for_a_tiny_model(tmp_path: Path, monkeypatch) -> None:
    """``build_tiny_model("mslt-it:foo")`` made ``./mslt-it:foo``, which no command reads."""
    monkeypatch.chdir(tmp_path)
    one_line_error(
        lambda: build_tiny_model("mslt-it:foo", languages=["en"]),
        "out_dir: 'mslt-it:foo' reads as one of mslt-it's model names",
    )
    assert not (tmp_path / "mslt-it:foo").exists()


def test_evaluate_resolves_mslt_its_model_names(named_tiny: Path, tmp_path: Path) -> None:
    """``EvalConfig(model="mslt-it:tiny")`` was "neither a folder here nor a Hub id": only
    ``mslt-it eval`` resolved the names."""
    from mslt_it.evaluation import EvalConfig, evaluate

    config = EvalConfig(
        model="mslt-it:tiny", task="xnli", langs=["en"], limit=2, mode="rank", bootstrap_samples=0
    )
    evaluate(config, tmp_path / "ev")
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert results["model"] == str(named_tiny)


def test_train_resolves_mslt_its_model_names(named_tiny: Path, tmp_path: Path) -> None:
    from mslt_it.training import ModelConfig, TrainConfig
    from mslt_it.training.run import train

    dataset = small_dataset(tmp_path / "ds")
    run = train(
        ModelConfig(name_or_path="mslt-it:tiny"),
        TrainConfig(dataset=str(dataset), sft=SFT),
        tmp_path / "ad",
    ).run
    assert run["base_model"] == str(named_tiny.resolve())
    assert run["base_model_name"] == "mslt-it:tiny"


def test_selection_resolves_mslt_its_model_names(named_tiny: Path) -> None:
    options = SelectionOptions(tokenizer="mslt-it:tiny", sample=20)
    found = select_sources("xnli", ["ar", "de", "en"], 2, "coverage", options=options)
    assert found and found[0].k == 2


# -- the caller's state: random generators, library bars, environment -------------------------


def test_train_leaves_the_callers_state_as_it_was(
    tiny_model_dir: Path, tmp_path: Path, bars_on: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    """After ``train`` torch.initial_seed() was 42 and numpy's and Python's generators were
    reset (the Trainer's set_seed), HF_HUB_DISABLE_PROGRESS_BARS stayed set, and the libraries'
    bars stayed off for the rest of the session."""
    import torch

    from mslt_it.training import ModelConfig, TrainConfig
    from mslt_it.training.run import train

    dataset = small_dataset(tmp_path / "ds")
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    before = random_states()
    capfd.readouterr()
    train(
        ModelConfig(name_or_path=str(tiny_model_dir)),
        TrainConfig(dataset=str(dataset), sft=SFT),
        tmp_path / "ad",
    )
    err = capfd.readouterr().err
    problems = [
        *(["random state changed"] if random_states() != before else []),
        *(f"{name} left set" for name in HF_BARS if name in os.environ),
        *([] if bars_on.is_progress_bar_enabled() else ["transformers' bars left off"]),
        *([f"a bar drawn: {err!r}"] if "it/s]" in err else []),
    ]
    assert not problems, problems


def test_build_tiny_model_leaves_the_callers_state_as_it_was(
    tmp_path: Path, bars_on: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    """The build seeded every generator with 0 and drew a "Writing model shards" bar with
    mslt-it's bars off; its own result depends on its seed alone."""
    import torch

    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    before = random_states()
    capfd.readouterr()
    first = build_tiny_model(tmp_path / "a", languages=["en"], pretrain_steps=2)
    err = capfd.readouterr().err
    problems = [
        *(["random state changed"] if random_states() != before else []),
        *([f"a bar drawn: {err!r}"] if "Writing model shards" in err else []),
        *([] if bars_on.is_progress_bar_enabled() else ["transformers' bars left off"]),
    ]
    assert not problems, problems
    torch.manual_seed(99)  # another caller's state: the same model
    second = build_tiny_model(tmp_path / "b", languages=["en"], pretrain_steps=2)
    weights = "model.safetensors"
    assert (first / weights).read_bytes() == (second / weights).read_bytes()


def test_adapters_loaded_leave_the_callers_random_state_as_it_was(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Loading a LoRA adapter initialises its weights before reading them, drawing from torch's
    generator: a notebook's next ``torch.rand`` differed after ``evaluate`` or ``run_analysis``
    of an adapter, and after ``merge_adapter``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mslt_it.analysis import AnalysisConfig, run_analysis
    from mslt_it.evaluation import EvalConfig, evaluate
    from mslt_it.training.merge import merge_adapter

    adapter = tmp_path / "ad"
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    get_peft_model(base, lora).save_pretrained(adapter)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(adapter)
    config = EvalConfig(
        model=str(tiny_model_dir), adapters=[str(adapter)], task="xcopa", langs=["et"],
        limit=2, mode="rank", bootstrap_samples=0, template="xcopa/en-instruct",
        allow_template_mismatch=True,
    )  # fmt: skip
    analysis = AnalysisConfig(
        model=str(tiny_model_dir), adapters=[str(adapter)], langs=["en", "de"], n=4, plot_n=4,
        projection="pca",
    )  # fmt: skip
    calls = {
        "evaluate": lambda: evaluate(config, tmp_path / "ev"),
        "run_analysis": lambda: run_analysis(analysis, tmp_path / "an"),
        "merge_adapter": lambda: merge_adapter(adapter, tmp_path / "merged"),
    }
    moved = []
    for name, call in calls.items():
        random.seed(7)
        np.random.seed(7)
        torch.manual_seed(7)
        before = random_states()
        call()
        if random_states() != before:
            moved.append(name)
    assert not moved, moved


def test_evaluate_draws_no_library_bar_with_progress_off(
    tiny_model_dir: Path, tmp_path: Path, bars_on: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    """transformers' "Loading weights" bar showed per model load; the CLI shows none."""
    from mslt_it.evaluation import EvalConfig, evaluate

    capfd.readouterr()
    config = EvalConfig(
        model=str(tiny_model_dir), task="xnli", langs=["en"], limit=2, mode="rank",
        bootstrap_samples=0,
    )  # fmt: skip
    evaluate(config, tmp_path / "ev")
    err = capfd.readouterr().err
    assert "Loading weights" not in err, err
    assert bars_on.is_progress_bar_enabled()


# -- a string where a list belongs ------------------------------------------------------------


RESULTS = [(["ar", "de"], 0.5), (["de", "en"], 0.6), (["ar", "en"], 0.4)]


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: select_sources("xnli", "ar,de,en", 2, "l2v-syntax"), "pool: got the string"),
        (
            lambda: select_sources("xnli", ["ar", "de", "en"], 2, "l2v-syntax", targets="sw"),
            "targets: got the string 'sw'",
        ),
        (
            lambda: select_sources("xnli", ["ar", "de", "en"], 2, "l2v-syntax", include="ar"),
            "include: got the string 'ar'",
        ),
        (lambda: build_tiny_model("unused", languages="en"), "languages: got the string 'en'"),
    ],
)
def test_a_string_is_no_list_of_language_codes(call, fragment) -> None:
    """Read one character at a time: ``--pool: unknown language code 'a'``."""
    one_line_error(call, fragment, "expected a list of language codes")


def test_one_run_dir_is_a_list_of_one(tmp_path: Path) -> None:
    """``write_report("lib/eval", out)`` said ``run dir: 'l' does not exist``: one folder is
    the common case, taken as a list of it."""
    one_line_error(lambda: write_report("lib/eval", tmp_path / "r"), "'lib/eval' does not exist")


# -- wrong types ------------------------------------------------------------------------------


@pytest.fixture
def given(tmp_path: Path, tiny_model_dir: Path) -> SimpleNamespace:
    """Well-formed arguments, for the calls that get one wrong."""
    from mslt_it.evaluation import EvalConfig
    from mslt_it.training import ModelConfig, TrainConfig

    return SimpleNamespace(
        data=DataConfig(task="xnli", sources=["en"], budget=4),
        model=ModelConfig(name_or_path=str(tiny_model_dir)),
        train=TrainConfig(dataset=str(tmp_path / "ds")),
        eval=EvalConfig(model=str(tiny_model_dir), task="xnli", langs=["en"], limit=2),
        folder=tmp_path,
        out=tmp_path / "out",
        pool=["ar", "de", "en"],
    )


def train(*args: Any, **kwargs: Any) -> Any:
    from mslt_it.training.run import train

    return train(*args, **kwargs)


def compare_models(*args: Any, **kwargs: Any) -> Any:
    from mslt_it.evaluation.compare import compare_models

    return compare_models(*args, **kwargs)


WRONG_TYPES = {
    "build out 5": (lambda g: build_dataset(g.data, 5), "out: got 5; expected a path"),
    "build out None": (lambda g: build_dataset(g.data, None), "out: got None; expected a path"),
    "build out ''": (lambda g: build_dataset(g.data, ""), "out: an empty path"),
    "build config dict": (
        lambda g: build_dataset({"task": "xnli", "sources": ["en"], "budget": 4}, g.out),
        "config: got a dict; expected a mslt_it.config.DataConfig",
    ),
    "build config str": (
        lambda g: build_dataset("xnli", g.out),
        "config: got the string 'xnli'; expected a mslt_it.config.DataConfig",
    ),
    "build overwrite str": (
        lambda g: build_dataset(g.data, g.out, overwrite="no"),
        "overwrite: got the string 'no'; expected True or False",
    ),
    "train out 5": (lambda g: train(g.model, g.train, 5), "out: got 5; expected a path"),
    "train out None": (lambda g: train(g.model, g.train, None), "out: got None"),
    "train model dict": (
        lambda g: train({"name_or_path": "m"}, g.train, g.out),
        "model_config: got a dict; expected a mslt_it.training.ModelConfig",
    ),
    "train config str": (
        lambda g: train(g.model, "ds", g.out),
        "config: got the string 'ds'; expected a mslt_it.training.TrainConfig",
    ),
    "report out 5": (lambda g: write_report([g.folder], 5), "out: got 5; expected a path"),
    "report out None": (lambda g: write_report([g.folder], None), "out: got None"),
    "report paths 5": (lambda g: write_report(5, g.out), "paths: got 5; expected a list"),
    "report one pair": (
        lambda g: write_report([g.folder], g.out, compare=("a", "b")),
        "compare.0: got the string 'a'; expected a list of (baseline, run) pairs",
    ),
    "tiny out 5": (lambda g: build_tiny_model(5), "out_dir: got 5; expected a path"),
    "tiny out None": (lambda g: build_tiny_model(None), "out_dir: got None"),
    "tiny seed str": (
        lambda g: build_tiny_model(g.out, seed="1"),
        "seed: got the string '1'; expected an integer",
    ),
    "tiny world str": (
        lambda g: build_tiny_model(g.out, world="yes"),
        "world: got the string 'yes'; expected True or False",
    ),
    "select task 5": (
        lambda g: select_sources(5, g.pool, 2, "l2v-syntax"),
        "task: got 5; expected a task name",
    ),
    "select top str": (
        lambda g: select_sources("xnli", g.pool, 2, top="3"),
        "top: got the string '3'; expected an integer",
    ),
    "select seed str": (
        lambda g: select_sources("xnli", g.pool, 2, seed="0"),
        "seed: got the string '0'; expected an integer",
    ),
    "select k float": (lambda g: select_sources("xnli", g.pool, 2.0), "k: got 2.0; expected"),
    "select k item": (lambda g: select_sources("xnli", g.pool, [2, 2.5]), "k.1: got 2.5"),
    "select options dict": (
        lambda g: select_sources("xnli", g.pool, 2, options={}),
        "options: got a dict; expected a mslt_it.selection.SelectionOptions",
    ),
    "compare models str": (
        lambda g: compare_models(g.eval, "m", g.out),
        "models: got the string 'm'; expected a list",
    ),
    "compare out 5": (lambda g: compare_models(g.eval, [g.eval.model], 5), "out: got 5"),
}


@pytest.mark.parametrize("case", list(WRONG_TYPES))
def test_a_wrong_type_is_a_one_line_error(case: str, given: SimpleNamespace) -> None:
    """Each was a bare TypeError or AttributeError from deep inside (``'dict' object has no
    attribute 'template'``), or was used (``seed="0"``); nothing is written."""
    call, fragment = WRONG_TYPES[case]
    one_line_error(lambda: call(given), fragment)
    assert not given.out.exists()


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("sample", "20", "got the string '20'; expected an integer"),
        ("vectors", 3, "got 3; expected a path"),
        ("data", None, "got None; expected a string"),
        ("diversity_weight", "1", "got the string '1'; expected a number"),
        ("tokenizer", 5, "got 5; expected a string"),
        ("given", "sample", "got the string 'sample'; expected a set of field names"),
    ],
)
def test_selection_options_of_a_wrong_type_are_one_line(field: str, value, said: str) -> None:
    """``sample="20"`` failed in a comparison deep inside, ``vectors=3`` when the file was
    read, and ``data=None`` was read as a folder named None."""
    one_line_error(lambda: SelectionOptions(**{field: value}), f"SelectionOptions.{field}: {said}")


def test_selection_options_keep_paths_and_numbers_as_their_fields_say() -> None:
    """A path given as a str is kept as a Path, and numpy's numbers as Python's, so the options
    compare equal to the CLI's (a predictor holds its options to those the user gave)."""
    import numpy as np

    options = SelectionOptions(vectors="v.csv", sample=np.int64(5), diversity_weight=np.float32(2))
    assert options == SelectionOptions(vectors=Path("v.csv"), sample=5, diversity_weight=2.0)
    assert type(options.sample) is int and type(options.diversity_weight) is float
    assert SelectionOptions(given={"sample"}).given == frozenset({"sample"})
    folders = SelectionOptions(tokenizer=Path("m"), model=Path("m"), data=Path("d"))
    assert (folders.tokenizer, folders.model, folders.data) == ("m", "m", "d")  # as before


def test_evaluate_refuses_models_to_compare_it_would_leave_out(tmp_path: Path) -> None:
    """``evaluate(EvalConfig(compare_models=[...]))`` evaluated the one model without a word:
    the command line compares them, with compare_models()."""
    from mslt_it.evaluation import EvalConfig, evaluate

    config = EvalConfig(model="mslt-it:tiny", compare_models=["mslt-it:tiny"], task="xnli",
                        langs=["en"], limit=2)  # fmt: skip
    with pytest.raises(MsltError, match="compare_models: evaluate\\(\\) evaluates one model"):
        evaluate(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# -- a hostile pass of the library API: flags, lists, paths, bounds -------------------------


def analysis_config(**fields: Any) -> Any:
    from mslt_it.analysis import AnalysisConfig

    return AnalysisConfig(**{"model": "tiny", "langs": ["en", "de"], **fields})


def run_analysis(*args: Any, **kwargs: Any) -> Any:
    from mslt_it.analysis import run_analysis

    return run_analysis(*args, **kwargs)


def merge_adapter(*args: Any, **kwargs: Any) -> Any:
    from mslt_it.training.merge import merge_adapter

    return merge_adapter(*args, **kwargs)


def rescore_file(*args: Any, **kwargs: Any) -> Any:
    from mslt_it.evaluation.scoring import rescore_file

    return rescore_file(*args, **kwargs)


def adopt_output(*args: Any, **kwargs: Any) -> Any:
    from mslt_it.outputs import adopt_output

    return adopt_output(*args, **kwargs)


def load_recipe(*args: Any, **kwargs: Any) -> Any:
    from mslt_it.recipes import load_recipe

    return load_recipe(*args, **kwargs)


def get_template(*args: Any, **kwargs: Any) -> Any:
    from mslt_it.prompts import get_template

    return get_template(*args, **kwargs)


HOSTILE = {
    # 1: a flag given as a string ran as True
    "merge overwrite str": (
        lambda g: merge_adapter(g.folder, g.out, overwrite="no"),
        "overwrite: got the string 'no'; expected True or False",
    ),
    "analysis overwrite str": (
        lambda g: run_analysis(analysis_config(), g.out, overwrite="no"),
        "overwrite: got the string 'no'; expected True or False",
    ),
    "analysis center str": (
        lambda g: analysis_config(center="no"),
        "center: got the string 'no'; expected True or False",
    ),
    # 2: a string where a list belongs, read per character
    "analysis langs str": (
        lambda g: analysis_config(langs="en,de"),
        "langs: got the string 'en,de'; expected a list of language codes",
    ),
    "analysis adapters str": (
        lambda g: analysis_config(adapters="ad1"),
        "adapters: got the string 'ad1'; expected a list",
    ),
    # 5: rescore_file's arguments
    "rescore samples huge": (
        lambda g: rescore_file(g.out / "p.jsonl", samples=10**9),
        "samples: 1000000000 is out of range; allowed: 0 to 1,000,000",
    ),
    "rescore samples negative": (
        lambda g: rescore_file(g.out / "p.jsonl", samples=-5),
        "samples: -5 is out of range",
    ),
    "rescore samples str": (
        lambda g: rescore_file(g.out / "p.jsonl", samples="100"),
        "samples: got the string '100'; expected an integer",
    ),
    "rescore samples float": (
        lambda g: rescore_file(g.out / "p.jsonl", samples=100.5),
        "samples: got 100.5; expected an integer",
    ),
    "rescore seed negative": (
        lambda g: rescore_file(g.out / "p.jsonl", seed=-1),
        "seed: -1 is out of range; allowed: 0 to 4,294,967,295",
    ),
    "rescore path None": (lambda g: rescore_file(None), "predictions: got None; expected a path"),
    "rescore path bytes": (lambda g: rescore_file(b"p.jsonl"), "predictions: got a bytes"),
    "rescore path int": (lambda g: rescore_file(5), "predictions: got 5; expected a path"),
    # 6: bare TypeErrors and AttributeErrors
    "merge adapter bytes": (lambda g: merge_adapter(b"ad1", g.out), "adapter: got a bytes"),
    "merge out None": (lambda g: merge_adapter(g.folder, None), "out: got None; expected a path"),
    "adopt folder None": (lambda g: adopt_output(None, "report"), "folder: got None"),
    "adopt kind list": (lambda g: adopt_output(g.folder, ["report"]), "kind: got a list"),
    "template id None": (lambda g: get_template(None), "template_id: got None"),
    "recipe None": (lambda g: load_recipe(None), "path: got None; expected a path"),
    "recipe bytes": (lambda g: load_recipe(b"rec.yaml"), "path: got a bytes"),
    "recipe output_dir bytes": (
        lambda g: load_recipe("rec.yaml", output_dir=b"x"),
        "output_dir: got a bytes",
    ),
    "recipe output_dir int": (
        lambda g: load_recipe("rec.yaml", output_dir=5),
        "output_dir: got 5; expected a path",
    ),
    "plan of a path": (
        lambda g: __import__("mslt_it.runner").runner.make_plan("rec.yaml"),
        "recipe: got the string 'rec.yaml'; expected a mslt_it.recipes.Recipe",
    ),
    "report recipe str": (
        lambda g: write_report([g.folder], g.out, recipe="recipes/demo.yaml"),
        "recipe: got the string 'recipes/demo.yaml'; expected a mslt_it.recipes.Recipe",
    ),
    "analysis layers list": (
        lambda g: analysis_config(layers=[0, 1]),
        "layers: got a list; expected a string",
    ),
    "analysis n str": (lambda g: analysis_config(n="12"), "n: got the string '12'; expected"),
    "analysis seed str": (lambda g: analysis_config(seed="0"), "seed: got the string '0'"),
    "analysis batch None": (lambda g: analysis_config(batch_size=None), "batch_size: got None"),
    "analysis config dict": (
        lambda g: run_analysis({"model": "m"}, g.out),
        "config: got a dict; expected a mslt_it.analysis.AnalysisConfig",
    ),
    "analysis out None": (lambda g: run_analysis(analysis_config(), None), "out: got None"),
    "analysis out bytes": (lambda g: run_analysis(analysis_config(), b"o"), "out: got a bytes"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_argument_is_a_one_line_error(case: str, tmp_path: Path) -> None:
    """Each was used (a flag ``"no"`` as True, ``"en,de"`` as the codes ``e``, ``n``, …, a
    sample count of 10**9 until memory ran out) or failed deep inside with a bare TypeError
    or AttributeError; nothing is written."""
    call, fragment = HOSTILE[case]
    given = SimpleNamespace(folder=tmp_path, out=tmp_path / "out")
    one_line_error(lambda: call(given), fragment)
    assert not given.out.exists()


def test_a_merged_model_is_no_model_name(tmp_path: Path, monkeypatch) -> None:
    """``merge ad1 --out mslt-it:tiny2`` wrote ./mslt-it:tiny2, which ``--model`` never finds."""
    monkeypatch.chdir(tmp_path)
    one_line_error(
        lambda: merge_adapter(tmp_path, "mslt-it:tiny2"),
        "'mslt-it:tiny2' reads as one of mslt-it's model names",
    )
    assert not (tmp_path / "mslt-it:tiny2").exists()


def test_a_path_as_the_analysed_model_is_kept_as_text() -> None:
    """A Path did all the work, then failed writing analysis.json: not JSON serializable."""
    config = analysis_config(model=Path("tiny"), adapters=[Path("ad")], parallel=Path("p.csv"))
    assert (config.model, config.adapters, config.parallel) == ("tiny", ["ad"], "p.csv")
    json.dumps(vars(config))


def test_one_prompts_folder_is_a_list_of_one(tmp_path: Path) -> None:
    """``get_template(id, "prompts")`` said ``prompts-dir: 'p' is not a directory``; a Path
    there was a TypeError."""
    from mslt_it.prompts import survey_templates

    for folder in (tmp_path, str(tmp_path)):
        assert get_template("xnli/en-instruct", folder).spec.task == "xnli"
        templates, problems = survey_templates(folder)
        assert "xnli/en-instruct" in templates and not problems


def test_a_later_recipe_brings_its_own_tasks(tmp_path: Path) -> None:
    """Two recipes, each with its own ``mytask`` in its tasks_dir: the second load said "task
    'mytask' is defined twice", and so did every look-up of it for the rest of the process."""
    from mslt_it.tasks import add_tasks_dirs, get_task, reset_tasks_dirs, tasks_dirs

    definition = (Path(__file__).parents[1] / "tasks" / "xnli.yaml").read_text()
    template = (Path(__file__).parents[1] / "prompts" / "xnli" / "en-instruct.yaml").read_text()
    mine = tmp_path / "mine"
    mine.mkdir()
    reset_tasks_dirs()
    try:
        add_tasks_dirs([mine])  # the user's own folder: stays past every recipe
        for name in ("A", "B"):
            tasks = tmp_path / name / "tasks"
            tasks.mkdir(parents=True)
            title = f"title: Mine {name}"
            (tasks / "mytask.yaml").write_text(
                definition.replace("name: xnli", "name: mytask").replace("title: XNLI", title)
            )
            prompts = tmp_path / name / "prompts" / "mytask"
            prompts.mkdir(parents=True)
            (prompts / "en-instruct.yaml").write_text(template.replace("xnli", "mytask"))
            recipe = tmp_path / name / "rec.yaml"
            recipe.write_text(
                f"name: r{name}\ntasks_dir: [{tasks}]\n"
                f"data: {{task: mytask, budget: 4, data: synthetic, "
                f"prompts_dir: [{prompts.parent}]}}\n"
                "model: {name_or_path: mslt-it:tiny}\nsources: [[en]]\n"
                "eval: {task: xnli, langs: [en]}\n"
            )
            load_recipe(recipe)
            assert get_task("mytask").title == f"Mine {name}"
        assert mine.resolve() in tasks_dirs()
        (tmp_path / "C.yaml").write_text(
            "name: c\ndata: {task: xnli, budget: 4, data: synthetic}\n"
            "model: {name_or_path: mslt-it:tiny}\nsources: [[en]]\n"
            "eval: {task: xnli, langs: [en]}\n"
        )
        load_recipe(tmp_path / "C.yaml")  # no tasks_dir: B's folder is dropped
        one_line_error(lambda: get_task("mytask"), "unknown task 'mytask'")
    finally:
        reset_tasks_dirs()


@pytest.mark.parametrize(
    ("label", "fragment"),
    [
        (-1, "-1 is no label (-1 marks an unlabelled row, as on the Hub); allowed: 0 to 2"),
        (7, "7 is no label; allowed: 0 to 2 (entailment, neutral, contradiction)"),
        ("1", "the string '1' is no label"),
    ],
)
def test_a_row_without_a_label_of_the_task_is_named(label: Any, fragment: str) -> None:
    """-1 (the Hub's unlabelled rows) rendered 'contradiction' as the gold answer; 7 was an
    IndexError, "1" a TypeError."""
    template = get_template("xnli/en-instruct")
    row = {"id": "r1", "premise": "a", "hypothesis": "b", "label": label}
    one_line_error(lambda: template.render(row, "en"), "row 'r1', column 'label'", fragment)
    ok = {**row, "label": 1}
    one_line_error(lambda: template.render(ok, "en", label=label), f"label: {fragment}")


def test_numpy_integers_are_integers(tmp_path: Path) -> None:
    """``np.int64(3)`` from an array was "got a numpy.int64; expected an integer"."""
    from mslt_it.arguments import int_argument

    assert int_argument(np.int64(3), "k") == 3 and type(int_argument(np.int64(3), "k")) is int
    one_line_error(lambda: int_argument(np.bool_(True), "k"), "k: got a numpy.bool")
    found = select_sources("xnli", ["ar", "de", "en"], np.int64(2), top=np.int64(1))
    assert found and found[0].k == 2
    one_line_error(
        lambda: build_tiny_model(tmp_path / "t", languages=["en"], seed=np.int64(1), world="x"),
        "world: got the string 'x'",
    )  # the seed passed; the flag stopped it before anything was built
    assert not (tmp_path / "t").exists()


def test_a_step_callback_is_checked_before_the_experiment_folder_is_claimed(
    tmp_path: Path,
) -> None:
    """``execute_plan(plan, on_step="print")`` claimed the folder, then failed calling it."""
    from mslt_it.runner import execute_plan, make_plan

    recipe = tmp_path / "rec.yaml"
    recipe.write_text(
        f"name: r\noutput_dir: {tmp_path / 'exp'}\ndata: {{task: xnli, budget: 4, data: "
        "synthetic}\nmodel: {name_or_path: mslt-it:tiny}\nsources: [[en]]\n"
        "eval: {task: xnli, langs: [en]}\n"
    )
    plan = make_plan(load_recipe(recipe))
    one_line_error(lambda: execute_plan(plan, on_step="print"), "on_step: got the string")
    assert not (tmp_path / "exp").exists()


def test_build_dataset_leaves_the_datasets_bars_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``build_dataset`` turned datasets' progress bars off for the rest of the notebook."""
    import sys

    import datasets

    # bars on, as in a fresh notebook (a CLI run in this process may have set the variable
    # datasets read at import, which then keeps them off whatever is asked)
    state = sys.modules[datasets.enable_progress_bars.__module__]
    monkeypatch.setattr(state, "HF_DATASETS_DISABLE_PROGRESS_BARS", None)
    monkeypatch.setattr(state, "_hf_datasets_progress_bars_disabled", False)
    build_dataset(DataConfig(task="xnli", sources=["en"], budget=4), tmp_path / "ds")
    assert not datasets.utils.are_progress_bars_disabled()


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: add_tasks_dirs("mytasks"), "tasks-dir: got the string 'mytasks'; expected a list"),
        (lambda: add_tasks_dirs(5), "tasks-dir: got 5; expected a list of paths"),
        (lambda: evaluate_criteria(RESULTS, "xnli", "size"), "criteria: got the string 'size'"),
        (lambda: evaluate_criteria([("ar,de", 0.5), ("de,en", 0.6)], "xnli"),
         "results.0.sources: got the string 'ar,de'"),
        (lambda: evaluate_criteria(None, "xnli"), "results: got None"),
        (lambda: evaluate_criteria([(["ar"], "x"), (["de"], 1.0)], "xnli"), "results.0.score"),
        (lambda: evaluate_criteria([(["ar"], 1.0, 2), (["de"], 1.0)], "xnli"), "results.0: 3"),
        (lambda: evaluate_criteria(RESULTS, 5), "task: got 5"),
        (lambda: evaluate_criteria(RESULTS, "xnli", options={}), "options: got a dict"),
        (lambda: evaluate_criteria(RESULTS, "xnli", seed="0"), "seed: got the string '0'"),
        (lambda: evaluate_criteria(RESULTS, "xnli", baselines=[1]), "baselines: got a list"),
        (lambda: load_results_csv(None), "--evaluate: got None"),
        (lambda: fit_predictor("r.csv", "xnli", k=True), "k: got True"),
        (lambda: fit_predictor(None, "xnli"), "path: got None"),
    ],
)  # fmt: skip
def test_selection_calls_name_a_wrong_argument_in_one_line(call, fragment) -> None:
    """A string where a list belongs was read one character at a time (``unknown criterion
    's'``), and other wrong types failed deep inside (``'dict' object has no attribute``)."""
    with pytest.raises(MsltError, match=re.escape(fragment)):
        call()


def test_a_config_edited_after_construction_is_checked_again(tmp_path: Path) -> None:
    """Pydantic checks a config when it is made, not when a field is set afterwards: a
    notebook's ``config.sources = "en,de"`` was read one character at a time, and ``budget =
    "4"`` failed in ``divmod()``."""
    from mslt_it.evaluation import EvalConfig, evaluate

    config = DataConfig(task="xnli", sources=["en"], budget=4)
    config.sources = "en,de"
    with pytest.raises(MsltError, match=r"^config: sources: .*valid list.*'en,de'"):
        build_dataset(config, tmp_path / "a")
    config.sources, config.budget = ["en"], "4"
    with pytest.raises(MsltError, match=r"^config: budget: "):
        build_dataset(config, tmp_path / "a")
    evaluation = EvalConfig(task="xnli", langs=["en"], limit=2)
    evaluation.langs = "en"
    with pytest.raises(MsltError, match=r"^config: langs: "):
        evaluate(evaluation, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_evaluation_and_report_calls_name_an_empty_or_misplaced_argument(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    """``compare_models(cfg, [], out)`` and ``write_report([], out)`` said "no results.json
    under ''"; ``backend="hf"`` asked for dtype and device attributes; a tokenizer of "" was
    taken for none; a model folder given as a Path was refused."""
    from mslt_it.evaluation import EvalConfig, evaluate
    from mslt_it.evaluation.compare import compare_models

    config = EvalConfig(task="xnli", langs=["en"], limit=2, mode="rank", bootstrap_samples=0)
    with pytest.raises(MsltError, match=r"^models: an empty list"):
        compare_models(config, [], tmp_path / "c")
    with pytest.raises(MsltError, match=r"^paths: an empty list"):
        write_report([], tmp_path / "r")
    with pytest.raises(MsltError, match=r"^backend: got the string 'hf'; expected an open backend"):
        evaluate(config.model_copy(update={"model": str(tiny_model_dir)}), tmp_path / "e",
                 backend="hf")  # fmt: skip
    with pytest.raises(MsltError, match=r"^tokenizer: an empty name"):
        write_report([tmp_path], tmp_path / "r", tokenizer="")
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    compared = compare_models(config, [tiny_model_dir, other], tmp_path / "c")
    assert len(compared.outcomes) == 2
