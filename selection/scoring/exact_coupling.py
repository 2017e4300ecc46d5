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

Rows are coupled ``compiled_loops.LANES`` (64) at a time, one per lane, so that a round's divisions run as SIMD
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
loop; compiling costs about two seconds, once per machine (numba's cache keeps the machine code).
"""

from __future__ import annotations

import numpy as np


def _run(decision, prob_a, prob_b, logistic_proba, keep: bool) -> tuple[np.ndarray, np.ndarray]:
    from selection.scoring.compiled_loops import couple  # imports numba: compiled, or loaded from its cache, once

    decision = np.ascontiguousarray(decision, dtype=np.float64)
    prob_a = np.ascontiguousarray(np.atleast_2d(prob_a), dtype=np.float64)
    prob_b = np.ascontiguousarray(np.atleast_2d(prob_b), dtype=np.float64)
    logistic_proba = np.ascontiguousarray(logistic_proba, dtype=np.float64)
    votes = np.empty((len(prob_a), len(decision)), dtype=np.int64)
    shape = (len(prob_a), len(decision), logistic_proba.shape[1]) if keep else (0, 0, 0)
    probabilities = np.empty(shape)
    couple(decision, prob_a, prob_b, logistic_proba, votes, probabilities)
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
