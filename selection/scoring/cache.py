"""On-disk cache of what ``evaluate`` reads and checks the same way every time.

Organisers score many submissions against one eval set, and participants evaluate after
every idea: parsing and checking ``eval.yaml`` (30,000 IDs) and ``allowed_training_set.yaml``
and reading the eval set's parquet files take longer than training and scoring ten seeds.
The first ``evaluate`` stores the checked result; later ones read it back.

The folder is the harness's own: it holds a ``CACHEDIR.TAG`` naming dataperf-speech, and a
folder that is neither new, empty, nor tagged by the harness is refused, untouched. Inside
it the harness reads, replaces and removes only names of its own making (``ids-<hex>``,
``eval-<hex>`` and their staging folders), never anything else a user put there.

An entry is keyed by the identity of every file it was made from (resolved path, size,
inode, modification and change times in nanoseconds), plus the class names and a format
version: editing, replacing, adding or removing any of those files makes a new key, so a
stale entry is never read. As git does with its index, files changed within the last
second are not cached: a second change in the same timestamp tick would keep the key.

An entry is a folder written under a temporary name and renamed into place whole. Its
``manifest.json``, written last, holds the SHA-256 and size of every other file in it; a
read checks all of them before using anything, so an entry that was damaged or edited is
never used: it is removed and rebuilt from the sources. Anything going wrong with the
cache (unwritable folder, full disk, a damaged entry) only costs speed; the score never
depends on it. The least recently used entries are removed once the cache holds more
than :data:`MAX_CACHE_BYTES`. The folder is private to the user (mode 0700): entries can
hold hidden eval data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from selection.inputs.load import LabelledVectors, load_sample_ids
from selection.inputs.validation import BadInputError

log = logging.getLogger("dataperf")

FORMAT_VERSION = 2
MAX_CACHE_BYTES = 4 * 1024**3
STALE_STAGING_NS = 3600 * 10**9
SETTLE_NS = 10**9
CACHE_ENV = "DATAPERF_CACHE_DIR"
OFF = "off"
TAG_NAME = "CACHEDIR.TAG"
TAG_TEXT = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by dataperf-speech (evaluate's cache).\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
ENTRY_NAME = re.compile(r"(ids|eval)-[0-9a-f]{32}")
STAGING_NAME = re.compile(r"\.(ids|eval)-[0-9a-f]{32}\.[A-Za-z0-9_]+")
MANIFEST = "manifest.json"


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


def _is_ours(name: str) -> bool:
    return bool(ENTRY_NAME.fullmatch(name) or STAGING_NAME.fullmatch(name))


def claim_cache_dir(cache_dir: str | None) -> str | None:
    """Check that ``cache_dir`` is the harness's own folder (or can become it) before any work.

    A folder that does not exist yet is created on the first store; an empty one, or one
    holding only names the harness makes, is tagged then. Anything else is refused.

    Raises
    ------
    BadInputError
        ``cache_dir`` is a file, or a non-empty folder that is not a dataperf-speech cache.
    """
    if cache_dir is None:
        return None
    folder = Path(cache_dir)
    if not folder.exists() and not folder.is_symlink():
        return cache_dir
    if not folder.is_dir():
        raise BadInputError(f"{folder}: --cache_dir: not a folder; expected a folder the harness may own, or 'off'")
    tag = folder / TAG_NAME
    try:
        if tag.is_file() and "dataperf-speech" in tag.read_text(errors="replace"):
            return cache_dir
        foreign = sorted(name for name in os.listdir(folder) if not _is_ours(name))
    except OSError:
        return cache_dir  # unreadable: stores will fail and cost only speed
    if foreign:
        shown = ", ".join(repr(name[:40]) for name in foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise BadInputError(
            f"{folder}: --cache_dir: folder holds files the harness did not make ({shown}) and no "
            f"dataperf-speech {TAG_NAME}; expected a new or empty folder, one the harness made, or 'off' "
            "(nothing in it was touched)"
        )
    return cache_dir


def _identity(path: Path) -> list:
    stat_result = path.stat()
    return [
        str(path.resolve()),
        stat_result.st_size,
        stat_result.st_ino,
        stat_result.st_dev,
        stat_result.st_mtime_ns,
        stat_result.st_ctime_ns,
    ]


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


def _read_regular(path: Path) -> bytes:
    """A regular file's bytes, never following a symlink or opening a FIFO or device."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(descriptor)


def _verified_files(cache_dir: str | None, key: str | None) -> dict[str, bytes] | None:
    """Every file of entry ``key``, each matching the SHA-256 and size its manifest gives; else None.

    An entry that exists but fails the check is removed, so the caller's store rebuilds it.
    """
    if cache_dir is None or key is None:
        return None
    entry = Path(cache_dir) / key
    if not entry.is_dir() or entry.is_symlink():
        return None
    try:
        manifest = json.loads(_read_regular(entry / MANIFEST))
        listed = manifest["files"]
        if manifest.get("format") != FORMAT_VERSION or manifest.get("key") != key or not isinstance(listed, dict):
            raise ValueError("manifest does not describe this entry")
        if set(os.listdir(entry)) != {MANIFEST, *listed}:
            raise ValueError("files differ from the manifest")
        files = {}
        for name, expected in listed.items():
            data = _read_regular(entry / name)
            if len(data) != expected["bytes"] or hashlib.sha256(data).hexdigest() != expected["sha256"]:
                raise ValueError(f"{name} does not match its checksum")
            files[name] = data
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.info("cache: %s is damaged (%s); reading the source files instead, and rebuilding it", entry, error)
        _remove_entry(entry)
        return None
    try:
        os.utime(entry)
    except OSError:
        pass
    return files


def _remove_entry(entry: Path) -> None:
    if _is_ours(entry.name) and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)


def _tag(folder: Path) -> None:
    tag = folder / TAG_NAME
    if tag.is_file():
        return
    descriptor, temp = tempfile.mkstemp(prefix=f".{TAG_NAME}.", dir=folder)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(TAG_TEXT)
        os.replace(temp, tag)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _store(cache_dir: str | None, key: str | None, files: Callable[[], dict[str, bytes]], *, what: str = "") -> None:
    """Write an entry under a temporary name, manifest last, then rename it into place; never raises."""
    if cache_dir is None or key is None:
        return
    folder = Path(cache_dir)
    staging = None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _tag(folder)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=folder))
        listed = {}
        for name, data in files().items():
            (staging / name).write_bytes(data)
            listed[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        manifest = {"format": FORMAT_VERSION, "key": key, "files": listed}
        (staging / MANIFEST).write_text(json.dumps(manifest))
        try:
            os.rename(staging, folder / key)
            staging = None
            if what:
                size = sum(entry["bytes"] for entry in listed.values()) / 1e6
                log.info(
                    "%s stored in the cache %s (%.0f MB), so the next run reads it faster; deleting it is safe, "
                    "and --cache_dir off (or DATAPERF_CACHE_DIR=off) keeps nothing",
                    what, folder / key, size,
                )  # fmt: skip
        except OSError:
            pass  # another process stored the same entry first
        _evict(folder, keep=key)
    except OSError as error:
        log.info("cache: not stored in %s (%s); the next run reads the source files again", folder, error)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _size(entry: Path) -> int:
    return sum(path.stat().st_size for path in entry.iterdir() if path.is_file())


def _evict(folder: Path, *, keep: str) -> None:
    """Remove least recently used entries until the cache fits :data:`MAX_CACHE_BYTES`.

    Staging folders of a run that was killed mid-write are removed after an hour. Only
    names the harness makes are looked at.
    """
    entries = []
    for path in folder.iterdir():
        if path.is_symlink() or not path.is_dir():
            continue
        used = path.stat().st_mtime_ns
        if STAGING_NAME.fullmatch(path.name):
            if time.time_ns() - used > STALE_STAGING_NS:
                shutil.rmtree(path, ignore_errors=True)
        elif ENTRY_NAME.fullmatch(path.name):
            entries.append((used, _size(path), path))
    entries.sort()
    total = sum(size for _, size, _ in entries)
    for _, size, path in entries:
        if total <= MAX_CACHE_BYTES:
            break
        if path.name != keep:
            total -= size
            _remove_entry(path)


def sample_ids(path: str | Path, cache_dir: str | None) -> dict:
    """``load_sample_ids(path)``, read from the cache when ``path`` is unchanged since it was stored."""
    key = cache_key("ids", [Path(path)])
    files = _verified_files(cache_dir, key)
    if files is not None:
        return json.loads(files["sample_ids.json"])
    document = load_sample_ids(path)
    _store(cache_dir, key, lambda: {"sample_ids.json": json.dumps(document).encode()})
    return document


def eval_set_key(eval_file: str | Path, eval_embeddings_dir: str | Path, class_names: list[str]) -> str | None:
    """The key of an eval set: ``eval.yaml``, the parquet files beside it, the class names."""
    return cache_key("eval", [Path(eval_file)], (Path(eval_embeddings_dir),), class_names)


def read_eval_set(cache_dir: str | None, key: str | None, n_classes: int) -> tuple[dict, LabelledVectors] | None:
    """A cached eval set (its checked ID document, and its vectors in row order), or None."""
    files = _verified_files(cache_dir, key)
    if files is None:
        return None
    document = json.loads(files["eval_set.json"])
    rows, dim = document["rows"], document["dim"]
    matrix = np.frombuffer(files["matrix.f32"], dtype=np.float32).reshape(rows, dim)
    labels = np.frombuffer(files["labels.i64"], dtype=np.int64)
    log.info("eval set read from the cache %s", Path(cache_dir) / key)
    return document["sample_ids"], LabelledVectors(matrix=matrix, labels=labels, ids=document["row_ids"])


def store_eval_set(cache_dir: str | None, key: str | None, sample_ids: dict, vectors: LabelledVectors) -> None:
    """Store a checked eval set under ``key`` (see :func:`read_eval_set`)."""

    def files() -> dict[str, bytes | memoryview]:
        matrix = np.ascontiguousarray(vectors.matrix, dtype=np.float32)
        document = {"sample_ids": sample_ids, "row_ids": vectors.ids, "rows": matrix.shape[0], "dim": matrix.shape[1]}
        return {
            "eval_set.json": json.dumps(document).encode(),
            "matrix.f32": memoryview(matrix).cast("B"),
            "labels.i64": np.ascontiguousarray(vectors.labels, dtype=np.int64).tobytes(),
        }

    _store(cache_dir, key, files, what="eval set")
