"""Every shipped selection algorithm keeps its contract: within the budget, allowed IDs only,
the same selection for the same seed; and the cleaning ones do clean."""

from __future__ import annotations

import json

import numpy as np
import pytest

from selection.inputs.load import class_names_of, embeddings_dict, load_sample_ids, load_vectors
from selection.inputs.validation import DEFAULT_EVAL_SEEDS, clip_word
from selection.plugins import SHIPPED_ALGORITHMS as ALGORITHMS
from selection.plugins import load_algorithm_class, run_algorithm
from tests.conftest import make_dataset

FAST_SETTINGS = {"cv_target_splits": 3, "cv_nontarget_splits": 3, "cleanlab_folds": 3}


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    make_dataset(
        root, pool_per_target=(30, 22, 16), nontarget_words=("cat", "dog", "tree", "house", "sun"), per_word=12
    )
    allowed = load_sample_ids(root / "allowed_training_set.yaml")
    vectors = load_vectors(allowed, root / "train_embeddings", class_names=class_names_of(allowed))
    return allowed, embeddings_dict(allowed, vectors)


def _select(pool, name: str, size: int, **config) -> dict:
    allowed, embeddings = pool
    module, class_name = ALGORITHMS[name]
    full = {
        "selection_algorithm_module": module,
        "selection_algorithm_class": class_name,
        "selection_random_seed": 7,
        "eval_random_seeds": DEFAULT_EVAL_SEEDS[:3],
        "metric": "macro_f1",
        "train_set_size_limit": size,
        **FAST_SETTINGS,
        **config,
    }
    algorithm = load_algorithm_class(full, file="test")
    train_set, _, _ = run_algorithm(
        algorithm, allowed_embeddings=embeddings, allowed=allowed, train_size=size, config=full
    )
    return train_set


@pytest.mark.parametrize("name", list(ALGORITHMS))
@pytest.mark.parametrize("size", [5, 25])
def test_selection_is_within_budget_allowed_and_deterministic(pool, name: str, size: int):
    allowed, _ = pool
    first = _select(pool, name, size)
    chosen = [*(i for ids in first["targets"].values() for i in ids), *first["nontargets"]]
    assert 0 < len(chosen) <= size
    assert len(set(chosen)) == len(chosen)
    for word, ids in first["targets"].items():
        assert set(ids) <= set(allowed["targets"][word])
    assert set(first["nontargets"]) <= set(allowed["nontargets"])
    assert json.dumps(_select(pool, name, size), sort_keys=True) == json.dumps(first, sort_keys=True)


@pytest.mark.parametrize("name", ["cross_validation", "cleanlab", "clean_coverage"])
def test_selection_depends_on_the_seed(pool, name: str):
    assert _select(pool, name, 12, selection_random_seed=1) != _select(pool, name, 12, selection_random_seed=2)


def test_clean_coverage_splits_the_budget_by_metric_and_by_the_pool(pool):
    from selection.implementations.coverage_selection import BALANCED_ACCURACY_FRACTIONS

    by_f1 = _select(pool, "clean_coverage", 20, metric="macro_f1")
    assert len(by_f1["nontargets"]) == 8
    by_accuracy = _select(pool, "clean_coverage", 20, metric="balanced_accuracy")
    allowed_counts = {round(20 * fraction) for fraction in BALANCED_ACCURACY_FRACTIONS}
    assert len(by_accuracy["nontargets"]) in allowed_counts
    chosen = len(by_accuracy["nontargets"]) / 20
    fixed = _select(pool, "clean_coverage", 20, metric="balanced_accuracy", coverage_nontarget_fraction=chosen)
    assert fixed == by_accuracy
    assert len(_select(pool, "clean_coverage", 20, coverage_nontarget_fraction=0.5)["nontargets"]) == 10


def test_the_balanced_accuracy_fraction_is_the_best_held_out_one_smallest_on_ties():
    from selection.implementations.coverage_selection import choose_nontarget_fraction

    rng = np.random.default_rng(3)
    centres = rng.normal(0, 1, (4, 32))
    labels = np.repeat([0, 0, 0, 1, 2, 3], 40)  # nontargets: three times a target's clips
    matrix = centres[labels] + rng.normal(0, 0.8, (len(labels), 32))
    fraction, scores = choose_nontarget_fraction(matrix, labels, 16, seed=1, scoring_seeds=[5, 69], pca_dims=8)
    assert set(scores) == {0.125, 0.2, 0.3} and all(0.0 <= value <= 1.0 for value in scores.values())
    best = max(scores.values())
    assert fraction == min(f for f, value in scores.items() if value == best)
    same, _ = choose_nontarget_fraction(
        matrix, labels, 16, seed=1, scoring_seeds=[5, 69], pca_dims=8, candidates=(0.3, 0.3)
    )
    assert same == 0.3


def _word_clusters(rng, dim: int = 24):
    """Two target words and twelve nontarget words, 15-30 clips each, around separate centres."""
    centres = rng.normal(0, 3, (14, dim))
    parts, labels, words = [], [], []
    for label in (1, 2):
        parts.append(centres[label - 1] + rng.normal(0, 0.3, (30, dim)))
        labels += [label] * 30
        words += [f"target{label}"] * 30
    for word in range(12):
        parts.append(centres[2 + word] + rng.normal(0, 0.3, (15, dim)))
        labels += [0] * 15
        words += [f"word{word}"] * 15
    return parts, labels, words


def test_clean_coverage_drops_nontargets_with_no_clip_of_their_own_word_near():
    """Badly cut nontargets (one silent clip of each of twelve words) form a tidy cluster of nontargets."""
    from selection.implementations.coverage_selection import select_clean_coverage

    rng = np.random.default_rng(0)
    parts, labels, words = _word_clusters(rng)
    parts.append(rng.normal(0, 3, 24) + rng.normal(0, 0.2, (12, 24)))
    labels += [0] * 12
    words += [f"word{word}" for word in range(12)]
    matrix, labels, words = np.concatenate(parts), np.array(labels), np.array(words)
    silent = np.arange(len(labels) - 12, len(labels))

    def picks(**settings):
        return select_clean_coverage(
            matrix, labels, 26, seed=0, pca_dims=16, nontarget_fraction=0.5, words=words, **settings
        )

    assert np.isin(picks(min_word_neighbours=0), silent).sum() >= 1  # agreement by class alone keeps them
    assert not np.isin(picks(), silent).any()
    without_words = select_clean_coverage(matrix, labels, 26, seed=0, pca_dims=16, nontarget_fraction=0.5)
    assert np.array_equal(without_words, picks(min_word_neighbours=0))  # no words: the word test is skipped


def test_the_own_word_test_exempts_words_with_too_few_clips_to_expect_one_near():
    """A pool whose nontarget words have one clip each (no clip can have its own word near) keeps them all."""
    from selection.implementations.coverage_selection import MIN_WORD_CLIPS, _cleaned_view

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (2, 16))
    matrix = np.concatenate(
        [
            centres[0] + rng.normal(0, 0.3, (30, 16)),
            centres[1] + rng.normal(0, 0.3, (30, 16)),
            rng.normal(0, 3, (40, 16)),
        ]
    )
    labels = np.array([1] * 30 + [2] * 30 + [0] * 40)
    singles = np.array(["a"] * 30 + ["b"] * 30 + [f"w{i}" for i in range(40)])
    settings = {"seed": 0, "pca_dims": 8, "neighbours": 10, "min_agreement": 0.5}
    agreeing = _cleaned_view(matrix, labels, **settings, words=singles, min_word_neighbours=0)[1][0]
    assert len(_cleaned_view(matrix, labels, **settings, words=singles)[1][0]) == len(agreeing) > 30
    pairs = np.array(["a"] * 30 + ["b"] * 30 + [f"w{i // MIN_WORD_CLIPS}" for i in range(40)])
    assert len(_cleaned_view(matrix, labels, **settings, words=pairs)[1][0]) < len(agreeing)  # scattered words


def test_clean_coverage_picks_targets_only_where_most_neighbours_share_their_word():
    """Seven target clips in a blob with four nontargets: 6 of 10 neighbours agree, below the default 0.7."""
    from selection.implementations.coverage_selection import _cleaned_view, select_clean_coverage

    rng = np.random.default_rng(0)
    parts, labels, _ = _word_clusters(rng)
    parts.append(rng.normal(0, 3, 24) + rng.normal(0, 0.05, (11, 24)))
    labels += [1] * 7 + [0] * 4
    matrix, labels = np.concatenate(parts), np.array(labels)
    mixed = np.arange(len(labels) - 11, len(labels) - 4)
    # the agreement test alone (the off-centre test, off here, also leaves out one of target 2's 30 clean clips)
    settings = {"seed": 0, "pca_dims": 16, "neighbours": 10, "min_agreement": 0.5, "max_off_centre": 0}
    _, kept, trusted = _cleaned_view(matrix, labels, **settings)
    assert np.isin(mixed, kept[1]).all()  # they still shape the clustering
    assert not trusted[mixed].any() and (trusted & (labels == 1)).sum() == 30 and (trusted & (labels == 2)).sum() == 30
    assert _cleaned_view(matrix, labels, **settings, min_target_agreement=0.5)[2][mixed].all()
    none_pass = _cleaned_view(matrix, labels, **settings, min_target_agreement=1.01)[2]
    assert (none_pass & (labels == 1)).sum() == 37

    def picks(**settings):
        return select_clean_coverage(
            matrix, labels, 30, seed=0, pca_dims=16, nontarget_fraction=0.2, max_off_centre=0, **settings
        )

    assert np.isin(picks(min_target_agreement=0.5), mixed).any()
    chosen = picks()
    assert (
        not np.isin(chosen, mixed).any()
        and (labels[chosen] == 1).sum() == (labels[picks(min_target_agreement=0.5)] == 1).sum()
    )


def test_clean_coverage_does_not_pick_target_clips_that_point_away_from_their_word():
    """Twelve badly cut clips of target 1 sit together away from its word's clips: their neighbours are each other,
    so every agreement test passes them, but the report's off-centre evidence does not, and neither do the picks."""
    from selection.diagnosis.evidence import off_centre_scores
    from selection.implementations.coverage_selection import _cleaned_view, select_clean_coverage

    rng = np.random.default_rng(1)
    parts, labels, _ = _word_clusters(rng)
    parts.append(rng.normal(0, 3, 24) + rng.normal(0, 0.3, (12, 24)))
    labels += [1] * 12
    matrix, labels = np.concatenate(parts), np.array(labels)
    cut = np.arange(len(labels) - 12, len(labels))
    settings = {"seed": 0, "pca_dims": 16, "neighbours": 10, "min_agreement": 0.5}
    space, kept, trusted = _cleaned_view(matrix, labels, **settings)
    word = np.flatnonzero(labels == 1)
    assert (off_centre_scores(space[word])[np.isin(word, cut)] > 3).all()
    assert np.isin(cut, kept[1]).all() and not trusted[cut].any()
    assert _cleaned_view(matrix, labels, **settings, max_off_centre=0)[2][cut].all()  # 0 turns the test off

    def picks(**extra):
        return select_clean_coverage(matrix, labels, 30, seed=0, pca_dims=16, nontarget_fraction=0.2, **extra)

    assert np.isin(picks(max_off_centre=0), cut).any()
    assert not np.isin(picks(), cut).any()


def _noisy_pool(tmp_path, n_wrong: int):
    """A pool whose ``yes`` list holds ``n_wrong`` clips that are really ``cat`` (mislabeled)."""
    make_dataset(tmp_path, pool_per_target=(40, 40, 40), nontarget_words=("cat", "dog", "tree"), per_word=40, seed=4)
    allowed = load_sample_ids(tmp_path / "allowed_training_set.yaml")
    cats = [i for i in allowed["nontargets"] if clip_word(i) == "cat"][:n_wrong]
    vectors = load_vectors(allowed, tmp_path / "train_embeddings", class_names=class_names_of(allowed))
    row_of = {clip_id: row for row, clip_id in enumerate(vectors.ids)}
    yes_rows = [row_of[i] for i in allowed["targets"]["yes"][:n_wrong]]
    vectors.matrix[yes_rows] = vectors.matrix[[row_of[c] for c in cats]] + 0.01
    return allowed, embeddings_dict(allowed, vectors), set(allowed["targets"]["yes"][:n_wrong])


@pytest.mark.parametrize("name", ["cleanlab", "clean_coverage"])
def test_cleaning_algorithms_leave_out_mislabeled_clips(tmp_path, name: str):
    allowed, embeddings, mislabeled = _noisy_pool(tmp_path, n_wrong=8)
    chosen = set(_select((allowed, embeddings), name, 60)["targets"]["yes"])
    assert len(chosen) >= 5 and not chosen & mislabeled


def test_medoids_are_members_and_central():
    from selection.implementations.cleanlab_selection import pick_medoids

    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = np.concatenate([c + rng.normal(0, 0.5, (30, 2)) for c in centres])
    rows = np.arange(len(points))
    medoids = pick_medoids(points, rows, 3, seed=0, max_rows=1000)
    assert sorted(set(medoids.tolist()) & set(rows.tolist())) == sorted(medoids.tolist())
    assert sorted(np.argmin(np.linalg.norm(points[medoids][:, None] - centres, axis=2), axis=1).tolist()) == [0, 1, 2]


@pytest.mark.parametrize("metric", ["macro_f1", "balanced_accuracy"])
def test_cross_validation_picks_what_the_recipe_as_written_picks(tmp_path, monkeypatch, metric: str):
    """Each candidate scored by fitting the VotingClassifier and scikit-learn's metric, as the benchmark does.

    Both ways of scoring the candidates: libsvm's kernel pass per candidate, and the candidates'
    shared squared distances (used on pools of 2,000 clips and more; here forced on the small pool).
    """
    import warnings

    from selection.implementations import cross_validation_selection as cv
    from selection.scoring.evaluation import frozen_classifier, metric_value

    root = tmp_path / "pool"
    make_dataset(
        root, pool_per_target=(30, 22, 16), nontarget_words=("cat", "dog", "tree", "house", "sun"), per_word=12
    )
    allowed = load_sample_ids(root / "allowed_training_set.yaml")
    vectors = load_vectors(allowed, root / "train_embeddings", class_names=class_names_of(allowed))
    matrix, labels = vectors.matrix, vectors.labels

    def as_written(budget: int, seed: int) -> np.ndarray:
        target_rows, nontarget_rows = np.flatnonzero(labels != 0), np.flatnonzero(labels == 0)
        n_targets, n_nontargets = int(budget * cv.TARGET_FRACTION), int(budget * (1 - cv.TARGET_FRACTION))
        best_score, best = -np.inf, None
        for t_train, t_held in cv._subset_splitter(labels[target_rows], n_targets, 4, seed).split(
            target_rows, labels[target_rows]
        ):
            for n_train, n_held in cv._subset_splitter(labels[nontarget_rows], n_nontargets, 4, seed).split(
                nontarget_rows, labels[nontarget_rows]
            ):
                train = np.concatenate([target_rows[t_train], nontarget_rows[n_train]])
                held = np.concatenate([target_rows[t_held], nontarget_rows[n_held]])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    predicted = frozen_classifier(seed).fit(matrix[train], labels[train]).predict(matrix[held])
                score = metric_value(metric, labels[held], predicted)
                if score > best_score:
                    best_score, best = score, train
        return best

    from selection.scoring import exact_kernel

    for budget, seed in ((12, 3), (20, 11)):
        expected = as_written(budget, seed)
        for min_rows in (10**9, 0):
            monkeypatch.setattr(cv, "SHARED_DISTANCES_MIN_ROWS", min_rows)
            fits = exact_kernel.checks["fits"]
            chosen = cv.select_by_cross_validation(
                matrix, labels, budget, seed=seed, metric=metric, target_splits=4, nontarget_splits=4
            )
            assert np.array_equal(chosen, expected), min_rows
            assert exact_kernel.checks["fits"] - fits == (16 if min_rows == 0 else 0)
    assert exact_kernel.checks["fell_back"] == 0
