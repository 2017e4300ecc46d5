"""The built-in dataset: a deterministic synthetic corpus, experiments from MSWC-style files, download."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from selection.datasets.mswc import create_experiment
from selection.datasets.synthetic import CorpusParams, write_corpus
from selection.inputs.validation import BadInputError
from tests.conftest import eval_args, read_json, run_cli, select_args, write_config, write_parquet

SMALL = {"scale": 0.04, "nontarget_words": 24, "rare_words": 3}


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_corpus_is_deterministic_and_in_mswc_formats(tmp_path: Path):
    params = CorpusParams(languages=("en", "id"), **SMALL)
    write_corpus(tmp_path / "a", params)
    write_corpus(tmp_path / "b", params)
    first = _tree_digest(tmp_path / "a")
    assert first == _tree_digest(tmp_path / "b")
    write_corpus(tmp_path / "c", CorpusParams(languages=("en", "id"), seed=1, **SMALL))
    assert first != _tree_digest(tmp_path / "c")

    with gzip.open(tmp_path / "a" / "metadata.json.gz", "rt") as handle:
        metadata = json.load(handle)
    assert set(metadata) == {"en", "id"}
    counts = metadata["en"]["wordcounts"]
    assert len(counts) == 5 + 24 + 3 and counts["episode"] > counts["route"]
    table = pq.read_table(tmp_path / "a" / "mswc_vectors" / "en" / "episode.parquet")
    assert table.column_names == ["clip_id", "mswc_embedding_vector"]
    vectors = np.array(table.column(1).to_pylist(), dtype=np.float32)
    assert vectors.shape == (counts["episode"], 1024) and (vectors >= 0).all() and (vectors == 0).any()
    assert all(i.startswith("episode/common_voice_en_") and i.endswith(".wav") for i in table.column(0).to_pylist())
    assert metadata["en"]["filenames"]["episode"][0] == table.column(0)[0].as_py()[:-4] + ".opus"
    with open(tmp_path / "a" / "splits" / "en_splits.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["SET", "LINK", "WORD", "VALID", "SPEAKER", "GENDER"]
    assert {r["SET"] for r in rows} == {"TRAIN", "DEV", "TEST"}
    speakers_by_word = {}
    for r in rows:
        speakers_by_word.setdefault(r["SPEAKER"], set()).add(r["WORD"])
    assert max(len(words) for words in speakers_by_word.values()) > 5


def _mswc_sources(root: Path) -> dict:
    """Tiny files in the real MSWC formats, made by hand."""
    rng = np.random.default_rng(3)
    (root / "vectors").mkdir(parents=True)
    words = {"alpha": 12, "beta": 9, **{f"noise{i}": 10 for i in range(6)}, "rare": 3}
    filenames, rows = {}, []
    for word, n in words.items():
        ids = [f"{word}/common_voice_xx_{k:05d}.wav" for k in rng.permutation(n)]
        write_parquet(root / "vectors" / f"{word}.parquet", ids, rng.random((n, 1024)).astype(np.float32))
        filenames[word] = [i[:-4] + ".opus" for i in ids]
        for k, clip in enumerate(filenames[word]):
            rows.append(["TRAIN" if k % 4 < 2 else ("DEV" if k % 4 == 2 else "TEST"), clip, word, "True", "s1", "MALE"])
    with gzip.open(root / "metadata.json.gz", "wt") as handle:
        json.dump(
            {"xx": {"wordcounts": words, "filenames": filenames}, "yy": {"wordcounts": {}, "filenames": {}}}, handle
        )
    with open(root / "splits.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["SET", "LINK", "WORD", "VALID", "SPEAKER", "GENDER"], *rows])
    return {"words": words, "rows": rows}


def _create_from_sources(tmp_path: Path, outdir: str = "exp", **overrides) -> dict:
    options = {
        "metadata": tmp_path / "src" / "metadata.json.gz",
        "language": "xx",
        "splits_csv": tmp_path / "src" / "splits.csv",
        "vectors_dir": tmp_path / "src" / "vectors",
        "target_words": ["alpha", "beta"],
        "outdir": tmp_path / outdir,
        "known_words": 3,
        "unknown_words": 2,
        "clips_per_word": 6,
        "seed": 0,
        **overrides,
    }
    return create_experiment(**options)


def test_create_experiment_from_mswc_format_files(tmp_path: Path):
    sources = _mswc_sources(tmp_path / "src")
    counts = _create_from_sources(tmp_path)
    allowed = yaml.safe_load((tmp_path / "exp" / "allowed_training_set.yaml").read_text())
    evaluation = yaml.safe_load((tmp_path / "exp" / "eval.yaml").read_text())
    for word in ("alpha", "beta"):
        train = {r[1][:-5] + ".wav" for r in sources["rows"] if r[2] == word and r[0] == "TRAIN"}
        held = {r[1][:-5] + ".wav" for r in sources["rows"] if r[2] == word and r[0] != "TRAIN"}
        assert set(allowed["targets"][word]) == train and set(evaluation["targets"][word]) == held
    pool_words = {i.split("/")[0] for i in allowed["nontargets"]}
    eval_words = {i.split("/")[0] for i in evaluation["nontargets"]}
    assert len(pool_words) == 3 and len(eval_words) == 5 and pool_words < eval_words
    assert "rare" not in eval_words and not eval_words & {"alpha", "beta"}
    assert len(allowed["nontargets"]) == 3 * 3 and len(evaluation["nontargets"]) == 3 * 3 + 2 * 6
    assert not set(allowed["nontargets"]) & set(evaluation["nontargets"])
    assert counts == {"pool_targets": 11, "pool_nontargets": 9, "eval_targets": 10, "eval_nontargets": 21}
    for word in pool_words:
        ids = pq.read_table(tmp_path / "exp" / "train_embeddings" / f"{word}.parquet").column(0).to_pylist()
        assert ids == [i for i in allowed["nontargets"] if i.startswith(word + "/")]
    assert not list((tmp_path / "exp").glob(".experiment-*"))

    with pytest.raises(BadInputError, match="already holds"):
        _create_from_sources(tmp_path)
    with pytest.raises(BadInputError, match="expected at least 7"):
        _create_from_sources(tmp_path, outdir="other", known_words=4, unknown_words=3)


def test_synthetic_download_then_select_and_evaluate(tmp_path: Path):
    workspace = tmp_path / "workspace"
    done = run_cli("-m", "selection.download", "--workspace", str(workspace), "--scale", "0.04")
    assert done.returncode == 0, done.stderr
    for code in ("en", "pt", "id"):
        assert (workspace / "data" / f"dataperf_{code}_data" / "eval.yaml").is_file()
    assert (workspace / "allowed_training_set.yaml").read_bytes() == (
        workspace / "data" / "dataperf_en_data" / "allowed_training_set.yaml"
    ).read_bytes()
    before = _tree_digest(workspace)
    again = run_cli("-m", "selection.download", "--workspace", str(workspace), "--scale", "0.04")
    assert again.returncode == 0 and "already present" in again.stderr
    assert _tree_digest(workspace) == before
    write_config(workspace / "dataperf_speech_config.yaml")
    assert run_cli(*select_args(workspace)).returncode == 0
    evaluated = run_cli(*eval_args(workspace))
    assert evaluated.returncode == 0, evaluated.stderr
    assert 0 <= read_json(workspace / "results.json")["score"] <= 1


def test_every_experiment_download_makes_runs_and_is_explained_with_one_flag(tmp_path: Path):
    """Each language's folder gets the harness's default config beside its experiment (a user's own is kept, even
    by --overwrite), so ``run --workspace`` and ``explain --workspace`` need nothing else, as for ``embed``'s."""
    workspace = tmp_path / "workspace"
    assert run_cli("-m", "selection.download", "--workspace", str(workspace), "--scale", "0.04").returncode == 0
    folders = [workspace, *(workspace / "data" / f"dataperf_{code}_data" for code in ("en", "pt", "id"))]
    for folder in folders:
        config = yaml.safe_load((folder / "dataperf_speech_config.yaml").read_text())
        assert config["train_set_size_limit"] == 25 and config["metric"] == "macro_f1"
    portuguese = folders[2]
    mine = "train_set_size_limit: 20\nselection_algorithm_module: selection.implementations.random_selection\n"
    mine += "selection_algorithm_class: RandomSelection\n"
    (portuguese / "dataperf_speech_config.yaml").write_text(mine)
    again = run_cli("-m", "selection.download", "--workspace", str(workspace), "--scale", "0.04", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert (portuguese / "dataperf_speech_config.yaml").read_text() == mine
    done = run_cli("-m", "selection.run", "--workspace", str(portuguese), "--baselines", "")
    assert done.returncode == 0, done.stderr
    assert (
        len(read_json(portuguese / "train.json")["nontargets"])
        + sum(len(ids) for ids in read_json(portuguese / "train.json")["targets"].values())
        <= 20
    )
    explained = run_cli("-m", "selection.explain", "--workspace", str(portuguese))
    assert explained.returncode == 0, explained.stderr
    assert (portuguese / "explain.json").is_file()
    (folders[3] / "dataperf_speech_config.yaml").unlink()  # a folder made before download wrote configs
    present = run_cli("-m", "selection.download", "--workspace", str(workspace), "--scale", "0.04")
    assert present.returncode == 0 and "already present" in present.stderr
    assert (folders[3] / "dataperf_speech_config.yaml").is_file()


def test_dataperf_download_without_network_fails_fast_and_leaves_nothing(tmp_path: Path):
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "keep.yaml").write_text("mine\n")
    done = run_cli(
        "-m",
        "selection.download",
        "--source",
        "dataperf",
        "--workspace",
        str(workspace),
        "--base_url",
        "http://127.0.0.1:9/speech-selection",
        "--timeout",
        "3",
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "dataperf_eng_data.zip: cannot be fetched" in done.stderr
    assert "left as it was" in done.stderr
    assert sorted(p.name for p in workspace.rglob("*")) == ["data", "keep.yaml"]
