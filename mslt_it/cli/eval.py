"""``mslt-it eval`` (evaluate a model and its adapters) and ``mslt-it score`` (re-score outputs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mslt_it.cli.common import (
    SHIPPED_SUITES,
    SHIPPED_TASKS,
    PromptsDir,
    TasksDir,
    nonempty_path,
    print_whole,
    split_codes,
    stdout_console,
    use_tasks_dirs,
)
from mslt_it.errors import MsltError
from mslt_it.files import resolved_path
from mslt_it.outputs import RESCORED_KIND

STDOUT = stdout_console()


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
    app.command("score")(score_command)


def eval_command(
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Folder for predictions and results.", parser=nonempty_path
        ),
    ],
    model: Annotated[
        list[str] | None,
        typer.Option(
            help="Base model: Hub id or folder (default: the adapters'). Repeat it to compare "
            "models: one subfolder each and OUT/comparison (table and heatmap)."
        ),
    ] = None,
    adapter: Annotated[
        list[str] | None,
        typer.Option(help="LoRA adapter folder from `mslt-it train` (repeatable: one engine)."),
    ] = None,
    include_base: Annotated[
        bool | None,
        typer.Option("--include-base/--no-include-base", help="With adapters, also the base."),
    ] = None,
    suite: Annotated[
        list[str] | None,
        typer.Option(help=f"Suite name in eval/ ({SHIPPED_SUITES}) or a YAML file."),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(help=f"Task without a suite ({SHIPPED_TASKS}, or of --tasks-dir)."),
    ] = None,
    langs: Annotated[
        str | None,
        typer.Option(help="Comma-separated languages (with --task, or to narrow a suite)."),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            help="Split (default: the suite's, or the first of test, eval, validation, dev "
            "the task has)."
        ),
    ] = None,
    template: Annotated[
        str | None, typer.Option(help="Template id (default: the adapter's run.json, the suite's).")
    ] = None,
    allow_template_mismatch: Annotated[
        bool | None,
        typer.Option(
            "--allow-template-mismatch/--no-allow-template-mismatch",
            help="Allow a template other than the one the adapter was trained with.",
        ),
    ] = None,
    prompts_dir: PromptsDir = None,
    system_prompt: Annotated[
        str | None, typer.Option(help="System message (default: the adapter's run.json).")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(help="hub, synthetic (default), or a folder DIR/<task>/<lang>/<split>.jsonl"),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            help="Only the first N rows per language (the same items in every language of a "
            "parallel benchmark; unlabelled ones among them left out)."
        ),
    ] = None,
    backend: Annotated[str | None, typer.Option(help="hf (transformers; default) or vllm.")] = None,
    mode: Annotated[
        str | None, typer.Option(help="generate (default), rank, or constrained (vllm).")
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(
            help="Most new tokens per answer (default by kind: classification 32, ner 160, "
            "multiple choice 16, instructions 64)."
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Examples per forward (hf; default: 32).")
    ] = None,
    chunk_size: Annotated[
        int | None,
        typer.Option(help="Examples per checkpointed chunk (resume granularity; default: 256)."),
    ] = None,
    dtype: Annotated[
        str | None, typer.Option(help="auto (default), float32, bfloat16 or float16.")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="hf device, e.g. cuda:1 (default: auto).")
    ] = None,
    tensor_parallel_size: Annotated[
        int | None, typer.Option(help="vLLM tensor parallelism (GPUs).")
    ] = None,
    trust_remote_code: Annotated[
        bool | None,
        typer.Option("--trust-remote-code/--no-trust-remote-code", help="Let the model run code."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Bootstrap seed (default: 0).")] = None,
    bootstrap_samples: Annotated[
        int | None,
        typer.Option(
            help="Bootstrap resamples per language (0: none, else 40 or more; default: 1000)."
        ),
    ] = None,
    recipe: Annotated[
        Path | None,
        typer.Option(
            help="Recipe YAML; its `eval` section is used, options override.", parser=nonempty_path
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Start over in an --out that holds another evaluation.")
    ] = False,
    update: Annotated[
        bool,
        typer.Option(
            help="Make the evaluation in --out again for these options, predicting only what "
            "changed (a language added, one language's rows, one adapter retrained); runs no "
            "longer asked for are dropped."
        ),
    ] = False,
    tasks_dir: TasksDir = None,
) -> None:
    """Evaluate a model and its LoRA adapters zero-shot across languages.

    A killed run, started again with the same options, resumes from its last saved chunk.
    With --update, an earlier evaluation in --out is made again for new options, keeping every
    prediction whose inputs did not change.

    Example: mslt-it eval --adapter runs/xnli-en-de-zh/adapter --suite xnli-targets --out runs/ev
    """
    use_tasks_dirs(tasks_dir)
    from mslt_it.config import validate_section
    from mslt_it.evaluation import EvalConfig, evaluate
    from mslt_it.named_models import resolve_model_name
    from mslt_it.recipes import recipe_section

    settings: dict[str, Any] = {}
    prefix = ""
    if recipe is not None:
        section = recipe_section(recipe, "eval")  # its tasks_dir known first, as `run` does
        if not isinstance(section, dict):
            raise MsltError(f"{recipe}: eval: the recipe has no `eval` section")
        settings, prefix = dict(section), "eval"
    models = model if model and len(model) > 1 else None  # compare_models refuses repeats
    options = {
        "model": model[0] if model and len(model) == 1 else None,
        "adapters": adapter,
        "include_base": include_base,
        "suite": suite,
        "task": task,
        "langs": split_codes(langs, "--langs") if langs is not None else None,
        "split": split,
        "template": template,
        "allow_template_mismatch": allow_template_mismatch,
        "prompts_dir": prompts_dir,
        "system_prompt": system_prompt,
        "data": data,
        "limit": limit,
        "backend": backend,
        "mode": mode,
        "max_tokens": max_tokens,
        "batch_size": batch_size,
        "chunk_size": chunk_size,
        "dtype": dtype,
        "device": device,
        "tensor_parallel_size": tensor_parallel_size,
        "trust_remote_code": trust_remote_code,
        "seed": seed,
        "bootstrap_samples": bootstrap_samples,
    }
    if task is not None and suite is None:
        settings.pop("suite", None)  # a task on the command line replaces the recipe's suites
    if suite is not None and task is None:
        settings.pop("task", None)
    settings.update({key: value for key, value in options.items() if value not in (None, [])})
    config = validate_section(EvalConfig, settings, prefix)
    if device is not None and config.backend != "hf":  # it was silently ignored
        raise MsltError(
            f"--device: {device!r} applies to --backend hf only; vLLM places the model itself "
            "(choose its GPUs with CUDA_VISIBLE_DEVICES)"
        )
    if config.model is not None:  # mslt-it:tiny-world and the like, as in a recipe
        config = config.model_copy(update={"model": resolve_model_name(config.model)})
    if models is not None:
        models = [resolve_model_name(name) for name in models]
    if models is None and config.compare_models:  # an eval recipe that compares models
        if config.model is None:
            raise MsltError("eval.compare_models: also give eval.model (or --model)")
        models = [config.model, *(resolve_model_name(m) for m in config.compare_models)]
    if models is not None:
        compare(config.model_copy(update={"compare_models": []}), models, out, overwrite, update)
        return
    outcome = evaluate(config, out, overwrite=overwrite, update=update)
    for name, results in outcome.results.items():
        print_results(results, title=name)
    STDOUT.print(f"results → {outcome.out}", highlight=False, soft_wrap=True)


def compare(config: Any, models: list[str], out: Path, overwrite: bool, update: bool) -> None:
    """Several models: each evaluated into its subfolder, then the comparison report."""
    from mslt_it.evaluation import compare_models

    comparison = compare_models(config, models, out, overwrite=overwrite, update=update)
    for model, outcome in comparison.outcomes.items():
        for name, results in outcome.results.items():
            print_results(results, title=f"{model} ({name})")
    STDOUT.print(f"comparison → {comparison.report}", highlight=False, soft_wrap=True)


def score_command(
    predictions: Annotated[
        Path, typer.Argument(help="predictions.jsonl from `mslt-it eval`.", parser=nonempty_path)
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the scores (default: rescored.json beside the file).",
            parser=nonempty_path,
        ),
    ] = None,
    prompts_dir: PromptsDir = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Bootstrap seed (default: the run's).", min=0, max=2**32 - 1),
    ] = None,
    bootstrap_samples: Annotated[
        int | None,
        typer.Option(
            help="Bootstrap resamples (0: none, else 40 or more; default: the run's).",
            min=0,
            max=1_000_000,
        ),
    ] = None,
    tasks_dir: TasksDir = None,
) -> None:
    """Re-parse and re-score saved model outputs with the templates' current label words.

    No model is loaded. Example: mslt-it score runs/ev/predictions.jsonl
    """
    use_tasks_dirs(tasks_dir)
    from mslt_it.evaluation import rescore_file
    from mslt_it.io import atomic_write_json, seal
    from mslt_it.locks import check_none_being_written, output_lock
    from mslt_it.outputs import (
        check_not_working_space,
        check_output_file,
        marked_output,
        record_file,
        sealed_json_of_kind,
    )

    check_not_working_space(predictions, "predictions")  # a killed evaluation's staged rows
    resolved_path(predictions, "predictions")  # a link loop is said to be one
    # an evaluation being written (eval --overwrite or --update) is named, not "no such file"
    read = [predictions.parent, marked_output(predictions)]
    check_none_being_written(read, "predictions")
    target = check_output_file(
        out or predictions.parent / "rescored.json",
        field="--out",
        inputs=[predictions, predictions.parent / "results.json"],
        ours=sealed_json_of_kind(RESCORED_KIND),
        what="a rescored.json",
    )
    check_not_working_space(target, "--out")  # an evaluation clears it, and the file with it
    output = marked_output(target)
    own = marked_output(predictions)
    same_evaluation = own is not None and (
        output == own or (output is not None and output.resolve() in own.resolve().parents)
    )
    beside = target.resolve().parent == predictions.resolve().parent  # not another run's folder
    if output is not None and not (same_evaluation and beside):
        where = "another run's folder of" if same_evaluation else "another mslt-it output,"
        raise MsltError(
            f"--out: {str(target)!r} lies in {where} {str(output)!r}, where it would pass for "
            "that output's rescoring; write it beside its own predictions or outside any output"
        )
    # One score at a time writes a file: a second process stops at once, naming the first,
    # instead of both saying "scores →" and the last one silently winning.
    with output_lock(target, "--out"):
        results = rescore_file(predictions, prompts_dir or [], seed, bootstrap_samples)
        check_none_being_written(read, "predictions")  # a second look, once read
        if target.exists() and not sealed_json_of_kind(RESCORED_KIND)(target):
            raise MsltError(f"--out: {str(target)!r} was replaced meanwhile; nothing was written")
        if output is None:
            atomic_write_json(target, seal(results))
        else:  # into an output of mslt-it's (an evaluation): its marker learns of the file
            with output_lock(output, "--out"):
                atomic_write_json(target, seal(results))
                record_file(target)
    print_results(results, title=str(predictions))
    STDOUT.print(f"scores → {target}", highlight=False, soft_wrap=True)


def print_results(results: dict[str, Any], title: str) -> None:
    """One table per task: score, interval, examples and invalid answers per language."""
    for task, data in results["tasks"].items():
        ner = data["metric"] == "f1"
        norm = "acc_norm_unweighted" in data["average"]  # rank-mode multiple choice
        extra = ["span F1"] if ner else ["acc_norm"] if norm else []
        table = Table(title=f"{title} · {task} · {data['metric']}")
        for name in ["language", data["metric"], "95% CI", *extra]:
            table.add_column(name, justify="left" if name == "language" else "right")
        table.add_column("n", justify="right")
        table.add_column("invalid", justify="right")
        for lang, row in data["languages"].items():
            interval = row.get("ci95")
            cells = [lang, f"{row['score']:.1f}"]
            cells.append(f"{interval[0]:.1f}–{interval[1]:.1f}" if interval else "–")
            if ner:
                cells.append(f"{row['span_f1']:.1f}")
            if norm:
                cells.append(f"{row['acc_norm']:.1f}")
            cells += [str(row["n"]), f"{100 * row['invalid_rate']:.1f}%"]
            table.add_row(*cells)
        blanks = [""] * (3 if extra else 2)
        average = data["average"]
        if average["unweighted"] is not None:
            weighted = f"weighted {average['weighted']:.1f}"
            norm_cell = [f"{average['acc_norm_unweighted']:.1f}"] if norm else []
            table.add_row(
                "average",
                f"{average['unweighted']:.1f}",
                weighted,
                *norm_cell,
                *blanks[len(norm_cell) :],
            )
        targets = data.get("average_targets") or {}
        interval = targets.get("ci95")  # the zero-shot number's uncertainty, shown even where
        other = targets.get("languages") != average["languages"]  # its mean is the average's
        if targets.get("unweighted") is not None and (other or interval):
            shown = f"{interval[0]:.1f}–{interval[1]:.1f}" if interval else ""
            table.add_row("targets", f"{targets['unweighted']:.1f}", shown, *blanks)
        print_whole(STDOUT, table)
