"""select then evaluate, as a user runs them, against an independent implementation of the recipe."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score
from sklearn.svm import SVC

from selection.inputs.load import class_names_of, load_sample_ids, load_vectors
from tests.conftest import REPO, eval_args, read_json, run_cli, select_args, write_config


def independent_dataset(doc: dict, folder: Path, target_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The recipe as the issue states it, written without the harness's code."""
    class_id = {name: i + 1 for i, name in enumerate(sorted(target_names))}
    vectors, labels = [], []
    for word, ids in doc["targets"].items():
        wanted = set(ids)
        for row in pq.read_table(folder / f"{word}.parquet").to_pylist():
            if row["clip_id"] in wanted:
                vectors.append(row["mswc_embedding_vector"])
                labels.append(class_id[word])
    by_word: dict[str, list[str]] = {}
    for clip_id in doc["nontargets"]:
        by_word.setdefault(clip_id.split("/")[0], []).append(clip_id)
    for word, ids in by_word.items():
        lookup = {
            r["clip_id"]: r["mswc_embedding_vector"] for r in pq.read_table(folder / f"{word}.parquet").to_pylist()
        }
        for clip_id in ids:
            vectors.append(lookup[clip_id])
            labels.append(0)
    return np.array(vectors, dtype=np.float32), np.array(labels)


def independent_scores(root: Path, train_doc: dict, seeds: list[int]) -> dict:
    allowed = read_yaml(root / "allowed_training_set.yaml")
    evaluation = read_yaml(root / "eval.yaml")
    names = list(allowed["targets"])
    train_x, train_y = independent_dataset(train_doc, root / "train_embeddings", names)
    eval_x, eval_y = independent_dataset(evaluation, root / "eval_embeddings", names)
    scores = {"macro_f1": [], "balanced_accuracy": []}
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = VotingClassifier(
                [("svm", SVC(probability=True, random_state=seed)), ("lr", LogisticRegression(random_state=seed))],
                voting="soft",
            ).fit(train_x, train_y)
            predicted = model.predict(eval_x)
            scores["macro_f1"].append(f1_score(eval_y, predicted, average="macro"))
            scores["balanced_accuracy"].append(balanced_accuracy_score(eval_y, predicted))
    return {name: float(np.mean(values)) for name, values in scores.items()}


def read_yaml(path: Path):
    import yaml

    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("metric", ["macro_f1", "balanced_accuracy"])
def test_select_then_evaluate_matches_the_recipe(dataset: Path, metric: str):
    config = write_config(dataset / "config.yaml", metric=metric, eval_random_seeds=[5, 69, 98, 70])
    selected = run_cli(*select_args(dataset, config))
    assert selected.returncode == 0, selected.stderr
    train_doc = read_json(dataset / "train.json")
    assert sum(map(len, train_doc["targets"].values())) + len(train_doc["nontargets"]) == 20

    evaluated = run_cli(*eval_args(dataset, config))
    assert evaluated.returncode == 0, evaluated.stderr
    results = read_json(dataset / "results.json")
    expected = independent_scores(dataset, train_doc, [5, 69, 98, 70])
    assert results["metric"] == metric
    assert results["score"] == pytest.approx(expected[metric], abs=1e-9)
    assert results["macro_f1"] == pytest.approx(expected["macro_f1"], abs=1e-9)
    assert results["balanced_accuracy"] == pytest.approx(expected["balanced_accuracy"], abs=1e-9)
    assert [entry["seed"] for entry in results["per_seed"]] == [5, 69, 98, 70]
    assert np.mean([entry["score"] for entry in results["per_seed"]]) == pytest.approx(results["score"])
    assert set(results["per_class"]) == {"nontarget", "go", "left", "yes"}
    assert results["confusion_matrix"]["labels"] == ["nontarget", "go", "left", "yes"]
    assert np.sum(results["confusion_matrix"]["matrix"]) == 4 * results["n_eval"]
    assert results["n_train"] == 20 and results["train_set_size_limit"] == 20
    assert f"{results['score']:.4f}" in evaluated.stdout


def test_results_file_flag_and_train_size_override(dataset: Path):
    assert run_cli(*select_args(dataset, None, "--train_size", "12")).returncode == 0
    train_doc = read_json(dataset / "train.json")
    assert sum(map(len, train_doc["targets"].values())) + len(train_doc["nontargets"]) == 12
    out = dataset / "elsewhere.json"
    done = run_cli(*eval_args(dataset, None, None, "--train_size", "12", "--results_file", str(out)))
    assert done.returncode == 0, done.stderr
    assert read_json(out)["train_set_size_limit"] == 12
    assert not (dataset / "results.json").exists()


def test_row_order_follows_the_benchmark(dataset: Path):
    allowed = load_sample_ids(dataset / "allowed_training_set.yaml")
    vectors = load_vectors(allowed, dataset / "train_embeddings")
    names = class_names_of(allowed)
    assert names == ["nontarget", "go", "left", "yes"]
    n_targets = sum(map(len, allowed["targets"].values()))
    start = 0
    for word, ids in allowed["targets"].items():
        file_order = [
            i
            for i in pq.read_table(dataset / "train_embeddings" / f"{word}.parquet").column(0).to_pylist()
            if i in set(ids)
        ]
        assert vectors.ids[start : start + len(ids)] == file_order != ids
        assert set(vectors.labels[start : start + len(ids)]) == {names.index(word)}
        start += len(ids)
    nontarget_ids = vectors.ids[n_targets:]
    words_in_order = list(dict.fromkeys(i.split("/")[0] for i in allowed["nontargets"]))
    expected = [i for word in words_in_order for i in allowed["nontargets"] if i.startswith(word + "/")]
    assert nontarget_ids == expected != allowed["nontargets"]
    assert (vectors.labels[n_targets:] == 0).all()
    row = vectors.ids.index(expected[3])
    table = pq.read_table(dataset / "train_embeddings" / f"{expected[3].split('/')[0]}.parquet").to_pylist()
    stored = next(r["mswc_embedding_vector"] for r in table if r["clip_id"] == expected[3])
    assert np.array_equal(vectors.matrix[row], np.array(stored, dtype=np.float32))


@pytest.mark.parametrize("config_name", ["dataset", "shipped default"])
def test_selection_is_reproducible(dataset: Path, config_name: str):
    config = dataset / "dataperf_speech_config.yaml"
    if config_name == "shipped default":
        config = dataset / "shipped.yaml"
        shutil.copy(REPO / "workspace" / "dataperf_speech_config.yaml", config)
    assert run_cli(*select_args(dataset, config)).returncode == 0
    first = (dataset / "train.json").read_bytes()
    assert run_cli(*select_args(dataset, config)).returncode == 0
    assert (dataset / "train.json").read_bytes() == first


def test_any_consistent_vector_length(tmp_path: Path):
    """An experiment made by another embedding model (here 192-d) selects and evaluates like the 1024-d data."""
    from tests.conftest import make_dataset

    make_dataset(tmp_path, dim=192)
    assert run_cli(*select_args(tmp_path)).returncode == 0
    done = run_cli(*eval_args(tmp_path, None, None, "--cache_dir", "off"))
    assert done.returncode == 0, done.stderr
    assert read_json(tmp_path / "results.json")["n_train"] == 20


def test_a_mixed_vector_length_is_refused(tmp_path: Path):
    from tests.conftest import make_dataset, write_parquet
    from tests.test_bad_input import assert_clean_failure

    make_dataset(tmp_path, dim=192)
    path = tmp_path / "train_embeddings" / "tree.parquet"
    ids = pq.read_table(path).column("clip_id").to_pylist()
    write_parquet(path, ids, np.ones((len(ids), 96), dtype=np.float32))
    done = run_cli(*select_args(tmp_path))
    assert_clean_failure(done, "tree.parquet", "vector has 96 values; expected 192")
