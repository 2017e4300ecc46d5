"""The benchmark's data-cleaning baseline: confident-learning label issues, then per-class medoids.

1. Out-of-sample predicted probabilities for every pool clip: ``cleanlab_folds`` (default 5)
   stratified folds of a logistic regression on the embeddings reduced by PCA to
   ``cleanlab_pca_dims`` (default 64) dimensions (on all 1024 it takes minutes).
2. ``cleanlab.filter.find_label_issues`` flags the clips whose given label disagrees with
   the confident joint; a further ``cleanlab_extra_fraction`` (default 0.1) of each class,
   those with the lowest ``cleanlab.rank.get_label_quality_scores``, is dropped as well.
3. The budget is split as in the cross-validation baseline: 60% to targets (equally over
   the words), 40% to nontargets. Within each class the picks are the k-medoids
   (``kmedoids.fasterpam`` on Euclidean distances) of the remaining clips; a class with more
   than ``cleanlab_medoid_sample`` (default 3000) clips is first subsampled, so the distance
   matrix stays small.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import pairwise_distances
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from selection.implementations.coverage_selection import pca_view
from selection.implementations.cross_validation_selection import TARGET_FRACTION
from selection.implementations.random_selection import pick_per_class
from selection.selection import TrainingSet, TrainingSetSelection


def out_of_sample_probabilities(
    matrix: np.ndarray, labels: np.ndarray, *, folds: int, seed: int, pca_dims: int = 64
) -> np.ndarray:
    """Cross-validated ``predict_proba`` of a logistic regression on a PCA view, shape (N, n_classes)."""
    space = pca_view(matrix, pca_dims, seed=seed)
    counts = np.bincount(labels)
    folds = max(2, min(folds, int(counts[counts > 0].min())))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cross_val_predict(LogisticRegression(max_iter=500), space, labels, cv=splitter, method="predict_proba")


def clean_rows(labels: np.ndarray, probabilities: np.ndarray, *, extra_fraction: float) -> np.ndarray:
    """Rows that survive cleanlab's label-issue filter and the extra lowest-quality cut."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        issues = find_label_issues(labels, probabilities)
        quality = get_label_quality_scores(labels, probabilities)
    keep = ~issues
    for label in np.unique(labels):
        members = np.flatnonzero((labels == label) & keep)
        n_drop = int(extra_fraction * np.sum(labels == label))
        if n_drop and len(members) > n_drop:
            keep[members[np.argsort(quality[members], kind="stable")[:n_drop]]] = False
    return np.flatnonzero(keep)


def pick_medoids(matrix: np.ndarray, rows: np.ndarray, count: int, *, seed: int, max_rows: int) -> np.ndarray:
    """``count`` of ``rows`` that are the k-medoids of those rows (a seeded subsample of them if many)."""
    import kmedoids

    if count >= len(rows):
        return rows
    rng = np.random.default_rng(seed)
    if len(rows) > max_rows:
        rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
    distances = pairwise_distances(matrix[rows].astype(np.float64))
    result = kmedoids.fasterpam(distances, count, random_state=seed, n_cpu=1)
    return rows[np.asarray(result.medoids, dtype=np.int64)]


def select_cleanlab_medoids(
    matrix: np.ndarray,
    labels: np.ndarray,
    budget: int,
    *,
    seed: int,
    folds: int = 5,
    extra_fraction: float = 0.1,
    medoid_sample: int = 3000,
    pca_dims: int = 64,
) -> np.ndarray:
    """Row indices of the cleaning baseline's selection (module docstring), at most ``budget``.

    Parameters
    ----------
    matrix : ndarray of shape (N, D)
    labels : ndarray of shape (N,)
        Class ids; 0 is nontarget.
    budget : int
    seed : int
    folds, extra_fraction, medoid_sample, pca_dims
        See the module docstring.

    Returns
    -------
    ndarray of shape (<= budget,)
    """
    probabilities = out_of_sample_probabilities(matrix, labels, folds=folds, seed=seed, pca_dims=pca_dims)
    kept = clean_rows(labels, probabilities, extra_fraction=extra_fraction)
    by_class = {label: kept[labels[kept] == label] for label in np.unique(labels)}
    by_class = {label: rows if len(rows) else np.flatnonzero(labels == label) for label, rows in by_class.items()}
    has_targets = any(label != 0 for label in by_class)
    return pick_per_class(
        by_class,
        budget,
        budget - int(round(budget * TARGET_FRACTION)) if has_targets else budget,
        lambda rows, count: pick_medoids(matrix, rows, count, seed=seed, max_rows=medoid_sample),
        seed=seed,
    )


class CleanlabSelection(TrainingSetSelection):
    """The data-cleaning baseline: cleanlab label issues removed, then per-class medoids."""

    def select(self) -> TrainingSet:
        rows = select_cleanlab_medoids(
            self.pool.matrix,
            self.pool.labels,
            self.train_size,
            seed=self.random_seed,
            folds=int(self.config.get("cleanlab_folds", 5)),
            extra_fraction=float(self.config.get("cleanlab_extra_fraction", 0.1)),
            medoid_sample=int(self.config.get("cleanlab_medoid_sample", 3000)),
            pca_dims=int(self.config.get("cleanlab_pca_dims", 64)),
        )
        return self.pool.to_training_set(rows)
