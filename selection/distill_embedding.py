"""``distill_embedding``: a small embedding model distilled from a big one (Specialized Embedding Approximation).

Usage::

    python -m selection.distill_embedding [--workspace W | --audio_dir DIR] [--outdir MODEL_DIR]
        [--teacher speech_embedding|kws:MODEL_DIR|module:Class] [--reduce pca|umap] [--dims 64]
        [--sample random|kmeans|dpp] [--sample_size 1000] [--width 1] [--epochs 30] [--seed 0]
        [--batch_size 100] [--learning_rate 0.03] [--resume]

Reads ``<audio_dir>/<word>/<clip>`` (default: the built-in commands corpus in ``<workspace>/commands``;
its split lists, or a hash of each clip's speaker, give the training, validation and test clips),
embeds every clip with the teacher, samples a representative subset of the training clips, fits the
reduction on the subset's embeddings, projects every clip's, and trains a BC-ResNet-τ student to
regress the projected embeddings from the audio (:mod:`selection.sea`). The model folder has the
trainer's shape; its ``model.onnx`` returns the student's ``dims``-value vector as ``embedding``, so
``embed --model kws:MODEL_DIR`` uses it unchanged.

Needs the training stack (``pip install -r requirements-kws.txt``); ``--reduce umap`` also needs
``umap-learn``.
"""

from __future__ import annotations

if __name__ == "__main__":
    from selection.cli import exit_quietly_on_ctrl_c

    exit_quietly_on_ctrl_c()

import logging
import time
from pathlib import Path

import numpy as np

from selection.cli import run_command
from selection.inputs.errors import BadInputError

log = logging.getLogger("dataperf")
EMBED_BATCH = 256


def _teacher_vectors(model, waves_int16: np.ndarray, *, name: str, desc: str) -> np.ndarray:
    """The teacher's vectors of int16 clips, in batches (through ``embed``'s checks of a model's output)."""
    from selection.progress import report_progress
    from selection.speech.model import embed_checked

    parts = []
    for start in report_progress(range(0, len(waves_int16), EMBED_BATCH), desc=desc, unit="batches"):
        chunk = waves_int16[start : start + EMBED_BATCH].astype(np.float32) / 32768.0
        parts.append(embed_checked(model, chunk, name=name))
    return np.concatenate(parts).astype(np.float32)


def _check_int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadInputError(f"command line: {name}: {value!r}; expected a whole number from {low} to {high}")
    return value


def distill_embedding(
    workspace: str = "workspace/",
    audio_dir: str | None = None,
    outdir: str | None = None,
    teacher: str = "speech_embedding",
    reduce: str = "pca",
    dims: int = 64,
    sample: str = "random",
    sample_size: int = 1000,
    width: float = 1.0,
    epochs: int = 30,
    seed: int = 0,
    batch_size: int = 100,
    learning_rate: float = 0.03,
    resume: bool = False,
) -> None:
    """Distil a small BC-ResNet embedding model from ``teacher`` on spoken words.

    Parameters
    ----------
    workspace : str, default='workspace/'
        Where the built-in commands corpus is (``<workspace>/commands``) and where models go by default.
    audio_dir : str, optional
        Your own ``<word>/<clip>`` folder (one second, 16 kHz) instead of the built-in corpus.
    outdir : str, optional
        The student's model folder; default ``<workspace>/models/sea-<reduce>-<dims>``.
    teacher : str, default='speech_embedding'
        The model to approximate: any model ``embed`` accepts (``speech_embedding``, ``kws:MODEL_DIR``,
        ``module:Class``).
    reduce : {'pca', 'umap'}, default='pca'
        The dimensionality reduction fitted on the subset (``umap`` needs ``pip install umap-learn``).
    dims : int, default=64
        Values of the student's embedding: the reduction's output; at most the teacher's dimension and
        the subset's size.
    sample : {'random', 'kmeans', 'dpp'}, default='random'
        How the representative subset of training clips is drawn (see the Researchers page for each
        method's cost).
    sample_size : int, default=1000
        Clips in the subset; at most the training clips.
    width : float, default=1.0
        τ of the BC-ResNet-τ student: 1, 1.5, 2, 3, 6 or 8.
    epochs : int, default=30
        Training epochs.
    seed : int, default=0
        Seed of the subset, the reduction, the initial weights and the batch order.
    batch_size : int, default=100
        Clips per step.
    learning_rate : float, default=0.03
        Peak learning rate of the trainer's schedule (warm-up, then cosine decay); the loss is the squared
        error summed over the ``dims`` values, so a classifier's 0.1 is too large here.
    resume : bool, default=False
        Continue the interrupted run in ``--outdir`` (same flags) from its last finished epoch.
    """
    from selection.sea.reduce import METHODS as REDUCTIONS
    from selection.sea.reduce import require_umap
    from selection.sea.subset import METHODS as SAMPLERS
    from selection.train_kws import WIDTH_CHOICES, _require_training_stack, require_audio_folder

    if reduce not in REDUCTIONS:
        raise BadInputError(f"command line: --reduce: {reduce!r}; expected pca or umap")
    if sample not in SAMPLERS:
        raise BadInputError(f"command line: --sample: {sample!r}; expected random, kmeans or dpp")
    _check_int("--dims", dims, 1, 4096)
    _check_int("--sample_size", sample_size, 2, 1_000_000)
    _check_int("--epochs", epochs, 1, 10000)
    _check_int("--seed", seed, 0, 2**31 - 1)
    _check_int("--batch_size", batch_size, 2, 4096)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not 0 < learning_rate <= 10:
        raise BadInputError(f"command line: --learning_rate: {learning_rate!r}; expected a number in (0, 10]")
    if isinstance(width, bool) or not isinstance(width, (int, float)) or float(width) not in WIDTH_CHOICES:
        raise BadInputError(
            f"command line: --width: {width!r}; expected one of {', '.join(f'{w:g}' for w in WIDTH_CHOICES)}"
        )
    if dims > sample_size:
        raise BadInputError(
            f"command line: --dims: {dims} is more than --sample_size {sample_size}; a reduction fitted on "
            f"{sample_size} clips has at most {sample_size} dimensions"
        )
    if reduce == "umap":
        require_umap()
    source = Path(audio_dir) if audio_dir is not None else Path(workspace) / "commands"
    require_audio_folder(source, workspace=workspace, audio_dir=audio_dir)
    _require_training_stack()

    from selection.kws import folder as model_folder
    from selection.kws.data import load_corpus, plan_corpus
    from selection.speech.model import load_model, model_size

    plan_corpus(source, "all")  # every check that needs no decoding, before any output
    out = Path(outdir) if outdir is not None else Path(workspace) / "models" / f"sea-{reduce}-{dims}"
    model_folder.check_outdir(out, resume=resume)
    try:
        teacher_model = load_model(teacher)  # a teacher that cannot be loaded: one line, before any work
    except BadInputError as error:
        raise BadInputError(str(error).replace("--model", "--teacher", 1)) from None
    teacher_dims = getattr(teacher_model, "dim", None)

    from selection.kws.train import TrainConfig
    from selection.sea.fit import fit_student
    from selection.sea.reduce import fit_reduction, target_offset, target_scale
    from selection.sea.subset import sample_subset

    started = time.perf_counter()
    corpus = load_corpus(source, "all", seed=seed)
    train = corpus.splits["train"]
    if sample_size > len(train.waves):
        raise BadInputError(
            f"command line: --sample_size: {sample_size} is more than the {len(train.waves)} training clips "
            f"of {source}; expected at most {len(train.waves)}"
        )
    if teacher_dims is not None and dims > teacher_dims:
        raise BadInputError(f"command line: --dims: {dims} is more than the teacher's {teacher_dims} dimensions")
    vectors = {
        name: _teacher_vectors(teacher_model, split.waves, name=teacher, desc=f"teacher: {name} clips")
        for name, split in corpus.splits.items()
    }
    if dims > vectors["train"].shape[1]:
        raise BadInputError(
            f"command line: --dims: {dims} is more than the teacher's {vectors['train'].shape[1]} dimensions"
        )
    log.info("teacher embedded %d clips (%d values each) in %.0f s", sum(len(v) for v in vectors.values()),
             vectors["train"].shape[1], time.perf_counter() - started)  # fmt: skip
    chosen = sample_subset(vectors["train"], sample_size, method=sample, seed=seed)
    reduction = fit_reduction(vectors["train"][chosen], method=reduce, dims=dims, seed=seed)
    projected = {name: reduction.transform(values) for name, values in vectors.items()}
    offset = target_offset(reduction, projected["train"])
    projected = {name: values - offset for name, values in projected.items()}
    scale = target_scale(projected["train"])
    if reduction.explained_variance is not None:
        log.info("%s on %d %s-sampled clips keeps %.1f%% of the teacher's variance in %d dimensions",
                 reduce, sample_size, sample, 100 * reduction.explained_variance, dims)  # fmt: skip
    size = model_size(teacher_model) or {}
    recipe = {
        "teacher": teacher,
        "teacher_dims": int(vectors["train"].shape[1]),
        "teacher_params": size.get("params"),
        "teacher_macs": size.get("macs"),
        "reduce": reduce,
        "dims": dims,
        "reduction_explained_variance": reduction.explained_variance,
        "sample": sample,
        "sample_size": sample_size,
        "target_scale": scale,
        "target_offset": [round(float(value), 6) for value in offset] if reduce == "umap" else None,
        "audio": str(source),
    }
    config = TrainConfig(
        width=float(width), task="all", classes=(), epochs=epochs, seed=seed, batch_size=batch_size,
        learning_rate=float(learning_rate), objective="regress", outputs=dims,
    )  # fmt: skip
    splits = {
        name: (split.waves, (projected[name] / scale).astype(np.float32)) for name, split in corpus.splits.items()
    }
    report = fit_student(splits, config, out, recipe=recipe, resume=resume)
    ratio = report.get("smaller_than_teacher")
    log.info(
        "student in %s: %d parameters%s; next: python -m selection.embed --model kws:%s --audio_dir DIR --outdir DIR",
        out, report["params"], f" ({ratio:.0f}x fewer than the teacher's)" if ratio else "", out,
    )  # fmt: skip


if __name__ == "__main__":
    run_command(distill_embedding)
