"""The frozen evaluator: train the benchmark's classifier on a selection and score it.

The model is fixed by the benchmark and is not a setting: for each evaluation
seed ``s``, a soft-voting ensemble of ``SVC(probability=True, random_state=s)``
and ``LogisticRegression(random_state=s)`` is fit on the selected clips and
predicts every evaluation clip; the score is the mean of the metric over seeds.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from selection.scoring.metrics import METRICS, confusion_counts, per_class_figures

if TYPE_CHECKING:
    from sklearn.ensemble import VotingClassifier

    from selection.inputs.load import LabelledVectors


def frozen_classifier(seed: int) -> VotingClassifier:
    """The benchmark's classifier for one evaluation seed."""
    from sklearn.ensemble import VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    return VotingClassifier(
        estimators=[
            ("svm", SVC(probability=True, random_state=seed)),
            ("lr", LogisticRegression(random_state=seed)),
        ],
        voting="soft",
    )


def predict_straightforward(
    train_matrix: np.ndarray, train_labels: np.ndarray, eval_matrix: np.ndarray, seeds: list[int]
) -> Iterator[np.ndarray]:
    """The recipe as written: for every seed, fit the ensemble and predict the eval set."""
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = frozen_classifier(seed).fit(train_matrix, train_labels)
            yield model.predict(eval_matrix)


def metric_value(metric: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    """``macro_f1`` or ``balanced_accuracy`` as scikit-learn computes it."""
    from sklearn.metrics import balanced_accuracy_score, f1_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if metric == "macro_f1":
            return float(f1_score(truth, predicted, average="macro"))
        if metric == "balanced_accuracy":
            return float(balanced_accuracy_score(truth, predicted))
    raise ValueError(f"unknown metric {metric!r}")


def score_predictions(
    truth: np.ndarray,
    predictions: list[np.ndarray],
    *,
    seeds: list[int],
    metric: str,
    class_names: list[str],
    class_weights: np.ndarray | None = None,
) -> dict:
    """The results document: score, per-seed scores, both metrics, per-class figures.

    Per-class precision, recall and F1 are means over seeds; the confusion matrix
    sums the seeds' matrices (rows: true class, columns: predicted class).
    ``class_weights`` (the per-clip report's pool estimate only; never the benchmark's score)
    weights each true class's row of the confusion matrix before any figure is computed;
    supports and the confusion matrix stay counts.
    """
    n_classes = len(class_names)
    per_seed = []
    both = {name: [] for name in METRICS}
    class_figures = np.zeros((3, n_classes))
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    support = np.bincount(np.asarray(truth, dtype=np.int64), minlength=n_classes)
    for seed, predicted in zip(seeds, predictions):
        counts = confusion_counts(truth, predicted, n_classes)
        confusion += counts
        if class_weights is not None:
            counts = counts * class_weights[:, None]
        for name, compute in METRICS.items():
            both[name].append(compute(counts))
        per_seed.append({"seed": seed, "score": both[metric][-1]})
        precision, recall, f1, _ = per_class_figures(counts)
        class_figures += np.array([precision, recall, f1])
    class_figures /= len(seeds)
    return {
        "metric": metric,
        "score": float(np.mean(both[metric])),
        "score_std": float(np.std(both[metric])),
        "per_seed": per_seed,
        "macro_f1": float(np.mean(both["macro_f1"])),
        "balanced_accuracy": float(np.mean(both["balanced_accuracy"])),
        "per_class": {
            name: {
                "precision": float(class_figures[0, i]),
                "recall": float(class_figures[1, i]),
                "f1": float(class_figures[2, i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": {
            "labels": list(class_names),
            "matrix": confusion.tolist(),
            "summed_over_seeds": len(seeds),
        },
    }


def evaluate_selection(
    train: LabelledVectors,
    evaluation: LabelledVectors,
    *,
    seeds: list[int],
    metric: str,
    class_names: list[str],
    method: str = "shared",
    n_jobs: int = 1,
    predictions_out: list | None = None,
) -> dict:
    """Score a loaded selection on a loaded eval set with the frozen classifier.

    Parameters
    ----------
    train, evaluation : LabelledVectors
        Rows in the benchmark's order (see :mod:`selection.inputs.load`).
    seeds : list of int
        Evaluation seeds; the score is the mean over them.
    metric : {'macro_f1', 'balanced_accuracy'}
    class_names : list of str
        Class names by class id.
    method : {'shared', 'straightforward'}, default='shared'
        ``shared`` computes once what is identical across seeds
        (:mod:`selection.scoring.fast_predict`); ``straightforward`` refits and predicts
        everything per seed. Both give the same predictions.
    n_jobs : int, default=1
        Seeds run in parallel through joblib (``shared`` only).
    predictions_out : list, optional
        Receives each seed's predicted class ids (arrays of shape (n_eval,)), for analyses that
        resample the eval clips with the predictions fixed.

    Returns
    -------
    dict
        See :func:`score_predictions`.
    """
    if method == "straightforward":
        predictions = list(predict_straightforward(train.matrix, train.labels, evaluation.matrix, seeds))
    elif method == "shared":
        from selection.scoring.fast_predict import predict_shared

        predictions = predict_shared(train.matrix, train.labels, evaluation.matrix, seeds, n_jobs=n_jobs)
    else:
        raise ValueError(f"unknown method {method!r}")
    if predictions_out is not None:
        predictions_out.extend(predictions)
    return score_predictions(evaluation.labels, predictions, seeds=seeds, metric=metric, class_names=class_names)


def format_results(results: dict) -> str:
    """A short human-readable summary of a results document."""
    lines = [
        f"score ({results['metric']}): {results['score']:.4f} "
        f"(std {results['score_std']:.4f} over {len(results['per_seed'])} seeds)",
        f"macro_f1: {results['macro_f1']:.4f}   balanced_accuracy: {results['balanced_accuracy']:.4f}",
        f"{'class':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}",
    ]
    for name, figures in results["per_class"].items():
        lines.append(
            f"{name:<16}{figures['precision']:>10.3f}{figures['recall']:>10.3f}"
            f"{figures['f1']:>10.3f}{figures['support']:>10d}"
        )
    return "\n".join(lines)
