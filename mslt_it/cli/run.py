"""``mslt-it run RECIPE``: one experiment from data to report, continuing where it stopped."""

from __future__ import annotations

import hashlib
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mslt_it.cli.common import nonempty_path, print_whole, stdout_console
from mslt_it.errors import MsltError
from mslt_it.named_models import named_model_in
from mslt_it.terminal import STDERR, labelled, styled

STDOUT = stdout_console()
SLURM_MARKER = "# mslt-it Slurm array script, sha256 of its other lines:"
"""The seal line of a script ``--emit-slurm`` wrote: with the digest of every other line, so
only its own, unedited script is ever replaced (an edited one is the user's now)."""
MAX_SCRIPT_BYTES = 1_000_000
"""Largest existing file read to tell whether it is mslt-it's script (a script is a few KB)."""
STATUS_STYLE = {"done": "green", "todo": "yellow", "stale": "magenta", "waiting": "dim"}


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    recipe: Annotated[
        Path, typer.Argument(help="Recipe YAML (see recipes/).", parser=nonempty_path)
    ],
    out_text: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            metavar="<path>",
            help="Output folder (default: the recipe's output_dir, or runs/<name>).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Show the plan (runs, steps, what is done) and stop.")
    ] = False,
    only: Annotated[
        str | None, typer.Option(help="Build and train only this run (e.g. a Slurm array task).")
    ] = None,
    emit_slurm: Annotated[
        Path | None,
        typer.Option(
            help="Write a Slurm array script (one task per run) here and stop.",
            parser=nonempty_path,
        ),
    ] = None,
) -> None:
    """Carry out a recipe: build, train, evaluate and report every run it names.

    Steps whose outputs exist for the same inputs (content hash) are skipped, so running it
    again after a crash continues where it stopped. Example: mslt-it run recipes/demo.yaml
    """
    from mslt_it.evaluation.runner import unread_device_note
    from mslt_it.recipes import load_recipe
    from mslt_it.runner import (
        check_experiment_folder,
        check_plan_can_start,
        execute_plan,
        make_plan,
    )

    if out_text is not None and not out_text.strip():  # Path("") would be "."
        raise MsltError("--out: an empty path; give a folder")
    out = Path(out_text) if out_text is not None else None
    if emit_slurm is not None and (only is not None or dry_run):
        flag = "--only" if only is not None else "--dry-run"
        raise MsltError(
            f"{flag}: not with --emit-slurm, which writes a script for every run and stops"
        )
    loaded = load_recipe(recipe, output_dir=out)
    plan = make_plan(loaded)
    if emit_slurm is not None:
        check_experiment_folder(loaded)  # every task would refuse a folder this run refuses
        write_slurm_script(plan, recipe, emit_slurm, out)
        return
    selected = plan.select(only)  # a wrong --only, or an output folder the run would refuse:
    check_experiment_folder(loaded)  # said first, as the only line, not after the plan
    print_plan(plan, selected)
    if only is not None:
        STDERR.print(
            f"note: --only {only} builds and trains that run; the evaluation, the models' "
            "comparison and the report are made by `mslt-it run` without --only",
            highlight=False,
            soft_wrap=True,
        )
    if dry_run:
        check_plan_can_start(plan, only)  # what the run would refuse only after the plan
        note = unread_device_note(loaded.eval) if loaded.eval is not None else None
        if note:  # the evaluation says it when it runs
            STDERR.print(note, highlight=False, soft_wrap=True)
        return
    execute_plan(
        plan,
        only=only,
        on_step=lambda step, what: STDOUT.print(labelled(f"{step.title}:", "bold", what)),
    )
    if only is None:
        STDOUT.print(f"report: {plan.recipe.output_dir / 'report' / 'report.md'}")


def print_plan(plan, steps) -> None:
    """The runs and ``steps`` (all, or one run's with ``--only``) with their status, before
    anything runs: the whole plan under ``--only`` showed steps it would not run."""
    recipe = plan.recipe
    STDOUT.print(
        labelled(
            f"{recipe.config.name}:",
            "bold",
            f"{len(recipe.runs)} run(s) of {recipe.config.data.task}, "
            f"budget {recipe.config.data.budget} ({recipe.config.data.budget_mode}), "
            f"model {recipe.model.name_or_path}{made_into(plan)} → {recipe.output_dir}",
        )
    )
    table = Table(title="plan")
    for column in ("step", "run", "sources from", "output", "status"):
        table.add_column(column, overflow="fold")
    for step in steps:
        status = step.status()
        origin = ", ".join(sorted({r.origin for r in step.runs}))
        runs = ", ".join(r.label for r in step.runs) or f"all {len(recipe.runs)} runs"
        table.add_row(
            step.name, runs, origin, str(step.output), styled(status, STATUS_STYLE[status])
        )
    print_whole(STDOUT, table)
    for note in dict.fromkeys(note for run in recipe.runs for note in run.notes):
        STDERR.print(f"note: {note}", highlight=False, soft_wrap=True)


def made_into(plan) -> str:
    """Where a recipe's named tiny model (``mslt-it:tiny``…) is made, and whether it already is:
    a step of its own that the plan's table, of runs, has no row for."""
    if str(plan.model_path) == plan.recipe.model.name_or_path:
        return ""
    made = named_model_in(Path(plan.model_path)) == plan.recipe.model.name_or_path
    return f" (made once into {plan.model_path}: {'done' if made else 'todo'})"


def write_slurm_script(plan, recipe_path: Path, out: Path, output_dir: Path | None = None) -> None:
    """A Slurm array job: one task per run, each an ordinary ``mslt-it run --only RUN_ID``.

    A final ``mslt-it run`` (no --only) evaluates every adapter in one engine and writes the
    report; the script submits it as a job that depends on the whole array.
    """
    from mslt_it.files import resolved_path
    from mslt_it.io import atomic_write_text
    from mslt_it.outputs import check_file_outside_outputs, check_output_file
    from mslt_it.runner import recipe_inputs

    check_output_file(
        out,
        field="--emit-slurm",
        inputs=recipe_inputs(plan.recipe),  # the recipe, its data, prompts and task folders
        ours=is_own_script,
        what="an unedited Slurm script",
    )
    experiment = plan.recipe.output_dir
    if resolved_path(out, "--emit-slurm").is_relative_to(resolved_path(experiment, "--out")):
        raise MsltError(
            f"--emit-slurm: {str(out)!r} lies inside the experiment's folder {str(experiment)!r}, "
            "where every task would find a file mslt-it's marker does not list; write the "
            "script beside it"
        )
    check_file_outside_outputs(out, "--emit-slurm")  # a dataset's, a model's: the same holds
    ids = [run.run_id for run in plan.recipe.runs]
    # the Python that wrote the script, mslt-it installed in it: a bare `mslt-it` needed the
    # virtualenv on the job's PATH (exit 127 in every task, the final job queued and stuck)
    program = f"{shlex.quote(str(Path(sys.executable).absolute()))} -m mslt_it"
    recipe_arg = shlex.quote(str(recipe_path.resolve()))  # a job starts in another folder
    if output_dir is not None:  # every task writes where this command was told to
        recipe_arg += f" --out {shlex.quote(str(output_dir.resolve()))}"
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name=mslt-{plan.recipe.config.name}",
        f"#SBATCH --array=0-{len(ids) - 1}",
        "#SBATCH --gpus=1",
        "#SBATCH --output=slurm-%A_%a.out",
        SLURM_MARKER,  # sealed below
        "# One array task per run; each is an ordinary `mslt-it run --only RUN_ID`.",
        "# Submit with: sbatch THIS_FILE   (then the final evaluation+report job is queued)",
        "set -euo pipefail",
        # a recipe's relative paths (data, tasks_dir, output_dir) are read from the working
        # folder: each task works where this script was written, wherever it was submitted
        f"cd {shlex.quote(str(Path.cwd()))}",
        f"RUNS=({' '.join(shlex.quote(i) for i in ids)})",
        f"SCRIPT={shlex.quote(str(out.resolve()))}  # Slurm runs a spooled copy: name the original",
        'if [ -z "${MSLT_FINAL:-}" ]; then',
        '  if [ "${SLURM_ARRAY_TASK_ID:-0}" = 0 ]; then',
        "    sbatch --dependency=afterok:${SLURM_ARRAY_JOB_ID} --array=0 \\",
        '      --export=ALL,MSLT_FINAL=1 "$SCRIPT"',
        "  fi",
        f'  {program} run {recipe_arg} --only "${{RUNS[$SLURM_ARRAY_TASK_ID]}}"',
        "else",
        f"  {program} run {recipe_arg}",
        "fi",
    ]
    lines[lines.index(SLURM_MARKER)] = f"{SLURM_MARKER} {_digest(lines, SLURM_MARKER)}"
    atomic_write_text(out, "\n".join(lines) + "\n")
    named = str(out) if out.is_absolute() or not str(out).startswith("-") else f"./{out}"
    submit = f"sbatch {shlex.quote(named)}"  # pasted as it is: '-job.sh' would be an option
    STDOUT.print(f"Slurm array script for {len(ids)} runs → {out} (submit with: {submit})")


def _digest(lines: list[str], seal: str) -> str:
    return hashlib.sha256("\n".join(line for line in lines if line != seal).encode()).hexdigest()


def is_own_script(path: Path) -> bool:
    """``path`` is a script ``--emit-slurm`` wrote, unedited: its seal line's digest matches
    the other lines (read within :data:`MAX_SCRIPT_BYTES`)."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_SCRIPT_BYTES:
            return False  # a FIFO would block the read
        lines = path.read_text(encoding="utf-8").removesuffix("\n").split("\n")
    except (OSError, UnicodeDecodeError):
        return False
    seals = [line for line in lines if line.startswith(SLURM_MARKER + " ")]
    return len(seals) == 1 and seals[0] == f"{SLURM_MARKER} {_digest(lines, seals[0])}"
