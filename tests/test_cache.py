"""The evaluate cache: a hit gives the same results, any change to the sources is seen, failures cost only speed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

from selection.scoring import cache
from tests.conftest import eval_args, evaluate_results, run_cli, write_parquet
from tests.test_bad_input import assert_clean_failure, good_train


def _evaluate(dataset: Path, cache_dir: Path | str, *extra: str) -> dict:
    return evaluate_results(dataset, "--cache_dir", str(cache_dir), *extra)


def test_a_hit_gives_the_results_of_reading_the_sources(settled: Path, tmp_path: Path):
    cache_dir = tmp_path / "cache"
    first = _evaluate(settled, cache_dir)
    assert "eval set stored in the cache" in first["stderr"]
    second = _evaluate(settled, cache_dir)
    assert "eval set read from the cache" in second["stderr"]
    uncached = _evaluate(settled, "off")
    assert "cache" not in uncached["stderr"]
    assert first["results"] == second["results"] == uncached["results"]
    assert sorted(p.name.split("-")[0] for p in cache_dir.iterdir()) == ["CACHEDIR.TAG", "eval", "ids"]
    assert cache_dir.stat().st_mode & 0o777 == 0o700


def test_changed_sources_are_read_again(settled: Path, tmp_path: Path):
    cache_dir = tmp_path / "cache"
    before = _evaluate(settled, cache_dir)["results"]
    # the eval clips of "go" get vectors of "yes" clips: same IDs, other vectors
    path = settled / "eval_embeddings" / "go.parquet"
    ids = pq.read_table(path).column("clip_id").to_pylist()
    other = pq.read_table(settled / "eval_embeddings" / "yes.parquet").column("mswc_embedding_vector").to_pylist()
    write_parquet(path, ids, np.resize(np.asarray(other, dtype=np.float32), (len(ids), 1024)))
    changed_vectors = _evaluate(settled, cache_dir)
    assert "eval set read from the cache" not in changed_vectors["stderr"]
    assert changed_vectors["results"]["per_class"]["go"] != before["per_class"]["go"]
    assert changed_vectors["results"] == _evaluate(settled, "off")["results"]
    # one eval ID fewer
    eval_doc = yaml.safe_load((settled / "eval.yaml").read_text())
    eval_doc["nontargets"] = eval_doc["nontargets"][1:]
    (settled / "eval.yaml").write_text(yaml.safe_dump(eval_doc))
    fewer = _evaluate(settled, cache_dir)
    assert "eval set read from the cache" not in fewer["stderr"]
    assert fewer["results"]["n_eval"] == changed_vectors["results"]["n_eval"] - 1
    assert fewer["results"] == _evaluate(settled, "off")["results"]


def test_a_damaged_entry_is_read_from_the_sources(settled: Path, tmp_path: Path):
    cache_dir = tmp_path / "cache"
    expected = _evaluate(settled, cache_dir)["results"]
    for entry in cache_dir.glob("*-*"):
        for file in entry.iterdir():
            file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    again = _evaluate(settled, cache_dir)
    assert "damaged" in again["stderr"] and "eval set read from the cache" not in again["stderr"]
    assert again["results"] == expected
    # the damaged entries were replaced: the next run hits
    assert "eval set read from the cache" in _evaluate(settled, cache_dir)["stderr"]


def test_an_unusable_cache_folder_costs_only_speed(settled: Path, tmp_path: Path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder\n")
    expected = _evaluate(settled, "off")["results"]
    done = _evaluate(settled, blocker / "cache")
    assert done["results"] == expected
    assert "not stored" in done["stderr"] and "Traceback" not in done["stderr"]


def test_bad_train_files_are_still_refused_on_a_hit(settled: Path, tmp_path: Path):
    cache_dir = tmp_path / "cache"
    _evaluate(settled, cache_dir)
    document = good_train(settled)
    document["nontargets"].append("cat/not_in_the_pool.wav")
    (settled / "train.json").write_text(json.dumps(document))
    done = run_cli(*eval_args(settled, None, None, "--cache_dir", str(cache_dir)))
    assert "eval set read from the cache" in done.stderr
    assert_clean_failure(done, "train.json", "cat/not_in_the_pool.wav")


def test_files_changed_just_now_are_not_cached(tmp_path: Path):
    source = tmp_path / "ids.yaml"
    source.write_text("targets: {w: [w/a.wav]}\nnontargets: [n/a.wav]\n")
    assert cache.cache_key("ids", [source]) is None
    cache.sample_ids(source, str(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists()


def test_least_recently_used_entries_go_first(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(cache, "MAX_CACHE_BYTES", 3500)
    monkeypatch.setattr(cache, "SETTLE_NS", 0)
    sources = []
    for name in "abcd":
        source = tmp_path / f"{name}.yaml"
        padding = ", ".join(f"n/{name}{i:04d}.wav" for i in range(60))  # about 1000 bytes an entry
        source.write_text(f"targets: {{w: [w/{name}.wav]}}\nnontargets: [{padding}]\n")
        sources.append(source)
    cache_dir = tmp_path / "cache"
    keys = []
    for index, source in enumerate(sources):
        cache.sample_ids(source, str(cache_dir))
        keys.append(cache.cache_key("ids", [source]))
        entry = cache_dir / keys[-1]
        os.utime(entry, ns=(index * 10**9, index * 10**9))
        if index == 1:
            cache.sample_ids(sources[0], str(cache_dir))  # a hit makes "a" the most recently used
    # entries are about 1130 bytes: storing "d" went over 3500, "b" was the least recently used, removing it was enough
    assert {path.name for path in cache_dir.iterdir()} == {keys[0], keys[2], keys[3], cache.TAG_NAME}
