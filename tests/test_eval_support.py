"""Helpers for the evaluation tests: small LoRA adapters of the tiny model with a run.json.

The adapters imitate what ``mslt-it train`` writes (a PEFT folder and a ``run.json``) without
TRL: randomly initialised LoRA weights and a few steps of plain LoRA training on rendered
synthetic examples, so that an adapter's outputs differ from the base model's and from each
other's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def make_adapter(
    base: Path,
    out: Path,
    sources: Sequence[str] = ("en",),
    task: str = "xnli",
    template_id: str | None = None,
    steps: int = 4,
    seed: int = 0,
    rank: int = 8,
    prompts_dir: Sequence[str | Path] = (),
    base_model_name: str | None = None,
) -> Path:
    """Train a LoRA adapter for a few steps and write it with a run.json like training's."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mslt_it.prompts import get_template
    from mslt_it.tasks import get_task
    from mslt_it.tasks.sources import open_split

    template = get_template(template_id or f"{task}/en-instruct", prompts_dir)
    tokenizer = AutoTokenizer.from_pretrained(base)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    # B starts random (not zero), so two adapters differ from the base and from each other even
    # after the few training steps a test can afford.
    lora = LoraConfig(r=rank, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(model, lora)
    prompts, answers = [], []
    for lang in sources:
        rows = open_split(get_task(task), lang, "train", "synthetic").rows(range(seed, seed + 16))
        for row in rows:
            example = template.render(row, lang)
            user = [{"role": "user", "content": example.instruction}]
            prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
            full = tokenizer.apply_chat_template(
                [*user, {"role": "assistant", "content": example.answer}], tokenize=False
            )
            prompts.append(prompt)
            answers.append(full[len(prompt) :])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    model.train()
    for step in range(steps):
        picked = [(step * 4 + i) % len(prompts) for i in range(4)]
        batch = [prompts[i] + answers[i] for i in picked]
        encoded = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
        labels = encoded["input_ids"].masked_fill(encoded["attention_mask"] == 0, -100)
        for row, i in enumerate(picked):  # learn the answers only, as training does
            prompt_length = len(tokenizer(prompts[i], add_special_tokens=False)["input_ids"])
            start = (
                int((encoded["attention_mask"][row] == 0).sum())
                if tokenizer.padding_side == "left"
                else 0
            )
            labels[row, start : start + prompt_length] = -100
        loss = model(**encoded, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out)
    run = run_record(
        base_model_name or str(base), task, sources, template, tokenizer.chat_template, rank
    )
    (out / "run.json").write_text(json.dumps(run, indent=2), encoding="utf-8")
    return out


def run_record(
    base_model: str,
    task: str,
    sources: Sequence[str],
    template: Any,
    chat_template: str,
    rank: int,
) -> dict[str, Any]:
    """The parts of training's run.json that evaluation reads."""
    return {
        "kind": "mslt-it run",
        "base_model": base_model,
        "trust_remote_code": False,
        "dataset": {"fingerprint": "test", "task": task, "sources": list(sources)},
        "template": {
            "id": template.id,
            "sha256": template.sha256,
            "verbalizers": {lang: template.verbalizer(lang) for lang in sources},
        },
        "format": "prompt-completion",
        "system_prompt": None,
        "chat_template": chat_template,
        "lora": {"r": rank, "target_modules": ["q_proj", "v_proj"]},
        "qlora": False,
    }


def study_adapters(tiny_model_dir: Path) -> dict[str, Path]:
    """Two adapters of the tiny model (en+de and en+zh+ar sources), built once per session.

    They are cached beside the session's tiny model, so every test module that needs them
    (hf and vLLM alike) shares one build.
    """
    root = Path(tiny_model_dir).parent / "eval-adapters"
    specs = {"a1": (("en", "de"), 0), "a2": (("en", "zh", "ar"), 1)}
    adapters = {}
    for name, (sources, seed) in specs.items():
        path = root / name
        if not (path / "run.json").is_file():
            tmp = root / f".{name}.tmp"
            if tmp.exists():
                import shutil

                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
            make_adapter(Path(tiny_model_dir), tmp, sources, steps=4, seed=seed)
            tmp.rename(path)
        adapters[name] = path
    return adapters
