"""Writing outputs whole or not at all: a temp file beside the target, then a rename."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selection.inputs.errors import BadInputError

if TYPE_CHECKING:
    import pyarrow as pa

EMBEDDING_ROW_GROUP = 512


def check_output_dir(folder: str | Path, *, create: bool = False) -> Path:
    """The folder an output goes to: it must be a writable folder, or (``create``) be creatable there.

    Nothing is created here: a missing folder is made only when its first output is
    written (:func:`write_bytes_atomic`), so a run that rejects its input leaves no trace.
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        if not create:
            raise BadInputError(f"{folder}: output folder does not exist")
        existing = existing.parent
    if not existing.is_dir():
        if existing == folder:
            raise BadInputError(f"{folder}: output path is not a folder")
        raise BadInputError(f"{folder}: output folder cannot be created ({existing} is not a folder)")
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == folder:
            raise BadInputError(f"{folder}: output folder is not writable")
        raise BadInputError(f"{folder}: output folder cannot be created ({existing} is not writable)")
    return folder


def nesting(inner: str | Path, outer: str | Path) -> str | None:
    """How folder ``inner`` sits relative to ``outer`` once links are resolved: ``same``, ``inside``, ``holds`` or None.

    Commands that write next to a user's folder (``embed`` beside recordings, the leaderboard beside
    submissions) refuse every case but None.
    """
    inner_real, outer_real = Path(inner).resolve(), Path(outer).resolve()
    if inner_real == outer_real:
        return "same"
    if outer_real in inner_real.parents:
        return "inside"
    if inner_real in outer_real.parents:
        return "holds"
    return None


def check_output_file(path: str | Path, *, inputs: dict[str, str | Path | None], flag: str) -> Path:
    """An output file path that may be written: not a device, FIFO or folder, and none of the inputs.

    ``inputs`` maps each input flag to its path; an output naming one of them would destroy it.
    """
    path = Path(path)
    check_output_dir(path.parent, create=True)
    if path.is_symlink() or path.exists():
        if path.is_dir():
            raise BadInputError(f"{path}: {flag}: is a folder; expected a file path to write")
        if not path.is_file():
            raise BadInputError(f"{path}: {flag}: is not a regular file (a device, pipe or socket); expected a file")
    for input_flag, input_path in inputs.items():
        if input_path is None:
            continue
        try:
            same = Path(input_path).exists() and path.exists() and path.samefile(input_path)
        except OSError:
            same = False
        if same or path.resolve() == Path(input_path).resolve():
            raise BadInputError(f"{path}: {flag}: is also the input {input_flag}; expected a separate output file")
    return path


def _stage(path: Path, data: bytes, staged: list[tuple[str, Path]]) -> None:
    """Write ``data`` completely to a temp file beside ``path`` (synced, ordinary mode); record it in ``staged``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadInputError(f"{path.parent}: output folder cannot be created ({error.strerror})") from None
    folder = check_output_dir(path.parent)
    descriptor, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    staged.append((temp_name, path))
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp_name, 0o666 & ~umask)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either untouched or complete.

    Missing parent folders are created first. On any failure, including Ctrl-C, the
    temp file is removed and an existing ``path`` keeps its old content.
    """
    _write_staged({Path(path): data}, kept=f"{path}: ", outcome="the file was left as it was")


def write_files_together(files: dict[Path, bytes]) -> None:
    """Write several files so that either all of them are replaced or none is.

    Every file is first written completely to a temp file beside it; only then are they renamed
    into place, one after the other (a rename cannot fail for want of space). On any failure or
    Ctrl-C before the renames, the temp files are removed and every existing file keeps its content.
    """
    _write_staged({Path(path): data for path, data in files.items()}, kept="", outcome="no file was changed")


def _write_staged(files: dict[Path, bytes], *, kept: str, outcome: str) -> None:
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            _stage(path, data, staged)
        for temp_name, path in staged:
            os.replace(temp_name, path)
        staged = []
    except OSError as error:
        where = kept or f"{error.filename or 'output'}: "
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise BadInputError(f"{where}disk full while writing; {outcome}") from None
        raise BadInputError(f"{where}cannot be written ({error.strerror}); {outcome}") from None
    finally:
        for temp_name, _ in staged:
            _remove_quietly(temp_name)


def json_bytes(document: Any) -> bytes:
    """``document`` as the harness writes JSON: indented, a final newline, no NaN."""
    return (json.dumps(document, indent=2, allow_nan=False) + "\n").encode("utf-8")


def write_default_config(folder: str | Path, *, writer: str) -> None:
    """The harness's default ``dataperf_speech_config.yaml`` in ``folder``, unless one is there (a user's is kept).

    So that a folder made by ``embed`` or ``download`` is a whole experiment: ``run`` and ``explain`` need only
    ``--workspace`` for it.
    """
    import yaml

    from selection.inputs.validation import CONFIG_DEFAULTS

    config = Path(folder) / "dataperf_speech_config.yaml"
    if not config.exists() and not config.is_symlink():
        header = f"# Written by {writer} (kept if present): the harness's defaults (docs/reference.md, Config).\n"
        body = yaml.safe_dump(dict(CONFIG_DEFAULTS), sort_keys=False, default_flow_style=None, width=1000)
        write_bytes_atomic(config, (header + body).encode())


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
    import pyarrow.parquet as pq

    from selection.inputs.validation import ID_COLUMN

    pq.write_table(table, path, row_group_size=EMBEDDING_ROW_GROUP, use_dictionary=[ID_COLUMN])
