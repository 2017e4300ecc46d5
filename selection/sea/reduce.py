"""The dimensionality reduction of the teacher's embeddings: PCA or UMAP, fitted on the subset, applied to all.

- ``pca``: scikit-learn's PCA (centred, not whitened), so the projection keeps the teacher's
  geometry in its ``dims`` main directions; its explained variance (the share of the teacher's
  variance on the subset that the ``dims`` components keep) is reported.
- ``umap``: ``umap-learn``'s UMAP (``n_neighbors=15``, ``min_dist=0.1``, seeded), a non-linear
  embedding that keeps neighbourhoods rather than distances; it has no explained variance. It is an
  optional package: ``pip install umap-learn``.

The projected targets are divided by one scale (the root of their mean variance per dimension over
the training split) so that the student regresses values of unit size; the scale is recorded. PCA's
projections are centred by construction (on the subset's mean); UMAP's are not (its coordinates sit
around arbitrary values, about 10 times their spread), so they are first centred on the training
clips' mean (:func:`target_offset`, recorded too): a student that starts near zero would otherwise
begin with errors that make its first steps diverge. A translation changes no distance between clips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selection.inputs.errors import BadInputError

METHODS = ("pca", "umap")


@dataclass
class Reduction:
    """A fitted reduction: ``transform(vectors) -> (n, dims)`` and what is reported about it."""

    method: str
    dims: int
    model: object
    explained_variance: float | None

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.transform(np.asarray(vectors, dtype=np.float64)), dtype=np.float32)


def require_umap() -> None:
    """One line saying how to install ``umap-learn`` when it is missing."""
    try:
        from umap import UMAP  # noqa: F401  (a leftover empty ``umap`` folder imports, but has no UMAP)
    except ImportError:
        raise BadInputError(
            "command line: --reduce umap: needs the umap-learn package, which is not installed; "
            "pip install umap-learn (or use --reduce pca)"
        ) from None


def fit_reduction(vectors: np.ndarray, *, method: str, dims: int, seed: int) -> Reduction:
    """Fit ``method`` with ``dims`` outputs on ``vectors`` (the subset's teacher embeddings)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if method == "pca":
        from sklearn.decomposition import PCA

        model = PCA(n_components=dims, random_state=seed).fit(vectors)
        return Reduction("pca", dims, model, float(model.explained_variance_ratio_.sum()))
    if method == "umap":
        require_umap()
        import umap

        model = umap.UMAP(n_components=dims, n_neighbors=min(15, len(vectors) - 1), min_dist=0.1, random_state=seed)
        model.fit(vectors)
        return Reduction("umap", dims, model, None)
    raise ValueError(f"unknown reduction {method!r}")


def target_scale(projected: np.ndarray) -> float:
    """The root of the mean variance per dimension of ``projected`` (1 where it is 0)."""
    scale = float(np.sqrt(np.mean(np.var(np.asarray(projected, dtype=np.float64), axis=0))))
    return scale if scale > 0 else 1.0


def target_offset(reduction: Reduction, projected_train: np.ndarray) -> np.ndarray:
    """What is subtracted from the projections before scaling: zeros for PCA, the training clips' mean for UMAP."""
    if reduction.method == "pca":
        return np.zeros(projected_train.shape[1], dtype=np.float32)
    return np.asarray(projected_train, dtype=np.float64).mean(axis=0).astype(np.float32)
