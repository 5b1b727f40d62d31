"""Shared fixtures: an in-process CLI runner and the tiny offline model (built once a session);
each test process's share of the cores as torch threads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from mslt_it.paths import RECIPES_DIR

os.environ.setdefault("MSLT_IT_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TORCH_OWN_THREADS: int | None = None
"""torch's own thread count where :func:`pytest_configure` lowered it, else None."""


def pytest_configure(config: pytest.Config) -> None:
    """Each pytest-xdist process gets its share of the cores as torch threads (one on two
    cores with two processes). With torch's own count (every core) in each process, two
    trainings at once ran ten times slower than alone (two of the slowest tests: 520 s
    together against 65 s with a thread each, BENCHMARKS.md), and the suite's time depended on
    which tests happened to overlap. Subprocesses a test starts get the same share through
    ``OMP_NUM_THREADS``; a count the user set is kept."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2 or "OMP_NUM_THREADS" in os.environ:
        return
    import torch

    global TORCH_OWN_THREADS
    TORCH_OWN_THREADS = torch.get_num_threads()
    share = max(1, (os.cpu_count() or 1) // workers)
    os.environ["OMP_NUM_THREADS"] = str(share)
    torch.set_num_threads(share)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run ``mslt-it ARGS`` in-process and return its exit code, stdout and stderr."""
    from mslt_it.cli import main

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as done:
            code = int(done.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module that trains: the tiny model's matrices are too small to
    share, and on a busy machine two threads per process ran 3-10x slower than one. Restored
    afterwards. A module asks for it with ``pytestmark = pytest.mark.usefixtures(...)``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model (random weights) and its locally trained tokenizer, built once per session."""
    from mslt_it.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


def evaluate_claims(cli, folder: Path, model: Path, out: Path, langs: str, *extra):
    """``mslt-it eval`` of the user task ``claims`` that ``folder`` defines (tasks/, prompts/,
    data/: test_clusters.py and test_parallel_items.py write one), in rank mode."""
    return cli("eval", "--model", model, "--task", "claims", "--langs", langs,
               "--template", "claims/plain", "--data", folder / "data", "--mode", "rank",
               "--tasks-dir", folder / "tasks", "--prompts-dir", folder / "prompts",
               "--bootstrap-samples", "200", "--out", out, *extra)  # fmt: skip


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    """Exit status 2, one line on stderr naming what went wrong, and no traceback."""
    assert result.code == 2, (result.code, result.out, result.err)
    lines = [line for line in result.err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error:"), result.err
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo run in a fresh folder (its `runs/` is relative to the working directory), once
    per session: the tests of test_demo.py share it."""
    import torch

    from mslt_it.cli import main

    workdir = tmp_path_factory.mktemp("demo")
    shutil.copy(RECIPES_DIR / "demo.yaml", workdir / "demo.yaml")
    before, threads = Path.cwd(), torch.get_num_threads()
    os.chdir(workdir)
    # torch's sums depend on its thread count: the demo runs on torch's own, as a newcomer's
    # run does (with one thread bg and fr miss test_demo's cognate check, BENCHMARKS.md)
    torch.set_num_threads(TORCH_OWN_THREADS or threads)
    try:
        with pytest.raises(SystemExit) as done:
            main(["run", "demo.yaml"])
    finally:
        os.chdir(before)
        torch.set_num_threads(threads)
    assert done.value.code == 0
    return workdir / "runs" / "demo"


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mslt_it.locks import output_lock
    with output_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def hold_lock(out: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding ``out``'s lock (released when it ends, even by kill -9)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder
