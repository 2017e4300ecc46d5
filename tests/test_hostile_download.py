"""``download --source dataperf`` against hostile mirrors and archives: real zips, FIFOs, symlinks, and small
HTTP servers on 127.0.0.1 that stall, stream forever or answer garbage. Nothing the user owns is lost."""

from __future__ import annotations

import http.server
import os
import struct
import threading
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import make_dataset, published_like_archives, run_cli
from tests.test_bad_input import assert_clean_failure

DOWNLOAD = ("-m", "selection.download", "--source", "dataperf")


def _download(workspace: Path, base_url: str, *extra: str):
    return run_cli(*DOWNLOAD, "--workspace", str(workspace), "--base_url", base_url, *extra)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    published_like_archives(tmp_path / "mirror", tmp_path)
    return tmp_path / "mirror"


def test_a_folder_of_the_users_is_refused_and_kept(mirror: Path, tmp_path: Path):
    workspace = tmp_path / "workspace"
    mine = workspace / "data" / "dataperf_pt_data"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("my notes\n")
    for extra in ((), ("--overwrite",)):
        done = _download(workspace, mirror.as_uri(), *extra)
        assert_clean_failure(done, "dataperf_pt_data", "holds files but no whole experiment", "nothing was touched")
        assert (mine / "notes.txt").read_text() == "my notes\n"
        assert not list((workspace / "data").glob("*.zip")), "nothing is fetched before the folders are checked"


def test_overwrite_replaces_cleanly_keeps_the_users_files_and_ordinary_modes(mirror: Path, tmp_path: Path):
    workspace = tmp_path / "workspace"
    assert _download(workspace, mirror.as_uri()).returncode == 0
    english = workspace / "data" / "dataperf_en_data"  # its archive holds the experiment at its top
    (english / "train.json").write_text("{}\n")
    first = _tree(english)
    for _ in range(2):
        done = _download(workspace, mirror.as_uri(), "--overwrite")
        assert done.returncode == 0, done.stderr
    assert _tree(english) == first
    assert not list(english.rglob(".previous")) and not list(english.rglob(".unpack-*"))
    umask = os.umask(0)
    os.umask(umask)
    assert english.stat().st_mode & 0o777 == 0o777 & ~umask
    assert not [path for path in (workspace / "data").iterdir() if path.name.startswith(".")]


def test_only_the_experiments_files_are_unpacked(mirror: Path, tmp_path: Path):
    archive = mirror / "dataperf_eng_data.zip"
    with zipfile.ZipFile(archive, "a") as bundle:
        bundle.writestr("README.txt", "hello")
        bundle.writestr("train_embeddings/nested/deep.parquet", b"x")
        bundle.writestr("scripts/run.sh", "rm -rf ~")
        bundle.writestr("eval_embeddings/yes.parquet/inner", b"clashes with a file of the experiment")
    workspace = tmp_path / "workspace"
    done = _download(workspace, mirror.as_uri())
    assert done.returncode == 0, done.stderr
    english = workspace / "data" / "dataperf_en_data"
    names = {str(path.relative_to(english)) for path in english.rglob("*")}
    assert names and all(
        name in ("allowed_training_set.yaml", "eval.yaml", "train_embeddings", "eval_embeddings")
        or (name.split("/")[0] in ("train_embeddings", "eval_embeddings") and name.count("/") == 1)
        for name in names
    ), names


def _zip_of_experiment(path: Path, tmp_path: Path, *, extra: dict[str, bytes] | None = None) -> None:
    experiment = tmp_path / f"exp-{path.stem}"
    make_dataset(experiment)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for file in sorted(experiment.rglob("*")):
            if file.is_file() and file.name != "dataperf_speech_config.yaml":
                bundle.write(file, str(file.relative_to(experiment)))
        for name, data in (extra or {}).items():
            bundle.writestr(name, data)


def _patch_entry(path: Path, name: str, *, method: int | None = None, flags: int | None = None) -> None:
    """Rewrite an entry's compression method or flag bits in both its local and its central header."""
    data = bytearray(path.read_bytes())
    encoded = name.encode()
    for signature, flag_at, method_at, name_length_at, name_at in (
        (b"PK\x03\x04", 6, 8, 26, 30),
        (b"PK\x01\x02", 8, 10, 28, 46),
    ):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            (length,) = struct.unpack_from("<H", data, start + name_length_at)
            if bytes(data[start + name_at : start + name_at + length]) == encoded:
                if method is not None:
                    struct.pack_into("<H", data, start + method_at, method)
                if flags is not None:
                    struct.pack_into("<H", data, start + flag_at, flags)
            start += 4
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "kind, fragment",
    [
        ("encrypted", "encrypted"),
        ("deflate64", "compression method"),
        ("bomb", "expands"),
        ("garbage parquet", "would be refused by select and evaluate"),
        ("twice", "appears more than once"),
    ],
)
def test_hostile_archives_are_one_line_errors_and_leave_nothing(tmp_path: Path, kind: str, fragment: str):
    mirror = tmp_path / "mirror"
    (tmp_path / "others").mkdir()
    published_like_archives(mirror, tmp_path / "others")  # whole archives for id and pt, the hostile one for en
    archive = mirror / "dataperf_eng_data.zip"
    archive.unlink()
    if kind == "bomb":
        _zip_of_experiment(archive, tmp_path, extra={"train_embeddings/zeros.parquet": bytes(64 << 20)})
    elif kind == "garbage parquet":
        _zip_of_experiment(archive, tmp_path)
        with zipfile.ZipFile(archive) as bundle:
            entries = {name: bundle.read(name) for name in bundle.namelist()}
        with zipfile.ZipFile(archive, "w") as bundle:
            for name, data in entries.items():
                bundle.writestr(name, b"garbage" * 10 if name.endswith(".parquet") else data)
    elif kind == "twice":
        _zip_of_experiment(archive, tmp_path)
        with zipfile.ZipFile(archive, "a") as bundle, pytest.warns(UserWarning):
            bundle.writestr("eval.yaml", "targets: {}\n")
    else:
        _zip_of_experiment(archive, tmp_path)
        if kind == "encrypted":
            _patch_entry(archive, "eval.yaml", flags=0x1)
        else:
            _patch_entry(archive, "eval.yaml", method=9)
    workspace = tmp_path / "workspace"
    done = _download(workspace, mirror.as_uri())
    assert_clean_failure(done, "dataperf_eng_data.zip", fragment)
    data = workspace / "data"
    assert not (data / "dataperf_en_data").exists()
    assert not [path for path in data.iterdir() if path.name.startswith(".")], list(data.iterdir())


def test_a_planted_part_link_is_never_written_through(mirror: Path, tmp_path: Path):
    workspace = tmp_path / "workspace"
    data = workspace / "data"
    data.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    os.symlink(victim, data / ".dataperf_eng_data.zip.part")
    done = _download(workspace, mirror.as_uri())
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "precious\n"


def test_a_fifo_archive_on_a_file_mirror_does_not_block(tmp_path: Path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    os.mkfifo(mirror / "dataperf_eng_data.zip")
    done = _download(tmp_path / "workspace", mirror.as_uri())  # a blocking open would end in run_cli's hang guard
    assert_clean_failure(done, "dataperf_eng_data.zip", "not a regular file")


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (("--base_url", "nonsense"), "--base_url"),
        (("--base_url", "ftp://example.org/x"), "--base_url"),
        (("--timeout", "-1"), "--timeout"),
        (("--timeout", "0"), "--timeout"),
        (("--seed", "-1"), "--seed"),
        (("--max_mb", "0"), "--max_mb"),
    ],
)
def test_bad_flags_are_one_line_errors(tmp_path: Path, flags: tuple[str, ...], fragment: str):
    done = run_cli("-m", "selection.download", "--source", "dataperf", "--workspace", str(tmp_path / "w"), *flags)
    assert_clean_failure(done, fragment)
    if "--seed" in flags:
        assert_clean_failure(run_cli("-m", "selection.download", "--workspace", str(tmp_path / "w"), *flags), "--seed")
    assert not (tmp_path / "w").exists()


class _Hostile(http.server.BaseHTTPRequestHandler):
    """Answers every GET as its server's ``behaviour`` says: stall, stream forever, or garbage."""

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        behaviour = self.server.behaviour
        deadline = time.monotonic() + 60
        try:
            if behaviour == "garbage":
                self.wfile.write(b"THIS IS NOT HTTP\r\n\r\n")
                return
            self.send_response(200)
            if behaviour == "drip":
                self.send_header("Content-Length", "1000000")
            self.end_headers()
            while time.monotonic() < deadline:
                if behaviour == "drip":
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.5)
                else:
                    self.wfile.write(bytes(1 << 16))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hostile_server():
    servers = []

    def start(behaviour: str) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
        server.behaviour = behaviour
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/speech-selection"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "behaviour, extra, fragment",
    [
        ("drip", ("--timeout", "2"), "stalling"),
        ("endless", ("--max_mb", "3"), "more than --max_mb"),
        ("garbage", ("--timeout", "5"), "cannot be fetched"),
    ],
)
def test_hostile_mirrors_stop_within_their_bounds(hostile_server, tmp_path: Path, behaviour, extra, fragment):
    workspace = tmp_path / "workspace"
    done = _download(workspace, hostile_server(behaviour), *extra)  # the message says which bound stopped it
    assert_clean_failure(done, "dataperf_eng_data.zip", fragment)
    assert sorted(path.name for path in workspace.rglob("*")) == ["data"]


def _digest_file(path: Path, archives: Path, *, wrong: str | None = None) -> Path:
    import hashlib

    lines = []
    for archive in sorted(archives.glob("*.zip")):
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        lines.append(f"{'0' * 64 if archive.name == wrong else digest}  {archive.name}\n")
    path.write_text("".join(lines))
    return path


def test_archives_are_checked_against_the_given_digests(mirror: Path, tmp_path: Path):
    workspace = tmp_path / "workspace"
    bad = _digest_file(tmp_path / "bad.sha256", mirror, wrong="dataperf_por_data.zip")
    done = _download(workspace, mirror.as_uri(), "--sha256", str(bad))
    assert_clean_failure(done, "dataperf_por_data.zip", "SHA-256", "is not the expected", "nothing was unpacked")
    assert not [path for path in (workspace / "data").iterdir()], "nothing unpacked, no fetched archive kept"
    good = _digest_file(tmp_path / "good.sha256", mirror)
    done = _download(workspace, mirror.as_uri(), "--sha256", str(good))
    assert done.returncode == 0, done.stderr
    assert (workspace / "data" / "dataperf_archives.sha256").read_text() == good.read_text()
    (tmp_path / "short.sha256").write_text(good.read_text().splitlines()[0] + "\n")
    done = _download(tmp_path / "other", mirror.as_uri(), "--sha256", str(tmp_path / "short.sha256"))
    assert_clean_failure(done, "--sha256", "names no digest for")
    (tmp_path / "garbage.sha256").write_text("not a digest  dataperf_eng_data.zip\n")
    done = _download(tmp_path / "other", mirror.as_uri(), "--sha256", str(tmp_path / "garbage.sha256"))
    assert_clean_failure(done, "--sha256", "line 1")
    done = run_cli("-m", "selection.download", "--workspace", str(tmp_path / "other"), "--sha256", str(good))
    assert_clean_failure(done, "--sha256", "dataperf only")


def test_a_mirror_that_later_serves_other_bytes_is_refused(mirror: Path, tmp_path: Path):
    workspace = tmp_path / "workspace"
    assert _download(workspace, mirror.as_uri()).returncode == 0
    recorded = (workspace / "data" / "dataperf_archives.sha256").read_text()
    assert len(recorded.splitlines()) == 3
    with zipfile.ZipFile(mirror / "dataperf_ind_data.zip", "a") as bundle:
        bundle.comment = b"changed"  # still a whole zip with the same members: other bytes
    (workspace / "data" / "dataperf_ind_data.zip").unlink()
    done = _download(workspace, mirror.as_uri(), "--overwrite")
    assert_clean_failure(done, "dataperf_ind_data.zip", "is not the expected", "recorded")
    assert not (workspace / "data" / "dataperf_ind_data.zip").exists()
    assert (workspace / "data" / "dataperf_archives.sha256").read_text() == recorded
