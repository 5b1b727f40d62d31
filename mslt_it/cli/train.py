"""``mslt-it train`` (LoRA/QLoRA fine-tuning with TRL) and ``mslt-it merge`` (adapter into base).

Several GPUs: ``accelerate launch --config_file configs/accelerate/ddp.yaml -m mslt_it train …``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mslt_it.cli.common import (
    TasksDir,
    nonempty_path,
    print_whole,
    split_codes,
    stdout_console,
    use_tasks_dirs,
)
from mslt_it.errors import MsltError, clipped
from mslt_it.named_models import resolve_model_name
from mslt_it.terminal import STDERR

STDOUT = stdout_console()


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("merge")(merge)


def train(
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Folder for the adapter and run.json.", parser=nonempty_path
        ),
    ],
    dataset: Annotated[
        str | None, typer.Option(help="Dataset folder from `mslt-it build`.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Base model: Hub id or local folder.")] = None,
    recipe: Annotated[
        Path | None,
        typer.Option(
            help="Recipe YAML; its `model` and `train` sections are used, options override.",
            parser=nonempty_path,
        ),
    ] = None,
    eval_dataset: Annotated[
        str | None, typer.Option(help="Held-out dataset for answer-token loss/accuracy.")
    ] = None,
    chat_template: Annotated[
        str | None,
        typer.Option(help="Override the chat template: 'default', a .jinja file or a template."),
    ] = None,
    trust_remote_code: Annotated[
        bool | None,
        typer.Option("--trust-remote-code/--no-trust-remote-code", help="Run the model's code."),
    ] = None,
    lora_r: Annotated[int | None, typer.Option(help="LoRA rank (default 64).")] = None,
    lora_alpha: Annotated[float | None, typer.Option(help="LoRA alpha (default 16).")] = None,
    lora_dropout: Annotated[float | None, typer.Option(help="LoRA dropout (default 0.05).")] = None,
    lora_target: Annotated[
        str | None,
        typer.Option(
            help="Modules to adapt, by name: q_proj,k_proj,v_proj (default), all-linear, … (a "
            "recipe's target_modules may also be one regular expression, as PEFT reads a string)."
        ),
    ] = None,
    qlora: Annotated[
        bool | None, typer.Option("--qlora/--no-qlora", help="4-bit NF4 base (bitsandbytes).")
    ] = None,
    max_length: Annotated[
        int | None, typer.Option(help="Longest example in tokens (default 512).")
    ] = None,
    on_overlength: Annotated[
        str | None, typer.Option(help="drop (default), truncate or error.")
    ] = None,
    packing: Annotated[
        bool | None,
        typer.Option("--packing/--no-packing", help="Best-fit packing, examples kept apart."),
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option(help="Peak learning rate (default 2e-4).")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Optimizer steps (overrides --epochs).")
    ] = None,
    epochs: Annotated[float | None, typer.Option(help="Epochs (default 3).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Examples per device and step.")] = None,
    grad_accum: Annotated[int | None, typer.Option(help="Gradient accumulation steps.")] = None,
    save_steps: Annotated[int | None, typer.Option(help="Checkpoint every N steps.")] = None,
    seed: Annotated[int | None, typer.Option(help="Training seed.")] = None,
    sft: Annotated[
        list[str] | None,
        typer.Option(help="Any SFTConfig field as KEY=VALUE (repeatable), e.g. warmup_steps=10."),
    ] = None,
    lora: Annotated[
        list[str] | None,
        typer.Option(help="Any LoraConfig field as KEY=VALUE (repeatable), e.g. use_rslora=true."),
    ] = None,
    watch: Annotated[
        list[str] | None,
        typer.Option(
            help="Score TASK:LANG[,LANG…] in rank mode during training (repeatable): transfer "
            "curves in run.json, e.g. xnli:sw,ur."
        ),
    ] = None,
    watch_every: Annotated[
        int | None, typer.Option(help="Watch every N steps (default: ten points).")
    ] = None,
    eval_langs: Annotated[
        str | None,
        typer.Option(
            help="Languages (a,b,…) whose held-out loss is logged at eval_steps beside the "
            "sources' (a source named here is measured once; a recipe's grid may name one); "
            '"" for none (clears a --recipe\'s).'
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue an unfinished run from its last checkpoint.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option(help="Replace a run mslt-it wrote there (never a file of yours).")
    ] = False,
    tasks_dir: TasksDir = None,
) -> None:
    """Fine-tune a base model on a built dataset with a LoRA adapter (TRL SFTTrainer + PEFT).

    Loss is on the answers only; examples longer than --max-length are dropped and counted; the
    labels are checked before the first step. Writes the adapter, the tokenizer (with the chat
    template used) and run.json to --out.

    Example: mslt-it train --dataset ds --model Qwen/Qwen2.5-0.5B --out runs/a --max-steps 500
    """
    from mslt_it.config import load_yaml, validate_section
    from mslt_it.modeling import check_base_model_folder
    from mslt_it.recipes import use_recipe_tasks_dirs
    from mslt_it.training.config import (
        ModelConfig,
        parse_assignments,
        parse_watch,
        validate_train_section,
    )
    from mslt_it.training.limits import option_named
    from mslt_it.training.run import train as run_training

    use_tasks_dirs(tasks_dir)  # a watched task of the user's (the dataset's own is found)
    model_section: dict[str, Any] = {}
    train_section: dict[str, Any] = {}
    if recipe is not None:
        loaded = load_yaml(recipe)
        check_recipe_keys(loaded, recipe)
        use_recipe_tasks_dirs(recipe, loaded.get("tasks_dir"))  # as `mslt-it run` does
        model_section = dict(section(loaded, "model", recipe))
        train_section = dict(section(loaded, "train", recipe))
    model_options = {
        "name_or_path": model,
        "trust_remote_code": trust_remote_code,
        "chat_template": chat_template,
    }
    model_section.update({k: v for k, v in model_options.items() if v is not None})
    if "name_or_path" not in model_section:
        raise MsltError("model: no base model given; pass --model ID_OR_PATH or a recipe's model:")
    if isinstance(model_section["name_or_path"], str):  # mslt-it:tiny-world, as in a recipe
        model_section["name_or_path"] = resolve_model_name(model_section["name_or_path"])

    train_options = {
        "dataset": dataset,
        "eval_dataset": eval_dataset,
        "max_length": max_length,
        "on_overlength": on_overlength,
        "packing": packing,
        "qlora": qlora,
    }
    train_section.update({k: v for k, v in train_options.items() if v is not None})
    if watch:
        train_section["watch"] = parse_watch(watch, watch_every)
    elif watch_every is not None:
        raise MsltError("--watch-every: give --watch TASK:LANGS too")
    if eval_langs is not None:
        # "" clears a recipe's list; ",,," (or "en,,de") is no list: said, not trained without
        codes = [] if eval_langs == "" else split_codes(eval_langs, "--eval-langs")
        train_section["eval_langs"] = codes
    lora_options = {
        "r": lora_r,
        "lora_alpha": lora_alpha,
        "lora_dropout": lora_dropout,
        "target_modules": target_names(lora_target),
    }
    train_section["lora"] = merged_fields(
        train_section, "lora", lora_options, parse_assignments(lora, "--lora"), "--lora"
    )
    sft_options = {
        "learning_rate": learning_rate,
        "max_steps": max_steps,
        "num_train_epochs": epochs,
        "per_device_train_batch_size": batch_size,
        "gradient_accumulation_steps": grad_accum,
        "save_steps": save_steps,
        "seed": seed,
    }
    train_section["sft"] = merged_fields(
        train_section, "sft", sft_options, parse_assignments(sft, "--sft"), "--sft"
    )
    model_config = validate_section(ModelConfig, model_section, "model")
    check_base_model_folder(model_config.name_or_path, "--model" if model else "model.name_or_path")
    try:
        train_config = validate_train_section(train_section, "train")
    except MsltError as error:  # the option typed, beside the recipe's field
        raise MsltError(option_named(str(error), "train")) from None
    result = run_training(model_config, train_config, out, resume=resume, overwrite=overwrite)

    from accelerate import PartialState

    if not PartialState().is_main_process:
        return
    if result.skipped:
        STDOUT.print(
            f"{out} already holds this run, complete (steps {result.run.get('steps')}); "
            "nothing to do (pass --overwrite to train again)",
            highlight=False,
            soft_wrap=True,
        )
        return
    print_summary(result.run, out)


def check_recipe_keys(recipe: dict[str, Any], path: Path) -> None:
    """A recipe's top-level keys are the fields of a whole recipe (``mslt-it run`` refuses any
    other): ``trian:`` for ``train:`` trained with the defaults without a word. Sections this
    command does not read (data, sources, eval, report) are allowed and ignored."""
    from mslt_it.config import RecipeConfig
    from mslt_it.yamlfiles import key_not_a_name, unknown_field

    known = list(RecipeConfig.model_fields)
    for key in recipe:
        if not isinstance(key, str):  # `null:` or `5:` in YAML is a value, not a name
            raise MsltError(f"{path}: (top level): {key_not_a_name(key)}")
        if key not in known:
            shown = key if key.isprintable() and len(key) <= 60 else clipped(key, 60)
            raise MsltError(
                f"{path}: {shown}: {unknown_field(key, known)}; a recipe's top level holds "
                f"{', '.join(known)}"
            )


def section(recipe: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    """A recipe section, which may be absent (options then say everything)."""
    value = recipe.get(name) or {}
    if not isinstance(value, dict):
        raise MsltError(f"{path}: {name}: expected a mapping")
    return value


def print_summary(run: dict[str, Any], out: Path) -> None:
    """A short table: what was trained, how fast, how well, what was left out."""
    table = Table(
        title=f"{run['base_model']} · {run['dataset']['task']} · LoRA r={run['lora']['r']}"
    )
    table.add_column("")
    table.add_column("", justify="right")
    over = run["overlength"]
    rows = [
        ("examples", ", ".join(f"{k}: {v}" for k, v in run["dataset"]["counts"].items())),
        (
            f"over {over['max_length']} tokens ({over['policy']})",
            ", ".join(f"{k}: {v}" for k, v in over["per_language"].items()),
        ),
        ("steps", str(run["steps"])),
        ("tokens seen", f"{run['tokens_seen']:,}"),
        ("tokens / s", f"{run['tokens_per_second']:,.0f}" if run["tokens_per_second"] else "-"),
        ("train time", f"{run['train_seconds']:.0f} s"),
        ("peak memory", f"{run['peak_memory_mb']:,.0f} MB"),
        (
            "final loss (logged)",
            f"{run['final_loss']:.4f}" if run["final_loss"] is not None else "-",
        ),
    ]
    if "answer_token_accuracy" in run:
        rows.append(
            (
                f"answer-token accuracy ({run['answer_metrics_on']})",
                f"{run['answer_token_accuracy']:.3f}",
            )
        )
    if "base_answer_token_accuracy" in run:
        rows.append(("  the base model, same tokens", f"{run['base_answer_token_accuracy']:.3f}"))
    found = run.get("curves") or {}
    for lang, points in found.get("loss_by_language", {}).items():
        if points:
            rows.append((f"  loss {lang} (first → last)", first_last(points, "{:.4f}")))
    for task, langs in found.get("watch", {}).items():
        for lang, points in langs.items():
            rows.append((f"watch {task}/{lang} (first → last)", first_last(points, "{:.1f}")))
    for name, value in rows:
        table.add_row(name, value)
    print_whole(STDOUT, table)
    from mslt_it.training.curves import mix_warnings

    for line in mix_warnings(run):
        STDERR.print(f"warning: trained mix: {line}", highlight=False, soft_wrap=True)
    STDOUT.print(f"adapter and run.json → {out}", highlight=False, soft_wrap=True)


def first_last(points: list[list[float]], form: str) -> str:
    """A curve's first and last values, e.g. ``33.0 → 71.0``."""
    return f"{form.format(points[0][1])} → {form.format(points[-1][1])}"


def merge(
    adapter_dir: Annotated[
        Path, typer.Argument(help="Output folder of `mslt-it train`.", parser=nonempty_path)
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the merged model.", parser=nonempty_path)
    ],
    dtype: Annotated[
        str, typer.Option(help="dtype to load the base in: auto, bfloat16, float16, float32.")
    ] = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
) -> None:
    """Merge a LoRA adapter into its base model (base read from run.json) and save it.

    Example: mslt-it merge runs/a --out runs/a-merged
    """
    from mslt_it.training.merge import describe, merge_adapter

    path = merge_adapter(adapter_dir, out, overwrite=overwrite, dtype=dtype)
    STDOUT.print(describe(path), highlight=False, soft_wrap=True)


def merged_fields(
    train_section: dict[str, Any],
    name: str,
    options: dict[str, Any],
    assigned: dict[str, Any],
    flag: str,
) -> dict[str, Any]:
    """``train.NAME`` (LoraConfig or SFTConfig fields): the recipe's mapping, then the named
    options, then ``FLAG KEY=VALUE``. A field set both by an option and by ``FLAG`` is an error,
    not a silent winner (``--max-steps 2 --sft max_steps=-1`` trained 150 steps)."""
    recipe_fields = train_section.get(name)
    if recipe_fields is not None and not isinstance(recipe_fields, dict):
        raise MsltError(
            f"train.{name}: expected a mapping of {'LoraConfig' if name == 'lora' else 'SFTConfig'}"
            f" fields, got {clipped(recipe_fields, 40)}"
        )
    given = {key: value for key, value in options.items() if value is not None}
    both = sorted(set(given) & set(assigned))
    if both and any(given[key] != assigned[key] for key in both):
        key = both[0]
        raise MsltError(
            f"{flag}: {key}={assigned[key]!r} and an option setting {key} to {given[key]!r}; "
            "give it once"
        )
    return {**(recipe_fields or {}), **given, **assigned}


def target_names(value: str | None) -> str | list[str] | None:
    """``--lora-target``: module names, comma-separated, or ``all-linear``. A list to PEFT,
    which reads a string as a regular expression (a recipe may give one)."""
    if value is None or value.strip() == "all-linear":
        return None if value is None else "all-linear"
    names = [name.strip() for name in value.split(",")]
    if not all(names):  # `q_proj,,v_proj` was read as two names, without a word
        raise MsltError(
            f"--lora-target: {value!r} holds an empty module name; give names separated by "
            "commas (q_proj,v_proj), or all-linear"
        )
    return names
