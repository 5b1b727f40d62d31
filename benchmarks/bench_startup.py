"""Start-up cost: loading every shipped task definition and prompt template, in fresh processes.

Every command that takes a task or a template pays it (the goal is under 0.5 s). Each round runs
a new interpreter that imports mslt-it, then times ``all_tasks()`` and ``load_templates()``
(parsing, validation and one trial render per template variant); ``mslt-it --help`` wall time
is measured beside it.

    python benchmarks/bench_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

PROBE = """
import json, time
started = time.perf_counter()
from mslt_it.tasks import all_tasks
from mslt_it.prompts import load_templates
imported = time.perf_counter()
tasks = all_tasks()
loaded_tasks = time.perf_counter()
templates = load_templates()
done = time.perf_counter()
print(json.dumps({"import": imported - started, "tasks": loaded_tasks - imported,
                  "templates": done - loaded_tasks, "n_tasks": len(tasks),
                  "n_templates": len(templates)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    env = {**os.environ, "MSLT_IT_PROGRESS": "0"}
    rounds = []
    helps = []
    script = Path(sysconfig.get_path("scripts")) / "mslt-it"
    for _ in range(args.repeats):
        out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)
        rounds.append(json.loads(out.stdout))
        started = time.perf_counter()
        subprocess.run([str(script), "--help"], env=env, capture_output=True, check=True)
        helps.append(time.perf_counter() - started)
    first = rounds[0]
    print(f"{first['n_tasks']} task definitions, {first['n_templates']} templates "
          f"(medians of {args.repeats} fresh processes)")  # fmt: skip
    for key in ("import", "tasks", "templates"):
        print(f"  {key:<10} {statistics.median(r[key] for r in rounds):.3f} s")
    loading = statistics.median(r["tasks"] + r["templates"] for r in rounds)
    print(f"  tasks + templates: {loading:.3f} s (goal < 0.5 s)")
    print(f"  mslt-it --help (whole process): {statistics.median(helps):.3f} s")


if __name__ == "__main__":
    main()
