"""The shared-work predictor gives exactly the straightforward recipe's predictions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.svm import SVC

from selection.scoring import compiled_loops
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


@pytest.mark.parametrize("n_classes", [2, 3, 6])
def test_logistic_probabilities_are_predict_proba_bit_for_bit(n_classes):
    """The check-free path gives ``predict_proba``'s numbers for two classes (expit) and more (softmax)."""
    from sklearn.linear_model import LogisticRegression

    from selection.scoring import exact_kernel
    from selection.scoring.fast_predict import logistic_probabilities

    train, labels, evaluation = _blobs(n_classes, 40, 2500, seed=30 + n_classes, spread=6.0)
    logistic = LogisticRegression(random_state=5).fit(train, labels % n_classes)
    assert len(np.unique(logistic.predict(evaluation))) > 1
    for rows in (evaluation.astype(np.float64), exact_kernel.aligned_copy(evaluation[700:1724]), evaluation[:3]):
        rows = np.asarray(rows, dtype=np.float64)
        expected = logistic.predict_proba(rows)
        got = logistic_probabilities(logistic, rows)
        assert got.shape == expected.shape and np.array_equal(got, expected)


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


# The compiled loops (exact_kernel.row_decision, exact_coupling): the same bits as libsvm's own.


def _libsvm_probabilities(decision, prob_a, prob_b, n_classes):
    return np.array([svc_probabilities(decision, a, b, n_classes) for a, b in zip(prob_a, prob_b)])


def _hard_decision_values(n_classes: int, n_rows: int, seed: int):
    """Decision values and Platt parameters that reach every branch of libsvm's probability step.

    Ordinary values, values whose sigmoid argument is exactly zero (the ``f >= 0`` branch's edge),
    values far enough out that the sigmoid is clipped at 1e-7 or 1 - 1e-7, pairs that make two
    classes' probabilities equal, and row counts that do not fill the loop's last batch of lanes.
    """
    rng = np.random.default_rng(seed)
    n_pairs = n_classes * (n_classes - 1) // 2
    prob_a = rng.uniform(-6.0, -0.5, (4, n_pairs))
    prob_b = rng.uniform(-0.5, 0.5, (4, n_pairs))
    prob_a[1] = -1.0
    prob_b[1] = 0.0  # seed 1: f = -d exactly
    decision = rng.normal(0.0, 1.0, (n_rows, n_pairs))
    decision[::7] = 0.0  # with seed 1, f == 0 exactly
    decision[1::7] *= 40.0  # saturated: clipped probabilities
    decision[2::7] = np.nextafter(0.0, 1.0)
    decision[3::7, 0] = -decision[3::7, 0]
    decision[4::7] = decision[4::7, :1]  # every pair the same value: symmetric, tied couplings
    return decision, prob_a, prob_b


@pytest.mark.parametrize("n_classes, n_rows", [(2, 1), (2, 130), (3, 63), (4, 64), (6, 65), (6, 1000), (9, 200)])
def test_compiled_probabilities_are_libsvm_bit_for_bit(n_classes, n_rows):
    from selection.scoring import exact_coupling

    decision, prob_a, prob_b = _hard_decision_values(n_classes, n_rows, seed=n_classes * 100 + n_rows)
    expected = _libsvm_probabilities(decision, prob_a, prob_b, n_classes)
    got = exact_coupling.seed_probabilities(decision, prob_a, prob_b, n_classes)
    assert got.shape == expected.shape
    assert np.array_equal(got.view(np.int64), expected.view(np.int64))  # every bit, signed zeros included


@pytest.mark.parametrize("n_classes", [2, 3, 6])
def test_compiled_votes_break_ties_and_near_ties_as_numpy(n_classes):
    """The vote is ``np.argmax(svc_proba + lr_proba)``: exact ties go to the first class, one ulp decides."""
    from selection.scoring import exact_coupling

    decision, prob_a, prob_b = _hard_decision_values(n_classes, 700, seed=n_classes)
    probabilities = _libsvm_probabilities(decision, prob_a, prob_b, n_classes)
    for seed_index in range(len(prob_a)):
        svc_proba = probabilities[seed_index]
        rng = np.random.default_rng(seed_index)
        logistic = rng.dirichlet(np.ones(n_classes), len(decision))
        tied = np.max(svc_proba + logistic, axis=1, keepdims=True) - svc_proba  # every class sums to the same
        logistic[::3] = tied[::3]
        logistic[1::3, 1] = np.nextafter(logistic[1::3, 1], np.inf)
        expected = np.argmax(svc_proba + logistic, axis=1)
        got = exact_coupling.seed_votes(
            decision, prob_a[seed_index : seed_index + 1], prob_b[seed_index : seed_index + 1], logistic
        )
        assert np.array_equal(got[0], expected)
    assert len(np.unique(expected)) > 1


@pytest.mark.parametrize("n_classes", [2, 3, 6])
def test_compiled_decision_values_are_libsvm_bit_for_bit(n_classes):
    from selection.scoring import exact_kernel

    train, labels, evaluation = _blobs(n_classes, 40, 1500, seed=50 + n_classes, spread=4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        svc = SVC().fit(train, labels)
    rows = evaluation.astype(np.float64)
    assert np.array_equal(exact_kernel.row_decision(svc, rows), _raw_decision(svc, rows))


@pytest.mark.parametrize(
    "n_classes, labels_used, spread",
    [(2, (0, 1), 2.0), (3, (0, 1, 2), 3.0), (6, (0, 1, 2, 3, 4, 5), 4.0), (6, (0, 2, 5), 4.0)],
)
def test_compiled_predictions_equal_the_straightforward_recipe(n_classes, labels_used, spread):
    train, labels, evaluation = _blobs(n_classes, 36, 3000, seed=n_classes + 60, spread=spread)
    labels = np.array(labels_used)[labels % len(labels_used)]
    expected = list(predict_straightforward(train, labels, evaluation, SEEDS))
    for n_jobs in (1, 2):
        got = predict_shared(train, labels, evaluation, SEEDS, n_jobs=n_jobs, chunk_rows=700, compiled=True)
        assert all(np.array_equal(a, b) for a, b in zip(expected, got))
    assert len(np.unique(expected[0])) > 1


def test_every_shipped_algorithm_is_scored_as_the_recipe_scores_it(tmp_path):
    """Selections made by each shipped algorithm on three small experiments, scored by the compiled loops."""
    from selection import load_experiment
    from tests.conftest import make_dataset

    for seed in (0, 1, 2):
        root = tmp_path / f"experiment-{seed}"
        make_dataset(root, seed=seed, pool_per_target=(14, 12, 9), eval_per_target=(40, 30, 30), per_word=10)
        experiment = load_experiment(root, cache_dir="off")
        evaluation = experiment.evaluation
        names = ["random", "clean_coverage", "cleanlab"] + (["cross_validation"] if seed == 0 else [])
        for name in names:
            train = experiment._train_vectors(experiment.select(name, 20), dim=evaluation.matrix.shape[1])
            expected = list(predict_straightforward(train.matrix, train.labels, evaluation.matrix, SEEDS))
            got = predict_shared(train.matrix, train.labels, evaluation.matrix, SEEDS, compiled=True)
            assert all(np.array_equal(a, b) for a, b in zip(expected, got)), (seed, name)


def test_a_compiled_loop_that_differs_from_libsvm_is_not_used(monkeypatch):
    from selection.scoring import exact_coupling, exact_kernel

    train, labels, evaluation = _blobs(3, 30, 1200, seed=71, spread=4.0)
    expected = list(predict_straightforward(train, labels, evaluation, SEEDS))
    monkeypatch.setitem(exact_kernel.checks, "fell_back", 0)
    honest = exact_coupling.seed_probabilities
    monkeypatch.setattr(exact_coupling, "seed_probabilities", lambda *a: np.nextafter(honest(*a), np.inf))
    used = []
    monkeypatch.setattr(exact_coupling, "seed_votes", lambda *a: used.append(1))
    got = predict_shared(train, labels, evaluation, SEEDS, compiled=True)
    assert exact_kernel.checks["fell_back"] == 1 and not used  # one ulp off on the checked rows: libsvm's loops
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))


def test_the_compiled_loops_start_once_the_process_has_done_enough_libsvm_work(monkeypatch):
    from selection.scoring import exact_coupling, fast_predict

    train, labels, evaluation = _blobs(3, 30, 500, seed=72, spread=4.0)
    calls = []
    honest = exact_coupling.seed_votes
    monkeypatch.setattr(exact_coupling, "seed_votes", lambda *a: calls.append(1) or honest(*a))
    monkeypatch.setattr(fast_predict, "_coupled_by_libsvm", 0)
    monkeypatch.setattr(fast_predict, "COMPILE_AFTER_PAIRS", 2 * 500 * len(SEEDS))
    for _ in range(2):
        predict_shared(train, labels, evaluation, SEEDS)
    assert not calls and fast_predict._coupled_by_libsvm == 2 * 500 * len(SEEDS)  # two scorings through libsvm
    predict_shared(train, labels, evaluation, SEEDS)
    assert calls  # the third compiles and uses the loops


def _scipy_openblas_architecture() -> str | None:
    import scipy.linalg  # noqa: F401  (loads the OpenBLAS that scikit-learn's libsvm calls)
    from threadpoolctl import threadpool_info

    found = [i for i in threadpool_info() if i.get("internal_api") == "openblas" and "scipy.libs" in i["filepath"]]
    return found[0].get("architecture") if found else None


def test_the_replayed_ddot_kernel_is_ddot_bit_for_bit():
    """Lengths of whole blocks of 32 use the replayed kernel, others call ddot; every row count around the
    kernel's group of rows (4 on AVX-512, 2 on AVX2), on aligned and unaligned rows."""
    from selection.scoring import exact_kernel

    loops = exact_kernel._compile()
    layout = exact_kernel.ddot_layout()
    if _scipy_openblas_architecture() in ("SkylakeX", "Cooperlake", "SapphireRapids", "Haswell", "Zen"):
        assert layout in (compiled_loops.SKYLAKEX, compiled_loops.HASWELL)  # x86-64 machines get the fast path
    rng = np.random.default_rng(9)
    for dim in (32, 96, 1024, 1000, 40):
        for n_rows in range(1, 10):
            block = rng.gamma(0.6, 2.0, (n_rows, dim + 1))
            for rows in (exact_kernel.aligned_copy(block[:, :dim]), np.ascontiguousarray(block)[:, 1:].copy()):
                vectors = np.concatenate([rows[:1] + rng.normal(0, 1e-6, (1, dim)), rng.gamma(0.6, 2.0, (3, dim))])
                expected, got = np.empty((n_rows, 4)), np.empty((n_rows, 4))
                loops["squared_distances"](rows, vectors, expected, compiled_loops.DDOT)
                loops["squared_distances"](rows, vectors, got, exact_kernel._layout_for(dim))
                assert np.array_equal(got, expected), (dim, n_rows)


OTHER_KERNEL_CHECK = """
import json
import numpy as np
from selection.scoring import compiled_loops, exact_kernel
loops = exact_kernel._compile()
layout = exact_kernel.ddot_layout()
rng = np.random.default_rng(11)
equal = []
for n_rows in range(1, 10):
    rows = exact_kernel.aligned_copy(rng.gamma(0.6, 2.0, (n_rows, 1024)))
    vectors = np.concatenate([rows[:1] + rng.normal(0, 1e-7, (1, 1024)), rng.gamma(0.6, 2.0, (5, 1024))])
    expected, got = np.empty((n_rows, 6)), np.empty((n_rows, 6))
    loops["squared_distances"](rows, vectors, expected, compiled_loops.DDOT)
    loops["squared_distances"](rows, vectors, got, layout)
    equal.append(bool(np.array_equal(got, expected)))
print(json.dumps({"layout": layout, "equal": equal}))
"""


@pytest.mark.parametrize("coretype, layout_name", [("Haswell", "HASWELL"), ("SkylakeX", "SKYLAKEX")])
def test_each_replayed_kernel_is_its_openblas_kernel_bit_for_bit(coretype, layout_name):
    """OpenBLAS runs the kernel ``OPENBLAS_CORETYPE`` names: each replay (its group of rows, its fold) is
    checked against the real one, not only against the kernel this machine happens to pick."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from selection.scoring import exact_kernel

    if not exact_kernel.available() or _scipy_openblas_architecture() is None:
        pytest.skip("no numba or no OpenBLAS")
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    needed = {"Haswell": " avx2", "SkylakeX": " avx512f"}[coretype]
    if needed not in flags:
        pytest.skip(f"this CPU cannot run OpenBLAS's {coretype} kernel")
    env = {**os.environ, "OPENBLAS_CORETYPE": coretype}
    done = subprocess.run(
        [sys.executable, "-c", OTHER_KERNEL_CHECK], capture_output=True, text=True, env=env, timeout=300, check=True
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["layout"] == getattr(compiled_loops, layout_name)
    assert all(found["equal"]), found


def test_aligned_buffers_start_on_a_cache_line_and_keep_the_values():
    from selection.scoring import exact_kernel

    rng = np.random.default_rng(2)
    for shape in [(1, 32), (7, 1024), (1024, 1024), (3,)]:
        values = rng.random(shape).astype(np.float32)
        copy = exact_kernel.aligned_copy(values)
        assert copy.ctypes.data % 64 == 0 and copy.dtype == np.float64 and copy.flags.c_contiguous
        assert np.array_equal(copy, values.astype(np.float64))
        assert exact_kernel.aligned_empty(shape).ctypes.data % 64 == 0


def test_a_replayed_kernel_that_is_not_this_machines_is_caught(monkeypatch):
    """The wrong kernel's sums differ in the last bits: the check sees it and libsvm scores, exactly."""
    from selection.scoring import exact_kernel

    layout = exact_kernel.ddot_layout()
    if layout == compiled_loops.DDOT:
        pytest.skip("neither replayed kernel is this machine's")
    other = compiled_loops.HASWELL if layout == compiled_loops.SKYLAKEX else compiled_loops.SKYLAKEX
    train, labels, evaluation = _blobs(4, 30, 1500, seed=73, spread=4.0)
    expected = list(predict_straightforward(train, labels, evaluation, SEEDS))
    monkeypatch.setattr(exact_kernel, "_layout", other)
    monkeypatch.setitem(exact_kernel.checks, "fell_back", 0)
    got = predict_shared(train, labels, evaluation, SEEDS, compiled=True)
    assert exact_kernel.checks["fell_back"] == 1
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))


def test_compile_loops_makes_the_next_scoring_use_them(monkeypatch):
    """What a leaderboard worker calls while it loads: the first scoring after it is already compiled."""
    from selection.scoring import exact_coupling, fast_predict

    monkeypatch.setattr(fast_predict, "_coupled_by_libsvm", 0)
    assert fast_predict.compile_loops()
    calls = []
    honest = exact_coupling.seed_votes
    monkeypatch.setattr(exact_coupling, "seed_votes", lambda *a: calls.append(1) or honest(*a))
    train, labels, evaluation = _blobs(3, 30, 400, seed=74, spread=4.0)
    got = predict_shared(train, labels, evaluation, SEEDS)
    assert calls
    assert all(np.array_equal(a, b) for a, b in zip(predict_straightforward(train, labels, evaluation, SEEDS), got))


# Precomputed-kernel seed fits (selection.scoring.precomputed_fits): libsvm's RBF fits, bit for bit.


@pytest.mark.parametrize("n_classes, n_train, spread", [(2, 25, 2.0), (3, 40, 3.0), (6, 60, 4.0)])
def test_precomputed_seed_fits_are_the_rbf_fits_bit_for_bit(n_classes, n_train, spread):
    from selection.scoring import precomputed_fits
    from selection.scoring.fast_predict import _fit_svc

    pool, pool_labels, train_rows, _ = _pool_split(n_classes, seed=60 + n_classes, spread=spread, n_train=n_train)
    labels = pool_labels[train_rows]
    first = _fit_svc(pool[train_rows], labels, SEEDS[0])
    distances = precomputed_fits.PairDistances(pool).among(train_rows)
    fits = precomputed_fits.seed_fits(first, labels, SEEDS, distances)
    assert fits is not None and all(fit is not None for fit in fits)  # the fast path ran, for every seed
    for seed, fit in zip(SEEDS[1:], fits):
        rbf = _fit_svc(pool[train_rows], labels, seed)
        for name in ("support_", "_dual_coef_", "_intercept_", "_n_support", "probA_", "probB_"):
            assert np.array_equal(getattr(fit, name), getattr(rbf, name)), name
    assert any(not np.array_equal(fit.probA_, first.probA_) for fit in fits)  # the seeds do differ


def test_pair_distances_are_libsvms_for_any_order_and_growth():
    """The kept distances of a pair do not depend on which rows were asked for first, or in what order."""
    from selection.scoring import exact_kernel
    from selection.scoring.precomputed_fits import PairDistances

    pool, _, train_rows, _ = _pool_split(3, seed=71, spread=3.0)
    grown = PairDistances(pool)
    grown.among(train_rows[:10])
    difference, solver = grown.among(train_rows[::-1])
    fresh_difference, fresh_solver = PairDistances(pool).among(train_rows[::-1])
    assert np.array_equal(difference, fresh_difference) and np.array_equal(solver, fresh_solver)
    vectors = pool[train_rows[::-1]].astype(np.float64)
    expected = np.empty((len(vectors), len(vectors)))
    exact_kernel._compile()["squared_distances"](vectors, vectors, expected, compiled_loops.DDOT)  # libsvm's ddot
    assert np.array_equal(difference, expected)


def test_kernel_forms_that_round_apart_send_the_fit_to_libsvm(monkeypatch):
    """Where the solver's float kernel would differ, or the first seed's check fails, libsvm fits every seed."""
    from selection.scoring import precomputed_fits
    from selection.scoring.fast_predict import _fit_svc

    pool, pool_labels, train_rows, eval_rows = _pool_split(3, seed=72, spread=3.0)
    labels = pool_labels[train_rows]
    first = _fit_svc(pool[train_rows], labels, SEEDS[0])
    difference, solver = precomputed_fits.PairDistances(pool).among(train_rows)
    nudged = difference.copy()
    nudged[0, 1] = nudged[1, 0] = difference[0, 1] * (1 + 1e-4)  # beyond a float's rounding
    assert precomputed_fits.seed_fits(first, labels, SEEDS, (nudged, solver)) is None
    assert not precomputed_fits._refused  # one training set's rounding: only this call goes to libsvm
    monkeypatch.setattr(precomputed_fits, "_refused", False)
    honest = precomputed_fits._fit_precomputed

    def off_by_one_ulp(kernel, encoded, seed):
        fit = honest(kernel, encoded, seed)
        fit._probA = np.nextafter(fit._probA, np.inf)
        return fit

    monkeypatch.setattr(precomputed_fits, "_fit_precomputed", off_by_one_ulp)
    assert precomputed_fits.seed_fits(first, labels, SEEDS, (difference, solver)) is None
    assert precomputed_fits._refused  # a failed check is final for the process
    expected = list(predict_straightforward(pool[train_rows], labels, pool[eval_rows], SEEDS))
    got = predict_shared(pool[train_rows], labels, pool[eval_rows], SEEDS, train_distances=(difference, solver))
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))  # through libsvm's fits, still exact


def test_a_new_process_loads_the_compiled_loops_from_numbas_cache(tmp_path):
    """The coupling's, the decision sums' and the distance loops are compiled once per machine: a second process
    finds them in numba's on-disk cache (here a temporary folder) instead of compiling them again, and computes the
    same bits (the distance loop's ``ddot`` address, which differs between processes, is an argument)."""
    import json
    import os
    import subprocess
    import sys

    script = (
        "import json, numpy as np\n"
        "from selection.scoring import compiled_loops\n"
        "from selection.scoring.exact_coupling import seed_probabilities\n"
        "rng = np.random.default_rng(0)\n"
        "p = seed_probabilities(rng.normal(size=(70, 6)), rng.normal(size=(2, 6)), rng.normal(size=(2, 6)), 4)\n"
        "out = np.empty((3, 3))\n"
        "compiled_loops.decision_values(rng.random((5, 4)), np.arange(3), np.arange(4), 0.5, np.array([0, 2]),\n"
        "    np.array([2, 2]), rng.normal(size=(1, 4)), np.zeros(1), out)\n"
        "from selection.scoring import exact_kernel\n"
        "rows, vectors, squared = rng.random((9, 40)), rng.random((3, 40)), np.empty((9, 3))\n"
        "exact_kernel._compile()['squared_distances'](rows, vectors, squared, compiled_loops.DDOT)\n"
        "loops = (compiled_loops.couple, compiled_loops.decision_values, compiled_loops.squared_distances)\n"
        "hits = {f.__name__: sum(f.stats.cache_hits.values()) for f in loops}\n"
        "bits = p.tobytes().hex() + out[:, :1].tobytes().hex() + squared.tobytes().hex()\n"
        "print(json.dumps({'hits': hits, 'bits': bits}))\n"
    )  # fmt: skip
    environment = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [
        json.loads(subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True,
                                  check=True).stdout)
        for _ in range(2)
    ]  # fmt: skip
    assert runs[0]["hits"] == {"couple": 0, "decision_values": 0, "squared_distances": 0}
    assert all(hits >= 1 for hits in runs[1]["hits"].values()), runs[1]["hits"]
    assert runs[0]["bits"] == runs[1]["bits"]
    assert any(tmp_path.rglob("*.nbi"))


def test_the_compiled_loops_run_where_numba_cannot_write_its_cache(tmp_path):
    """Where no cache folder can be made (a container's read-only package folder and home; here a path under a
    file), the loops are compiled in the process instead, and give the same bits."""
    import os
    import subprocess
    import sys

    from selection.scoring import exact_kernel

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    script = (
        "import numpy as np\n"
        "from selection.scoring import compiled_loops, exact_kernel\n"
        "rng = np.random.default_rng(3)\n"
        "rows, vectors, out = rng.random((9, 40)), rng.random((3, 40)), np.empty((9, 3))\n"
        "exact_kernel._compile()['squared_distances'](rows, vectors, out, compiled_loops.DDOT)\n"
        "print(out.tobytes().hex())\n"
    )
    environment = {**os.environ, "NUMBA_CACHE_DIR": str(blocker / "cache")}
    done = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rng = np.random.default_rng(3)
    rows, vectors, expected = rng.random((9, 40)), rng.random((3, 40)), np.empty((9, 3))
    exact_kernel._compile()["squared_distances"](rows, vectors, expected, compiled_loops.DDOT)
    assert done.stdout.strip().splitlines()[-1] == expected.tobytes().hex()
    assert not any(blocker.parent.rglob("*.nbi"))
