"""The counted metrics equal scikit-learn's bit for bit, including classes that never occur."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from selection.scoring.metrics import balanced_accuracy, confusion_counts, macro_f1, per_class_figures


def _cases():
    rng = np.random.default_rng(0)
    for case in range(300):
        n_classes = int(rng.integers(2, 8))
        n = int(rng.integers(1, 400))
        # skewed class frequencies, so that some classes are missing from truth, predictions or both
        weights = rng.dirichlet(np.full(n_classes, 0.3))
        truth = rng.choice(n_classes, n, p=weights)
        right = rng.random(n) < rng.random()
        predicted = np.where(right, truth, rng.choice(n_classes, n, p=rng.dirichlet(np.full(n_classes, 0.3))))
        yield pytest.param(truth, predicted, n_classes, id=str(case))
    yield pytest.param(np.zeros(5, int), np.zeros(5, int), 3, id="one class everywhere")
    yield pytest.param(np.zeros(5, int), np.full(5, 2), 3, id="all wrong")


@pytest.mark.parametrize("truth, predicted, n_classes", list(_cases()))
def test_counted_metrics_equal_scikit_learn(truth, predicted, n_classes):
    labels = np.arange(n_classes)
    counts = confusion_counts(truth, predicted, n_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert macro_f1(counts) == f1_score(truth, predicted, average="macro")
        assert balanced_accuracy(counts) == balanced_accuracy_score(truth, predicted)
        expected = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    for want, got in zip(expected, per_class_figures(counts)):
        assert np.array_equal(want, got)
    assert np.array_equal(counts, confusion_matrix(truth, predicted, labels=labels))
