"""The cost of a check on what a template builds, side by side in one run.

``--check weight`` (the default): every list, tuple and mapping a template writes, and every
value a filter, call or operator returns, is measured as text before it is kept
(``mslt_it.prompt_bounds._check_weight``), so a value nested into itself cannot grow into
exponential text. ``--check none``: ``~``, ``%``, ``str.format``, ``join`` and the text filters
refuse a none they would turn into the word None (``BoundedSandbox(refuse_none=True)``).
This renders the same rows through shipped templates and a user's template with the check on,
then with it switched off, alternating the two arms, and prints each arm's time per row and the
ratio.

    python benchmarks/bench_bounds.py [--check weight|none] [--rows 3000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("MSLT_IT_PROGRESS", "0")

import mslt_it.prompt_bounds as bounds
from mslt_it.prompts import get_template
from mslt_it.tasks import get_task
from mslt_it.tasks.sources import open_split

CASES = [
    ("xnli", "xnli/en-instruct", "en"),
    ("xnli", "xnli/native", "de"),
    ("xcopa", "xcopa/en-instruct", "sw"),
    ("xcopa", "xcopa/lm-eval", "sw"),
]
"""Shipped templates (their rows from the synthetic world)."""

USER_TEMPLATE = (
    "{% set parts = [premise, hypothesis, ('a', 'b')] %}{% set ns = namespace(seen=[]) %}"
    "{% for p in parts %}{% set ns.seen = ns.seen + [p] %}{% endfor %}"
    "{{ {'premise': premise, 'parts': ns.seen} | tojson }} {{ parts[:2] | join(' / ') }}"
)
"""A template of the kind the check is for: literals, a namespace grown in a loop, tojson."""


def rows_of(task: str, lang: str, count: int) -> list:
    split = open_split(get_task(task), lang, "test", "synthetic")
    rows = split.rows(range(min(count, len(split))))
    return (rows * (count // len(rows) + 1))[:count]


def timed(work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--check", choices=sorted(SWITCHES), default="weight")
    args = parser.parse_args()
    switch = SWITCHES[args.check]
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print("| template | rows | check on (µs/row) | check off (µs/row) | on / off |")
    print("|---|---:|---:|---:|---:|")
    for task, template_id, lang in CASES:
        template = get_template(template_id)
        rows = rows_of(task, lang, args.rows)

        def render_all(template=template, rows=rows, lang=lang) -> None:
            for row in rows:
                template.render(row, lang)

        side_by_side(f"{template_id} ({lang})", render_all, len(rows), args.repeats, switch)
    compiled = bounds.ENVIRONMENT.from_string(USER_TEMPLATE)
    rows = [dict(row) for row in rows_of("xnli", "en", args.rows)]

    def render_user() -> None:
        for row in rows:
            with bounds.bounded():
                compiled.render(row)

    side_by_side("a user template: literals, a namespace, tojson (en)", render_user, len(rows),
                 args.repeats, switch)  # fmt: skip


def weight_check(on: bool) -> None:
    bounds._check_weight = CHECK_WEIGHT if on else (lambda value, what: None)


def none_check(on: bool) -> None:
    environment = bounds.ENVIRONMENT
    environment.refuse_none = on
    for name, refusing in NONE_FILTERS.items():
        environment.filters[name] = refusing if on else refusing.refuses_none_of


CHECK_WEIGHT = bounds._check_weight
NONE_FILTERS = {
    name: f for name, f in bounds.ENVIRONMENT.filters.items() if hasattr(f, "refuses_none_of")
}
SWITCHES: dict[str, Callable[[bool], None]] = {"weight": weight_check, "none": none_check}
"""Each check's switch: on (as mslt-it runs) or off."""


def side_by_side(
    label: str, work: Callable[[], None], rows: int, repeats: int, switch: Callable[[bool], None]
) -> None:
    """Time ``work`` with the check on and off, alternating, and print one table row."""
    work()  # warm: compiled templates, caches
    on, off = [], []
    try:
        for _ in range(repeats):
            switch(True)
            on.append(timed(work))
            switch(False)
            off.append(timed(work))
    finally:
        switch(True)
    per_on = 1e6 * statistics.median(on) / rows
    per_off = 1e6 * statistics.median(off) / rows
    print(f"| {label} | {rows} | {per_on:.1f} | {per_off:.1f} | {per_on / per_off:.2f} |")


if __name__ == "__main__":
    main()
