"""The newer surfaces against hostile input: parquet bombs, audio folders with FIFOs and huge clips, plugins that
change what they are handed, and the Python API writing where the commands refuse to write."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from selection import load_experiment
from selection.inputs.errors import BadInputError
from selection.selection import TrainingSet, TrainingSetSelection
from tests.conftest import make_dataset


def _bomb(path: Path, ids: list[str], length: int) -> None:
    """A small parquet file whose vectors decode to ``length`` floats each (zeros compress to nothing)."""
    vectors = pa.array([np.zeros(length, dtype=np.float32) for _ in ids], type=pa.list_(pa.float32()))
    pq.write_table(pa.table({"clip_id": pa.array(ids, pa.string()), "mswc_embedding_vector": vectors}), path,
                   compression="zstd")  # fmt: skip


def test_a_parquet_bomb_is_refused_from_its_metadata(tmp_path: Path):
    make_dataset(tmp_path)
    route = tmp_path / "train_embeddings" / "yes.parquet"
    ids = pq.read_table(route, columns=["clip_id"]).column(0).to_pylist()
    _bomb(route, ids, 400_000)  # each vector 1.6 MB decoded, the file a few KB
    assert route.stat().st_size < 100_000
    experiment = load_experiment(tmp_path, config=tmp_path / "dataperf_speech_config.yaml", with_eval=False)
    with pytest.raises(BadInputError, match=r"yes\.parquet: column mswc_embedding_vector: row group 0 holds"):
        experiment.pool  # noqa: B018
    second = tmp_path / "second"
    make_dataset(second)
    route = second / "train_embeddings" / "go.parquet"
    ids = pq.read_table(route, columns=["clip_id"]).column(0).to_pylist()
    _bomb(route, ids, 1100)  # under the hard ceiling, over the experiment's 1024 per row (the first file's)
    with pytest.raises(BadInputError, match=r"expected at most 1024 a row"):
        load_experiment(second, config=second / "dataperf_speech_config.yaml", with_eval=False).pool  # noqa: B018


class _Normalising(TrainingSetSelection):
    """Changes the vectors it is handed in place (L2-normalises them), then picks the first clips."""

    def select(self) -> TrainingSet:
        for clips in [*self.embeddings["targets"].values(), self.embeddings["nontargets"]]:
            for clip in clips:
                vector = clip["feature_vector"]
                vector /= np.linalg.norm(vector) + 1e-12
        raise AssertionError("unreachable: the vectors are read-only")


class _Dropping(TrainingSetSelection):
    """Empties the dict it is handed, then picks from what is left."""

    def select(self) -> TrainingSet:
        first = {word: [clips[0]["ID"]] for word, clips in self.embeddings["targets"].items()}
        nontarget = [self.embeddings["nontargets"][0]["ID"]]
        self.embeddings["targets"].clear()
        self.embeddings["nontargets"].clear()
        return TrainingSet(targets=first, nontargets=nontarget)


def test_a_plugin_that_changes_its_input_cannot_move_a_later_score(tmp_path: Path):
    make_dataset(tmp_path)
    experiment = load_experiment(tmp_path, config=tmp_path / "dataperf_speech_config.yaml")
    picked = experiment.select("random", 8)
    before = experiment.score(picked).score
    with pytest.raises(BadInputError, match="read-only"):
        experiment.select(_Normalising, 8)
    experiment.select(_Dropping, 8)
    assert experiment.select("random", 8) == picked  # the next algorithm sees the whole pool
    assert experiment.score(picked).score == before


def test_selection_with_audio_refuses_fifos_and_huge_clips(tmp_path: Path):
    make_dataset(tmp_path)
    allowed = yaml.safe_load((tmp_path / "allowed_training_set.yaml").read_text())
    audio = tmp_path / "audio"
    ids = [clip for clips in allowed["targets"].values() for clip in clips] + allowed["nontargets"]
    for clip in ids:
        (audio / clip).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(audio / clip)
    experiment = load_experiment(tmp_path, config=tmp_path / "dataperf_speech_config.yaml", with_eval=False)
    with pytest.raises(BadInputError, match="not a regular file"):
        experiment.select("random", 8, audio_dir=audio)
    for clip in ids:
        (audio / clip).unlink()
        with open(audio / clip, "wb") as handle:  # sparse: no disk used, 1.9 GB declared
            handle.truncate(1_900_000_000)
    with pytest.raises(BadInputError, match="expected a clip of at most 16 MB"):
        experiment.select("random", 8, audio_dir=audio)


def test_the_apis_write_refuses_what_the_commands_refuse(tmp_path: Path):
    make_dataset(tmp_path)
    experiment = load_experiment(tmp_path, config=tmp_path / "dataperf_speech_config.yaml")
    picked = experiment.select("random", 8)
    kept = {name: (tmp_path / name).read_bytes() for name in ("allowed_training_set.yaml", "eval.yaml")}
    for name in kept:
        with pytest.raises(BadInputError, match="is also the input"):
            experiment.write(picked, tmp_path / name)
    with pytest.raises(BadInputError, match="is also the input"):
        experiment.write(picked, tmp_path / "dataperf_speech_config.yaml")
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(BadInputError, match="not a regular file"):
        experiment.write(picked, fifo)
    with pytest.raises(BadInputError, match="not a regular file"):
        experiment.write(picked, "/dev/null")
    assert Path("/dev/null").is_char_device()
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "eval.yaml")
    with pytest.raises(BadInputError, match="symbolic link"):
        experiment.write(picked, link)
    assert {name: (tmp_path / name).read_bytes() for name in kept} == kept
    assert experiment.write(picked, tmp_path / "train.json").is_file()


def test_a_target_word_named_nontarget_is_refused_where_experiments_are_loaded(tmp_path: Path):
    make_dataset(tmp_path)
    allowed_file = tmp_path / "allowed_training_set.yaml"
    allowed = yaml.safe_load(allowed_file.read_text())
    allowed["targets"]["nontarget"] = allowed["targets"].pop("left")
    allowed_file.write_text(yaml.safe_dump(allowed, sort_keys=False))
    with pytest.raises(BadInputError, match=r"allowed_training_set\.yaml: targets\.nontarget: .*may not be named"):
        load_experiment(tmp_path, config=tmp_path / "dataperf_speech_config.yaml", cache_dir="off")


def test_embed_names_a_repeated_target_and_refuses_a_negative_seed(tmp_path: Path):
    from tests.conftest import run_cli
    from tests.test_bad_input import assert_clean_failure

    for word in ("alpha", "beta"):
        (tmp_path / "rec" / word).mkdir(parents=True)
    out = str(tmp_path / "out")
    done = run_cli("-m", "selection.embed", "--audio_dir", str(tmp_path / "rec"), "--outdir", out, "--seed", "-1")
    assert_clean_failure(done, "--seed", "-1")
    done = run_cli("-m", "selection.embed", "--audio_dir", str(tmp_path / "rec"), "--outdir", out,
                   "--targets", "alpha,alpha")  # fmt: skip
    assert_clean_failure(done, "--targets", "'alpha' named twice")
    done = run_cli("-m", "selection.embed", "--audio_dir", str(tmp_path / "rec"), "--outdir", out,
                   "--targets", "nontarget")  # fmt: skip
    assert_clean_failure(done, "--targets", "'nontarget'")
    assert not (tmp_path / "out").exists()


class _RaisesBase(TrainingSetSelection):
    def select(self) -> TrainingSet:
        raise GeneratorExit("a BaseException that is not Ctrl-C")


class _RaisesHarnessError(TrainingSetSelection):
    def select(self) -> TrainingSet:
        raise BadInputError("my own check failed")


def test_the_api_checks_parameters_as_the_cli_checks_flags(tmp_path: Path):
    make_dataset(tmp_path)
    experiment = load_experiment(tmp_path, config=tmp_path / "dataperf_speech_config.yaml")
    picked = experiment.select("random", 8)
    for kwargs, fragment in (
        ({"seeds": []}, "seeds"), ({"metric": ""}, "metric"), ({"n_jobs": 0}, "n_jobs"), ({"limit": "x"}, "limit"),
        ({"limit": 0}, "limit"), ({"seeds": "12"}, "seeds"),
    ):  # fmt: skip
        with pytest.raises(BadInputError, match=fragment):
            experiment.score(picked, **kwargs)
    with pytest.raises(BadInputError, match="size"):
        experiment.select("random", "x")
    with pytest.raises(BadInputError, match=r"_RaisesBase\.select\(\): raised GeneratorExit"):
        experiment.select(_RaisesBase, 8)
    with pytest.raises(BadInputError, match=r"_RaisesHarnessError\.select\(\): my own check failed"):
        experiment.select(_RaisesHarnessError, 8)
    assert experiment.score(picked, seeds=[5]).score == experiment.score(picked, seeds=[5], n_jobs=1).score


def test_list_flags_refuse_repeats_and_unknown_algorithms_before_any_work(tmp_path: Path):
    from tests.conftest import run_cli
    from tests.test_bad_input import assert_clean_failure

    out = tmp_path / "submission"
    done = run_cli("-m", "selection.submit", "--outdir", str(out), "--baselines", "os:system")
    assert_clean_failure(done, "--baselines", "os:system")
    assert not out.exists()
    done = run_cli("-m", "selection.submit", "--outdir", str(out), "--languages", "en,en")
    assert_clean_failure(done, "--languages", "'en' given more than once")
    done = run_cli("-m", "selection.bench", "--algorithms", "random,random", "--output", str(tmp_path / "b.json"))
    assert_clean_failure(done, "--algorithms", "more than once")
    done = run_cli("-m", "selection.bench", "--sizes", "1" * 20, "--output", str(tmp_path / "b.json"))
    assert_clean_failure(done, "--sizes")
    assert not out.exists() and not (tmp_path / "b.json").exists()


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("whole_pool", "selects all 61 clips of the allowed pool"),
        ("one_value", "vectors of 1 value"),
        ("tiny_pool", "9 clips; the per-clip report needs more than 10"),
    ],
)
def test_explain_refuses_inputs_it_cannot_report_on_in_one_line(tmp_path: Path, case: str, fragment: str):
    import json

    from tests.conftest import run_cli, write_config
    from tests.test_bad_input import assert_clean_failure

    if case == "tiny_pool":
        make_dataset(tmp_path, pool_per_target=(2, 2, 2), nontarget_words=("cat",), per_word=3)
    else:
        make_dataset(tmp_path, dim=1 if case == "one_value" else 1024)
    allowed = yaml.safe_load((tmp_path / "allowed_training_set.yaml").read_text())
    picked = {"targets": {w: ids[:1] for w, ids in allowed["targets"].items()}, "nontargets": allowed["nontargets"][:1]}
    if case == "whole_pool":
        picked = allowed
        write_config(tmp_path / "dataperf_speech_config.yaml", train_set_size_limit=1000)
    (tmp_path / "train.json").write_text(json.dumps(picked))
    done = run_cli(
        "-m", "selection.explain", "--allowed_training_set", str(tmp_path / "allowed_training_set.yaml"),
        "--train_embeddings_dir", str(tmp_path / "train_embeddings"), "--train_file", str(tmp_path / "train.json"),
        "--config_file", str(tmp_path / "dataperf_speech_config.yaml"),
    )  # fmt: skip
    assert_clean_failure(done, fragment)
    assert not (tmp_path / "explain.json").exists()


def test_run_submit_and_bench_take_plugin_dir_and_check_the_algorithm_before_any_data(tmp_path: Path):
    from tests.conftest import run_cli, write_config
    from tests.test_bad_input import assert_clean_failure

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "mine.py").write_text("raise ImportError('my module is broken')\n")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    config = write_config(workspace / "dataperf_speech_config.yaml", selection_algorithm_module="mine",
                          selection_algorithm_class="Mine")  # fmt: skip
    done = run_cli("-m", "selection.run", "--workspace", str(workspace), "--plugin_dir", str(plugins))
    assert_clean_failure(done, "mine")
    assert sorted(path.name for path in workspace.iterdir()) == ["dataperf_speech_config.yaml"]  # nothing made
    done = run_cli("-m", "selection.submit", "--config_file", str(config), "--plugin_dir", str(plugins),
                   "--outdir", str(tmp_path / "submission"), "--data_dir", str(tmp_path / "nowhere"))  # fmt: skip
    assert_clean_failure(done, "mine")
    done = run_cli("-m", "selection.bench", "--algorithms", "mine:Mine", "--plugin_dir", str(plugins),
                   "--output", str(tmp_path / "b.json"))  # fmt: skip
    assert_clean_failure(done, "--algorithms", "mine")
    assert not (tmp_path / "submission").exists() and not (tmp_path / "b.json").exists()
