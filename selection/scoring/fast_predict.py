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
- Per seed, the probabilities come from libsvm's own ``predict_probability`` (sigmoids,
  clipping, pairwise coupling) run on a stand-in model with a precomputed kernel, whose
  "kernel values" are the shared decision values: one stand-in support vector per class
  pair, with coefficient 1 for its pair, 0 elsewhere, and zero intercepts, so libsvm's
  decision sums reproduce each decision value exactly. The probabilities, and so the
  predictions, are the straightforward recipe's bit for bit.

- The soft vote: ``VotingClassifier`` takes ``np.average`` of the two probability arrays, which is
  ``(svc + lr) / 2`` element by element (a sum of two, then a division by two). Only the argmax is
  used, and halving is exact for every normal number and monotone for all, so the argmax of
  ``svc + lr`` is the argmax of the average, ties and first-index rule included (the largest entry
  of a row summing to 2 is at least 2/k, far from subnormal): the stacking, the reduction and the
  division are skipped.

The eval set is processed in chunks of rows, so that no full float64 copy of it exists,
and chunks run in parallel threads (libsvm, BLAS and numpy release the GIL).
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import LabelEncoder
from sklearn.svm import SVC, _libsvm
from threadpoolctl import ThreadpoolController

from selection.scoring.exact_kernel import in_threads
from selection.scoring.exact_kernel import libsvm_decision as _raw_decision

CHUNK_ROWS = 2048
_buffers = threading.local()
_controller: ThreadpoolController | None = None  # finding the loaded BLAS libraries takes milliseconds: once


def _one_blas_thread():
    """A context in which BLAS runs on one thread (the chunks are the parallelism)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def _as_float64(rows: np.ndarray) -> np.ndarray:
    """``rows`` as float64 in this thread's reusable buffer (the values scikit-learn would convert to).

    Fresh memory for each chunk's conversion costs page faults that outweigh the
    arithmetic; one buffer per worker thread is reused for every chunk.
    """
    buffer = getattr(_buffers, "array", None)
    if buffer is None or buffer.shape[0] < rows.shape[0] or buffer.shape[1] != rows.shape[1]:
        buffer = _buffers.array = np.empty(rows.shape, dtype=np.float64)
    view = buffer[: rows.shape[0]]
    np.copyto(view, rows)
    return view


def _pair_model(n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Support indices, per-class counts and coefficients of the stand-in model.

    libsvm orders support vectors by class and, for the pair (i, j) with i < j, sums
    the class-i vectors weighted by coefficient row j - 1 and the class-j vectors by row
    i. Stand-in vector p (pair (i, j) in libsvm's pair order) belongs to class i and has
    weight 1 in row j - 1 only; its precomputed kernel value is decision column p.
    """
    pairs = [(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)]
    per_class = np.array([sum(1 for i, _ in pairs if i == c) for c in range(n_classes)], dtype=np.int32)
    coefficients = np.zeros((n_classes - 1, len(pairs)))
    for pair, (_, j) in enumerate(pairs):
        coefficients[j - 1, pair] = 1.0
    return np.arange(len(pairs), dtype=np.int32), per_class, coefficients


def svc_probabilities(decision: np.ndarray, prob_a: np.ndarray, prob_b: np.ndarray, n_classes: int) -> np.ndarray:
    """``SVC.predict_proba`` from libsvm's raw one-vs-one decision values, by libsvm itself.

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
    support, per_class, coefficients = _pair_model(n_classes)
    return _libsvm.predict_proba(
        np.ascontiguousarray(decision, dtype=np.float64),
        support,
        np.empty((0, 0)),
        per_class,
        coefficients,
        np.zeros(len(support)),
        np.ascontiguousarray(prob_a, dtype=np.float64),
        np.ascontiguousarray(prob_b, dtype=np.float64),
        svm_type=0,
        kernel="precomputed",
    )


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
    rows = _as_float64(rows)
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
            chunk_predictions.append(np.argmax(np.add(svc_proba, logistic_proba, out=svc_proba), axis=1))
    return chunk_predictions


def _predict_from_distances(distances, svcs, shared, logistic, n_classes, n_jobs, chunk_rows) -> list:
    """The chunks' predictions where the eval rows are rows of a pool with kept distances (``predict_shared``).

    The logistic regression's probabilities are computed for the whole pool in slices of
    ``chunk_rows`` consecutive rows (no gathering of the eval rows' vectors), and taken at the eval
    rows: each row's probabilities are the same numbers whichever rows share its slice, as the
    chunked path above already relies on.
    """
    pool_distances, train_rows, eval_rows = distances
    decision = pool_distances.decision(svcs[0], train_rows, eval_rows, n_jobs=n_jobs) if any(shared) else None
    pool = pool_distances.rows
    logistic_proba = np.empty((len(pool), n_classes))
    pool_starts = list(range(0, len(pool), chunk_rows))

    def logistic_work(first: int, stop: int) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for start in pool_starts[first:stop]:
                logistic_proba[start : start + chunk_rows] = logistic.predict_proba(pool[start : start + chunk_rows])

    in_threads(logistic_work, len(pool_starts), n_jobs)
    starts = list(range(0, len(eval_rows), chunk_rows))
    chunks: list = [None] * len(starts)

    def vote_work(first: int, stop: int) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for index in range(first, stop):
                rows = eval_rows[starts[index] : starts[index] + chunk_rows]
                lr = logistic_proba[rows]
                if decision is None and any(shared):  # the shared distances' check failed: libsvm's kernel pass
                    part = _raw_decision(svcs[0], pool[rows])
                elif decision is not None:
                    part = decision[starts[index] : starts[index] + chunk_rows]
                chunk_predictions = []
                for svc, same in zip(svcs, shared):
                    if same:
                        svc_proba = svc_probabilities(part, svc.probA_, svc.probB_, n_classes)
                    else:
                        svc_proba = svc.predict_proba(pool[rows])
                    chunk_predictions.append(np.argmax(np.add(svc_proba, lr, out=svc_proba), axis=1))
                chunks[index] = chunk_predictions

    in_threads(vote_work, len(starts), n_jobs)
    return chunks


def predict_shared(
    train_matrix: np.ndarray,
    train_labels: np.ndarray,
    eval_matrix: np.ndarray,
    seeds: list[int],
    *,
    n_jobs: int = 1,
    chunk_rows: int = CHUNK_ROWS,
    distances: tuple | None = None,
) -> list[np.ndarray]:
    """Predictions of the frozen classifier for each seed, identical to refitting per seed.

    Parameters
    ----------
    train_matrix : ndarray of shape (n_train, D)
    train_labels : ndarray of shape (n_train,)
    eval_matrix : ndarray of shape (n_eval, D), or None with ``distances``
    seeds : list of int
    n_jobs : int, default=1
        Chunks of eval rows run in parallel threads (joblib), each predicting every
        seed. ``-1`` uses every core. The per-seed SVC fits (milliseconds on a
        selection) run one after the other.
    chunk_rows : int, default=2048
        Eval rows handled at once.
    distances : (PoolDistances, train_rows, eval_rows), optional
        Where the training and eval rows are rows of one pool whose squared distances are kept
        (:mod:`selection.scoring.exact_kernel`): the decision values come from them, bit for bit
        libsvm's, instead of a kernel pass.

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
    # the chunks are the parallelism; BLAS threads inside each would only contend with them
    with _one_blas_thread():
        if distances is not None:
            chunks = _predict_from_distances(distances, svcs, shared, logistic, n_classes, n_jobs, chunk_rows)
        else:
            chunks = Parallel(n_jobs=n_jobs, prefer="threads")(
                delayed(_predict_chunk)(eval_matrix[start : start + chunk_rows], svcs, shared, logistic, n_classes)
                for start in range(0, len(eval_matrix), chunk_rows)
            )
    return [
        encoder.classes_[np.concatenate([chunk[seed_index] for chunk in chunks])] for seed_index in range(len(seeds))
    ]
