"""How long the speech in a clip is: its frames' level above the clip's own noise floor.

A badly cut clip (the word truncated, or a fragment of it in silence) holds less speech than its
word's clean clips; its embedding can stay close to its word's, so the recording is the better
witness. Where the recordings are given, the per-clip report compares each pick's speech with its
word's pool clips (:func:`selection.diagnosis.evidence.speech_lengths`).

The measure: the clip is pre-emphasised (``y[n] = x[n] - 0.97 x[n-1]``, which takes mains hum and
other low rumble down by more than 20 dB and leaves speech) and cut into 20 ms frames every 10 ms;
the noise floor is the level (dB) of its quietest tenth of frames. Each frame counts for 10 ms times
its level above the floor over the loudest frame's: a frame as loud as the peak counts fully, one
at the floor not at all. Being a ratio of levels in dB, it does not depend on the clip's loudness;
it is shorter in louder noise, so the report compares a clip only with its word's clips, whose
noise varies alike.
"""

from __future__ import annotations

import numpy as np

from selection.speech.audio import SAMPLE_RATE

FRAME = 320  # 20 ms
HOP = 160  # 10 ms
FLOOR_QUANTILE = 0.1


def frame_levels_db(clip: np.ndarray) -> np.ndarray:
    """Each 20 ms frame's mean power after pre-emphasis, in dB (frames every 10 ms)."""
    samples = np.asarray(clip, dtype=np.float64)
    emphasised = samples[1:] - 0.97 * samples[:-1]
    if len(emphasised) < FRAME:
        emphasised = np.pad(emphasised, (0, FRAME - len(emphasised)))
    frames = np.lib.stride_tricks.sliding_window_view(emphasised, FRAME)[::HOP]
    return 10.0 * np.log10((frames**2).mean(axis=1) + 1e-12)


def speech_seconds(clip: np.ndarray) -> float:
    """Seconds of speech in ``clip`` (16 kHz samples): each frame weighted by its level above the floor.

    0 for a clip without any frame above its floor (digital silence, a constant).
    """
    levels = frame_levels_db(clip)
    above = np.maximum(levels - np.quantile(levels, FLOOR_QUANTILE), 0.0)
    loudest = float(above.max())
    return float(above.sum() / loudest) * HOP / SAMPLE_RATE if loudest > 0 else 0.0
