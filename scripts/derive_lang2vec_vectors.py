"""Derive the lang2vec vectors that ship with mslt-it, for every language of its registry.

The selection criteria need lang2vec's syntax, phonology and inventory sets (``knn`` and
``average``), ``fam`` and ``geo``. Importing lang2vec and reading them takes ~15 s on a new machine,
so ``mslt_it/resources/lang2vec/<set>.json`` holds them for the registry's ISO 639-3 codes, in the
format of the on-disk cache. Run this after changing ``languages.csv`` or the lang2vec pin; the
test ``test_shipped_lang2vec_vectors_equal_lang2vec`` fails until you do.

    python scripts/derive_lang2vec_vectors.py
"""

from __future__ import annotations

import sys
import time

from mslt_it.selection.vectors import (
    SHIPPED_FEATURE_SETS,
    fetch_lang2vec,
    registry_iso_codes,
    shipped_path,
    write_cached_table,
)


def main() -> int:
    codes = registry_iso_codes()
    for feature_set in SHIPPED_FEATURE_SETS:
        started = time.perf_counter()
        table = fetch_lang2vec(feature_set, codes)
        path = shipped_path(feature_set)
        write_cached_table(path, table)
        print(
            f"{feature_set}: {len(codes)} languages x {len(table.features)} features -> {path} "
            f"({path.stat().st_size / 1024:.0f} KiB, {time.perf_counter() - started:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
