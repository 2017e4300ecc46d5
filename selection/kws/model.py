"""BC-ResNet (Kim et al., "Broadcasted residual learning for efficient keyword spotting", 2021) in Flax NNX.

The network as the paper and its authors' code define it, for a log-mel input of 40 bands × 101 frames
(kept as ``(batch, frequency, time, channels)``), with one width knob τ and ``c = int(8τ)``:

- **head**: a 5×5 convolution with frequency stride 2 to 2c channels, BatchNorm, ReLU (40 → 20 bands);
- **four stages** of :data:`STAGE_BLOCKS` = 2, 2, 4, 4 broadcasted residual blocks with c, 1.5c, 2c
  and 2.5c channels; the first block of stages 2 and 3 halves the frequency axis (20 → 10 → 5); the
  temporal convolutions of stage *i* are dilated by 2^i (1, 2, 4, 8);
- **block**: ``y = relu(x + f2(x) + BC(f1(avgpool_freq(f2(x)))))``, where f2 is a 3×1 frequency-depthwise
  convolution followed by SubSpectralNorm over 5 sub-bands, and f1 a 1×3 temporal depthwise
  convolution, BatchNorm, SiLU, a 1×1 convolution and channel dropout (0.1); BC broadcasts f1's
  (batch, 1, time, channels) result over the frequency axis. Where the width changes (the first
  block of every stage) a 1×1 convolution, BatchNorm and ReLU come first in f2, and the identity
  shortcut ``x`` is left out (a *transition* block);
- **classifier**: a 5×5 depthwise convolution over the last 5 bands (no frequency padding: 5 → 1),
  a 1×1 convolution to 4c channels, BatchNorm, ReLU, the average over time (the **embedding**, 4c
  values) and a 1×1 convolution with bias to the classes.

Depthwise convolutions are written as sums of shifted, scaled slices of the input: the same
arithmetic as a grouped convolution, which XLA fuses into a few loops on a CPU (its grouped
convolutions are several times slower there). In training, the 1×1 convolutions and the head are
matrix products with their gradients written out (:func:`pointwise`); inference and the export use
the ordinary layers. Convolutions have no bias where a normalisation follows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from selection.kws.frontend import FRAMES, N_MELS

WIDTHS = (1.0, 1.5, 2.0, 3.0, 6.0, 8.0)
STAGE_BLOCKS = (2, 2, 4, 4)
STRIDED_STAGES = (1, 2)
SUB_BANDS = 5
DROPOUT = 0.1
BN_MOMENTUM = 0.9  # torch's 0.1: running = 0.9 · running + 0.1 · batch
BN_EPSILON = 1e-5


def channels(width: float) -> list[int]:
    """The six channel counts of BC-ResNet-τ: head 2c, stages c, 1.5c, 2c, 2.5c, classifier 4c (c = int(8τ))."""
    base = int(width * 8)
    return [base * 2, base, int(base * 1.5), base * 2, int(base * 2.5), base * 4]


def _depthwise_frequency(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """A 3×1 depthwise convolution along frequency, padding 1: ``kernel`` (3, C)."""
    bands = x.shape[1]
    padded = jnp.pad(x, ((0, 0), (1, 1), (0, 0), (0, 0)))
    out = None
    for tap in range(3):
        term = padded[:, tap : tap + bands : stride] * kernel[tap]
        out = term if out is None else out + term
    return out


def _depthwise_time(x: jax.Array, kernel: jax.Array, dilation: int) -> jax.Array:
    """A 1×3 depthwise convolution along time with ``dilation``, padding ``dilation``: ``kernel`` (3, C)."""
    frames = x.shape[2]
    padded = jnp.pad(x, ((0, 0), (0, 0), (dilation, dilation), (0, 0)))
    out = None
    for tap in range(3):
        term = padded[:, :, tap * dilation : tap * dilation + frames] * kernel[tap]
        out = term if out is None else out + term
    return out


@jax.custom_vjp
def pointwise(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """A 1×1 convolution in training: ``x @ kernel`` over the last axis, as one (rows, channels) matrix product.

    The same arithmetic as ``nnx.Linear``; its gradient is written out as two matrix products on the
    flattened rows. Autodiff's own gradient of the kernel contracts over every leading axis of a 4-d
    tensor, which XLA on a CPU computed by first transposing the whole activation: about five times
    the time of the product itself.
    """
    return (x.reshape(-1, x.shape[-1]) @ kernel).reshape(*x.shape[:-1], kernel.shape[1])


def _pointwise_forward(x: jax.Array, kernel: jax.Array):
    return pointwise(x, kernel), (x, kernel)


def _pointwise_backward(saved, grad: jax.Array):
    x, kernel = saved
    rows = grad.reshape(-1, grad.shape[-1])
    grad_x = (rows @ kernel.T).reshape(x.shape)
    grad_kernel = jax.lax.dot_general(x.reshape(-1, x.shape[-1]), rows, (((0,), (0,)), ((), ())))
    return grad_x, grad_kernel


pointwise.defvjp(_pointwise_forward, _pointwise_backward)


def _apply(layer: nnx.Linear, x: jax.Array, *, train: bool) -> jax.Array:
    """A bias-free 1×1 convolution layer: :func:`pointwise` in training, the layer itself otherwise (and in export)."""
    return pointwise(x, layer.kernel[...]) if train else layer(x)


def _head_patches(features: jax.Array) -> jax.Array:
    """(batch, 20, 101, 25): the 5×5 input patch under each output of the head convolution (frequency stride 2).

    Training computes the head as these patches times the (25, 2c) kernel (:func:`pointwise`): one
    matrix product forward and one for the kernel's gradient, where XLA's own single-input-channel
    convolution and its gradient took about a twentieth of a BC-ResNet-3 step on a CPU.
    """
    bands, frames = features.shape[1] // 2, features.shape[2]
    padded = jnp.pad(features, ((0, 0), (2, 2), (2, 2)))
    taps = [padded[:, i : i + 2 * bands : 2, j : j + frames] for i in range(5) for j in range(5)]
    return jnp.stack(taps, axis=-1)


class DepthwiseKernel(nnx.Module):
    """The weights of a depthwise convolution, (taps…, C), initialised as PyTorch's (Kaiming-uniform, fan-in = taps)."""

    def __init__(self, shape: tuple[int, ...], *, rngs: nnx.Rngs) -> None:
        fan_in = 1
        for size in shape[:-1]:
            fan_in *= size
        bound = 1.0 / fan_in**0.5
        self.kernel = nnx.Param(jax.random.uniform(rngs.params(), shape, minval=-bound, maxval=bound))


class Norm(nnx.Module):
    """Batch normalisation (PyTorch's ``BatchNorm2d`` arithmetic) with statistics of shape ``shape``.

    ``shape`` broadcasts against the input: ``(C,)`` for BatchNorm over (batch, bands, time);
    ``(5, 1, 1, C)`` for SubSpectralNorm on a ``(batch, 5, bands / 5, time, C)`` view, reducing over
    every axis where ``shape`` is 1 or absent. Training normalises with the batch's mean and biased
    variance and moves the running statistics 0.1 of the way to the batch's (unbiased variance, as
    PyTorch does); inference uses the running statistics.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.scale = nnx.Param(jnp.ones(shape))
        self.bias = nnx.Param(jnp.zeros(shape))
        self.mean = nnx.BatchStat(jnp.zeros(shape))
        self.var = nnx.BatchStat(jnp.ones(shape))

    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        shape = self.scale.shape
        if train:
            full = (1,) * (x.ndim - len(shape)) + tuple(shape)
            axes = tuple(axis for axis in range(x.ndim) if full[axis] == 1)
            count = 1
            for axis in axes:
                count *= x.shape[axis]
            mean = jnp.mean(x, axis=axes, keepdims=True)
            var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
            mean, var = mean.reshape(shape), var.reshape(shape)
            self.mean[...] = BN_MOMENTUM * self.mean[...] + (1 - BN_MOMENTUM) * jax.lax.stop_gradient(mean)
            unbiased = var * (count / max(count - 1, 1))
            self.var[...] = BN_MOMENTUM * self.var[...] + (1 - BN_MOMENTUM) * jax.lax.stop_gradient(unbiased)
        else:
            mean, var = self.mean[...], self.var[...]
        factor = self.scale[...] * jax.lax.rsqrt(var + BN_EPSILON)
        return x * factor + (self.bias[...] - mean * factor)


def _batch_norm(features: int, rngs: nnx.Rngs) -> Norm:
    return Norm((features,))


def _pointwise(inputs: int, outputs: int, rngs: nnx.Rngs, *, bias: bool = False) -> nnx.Linear:
    """A 1×1 convolution: a dense layer over the channel axis."""
    bound = 1.0 / inputs**0.5
    init = nnx.initializers.uniform(2 * bound)
    return nnx.Linear(
        inputs,
        outputs,
        use_bias=bias,
        kernel_init=lambda key, shape, dtype: init(key, shape, dtype) - bound,
        bias_init=lambda key, shape, dtype: init(key, shape, dtype) - bound,
        rngs=rngs,
    )


class SubSpectralNorm(nnx.Module):
    """BatchNorm with separate statistics and affine parameters for each of 5 frequency sub-bands."""

    def __init__(self, features: int, *, rngs: nnx.Rngs) -> None:
        self.norm = Norm((SUB_BANDS, 1, 1, features))

    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        batch, bands, frames, features = x.shape
        grouped = x.reshape(batch, SUB_BANDS, bands // SUB_BANDS, frames, features)  # no data moves
        return self.norm(grouped, train=train).reshape(batch, bands, frames, features)


class BCResBlock(nnx.Module):
    """One broadcasted residual block (a transition block where ``inputs != outputs``)."""

    def __init__(self, inputs: int, outputs: int, *, stage: int, stride: int, rngs: nnx.Rngs) -> None:
        self.transition = inputs != outputs
        self.stride = stride
        self.dilation = 2**stage
        if self.transition:
            self.widen = _pointwise(inputs, outputs, rngs)
            self.widen_norm = _batch_norm(outputs, rngs)
        self.frequency = DepthwiseKernel((3, outputs), rngs=rngs)
        self.frequency_norm = SubSpectralNorm(outputs, rngs=rngs)
        self.time = DepthwiseKernel((3, outputs), rngs=rngs)
        self.time_norm = _batch_norm(outputs, rngs)
        self.mix = _pointwise(outputs, outputs, rngs)

    def __call__(self, x: jax.Array, *, train: bool, key: jax.Array | None) -> jax.Array:
        shortcut = x
        if self.transition:
            x = jax.nn.relu(self.widen_norm(_apply(self.widen, x, train=train), train=train))
        x = _depthwise_frequency(x, self.frequency.kernel[...], self.stride)
        two_d = self.frequency_norm(x, train=train)  # f2(x)
        x = jnp.mean(two_d, axis=1, keepdims=True)  # average over frequency: (batch, 1, time, C)
        x = _depthwise_time(x, self.time.kernel[...], self.dilation)
        x = jax.nn.silu(self.time_norm(x, train=train))
        x = _apply(self.mix, x, train=train)
        if train and key is not None:  # channel dropout: whole channels of a clip
            keep = jax.random.bernoulli(key, 1.0 - DROPOUT, (x.shape[0], 1, 1, x.shape[3]))
            scale = jax.lax.optimization_barrier(keep.astype(x.dtype) / (1.0 - DROPOUT))  # drawn once, not per element
            x = x * scale
        x = x + two_d  # broadcast over frequency
        if not self.transition:
            x = x + shortcut
        return jax.nn.relu(x)


class BCResNet(nnx.Module):
    """BC-ResNet-τ for (batch, 40, 101) log-mel inputs; returns (logits, embedding)."""

    def __init__(self, width: float, classes: int, *, rngs: nnx.Rngs, embedding_dims: int | None = None) -> None:
        """``embedding_dims`` replaces the 4c-channel embedding's width (a regression student's output)."""
        c = channels(width)
        if embedding_dims:
            c[-1] = embedding_dims
        self.width, self.classes = width, classes
        bound = 1.0 / 25**0.5
        self.head = nnx.Param(jax.random.uniform(rngs.params(), (5, 5, 1, c[0]), minval=-bound, maxval=bound))
        self.head_norm = _batch_norm(c[0], rngs)
        blocks = []
        for stage, count in enumerate(STAGE_BLOCKS):
            for index in range(count):
                inputs = c[stage] if index == 0 else c[stage + 1]
                stride = 2 if stage in STRIDED_STAGES and index == 0 else 1
                blocks.append(BCResBlock(inputs, c[stage + 1], stage=stage, stride=stride, rngs=rngs))
        self.blocks = nnx.List(blocks)
        self.classifier_depthwise = DepthwiseKernel((5, 5, c[-2]), rngs=rngs)
        self.classifier_widen = _pointwise(c[-2], c[-1], rngs)
        self.classifier_norm = _batch_norm(c[-1], rngs)
        self.output = _pointwise(c[-1], classes, rngs, bias=True)

    def embed(self, features: jax.Array, *, train: bool = False, key: jax.Array | None = None) -> jax.Array:
        """(batch, 40, 101) log-mel -> (batch, 4c): the vector before the last 1×1 convolution."""
        if train:
            x = pointwise(_head_patches(features), self.head[...].reshape(25, -1))
        else:
            x = jax.lax.conv_general_dilated(
                features[..., None], self.head[...], window_strides=(2, 1), padding=((2, 2), (2, 2)),
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            )  # fmt: skip
        x = jax.nn.relu(self.head_norm(x, train=train))
        keys = jax.random.split(key, len(self.blocks)) if key is not None else [None] * len(self.blocks)
        for block, block_key in zip(self.blocks, keys):
            x = block(x, train=train, key=block_key)
        kernel = self.classifier_depthwise.kernel[...]
        frames = x.shape[2]
        padded = jnp.pad(x, ((0, 0), (0, 0), (2, 2), (0, 0)))
        out = None
        for band in range(5):
            for tap in range(5):
                term = padded[:, band, tap : tap + frames] * kernel[band, tap]
                out = term if out is None else out + term
        x = _apply(self.classifier_widen, out, train=train)  # (batch, time, 4c)
        x = jax.nn.relu(self.classifier_norm(x, train=train))
        return jnp.mean(x, axis=1)

    def __call__(
        self, features: jax.Array, *, train: bool = False, key: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        embedding = self.embed(features, train=train, key=key)
        return self.output(embedding), embedding


def count_parameters(model: nnx.Module) -> int:
    """Trainable parameters (convolution weights, biases, BatchNorm scales and shifts; not running statistics)."""
    return int(sum(leaf.size for leaf in jax.tree.leaves(nnx.state(model, nnx.Param))))


def count_multiplies(width: float, classes: int, *, embedding_dims: int | None = None) -> int:
    """Multiply-accumulates of one forward pass on a 40 × 101 input, convolutions and the output layer only.

    Counted as the paper counts them: every weight of every convolution once per output position
    (normalisation, activation and pooling are left out).
    """
    c = channels(width)
    if embedding_dims:
        c[-1] = embedding_dims
    bands, frames = N_MELS // 2, FRAMES
    total = bands * frames * c[0] * 25  # head: 5×5, one input channel
    for stage, count in enumerate(STAGE_BLOCKS):
        for index in range(count):
            inputs = c[stage] if index == 0 else c[stage + 1]
            outputs = c[stage + 1]
            if inputs != outputs:
                total += bands * frames * inputs * outputs  # the transition's 1×1
            if stage in STRIDED_STAGES and index == 0:
                bands //= 2
            total += bands * frames * outputs * 3  # f2: 3×1 depthwise
            total += frames * outputs * 3 + frames * outputs * outputs  # f1: 1×3 depthwise and 1×1
    total += frames * c[-2] * 25 + frames * c[-2] * c[-1]  # classifier: 5×5 depthwise over 5 bands, 1×1
    return total + c[-1] * classes
