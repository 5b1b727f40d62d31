"""Build datasets and evaluate on a model, then print a hash of every output file.

Run it with two versions of mslt-it (two checkouts, or before and after a change) and compare
the printed JSON: equal hashes mean the change left datasets, predictions and results
byte-for-byte the same on these inputs. ``.mslt-it-output.json`` markers and ``timings.json``
(wall-clock) are left out.

    python scripts/output_digest.py OUT_DIR MODEL_DIR > digest.json
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("MSLT_IT_PROGRESS", "0")

from mslt_it.cli import main as mslt_it

BUILDS = [
    ("xnli", "en,de,zh", "xnli/en-instruct", "prompt-completion"),
    ("xnli", "ar,sw", "xnli/native", "messages"),
    ("pawsx", "en,ja", "pawsx/native", "prompt-completion"),
    ("wikiann", "en,zh,yo", "wikiann/en-instruct", "prompt-completion"),
]
EVALS = [
    ("xnli", "en,bg", "rank"),
    ("xnli", "en,sw", "generate"),
    ("pawsx", "de,ko", "generate"),
    ("wikiann", "en,fi", "generate"),
]
SKIPPED = {".mslt-it-output.json", "timings.json"}


def run(*args: object) -> None:
    try:
        mslt_it([str(a) for a in args])
    except SystemExit as done:
        if done.code not in (0, None):
            sys.exit(f"mslt-it {' '.join(map(str, args))} failed ({done.code})")


def digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in SKIPPED
    }


def main() -> None:
    out, model = Path(sys.argv[1]), sys.argv[2]
    report: dict[str, dict[str, str]] = {}
    for task, sources, template, fmt in BUILDS:
        folder = out / f"{task}-{template.split('/')[1]}-{fmt}"
        run("build", "--task", task, "--sources", sources, "--budget", 60, "--template", template,
            "--format", fmt, "--out", folder, "--tokenizer", model)  # fmt: skip
        report[folder.name] = digest(folder)
    for task, langs, mode in EVALS:
        folder = out / f"eval-{task}-{mode}"
        run("eval", "--model", model, "--task", task, "--langs", langs, "--mode", mode,
            "--limit", 8, "--max-tokens", 12, "--bootstrap-samples", 50,
            "--out", folder)  # fmt: skip
        report[folder.name] = digest(folder)
    print(json.dumps(report, indent=1, sort_keys=True), file=sys.__stdout__)


if __name__ == "__main__":
    main()
