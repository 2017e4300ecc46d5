"""Loading participants' algorithms: the plugin API, loading errors, misbehaving results, audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.io import wavfile

from selection.inputs.load import embeddings_dict, load_sample_ids, load_vectors
from selection.selection import TrainingSetSelection
from tests.conftest import read_json, run_cli, select_args, write_config
from tests.test_bad_input import assert_clean_failure


@pytest.mark.parametrize(
    "module, name, fragments",
    [
        ("tests.no_such_module", "X", ["selection_algorithm_module", "'tests.no_such_module'", "cannot be imported"]),
        ("tests.plugin_fails_on_import", "X", ["selection_algorithm_module", "raised SystemExit"]),
        ("tests.plugins", "Missing", ["selection_algorithm_class", "no class 'Missing'"]),
        ("tests.plugins", "NotAPlugin", ["selection_algorithm_class", "not a subclass", "TrainingSetSelection"]),
        ("tests.plugins", "Raises", ["tests.plugins.Raises.select()", "RuntimeError", "model weights missing"]),
        ("tests.plugins", "ReturnsList", ["tests.plugins.ReturnsList.select()", "returned list", "TrainingSet"]),
        ("tests.plugins", "TooMany", ["TooMany.select()", "21 IDs selected", "at most 20"]),
        ("tests.plugins", "OutsidePool", ["OutsidePool.select()", "cat/common_voice_en_zz9999.wav", "allowed pool"]),
    ],
)
def test_plugin_errors_are_one_line(dataset: Path, module: str, name: str, fragments: list[str]):
    (dataset / "train.json").write_text("previous\n")
    config = write_config(dataset / "plugin.yaml", selection_algorithm_module=module, selection_algorithm_class=name)
    assert_clean_failure(run_cli(*select_args(dataset, config)), *fragments)
    assert (dataset / "train.json").read_text() == "previous\n"


def test_plugin_receives_the_benchmark_shape_and_the_array_view(dataset: Path):
    allowed = load_sample_ids(dataset / "allowed_training_set.yaml")
    vectors = load_vectors(allowed, dataset / "train_embeddings")
    embeddings = embeddings_dict(allowed, vectors)
    plugin = TrainingSetSelection(embeddings, 7, {"selection_random_seed": 11, "mine": "kept"})
    assert list(embeddings["targets"]) == list(allowed["targets"])
    for word, clips in embeddings["targets"].items():
        assert sorted(clip["ID"] for clip in clips) == sorted(allowed["targets"][word])
        assert all(clip["feature_vector"].shape == (1024,) for clip in clips)
    assert [clip["ID"] for clip in embeddings["nontargets"]] == vectors.ids[-len(allowed["nontargets"]) :]
    pool = plugin.pool
    assert pool is plugin.pool
    assert pool.matrix.dtype == np.float32 and pool.matrix.shape == (len(vectors.ids), 1024)
    assert np.array_equal(pool.matrix, vectors.matrix) and pool.ids == vectors.ids
    assert pool.class_names == ["nontarget", "go", "left", "yes"]
    assert plugin.train_size == plugin.train_set_size == 7 and plugin.random_seed == 11
    assert plugin.config["mine"] == "kept"
    chosen = pool.to_training_set([0, len(pool.ids) - 1])
    assert chosen.nontargets == [pool.ids[-1]] and sum(map(len, chosen.targets.values())) == 1
    with pytest.raises(NotImplementedError):
        plugin.select()


def _write_wavs(dataset: Path, ids: list[str], loud: set[str]) -> Path:
    audio_dir = dataset / "audio"
    rng = np.random.default_rng(1)
    for clip_id in ids:
        path = audio_dir / clip_id
        path.parent.mkdir(parents=True, exist_ok=True)
        amplitude = 20000 if clip_id in loud else 1000
        wavfile.write(path, 16000, (rng.uniform(-1, 1, 16000) * amplitude).astype(np.int16))
    return audio_dir


def test_audio_is_loaded_for_every_pool_clip(dataset: Path):
    allowed = yaml.safe_load((dataset / "allowed_training_set.yaml").read_text())
    every_id = [i for ids in allowed["targets"].values() for i in ids] + allowed["nontargets"]
    loud = {ids[-1] for ids in allowed["targets"].values()} | {allowed["nontargets"][5]}
    audio_dir = _write_wavs(dataset, every_id, loud)
    config = write_config(
        dataset / "audio.yaml", selection_algorithm_module="tests.plugins", selection_algorithm_class="LoudestClips"
    )
    done = run_cli(*select_args(dataset, config, "--audio_dir", str(audio_dir)))
    assert done.returncode == 0, done.stderr
    train = read_json(dataset / "train.json")
    for word, ids in allowed["targets"].items():
        assert train["targets"][word][0] == ids[-1]
    assert train["nontargets"][0] == allowed["nontargets"][5]


def test_missing_or_bad_audio_is_named(dataset: Path):
    allowed = yaml.safe_load((dataset / "allowed_training_set.yaml").read_text())
    every_id = [i for ids in allowed["targets"].values() for i in ids] + allowed["nontargets"]
    audio_dir = _write_wavs(dataset, every_id[:-1], set())
    config = write_config(
        dataset / "audio.yaml", selection_algorithm_module="tests.plugins", selection_algorithm_class="LoudestClips"
    )
    assert_clean_failure(
        run_cli(*select_args(dataset, config, "--audio_dir", str(audio_dir))), every_id[-1], "audio file not found"
    )
    (audio_dir / every_id[-1]).write_bytes(b"not a wav")
    assert_clean_failure(
        run_cli(*select_args(dataset, config, "--audio_dir", str(audio_dir))), every_id[-1], "not readable as audio"
    )
    # another sample rate is resampled to 16 kHz, not refused
    wavfile.write(audio_dir / every_id[-1], 8000, (np.ones(800) * 1000).astype(np.int16))
    assert run_cli(*select_args(dataset, config, "--audio_dir", str(audio_dir))).returncode == 0
