"""The pool's 2-D map: a PCA fitted on a representative sample of the pool, every pick projected onto it.

Fitting on a sample (as the SEA pipeline fits its dimensionality reduction on a subset) keeps
the map cheap and the page small; the sample is drawn with a fixed seed in the pool's class
shares, so the map of one experiment is the same for every selection.
"""

from __future__ import annotations

import numpy as np

from selection.diagnosis.memo import per_pool

MAP_SAMPLE = 2500
MAP_SEED = 7


def pool_map(pool_matrix: np.ndarray, picked_rows: np.ndarray) -> dict:
    """Coordinates of a pool sample and of the picks on the sample's first two principal components.

    Returns
    -------
    dict
        ``sample_rows`` (pool rows drawn), ``sample`` (n, 2), ``picks`` (n_picks, 2), and
        ``explained_variance`` (the share of variance each axis shows).
    """
    pool_part = per_pool(pool_matrix, "map", lambda: _sample_map(pool_matrix))
    return {
        **{key: value for key, value in pool_part.items() if key not in ("mean", "axes")},
        "picks": (pool_matrix[picked_rows].astype(np.float64) - pool_part["mean"]) @ pool_part["axes"].T,
    }


def _sample_map(pool_matrix: np.ndarray) -> dict:
    """The map's sample, its mean and axes: the same for every selection of a pool."""
    rng = np.random.default_rng(MAP_SEED)
    sample_rows = np.sort(rng.choice(len(pool_matrix), size=min(MAP_SAMPLE, len(pool_matrix)), replace=False))
    sample = pool_matrix[sample_rows].astype(np.float64)
    mean = sample.mean(axis=0)
    _, singular, components = np.linalg.svd(sample - mean, full_matrices=False)
    axes = components[:2]
    # a fixed orientation: each axis points where its largest loading is positive
    axes *= np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])[:, None]
    variance = singular**2
    return {
        "sample_rows": sample_rows,
        "sample": (sample - mean) @ axes.T,
        "mean": mean,
        "axes": axes,
        "explained_variance": (variance[:2] / max(variance.sum(), 1e-12)).tolist(),
    }
