"""The compiled loops of :mod:`selection.scoring.exact_coupling` and :mod:`selection.scoring.exact_kernel`
that numba can keep in its on-disk cache.

Module-level functions, so that numba can cache their machine code beside this file (or in the user's
cache folder where this one is read-only): a new process then loads them in a fraction of a second
instead of compiling them for several seconds (the coupling's loops; the kernel's distance loops and
decision sums). The distance loop takes the address of OpenBLAS's ``ddot``, known only at run time, as
an argument, so that its machine code holds no address and can be cached. The cache is keyed by this
file and the CPU, so a cached loop is the one this machine would compile; where no cache folder is
writable, the loops are compiled in each process. Importing this module imports numba.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

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


DDOT, SKYLAKEX, HASWELL = 0, 1, 2  # how the loops get libsvm's squared distance (see exact_kernel.ddot_layout)
# Rows run against each support vector at once: AVX-512 has 32 registers for 4 rows' 16 accumulators,
# AVX2 16 registers, for 2 rows' 8 (more would spill them to memory).
SKYLAKEX_ROWS, HASWELL_ROWS = 4, 2


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


SKYLAKEX_MANY, SKYLAKEX_ONE = _vector_squares(8, SKYLAKEX_ROWS), _vector_squares(8, 1)
HASWELL_MANY, HASWELL_ONE = _vector_squares(4, HASWELL_ROWS), _vector_squares(4, 1)


@intrinsic
def ddot_at(typingctx, address, length, x, step, y):
    """``ddot(length, x, step, y, step)`` of the BLAS function at ``address`` (Fortran interface: pointers).

    The address is an argument, not a constant of the machine code, so the loops that call it can be
    cached: it differs between processes.
    """

    def codegen(context, builder, signature, args):
        kinds, values = signature.args[1:], args[1:]
        arrays = [context.make_array(kind)(context, builder, value) for kind, value in zip(kinds, values)]
        n, xs, inc, ys = (array.data for array in arrays)
        function = ir.FunctionType(ir.DoubleType(), [n.type, xs.type, inc.type, ys.type, inc.type])
        pointer = builder.inttoptr(args[0], function.as_pointer())
        return builder.call(pointer, [n, xs, inc, ys, inc])

    return types.float64(address, length, x, step, y), codegen


@compiled
def squared_distances(rows, vectors, out, layout, ddot_address):
    """``out[i, j]``: libsvm's ``ddot(x - s, x - s)`` for row i and vector j (float64, C-contiguous).

    ``layout``: :data:`SKYLAKEX` or :data:`HASWELL` replays that ``ddot`` kernel; :data:`DDOT` calls the
    ``ddot`` at ``ddot_address`` (``exact_kernel.ddot_layout`` says which gives ``ddot``'s bits here).
    """
    n, dim = rows.shape
    sums = np.empty(max(SKYLAKEX_ROWS, HASWELL_ROWS))
    together = SKYLAKEX_ROWS if layout == SKYLAKEX else HASWELL_ROWS
    grouped = n - n % together if layout != DDOT else 0
    for i in range(0, grouped, together):  # rows against every vector: each vector block is loaded once for all
        for j in range(vectors.shape[0]):
            if layout == SKYLAKEX:
                SKYLAKEX_MANY(rows, i, vectors[j], sums)
            else:
                HASWELL_MANY(rows, i, vectors[j], sums)
            for q in range(together):
                out[i + q, j] = sums[q]
    diff = np.empty(dim)
    length = np.full(1, dim, dtype=np.int32)
    step = np.ones(1, dtype=np.int32)
    for i in range(grouped, n):  # the last rows, or every row where the kernel is not replayed
        for j in range(vectors.shape[0]):
            if layout == SKYLAKEX:
                SKYLAKEX_ONE(rows, i, vectors[j], sums)
                out[i, j] = sums[0]
            elif layout == HASWELL:
                HASWELL_ONE(rows, i, vectors[j], sums)
                out[i, j] = sums[0]
            else:
                for k in range(dim):
                    diff[k] = rows[i, k] - vectors[j, k]
                out[i, j] = ddot_at(ddot_address, length, diff, step, diff)


@compiled
def row_decision_values(rows, vectors, gamma, starts, counts, coef, rho, out, layout, ddot_address):
    """Each row's decision values: :func:`squared_distances` in blocks of 64 rows, then ``exp(-gamma * d)`` and
    :func:`pair_sums`."""
    block = 64
    squared = np.empty((block, vectors.shape[0]))
    kernel = np.empty(vectors.shape[0])
    for first in range(0, rows.shape[0], block):
        stop = min(first + block, rows.shape[0])
        squared_distances(rows[first:stop], vectors, squared, layout, ddot_address)
        for i in range(first, stop):
            for v in range(vectors.shape[0]):
                kernel[v] = math.exp(-gamma * squared[i - first, v])
            pair_sums(kernel, starts, counts, coef, rho, out[i])
