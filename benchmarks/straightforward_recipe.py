"""The benchmark's recipe written straightforwardly, as a whole process: the baseline ``eval.py`` is timed against.

Usage::

    python benchmarks/straightforward_recipe.py EXPERIMENT_DIR TRAIN_JSON CONFIG_YAML RESULTS_JSON

What the reference evaluator does, without the harness's code: PyYAML's safe loader for the ID
lists, pyarrow for the parquet files, and per seed a fresh ``VotingClassifier`` (SVC with
probability, logistic regression, soft voting) fit on the selection and predicting the whole eval
set, scored with scikit-learn's ``f1_score`` and ``balanced_accuracy_score``. Row order is the
benchmark's: targets in listed order, each in parquet order; nontargets grouped by word in order
of first appearance.
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score
from sklearn.svm import SVC


def dataset(ids: dict, folder: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    class_id = {name: i + 1 for i, name in enumerate(sorted(names))}
    vectors, labels = [], []
    for word, wanted in ids["targets"].items():
        wanted = set(wanted)
        table = pq.read_table(folder / f"{word}.parquet", columns=["clip_id", "mswc_embedding_vector"])
        for clip_id, vector in zip(table.column(0).to_pylist(), table.column(1).to_numpy(zero_copy_only=False)):
            if clip_id in wanted:
                vectors.append(vector)
                labels.append(class_id[word])
    by_word: dict[str, list[str]] = {}
    for clip_id in ids["nontargets"]:
        by_word.setdefault(clip_id.split("/")[0], []).append(clip_id)
    for word, wanted in by_word.items():
        table = pq.read_table(folder / f"{word}.parquet", columns=["clip_id", "mswc_embedding_vector"])
        lookup = dict(zip(table.column(0).to_pylist(), table.column(1).to_numpy(zero_copy_only=False)))
        for clip_id in wanted:
            vectors.append(lookup[clip_id])
            labels.append(0)
    return np.array(vectors, dtype=np.float32), np.array(labels)


def main(experiment: str, train_json: str, config_yaml: str, results_json: str) -> None:
    folder = Path(experiment)
    allowed = yaml.safe_load((folder / "allowed_training_set.yaml").read_text())
    evaluation = yaml.safe_load((folder / "eval.yaml").read_text())
    config = yaml.safe_load(Path(config_yaml).read_text()) or {}
    seeds = config.get("eval_random_seeds", [5, 69, 98, 70, 95, 64, 37, 11, 4, 32])
    selected = json.loads(Path(train_json).read_text())
    names = list(allowed["targets"])
    train_x, train_y = dataset(selected, folder / "train_embeddings", names)
    eval_x, eval_y = dataset(evaluation, folder / "eval_embeddings", names)
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
    Path(results_json).write_text(json.dumps({name: float(np.mean(values)) for name, values in scores.items()}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
