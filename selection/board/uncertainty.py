"""How sure a ranking is: a paired bootstrap over the eval clips, with every entry's predictions fixed.

Each leaderboard (language × size) draws ``resamples`` bootstrap samples of its eval clips (with
replacement, seeded by :data:`BOOTSTRAP_SEED` and the board, so reruns give the same figures) and
scores **every entry on the same samples** from the per-clip predictions its scoring stored (one per
evaluation seed: a resampled score is the mean over seeds of the metric on the resampled clips).
From the resampled scores:

- ``ci_low``, ``ci_high``: the 2.5% and 97.5% quantiles of the entry's score (a 95% interval);
- ``rank_low``, ``rank_high``: the ranks it takes in the middle 95% of resamples (rank 1 is best,
  tied scores share the better rank);
- ``tie_group``: entries in score order; an entry starts a new group only when its difference from
  the entry above is significant at 5% (two-sided: fewer than 2.5% of resamples put it level or ahead).

What it covers: the eval set's own sampling (which clips happened to be recorded). What it does not:
the evaluation seeds' variation, which is already in ``score_std``, nor a selection algorithm's own
randomness (a different ``selection_random_seed`` is a different submission).

The work is small: per entry, the clips are grouped by their (true class, prediction per seed)
pattern, so each resample only adds up counts of a few hundred patterns.
"""

from __future__ import annotations

import zlib

import numpy as np

BOOTSTRAP_SEED = 0
# Fewer resamples than this cannot place a 2.5% quantile; more than this adds digits nobody reads while the
# counts (n_clips × resamples bytes) grow: 10,000 on the full published eval set (31,216 clips) is 312 MB.
MIN_RESAMPLES, MAX_RESAMPLES = 200, 10_000

# The resamples one entry's sums are computed on at a time: its temporaries stay a few MB whatever ``resamples`` is.
RESAMPLE_CHUNK = 1000


# Above this, the counts are kept as uint8 (a quarter of the memory) and scipy converts them per entry.
FLOAT32_COUNTS_BYTES = 512 << 20


def resample_counts(n_clips: int, resamples: int, *, board: str) -> np.ndarray:
    """How often each clip is drawn in each resample: shape (n_clips, resamples) (deterministic per board).

    float32 (converted once) where that array fits in 512 MB, else uint8: the per-pattern sums of
    :func:`resampled_scores` are a sparse product with float32 weights, for which scipy would convert
    uint8 counts on every entry (half of an entry's time at 1000 resamples). The counts are the same
    whole numbers in either type, and their sums below 2**24 are exact in float32.
    """
    rng = np.random.default_rng([BOOTSTRAP_SEED, zlib.crc32(board.encode())])
    counts = np.empty((n_clips, resamples), dtype=np.uint8)  # filled column by column: 1-byte strided writes
    for column in range(resamples):
        counts[:, column] = np.minimum(np.bincount(rng.integers(0, n_clips, n_clips), minlength=n_clips), 255)
    return counts.astype(np.float32) if counts.size * 4 <= FLOAT32_COUNTS_BYTES else counts


def _metric(confusion: np.ndarray, metric: str) -> np.ndarray:
    """``metric`` for a stack of confusion matrices (..., K, K), as :mod:`selection.scoring.metrics` defines it."""
    diagonal = np.diagonal(confusion, axis1=-2, axis2=-1).astype(np.float64)
    true_sum = confusion.sum(axis=-1).astype(np.float64)
    predicted_sum = confusion.sum(axis=-2).astype(np.float64)
    if metric == "macro_f1":
        denominator = true_sum + predicted_sum
        f1 = np.divide(2.0 * diagonal, denominator, out=np.zeros_like(diagonal), where=denominator > 0)
        present = denominator > 0
        return f1.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)
    if metric == "balanced_accuracy":
        present = true_sum > 0
        recall = np.divide(diagonal, true_sum, out=np.zeros_like(diagonal), where=present)
        return recall.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)
    raise ValueError(f"unknown metric {metric!r}")


def resampled_scores(
    truth: np.ndarray, predictions: np.ndarray, counts: np.ndarray, *, n_classes: int, metric: str
) -> np.ndarray:
    """One entry's score on every resample: shape (resamples,).

    Parameters
    ----------
    truth : ndarray of shape (n_clips,)
    predictions : ndarray of shape (n_seeds, n_clips)
    counts : ndarray of shape (n_clips, resamples), from :func:`resample_counts`
    """
    import scipy.sparse

    n_seeds, n_clips = predictions.shape
    cells = n_classes * n_classes
    codes = truth[None, :].astype(np.int64) * n_classes + predictions.astype(np.int64)  # (seeds, clips)
    if float(cells) ** n_seeds < 2**62:
        key = np.zeros(n_clips, dtype=np.int64)
        for seed in range(n_seeds):
            key = key * cells + codes[seed]
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        patterns = codes[:, first].T
    else:
        patterns, inverse = np.unique(codes.T, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    grouping = scipy.sparse.csr_matrix(
        (np.ones(n_clips, dtype=np.float32), (inverse, np.arange(n_clips))), shape=(len(patterns), n_clips)
    )
    one_hot = np.zeros((len(patterns), n_seeds * cells))
    for seed in range(n_seeds):
        one_hot[np.arange(len(patterns)), seed * cells + patterns[:, seed]] = 1.0
    scores = np.empty(counts.shape[1])
    for start in range(0, counts.shape[1], RESAMPLE_CHUNK):  # bounded temporaries: (patterns, chunk)
        stop = start + RESAMPLE_CHUNK
        per_pattern = np.asarray(grouping @ counts[:, start:stop], dtype=np.float64)  # (patterns, chunk)
        confusion = (per_pattern.T @ one_hot).reshape(-1, n_seeds, n_classes, n_classes)
        scores[start:stop] = _metric(confusion, metric).mean(axis=1)
    return scores


def _ranks(resampled: np.ndarray) -> np.ndarray:
    """Each entry's rank on each resample: 1 + the entries strictly above it (ties share the better rank).

    One sort per resample, so memory is linear in entries (comparing every pair was quadratic: 1,200
    entries took 1.4 GB at 1,000 resamples).
    """
    ranks = np.empty(resampled.shape, dtype=np.int32)
    for column in range(resampled.shape[1]):
        values = resampled[:, column]
        ascending = np.sort(values)
        ranks[:, column] = 1 + len(values) - np.searchsorted(ascending, values, side="right")
    return ranks


def board_uncertainty(scores: np.ndarray, resampled: np.ndarray) -> list[dict]:
    """Intervals, rank intervals and tie groups for one board's entries.

    Parameters
    ----------
    scores : ndarray of shape (n_entries,)
        The entries' full-eval-set scores (the published ones).
    resampled : ndarray of shape (n_entries, resamples)

    Returns
    -------
    list of dict
        Per entry, in the order given: ``ci_low``, ``ci_high``, ``rank_low``, ``rank_high``, ``tie_group``.
    """
    entries = len(scores)
    ranks = _ranks(resampled)
    order = np.argsort(-scores, kind="stable")
    groups = np.empty(entries, dtype=np.int64)
    group = 1
    for position, entry in enumerate(order):
        if position:
            above = order[position - 1]
            difference = resampled[above] - resampled[entry]
            if scores[above] != scores[entry] and np.mean(difference <= 0) < 0.025:
                group += 1
        groups[entry] = group
    return [
        {
            "ci_low": float(np.quantile(resampled[entry], 0.025)),
            "ci_high": float(np.quantile(resampled[entry], 0.975)),
            "rank_low": int(np.quantile(ranks[entry], 0.025, method="inverted_cdf")),
            "rank_high": int(np.quantile(ranks[entry], 0.975, method="inverted_cdf")),
            "tie_group": int(groups[entry]),
        }
        for entry in range(entries)
    ]
