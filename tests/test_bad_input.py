"""Every bad input: one line naming the file, key or ID; exit 2; no traceback; nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import eval_args, run_cli, select_args, write_config, write_parquet


def assert_clean_failure(done, *fragments: str, code: int = 2) -> str:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith(("error:", "internal error:"))]
    assert len(lines) == 1 and done.stderr.rstrip().endswith(lines[0]), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def good_train(dataset: Path) -> dict:
    allowed = yaml.safe_load((dataset / "allowed_training_set.yaml").read_text())
    return {"targets": {w: ids[:2] for w, ids in allowed["targets"].items()}, "nontargets": allowed["nontargets"][:3]}


def evaluate_document(dataset: Path, document, *extra: str, raw: bytes | None = None):
    path = dataset / "train.json"
    path.write_bytes(raw if raw is not None else json.dumps(document).encode())
    return run_cli(*eval_args(dataset, None, path, *extra))


TRAIN_CASES = {
    "not JSON": (None, b"{targets: oops", ["train.json", "not valid JSON", "line 1"]),
    "not an object": ([1, 2], None, ["train.json", "top level", "mapping"]),
    "missing key": ({"targets": {}}, None, ["train.json", "missing key(s) 'nontargets'"]),
    "extra key": ({"targets": {}, "nontargets": [], "bonus": 1}, None, ["train.json", "unknown key(s) 'bonus'"]),
    "number as ID": ({"targets": {"yes": [7]}, "nontargets": []}, None, ["train.json", "targets.yes[0]", "string"]),
    "nested list": ({"targets": {}, "nontargets": [["cat/x.wav"]]}, None, ["train.json", "nontargets[0]", "string"]),
    "targets not a mapping": ({"targets": ["yes"], "nontargets": []}, None, ["train.json", "targets", "mapping"]),
    "unknown target": ({"targets": {"maybe": []}, "nontargets": []}, None, ["train.json", "unknown target", "'maybe'"]),
    "not in pool": (
        {"targets": {}, "nontargets": ["cat/common_voice_en_nope.wav"]},
        None,
        ["train.json", "nontargets[0]", "'cat/common_voice_en_nope.wav'", "not in the allowed pool"],
    ),
    "path escape": ({"targets": {}, "nontargets": ["../etc/passwd"]}, None, ["train.json", "nontargets[0]", "'..'"]),
    "absolute path": ({"targets": {}, "nontargets": ["/etc/passwd"]}, None, ["train.json", "nontargets[0]"]),
    "NUL byte": ({"targets": {}, "nontargets": ["cat/a\x00.wav"]}, None, ["train.json", "nontargets[0]", "NUL"]),
    "backslash": ({"targets": {}, "nontargets": ["cat\\..\\x.wav"]}, None, ["train.json", "nontargets[0]"]),
    "empty": ({"targets": {}, "nontargets": []}, None, ["train.json", "no clips selected"]),
}


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_bad_train_file(dataset: Path, case: str):
    document, raw, fragments = TRAIN_CASES[case]
    done = evaluate_document(dataset, document, raw=raw)
    assert_clean_failure(done, *fragments)
    assert not (dataset / "results.json").exists()


def test_id_under_another_class(dataset: Path):
    document = good_train(dataset)
    stolen = document["targets"]["go"].pop()
    document["targets"]["yes"].append(stolen)
    done = evaluate_document(dataset, document)
    assert_clean_failure(done, "train.json", "targets.yes[2]", repr(stolen), "under targets.go")


def test_eval_clip_in_train_file(dataset: Path):
    evaluation = yaml.safe_load((dataset / "eval.yaml").read_text())
    document = good_train(dataset)
    document["nontargets"].append(evaluation["nontargets"][0])
    done = evaluate_document(dataset, document)
    assert_clean_failure(done, "train.json", "nontargets[3]", evaluation["nontargets"][0], "evaluation clip")


def test_duplicates_within_and_across_classes(dataset: Path):
    document = good_train(dataset)
    document["nontargets"].append(document["nontargets"][0])
    assert_clean_failure(evaluate_document(dataset, document), "train.json", "nontargets[3]", "listed twice")
    document = good_train(dataset)
    document["nontargets"].append(document["targets"]["yes"][0])
    assert_clean_failure(evaluate_document(dataset, document), "train.json", "listed twice", "targets.yes")


def test_over_the_limit(dataset: Path):
    document = good_train(dataset)
    done = evaluate_document(dataset, document, "--train_size", "5")
    assert_clean_failure(done, "train.json", "9 IDs selected", "at most 5")


def test_huge_train_file_is_refused_unread(dataset: Path):
    raw = b'{"targets": {}, "nontargets": [' + b'"cat/x.wav", ' * 1_600_000 + b'"cat/y.wav"]}'
    done = evaluate_document(dataset, None, raw=raw)
    assert_clean_failure(done, "train.json", "larger than", "reads no more")


def test_empty_class_is_a_warning_not_an_error(dataset: Path):
    document = good_train(dataset)
    document["targets"]["left"] = []
    done = evaluate_document(dataset, document)
    assert done.returncode == 0, done.stderr
    assert "targets.left: no samples selected" in done.stderr


def test_previous_results_survive_a_failure(dataset: Path):
    (dataset / "results.json").write_text("old results\n")
    done = evaluate_document(dataset, {"targets": {}, "nontargets": ["nope/x.wav"]})
    assert done.returncode == 2
    assert (dataset / "results.json").read_text() == "old results\n"


@pytest.mark.parametrize(
    "content, fragments",
    [
        ("targets: [unclosed", ["allowed_training_set.yaml", "invalid YAML", "line"]),
        ("!!python/object/apply:os.system ['echo pwned']", ["allowed_training_set.yaml", "only plain YAML"]),
        ("- just\n- a list\n", ["allowed_training_set.yaml", "top level", "mapping"]),
        ("targets: {go: []}\nnontargets: [cat/a.wav]\n", ["allowed_training_set.yaml", "targets.go", "no clips"]),
        ("targets: {yes: [yes/a.wav]}\nnontargets: [cat/a.wav]\n", ["allowed_training_set.yaml", "bool", "quote it"]),
    ],
)
def test_bad_allowed_set(dataset: Path, content: str, fragments: list[str]):
    (dataset / "allowed_training_set.yaml").write_text(content)
    assert_clean_failure(run_cli(*select_args(dataset)), *fragments)
    assert not (dataset / "train.json").exists()


def test_eval_set_with_other_target_words(dataset: Path):
    evaluation = yaml.safe_load((dataset / "eval.yaml").read_text())
    evaluation["targets"]["extra"] = evaluation["targets"].pop("left")
    (dataset / "eval.yaml").write_text(yaml.safe_dump(evaluation))
    assert run_cli(*select_args(dataset)).returncode == 0
    assert_clean_failure(run_cli(*eval_args(dataset)), "eval.yaml", "'extra'", "'left'")


def _rewrite_parquet(path: Path, **columns) -> None:
    pq.write_table(pa.table(columns), path)


def test_missing_parquet_file(dataset: Path):
    (dataset / "train_embeddings" / "cat.parquet").unlink()
    assert_clean_failure(run_cli(*select_args(dataset)), "cat.parquet", "file not found")


def test_truncated_parquet_file(dataset: Path):
    path = dataset / "train_embeddings" / "dog.parquet"
    path.write_bytes(path.read_bytes()[:300])
    assert_clean_failure(run_cli(*select_args(dataset)), "dog.parquet", "not a readable parquet file")


def test_parquet_missing_column(dataset: Path):
    path = dataset / "train_embeddings" / "dog.parquet"
    ids = pq.read_table(path).column("clip_id")
    _rewrite_parquet(path, clip_id=ids)
    assert_clean_failure(run_cli(*select_args(dataset)), "dog.parquet", "missing column", "mswc_embedding_vector")


def test_parquet_wrong_column_type(dataset: Path):
    path = dataset / "train_embeddings" / "dog.parquet"
    ids = pq.read_table(path).column("clip_id")
    _rewrite_parquet(path, clip_id=ids, mswc_embedding_vector=pa.array(["x"] * len(ids)))
    assert_clean_failure(run_cli(*select_args(dataset)), "dog.parquet", "mswc_embedding_vector", "list of floats")


@pytest.mark.parametrize("problem", ["short", "nan", "inf"])
def test_bad_vectors_name_the_clip(dataset: Path, problem: str):
    path = dataset / "train_embeddings" / "tree.parquet"
    table = pq.read_table(path)
    ids = table.column("clip_id").to_pylist()
    vectors = np.array(table.column("mswc_embedding_vector").to_pylist(), dtype=np.float32)
    victim = 2
    if problem == "short":
        rows = [list(v) for v in vectors]
        rows[victim] = rows[victim][:1000]
        _rewrite_parquet(path, clip_id=pa.array(ids), mswc_embedding_vector=pa.array(rows, pa.list_(pa.float32())))
        fragments = [ids[victim], "1000 values", "expected 1024"]
    else:
        vectors[victim, 7] = np.nan if problem == "nan" else np.inf
        write_parquet(path, ids, vectors)
        fragments = [ids[victim], "NaN or infinite"]
    assert_clean_failure(run_cli(*select_args(dataset)), "tree.parquet", *fragments)


def test_id_listed_but_absent_from_parquet(dataset: Path):
    allowed = yaml.safe_load((dataset / "allowed_training_set.yaml").read_text())
    allowed["nontargets"].append("house/common_voice_en_ghost.wav")
    (dataset / "allowed_training_set.yaml").write_text(yaml.safe_dump(allowed))
    assert_clean_failure(
        run_cli(*select_args(dataset)), "house.parquet", "house/common_voice_en_ghost.wav", "not found"
    )


@pytest.mark.parametrize(
    "overrides, fragments",
    [
        ({"metric": "accuracy"}, ["metric", "unknown metric", "macro_f1"]),
        ({"eval_random_seeds": []}, ["eval_random_seeds", "non-empty list"]),
        ({"eval_random_seeds": None}, ["eval_random_seeds", "non-empty list"]),
        ({"eval_random_seeds": [1, "two"]}, ["eval_random_seeds[1]", "integer"]),
        ({"eval_random_seeds": [1.5]}, ["eval_random_seeds[0]", "integer"]),
        ({"train_set_size_limit": 0}, ["train_set_size_limit", "positive integer"]),
        ({"selection_random_seed": "x"}, ["selection_random_seed", "integer"]),
    ],
)
def test_bad_config(dataset: Path, overrides: dict, fragments: list[str]):
    config = write_config(dataset / "bad.yaml", **overrides)
    selected = run_cli(*select_args(dataset, config))
    assert_clean_failure(selected, "bad.yaml", *fragments)


def test_bad_train_size_flag(dataset: Path):
    assert_clean_failure(run_cli(*select_args(dataset, None, "--train_size", "many")), "--train_size")


def test_output_folder_cannot_be_created(dataset: Path):
    args = select_args(dataset)
    blocked = dataset / "eval.yaml" / "out"
    args[args.index("--outdir") + 1] = str(blocked)
    assert_clean_failure(run_cli(*args), str(blocked), "cannot be created")
    assert not (dataset / "train.json").exists()


def test_single_class_selection(dataset: Path):
    allowed = yaml.safe_load((dataset / "allowed_training_set.yaml").read_text())
    done = evaluate_document(dataset, {"targets": {}, "nontargets": allowed["nontargets"][:4]})
    assert_clean_failure(done, "train.json", "nontargets", "only one class")
