"""How language-agnostic a set of representations is, in four numbers.

Every function takes the representations of the *same* ``n`` parallel sentences in each of ``L``
languages: a list of ``L`` arrays of shape ``(n, d)`` whose row ``i`` is sentence ``i`` in that
language. Two of the measures compare languages row by row (CKA, retrieval), two look at the
whole cloud of ``L * n`` points labelled by language (probe, silhouette). They disagree on
purpose: CKA is blind to rotations, so two languages can share a geometry yet sit apart in space;
retrieval needs them to overlap; the probe and the silhouette ask whether the language can still
be read off a representation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

MEANINGS: dict[str, str] = {
    "cka": (
        "linear CKA between the representations of the same sentences in two languages, "
        "mean over language pairs; 1 = the languages share one geometry "
        "(higher = more language-agnostic)"
    ),
    "retrieval": (
        "top-1 accuracy of finding a sentence's translation among all sentences of another "
        "language by cosine similarity, mean over ordered language pairs; chance = 1/n "
        "(higher = more language-agnostic)"
    ),
    "lid": (
        "held-out accuracy of a logistic-regression probe predicting a sentence's language "
        "from its representation; chance = 1/#languages (lower = more language-agnostic)"
    ),
    "silhouette": (
        "silhouette score (cosine) with languages as clusters, from -1 to 1; "
        "1 = tight separate clusters per language (lower = more mingled, more language-agnostic)"
    ),
}
"""One line per metric, written into analysis.json and printed by the CLI."""

SMALL_PROBLEM = 1 << 24
"""Below this many numbers in one layer's representations, metrics run on one thread."""

HIGHER_IS_AGNOSTIC: dict[str, bool] = {
    "cka": True,
    "retrieval": True,
    "lid": False,
    "silhouette": False,
}


def centered_gram(x: np.ndarray) -> np.ndarray:
    """The doubly centred linear Gram matrix ``H X Xᵀ H`` (H centres), in float64.

    Centring the columns of X first and then taking ``X Xᵀ`` gives the same matrix at half the
    cost. The Gram form is what lets CKA compare representations of different widths.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    return x @ x.T


def cka_from_grams(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741 (the paper's names)
    """CKA from two centred Gram matrices: ⟨K, L⟩ / (‖K‖ ‖L‖), 0 when either is all zero."""
    denominator = np.linalg.norm(k) * np.linalg.norm(l)
    if denominator == 0.0:
        return 0.0
    return float(np.vdot(k, l) / denominator)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al., 2019) between two representations of the same ``n`` items.

    Invariant to orthogonal transforms and isotropic scaling of either side, so it measures
    whether two languages arrange the same sentences the same way, wherever each one sits.
    """
    if len(x) != len(y):
        raise ValueError(f"linear_cka: {len(x)} rows against {len(y)}; the rows must correspond")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    if len(x) >= max(x.shape[1], y.shape[1]):
        # Feature-space form ‖YᵀX‖² / (‖XᵀX‖ ‖YᵀY‖): cheaper when n exceeds the widths.
        cross = np.linalg.norm(y.T @ x) ** 2
        denominator = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
        return 0.0 if denominator == 0.0 else float(cross / denominator)
    return cka_from_grams(x @ x.T, y @ y.T)


def cka_matrix(reps: Sequence[np.ndarray]) -> np.ndarray:
    """CKA between every pair of languages; each Gram matrix is computed once."""
    grams = [centered_gram(x) for x in reps]
    size = len(grams)
    out = np.eye(size)
    for a in range(size):
        for b in range(a + 1, size):
            out[a, b] = out[b, a] = cka_from_grams(grams[a], grams[b])
    return out


def mean_off_diagonal(matrix: np.ndarray) -> float:
    """Mean of the entries off the diagonal (the language pairs, not a language with itself)."""
    mask = ~np.eye(len(matrix), dtype=bool)
    return float(np.nanmean(matrix[mask]))


def _unit_rows(x: np.ndarray, center: bool) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if center:
        x = x - x.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0.0, 1.0, norms)


def retrieval_matrix(reps: Sequence[np.ndarray], center: bool = False) -> np.ndarray:
    """Top-1 cosine retrieval accuracy from language a (row) to language b (column).

    Sentence i of language a retrieves correctly when sentence i of language b is its nearest
    neighbour among all n sentences of b. ``center`` subtracts each language's mean first: a
    language-specific offset then no longer hides that the sentences are otherwise aligned
    (Libovický et al., 2020). The diagonal is NaN: a language against itself says nothing.
    """
    # float32 is plenty to rank cosines and halves the cost of the n × n products; each product
    # serves both directions (rows: a → b, columns: b → a).
    units = [_unit_rows(x, center).astype(np.float32) for x in reps]
    size = len(units)
    out = np.full((size, size), np.nan)
    target = np.arange(len(units[0]))
    for a in range(size):
        for b in range(a + 1, size):
            similarity = units[a] @ units[b].T
            out[a, b] = float(np.mean(np.argmax(similarity, axis=1) == target))
            out[b, a] = float(np.mean(np.argmax(similarity, axis=0) == target))
    return out


def language_id_accuracy(
    reps: Sequence[np.ndarray], seed: int = 0, test_fraction: float = 0.25, max_dims: int = 256
) -> float:
    """Held-out accuracy of a linear probe (logistic regression) that predicts the language.

    Train and test sets are split by *sentence*: all translations of a sentence fall on the same
    side, so the probe cannot pass by recognising content it saw in another language. Features
    are standardised; wider than ``max_dims`` they are first reduced to that many principal
    components (fitted on the training side), which keeps a 4096-wide model at seconds per layer
    and changes nothing that a linear probe on language identity depends on in practice.
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    n = len(reps[0])
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_test = max(1, round(n * test_fraction))
    test_ids, train_ids = order[:n_test], order[n_test:]
    if len(train_ids) == 0:
        raise ValueError("language_id_accuracy: need at least 2 sentences per language")

    def stack(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.concatenate([np.asarray(r, dtype=np.float64)[ids] for r in reps])
        y = np.repeat(np.arange(len(reps)), len(ids))
        return x, y

    x_train, y_train = stack(train_ids)
    x_test, y_test = stack(test_ids)
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    if x_train.shape[1] > max_dims and len(x_train) > max_dims:
        pca = PCA(n_components=max_dims, random_state=seed).fit(x_train)
        x_train, x_test = pca.transform(x_train), pca.transform(x_test)
    # L-BFGS on a few hundred features is many small steps: one thread is as fast on an idle
    # machine and 10-25x faster on a busy one, where BLAS/OpenMP threads spin against each other.
    with threadpool_limits(limits=1):
        probe = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    return float(probe.score(x_test, y_test))


def language_silhouette(
    reps: Sequence[np.ndarray], seed: int = 0, sample_size: int = 5000
) -> float:
    """Silhouette score (cosine distance) with each language as a cluster.

    Above ``sample_size`` points a seeded sample is scored, which keeps the pairwise-distance
    matrix at a few hundred MB for 15 languages × 1,000 sentences.
    """
    from sklearn.metrics import silhouette_score

    x = np.concatenate([np.asarray(r, dtype=np.float64) for r in reps])
    labels = np.repeat(np.arange(len(reps)), len(reps[0]))
    sample = sample_size if len(x) > sample_size else None
    return float(
        silhouette_score(x, labels, metric="cosine", sample_size=sample, random_state=seed)
    )


def language_share(reps: Sequence[np.ndarray]) -> float:
    """Share of the variance of all ``L * n`` representations that the languages' means explain.

    The between-language sum of squares over the total (the R² of predicting a representation
    by its language's mean): 0 when every language has the same mean, 1 when each language is a
    single point. It is what ``--center`` removes, and what a linear language-ID probe and the
    silhouette mostly read.
    """
    x = [np.asarray(r, dtype=np.float64) for r in reps]
    grand = np.concatenate(x).mean(axis=0)
    total = sum(float(((r - grand) ** 2).sum()) for r in x)
    between = sum(len(r) * float(((r.mean(axis=0) - grand) ** 2).sum()) for r in x)
    return 0.0 if total == 0.0 else between / total


def layer_metrics(reps: Sequence[np.ndarray], center: bool = False, seed: int = 0) -> dict:
    """All four metrics for one layer of one model, in analysis.json's shape.

    Each metric has a ``value`` (the headline number) and, for the pairwise ones, the full
    language × language matrix (``null`` on the diagonal of retrieval).
    """
    from threadpoolctl import threadpool_limits

    if len(reps) < 2:
        raise ValueError("layer_metrics: need at least two languages")
    # Threads pay for themselves on large matrices only; on small ones (a tiny model, a few
    # hundred sentences) their start-up and spinning cost more than the work, badly so on a
    # machine that is busy with other jobs.
    small = sum(np.size(r) for r in reps) < SMALL_PROBLEM
    with threadpool_limits(limits=1) if small else contextlib.nullcontext():
        cka = cka_matrix(reps)
        retrieval = retrieval_matrix(reps, center=center)
        lid = language_id_accuracy(reps, seed=seed)
        silhouette = language_silhouette(reps, seed=seed)
    return {
        "cka": {"value": mean_off_diagonal(cka), "pairs": _json_matrix(cka)},
        "retrieval": {"value": mean_off_diagonal(retrieval), "pairs": _json_matrix(retrieval)},
        "lid": {"value": lid},
        "silhouette": {"value": silhouette},
    }


def _json_matrix(matrix: np.ndarray) -> list[list[float | None]]:
    """Rows of floats rounded to 6 places, NaN as None (JSON has no NaN)."""
    return [[None if np.isnan(v) else round(float(v), 6) for v in row] for row in matrix]


def chance_levels(n: int, languages: int) -> dict[str, float]:
    """What each accuracy would be by guessing, to read the numbers against."""
    return {"retrieval": 1.0 / n, "lid": 1.0 / languages}
