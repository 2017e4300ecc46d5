"""libsvm's RBF decision values, bit for bit, from squared distances that many fits share.

The frozen SVC's kernel value for an eval row ``x`` and a support vector ``s`` is, in the pinned
scikit-learn 1.8 (``Kernel::k_function`` in its ``svm.cpp``, dense build)::

    diff = x - s                      # float64, element by element
    sum  = ddot(d, diff, 1, diff, 1)  # BLAS, through scipy.linalg.cython_blas
    K    = exp(-gamma * sum)          # the C library's exp

and the decision value of the class pair (i, j) is ``sum(coef * K)`` over class i's support
vectors, then over class j's, minus ``rho``, accumulated left to right. The squared distance
``sum`` does not depend on ``gamma`` or on which other rows were fitted, so where many fits draw
their support vectors from one pool (the cross-validation baseline's 100 candidates share their
10 target and 10 nontarget subsets), it is computed once per (row, support vector) and reused.

What makes it the same bits, not an approximation: the compiled loop (numba) computes the
difference with the same float64 subtractions, calls **the same ``ddot`` function** scikit-learn
calls (its address taken from ``scipy.linalg.cython_blas``, so the same OpenBLAS kernel under any
``OPENBLAS_CORETYPE``), and ``math.exp``, which numba compiles to a call of the C library's
``exp``, as libsvm's is (numpy's own ``exp`` is not: it has SIMD code on AVX-512 machines). The
sums run in libsvm's order with separate multiply and add (numba does not fuse them without
``fastmath``). Each fit is still checked: the decision values of its first rows are compared with
libsvm's own, and a difference sends that fit, and every later one, to libsvm
(:data:`checks`). Without numba the callers use libsvm throughout.
"""

from __future__ import annotations

import ctypes
import logging
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

log = logging.getLogger("dataperf")

CHECK_ROWS = 16
checks = {"fits": 0, "fell_back": 0}
_compiled: dict | None = None
_executor: ThreadPoolExecutor | None = None
_executor_threads = 0


def libsvm_decision(svc, rows: np.ndarray) -> np.ndarray:
    """libsvm's own one-vs-one decision values (scikit-learn negates them for two classes; undone exactly)."""
    decision = svc._decision_function(rows)
    return -decision.reshape(-1, 1) if len(svc.classes_) == 2 else decision


def _blas_ddot():
    """The ``ddot`` that scikit-learn's libsvm calls, as a ctypes function."""
    from scipy.linalg import cython_blas

    capsule = cython_blas.__pyx_capi__["ddot"]
    name_of = ctypes.pythonapi.PyCapsule_GetName
    name_of.restype, name_of.argtypes = ctypes.c_char_p, [ctypes.py_object]
    pointer_of = ctypes.pythonapi.PyCapsule_GetPointer
    pointer_of.restype, pointer_of.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    address = pointer_of(capsule, name_of(capsule))
    int_p, double_p = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_double)
    return ctypes.CFUNCTYPE(ctypes.c_double, int_p, double_p, int_p, double_p, int_p)(address)


def _compile() -> dict | None:
    """The compiled loops, or None where numba is missing (compiled once per process, about a second)."""
    global _compiled
    if _compiled is not None:
        return _compiled or None
    try:
        from numba import njit
    except ImportError:
        _compiled = {}
        return None
    ddot = _blas_ddot()

    @njit(nogil=True)
    def squared_distances(rows, vectors, out):
        n, dim = rows.shape
        diff = np.empty(dim)
        length = np.empty(1, dtype=np.int32)
        length[0] = dim
        step = np.ones(1, dtype=np.int32)
        for j in range(vectors.shape[0]):
            for i in range(n):
                for k in range(dim):
                    diff[k] = rows[i, k] - vectors[j, k]
                out[i, j] = ddot(length.ctypes, diff.ctypes, step.ctypes, diff.ctypes, step.ctypes)

    @njit(nogil=True)
    def decision_values(distances, rows, columns, gamma, starts, counts, coef, rho, out):
        n_classes = starts.shape[0]
        n_vectors = columns.shape[0]
        kernel = np.empty(n_vectors)
        for row in range(rows.shape[0]):
            for v in range(n_vectors):
                kernel[v] = math.exp(-gamma * distances[rows[row], columns[v]])
            pair = 0
            for i in range(n_classes):
                for j in range(i + 1, n_classes):
                    total = 0.0
                    for k in range(counts[i]):
                        total += coef[j - 1, starts[i] + k] * kernel[starts[i] + k]
                    for k in range(counts[j]):
                        total += coef[i, starts[j] + k] * kernel[starts[j] + k]
                    out[row, pair] = total - rho[pair]
                    pair += 1

    _compiled = {"squared_distances": squared_distances, "decision_values": decision_values}
    return _compiled


def in_threads(work, n: int, n_jobs: int) -> None:
    """``work(start, stop)`` over ``range(n)`` in one slice per thread of a pool kept for the process."""
    global _executor, _executor_threads
    from joblib import cpu_count

    threads = cpu_count() if n_jobs < 1 else n_jobs  # the cores this process may use, as joblib's n_jobs=-1
    bounds = np.linspace(0, n, threads + 1, dtype=int)
    slices = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    if len(slices) <= 1:
        for a, b in slices:
            work(a, b)
        return
    if _executor is None or _executor_threads < len(slices):
        _executor = ThreadPoolExecutor(max_workers=len(slices), thread_name_prefix="exact-kernel")
        _executor_threads = len(slices)
    for done in [_executor.submit(work, a, b) for a, b in slices]:
        done.result()


def available() -> bool:
    """Whether the compiled path can run here (numba importable)."""
    return _compile() is not None


class PoolDistances:
    """libsvm's squared distances between a pool's rows, one column per support vector, computed on first use.

    Parameters
    ----------
    matrix : ndarray of shape (n, d)
        The pool (float32 or float64); rows are converted to float64 as scikit-learn converts them.
    """

    def __init__(self, matrix: np.ndarray):
        self.rows = np.ascontiguousarray(matrix, dtype=np.float64)
        self._column_of: dict[int, int] = {}
        self._columns = np.empty((len(self.rows), 64))  # grows by doubling; the first len(_column_of) are filled

    def columns_for(self, pool_rows: np.ndarray, n_jobs: int = -1) -> np.ndarray:
        """Column indices of ``pool_rows`` (the support vectors), computing the missing columns."""
        missing = [int(r) for r in dict.fromkeys(pool_rows.tolist()) if r not in self._column_of]
        if missing:
            fresh = np.empty((len(self.rows), len(missing)))
            vectors = self.rows[missing]
            loop = _compile()["squared_distances"]
            in_threads(lambda a, b: loop(self.rows[a:b], vectors, fresh[a:b]), len(self.rows), n_jobs)
            first = len(self._column_of)
            if first + len(missing) > self._columns.shape[1]:
                grown = np.empty((len(self.rows), max(2 * self._columns.shape[1], first + len(missing))))
                grown[:, :first] = self._columns[:, :first]
                self._columns = grown
            self._columns[:, first : first + len(missing)] = fresh
            self._column_of.update({row: first + offset for offset, row in enumerate(missing)})
        return np.array([self._column_of[int(r)] for r in pool_rows], dtype=np.int64)

    def decision(self, svc, train_rows: np.ndarray, eval_rows: np.ndarray, n_jobs: int = -1) -> np.ndarray | None:
        """libsvm's one-vs-one decision values of ``svc`` (fitted on ``train_rows``) for ``eval_rows``.

        Returns None when the check against libsvm fails (the caller then uses libsvm); from then
        on every call returns None.
        """
        if checks["fell_back"]:
            return None
        columns = self.columns_for(train_rows[svc.support_], n_jobs=n_jobs)
        n_support = np.asarray(svc._n_support, dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(n_support)[:-1]]).astype(np.int64)
        coef = np.ascontiguousarray(svc._dual_coef_, dtype=np.float64)
        rho = np.ascontiguousarray(-svc._intercept_, dtype=np.float64)
        n_pairs = len(n_support) * (len(n_support) - 1) // 2
        out = np.empty((len(eval_rows), n_pairs))
        loop = _compile()["decision_values"]
        gamma = float(svc._gamma)
        rows = np.ascontiguousarray(eval_rows, dtype=np.int64)
        distances = self._columns
        in_threads(
            lambda a, b: loop(distances, rows[a:b], columns, gamma, starts, n_support, coef, rho, out[a:b]),
            len(rows),
            n_jobs,
        )
        checks["fits"] += 1
        sample = eval_rows[:CHECK_ROWS]
        if not np.array_equal(out[: len(sample)], libsvm_decision(svc, self.rows[sample])):
            checks["fell_back"] += 1
            log.warning("the shared-distance kernel differs from libsvm's here; using libsvm for every fit")
            return None
        return out
