"""What the transfer watch costs: the demo, side by side, with and without ``train.watch``.

Runs ``mslt-it run`` on ``recipes/demo.yaml`` twice, each in its own process and output folder:
once as shipped (its ``train.watch`` on) and once with ``train.watch: []``. Reports the wall
time of each whole demo (build, two trainings, evaluation, report), each run's training time,
and the seconds its watch points took (``run.json``: ``watch.seconds_this_session``).

The issue's bound: the demo with the watch on within 180 s on 2 cores, and a watch every N steps
at most doubling the training time.

    python benchmarks/bench_watch.py [--threads 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "recipes" / "demo.yaml"


def timed_run(recipe: Path, out: Path, threads: int) -> tuple[float, str]:
    """``mslt-it run RECIPE --out OUT`` in a fresh process on the CPU: its wall time and what
    it printed (exits with its error if it failed)."""
    env = {
        **os.environ,
        "MSLT_IT_PROGRESS": "0",
        "OMP_NUM_THREADS": str(threads),
        "CUDA_VISIBLE_DEVICES": "",
        "TOKENIZERS_PARALLELISM": "false",
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "mslt_it", "run", str(recipe), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{recipe.name}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def run_demo(recipe: Path, out: Path, threads: int) -> dict[str, Any]:
    """One whole demo in a fresh process; its wall time and each run's training numbers."""
    seconds, _ = timed_run(recipe, out, threads)
    runs = {}
    for path in sorted(out.rglob("run.json")):
        run = json.loads(path.read_text())
        watch = run.get("watch") or {}
        runs[path.parent.name] = {
            "train_seconds": run.get("train_seconds"),
            "watch_seconds": watch.get("seconds_this_session"),
            "watch_points": watch.get("points_this_session"),
            "curves": run.get("curves", {}).get("watch"),
        }
    return {"seconds": round(seconds, 1), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="Keep the two demo folders here.")
    options = parser.parse_args()
    recipe = yaml.safe_load(DEMO.read_text())
    without = {**recipe, "train": {**recipe["train"], "watch": []}}
    with tempfile.TemporaryDirectory() as tmp:
        root = options.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        plain = root / "demo-no-watch.yaml"
        plain.write_text(yaml.safe_dump(without, sort_keys=False))
        results = {
            "without watch": run_demo(plain, root / "no-watch", options.threads),
            "with watch": run_demo(DEMO, root / "watch", options.threads),
        }
    print(json.dumps(results, indent=1))
    on, off = results["with watch"], results["without watch"]
    print(f"demo: {off['seconds']:.0f} s without the watch, {on['seconds']:.0f} s with it")
    for name, run in on["runs"].items():
        base = off["runs"].get(name, {}).get("train_seconds")
        print(
            f"  {name}: training {base} s -> {run['train_seconds']} s "
            f"({run['watch_points']} watch points, {run['watch_seconds']} s)"
        )


if __name__ == "__main__":
    main()
