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
import math
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


DDOT, SKYLAKEX, HASWELL = 0, 1, 2  # how the compiled loops get libsvm's squared distance (see ddot_layout)
# Rows run against each support vector at once: AVX-512 has 32 registers for 4 rows' 16 accumulators,
# AVX2 16 registers, for 2 rows' 8 (more would spill them to memory).
SKYLAKEX_ROWS, HASWELL_ROWS = 4, 2
_layout: int | None = None


def _vector_squares(width: int, n_rows: int):
    """A numba intrinsic: OpenBLAS's ``ddot`` kernel on ``(row - vector)`` for ``n_rows`` rows at once.

    ``squares(rows, first, vector, sums)`` takes rows ``first`` to ``first + n_rows - 1`` of a
    C-contiguous float64 matrix and, for each block of ``4 * width`` elements in order, runs
    accumulator ``r`` (``width`` doubles) as ``acc_r = fma(d, d, acc_r)`` with ``d = row - vector``
    on elements ``r * width`` to ``(r + 1) * width - 1`` of the block; then folds each row's four
    accumulators as the kernel does (:func:`_fold`) into ``sums[row - first]``. Written in LLVM IR so
    that the accumulators stay in SIMD registers and each block of ``vector`` is loaded once for all
    ``n_rows`` rows; lane by lane these are the kernel's own operations (``vsubpd``, ``vfmadd231pd``,
    then its additions in its order), and a vector operation rounds each lane as the scalar one does.
    """
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def squares(typingctx, rows, first, vector, sums):
        def codegen(context, builder, signature, args):
            matrix, _, single, out = (
                context.make_array(kind)(context, builder, value) if isinstance(kind, types.Array) else value
                for kind, value in zip(signature.args, args)
            )
            dim = builder.extract_value(single.shape, 0)
            index = context.cast(builder, args[1], signature.args[1], types.intp)
            lanes = ir.VectorType(ir.DoubleType(), width)
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(lanes, [lanes] * 3), f"llvm.fma.v{width}f64"
            )

            def load(pointer, offset):
                return builder.load(builder.bitcast(builder.gep(pointer, [offset]), lanes.as_pointer()), align=8)

            starts = [
                builder.gep(matrix.data, [builder.mul(builder.add(index, ir.Constant(dim.type, q)), dim)])
                for q in range(n_rows)
            ]
            slots = [
                [cgutils.alloca_once_value(builder, ir.Constant(lanes, [0.0] * width)) for _ in range(4)]
                for _ in range(n_rows)
            ]
            block = ir.Constant(dim.type, 4 * width)
            with cgutils.for_range(builder, builder.udiv(dim, block)) as loop:
                start = builder.mul(loop.index, block)
                for r in range(4):
                    offset = builder.add(start, ir.Constant(dim.type, r * width))
                    part = load(single.data, offset)
                    for q in range(n_rows):
                        d = builder.fsub(load(starts[q], offset), part)
                        builder.store(builder.call(fma, [d, d, builder.load(slots[q][r])]), slots[q][r])
            for q in range(n_rows):
                total = _fold(builder, [builder.load(slot) for slot in slots[q]], width)
                builder.store(total, builder.gep(out.data, [ir.Constant(dim.type, q)]))
            return context.get_dummy_value()

        return types.void(rows, first, vector, sums), codegen

    return squares


def _fold(builder, accumulators: list, width: int):
    """The kernel's sum of its four accumulators, as LLVM IR on SIMD values (the same additions, in its order).

    ``ddot_microk_skylakex-2.c`` (8 lanes) adds each accumulator's upper four lanes to its lower
    four, sums the four results in order, then adds lanes 0 + 2 and 1 + 3 and those two;
    ``ddot_microk_haswell-2.c`` (4 lanes) adds each accumulator's upper two lanes to its lower two,
    sums them as ``(a0 + a1) + (a2 + a3)``, then adds the two lanes.
    """
    from llvmlite import ir

    def half(value, size, upper):
        mask = ir.Constant(ir.VectorType(ir.IntType(32), size), list(range(size, 2 * size) if upper else range(size)))
        return builder.shuffle_vector(value, value, mask)

    halves = [builder.fadd(half(acc, width // 2, False), half(acc, width // 2, True)) for acc in accumulators]
    if width == 8:
        folded = builder.fadd(builder.fadd(builder.fadd(halves[0], halves[1]), halves[2]), halves[3])
        pairs = builder.fadd(half(folded, 2, False), half(folded, 2, True))
    else:
        pairs = builder.fadd(builder.fadd(halves[0], halves[1]), builder.fadd(halves[2], halves[3]))
    return builder.fadd(
        builder.extract_element(pairs, ir.Constant(ir.IntType(32), 0)),
        builder.extract_element(pairs, ir.Constant(ir.IntType(32), 1)),
    )


def _compile() -> dict | None:
    """The compiled loops, or None where numba is missing (the distance loop is compiled once per process)."""
    global _compiled
    if _compiled is not None:
        return _compiled or None
    try:
        from numba import njit
    except ImportError:
        _compiled = {}
        return None
    from selection.scoring.compiled_loops import decision_values, pair_sums

    ddot = _blas_ddot()
    skylakex_many, skylakex_one = _vector_squares(8, SKYLAKEX_ROWS), _vector_squares(8, 1)
    haswell_many, haswell_one = _vector_squares(4, HASWELL_ROWS), _vector_squares(4, 1)

    @njit(nogil=True)
    def squared_distances(rows, vectors, out, layout):
        """``out[i, j]``: libsvm's ``ddot(x - s, x - s)`` for row i and vector j (float64, C-contiguous)."""
        n, dim = rows.shape
        sums = np.empty(max(SKYLAKEX_ROWS, HASWELL_ROWS))
        together = SKYLAKEX_ROWS if layout == SKYLAKEX else HASWELL_ROWS
        grouped = n - n % together if layout != DDOT else 0
        for i in range(0, grouped, together):  # rows against every vector: each vector block is loaded once for all
            for j in range(vectors.shape[0]):
                if layout == SKYLAKEX:
                    skylakex_many(rows, i, vectors[j], sums)
                else:
                    haswell_many(rows, i, vectors[j], sums)
                for q in range(together):
                    out[i + q, j] = sums[q]
        diff = np.empty(dim)
        length = np.full(1, dim, dtype=np.int32)
        step = np.ones(1, dtype=np.int32)
        for i in range(grouped, n):  # the last rows, or every row where the kernel is not replayed
            for j in range(vectors.shape[0]):
                if layout == SKYLAKEX:
                    skylakex_one(rows, i, vectors[j], sums)
                    out[i, j] = sums[0]
                elif layout == HASWELL:
                    haswell_one(rows, i, vectors[j], sums)
                    out[i, j] = sums[0]
                else:
                    for k in range(dim):
                        diff[k] = rows[i, k] - vectors[j, k]
                    out[i, j] = ddot(length.ctypes, diff.ctypes, step.ctypes, diff.ctypes, step.ctypes)

    @njit(nogil=True)
    def row_decision_values(rows, vectors, gamma, starts, counts, coef, rho, out, layout):
        block = 64
        squared = np.empty((block, vectors.shape[0]))
        kernel = np.empty(vectors.shape[0])
        for first in range(0, rows.shape[0], block):
            stop = min(first + block, rows.shape[0])
            squared_distances(rows[first:stop], vectors, squared, layout)
            for i in range(first, stop):
                for v in range(vectors.shape[0]):
                    kernel[v] = math.exp(-gamma * squared[i - first, v])
                pair_sums(kernel, starts, counts, coef, rho, out[i])

    _compiled = {
        "squared_distances": squared_distances,
        "decision_values": decision_values,
        "row_decision_values": row_decision_values,
    }
    return _compiled


def ddot_layout() -> int:
    """Which of OpenBLAS's ``ddot`` kernels the compiled loops replay here, found by asking ``ddot`` itself.

    libsvm's squared distance is whatever OpenBLAS's ``ddot`` returns, and OpenBLAS picks its kernel
    for the machine (``OPENBLAS_CORETYPE`` overrides): AVX-512 machines run the SkylakeX kernel, AVX2
    ones (Haswell, Zen) the Haswell kernel, and the two sum in different orders. Each layout is tried
    on random vectors of several lengths and scales against ``ddot`` itself; the one that gives every
    bit is used, and where neither does the loops call ``ddot`` (:data:`DDOT`, about half as fast).
    """
    global _layout
    if _layout is not None:
        return _layout
    loops = _compile()
    _layout = DDOT
    if loops is None:
        return _layout
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
