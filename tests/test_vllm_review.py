"""The vLLM backend's checks before its engine starts, and its rank mode's requests, without
starting an engine (half a minute each): ``vllm.LLM`` is replaced where a test needs one."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from mslt_it.errors import MsltError
from mslt_it.generation import vllm as vllm_module
from mslt_it.generation.base import BackendOptions

SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class EngineStarted(Exception):
    """What the fake ``vllm.LLM`` raises: every check before the engine passed."""


def fake_vllm(monkeypatch: pytest.MonkeyPatch, engine) -> None:
    """``vllm`` as the backend imports it, with ``engine`` as ``vllm.LLM``."""
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=engine))
    monkeypatch.setitem(sys.modules, "vllm.logger", types.SimpleNamespace())
    monkeypatch.setitem(sys.modules, "vllm.lora", types.SimpleNamespace())
    monkeypatch.setitem(sys.modules, "vllm.lora.request", types.SimpleNamespace(LoRARequest=None))


def engine_started(**_kwargs):
    raise EngineStarted


def tiny_llama():
    """A two-layer Llama small enough to build in a test (never run)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    return LlamaForCausalLM(config)


def peft_adapter(folder: Path, targets: list[str] | str) -> Path:
    """A LoRA adapter of :func:`tiny_llama` as PEFT saves it, targeting ``targets``."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    lora = LoraConfig(r=8, target_modules=targets, init_lora_weights=False)
    get_peft_model(tiny_llama(), lora).save_pretrained(folder)
    return folder


def set_targets(folder: Path, targets: list[str] | str) -> None:
    """Edit the adapter's config to target ``targets`` (its weights stay)."""
    path = folder / "adapter_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["target_modules"] = targets
    path.write_text(json.dumps(config), encoding="utf-8")


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """q_proj alone, and all seven linear modules, saved by PEFT."""
    root = tmp_path_factory.mktemp("adapters")
    tiny_llama().save_pretrained(root / "base")  # its modules: what target_modules may name
    return {
        "base": root / "base",
        "q": peft_adapter(root / "q", ["q_proj"]),
        "seven": peft_adapter(root / "seven", SEVEN),
    }


def copied(adapter: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(adapter, tmp_path / adapter.name))


def open_vllm(monkeypatch: pytest.MonkeyPatch, folder: Path, base: Path | str = "m") -> None:
    fake_vllm(monkeypatch, engine_started)
    vllm_module.VLLMBackend(BackendOptions(model=str(base), adapters={"x": folder}))


def test_vllm_refuses_a_target_module_without_weights(monkeypatch, adapters, tmp_path):
    """A config of seven modules with only q_proj's weights was evaluated by vLLM as the base
    model with q_proj's change alone: six modules' training silently missing."""
    folder = copied(adapters["q"], tmp_path)
    set_targets(folder, SEVEN)
    with pytest.raises(MsltError, match=r"^adapter: .*hold no LoRA weights for 'k_proj'") as caught:
        open_vllm(monkeypatch, folder, adapters["base"])
    assert "\n" not in str(caught.value) and str(folder) in str(caught.value)


def test_a_target_name_no_module_of_the_base_has_is_not_missing(monkeypatch, adapters, tmp_path):
    """PEFT accepts a list naming modules of several architectures (``query_key_value`` is
    BLOOM's): a Llama adapter of such a config holds no weights for it, and loads."""
    folder = copied(adapters["q"], tmp_path)
    set_targets(folder, ["q_proj", "query_key_value"])
    with pytest.raises(EngineStarted):
        open_vllm(monkeypatch, folder, adapters["base"])
    set_targets(folder, SEVEN)  # a Hub id's modules are not listed here: nothing is said
    with pytest.raises(EngineStarted):
        open_vllm(monkeypatch, folder, "org/some-model")


def test_vllm_refuses_weights_for_a_module_its_config_does_not_target(
    monkeypatch, adapters, tmp_path
):
    """A config of q_proj alone with seven modules' weights got all seven applied by vLLM,
    where PEFT (the hf backend) applies q_proj's alone."""
    folder = copied(adapters["seven"], tmp_path)
    set_targets(folder, ["q_proj"])
    with pytest.raises(MsltError, match=r"^adapter: .*does not target \(first: 'model\.layers\.0"):
        open_vllm(monkeypatch, folder)


@pytest.mark.parametrize(
    ("targets", "refused"),
    [
        (r".*\.(q_proj|k_proj)", "does not target"),  # a pattern PEFT fullmatches
        (r"q_proj|v_proj|k_proj|o_proj|gate_proj|up_proj|down_proj", "does not target"),
        (r".*(", "not a regular expression"),
        (r".*_proj", None),
        ("all-linear", None),
        (SEVEN, None),
        (["self_attn.q_proj", *SEVEN[1:]], None),  # a name of the module's last dotted parts
    ],
)
def test_vllm_matches_target_modules_as_peft_does(
    monkeypatch, adapters, tmp_path, targets, refused
):
    folder = copied(adapters["seven"], tmp_path)
    set_targets(folder, targets)
    if refused is None:
        with pytest.raises(EngineStarted):
            open_vllm(monkeypatch, folder)
    else:
        with pytest.raises(MsltError, match=refused):
            open_vllm(monkeypatch, folder)


def test_vllm_starts_with_adapters_peft_saved(monkeypatch, adapters):
    for folder in (adapters["q"], adapters["seven"]):
        with pytest.raises(EngineStarted):
            open_vllm(monkeypatch, folder, adapters["base"])


def test_the_hf_backend_refuses_the_same_adapters(adapters, tmp_path):
    """The vLLM check agrees with the one PEFT's loading makes (check_weights_loaded)."""
    from mslt_it.peft_adapters import load_adapters

    for source, targets in ((adapters["q"], SEVEN), (adapters["seven"], ["q_proj"])):
        folder = copied(source, tmp_path / source.name)
        set_targets(folder, targets)
        with pytest.raises(MsltError, match="the weights in"):
            load_adapters(tiny_llama(), {"x": folder})


ENGINE_CORE_FAILED = (
    "Engine core initialization failed. See root cause above. Failed core proc(s): {}"
)


@pytest.mark.parametrize(
    ("engine_args", "field"), [({}, "backend: vllm: "), ({"max_model_len": 512}, "vllm_args: ")]
)
def test_an_engine_that_fails_to_start_is_one_line_not_a_bug(monkeypatch, engine_args, field):
    """vLLM V1 raises RuntimeError when its engine process fails (out of memory, mostly): the
    CLI reported it as "internal error ... a bug in mslt-it"."""

    def engine(**_kwargs):
        raise RuntimeError(ENGINE_CORE_FAILED + "\nmore lines")

    fake_vllm(monkeypatch, engine)
    with pytest.raises(MsltError) as caught:
        vllm_module.VLLMBackend(BackendOptions(model="m", engine_args=engine_args))
    message = str(caught.value)
    assert message.startswith(f"{field}the vLLM engine failed to start (Engine core")
    assert "max_model_len" in message and "gpu_memory_utilization" in message
    assert "--backend hf" in message and "\n" not in message


def test_a_refusal_without_vllm_args_does_not_blame_them(monkeypatch):
    def engine(**_kwargs):
        raise ValueError("this model's architecture is not supported")

    fake_vllm(monkeypatch, engine)
    with pytest.raises(MsltError, match=r"^backend: vllm: vLLM cannot start: this model's"):
        vllm_module.VLLMBackend(BackendOptions(model="m"))


def fake_output(tokens: list[int]):
    """A vLLM RequestOutput's shape, with log P(token) = -token / 1000."""
    entry = {t: types.SimpleNamespace(logprob=-t / 1000) for t in tokens}
    return types.SimpleNamespace(outputs=[types.SimpleNamespace(logprobs=[entry])])


def test_rank_mode_asks_vllm_for_at_most_its_cap_of_tokens_a_request(monkeypatch):
    """More than 128 tokens wanted after one prefix (a choice among many candidates) made vLLM
    refuse the request (VLLMValidationError: logprob_token_ids ... greater than max allowed)."""
    pytest.importorskip("vllm")
    from vllm import sampling_params

    cap = getattr(sampling_params, "MAX_LOGPROB_TOKEN_IDS", 128)
    backend = object.__new__(vllm_module.VLLMBackend)
    backend.stop_token_ids = (3,)
    asked: list[tuple[tuple[int, ...], list[int]]] = []

    def run(prompts, params, adapter):
        assert adapter == "a1"
        outputs = []
        for prompt, param in zip(prompts, params, strict=True):
            tokens = list(param.logprob_token_ids)
            assert len(tokens) <= cap, f"a request asked for {len(tokens)} tokens"
            asked.append((tuple(prompt), tokens))
            outputs.append(fake_output(tokens))
        return outputs

    monkeypatch.setattr(backend, "_run", run)
    prompt = [1, 2, 40]
    candidates = [[t] for t in range(10, 10 + 2 * cap + 5)] + [[7, 8]]
    scores = backend.loglikelihood([prompt], [candidates], "a1")[0]
    expected = [-c[0] / 1000 for c in candidates[:-1]] + [-7 / 1000 - 8 / 1000]
    assert scores == pytest.approx(expected)
    at_prompt = [tokens for prefix, tokens in asked if prefix == tuple(prompt)]
    assert len(at_prompt) == 3 and sorted(t for ts in at_prompt for t in ts) == sorted(
        {c[0] for c in candidates}
    )


@pytest.mark.parametrize("length", ["64", True, 0, 1.5])
def test_an_engine_length_that_is_no_whole_number_is_refused(length) -> None:
    """``max_model_len: "64"`` (vLLM reads 64) left prompts cut to the model's 1024 tokens: an
    internal error once the engine had started; ``true`` was a context of one token."""
    from pydantic import ValidationError

    from mslt_it.evaluation import EvalConfig

    with pytest.raises(ValidationError, match=r"max_model_len is .*; allowed: a whole number"):
        EvalConfig(backend="vllm", vllm_args={"max_model_len": length})
    assert EvalConfig(backend="vllm", vllm_args={"max_model_len": 64}).vllm_args == {
        "max_model_len": 64
    }
    assert EvalConfig(backend="vllm", vllm_args={"max_model_len": None}).vllm_args == {
        "max_model_len": None
    }  # vLLM's own default


def test_a_model_folder_without_weights_is_refused_before_an_engine_starts(
    cli, tmp_path, tiny_model_dir
) -> None:
    """vLLM started for half a minute, then blamed memory; hf named the folder."""
    import shutil

    from conftest import assert_one_line_error

    folder = tmp_path / "no-weights"
    shutil.copytree(tiny_model_dir, folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    result = cli("eval", "--model", folder, "--backend", "vllm", "--task", "xnli", "--langs",
                 "en", "--limit", "2", "--out", tmp_path / "out")  # fmt: skip
    assert_one_line_error(result, "model: the folder", "holds no weights")
    assert not (tmp_path / "out").exists()
