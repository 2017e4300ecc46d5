"""Export a trained BC-ResNet to ONNX with jax2onnx: audio in, logits and embedding out.

The exported graph takes ``audio``, float32 ``(batch, 16000)`` (one second at 16 kHz, samples in
[-1, 1]), computes the log-mel front end (:func:`selection.kws.frontend.log_mel`, with the DFT as
matrix products so that any ONNX runtime runs it) and the network in inference mode, and returns
``logits`` ``(batch, classes)`` and ``embedding`` ``(batch, 4c)``: the vector before the last 1×1
convolution, which ``embed --model kws:MODEL_DIR`` uses. A distilled embedding student
(``regression=True``) returns its regression output as both. The batch size is free.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx

from selection.kws.frontend import CLIP_SAMPLES, log_mel


def inference_function(graph, params, stats, *, regression: bool = False):
    """``audio (batch, 16000) -> (logits, embedding)`` with the weights baked in (what is exported).

    With ``regression``, the network's output is both: a student's embedding is its regression output.
    """
    model = nnx.merge(graph, params, stats)

    def run(audio):
        outputs, embedding = model(log_mel(audio, jnp), train=False)
        return (outputs, jnp.reshape(outputs, outputs.shape)) if regression else (outputs, embedding)

    return run


def export_onnx(graph, params, stats, path: str | Path, *, regression: bool = False) -> None:
    """Write the model as ONNX to ``path`` (through a temp file, renamed into place)."""
    import logging

    from jax2onnx import to_onnx

    from selection.inputs.write import write_bytes_atomic

    logging.getLogger("onnx_ir").setLevel(logging.ERROR)  # its notes on untyped shape constants are not for users
    logging.getLogger("jax2onnx").setLevel(logging.WARNING)  # nor its notes on optional example plugins

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # jax2onnx reports its parameters on the root logger
    try:
        proto = to_onnx(
            inference_function(graph, params, stats, regression=regression),
            [("batch", CLIP_SAMPLES)],
            model_name="bc_resnet",
            input_names=["audio"],
            output_names=["logits", "embedding"],
        )
    finally:
        root.setLevel(level)
    write_bytes_atomic(path, proto.SerializeToString())


def run_onnx(path: str | Path, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits, embedding) of ``audio`` (batch, 16000) from an exported model, run by onnxruntime."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits, embedding = session.run(["logits", "embedding"], {"audio": np.asarray(audio, dtype=np.float32)})
    return logits, embedding
