"""The tiny offline model: loadable like a Hub model, chat-ready for TRL, and really pre-trained."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from mslt_it import tiny
from mslt_it.errors import MsltError

# Five scripts are enough to exercise the tokenizer and keep the build to a few seconds.
LANGS = ["en", "ru", "ar", "zh", "hi"]
STEPS = 120

CHAT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Repeat the words: good, number, story."},
    {"role": "assistant", "content": "good, number, story"},
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "model"
    return tiny.build_tiny_model(out, languages=LANGS, seed=0, pretrain_steps=STEPS)


@pytest.fixture(scope="module")
def tokenizer(tiny_dir: Path):
    return AutoTokenizer.from_pretrained(tiny_dir, trust_remote_code=False)


@pytest.fixture(scope="module")
def model(tiny_dir: Path):
    return AutoModelForCausalLM.from_pretrained(tiny_dir, trust_remote_code=False).eval()


def test_folder_loads_with_auto_classes(tiny_dir: Path, model, tokenizer) -> None:
    assert model.config.model_type == "llama"
    assert model.config.head_dim == 64  # vLLM's CPU attention needs head_dim >= 64
    assert model.config.tie_word_embeddings
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    assert sorted(p.name for p in tiny_dir.parent.iterdir()) == ["model"]  # no temp dir left


def test_special_tokens_and_generation_config(tiny_dir: Path, tokenizer) -> None:
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token is not None and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.bos_token is not None
    assert len(tokenizer.tokenize("<|im_start|>")) == 1
    generation = GenerationConfig.from_pretrained(tiny_dir)
    assert generation.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert generation.pad_token_id == tokenizer.pad_token_id
    config = AutoConfig.from_pretrained(tiny_dir)
    assert config.eos_token_id == generation.eos_token_id


def test_assistant_mask_covers_answer_and_end_of_turn(tokenizer) -> None:
    out = tokenizer.apply_chat_template(
        CHAT, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = out["input_ids"], out["assistant_masks"]
    masked = [token for token, bit in zip(ids, mask, strict=True) if bit]
    assert tokenizer.decode(masked) == "good, number, story<|im_end|>"
    assert masked[-1] == tokenizer.eos_token_id
    unmasked = tokenizer.decode([token for token, bit in zip(ids, mask, strict=True) if not bit])
    assert "Repeat the words" in unmasked and "helpful" in unmasked


def test_prompt_rendering_is_prefix_of_prompt_plus_completion(tokenizer) -> None:
    prompt = tokenizer.apply_chat_template(CHAT[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(CHAT, tokenize=False)
    assert full.startswith(prompt)
    assert full[len(prompt) :] == "good, number, story<|im_end|>\n"
    prompt_ids = tokenizer.apply_chat_template(CHAT[:-1], add_generation_prompt=True)["input_ids"]
    full_ids = tokenizer.apply_chat_template(CHAT)["input_ids"]
    assert full_ids[: len(prompt_ids)] == prompt_ids


@pytest.mark.parametrize(
    "text",
    [
        "The quick brown fox, naïve café.",  # Latin with diacritics
        "Съешь же ещё этих мягких французских булок.",  # Cyrillic
        "النص العربي مع علامات التشكيل: مَرْحَبًا",  # Arabic with harakat
        "汉字和标点符号。",  # Han
        "हिन्दी में लिखा गया वाक्य।",  # Devanagari with combining marks
        "  spaces\tand\nnewlines  ",
    ],
)
def test_tokenizer_round_trips_every_script(tokenizer, text: str) -> None:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_pretraining_beats_random_weights(tiny_dir: Path, model, tokenizer) -> None:
    texts = tiny.heldout_texts(LANGS)
    torch.manual_seed(0)
    random_model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(tiny_dir)).eval()
    trained = tiny.language_model_loss(model, tokenizer, texts)
    untrained = tiny.language_model_loss(random_model, tokenizer, texts)
    # A random model sits near ln(vocab) nats per token; even the shortened pre-training of this
    # test takes a whole nat off (the full default takes more).
    assert trained < untrained - 0.5, (trained, untrained)


def tiny_tokenizer(folder: Path):
    return AutoTokenizer.from_pretrained(folder, trust_remote_code=False)


def test_info_file_records_the_build(tiny_dir: Path, model) -> None:
    info = tiny.read_info(tiny_dir)
    assert info["seed"] == 0
    assert info["languages"] == LANGS
    assert info["pretrain"]["steps"] == STEPS
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["heldout_loss"] == pytest.approx(
        tiny.language_model_loss(model, tiny_tokenizer(tiny_dir), tiny.heldout_texts(LANGS)),
        abs=1e-3,
    )


def test_same_seed_gives_same_model(tmp_path: Path) -> None:
    first = tiny.build_tiny_model(tmp_path / "a", languages=["en", "zh"], pretrain_steps=3)
    second = tiny.build_tiny_model(tmp_path / "b", languages=["en", "zh"], pretrain_steps=3)
    for name in ("model.safetensors", "tokenizer.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    # every file, the build record too: it is part of the model's identity, and a build time in
    # it made every adapter trained on the first build look trained on another base
    from mslt_it.identity import model_identity

    assert model_identity(first)["sha256"] == model_identity(second)["sha256"]


def test_existing_folder_is_refused(tiny_dir: Path) -> None:
    with pytest.raises(MsltError, match="already exists"):
        tiny.build_tiny_model(tiny_dir, languages=LANGS)


def test_cli_refuses_existing_folder_with_status_2(
    tiny_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mslt_it.cli import main

    before = (tiny_dir / "model.safetensors").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main(["tiny-model", str(tiny_dir)])
    assert exit_info.value.code == 2
    assert "already exists" in capsys.readouterr().err
    assert (tiny_dir / "model.safetensors").read_bytes() == before
