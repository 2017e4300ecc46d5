"""The representative subset the reduction is fitted on: random, k-means or k-DPP sampling of teacher embeddings.

- ``random``: a uniform sample without replacement; costs nothing.
- ``kmeans``: k-means with ``size`` clusters on the (standardised) teacher embeddings, then the clip
  nearest each centre; covers the embedding space's dense regions in proportion. Costs
  O(clips × size × dims) per iteration (seconds for thousands of clips).
- ``dpp``: a greedy MAP approximation of a k-DPP with a Gaussian kernel (the incremental Cholesky
  algorithm of Chen, Zhang and Zhou, NeurIPS 2018): each next clip is the one whose kernel row is
  least explained by those already chosen, so the subset is diverse and spread to the edges of the
  space. Costs O(clips × size²) time and clips × size × 8 bytes (about 55 MB for 7,000 clips and
  1,000 picks).

Every method is deterministic for its seed and returns sorted row indices.
"""

from __future__ import annotations

import numpy as np

METHODS = ("random", "kmeans", "dpp")


def _standardised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    spread = vectors.std(axis=0)
    return (vectors - vectors.mean(axis=0)) / np.where(spread > 0, spread, 1.0)


def random_subset(vectors: np.ndarray, size: int, *, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng([seed, 1]).choice(len(vectors), size=size, replace=False))


def kmeans_subset(vectors: np.ndarray, size: int, *, seed: int) -> np.ndarray:
    """The clip nearest each of ``size`` k-means centres (a centre's second-nearest when its nearest is taken)."""
    from sklearn.cluster import KMeans

    points = _standardised(vectors)
    centres = KMeans(n_clusters=size, n_init=1, max_iter=100, random_state=seed).fit(points).cluster_centers_
    distances = (points**2).sum(axis=1)[:, None] + (centres**2).sum(axis=1)[None, :] - 2.0 * points @ centres.T
    chosen: list[int] = []
    taken = np.zeros(len(points), dtype=bool)
    for centre in range(size):
        pick = int(np.argmin(np.where(taken, np.inf, distances[:, centre])))
        taken[pick] = True
        chosen.append(pick)
    return np.sort(np.asarray(chosen))


def dpp_subset(vectors: np.ndarray, size: int, *, seed: int) -> np.ndarray:
    """Greedy k-DPP MAP with the kernel exp(−‖x − y‖² / median ‖x − y‖²) on standardised vectors."""
    points = _standardised(vectors)
    n = len(points)
    rng = np.random.default_rng([seed, 3])
    probe = points[rng.choice(n, size=min(n, 500), replace=False)]
    squared = ((probe[:, None, :] - probe[None, :, :]) ** 2).sum(axis=2)
    scale = float(np.median(squared[squared > 0])) if np.any(squared > 0) else 1.0
    norms = (points**2).sum(axis=1)

    def kernel_row(index: int) -> np.ndarray:
        distance = norms + norms[index] - 2.0 * points @ points[index]
        return np.exp(-np.maximum(distance, 0.0) / scale)

    factors = np.zeros((size, n))
    gains = np.ones(n)  # the kernel's diagonal: exp(0)
    chosen = [int(rng.integers(n))]  # all gains are equal at first: the seed picks the first clip
    for step in range(size - 1):
        last = chosen[-1]
        row = kernel_row(last)
        residual = (row - factors[:step].T @ factors[:step, last]) / np.sqrt(max(gains[last], 1e-12))
        factors[step] = residual
        gains = gains - residual**2
        gains[chosen] = -np.inf
        chosen.append(int(np.argmax(gains)))
    return np.sort(np.asarray(chosen))


def sample_subset(vectors: np.ndarray, size: int, *, method: str, seed: int) -> np.ndarray:
    """``size`` sorted row indices of ``vectors`` chosen by ``method`` (see the module docstring)."""
    if method == "random":
        return random_subset(vectors, size, seed=seed)
    if method == "kmeans":
        return kmeans_subset(vectors, size, seed=seed)
    if method == "dpp":
        return dpp_subset(vectors, size, seed=seed)
    raise ValueError(f"unknown sampling method {method!r}")
