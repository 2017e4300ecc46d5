"""Class-balanced random selection: the simplest honest baseline."""

from __future__ import annotations

import numpy as np

from selection.selection import TrainingSet, TrainingSetSelection


def split_budget(budget: int, available: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Share ``budget`` clips as evenly as possible over classes holding ``available`` clips.

    A class never gets more than it has; what it cannot take goes to the others.
    Ties in the remainder are broken by ``rng``.
    """
    quota = np.zeros(len(available), dtype=np.int64)
    remaining = min(int(budget), int(available.sum()))
    while remaining > 0:
        open_classes = np.flatnonzero(quota < available)
        share, extra = divmod(remaining, len(open_classes))
        lucky = set(rng.permutation(open_classes)[:extra].tolist())
        for c in open_classes:
            give = min(share + (c in lucky), available[c] - quota[c])
            quota[c] += give
            remaining -= give
    return quota


def select_class_balanced(labels: np.ndarray, budget: int, *, seed: int) -> np.ndarray:
    """Row indices of a uniformly random, class-balanced sample of at most ``budget`` rows.

    Parameters
    ----------
    labels : ndarray of shape (N,)
        Class id of each row.
    budget : int
        The most rows to return.
    seed : int
        Seed of the only random generator used.

    Returns
    -------
    ndarray of shape (<= budget,)
        Row indices, grouped by class id.
    """
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    members = [np.flatnonzero(labels == c) for c in classes]
    quota = split_budget(budget, np.array([len(m) for m in members]), rng)
    picks = [rng.choice(m, size=q, replace=False) for m, q in zip(members, quota) if q]
    return np.concatenate(picks) if picks else np.array([], dtype=np.int64)


class RandomSelection(TrainingSetSelection):
    """Class-balanced random selection, seeded by ``selection_random_seed``."""

    def select(self) -> TrainingSet:
        rows = select_class_balanced(self.pool.labels, self.train_size, seed=self.random_seed)
        return self.pool.to_training_set(rows)
