"""The log-mel front end of the KWS trainer: one second of 16 kHz audio becomes 40 × 101 log-mel values.

The BC-ResNet recipe's features (torchaudio's ``MelSpectrogram`` with the authors' settings):

- frames of :data:`WINDOW` = 480 samples (30 ms) every :data:`HOP` = 160 samples (10 ms), the signal
  padded by reflection with ``N_FFT // 2`` samples at each end, so frame *t* is centred on sample
  ``t · HOP``: 1 + 16000 / 160 = **101 frames**;
- each frame weighted by a periodic Hann window of 480 samples, centred in :data:`N_FFT` = 512
  (16 zeros at each side), then its 512-point DFT's power, ``|X(k)|²`` for the 257 bins 0 … 8 kHz;
- :data:`N_MELS` = 40 triangular filters on the HTK mel scale, ``2595 · log10(1 + f / 700)``,
  0 Hz to 8 kHz, unnormalised (each peaks at 1);
- ``log(mel + 1e-6)``.

:func:`log_mel_reference` computes it frame by frame in numpy, for the tests and for reading;
:func:`log_mel` is the batched version used in training and in the exported model. The DFT is a
product with fixed cosine and sine matrices (:func:`dft_matrices`): the same arithmetic in every
framework and in ONNX, where a real FFT operator is not available everywhere.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
WINDOW = 480
HOP = 160
N_FFT = 512
N_MELS = 40
LOG_OFFSET = 1e-6
FRAMES = 1 + CLIP_SAMPLES // HOP  # 101


def hann_window() -> np.ndarray:
    """The periodic Hann window of :data:`WINDOW` samples, centred in :data:`N_FFT` (float64)."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)
    padded = np.zeros(N_FFT)
    start = (N_FFT - WINDOW) // 2
    padded[start : start + WINDOW] = window
    return padded


def mel_filterbank() -> np.ndarray:
    """(257, 40) triangular filters on the HTK mel scale from 0 Hz to 8 kHz, unnormalised (float64)."""
    bins = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    mel_max = 2595.0 * np.log10(1.0 + (SAMPLE_RATE / 2) / 700.0)
    edges = 700.0 * (10 ** (np.linspace(0.0, mel_max, N_MELS + 2) / 2595.0) - 1.0)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - lower) / (centre - lower)
    falling = (upper - bins[:, None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def dft_matrices() -> tuple[np.ndarray, np.ndarray]:
    """(480, 257) cosine and sine matrices, the window folded in: ``frames @ cos`` is the real part.

    Only the window's 480 non-zero samples are used: a frame's 512-point DFT and that of its 480
    windowed samples zero-padded at the end differ by a phase, so their powers are equal.
    """
    n = np.arange(WINDOW)[:, None]
    k = np.arange(N_FFT // 2 + 1)[None, :]
    angle = 2 * np.pi * ((n * k) % N_FFT) / N_FFT
    window = hann_window()[(N_FFT - WINDOW) // 2 : (N_FFT + WINDOW) // 2, None]
    return window * np.cos(angle), -window * np.sin(angle)


def log_mel_reference(clip: np.ndarray) -> np.ndarray:
    """One clip's (40, 101) log-mel features, frame by frame with numpy's FFT (float64): the definition."""
    clip = np.asarray(clip, dtype=np.float64)
    if clip.shape != (CLIP_SAMPLES,):
        raise ValueError(f"expected {CLIP_SAMPLES} samples; got shape {clip.shape}")
    padded = np.pad(clip, N_FFT // 2, mode="reflect")
    window, filters = hann_window(), mel_filterbank()
    out = np.empty((N_MELS, FRAMES))
    for t in range(FRAMES):
        spectrum = np.fft.rfft(padded[t * HOP : t * HOP + N_FFT] * window)
        out[:, t] = np.log(np.abs(spectrum) ** 2 @ filters + LOG_OFFSET)
    return out


def _frames(waves, xp):
    """(batch, 101, 480): each frame's samples under the window's non-zero part.

    The signal is padded by reflection with 256 samples at each end; frame *t*'s window covers
    padded samples 160t + 16 … 160t + 495, that is three consecutive blocks of 160 samples from
    sample 16 on: three slices of one reshape, not a gather.
    """
    half, skip = N_FFT // 2, (N_FFT - WINDOW) // 2
    left = waves[:, 1 : half + 1][:, ::-1]
    right = waves[:, -half - 1 : -1][:, ::-1]
    padded = xp.concatenate([left, waves, right], axis=1)  # (batch, 16512)
    blocks = padded[:, skip : skip + (FRAMES + 2) * HOP].reshape(waves.shape[0], FRAMES + 2, HOP)
    return xp.concatenate([blocks[:, :FRAMES], blocks[:, 1 : FRAMES + 1], blocks[:, 2 : FRAMES + 2]], axis=2)


def log_mel(waves, xp=np, *, use_fft: bool = False):
    """Log-mel features of a batch: (batch, 16000) samples -> (batch, 40, 101) float32.

    ``xp`` is the array module (numpy, or ``jax.numpy`` inside a compiled step or an export).
    ``use_fft`` computes the power spectrum with the framework's real FFT (training: fewer
    operations) instead of the DFT matrices (the exported model: plain matrix products, which every
    ONNX runtime has); the two agree to float32 rounding.
    """
    filters = xp.asarray(mel_filterbank(), dtype=xp.float32)
    frames = _frames(waves, xp)
    if use_fft:
        window = xp.asarray(hann_window()[(N_FFT - WINDOW) // 2 : (N_FFT + WINDOW) // 2], dtype=xp.float32)
        spectrum = xp.fft.rfft(frames * window, n=N_FFT, axis=-1)
        power = xp.real(spectrum) ** 2 + xp.imag(spectrum) ** 2
    else:
        cos, sin = (xp.asarray(matrix, dtype=xp.float32) for matrix in dft_matrices())
        power = (frames @ cos) ** 2 + (frames @ sin) ** 2  # (batch, 101, 257)
    mel = power @ filters  # (batch, 101, 40)
    return xp.swapaxes(xp.log(mel + LOG_OFFSET), 1, 2).astype(xp.float32)
