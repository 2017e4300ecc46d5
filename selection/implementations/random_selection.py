"""Class-balanced random selection: the simplest honest baseline."""

from __future__ import annotations

from collections.abc import Callable

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


def pick_per_class(
    rows_by_class: dict[int, np.ndarray],
    budget: int,
    n_nontargets: int,
    pick: Callable[[np.ndarray, int], np.ndarray],
    *,
    seed: int,
) -> np.ndarray:
    """Row indices: ``n_nontargets`` picks from class 0, the rest of ``budget`` shared over the targets.

    ``n_nontargets`` is capped by the nontarget rows available; the targets' share is split
    by :func:`split_budget` (seeded by ``seed``). ``pick(rows, count)`` chooses ``count`` of
    ``rows``; targets come first, in ``rows_by_class`` order, then the nontargets.
    """
    n_nontargets = min(n_nontargets, len(rows_by_class.get(0, [])))
    targets = [label for label in rows_by_class if label != 0]
    rng = np.random.default_rng(seed)
    quota = split_budget(budget - n_nontargets, np.array([len(rows_by_class[t]) for t in targets]), rng)
    picks = [pick(rows_by_class[t], int(q)) for t, q in zip(targets, quota) if q]
    if n_nontargets:
        picks.append(pick(rows_by_class[0], n_nontargets))
    return np.concatenate(picks) if picks else np.array([], dtype=np.int64)


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
