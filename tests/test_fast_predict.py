"""The shared-work predictor gives exactly the straightforward recipe's predictions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.svm import SVC

from selection.scoring.evaluation import predict_straightforward
from selection.scoring.fast_predict import _raw_decision, predict_shared, svc_probabilities

SEEDS = [5, 69, 98, 70, 95]


def _blobs(n_classes: int, n_train: int, n_eval: int, seed: int, spread: float):
    rng = np.random.default_rng(seed)
    centers = rng.gamma(1.0, 1.0, (n_classes, 1024))
    train_labels = np.arange(n_train) % n_classes
    eval_labels = rng.integers(0, n_classes, n_eval)
    noise = lambda n: rng.normal(0, spread, (n, 1024))  # noqa: E731
    train = np.maximum(centers[train_labels] + noise(n_train), 0).astype(np.float32)
    evaluation = np.maximum(centers[eval_labels] + noise(n_eval), 0).astype(np.float32)
    return train, train_labels, evaluation


@pytest.mark.parametrize(
    "n_classes, labels_used, spread",
    [(2, (0, 1), 2.0), (3, (0, 1, 2), 3.0), (6, (0, 1, 2, 3, 4, 5), 4.0), (6, (0, 2, 5), 4.0)],
)
def test_predictions_equal_the_straightforward_recipe(n_classes, labels_used, spread):
    train, labels, evaluation = _blobs(n_classes, 36, 3000, seed=n_classes, spread=spread)
    mapping = np.array(labels_used)
    labels = mapping[labels % len(labels_used)]
    expected = list(predict_straightforward(train, labels, evaluation, SEEDS))
    shared = predict_shared(train, labels, evaluation, SEEDS, chunk_rows=700)
    for want, got in zip(expected, shared):
        assert np.array_equal(want, got)
    assert len(np.unique(expected[0])) > 1


@pytest.mark.parametrize("n_classes", [2, 4, 6])
def test_probabilities_are_bitwise_libsvm(n_classes):
    train, labels, evaluation = _blobs(n_classes, 30, 2000, seed=10 + n_classes, spread=5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        svc = SVC(probability=True, random_state=3).fit(train, labels)
        expected = svc.predict_proba(evaluation)
    got = svc_probabilities(_raw_decision(svc, evaluation), svc.probA_, svc.probB_, n_classes)
    assert np.array_equal(expected, got)


def test_parallel_chunks_give_the_straightforward_predictions():
    train, labels, evaluation = _blobs(4, 24, 3000, seed=7, spread=4.0)
    expected = list(predict_straightforward(train, labels, evaluation, SEEDS))
    parallel = predict_shared(train, labels, evaluation, SEEDS, n_jobs=2, chunk_rows=150)
    assert all(np.array_equal(a, b) for a, b in zip(expected, parallel))


def test_the_vote_is_the_argmax_of_the_sum_ties_and_near_ties_included():
    """``np.average`` of the two probability arrays and their plain sum have the same argmax."""
    rng = np.random.default_rng(7)
    rows = []
    for k in (2, 3, 6):
        svc = rng.dirichlet(np.ones(k), 2000)
        lr = rng.dirichlet(np.full(k, 0.3), 2000)
        rows.append((svc, lr))
        # exact ties between the first two classes, and entries one ulp apart
        tied_svc, tied_lr = svc.copy(), lr.copy()
        tied_svc[:, 1], tied_lr[:, 1] = tied_svc[:, 0], tied_lr[:, 0]
        rows.append((tied_svc, tied_lr))
        apart = tied_svc.copy()
        apart[:, 1] = np.nextafter(apart[:, 0], 1.0)
        rows.append((apart, tied_lr))
        tiny = np.full((50, k), 1e-310)
        tiny[:, 0] = 1.0 - (k - 1) * 1e-310
        rows.append((tiny, tiny[:, ::-1].copy()))
    for svc, lr in rows:
        average = np.average(np.asarray([svc, lr]), axis=0, weights=None)
        assert np.array_equal(np.argmax(average, axis=1), np.argmax(svc + lr, axis=1))


def _pool_split(n_classes: int, seed: int, spread: float, n_train: int = 30, n_pool: int = 2500):
    """A pool of blobs, and training rows drawn from it (the cross-validation baseline's situation)."""
    train, labels, evaluation = _blobs(n_classes, n_train, n_pool, seed=seed, spread=spread)
    pool = np.concatenate([train, evaluation])
    rng = np.random.default_rng(seed)
    pool_labels = np.concatenate([labels, rng.integers(0, n_classes, n_pool)])
    train_rows = rng.permutation(n_train)
    eval_rows = np.setdiff1d(np.arange(len(pool)), train_rows)
    return pool, pool_labels, train_rows, eval_rows


@pytest.mark.parametrize("n_classes", [2, 3, 6])
def test_shared_distances_give_libsvm_decision_values_bit_for_bit(n_classes):
    from selection.scoring import exact_kernel

    pool, pool_labels, train_rows, eval_rows = _pool_split(n_classes, seed=20 + n_classes, spread=4.0)
    distances = exact_kernel.PoolDistances(pool)
    for fit in range(3):  # later fits reuse some columns and add others
        rows = np.concatenate([train_rows[fit:], train_rows[:fit]])[: 24 + 2 * fit]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            svc = SVC().fit(pool[rows], pool_labels[rows])
        got = distances.decision(svc, rows, eval_rows)
        expected = _raw_decision(svc, pool[eval_rows].astype(np.float64))
        assert got is not None and got.dtype == np.float64
        assert np.array_equal(got, expected)  # every value, every bit
    assert exact_kernel.checks["fell_back"] == 0


@pytest.mark.parametrize("n_classes, spread", [(2, 2.0), (4, 4.0), (6, 4.0)])
def test_predictions_from_shared_distances_equal_the_straightforward_recipe(n_classes, spread):
    from selection.scoring import exact_kernel

    pool, pool_labels, train_rows, eval_rows = _pool_split(n_classes, seed=30 + n_classes, spread=spread)
    expected = list(predict_straightforward(pool[train_rows], pool_labels[train_rows], pool[eval_rows], SEEDS))
    got = predict_shared(
        pool[train_rows], pool_labels[train_rows], None, SEEDS, n_jobs=2, chunk_rows=700,
        distances=(exact_kernel.PoolDistances(pool), train_rows, eval_rows),
    )  # fmt: skip
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))
    assert len(np.unique(expected[0])) > 1


def test_a_shared_distance_that_differs_from_libsvm_sends_every_fit_to_libsvm(monkeypatch):
    from selection.scoring import exact_kernel

    pool, pool_labels, train_rows, eval_rows = _pool_split(3, seed=41, spread=4.0)
    expected = list(predict_straightforward(pool[train_rows], pool_labels[train_rows], pool[eval_rows], SEEDS))
    monkeypatch.setitem(exact_kernel.checks, "fell_back", 0)
    honest = exact_kernel.libsvm_decision
    monkeypatch.setattr(exact_kernel, "libsvm_decision", lambda svc, rows: np.nextafter(honest(svc, rows), np.inf))
    distances = exact_kernel.PoolDistances(pool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        svc = SVC().fit(pool[train_rows], pool_labels[train_rows])
    assert distances.decision(svc, train_rows, eval_rows) is None  # one ulp off: refused
    assert exact_kernel.checks["fell_back"] == 1
    monkeypatch.setattr(exact_kernel, "libsvm_decision", honest)
    got = predict_shared(
        pool[train_rows], pool_labels[train_rows], None, SEEDS, distances=(distances, train_rows, eval_rows)
    )
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))  # through libsvm, still exact
    assert distances.decision(svc, train_rows, eval_rows) is None  # and it stays refused in this process
