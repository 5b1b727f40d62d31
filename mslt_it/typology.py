"""The lang2vec typology that ships with mslt-it, read without lang2vec.

``resources/lang2vec/<set>.json`` holds feature sets derived from lang2vec for every registry
language (values zlib-compressed, NaN kept). :mod:`mslt_it.selection.vectors` serves them to the
selection criteria; the synthetic world (:mod:`mslt_it.tasks.synthetic`) reads one feature of
them (word order), tied to the shipped file so that the world is the same on every machine,
whatever lang2vec is installed. Nothing of mslt-it's is imported here but the paths.
"""

from __future__ import annotations

import base64
import json
import zlib

import numpy as np

from mslt_it.paths import RESOURCES_DIR

SHIPPED_FOLDER = RESOURCES_DIR / "lang2vec"


def encode_values(values: np.ndarray) -> str:
    """A float matrix as text: little-endian float64, zlib-compressed, base64."""
    return base64.b64encode(zlib.compress(np.ascontiguousarray(values, "<f8").tobytes())).decode()


def decode_values(text: str, shape: tuple[int, int]) -> np.ndarray:
    """The matrix :func:`encode_values` wrote, as a writable array."""
    raw = zlib.decompress(base64.b64decode(text))
    return np.frombuffer(raw, dtype="<f8").reshape(shape).copy()


def shipped_feature(feature_set: str, feature: str) -> dict[str, float]:
    """One feature of a shipped set for every language in it (ISO 639-3 code -> value, NaN kept).

    Unlike :func:`mslt_it.selection.vectors.shipped_table` this reads the file whatever lang2vec
    is installed: the synthetic world's typology must be the same on every machine, so it is tied
    to the shipped file, not to the installed package.
    """
    path = SHIPPED_FOLDER / f"{feature_set}.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    codes, features = document["codes"], document["features"]
    values = decode_values(document["values"], (len(codes), len(features)))
    column = features.index(feature)
    return {code: float(values[row, column]) for row, code in enumerate(codes)}
