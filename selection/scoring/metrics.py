"""The benchmark's metrics from one confusion matrix, equal to scikit-learn's bit for bit.

scikit-learn's ``f1_score``, ``balanced_accuracy_score``,
``precision_recall_fscore_support`` and ``confusion_matrix`` each re-validate and
re-count the 30,000 eval labels; scoring ten seeds that way costs more than the rest
of the scoring. Here the labels are counted once per seed (``np.bincount``) and every
figure follows from the counts with the same floating-point operations, in the same
order, as scikit-learn 1.8 (pinned); ``tests/test_metrics.py`` compares the two.

Labels are class ids ``0 .. n_classes - 1``.
"""

from __future__ import annotations

import numpy as np


def confusion_counts(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix over every class id (rows: true class, columns: predicted class)."""
    cells = np.asarray(truth, dtype=np.int64) * n_classes + np.asarray(predicted, dtype=np.int64)
    return np.bincount(cells, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _divide_or_zero(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` as float64, 0 where the denominator is 0 (``zero_division=0``)."""
    zero = denominator == 0
    result = np.asarray(numerator, dtype=np.float64) / np.where(zero, 1, denominator).astype(np.float64)
    result[zero] = 0.0
    return result


def per_class_figures(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support per class id (``zero_division=0``)."""
    true_positives = np.diagonal(counts).copy()
    predicted_sum = counts.sum(axis=0)
    true_sum = counts.sum(axis=1)
    precision = _divide_or_zero(true_positives, predicted_sum)
    recall = _divide_or_zero(true_positives, true_sum)
    denominator = 1.0 * true_sum.astype(np.float64) + predicted_sum.astype(np.float64)
    f1 = _divide_or_zero(2.0 * true_positives.astype(np.float64), denominator)
    return precision, recall, f1, true_sum


def macro_f1(counts: np.ndarray) -> float:
    """``f1_score(average="macro")``: the mean F1 over the classes that occur in truth or predictions."""
    present = (counts.sum(axis=0) + counts.sum(axis=1)) > 0
    _, _, f1, _ = per_class_figures(counts[np.ix_(present, present)])
    return float(np.nanmean(f1))


def balanced_accuracy(counts: np.ndarray) -> float:
    """``balanced_accuracy_score``: the mean recall over the classes that occur in truth."""
    in_truth = counts.sum(axis=1) > 0
    present = in_truth | (counts.sum(axis=0) > 0)
    kept = counts[np.ix_(present, present)]
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.diagonal(kept) / kept.sum(axis=1)
    return float(np.mean(recall[~np.isnan(recall)]))


METRICS = {"macro_f1": macro_f1, "balanced_accuracy": balanced_accuracy}
