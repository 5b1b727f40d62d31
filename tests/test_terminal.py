"""What mslt-it prints quotes users' names: it is printed as it is, never read as Rich markup,
and no control character reaches the terminal (``mslt_it.terminal``, ``mslt_it.progress``)."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.progress import Progress
from rich.table import Table

from mslt_it.progress import DescriptionColumn, PlainProgress
from mslt_it.terminal import labelled, plain_console

NAMES = st.text(alphabet=st.sampled_from("ab[]/=:\\ \x1b\x07\u202e\u061c\u2028"), max_size=30)
RAW = "\x1b\x07\u202e\u061c\u2028"


def printed(*renderables) -> str:
    file = io.StringIO()
    console = plain_console(file=file, width=4096, color_system=None)
    for renderable in renderables:
        console.print(renderable, soft_wrap=True)
    return file.getvalue()


@given(NAMES)
def test_a_name_in_a_line_a_title_or_a_cell_prints_as_it_is(name: str) -> None:
    shown = name
    for raw in RAW:
        shown = shown.replace(raw, repr(raw)[1:-1])
    table = Table(title=f"t {name}")
    table.add_column(f"h {name}")
    table.add_row(f"c {name}")
    out = printed(f"note: {name}", labelled("warning:", "yellow", name), table)
    assert f"note: {shown}\n" in out and f"warning: {shown}\n" in out
    assert f"t {shown}" in out and f"h {shown}" in out and f"c {shown}" in out
    assert not set(RAW) & set(out)


def test_plain_progress_lines_escape_a_folder_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MSLT_IT_PROGRESS_SECONDS", "0")
    with PlainProgress() as progress:
        key = progress.add_task("hashing q[/]\x1b[2J (MiB)", total=2)
        progress.advance(key, 2)
    assert "hashing q[/]\\x1b[2J (MiB): 2/2" in capsys.readouterr().err


def test_a_progress_bar_shows_a_description_with_brackets() -> None:
    file = io.StringIO()
    bar = Progress(DescriptionColumn(), console=plain_console(file=file, force_terminal=True))
    with bar:
        key = bar.add_task("q[/]x[red]\x1b", total=1)
        bar.advance(key)
    assert "q[/]x[red]\\x1b" in file.getvalue()


def test_a_long_path_is_printed_on_one_line_into_a_file() -> None:
    """Off a terminal Rich wraps at 80 columns: a path split across two lines reads as
    another path."""
    file = io.StringIO()
    path = "/tmp/" + "z" * 150 + "/end"
    plain_console(file=file).print(f"report → {path}")
    assert file.getvalue() == f"report → {path}\n"


@pytest.mark.parametrize("character", ["\u061c", "\u2028", "\u2029", "\x1b", "\u202e"])
def test_a_name_holding_a_character_that_misreads_it_is_refused(cli, tmp_path, character):
    result = cli("tiny-model", tmp_path / f"m{character}x")
    assert result.code == 2 and "control character" in result.err, result.err
    assert character not in result.err and not any(tmp_path.iterdir())


def test_a_table_is_laid_out_as_a_table() -> None:
    """Lines are not wrapped, but a table keeps its layout: on a terminal its title centred
    over it; into a file its title on a line of its own."""
    from mslt_it.cli.common import print_whole

    table = Table(title="title")
    table.add_column("a")
    table.add_row("x" * 30)
    shown, written = io.StringIO(), io.StringIO()
    print_whole(plain_console(file=shown, force_terminal=True, color_system=None), table)
    first, second = shown.getvalue().splitlines()[:2]
    assert first.strip() == "title" and first.index("title") > 5 and second.startswith("┏")
    print_whole(plain_console(file=written), table)
    assert written.getvalue().splitlines()[:2] == ["title", "┏" + "━" * 32 + "┓"]


def test_a_long_title_is_not_broken_into_a_file() -> None:
    """Into a file, a table is as wide as its title too: a path in the title stays whole."""
    from mslt_it.cli.common import print_whole

    path = "/tmp/" + "d" * 120 + "/results.csv"
    table = Table(title=f"criteria against 5 measured sets ({path})")
    table.add_column("a")
    table.add_row("x")
    file = io.StringIO()
    print_whole(plain_console(file=file), table)
    assert path in file.getvalue().splitlines()[0]


@given(st.text(alphabet=st.sampled_from("ab[] \t\n\x1b\u2028"), max_size=20))
def test_a_progress_line_and_a_table_title_stay_one_line(name: str) -> None:
    """A tab or a newline in a folder's name (only other controls were escaped) split a
    progress line or a table's title in two."""
    from mslt_it.cli.common import print_whole

    bar = Progress(DescriptionColumn(), console=plain_console(file=io.StringIO()))
    bar.add_task(f"hashing {name}")
    shown = DescriptionColumn().render(bar.tasks[0]).plain
    assert shown.startswith("hashing") and not set("\t\n") & set(shown)

    def lines(title: str, terminal: bool) -> list[str]:
        table = Table(title=title)
        table.add_column("a")
        table.add_row("x" * 130)  # wider than any title: on a terminal Rich wraps one to it
        file = io.StringIO()
        console = plain_console(file=file, force_terminal=terminal, color_system=None, width=200)
        print_whole(console, table)
        return file.getvalue().splitlines()

    for terminal in (True, False):
        named = lines(f"t {name}", terminal)
        assert len(named) == len(lines("t", terminal)) and "\t" not in named[0]
