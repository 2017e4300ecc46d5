"""Spoken data: a folder of clips becomes a scored experiment; the built-in spoken corpus; bad audio."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from selection.datasets.spoken import SpokenParams, Synthesizer, generate_spoken_language, render_clip
from selection.speech.model import SpeechEmbedding
from tests.conftest import REPO, read_json, run_cli, write_config
from tests.test_bad_input import assert_clean_failure

pytestmark = pytest.mark.xdist_group("spoken")
WORDS = {"fifteen": 40, "fifty": 40, "seven": 34, "table": 14, "window": 14, "garden": 14, "yellow": 14}
MISLABELED = 0.3  # of each target word's clips: another word's audio under its label, as forced alignment does


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    """``<audio_dir>/<word>/<clip>.wav`` at 22,050 Hz (resampled on reading), a few voices, noisy, mislabeled."""
    audio_dir = tmp_path_factory.mktemp("audio") / "clips"
    synthesizer = Synthesizer(seed=1)
    rng = np.random.default_rng(0)
    params = SpokenParams(snr_db_range=(-3.0, 12.0))
    voices = ["en-us+m3", "en+f2", "en-gb-x-rp+m1", "en-us+f4", "en-gb-scotland+m7", "en-029+f1"]
    words = list(WORDS)
    for word, count in WORDS.items():
        (audio_dir / word).mkdir(parents=True)
        for index in range(count):
            said = word
            if index < 3 * count // 5 and rng.random() < MISLABELED:
                said = words[int(rng.integers(len(words)))]
            rate, pitch = int(rng.integers(130, 210)), int(rng.integers(30, 70))
            speech = synthesizer.say(said, voice=voices[index % len(voices)], rate=rate, pitch=pitch, pitch_range=50)
            clip = render_clip(speech, rng, params)  # one second at the synthesizer's 22,050 Hz rate
            soundfile.write(audio_dir / word / f"{word}_{index:03d}.wav", clip, 22050, subtype="PCM_16")
    return audio_dir


def test_a_folder_of_clips_becomes_a_scored_experiment(recordings: Path, tmp_path: Path):
    experiment = tmp_path / "experiment"
    done = run_cli(
        "-m", "selection.embed", "--audio_dir", str(recordings), "--outdir", str(experiment),
        "--targets", "fifteen,fifty,seven",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = read_json(experiment / "embed_report.json")
    assert report["dim"] == 192 and report["clips"] == sum(WORDS.values()) and report["skipped"] == []
    config = write_config(experiment / "dataperf_speech_config.yaml", train_set_size_limit=25)
    scores = {}
    for name, module, algorithm in (
        ("random", "selection.implementations.random_selection", "RandomSelection"),
        ("default", "selection.implementations.coverage_selection", "CleanCoverageSelection"),
    ):
        config = write_config(
            experiment / f"{name}.yaml", selection_algorithm_module=module, selection_algorithm_class=algorithm,
            train_set_size_limit=25,
        )  # fmt: skip
        selected = run_cli(
            "-m", "selection.main", "--allowed_training_set", str(experiment / "allowed_training_set.yaml"),
            "--train_embeddings_dir", str(experiment / "train_embeddings"), "--outdir", str(experiment / name),
            "--config_file", str(config), "--audio_dir", str(recordings),
        )  # fmt: skip
        assert selected.returncode == 0, selected.stderr
        evaluated = run_cli(
            str(REPO / "eval.py"), "--eval_embeddings_dir", str(experiment / "eval_embeddings"),
            "--train_embeddings_dir", str(experiment / "train_embeddings"),
            "--allowed_training_set", str(experiment / "allowed_training_set.yaml"),
            "--eval_file", str(experiment / "eval.yaml"), "--train_file", str(experiment / name / "train.json"),
            "--config_file", str(config), "--cache_dir", "off",
        )  # fmt: skip
        assert evaluated.returncode == 0, evaluated.stderr
        scores[name] = read_json(experiment / name / "results.json")["score"]
    assert scores["default"] > scores["random"], scores


def test_a_users_own_model(recordings: Path, tmp_path: Path):
    done = run_cli(
        "-m", "selection.embed", "--audio_dir", str(recordings), "--outdir", str(tmp_path / "own"),
        "--model", "tests.plugins:BandEnergies", "--targets", "fifteen,fifty",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert read_json(tmp_path / "own" / "embed_report.json")["dim"] == 16


def test_embeddings_are_bitwise_deterministic(recordings: Path):
    model = SpeechEmbedding()
    waves = np.stack(
        [soundfile.read(path, dtype="float32")[0][:16000] for path in sorted((recordings / "seven").iterdir())[:5]]
    )
    first = model.embed(waves)
    again = SpeechEmbedding(batch_clips=4).embed(waves[::-1])[::-1]
    assert first.shape == (5, 192) and np.array_equal(first, model.embed(waves))
    assert np.array_equal(first, again)


def test_the_spoken_corpus_is_deterministic():
    params = SpokenParams(scale=0.02, nontarget_words=3, workers=1, languages=("pt",))
    words, clips = generate_spoken_language("pt", params)
    _, again = generate_spoken_language("pt", SpokenParams(scale=0.02, nontarget_words=3, workers=2, languages=("pt",)))
    assert words == ["cidade", "cinquenta", "nunca", "quinze", "andar"]
    for word in clips:
        assert clips[word]["ids"] == again[word]["ids"]
        assert np.array_equal(clips[word]["vectors"], again[word]["vectors"])
        assert clips[word]["vectors"].shape[1] == 192
        assert clips[word]["faults"] == again[word]["faults"]
    faults = [kind for clip in clips.values() for kind in clip["faults"]]
    assert set(faults) <= {"clean", "mislabeled", "truncated", "silence", "neighbour"} and "clean" in faults


def test_another_embedding_model_gives_the_same_clips_and_faults():
    """``SpokenParams.model`` (``download --source spoken --model``) changes the vectors and nothing else."""
    params = SpokenParams(scale=0.02, nontarget_words=3, workers=2, languages=("id",))
    _, default = generate_spoken_language("id", params)
    own = SpokenParams(scale=0.02, nontarget_words=3, workers=2, languages=("id",), model="tests.plugins:BandEnergies")
    _, other = generate_spoken_language("id", own)
    assert list(default) == list(other)
    for word in default:
        for key in ("ids", "speakers", "sets", "faults"):
            assert default[word][key] == other[word][key], (word, key)
        assert default[word]["vectors"].shape[1] == 192 and other[word]["vectors"].shape[1] == 16


def test_a_word_sits_near_the_middle_of_its_clip():
    """As MSWC cuts one second around the word's alignment; the offset's spread is the per-language setting."""
    speech = np.full(3200, 0.5, dtype=np.float32)
    quiet = SpokenParams(snr_db_range=(80.0, 81.0))
    centred = render_clip(speech, np.random.default_rng(0), quiet, placement_sd_s=0.0)
    loud = np.flatnonzero(np.abs(centred) > 0.01)
    assert (loud[0], loud[-1]) == (6400, 9599)
    starts = [
        np.flatnonzero(np.abs(render_clip(speech, np.random.default_rng(seed), quiet, placement_sd_s=0.12)) > 0.01)[0]
        for seed in range(200)
    ]
    assert 0.09 < np.std(starts) / 16000 < 0.15 and abs(np.mean(starts) - 6400) < 400
    assert set(SpokenParams().placement_sd_s) == {"en", "pt", "id"}


@pytest.fixture
def bad_folder(recordings: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "clips"
    for word in ("fifteen", "fifty", "table"):
        (folder / word).mkdir(parents=True)
        for path in sorted((recordings / word).iterdir())[:6]:
            (folder / word / path.name).write_bytes(path.read_bytes())
    return folder


BAD_AUDIO = {
    "not audio": lambda folder: (folder / "table" / "notes.wav").write_text("not audio\n"),
    "truncated": lambda folder: (folder / "table" / "cut.wav").write_bytes(
        (folder / "table" / "table_000.wav").read_bytes()[:3000]
    ),
    "empty": lambda folder: (folder / "table" / "empty.wav").write_bytes(b""),
    "no samples": lambda folder: (folder / "table" / "header.wav").write_bytes(
        (folder / "table" / "table_000.wav").read_bytes()[:44]
    ),
    "unreadable": lambda folder: os.symlink(folder / "nowhere.wav", folder / "table" / "gone.wav"),
    "empty word folder": lambda folder: (folder / "hollow").mkdir(),
}


@pytest.mark.parametrize("case", sorted(BAD_AUDIO))
def test_bad_audio_fails_or_is_skipped(bad_folder: Path, tmp_path: Path, case: str):
    BAD_AUDIO[case](bad_folder)
    args = ["-m", "selection.embed", "--audio_dir", str(bad_folder), "--targets", "fifteen,fifty"]
    failed = run_cli(*args, "--outdir", str(tmp_path / "fail"))
    line = assert_clean_failure(failed, str(bad_folder), "--on_bad_audio skip")
    assert not (tmp_path / "fail").exists()
    skipped = run_cli(*args, "--outdir", str(tmp_path / "skip"), "--on_bad_audio", "skip")
    assert skipped.returncode == 0, skipped.stderr
    report = json.loads((tmp_path / "skip" / "embed_report.json").read_text())
    assert len(report["skipped"]) == 1 and report["skipped"][0]["file"] in line
    assert report["clips"] == 18


def test_two_commands_from_recordings_to_a_score(recordings: Path, tmp_path: Path):
    experiment = tmp_path / "experiment"
    assert run_cli("-m", "selection.embed", "--audio_dir", str(recordings), "--outdir", str(experiment)).returncode == 0
    done = run_cli("-m", "selection.run", "--workspace", str(experiment))
    assert done.returncode == 0, done.stderr
    assert not (experiment / "data").exists()
    results = read_json(experiment / "results.json")
    assert results["n_train"] == 25 and 0 <= results["score"] <= 1


def _said(synthesizer: Synthesizer, word: str, rng: np.random.Generator) -> np.ndarray:
    from selection.datasets.spoken import _to_16k, _trim

    voice = ["en-us+m3", "en+f2", "en-gb-x-rp+m1", "en-us+f4", "en-029+f1"][int(rng.integers(5))]
    rate, pitch = int(rng.integers(140, 200)), int(rng.integers(30, 70))
    return _trim(_to_16k(synthesizer.say(word, voice=voice, rate=rate, pitch=pitch, pitch_range=50)))


def test_the_length_of_speech_follows_the_word_not_the_clips_level():
    from selection.speech.extent import speech_seconds

    rng = np.random.default_rng(4)
    speech = _said(Synthesizer(seed=4), "restaurant", rng)
    params = SpokenParams(snr_db_range=(20.0, 20.0))
    whole, half, fragment = (
        render_clip(part, np.random.default_rng(1), params)
        for part in (speech, speech[: len(speech) // 2], speech[: len(speech) // 8])
    )
    seconds = [speech_seconds(clip) for clip in (whole, half, fragment)]
    assert seconds[2] < seconds[1] < seconds[0] <= len(speech) / 16000 + 0.05, seconds
    assert 0.3 < seconds[1] / seconds[0] < 0.75, seconds
    assert speech_seconds(whole * np.float32(0.05)) == pytest.approx(seconds[0], rel=1e-3)  # 26 dB quieter
    assert speech_seconds(np.zeros(16000, dtype=np.float32)) == 0.0


TRUNCATED = 4  # of "restaurant"'s pool clips: the first quarter of the word only, the rest of the second noise


@pytest.fixture(scope="module")
def cut_experiment(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """Recordings with a few truncated clips of one target word (in the pool), and the experiment ``embed`` makes."""
    from selection.embed import split_clips

    root = tmp_path_factory.mktemp("cut")
    audio_dir = root / "clips"
    synthesizer = Synthesizer(seed=5)
    rng = np.random.default_rng(5)
    params = SpokenParams(snr_db_range=(15.0, 30.0))
    counts = {"restaurant": 40, "fifteen": 30, "table": 12, "window": 12, "garden": 12, "yellow": 12, "river": 12}
    restaurants = [f"restaurant/restaurant_{index:03d}.wav" for index in range(counts["restaurant"])]
    truncated = split_clips(restaurants, eval_fraction=0.2, seed=0, word="restaurant")[0][:TRUNCATED]  # as embed splits
    for word, count in counts.items():
        (audio_dir / word).mkdir(parents=True)
        for index in range(count):
            speech = _said(synthesizer, word, rng)
            if f"{word}/{word}_{index:03d}.wav" in truncated:
                speech = speech[: len(speech) // 4]
            clip = render_clip(speech, rng, params)
            soundfile.write(audio_dir / word / f"{word}_{index:03d}.wav", clip, 16000, subtype="PCM_16")
    done = run_cli(
        "-m", "selection.embed", "--audio_dir", str(audio_dir), "--outdir", str(root / "experiment"),
        "--targets", "restaurant,fifteen", "--eval_fraction", "0.2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return audio_dir, root / "experiment", truncated


def test_with_recordings_the_report_calls_a_truncated_pick_badly_cut(cut_experiment, tmp_path: Path):
    """Its speech is far shorter than its word's recordings in the pool, whatever its vector says."""
    from selection import load_experiment
    from selection.diagnosis.evidence import SHORT_SPEECH_SPREADS, gather_evidence, judged

    audio_dir, folder, truncated = cut_experiment
    experiment = load_experiment(folder, with_eval=False)
    allowed = set(experiment.pool.ids)
    cut = [clip for clip in truncated if clip in allowed]
    restaurants = sorted(clip for clip in allowed if clip.startswith("restaurant/") and clip not in truncated)[:8]
    fifteens = sorted(clip for clip in allowed if clip.startswith("fifteen/"))[:8]
    nontargets = sorted(clip for clip in allowed if clip.split("/")[0] not in ("restaurant", "fifteen"))
    assert len(cut) == TRUNCATED
    train = {"targets": {"restaurant": cut + restaurants, "fifteen": fifteens}, "nontargets": nontargets[::3]}
    clean = restaurants + fifteens
    train_file = tmp_path / "train.json"
    train_file.write_text(json.dumps(train))
    (audio_dir / clean[0]).rename(tmp_path / "moved.wav")  # one pick without its recording: not judged by it
    try:
        done = run_cli(
            "-m", "selection.explain", "--workspace", str(folder), "--train_file", str(train_file),
            "--audio_dir", str(audio_dir), "--train_size", "40", "--against", "eval",
        )  # fmt: skip
    finally:
        (tmp_path / "moved.wav").rename(audio_dir / clean[0])
    assert done.returncode == 0, done.stderr
    assert "1 of" in done.stderr and "have no readable recording" in done.stderr
    clips = {clip["id"]: clip for clip in read_json(tmp_path / "explain.json")["clips"]}
    for clip_id in cut:
        clip = clips[clip_id]
        assert clip["speech_length"] < -SHORT_SPEECH_SPREADS and clip["speech_seconds"] > 0, clip
        assert any("s of speech" in reason for reason in clip["reasons"]), clip["reasons"]
    assert clips[clean[0]]["speech_length"] is None and clips[clean[0]]["speech_seconds"] is None
    others = [clip for clip_id, clip in clips.items() if clip_id not in cut and clip["speech_length"] is not None]
    assert len(others) == len(clips) - len(cut) - 1
    short = [clip for clip in others if clip["speech_length"] < -SHORT_SPEECH_SPREADS]
    assert len(short) < 0.1 * len(others), short  # a clean clip said fast in noise can be short too, but rarely
    for clip in others:
        said = any("s of speech" in reason for reason in clip["reasons"])
        assert said == (clip in short), clip
    # the verdicts (this small experiment's estimate is too small to judge by, so they are asked for directly)
    rows = np.array([experiment.pool.ids.index(clip_id) for clip_id in clips])
    names = experiment.class_names
    evidence = gather_evidence(
        experiment.pool.matrix, experiment.pool.labels, rows, len(names), pool_ids=experiment.pool.ids,
        nontarget=names.index("nontarget"), class_names=names, audio_dir=audio_dir,
    )  # fmt: skip
    for clip_id, (verdict, decided_by) in zip(clips, judged(evidence, np.zeros(len(rows)))):
        if clip_id in cut:
            assert verdict in ("badly cut?", "suspect"), (clip_id, verdict, decided_by)
            assert verdict == "suspect" or "short speech" in decided_by
        elif clips[clip_id]["speech_length"] is None or clips[clip_id]["speech_length"] > -SHORT_SPEECH_SPREADS:
            assert "short speech" not in decided_by
    # only the picks' own recordings: a word with fewer than 8 of them has nothing to be compared with
    picks_only = tmp_path / "picks-only"
    for clip_id in clips:
        (picks_only / clip_id).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(audio_dir / clip_id, picks_only / clip_id)
    partial = run_cli(
        "-m", "selection.explain", "--workspace", str(folder), "--train_file", str(train_file),
        "--outdir", str(tmp_path / "partial"), "--audio_dir", str(picks_only), "--train_size", "40",
        "--against", "eval",
    )  # fmt: skip
    assert partial.returncode == 0, partial.stderr
    unjudged = [c for c in read_json(tmp_path / "partial" / "explain.json")["clips"] if c["speech_length"] is None]
    assert unjudged and f"the speech of {len(unjudged)} picks is not judged" in partial.stderr
    without = run_cli(
        "-m", "selection.explain", "--workspace", str(folder), "--train_file", str(train_file),
        "--outdir", str(tmp_path / "plain"), "--train_size", "40", "--against", "eval",
    )  # fmt: skip
    assert without.returncode == 0, without.stderr
    plain = read_json(tmp_path / "plain" / "explain.json")["clips"]
    assert all("speech_length" not in clip for clip in plain)


def test_the_spoken_corpus_keeps_its_recordings_when_asked(tmp_path: Path):
    """``download --source spoken --audio``: every clip's recording at ``<data_dir>/audio/<language>/<clip id>``.

    Asked for after the experiment was built, the corpus is synthesized again for its recordings and the
    experiment is kept as it was. (A small vocabulary in process: the command's smallest corpus takes a minute.)
    """
    import yaml

    from selection.download import make_spoken
    from selection.speech.audio import read_clip

    params = SpokenParams(scale=0.02, nontarget_words=3, workers=2, languages=("pt",))
    data_dir = tmp_path / "spoken"
    make_spoken(data_dir, params=params)
    experiment = data_dir / "dataperf_pt_data"
    before = {path.name: path.read_bytes() for path in experiment.rglob("*") if path.is_file()}
    assert before and not (data_dir / "audio").exists()
    make_spoken(data_dir, params=params, audio=True)
    assert {path.name: path.read_bytes() for path in experiment.rglob("*") if path.is_file()} == before
    allowed = yaml.safe_load((experiment / "allowed_training_set.yaml").read_text())
    pool = [clip for clips in allowed["targets"].values() for clip in clips] + allowed["nontargets"]
    recordings = data_dir / "audio" / "pt"
    assert all((recordings / clip).is_file() for clip in pool)
    clip = read_clip(recordings / pool[0])
    assert clip.shape == (16000,) and np.abs(clip).max() > 0.01
    assert not list(data_dir.glob(".spoken-*"))  # nothing left aside
    done = run_cli("-m", "selection.download", "--workspace", str(tmp_path / "ws"), "--audio")
    assert_clean_failure(done, "--audio", "spoken")
