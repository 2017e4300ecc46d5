"""Training data for the KWS trainer: a ``<word>/<clip>`` folder of one-second 16 kHz clips, its splits and tasks.

The layout is Google Speech Commands' (and ``embed``'s): one folder per word, background-noise
recordings in ``_background_noise_/``, and optionally ``validation_list.txt`` and ``testing_list.txt``
naming ``<word>/<file>`` clips of the validation and test splits (every other clip trains). Without
the lists, a clip's split follows its speaker, the part of its file name before ``_nohash_`` (or
the whole name without its suffix): a hash of it puts 10% of the speakers in validation and 10% in
test, so that no speaker is in two splits.

Tasks:

- ``12``: the ten command words (yes, no, up, down, left, right, on, off, stop, go), ``_unknown_``
  (every other word) and ``_silence_`` (clips of zeros; noise is added to them as to the others).
  ``_unknown_`` and ``_silence_`` each get as many clips as the average command word of the split
  (drawn from the seed), as the authors balance them;
- ``35``: the 35 words of Speech Commands v2, each its own class;
- ``all``: every word folder its own class (your own recordings).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from selection.inputs.errors import BadInputError

COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
AUXILIARY = (
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
    "backward", "forward", "follow", "learn", "visual",
)  # fmt: skip
ALL_35 = COMMANDS + DIGITS + AUXILIARY
SILENCE, UNKNOWN = "_silence_", "_unknown_"
NOISE_FOLDER = "_background_noise_"
TASKS = ("12", "35", "all")
SPLITS = ("train", "validation", "test")
HELD_OUT_PERCENT = 10
MAX_NOISE_SECONDS = 600


@dataclass
class Split:
    """One split's clips: int16 samples (n, 16000), class ids (n,), and the clips' names (``word/file``)."""

    waves: np.ndarray
    labels: np.ndarray
    names: list[str]


@dataclass
class Corpus:
    """A task's three splits, its class names, and the background-noise recordings (float32, 16 kHz)."""

    classes: list[str]
    splits: dict[str, Split]
    noise: np.ndarray


def speaker_of(file_name: str) -> str:
    """The speaker a clip's file name names: the part before ``_nohash_``, else the name without suffix."""
    stem = Path(file_name).stem
    return stem.split("_nohash_")[0] if "_nohash_" in stem else stem


def split_of_speaker(speaker: str) -> str:
    """``train``, ``validation`` or ``test`` for a speaker, from a hash of its name (10% / 10% held out)."""
    bucket = int(hashlib.sha1(speaker.encode()).hexdigest(), 16) % 100
    if bucket < HELD_OUT_PERCENT:
        return "validation"
    if bucket < 2 * HELD_OUT_PERCENT:
        return "test"
    return "train"


def _read_list(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    return {line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()}


def task_classes(task: str, words: list[str]) -> list[str]:
    """The class names of ``task`` given the corpus's words (refused if the task's words are missing)."""
    if task == "all":
        return list(words)
    needed, name = (COMMANDS, "the ten command words") if task == "12" else (ALL_35, "Speech Commands' 35 words")
    missing = [word for word in needed if word not in words]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise BadInputError(
            f"--task {task}: no folder for {shown}; the task needs {name} (use --task all for your own words)"
        )
    return [SILENCE, UNKNOWN, *COMMANDS] if task == "12" else list(ALL_35)


def plan_corpus(audio_dir: str | Path, task: str) -> tuple[list[str], dict[str, list[tuple[Path, str]]]]:
    """Class names and, per split, the (path, class) pairs to read: the checks that need no audio decoded."""
    from selection.speech.audio import list_clips

    root = Path(audio_dir)
    if not root.is_dir():
        raise BadInputError(f"{root}: --audio_dir: not a folder; expected <audio_dir>/<word>/<clip>.wav files")
    word_clips = {word: clips for word, clips in list_clips(root).items() if not word.startswith("_")}
    if len(word_clips) < 2:
        raise BadInputError(f"{root}: --audio_dir: {len(word_clips)} word folder(s); expected at least two words")
    few = sorted(word for word, clips in word_clips.items() if len(clips) < 2)
    if few:
        raise BadInputError(
            f"{root / few[0]}: {len(word_clips[few[0]])} clip(s); expected at least two clips of every word"
        )
    classes = task_classes(task, sorted(word_clips))
    validation, testing = _read_list(root / "validation_list.txt"), _read_list(root / "testing_list.txt")
    plan: dict[str, list[tuple[Path, str]]] = {split: [] for split in SPLITS}
    for word, clips in sorted(word_clips.items()):
        if task != "all" and word not in classes:
            if task == "35":
                continue
            label = UNKNOWN
        else:
            label = word
        for path in clips:
            name = f"{word}/{path.name}"
            if validation or testing:
                split = "validation" if name in validation else "test" if name in testing else "train"
            else:
                split = split_of_speaker(speaker_of(path.name))
            plan[split].append((path, label))
    for split in SPLITS:
        if not plan[split]:
            raise BadInputError(
                f"{root}: the {split} split has no clip; expected enough speakers (or list files) for "
                "train, validation and test"
            )
    return classes, plan


def _read_training_clip(path: Path) -> np.ndarray:
    """One clip as float32 16 kHz, one second: refused (one line) unless it is readable 16 kHz audio."""
    import soundfile

    from selection.speech.audio import BadAudioError, read_clip

    try:
        rate = soundfile.info(path).samplerate if path.is_file() else None
    except (soundfile.LibsndfileError, RuntimeError, OSError):
        rate = None
    if rate is not None and rate != 16000:
        raise BadInputError(f"{path}: {rate} samples per second; expected 16000 (resample your recordings first)")
    try:
        return read_clip(path)
    except BadAudioError as error:
        raise BadInputError(str(error)) from None


def read_noise(audio_dir: str | Path) -> np.ndarray:
    """The background-noise recordings, each cut to a common length (at least one second), float32 (n, samples)."""
    import soundfile

    folder = Path(audio_dir) / NOISE_FOLDER
    if not folder.is_dir():
        return np.zeros((0, 16000), dtype=np.float32)
    recordings = []
    for path in sorted(folder.glob("*.wav")):
        try:
            info = soundfile.info(path)
            if info.samplerate != 16000:
                raise BadInputError(f"{path}: {info.samplerate} samples per second; expected 16000")
            samples, _ = soundfile.read(path, frames=16000 * MAX_NOISE_SECONDS, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
            raise BadInputError(f"{path}: not readable as audio ({str(error).splitlines()[0][:120]})") from None
        if len(samples) < 16000:
            raise BadInputError(f"{path}: {len(samples)} samples; expected at least one second of noise")
        recordings.append(samples.mean(axis=1))
    if not recordings:
        return np.zeros((0, 16000), dtype=np.float32)
    length = min(map(len, recordings))
    return np.stack([recording[:length] for recording in recordings]).astype(np.float32)


def load_corpus(audio_dir: str | Path, task: str, *, seed: int = 0) -> Corpus:
    """Read a corpus folder for ``task``: every clip decoded once, kept as int16 (a 16,000-clip corpus is 512 MB)."""
    from selection.progress import report_progress

    classes, plan = plan_corpus(audio_dir, task)
    noise = read_noise(audio_dir)
    if task == "12" and not len(noise):
        raise BadInputError(
            f"{Path(audio_dir) / NOISE_FOLDER}: no background-noise recording; the 12-class task's "
            "_silence_ class is made of noise (add .wav files there, or use --task all)"
        )
    index = {name: i for i, name in enumerate(classes)}
    rng = np.random.default_rng([seed, 12])
    splits = {}
    total = sum(map(len, plan.values()))
    progress = report_progress(range(total), desc="reading clips", unit="clips")
    ticks = iter(progress)
    for split in SPLITS:
        pairs = plan[split]
        if task == "12":
            known = [pair for pair in pairs if pair[1] != UNKNOWN]
            unknown = [pair for pair in pairs if pair[1] == UNKNOWN]
            share = max(1, round(len(known) / len(COMMANDS)))
            if len(unknown) > share:
                unknown = [unknown[i] for i in sorted(rng.choice(len(unknown), share, replace=False))]
            pairs = known + unknown
        waves = np.zeros((len(pairs), 16000), dtype=np.int16)
        for row, (path, _) in enumerate(pairs):
            waves[row] = np.round(np.clip(_read_training_clip(path), -1.0, 1.0) * 32767).astype(np.int16)
            next(ticks, None)
        labels = np.array([index[label] for _, label in pairs], dtype=np.int32)
        names = [f"{path.parent.name}/{path.name}" for path, _ in pairs]
        if task == "12":
            silent = max(1, round(len(pairs) / (len(COMMANDS) + 1)))
            waves = np.concatenate([waves, np.zeros((silent, 16000), dtype=np.int16)])
            labels = np.concatenate([labels, np.full(silent, index[SILENCE], dtype=np.int32)])
            names += [f"{SILENCE}/{i}" for i in range(silent)]
        splits[split] = Split(waves=waves, labels=labels, names=names)
    for _ in ticks:
        pass
    return Corpus(classes=classes, splits=splits, noise=noise)
