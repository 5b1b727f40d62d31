"""Language vectors: lang2vec feature sets (shipped and cached), user CSVs, and cosine distances.

lang2vec 1.1.2 takes ~3 s to import and ~9 s to return its ``fam`` set (it re-reads its ``.npz``
once per feature name), and it has no distance functions. So the feature sets the criteria use
ship with mslt-it for every registry language (``resources/lang2vec/<set>.json``, derived from
lang2vec by ``scripts/derive_lang2vec_vectors.py``, checked against it by a test): a new machine
answers its first ``select`` without importing lang2vec. Any other set of codes is fetched once in
one call and stored as a small JSON file under the cache folder (keyed by feature set, the codes
asked for and the lang2vec version, written atomically).

Missing values are never zeros. lang2vec marks them ``"--"``; they become NaN here, a language
whose vector is all NaN is *missing* (reported by name, never guessed), and the cosine between two
partly known vectors is taken over the features both of them have (see :func:`cosine_similarity`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import sys
import warnings
import zlib
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it.errors import MsltError, allowed, clipped
from mslt_it.files import (
    MAX_JSON_BYTES,
    PLAIN_NUMBER,
    csv_rows,
    read_user_bytes,
    read_user_text,
)
from mslt_it.identity import cache_folder
from mslt_it.io import atomic_write_text
from mslt_it.languages import all_languages
from mslt_it.paths import RESOURCES_DIR
from mslt_it.typology import decode_values, encode_values

CACHE_FORMAT = 1
MISSING_MARKS = frozenset({"", "--", "nan", "NaN", "NA"})

L2V_SPACES: dict[str, str] = {
    "syntax": "syntax_{variant}",
    "phonology": "phonology_{variant}",
    "inventory": "inventory_{variant}",
    "family": "fam",
    "geo": "geo",
}
"""Criterion suffix -> lang2vec feature set; ``{variant}`` is ``knn`` (default) or ``average``.

``learned`` is not offered: lang2vec 1.1.2 cannot load it under numpy 2.
"""

L2V_VARIANTS = ("knn", "average")

SHIPPED_FEATURE_SETS = tuple(
    sorted({space.format(variant=v) for space in L2V_SPACES.values() for v in L2V_VARIANTS})
)
"""Every lang2vec set a criterion can ask for; each ships for the registry's languages."""

SHIPPED_FOLDER = RESOURCES_DIR / "lang2vec"


@dataclass(frozen=True)
class FeatureTable:
    """Vectors of one feature space, one row per language code; NaN marks a missing value."""

    name: str  # what the vectors are, for messages: "syntax_knn", "custom (my.csv)"…
    codes: tuple[str, ...]
    features: tuple[str, ...]
    values: np.ndarray  # (len(codes), len(features)) float64

    @cached_property
    def row_of(self) -> dict[str, int]:
        return {code: i for i, code in enumerate(self.codes)}

    def has_vector(self, code: str) -> bool:
        """True when ``code`` has at least one known feature value."""
        row = self.row_of.get(code)
        return row is not None and bool(np.any(~np.isnan(self.values[row])))

    def matrix(self, codes: list[str]) -> np.ndarray:
        """Rows for ``codes`` in that order; all-NaN for a code the table lacks."""
        out = np.full((len(codes), len(self.features)), np.nan)
        for i, code in enumerate(codes):
            row = self.row_of.get(code)
            if row is not None:
                out[i] = self.values[row]
        return out

    def zero(self, codes: list[str]) -> list[str]:
        """The codes among ``codes`` whose known values are all 0 (e.g. ``fam`` of an isolate)."""
        rows = self.matrix(codes)
        known = ~np.isnan(rows)
        return [
            code
            for code, row, ok in zip(codes, rows, known, strict=True)
            if ok.any() and not np.any(row[ok])
        ]

    def missing(self, codes: list[str]) -> list[str]:
        """The codes among ``codes`` without any known value."""
        return [code for code in codes if not self.has_vector(code)]

    def with_rows(self, other: FeatureTable) -> FeatureTable:
        """This table with ``other``'s rows replacing or extending its own (same features)."""
        if set(other.features) != set(self.features):
            raise ValueError("with_rows needs the same feature names")
        order = [other.features.index(f) for f in self.features]
        rows = {code: self.values[i] for i, code in enumerate(self.codes)}
        rows.update({code: other.values[i, order] for i, code in enumerate(other.codes)})
        codes = tuple(rows)
        return FeatureTable(self.name, codes, self.features, np.array([rows[c] for c in codes]))


# --------------------------------------------------------------------------------------------
# Cosine similarity with missing values
# --------------------------------------------------------------------------------------------


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of ``a`` with every row of ``b``, NaN-aware.

    Each pair is compared on the features *both* rows know: the dot product and both norms are
    taken over that shared subset, so a feature missing in one language neither counts as 0 nor
    drops out of only one norm. A pair with no shared known feature has no similarity: NaN,
    reported by the caller, never filled in. A vector that is all zeros on the shared features
    (lang2vec's ``fam`` for an isolate such as Basque: no family) has nothing in common with the
    other one: similarity 0, scikit-learn's convention.
    """
    known_a, known_b = ~np.isnan(a), ~np.isnan(b)
    za, zb = _unit_scale(np.where(known_a, a, 0.0)), _unit_scale(np.where(known_b, b, 0.0))
    dot = za @ zb.T
    norm_a = (za * za) @ known_b.T.astype(float)  # |a_i|² over the features b_j knows
    norm_b = known_a.astype(float) @ (zb * zb).T  # |b_j|² over the features a_i knows
    denominator = np.sqrt(norm_a * norm_b)
    shared = known_a.astype(float) @ known_b.T.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        similarity = np.where(denominator > 0, dot / denominator, np.where(shared > 0, 0.0, np.nan))
    return np.clip(similarity, -1.0, 1.0)


def _unit_scale(rows: np.ndarray) -> np.ndarray:
    """Each row divided by its largest magnitude: a cosine does not change, and products of
    huge values (a user's vectors of 1e200) no longer overflow to inf."""
    largest = np.abs(rows).max(axis=1, keepdims=True) if rows.size else rows
    return rows / np.where(largest > 0, largest, 1.0)


def cosine_distances(x: np.ndarray) -> np.ndarray:
    """``1 − cosine similarity`` between rows of ``x`` (NaN where undefined), 0 on the diagonal."""
    distances = 1.0 - cosine_similarity(x, x)
    np.fill_diagonal(distances, 0.0)
    return distances


# --------------------------------------------------------------------------------------------
# The on-disk cache
# --------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """mslt-it's cache folder (:func:`mslt_it.identity.cache_folder`: one rule everywhere)."""
    return cache_folder()


def lang2vec_version() -> str:
    """The installed lang2vec's version, read from its metadata (no slow import)."""
    try:
        return metadata.version("lang2vec")
    except metadata.PackageNotFoundError:
        return "missing"


def cache_path(feature_set: str, codes: list[str], folder: Path | None = None) -> Path:
    """Where the table of ``feature_set`` for exactly ``codes`` is cached."""
    digest = hashlib.sha256("\n".join(codes).encode()).hexdigest()[:16]
    version = lang2vec_version()
    return (folder or cache_dir()) / "lang2vec" / f"{version}-{feature_set}-{digest}.json"


def write_cached_table(path: Path, table: FeatureTable) -> None:
    """Store ``table`` as JSON (values zlib-compressed, NaN kept), atomically."""
    document = {
        "format": CACHE_FORMAT,
        "lang2vec": lang2vec_version(),
        "feature_set": table.name,
        "codes": list(table.codes),
        "features": list(table.features),
        "shape": list(table.values.shape),
        "values": encode_values(table.values),
    }
    atomic_write_text(path, json.dumps(document))


def read_cached_table(path: Path, feature_set: str, codes: list[str]) -> FeatureTable | None:
    """The cached table, or None when there is none or it is not for these inputs."""
    try:
        document = json.loads(read_user_bytes(path, "lang2vec cache", MAX_JSON_BYTES))
    except (OSError, ValueError, RecursionError):  # MsltError too: not a regular file, or too large
        return None  # absent or damaged: fetch again and overwrite
    return table_from_document(document, feature_set, codes)


def table_from_document(document: Any, feature_set: str, codes: list[str]) -> FeatureTable | None:
    """The table a cache or shipped document holds, or None if it is not for these inputs."""
    try:
        if (
            document["format"] != CACHE_FORMAT
            or document["feature_set"] != feature_set
            or document["codes"] != codes
            or document["lang2vec"] != lang2vec_version()
        ):
            return None
        shape = (len(document["codes"]), len(document["features"]))
        values = decode_values(document["values"], shape)
    except (ValueError, KeyError, TypeError, zlib.error):
        return None  # damaged: fetch again and overwrite
    return FeatureTable(feature_set, tuple(codes), tuple(document["features"]), values)


def registry_iso_codes() -> list[str]:
    """The ISO 639-3 codes of the registry's languages, sorted: what the criteria ask for."""
    return sorted({lang.iso639_3 for lang in all_languages().values()})


def shipped_path(feature_set: str) -> Path:
    """Where the shipped table of ``feature_set`` lives in the package."""
    return SHIPPED_FOLDER / f"{feature_set}.json"


def shipped_table(feature_set: str, codes: list[str]) -> FeatureTable | None:
    """``feature_set`` for ``codes`` from the vectors that ship with mslt-it, if it has them all.

    None when the set is not shipped, a code is not in it, or the installed lang2vec is another
    version than the one the file was derived from (then lang2vec itself is asked).
    """
    try:
        document = json.loads(shipped_path(feature_set).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    shipped_codes = document.get("codes", []) if isinstance(document, dict) else []
    if not set(codes) <= set(shipped_codes):
        return None
    table = table_from_document(document, feature_set, shipped_codes)  # parsed once
    if table is None:
        return None
    return FeatureTable(feature_set, tuple(codes), table.features, table.matrix(codes))


# --------------------------------------------------------------------------------------------
# lang2vec
# --------------------------------------------------------------------------------------------


def _import_lang2vec() -> Any:
    """Import lang2vec's module, never the ``lang2vec.py`` script its wheel installs.

    The wheel puts ``bin/lang2vec.py`` beside the interpreter's scripts; when that folder is on
    ``sys.path`` (a console script's own folder is, first) ``import lang2vec`` finds the script,
    which crashes looking for ``bin/data``. Folders holding such a script are left out while
    importing.
    """
    shadowing = [entry for entry in sys.path if (Path(entry or ".") / "lang2vec.py").is_file()]
    stale = sys.modules.get("lang2vec")
    if stale is not None and not hasattr(stale, "__path__"):
        del sys.modules["lang2vec"]  # the script, imported by someone else: not the package
    kept = list(sys.path)
    sys.path[:] = [entry for entry in kept if entry not in shadowing]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pkg_resources deprecation
            import lang2vec.lang2vec as l2v
    except ImportError as error:
        raise MsltError(f"lang2vec: cannot import it ({error}); reinstall mslt-it") from None
    finally:
        sys.path[:] = kept + [e for e in sys.path if e not in kept]
    return l2v


def _parse_l2v_values(values: list[object]) -> np.ndarray:
    return np.array([np.nan if v == "--" else float(v) for v in values], dtype=float)


def fetch_lang2vec(feature_set: str, codes: list[str]) -> FeatureTable:
    """Ask lang2vec for ``feature_set`` of ISO 639-3 ``codes`` (slow: imports lang2vec).

    One call for all codes; if lang2vec rejects the batch (it raises for a code it lacks), each
    code is asked alone and the ones it rejects get an all-NaN row, i.e. are reported missing.
    lang2vec prints notes on stdout; they are swallowed so ``--json`` output stays clean.
    """
    l2v = _import_lang2vec()
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            answer = l2v.get_features(list(codes), feature_set, header=True)
            names = [str(n) for n in answer.pop("CODE")]
            rows = [_parse_l2v_values(answer[code]) for code in codes]
        except Exception:  # lang2vec raises bare Exception for an unknown code
            names, rows = [], []
            for code in codes:
                try:
                    one = l2v.get_features([code], feature_set, header=True)
                except Exception:
                    rows.append(None)
                    continue
                names = [str(n) for n in one.pop("CODE")]
                rows.append(_parse_l2v_values(one[code]))
            if not names:
                raise MsltError(f"lang2vec: no language has a {feature_set} vector") from None
            rows = [np.full(len(names), np.nan) if r is None else r for r in rows]
    return FeatureTable(feature_set, tuple(codes), tuple(names), np.vstack(rows))


def lang2vec_table(
    feature_set: str, codes: list[str], folder: Path | None = None, notify: bool = True
) -> FeatureTable:
    """``feature_set`` for ISO 639-3 ``codes``: shipped, else from the disk cache or lang2vec."""
    shipped = shipped_table(feature_set, codes)
    if shipped is not None:
        return shipped
    path = cache_path(feature_set, codes, folder)
    table = read_cached_table(path, feature_set, codes)
    if table is not None:
        return table
    if notify:
        print(
            f"lang2vec: fetching {feature_set} for {len(codes)} languages "
            f"(first time only; cached in {path.parent})",
            file=sys.stderr,
        )
    table = fetch_lang2vec(feature_set, codes)
    write_cached_table(path, table)
    return table


# --------------------------------------------------------------------------------------------
# User vectors
# --------------------------------------------------------------------------------------------


MAX_VECTORS_BYTES = 50_000_000
"""Largest ``--vectors`` CSV read: thousands of languages by hundreds of features fit."""


def load_vectors_csv(path: str | Path) -> FeatureTable:
    """Read ``code,feature…`` rows; ``--`` or an empty cell is a missing value (NaN).

    Codes are mslt-it's language codes (``sw``, ``zh-yue``…) or any other name, for a target
    language the registry lacks.
    """
    path = Path(path)
    text = read_user_text(path, "--vectors", MAX_VECTORS_BYTES)  # a FIFO or device: one line
    lines = csv_rows(text, f"--vectors: {path}")
    header = lines[0][1] if lines else None
    if not header or header[0].strip() != "code" or len(header) < 2:
        raise MsltError(
            f"--vectors: {path}: the first row must be 'code' and then feature names, "
            f"got {','.join(header or [])!r}"
        )
    features = tuple(name.strip() for name in header[1:])
    repeated = sorted({name for name in features if features.count(name) > 1})
    if repeated:
        raise MsltError(f"--vectors: {path}: feature {repeated[0]!r} appears twice; keep one")
    codes: list[str] = []
    rows: list[list[float]] = []
    for line, row in lines[1:]:
        if not row or all(not cell.strip() for cell in row):
            continue
        codes.append(_vector_code(row, len(header), codes, path, line))
        rows.append(
            [_vector_value(cell, path, line, header[i + 1]) for i, cell in enumerate(row[1:])]
        )
    if not rows:
        raise MsltError(f"--vectors: {path} has no rows")
    return FeatureTable(f"custom ({path.name})", tuple(codes), features, np.array(rows))


def _vector_code(row: list[str], width: int, seen: list[str], path: Path, line: int) -> str:
    code = row[0].strip()
    if len(row) != width:
        raise MsltError(f"--vectors: {path}:{line}: {len(row)} cells, the header has {width}")
    if not code:
        raise MsltError(f"--vectors: {path}:{line}: empty language code")
    if code in seen:
        raise MsltError(f"--vectors: {path}:{line}: language {code!r} appears twice")
    return code


def _vector_value(cell: str, path: Path, line: int, feature: str) -> float:
    cell = cell.strip()
    if cell in MISSING_MARKS:
        return math.nan
    if PLAIN_NUMBER.fullmatch(cell) is None:
        raise MsltError(
            f"--vectors: {path}:{line}: {feature}: {clipped(cell, 40)} is not a number (use -- for "
            "missing)"
        )
    value = float(cell)
    if not math.isfinite(value):
        raise MsltError(f"--vectors: {path}:{line}: {feature}: {cell!r} is not finite")
    return value


def describe_missing(codes: list[str], total: int, space: str) -> str:
    """``af, ar (2 of 7)`` for an error message."""
    verb = "has" if len(codes) == 1 else "have"
    return f"{allowed(codes, 12)} ({len(codes)} of {total}) {verb} no {space} vector"
