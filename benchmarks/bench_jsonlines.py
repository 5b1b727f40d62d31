"""JSON-lines data files: the cost of mslt-it's check before pyarrow reads them.

``mslt_it.jsonlines.check_json_lines`` streams a file once before ``pyarrow.json.read_json``
does, to refuse what would crash the process (a first line that is not an object, a row nested
past :data:`~mslt_it.jsonlines.MAX_JSON_DEPTH`). This measures that pass against the read, on
the same file in the same process, best of ``--repeats``, and the full validation of the table
read (``Table.validate(full=True)``: text that is not UTF-8 is read by pyarrow, and failed only
when a row was taken out) that :func:`mslt_it.io.read_json_table` adds to the read.

Usage: python benchmarks/bench_jsonlines.py [--rows 300000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import pyarrow.json as pj

from mslt_it.jsonlines import check_json_lines


def write_rows(path: Path, rows: int) -> None:
    """WikiAnn-shaped rows with an XNLI-like text holding quotes and brackets (the check's
    slow case would be text full of brackets)."""
    rng = random.Random(0)
    text = 'a premise with "quotes" and [brackets] ' * 5
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(rows):
            tokens = [f"w{rng.randrange(10_000)}" for _ in range(20)]
            tags = [rng.randrange(7) for _ in range(20)]
            handle.write(json.dumps({"tokens": tokens, "ner_tags": tags, "premise": text}) + "\n")


def write_bracket_heavy(path: Path, rows: int) -> None:
    """Code-like rows with over 100 brackets each: every line is read as JSON by the check
    (its slow path), and none nests deeper than three levels."""
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(rows):
            handle.write(json.dumps({"code": "f(x)[0]{1}" * 40, "n": [[1]]}) + "\n")


def best(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train.jsonl"
        write_rows(path, args.rows)
        check = best(lambda: check_json_lines(path, "data"), args.repeats)
        read = best(lambda: pj.read_json(path), args.repeats)
        table = pj.read_json(path)
        validate = best(lambda: table.validate(full=True), args.repeats)
        size = path.stat().st_size / 1e6
        heavy_rows = args.rows // 6
        write_bracket_heavy(path, heavy_rows)
        heavy = best(lambda: check_json_lines(path, "data"), args.repeats)
        heavy_read = best(lambda: pj.read_json(path), args.repeats)
    print(f"{args.rows:,} rows, {size:.0f} MB; best of {args.repeats}")
    print(f"check_json_lines  {check:.2f} s")
    print(f"pyarrow read_json {read:.2f} s")
    print(f"check / read      {check / read:.2f}")
    print(f"validate(full)    {validate:.2f} s")
    print(f"validate / read   {validate / read:.2f}")
    print(f"{heavy_rows:,} rows of over 100 brackets each (every line read as JSON)")
    print(f"check_json_lines  {heavy:.2f} s")
    print(f"pyarrow read_json {heavy_read:.2f} s")
    print(f"check / read      {heavy / heavy_read:.2f}")


if __name__ == "__main__":
    main()
