"""``synthesize``: words of your choice recorded by eSpeak NG, read by ``embed`` and scored; bad flags refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import soundfile

from tests.conftest import read_json, run_cli
from tests.test_bad_input import assert_clean_failure

WORDS = "yes,no,maybe,later,never"


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    outdir = tmp_path_factory.mktemp("synth") / "clips"
    done = run_cli("-m", "selection.synthesize", "--words", WORDS, "--outdir", str(outdir), "--speakers", "12")
    assert done.returncode == 0, done.stderr
    return outdir


def test_recordings_in_embeds_layout(clips: Path):
    report = json.loads((clips / "synthesize_report.json").read_text())
    assert report["words"] == WORDS.split(",") and len(report["speakers"]) == 12
    speakers = {speaker["name"]: speaker["takes"] for speaker in report["speakers"]}
    for word in WORDS.split(","):
        files = sorted((clips / word).glob("*.wav"))
        assert len(files) == sum(speakers.values())  # every speaker says every word, some twice
        samples, rate = soundfile.read(files[0])
        assert rate == 16000 and samples.shape == (16000,) and 0.01 < abs(samples).max() <= 1
    assert len({speaker["voice"] for speaker in report["speakers"]}) > 6
    listed = (clips / "validation_list.txt").read_text().split() + (clips / "testing_list.txt").read_text().split()
    assert all((clips / name).is_file() for name in listed)
    assert report["clips"] == sum(len(list((clips / word).glob("*.wav"))) for word in WORDS.split(","))


def test_same_flags_same_files_and_overwrite(clips: Path, tmp_path: Path):
    again = tmp_path / "again"
    made = run_cli("-m", "selection.synthesize", "--words", WORDS, "--outdir", str(again), "--speakers", "12")
    assert made.returncode == 0, made.stderr
    assert _digests(again) == _digests(clips)
    refused = run_cli("-m", "selection.synthesize", "--words", "up,down", "--outdir", str(again), "--speakers", "10")
    assert_clean_failure(refused, "--outdir", "--overwrite")
    assert _digests(again) == _digests(clips)
    replaced = run_cli("-m", "selection.synthesize", "--words", "up,down", "--outdir", str(again), "--speakers", "10",
                       "--overwrite", "--language", "pt", "--seed", "3")  # fmt: skip
    assert replaced.returncode == 0, replaced.stderr
    assert sorted(path.name for path in again.iterdir() if path.is_dir()) == ["down", "up"]
    assert read_json(again / "synthesize_report.json")["language"] == "pt"


def test_recordings_to_a_score(clips: Path, tmp_path: Path):
    experiment = tmp_path / "experiment"
    done = run_cli("-m", "selection.embed", "--audio_dir", str(clips), "--outdir", str(experiment),
                   "--targets", "yes,no")  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = run_cli("-m", "selection.run", "--workspace", str(experiment), "--baselines", "")
    assert done.returncode == 0, done.stderr
    assert 0 <= read_json(experiment / "results.json")["score"] <= 1


@pytest.mark.parametrize(
    ("flags", "named", "says"),
    [
        (["--words", "yes"], "--words", "at least two"),
        (["--words", "yes,yes"], "--words", "more than once"),
        (["--words", "yes,Yes"], "--words", "twice"),
        (["--words", "yes,a/b"], "--words", "not a usable word"),
        (["--words", "yes,_noise"], "--words", "embed would not read it"),
        (["--words", "yes,no", "--speakers", "3"], "--speakers", "from 10"),
        (["--words", "yes,no", "--language", "xx"], "--language", "expected one of"),
        (["--words", "yes,no", "--snr_db", "40,8"], "--snr_db", "LOW <= HIGH"),
        (["--words", "yes,no", "--snr_db", "loud"], "--snr_db", "LOW,HIGH"),
        (["--words", "yes,no", "--seed", "-1"], "--seed", "whole number"),
    ],
)
def test_bad_flags_are_one_line(flags: list[str], named: str, says: str, tmp_path: Path):
    done = run_cli("-m", "selection.synthesize", "--outdir", str(tmp_path / "out"), *flags)
    assert_clean_failure(done, named, says)
    assert not (tmp_path / "out").exists()


def test_a_folder_of_someone_elses_files_is_left_alone(tmp_path: Path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    done = run_cli("-m", "selection.synthesize", "--words", "yes,no", "--outdir", str(tmp_path / "mine"), "--overwrite")
    assert_clean_failure(done, "--outdir", "did not write")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
