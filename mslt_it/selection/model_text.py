"""A LightGBM model text from a predictor file, checked line by line before LightGBM reads it.

A predictor file is user input: its seal and digests are plain SHA-256 values anyone can
recompute, so they prove a file was not damaged, not that it was not edited. LightGBM's native
loader trusts its input: a ``tree_sizes`` that does not match the trees makes it read past the
text, and a ``num_leaves`` larger than the arrays, a child index out of range or a cycle make
it read past them or never finish a prediction, which ends the whole process (SIGABRT, pages of
native messages) instead of one line. So the text is held to the shape LightGBM writes for the
models mslt-it trains (one class, numerical splits, no linear trees), every number is checked
against what it indexes, and LightGBM is given a copy rebuilt from the checked lines, without
``tree_sizes`` (it then reads the trees one after another) and without the sections after the
trees, which prediction does not use.
"""

from __future__ import annotations

import math

from mslt_it.errors import MsltError

HEADER_VALUES = {
    "version": "v4",
    "num_class": "1",
    "num_tree_per_iteration": "1",
    "label_index": "0",
}
"""Header lines whose value is fixed for mslt-it's models (one output, one tree a round)."""

HEADER_KEYS = (
    "version", "num_class", "num_tree_per_iteration", "label_index", "max_feature_idx",
    "objective", "feature_names", "feature_infos", "tree_sizes",
)  # fmt: skip
"""The header lines, in the order LightGBM writes them."""

TREE_KEYS = (
    "num_leaves", "num_cat", "split_feature", "split_gain", "threshold", "decision_type",
    "left_child", "right_child", "leaf_value", "leaf_weight", "leaf_count", "internal_value",
    "internal_weight", "internal_count", "is_linear", "shrinkage",
)  # fmt: skip
"""The lines of one tree, in LightGBM's order."""

INTERNAL = ("split_feature", "split_gain", "threshold", "decision_type", "left_child",
            "right_child", "internal_value", "internal_weight", "internal_count")  # fmt: skip
"""Arrays with one value per split (``num_leaves - 1``)."""

MAX_LEAVES = 131_072
"""LightGBM's own limit on leaves per tree."""

MAX_TREES = 10_000
"""Far above the rounds mslt-it trains (:data:`mslt_it.selection.predictor.ROUNDS`)."""

MAX_VALUE = 1e12
"""Bound on leaf values and thresholds: finite, and far from overflowing when summed."""

DECISION_TYPES = frozenset({0, 2, 4, 6, 8, 10})
"""Numerical splits: bit 0 (categorical) clear; bit 1 default-left; bits 2-3 the missing type
(none, zero, NaN)."""

END = "end of trees"


def checked_model_text(text: str, features: int, objective: str) -> str:
    """The part of ``text`` LightGBM needs to predict, rebuilt from the values of lines that
    were checked, or a :class:`MsltError` naming the first thing that is not as LightGBM
    writes it."""
    head, found, _ = text.partition(f"\n{END}\n")
    if not found:
        raise MsltError(f"no {END!r} line")
    blocks = head.split("\n\n")
    header = _lines(blocks[0], ("tree", *HEADER_KEYS), "the header")
    rebuilt = ["tree", *_header(header, features, objective), ""]
    trees = [block for block in blocks[1:] if block.strip("\n")]
    if len(trees) > MAX_TREES:
        raise MsltError(f"{len(trees)} trees; allowed: at most {MAX_TREES}")
    for number, block in enumerate(trees):
        where = f"tree {number}"
        tree = _lines(block, (f"Tree={number}", *TREE_KEYS), where)
        rebuilt += [f"Tree={number}", *_tree(tree, features, where), "", ""]
    return "\n".join([*rebuilt, END, ""])


def _lines(block: str, keys: tuple[str, ...], where: str) -> dict[str, str]:
    """``key=value`` lines holding exactly ``keys``, in that order; the first key is a whole
    line (``tree``, ``Tree=3``)."""
    lines = block.strip("\n").split("\n")
    if lines[0] != keys[0]:
        raise MsltError(f"{where} starts with {lines[0][:40]!r}, not {keys[0]!r}")
    for line, key in zip(lines[1:], keys[1:], strict=False):
        if line.partition("=")[0] != key or "=" not in line:
            raise MsltError(f"{where}: found {line[:40]!r} where LightGBM writes {key}=")
    if len(lines) != len(keys):
        missing = keys[len(lines)] if len(lines) < len(keys) else None
        said = f"no {missing}= line" if missing else f"an extra line {lines[len(keys)][:40]!r}"
        raise MsltError(f"{where}: {said}")
    return {line.partition("=")[0]: line.partition("=")[2] for line in lines[1:]}


def _header(header: dict[str, str], features: int, objective: str) -> list[str]:
    """The header's checked lines, without ``tree_sizes``."""
    for key, value in HEADER_VALUES.items():
        if header[key] != value:
            raise MsltError(f"the header: {key}={header[key][:40]!r}; allowed: {value}")
    if header["max_feature_idx"] != str(features - 1):
        raise MsltError(
            f"the header: max_feature_idx={header['max_feature_idx'][:40]!r}; the file names "
            f"{features} features"
        )
    if header["objective"] != objective:
        raise MsltError(
            f"the header: objective={header['objective'][:40]!r}; the file says {objective!r}"
        )
    names = [f"f{i}" for i in range(features)]
    if header["feature_names"].split(" ") != names:
        raise MsltError(f"the header: feature_names are not f0 to f{features - 1}")
    infos = header["feature_infos"].split(" ")
    if len(infos) != features:
        raise MsltError(f"the header: feature_infos has {len(infos)} entries, not {features}")
    ranges = []
    for info in infos:
        if info == "none":
            ranges.append(info)
            continue
        if not (info.startswith("[") and info.endswith("]") and info.count(":") == 1):
            raise MsltError(f"the header: feature_infos {info[:40]!r} is not [low:high]")
        low, high = _floats(info[1:-1].split(":"), "the header: feature_infos")
        ranges.append(f"[{low!r}:{high!r}]")
    fixed = [f"{key}={header[key]}" for key in HEADER_KEYS[:6]]
    return [*fixed, f"feature_names={' '.join(names)}", f"feature_infos={' '.join(ranges)}"]


def _floats(raw: list[str], where: str, endless: bool = False) -> list[float]:
    """Numbers within ±:data:`MAX_VALUE`; ``endless``: ±inf too (a threshold that sends only
    missing values one way is infinite), never NaN."""
    try:
        values = [float(value) for value in raw]
    except ValueError:
        raise MsltError(f"{where} holds {' '.join(raw)[:40]!r}, not numbers") from None
    if not all(abs(v) <= MAX_VALUE or (endless and math.isinf(v)) for v in values):
        raise MsltError(f"{where} holds a value that is not finite within ±{MAX_VALUE:g}")
    return values


def _array(tree: dict[str, str], key: str, counts: tuple[int, ...], where: str) -> list[str]:
    """One tree line's values, as text rebuilt from the parsed numbers."""
    raw = tree[key].split(" ") if tree[key] else []
    if len(raw) not in counts:
        raise MsltError(f"{where}: {key} has {len(raw)} values; num_leaves makes it {counts[0]}")
    if key in INTEGERS:
        try:
            values = [int(value) for value in raw]
        except ValueError:
            raise MsltError(f"{where}: {key} holds {tree[key][:40]!r}, not integers") from None
        return [str(value) for value in values]
    return [repr(value) for value in _floats(raw, f"{where}: {key}", key == "threshold")]


INTEGERS = frozenset({"num_leaves", "num_cat", "split_feature", "decision_type", "left_child",
                      "right_child", "leaf_count", "internal_count", "is_linear"})  # fmt: skip


def _tree(tree: dict[str, str], features: int, where: str) -> list[str]:
    """One tree's checked lines."""
    leaves = int(_array(tree, "num_leaves", (1,), where)[0])
    if not 1 <= leaves <= MAX_LEAVES:
        raise MsltError(f"{where}: num_leaves={leaves}; allowed: 1 to {MAX_LEAVES}")
    if tree["num_cat"] != "0" or tree["is_linear"] != "0":
        raise MsltError(f"{where}: categorical splits or linear leaves, which mslt-it never trains")
    splits = leaves - 1
    counts = {key: (splits,) for key in INTERNAL}
    counts |= {"leaf_value": (leaves,), "leaf_count": (leaves,), "shrinkage": (1,)}
    counts |= {"num_leaves": (1,), "num_cat": (1,), "is_linear": (1,)}
    counts["leaf_weight"] = (leaves,) if leaves > 1 else (1, 0)  # a stump writes none
    values = {key: _array(tree, key, counts[key], where) for key in TREE_KEYS}
    if any(not 0 <= int(f) < features for f in values["split_feature"]):
        raise MsltError(f"{where}: split_feature names a feature outside 0 to {features - 1}")
    if any(int(d) not in DECISION_TYPES for d in values["decision_type"]):
        raise MsltError(f"{where}: decision_type is not a numerical split's")
    children = sorted(int(c) for c in values["left_child"] + values["right_child"])
    # A tree: every split but the root (0) and every leaf (leaf i is stored as -i - 1) is the
    # child of exactly one split, so a prediction walks from the root to a leaf in at most
    # `splits` steps, never outside the arrays and never in a circle.
    if splits and children != sorted([*range(1, splits), *range(-leaves, 0)]):
        raise MsltError(f"{where}: left_child and right_child do not form a tree")
    return [f"{key}={' '.join(values[key])}" for key in TREE_KEYS]
