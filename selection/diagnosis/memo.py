"""Figures of a pool that do not depend on the selection, kept for as long as the pool's matrix lives.

A participant who explains one selection after another on one experiment (the notebook, the Python
API, ``bench``) pays once for the pool's principal components, its duplicate threshold, its map and
its vectors' lengths; each report then computes only what depends on its picks. The figures are the
same numbers either way: each is computed by the same code the first time it is asked for.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from typing import TypeVar

import numpy as np

Value = TypeVar("Value")
_entries: dict[int, tuple[weakref.ref, dict]] = {}
# reentrant: a garbage collection inside a locked section can free another pool, whose callback takes it again
_lock = threading.RLock()


def per_pool(matrix: np.ndarray, key: Hashable, compute: Callable[[], Value]) -> Value:
    """``compute()`` the first time ``key`` is asked of this ``matrix`` object, the kept value after that."""
    with _lock:
        name = id(matrix)
        entry = _entries.get(name)
        if entry is None or entry[0]() is not matrix:
            entry = (weakref.ref(matrix, lambda _: _forget(name)), {})
            _entries[name] = entry
        if key in entry[1]:
            return entry[1][key]
    value = compute()
    with _lock:
        return entry[1].setdefault(key, value)


def _forget(name: int) -> None:
    with _lock:
        entry = _entries.get(name)
        if entry is not None and entry[0]() is None:
            del _entries[name]
