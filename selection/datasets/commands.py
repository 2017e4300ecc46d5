"""The built-in spoken-commands corpus: Speech Commands' 35 words spoken by eSpeak NG, offline, from a seed.

In the layout of Google Speech Commands (and of ``embed``'s input)::

    commands/<word>/<speaker>_nohash_<n>.wav     one second, 16 kHz, mono, 16-bit
    commands/_background_noise_/<kind>.wav       30 s each: white, pink, brown, hum, babble, tap
    commands/validation_list.txt, testing_list.txt

- **words**: the ten commands (yes, no, up, down, left, right, on, off, stop, go), the digits zero to
  nine and Speech Commands v2's auxiliary words (bed, bird, cat, dog, happy, house, marvin, sheila,
  tree, wow, backward, forward, follow, learn, visual);
- **speakers**: an eSpeak NG English voice (US, British RP, Scottish, Caribbean, New York, ...), a
  voice variant (the ``!v`` voices: male, female, whisper, croak, ...), a speaking rate, a pitch and
  a pitch range; each speaker says every word once, a quarter of them twice;
- **clips**: the word rendered as the spoken corpus renders it (:func:`selection.datasets.spoken.render_clip`:
  a random level, near the middle of the second, white noise and hum at a random SNR);
- **splits by speaker**: a hash of the speaker's name puts 10% of the speakers in validation and 10%
  in test (:func:`selection.kws.data.split_of_speaker`), so that no speaker is in two splits; the
  lists name every clip of those speakers.

Same seed and scale, same files, bit for bit: words are synthesized in fixed groups, each in a
fresh process (eSpeak NG keeps state between utterances).
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from selection.datasets.spoken import SpokenParams, Synthesizer, _to_16k, _trim, render_clip, wav_bytes

log = logging.getLogger("dataperf")

COMMAND_WORDS = (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
    "backward", "forward", "follow", "learn", "visual",
)  # fmt: skip
ENGLISH_VOICES = (
    "en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
)  # fmt: skip
NOISE_KINDS = ("white_noise", "pink_noise", "brown_noise", "hum", "babble", "running_tap")
NOISE_SECONDS = 30
GROUPS = 7
FOLDER = "commands"


@dataclass(frozen=True)
class CommandsParams:
    """Every knob of the commands corpus; ``scale`` shrinks the number of speakers (tests use small scales)."""

    seed: int = 0
    scale: float = 1.0
    speakers: int = 200
    second_take: float = 0.25
    rate_range: tuple[int, int] = (110, 240)
    pitch_range: tuple[int, int] = (10, 90)
    snr_db_range: tuple[float, float] = (8.0, 40.0)
    level_range: tuple[float, float] = (0.05, 0.9)
    placement_sd_s: float = 0.08
    workers: int = 2
    words: tuple[str, ...] = COMMAND_WORDS
    voices: tuple[str, ...] = ENGLISH_VOICES

    def n_speakers(self) -> int:
        return max(10, int(round(self.speakers * self.scale)))


def _speakers(params: CommandsParams, variants: list[str]) -> list[dict]:
    rng = np.random.default_rng([params.seed, 35])
    chosen = []
    for index in range(params.n_speakers()):
        name = hashlib.sha1(f"{params.seed}-{index}".encode()).hexdigest()[:8]
        chosen.append(
            {
                "name": name,
                "voice": f"{params.voices[int(rng.integers(len(params.voices)))]}+"
                f"{variants[int(rng.integers(len(variants)))]}",
                "rate": int(rng.integers(*params.rate_range)),
                "pitch": int(rng.integers(*params.pitch_range)),
                "pitch_range": int(rng.integers(10, 90)),
                "takes": 2 if rng.random() < params.second_take else 1,
            }
        )
    return chosen


def _render_group(task: tuple[CommandsParams, list[str], int]) -> dict[str, list[tuple[str, bytes]]]:
    """Every clip of some words (runs in a fresh worker process): ``{word: [(file name, wav bytes)]}``."""
    params, words, group = task
    synthesizer = Synthesizer(seed=params.seed * 1000 + group)
    speakers = _speakers(params, synthesizer.variants)
    rendering = SpokenParams(snr_db_range=params.snr_db_range, level_range=params.level_range)
    out = {}
    for word in words:
        rng = np.random.default_rng([params.seed, 35, params.words.index(word)])
        clips = []
        for speaker in speakers:
            for take in range(speaker["takes"]):
                speech = synthesizer.say(
                    word, voice=speaker["voice"], rate=speaker["rate"], pitch=speaker["pitch"],
                    pitch_range=speaker["pitch_range"],
                )  # fmt: skip
                wave = render_clip(_trim(_to_16k(speech)), rng, rendering, placement_sd_s=params.placement_sd_s)
                clips.append((f"{speaker['name']}_nohash_{take}.wav", wav_bytes(wave)))
        out[word] = clips
    return out


def _noise(kind: str, rng: np.random.Generator, synthesizer: Synthesizer | None) -> np.ndarray:
    """One background-noise recording of ``kind``: 30 s at 16 kHz, peak about 0.5."""
    samples = 16000 * NOISE_SECONDS
    white = rng.normal(0, 1, samples)
    if kind == "white_noise":
        sound = white
    elif kind in ("pink_noise", "brown_noise"):
        spectrum = np.fft.rfft(white)
        frequency = np.maximum(np.fft.rfftfreq(samples, 1 / 16000), 1.0)
        spectrum /= np.sqrt(frequency) if kind == "pink_noise" else frequency
        sound = np.fft.irfft(spectrum, samples)
    elif kind == "hum":
        time = np.arange(samples) / 16000
        base = rng.choice([50.0, 60.0])
        sound = sum(np.sin(2 * np.pi * base * h * time + rng.uniform(0, 6.3)) / h for h in range(1, 8))
        sound = sound + 0.05 * white
    elif kind == "running_tap":
        spectrum = np.fft.rfft(white)
        frequency = np.fft.rfftfreq(samples, 1 / 16000)
        spectrum *= np.exp(-(((frequency - 2500) / 1500) ** 2))
        sound = np.fft.irfft(spectrum, samples) * (1 + 0.3 * np.sin(2 * np.pi * 3.1 * np.arange(samples) / 16000))
    else:  # babble: many overlapping words of many voices
        sound = np.zeros(samples)
        for _ in range(int(NOISE_SECONDS * 6)):
            word = COMMAND_WORDS[int(rng.integers(len(COMMAND_WORDS)))]
            voice = f"{ENGLISH_VOICES[int(rng.integers(len(ENGLISH_VOICES)))]}+{synthesizer.variants[0]}"
            speech = _to_16k(synthesizer.say(word, voice=voice, rate=int(rng.integers(120, 220)),
                                             pitch=int(rng.integers(20, 80)), pitch_range=50))  # fmt: skip
            start = int(rng.integers(0, max(1, samples - len(speech))))
            sound[start : start + len(speech)] += speech[: samples - start] * rng.uniform(0.2, 1.0)
    sound = sound / max(np.abs(sound).max(), 1e-9) * 0.5
    return sound.astype(np.float32)


def _render_noise(params: CommandsParams) -> dict[str, bytes]:
    synthesizer = Synthesizer(seed=params.seed * 1000 + 999)
    rng = np.random.default_rng([params.seed, 35, 999])
    return {kind: wav_bytes(_noise(kind, rng, synthesizer)) for kind in NOISE_KINDS}


def speakers_of(params: CommandsParams) -> list[dict]:
    """Every speaker's name, voice (``base+variant``), rate, pitch, pitch range and number of takes."""
    from selection.datasets.spoken import voice_variants

    return _speakers(params, voice_variants())


def write_commands_corpus(
    outdir: str | Path, params: CommandsParams | None = None, *, noise: bool = True, desc: str = "commands corpus"
) -> dict:
    """Write the corpus (``params.words``; with ``noise``, the background recordings) into ``outdir``, an empty
    folder; return counts for the log."""
    from selection.kws.data import split_of_speaker
    from selection.progress import report_progress

    params = params or CommandsParams()
    out = Path(outdir)
    n_groups = min(GROUPS, len(params.words))
    groups = [list(params.words[group::n_groups]) for group in range(n_groups)]
    lists: dict[str, list[str]] = {"validation": [], "test": []}
    clips = 0
    with ProcessPoolExecutor(max_workers=max(1, params.workers), max_tasks_per_child=1) as pool:
        background = pool.submit(_render_noise, params) if noise else None
        parts = pool.map(_render_group, [(params, words, index) for index, words in enumerate(groups)])
        for part in report_progress(parts, desc=desc, unit="word groups", total=n_groups):
            for word, files in part.items():
                (out / word).mkdir(parents=True, exist_ok=True)
                for name, data in files:
                    (out / word / name).write_bytes(data)
                    split = split_of_speaker(name.split("_nohash_")[0])
                    if split in lists:
                        lists[split].append(f"{word}/{name}")
                clips += len(files)
        if background is not None:
            (out / "_background_noise_").mkdir(parents=True, exist_ok=True)
            for kind, data in background.result().items():
                (out / "_background_noise_" / f"{kind}.wav").write_bytes(data)
    (out / "validation_list.txt").write_text("".join(f"{name}\n" for name in sorted(lists["validation"])))
    (out / "testing_list.txt").write_text("".join(f"{name}\n" for name in sorted(lists["test"])))
    return {"words": len(params.words), "speakers": params.n_speakers(), "clips": clips,
            "validation": len(lists["validation"]), "test": len(lists["test"])}  # fmt: skip
