"""On-disk cache of what ``evaluate`` reads and checks the same way every time.

Organisers score many submissions against one eval set, and participants evaluate after
every idea: parsing and checking ``eval.yaml`` (30,000 IDs) and ``allowed_training_set.yaml``
and reading the eval set's parquet files take longer than training and scoring ten seeds.
The first ``evaluate`` stores the checked result; later ones read it back.

An entry is keyed by the identity of every file it was made from (resolved path, size,
inode, modification and change times in nanoseconds), plus the class names and a format
version: editing, replacing, adding or removing any of those files makes a new key, so a
stale entry is never read. As git does with its index, files changed within the last
second are not cached: a second change in the same timestamp tick would keep the key.
An entry is a folder written under a temporary name and renamed into place whole, so
readers see all of it or none of it. Entries hold exactly what the source files gave
after every check, so a hit skips the checks, not their result.

Anything going wrong with the cache (unwritable folder, full disk, an entry removed or
damaged) only costs speed: the files are read from the source instead. The least
recently used entries are removed once the cache holds more than :data:`MAX_CACHE_BYTES`.
The folder is private to the user (mode 0700): entries can hold hidden eval data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from selection.load import LabelledVectors, load_sample_ids
from selection.validation import EMBEDDING_DIM

log = logging.getLogger("dataperf")

FORMAT_VERSION = 1
MAX_CACHE_BYTES = 4 * 1024**3
STALE_STAGING_NS = 3600 * 10**9
SETTLE_NS = 10**9
CACHE_ENV = "DATAPERF_CACHE_DIR"
OFF = "off"


def resolve_cache_dir(option: str | None) -> str | None:
    """The cache folder for a ``--cache_dir`` value; None means no cache (``off`` or empty).

    Without the option: ``$DATAPERF_CACHE_DIR``, else ``$XDG_CACHE_HOME/dataperf-speech``,
    else ``~/.cache/dataperf-speech``.
    """
    if option is None:
        option = os.environ.get(CACHE_ENV) or None
    if option is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return os.path.join(base, "dataperf-speech")
    option = str(option)
    return None if option in (OFF, "") else option


def _identity(path: Path) -> list:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_ino, stat.st_dev, stat.st_mtime_ns, stat.st_ctime_ns]


def _changed_just_now(identity: list) -> bool:
    """A file changed less than :data:`SETTLE_NS` ago could change again within the same timestamp tick."""
    return max(identity[4], identity[5]) > time.time_ns() - SETTLE_NS


def cache_key(kind: str, files: list[Path], folders: tuple[Path, ...] = (), extra: object = None) -> str | None:
    """The key of an entry made from ``files`` and every ``*.parquet`` in ``folders``.

    None (do not cache) if one is missing, or was changed in the last second.
    """
    try:
        sources = [_identity(Path(file)) for file in files]
        for folder in folders:
            sources.append(_identity(Path(folder)))
            sources += [_identity(path) for path in sorted(Path(folder).glob("*.parquet"))]
    except OSError:
        return None
    if any(_changed_just_now(source) for source in sources):
        return None
    text = json.dumps([FORMAT_VERSION, kind, sources, extra], sort_keys=True)
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def _entry(cache_dir: str | None, key: str | None) -> Path | None:
    if cache_dir is None or key is None:
        return None
    entry = Path(cache_dir) / key
    if not entry.is_dir():
        return None
    try:
        os.utime(entry)
    except OSError:
        pass
    return entry


def _discard(entry: Path) -> None:
    """Remove a damaged entry, so that the next run can store a good one in its place."""
    log.info("cache: %s is damaged; reading the source files instead", entry)
    shutil.rmtree(entry, ignore_errors=True)


def _store(cache_dir: str | None, key: str | None, write: Callable[[Path], None], *, what: str = "") -> None:
    """Write an entry under a temporary name, then rename it into place; never raises."""
    if cache_dir is None or key is None:
        return
    folder = Path(cache_dir)
    staging = None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=folder))
        write(staging)
        try:
            os.rename(staging, folder / key)
            staging = None
            if what:
                log.info("%s cached in %s for the next run (--cache_dir off: no cache)", what, folder / key)
        except OSError:
            pass  # another process stored the same entry first
        _evict(folder, keep=key)
    except OSError as error:
        log.info("cache: not stored in %s (%s); the next run reads the source files again", folder, error)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _size(entry: Path) -> int:
    return sum(path.stat().st_size for path in entry.iterdir())


def _evict(folder: Path, *, keep: str) -> None:
    """Remove least recently used entries until the cache fits :data:`MAX_CACHE_BYTES`.

    Staging folders of a run that was killed mid-write are removed after an hour.
    """
    entries = []
    for path in folder.iterdir():
        used = path.stat().st_mtime_ns
        if path.name.startswith("."):
            if time.time_ns() - used > STALE_STAGING_NS:
                shutil.rmtree(path, ignore_errors=True)
        elif path.is_dir():
            entries.append((used, _size(path), path))
    entries.sort()
    total = sum(size for _, size, _ in entries)
    for _, size, path in entries:
        if total <= MAX_CACHE_BYTES:
            break
        if path.name != keep:
            total -= size
            shutil.rmtree(path, ignore_errors=True)


def _is_sample_ids(document: object) -> bool:
    return (
        isinstance(document, dict)
        and isinstance(document.get("targets"), dict)
        and isinstance(document.get("nontargets"), list)
    )


def sample_ids(path: str | Path, cache_dir: str | None) -> dict:
    """``load_sample_ids(path)``, read from the cache when ``path`` is unchanged since it was stored."""
    key = cache_key("ids", [Path(path)])
    entry = _entry(cache_dir, key)
    if entry is not None:
        try:
            document = json.loads((entry / "sample_ids.json").read_text())
        except (OSError, ValueError):
            document = None
        if _is_sample_ids(document):
            return document
        _discard(entry)
    document = load_sample_ids(path)
    _store(cache_dir, key, lambda staging: (staging / "sample_ids.json").write_text(json.dumps(document)))
    return document


def eval_set_key(eval_file: str | Path, eval_embeddings_dir: str | Path, class_names: list[str]) -> str | None:
    """The key of an eval set: ``eval.yaml``, the parquet files beside it, the class names."""
    return cache_key("eval", [Path(eval_file)], (Path(eval_embeddings_dir),), class_names)


def read_eval_set(cache_dir: str | None, key: str | None, n_classes: int) -> tuple[dict, LabelledVectors] | None:
    """A cached eval set (its checked ID document, and its vectors in row order), or None.

    The matrix is memory-mapped read-only: pages are read as the evaluator reaches them.
    """
    entry = _entry(cache_dir, key)
    if entry is None:
        return None
    try:
        document = json.loads((entry / "eval_set.json").read_text())
        matrix = np.load(entry / "matrix.npy", mmap_mode="r", allow_pickle=False)
        labels = np.load(entry / "labels.npy", allow_pickle=False)
        row_ids = document["row_ids"]
        consistent = (
            _is_sample_ids(document["sample_ids"])
            and isinstance(row_ids, list)
            and matrix.dtype == np.float32
            and matrix.shape == (len(row_ids), EMBEDDING_DIM)
            and labels.shape == (len(row_ids),)
            and labels.dtype == np.int64
            and (len(labels) == 0 or 0 <= labels.min() <= labels.max() < n_classes)
        )
    except (OSError, ValueError, KeyError, TypeError):
        consistent = False
    if not consistent:
        _discard(entry)
        return None
    log.info("eval set read from the cache %s", entry)
    return document["sample_ids"], LabelledVectors(matrix=matrix, labels=labels, ids=row_ids)


def store_eval_set(cache_dir: str | None, key: str | None, sample_ids: dict, vectors: LabelledVectors) -> None:
    def write(staging: Path) -> None:
        np.save(staging / "matrix.npy", np.ascontiguousarray(vectors.matrix, dtype=np.float32))
        np.save(staging / "labels.npy", np.asarray(vectors.labels, dtype=np.int64))
        (staging / "eval_set.json").write_text(json.dumps({"sample_ids": sample_ids, "row_ids": vectors.ids}))

    _store(cache_dir, key, write, what="eval set")
