"""Reading the harness's files: YAML and JSON documents, parquet embeddings, wav audio.

Rows come out in the benchmark's order, which the frozen evaluator's score
depends on: targets in the order the document lists them, each target's clips in
parquet row order; then nontargets grouped by word in order of first appearance,
each word's clips in listed order.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from selection.progress import report_progress
from selection.validation import (
    EMBEDDING_DIM,
    ID_COLUMN,
    NONTARGET,
    VECTOR_COLUMN,
    BadInputError,
    check_config,
    check_sample_ids,
    check_vector_column,
    check_vectors,
    clip_word,
    describe_items,
)

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
MAX_TRAIN_FILE_BYTES = 16 * 1024 * 1024
READ_THREADS = max(1, min(8, len(os.sched_getaffinity(0))))
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class LabelledVectors:
    """Clips as arrays: ``matrix`` (N, 1024) float32, ``labels`` (N,) int64, ``ids`` (N,)."""

    matrix: np.ndarray
    labels: np.ndarray
    ids: list[str]


def class_names_of(sample_ids: dict) -> list[str]:
    """Class names by class id: ``nontarget`` is 0, targets sorted by name get 1..k."""
    return [NONTARGET, *sorted(sample_ids["targets"])]


def read_text(path: str | Path, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> str:
    """A whole UTF-8 text file, refusing one larger than ``max_bytes``."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise BadInputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise BadInputError(f"{path}: is a folder; expected a file") from None
    except OSError as error:
        raise BadInputError(f"{path}: cannot be read ({error.strerror})") from None
    if len(data) > max_bytes:
        raise BadInputError(f"{path}: file is larger than {max_bytes} bytes; the harness reads no more than that")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadInputError(f"{path}: byte {error.start} is not UTF-8 text") from None


def read_yaml(path: str | Path, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """Parse a YAML file with the safe loader only (tags that build objects are refused)."""
    text = read_text(path, max_bytes=max_bytes)
    try:
        return yaml.load(text, Loader=_SafeLoader)
    except yaml.constructor.ConstructorError as error:
        where = _yaml_mark(error.problem_mark)
        raise BadInputError(f"{path}:{where} {error.problem}; only plain YAML (no object tags) is read") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise BadInputError(f"{path}:{_yaml_mark(mark)} invalid YAML: {problem}") from None
    except RecursionError:
        raise BadInputError(f"{path}: YAML nested too deeply") from None


def _yaml_mark(mark: Any) -> str:
    return f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""


def read_json(path: str | Path, *, max_bytes: int = MAX_TRAIN_FILE_BYTES) -> Any:
    """Parse a JSON file of at most ``max_bytes`` bytes."""
    text = read_text(path, max_bytes=max_bytes)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInputError(
            f"{path}: not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    except RecursionError:
        raise BadInputError(f"{path}: JSON nested too deeply") from None


def load_config(path: str | Path) -> dict:
    """The harness config with defaults filled in (see :func:`check_config`)."""
    return check_config(read_yaml(path), file=str(path))


def load_sample_ids(path: str | Path) -> dict:
    """An ``allowed_training_set.yaml`` or ``eval.yaml`` document, checked."""
    return check_sample_ids(read_yaml(path), file=str(path))


def load_vectors(
    sample_ids: dict,
    embeddings_dir: str | Path,
    *,
    class_names: list[str] | None = None,
    desc: str = "loading",
) -> LabelledVectors:
    """Load the vectors of every listed clip, in the benchmark's row order.

    Parameters
    ----------
    sample_ids : dict
        ``{"targets": {word: [id, ...]}, "nontargets": [id, ...]}``, already checked.
    embeddings_dir : str or Path
        Folder holding ``<word>.parquet`` files.
    class_names : list of str, optional
        Class names by class id; defaults to :func:`class_names_of` ``(sample_ids)``.
    desc : str, default="loading"
        Label of the progress lines on stderr.

    Returns
    -------
    LabelledVectors
        One row per listed clip.

    Raises
    ------
    BadInputError
        A missing or unreadable parquet file, a missing or repeated ID, a wrong
        column, a vector of the wrong length or with non-finite values.
    """
    embeddings_dir = Path(embeddings_dir)
    class_names = class_names or class_names_of(sample_ids)
    class_id = {name: i for i, name in enumerate(class_names)}
    nontargets_by_word: dict[str, list[str]] = {}
    for clip_id in sample_ids["nontargets"]:
        nontargets_by_word.setdefault(clip_word(clip_id), []).append(clip_id)

    reads = [(word, ids, class_id[word], False) for word, ids in sample_ids["targets"].items() if ids]
    reads += [(word, ids, class_id[NONTARGET], True) for word, ids in nontargets_by_word.items()]
    lengths = np.array([len(ids) for _, ids, _, _ in reads], dtype=np.int64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    total = int(lengths.sum())
    matrix = np.empty((total, EMBEDDING_DIM), dtype=np.float32)
    labels = np.empty(total, dtype=np.int64)
    ids_in_order: list[str] = []

    def read_one(index: int) -> list[str]:
        word, ids, label, listed_order = reads[index]
        start, end = int(starts[index]), int(ends[index])
        labels[start:end] = label
        return _read_clips(embeddings_dir / f"{word}.parquet", ids, out=matrix[start:end], listed_order=listed_order)

    pool = ThreadPoolExecutor(max_workers=READ_THREADS)
    try:
        for found in report_progress(pool.map(read_one, range(len(reads))), desc=desc, unit="files", total=len(reads)):
            ids_in_order.extend(found)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return LabelledVectors(matrix=matrix, labels=labels, ids=ids_in_order)


def embeddings_dict(sample_ids: dict, vectors: LabelledVectors, audio: list | None = None) -> dict:
    """The benchmark-shaped dict the plugin API hands to algorithms.

    ``{"targets": {word: [{"ID", "feature_vector", "audio"?}, ...]}, "nontargets": [...]}``;
    each feature vector is a row view of ``vectors.matrix``.
    """
    clips = []
    for row, clip_id in enumerate(vectors.ids):
        clip = {"ID": clip_id, "feature_vector": vectors.matrix[row]}
        if audio is not None:
            clip["audio"] = audio[row]
        clips.append(clip)
    targets, start = {}, 0
    for word, ids in sample_ids["targets"].items():
        targets[word] = clips[start : start + len(ids)]
        start += len(ids)
    return {"targets": targets, "nontargets": clips[start:]}


def _open_parquet(path: Path) -> pq.ParquetFile:
    if not path.is_file():
        raise BadInputError(f"{path}: file not found; expected the parquet file of word {path.stem!r}")
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BadInputError(f"{path}: not a readable parquet file ({reason})") from None
    missing = [name for name in (ID_COLUMN, VECTOR_COLUMN) if name not in schema.names]
    if missing:
        raise BadInputError(
            f"{path}: missing column(s) {describe_items(missing)}; expected {ID_COLUMN} and {VECTOR_COLUMN}"
        )
    check_vector_column(schema.field(VECTOR_COLUMN).type, schema.field(ID_COLUMN).type, file=str(path))
    return parquet


def _read_clips(path: Path, wanted: list[str], *, out: np.ndarray, listed_order: bool) -> list[str]:
    """Fill ``out`` with the vectors of ``wanted`` from one parquet file; return the IDs in row order.

    Only the row groups that hold a wanted clip are read, and rows are picked out
    only when some of those groups' rows are not wanted. With ``listed_order`` rows
    follow ``wanted``; otherwise they follow the file.
    """
    parquet = _open_parquet(path)
    try:
        file_ids = parquet.read(columns=[ID_COLUMN], use_threads=False).column(0)
        position = pc.index_in(file_ids, value_set=pa.array(wanted, pa.string()))
        position = position.fill_null(-1).to_numpy()
    except (pa.ArrowException, OSError) as error:
        raise BadInputError(f"{path}: column {ID_COLUMN} cannot be read ({error})") from None
    rows = np.flatnonzero(position >= 0)
    which = position[rows]
    counts = np.bincount(which, minlength=len(wanted))
    if (counts == 0).any():
        missing = [wanted[i] for i in np.flatnonzero(counts == 0)]
        raise BadInputError(f"{path}: ID {describe_items(missing)} not found in this file")
    if (counts > 1).any():
        repeated = [wanted[i] for i in np.flatnonzero(counts > 1)]
        raise BadInputError(f"{path}: ID {describe_items(repeated)} appears more than once in this file")

    group_sizes = np.array([parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)])
    group_starts = np.concatenate([[0], np.cumsum(group_sizes)])
    group_of_row = np.searchsorted(group_starts, rows, side="right") - 1
    needed_groups = np.unique(group_of_row)
    read_starts = np.zeros(len(group_sizes), dtype=np.int64)
    read_starts[needed_groups] = np.concatenate([[0], np.cumsum(group_sizes[needed_groups])[:-1]])
    local_rows = rows - group_starts[group_of_row] + read_starts[group_of_row]
    ids_in_file_order = [wanted[i] for i in which]
    try:
        vectors = parquet.read_row_groups(needed_groups.tolist(), columns=[VECTOR_COLUMN], use_threads=False)
        vectors = vectors.column(0)
        if len(local_rows) != len(vectors):
            vectors = vectors.take(pa.array(local_rows))
        vectors = vectors.combine_chunks()
    except (pa.ArrowException, OSError) as error:
        raise BadInputError(f"{path}: column {VECTOR_COLUMN} cannot be read ({error})") from None
    if vectors.null_count:
        first = int(np.flatnonzero(vectors.is_null().to_numpy(zero_copy_only=False))[0])
        raise BadInputError(f"{path}: {ids_in_file_order[first]}: vector is null; expected {EMBEDDING_DIM} floats")
    lengths = pc.list_value_length(vectors).to_numpy(zero_copy_only=False)
    check_vectors(lengths, None, ids_in_file_order, file=str(path))
    values = vectors.flatten()
    if values.null_count:
        first = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0]) // EMBEDDING_DIM
        raise BadInputError(f"{path}: {ids_in_file_order[first]}: vector holds null values; expected floats")
    matrix = values.to_numpy(zero_copy_only=False).reshape(len(rows), EMBEDDING_DIM)
    check_vectors(lengths, matrix, ids_in_file_order, file=str(path))
    if listed_order:
        out[which] = matrix
        return list(wanted)
    out[:] = matrix
    return ids_in_file_order


def load_audio(clip_ids: list[str], audio_dir: str | Path) -> list[np.ndarray]:
    """Each clip's 16 kHz wav at ``<audio_dir>/<clip_id>``, as loaded by scipy."""
    from scipy.io import wavfile

    audio_dir = Path(audio_dir)
    waves = []
    for clip_id in report_progress(clip_ids, desc="loading audio", unit="clips"):
        path = audio_dir / clip_id
        try:
            rate, samples = wavfile.read(path)
        except FileNotFoundError:
            raise BadInputError(f"{path}: {clip_id}: audio file not found") from None
        except (ValueError, OSError) as error:
            raise BadInputError(f"{path}: {clip_id}: not a readable wav file ({error})") from None
        if rate != 16000:
            raise BadInputError(f"{path}: {clip_id}: sample rate is {rate} Hz; expected 16000")
        waves.append(samples)
    return waves
