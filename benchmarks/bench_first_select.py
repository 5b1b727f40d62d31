"""A new user's first ``mslt-it select``: shipped lang2vec vectors against fetching them.

Runs the installed console script in fresh processes, each series with its own empty HOME and
cache folder, as a machine that has never run mslt-it:

- ``shipped``: the vectors that ship with mslt-it (what users get): first call, second call;
- ``lang2vec``: the shipped vectors hidden, so the first call imports lang2vec and fetches the five
  feature sets for all registry languages (what every new machine paid before), the second reads
  the cache it wrote.

    python benchmarks/bench_first_select.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from pathlib import Path

COMMAND = [
    "select", "--task", "xnli", "--pool", "ar,de,en,es,fr,ru,zh", "--k", "3",
    "--criterion", "l2v-syntax", "--top", "5", "--json",
]  # fmt: skip

HIDE_SHIPPED = textwrap.dedent(
    """
    import mslt_it.selection.vectors as vectors
    vectors.SHIPPED_FOLDER = vectors.SHIPPED_FOLDER / "hidden-by-the-benchmark"
    """
)


def timed_call(home: Path, pythonpath: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSLT_IT_")}
    env.pop("XDG_CACHE_HOME", None)
    env.update(HOME=str(home), HF_HUB_OFFLINE="1")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    script = Path(sysconfig.get_path("scripts")) / "mslt-it"
    started = time.perf_counter()
    done = subprocess.run([str(script), *COMMAND], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"mslt-it failed: {done.stderr.strip()}")
    return elapsed


def series(folder: Path, name: str, pythonpath: str | None) -> tuple[float, float]:
    home = folder / name / "home"
    home.mkdir(parents=True)
    return timed_call(home, pythonpath), timed_call(home, pythonpath)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    results: dict[str, list[tuple[float, float]]] = {"shipped": [], "lang2vec": []}
    with tempfile.TemporaryDirectory() as tmp:
        hide = Path(tmp) / "hide"
        hide.mkdir()
        (hide / "sitecustomize.py").write_text(HIDE_SHIPPED)
        for round_ in range(args.repeats):  # interleaved, so load changes hit both alike
            results["shipped"].append(series(Path(tmp) / str(round_), "shipped", None))
            results["lang2vec"].append(series(Path(tmp) / str(round_), "lang2vec", str(hide)))
    print(f"mslt-it {' '.join(COMMAND)}   (medians of {args.repeats} fresh HOMEs)")
    print(f"{'vectors':<10} {'first call':>11} {'second call':>12}")
    medians = {}
    for name, pairs in results.items():
        first = statistics.median(p[0] for p in pairs)
        second = statistics.median(p[1] for p in pairs)
        medians[name] = first
        print(f"{name:<10} {first:>10.2f}s {second:>11.2f}s")
    print(f"first call, lang2vec / shipped: {medians['lang2vec'] / medians['shipped']:.1f}x")


if __name__ == "__main__":
    main()
