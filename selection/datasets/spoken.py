"""The built-in spoken-word corpus: words synthesized offline with eSpeak NG, embedded by a speech model.

Same sources and layout as the Gaussian corpus (:mod:`selection.datasets.synthetic`: MSWC-format vectors,
metadata and splits, turned into experiments by :func:`selection.datasets.mswc.create_experiment`),
but every clip is real audio:

- **speakers**: each speaker is an eSpeak NG voice of the language (en: US, British RP,
  Scottish, Caribbean, ...; pt: Portugal, Brazil; id: Indonesian, Malay) with a voice variant
  (the ``!v`` voices: male, female, whisper, croak, ...), a speaking rate, a pitch and a pitch
  range; speakers are drawn Zipf-like, so a few say many clips;
- **clips**: the word synthesized at 22,050 Hz, resampled to 16 kHz (soxr), scaled to a random
  level, placed near the middle of its one-second clip as MSWC's extraction centres it (offset by
  a random alignment error), with background noise (white and low-frequency hum) at a random
  signal-to-noise ratio;
- **faults of the real pool**: a share of every word's clips is another word under this label
  (forced-alignment mistakes), and a share is badly cut: the word truncated, mostly silence, or
  mostly a neighbouring word;
- **vocabulary**: five target words per language, with a confusable pair each (fifteen/fifty,
  quinze/cinquenta, tahun/tahu), and pseudo-words of the language's syllables as nontargets.

Embeddings come from :class:`selection.speech.model.SpeechEmbedding` (192 values per clip) by default, or
from any model ``embed`` accepts (``SpokenParams.model``: ``kws:MODEL_DIR``, ``module:Class``): the same
clips, the same faults, another embedding model.
Everything is drawn from the seed: same seed, same vectors, bit for bit.
"""

from __future__ import annotations

import ctypes
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from selection.datasets.synthetic import _pseudo_words

SYNTH_RATE = 22050
GROUPS = 8
SPOKEN_TARGETS = {
    "en": ["episode", "fifteen", "fifty", "restaurant", "route"],
    "pt": ["cidade", "cinquenta", "nunca", "quinze", "andar"],
    "id": ["baru", "kita", "pergi", "tahu", "tahun"],
}
VOICES = {
    "en": ["en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-gbclan"],
    "pt": ["pt", "pt-br"],
    "id": ["id", "ms"],
}

# How far (standard deviation, seconds) a word sits from the middle of its clip: the forced
# alignment's error. The calibration's one per-language setting: chosen so that the CV baseline
# lands near each language's published figure (README, Calibration).
PLACEMENT_SD_S = {"en": 0.12, "pt": 0.12, "id": 0.05}


@dataclass
class SpokenParams:
    """Every knob of the spoken corpus. ``scale`` shrinks every count (tests use small scales)."""

    seed: int = 0
    languages: tuple[str, ...] = ("en", "pt", "id")
    scale: float = 1.0
    target_clips: tuple[int, ...] = (700, 520, 400, 300, 220)
    nontarget_words: int = 110
    nontarget_clips_min: int = 41
    nontarget_clips_max: int = 56
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    speakers: int = 240
    rate_range: tuple[int, int] = (120, 230)
    pitch_range: tuple[int, int] = (15, 85)
    snr_db_range: tuple[float, float] = (6.0, 36.0)
    level_range: tuple[float, float] = (0.05, 0.9)
    placement_sd_s: dict[str, float] = field(default_factory=lambda: dict(PLACEMENT_SD_S))
    mislabeled_fraction: float = 0.10
    badly_cut_fraction: float = 0.10
    workers: int = 2
    model: str = "speech_embedding"  # the embedding model (any name embed's --model accepts)
    audio_dir: str | None = None  # also write every clip as 16-bit WAV at <audio_dir>/<language>/<clip id>

    def scaled(self, count: int, minimum: int = 1) -> int:
        return max(minimum, int(round(count * self.scale)))

    def experiment_clips_per_word(self) -> int:
        """Clips drawn per nontarget word for an experiment (all of the smallest word's)."""
        return self.scaled(self.nontarget_clips_min, minimum=4) - 1

    def known_words(self) -> int:
        return self.nontarget_words // 2


def voice_variants() -> list[str]:
    """The bundled eSpeak NG's voice variants (``!v``: male, female, whisper, croak, ...), sorted."""
    import espeakng_loader

    variants = os.listdir(Path(espeakng_loader.get_data_path()) / "voices" / "!v")
    return sorted(name for name in variants if name.isidentifier())


class Synthesizer:
    """eSpeak NG from the ``espeakng-loader`` wheel, driven through its C API with synchronous output."""

    def __init__(self, seed: int = 0) -> None:
        import espeakng_loader

        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        rate = lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0)  # 2: synchronous
        if rate != SYNTH_RATE:
            raise RuntimeError(f"eSpeak NG initialised at {rate} Hz; expected {SYNTH_RATE}")
        # eSpeak NG seeds its noise generator from the clock, and its wave generator keeps state from
        # one utterance to the next: a fixed seed in a fresh process makes a sequence of calls repeatable.
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed(seed)
        self._chunks: list[np.ndarray] = []
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
        self._callback = callback_type(self._collect)
        lib.espeak_SetSynthCallback(self._callback)
        self.variants = voice_variants()
        self._voice: str | None = None

    def _collect(self, samples, count, events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).astype(np.float32) / 32768.0)
        return 0

    def say(self, word: str, *, voice: str, rate: int, pitch: int, pitch_range: int) -> np.ndarray:
        """``word`` spoken by ``voice`` (``base+variant``), as float32 samples at 22,050 Hz."""
        if voice != self._voice:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise RuntimeError(f"eSpeak NG has no voice {voice!r}")
            self._voice = voice
        for parameter, value in ((1, rate), (3, pitch), (4, pitch_range)):  # espeakRATE, espeakPITCH, espeakRANGE
            self._lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks = []
        text = word.encode()
        self._lib.espeak_Synth(text, len(text) + 1, 0, 1, 0, 1, None, None)  # POS_CHARACTER, espeakCHARS_UTF8
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.float32)


def _to_16k(samples: np.ndarray) -> np.ndarray:
    import soxr

    return soxr.resample(samples, SYNTH_RATE, 16000, quality="HQ").astype(np.float32)


def _trim(samples: np.ndarray) -> np.ndarray:
    """The spoken part: samples between the first and last above 1% of the peak."""
    if not len(samples):
        return samples
    loud = np.flatnonzero(np.abs(samples) > 0.01 * np.abs(samples).max())
    return samples[loud[0] : loud[-1] + 1] if len(loud) else samples


def render_clip(
    speech: np.ndarray, rng: np.random.Generator, params: SpokenParams, *, placement_sd_s: float = 0.05
) -> np.ndarray:
    """One second at 16 kHz: ``speech`` at a random level, near the middle, over noise at a random SNR.

    MSWC cuts one second around the midpoint of each word's forced alignment; the word's offset from
    the middle is drawn with a standard deviation of ``placement_sd_s`` seconds (the alignment's error).
    """
    clip = np.zeros(16000, dtype=np.float64)
    speech = speech[:16000]
    peak = np.abs(speech).max() if len(speech) else 0.0
    if peak > 0:
        speech = speech / peak * rng.uniform(*params.level_range)
    offset = rng.normal(0.0, placement_sd_s) * 16000
    start = int(np.clip(round((16000 - len(speech)) / 2 + offset), 0, 16000 - len(speech)))
    clip[start : start + len(speech)] = speech
    power = float(np.mean(speech.astype(np.float64) ** 2)) if len(speech) else 1e-6
    noise_power = power / 10 ** (rng.uniform(*params.snr_db_range) / 10)
    time = np.arange(16000) / 16000
    hum = np.sin(2 * np.pi * rng.uniform(40, 180) * time + rng.uniform(0, 2 * np.pi)) * rng.uniform(0, 0.7)
    noise = rng.normal(0, 1, 16000) + hum
    noise *= np.sqrt(noise_power / max(np.mean(noise**2), 1e-12))
    return np.clip(clip + noise, -1, 1).astype(np.float32)


@dataclass
class _Speaker:
    voice: str
    rate: int
    pitch: int
    pitch_range: int


def _speakers(code: str, variants: list[str], params: SpokenParams, rng: np.random.Generator) -> list[_Speaker]:
    chosen = []
    for _ in range(params.speakers):
        base = VOICES[code][int(rng.integers(len(VOICES[code])))]
        variant = variants[int(rng.integers(len(variants)))]
        chosen.append(
            _Speaker(
                voice=f"{base}+{variant}",
                rate=int(rng.integers(*params.rate_range)),
                pitch=int(rng.integers(*params.pitch_range)),
                pitch_range=int(rng.integers(10, 90)),
            )
        )
    return chosen


def _clip_audio(
    code: str, word: str, vocabulary: list[str], speaker: _Speaker, fault: str, synthesizer: Synthesizer, rng, params
) -> np.ndarray:
    """The one-second clip of one recording of ``word`` (or of what a fault makes of it), and the fault applied.

    A ``mislabeled`` clip that happens to draw its own word is clean.
    """

    def say(text: str) -> np.ndarray:
        return _trim(
            _to_16k(
                synthesizer.say(
                    text, voice=speaker.voice, rate=speaker.rate, pitch=speaker.pitch, pitch_range=speaker.pitch_range
                )
            )
        )

    if fault == "mislabeled":
        other = vocabulary[int(rng.integers(len(vocabulary)))]
        speech = say(other)
        fault = fault if other != word else "clean"
    elif fault == "truncated":
        speech = say(word)
        keep = max(1, int(len(speech) * rng.uniform(0.25, 0.55)))
        speech = speech[:keep] if rng.random() < 0.5 else speech[-keep:]
    elif fault == "silence":
        speech = say(word)
        speech = speech[: max(1, len(speech) // 8)] * 0.2
    elif fault == "neighbour":
        own, other = say(word), say(vocabulary[int(rng.integers(len(vocabulary)))])
        speech = np.concatenate([own[-max(1, len(own) // 4) :], np.zeros(800, dtype=np.float32), other])
    else:
        speech = say(word)
    return render_clip(speech, rng, params, placement_sd_s=params.placement_sd_s[code]), fault


def _language_plan(code: str, params: SpokenParams, rng: np.random.Generator) -> tuple[list[str], dict[str, int]]:
    targets = SPOKEN_TARGETS[code]
    nontargets = _pseudo_words(code, params.nontarget_words, set(targets), rng)
    counts = {word: params.scaled(n, minimum=10) for word, n in zip(targets, params.target_clips)}
    for word in nontargets:
        drawn = int(rng.integers(params.nontarget_clips_min, params.nontarget_clips_max + 1))
        counts[word] = params.scaled(drawn, minimum=5)
    return targets + nontargets, counts


def _render_words(task: tuple[str, list[str], dict[str, int], SpokenParams]) -> dict[str, dict]:
    """Synthesize and embed the clips of some words of one language (runs in a worker process)."""
    from selection.speech.model import load_model

    code, words, counts, params, group = task
    synthesizer = Synthesizer(seed=params.seed * 1000 + group)
    model = load_model(params.model)
    language_rng = np.random.default_rng([params.seed, sum(map(ord, code)), 0])
    vocabulary = sorted(counts)
    speakers = _speakers(code, synthesizer.variants, params, language_rng)
    weights = 1 / np.arange(1, params.speakers + 1) ** 0.8
    weights /= weights.sum()
    genders = ["FEMALE" if "f" in s.voice.split("+")[1][:1] else "MALE" for s in speakers]
    out = {}
    for word in words:
        rng = np.random.default_rng([params.seed, sum(map(ord, code)), sum(map(ord, word)) * 7919 + len(word)])
        n = counts[word]
        who = rng.choice(params.speakers, size=n, p=weights)
        kind = rng.random(n)
        faults = np.where(kind < params.mislabeled_fraction, "mislabeled", "clean").astype(object)
        cut = (kind >= params.mislabeled_fraction) & (kind < params.mislabeled_fraction + params.badly_cut_fraction)
        faults[cut] = rng.choice(["truncated", "silence", "neighbour"], size=int(cut.sum()))
        rendered = [
            _clip_audio(code, word, vocabulary, speakers[s], str(fault), synthesizer, rng, params)
            for s, fault in zip(who, faults)
        ]
        waves = np.stack([wave for wave, _ in rendered])
        numbers = rng.permutation(n) * 7 + int(rng.integers(10**6)) + 10**7 * (sum(map(ord, word)) % 89)
        ids = [f"{word}/common_voice_{code}_{int(k):08d}.wav" for k in numbers]
        if params.audio_dir is not None:
            _write_waves(Path(params.audio_dir) / code, ids, waves)
        out[word] = {
            "ids": ids,
            "vectors": np.asarray(model.embed(waves), dtype=np.float32),
            "speakers": [f"spk_{code}_{s:04d}" for s in who],
            "genders": [genders[s] for s in who],
            "sets": [str(s) for s in rng.choice(["TRAIN", "DEV", "TEST"], size=n, p=list(params.split_fractions))],
            "faults": [applied for _, applied in rendered],
        }
    return out


def wav_bytes(samples: np.ndarray) -> bytes:
    """One clip as a 16 kHz, 16-bit WAV file's bytes (how the built-in corpora write their recordings)."""
    import io

    import soundfile

    from selection.speech.audio import SAMPLE_RATE

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _write_waves(folder: Path, ids: list[str], waves: np.ndarray) -> None:
    """Each clip as 16-bit WAV at ``<folder>/<clip id>`` (the MSWC layout: ``<word>/<file>``)."""
    for clip_id, wave in zip(ids, waves):
        path = folder / clip_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(wav_bytes(wave))


def generate_spoken_language(code: str, params: SpokenParams) -> tuple[list[str], dict[str, dict]]:
    """One language's clips: ``{word: {"ids", "vectors" (n, d), "speakers", "genders", "sets"}}``.

    Words are dealt into :data:`GROUPS` fixed groups, each synthesized in a fresh process (eSpeak NG
    keeps state between utterances), ``params.workers`` at a time: the result depends on the seed
    only, not on the number of workers.
    """
    from selection.progress import report_progress

    rng = np.random.default_rng([params.seed, sum(map(ord, code))])
    vocabulary, counts = _language_plan(code, params, rng)
    tasks = [(code, vocabulary[group::GROUPS], counts, params, group) for group in range(GROUPS)]
    clips: dict[str, dict] = {}
    # each group of words in a fresh process: eSpeak NG's state then depends on that group only
    with ProcessPoolExecutor(max_workers=max(1, params.workers), max_tasks_per_child=1) as pool:
        parts = pool.map(_render_words, [task for task in tasks if task[1]])
        for part in report_progress(parts, desc=f"{code} spoken clips", unit="groups", total=len(tasks)):
            clips.update(part)
    return SPOKEN_TARGETS[code], {word: clips[word] for word in vocabulary}


def write_spoken_corpus(outdir: str | Path, params: SpokenParams | None = None) -> None:
    """Write the spoken corpus's MSWC-format sources under ``outdir`` (as :mod:`selection.datasets.synthetic` does)."""
    from dataclasses import asdict

    from selection.datasets.synthetic import write_sources

    params = params or SpokenParams()
    write_sources(outdir, params.languages, lambda code: generate_spoken_language(code, params)[1], asdict(params))
