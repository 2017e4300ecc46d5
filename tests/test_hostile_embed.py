"""``embed`` against a researcher's odd folders and files: nested outdirs, headers that lie, models that fail.
An experiment is written whole and checked as ``select``/``evaluate`` will check it, or not at all."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.conftest import run_cli
from tests.test_bad_input import assert_clean_failure

WORDS = {"yes": 6, "no": 6, "cat": 6, "dog": 6}


def _tone(index: int, rate: int = 16000, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * (200 + 37 * index) * t)).astype(np.float32)


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    audio = tmp_path / "clips"
    for number, (word, count) in enumerate(WORDS.items()):
        (audio / word).mkdir(parents=True)
        for index in range(count):
            soundfile.write(audio / word / f"{word}_{index}.wav", _tone(number * 10 + index), 16000)
    return audio


def _embed(audio: Path, outdir: Path, *extra: str, targets="yes,no", model="tests.plugins:BandEnergies"):
    return run_cli(
        "-m", "selection.embed", "--audio_dir", str(audio), "--outdir", str(outdir),
        "--model", model, "--targets", targets, *extra,
    )  # fmt: skip


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


@pytest.mark.parametrize("where", ["same", "inside", "holds"])
def test_an_outdir_nested_with_the_recordings_is_refused(clips: Path, tmp_path: Path, where: str):
    (clips / "train_embeddings").mkdir()
    soundfile.write(clips / "train_embeddings" / "mine.wav", _tone(99), 16000)
    before = _digest(clips)
    outdir = {"same": clips, "inside": clips / "yes", "holds": clips.parent}[where]
    done = _embed(clips, outdir, "--overwrite")
    assert_clean_failure(done, "--outdir", "--audio_dir")
    assert _digest(clips) == before


def test_a_failed_overwrite_leaves_the_old_experiment_whole(clips: Path, tmp_path: Path):
    outdir = tmp_path / "experiment"
    assert _embed(clips, outdir).returncode == 0
    (outdir / "train.json").write_text("{}\n")
    before = _digest(outdir)
    (clips / "lonely").mkdir()
    soundfile.write(clips / "lonely" / "one.wav", _tone(77), 16000)  # one clip: the eval set would lack it
    done = _embed(clips, outdir, "--overwrite", targets="yes,lonely")
    assert_clean_failure(done, "would be refused", "lonely")
    assert _digest(outdir) == before
    assert not [path for path in outdir.iterdir() if path.name.startswith(".embed-")]


def test_overwrite_never_deletes_what_embed_did_not_write(clips: Path, tmp_path: Path):
    outdir = tmp_path / "experiment"
    (outdir / "train_embeddings").mkdir(parents=True)
    (outdir / "train_embeddings" / "field-notes.txt").write_text("mine\n")
    done = _embed(clips, outdir, "--overwrite")
    assert_clean_failure(done, "train_embeddings", "not what embed writes")
    assert (outdir / "train_embeddings" / "field-notes.txt").read_text() == "mine\n"


def test_a_good_overwrite_swaps_every_item(clips: Path, tmp_path: Path):
    outdir = tmp_path / "experiment"
    assert _embed(clips, outdir).returncode == 0
    again = _embed(clips, outdir, "--overwrite", targets="cat,dog")
    assert again.returncode == 0, again.stderr
    assert "cat:" in (outdir / "allowed_training_set.yaml").read_text()
    assert sorted(path.name for path in outdir.iterdir()) == [
        "allowed_training_set.yaml", "dataperf_speech_config.yaml", "embed_report.json", "eval.yaml",
        "eval_embeddings", "train_embeddings",
    ]  # fmt: skip


def test_a_header_declaring_one_sample_per_second_is_refused_cheaply(clips: Path, tmp_path: Path):
    soundfile.write(clips / "yes" / "liar.wav", np.zeros(40000, np.int16), 1, subtype="PCM_16")  # 78 KiB, "11 h"
    done = _embed(clips, tmp_path / "experiment")
    assert_clean_failure(done, "liar.wav", "declares 1 samples per second")
    skipped = _embed(clips, tmp_path / "experiment", "--on_bad_audio", "skip")
    assert skipped.returncode == 0, skipped.stderr


def test_only_the_first_second_is_decoded_and_it_equals_the_whole_files_resampling(tmp_path: Path):
    import soxr

    from selection.speech.audio import read_clip

    rng = np.random.default_rng(3)
    for rate, seconds in ((44100, 3.0), (8000, 600.0), (22050, 0.7)):
        samples = rng.normal(0, 0.1, int(rate * seconds)).astype(np.float32)
        path = tmp_path / f"clip{rate}.wav"
        soundfile.write(path, samples, rate, subtype="FLOAT")
        whole = soxr.resample(samples, rate, 16000, quality="HQ").astype(np.float32)[:16000]
        expected = np.zeros(16000, np.float32)
        expected[: len(whole)] = whole
        assert np.array_equal(read_clip(path), expected), rate


@pytest.mark.parametrize(
    "change, fragment",
    [
        ("targets", "--targets"),
        ("backslash", "is not a clip ID"),
        ("long word", "bytes long"),
        ("raising model", "tests.plugins:RaisingModel.embed(): raised RuntimeError: my model is not trained yet"),
    ],
)
def test_inputs_every_later_command_would_refuse_fail_here(clips: Path, tmp_path: Path, change: str, fragment: str):
    options = {}
    if change == "targets":
        options["targets"] = ","
    elif change == "backslash":
        soundfile.write(clips / "yes" / "back\\slash.wav", _tone(55), 16000)
    elif change == "long word":
        (clips / ("w" * 250)).mkdir()
        soundfile.write(clips / ("w" * 250) / "a.wav", _tone(56), 16000)
    else:
        options["model"] = "tests.plugins:RaisingModel"
    done = _embed(clips, tmp_path / "experiment", **options)
    assert_clean_failure(done, fragment)
    assert not (tmp_path / "experiment" / "eval.yaml").exists()


def test_a_model_whose_vector_length_changes_is_refused(tmp_path: Path):
    audio = tmp_path / "many"
    for word, count in (("yes", 200), ("cat", 80)):
        (audio / word).mkdir(parents=True)
        for index in range(count):
            soundfile.write(audio / word / f"{index}.wav", _tone(index, seconds=0.1), 16000)
    done = run_cli(
        "-m", "selection.embed", "--audio_dir", str(audio), "--outdir", str(tmp_path / "experiment"),
        "--model", "tests.plugins:GrowingModel", "--targets", "yes",
    )  # fmt: skip
    assert_clean_failure(done, "GrowingModel", "vectors of lengths")
    assert not (tmp_path / "experiment").exists() or not any((tmp_path / "experiment").iterdir())
