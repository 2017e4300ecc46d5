"""Reading the harness's files: YAML and JSON documents, parquet embeddings, wav audio.

Rows come out in the benchmark's order, which the frozen evaluator's score
depends on: targets in the order the document lists them, each target's clips in
parquet row order; then nontargets grouped by word in order of first appearance,
each word's clips in listed order.
"""

from __future__ import annotations

import logging
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from selection.inputs.documents import read_json, read_text, read_yaml  # noqa: F401 - part of this module's API
from selection.inputs.formats import class_names_of  # noqa: F401 - part of this module's API
from selection.inputs.validation import (
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
    config_key_warnings,
    describe_items,
)
from selection.progress import report_progress

log = logging.getLogger("dataperf")
READ_THREADS = max(1, min(8, len(os.sched_getaffinity(0))))


@dataclass
class LabelledVectors:
    """Clips as arrays: ``matrix`` (N, 1024) float32, ``labels`` (N,) int64, ``ids`` (N,)."""

    matrix: np.ndarray
    labels: np.ndarray
    ids: list[str]


DOWNLOAD_HINT = "run download first (python -m selection.download) or pass the flag"
SELECT_HINT = "run select first (python -m selection.main) or pass the flag"


def require_inputs(paths: dict[str, str | Path | None], *, hint: str) -> None:
    """Every named input path exists; else one line naming the flag, the path and what to run first."""
    for flag, path in paths.items():
        if path is not None and not Path(path).exists():
            raise BadInputError(f"{path}: {flag}: not found; {hint}")


def load_config(path: str | Path) -> dict:
    """The harness config with defaults filled in (see :func:`check_config`); near-miss keys are warned about."""
    raw = read_yaml(path)
    config = check_config(raw, file=str(path))
    for warning in config_key_warnings(raw, file=str(path)):
        log.warning("warning: %s", warning)
    return config


def load_sample_ids(path: str | Path) -> dict:
    """An ``allowed_training_set.yaml`` or ``eval.yaml`` document, checked."""
    return check_sample_ids(read_yaml(path), file=str(path))


def load_vectors(
    sample_ids: dict,
    embeddings_dir: str | Path,
    *,
    class_names: list[str] | None = None,
    desc: str = "loading",
    dim: int | None = None,
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
    dim : int, optional
        The vector length every clip must have; default the length of the first file's vectors
        (1024 in the published data; an experiment made by ``selection.embed`` has its model's).

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
    reads = _read_plan(sample_ids, class_names or class_names_of(sample_ids))
    lengths = np.array([len(ids) for _, ids, _, _ in reads], dtype=np.int64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    total = int(lengths.sum())
    if dim is None:
        dim = _vector_length(embeddings_dir / f"{reads[0][0]}.parquet") if reads else EMBEDDING_DIM
    matrix = np.empty((total, dim), dtype=np.float32)
    labels = np.empty(total, dtype=np.int64)
    ids_in_order: list[str] = []

    def read_one(index: int) -> list[str]:
        word, ids, label, listed_order = reads[index]
        start, end = int(starts[index]), int(ends[index])
        labels[start:end] = label
        return _read_clips(
            embeddings_dir / f"{word}.parquet", ids, out=matrix[start:end], listed_order=listed_order, dim=dim
        )

    pool = ThreadPoolExecutor(max_workers=READ_THREADS)
    try:
        for found in report_progress(pool.map(read_one, range(len(reads))), desc=desc, unit="files", total=len(reads)):
            ids_in_order.extend(found)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return LabelledVectors(matrix=matrix, labels=labels, ids=ids_in_order)


def _read_plan(sample_ids: dict, class_names: list[str]) -> list[tuple[str, list[str], int, bool]]:
    """The files to read, in row order: (word, IDs, class id, whether the IDs keep their listed order)."""
    class_id = {name: i for i, name in enumerate(class_names)}
    nontargets_by_word: dict[str, list[str]] = {}
    for clip_id in sample_ids["nontargets"]:
        nontargets_by_word.setdefault(clip_word(clip_id), []).append(clip_id)
    reads = [(word, ids, class_id[word], False) for word, ids in sample_ids["targets"].items() if ids]
    reads += [(word, ids, class_id[NONTARGET], True) for word, ids in nontargets_by_word.items()]
    return reads


def labels_in_order(sample_ids: dict, class_names: list[str]) -> np.ndarray:
    """The class ids :func:`load_vectors` gives these clips, row by row, without reading a vector."""
    reads = _read_plan(sample_ids, class_names)
    return np.concatenate(
        [np.full(len(ids), label, dtype=np.int64) for _, ids, label, _ in reads] or [np.empty(0, np.int64)]
    )


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
    if not path.exists():
        raise BadInputError(f"{path}: file not found; expected the parquet file of word {path.stem!r}")
    if not path.is_file():
        raise BadInputError(f"{path}: is not a regular file; expected the parquet file of word {path.stem!r}")
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
    for group in range(parquet.num_row_groups):
        _check_decoded_size(parquet, group, MAX_VECTOR_LENGTH, path)
    return parquet


# The longest vector any file may hold (the published vectors have 1024 values), and the most bytes of
# IDs per row: both are checked from the parquet metadata, before anything is decompressed.
MAX_VECTOR_LENGTH = 16384
MAX_ID_BYTES_PER_ROW = 4096


def _check_decoded_size(parquet: pq.ParquetFile, group: int, dim: int, path: Path) -> None:
    """Refuse a row group whose vectors hold more than ``dim`` values a row, from its metadata alone.

    A few KB of parquet can decode to gigabytes (a long run of equal floats compresses to nothing), so
    the values a group's vector column holds, and its IDs' decoded bytes, are read from the footer first.
    """
    metadata = parquet.metadata.row_group(group)
    rows = metadata.num_rows
    for index in range(metadata.num_columns):
        column = metadata.column(index)
        top = column.path_in_schema.split(".")[0]
        if top == VECTOR_COLUMN and column.num_values > rows * max(dim, 1):
            raise BadInputError(
                f"{path}: column {VECTOR_COLUMN}: row group {group} holds {column.num_values} values for {rows} "
                f"rows; expected at most {dim} a row"
            )
        if top == ID_COLUMN and column.total_uncompressed_size > rows * MAX_ID_BYTES_PER_ROW + 65536:
            raise BadInputError(
                f"{path}: column {ID_COLUMN}: row group {group} decodes to {column.total_uncompressed_size} bytes "
                f"for {rows} IDs; expected at most {MAX_ID_BYTES_PER_ROW} a row"
            )


def _vector_length(path: Path) -> int:
    """The length of the first vector in ``path``: the length every vector of a load must have."""
    parquet = _open_parquet(path)
    vector_type = parquet.schema_arrow.field(VECTOR_COLUMN).type
    if pa.types.is_fixed_size_list(vector_type):
        return int(vector_type.list_size)
    try:
        for group in range(parquet.num_row_groups):
            column = parquet.read_row_group(group, columns=[VECTOR_COLUMN], use_threads=False).column(0)
            if len(column):
                lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
                return int(lengths[0]) if lengths[0] == lengths[0] else EMBEDDING_DIM
    except (pa.ArrowException, OSError) as error:
        raise BadInputError(f"{path}: column {VECTOR_COLUMN} cannot be read ({error})") from None
    return EMBEDDING_DIM


def _read_clips(path: Path, wanted: list[str], *, out: np.ndarray, listed_order: bool, dim: int) -> list[str]:
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
    for group in needed_groups.tolist():
        _check_decoded_size(parquet, group, dim, path)
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
        raise BadInputError(f"{path}: {ids_in_file_order[first]}: vector is null; expected {dim} floats")
    lengths = pc.list_value_length(vectors).to_numpy(zero_copy_only=False)
    check_vectors(lengths, None, ids_in_file_order, file=str(path), dim=dim)
    values = vectors.flatten()
    if values.null_count:
        first = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0]) // dim
        raise BadInputError(f"{path}: {ids_in_file_order[first]}: vector holds null values; expected floats")
    matrix = values.to_numpy(zero_copy_only=False).reshape(len(rows), dim)
    if matrix.dtype != np.float32:
        matrix = _narrow_to_float32(matrix, ids_in_file_order, file=str(path))
    check_vectors(lengths, matrix, ids_in_file_order, file=str(path), dim=dim)
    if listed_order:
        out[which] = matrix
        return list(wanted)
    out[:] = matrix
    return ids_in_file_order


def _narrow_to_float32(matrix: np.ndarray, ids: list[str], *, file: str) -> np.ndarray:
    """``matrix`` as float32, refusing finite values that float32 cannot hold (they would become inf)."""
    with np.errstate(over="ignore"):
        narrowed = matrix.astype(np.float32)
    overflow = np.flatnonzero(np.isfinite(matrix).all(axis=1) & ~np.isfinite(narrowed).all(axis=1))
    if overflow.size:
        raise BadInputError(
            f"{file}: {describe_items([ids[overflow[0]]], cap=1)}: vector holds values beyond float32's range "
            "(about ±3.4e38); expected values a float32 vector can hold"
        )
    return narrowed


# A clip is a second or a few; 16 MB holds over 8 minutes of 16 kHz 16-bit audio.
MAX_CLIP_BYTES = 16 << 20


def load_audio(clip_ids: list[str], audio_dir: str | Path) -> list[np.ndarray]:
    """Each clip's audio at ``<audio_dir>/<clip_id>``.

    A 16 kHz wav is given as scipy reads it (int16 samples for 16-bit PCM), as in the benchmark;
    any other format or sample rate (flac, ogg/opus, a 44.1 kHz wav, ...) is read by
    :func:`selection.speech.audio.read_clip`: float32 in [-1, 1], 16 kHz, mono, one second.
    """
    from scipy.io import wavfile

    from selection.speech.audio import BadAudioError, read_clip

    audio_dir = Path(audio_dir)
    waves = []
    for clip_id in report_progress(clip_ids, desc="loading audio", unit="clips"):
        path = audio_dir / clip_id
        try:
            mode = path.stat()
        except OSError:
            raise BadInputError(f"{path}: {clip_id}: audio file not found") from None
        if not stat.S_ISREG(mode.st_mode):  # a FIFO would block forever, a device read without end
            raise BadInputError(f"{path}: {clip_id}: not a regular file; expected an audio clip")
        if mode.st_size > MAX_CLIP_BYTES:
            raise BadInputError(
                f"{path}: {clip_id}: {mode.st_size} bytes; expected a clip of at most {MAX_CLIP_BYTES >> 20} MB"
            )
        try:
            rate, samples = wavfile.read(path) if path.suffix.lower() == ".wav" else (None, None)
        except (ValueError, OSError):
            rate = None
        if rate != 16000:
            try:
                samples = read_clip(path)
            except BadAudioError as error:
                raise BadInputError(f"{error}; clip {clip_id}") from None
        waves.append(samples)
    return waves
