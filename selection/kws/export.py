"""Export a trained BC-ResNet to ONNX with jax2onnx: audio in, logits and embedding out.

The exported graph takes ``audio``, float32 ``(batch, 16000)`` (one second at 16 kHz, samples in
[-1, 1]), computes the log-mel front end (:func:`selection.kws.frontend.log_mel`, with the DFT as
matrix products so that any ONNX runtime runs it) and the network in inference mode, and returns
``logits`` ``(batch, classes)`` and ``embedding`` ``(batch, 4c)``: the vector before the last 1×1
convolution, which ``embed --model kws:MODEL_DIR`` uses. The batch size is free.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx

from selection.kws.frontend import CLIP_SAMPLES, log_mel


def inference_function(graph, params, stats):
    """``audio (batch, 16000) -> (logits, embedding)`` with the weights baked in (what is exported)."""
    model = nnx.merge(graph, params, stats)

    def run(audio):
        return model(log_mel(audio, jnp), train=False)

    return run


def export_onnx(graph, params, stats, path: str | Path) -> None:
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
            inference_function(graph, params, stats),
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
