"""`mslt-it train` / `merge`: learning for real, the silent-failure checks, resume, DDP, errors.

Everything runs on the tiny offline model on CPU. Short runs use few steps; the one that must
learn the task trains long enough to be past chance on every seed tried while developing.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
import torch
from conftest import assert_one_line_error

from mslt_it.config import DataConfig
from mslt_it.data import build_dataset

FAST = ["--sft", "gradient_checkpointing=false", "--sft", "logging_steps=1"]
SUBPROCESS_ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "MSLT_IT_PROGRESS": "0",
    "CUDA_VISIBLE_DEVICES": "",
    "TOKENIZERS_PARALLELISM": "false",
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one intra-op thread


def read_run(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("train-data")


@pytest.fixture(scope="module")
def small_ds(data_dir: Path) -> Path:
    """48 XNLI rows in two scripts: enough for short mechanical runs."""
    config = DataConfig(task="xnli", sources=["en", "zh"], budget=48)
    return build_dataset(config, data_dir / "small").path


def train_args(model: Path, dataset: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", dataset, "--model", model, "--out", out, *FAST, *extra]


# ---------------------------------------------------------------------------------------------
# Learning
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def learnt(tiny_model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """An adapter trained on synthetic English XNLI until the label cue is learnt.

    150 steps of 8 at lr 3e-3 on all linear layers (two passes over 600 rows): on the tiny base
    the answer format is learnt in tens of steps, the label cue (the negation word means
    contradiction, the hedge word neutral) by ~100; tiny-model seeds 0-2 all reached 100% on
    the held-out rows while developing.
    """
    from mslt_it.training import ModelConfig, validate_train_section
    from mslt_it.training.run import train

    train_ds = build_dataset(DataConfig(task="xnli", sources=["en"], budget=600), data_dir / "en")
    out = tmp_path_factory.mktemp("learnt") / "run"
    config = validate_train_section(
        {
            "dataset": str(train_ds.path),
            "lora": {
                "r": 16,
                "lora_alpha": 32,
                "lora_dropout": 0.0,
                "target_modules": "all-linear",
            },
            "sft": {
                "max_steps": 150,
                "per_device_train_batch_size": 8,
                "learning_rate": 3e-3,
                "lr_scheduler_type": "constant_with_warmup",
                "warmup_steps": 5,
                "logging_steps": 25,
                "gradient_checkpointing": False,
                "save_strategy": "no",
                "seed": 0,
            },
        }
    )
    result = train(ModelConfig(name_or_path=str(tiny_model_dir)), config, out)
    return result.out


@pytest.mark.slow
def test_loss_falls_and_the_adapter_saves_and_loads(learnt: Path, tiny_model_dir: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run = read_run(learnt)
    losses = [loss for _, loss in run["loss_history"]]
    # The losses stay high (~6.5 of ln(vocab) = 9) even with every answer right: the random tied
    # output layer, which LoRA does not adapt, keeps the distributions flat. Top-1 accuracy is
    # what says "learnt"; the loss must still fall.
    assert losses[-1] < losses[0] - 0.5, losses
    assert run["steps"] == 150 and run["answer_token_accuracy"] > 0.8
    assert run["lora"]["target_modules"] == "all-linear"
    assert "down_proj" in run["lora"]["adapted_modules"]
    assert "lm_head" not in run["lora"]["adapted_modules"]
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    model = PeftModel.from_pretrained(base, str(learnt))
    assert any("lora_A" in name for name, _ in model.named_parameters())
    assert (learnt / "adapter_model.safetensors").is_file()
    assert not (learnt / "checkpoints").exists() and not (learnt / "run.started.json").exists()


@pytest.mark.slow
def test_the_task_is_learnt_above_chance_on_held_out_rows(
    learnt: Path, tiny_model_dir: Path, data_dir: Path
) -> None:
    """Greedy answers on the validation split, rendered with the chat template from run.json."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = read_run(learnt)
    config = DataConfig(task="xnli", sources=["en"], budget=150, split="validation")
    val = datasets.load_from_disk(str(build_dataset(config, data_dir / "val").path))
    tokenizer = AutoTokenizer.from_pretrained(str(learnt))
    assert tokenizer.chat_template == run["chat_template"]
    tokenizer.padding_side = "left"
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    model = PeftModel.from_pretrained(base, str(learnt)).eval()
    prompts = [
        tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
        for p in val["prompt"]
    ]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        generated = model.generate(**batch, max_new_tokens=12, do_sample=False)
    answers = tokenizer.batch_decode(
        generated[:, batch["input_ids"].shape[1] :], skip_special_tokens=True
    )
    words = run["template"]["verbalizers"]["en"]
    correct = sum(
        bool(a.split()) and a.split()[0] == words[label]
        for a, label in zip(answers, val["label"], strict=True)
    )
    assert correct / len(val) > 0.6, (correct, answers[:10])


# ---------------------------------------------------------------------------------------------
# Short runs: QLoRA, packing, the default chat template, recipes, skip/refuse, merge
# ---------------------------------------------------------------------------------------------


def test_qlora_runs_on_cpu_from_a_recipe_with_overrides(
    cli, tiny_model_dir: Path, small_ds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A QLoRA run trains on a base that really is 4-bit: every linear layer of the loaded model
    but the output layer is bitsandbytes' Linear4bit (NF4 weights), not a float layer."""
    try:
        import bitsandbytes as bnb
    except Exception as error:  # any failure to load means no QLoRA here
        pytest.skip(f"bitsandbytes cannot load on this machine: {error}")
    import mslt_it.training.run as run_module

    loaded: list = []
    real_load = run_module.load_base_model

    def recording_load(*args, **kwargs):
        loaded.append(real_load(*args, **kwargs))
        return loaded[-1]

    monkeypatch.setattr(run_module, "load_base_model", recording_load)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"model: {{name_or_path: {tiny_model_dir}}}\n"
        "train:\n"
        "  qlora: true\n"
        "  lora: {r: 8, lora_alpha: 16, target_modules: [q_proj, v_proj]}\n"
        "  sft: {max_steps: 3, per_device_train_batch_size: 4, learning_rate: 1.0e-3}\n"
    )
    out = tmp_path / "q"
    result = cli(
        "train", "--recipe", recipe, "--dataset", small_ds, "--out", out, "--lora-r", "4", *FAST
    )
    assert result.code == 0, result.err
    run = read_run(out)
    assert run["qlora"] is True and run["steps"] == 3
    assert run["lora"]["r"] == 4 and run["lora"]["alpha"] == 16
    assert run["lora"]["target_modules"] == run["lora"]["adapted_modules"] == ["q_proj", "v_proj"]
    assert run["sft"]["learning_rate"] == 1e-3
    assert run["dataset"]["counts"] == {"en": 24, "zh": 24}
    from mslt_it.identity import DATA_FILES, tree_sha256

    assert run["dataset"]["files_sha256"] == tree_sha256(small_ds, DATA_FILES)
    assert run["template"]["id"] == "xnli/en-instruct" and run["eos_token"] == "<|im_end|>"
    assert {"peft", "trl", "bitsandbytes"} <= set(run["versions"])
    assert "steps" in result.out  # the summary table
    assert len(loaded) == 1
    base = loaded[0]
    quantization = base.config.quantization_config
    assert quantization.load_in_4bit is True and quantization.bnb_4bit_quant_type == "nf4"
    assert getattr(base, "is_loaded_in_4bit", True) is True
    linear = {
        name: type(module)
        for name, module in base.named_modules()
        if isinstance(module, torch.nn.Linear)
        and not name.endswith("lm_head")
        and ".lora_" not in name  # the adapter PEFT added since: float, as QLoRA trains it
    }
    assert linear and all(kind is bnb.nn.Linear4bit for kind in linear.values()), linear
    weights = [m.weight for m in base.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert all(isinstance(w, bnb.nn.Params4bit) and w.quant_state is not None for w in weights)


def test_an_edited_eval_dataset_is_another_run(
    tiny_model_dir: Path, small_ds: Path, tmp_path: Path
) -> None:
    """The held-out dataset's files decide run.json's held-out losses: their digest is part of
    the run's identity (a manifest's fingerprint is only what the manifest claims), and a run
    without one keeps the identity it had."""
    import shutil

    from mslt_it.identity import DATA_FILES, tree_sha256
    from mslt_it.training import ModelConfig, validate_train_section
    from mslt_it.training.run import plan_run

    heldout = tmp_path / "heldout"
    shutil.copytree(small_ds, heldout)
    model_config = ModelConfig(name_or_path=str(tiny_model_dir))

    def plan(eval_dataset: Path | None):
        section = {"dataset": str(small_ds), "sft": {"use_cpu": True}}
        if eval_dataset is not None:
            section["eval_dataset"] = str(eval_dataset)
        return plan_run(model_config, validate_train_section(section), tmp_path / "p")

    without = plan(None)
    assert "eval_dataset_files_sha256" not in without.determining
    before = plan(heldout)
    assert before.determining["eval_dataset_files_sha256"] == tree_sha256(heldout, DATA_FILES)
    (heldout / "extra.jsonl").write_text('{"lang": "en"}\n', encoding="utf-8")
    after = plan(heldout)
    assert after.config_hash != before.config_hash
    assert plan(None).config_hash == without.config_hash


def test_packing_keeps_examples_apart(tiny_model_dir: Path, small_ds: Path, tmp_path) -> None:
    """A packed row gives each example exactly the logits it gets alone."""
    from mslt_it.training import ModelConfig, validate_train_section
    from mslt_it.training.run import checked_trainer, plan_run

    model_config = ModelConfig(name_or_path=str(tiny_model_dir))
    config = validate_train_section(
        {"dataset": str(small_ds), "packing": True, "max_length": 256, "sft": {"use_cpu": True}}
    )
    plan = plan_run(model_config, config, tmp_path / "p")
    trainer = checked_trainer(plan, model_config, config).trainer
    batch = trainer.data_collator([trainer.train_dataset[0]])
    assert "attention_mask" not in batch  # padding-free: boundaries come from position_ids
    model = trainer.model.eval()
    positions = batch["position_ids"][0]
    starts = [*(positions == 0).nonzero().flatten().tolist(), len(positions)]
    assert len(starts) > 2  # several examples in the row
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        for start, end in itertools.pairwise(starts):
            alone = model(input_ids=batch["input_ids"][:, start:end]).logits[0]
            torch.testing.assert_close(alone, packed[start:end], atol=1e-4, rtol=1e-4)


def test_overlength_examples_are_dropped_and_counted_per_language(
    cli, tiny_model_dir: Path, small_ds: Path, tmp_path: Path
) -> None:
    """Expected counts come from the tokenizer itself (the chat template rendered to text, then
    tokenised), not from the training code's counter."""
    from transformers import AutoTokenizer

    rows = datasets.load_from_disk(str(small_ds))
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    lengths = [
        len(
            tokenizer(
                tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False),
                add_special_tokens=False,
            )["input_ids"]
        )
        for row in rows
    ]
    by_lang = {
        lang: sorted(
            n for n, row_lang in zip(lengths, rows["lang"], strict=True) if row_lang == lang
        )
        for lang in ("en", "zh")
    }
    cut = max(mine[len(mine) // 2] for mine in by_lang.values())  # every language keeps half
    expected = {lang: sum(n > cut for n in mine) for lang, mine in by_lang.items()}
    assert sum(expected.values()) > 0
    out = tmp_path / "o"
    assert_one_line_error(
        cli(
            *train_args(
                tiny_model_dir, small_ds, out, "--max-length", cut, "--on-overlength", "error"
            )
        ),
        f"longer than {cut} tokens",
    )
    result = cli(*train_args(tiny_model_dir, small_ds, out, "--max-length", cut, "--max-steps", 1))
    assert result.code == 0, result.err
    over = read_run(out)["overlength"]
    assert over["policy"] == "drop" and over["per_language"] == expected
    assert over["examples_kept"] == 48 - sum(expected.values())
    assert sum(read_run(out)["dataset"]["counts"].values()) == over["examples_kept"]


@pytest.fixture(scope="module")
def bloom_base(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BLOOM (fused query_key_value) whose tokenizer has no chat template."""
    from transformers import AutoTokenizer, BloomConfig, BloomForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    tokenizer.chat_template = None
    config = BloomConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("bloom") / "base"
    BloomForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    assert not AutoTokenizer.from_pretrained(str(folder)).chat_template
    return folder


def test_a_base_model_without_chat_template_gets_the_default(
    cli, bloom_base: Path, small_ds: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    from mslt_it.training.chat import DEFAULT_CHAT_TEMPLATE

    out = tmp_path / "d"
    args = train_args(bloom_base, small_ds, out, "--max-steps", 2)
    assert_one_line_error(
        cli(*args), "q_proj, k_proj, v_proj is not a linear module", "query_key_value"
    )
    result = cli(*args, "--lora-target", "query_key_value")
    assert result.code == 0, result.err
    run = read_run(out)
    assert run["chat_template"] == DEFAULT_CHAT_TEMPLATE  # no BOS: this tokenizer adds none
    assert run["lora"]["target_modules"] == ["query_key_value"]
    assert run["label_check"]["end_of_turn_tokens"] == 48  # the EOS after every answer is trained
    saved = AutoTokenizer.from_pretrained(str(out))
    assert saved.chat_template == run["chat_template"]
    text = saved.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "### User:\nhi\n\n### Assistant:\n"


def test_a_training_that_diverges_to_nan_is_refused_and_keeps_nothing(
    cli, tiny_model_dir: Path, small_ds: Path, tmp_path: Path
) -> None:
    """A learning rate of 1e30 trained every LoRA weight to NaN while the logged loss stayed a
    number: the adapter was written and recorded as trained, exit 0."""
    out = tmp_path / "r"
    args = train_args(tiny_model_dir, small_ds, out, "--max-steps", 2, "--learning-rate", "1e30")
    result = cli(*args)
    assert_one_line_error(result, "training diverged", "NaN or infinite", "lower the learning")
    assert not out.exists() or not any(out.iterdir())


def test_a_finished_run_is_skipped_and_a_different_one_refused(
    cli, tiny_model_dir: Path, small_ds: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r"
    args = train_args(tiny_model_dir, small_ds, out, "--max-steps", 2)
    assert cli(*args).code == 0
    before = (out / "run.json").read_bytes()
    again = cli(*args)
    assert again.code == 0 and "already holds this run" in again.out
    assert (out / "run.json").read_bytes() == before
    # the documented default typed out (a float, 16.0) is this run, not "a different run"
    typed = cli(*args, "--lora-alpha", "16", "--lora-r", "64")
    assert typed.code == 0 and "already holds this run" in typed.out, typed.err
    assert_one_line_error(cli(*args, "--learning-rate", "1e-3"), "holds a different run")
    assert cli(*args, "--learning-rate", "1e-3", "--overwrite").code == 0
    assert read_run(out)["sft"]["learning_rate"] == 1e-3


def test_merge_folds_the_adapter_into_the_base(
    cli, tiny_model_dir: Path, small_ds: Path, tmp_path: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "a"
    assert (
        cli(
            *train_args(tiny_model_dir, small_ds, out, "--max-steps", 3, "--learning-rate", "1e-2")
        ).code
        == 0
    )
    merged_dir = tmp_path / "m"
    result = cli("merge", out, "--out", merged_dir)
    assert result.code == 0, result.err
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir)).eval()
    peft_model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), str(out)
    ).eval()
    ids = torch.tensor([[1, 5, 9, 200, 300]])
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, peft_model(ids).logits, atol=1e-4, rtol=0)
    assert read_run(merged_dir)["chat_template"] == read_run(out)["chat_template"]
    assert (merged_dir / "tokenizer.json").is_file()


# ---------------------------------------------------------------------------------------------
# The label checks fire on data built to trigger them
# ---------------------------------------------------------------------------------------------


def rewrite_dataset(source: Path, out: Path, **columns) -> Path:
    """A copy of a built dataset with some columns replaced (manifest kept)."""
    rows = datasets.load_from_disk(str(source))
    for name, value in columns.items():
        rows = rows.remove_columns(name).add_column(name, [value] * len(rows))
    rows.save_to_disk(str(out))
    consistent_manifest(source, out)
    return out


def consistent_manifest(source: Path, out: Path) -> None:
    """``source``'s manifest for the rows saved in ``out`` by other code: its fingerprint theirs,
    as a dataset no marker vouches for must have."""
    from mslt_it.data import fingerprint

    manifest = json.loads((source / "manifest.json").read_text())
    manifest["fingerprint"] = fingerprint(list(datasets.load_from_disk(str(out))))
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_empty_answers_are_refused(cli, tiny_model_dir, small_ds, tmp_path) -> None:
    empty = rewrite_dataset(
        small_ds, tmp_path / "empty", completion=[{"role": "assistant", "content": ""}]
    )
    out = tmp_path / "o"
    assert_one_line_error(
        cli(*train_args(tiny_model_dir, empty, out, "--max-steps", 1)), "no answer token"
    )
    assert not (out / "run.started.json").exists()  # a refused run writes nothing


def test_a_template_without_end_of_turn_is_refused(cli, tiny_model_dir, small_ds, tmp_path):
    from mslt_it.tiny import CHAT_TEMPLATE

    template = tmp_path / "no-eos.jinja"
    template.write_text(
        CHAT_TEMPLATE.replace("message['content'] + '<|im_end|>'", "message['content']")
    )
    result = cli(*train_args(tiny_model_dir, small_ds, tmp_path / "o", "--chat-template", template))
    assert_one_line_error(result, "'<|im_end|>'", "never appears among the trained labels")


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("hello", "does not render the user's message"),  # no .jinja file: the text itself
        ("/dev/zero", "does not render the user's message"),
        ("{{ messages[0]['content'] }}", "does not render the assistant's answer"),
    ],
)
def test_a_template_that_renders_no_turn_is_named(
    cli, tiny_model_dir, small_ds, tmp_path, value, said
):
    """It failed as "no example is left to train on ... raise --max-length", which no length
    could fix."""
    result = cli(*train_args(tiny_model_dir, small_ds, tmp_path / "o", "--chat-template", value))
    assert_one_line_error(result, "model.chat_template:", said, "not a .jinja or .j2 file")


def test_batches_with_every_label_masked_are_refused(cli, tiny_model_dir, small_ds, tmp_path):
    """Cut to 30 tokens, every example keeps only prompt tokens; packed, no row has a label."""
    result = cli(
        *train_args(
            tiny_model_dir,
            small_ds,
            tmp_path / "o",
            "--packing",
            "--max-length",
            "30",
            "--on-overlength",
            "truncate",
            "--batch-size",
            "1",
        )
    )
    assert_one_line_error(result, "every label of 48 of 48 batches is masked")


# ---------------------------------------------------------------------------------------------
# Processes: kill and resume, data-parallel with accelerate
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_full_step_count(
    cli, tiny_model_dir, small_ds, tmp_path
) -> None:
    """SIGKILL after the first checkpoint; the folder then needs --resume, which finishes it."""
    out = tmp_path / "k"
    args = [
        *map(str, train_args(tiny_model_dir, small_ds, out)),
        "--max-steps",
        "30",
        "--batch-size",
        "2",
        "--save-steps",
        "5",
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "mslt_it", *args],
        env=SUBPROCESS_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while not list(out.glob("checkpoints/checkpoint-*/trainer_state.json")):
        assert process.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "run.json").exists()

    assert_one_line_error(cli(*args), "unfinished run", "--resume", "--overwrite")
    resumed = cli(*args, "--resume")
    assert resumed.code == 0, resumed.err
    run = read_run(out)
    assert run["steps"] == 30 and run["resumed_from_step"] >= 5
    assert run["loss_history"][-1][0] == 30


@pytest.mark.slow
def test_accelerate_launch_trains_data_parallel_and_saves_one_adapter(
    tiny_model_dir, small_ds, tmp_path
) -> None:
    """Two CPU processes in one gloo group (`--multi_gpu` is accelerate's torchrun launcher;
    with no GPU visible, mslt-it sets use_cpu and the processes join over gloo)."""
    out = tmp_path / "ddp"
    args = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "mslt_it",
        *map(str, train_args(tiny_model_dir, small_ds, out)),
        "--max-steps",
        "4",
        "--batch-size",
        "2",
    ]
    done = subprocess.run(args, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    run = read_run(out)
    assert run["world_size"] == 2 and run["steps"] == 4
    assert done.stdout.count("adapter and run.json") == 1  # only the main process reports
    assert sorted(p.name for p in out.glob("adapter_model*")) == ["adapter_model.safetensors"]
    assert not any(out.glob("*.tmp"))


# ---------------------------------------------------------------------------------------------
# Errors: one line, exit 2
# ---------------------------------------------------------------------------------------------


def test_a_dataset_without_manifest_is_an_error(cli, tiny_model_dir, tmp_path) -> None:
    (tmp_path / "plain").mkdir()
    result = cli(*train_args(tiny_model_dir, tmp_path / "plain", tmp_path / "o"))
    assert_one_line_error(result, "has no manifest.json", "mslt-it build")


def test_an_unknown_lora_target_lists_the_linear_modules(cli, tiny_model_dir, small_ds, tmp_path):
    result = cli(
        *train_args(tiny_model_dir, small_ds, tmp_path / "o", "--lora-target", "q_proj,qkv")
    )
    assert_one_line_error(result, "qkv is not a linear module", "q_proj", "down_proj", "all-linear")


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("[0,99]", "layer 99 is not a layer of LlamaForCausalLM, whose layers are 0 to 1"),
        ("[0,-1]", "layer -1 is not a layer"),
        ("[]", "an empty list adapts no layer"),
        ("true", "must be a list of integers or an integer"),
    ],
)
def test_layers_to_transform_the_model_lacks_are_refused(
    cli, tiny_model_dir, small_ds, tmp_path, value, said
):
    """PEFT adapted the listed layers it found and dropped the others: [0, 99] of a two-layer
    model trained layer 0 alone, and exited 0."""
    lora = f"layers_to_transform={value}"
    result = cli(*train_args(tiny_model_dir, small_ds, tmp_path / "o", "--lora", lora))
    assert_one_line_error(result, "train.lora.layers_to_transform:", said)
    assert not (tmp_path / "o").exists()


def test_a_recipes_target_modules_string_is_a_regular_expression(tiny_model_dir, tmp_path):
    """PEFT reads a string ``target_modules`` as one regular expression of a module's whole
    name; mslt-it split it at commas and refused ``.*\\.(q_proj|v_proj)`` as no module. A
    pattern is kept and checked against the model's linear modules; one matching none (a
    comma list written as a string) is one line."""
    from mslt_it.errors import MsltError
    from mslt_it.training.config import validate_train_section
    from mslt_it.training.model import check_lora_targets

    pattern = r".*\.(q_proj|v_proj)"
    section = validate_train_section({"dataset": "ds", "lora": {"target_modules": pattern}})
    assert section.lora["target_modules"] == pattern
    check_lora_targets(str(tiny_model_dir), False, pattern)  # matches: no error
    with pytest.raises(MsltError, match=r"matches no linear module.*a list names modules"):
        check_lora_targets(str(tiny_model_dir), False, "q_proj,v_proj")
    with pytest.raises(MsltError, match="is not a regular expression"):
        validate_train_section({"dataset": "ds", "lora": {"target_modules": "(q_proj"}})
    # matching a norm, or the whole model: PEFT's error printed the module, cut to one line
    for wide, named in ((".*", "matches model,"), (r".*(q_proj|input_layernorm)", "layernorm")):
        with pytest.raises(MsltError, match=f"{named}.*is not a linear module"):
            check_lora_targets(str(tiny_model_dir), False, wide)


def test_lora_target_all_linear_with_spaces_is_all_linear() -> None:
    from mslt_it.cli.train import target_names

    assert target_names(" all-linear ") == "all-linear"
    assert target_names(" q_proj , v_proj ") == ["q_proj", "v_proj"]


def test_qlora_without_bitsandbytes_names_the_extra(
    cli, tiny_model_dir, small_ds, tmp_path, monkeypatch
) -> None:
    from mslt_it.errors import MsltError
    from mslt_it.training.model import require_bitsandbytes

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    with pytest.raises(MsltError, match=re.escape("pip install 'mslt-it[qlora]'")):
        require_bitsandbytes()
    result = cli(*train_args(tiny_model_dir, small_ds, tmp_path / "o", "--qlora"))
    assert_one_line_error(result, "--qlora needs bitsandbytes", "pip install 'mslt-it[qlora]'")


def test_unknown_pass_through_fields_suggest_close_matches(
    cli, tiny_model_dir, small_ds, tmp_path
) -> None:
    base = train_args(tiny_model_dir, small_ds, tmp_path / "o")
    assert_one_line_error(
        cli(*base, "--sft", "learnig_rate=1e-4"), "train.sft.learnig_rate", "learning_rate"
    )
    assert_one_line_error(cli(*base, "--lora", "lora_alfa=8"), "train.lora.lora_alfa", "lora_alpha")
    assert_one_line_error(cli(*base, "--sft", "max_length=8"), "--max-length")
    assert_one_line_error(cli(*base, "--on-overlength", "cut"), "train.on_overlength")


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs."""


@pytest.mark.parametrize("stop_at", ["before finish", "before run.json", "before tidying"])
def test_a_run_killed_while_finishing_can_be_redone_or_is_done(
    cli, tiny_model_dir: Path, small_ds: Path, tmp_path: Path, monkeypatch, stop_at: str
) -> None:
    """The adapter is saved aside, listed in the marker, then moved in with run.json last: a
    kill at any of these moments leaves a folder `--overwrite` replaces (before, it held the
    adapter unlisted, called the user's files for good), or a finished run a re-run tidies."""
    import mslt_it.outputs as outputs_module
    import mslt_it.training.outputs as run_outputs
    import mslt_it.training.run as run_module

    out = tmp_path / "a"
    args = train_args(tiny_model_dir, small_ds, out, "--max-steps", "2")

    def killed(*_args, **_kwargs):
        raise Killed

    if stop_at == "before finish":
        monkeypatch.setattr(run_module.outputs, "finish", killed)
    elif stop_at == "before run.json":
        real = outputs_module.os.replace

        def replace(source, target):
            if Path(target).name == "run.json":
                raise Killed
            real(source, target)

        monkeypatch.setattr(outputs_module.os, "replace", replace)
    else:
        monkeypatch.setattr(run_outputs, "tidy", killed)
    with pytest.raises(Killed):
        cli(*args)
    monkeypatch.undo()
    if stop_at == "before tidying":
        # finished: merged as it is (its staged files, listed while moved in, are not missed)
        merged = cli("merge", out, "--out", tmp_path / "merged")
        assert merged.code == 0, merged.err
        again = cli(*args)  # done: skipped, and the folder tidied and listed
        assert again.code == 0 and "nothing to do" in again.out + again.err
        assert not (out / "run.started.json").exists()
    else:
        assert_one_line_error(cli(*args), "unfinished run", "--overwrite")
        evaluated = cli("eval", "--adapter", out, "--task", "xnli", "--out", tmp_path / "ev")
        assert_one_line_error(evaluated, "unfinished run")  # not "no adapter_config.json"
    result = cli(*args, "--overwrite")
    assert result.code == 0, result.err
    assert read_run(out)["steps"] == 2 and not (out / run_outputs.STAGING).exists()
    mine = out / "notes.txt"
    mine.write_text("mine")
    assert_one_line_error(cli(*args, "--overwrite"), "notes.txt")  # a user's file still stops it


BEST_AT_END = ("--max-steps", "3", "--save-steps", "1", "--sft", "eval_steps=1",
               "--sft", "load_best_model_at_end=true",
               "--sft", "metric_for_best_model=heldout_loss",
               "--sft", "greater_is_better=true")  # fmt: skip
"""The worst held-out loss is "best": a best checkpoint before the last."""


@pytest.mark.parametrize(
    "extra", [("--max-steps", "3", "--save-steps", "1"), BEST_AT_END], ids=["last", "best"]
)
def test_resuming_a_run_stopped_after_its_last_checkpoint_trains_no_more(
    cli, tiny_model_dir: Path, small_ds: Path, tmp_path: Path, monkeypatch, extra
) -> None:
    """The Trainer, resumed from the checkpoint of the last step, trained one step past
    max_steps; the run now takes that checkpoint as it is: the same steps and weights as a run
    never stopped, the best checkpoint's where the run loads the best at its end (the last
    one's were taken)."""
    import mslt_it.training.run as run_module

    def killed(*_args, **_kwargs):
        raise Killed

    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert cli(*train_args(tiny_model_dir, small_ds, whole, *extra)).code == 0
    monkeypatch.setattr(run_module.outputs, "finish", killed)
    with pytest.raises(Killed):
        cli(*train_args(tiny_model_dir, small_ds, stopped, *extra))
    monkeypatch.undo()
    assert (stopped / "checkpoints" / "checkpoint-3").is_dir()
    result = cli(*train_args(tiny_model_dir, small_ds, stopped, *extra, "--resume"))
    assert result.code == 0, result.err
    run, reference = read_run(stopped), read_run(whole)
    assert run["steps"] == reference["steps"] == 3 and run["resumed_from_step"] == 3
    assert run["tokens_seen"] == reference["tokens_seen"]
    assert run["train_loss"] == pytest.approx(reference["train_loss"], rel=1e-4)
    weights = "adapter_model.safetensors"
    assert (stopped / weights).read_bytes() == (whole / weights).read_bytes()


def test_reduce_lr_on_plateau_steps_on_the_held_out_loss(
    cli, tiny_model_dir: Path, small_ds: Path, tmp_path: Path
) -> None:
    """The Trainer looked for eval_loss, which the named held-out rows report as
    eval_heldout_loss: an internal error at the first evaluation."""
    out = tmp_path / "r"
    plateau = ["--sft", "lr_scheduler_type=reduce_lr_on_plateau", "--sft", "eval_steps=1",
               "--sft", "lr_scheduler_kwargs={factor: 0.5, patience: 0}"]  # fmt: skip
    args = train_args(tiny_model_dir, small_ds, out, "--max-steps", 2, *plateau)
    result = cli(*args)
    assert result.code == 0, result.err
    assert (out / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("metric", ["heldout_loss", "eval_mean_token_accuracy"])
def test_a_best_metric_the_evaluations_report_is_used(
    cli, tiny_model_dir: Path, small_ds: Path, tmp_path: Path, metric: str
) -> None:
    plateau = ["--sft", "lr_scheduler_type=reduce_lr_on_plateau", "--sft", "eval_steps=1",
               "--sft", f"metric_for_best_model={metric}"]  # fmt: skip
    result = cli(*train_args(tiny_model_dir, small_ds, tmp_path / "r", "--max-steps", 2, *plateau))
    assert result.code == 0, result.err


def test_a_best_metric_no_evaluation_reports_is_one_line(
    cli, tiny_model_dir: Path, small_ds: Path, tmp_path: Path
) -> None:
    """It was the Trainer's KeyError at the first evaluation: an internal error."""
    out = tmp_path / "r"
    plateau = ["--sft", "lr_scheduler_type=reduce_lr_on_plateau", "--sft", "eval_steps=1",
               "--sft", "metric_for_best_model=eval_bleu"]  # fmt: skip
    result = cli(*train_args(tiny_model_dir, small_ds, out, "--max-steps", 2, *plateau))
    assert_one_line_error(
        result, "train.sft.metric_for_best_model: 'eval_bleu'", "(at step 1: ", "eval_heldout_loss"
    )
    assert not out.exists()  # stopped before its first checkpoint: nothing left


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("number", "column 'completion' holds int64"),
        ("plain text", "column 'completion' holds string"),
        ("empty cell", "column 'completion' is empty (null) on row 3"),
        ("no message", "column 'prompt' holds no message on row 4"),
        ("message without content", "column 'prompt' has a message without content on row 2"),
    ],
)
def test_a_dataset_whose_messages_are_not_conversations_is_one_line(
    cli, small_ds: Path, tiny_model_dir: Path, tmp_path: Path, damage: str, said: str
) -> None:
    """A dataset saved by other code with a number, a plain string or an empty cell where
    mslt-it build writes messages stopped as "internal error: TypeError", exit 1."""
    import datasets

    rows = datasets.load_from_disk(str(small_ds), keep_in_memory=True).to_list()
    if damage == "number":
        rows = [{**row, "completion": 1} for row in rows]
    elif damage == "plain text":
        rows = [{**row, "completion": row["completion"][0]["content"]} for row in rows]
    elif damage == "empty cell":
        rows[3]["completion"] = None
    elif damage == "no message":
        rows[4]["prompt"] = []
    else:
        rows[2]["prompt"][0]["content"] = None
    folder = tmp_path / "ds"
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    shutil.copy(small_ds / "manifest.json", folder / "manifest.json")
    result = cli("train", "--dataset", folder, "--model", tiny_model_dir, "--out",
                 tmp_path / "out", "--max-steps", "1")  # fmt: skip
    assert_one_line_error(result, "train.dataset:", said)
    assert not (tmp_path / "out").exists()


def test_a_run_hashed_by_an_older_version_is_still_this_run(tmp_path: Path) -> None:
    """Whole numbers are hashed as ints now (16.0 is 16); a run.json of a version before
    holds the older hash, and stays this run rather than "a different run"."""
    from mslt_it.training.config import config_hash, legacy_config_hash
    from mslt_it.training.outputs import OutputState, inspect_output

    typed = {"lora": {"lora_alpha": 16.0, "lora_dropout": 0.05}, "steps": [2.0]}
    default = {"lora": {"lora_alpha": 16, "lora_dropout": 0.05}, "steps": [2]}
    assert config_hash(typed) == config_hash(default) != legacy_config_hash(typed)
    out = tmp_path / "r"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"config_hash": legacy_config_hash(typed)}))
    assert inspect_output(out, config_hash(typed)) == OutputState.DIFFERENT
    also = (legacy_config_hash(typed),)
    assert inspect_output(out, config_hash(typed), also) == OutputState.DONE
