"""Reading spoken clips as MSWC does: 16 kHz, mono, exactly one second.

Any format libsndfile reads (wav, flac, ogg/vorbis, ogg/opus, ...) through ``soundfile``;
other sample rates are resampled to 16 kHz with ``soxr`` (high quality); several channels
are averaged; a clip is cut to its first second, or padded with silence at the end.
Samples are float32 in [-1, 1].

Only the first second (plus :data:`RESAMPLE_MARGIN_S` for the resampler's filter, which
gives bit for bit the samples that resampling the whole file gives) is ever decoded, so a
small file whose header declares hours of audio at 1 Hz costs no memory; headers declaring
sample rates, channel counts or durations outside :data:`SAMPLE_RATES`, :data:`MAX_CHANNELS`
and :data:`MAX_SECONDS` are refused.
"""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
CLIP_SAMPLES = SAMPLE_RATE
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au")
SAMPLE_RATES = (1000, 768000)
MAX_CHANNELS = 64
MAX_SECONDS = 24 * 3600
RESAMPLE_MARGIN_S = 0.25


class BadAudioError(ValueError):
    """A clip that cannot be used; the message names the file and the problem."""


def fit_to_one_second(samples: np.ndarray) -> np.ndarray:
    """``samples`` cut to :data:`CLIP_SAMPLES`, or padded with zeros at the end, as float32."""
    clip = np.zeros(CLIP_SAMPLES, dtype=np.float32)
    used = min(len(samples), CLIP_SAMPLES)
    clip[:used] = samples[:used]
    return clip


def read_clip(path: str | Path) -> np.ndarray:
    """One clip as MSWC gives it: float32, 16 kHz, mono, one second.

    Raises
    ------
    BadAudioError
        Not a regular file, not audio, truncated, empty or silent-length (no samples).
    """
    import soundfile
    import soxr

    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise BadAudioError(f"{path}: cannot be read ({error.strerror})") from None
    if not stat.S_ISREG(mode):
        raise BadAudioError(f"{path}: not a regular file")
    try:
        info = soundfile.info(path)
        rate, channels, frames = info.samplerate, info.channels, info.frames
        if not SAMPLE_RATES[0] <= rate <= SAMPLE_RATES[1]:
            raise BadAudioError(
                f"{path}: declares {rate} samples per second; expected {SAMPLE_RATES[0]} to {SAMPLE_RATES[1]}"
            )
        if not 1 <= channels <= MAX_CHANNELS:
            raise BadAudioError(f"{path}: declares {channels} channels; expected 1 to {MAX_CHANNELS}")
        if frames > MAX_SECONDS * rate:
            raise BadAudioError(f"{path}: declares {frames / rate:.0f} s of audio; expected at most {MAX_SECONDS} s")
        with soundfile.SoundFile(path) as audio:
            wanted = int(np.ceil(rate * (1 + RESAMPLE_MARGIN_S)))
            samples = audio.read(frames=wanted, dtype="float32", always_2d=True)
    except BadAudioError:
        raise
    except (soundfile.LibsndfileError, RuntimeError, OSError, ValueError, TypeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BadAudioError(f"{path}: not readable as audio ({reason[:160]})") from None
    if samples.size == 0 or len(samples) == 0:
        raise BadAudioError(f"{path}: holds no samples")
    if any(line.startswith("data") and "should be" in line for line in info.extra_info.splitlines()):
        raise BadAudioError(f"{path}: truncated (its header promises more audio than the file holds)")
    if not np.isfinite(samples).all():
        raise BadAudioError(f"{path}: holds samples that are not finite numbers")
    mono = samples.mean(axis=1, dtype=np.float64).astype(np.float32) if samples.shape[1] > 1 else samples[:, 0]
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return fit_to_one_second(mono)


def list_clips(audio_dir: str | Path) -> dict[str, list[Path]]:
    """``{word: [clip paths, sorted]}`` from ``<audio_dir>/<word>/<clip>`` (the MSWC layout), words sorted.

    Files whose suffix is not an audio format's are ignored; a word folder without any clip is kept
    (with no clips), so that the caller can say so. ``_background_noise_`` (Speech Commands' folder of
    noise recordings) is not a word.
    """
    audio_dir = Path(audio_dir)
    words: dict[str, list[Path]] = {}
    folders = (path for path in audio_dir.iterdir() if path.is_dir() and not path.name.startswith("."))
    for folder in sorted(path for path in folders if path.name != "_background_noise_"):
        words[folder.name] = sorted(
            path for path in folder.iterdir() if path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")
        )
    return words
