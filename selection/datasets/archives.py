"""Fetching and unpacking the published archives from a mirror nobody vouches for: bounded, exclusive, checked.

Every limit here turns a hostile or broken mirror into a one-line :class:`BadInputError`
instead of a hang, a full disk or a lost folder:

- **Time.** ``timeout`` bounds connecting and every read; a transfer that delivers less than
  :data:`MIN_BYTES_PER_WINDOW` bytes in any ``timeout``-second window (a mirror dripping one
  byte every few seconds) is abandoned too. A ``file://`` archive is opened without blocking
  and must be a regular file (a FIFO would wait forever).
- **Size.** At most ``max_bytes`` are fetched (checked against ``Content-Length`` first and
  counted while receiving); unpacking writes only the experiment's own files
  (``allowed_training_set.yaml``, ``eval.yaml``, ``{train,eval}_embeddings/<word>.parquet``),
  each at most ``max_bytes`` long, at most ``4 * max_bytes`` in all, and none expanding more
  than :data:`MAX_EXPANSION` times its compressed size (float vectors barely compress; a zip
  bomb expands a thousandfold).
- **Files.** Temp files are created exclusively (``mkstemp``), so a planted ``.part`` link is
  never written through. A destination folder that holds anything but a whole experiment is
  refused before anything is fetched; an experiment is replaced (``overwrite``) by one swap of
  folders, the user's other files in it carried over, with ordinary permissions.
"""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import stat
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from selection.inputs.errors import BadInputError
from selection.inputs.layout import EXPERIMENT_ITEMS, experiment_present

log = logging.getLogger("dataperf")
DEFAULT_MAX_MB = 2048
MAX_EXPANSION = 200
MIN_BYTES_PER_WINDOW = 64 * 1024
CHUNK = 1 << 16
_COMPRESSIONS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_EMBEDDING_FOLDERS = ("train_embeddings", "eval_embeddings")


def check_base_url(base_url: str) -> str:
    """``base_url`` if it is an ``http``, ``https`` or ``file`` URL; a one-line error otherwise."""
    parsed = urllib.parse.urlsplit(str(base_url))
    if parsed.scheme not in ("http", "https", "file") or (parsed.scheme != "file" and not parsed.hostname):
        raise BadInputError(
            f"command line: --base_url: {str(base_url)[:200]!r} is not a usable URL; expected http://host/path, "
            "https://host/path or file:///folder"
        )
    try:
        _ = parsed.port
    except ValueError as error:
        raise BadInputError(f"command line: --base_url: {str(base_url)[:200]!r}: {error}") from None
    return str(base_url).rstrip("/")


def zip_problem(path: Path) -> str | None:
    """Why ``path`` is not a regular file holding a zip archive whose every member reads back with the right CRC."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return "not a regular file"
        with zipfile.ZipFile(path) as bundle:
            damaged = bundle.testzip()
        return f"entry {damaged!r} fails its CRC check" if damaged is not None else None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as error:
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        return text[:200]


def is_whole_zip(path: Path) -> bool:
    """Whether :func:`zip_problem` finds nothing wrong with ``path``."""
    return zip_problem(path) is None


def check_destination(destination: Path, *, overwrite: bool) -> bool:
    """Whether an archive may be unpacked into ``destination``: absent, empty, or a whole experiment to replace.

    Returns False when a whole experiment is there and ``overwrite`` is off (it is kept).

    Raises
    ------
    BadInputError
        ``destination`` is a link or a file, or a folder holding files but no whole experiment:
        those are the user's, and nothing is fetched or touched.
    """
    if destination.is_symlink() or (destination.exists() and not destination.is_dir()):
        raise BadInputError(
            f"{destination}: exists and is not a folder (or is a symbolic link); nothing was touched; "
            "move it away to download there"
        )
    if not destination.exists():
        return True
    if experiment_present(destination):
        return overwrite
    if any(destination.iterdir()):
        raise BadInputError(
            f"{destination}: holds files but no whole experiment ({', '.join(EXPERIMENT_ITEMS)}); nothing was "
            "touched; move them away to download there"
        )
    return True


def fetch(url: str, destination: Path, *, timeout: float, max_bytes: int) -> None:
    """Download ``url`` to ``destination`` through an exclusive temp file renamed only when complete and a whole zip."""
    descriptor, temp_name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            if url.startswith("file:"):
                _copy_local(url, handle, max_bytes=max_bytes, name=destination.name)
            else:
                _copy_http(url, handle, timeout=timeout, max_bytes=max_bytes, name=destination.name)
        problem = zip_problem(temp)
        if problem is not None:
            raise BadInputError(f"{url}: what arrived is not a whole, plain zip archive ({problem}); nothing was kept")
        os.chmod(temp, 0o666 & ~_umask())
        temp.replace(destination)
    except BadInputError:
        raise
    except (TimeoutError, urllib.error.URLError, http.client.HTTPException, ConnectionError, OSError) as error:
        reason = getattr(error, "reason", None) or error or type(error).__name__
        raise BadInputError(f"{url}: cannot be fetched ({reason}); the workspace was left as it was") from None
    except ValueError as error:  # a URL that urllib cannot parse, a bad header value
        raise BadInputError(f"{url}: cannot be fetched ({error}); the workspace was left as it was") from None
    finally:
        temp.unlink(missing_ok=True)


def _copy_local(url: str, handle, *, max_bytes: int, name: str) -> None:
    path = urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
    source = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(source)
        if not stat.S_ISREG(info.st_mode):
            raise BadInputError(f"{url}: not a regular file (a pipe, socket or device); expected the archive")
        if info.st_size > max_bytes:
            raise BadInputError(f"{url}: {info.st_size} bytes, more than --max_mb allows ({max_bytes} bytes)")
        os.set_blocking(source, True)
        done = 0
        while chunk := os.read(source, 1 << 20):
            done += len(chunk)
            if done > max_bytes:
                raise BadInputError(f"{url}: more than --max_mb allows ({max_bytes} bytes); nothing was kept")
            handle.write(chunk)
    finally:
        os.close(source)
    print(f"{name}: {done / 1e6:.0f} MB done", file=sys.stderr)


def _copy_http(url: str, handle, *, timeout: float, max_bytes: int, name: str) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        if getattr(response, "status", 200) != 200:
            raise BadInputError(f"{url}: the server answered {response.status}; expected 200 and the archive")
        declared = response.headers.get("Content-Length")
        total = int(declared) if declared and declared.strip().isdigit() else 0
        if total > max_bytes:
            raise BadInputError(f"{url}: announces {total} bytes, more than --max_mb allows ({max_bytes} bytes)")
        try:
            done = _receive(response, handle, url=url, timeout=timeout, max_bytes=max_bytes, name=name, total=total)
        finally:
            print(file=sys.stderr)  # ends the progress line, whatever happened
    if total and done != total:
        raise BadInputError(f"{url}: download ended after {done} of {total} bytes")


def _receive(response, handle, *, url: str, timeout: float, max_bytes: int, name: str, total: int) -> int:
    """Copy the body to ``handle`` within the size bound and the stall rule; return the bytes received."""
    done, last_print = 0, 0.0
    window_start, window_bytes = time.monotonic(), 0
    while chunk := response.read1(CHUNK):
        handle.write(chunk)
        done += len(chunk)
        window_bytes += len(chunk)
        if done > max_bytes:
            raise BadInputError(f"{url}: sent more than --max_mb allows ({max_bytes} bytes); nothing was kept")
        now = time.monotonic()
        if now - window_start > timeout:
            if window_bytes < MIN_BYTES_PER_WINDOW:
                raise BadInputError(
                    f"{url}: sent {window_bytes} bytes in {now - window_start:.0f} s (--timeout {timeout:g}); "
                    "the mirror is stalling; the workspace was left as it was"
                )
            window_start, window_bytes = now, 0
        if now - last_print > 1:
            of = f" of {total / 1e6:.0f}" if total else ""
            print(f"\r{name}: {done / 1e6:.0f}{of} MB", end="", file=sys.stderr, flush=True)
            last_print = now
    print(f"\r{name}: {done / 1e6:.0f} MB done", end="", file=sys.stderr)
    return done


def unpack(archive: Path, destination: Path, *, overwrite: bool, max_bytes: int, check) -> bool:
    """Unpack ``archive``'s experiment into ``destination``, check it with ``check(folder)``, then swap it in.

    The archive may hold the experiment at its top or inside one folder; only the
    experiment's own files are written. Returns whether it unpacked (an experiment already
    at ``destination`` is kept unless ``overwrite``).
    """
    if not check_destination(destination, overwrite=overwrite):
        log.info("%s already holds the experiment; pass --overwrite to unpack %s again", destination, archive.name)
        return False
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".unpack-") as temp:
        staged = Path(temp) / "experiment"
        try:
            with zipfile.ZipFile(archive) as bundle:
                _extract_experiment(bundle, archive, staged, max_bytes=max_bytes)
        except (zipfile.BadZipFile, EOFError) as error:
            raise BadInputError(f"{archive}: not a whole zip archive ({error})") from None
        except (RuntimeError, NotImplementedError, ValueError) as error:  # encrypted, unknown method
            raise BadInputError(f"{archive}: an entry cannot be unpacked ({error})") from None
        except OSError as error:
            if error.errno in (28, 122):  # ENOSPC, EDQUOT
                raise BadInputError(f"{destination.parent}: disk full while unpacking; nothing was kept") from None
            raise BadInputError(f"{archive}: an entry cannot be unpacked ({error.strerror or error})") from None
        try:
            check(staged)
        except BadInputError as error:
            reason = str(error).replace(str(staged), str(destination))
            raise BadInputError(
                f"{archive}: its experiment would be refused by select and evaluate: {reason}"
            ) from None
        _swap_in(staged, destination, Path(temp) / "previous")
    return True


def _experiment_prefix(names: list[str], archive: Path) -> str:
    """``''`` or ``'folder/'``: where the archive keeps its experiment."""
    for prefix in [""] + sorted({name.split("/", 1)[0] + "/" for name in names if "/" in name}):
        if all(f"{prefix}{item}" in names for item in ("allowed_training_set.yaml", "eval.yaml")):
            return prefix
    raise BadInputError(
        f"{archive}: holds no experiment (train_embeddings/, eval_embeddings/, allowed_training_set.yaml, "
        "eval.yaml) at its top or in one folder"
    )


def _extract_experiment(bundle: zipfile.ZipFile, archive: Path, staged: Path, *, max_bytes: int) -> None:
    infos = bundle.infolist()
    names = [info.filename for info in infos]
    for name in names:
        if name.startswith("/") or ".." in Path(name).parts or "\\" in name:
            raise BadInputError(f"{archive}: entry {name!r} would be written outside the data folder")
    if len(set(names)) != len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise BadInputError(f"{archive}: entry {twice[0]!r} appears more than once; expected one of each")
    prefix = _experiment_prefix(names, archive)
    wanted = []
    for info in infos:
        inside = info.filename[len(prefix) :] if info.filename.startswith(prefix) else None
        if inside is None or info.is_dir():
            continue
        parts = inside.split("/")
        if inside in ("allowed_training_set.yaml", "eval.yaml") or (
            len(parts) == 2 and parts[0] in _EMBEDDING_FOLDERS and parts[1].endswith(".parquet")
        ):
            wanted.append((info, inside))
    ignored = sum(1 for info in infos if not info.is_dir()) - len(wanted)
    total = sum(info.file_size for info, _ in wanted)
    if total > 4 * max_bytes:
        raise BadInputError(f"{archive}: would unpack {total} bytes, more than 4 x --max_mb ({4 * max_bytes} bytes)")
    for info, _ in wanted:
        if info.flag_bits & 0x1:
            raise BadInputError(f"{archive}: entry {info.filename!r} is encrypted; expected a plain archive")
        if info.compress_type not in _COMPRESSIONS:
            raise BadInputError(
                f"{archive}: entry {info.filename!r} uses compression method {info.compress_type}; expected "
                "stored, deflate, bzip2 or lzma"
            )
        if info.file_size > max_bytes:
            raise BadInputError(f"{archive}: entry {info.filename!r} is {info.file_size} bytes; more than --max_mb")
        if info.file_size > 1 << 20 and info.file_size > MAX_EXPANSION * max(info.compress_size, 1):
            raise BadInputError(
                f"{archive}: entry {info.filename!r} expands {info.file_size // max(info.compress_size, 1)} times; "
                f"expected at most {MAX_EXPANSION} (a zip bomb?)"
            )
    for folder in _EMBEDDING_FOLDERS:
        (staged / folder).mkdir(parents=True)
    for info, inside in wanted:
        with bundle.open(info) as source, open(staged / inside, "xb") as target:
            written = 0
            while chunk := source.read(1 << 20):
                written += len(chunk)
                if written > info.file_size:
                    raise BadInputError(f"{archive}: entry {info.filename!r} holds more than its header says")
                target.write(chunk)
    if ignored:
        log.info("%s: %d entries that are not experiment files were left in the archive", archive.name, ignored)


def _swap_in(staged: Path, destination: Path, previous: Path) -> None:
    """Replace ``destination`` by ``staged`` in two renames, carrying the user's other files over."""
    os.chmod(staged, 0o777 & ~_umask())
    if destination.exists():
        for entry in destination.iterdir():
            if entry.name not in EXPERIMENT_ITEMS:
                entry.rename(staged / entry.name)
        destination.rename(previous)
    try:
        staged.rename(destination)
    except OSError:
        if previous.exists():
            for entry in staged.iterdir():
                if entry.name not in EXPERIMENT_ITEMS:
                    entry.rename(previous / entry.name)
            previous.rename(destination)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
