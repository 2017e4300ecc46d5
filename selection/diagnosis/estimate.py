"""What the per-clip report scores a selection against, and the frozen classifier's score there.

``pool`` (the default; needs no eval data). The frozen classifier, trained on the picks, is
scored on a *held-out part of the allowed pool*: a stratified sample of the clips the
selection did not pick (the pool's class shares, at least a few dozen clips per class, at most
4,000 clips and at most half of each class),
drawn with a fixed seed, in the configured metric and over every configured seed. Its
confusion matrix is reweighted so that nontargets make up ``nontarget_share`` of the
held-out clips (default 0.96, the eval sets' share in the benchmark's construction: the
targets' dev and test clips against 200 nontarget words, half of them never in the pool);
balanced accuracy (mean recall) does not depend on the weights, macro F1 does, through the
targets' precision. It is a fair stand-in for the eval set because both are drawn from the
same recordings: the targets' pool and eval clips are the same words from the same corpus
splits, and the pool's nontarget words are half of those the eval set holds. It cannot see
the eval set's other nontarget words, so its *level* differs from the benchmark's score
while its *differences* (one pick left out, suspect picks removed) follow the eval set's:
on the built-in English experiment, seed 0, the pool estimate's leave-one-out effects of a
60-clip selection rank like the eval set's (Spearman 0.61; 0.68 for a 4,000-clip sample of
the eval set itself, and -0.01 without the reweighting; ``benchmarks/explain_benchmark.py``).
The held-out clips carry the pool's own label noise: every candidate selection is measured
against the same noise, so it shifts all estimates alike. The unpicked clips outside the
held-out sample are the candidates a repair may add, so no clip is both added and scored on.

``eval``: the eval set itself, exactly as ``evaluate`` scores it (for organisers after a
challenge, and research); every output says so.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from selection.scoring.evaluation import score_predictions
from selection.scoring.fast_predict import predict_shared

if TYPE_CHECKING:
    from selection.inputs.load import LabelledVectors

HOLDOUT_CLIPS = 4000
HOLDOUT_MIN_PER_CLASS = 40
HOLDOUT_SEED = 20240
NONTARGET_SHARE = 0.96
_SHARED_SETUP = threading.Lock()


@dataclass
class Estimate:
    """Clips to score on, and how.

    Attributes
    ----------
    mode : {'pool', 'eval'}
    scored_on : LabelledVectors
        The held-out pool clips, or the eval set.
    candidates : ndarray of int
        Pool rows a repair may add (unpicked, not scored on).
    seeds, metric, class_names
        The configured evaluation seeds, metric and class names.
    description : str
        One sentence: what the figures are measured on.
    class_weights : ndarray or None
        Weight of each true class's confusion row (pool mode), or None: exactly ``evaluate``'s figures.
    shared : dict
        What :func:`score_rows` keeps between scorings (distances, computed on first use).
    """

    mode: str
    scored_on: LabelledVectors
    candidates: np.ndarray
    seeds: list[int]
    metric: str
    class_names: list[str]
    description: str
    class_weights: np.ndarray | None = None
    shared: dict = field(default_factory=dict, repr=False)  # work every scoring of this estimate shares (score_rows)


def holdout_rows(labels: np.ndarray, picked_rows: np.ndarray, *, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(held-out rows, candidate rows): a stratified sample of unpicked pool rows, and the rest."""
    rng = np.random.default_rng(HOLDOUT_SEED)
    unpicked = np.setdiff1d(np.arange(len(labels)), picked_rows)
    # at most half of each class's unpicked clips: the other half are the repair's candidates
    share = min(0.5, HOLDOUT_CLIPS / max(1, len(unpicked)))
    held = []
    for class_id in range(n_classes):
        rows = unpicked[labels[unpicked] == class_id]
        wanted = max(int(round(share * len(rows))), min(HOLDOUT_MIN_PER_CLASS, len(rows) // 2))
        held.append(rng.choice(rows, size=min(wanted, len(rows)), replace=False))
    held_rows = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
    return held_rows, np.setdiff1d(unpicked, held_rows)


def pool_estimate(
    pool: LabelledVectors,
    picked_rows: np.ndarray,
    config: dict,
    class_names: list[str],
    *,
    nontarget_share: float = NONTARGET_SHARE,
) -> Estimate:
    """Score against a held-out part of the allowed pool, nontargets weighted to ``nontarget_share``."""
    from selection.inputs.formats import NONTARGET
    from selection.inputs.load import LabelledVectors

    held, candidates = holdout_rows(pool.labels, picked_rows, n_classes=len(class_names))
    scored_on = LabelledVectors(pool.matrix[held], pool.labels[held], [pool.ids[row] for row in held])
    weights = None
    weighting = ""
    if NONTARGET in class_names:
        nontarget = class_names.index(NONTARGET)
        n_nontarget = int(np.sum(scored_on.labels == nontarget))
        n_target = len(held) - n_nontarget
        if n_nontarget and n_target:
            weights = np.ones(len(class_names))
            weights[nontarget] = nontarget_share / (1 - nontarget_share) * n_target / n_nontarget
            weighting = f", nontargets weighted to {nontarget_share:.0%} of them"
    return Estimate(
        mode="pool",
        scored_on=scored_on,
        candidates=candidates,
        seeds=list(config["eval_random_seeds"]),
        metric=config["metric"],
        class_names=class_names,
        description=(
            f"estimated on {len(held)} held-out pool clips the selection did not pick{weighting} (no eval data "
            f"read); {config['metric']}, mean over {len(config['eval_random_seeds'])} seeds"
        ),
        class_weights=weights,
    )


def eval_estimate(evaluation: LabelledVectors, picked_rows: np.ndarray, pool_size: int, config: dict,
                  class_names: list[str]) -> Estimate:  # fmt: skip
    """Score against the eval set, as ``evaluate`` does."""
    return Estimate(
        mode="eval",
        scored_on=evaluation,
        candidates=np.setdiff1d(np.arange(pool_size), picked_rows),
        seeds=list(config["eval_random_seeds"]),
        metric=config["metric"],
        class_names=class_names,
        description=(
            f"measured on the EVAL SET ({len(evaluation.ids)} clips), as evaluate scores it; "
            f"{config['metric']}, mean over {len(config['eval_random_seeds'])} seeds"
        ),
    )


def score_rows(estimate: Estimate, pool: LabelledVectors, rows: np.ndarray, *, n_jobs: int = -1) -> dict | None:
    """The frozen classifier trained on pool ``rows`` (in that order), scored on ``estimate``; None if one class.

    A report scores many selections that share most of their picks (each pick left out, the flagged ones
    left out, repairs), so the work they share is kept in ``estimate.shared``: libsvm's squared distances
    between the scored clips and each pick (:class:`~selection.scoring.exact_kernel.PoolDistances`) and
    among the picks (:class:`~selection.scoring.precomputed_fits.PairDistances`). The predictions are
    :func:`~selection.scoring.fast_predict.predict_shared`'s, which are the frozen classifier's bit for bit.
    """
    from selection.scoring import exact_kernel
    from selection.scoring.precomputed_fits import PairDistances

    labels = pool.labels[rows]
    if len(np.unique(labels)) < 2:
        return None
    shared = estimate.shared
    with _SHARED_SETUP:  # leave_one_out's two threads may both be first
        if "pairs" not in shared:
            compiled = exact_kernel.usable()
            shared["scored"] = exact_kernel.PoolDistances(estimate.scored_on.matrix, pool.matrix) if compiled else None
            shared["pairs"] = PairDistances(pool.matrix)
    scored = shared["scored"]
    everything = np.arange(len(estimate.scored_on.ids))
    predictions = predict_shared(
        pool.matrix[rows], labels, None if scored is not None else estimate.scored_on.matrix, estimate.seeds,
        n_jobs=n_jobs, distances=None if scored is None else (scored, np.asarray(rows), everything),
        compiled=scored is not None, train_distances=shared["pairs"].among(rows),
    )  # fmt: skip
    return score_predictions(
        estimate.scored_on.labels,
        predictions,
        seeds=estimate.seeds,
        metric=estimate.metric,
        class_names=estimate.class_names,
        class_weights=estimate.class_weights,
    )


def leave_one_out(
    estimate: Estimate,
    pool: LabelledVectors,
    rows: np.ndarray,
    *,
    n_jobs: int = -1,
    progress: Callable = iter,
) -> np.ndarray:
    """Score with each pick left out (NaN where that leaves a single class), in ``rows`` order.

    Two scorings run at once (one with ``n_jobs=1``): one's logistic regression (mostly under the GIL)
    beside the other's SVC fits and kernel sums (outside it). The figures do not depend on it: libsvm's
    fits, whose random generator is process-wide, still run one at a time
    (:data:`~selection.scoring.precomputed_fits.LIBSVM_FITS`).
    """
    from concurrent.futures import ThreadPoolExecutor

    scores = np.full(len(rows), np.nan)

    def without(index: int) -> float:
        figures = score_rows(estimate, pool, np.delete(rows, index), n_jobs=n_jobs)
        return np.nan if figures is None else figures["score"]

    # each scoring sets and restores the process-wide warnings filter; two at once could restore each other's
    # setting, so this thread's own context puts back the caller's filter once both are done
    threads = 1 if n_jobs == 1 else 2
    with warnings.catch_warnings(), ThreadPoolExecutor(threads, thread_name_prefix="leave-one-out") as workers:
        for index, score in zip(progress(range(len(rows))), workers.map(without, range(len(rows)))):
            scores[index] = score
    return scores
