"""The benchmark's cross-validation baseline.

60% of the budget goes to target clips and 40% to nontarget clips. A nested
``StratifiedShuffleSplit`` draws ``cv_target_splits`` target subsets (stratified
by word, so each word gets a share proportional to its pool size) and, for each,
``cv_nontarget_splits`` nontarget subsets: 10 x 10 = 100 candidates by default.
Each candidate trains the frozen classifier (seeded by ``selection_random_seed``)
and is scored, in the configured metric, on the rest of the allowed pool; the
best candidate is kept.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

from selection.progress import report_progress
from selection.scoring.exact_kernel import PoolDistances, available
from selection.scoring.fast_predict import predict_shared
from selection.scoring.metrics import METRICS, confusion_counts
from selection.selection import TrainingSet, TrainingSetSelection

TARGET_FRACTION = 0.6
SHARED_DISTANCES_MIN_ROWS = 2000  # below this the kernel pass is cheaper than compiling the shared one (~1 s)


def _subset_splitter(labels: np.ndarray, size: int, n_splits: int, seed: int):
    """Stratified when every class can appear on both sides, plain shuffling otherwise."""
    counts = np.unique(labels, return_counts=True)[1]
    stratify = len(counts) > 1 and counts.min() >= 2 and min(size, len(labels) - size) >= len(counts)
    splitter_class = StratifiedShuffleSplit if stratify else ShuffleSplit
    return splitter_class(n_splits=n_splits, train_size=size, random_state=seed)


def select_by_cross_validation(
    matrix: np.ndarray,
    labels: np.ndarray,
    budget: int,
    *,
    seed: int,
    metric: str = "macro_f1",
    target_splits: int = 10,
    nontarget_splits: int = 10,
) -> np.ndarray:
    """Row indices of the best of ``target_splits * nontarget_splits`` random candidates.

    Parameters
    ----------
    matrix : ndarray of shape (N, D)
    labels : ndarray of shape (N,)
        Class ids; 0 is nontarget.
    budget : int
        The most rows to return.
    seed : int
        Seeds the splits and the frozen classifier.
    metric : {'macro_f1', 'balanced_accuracy'}, default='macro_f1'
        How candidates are scored on the held-out pool.
    target_splits, nontarget_splits : int, default=10
        Number of target and nontarget subsets tried.

    Returns
    -------
    ndarray
        Row indices: the chosen targets, then the chosen nontargets.
    """
    target_rows = np.flatnonzero(labels != 0)
    nontarget_rows = np.flatnonzero(labels == 0)
    n_targets = min(int(budget * TARGET_FRACTION), len(target_rows))
    n_nontargets = min(int(budget * (1 - TARGET_FRACTION)), len(nontarget_rows))
    if n_targets in (0, len(target_rows)) or n_nontargets in (0, len(nontarget_rows)):
        raise ValueError(
            f"budget {budget} leaves no held-out clips or no clips to pick "
            f"({len(target_rows)} target and {len(nontarget_rows)} nontarget clips in the pool)"
        )
    n_classes = int(labels.max()) + 1
    target_labels = labels[target_rows]
    nontarget_labels = labels[nontarget_rows]
    target_splitter = _subset_splitter(target_labels, n_targets, target_splits, seed)
    best_score, best = -np.inf, None
    candidates = (
        (t_train, t_held, n_train, n_held)
        for t_train, t_held in target_splitter.split(target_rows, target_labels)
        for n_train, n_held in _subset_splitter(nontarget_labels, n_nontargets, nontarget_splits, seed).split(
            nontarget_rows, nontarget_labels
        )
    )
    # the candidates share their support vectors' squared distances to the pool (exact_kernel)
    pool_distances = PoolDistances(matrix) if len(matrix) >= SHARED_DISTANCES_MIN_ROWS and available() else None
    for t_train, t_held, n_train, n_held in report_progress(
        candidates, desc="cross-validation candidates", unit="fits", total=target_splits * nontarget_splits
    ):
        train_rows = np.concatenate([target_rows[t_train], nontarget_rows[n_train]])
        held_rows = np.concatenate([target_rows[t_held], nontarget_rows[n_held]])
        # the frozen classifier's own predictions (predict_shared is bit-identical to fitting the
        # VotingClassifier and calling predict), its kernel pass on every core
        if pool_distances is None:
            (predicted,) = predict_shared(matrix[train_rows], labels[train_rows], matrix[held_rows], [seed], n_jobs=-1)
        else:
            (predicted,) = predict_shared(
                matrix[train_rows], labels[train_rows], None, [seed], n_jobs=-1,
                distances=(pool_distances, train_rows, held_rows),
            )  # fmt: skip
        counts = confusion_counts(labels[held_rows], predicted, n_classes)
        score = METRICS[metric](counts)
        if score > best_score:
            best_score, best = score, train_rows
    return best


class CrossValidationSelection(TrainingSetSelection):
    """The benchmark's nested cross-validation baseline (see the module docstring)."""

    def select(self) -> TrainingSet:
        rows = select_by_cross_validation(
            self.pool.matrix,
            self.pool.labels,
            self.train_size,
            seed=self.random_seed,
            metric=self.config.get("metric", "macro_f1"),
            target_splits=int(self.config.get("cv_target_splits", 10)),
            nontarget_splits=int(self.config.get("cv_nontarget_splits", 10)),
        )
        return self.pool.to_training_set(rows)
