"""Train a BC-ResNet student to regress the projected teacher embeddings, into a model folder.

The folder has the trainer's shape (:mod:`selection.kws.folder`): ``config.json`` (kind
``embedding-student``: the training config with ``objective: regress`` and the recipe's settings),
``weights.npz``, ``model.onnx`` (audio in; its ``embedding`` output is the student's ``dims``-value
vector), ``report.json`` and ``training.png``; ``checkpoint.*`` while it trains (``--resume``).

The recipe is the trainer's (SGD with momentum, weight decay, warm-up and cosine decay, batches of
100) with the mean squared error as the loss; the epoch with the lowest validation error is kept.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from selection.inputs.write import write_json_atomic
from selection.kws import folder as model_folder
from selection.kws.fit import load_npz, save_figure, save_npz, start_or_resume

log = logging.getLogger("dataperf")
KIND = "embedding-student"


def explained_variance(targets: np.ndarray, outputs: np.ndarray) -> float:
    """1 − (sum of squared errors) / (sum of squared deviations of ``targets`` from their mean), over all values."""
    targets, outputs = np.asarray(targets, dtype=np.float64), np.asarray(outputs, dtype=np.float64)
    total = float(np.sum((targets - targets.mean(axis=0)) ** 2))
    return 1.0 - float(np.sum((targets - outputs) ** 2)) / total if total > 0 else 0.0


def _plot(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [entry["epoch"] for entry in history]
    figure, axis = plt.subplots(figsize=(6, 3.8))
    axis.plot(epochs, [entry["train_mse"] for entry in history], marker="o", markersize=3, label="training")
    axis.plot(epochs, [entry["validation_mse"] for entry in history], marker="o", markersize=3, label="validation")
    axis.set_xlabel("epoch")
    axis.set_ylabel("mean squared error (scaled targets)")
    axis.set_yscale("log")
    axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path)


def _outputs(predict, params, stats, waves: np.ndarray, *, batch_size: int) -> np.ndarray:
    """The student's outputs for ``waves`` (:func:`selection.kws.train.predict_split`; no labels, no noise)."""
    from selection.kws.train import predict_split

    labels, noise = np.zeros(len(waves), dtype=np.int32), np.zeros((0, 16000), np.float32)
    return predict_split(predict, params, stats, waves, labels, noise, batch_size=batch_size, seed=0)[0]


def fit_student(
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    config,
    outdir: str | Path,
    *,
    recipe: dict,
    resume: bool = False,
) -> dict:
    """Train ``config`` (``objective="regress"``) on ``splits`` into the model folder ``outdir``; return the report.

    ``splits`` maps ``train``, ``validation`` and ``test`` to (int16 waves (n, 16000), scaled targets
    (n, dims)); ``recipe`` is recorded in ``config.json`` and the report (teacher, reduction, subset,
    scale, sizes) and must be equal on ``--resume``.
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
        make_regression_step,
        restore_state,
        split_model,
        step_key,
        steps_per_epoch,
    )  # fmt: skip
    from selection.progress import report_progress

    out = Path(outdir)
    waves, targets = splits["train"]
    if len(waves) < config.batch_size:
        config = replace(config, batch_size=max(2, len(waves)))
        log.info("fewer training clips than a batch: batches of %d", config.batch_size)
    document = model_folder.config_document(config.as_dict(), kind=KIND)
    document["recipe"] = recipe
    model = build_model(config)
    graph, params, stats = split_model(model)
    n_steps = steps_per_epoch(config, len(waves))
    optimizer = make_optimizer(config, n_steps)
    state = (params, stats, optimizer.init(params))
    state, history, best = start_or_resume(
        out, document, state, resume=resume, best={"mse": float("inf"), "epoch": 0}, epochs=config.epochs
    )
    log.info(
        "training a BC-ResNet-%g student (%d parameters) on %d clips to regress %d values, %d epochs of %d steps",
        config.width, count_parameters(model), len(waves), config.outputs, config.epochs, n_steps,
    )  # fmt: skip
    step = make_regression_step(graph, optimizer)
    predict = make_predict(graph, None)
    validation_waves, validation_targets = splits["validation"]
    started = time.perf_counter() - sum(entry["seconds"] for entry in history)
    for epoch in range(len(history), config.epochs):
        epoch_started = time.perf_counter()
        order = epoch_order(config, epoch, len(waves))
        losses = []
        bar = report_progress(range(n_steps), desc=f"epoch {epoch + 1}/{config.epochs}", unit="steps")
        for index in bar:
            batch = order[index * config.batch_size : (index + 1) * config.batch_size]
            state, metrics = step(state, waves[batch], targets[batch], step_key(config, epoch * n_steps + index))
            losses.append(metrics["loss"])
            if hasattr(bar, "set_postfix") and index % 5 == 4:
                bar.set_postfix(mse=f"{float(losses[-1]):.4f}")
        jax.block_until_ready(state)
        train_seconds = time.perf_counter() - epoch_started
        outputs = _outputs(predict, state[0], state[1], validation_waves, batch_size=config.batch_size)
        validation_mse = float(np.mean((outputs - validation_targets) ** 2))
        entry = {
            "epoch": epoch + 1,
            "train_mse": float(np.mean([float(value) for value in losses])),
            "validation_mse": validation_mse,
            "validation_explained_variance": explained_variance(validation_targets, outputs),
            "train_seconds": train_seconds,
            "seconds": time.perf_counter() - epoch_started,
        }
        history.append(entry)
        log.info(
            "epoch %d/%d: training MSE %.4f, validation MSE %.4f, explained variance %.3f (%.1f s)",
            epoch + 1, config.epochs, entry["train_mse"], validation_mse, entry["validation_explained_variance"],
            entry["seconds"],
        )  # fmt: skip
        if validation_mse < best["mse"]:
            best = {"mse": validation_mse, "epoch": epoch + 1}
            save_npz(out / model_folder.WEIGHTS, flatten_state((state[0], state[1])))
        save_npz(out / model_folder.CHECKPOINT, flatten_state(state))
        write_json_atomic(out / model_folder.CHECKPOINT_STATE, {"history": history, "best": best})
    seconds = time.perf_counter() - started

    params, stats = restore_state((state[0], state[1]), load_npz(out / model_folder.WEIGHTS), file="weights")
    held_out = {}
    scale = float(recipe["target_scale"])
    for name in ("validation", "test"):
        split_waves, split_targets = splits[name]
        outputs = _outputs(predict, params, stats, split_waves, batch_size=config.batch_size)
        held_out[name] = {
            "clips": int(len(split_waves)),
            "mse": float(np.mean((outputs - split_targets) ** 2)) * scale**2,
            "mse_scaled": float(np.mean((outputs - split_targets) ** 2)),
            "explained_variance": explained_variance(split_targets, outputs),
        }
    export_onnx(graph, params, stats, out / model_folder.ONNX, regression=True)
    sample = splits["test"][0][:16].astype(np.float32) / 32768.0
    _, onnx_embedding = run_onnx(out / model_folder.ONNX, sample)
    jax_outputs, _ = inference_function(graph, params, stats, regression=True)(sample)
    from selection.version import __version__

    params_count = count_parameters(model)
    report = {
        "model": f"BC-ResNet-{config.width:g} embedding student",
        "kind": KIND,
        "width": config.width,
        "dims": config.outputs,
        "params": params_count,
        "macs": count_multiplies(config.width, config.outputs),
        "embedding_dims": config.outputs,
        "teacher": recipe["teacher"],
        "teacher_params": recipe.get("teacher_params"),
        "teacher_macs": recipe.get("teacher_macs"),
        "smaller_than_teacher": (recipe["teacher_params"] / params_count) if recipe.get("teacher_params") else None,
        "reduction": recipe["reduce"],
        "reduction_explained_variance": recipe.get("reduction_explained_variance"),
        "subset": {"method": recipe["sample"], "size": recipe["sample_size"]},
        "target_scale": scale,
        "held_out": held_out,
        "best_epoch": best["epoch"],
        "epochs": config.epochs,
        "clips": {name: int(len(split[0])) for name, split in splits.items()},
        "history": history,
        "seconds": seconds,
        "seconds_per_epoch": float(np.median([entry["seconds"] for entry in history])),
        "seed": config.seed,
        "onnx_max_abs_difference": {"embedding": float(np.abs(onnx_embedding - np.asarray(jax_outputs)).max())},
        "harness_version": __version__,
    }
    write_json_atomic(out / model_folder.REPORT, report)
    _plot(history, out / model_folder.PLOT, f"{report['model']} of {recipe['teacher']}, {config.outputs} dims")
    for name in ("validation", "test"):
        figures = held_out[name]
        print(
            f"{name} ({figures['clips']} clips): MSE {figures['mse']:.4g} of the projected teacher embeddings, "
            f"explained variance {figures['explained_variance']:.3f}"
        )
    return report
