"""Training-time augmentation of the BC-ResNet recipe, inside the compiled step and drawn from explicit keys.

Per training clip (the authors' ``Preprocess``):

- with probability :data:`NOISE_PROBABILITY` (always for ``_silence_`` clips) a one-second segment
  of a background-noise recording, at a random place, is added at amplitude U(0, 0.1) (U(0, 1) for
  silence), and the clip is first shifted in time by up to ±100 ms (zeros fill the gap); the sum is
  clipped to [-1, 1];
- after the front end, SpecAugment zeroes two frequency bands of width U(0, F) (F by width:
  :data:`FREQUENCY_MASK`) and two time spans of width U(0, 20) frames.

Validation clips of ``_silence_`` get noise as in training (else they would all be zeros); no other
validation or test clip is changed. Everything is a function of the key: same key, same batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NOISE_PROBABILITY = 0.8
SHIFT_SAMPLES = 1600  # ±100 ms
FREQUENCY_MASK = {1.0: 0, 1.5: 1, 2.0: 3, 3.0: 5, 6.0: 7, 8.0: 7}
TIME_MASK = 20
MASKS = 2


def frequency_mask_width(width: float) -> int:
    """The SpecAugment frequency-mask bound for BC-ResNet-τ (the authors' table; 7 beyond τ = 8)."""
    known = sorted(FREQUENCY_MASK)
    below = [w for w in known if w <= width]
    return FREQUENCY_MASK[below[-1]] if below else 0


def _segment(noise: jax.Array, key: jax.Array, length: int) -> jax.Array:
    """A random ``length``-sample segment of a random recording of ``noise`` (recordings, samples)."""
    which_key, where_key = jax.random.split(key)
    which = jax.random.randint(which_key, (), 0, noise.shape[0])
    start = jax.random.randint(where_key, (), 0, noise.shape[1] - length + 1)
    return jax.lax.dynamic_slice(noise[which], (start,), (length,))


def mix_noise(waves: jax.Array, is_silence: jax.Array, noise: jax.Array, key: jax.Array, *, train: bool) -> jax.Array:
    """Background noise (and, in training, a time shift) on a batch of waves (batch, 16000)."""
    batch, length = waves.shape

    def one(wave, silent, clip_key):
        keys = jax.random.split(clip_key, 4)
        if train:
            noisy = jnp.logical_or(silent, jax.random.uniform(keys[0]) < NOISE_PROBABILITY)
        else:
            noisy = silent
        amplitude = jnp.where(silent, jax.random.uniform(keys[1]), jax.random.uniform(keys[1]) * 0.1)
        segment = _segment(noise, keys[2], length) * amplitude
        if train:
            shift = jax.random.randint(keys[3], (), -SHIFT_SAMPLES, SHIFT_SAMPLES + 1)
            padded = jnp.pad(wave, SHIFT_SAMPLES)
            wave_shifted = jax.lax.dynamic_slice(padded, (SHIFT_SAMPLES + shift,), (length,))
        else:
            wave_shifted = wave
        return jnp.where(noisy, jnp.clip(wave_shifted + segment, -1.0, 1.0), wave)

    return jax.vmap(one)(waves, is_silence, jax.random.split(key, batch))


def spec_augment(features: jax.Array, key: jax.Array, *, frequency_width: int) -> jax.Array:
    """SpecAugment on (batch, bands, frames): two frequency masks (< ``frequency_width``) and two time masks."""
    batch, bands, frames = features.shape

    def masks(mask_key, size, bound):
        width_key, start_key = jax.random.split(mask_key)
        width = jnp.floor(jax.random.uniform(width_key, (batch, MASKS), maxval=bound)).astype(jnp.int32)
        start = jnp.floor(jax.random.uniform(start_key, (batch, MASKS)) * (size - width + 1)).astype(jnp.int32)
        position = jnp.arange(size)[None, None, :]
        return jnp.any((position >= start[..., None]) & (position < (start + width)[..., None]), axis=1)

    frequency_key, time_key = jax.random.split(key)
    masked = masks(time_key, frames, TIME_MASK)[:, None, :]
    if frequency_width > 0:
        masked = masked | masks(frequency_key, bands, frequency_width)[:, :, None]
    return jnp.where(masked, 0.0, features)
