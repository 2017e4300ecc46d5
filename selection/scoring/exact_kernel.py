"""libsvm's RBF decision values, bit for bit, by compiled loops (for eval rows, or from shared distances).

The frozen SVC's kernel value for an eval row ``x`` and a support vector ``s`` is, in the pinned
scikit-learn 1.8 (``Kernel::k_function`` in its ``svm.cpp``, dense build)::

    diff = x - s                      # float64, element by element
    sum  = ddot(d, diff, 1, diff, 1)  # BLAS, through scipy.linalg.cython_blas
    K    = exp(-gamma * sum)          # the C library's exp

and the decision value of the class pair (i, j) is ``sum(coef * K)`` over class i's support
vectors, then over class j's, minus ``rho``, accumulated left to right. The squared distance
``sum`` does not depend on ``gamma`` or on which other rows were fitted, so where many fits draw
their support vectors from one pool (the cross-validation baseline's 100 candidates share their
10 target and 10 nontarget subsets), it is computed once per (row, support vector) and reused
(:class:`PoolDistances`); for eval rows, :func:`row_decision` computes it row by row.

What makes it the same bits, not an approximation:

- ``ddot``'s result depends on how its kernel accumulates, and OpenBLAS picks the kernel for the
  machine (``OPENBLAS_CORETYPE`` overrides). For the two kernels x86-64 machines run, the compiled
  loop replays the kernel itself (``kernel/x86_64/ddot_microk_skylakex-2.c`` on AVX-512 machines:
  four 8-lane accumulators over blocks of 32, each lane a fused multiply-add, folded to four 4-lane
  sums, added in order, halved and paired; ``ddot_microk_haswell-2.c`` on AVX2 machines: four
  4-lane accumulators over blocks of 16, halved, then a tree), fused with the subtraction so the
  difference never goes to memory, four rows per pass over a support vector on AVX-512 (two on
  AVX2, whose 16 registers hold two rows' accumulators), the fold done on the SIMD registers in the
  kernel's order. Which kernel runs here is asked of ``ddot`` itself (:func:`ddot_layout`: both
  replays against ``ddot`` on random vectors of several lengths and scales); where neither gives
  every bit, or the length is not a whole number of blocks of 32 (or is past OpenBLAS's
  10,000-value threading threshold), the loop computes the difference and calls **the same
  ``ddot`` function** scikit-learn calls (its address taken from ``scipy.linalg.cython_blas``).
- ``math.exp``, which numba compiles to a call of the C library's ``exp``, as libsvm's is (numpy's
  own ``exp`` is not: it has SIMD code on AVX-512 machines).
- The decision sums run in libsvm's order with separate multiply and add (numba does not fuse them
  without ``fastmath``; the replayed kernels' fused multiply-adds are written out as the kernels
  have them).

Every fit is still checked: the decision values of its first rows are compared with libsvm's own,
and a difference sends that fit, and every later one, to libsvm (:data:`checks`). Without numba the
callers use libsvm throughout. The replayed kernel makes a decision value about four times as fast
as libsvm's own (no allocation per pair, no call per pair, the difference kept in registers). Its
rows and support vectors start on 64-byte boundaries (:func:`aligned_empty`): from numpy's own
allocations every 8-double load spanned two cache lines, which cost about a third of its time.
"""

from __future__ import annotations

import ctypes
import logging
import threading
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


def _model_arrays(svc) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A fitted SVC's support-vector starts and counts per class, dual coefficients and ``rho``, as libsvm's."""
    n_support = np.asarray(svc._n_support, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(n_support)[:-1]]).astype(np.int64)
    coef = np.ascontiguousarray(svc._dual_coef_, dtype=np.float64)
    rho = np.ascontiguousarray(-svc._intercept_, dtype=np.float64)
    return starts, n_support, coef, rho


def row_decision(svc, rows: np.ndarray) -> np.ndarray:
    """libsvm's one-vs-one decision values of ``svc`` for the float64 ``rows``, by the compiled loop.

    The numbers :func:`libsvm_decision` gives, bit for bit (module docstring), in about two thirds
    of its time: no allocation per (row, support vector) pair, and each row is held against every
    support vector while it is in cache. Callers check a few rows against libsvm's own.
    """
    starts, n_support, coef, rho = _model_arrays(svc)
    rows = np.ascontiguousarray(rows, dtype=np.float64)  # the loops index rows as one contiguous block
    vectors = aligned_copy(svc.support_vectors_)
    out = np.empty((len(rows), len(rho)))
    loops = _compile()
    layout = _layout_for(rows.shape[1])
    loops["row_decision_values"](rows, vectors, float(svc._gamma), starts, n_support, coef, rho, out, layout)
    return out


def aligned_empty(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised C-contiguous float64 array that starts on a 64-byte boundary.

    Rows of a length that is a multiple of 8 then start on cache lines too, so none of the loops'
    8-double SIMD loads spans two lines (numpy's own arrays start 16 bytes past one, which made
    every load a split load: about 1.5 times the kernel's time).
    """
    size = int(np.prod(shape))
    raw = np.empty(size + 8)
    skip = (-raw.ctypes.data % 64) // 8
    return raw[skip : skip + size].reshape(shape)


def aligned_copy(values: np.ndarray) -> np.ndarray:
    """``values`` as float64 in a new array from :func:`aligned_empty` (the same numbers)."""
    copy = aligned_empty(np.shape(values))
    np.copyto(copy, values)
    return copy


def _blas_ddot_address() -> int:
    """The address of the ``ddot`` that scikit-learn's libsvm calls (``scipy.linalg.cython_blas``'s)."""
    from scipy.linalg import cython_blas

    capsule = cython_blas.__pyx_capi__["ddot"]
    name_of = ctypes.pythonapi.PyCapsule_GetName
    name_of.restype, name_of.argtypes = ctypes.c_char_p, [ctypes.py_object]
    pointer_of = ctypes.pythonapi.PyCapsule_GetPointer
    pointer_of.restype, pointer_of.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return pointer_of(capsule, name_of(capsule))


def _blas_ddot():
    """The ``ddot`` that scikit-learn's libsvm calls, as a ctypes function."""
    int_p, double_p = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_double)
    return ctypes.CFUNCTYPE(ctypes.c_double, int_p, double_p, int_p, double_p, int_p)(_blas_ddot_address())


_layout: int | None = None


def _compile() -> dict | None:
    """The compiled loops (:mod:`selection.scoring.compiled_loops`, loaded from numba's cache where it has them),
    with ``ddot``'s address bound in; None where numba is missing."""
    global _compiled
    if _compiled is not None:
        return _compiled or None
    try:
        from selection.scoring import compiled_loops
    except ImportError:
        _compiled = {}
        return None
    address = _blas_ddot_address()

    def squared_distances(rows, vectors, out, layout):
        """``out[i, j]``: libsvm's ``ddot(x - s, x - s)`` for row i and vector j (float64, C-contiguous)."""
        compiled_loops.squared_distances(rows, vectors, out, layout, address)

    def row_decision_values(rows, vectors, gamma, starts, counts, coef, rho, out, layout):
        compiled_loops.row_decision_values(rows, vectors, gamma, starts, counts, coef, rho, out, layout, address)

    _compiled = {
        "squared_distances": squared_distances,
        "decision_values": compiled_loops.decision_values,
        "row_decision_values": row_decision_values,
    }
    return _compiled


def ddot_layout() -> int:
    """Which of OpenBLAS's ``ddot`` kernels the compiled loops replay here, found by asking ``ddot`` itself.

    libsvm's squared distance is whatever OpenBLAS's ``ddot`` returns, and OpenBLAS picks its kernel
    for the machine (``OPENBLAS_CORETYPE`` overrides): AVX-512 machines run the SkylakeX kernel, AVX2
    ones (Haswell, Zen) the Haswell kernel, and the two sum in different orders. Each layout is tried
    on random vectors of several lengths and scales against ``ddot`` itself; the one that gives every
    bit is used, and where neither does the loops call ``ddot`` (``compiled_loops.DDOT``, about half as
    fast). Needs numba (callers ask :func:`available` first).
    """
    global _layout
    if _layout is not None:
        return _layout
    from selection.scoring.compiled_loops import DDOT, HASWELL, SKYLAKEX

    loops = _compile()
    _layout = DDOT
    rng = np.random.default_rng(20261201)
    for layout in (SKYLAKEX, HASWELL):
        agree = True
        for dim in (32, 64, 1024):
            rows = rng.gamma(0.5, rng.uniform(0.01, 10.0), (24, dim))
            vectors = np.concatenate([rows[:3] + rng.normal(0, 1e-3, (3, dim)), rng.gamma(0.5, 3.0, (5, dim))])
            expected, got = np.empty((24, 8)), np.empty((24, 8))
            loops["squared_distances"](rows, vectors, expected, DDOT)
            loops["squared_distances"](rows, vectors, got, layout)
            agree = agree and np.array_equal(expected, got)
        if agree:
            _layout = layout
            break
    return _layout


def _layout_for(dim: int) -> int:
    """The layout for vectors of ``dim`` values: the replayed kernels cover whole blocks of 32, below OpenBLAS's
    threading threshold (10,000 values); other lengths call ``ddot``."""
    from selection.scoring.compiled_loops import DDOT

    return ddot_layout() if dim % 32 == 0 and 32 <= dim <= 10000 else DDOT


def start_in_threads(work, n: int, n_jobs: int):
    """Start ``work(start, stop)`` over ``range(n)``, one slice per thread of a pool kept for the process.

    Returns a function that waits for every slice (and raises what a slice raised). With one thread
    the work runs here, before this returns; otherwise the caller can do its own work meanwhile.
    """
    global _executor, _executor_threads
    from joblib import cpu_count

    threads = cpu_count() if n_jobs < 1 else n_jobs  # the cores this process may use, as joblib's n_jobs=-1
    bounds = np.linspace(0, n, threads + 1, dtype=int)
    slices = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    if len(slices) <= 1:
        for a, b in slices:
            work(a, b)
        return lambda: None
    if _executor is None or _executor_threads < len(slices):
        _executor = ThreadPoolExecutor(max_workers=len(slices), thread_name_prefix="exact-kernel")
        _executor_threads = len(slices)
    pending = [_executor.submit(work, a, b) for a, b in slices]
    return lambda: [done.result() for done in pending] and None


def in_threads(work, n: int, n_jobs: int) -> None:
    """``work(start, stop)`` over ``range(n)`` in one slice per thread of a pool kept for the process."""
    start_in_threads(work, n, n_jobs)()


def available() -> bool:
    """Whether the compiled path can run here (numba importable)."""
    return _compile() is not None


def usable() -> bool:
    """Whether the compiled loops may be used: numba is here and no check against libsvm has failed."""
    return not checks["fell_back"] and available()


def refuse(what: str) -> None:
    """Record that ``what`` differed from libsvm's on the checked rows: libsvm's loops for the rest of the process."""
    checks["fell_back"] += 1
    log.warning("the %s differs from libsvm's here; using libsvm's for the rest of this process", what)


class PoolDistances:
    """libsvm's squared distances between a pool's rows, one column per support vector, computed on first use.

    Parameters
    ----------
    matrix : ndarray of shape (n, d)
        The pool (float32 or float64); rows are converted to float64 as scikit-learn converts them.
    vectors : ndarray of shape (m, d), optional
        Where the support vectors come from, when not rows of ``matrix`` (the per-clip report scores
        held-out clips, or the eval set, with picks of the pool): columns are then indexed by its rows.
    """

    def __init__(self, matrix: np.ndarray, vectors: np.ndarray | None = None):
        self.rows = aligned_copy(matrix)
        self._vectors = self.rows if vectors is None else vectors
        self._column_of: dict[int, int] = {}
        self._columns = np.empty((len(self.rows), 64))  # grows by doubling; the first len(_column_of) are filled
        self._lock = threading.Lock()  # callers in two threads may ask for columns at once

    def columns_for(self, pool_rows: np.ndarray, n_jobs: int = -1) -> np.ndarray:
        """Column indices of ``pool_rows`` (the support vectors: rows of ``vectors``), computing the missing columns."""
        with self._lock:
            return self._columns_for(pool_rows, n_jobs)

    def _columns_for(self, pool_rows: np.ndarray, n_jobs: int) -> np.ndarray:
        missing = [int(r) for r in dict.fromkeys(pool_rows.tolist()) if r not in self._column_of]
        if missing:
            fresh = np.empty((len(self.rows), len(missing)))
            vectors = aligned_copy(self._vectors[missing])
            loop, layout = _compile()["squared_distances"], _layout_for(self.rows.shape[1])
            in_threads(lambda a, b: loop(self.rows[a:b], vectors, fresh[a:b], layout), len(self.rows), n_jobs)
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
        with self._lock:
            columns = self._columns_for(train_rows[svc.support_], n_jobs)
            distances = self._columns  # another thread may grow it later: this array holds these columns
        starts, n_support, coef, rho = _model_arrays(svc)
        out = np.empty((len(eval_rows), len(rho)))
        loop = _compile()["decision_values"]
        gamma = float(svc._gamma)
        rows = np.ascontiguousarray(eval_rows, dtype=np.int64)
        in_threads(
            lambda a, b: loop(distances, rows[a:b], columns, gamma, starts, n_support, coef, rho, out[a:b]),
            len(rows),
            n_jobs,
        )
        checks["fits"] += 1
        sample = eval_rows[:CHECK_ROWS]
        if not np.array_equal(out[: len(sample)], libsvm_decision(svc, self.rows[sample])):
            refuse("shared-distance kernel")
            return None
        return out
