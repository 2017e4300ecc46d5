"""Train a BC-ResNet into a model folder: epochs with checkpoints, the best weights, the report, the ONNX file.

:func:`fit` is what ``python -m selection.train_kws`` runs once its flags are checked; it can be
called from Python with a :class:`selection.kws.data.Corpus` and a
:class:`selection.kws.train.TrainConfig`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from selection.inputs.errors import BadInputError
from selection.inputs.write import write_bytes_atomic, write_json_atomic
from selection.kws import folder as model_folder
from selection.kws.data import SILENCE, Corpus

log = logging.getLogger("dataperf")


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue())


def load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError) as error:
        raise BadInputError(f"{path}: not a readable weights file ({str(error)[:120]})") from None


def load_model_state(folder: str | Path, *, flag: str):
    """(config document, graph, params, stats) of a model folder's best weights (needs JAX)."""
    from selection.kws.train import TrainConfig, build_model, restore_state, split_model

    document = model_folder.read_config(folder, flag=flag)
    train = dict(document["train"])
    train["classes"] = tuple(train["classes"])
    config = TrainConfig(**{key: value for key, value in train.items() if key in TrainConfig.__dataclass_fields__})
    graph, params, stats = split_model(build_model(config))
    arrays = load_npz(Path(folder) / model_folder.WEIGHTS)
    params, stats = restore_state((params, stats), arrays, file=str(Path(folder) / model_folder.WEIGHTS))
    return document, graph, params, stats


def start_or_resume(out: Path, document: dict, state, *, resume: bool, best: dict, epochs: int):
    """(state, history, best) to train from: a new run writes ``document`` as its config; ``--resume`` checks
    that the saved config's ``train`` (and ``recipe``, where there is one) equal ``document``'s, then restores
    the last finished epoch's checkpoint, if any (else the run starts again from epoch 1)."""
    from selection.kws.train import restore_state

    if not resume:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / model_folder.CONFIG, document)
        return state, [], best
    saved = model_folder.read_config(out, flag="--resume")
    if saved["train"] != document["train"] or saved.get("recipe") != document.get("recipe"):
        differing = sorted(key for key in document["train"] if saved["train"].get(key) != document["train"][key])
        recipe, saved_recipe = document.get("recipe") or {}, saved.get("recipe") or {}
        differing += sorted(key for key in recipe if saved_recipe.get(key) != recipe[key])
        raise BadInputError(
            f"{out / model_folder.CONFIG}: --resume: the run was started with other settings "
            f"({', '.join(differing) or 'keys'} differ); expected the same flags as the interrupted run"
        )
    checkpoint = out / model_folder.CHECKPOINT
    if not (checkpoint.is_file() and (out / model_folder.CHECKPOINT_STATE).is_file()):
        log.info("%s: no epoch had finished; training starts again from epoch 1", out)
        return state, [], best
    progress = json.loads((out / model_folder.CHECKPOINT_STATE).read_text())
    state = restore_state(state, load_npz(checkpoint), file=str(checkpoint))
    log.info("resuming %s after epoch %d of %d", out, len(progress["history"]), epochs)
    return state, progress["history"], progress["best"]


def save_figure(figure, path: Path) -> None:
    """A matplotlib figure as a PNG at ``path`` (written through a temp file), then closed."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_bytes_atomic(path, buffer.getvalue())


def _classification(logits: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    from sklearn.metrics import classification_report, confusion_matrix

    predicted = np.argmax(logits, axis=1)
    indices = list(range(len(classes)))
    table = classification_report(
        labels, predicted, labels=indices, target_names=classes, output_dict=True, zero_division=0
    )
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "clips": int(len(labels)),
        "per_class": {
            name: {key: (int(value) if key == "support" else float(value)) for key, value in table[name].items()}
            for name in classes
        },
        "confusion_matrix": confusion_matrix(labels, predicted, labels=indices).tolist(),
        "text": classification_report(
            labels, predicted, labels=indices, target_names=classes, zero_division=0, digits=3
        ),  # fmt: skip
    }


def _plot(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [entry["epoch"] for entry in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(epochs, [entry["train_loss"] for entry in history], marker="o", markersize=3)
    left.set_xlabel("epoch")
    left.set_ylabel("training loss")
    right.plot(
        epochs,
        [entry["train_accuracy"] for entry in history],
        marker="o",
        markersize=3,
        label="training (augmented batches)",
    )
    right.plot(epochs, [entry["validation_accuracy"] for entry in history], marker="o", markersize=3,
               label="validation")  # fmt: skip
    right.set_xlabel("epoch")
    right.set_ylabel("accuracy")
    right.legend()
    figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path)


def fit(corpus: Corpus, config, outdir: str | Path, *, resume: bool = False, teacher_dir: str | None = None) -> dict:
    """Train ``config`` on ``corpus`` into the model folder ``outdir``; return the report.

    Checkpoints after every epoch (``--resume`` continues from the last one exactly); the best
    validation epoch's weights are kept; then the report, the plot and ``model.onnx``.
    """
    import jax

    from selection.kws.export import export_onnx, inference_function, run_onnx
    from selection.kws.model import count_multiplies, count_parameters
    from selection.kws.train import (
        build_model,
        epoch_order,
        flatten_state,
        make_optimizer,
        make_predict,
        make_train_step,
        predict_split,
        restore_state,
        split_model,
        step_key,
        steps_per_epoch,
    )  # fmt: skip
    from selection.progress import report_progress

    out = Path(outdir)
    classes = list(config.classes)
    silence = classes.index(SILENCE) if SILENCE in classes else -1
    train_split = corpus.splits["train"]
    if len(train_split.labels) < config.batch_size:
        config = replace(config, batch_size=max(2, len(train_split.labels)))
        log.info("fewer training clips than a batch: batches of %d", config.batch_size)
    document = model_folder.config_document(config.as_dict())
    teacher = None
    if teacher_dir is not None:
        _, teacher_graph, teacher_params, teacher_stats = load_model_state(teacher_dir, flag="--teacher")
        teacher = (teacher_graph, teacher_params, teacher_stats)
    model = build_model(config)
    graph, params, stats = split_model(model)
    n_steps = steps_per_epoch(config, len(train_split.labels))
    optimizer = make_optimizer(config, n_steps)
    state = (params, stats, optimizer.init(params))
    state, history, best = start_or_resume(
        out, document, state, resume=resume, best={"accuracy": -1.0, "epoch": 0}, epochs=config.epochs
    )
    log.info(
        "training BC-ResNet-%g (%d parameters) on %d clips, %d classes, %d epochs of %d steps",
        config.width, count_parameters(model), len(train_split.labels), len(classes), config.epochs, n_steps,
    )  # fmt: skip
    step = make_train_step(config, graph, optimizer, silence, teacher=teacher)
    predict = make_predict(graph, silence if silence >= 0 else None)
    noise = jax.numpy.asarray(corpus.noise)
    waves, labels = train_split.waves, train_split.labels
    validation = corpus.splits["validation"]
    started = time.perf_counter() - sum(entry["seconds"] for entry in history)
    for epoch in range(len(history), config.epochs):
        epoch_started = time.perf_counter()
        order = epoch_order(config, epoch, len(labels))
        losses, accuracies = [], []
        bar = report_progress(range(n_steps), desc=f"epoch {epoch + 1}/{config.epochs}", unit="steps")
        for index in bar:
            batch = order[index * config.batch_size : (index + 1) * config.batch_size]
            state, metrics = step(state, waves[batch], labels[batch], noise, step_key(config, epoch * n_steps + index))
            losses.append(metrics["loss"])
            accuracies.append(metrics["accuracy"])
            if hasattr(bar, "set_postfix") and index % 5 == 4:
                bar.set_postfix(loss=f"{float(losses[-1]):.3f}", accuracy=f"{float(accuracies[-1]):.3f}")
        jax.block_until_ready(state)
        train_seconds = time.perf_counter() - epoch_started
        logits, _ = predict_split(
            predict, state[0], state[1], validation.waves, validation.labels, noise,
            batch_size=config.batch_size, seed=config.seed,
        )  # fmt: skip
        validation_accuracy = float(np.mean(np.argmax(logits, axis=1) == validation.labels))
        entry = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean([float(value) for value in losses])),
            "train_accuracy": float(np.mean([float(value) for value in accuracies])),
            "validation_accuracy": validation_accuracy,
            "train_seconds": train_seconds,
            "seconds": time.perf_counter() - epoch_started,
        }
        history.append(entry)
        log.info(
            "epoch %d/%d: loss %.4f, training accuracy %.4f, validation accuracy %.4f (%.1f s)",
            epoch + 1, config.epochs, entry["train_loss"], entry["train_accuracy"], validation_accuracy,
            entry["seconds"],
        )  # fmt: skip
        if validation_accuracy > best["accuracy"]:
            best = {"accuracy": validation_accuracy, "epoch": epoch + 1}
            save_npz(out / model_folder.WEIGHTS, flatten_state((state[0], state[1])))
        save_npz(out / model_folder.CHECKPOINT, flatten_state(state))
        write_json_atomic(out / model_folder.CHECKPOINT_STATE, {"history": history, "best": best})
    seconds = time.perf_counter() - started

    params, stats = restore_state((state[0], state[1]), load_npz(out / model_folder.WEIGHTS), file="weights")
    results = {}
    for name in ("validation", "test"):
        split = corpus.splits[name]
        logits, _ = predict_split(predict, params, stats, split.waves, split.labels, noise,
                                  batch_size=config.batch_size, seed=config.seed)  # fmt: skip
        results[name] = _classification(logits, split.labels, classes)
    export_onnx(graph, params, stats, out / model_folder.ONNX)
    sample = corpus.splits["test"].waves[:16].astype(np.float32) / 32768.0
    onnx_logits, onnx_embedding = run_onnx(out / model_folder.ONNX, sample)
    jax_logits, jax_embedding = inference_function(graph, params, stats)(sample)
    from selection.version import __version__

    report = {
        "model": f"BC-ResNet-{config.width:g}",
        "width": config.width,
        "task": config.task,
        "classes": classes,
        "params": count_parameters(model),
        "macs": count_multiplies(config.width, len(classes), embedding_dims=config.embedding_dims or None),
        "embedding_dims": int(np.asarray(jax_embedding).shape[1]),
        "accuracy": {
            "train": history[-1]["train_accuracy"],
            "validation": results["validation"]["accuracy"],
            "test": results["test"]["accuracy"],
        },
        "best_epoch": best["epoch"],
        "epochs": config.epochs,
        "clips": {name: int(len(split.labels)) for name, split in corpus.splits.items()},
        "validation": {key: value for key, value in results["validation"].items() if key != "text"},
        "test": {key: value for key, value in results["test"].items() if key != "text"},
        "history": history,
        "seconds": seconds,
        "seconds_per_epoch": float(np.median([entry["seconds"] for entry in history])),
        "seed": config.seed,
        "distillation": (
            {"teacher": str(teacher_dir), "alpha": config.distill_alpha, "temperature": config.temperature}
            if teacher_dir
            else None
        ),
        "onnx_max_abs_difference": {
            "logits": float(np.abs(onnx_logits - np.asarray(jax_logits)).max()),
            "embedding": float(np.abs(onnx_embedding - np.asarray(jax_embedding)).max()),
        },
        "harness_version": __version__,
    }
    write_json_atomic(out / model_folder.REPORT, report)
    _plot(history, out / model_folder.PLOT, f"{report['model']}, task {config.task}, seed {config.seed}")
    print(f"test split ({report['clips']['test']} clips):\n{results['test']['text']}")
    return report
