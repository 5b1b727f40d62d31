"""Reading Parquet data files: mslt-it's bounded reader against ``pq.read_table``.

``mslt_it.io.read_parquet_bounded`` reads text columns dictionary-encoded and sums the text they
decode to before decoding it. Two questions, side by side in one process per measurement:

- the cost on an ordinary file (distinct texts, where the dictionary saves nothing);
- the peak memory on a dictionary bomb (one long value repeated by its dictionary: a few
  hundred bytes on disk), which the bounded reader refuses and ``pq.read_table`` expands.

Usage: python benchmarks/bench_parquet.py [--rows 200000] [--bomb-rows 20000]
"""

from __future__ import annotations

import argparse
import json
import random
import string
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

MEASURE = """
import json, resource, sys, time
from pathlib import Path
path, how = Path(sys.argv[1]), sys.argv[2]
began = time.perf_counter()
try:
    if how == "bounded":
        from mslt_it.io import read_parquet_bounded
        read_parquet_bounded(path, "data")
    else:
        import pyarrow.parquet as pq
        pq.read_table(path)
    outcome = "read"
except Exception as error:
    outcome = type(error).__name__
print(json.dumps({"seconds": time.perf_counter() - began, "outcome": outcome,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(path: Path, how: str, memory_mb: int) -> dict:
    """One read in a fresh process, its address space capped at ``memory_mb``."""
    limit = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({memory_mb << 20},) * 2)\n"
    done = subprocess.run(
        [sys.executable, "-c", limit + MEASURE, str(path), how],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"outcome": f"killed ({done.returncode})"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--bomb-rows", type=int, default=20_000)
    parser.add_argument("--memory-mb", type=int, default=6_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    rng = random.Random(0)
    texts = ["".join(rng.choices(string.ascii_lowercase + " ", k=500)) for _ in range(args.rows)]
    ordinary = folder / "ordinary.parquet"
    pq.write_table(pa.table({"instruction": texts, "output": texts[::-1]}), ordinary)
    bomb = folder / "bomb.parquet"
    value = pa.array(["x" * 1_000_000])
    column = pa.DictionaryArray.from_arrays(pa.array([0] * args.bomb_rows, pa.int32()), value)
    # without the Arrow schema, as most writers leave it: read back as plain strings
    pq.write_table(pa.table({"text": column}), bomb, compression="zstd", store_schema=False)
    print(f"ordinary: {args.rows:,} rows of 2 × 500 characters, {ordinary.stat().st_size:,} bytes")
    print(f"bomb: {args.bomb_rows:,} rows of one 1,000,000-character value, "
          f"{bomb.stat().st_size:,} bytes ({args.bomb_rows / 1000:g} GB as text)")  # fmt: skip
    for name, path in (("ordinary", ordinary), ("bomb", bomb)):
        for how in ("pq.read_table", "bounded"):
            best = min(
                (measure(path, how, args.memory_mb) for _ in range(3)),
                key=lambda r: r.get("seconds", float("inf")),
            )
            seconds = f"{best['seconds']:.3f} s" if "seconds" in best else "-"
            peak = f"{best['peak_mb']:,.0f} MB" if "peak_mb" in best else "-"
            print(f"| {name} | {how} | {best['outcome']} | {seconds} | {peak} |")


if __name__ == "__main__":
    main()
