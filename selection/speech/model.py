"""Turning one-second clips into vectors: Google's speech-embedding model, or a user's own model.

``speech_embedding`` (the default) is the model openWakeWord uses, shipped with its TFLite C
runtime inside the ``pyopen-wakeword`` wheel, so nothing is downloaded at run time:

1. a mel-spectrogram model turns 16 kHz samples (int16 scale) into 32 mel bands every 10 ms
   (97 frames for one second), scaled as openWakeWord does (``mel / 10 + 2``);
2. the embedding model turns each window of 76 frames (775 ms), every 8 frames (80 ms), into a
   96-d vector: three windows for a one-second clip;
3. the clip's vector is the mean and the maximum of its windows' vectors: 192 values.

Clips go through the models in batches of a fixed size (the last one padded with silence), so a
clip's vector never depends on which other clips share its batch: the embeddings are bitwise
deterministic.

``kws:MODEL_DIR`` is a model folder made by ``python -m selection.train_kws`` (or
``distill_embedding``): its ONNX file, run by onnxruntime (:class:`KwsEmbedding`).

Any other model plugs in as ``module:Class``: a class constructed without arguments whose
``embed(waveforms)`` takes an ``(n, 16000)`` float32 array and returns an ``(n, d)`` array.
"""

from __future__ import annotations

import ctypes
import importlib
import os
from importlib import resources
from pathlib import Path

import numpy as np

from selection.inputs.errors import BadInputError

DEFAULT_MODEL = "speech_embedding"
MEL_BANDS = 32
WINDOW_FRAMES = 76
WINDOW_STEP = 8
STEP_FEATURES = 96


class SpeechEmbedding:
    """Google's speech-embedding model through the TFLite C runtime (see the module docstring).

    Parameters
    ----------
    batch_clips : int, default=32
        Clips per model call; the output does not depend on it.
    """

    dim = 2 * STEP_FEATURES

    def __init__(self, batch_clips: int = 32) -> None:
        package = resources.files("pyopen_wakeword")
        library = next(iter(Path(str(package / "lib")).glob("*tensorflowlite_c*")), None)
        if library is None:
            raise BadInputError("pyopen-wakeword: its TFLite runtime is missing; reinstall the pinned wheel")
        self._lib = _bind(ctypes.CDLL(str(library), mode=os.RTLD_GLOBAL))
        self.batch_clips = batch_clips
        models = Path(str(package / "models"))
        self._mel = _Interpreter(self._lib, models / "melspectrogram.tflite", (batch_clips, 16000))
        frames = self._mel.output_shape[-2]
        self.steps = (frames - WINDOW_FRAMES) // WINDOW_STEP + 1
        shape = (batch_clips * self.steps, WINDOW_FRAMES, MEL_BANDS, 1)
        self._embedding = _Interpreter(self._lib, models / "embedding_model.tflite", shape)

    def embed(self, waveforms: np.ndarray) -> np.ndarray:
        """Vectors of shape ``(n, 192)`` for ``waveforms`` of shape ``(n, 16000)`` (float32 in [-1, 1])."""
        waveforms = np.asarray(waveforms, dtype=np.float32)
        vectors = np.empty((len(waveforms), self.dim), dtype=np.float32)
        for start in range(0, len(waveforms), self.batch_clips):
            batch = np.zeros((self.batch_clips, 16000), dtype=np.float32)
            part = waveforms[start : start + self.batch_clips]
            batch[: len(part)] = part * 32767.0
            mels = self._mel.run(batch).reshape(self.batch_clips, -1, MEL_BANDS) / 10 + 2
            windows = np.stack(
                [mels[:, step * WINDOW_STEP : step * WINDOW_STEP + WINDOW_FRAMES] for step in range(self.steps)], axis=1
            )
            features = self._embedding.run(windows.reshape(-1, WINDOW_FRAMES, MEL_BANDS, 1))
            features = features.reshape(self.batch_clips, self.steps, STEP_FEATURES)[: len(part)]
            vectors[start : start + len(part)] = np.concatenate([features.mean(axis=1), features.max(axis=1)], axis=1)
        return vectors


class KwsEmbedding:
    """A model folder's ``model.onnx`` (made by ``train_kws`` or ``distill_embedding``), run by onnxruntime.

    Its ``embedding`` output is the clip's vector (the BC-ResNet's pooled features before its last
    1×1 convolution, or a distilled student's regression output). Clips go through in batches of a
    fixed size, the last padded with silence, so a clip's vector never depends on its batch. The
    training framework is not needed.
    """

    def __init__(self, folder: str | Path, batch_clips: int = 32) -> None:
        from selection.kws.folder import ONNX, read_config

        document = read_config(folder, flag="--model kws:")
        path = Path(folder) / ONNX
        if not path.is_file():
            raise BadInputError(f"{folder}: --model kws: holds no {ONNX}; expected a finished model folder")
        try:
            import onnxruntime
        except ImportError:
            raise BadInputError(
                "--model kws: needs onnxruntime, which is not installed; pip install -r requirements-kws.txt"
            ) from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise BadInputError(f"{path}: onnxruntime cannot load it ({str(error).splitlines()[0][:160]})") from None
        outputs = [output.name for output in self._session.get_outputs()]
        if "embedding" not in outputs or [i.name for i in self._session.get_inputs()] != ["audio"]:
            raise BadInputError(f"{path}: expected an input 'audio' and an output 'embedding'; got {outputs}")
        self.batch_clips = batch_clips
        self.name = f"kws:{folder}"
        self.config = document

    def embed(self, waveforms: np.ndarray) -> np.ndarray:
        """Vectors of shape ``(n, d)`` for ``waveforms`` of shape ``(n, 16000)`` (float32 in [-1, 1])."""
        waveforms = np.asarray(waveforms, dtype=np.float32)
        parts = []
        for start in range(0, len(waveforms), self.batch_clips):
            batch = np.zeros((self.batch_clips, 16000), dtype=np.float32)
            part = waveforms[start : start + self.batch_clips]
            batch[: len(part)] = part
            (vectors,) = self._session.run(["embedding"], {"audio": batch})
            parts.append(vectors[: len(part)])
        return np.concatenate(parts) if parts else np.zeros((0, 1), dtype=np.float32)


def model_size(model) -> dict | None:
    """``{"params", "macs"}`` of an embedding model where they can be known, else None.

    ``speech_embedding``: the embedding network's weights and its multiply-adds for one clip (three
    windows), read from its TFLite file (:mod:`selection.speech.tflite_size`); the mel front end is not
    counted, as a BC-ResNet's log-mel front end is not. ``kws:``: the model folder's ``report.json``.
    Other models: their ``size()`` method if they have one.
    """
    if isinstance(model, SpeechEmbedding):
        from selection.speech.tflite_size import tflite_size

        counted = tflite_size(Path(str(resources.files("pyopen_wakeword") / "models")) / "embedding_model.tflite")
        return {"params": counted["params"], "macs": counted["macs"] * model.steps}
    if isinstance(model, KwsEmbedding):
        import json

        from selection.kws.folder import REPORT

        try:
            report = json.loads((Path(model.name[len("kws:") :]) / REPORT).read_text())
            return {"params": int(report["params"]), "macs": int(report["macs"])}
        except (OSError, ValueError, KeyError, TypeError):
            return None
    size = getattr(model, "size", None)
    return size() if callable(size) else None


def load_model(name: str):
    """``speech_embedding``, ``kws:MODEL_DIR`` (a trained model folder), or ``module:Class`` (no arguments)."""
    if name == DEFAULT_MODEL:
        return SpeechEmbedding()
    if name.startswith("kws:"):
        return KwsEmbedding(name[len("kws:") :])
    module_name, _, class_name = name.partition(":")
    if not module_name or not class_name:
        raise BadInputError(f"command line: --model: {name!r}; expected {DEFAULT_MODEL} or module:Class")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise BadInputError(f"command line: --model: module {module_name!r} cannot be imported ({error})") from None
    except (Exception, SystemExit) as error:  # noqa: BLE001 - a user's model module may raise anything
        raise BadInputError(f"command line: --model: importing {module_name!r} raised {_described(error)}") from None
    model_class = getattr(module, class_name, None)
    if model_class is None or not callable(getattr(model_class, "embed", None)):
        raise BadInputError(f"command line: --model: {name} has no class with an embed(waveforms) method")
    try:
        return model_class()
    except (Exception, SystemExit) as error:  # noqa: BLE001
        raise BadInputError(f"command line: --model: {name}(): raised {_described(error)}") from None


def _described(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__


def embed_checked(model, waveforms: np.ndarray, *, name: str) -> np.ndarray:
    """``model.embed(waveforms)`` as float32, refusing a result of the wrong shape or with NaN/inf."""
    try:
        vectors = np.asarray(model.embed(np.asarray(waveforms, dtype=np.float32)))
    except BadInputError:
        raise
    except (Exception, SystemExit) as error:  # noqa: BLE001 - a user's model may raise anything
        raise BadInputError(f"{name}.embed(): raised {_described(error)}") from None
    if vectors.ndim != 2 or len(vectors) != len(waveforms) or vectors.shape[1] < 1:
        raise BadInputError(
            f"{name}.embed(): returned shape {vectors.shape}; expected ({len(waveforms)}, d), one vector per clip"
        )
    vectors = vectors.astype(np.float32)
    if not np.isfinite(vectors).all():
        raise BadInputError(f"{name}.embed(): returned NaN or infinite values; expected finite numbers")
    return vectors


class _Interpreter:
    """One TFLite model, its input resized to ``shape`` once, run on float32 arrays."""

    def __init__(self, lib, path: Path, shape: tuple[int, ...]) -> None:
        self._lib = lib
        self._model = lib.TfLiteModelCreateFromFile(str(path).encode())
        options = lib.TfLiteInterpreterOptionsCreate()
        lib.TfLiteInterpreterOptionsSetNumThreads(options, 1)
        self._interpreter = lib.TfLiteInterpreterCreate(self._model, options)
        lib.TfLiteInterpreterOptionsDelete(options)
        dims = (ctypes.c_int32 * len(shape))(*shape)
        lib.TfLiteInterpreterResizeInputTensor(self._interpreter, 0, dims, len(shape))
        if lib.TfLiteInterpreterAllocateTensors(self._interpreter) != 0:
            raise BadInputError(f"{path}: the TFLite runtime cannot prepare this model")
        self.shape = shape
        output = lib.TfLiteInterpreterGetOutputTensor(self._interpreter, 0)
        self.output_shape = tuple(lib.TfLiteTensorDim(output, i) for i in range(lib.TfLiteTensorNumDims(output)))

    def run(self, inputs: np.ndarray) -> np.ndarray:
        inputs = np.ascontiguousarray(inputs, dtype=np.float32).reshape(self.shape)
        lib = self._lib
        tensor = lib.TfLiteInterpreterGetInputTensor(self._interpreter, 0)
        lib.TfLiteTensorCopyFromBuffer(tensor, inputs.ctypes.data_as(ctypes.c_void_p), inputs.nbytes)
        if lib.TfLiteInterpreterInvoke(self._interpreter) != 0:
            raise RuntimeError("TFLite inference failed")
        outputs = np.empty(self.output_shape, dtype=np.float32)
        output = lib.TfLiteInterpreterGetOutputTensor(self._interpreter, 0)
        lib.TfLiteTensorCopyToBuffer(output, outputs.ctypes.data_as(ctypes.c_void_p), outputs.nbytes)
        return outputs

    def __del__(self) -> None:
        lib = getattr(self, "_lib", None)
        if lib is not None and getattr(self, "_interpreter", None):
            lib.TfLiteInterpreterDelete(self._interpreter)
            lib.TfLiteModelDelete(self._model)
            self._interpreter = None


def _bind(lib):
    """Argument and result types of the TFLite C API calls used here."""
    pointer, int32, size = ctypes.c_void_p, ctypes.c_int32, ctypes.c_size_t
    signatures = {
        "TfLiteModelCreateFromFile": ([ctypes.c_char_p], pointer),
        "TfLiteModelDelete": ([pointer], None),
        "TfLiteInterpreterOptionsCreate": ([], pointer),
        "TfLiteInterpreterOptionsSetNumThreads": ([pointer, int32], None),
        "TfLiteInterpreterOptionsDelete": ([pointer], None),
        "TfLiteInterpreterCreate": ([pointer, pointer], pointer),
        "TfLiteInterpreterDelete": ([pointer], None),
        "TfLiteInterpreterResizeInputTensor": ([pointer, int32, ctypes.POINTER(int32), int32], ctypes.c_int),
        "TfLiteInterpreterAllocateTensors": ([pointer], ctypes.c_int),
        "TfLiteInterpreterInvoke": ([pointer], ctypes.c_int),
        "TfLiteInterpreterGetInputTensor": ([pointer, int32], pointer),
        "TfLiteInterpreterGetOutputTensor": ([pointer, int32], pointer),
        "TfLiteTensorNumDims": ([pointer], int32),
        "TfLiteTensorDim": ([pointer, int32], int32),
        "TfLiteTensorCopyFromBuffer": ([pointer, pointer, size], ctypes.c_int),
        "TfLiteTensorCopyToBuffer": ([pointer, pointer, size], ctypes.c_int),
    }
    for name, (arguments, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = arguments, result
    return lib
