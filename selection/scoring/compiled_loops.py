"""The compiled loops of :mod:`selection.scoring.exact_coupling` and :mod:`selection.scoring.exact_kernel`
that numba can keep in its on-disk cache.

Module-level functions, so that numba can cache their machine code beside this file (or in the user's
cache folder where this one is read-only): a new process then loads them in a fraction of a second
instead of compiling them for about two seconds (the coupling's loops, and the kernel's decision sums;
the kernel's distance loop calls OpenBLAS's ``ddot`` through an address known only at run time, so it
is compiled in each process). The cache is keyed by this file and the CPU, so a cached loop is the
one this machine would compile; where no cache folder is writable, the loops are compiled in each
process. Importing this module imports numba.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

OPTIONS = {"nogil": True, "error_model": "numpy"}
LANES = 64  # rows the coupling takes together, one per SIMD lane of its rounds (see exact_coupling)


def compiled(function):
    """``njit`` with numba's on-disk cache where a cache folder can be written, else without it."""
    try:
        return njit(cache=True, **OPTIONS)(function)
    except RuntimeError:  # numba found no writable cache location
        return njit(**OPTIONS)(function)


@compiled
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


@compiled
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


@compiled
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


@compiled
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


@compiled
def pair_sums(kernel, starts, counts, coef, rho, out_row):
    """libsvm's ``predict_values``: one decision value per class pair, in its pair and summation order."""
    n_classes = starts.shape[0]
    pair = 0
    for i in range(n_classes):
        for j in range(i + 1, n_classes):
            total = 0.0
            for k in range(counts[i]):
                total += coef[j - 1, starts[i] + k] * kernel[starts[i] + k]
            for k in range(counts[j]):
                total += coef[i, starts[j] + k] * kernel[starts[j] + k]
            out_row[pair] = total - rho[pair]
            pair += 1


@compiled
def decision_values(distances, rows, columns, gamma, starts, counts, coef, rho, out):
    """Each row's decision values from its kept squared distances: ``exp(-gamma * d)``, then :func:`pair_sums`."""
    kernel = np.empty(columns.shape[0])
    for row in range(rows.shape[0]):
        for v in range(columns.shape[0]):
            kernel[v] = math.exp(-gamma * distances[rows[row], columns[v]])
        pair_sums(kernel, starts, counts, coef, rho, out[row])
