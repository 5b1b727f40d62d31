"""Two trainings in two pytest-xdist processes at once: torch's own thread count against one
share of the cores each (what ``tests/conftest.py`` sets), side by side in one run.

The suite runs one process per core (``--numprocesses=auto``); torch starts as many threads as
there are cores in each, so two processes training at once ask for twice the cores. This runs
the suite's two slowest trainings together, once with every process on torch's own count
(``OMP_NUM_THREADS`` set to the cores, which the conftest keeps) and once with the conftest's
share, and prints each test's time and the whole run's.

    python benchmarks/bench_test_threads.py [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TESTS = [
    "tests/test_multiple_choice.py::test_synthetic_storycloze_is_learnable",
    "tests/test_corpora.py::test_a_synthetic_instruction_adapter_beats_the_base_on_held_out_rows",
]
"""The suite's two slowest trainings, in two files: pytest-xdist gives each its own process."""


def run(own_count: bool) -> tuple[float, dict[str, float]]:
    """The whole run's seconds and each test's, with torch's own count or the conftest's share."""
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    if own_count:
        env["OMP_NUM_THREADS"] = str(os.cpu_count() or 1)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2"]
    command += ["--durations", str(len(TESTS)), *TESTS]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"pytest failed:\n{done.stdout[-2000:]}")
    each = {
        name: float(seconds) for seconds, name in re.findall(r"([\d.]+)s call\s+(\S+)", done.stdout)
    }
    return wall, each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    names = " | ".join(f"{test.split('::')[1]} (s)" for test in TESTS)
    print(f"| round | threads per process | whole run (s) | {names} |")
    print("|---|---|---:|" + "---:|" * len(TESTS))
    for number in range(1, args.rounds + 1):
        for own_count in (True, False):
            wall, each = run(own_count)
            label = f"torch's own ({os.cpu_count()})" if own_count else "a share (conftest)"
            times = " | ".join(f"{each.get(test, float('nan')):.1f}" for test in TESTS)
            print(f"| {number} | {label} | {wall:.1f} | {times} |", flush=True)


if __name__ == "__main__":
    main()
