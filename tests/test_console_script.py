"""The installed ``mslt-it`` console script, run as a new user runs it: in a subprocess, with an
empty HOME and empty caches, the Hub offline.

Not ``CliRunner`` and not ``python -m``: a console script puts the virtualenv's ``bin/`` first on
``sys.path`` (where lang2vec's wheel installs a ``lang2vec.py`` that shadows the package), and
the typer that is installed decides which exception classes usage errors raise. Only the real
script sees both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mslt_it.selection import vectors as vectors_module

SCRIPTS = Path(sysconfig.get_path("scripts"))
CONSOLE_SCRIPT = SCRIPTS / "mslt-it"

needs_console_script = pytest.mark.skipif(
    not CONSOLE_SCRIPT.is_file(), reason=f"mslt-it is not installed in {SCRIPTS}"
)
"""Only the tests that run the script itself; the others here need no installed script."""


def fresh_environment(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a machine that has never run mslt-it: nothing cached, Hub offline."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MSLT_IT_")}
    for key in ("XDG_CACHE_HOME", "HF_HOME", "PYTHONPATH"):
        env.pop(key, None)
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", **extra)
    return env


def run_script(*args: str, home: Path, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args],
        env=fresh_environment(home, **extra),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def stderr_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@needs_console_script
def test_select_on_a_fresh_machine_answers_without_lang2vec_or_a_cache(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_script(
        "select", "--task", "xnli", "--pool", "ar,de,en,es,fr,ru,zh", "--k", "3",
        "--criterion", "l2v-syntax", "--top", "3", "--json",
        home=home, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ranked = json.loads(result.stdout)
    assert [entry["rank"] for entry in ranked] == [1, 2, 3]
    assert all(entry["k"] == 3 and entry["criterion"] == "l2v-syntax" for entry in ranked)
    assert "Traceback" not in result.stderr
    # the shipped vectors answered: nothing was fetched, nothing cached in the new HOME
    assert "lang2vec: fetching" not in result.stderr
    assert not any(path.is_file() for path in home.rglob("*")), list(home.rglob("*"))


@needs_console_script
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["build", "--nope"], "No such option: --nope"),
        (["eval"], "--out"),  # a required option missing
        (["nosuchcmd"], "No such command 'nosuchcmd'"),
        # a value of the wrong type, named with what was given (typer's message left it out)
        (["build", "--out", "ds", "--budget", "abc"], "'--budget': Input should be a valid intege"),
        (["select", "--task", "xnli", "--top", "many"], "integer, got 'many' (see"),
        (["select", "--task", "xnli", "--seed=-1"], "equal to 0, got '-1' (see"),
        (["select", "--task", "xnli", "--top="], "integer, got '' (see"),
        (["prompts", "show"], "template_id"),  # a missing argument of a subcommand
    ],
)
def test_usage_errors_are_one_line_with_exit_status_2(
    tmp_path: Path, args: list[str], fragment: str
) -> None:
    result = run_script(*args, home=tmp_path / "home", cwd=tmp_path)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = stderr_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and fragment in lines[0], lines[0]
    assert "--help" in lines[0]  # it says where to look
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # nothing written


@needs_console_script
@pytest.mark.parametrize(
    ("redirect", "status", "said"),
    [
        ("> /dev/full", 2, "No space left on device"),  # Python's own three lines, status 120
        (">&-", 2, "standard output is closed"),  # nothing printed, status 0: results lost
        ("| true", 141, None),  # the reader gone: Rich's status 1 read as a bug
    ],
)
def test_standard_output_that_cannot_take_the_output_is_one_line_or_the_pipes_status(
    tmp_path: Path, redirect: str, status: int, said: str | None
) -> None:
    command = f"{CONSOLE_SCRIPT} select --task xnli --pool ar,de,en --k 2 {redirect}"
    env = fresh_environment(tmp_path / "home")
    env.pop("PYTHONUNBUFFERED", None)  # buffered, as on most machines: flushed at exit
    result = subprocess.run(
        ["bash", "-c", f"{command}; exit ${{PIPESTATUS[0]}}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == status, (result.returncode, result.stderr)
    lines = stderr_lines(result)
    if said is None:
        assert lines == []  # `yes | head` says nothing either
    else:
        assert len(lines) == 1 and lines[0].startswith("error:") and said in lines[0], lines


@needs_console_script
def test_run_takes_out_and_a_missing_recipe_is_a_user_error(tmp_path: Path) -> None:
    result = run_script("run", "nope.yaml", "--out", "x", home=tmp_path / "home", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = stderr_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error:") and "nope.yaml" in lines[0]
    assert not (tmp_path / "x").exists()


def write_bug(folder: Path, raised: str = 'RuntimeError("planted fault\\nwith a second line")'):
    """A ``sitecustomize`` that plants a bug (``raised``) in the library function ``prompts
    list`` calls."""
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        textwrap.dedent(
            f"""
            import mslt_it.prompts

            def survey_templates(*args, **kwargs):
                raise {raised}

            mslt_it.prompts.survey_templates = survey_templates
            """
        )
    )
    return folder


@needs_console_script
def test_a_bug_is_one_line_with_exit_status_1_and_the_traceback_on_request(
    tmp_path: Path,
) -> None:
    planted = str(write_bug(tmp_path / "bug"))
    home = tmp_path / "home"
    result = run_script("prompts", "list", home=home, cwd=tmp_path, PYTHONPATH=planted)
    assert result.returncode == 1, result.stderr
    lines = stderr_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("internal error: RuntimeError: planted fault with a second line")
    assert "MSLT_IT_DEBUG=1" in lines[0] and "Traceback" not in result.stderr

    debug = run_script(
        "prompts", "list", home=home, cwd=tmp_path, PYTHONPATH=planted, MSLT_IT_DEBUG="1"
    )
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "planted fault" in debug.stderr


@needs_console_script
def test_a_full_disk_said_by_a_library_in_rust_is_the_machines_not_a_bug(tmp_path: Path) -> None:
    """safetensors and tokenizers raise a plain Exception, ``... (os error 28)``, on a full
    disk: it was reported as a bug in mslt-it."""
    planted = write_bug(tmp_path / "full", 'Exception("No space left on device (os error 28)")')
    result = run_script("prompts", "list", home=tmp_path / "h", cwd=tmp_path, PYTHONPATH=planted)
    assert result.returncode == 2, result.stderr
    assert stderr_lines(result) == [
        "error: cannot write or read: No space left on device (os error 28)"
    ]


@needs_console_script
def test_help_works_at_every_level(tmp_path: Path) -> None:
    for args in (["--help"], ["run", "--help"], ["prompts", "list", "--help"]):
        result = run_script(*args, home=tmp_path / "home", cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr)
        assert "Usage" in result.stdout


def test_lang2vec_imports_although_its_script_is_first_on_the_path(tmp_path: Path) -> None:
    """What a console script sees: ``bin/`` (holding lang2vec's ``lang2vec.py``) first."""
    if not (SCRIPTS / "lang2vec.py").is_file():
        pytest.skip("this environment has no bin/lang2vec.py to shadow the package")
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(SCRIPTS)!r})
        from mslt_it.selection.vectors import _import_lang2vec
        l2v = _import_lang2vec()
        print(l2v.__file__)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=fresh_environment(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "site-packages" in result.stdout and str(SCRIPTS) not in result.stdout


def test_shipped_lang2vec_vectors_equal_lang2vec() -> None:
    """Each shipped table is what lang2vec returns today (re-derive with the script if not)."""
    pytest.importorskip("lang2vec")
    codes = vectors_module.registry_iso_codes()
    for feature_set in vectors_module.SHIPPED_FEATURE_SETS:
        shipped = vectors_module.shipped_table(feature_set, codes)
        assert shipped is not None, f"{feature_set}: not shipped for the registry's languages"
        fetched = vectors_module.fetch_lang2vec(feature_set, codes)
        assert shipped.codes == fetched.codes and shipped.features == fetched.features
        np.testing.assert_array_equal(shipped.values, fetched.values, err_msg=feature_set)


def test_shipped_vectors_serve_any_subset_and_defer_to_lang2vec_otherwise() -> None:
    subset = vectors_module.shipped_table("syntax_knn", ["eng", "deu"])
    full = vectors_module.shipped_table("syntax_knn", vectors_module.registry_iso_codes())
    assert subset is not None and full is not None
    np.testing.assert_array_equal(subset.values, full.matrix(["eng", "deu"]))
    assert vectors_module.shipped_table("syntax_knn", ["eng", "xxx"]) is None
    assert vectors_module.shipped_table("learned", ["eng"]) is None


def test_an_install_without_the_shipped_folders_says_how_to_fix_it(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wheel (``pip install .`` without -e) has no prompts/ beside the package."""
    import mslt_it.prompts

    monkeypatch.setattr(mslt_it.prompts, "PROMPTS_DIR", tmp_path / "prompts")
    result = cli("prompts", "list")
    assert result.code == 2 and "pip install -e ." in result.err and "prompts" in result.err


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    """Many modules are imported only inside the command that needs them, so a name moved
    between modules can break one command while every other test passes: import them all."""
    code = (
        "import importlib, pkgutil, mslt_it\n"
        "for m in pkgutil.walk_packages(mslt_it.__path__, 'mslt_it.'):\n"
        "    importlib.import_module(m.name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]


REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_a_wheel_carries_the_folders_users_plug_into(tmp_path: Path) -> None:
    """``pip install .`` or ``pip install git+URL`` installs a wheel, which held the package
    only: every template, task and suite was missing. The wheel now carries them inside the
    package, and an install of it (the wheel unpacked onto the path, away from any clone)
    lists the shipped templates from its own copy and builds a dataset."""
    source = tmp_path / "source"  # built from a copy: the clone's build/ is not touched
    shutil.copytree(
        REPOSITORY,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "*.egg-info", "__pycache__", "tests", "docs", "benchmarks"
        ),
    )
    wheels = tmp_path / "wheels"
    pip = (sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation")
    built = subprocess.run(
        [*pip, "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    installed = tmp_path / "installed"
    with zipfile.ZipFile(next(wheels.glob("mslt_it-*.whl"))) as wheel:
        wheel.extractall(installed)
    for name in ("tasks", "prompts", "eval", "recipes", "configs"):
        assert (installed / "mslt_it" / "shipped" / name).is_dir(), name
    env = fresh_environment(tmp_path / "home", PYTHONPATH=str(installed))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "mslt_it", *args]
        return subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)

    listed = run("prompts", "list")
    assert listed.returncode == 0, listed.stderr
    assert "xnli/" in listed.stdout
    shown = run("prompts", "show", "xnli/en-instruct")
    assert shown.returncode == 0, shown.stderr
    said = (shown.stdout + shown.stderr).replace("\n", "")
    assert str(installed / "mslt_it" / "shipped" / "prompts") in said
    made = run("build", "--task", "xnli", "--sources", "en", "--budget", "4", "--out", "ds")
    assert made.returncode == 0, made.stderr
    assert json.loads((tmp_path / "ds" / "manifest.json").read_text())["counts"]


def test_the_command_line_starts_without_the_heavy_libraries() -> None:
    """A check of bootstrap resamples in the evaluation settings brought scipy.stats (0.5 s)
    into every command's start, ``--help`` included; torch and transformers load where used."""
    probe = "import sys, mslt_it.cli; print(sorted(m for m in ('scipy', 'torch', 'transformers') if m in sys.modules))"  # noqa: E501
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
