"""Swap flagged, harmful or redundant picks for better unpicked pool clips, under the report's own estimate.

Greedy and budget-neutral: for each pick to replace (suspect, then badly cut, then harmful,
then redundant picks, each kind most harmful first), the unpicked candidates of the same
label (never the clips the estimate scores on) are ranked by how clean they look (the share
of their nearest pool clips that carry their label) and, among equally clean ones, by how
far they are from the picks already made (new coverage). The best few are each tried in the
pick's place; the swap that scores best is kept if it does not lower the estimate, else the
pick stays.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from selection.diagnosis.estimate import Estimate, score_rows
from selection.diagnosis.evidence import nearest_labels, squared_norms

TRIED_PER_SWAP = 4


def ranked_candidates(pool, rows: np.ndarray, label: int, candidates: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """Unpicked ``candidates`` of ``label``, cleanest first (neighbour agreement), then farthest from ``rows``."""
    own = candidates[pool.labels[candidates] == label]
    if len(own) == 0:
        return own
    rng = np.random.default_rng(label)
    own = rng.permutation(own)[:600]
    agreement = (nearest_labels(pool.matrix, pool.labels, own, norms=norms) == label).mean(axis=1)
    same = rows[pool.labels[rows] == label]
    if len(same):
        picks = pool.matrix[same].astype(np.float64)
        block = pool.matrix[own].astype(np.float64)
        distance = np.sqrt(
            np.maximum((block**2).sum(1)[:, None] + (picks**2).sum(1)[None, :] - 2 * block @ picks.T, 0)
        ).min(axis=1)
    else:
        distance = np.zeros(len(own))
    return own[np.lexsort((-distance, -agreement))]


def repair(
    estimate: Estimate,
    pool,
    rows: np.ndarray,
    order: list[int],
    *,
    limit: int,
    baseline: float,
    in_file_order: Callable[[np.ndarray], np.ndarray],
    n_jobs: int = -1,
    progress: Callable = iter,
) -> tuple[np.ndarray, list[dict], float]:
    """Up to ``limit`` swaps, trying the picks at ``order`` (indices into ``rows``) in turn.

    ``in_file_order`` puts a set of rows in the order ``evaluate`` would train on them once written
    as a ``train.json``, so each trial's estimate is the one the written file gets.
    Returns (the repaired rows, one record per pick tried, the final estimate).
    """
    rows = rows.copy()
    candidates = estimate.candidates.copy()
    current = baseline
    records = []
    norms = squared_norms(pool.matrix)
    for index in progress(order[:limit]):
        label = int(pool.labels[rows[index]])
        ranked = ranked_candidates(pool, np.delete(rows, index), label, candidates, norms)[:TRIED_PER_SWAP]
        best_score, best_row = -np.inf, None
        for candidate in ranked:
            trial = rows.copy()
            trial[index] = candidate
            figures = score_rows(estimate, pool, in_file_order(trial), n_jobs=n_jobs)
            if figures is not None and figures["score"] > best_score:
                best_score, best_row = figures["score"], int(candidate)
        record = {"removed": pool.ids[rows[index]], "label": estimate.class_names[label], "tried": len(ranked)}
        if best_row is not None and best_score >= current:
            record.update(added=pool.ids[best_row], score_after=round(best_score, 6), kept=True)
            rows[index] = best_row
            candidates = candidates[candidates != best_row]
            current = best_score
        else:
            record.update(added=None, score_after=round(current, 6), kept=False)
        records.append(record)
    return rows, records, current
