"""The frozen classifier's predictions for many seeds, computing once what the seeds share.

What a seed changes, and what it does not (scikit-learn 1.8, pinned):

- ``LogisticRegression(random_state=s)`` uses the lbfgs solver, which ignores
  ``random_state``: one fit and one ``predict_proba`` serve every seed.
- ``SVC(probability=True, random_state=s)``: the seed only shuffles the internal
  cross-validation that fits the Platt sigmoids (``probA_``, ``probB_``); the support
  vectors, dual coefficients and intercepts come from a deterministic solve. The
  decision values on the eval set (the expensive kernel part) are therefore computed
  once; each seed refits the SVC on the small selection (cheap), and if its model is
  not bit-identical to the first one, that seed falls back to ``predict_proba``.
- Per seed, libsvm's ``predict_probability`` is replayed in numpy operation for
  operation (``sigmoid_predict``, clipping, ``multiclass_probability``), with libm's
  ``exp`` as libsvm uses it, so the probabilities, and so the predictions, are the ones
  the straightforward recipe gets. numpy's SIMD ``exp`` differs from libm in the last
  bit; pyarrow's ``exp`` kernel calls libm's, element by element in compiled code.

The eval set is processed in chunks of rows, so that no full float64 copy of it exists,
and chunks run in parallel threads (libsvm, BLAS and numpy release the GIL).
"""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import LabelEncoder
from sklearn.svm import SVC

CHUNK_ROWS = 4096
_MIN_PROB = 1e-7


def libm_exp(values: np.ndarray) -> np.ndarray:
    """``exp`` of each value exactly as the C library computes it (as libsvm does)."""
    flat = np.ascontiguousarray(values, dtype=np.float64).ravel()
    return pc.exp(pa.array(flat)).to_numpy(zero_copy_only=False).reshape(np.shape(values))


def _sigmoid_predict(decision: np.ndarray, prob_a: np.ndarray, prob_b: np.ndarray) -> np.ndarray:
    """libsvm's ``sigmoid_predict`` for an array of decision values (one column per pair)."""
    f_apb = decision * prob_a + prob_b
    # f_apb >= 0: exp(-f)/(1+exp(-f)); otherwise 1/(1+exp(f)); exp(-|f|) is the exp in both branches
    negated = libm_exp(-np.abs(f_apb))
    return np.where(f_apb >= 0, negated / (1.0 + negated), 1.0 / (1 + negated))


def _multiclass_probability(r: np.ndarray) -> np.ndarray:
    """libsvm's ``multiclass_probability`` (Wu, Lin and Weng's method 2), vectorized over rows.

    Every row takes the same floating-point operations, in the same order, as the C
    loop, and stops iterating when libsvm's would. scikit-learn's libsvm runs it for two
    classes too (later libsvm releases special-case k=2).

    ``r`` has shape (k, k, n): ``r[i, j]`` holds the pairwise probabilities of class i
    over class j for the n rows. Returns shape (n, k).
    """
    k, n = r.shape[0], r.shape[2]
    max_iter = max(100, k)
    eps = 0.005 / k
    q = np.zeros((k, k, n))
    for t in range(k):
        for j in range(t):
            q[t, t] += r[j, t] * r[j, t]
            q[t, j] = q[j, t]
        for j in range(t + 1, k):
            q[t, t] += r[j, t] * r[j, t]
            q[t, j] = -r[j, t] * r[t, j]
    p = np.full((k, n), 1.0 / k)
    active = np.arange(n)
    qa, pa_ = q, p.copy()
    products = np.empty_like(q)
    for _ in range(max_iter):
        products = np.multiply(qa, pa_[None, :, :], out=products[:, :, : len(active)])
        qp = np.zeros_like(pa_)
        for j in range(k):
            qp += products[:, j]
        pqp = np.zeros(len(active))
        for t in range(k):
            pqp += pa_[t] * qp[t]
        max_error = np.zeros(len(active))
        for t in range(k):
            error = np.abs(qp[t] - pqp)
            max_error = np.where(error > max_error, error, max_error)
        converged = max_error < eps
        if converged.any():
            p[:, active[converged]] = pa_[:, converged]
            keep = ~converged
            active, qa, pa_, qp, pqp = active[keep], qa[:, :, keep], pa_[:, keep], qp[:, keep], pqp[keep]
            if not len(active):
                break
        for t in range(k):
            diff = (-qp[t] + pqp) / qa[t, t]
            pa_[t] += diff
            grown = 1 + diff
            pqp = (pqp + diff * (diff * qa[t, t] + 2 * qp[t])) / grown / grown
            qp += diff * qa[t]
            qp /= grown
            pa_ /= grown
    if len(active):
        p[:, active] = pa_
    return p.T


def svc_probabilities(decision: np.ndarray, prob_a: np.ndarray, prob_b: np.ndarray, n_classes: int) -> np.ndarray:
    """``SVC.predict_proba`` from libsvm's raw one-vs-one decision values.

    Parameters
    ----------
    decision : ndarray of shape (n, n_classes * (n_classes - 1) / 2)
        libsvm's decision values, pairs (i, j) with i < j in order.
    prob_a, prob_b : ndarray of shape (n_pairs,)
        The fitted SVC's ``probA_`` and ``probB_``.
    n_classes : int

    Returns
    -------
    ndarray of shape (n, n_classes)
    """
    pairwise = np.minimum(np.maximum(_sigmoid_predict(decision, prob_a, prob_b), _MIN_PROB), 1 - _MIN_PROB).T
    r = np.zeros((n_classes, n_classes, len(decision)))
    pair = 0
    for i in range(n_classes):
        for j in range(i + 1, n_classes):
            r[i, j] = pairwise[pair]
            r[j, i] = 1 - pairwise[pair]
            pair += 1
    return _multiclass_probability(r)


def _raw_decision(svc: SVC, rows: np.ndarray) -> np.ndarray:
    """libsvm's decision values (scikit-learn negates them for two classes; undo that exactly)."""
    decision = svc._decision_function(rows)
    return -decision.reshape(-1, 1) if len(svc.classes_) == 2 else decision


def _same_model(a: SVC, b: SVC) -> bool:
    return all(
        np.array_equal(getattr(a, name), getattr(b, name))
        for name in ("support_", "support_vectors_", "_dual_coef_", "_intercept_", "_n_support")
    )


def _fit_svc(matrix: np.ndarray, encoded: np.ndarray, seed: int) -> SVC:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SVC(probability=True, random_state=seed).fit(matrix, encoded)


def _predict_chunk(
    rows: np.ndarray, svcs: list[SVC], shared: list[bool], logistic: LogisticRegression, n_classes: int
) -> list[np.ndarray]:
    """Encoded class predictions of every seed for one chunk of eval rows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logistic_proba = logistic.predict_proba(rows)
        decision = _raw_decision(svcs[0], rows) if any(shared) else None
        chunk_predictions = []
        for svc, same in zip(svcs, shared):
            if same:
                svc_proba = svc_probabilities(decision, svc.probA_, svc.probB_, n_classes)
            else:
                svc_proba = svc.predict_proba(rows)
            average = np.average(np.asarray([svc_proba, logistic_proba]), axis=0, weights=None)
            chunk_predictions.append(np.argmax(average, axis=1))
    return chunk_predictions


def predict_shared(
    train_matrix: np.ndarray,
    train_labels: np.ndarray,
    eval_matrix: np.ndarray,
    seeds: list[int],
    *,
    n_jobs: int = 1,
    chunk_rows: int = CHUNK_ROWS,
) -> list[np.ndarray]:
    """Predictions of the frozen classifier for each seed, identical to refitting per seed.

    Parameters
    ----------
    train_matrix : ndarray of shape (n_train, D)
    train_labels : ndarray of shape (n_train,)
    eval_matrix : ndarray of shape (n_eval, D)
    seeds : list of int
    n_jobs : int, default=1
        Chunks of eval rows run in parallel threads (joblib), each predicting every
        seed. ``-1`` uses every core. The per-seed SVC fits (milliseconds on a
        selection) run one after the other.
    chunk_rows : int, default=4096
        Eval rows handled at once.

    Returns
    -------
    list of ndarray of shape (n_eval,)
        One array of predicted class ids per seed, in ``seeds`` order.
    """
    encoder = LabelEncoder().fit(train_labels)
    encoded = encoder.transform(train_labels)
    n_classes = len(encoder.classes_)
    # libsvm's random generator is process-wide: fits in threads would interleave draws between seeds
    svcs = [_fit_svc(train_matrix, encoded, seed) for seed in seeds]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logistic = LogisticRegression(random_state=seeds[0]).fit(train_matrix, encoded)
    shared = [_same_model(svc, svcs[0]) for svc in svcs]
    starts = range(0, len(eval_matrix), chunk_rows)
    chunks = Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_predict_chunk)(eval_matrix[start : start + chunk_rows], svcs, shared, logistic, n_classes)
        for start in starts
    )
    return [
        encoder.classes_[np.concatenate([chunk[seed_index] for chunk in chunks])] for seed_index in range(len(seeds))
    ]
