"""The model folder: the unit a trained keyword spotter is exchanged as.

::

    config.json          what rebuilds the model exactly: the training config (width, task, classes,
                         seed, recipe), the front end's settings, the format's name and version
    weights.npz          the best epoch's parameters and batch statistics (plain numpy arrays)
    model.onnx           audio (batch, 16000) -> logits, embedding; run by onnxruntime (``embed`` uses it)
    report.json          sizes, accuracies, per-class metrics and confusion matrices, timing, provenance
    training.png         the training curves
    checkpoint.npz, checkpoint.json
                         the last finished epoch's whole state, for ``--resume``

Only :func:`read_config` is needed to use a folder; reading the weights needs the training framework.
"""

from __future__ import annotations

import json
from pathlib import Path

from selection.inputs.errors import BadInputError

FORMAT = "dataperf-speech-kws-model"
FORMAT_VERSION = 1
CONFIG, WEIGHTS, ONNX, REPORT, PLOT = "config.json", "weights.npz", "model.onnx", "report.json", "training.png"
CHECKPOINT, CHECKPOINT_STATE = "checkpoint.npz", "checkpoint.json"
FILES = (CONFIG, WEIGHTS, ONNX, REPORT, PLOT, CHECKPOINT, CHECKPOINT_STATE)


def frontend_settings() -> dict:
    """The log-mel front end's settings, as a model folder records them (a teacher's must match)."""
    from selection.kws import frontend

    return {
        "sample_rate": frontend.SAMPLE_RATE, "clip_samples": frontend.CLIP_SAMPLES, "window": frontend.WINDOW,
        "hop": frontend.HOP, "n_fft": frontend.N_FFT, "n_mels": frontend.N_MELS, "log_offset": frontend.LOG_OFFSET,
        "mel_scale": "htk",
    }  # fmt: skip


def read_config(folder: str | Path, *, flag: str) -> dict:
    """A model folder's ``config.json``, checked to be this format's (else one line naming ``flag``)."""
    path = Path(folder) / CONFIG
    if not Path(folder).is_dir():
        raise BadInputError(f"{folder}: {flag}: not a folder; expected a model folder made by train_kws")
    if not path.is_file():
        raise BadInputError(f"{folder}: {flag}: holds no {CONFIG}; expected a model folder made by train_kws")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise BadInputError(f"{path}: {flag}: not readable JSON ({str(error)[:120]})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BadInputError(f"{path}: {flag}: not a model folder's config (format {FORMAT!r} expected)")
    if document.get("format_version") != FORMAT_VERSION:
        raise BadInputError(
            f"{path}: {flag}: format version {document.get('format_version')!r}; expected {FORMAT_VERSION}"
        )
    return document


def config_document(train_config: dict, *, kind: str = "classifier") -> dict:
    from selection.version import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "model": "bc-resnet",
        "train": train_config,
        "frontend": frontend_settings(),
        "harness_version": __version__,
    }


def check_outdir(folder: str | Path, *, resume: bool, flag: str = "--outdir") -> Path:
    """The model folder to write: new or empty, or (``--resume``) one this trainer started.

    A folder holding anything else is refused, and so is a finished model without ``--resume``:
    nothing that exists is overwritten.
    """
    from selection.inputs.write import check_output_dir

    out = check_output_dir(folder, create=True)
    if not out.exists():
        if resume:
            raise BadInputError(f"{out}: --resume: no such folder; expected the folder of an interrupted run")
        return out
    entries = sorted(path.name for path in out.iterdir())
    if not entries:
        if resume:
            raise BadInputError(f"{out}: --resume: the folder is empty; expected the folder of an interrupted run")
        return out
    foreign = [name for name in entries if name not in FILES and not name.startswith(".")]
    if foreign or CONFIG not in entries:
        shown = ", ".join(foreign[:3]) or "no config.json"
        raise BadInputError(
            f"{out}: {flag}: holds something else ({shown}); expected a new or empty folder, or a model "
            "folder to --resume"
        )
    if not resume:
        raise BadInputError(
            f"{out}: {flag}: already holds a model; pass --resume to continue its training, or choose another folder"
        )
    return out  # without a checkpoint (stopped in its first epoch) the run starts again from epoch 1
