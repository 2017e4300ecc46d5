"""Writing outputs whole or not at all: a temp file beside the target, then a rename."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from selection.validation import ID_COLUMN, BadInputError

EMBEDDING_ROW_GROUP = 512


def check_output_dir(folder: str | Path, *, create: bool = False) -> Path:
    """The folder an output goes to: it must exist (or be creatable) and be writable."""
    folder = Path(folder)
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise BadInputError(f"{folder}: output folder cannot be created ({error.strerror})") from None
    if not folder.is_dir():
        raise BadInputError(f"{folder}: output folder does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInputError(f"{folder}: output folder is not writable")
    return folder


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either untouched or complete.

    On any failure, including Ctrl-C, the temp file is removed and an existing
    ``path`` keeps its old content.
    """
    path = Path(path)
    folder = check_output_dir(path.parent)
    descriptor, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp_name, 0o666 & ~umask)
        os.replace(temp_name, path)
    except OSError as error:
        _remove_quietly(temp_name)
        if error.errno == errno.ENOSPC:
            raise BadInputError(f"{path}: disk full while writing; the file was left as it was") from None
        raise BadInputError(f"{path}: cannot be written ({error.strerror}); the file was left as it was") from None
    except BaseException:
        _remove_quietly(temp_name)
        raise


def write_json_atomic(path: str | Path, document: Any) -> None:
    """``document`` as indented JSON with a final newline, written atomically."""
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def _remove_quietly(name: str) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass


def write_embeddings(table: pa.Table, path: str | Path) -> None:
    """Write a ``clip_id`` + vector table as parquet (callers write into a temp folder they rename).

    Row groups of :data:`EMBEDDING_ROW_GROUP` clips let a reader that picks a few clips
    decode little; the vectors get no dictionary (floats rarely repeat).
    """
    pq.write_table(table, path, row_group_size=EMBEDDING_ROW_GROUP, use_dictionary=[ID_COLUMN])
