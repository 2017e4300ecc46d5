"""The other seeds' SVC fits on a precomputed kernel: libsvm's own models and sigmoids, without its kernel work.

A seed changes only the shuffle of the cross-validation that fits the Platt sigmoids
(:mod:`selection.scoring.fast_predict`), but each ``SVC(probability=True)`` fit still computes the
RBF kernel between its training vectors in every one of its small solves (per class pair, five
folds and the pair itself): at 1024 values per vector that is about four fifths of a fit's time.
libsvm (the pinned scikit-learn 1.8's ``svm.cpp``, dense build) evaluates that kernel in two forms:

- for the solver, ``Kernel::kernel_rbf``: ``exp(-gamma * (x_square[i] + x_square[j] - 2 * dot(x_i, x_j)))``
  with ``x_square[i] = dot(x_i, x_i)``, each ``dot`` BLAS ``ddot``; the solver keeps these values as
  ``float`` in its ``Q`` matrix, and the diagonal ``QD`` as ``double`` (exactly 1.0: the squares cancel);
- for the cross-validation's decision values, ``Kernel::k_function``:
  ``exp(-gamma * ddot(x - y, x - y))``, as ``double``.

With ``kernel="precomputed"`` libsvm reads both from the one matrix it is given, and nothing else of
a fit depends on the vectors. Given the second form, a precomputed fit is therefore the RBF fit bit
for bit whenever, for every pair of training vectors, the two forms round to the same ``float`` (the
solver then sees the same ``Q``; the decision values are the doubles it would compute; the diagonal
is 1.0 in both). :func:`seed_fits` computes both forms with the ``ddot`` libsvm calls and the C
library's ``exp``, checks that agreement for every pair, and fits the first seed both ways: any
difference in support vectors, coefficients, intercepts or sigmoids sends this call, and every
later one in the process, to libsvm's RBF fits. A precomputed fit takes about a fifth of an RBF fit's
time on 60 picks; the squared distances are kept per pair of pool rows (:class:`PairDistances`), so
the per-clip report's leave-one-out scorings compute them once.
"""

from __future__ import annotations

import ctypes
import logging
import math
import threading
import warnings

import numpy as np
from sklearn.svm import SVC

log = logging.getLogger("dataperf")
_refused = False
# libsvm's random generator is process-wide: a fit seeds it and draws from it (the sigmoids' cross-validation),
# so fits in two threads at once would interleave their draws. Every SVC fit of a scoring holds this lock.
LIBSVM_FITS = threading.Lock()


class PairDistances:
    """libsvm's two squared distances between pool rows used as training vectors, computed once per pair.

    Parameters
    ----------
    matrix : ndarray of shape (n, d)
        The pool (float32 or float64); rows are converted to float64 as scikit-learn converts them.
    """

    def __init__(self, matrix: np.ndarray):
        self._matrix = matrix
        self._slot: dict[int, int] = {}
        self._vectors: list[np.ndarray] = []
        self._difference = np.zeros((0, 0))  # ddot(x - y, x - y)
        self._dot = np.zeros((0, 0))  # ddot(x, y)
        self._lock = threading.Lock()  # scorings in two threads ask at once

    def _add(self, new_rows: list[int]) -> None:
        from selection.scoring.exact_kernel import _blas_ddot

        ddot = _blas_ddot()
        double_p = ctypes.POINTER(ctypes.c_double)
        dim = self._matrix.shape[1]
        length, step = ctypes.c_int(dim), ctypes.c_int(1)
        first = len(self._vectors)
        size = first + len(new_rows)
        difference, dot = np.zeros((size, size)), np.zeros((size, size))
        difference[:first, :first], dot[:first, :first] = self._difference, self._dot
        self._vectors += [np.ascontiguousarray(self._matrix[row], dtype=np.float64) for row in new_rows]
        pointers = [vector.ctypes.data_as(double_p) for vector in self._vectors]
        buffer = np.empty(dim)
        buffer_p = buffer.ctypes.data_as(double_p)
        for i in range(first, size):
            for j in range(i + 1):
                np.subtract(self._vectors[i], self._vectors[j], out=buffer)
                value = ddot(ctypes.byref(length), buffer_p, ctypes.byref(step), buffer_p, ctypes.byref(step))
                difference[i, j] = difference[j, i] = value
                value = ddot(ctypes.byref(length), pointers[i], ctypes.byref(step), pointers[j], ctypes.byref(step))
                dot[i, j] = dot[j, i] = value
        self._difference, self._dot = difference, dot
        self._slot.update({row: first + offset for offset, row in enumerate(new_rows)})

    def among(self, pool_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(``k_function``'s, ``kernel_rbf``'s) squared distances among ``pool_rows``, in that order.

        ``kernel_rbf``'s is ``x_square[i] + x_square[j] - 2 * dot(x_i, x_j)``, the same IEEE operations.
        """
        with self._lock:
            missing = [int(row) for row in dict.fromkeys(np.asarray(pool_rows).tolist()) if int(row) not in self._slot]
            if missing:
                self._add(missing)
            slots = np.array([self._slot[int(row)] for row in pool_rows], dtype=np.int64)
            difference, dot = self._difference[np.ix_(slots, slots)], self._dot[np.ix_(slots, slots)]
        squares = np.diagonal(dot)
        return difference, (squares[:, None] + squares[None, :]) - 2 * dot


def _libm_exp(values: np.ndarray) -> np.ndarray:
    """``exp`` of each value by the C library's ``exp``, as libsvm's (numpy's own has SIMD code that may differ)."""
    return np.fromiter(map(math.exp, values.ravel().tolist()), dtype=np.float64, count=values.size).reshape(
        values.shape
    )


# what makes two fits of one training set the same model; a precomputed fit has no support vectors of its own
MODEL = ("support_", "_dual_coef_", "_intercept_", "_n_support")
SIGMOIDS = ("probA_", "probB_")


def same_fit(a: SVC, b: SVC, names: tuple[str, ...] = MODEL) -> bool:
    """Whether the fitted attributes ``names`` of ``a`` and ``b`` are equal, every bit."""
    return all(np.array_equal(getattr(a, name), getattr(b, name)) for name in names)


def _fit_precomputed(kernel: np.ndarray, encoded: np.ndarray, seed: int) -> SVC:
    with warnings.catch_warnings(), LIBSVM_FITS:
        warnings.simplefilter("ignore")
        return SVC(kernel="precomputed", probability=True, random_state=seed).fit(kernel, encoded)


def seed_fits(first: SVC, encoded: np.ndarray, seeds: list[int], distances: tuple[np.ndarray, np.ndarray]):
    """Fits for ``seeds[1:]`` on the precomputed kernel, or None where that would not be libsvm's RBF fit.

    Parameters
    ----------
    first : SVC
        The RBF fit of ``seeds[0]`` on the training rows.
    encoded : ndarray
        The encoded labels it was fitted on.
    seeds : list of int
    distances : (ndarray, ndarray)
        :meth:`PairDistances.among` for the training rows, in their order.

    Returns
    -------
    list of SVC, or None
        One fit per seed after the first, each with the first one's support vectors, coefficients and
        intercepts and its own ``probA_`` and ``probB_``; None when the check fails (the caller then fits
        the RBF SVC for every seed). A seed whose model differs from the first's is not expected (the seed
        only shuffles the sigmoids' cross-validation); its entry is None, for the caller's RBF fit.
    """
    global _refused
    if _refused:
        return None
    gamma = float(first._gamma)
    difference, training = distances
    kernel = _libm_exp(-gamma * difference)
    solver = _libm_exp(-gamma * training)
    if not np.array_equal(kernel.astype(np.float32), solver.astype(np.float32)) or not (
        np.all(np.diagonal(kernel) == 1.0) and np.all(np.diagonal(solver) == 1.0)
    ):
        return None  # this training set's two kernel forms round apart somewhere: libsvm's own fits
    check = _fit_precomputed(kernel, encoded, seeds[0])
    if not same_fit(check, first, MODEL + SIGMOIDS):
        _refused = True
        log.warning("the precomputed-kernel SVC fit differs from libsvm's RBF fit here; using RBF fits from now on")
        return None
    fits = []
    for seed in seeds[1:]:
        fit = _fit_precomputed(kernel, encoded, seed)
        fits.append(fit if same_fit(fit, first) else None)
    return fits
