"""The README and the user guide (docs/) keep their promises: every YAML example validates with
mslt-it's own loaders, and every command example runs, at small sizes, from a fresh folder, in
the order a reader meets them (README first, then the pages in mkdocs.yml's order).

How a command example is checked:

- ``mslt-it …`` runs in-process; sizes are scaled down (:data:`SMALL`) and must succeed;
- one whose line ends ``# needs the Hub`` must stop, offline, with one line naming the Hub;
- one whose line ends ``# fails: TEXT`` must stop with one error line containing TEXT;
- a heavy one (:data:`PARSED_ONLY`, the full demo's outputs, ``run`` without ``--dry-run``) is
  parsed by the command line (options, types) or planned with ``--dry-run``, not carried out;
- a shell line (``mkdir``, ``printf``…) runs with bash; :data:`NOT_RUN` says why the others are
  not (the set-up and test commands are checked against ``.ci/run`` instead).

A new example that fits none of these fails :func:`test_every_example_is_checked`.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import CliResult, assert_one_line_error

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

SMALL = {"--budget": 48, "--max-steps": 1, "--limit": 2, "--n": 8}
"""Numeric options lowered to these values (never raised) when an example runs here; an
evaluation of a whole suite is narrowed to :data:`FEW_LANGUAGES`."""
FEW_LANGUAGES = "en,de"

SHELL = {"mkdir", "printf", "echo", "rm", "cp"}
"""Programs of shell lines that run (with bash) in the example folder."""

NOT_RUN = {
    "python3 -m venv": "set-up: `.ci/run` runs the README's, on a clean clone",
    ".venv/bin/ruff": "the test command: `.ci/run` runs it",
    "sbatch": "submits to a Slurm cluster",
    "accelerate launch": "several GPUs; its mslt-it command is parsed",
}

PARSED_ONLY = {
    "mslt-it tiny-model models/world --world": "pre-trains for minutes",
    "mslt-it tiny-model models/world-sized --world --sized": "pre-trains for minutes",
    "mslt-it tiny-model models/tiny-seed1 --seed 1": "the same build as models/tiny, other seed",
}
"""Examples too heavy for the suite, with the reason: their options are parsed, not run."""

HUB_MARK = "needs the Hub"
FAILS_MARK = "fails:"
SHIPPED = ("recipes", "configs", "benchmarks/results")
"""Repository folders a reader's commands name (`recipes/demo.yaml`, the study's measured
`benchmarks/results/synthetic-study/scores.csv`); copied into the folder."""


@dataclass(frozen=True)
class Example:
    page: str
    kind: str  # "command" or "yaml"
    text: str  # the command line, or the YAML file's text
    comment: str = ""  # a command's trailing comment; a YAML file's path

    def __str__(self) -> str:
        return f"{self.page}: {self.text.splitlines()[0][:90]}"


def pages() -> list[Path]:
    """README.md, then the guide's pages in the order of mkdocs.yml's navigation."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    names = [next(iter(entry.values())) for entry in config["nav"]]
    return [README, *(DOCS / name for name in names if (DOCS / name).is_file())]


def blocks(path: Path) -> list[tuple[str, str]]:
    """The fenced code blocks of a page: (language, text)."""
    text = path.read_text(encoding="utf-8")
    return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def split_comment(line: str) -> tuple[str, str]:
    """A command and its trailing comment (`command   # comment`), outside quotes."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip(), line[index + 1 :].strip()
    return line.rstrip(), ""


def examples(path: Path) -> list[Example]:
    page = str(path.relative_to(ROOT))
    found: list[Example] = []
    for language, text in blocks(path):
        if language == "yaml":
            first = text.splitlines()[0]
            assert first.startswith("# "), f"{page}: a YAML example starts with '# its/path.yaml'"
            found.append(Example(page, "yaml", text, first[2:].strip()))
        elif language == "bash":
            for line in text.replace("\\\n", " ").splitlines():
                command, comment = split_comment(line)
                if command:
                    found.append(Example(page, "command", " ".join(command.split()), comment))
        elif language == "python":
            found.append(Example(page, "python", text))
        else:
            assert language in ("text", ""), f"{page}: a ```{language} block is not checked"
    return found


def all_examples() -> list[Example]:
    return [example for path in pages() for example in examples(path)]


# --- the README and CI agree; the guide is whole --------------------------------------------


def section_commands(heading: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [block for language, block in re.findall(r"^```(\w*)\n(.*?)^```", section, re.M | re.S)]


def test_ci_runs_exactly_the_readme_set_up_and_test_commands() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    (set_up,) = section_commands("Set up and run the demo")
    (tests,) = section_commands("Tests")
    assert set_up.strip() in ci, "README's set-up command differs from .ci/run's"
    assert tests.strip() in ci, "README's test command differs from .ci/run's"
    assert "mkdocs build --strict" in tests


def test_readme_is_short_and_links_every_page() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    for page in sorted(DOCS.glob("*.md")):
        assert f"docs/{page.name}" in text, f"README does not link docs/{page.name}"


def test_every_page_is_in_the_navigation() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["theme"]["name"] == "material"
    listed = {next(iter(entry.values())) for entry in config["nav"]}
    on_disk = {page.name for page in DOCS.glob("*.md")}
    assert on_disk <= listed, on_disk - listed


def test_every_command_has_help(cli) -> None:
    result = cli("--help")
    assert result.code == 0
    commands = re.findall(r"^  ([a-z][a-z-]+)\s", result.out.split("Commands:")[1], re.M)
    assert {"select", "build", "train", "eval", "analyze", "report", "run", "prompts", "adopt"} <= (
        set(commands)
    )
    for command in [*commands, "prompts list", "prompts show", "prompts render"]:
        result = cli(*command.split(), "--help")
        assert result.code == 0 and "Usage:" in result.out, (command, result.err)


def test_the_tour_shows_every_command_once() -> None:
    tour = [e.text.split()[1] for e in examples(README) if e.text.startswith("mslt-it ")]
    for command in ("select", "build", "train", "eval", "analyze", "report", "run", "prompts"):
        assert tour.count(command) == 1, (command, tour)
    assert "adopt" in tour


def test_every_example_is_checked() -> None:
    for example in all_examples():
        if example.kind == "yaml":
            assert yaml_kind(yaml.safe_load(example.text)) is not None, example
            continue
        if example.kind == "python":
            compile(example.text, str(example), "exec")  # and run in reading order
            continue
        words = example.text.split()
        if words[0] == "mslt-it" or words[0] in SHELL:
            continue
        assert any(example.text.startswith(prefix) for prefix in NOT_RUN), (
            f"{example}: not checked; make it mslt-it or a SHELL program, or say in NOT_RUN why not"
        )
    for command in PARSED_ONLY:
        assert any(e.text == command for e in all_examples()), f"stale PARSED_ONLY: {command}"


# --- YAML examples validate with mslt-it's loaders -------------------------------------------


def yaml_kind(data: dict) -> str | None:
    if not isinstance(data, dict):
        return None
    if {"kind", "columns"} <= data.keys():
        return "task"
    if {"id", "answer"} <= data.keys():
        return "template"
    if {"name", "task", "languages"} <= data.keys() and "model" not in data:
        return "suite"
    if {"name", "data", "model"} <= data.keys():
        return "recipe"
    return None


def write_yaml_examples(page_examples: list[Example], folder: Path) -> list[tuple[Example, Path]]:
    written = []
    for example in page_examples:
        if example.kind == "yaml":
            path = folder / example.comment
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(example.text, encoding="utf-8")
            written.append((example, path))
    return written


YAML_PAGES = [path for path in pages() if any(e.kind == "yaml" for e in examples(path))]


@pytest.mark.parametrize("page", YAML_PAGES, ids=lambda path: path.name)
def test_yaml_examples_validate(page: Path, tmp_path: Path, cli, monkeypatch) -> None:
    from mslt_it.evaluation.suites import load_suite
    from mslt_it.recipes import load_recipe

    monkeypatch.chdir(tmp_path)
    written = write_yaml_examples(examples(page), tmp_path)
    kinds = {path: yaml_kind(yaml.safe_load(example.text)) for example, path in written}
    tasks_dirs = sorted({str(path.parent) for path, kind in kinds.items() if kind == "task"})
    task_options = [word for folder in tasks_dirs for word in ("--tasks-dir", folder)]
    for path, kind in kinds.items():
        if kind == "task":
            result = cli("prompts", "list", *task_options)
        elif kind == "template":
            template_id = yaml.safe_load(path.read_text(encoding="utf-8"))["id"]
            prompts_dir = path.parent.parent
            result = cli(
                "prompts", "show", template_id, "--prompts-dir", prompts_dir, *task_options
            )
        elif kind == "suite":
            load_suite(str(path))
            continue
        else:
            load_recipe(path)
            continue
        assert result.code == 0, (path, result.err)


# --- command examples run, in order ----------------------------------------------------------


def parse_only(args: list[str]) -> None:
    """Parse a command line as the CLI would (options, types, required ones), without running."""
    import typer

    from mslt_it.cli import app

    command, name, context, rest = typer.main.get_command(app), "mslt-it", None, list(args)
    while True:
        context = command.make_context(name, rest, parent=context)
        if not hasattr(command, "resolve_command"):
            return
        remaining = [*getattr(context, "_protected_args", []), *context.args]
        name, command, rest = command.resolve_command(context, remaining)


def shrink(args: list[str]) -> list[str]:
    """The same command at small sizes: numeric options lowered to :data:`SMALL`."""
    small = list(args)
    for index, word in enumerate(small[:-1]):
        if word in SMALL and small[index + 1].isdigit():
            small[index + 1] = str(min(int(small[index + 1]), SMALL[word]))
    if small[0] == "eval" and "--suite" in small and "--langs" not in small:
        suite = small[small.index("--suite") + 1]
        if not suite.endswith(".yaml"):  # a shipped suite; yours name the languages you chose
            small += ["--langs", FEW_LANGUAGES if suite == "xnli" else "bg,sw"]
    if small[0] == "build" and "--recipe" in small and "--budget" not in small:
        small += ["--budget", str(SMALL["--budget"])]
    return small


def stand_in_for_an_old_output(args: list[str]) -> None:
    """`adopt` needs an output of an mslt-it older than the marker: a report without its marker
    (a copy of the report the README's tour wrote) stands for one."""
    folder = Path(args[1])
    if args[0] == "adopt" and not folder.exists() and Path("runs/tour/report").is_dir():
        shutil.copytree("runs/tour/report", folder)
        (folder / ".mslt-it-output.json").unlink()


def check_command(example: Example, cli, tiny_model_dir: Path) -> None:
    args = shlex.split(example.text)[1:]
    if example.text in PARSED_ONLY or any(word.startswith("runs/demo/") for word in args):
        parse_only(args)
        return
    if args[0] == "tiny-model" and len(args) == 2:  # the suite's tiny model: the same build
        shutil.copytree(tiny_model_dir, args[1])
        return
    if args[0] == "run" and "--dry-run" not in args and "--emit-slurm" not in args:
        args = [*args, "--dry-run"]  # a whole experiment: its plan
    stand_in_for_an_old_output(args)
    result: CliResult = cli(*shrink(args))
    if example.comment == HUB_MARK:
        assert_one_line_error(result)
        assert re.search(r"Hub|huggingface|offline", result.err, re.I), (example, result.err)
    elif example.comment.startswith(FAILS_MARK):
        assert_one_line_error(result, example.comment[len(FAILS_MARK) :].strip())
    else:
        assert result.code == 0, (str(example), result.err[-2000:])


@pytest.fixture(scope="module")
def reader_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh folder holding what a reader's clone holds (recipes, configs), shared by the pages
    in reading order: later pages use what earlier ones wrote."""
    folder = tmp_path_factory.mktemp("reader")
    for name in SHIPPED:
        shutil.copytree(ROOT / name, folder / name)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("page", pages(), ids=lambda path: path.name)
def test_command_examples_run_in_reading_order(
    page: Path, reader_folder: Path, tiny_model_dir: Path, cli, monkeypatch
) -> None:
    monkeypatch.chdir(reader_folder)
    page_examples = examples(page)
    write_yaml_examples(page_examples, reader_folder)
    for example in page_examples:
        if example.kind == "python":
            exec(compile(example.text, str(example), "exec"), {"__name__": "docs_example"})
            continue
        if example.kind != "command":
            continue
        words = example.text.split()
        if words[0] == "mslt-it":
            check_command(example, cli, tiny_model_dir)
        elif example.text.startswith("accelerate launch"):
            parse_only(words[words.index("mslt_it") + 1 :])
        elif words[0] in SHELL:
            done = subprocess.run(["bash", "-c", example.text], capture_output=True, text=True)
            assert done.returncode == 0, (str(example), done.stderr)
