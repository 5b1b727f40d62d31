"""``mslt-it build``: a multilingual instruction dataset from chosen source languages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mslt_it.cli.common import (
    SHIPPED_TASKS,
    PromptsDir,
    TasksDir,
    nonempty_path,
    print_whole,
    split_codes,
    stdout_console,
    use_tasks_dirs,
)
from mslt_it.errors import MsltError, field_named

STDOUT = stdout_console()


def register(app: typer.Typer) -> None:
    app.command("build")(build)


def build(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder to write the dataset to.", parser=nonempty_path),
    ],
    task: Annotated[
        str | None,
        typer.Option(
            help=f"A task or instruction corpus of tasks/ ({SHIPPED_TASKS}) or of --tasks-dir."
        ),
    ] = None,
    sources: Annotated[
        str | None, typer.Option(help="Comma-separated source languages, e.g. en,de,zh.")
    ] = None,
    budget: Annotated[
        int | None, typer.Option(help="Number of examples (see --budget-mode).")
    ] = None,
    budget_mode: Annotated[
        str | None,
        typer.Option(help="total (split equally), per_language or temperature (default: total)."),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(help="T for --budget-mode temperature (share ∝ rows^(1/T); default: 3.33)."),
    ] = None,
    take_available: Annotated[
        bool | None,
        typer.Option(
            "--take-available/--no-take-available",
            help="Take what there is when a language has fewer rows than asked.",
        ),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            help="Prompt template id (default: <task>/en-instruct; a corpus: <task>/as-is)."
        ),
    ] = None,
    prompts_dir: PromptsDir = None,
    data: Annotated[
        str | None,
        typer.Option(help="hub, synthetic (default), or a folder DIR/<task>/<lang>/<split>.jsonl"),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Split to sample from (default: train).")
    ] = None,
    format: Annotated[
        str | None, typer.Option("--format", help="prompt-completion (default) or messages.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Sampling and shuffling seed (default: 0).")
    ] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            help="Tokenizer for per-language token counts in the manifest (Hub id, folder or "
            "mslt-it:tiny-world…)."
        ),
    ] = None,
    max_length: Annotated[
        int | None,
        typer.Option(help="Length above which examples are counted as too long (default: 512)."),
    ] = None,
    system_prompt: Annotated[
        str | None,
        typer.Option(
            help="A system message put before every conversation (one of its own is kept)."
        ),
    ] = None,
    script_mismatch: Annotated[
        str | None,
        typer.Option(
            help="Corpora: rows mostly in another script than their language's are counted "
            "(count) or also left out (drop)."
        ),
    ] = None,
    recipe: Annotated[
        Path | None,
        typer.Option(
            help="Recipe YAML; its `data` section is used, options override.", parser=nonempty_path
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
    tasks_dir: TasksDir = None,
) -> None:
    """Build an instruction-tuning dataset (datasets format + manifest.json) from source languages.

    Example: mslt-it build --task xnli --sources en,de,zh --budget 3000 --data synthetic --out ds

    Corpora: mslt-it build --task bactrian-x --sources ar,en,zh --budget 6000 --data hub --out ds
    (duplicates, empty answers and rows in another script are counted per language; a recipe's
    `data.mixture` mixes tasks, e.g. a corpus and XNLI instructions, each with its share).
    """
    use_tasks_dirs(tasks_dir)
    from mslt_it.config import DataConfig, validate_section
    from mslt_it.data import (
        build_dataset,
        check_max_length_is_read,
        check_script_mismatch_is_read,
    )
    from mslt_it.recipes import check_mixture, recipe_section
    from mslt_it.tokens import TOKENIZER_FIELD

    settings: dict[str, Any] = {}
    prefix = ""
    if recipe is not None:
        section = recipe_section(recipe, "data")  # its tasks_dir known, as in `mslt-it run`
        if not isinstance(section, dict):
            raise MsltError(f"{recipe}: data: the recipe has no `data` section to build from")
        settings, prefix = dict(section), "data"
    options = {
        "task": task,
        "sources": split_codes(sources, "--sources") if sources is not None else None,
        "budget": budget,
        "budget_mode": budget_mode,
        "temperature": temperature,
        "take_available": take_available,
        "template": template,
        "prompts_dir": prompts_dir,
        "data": data,
        "split": split,
        "format": format,
        "seed": seed,
        "tokenizer": tokenizer,
        "max_length": max_length,
        "system_prompt": system_prompt,
        "script_mismatch": script_mismatch,
    }
    settings.update({key: value for key, value in options.items() if value is not None})
    if recipe is not None and not settings.get("sources"):
        raise MsltError(
            f"{recipe}: sources: the recipe names a grid of source sets (or none); "
            "`build --recipe` builds one set: pass --sources (or `mslt-it run` for the grid)"
        )
    try:
        field = "--temperature" if temperature is not None else "data.temperature"
        DataConfig.check_temperature_is_read(settings, field)
    except ValueError as error:
        from_recipe = recipe is not None and temperature is None
        raise MsltError(f"{recipe}: {error}" if from_recipe else str(error)) from None
    try:
        config = validate_section(DataConfig, settings, prefix)
    except MsltError as error:  # a value the recipe holds, not one typed here: name the file
        field = str(error).removeprefix("data.").split(":")[0].split(".")[0]
        if recipe is None or options.get(field) is not None:
            raise
        raise MsltError(f"{recipe}: {error}") from None
    if max_length is not None and config.tokenizer is None:  # nothing counts tokens then
        raise MsltError(
            "--max-length: read only with --tokenizer (examples are counted as too long in "
            "its tokens); give --tokenizer, or leave --max-length out"
        )
    if config.max_length != DataConfig.model_fields["max_length"].default:  # the recipe's
        check_max_length_is_read(config, f"{recipe}: data.max_length")
    given = script_mismatch is not None or recipe is None
    check_script_mismatch_is_read(
        config, "--script-mismatch" if given else f"{recipe}: data.script_mismatch"
    )
    if config.mixture:  # only a recipe has one: its errors name the recipe and the part
        try:
            check_mixture(config, "data")
        except MsltError as error:
            raise MsltError(f"{recipe}: {error}") from None
    named = (
        TOKENIZER_FIELD if tokenizer is not None or recipe is None else f"{recipe}: data.tokenizer"
    )
    with field_named(named, TOKENIZER_FIELD):
        result = build_dataset(config, out, overwrite=overwrite)
    print_summary(result.manifest, result.path)


def print_summary(manifest: dict[str, Any], path: Path) -> None:
    """Counts (and tokens, when measured) per language, then where the dataset is.

    A corpus shows what cleaning left out; a mixture, each part's examples.
    """
    tokens = manifest.get("tokens", {}).get("per_language", {})
    cleaning = manifest.get("cleaning")
    parts = manifest.get("mixture") or []
    table = Table(title=f"{manifest['task']} · {manifest['template']['id']} · {manifest['format']}")
    table.add_column("language")
    table.add_column("examples", justify="right")
    for part in parts:
        table.add_column(part["task"], justify="right")
    if cleaning:
        for name in ("duplicates", "empty", "other script"):
            table.add_column(name, justify="right")
    else:
        table.add_column("dropped (unlabelled)", justify="right")
    if tokens:
        table.add_column("mean tokens", justify="right")
        table.add_column(f"> {manifest['tokens']['max_length']} tokens", justify="right")
    for lang, count in manifest["counts"].items():
        row = [lang, str(count), *(str(part["counts"][lang]) for part in parts)]
        if cleaning:
            counts = cleaning[lang]
            row += [str(counts["duplicates"]), str(counts["empty"]), str(counts["script_mismatch"])]
        else:
            row.append(str(manifest["data"]["dropped_unlabelled"][lang]))
        if tokens:
            row += [f"{tokens[lang]['mean']:.1f}", str(tokens[lang]["over_max_length"])]
        table.add_row(*row)
    print_whole(STDOUT, table)
    STDOUT.print(
        f"{manifest['num_examples']} examples → {path} (fingerprint {manifest['fingerprint'][:12]})"
    )
