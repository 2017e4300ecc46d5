"""Cleaning plus coverage: drop clips whose neighbours disagree with their label, then pick
representatives that cover each class.

1. Reduce the pool with PCA (``coverage_pca_dims``, default 64) and L2-normalize.
2. Cleaning: a clip is kept when at least ``coverage_min_agreement`` (default 0.5) of its
   ``coverage_neighbours`` (default 10) nearest pool neighbours share its label. Mislabeled
   clips sit inside another word's cluster and badly cut ones in a mixed "silence" region,
   so most fail this test. Two stricter tests catch most of the rest:

   - a nontarget clip is kept only when at least ``coverage_min_word_neighbours`` (default 1)
     of its neighbours are clips of its own word (the first component of a clip ID names its
     word; words with fewer than ``MIN_WORD_CLIPS`` clips are exempt). Nontargets are one class
     of many words, so a nontarget clip that is really another word, mostly silence or mostly
     a neighbouring word still has nontarget neighbours, but seldom one of its own word: such
     clips pass the first test, and the silent ones of many words form a tidy cluster that
     k-means would put a centre on;
   - a target clip is *picked* (step 4) only when at least ``coverage_min_target_agreement``
     (default 0.7) of its neighbours share its label. A clip cut into a neighbouring word sits
     between the two words, often with about half of its neighbours still its own word's.
     Such clips still shape the clustering, so the picks keep the target word's spread;
   - nor is a target clip picked when it points away from its word's clips: one minus its cosine to
     the word's mean direction (in this view) more than ``coverage_max_off_centre`` (default 3; 0
     turns the test off) robust spreads above the word's median, the per-clip report's ``badly
     cut?`` evidence. Badly cut clips sit together, so their neighbours can vouch for them.

   A class that a test would leave empty keeps what the looser test kept.
3. Budget: ``coverage_nontarget_fraction`` of the budget goes to nontargets, the rest is
   shared equally by the target words. Its default depends on the configured metric, because
   the two metrics reward different picks (see docs/reference.md, "Which metric"): 0.4 for ``macro_f1``, where
   every nontarget accepted as a keyword costs precision and the classifier needs many
   nontarget examples to learn where keywords end (in the broad peak, 0.3-0.5, on all three
   default experiments at 25 and 60 clips). For ``balanced_accuracy`` the nontarget class is one
   recall among k + 1, and how many nontarget picks it needs depends on the experiment: with
   few targets, or a pool that holds only part of the nontarget vocabulary, 0.125 of the budget
   leaves nontarget recall low. So the fraction is chosen from the allowed pool alone
   (:func:`choose_nontarget_fraction`): each of ``BALANCED_ACCURACY_FRACTIONS`` selects from 70%
   of the pool, the frozen classifier trained on that pick is scored (balanced accuracy) on the
   other 30%, and the best fraction selects from the whole pool. No eval data is read.
4. Coverage: within each class, k-means (on the kept clips) with one centre per clip to pick;
   the trusted clip nearest each centre is chosen. For nontargets this spreads the picks over
   many words.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from selection.diagnosis.evidence import OFF_CENTRE_SPREADS, TYPICAL_MIN_CLIPS, off_centre_scores
from selection.implementations.random_selection import pick_per_class
from selection.inputs.validation import clip_word
from selection.selection import TrainingSet, TrainingSetSelection

NONTARGET_FRACTION_BY_METRIC = {"macro_f1": 0.4, "balanced_accuracy": 0.125}
# candidates under balanced accuracy, and the pool's held-out share that judges them (chosen on the tune half
# of the evaluation family, docs/participants.md)
BALANCED_ACCURACY_FRACTIONS = (0.125, 0.2, 0.3)
HOLDOUT_SHARE = 0.3
HOLDOUT_SEEDS = 5
MIN_WORD_CLIPS = 3  # the own-word test applies to words with at least this many clips


def pca_view(matrix: np.ndarray, dims: int, *, seed: int) -> np.ndarray:
    """The rows projected on their first ``dims`` principal components (fewer if the data has fewer), float64."""
    dims = max(1, min(dims, matrix.shape[0] - 1, matrix.shape[1]))
    return PCA(n_components=dims, random_state=seed).fit_transform(matrix.astype(np.float64))


def nearest_rows(space: np.ndarray, neighbours: int = 10) -> np.ndarray:
    """Each row's ``neighbours`` nearest other rows (fewer if there are fewer), shape (N, neighbours)."""
    neighbours = min(neighbours, len(space) - 1)
    _, nearest = NearestNeighbors(n_neighbors=neighbours + 1).fit(space).kneighbors(space)
    return nearest[:, 1:]


def pick_representatives(
    space: np.ndarray, rows: np.ndarray, count: int, *, seed: int, candidates: np.ndarray | None = None
) -> np.ndarray:
    """``count`` rows nearest the centres of a k-means clustering of ``rows``.

    The picks are drawn from ``candidates`` (a subset of ``rows``) where it holds at least
    ``count`` rows, else from ``rows``: the centres follow every row, the picks only trusted ones.
    """
    if count >= len(rows):
        return rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        centres = KMeans(n_clusters=count, n_init=3, random_state=seed).fit(space[rows]).cluster_centers_
    if candidates is not None and len(candidates) >= count:
        rows = candidates
    chosen: list[int] = []
    taken = np.zeros(len(rows), dtype=bool)
    for centre in centres:
        distance = np.linalg.norm(space[rows] - centre, axis=1)
        distance[taken] = np.inf
        best = int(np.argmin(distance))
        taken[best] = True
        chosen.append(int(rows[best]))
    return np.array(chosen, dtype=np.int64)


def select_clean_coverage(
    matrix: np.ndarray,
    labels: np.ndarray,
    budget: int,
    *,
    seed: int,
    pca_dims: int = 64,
    neighbours: int = 10,
    min_agreement: float = 0.5,
    nontarget_fraction: float = 0.4,
    words: np.ndarray | None = None,
    min_word_neighbours: int = 1,
    min_target_agreement: float = 0.7,
    max_off_centre: float = OFF_CENTRE_SPREADS,
) -> np.ndarray:
    """Row indices of a cleaned, class-covering selection of at most ``budget`` rows.

    Parameters
    ----------
    matrix : ndarray of shape (N, D)
    labels : ndarray of shape (N,)
        Class ids; 0 is nontarget.
    budget : int
    seed : int
    pca_dims, neighbours, min_agreement, nontarget_fraction, min_word_neighbours, min_target_agreement, max_off_centre
        See the module docstring.
    words : ndarray of shape (N,), optional
        Each clip's word (the first component of its ID); without it the nontarget word test is skipped.

    Returns
    -------
    ndarray of shape (<= budget,)
    """
    space, kept, trusted = _cleaned_view(
        matrix, labels, seed=seed, pca_dims=pca_dims, neighbours=neighbours, min_agreement=min_agreement,
        words=words, min_word_neighbours=min_word_neighbours, min_target_agreement=min_target_agreement,
        max_off_centre=max_off_centre,
    )  # fmt: skip
    return _covering_picks(space, kept, trusted, budget, nontarget_fraction, seed=seed)


def _cleaned_view(
    matrix: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int,
    pca_dims: int,
    neighbours: int,
    min_agreement: float,
    words: np.ndarray | None = None,
    min_word_neighbours: int = 1,
    min_target_agreement: float = 0.7,
    max_off_centre: float = OFF_CENTRE_SPREADS,
) -> tuple[np.ndarray, dict, np.ndarray]:
    """Steps 1-2: the normalized PCA space, each class's rows that pass the cleaning, and a mask
    of shape (N,) of the kept rows that representatives may be drawn from (trusted).

    A class that a test would leave empty keeps every row (agreement) or what passed the
    agreement test (own word); a target word with no trusted row draws from all its kept rows.
    """
    space = pca_view(matrix, pca_dims, seed=seed)
    space /= np.linalg.norm(space, axis=1, keepdims=True) + 1e-12
    nearest = nearest_rows(space, neighbours)
    agreement = (labels[nearest] == labels[:, None]).mean(axis=1)
    same_word = None
    if words is not None and min_word_neighbours > 0:
        same_word = (words[nearest] == words[:, None]).sum(axis=1)
        _, word_index, word_clips = np.unique(words, return_inverse=True, return_counts=True)
        rare = word_clips[word_index] < MIN_WORD_CLIPS  # too few clips of the word to expect one near
        same_word[rare] = min_word_neighbours
    kept, trusted = {}, np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        agreeing = agreement[members] >= min_agreement
        kept[label] = members[agreeing] if agreeing.any() else members
        if label == 0 and same_word is not None:
            own_word = agreeing & (same_word[members] >= min_word_neighbours)
            if own_word.any():
                kept[label] = members[own_word]
        strict = agreement[kept[label]] >= max(min_agreement, min_target_agreement)
        if label != 0 and max_off_centre > 0 and len(members) >= TYPICAL_MIN_CLIPS:
            # the per-clip report's badly cut evidence: off the word's direction by more than max_off_centre spreads
            typical = (off_centre_scores(space[members]) <= max_off_centre)[np.searchsorted(members, kept[label])]
            if (strict & typical).any():
                strict = strict & typical
        trusted[kept[label][strict] if label != 0 and strict.any() else kept[label]] = True
    return space, kept, trusted


def _covering_picks(
    space: np.ndarray, kept: dict, trusted: np.ndarray, budget: int, nontarget_fraction: float, *, seed: int
) -> np.ndarray:
    """Steps 3-4: the budget split, then k-means representatives within each class."""
    return pick_per_class(
        kept,
        budget,
        int(round(budget * nontarget_fraction)),
        lambda rows, count: pick_representatives(space, rows, count, seed=seed, candidates=rows[trusted[rows]]),
        seed=seed,
    )


def choose_nontarget_fraction(
    matrix: np.ndarray,
    labels: np.ndarray,
    budget: int,
    *,
    seed: int,
    scoring_seeds: list[int],
    candidates: tuple[float, ...] = BALANCED_ACCURACY_FRACTIONS,
    pca_dims: int = 64,
    neighbours: int = 10,
    min_agreement: float = 0.5,
    words: np.ndarray | None = None,
    min_word_neighbours: int = 1,
    min_target_agreement: float = 0.7,
    max_off_centre: float = OFF_CENTRE_SPREADS,
) -> tuple[float, dict[float, float]]:
    """The nontarget fraction whose selection scores best on a held-out part of the pool.

    A stratified ``HOLDOUT_SHARE`` of each class (seeded by ``seed``) is held out; each candidate
    fraction selects ``budget`` rows from the rest (cleaning computed once), the frozen classifier
    is trained on them for ``scoring_seeds`` and scored by balanced accuracy on the held-out rows.
    Ties go to the smaller fraction.

    Returns
    -------
    (fraction, {fraction: held-out balanced accuracy})
    """
    from selection.scoring.fast_predict import predict_shared
    from selection.scoring.metrics import METRICS, confusion_counts

    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        held.append(rng.choice(members, size=int(HOLDOUT_SHARE * len(members)), replace=False))
    held_rows = np.sort(np.concatenate(held))
    fit_rows = np.setdiff1d(np.arange(len(labels)), held_rows)
    if len(np.unique(labels[held_rows])) < len(np.unique(labels)):  # a class too small to hold any out
        return candidates[0], {}
    space, kept, trusted = _cleaned_view(
        matrix[fit_rows], labels[fit_rows], seed=seed, pca_dims=pca_dims, neighbours=neighbours,
        min_agreement=min_agreement, words=None if words is None else words[fit_rows],
        min_word_neighbours=min_word_neighbours, min_target_agreement=min_target_agreement,
        max_off_centre=max_off_centre,
    )  # fmt: skip
    n_classes = int(labels.max()) + 1
    scores: dict[float, float] = {}
    for fraction in candidates:
        picked = fit_rows[_covering_picks(space, kept, trusted, budget, fraction, seed=seed)]
        if len(np.unique(labels[picked])) < 2:
            continue
        predictions = predict_shared(matrix[picked], labels[picked], matrix[held_rows], scoring_seeds, n_jobs=-1)
        scores[fraction] = float(np.mean([
            METRICS["balanced_accuracy"](confusion_counts(labels[held_rows], predicted, n_classes))
            for predicted in predictions
        ]))  # fmt: skip
    if not scores:
        return candidates[0], {}
    best = max(scores.values())
    return min(fraction for fraction, score in scores.items() if score == best), scores


class CleanCoverageSelection(TrainingSetSelection):
    """Cleaning by neighbour agreement, then k-means representatives per class (module docstring)."""

    @property
    def nontarget_fraction(self) -> float:
        """The default share of nontargets for the configured metric (balanced accuracy: the first candidate)."""
        return NONTARGET_FRACTION_BY_METRIC.get(self.config.get("metric", "macro_f1"), 0.4)

    def select(self) -> TrainingSet:
        settings = {
            "pca_dims": int(self.config.get("coverage_pca_dims", 64)),
            "neighbours": int(self.config.get("coverage_neighbours", 10)),
            "min_agreement": float(self.config.get("coverage_min_agreement", 0.5)),
            "min_word_neighbours": int(self.config.get("coverage_min_word_neighbours", 1)),
            "min_target_agreement": float(self.config.get("coverage_min_target_agreement", 0.7)),
            "max_off_centre": float(self.config.get("coverage_max_off_centre", OFF_CENTRE_SPREADS)),
            "words": np.array([clip_word(clip_id) for clip_id in self.pool.ids]),
        }
        fraction = self.config.get("coverage_nontarget_fraction")
        if fraction is None and self.config.get("metric") == "balanced_accuracy":
            seeds = list(self.config.get("eval_random_seeds") or [self.random_seed])[:HOLDOUT_SEEDS]
            fraction, scores = choose_nontarget_fraction(
                self.pool.matrix, self.pool.labels, self.train_size, seed=self.random_seed, scoring_seeds=seeds,
                **settings,
            )  # fmt: skip
            logging.getLogger("dataperf").info(
                "clean_coverage: nontarget fraction %g, chosen on a held-out %d%% of the allowed pool "
                "(balanced accuracy by fraction: %s)",
                fraction, round(100 * HOLDOUT_SHARE), ", ".join(f"{f:g}: {v:.3f}" for f, v in scores.items()),
            )  # fmt: skip
        elif fraction is None:
            fraction = self.nontarget_fraction
        rows = select_clean_coverage(
            self.pool.matrix, self.pool.labels, self.train_size, seed=self.random_seed,
            nontarget_fraction=float(fraction), **settings,
        )  # fmt: skip
        return self.pool.to_training_set(rows)
