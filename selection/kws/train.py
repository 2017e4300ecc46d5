"""The BC-ResNet training loop: the paper's recipe as pure, compiled steps over explicit state and keys.

- **Recipe** (defaults of :class:`TrainConfig`): SGD with momentum 0.9 and weight decay 1e-3 on every
  parameter, batches of 100, the learning rate warmed up linearly to 0.1 over 5 epochs (half the
  epochs when there are fewer than 10), then a cosine decay to 0 at the last step. The paper trains
  200 epochs; ``epochs`` says how many here. A last batch smaller than 100 is left out of that epoch
  (the clips are reshuffled every epoch, so every clip trains).
- **Step**: ``train_step(state, batch, key) -> (state, metrics)`` compiles augmentation
  (:mod:`selection.kws.augment`), the log-mel front end (:mod:`selection.kws.frontend`), the model, the
  loss and the update into one program. Keys are ``fold_in(seed key, step)``, and each epoch's order is
  drawn from ``(seed, epoch)``: a run is a function of its config, and a resumed run continues
  exactly where the interrupted one stopped.
- **Distillation**: with a teacher, ``loss = (1 − α)·CE(labels) + α·T²·KL(teacher_T ‖ student_T)``, the
  teacher's logits computed (in inference mode) on the same augmented batch.
- **Validation** accuracy after every epoch; the weights of the best epoch are kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from selection.kws.augment import frequency_mask_width, mix_noise, spec_augment
from selection.kws.frontend import log_mel
from selection.kws.model import BCResNet


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on (saved as ``config.json`` beside the weights)."""

    width: float = 1.0
    task: str = "12"
    classes: tuple[str, ...] = ()
    epochs: int = 30
    seed: int = 0
    batch_size: int = 100
    learning_rate: float = 0.1
    warmup_epochs: int = 5
    momentum: float = 0.9
    weight_decay: float = 1e-3
    distill_alpha: float = 0.0
    temperature: float = 1.0
    teacher: dict = field(default_factory=dict)
    embedding_dims: int = 0
    objective: str = "classify"  # or "regress": a distilled embedding student (selection.sea)
    outputs: int = 0  # the regression's output values (objective "regress")

    def as_dict(self) -> dict:
        document = asdict(self)
        document["classes"] = list(self.classes)
        return document


def build_model(config: TrainConfig, seed: int | None = None) -> BCResNet:
    """The untrained BC-ResNet of ``config`` (initial weights from its seed)."""
    return BCResNet(
        config.width,
        config.outputs if config.objective == "regress" else len(config.classes),
        rngs=nnx.Rngs(config.seed if seed is None else seed),
        embedding_dims=config.embedding_dims or None,
    )


def split_model(model: BCResNet):
    """(graph, params, batch statistics) of a model: the pure pieces the compiled steps take."""
    graph, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    return graph, params, stats


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int):
    """Linear warm-up to ``learning_rate``, then cosine decay to 0 at the last step (the authors' per-step rule)."""
    warmup_epochs = config.warmup_epochs if config.epochs >= 2 * config.warmup_epochs else config.epochs // 2
    warmup = steps_per_epoch * warmup_epochs
    total = steps_per_epoch * config.epochs
    peak = config.learning_rate

    def schedule(step):
        iteration = step + 1
        rising = peak * iteration / max(warmup, 1)
        progress = (iteration - warmup) / max(total - warmup, 1)
        falling = 0.5 * peak * (1 + jnp.cos(jnp.pi * jnp.clip(progress, 0.0, 1.0)))
        return jnp.where(iteration < warmup, rising, falling)

    return schedule


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """SGD with momentum and weight decay added to the gradient (PyTorch's ``SGD(weight_decay=...)``)."""
    return optax.chain(
        optax.add_decayed_weights(config.weight_decay),
        optax.sgd(learning_rate_schedule(config, steps_per_epoch), momentum=config.momentum),
    )


def distillation_loss(
    logits: jax.Array, teacher_logits: jax.Array, labels: jax.Array, *, alpha: float, temperature: float
) -> jax.Array:
    """``(1 − α)·CE(labels, logits) + α·T²·KL(softmax(teacher/T) ‖ softmax(logits/T))``, batch-averaged."""
    hard = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    if alpha == 0:
        return hard
    teacher = jax.nn.log_softmax(teacher_logits / temperature)
    student = jax.nn.log_softmax(logits / temperature)
    kl = jnp.sum(jnp.exp(teacher) * (teacher - student), axis=-1).mean()
    return (1 - alpha) * hard + alpha * temperature**2 * kl


def features_of(waves_int16: jax.Array) -> jax.Array:
    """int16 samples -> float32 in [-1, 1)."""
    return waves_int16.astype(jnp.float32) / 32768.0


def make_train_step(config: TrainConfig, graph, optimizer, silence_class: int, teacher=None):
    """The compiled ``train_step(state, waves, labels, noise, key) -> (state, metrics)``.

    ``state`` is ``(params, stats, optimizer_state)``; ``teacher`` is ``(graph, params, stats)`` or None.
    """
    frequency_width = frequency_mask_width(config.width)
    alpha, temperature = config.distill_alpha, config.temperature

    def train_step(state, waves, labels, noise, key):
        params, stats, opt_state = state
        noise_key, mask_key, dropout_key = jax.random.split(key, 3)
        audio = features_of(waves)
        if noise.shape[0]:
            audio = mix_noise(audio, labels == silence_class, noise, noise_key, train=True)
        features = spec_augment(log_mel(audio, jnp, use_fft=True), mask_key, frequency_width=frequency_width)
        teacher_logits = None
        if teacher is not None:
            teacher_graph, teacher_params, teacher_stats = teacher
            teacher_logits, _ = nnx.merge(teacher_graph, teacher_params, teacher_stats)(features, train=False)
            teacher_logits = jax.lax.stop_gradient(teacher_logits)

        model = nnx.merge(graph, params, stats)

        def loss_of(model):
            logits, _ = model(features, train=True, key=dropout_key)
            if teacher_logits is None:
                loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            else:
                loss = distillation_loss(logits, teacher_logits, labels, alpha=alpha, temperature=temperature)
            return loss, logits

        (loss, logits), grads = nnx.value_and_grad(loss_of, has_aux=True)(model)
        new_stats = nnx.state(model, nnx.BatchStat)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == labels)
        return (params, new_stats, opt_state), {"loss": loss, "accuracy": accuracy}

    return jax.jit(train_step, donate_argnums=(0,))


def make_regression_step(graph, optimizer):
    """The compiled ``train_step(state, waves, targets, key) -> (state, metrics)`` of an embedding student.

    The log-mel front end and the network, then the squared error between the network's ``outputs``
    values and ``targets`` (batch, outputs), summed over the values and averaged over the batch (a
    mean over the values too would shrink every gradient by the number of values, as if the learning
    rate were that much smaller); ``metrics["loss"]`` is the mean squared error per value. No
    augmentation: the targets are the teacher's embeddings of the clean clips. Channel dropout is on,
    as in classification.
    """

    def train_step(state, waves, targets, key):
        params, stats, opt_state = state
        features = log_mel(features_of(waves), jnp, use_fft=True)
        model = nnx.merge(graph, params, stats)

        def loss_of(model):
            outputs, _ = model(features, train=True, key=key)
            return jnp.mean(jnp.sum(jnp.square(outputs - targets), axis=-1))

        loss, grads = nnx.value_and_grad(loss_of)(model)
        new_stats = nnx.state(model, nnx.BatchStat)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, new_stats, opt_state), {"loss": loss / targets.shape[-1]}

    return jax.jit(train_step, donate_argnums=(0,))


def make_predict(graph, silence_class: int | None):
    """The compiled ``predict(params, stats, waves, labels, noise, key) -> (logits, embeddings)`` (inference mode).

    ``_silence_`` clips (zeros) get noise as in training when ``noise`` holds recordings; nothing else changes.
    """

    def predict(params, stats, waves, labels, noise, key):
        audio = features_of(waves)
        if silence_class is not None and noise.shape[0]:
            audio = mix_noise(audio, labels == silence_class, noise, key, train=False)
        return nnx.merge(graph, params, stats)(log_mel(audio, jnp, use_fft=True), train=False)

    return jax.jit(predict)


def predict_split(predict, params, stats, waves, labels, noise, *, batch_size: int, seed: int):
    """Logits and embeddings of a whole split, in fixed-size batches (the last one padded, then cut)."""
    logits, embeddings = [], []
    key = jax.random.key(seed)
    for start in range(0, len(waves), batch_size):
        chunk = waves[start : start + batch_size]
        chunk_labels = labels[start : start + batch_size]
        size = len(chunk)
        if size < batch_size:
            chunk = np.concatenate([chunk, np.zeros((batch_size - size, chunk.shape[1]), chunk.dtype)])
            chunk_labels = np.concatenate([chunk_labels, np.zeros(batch_size - size, chunk_labels.dtype)])
        out, embedding = predict(params, stats, chunk, chunk_labels, noise, jax.random.fold_in(key, start))
        logits.append(np.asarray(out)[:size])
        embeddings.append(np.asarray(embedding)[:size])
    return np.concatenate(logits), np.concatenate(embeddings)


def epoch_order(config: TrainConfig, epoch: int, n_clips: int) -> np.ndarray:
    """The clips of one epoch in training order, whole batches only: drawn from ``(seed, epoch)``."""
    order = np.random.default_rng([config.seed, epoch]).permutation(n_clips)
    usable = (n_clips // config.batch_size) * config.batch_size
    return order[:usable]


def steps_per_epoch(config: TrainConfig, n_clips: int) -> int:
    return max(1, n_clips // config.batch_size)


def step_key(config: TrainConfig, step: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(config.seed), step)


def flatten_state(tree) -> dict[str, np.ndarray]:
    """A pytree's leaves as ``{path: array}`` (how checkpoints and weights are stored: plain ``.npz``)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def restore_state(template, arrays: dict[str, np.ndarray], *, file: str):
    """``template`` with its leaves replaced by ``arrays`` (same paths, shapes and types, else refused)."""
    from selection.inputs.errors import BadInputError

    leaves, structure = jax.tree_util.tree_flatten_with_path(template)
    restored = []
    for path, leaf in leaves:
        name = jax.tree_util.keystr(path)
        if name not in arrays:
            raise BadInputError(f"{file}: holds no {name}; it was not written for this model")
        value = arrays[name]
        if value.shape != np.shape(leaf) or value.dtype != np.asarray(leaf).dtype:
            raise BadInputError(f"{file}: {name} has shape {value.shape}; expected {np.shape(leaf)}")
        restored.append(jnp.asarray(value))
    return jax.tree_util.tree_unflatten(structure, restored)
