"""libsvm's probability estimates from its decision values, bit for bit, by a compiled loop.

``SVC.predict_proba`` in the pinned scikit-learn 1.8 (``svm_predict_probability`` in its
``svm.cpp``) turns each clip's one-vs-one decision values into class probabilities in two steps:

- per class pair (i, j), in libsvm's pair order, Platt's sigmoid with the seed's ``probA_`` and
  ``probB_``: ``f = d * A + B``, then ``exp(-f) / (1.0 + exp(-f))`` if ``f >= 0``, else
  ``1.0 / (1 + exp(f))``, clipped to ``[1e-7, 1 - 1e-7]`` by libsvm's ``min`` and ``max``; ``r[i][j]`` is
  that value and ``r[j][i]`` one minus it;
- ``multiclass_probability`` (Wu, Lin and Weng's second method) on ``r``, for every number of
  classes (two included): ``Q`` from ``r``, then at most ``max(100, k)`` rounds that stop once every
  ``|Qp[t] - pQp|`` is below ``0.005 / k``, each round updating ``p``, ``Qp`` and ``pQp`` in place.

This module performs the same IEEE double operations in the same order: the same products, sums and
divisions (numba neither reorders nor fuses them into multiply-adds without ``fastmath``, which is
not set; ``error_model="numpy"`` gives C's IEEE division instead of Python's exception, which no
input here reaches), ``math.exp``, which numba compiles to a call of the C library's ``exp`` as
libsvm's is, and ``abs`` for ``fabs``. ``exp(-f)``, which libsvm evaluates twice, is evaluated once:
the C library's ``exp`` returns the same value for the same argument. The result is therefore the
same bits, not an approximation; the caller still compares a few rows of every seed with libsvm's
own (:func:`selection.scoring.fast_predict.predict_shared`) and uses libsvm if they differ.

Rows are coupled :data:`LANES` at a time, one per lane, so that a round's divisions run as SIMD
instructions (a vector division rounds each lane as the scalar one does). libsvm ends a row's rounds
at its own break; here a row that has met the stopping rule takes a step of exactly ``0.0`` in the
later rounds of its batch, which changes none of its values: ``p[t] + 0.0``, ``x / (1 + 0.0)`` and
``pQp + 0.0 * (finite)`` are the values themselves (a zero could only change its sign, which no later
sum or comparison sees), and each round's ``Qp`` and ``pQp`` are recomputed from ``p``, so the row
meets the rule again and keeps the ``p`` libsvm returns. Lanes past the last row hold zeros and are
never read.

The vote then adds the logistic regression's probabilities and takes the first index of the
largest sum, as ``np.argmax`` does (no entry is NaN: each is a sum of two probabilities), so a
clip's probabilities never leave the compiled loop. Ten seeds' probabilities and votes for the
31,216 clips of the default experiment take about 0.09 s on one core, against 0.28 s for libsvm's
loop; compiling costs about two seconds, once per process.
"""

from __future__ import annotations

import numpy as np

LANES = 64  # rows coupled together, one per SIMD lane of the compiled rounds
_compiled = None


def _compile():
    """The compiled loop (compiled on first use)."""
    global _compiled
    if _compiled is not None:
        return _compiled
    import math

    from numba import njit

    options = {"nogil": True, "error_model": "numpy"}

    @njit(**options)
    def start_rounds(r, q, p, k, lanes):
        for t in range(k):
            for lane in range(lanes):
                p[t, lane] = 1.0 / k
                q[t, t, lane] = 0.0
            for j in range(t):
                for lane in range(lanes):
                    q[t, t, lane] += r[j, t, lane] * r[j, t, lane]
                    q[t, j, lane] = q[j, t, lane]
            for j in range(t + 1, k):
                for lane in range(lanes):
                    q[t, t, lane] += r[j, t, lane] * r[j, t, lane]
                    q[t, j, lane] = -r[j, t, lane] * r[t, j, lane]

    @njit(**options)
    def largest_errors(q, p, qp, pqp, error, k, lanes):
        for lane in range(lanes):
            pqp[lane] = 0.0
            error[lane] = 0.0
        for t in range(k):
            for lane in range(lanes):
                qp[t, lane] = 0.0
            for j in range(k):
                for lane in range(lanes):
                    qp[t, lane] += q[t, j, lane] * p[j, lane]
            for lane in range(lanes):
                pqp[lane] += p[t, lane] * qp[t, lane]
        for t in range(k):
            for lane in range(lanes):
                e = abs(qp[t, lane] - pqp[lane])
                error[lane] = e if e > error[lane] else error[lane]

    @njit(**options)
    def update(q, p, qp, pqp, diff, active, k, lanes):
        for t in range(k):
            for lane in range(lanes):
                step = (-qp[t, lane] + pqp[lane]) / q[t, t, lane]
                diff[lane] = step if active[lane] else 0.0
            for lane in range(lanes):
                d = diff[lane]
                p[t, lane] += d
                pqp[lane] = (pqp[lane] + d * (d * q[t, t, lane] + 2 * qp[t, lane])) / (1 + d) / (1 + d)
            for j in range(k):
                for lane in range(lanes):
                    qp[j, lane] = (qp[j, lane] + diff[lane] * q[t, j, lane]) / (1 + diff[lane])
                    p[j, lane] /= 1 + diff[lane]

    @njit(**options)
    def couple(decision, prob_a, prob_b, logistic_proba, votes, probabilities):
        n_rows = decision.shape[0]
        k = logistic_proba.shape[1]
        lanes = LANES
        r = np.empty((k, k, lanes))
        q = np.empty((k, k, lanes))
        qp = np.empty((k, lanes))
        p = np.empty((k, lanes))
        pqp = np.empty(lanes)
        diff = np.empty(lanes)
        error = np.empty(lanes)
        active = np.empty(lanes, dtype=np.bool_)
        max_iter = max(100, k)
        eps = 0.005 / k
        min_prob = 1e-7
        keep = probabilities.shape[0] > 0
        for seed in range(prob_a.shape[0]):
            for first in range(0, n_rows, lanes):
                used = min(lanes, n_rows - first)
                pair = 0
                for i in range(k):
                    for j in range(i + 1, k):
                        a, b = prob_a[seed, pair], prob_b[seed, pair]
                        for lane in range(lanes):
                            f = (decision[first + lane, pair] if lane < used else 0.0) * a + b
                            if f >= 0:
                                e = math.exp(-f)
                                sigmoid = e / (1.0 + e)
                            else:
                                sigmoid = 1.0 / (1 + math.exp(f))
                            clipped = sigmoid if sigmoid > min_prob else min_prob  # libsvm's max(sigmoid, min_prob)
                            clipped = clipped if clipped < 1 - min_prob else 1 - min_prob  # then min(., 1 - min_prob)
                            r[i, j, lane] = clipped
                            r[j, i, lane] = 1 - clipped
                        pair += 1
                start_rounds(r, q, p, k, lanes)
                for lane in range(lanes):
                    active[lane] = lane < used
                for _ in range(max_iter):
                    largest_errors(q, p, qp, pqp, error, k, lanes)
                    left = 0
                    for lane in range(lanes):
                        if error[lane] < eps:
                            active[lane] = False  # libsvm's break: from now on its diff is 0
                        left += active[lane]
                    if left == 0:
                        break
                    update(q, p, qp, pqp, diff, active, k, lanes)
                for lane in range(used):
                    row = first + lane
                    if keep:
                        for c in range(k):
                            probabilities[seed, row, c] = p[c, lane]
                    best = 0
                    best_sum = p[0, lane] + logistic_proba[row, 0]
                    for c in range(1, k):
                        total = p[c, lane] + logistic_proba[row, c]
                        if total > best_sum:
                            best = c
                            best_sum = total
                    votes[seed, row] = best

    _compiled = couple
    return couple


def _run(decision, prob_a, prob_b, logistic_proba, keep: bool) -> tuple[np.ndarray, np.ndarray]:
    decision = np.ascontiguousarray(decision, dtype=np.float64)
    prob_a = np.ascontiguousarray(np.atleast_2d(prob_a), dtype=np.float64)
    prob_b = np.ascontiguousarray(np.atleast_2d(prob_b), dtype=np.float64)
    logistic_proba = np.ascontiguousarray(logistic_proba, dtype=np.float64)
    votes = np.empty((len(prob_a), len(decision)), dtype=np.int64)
    shape = (len(prob_a), len(decision), logistic_proba.shape[1]) if keep else (0, 0, 0)
    probabilities = np.empty(shape)
    _compile()(decision, prob_a, prob_b, logistic_proba, votes, probabilities)
    return votes, probabilities


def seed_votes(decision: np.ndarray, prob_a: np.ndarray, prob_b: np.ndarray, logistic_proba: np.ndarray) -> np.ndarray:
    """Each seed's vote: the argmax of libsvm's probabilities plus the logistic regression's.

    Parameters
    ----------
    decision : ndarray of shape (n, n_pairs)
        libsvm's one-vs-one decision values (one fit, shared by the seeds).
    prob_a, prob_b : ndarray of shape (n_seeds, n_pairs)
        Each seed's fitted ``probA_`` and ``probB_``.
    logistic_proba : ndarray of shape (n, n_classes)

    Returns
    -------
    ndarray of shape (n_seeds, n)
        Encoded class ids, as ``np.argmax(svc_proba + logistic_proba, axis=1)`` per seed.
    """
    return _run(decision, prob_a, prob_b, logistic_proba, keep=False)[0]


def seed_probabilities(decision: np.ndarray, prob_a: np.ndarray, prob_b: np.ndarray, n_classes: int) -> np.ndarray:
    """libsvm's probabilities for each seed, shape (n_seeds, n, n_classes) (what the check compares)."""
    return _run(decision, prob_a, prob_b, np.zeros((len(decision), n_classes)), keep=True)[1]
