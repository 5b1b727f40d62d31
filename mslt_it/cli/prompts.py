"""``mslt-it prompts list | show | render``: look at the prompt templates."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from mslt_it.cli.common import PromptsDir, TasksDir, print_whole, stdout_console, use_tasks_dirs
from mslt_it.errors import MsltError
from mslt_it.files import escaped_controls
from mslt_it.terminal import STDERR

STDOUT = stdout_console()
prompts_app = typer.Typer(help="List, show and render prompt templates.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(prompts_app, name="prompts")


@prompts_app.command("list")
def list_templates(
    task: Annotated[str | None, typer.Option(help="Only this task's templates.")] = None,
    prompts_dir: PromptsDir = None,
    tasks_dir: TasksDir = None,
) -> None:
    """List every template with its task, languages and description."""
    use_tasks_dirs(tasks_dir)
    import mslt_it.prompts as prompts
    from mslt_it.tasks import get_task

    if task is not None:
        get_task(task)
    table = Table(title="prompt templates")
    for column in ("id", "task", "languages", "description"):
        table.add_column(column, overflow="fold")
    templates, problems = prompts.survey_templates(prompts_dir or [])
    for template in templates.values():
        if task is None or template.spec.task == task:
            langs = template.languages
            shown = ",".join(langs) if len(langs) <= 15 else f"{len(langs)} languages"
            cells = (template.id, template.spec.task, shown, template.spec.description)
            table.add_row(*cells)  # printed as they are: a PlainConsole reads no markup
    print_whole(STDOUT, table)
    if problems:  # the others are listed and usable; the broken ones are the error
        broken = len({path.resolve() for path, _ in problems})  # each file once
        if broken > 1:  # each named under the table, so a user fixes them in one round
            STDOUT.print(f"\nnot loaded ({len(problems)}):")
            for _, problem in problems:
                STDOUT.print(f"- {escaped_controls(str(problem))}")
        more = f" (and {broken - 1} more broken templates, listed on stdout)" if broken > 1 else ""
        raise MsltError(f"{problems[0][1]}{more}")


@prompts_app.command("show")
def show(template_id: str, prompts_dir: PromptsDir = None, tasks_dir: TasksDir = None) -> None:
    """Print a template's file and where it lives."""
    use_tasks_dirs(tasks_dir)
    from mslt_it.prompts import get_template

    template = get_template(template_id, prompts_dir or [])
    # the file exactly into a file or pipe (`prompts show X > mine.yaml` copies it); on a
    # terminal its control characters escaped, as everything mslt-it prints; where it lives on
    # stderr
    STDERR.print(f"# {template.id} ({template.path})")
    text = template.source_text
    sys.stdout.write(escaped_controls(text) if sys.stdout.isatty() else text)
    sys.stdout.flush()


@prompts_app.command("render")
def render(
    template_id: str,
    task: Annotated[str, typer.Option(help="Task of the example row.")],
    lang: Annotated[str, typer.Option(help="Language of the example row.")],
    data: Annotated[str, typer.Option(help="hub, synthetic or a folder.")] = "synthetic",
    split: Annotated[
        str | None,
        typer.Option(help="Split to take the row from (default: validation, else one it has)."),
    ] = None,
    index: Annotated[
        int,
        typer.Option(help="Which row, counting labelled rows only (unlabelled ones are left out)."),
    ] = 0,
    prompts_dir: PromptsDir = None,
    tasks_dir: TasksDir = None,
) -> None:
    """Render one row through a template: the exact instruction and answer a model sees."""
    use_tasks_dirs(tasks_dir)
    from mslt_it.errors import MsltError
    from mslt_it.prompts import get_template
    from mslt_it.tasks import check_languages, get_task
    from mslt_it.tasks.instructions import earlier_turns
    from mslt_it.tasks.sources import open_split

    task_spec = get_task(task)
    check_languages(task_spec, [lang], "--lang")
    template = get_template(template_id, prompts_dir or [])
    if template.spec.task != task:
        raise MsltError(f"--task: template {template.id} is for {template.spec.task}, not {task}")
    template.check_language(lang)
    chosen = split is None
    if split is None:
        preferred = [s for s in ("validation", "test", "eval", "train") if s in task_spec.splits]
        split = (preferred or list(task_spec.splits))[0]
    rows = open_split(task_spec, lang, split, data)
    left_out = f"{rows.dropped} unlabelled left out"
    if not len(rows):
        default = " (the default; choose another with --split)" if chosen else ""
        raise MsltError(
            f"--split: {task}/{lang} split {split}{default} holds no labelled rows"
            + (f" ({left_out})" if rows.dropped else "")
        )
    if not 0 <= index < len(rows):
        counted = f"; {left_out}" if rows.dropped else ""
        raise MsltError(
            f"--index: must be between 0 and {len(rows) - 1}, got {index} (it counts the "
            f"split's labelled rows{counted})"
        )
    row = rows.rows([index])[0]
    rendered = template.render(row, lang)
    # a conversation's earlier turns go into the prompt before the instruction (as `build`
    # writes them): without them the render was not what the model sees
    for turn in earlier_turns(task_spec, row):
        STDOUT.rule(f"earlier turn: {turn['role']}")
        STDOUT.print(shown_text(turn["content"]))
    STDOUT.rule("instruction")
    STDOUT.print(shown_text(rendered.instruction))
    STDOUT.rule("answer")
    STDOUT.print(shown_text(rendered.answer))


def shown_text(text: str) -> str:
    """``text`` as the model sees it, each character told apart: control characters shown
    escaped (by the console), and a tab as ``\\t``, which the console would print as spaces."""
    return text.replace("\t", "\\t")
