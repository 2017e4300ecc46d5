"""Evidence about each picked clip that needs no eval data, and one verdict per clip.

Three kinds, each computed from the allowed pool alone:

- **neighbours**: the labels of the clip's nearest pool clips (Euclidean distance on the
  embeddings, the distance the frozen classifier's RBF kernel uses). A clip of another word
  under this label sits among that word's clips; a badly cut clip among other badly cut
  clips of every label.
- **out-of-fold probabilities** of the clip's own word and label, from a linear discriminant model
  of the pool's words (each nontarget word apart; one shrunk covariance shared by every word, so the
  variation of speakers, loudness and noise is learnt from the whole pool) trained once on a sample
  of the pool without any of the picks, so that no pick is judged by a model that saw it, as
  cleanlab's ``find_label_issues`` uses out-of-fold probabilities.
  A label's probability is the sum of its words'. A clip the model takes for another word with
  near certainty is that word, even where its class is right (a nontarget that is another
  nontarget word); but a nontarget word is learnt from a few clips, so where the other word is
  of the clip's own class, none of its nearest pool clips may be of its own word either.
- **near-duplicates** among the picks: two picks of one label closer to each other than
  almost every pool clip is to its nearest same-label neighbour add little beyond one of them.
- **typicality**, which does not use any other clip's label: how far the clip's direction is from
  its word's typical direction, and how weak its vector is, each against the spread of that
  word's pool clips (robust z-scores; the word is the label for a target, the clip ID's first
  component for a nontarget). Badly cut clips (truncated, mostly silence, mostly a neighbouring
  word) sit together, so their neighbours vouch for them; but they point away from their word's
  clips, and where the embedding keeps loudness, are far weaker. Note that *distance* to the
  word's centre does not tell them: in many dimensions clean clips lie on a shell around the
  centre and a badly cut clip, with less of the word's variation, often lies inside it (the
  clips nearest a word's mean or median are often badly cut ones).
- **speech length**, only where the recordings are given: how much of the pick's recording is speech
  (:mod:`selection.speech.extent`) against its word's recordings in the pool. A truncated clip, or a
  fragment in silence, can keep a vector close to its word's; its recording is the better witness.

Verdicts (:func:`judged`): ``suspect`` when the out-of-fold model doubts the label strongly, or
no neighbour shares it and the model doubts it, or the model takes the clip for another word;
``badly cut?`` when its label is not doubted but it is far from its word's typical clips (or, with
recordings, holds far less speech than its word's);
``harmful`` when nothing says the clip is faulty but it hurts the estimate well beyond the spread
of the other picks' effects; ``redundant`` when it is the less useful half of a near-duplicate
pair; ``ok`` otherwise. A flag the **combined evidence** (a logistic regression on all the vector
evidence, fitted on the built-in corpora's fault truth) puts under :data:`CLEARED_BELOW` is dropped.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from selection.diagnosis.memo import per_pool
from selection.speech.audio import SAMPLE_RATE
from selection.speech.extent import HOP

NEIGHBOURS = 10
OOF_SAMPLE_PER_WORD = 600
OOF_COMPONENTS = 64
DUPLICATE_QUANTILE = 0.01
# verdict thresholds, chosen on the synthetic English corpus (seed 0) and the spoken English corpus by the worse of
# the flags' recall and precision over weak and planted selections (benchmarks/explain_faults.py); measured on others
AGREEMENT_LOW = 0.0  # none of the 10 neighbours carries the pick's label ...
OOF_LOW = 0.5  # ... and the out-of-fold model gives the label less than this
OOF_VERY_LOW = 0.01  # the out-of-fold model alone
WORD_LOW = 0.05  # the model gives the pick's own word less than this ...
OTHER_WORD_HIGH = 0.9  # ... and one other word more than this
HARM_SPREADS = 3.0
TYPICAL_COMPONENTS = 64  # the view the default algorithm cleans in: PCA, each row scaled to length 1
TYPICAL_MIN_CLIPS = 8  # a word with fewer pool clips has no spread to judge against
OFF_CENTRE_SPREADS = 1.5
WEAK_SPREADS = 3.5
SPEECH_REFERENCE_CLIPS = 200  # recordings of a word read to learn its speech's length (a fixed sample)
SHORT_SPEECH_SPREADS = 1.75  # with recordings: a pick's speech this many spreads shorter than its word's
SPEECH_SPREAD_MIN = 0.15  # a word's spread of log speech length is taken as at least this (few clips: too narrow)
HOP_SECONDS = HOP / SAMPLE_RATE  # one frame: a clip without a speech frame has a finite log length
CLEARED_BELOW = 0.02  # a flag whose combined evidence gives the pick less than this chance of being faulty is dropped
# The combined evidence: a logistic regression on :func:`combined_features`, fitted on the built-in corpora's fault
# truth (every pool clip judged as a pick, vectors only), the tuning corpora of the report's benchmark:
# python benchmarks/explain_poolwide.py --weights --experiments (those corpora; docs/benchmarks.md names them)
COMBINED_FEATURES = (
    "neighbour agreement", "log own probability", "log word probability", "log other word probability",
    "off-centre", "off-centre squared", "weakness", "own-word neighbours", "nontarget", "nontarget × off-centre",
    "nontarget × neighbour agreement", "nontarget × log word probability",
)  # fmt: skip
COMBINED_WEIGHTS = (
    5.26827, 0.0786623, -0.374643, 0.0663701, 1.19555, -0.0200125, 0.0460147, -0.86954, -1.76999, -0.398498,
    -4.82976, 0.141346,
)  # fmt: skip
COMBINED_INTERCEPT = -1.12797

# "not judged": the estimate is too small
VERDICTS = ("suspect", "badly cut?", "harmful", "redundant", "ok", "not judged")


def verdict_counts(tally: dict) -> str:
    """``"4 suspect, 19 badly cut?, 1 harmful, 0 redundant, 2 ok"`` (``not judged`` only when some pick is)."""
    return ", ".join(f"{tally.get(name, 0)} {name}" for name in VERDICTS if name != "not judged" or tally.get(name))


@dataclass
class Evidence:
    """Per pick (in the selection's row order)."""

    neighbour_labels: np.ndarray  # (n_picks, NEIGHBOURS) class ids
    agreement: np.ndarray  # share of neighbours with the pick's label
    own_probability: np.ndarray  # out-of-fold probability of the pick's label (its words' probabilities summed)
    predicted: np.ndarray  # out-of-fold most likely class
    predicted_probability: np.ndarray
    duplicate_of: np.ndarray  # index of a near-duplicate pick, or -1
    duplicate_distance: np.ndarray
    duplicate_threshold: float
    off_centre: np.ndarray | None = None  # robust z of the direction's distance from its word's (NaN: not judged)
    weakness: np.ndarray | None = None  # robust z of how much weaker the vector is than its word's (NaN: not judged)
    word_probability: np.ndarray | None = None  # probability of the pick's own word (NaN: under 8 clips to learn it)
    other_word: list[str] | None = None  # the most likely other word ("" when there is none)
    other_word_probability: np.ndarray | None = None
    other_word_same_class: np.ndarray | None = None  # the most likely other word is of the pick's own class
    word_neighbours: np.ndarray | None = None  # how many of the nearest pool clips are of the pick's own word
    speech_seconds: np.ndarray | None = None  # with recordings: seconds of speech in the pick (NaN: no recording)
    speech_length: np.ndarray | None = None  # robust z of its log against its word's recordings (NaN: not judged)
    fault_probability: np.ndarray | None = None  # the combined evidence's chance that the pick is faulty


_SPEECH_SECONDS: dict[tuple, float] = {}  # seconds of speech per recording (path, size, modification time)


def _squared_distances(rows: np.ndarray, matrix: np.ndarray, norms: np.ndarray) -> np.ndarray:
    block = np.asarray(rows)
    cross = (block @ matrix.T).astype(np.float64)
    distances = (block.astype(np.float64) ** 2).sum(axis=1)[:, None] + norms[None, :] - 2.0 * cross
    return np.maximum(distances, 0.0)


def squared_norms(pool_matrix: np.ndarray) -> np.ndarray:
    """Each pool row's squared length (float64), which every distance to the pool needs: computed once per pool."""
    return per_pool(pool_matrix, "squared norms", lambda: (np.asarray(pool_matrix).astype(np.float64) ** 2).sum(axis=1))


def nearest_rows(pool_matrix: np.ndarray, picked_rows: np.ndarray, *, norms: np.ndarray | None = None) -> np.ndarray:
    """Each pick's ``NEIGHBOURS`` nearest pool rows, nearest first (the pick itself excluded).

    ``norms`` is :func:`squared_norms` of the pool, when the caller has it already.
    """
    matrix = np.asarray(pool_matrix, dtype=np.float32)
    norms = squared_norms(matrix) if norms is None else norms
    out = np.empty((len(picked_rows), NEIGHBOURS), dtype=np.int64)
    for start in range(0, len(picked_rows), 256):
        part = picked_rows[start : start + 256]
        distances = _squared_distances(matrix[part], matrix, norms)
        distances[np.arange(len(part)), part] = np.inf
        nearest = np.argpartition(distances, NEIGHBOURS, axis=1)[:, :NEIGHBOURS]
        order = np.take_along_axis(distances, nearest, axis=1).argsort(axis=1, kind="stable")
        out[start : start + len(part)] = np.take_along_axis(nearest, order, axis=1)
    return out


def nearest_labels(
    pool_matrix: np.ndarray, pool_labels: np.ndarray, picked_rows: np.ndarray, *, norms: np.ndarray | None = None
) -> np.ndarray:
    """Class ids of each pick's ``NEIGHBOURS`` nearest pool clips (:func:`nearest_rows`)."""
    return pool_labels[nearest_rows(pool_matrix, picked_rows, norms=norms)]


def unit_components(pool_matrix: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Every pool row scaled to length 1 and projected onto the first :data:`OOF_COMPONENTS` principal components.

    The components are the leading eigenvectors of the covariance of a fixed sample of at most 4,000 unit
    rows (one symmetric eigendecomposition of a d × d matrix, a fraction of the sample's SVD); the
    projection is kept per pool (it does not depend on the selection).
    """

    def compute() -> np.ndarray:
        matrix = np.asarray(pool_matrix).astype(np.float64)
        unit = matrix / (np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-12)
        sample = unit[np.random.default_rng(seed).permutation(len(unit))[:4000]]
        mean = sample.mean(axis=0)
        centred = sample - mean
        _, vectors = np.linalg.eigh(centred.T @ centred)
        components = vectors[:, ::-1][:, :OOF_COMPONENTS]
        return (unit - mean) @ components

    return per_pool(pool_matrix, ("unit components", seed), compute)


def out_of_sample_word_probabilities(
    pool_matrix: np.ndarray, groups: np.ndarray, picked_rows: np.ndarray, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pick's probability of every word, from a model trained without any of the picks.

    The model is linear discriminant analysis over the pool's *words* (a target's word is its label; each
    nontarget word is its own group: :func:`word_groups`), with a shrunk covariance shared by all words, on
    :func:`unit_components`. The within-word variation (speakers, loudness, noise) is the same for every
    word, so one shared covariance models it from the whole pool, where a per-clip neighbourhood sees only
    a few clips of a word. It is trained once, on at most :data:`OOF_SAMPLE_PER_WORD` pool clips per word
    with every pick left out (so no pick is judged by a model that saw it, as with cleanlab's out-of-fold
    probabilities), with the pool's word frequencies as priors.

    Returns (the word groups, in column order; (n_picks, n_groups) probabilities, 0 for a word the model
    has no clip of; per pick, whether its own word had at least :data:`TYPICAL_MIN_CLIPS` clips to learn
    from: a word model of fewer cannot say that a clip is not that word).
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    projected = unit_components(pool_matrix, seed=seed)
    columns, index, counts = np.unique(groups, return_inverse=True, return_counts=True)
    rng = np.random.default_rng(seed)
    picked = np.zeros(len(groups), dtype=bool)
    picked[picked_rows] = True
    train = np.sort(
        np.concatenate(
            [rng.permutation(np.flatnonzero((index == k) & ~picked))[:OOF_SAMPLE_PER_WORD] for k in range(len(columns))]
        )
    )
    present, learnt = np.unique(index[train], return_counts=True)
    probabilities = np.zeros((len(picked_rows), len(columns)))
    if len(present) >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = LinearDiscriminantAnalysis(
                solver="lsqr", shrinkage="auto", priors=counts[present] / counts[present].sum()
            )
            model.fit(projected[train], index[train])
            probabilities[:, present] = model.predict_proba(projected[picked_rows])
    elif len(present) == 1:
        probabilities[:, present] = 1.0
    clips_of_word = np.zeros(len(columns), dtype=np.int64)
    clips_of_word[present] = learnt
    return columns, probabilities, clips_of_word[index[picked_rows]] >= TYPICAL_MIN_CLIPS


def near_duplicates(
    pool_matrix: np.ndarray,
    pool_labels: np.ndarray,
    picked_rows: np.ndarray,
    *,
    seed: int = 0,
    norms: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """For each pick, the nearest other pick of its label if closer than the pool's 1% same-label NN distance.

    Returns (index of that pick or -1, its distance, the threshold distance).
    """
    matrix = np.asarray(pool_matrix, dtype=np.float32)
    norms = squared_norms(matrix) if norms is None else norms
    threshold = per_pool(
        matrix,
        ("duplicate threshold", seed, np.asarray(pool_labels).tobytes()),  # by content: an id can be reused
        lambda: _duplicate_threshold(matrix, pool_labels, norms, seed),
    )
    picks = matrix[picked_rows]
    among = np.sqrt(_squared_distances(picks, picks, norms[picked_rows]))
    np.fill_diagonal(among, np.inf)
    labels = pool_labels[picked_rows]
    among[labels[:, None] != labels[None, :]] = np.inf
    closest = among.argmin(axis=1) if len(picked_rows) > 1 else np.zeros(len(picked_rows), dtype=np.int64)
    distance = (
        among[np.arange(len(picked_rows)), closest] if len(picked_rows) > 1 else np.full(len(picked_rows), np.inf)
    )
    duplicate_of = np.where(distance < threshold, closest, -1)
    return duplicate_of, distance, threshold


def _duplicate_threshold(matrix: np.ndarray, pool_labels: np.ndarray, norms: np.ndarray, seed: int) -> float:
    """The distance below which only :data:`DUPLICATE_QUANTILE` of pool clips have a same-label neighbour."""
    rng = np.random.default_rng(seed)
    probe = rng.choice(len(matrix), size=min(600, len(matrix)), replace=False)
    distances = _squared_distances(matrix[probe], matrix, norms)
    distances[np.arange(len(probe)), probe] = np.inf
    distances[pool_labels[probe][:, None] != pool_labels[None, :]] = np.inf
    nearest = np.sqrt(distances.min(axis=1))
    return float(np.quantile(nearest[np.isfinite(nearest)], DUPLICATE_QUANTILE)) if np.isfinite(nearest).any() else 0.0


def _robust_z(values: np.ndarray, reference: np.ndarray, *, smallest_spread: float = 1e-12) -> np.ndarray:
    """``values`` in robust spreads (1.4826 × MAD, at least ``smallest_spread``) above the median of ``reference``."""
    median = float(np.median(reference))
    spread = 1.4826 * float(np.median(np.abs(reference - median)))
    return (values - median) / max(spread, smallest_spread)


def off_centre_scores(view: np.ndarray) -> np.ndarray:
    """Robust z of one minus each row's cosine to the rows' mean direction (rows of one word, each of length 1).

    The report's and the default algorithm's badly cut evidence: a clean clip is near 0, a clip that
    points away from its word's clips far above it; no other clip's label is used.
    """
    centre = view.mean(axis=0)
    centre = centre / (np.linalg.norm(centre) + 1e-12)
    distance = 1.0 - view @ centre
    return _robust_z(distance, distance)


def word_groups(pool_labels: np.ndarray, words: np.ndarray, nontarget: int | None) -> np.ndarray:
    """Each pool clip's word group: its label for a target, ``-1 - k`` for the k-th nontarget word."""
    groups = pool_labels.astype(np.int64).copy()
    if nontarget is not None:
        mask = pool_labels == nontarget
        _, index = np.unique(words[mask], return_inverse=True)
        groups[mask] = -1 - index
    return groups


def typicality(
    pool_matrix: np.ndarray,
    groups: np.ndarray,
    rows: np.ndarray,
    *,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(off-centre z, weakness z) of pool ``rows`` against their word's pool clips; NaN for small words.

    ``groups`` is each pool clip's word (:func:`word_groups`).

    Off-centre: one minus the cosine between the clip and its word's mean direction, in the pool's first
    :data:`TYPICAL_COMPONENTS` principal components. Weakness: minus the log of the vector's length.
    Both in robust spreads of the word's pool clips above their median, so a clean clip is near 0
    whatever the word's size; neither uses another clip's label.
    """
    from sklearn.decomposition import PCA

    rows = np.asarray(rows, dtype=np.int64)
    off_centre = np.full(len(rows), np.nan)
    weakness = np.full(len(rows), np.nan)
    wanted = np.unique(groups[rows])
    members = {group: np.flatnonzero(groups == group) for group in wanted}
    members = {group: clips for group, clips in members.items() if len(clips) >= TYPICAL_MIN_CLIPS}
    if not members:
        return off_centre, weakness
    matrix = np.asarray(pool_matrix)

    def fit_components():
        rng = np.random.default_rng(seed)
        sample = rng.permutation(len(matrix))[:4000]
        dims = max(1, min(TYPICAL_COMPONENTS, len(sample) - 1, matrix.shape[1]))
        return PCA(n_components=dims, random_state=seed).fit(matrix[sample].astype(np.float64))

    def word_scores(clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        view = per_pool(matrix, ("typical components", seed), fit_components).transform(
            matrix[clips].astype(np.float64)
        )
        view /= np.linalg.norm(view, axis=1, keepdims=True) + 1e-12
        return off_centre_scores(view), -np.log(np.linalg.norm(matrix[clips].astype(np.float64), axis=1) + 1e-12)

    for group, clips in members.items():
        key = ("typicality", seed, int(group), clips.tobytes())
        scores, strength = per_pool(matrix, key, lambda clips=clips: word_scores(clips))
        mine = groups[rows] == group
        position = np.searchsorted(clips, rows[mine])
        off_centre[mine] = scores[position]
        weakness[mine] = _robust_z(strength[position], strength)
    return off_centre, weakness


def recorded_speech_seconds(audio_dir: str | Path, clip_ids: list[str]) -> np.ndarray:
    """Seconds of speech (:func:`selection.speech.extent.speech_seconds`) in each ``<audio_dir>/<clip id>``.

    NaN where the recording is missing or unreadable. Kept for the process by path, size and modification
    time, so that a folder's recordings are read once however many reports a process writes.
    """
    from selection.speech.audio import BadAudioError, read_clip
    from selection.speech.extent import speech_seconds

    out = np.full(len(clip_ids), np.nan)
    for index, clip_id in enumerate(clip_ids):
        path = Path(audio_dir) / clip_id
        try:
            status = path.stat()
        except (OSError, ValueError):
            continue
        key = (str(path.resolve()), status.st_size, status.st_mtime_ns)
        if key not in _SPEECH_SECONDS:
            try:
                _SPEECH_SECONDS[key] = speech_seconds(read_clip(path))
            except (BadAudioError, OSError, ValueError):
                _SPEECH_SECONDS[key] = float("nan")
        out[index] = _SPEECH_SECONDS[key]
    return out


def speech_lengths(
    audio_dir: str | Path, pool_ids: list[str], groups: np.ndarray, rows: np.ndarray, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(seconds of speech, robust z of its log against the word's recordings) of pool ``rows``.

    A word's reference is a fixed sample of at most :data:`SPEECH_REFERENCE_CLIPS` of its pool clips'
    recordings; a word with fewer than :data:`TYPICAL_MIN_CLIPS` readable ones, or a pick without a
    recording, is not judged (NaN). The spread is at least :data:`SPEECH_SPREAD_MIN` (a word's clean clips
    vary by about 0.25 in the built-in spoken corpora, by speaking rate and noise): a word of a few clips
    can look far more uniform than it is. No clip's label beyond its word is used.
    """
    rows = np.asarray(rows, dtype=np.int64)
    seconds = recorded_speech_seconds(audio_dir, [pool_ids[row] for row in rows])
    lengths = np.full(len(rows), np.nan)
    for group in np.unique(groups[rows]):
        clips = np.flatnonzero(groups == group)
        rng = np.random.default_rng([seed, abs(int(group)), int(group < 0)])  # a word's sample: its own draw
        reference = np.sort(rng.permutation(clips)[:SPEECH_REFERENCE_CLIPS])
        known = recorded_speech_seconds(audio_dir, [pool_ids[row] for row in reference])
        known = np.log(known[np.isfinite(known)] + HOP_SECONDS)
        mine = groups[rows] == group
        if len(known) >= TYPICAL_MIN_CLIPS:
            lengths[mine] = _robust_z(np.log(seconds[mine] + HOP_SECONDS), known, smallest_spread=SPEECH_SPREAD_MIN)
    return seconds, lengths


def combined_features(
    agreement: np.ndarray,
    own_probability: np.ndarray,
    word_probability: np.ndarray,
    other_word_probability: np.ndarray,
    off_centre: np.ndarray,
    weakness: np.ndarray,
    word_neighbours: np.ndarray,
    nontarget: np.ndarray,
) -> np.ndarray:
    """(n_picks, len(COMBINED_FEATURES)): the vector evidence as the combined evidence weighs it.

    Probabilities as logs (a clip at 0.001 and one at 0.1 differ more than one at 0.5 and 0.6); a word the
    model cannot judge takes its class's probability; a typicality not judged counts as typical (0); the
    nontarget side has weights of its own (a nontarget word has few clips, so its evidence means less).
    """
    agreement = np.asarray(agreement, dtype=float)
    own = np.asarray(own_probability, dtype=float)
    word = np.asarray(word_probability, dtype=float)
    word = np.where(np.isnan(word), own, word)
    off = np.nan_to_num(np.asarray(off_centre, dtype=float))
    weak = np.nan_to_num(np.asarray(weakness, dtype=float))
    nontarget = np.asarray(nontarget, dtype=float)

    def log(p):
        return np.log(np.asarray(p, dtype=float) + 1e-4)

    return np.column_stack([
        agreement, log(own), log(word), log(other_word_probability), off, np.maximum(off, 0) ** 2, weak,
        np.asarray(word_neighbours, dtype=float), nontarget, nontarget * off, nontarget * agreement,
        nontarget * log(word),
    ])  # fmt: skip


def combined_fault_probability(features: np.ndarray) -> np.ndarray:
    """The chance that each pick is faulty, by :data:`COMBINED_WEIGHTS` on :func:`combined_features`."""
    return 1.0 / (1.0 + np.exp(-(features @ np.asarray(COMBINED_WEIGHTS) + COMBINED_INTERCEPT)))


def gather_evidence(
    pool_matrix: np.ndarray,
    pool_labels: np.ndarray,
    picked_rows: np.ndarray,
    n_classes: int,
    *,
    pool_ids: list[str] | None = None,
    nontarget: int | None = None,
    class_names: list[str] | None = None,
    audio_dir: str | Path | None = None,
) -> Evidence:
    """Every kind of evidence for the picks (pool rows, in the selection's order).

    ``pool_ids`` (with ``nontarget``, the nontarget class id) gives each nontarget clip its word for the
    typicality and word evidence; without them every class is one word. ``class_names`` names the target
    words in ``other_word`` (else their class ids). ``audio_dir`` (with ``pool_ids``) holds the recordings,
    at ``<audio_dir>/<clip id>``, whose speech is measured against the word's (:func:`speech_lengths`).
    """
    from selection.inputs.validation import clip_word

    norms = squared_norms(pool_matrix)
    with_words = pool_ids is not None
    words = np.array([clip_word(clip) for clip in pool_ids]) if with_words else np.zeros(len(pool_labels), str)
    groups = word_groups(pool_labels, words, nontarget if with_words else None)
    off_centre, weakness = typicality(pool_matrix, groups, picked_rows)
    neighbour_rows = nearest_rows(pool_matrix, picked_rows, norms=norms)
    neighbour_labels = pool_labels[neighbour_rows]
    own = pool_labels[picked_rows]
    columns, word_probabilities, judged_word = out_of_sample_word_probabilities(pool_matrix, groups, picked_rows)
    first_row = np.unique(groups, return_index=True)[1]  # one pool clip of each word, in column order
    column_class = pool_labels[first_row]
    probabilities = np.zeros((len(picked_rows), n_classes))
    for class_id in range(n_classes):
        probabilities[:, class_id] = word_probabilities[:, column_class == class_id].sum(axis=1)
    picks = np.arange(len(own))
    own_column = np.searchsorted(columns, groups[picked_rows])
    others = word_probabilities.copy()
    others[picks, own_column] = -1.0
    other_column = others.argmax(axis=1)
    has_other = len(columns) > 1

    def word_name(column: int) -> str:
        group = int(columns[column])
        if group >= 0:
            return class_names[group] if class_names is not None else str(group)
        return str(words[first_row[column]])

    duplicate_of, distance, threshold = near_duplicates(pool_matrix, pool_labels, picked_rows, norms=norms)
    predicted = probabilities.argmax(axis=1)
    seconds = lengths = None
    if audio_dir is not None and with_words:
        seconds, lengths = speech_lengths(audio_dir, pool_ids, groups, picked_rows)
    own_probability = probabilities[picks, own]
    word_probability = np.where(judged_word, word_probabilities[picks, own_column], np.nan)
    other_word_probability = word_probabilities[picks, other_column] if has_other else np.zeros(len(own))
    agreement = (neighbour_labels == own[:, None]).mean(axis=1)
    word_neighbours = (groups[neighbour_rows] == groups[picked_rows][:, None]).sum(axis=1)
    is_nontarget = own == nontarget if nontarget is not None else np.zeros(len(own), dtype=bool)
    features = combined_features(agreement, own_probability, word_probability, other_word_probability, off_centre,
                                 weakness, word_neighbours, is_nontarget)  # fmt: skip
    return Evidence(
        neighbour_labels=neighbour_labels,
        agreement=agreement,
        own_probability=own_probability,
        predicted=predicted,
        predicted_probability=probabilities[picks, predicted],
        duplicate_of=duplicate_of,
        duplicate_distance=distance,
        duplicate_threshold=threshold,
        off_centre=off_centre,
        weakness=weakness,
        word_probability=word_probability,
        other_word=[word_name(c) if has_other else "" for c in other_column],
        other_word_probability=other_word_probability,
        other_word_same_class=(column_class[other_column] == own) if has_other else np.zeros(len(own), dtype=bool),
        word_neighbours=word_neighbours,
        speech_seconds=seconds,
        speech_length=lengths,
        fault_probability=combined_fault_probability(features),
    )


def harm_spread(effects: np.ndarray) -> float:
    """A robust spread of the leave-one-out effects (1.4826 × median absolute deviation), never zero."""
    finite = effects[np.isfinite(effects)]
    if len(finite) == 0:
        return 1.0
    spread = 1.4826 * float(np.median(np.abs(finite - np.median(finite))))
    return max(spread, 1e-4)


def judged(evidence: Evidence, effects: np.ndarray) -> list[tuple[str, list[str]]]:
    """Per pick: its verdict and the evidence that decided it.

    - ``suspect`` (its label is doubted): the out-of-fold model gives its label a probability below
      :data:`OOF_VERY_LOW`; or none of its neighbours carries its label and the model gives the label less
      than :data:`OOF_LOW`; or the model gives its own word less than :data:`WORD_LOW` and one other word
      more than :data:`OTHER_WORD_HIGH` (the clip is another word: for a nontarget, another nontarget
      word, so its class is still right). Where that other word is of the clip's own class, none of the
      clip's :data:`NEIGHBOURS` nearest pool clips may be of its own word either: a nontarget word has a few
      clips, from which the word model takes a clean clip for a similar word far more often than a
      target's hundreds allow (the default algorithm's own-word test for nontargets, on the report's side).
    - ``badly cut?``: its label is not doubted, but its direction is more than :data:`OFF_CENTRE_SPREADS`
      spreads from its word's typical clips, or its vector is weaker by more than :data:`WEAK_SPREADS`, or
      (with recordings) its speech is shorter than its word's by more than :data:`SHORT_SPEECH_SPREADS`.
    - ``harmful``: nothing says the clip itself is faulty, but leaving it out raises the estimate by more
      than :data:`HARM_SPREADS` times the spread of all picks' effects. A pick among the most harmful is
      never ``ok``; it is not called faulty either (a clean clip can hurt a selection: its balance, its
      boundary), and the estimate is noisy where the held-out clips are few.
    - ``redundant``: of two near-duplicate ``ok`` picks, the one that helps less.

    A flag the evidence taken together does not bear out is dropped: where the combined evidence
    (:func:`combined_fault_probability`, a model of all the vector evidence fitted on the built-in
    corpora's faults) gives a pick less than :data:`CLEARED_BELOW` chance of being faulty, it is ``ok``
    (or ``harmful``) by ``combined evidence``, whatever one rule said: a clean clip of a fast speaker is short
    but typical in every other way. A harmful ``suspect`` or ``badly cut?`` pick lists ``estimated effect``
    among its evidence too.
    """
    spread = harm_spread(effects)
    effect = np.nan_to_num(effects, nan=0.0)
    probability = evidence.own_probability < OOF_VERY_LOW
    neighbours = (evidence.agreement <= AGREEMENT_LOW) & (evidence.own_probability < OOF_LOW)
    if evidence.word_probability is not None:
        another = (evidence.word_probability < WORD_LOW) & (evidence.other_word_probability > OTHER_WORD_HIGH)
        if evidence.other_word_same_class is not None:
            # a nontarget taken for another nontarget word: its few clips make the word model unsure, so its
            # neighbours must not hold its own word either
            another &= ~evidence.other_word_same_class | (evidence.word_neighbours == 0)
    else:
        another = np.zeros(len(effect), dtype=bool)
    harmful = effect < -HARM_SPREADS * spread
    cleared_by_combined = (
        evidence.fault_probability < CLEARED_BELOW
        if evidence.fault_probability is not None
        else np.zeros(len(effect), dtype=bool)
    )
    result = []
    for index in range(len(effect)):
        decided = []
        if neighbours[index]:
            decided += ["neighbour labels", "out-of-fold probability"]
        elif probability[index]:
            decided.append("out-of-fold probability")
        if another[index]:
            decided.append("another word")
        atypical = []
        if evidence.off_centre is not None and evidence.off_centre[index] > OFF_CENTRE_SPREADS:
            atypical.append("off its word's centre")
        if evidence.weakness is not None and evidence.weakness[index] > WEAK_SPREADS:
            atypical.append("weak vector")
        if evidence.speech_length is not None and evidence.speech_length[index] < -SHORT_SPEECH_SPREADS:
            atypical.append("short speech")
        harm = ["estimated effect"] if harmful[index] else []
        if (decided or atypical) and cleared_by_combined[index]:
            result.append(("harmful" if harm else "ok", ["combined evidence"] + harm))
        elif decided:
            result.append(("suspect", decided + harm))
        elif atypical:
            result.append(("badly cut?", atypical + harm))
        elif harm:
            result.append(("harmful", harm))
        else:
            result.append(("ok", []))
    for index, other in enumerate(evidence.duplicate_of):
        if other < 0 or result[index][0] != "ok":
            continue
        # of a near-duplicate pair, the pick that helps less is the redundant one (ties: the later pick)
        mine, theirs = effect[index], effect[other]
        if result[other][0] == "ok" and (mine < theirs or (mine == theirs and index > other)):
            result[index] = ("redundant", ["near-duplicate"])
    return result
