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
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import pairwise_distances
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from selection.implementations.random_selection import split_budget
from selection.selection import TrainingSet, TrainingSetSelection

TARGET_FRACTION = 0.6


def out_of_sample_probabilities(
    matrix: np.ndarray, labels: np.ndarray, *, folds: int, seed: int, pca_dims: int = 64
) -> np.ndarray:
    """Cross-validated ``predict_proba`` of a logistic regression on a PCA view, shape (N, n_classes)."""
    dims = max(1, min(pca_dims, matrix.shape[0] - 1, matrix.shape[1]))
    space = PCA(n_components=dims, random_state=seed).fit_transform(matrix.astype(np.float64))
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
    targets = [label for label in by_class if label != 0]
    n_nontargets = min(budget - int(round(budget * TARGET_FRACTION)) if targets else budget, len(by_class.get(0, [])))
    rng = np.random.default_rng(seed)
    quota = split_budget(budget - n_nontargets, np.array([len(by_class[t]) for t in targets]), rng)
    picks = [
        pick_medoids(matrix, by_class[t], int(q), seed=seed, max_rows=medoid_sample)
        for t, q in zip(targets, quota)
        if q
    ]
    if n_nontargets:
        picks.append(pick_medoids(matrix, by_class[0], n_nontargets, seed=seed, max_rows=medoid_sample))
    return np.concatenate(picks) if picks else np.array([], dtype=np.int64)


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
