"""The participants' plugin API, unchanged from the DataPerf speech benchmark.

A selection algorithm subclasses :class:`TrainingSetSelection` and implements
:meth:`TrainingSetSelection.select`, returning a :class:`TrainingSet` of at most
``train_size`` clip IDs from the allowed pool. The harness loads the class named
by ``selection_algorithm_module`` and ``selection_algorithm_class`` in the config.

``allowed_embeddings`` has the benchmark's documented shape::

    {"targets": {word: [{"ID": str, "feature_vector": np.ndarray, "audio": np.ndarray?}, ...]},
     "nontargets": [{"ID": ..., "feature_vector": ..., "audio": ...?}, ...]}

so code written for the benchmark runs as it is. :attr:`TrainingSetSelection.pool`
offers the same clips as arrays, built once on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from selection.inputs.formats import EMBEDDING_DIM, NONTARGET


@dataclass
class TrainingSet:
    """A selection: ``targets`` maps each target word to clip IDs; ``nontargets`` lists clip IDs."""

    targets: dict[str, list[str]]
    nontargets: list[str] = field(default_factory=list)


@dataclass
class Pool:
    """The allowed pool as arrays, rows in the benchmark's order (targets, then nontargets).

    Attributes
    ----------
    matrix : ndarray of shape (N, D), float32
        D is 1024 for the published data; an experiment made by ``selection.embed`` has its model's length.
    labels : ndarray of shape (N,), int64
        Class ids: 0 is nontarget, targets sorted by name get 1..k.
    ids : list of str, length N
    class_names : list of str
        ``class_names[label]`` is the word (or ``"nontarget"``) of a class id.
    """

    matrix: np.ndarray
    labels: np.ndarray
    ids: list[str]
    class_names: list[str]

    def to_training_set(self, rows: np.ndarray | list[int]) -> TrainingSet:
        """The clips at ``rows`` as a :class:`TrainingSet`, in the order given."""
        targets: dict[str, list[str]] = {name: [] for name in self.class_names[1:]}
        nontargets: list[str] = []
        for row in rows:
            label = int(self.labels[row])
            if label == 0:
                nontargets.append(self.ids[row])
            else:
                targets[self.class_names[label]].append(self.ids[row])
        return TrainingSet(targets=targets, nontargets=nontargets)


class TrainingSetSelection:
    """Base class of selection algorithms.

    Parameters
    ----------
    allowed_embeddings : dict
        The allowed pool in the benchmark's shape (see the module docstring).
    train_size : int
        The most clips :meth:`select` may return.
    config : dict
        The whole harness config, with any keys a participant added.
    audio_flag : bool, default=False
        Whether each clip dict also holds ``"audio"`` (16 kHz samples).

    Attributes
    ----------
    embeddings : dict
        ``allowed_embeddings``, unchanged.
    train_size : int
    config : dict
    audio_flag : bool
    random_seed : int
        ``config["selection_random_seed"]``; the only source of randomness.
    """

    def __init__(
        self,
        allowed_embeddings: dict[str, Any],
        train_size: int,
        config: dict[str, Any],
        audio_flag: bool = False,
    ) -> None:
        self.embeddings = allowed_embeddings
        self.train_size = train_size
        self.config = config
        self.audio_flag = audio_flag
        self.random_seed = config.get("selection_random_seed", 0)
        self._pool: Pool | None = None

    @property
    def train_set_size(self) -> int:
        """Alias of :attr:`train_size`, the name older benchmark code uses."""
        return self.train_size

    @property
    def pool(self) -> Pool:
        """The allowed pool as arrays (float32 matrix, class ids, IDs, class names)."""
        if self._pool is None:
            self._pool = pool_from_embeddings(self.embeddings)
        return self._pool

    def select(self) -> TrainingSet:
        """Return at most :attr:`train_size` clips of the allowed pool."""
        raise NotImplementedError


def pool_from_embeddings(embeddings: dict[str, Any]) -> Pool:
    """Stack the benchmark-shaped embeddings dict into a :class:`Pool`."""
    class_names = [NONTARGET, *sorted(embeddings["targets"])]
    class_id = {name: i for i, name in enumerate(class_names)}
    clips = [(class_id[w], clip) for w, items in embeddings["targets"].items() for clip in items]
    clips += [(0, clip) for clip in embeddings["nontargets"]]
    dim = len(clips[0][1]["feature_vector"]) if clips else EMBEDDING_DIM
    matrix = np.empty((len(clips), dim), dtype=np.float32)
    for row, (_, clip) in enumerate(clips):
        matrix[row] = clip["feature_vector"]
    labels = np.array([label for label, _ in clips], dtype=np.int64)
    return Pool(matrix=matrix, labels=labels, ids=[clip["ID"] for _, clip in clips], class_names=class_names)
