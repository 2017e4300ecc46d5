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

The eval set is processed in chunks of rows, so that no full float64 copy of it exists, and
chunks run in parallel threads (libsvm, BLAS, numpy and the compiled loops release the GIL): first
each chunk's logistic-regression probabilities and the first seed's decision values, while this
thread fits the other seeds' SVCs, then each chunk's per-seed probabilities and vote.

In a process that scores many times (a leaderboard worker, ``bench``, the per-clip report) the
decision values and the probabilities come from compiled loops instead of libsvm's
(:mod:`selection.scoring.exact_kernel`, :mod:`selection.scoring.exact_coupling`): the same bits, in
about half the time of a scoring, after a compile of about four seconds once per process. Each call
first compares them with libsvm's own on a few rows.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import LabelEncoder
from sklearn.svm import SVC, _libsvm
from sklearn.utils.extmath import safe_sparse_dot, softmax
from threadpoolctl import ThreadpoolController

from selection.scoring import exact_coupling, exact_kernel, precomputed_fits
from selection.scoring.exact_kernel import libsvm_decision as _raw_decision
from selection.scoring.precomputed_fits import LIBSVM_FITS

CHUNK_ROWS = 1024
_buffers = threading.local()
_controller: ThreadpoolController | None = None  # finding the loaded BLAS libraries takes milliseconds: once
# The compiled loops cost about four seconds to compile, once per process, and save about half of a
# scoring's time: they are used once this process has coupled this many (row, seed) pairs through
# libsvm (about ten eval.py scorings, as long as the compile; the cross-validation baseline's 100
# one-seed candidates stay below, and a single eval.py scoring never pays it).
COMPILE_AFTER_PAIRS = 3_000_000
_coupled_by_libsvm = 0


def compile_loops() -> bool:
    """Compile the loops now, and use them from this process's next scoring on; whether they are there.

    For a process that knows it will score many times (a leaderboard worker): the compile (about four
    seconds) can then overlap other work, and no scoring runs through libsvm's loops first.
    It may run in a thread beside loading; every scoring still checks the loops against libsvm.
    """
    global _coupled_by_libsvm
    if not exact_kernel.usable():
        return False
    rng = np.random.default_rng(0)
    train = rng.random((12, 64))
    predict_shared(train, np.arange(12) % 3, rng.random((8, 64)), [0], compiled=True)  # compiles every loop
    _coupled_by_libsvm = max(_coupled_by_libsvm, COMPILE_AFTER_PAIRS)
    return True


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
        buffer = _buffers.array = exact_kernel.aligned_empty(rows.shape)
    view = buffer[: rows.shape[0]]
    np.copyto(view, rows)
    return view


def logistic_probabilities(logistic: LogisticRegression, rows: np.ndarray) -> np.ndarray:
    """``logistic.predict_proba(rows)``, bit for bit, for float64 rows the harness has checked finite.

    scikit-learn 1.8's ``predict_proba`` first validates ``rows`` again (a pass over every value for
    NaN and infinity: about a third of its time on a chunk of the eval set, and of the
    cross-validation baseline's pool predictions), then computes ``safe_sparse_dot(rows, coef_.T) +
    intercept_`` and, for three classes or more, ``softmax`` of it, for two ``expit`` of its one
    column and the columns ``1 - p, p``. This runs those same functions on the same arrays, so the
    numbers are the same; it skips only the check, which every vector passed when it was loaded
    (:func:`selection.inputs.validation.check_vectors`).
    """
    scores = safe_sparse_dot(rows, logistic.coef_.T, dense_output=True) + logistic.intercept_
    if logistic.classes_.size > 2:
        return softmax(scores, copy=False)
    positive = scores.reshape(-1)
    expit(positive, out=positive)
    return np.vstack([1 - positive, positive]).T


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


def _kernel_agrees(svc: SVC, sample: np.ndarray, expected: np.ndarray) -> bool:
    """Whether the compiled decision values equal libsvm's (``expected``) on ``sample``; a failure is final."""
    if np.array_equal(exact_kernel.row_decision(svc, sample), expected):
        return True
    exact_kernel.refuse("compiled kernel loop")
    return False


def _checked_sigmoids(svcs: list[SVC], shared: list[bool], decision: np.ndarray, n_classes: int):
    """The shared seeds' ``(probA_, probB_)`` for the compiled coupling, if it agrees with libsvm.

    ``decision`` is libsvm's decision values of the checked rows; every shared seed's compiled
    probabilities are compared with libsvm's own on them. None (libsvm's loops, for this call and
    every later one in the process) where a check failed before or this one fails.
    """
    if not any(shared) or not exact_kernel.usable():
        return None
    prob_a = np.array([svc.probA_ for svc, same in zip(svcs, shared) if same])
    prob_b = np.array([svc.probB_ for svc, same in zip(svcs, shared) if same])
    expected = [svc_probabilities(decision, svc.probA_, svc.probB_, n_classes) for svc, s in zip(svcs, shared) if s]
    if np.array_equal(exact_coupling.seed_probabilities(decision, prob_a, prob_b, n_classes), expected):
        return prob_a, prob_b
    exact_kernel.refuse("compiled probability loop")
    return None


def _same_model(a: SVC, b: SVC) -> bool:
    return precomputed_fits.same_fit(a, b, ("support_vectors_", *precomputed_fits.MODEL))


def _fit_svc(matrix: np.ndarray, encoded: np.ndarray, seed: int) -> SVC:
    with warnings.catch_warnings(), LIBSVM_FITS:
        warnings.simplefilter("ignore")
        return SVC(probability=True, random_state=seed).fit(matrix, encoded)


def _seed_svcs(train_matrix, encoded, seeds, first, train_distances) -> tuple[list[SVC], list[bool]]:
    """Every seed's SVC and whether it shares the first one's model (then only its sigmoids are used).

    With ``train_distances`` the later seeds are fitted on the precomputed kernel where that gives libsvm's
    RBF fit bit for bit (:mod:`selection.scoring.precomputed_fits`), else by libsvm's RBF fits. One after
    the other: libsvm's random generator is process-wide.
    """
    fits = precomputed_fits.seed_fits(first, encoded, seeds, train_distances) if train_distances is not None else None
    if fits is None:
        fits = [None] * (len(seeds) - 1)
    svcs, shared = [first], [True]
    for seed, fit in zip(seeds[1:], fits):
        if fit is None:
            fit = _fit_svc(train_matrix, encoded, seed)
            shared.append(_same_model(fit, first))
        else:
            shared.append(True)
        svcs.append(fit)
    return svcs, shared


def _seed_votes(decision, logistic_proba, svcs, shared, rows, n_classes, sigmoids) -> list[np.ndarray]:
    """Each seed's encoded predictions for some rows: the argmax of its SVC's probabilities plus the LR's.

    ``sigmoids`` is ``(prob_a, prob_b)`` of the shared seeds for the compiled loop
    (:mod:`selection.scoring.exact_coupling`), or None for libsvm's own; ``rows()`` gives the rows'
    vectors for a seed whose model is not the shared one.
    """
    compiled = iter(exact_coupling.seed_votes(decision, *sigmoids, logistic_proba)) if sigmoids is not None else None
    votes = []
    for svc, same in zip(svcs, shared):
        if same and compiled is not None:
            votes.append(next(compiled))
            continue
        if same:
            svc_proba = svc_probabilities(decision, svc.probA_, svc.probB_, n_classes)
        else:
            svc_proba = svc.predict_proba(rows())
        votes.append(np.argmax(np.add(svc_proba, logistic_proba, out=svc_proba), axis=1))
    return votes


def _first_pass(rows: np.ndarray, svc: SVC, logistic: LogisticRegression, compiled: bool):
    """One chunk of eval rows: the logistic regression's probabilities and the first seed's decision values."""
    rows = _as_float64(rows)
    kernel_pass = exact_kernel.row_decision if compiled else _raw_decision
    return logistic_probabilities(logistic, rows), kernel_pass(svc, rows)


def _predict_chunks(eval_matrix, train_matrix, encoded, seeds, first, logistic, n_classes, options) -> tuple:
    """The eval set's predictions, chunk by chunk, with the seeds' SVC fits done while the chunks' kernel runs.

    The first seed's decision values and the logistic regression's probabilities need only the first
    fit; the other seeds' fits (one after the other: libsvm's random generator is process-wide)
    run in this thread meanwhile, and then each chunk's probabilities and vote.
    Returns the chunks' votes, which seeds share the first one's model, and whether the compiled
    coupling ran.
    """
    compiled, sample, n_jobs, chunk_rows, train_distances = options
    sample_decision = _raw_decision(first, sample) if compiled else None
    compiled = compiled and _kernel_agrees(first, sample, sample_decision)
    starts = list(range(0, len(eval_matrix), chunk_rows))
    passes: list = [None] * len(starts)

    def first_work(a: int, b: int) -> None:
        for index in range(a, b):
            passes[index] = _first_pass(
                eval_matrix[starts[index] : starts[index] + chunk_rows], first, logistic, compiled
            )

    wait = exact_kernel.start_in_threads(first_work, len(starts), n_jobs)
    svcs, shared = _seed_svcs(train_matrix, encoded, seeds, first, train_distances)
    wait()
    sigmoids = _checked_sigmoids(svcs, shared, sample_decision, n_classes) if compiled else None
    chunks: list = [None] * len(starts)

    def vote_work(a: int, b: int) -> None:
        for index in range(a, b):
            logistic_proba, decision = passes[index]
            rows = eval_matrix[starts[index] : starts[index] + chunk_rows]
            vectors = lambda rows=rows: _as_float64(rows)  # noqa: E731 (only for a seed whose model differs)
            chunks[index] = _seed_votes(decision, logistic_proba, svcs, shared, vectors, n_classes, sigmoids)

    exact_kernel.in_threads(vote_work, len(starts), n_jobs)
    return chunks, shared, sigmoids is not None


def _predict_from_distances(distances, svcs, shared, logistic, n_classes, n_jobs, chunk_rows, sigmoids) -> list:
    """The chunks' predictions where the eval rows are rows of a pool with kept distances (``predict_shared``).

    The logistic regression's probabilities are computed for the whole pool in slices of
    ``chunk_rows`` consecutive rows (no gathering of the eval rows' vectors), and taken at the eval
    rows: each row's probabilities are the same numbers whichever rows share its slice, as the
    chunked path above already relies on.
    """
    pool_distances, train_rows, eval_rows = distances
    decision = pool_distances.decision(svcs[0], train_rows, eval_rows, n_jobs=n_jobs)
    pool = pool_distances.rows
    logistic_proba = np.empty((len(pool), n_classes))
    pool_starts = list(range(0, len(pool), chunk_rows))

    def logistic_work(first: int, stop: int) -> None:
        for start in pool_starts[first:stop]:
            logistic_proba[start : start + chunk_rows] = logistic_probabilities(
                logistic, pool[start : start + chunk_rows]
            )

    exact_kernel.in_threads(logistic_work, len(pool_starts), n_jobs)
    starts = list(range(0, len(eval_rows), chunk_rows))
    chunks: list = [None] * len(starts)

    def vote_work(first: int, stop: int) -> None:
        for index in range(first, stop):
            rows = eval_rows[starts[index] : starts[index] + chunk_rows]
            lr = logistic_proba[rows]
            if decision is None:  # the shared distances' check failed: libsvm's kernel pass
                part = _raw_decision(svcs[0], pool[rows])
            else:
                part = decision[starts[index] : starts[index] + chunk_rows]
            chunks[index] = _seed_votes(part, lr, svcs, shared, lambda rows=rows: pool[rows], n_classes, sigmoids)

    exact_kernel.in_threads(vote_work, len(starts), n_jobs)
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
    compiled: bool | None = None,
    train_distances: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Predictions of the frozen classifier for each seed, identical to refitting per seed.

    Parameters
    ----------
    train_matrix : ndarray of shape (n_train, D)
    train_labels : ndarray of shape (n_train,)
    eval_matrix : ndarray of shape (n_eval, D), or None with ``distances``
        Finite values, as every vector the harness loads is checked to be: the logistic regression's
        probabilities are taken without scikit-learn's second check (:func:`logistic_probabilities`).
    seeds : list of int
    n_jobs : int, default=1
        Chunks of eval rows run in this many threads (a pool kept for the process), each
        predicting every seed. ``-1`` uses every core this process may use. The per-seed SVC
        fits (milliseconds on a selection) run one after the other in the calling thread,
        while the threads compute the first seed's decision values.
    chunk_rows : int, default=1024
        Eval rows handled at once.
    distances : (PoolDistances, train_rows, eval_rows), optional
        Where the training and eval rows are rows of one pool whose squared distances are kept
        (:mod:`selection.scoring.exact_kernel`): the decision values come from them, bit for bit
        libsvm's, instead of a kernel pass.
    compiled : bool, optional
        Whether the decision values (without ``distances``) and the probabilities come from the
        compiled loops (:mod:`selection.scoring.exact_kernel`, :mod:`selection.scoring.exact_coupling`)
        instead of libsvm's: the same bits in about half the time, after a compile of about four
        seconds once per process. By default once the process has coupled
        :data:`COMPILE_AFTER_PAIRS` (row, seed) pairs through libsvm, so that a single ``eval.py``
        scoring never pays the compile and a leaderboard worker pays it once. Where numba is
        missing, or a check against libsvm on the first rows differs, libsvm's own are used.
    train_distances : (ndarray, ndarray), optional
        libsvm's two squared distances among the training rows
        (:meth:`selection.scoring.precomputed_fits.PairDistances.among`): the seeds after the first are
        then fitted on the precomputed kernel, the same models and sigmoids in about a fifth of the time
        (:mod:`selection.scoring.precomputed_fits`, which checks that they are).

    Returns
    -------
    list of ndarray of shape (n_eval,)
        One array of predicted class ids per seed, in ``seeds`` order.
    """
    encoder = LabelEncoder().fit(train_labels)
    encoded = encoder.transform(train_labels)
    n_classes = len(encoder.classes_)
    global _coupled_by_libsvm
    if compiled is None:
        compiled = _coupled_by_libsvm >= COMPILE_AFTER_PAIRS
    compiled = compiled and exact_kernel.usable()
    if distances is not None:
        pool_distances, _, eval_rows = distances
        sample = pool_distances.rows[eval_rows[: exact_kernel.CHECK_ROWS]]
    else:
        sample = np.asarray(eval_matrix[: exact_kernel.CHECK_ROWS], dtype=np.float64)
    # the warnings filter is process-wide: set here, once, for the worker threads too
    with warnings.catch_warnings(), _one_blas_thread():
        warnings.simplefilter("ignore")
        first = _fit_svc(train_matrix, encoded, seeds[0])
        logistic = LogisticRegression(random_state=seeds[0]).fit(train_matrix, encoded)
        if distances is None:
            options = (compiled, sample, n_jobs, chunk_rows, train_distances)
            chunks, shared, coupled = _predict_chunks(
                eval_matrix, train_matrix, encoded, seeds, first, logistic, n_classes, options
            )
        else:
            svcs, shared = _seed_svcs(train_matrix, encoded, seeds, first, train_distances)
            sigmoids = _checked_sigmoids(svcs, shared, _raw_decision(first, sample), n_classes) if compiled else None
            chunks = _predict_from_distances(distances, svcs, shared, logistic, n_classes, n_jobs, chunk_rows, sigmoids)
            coupled = sigmoids is not None
    if not coupled:
        _coupled_by_libsvm += (len(eval_matrix) if distances is None else len(distances[2])) * sum(shared)
    return [
        encoder.classes_[np.concatenate([chunk[seed_index] for chunk in chunks])] for seed_index in range(len(seeds))
    ]
