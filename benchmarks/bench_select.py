"""Selection speed: every criterion over every set of 4, a plain loop, and the whole registry.

1. The XTREME WikiAnn languages but the targets, k = 4: every set scored and ranked (top 5)
   under every criterion, exhaustively; the criterion's inputs (vectors from the cache, token
   types, mean embeddings) are prepared first and timed separately. Goal: under 1 s per
   criterion.
2. The same sets scored by a plain ``itertools.combinations`` loop over Python lists, for the
   pairwise (l2v-syntax), additive (size) and count (script) criteria: the speed-up.
3. All 176 WikiAnn languages, k = 4 (C(176,4) = 38,630,900 sets): exhaustive in blocks vs the
   exact pruned search, and whether they return the same sets.
4. ``mslt-it select`` end to end, twice in fresh processes: the second run reads the cache.

    python benchmarks/bench_select.py [--tokenizer DIR --model DIR] [--skip-exhaustive-176]

Without ``--tokenizer``/``--model`` a small BPE tokenizer and a 1-layer random Llama are built
first (not timed). The lang2vec cache is used where it exists and filled where not (that first
fetch is timed and reported too).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import subprocess
import sys
import tempfile
import time
from math import comb
from pathlib import Path

os.environ.setdefault("MSLT_IT_PROGRESS", "0")

import numpy as np

from mslt_it.languages import XTREME_WIKIANN, languages_of_task
from mslt_it.selection.context import make_context
from mslt_it.selection.criteria import CRITERIA, SelectionOptions
from mslt_it.selection.search import best_sets
from mslt_it.selection.vectors import cache_dir

TARGETS = ("bg", "sw", "ur")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", help="tokenizer folder (default: build a small one)")
    parser.add_argument("--model", help="model folder (default: a 1-layer random Llama)")
    parser.add_argument("--skip-exhaustive-176", action="store_true")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tokenizer = args.tokenizer or args.model or str(mini_model(folder))
        model = args.model or tokenizer
        vectors = random_vectors_csv(folder / "vectors.csv")
        warm_cache()
        every_criterion(tokenizer, model, vectors)
    plain_loop()
    large_pool(not args.skip_exhaustive_176)
    cli_twice()


def mini_model(folder: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaModel

    from mslt_it.tiny import raw_documents, train_tokenizer

    tokenizer = train_tokenizer(raw_documents(list(XTREME_WIKIANN), 20), 4096)
    tokenizer.save_pretrained(folder / "mini")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaModel(config).save_pretrained(folder / "mini")
    return folder / "mini"


def random_vectors_csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    codes = languages_of_task("wikiann")
    lines = ["code," + ",".join(f"f{i}" for i in range(16))]
    lines += [c + "," + ",".join(f"{v:.4f}" for v in rng.random(16)) for c in codes]
    path.write_text("\n".join(lines) + "\n")
    return path


def warm_cache() -> None:
    """Fill the lang2vec cache (timed only when something had to be fetched)."""
    ctx = make_context("wikiann", list(XTREME_WIKIANN))
    start = time.perf_counter()
    fetched = not (cache_dir() / "lang2vec").is_dir()
    for space in ("syntax", "phonology", "inventory", "family", "geo"):
        ctx.table(space)
    if fetched:
        print(f"first lang2vec fetch of 5 sets (import + get_features): {_s(start)}")


def every_criterion(tokenizer: str, model: str, vectors: Path) -> None:
    options = SelectionOptions(
        tokenizer=tokenizer, model=model, vectors=vectors, sample=100, size_missing="last"
    )
    ctx = make_context("wikiann", list(XTREME_WIKIANN), targets=TARGETS, options=options)
    sets = comb(len(ctx.pool), 4)  # the targets are left out of the pool
    print(
        f"\n1. all C({len(ctx.pool)},4) = {sets:,} sets of the XTREME WikiAnn languages but the "
        "targets, top 5, exhaustive"
    )
    print(f"{'criterion':<22} {'inputs':>9} {'score + rank':>13}")
    total = 0.0
    for name, criterion in CRITERIA.items():
        start = time.perf_counter()
        objective = criterion.build(ctx, 4, True)
        prepare = time.perf_counter() - start
        start = time.perf_counter()
        found = best_sets(objective, len(ctx.pool), 4, 5, method="exhaustive")
        search = time.perf_counter() - start
        total += search
        assert found.scored == sets
        print(f"{name:<22} {prepare:8.3f}s {search:12.3f}s")
    print(f"{'all criteria':<22} {'':>9} {total:12.3f}s  (goal: each < 1 s)")


def plain_loop() -> None:
    """The same 91,390 sets scored in pure Python, against the vectorised scorer."""
    from mslt_it.languages import all_languages, pretraining_size

    options = SelectionOptions(size_missing="last")  # CC-100 has no Yoruba
    ctx = make_context("wikiann", list(XTREME_WIKIANN), options=options)
    pool = list(ctx.pool)
    objective = CRITERIA["l2v-syntax"].build(ctx, 4, True)
    distance = objective.terms[0].matrix.tolist()
    sizes = [pretraining_size(c, "cc100") or -float("inf") for c in pool]
    scripts = [all_languages()[c].script for c in pool]
    loops = {
        "l2v-syntax": lambda s: sum(distance[a][b] for a, b in itertools.combinations(s, 2)),
        "size": lambda s: sum(sizes[i] for i in s),
        "script": lambda s: len({scripts[i] for i in s}),
    }
    print("\n2. the same sets: plain itertools loop vs vectorised (score all + top 5)")
    for name, score in loops.items():
        start = time.perf_counter()
        ranked = sorted(itertools.combinations(range(40), 4), key=lambda s: -score(s))[:5]
        loop = time.perf_counter() - start
        built = CRITERIA[name].build(ctx, 4, True)
        start = time.perf_counter()
        found = best_sets(built, 40, 4, 5, method="exhaustive")
        fast = time.perf_counter() - start
        same = [tuple(r) for r in found.combos] == ranked
        print(
            f"{name:<12} loop {loop:7.3f}s  vectorised {fast:6.3f}s  "
            f"×{loop / fast:5.0f}  same: {same}"
        )


def large_pool(with_exhaustive: bool) -> None:
    ctx = make_context("wikiann", None, targets=TARGETS)
    n = len(ctx.pool)
    print(f"\n3. all {n} WikiAnn languages, k = 4: {comb(n, 4):,} sets, top 5")
    for name in ("l2v-syntax", "l2v-inventory", "l2v-geo", "script", "target-l2v", "random"):
        objective = CRITERIA[name].build(ctx, 4, True)
        start = time.perf_counter()
        pruned = best_sets(objective, n, 4, 5, method="pruned")
        pruned_s = time.perf_counter() - start
        line = f"{name:<14} pruned {pruned_s:6.2f}s ({pruned.scored / pruned.total:6.1%} scored)"
        if with_exhaustive:
            start = time.perf_counter()
            exhaustive = best_sets(objective, n, 4, 5, method="exhaustive")
            exhaustive_s = time.perf_counter() - start
            same = np.array_equal(pruned.combos, exhaustive.combos)
            line += f"  exhaustive {exhaustive_s:6.2f}s  same sets: {same}"
        print(line)


def cli_twice() -> None:
    command = [
        sys.executable, "-m", "mslt_it", "select", "--task", "xnli", "--pool",
        "ar,de,en,es,fr,ru,zh", "--k", "3", "--criterion", "l2v-syntax", "--top", "5", "--json",
    ]  # fmt: skip
    print(f"\n4. {' '.join(['mslt-it', *command[3:]])}, in fresh processes")
    with tempfile.TemporaryDirectory() as empty:
        env = {**os.environ, "MSLT_IT_CACHE": empty}
        for attempt in ("first run, empty cache", "second run, cached"):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=env)
            print(f"{attempt}: {_s(start)} wall")


def _s(start: float) -> str:
    return f"{time.perf_counter() - start:.2f} s"


if __name__ == "__main__":
    main()
