"""The leaderboard and ``submit`` against hostile team folders and stored results: real symlinks, sparse
files, FIFOs, undecodable and spoofing names, a non-Dask server on 127.0.0.1. The board always finishes,
reads nothing outside ``--submissions``, and publishes a page and a CSV that are safe to open."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import unicodedata
from pathlib import Path

import pytest
import yaml

from tests.conftest import console_errors, headless_chromium, make_dataset, read_json, run_cli, write_config
from tests.test_bad_input import assert_clean_failure

pytestmark = [pytest.mark.filterwarnings("ignore"), pytest.mark.xdist_group("hostile-board")]
GOOD_TEAMS = ("good", "=HYPERLINK(1)", "+SUM(1)", "-2+3", "@cmd", '<img src=x onerror="document.title=1">')
SPOOFS = {
    "ali\u200bce": "invisible",
    "bidi\u202eevil": "invisible",
    "esc\x1b[31m": "invisible",
    "cr\rname": "invisible",
    unicodedata.normalize("NFD", "café"): "NFC",
    "café": "collides",
    "baseline-random": "baseline",
    "baseline:random": "baseline",
    "BASELINE": "baseline",
}


def _good_train(data: Path) -> dict:
    allowed = yaml.safe_load((data / "dataperf_en_data" / "allowed_training_set.yaml").read_text())
    return {"targets": {w: ids[:2] for w, ids in allowed["targets"].items()}, "nontargets": allowed["nontargets"][:3]}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    """One language's data and a submissions folder in which most entries are attacks."""
    root = tmp_path_factory.mktemp("hostile")
    make_dataset(root / "data" / "dataperf_en_data")
    write_config(root / "config.yaml")
    good = json.dumps(_good_train(root / "data"))
    teams = root / "submissions"
    for team in (*GOOD_TEAMS, *SPOOFS):
        (teams / team).mkdir(parents=True)
        (teams / team / "en_25_train.json").write_text(good)
    for name in ("en_025_train.json", "en_0025_train.json", "en_40_train.json"):
        (teams / "good" / name).write_text(good)
    undecodable = os.fsencode(teams) + b"/bad\xffname"
    os.mkdir(undecodable)
    with open(undecodable + b"/en_25_train.json", "w") as handle:
        handle.write(good)
    (teams / "linked").mkdir()
    os.symlink("/etc/passwd", teams / "linked" / "en_25_train.json")
    outside = root / "outside-team"
    outside.mkdir()
    (outside / "en_25_train.json").write_text(good)
    os.symlink(outside, teams / "outside")
    (teams / "sparse").mkdir()
    with open(teams / "sparse" / "en_25_train.json", "wb") as handle:
        handle.truncate(3 << 30)
    (teams / "piped").mkdir()
    os.mkfifo(teams / "piped" / "en_25_train.json")
    (teams / "longname").mkdir()
    (teams / "longname" / ("a" * 244 + "_train.json")).write_text(good)  # 255 bytes: legal
    (teams / "junk").mkdir()
    for number in range(30):
        (teams / "junk" / f"en_{number + 100}_train.json").write_text("")
    (teams / ("\x01" * 200)).mkdir()  # its escaped name (\x01 each) is 800 characters
    (teams / ("\x01" * 200) / "en_25_train.json").write_text(good)
    return root


def _board(root: Path, outdir: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The leaderboard run as an organiser would, with its peak memory (the largest process) in KB on stdout."""
    command = [
        sys.executable, "-m", "selection.leaderboard", "--submissions", str(root / "submissions"),
        "--data_dir", str(root / "data"), "--outdir", str(outdir), "--config_file", str(root / "config.yaml"),
        "--n_workers", "1", *(extra if "--baselines" in extra else (*extra, "--baselines", "")),
    ]  # fmt: skip
    wrapper = (
        "import resource, subprocess, sys\n"
        f"done = subprocess.run({command!r}, stdout=subprocess.DEVNULL, timeout={timeout})\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(done.returncode)\n"
    )
    return run_cli("-c", wrapper, cwd=root)


@pytest.fixture(scope="module")
def board(hostile: Path) -> Path:
    outdir = hostile / "board"
    done = _board(hostile, outdir, "--baselines", "random")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    peak_mb = int(done.stdout.split()[-1]) / 1024
    assert peak_mb < 1000, f"a 3 GiB sparse submission must not be read: peak {peak_mb:.0f} MB"
    return outdir


def _rows(board: Path) -> list[dict]:
    return read_json(board / "leaderboard.json")["rows"]


def _by_team(rows: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row["team"], []).append(row)
    return grouped


def test_good_teams_are_scored_and_every_attack_is_a_rejected_row(board: Path):
    teams = _by_team(_rows(board))
    for team in GOOD_TEAMS:
        scored = [row for row in teams[team] if row["status"] == "scored"]
        assert len(scored) == 1 and Path(scored[0]["file"]).name == "en_25_train.json", teams[team]
    reasons = {Path(row["file"]).name: row["reason"] for row in teams["good"] if row["status"] == "rejected"}
    assert "expected en_25_train.json" in reasons["en_025_train.json"]
    assert "expected en_25_train.json" in reasons["en_0025_train.json"]
    assert "no leaderboard for size 40" in reasons["en_40_train.json"]
    assert "symbolic link" in teams["linked"][0]["reason"] and teams["linked"][0]["status"] == "rejected"
    assert "symbolic link" in teams["outside"][0]["reason"] and teams["outside"][0]["status"] == "rejected"
    assert "larger than" in teams["sparse"][0]["reason"]
    assert "not a regular file" in teams["piped"][0]["reason"]
    assert "not valid UTF-8" in teams["bad\\xffname"][0]["reason"]


def test_one_board_per_configured_size_and_baselines_only_there(board: Path):
    rows = _rows(board)
    baselines = [row for row in rows if row["baseline"]]
    assert sorted(row["size"] for row in baselines) == [25, 60]
    assert {row["size"] for row in rows if row["status"] == "scored"} <= {25, 60}


def test_spoofing_names_are_refused_and_shown_escaped(board: Path):
    from selection.board.entries import visible

    shown = {row["team"]: row for row in _rows(board) if not row["baseline"]}
    words = {"invisible": "invisible or control", "NFC": "NFC", "collides": "collides", "baseline": "baseline"}
    for name, kind in SPOOFS.items():
        row = shown[visible(name)]
        assert row["status"] == "rejected" and words[kind] in row["reason"], (name, row)
        assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in row["team"] + row["reason"]), row
    assert visible("ali\u200bce") == "ali\\u200bce"
    for path in ("leaderboard.csv", "leaderboard.html", "leaderboard.json"):
        text = (board / path).read_text(encoding="utf-8")
        assert not any(unicodedata.category(c) in ("Cc", "Cf") and c not in "\n\r" for c in text), path


def test_nothing_outside_the_submissions_reaches_the_board(board: Path):
    for path in board.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".csv", ".html"):
            assert "root:x:0:0" not in path.read_text(encoding="utf-8", errors="replace"), path


def test_the_csv_reads_back_one_row_per_entry_with_formulas_neutralised(board: Path):
    rows = _rows(board)
    with open(board / "leaderboard.csv", newline="", encoding="utf-8") as handle:
        read = list(csv.DictReader(handle))
    assert len(read) == len(rows)
    for cells, row in zip(read, rows):
        for column, value in cells.items():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (column, value)
        team = row["team"]
        assert cells["team"] == ("'" + team if team.startswith(("=", "+", "-", "@")) else team)


def test_no_markup_runs_in_the_page(board: Path):
    page = (board / "leaderboard.html").read_text()
    assert "<img" not in page and "onerror=" not in page.replace("onerror=&quot;", "")
    assert "&lt;img src=x onerror=&quot;document.title=1&quot;&gt;" in page


def test_the_hostile_page_in_a_real_browser(board: Path):
    from selenium.webdriver.common.by import By

    with headless_chromium() as browser:
        browser.get((board / "leaderboard.html").as_uri())
        assert browser.title == "dataperf-speech leaderboard"
        assert browser.find_elements(By.TAG_NAME, "img") == []
        assert console_errors(browser) == []


def test_planted_forged_and_unreadable_stored_results_are_rescored(board: Path, tmp_path: Path, hostile: Path):
    outdir = tmp_path / "board"
    shutil.copytree(board, outdir, symlinks=True)
    results = outdir / "results"
    forged = read_json(results / "good" / "en_25_results.json")
    honest_score = forged["score"]
    forged.update(score="1.5", status='<img src=x onerror="document.title=2">', n_train="<b>9</b>")
    (results / "good" / "en_25_results.json").write_text(json.dumps(forged))
    sparse = results / "-2+3" / "en_25_results.json"
    sparse.unlink()
    with open(sparse, "wb") as handle:
        handle.truncate(2 << 30)
    fifo = results / "+SUM(1)" / "en_25_results.json"
    fifo.unlink()
    os.mkfifo(fifo)
    done = _board(hostile, outdir, "--baselines", "random", timeout=240)
    assert done.returncode == 0, done.stderr
    assert "3 to score" in done.stderr, done.stderr
    assert int(done.stdout.split()[-1]) / 1024 < 1000
    rows = {row["team"]: row for row in _rows(outdir) if row["status"] == "scored" and not row["baseline"]}
    assert rows["good"]["score"] == honest_score
    assert "<img" not in (outdir / "leaderboard.html").read_text()


def test_an_outdir_inside_the_submissions_is_refused(hostile: Path):
    done = run_cli(
        "-m", "selection.leaderboard", "--submissions", str(hostile / "submissions"),
        "--data_dir", str(hostile / "data"), "--outdir", str(hostile / "submissions" / "good" / "board"),
        "--config_file", str(hostile / "config.yaml"),
    )  # fmt: skip
    assert_clean_failure(done, "--outdir", "inside --submissions")
    assert not (hostile / "submissions" / "good" / "board").exists()


def test_results_are_never_written_through_a_link(hostile: Path, tmp_path: Path):
    outdir = tmp_path / "board"
    (outdir / "results").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, outdir / "results" / "good")
    done = _board(hostile, outdir)
    assert_clean_failure(done, "symbolic link")
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (("--n_workers", "1000"), "--n_workers"),
        (("--n_workers", "0"), "--n_workers"),
        (("--timeout", "-1"), "--timeout"),
        (("--scheduler", "foo://bar"), "--scheduler"),
        (("--sizes", ""), "--sizes"),
        (("--sizes", "25,x"), "--sizes"),
    ],
)
def test_bad_organiser_flags_are_one_line_errors(hostile: Path, tmp_path: Path, flags, fragment):
    done = run_cli(
        "-m", "selection.leaderboard", "--submissions", str(hostile / "submissions"),
        "--data_dir", str(hostile / "data"), "--outdir", str(tmp_path / "board"),
        "--config_file", str(hostile / "config.yaml"), *flags,
    )  # fmt: skip
    assert_clean_failure(done, fragment)
    assert not (tmp_path / "board").exists()


@pytest.mark.parametrize("answer", [b"", b"HTTP/1.0 200 OK\r\n\r\nhello"])
def test_a_server_that_is_not_dask_stops_the_board_within_the_timeout(hostile: Path, tmp_path: Path, answer: bytes):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []

    def accept() -> None:
        server.settimeout(60)
        try:
            while True:
                connection, _ = server.accept()
                held.append(connection)
                if answer:
                    connection.sendall(answer)
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    try:
        done = run_cli(
            "-m", "selection.leaderboard", "--submissions", str(hostile / "submissions"),
            "--data_dir", str(hostile / "data"), "--outdir", str(tmp_path / "board"),
            "--config_file", str(hostile / "config.yaml"),
            "--scheduler", f"tcp://127.0.0.1:{server.getsockname()[1]}", "--timeout", "1",
        )  # fmt: skip
    finally:
        server.close()
        for connection in held:
            connection.close()
    assert_clean_failure(done, "--scheduler", "did not answer as a Dask scheduler")  # its --timeout, not the server


# --- submit -----------------------------------------------------------------------------------------------


@pytest.fixture
def participant(tmp_path: Path) -> Path:
    make_dataset(tmp_path / "data" / "dataperf_en_data")
    write_config(tmp_path / "config.yaml")
    return tmp_path


def _submit(root: Path, *extra: str):
    return run_cli(
        "-m", "selection.submit", "--languages", "en", "--sizes", "25", "--baselines", "",
        "--data_dir", str(root / "data"), "--config_file", str(root / "config.yaml"), *extra, cwd=root,
    )  # fmt: skip


@pytest.mark.parametrize("flag", ["--languages", "--sizes"])
def test_submit_refuses_an_empty_list(participant: Path, flag: str):
    done = run_cli(
        "-m", "selection.submit", flag, ",", "--data_dir", str(participant / "data"),
        "--config_file", str(participant / "config.yaml"), "--outdir", str(participant / "out"), cwd=participant,
    )  # fmt: skip
    assert_clean_failure(done, flag, "names none")
    assert not (participant / "out").exists()


def test_submit_never_overwrites_a_hand_made_file_without_overwrite(participant: Path):
    out = participant / "out"
    out.mkdir()
    (out / "en_25_train.json").write_text('{"mine": true}\n')
    assert_clean_failure(_submit(participant, "--outdir", str(out)), "en_25_train.json", "not written by submit")
    assert (out / "en_25_train.json").read_text() == '{"mine": true}\n'
    assert not (out / "scorecard.json").exists()
    (out / "en_25_train.json").unlink()
    first = _submit(participant, "--outdir", str(out))
    assert first.returncode == 0, first.stderr
    again = _submit(participant, "--outdir", str(out))  # its own files: replaced without asking
    assert again.returncode == 0, again.stderr
    assert read_json(out / "scorecard.json")["complete"] is True
    (out / "en_25_train.json").write_text('{"edited": true}\n')
    assert_clean_failure(_submit(participant, "--outdir", str(out)), "not written by submit")
    forced = _submit(participant, "--outdir", str(out), "--overwrite")
    assert forced.returncode == 0, forced.stderr
    assert "edited" not in (out / "en_25_train.json").read_text()


def test_peak_memory_probe_counts_grandchildren():
    """The board tests' memory figure covers the Dask workers, which are the leaderboard's own children."""
    grandchild = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'x = bytearray(300 << 20)'])"
    wrapper = f"import resource, subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}]); "
    wrapper += "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    done = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, check=True)
    assert int(done.stdout) > 250 * 1024


def test_a_legal_long_name_and_a_folder_of_junk_are_one_teams_rows(board: Path):
    """A 255-byte file name, a name whose escaped form is 800 characters, and 30 junk files stop nothing."""
    teams = _by_team(_rows(board))
    (long_row,) = teams["longname"]
    assert long_row["status"] == "rejected" and "matches no leaderboard" in long_row["reason"]
    junk = teams["junk"]
    assert len(junk) == 11 and all(row["status"] == "rejected" for row in junk)
    assert sum("20 more *_train.json files" in row["reason"] for row in junk) == 1
    (escaped,) = teams["\\x01" * 200]
    assert escaped["status"] == "rejected"
    stored = [path.name for path in (board / "results").rglob("*")]
    assert max(len(name.encode()) for name in stored) <= 255


def test_a_score_forged_with_its_format_kept_is_rescored_and_changed_data_is_noticed(
    board: Path, tmp_path: Path, hostile: Path
):
    """A stored row edited to a well-formed better score, or to another recipe, is rescored from scratch; data
    rewritten in place with the same size and modification time is noticed (content, not stamps)."""
    outdir = tmp_path / "board"
    shutil.copytree(board, outdir, symlinks=True)
    stored = outdir / "results" / "good" / "en_25_results.json"
    forged = read_json(stored)
    honest = forged["score"]
    forged["score"] = abs(honest - 0.25)  # well-formed, and not what its predictions give
    stored.write_text(json.dumps(forged))
    other = outdir / "results" / "@cmd" / "en_25_results.json"
    row = read_json(other)
    row["provenance"]["recipe"] = {"classifier": "forged"}
    other.write_text(json.dumps(row))
    done = _board(hostile, outdir, "--baselines", "random", timeout=240)
    assert done.returncode == 0, done.stderr
    assert "2 to score" in done.stderr, done.stderr
    assert {r["team"]: r for r in _rows(outdir) if r["status"] == "scored"}["good"]["score"] == honest

    data = tmp_path / "data-copy"
    shutil.copytree(hostile / "data", data)
    from selection.leaderboard import eval_set_identity

    folder = data / "dataperf_en_data"
    before = eval_set_identity(folder)
    target = next((folder / "eval_embeddings").glob("*.parquet"))
    info = target.stat()
    content = bytearray(target.read_bytes())
    content[len(content) // 2] ^= 0xFF
    target.write_bytes(bytes(content))
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert target.stat().st_size == info.st_size and target.stat().st_mtime_ns == info.st_mtime_ns
    assert eval_set_identity(folder) != before


def test_two_boards_cannot_write_one_outdir_at_once(hostile: Path, tmp_path: Path):
    import fcntl

    outdir = tmp_path / "board"
    outdir.mkdir()
    with open(outdir / ".leaderboard.lock", "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        done = _board(hostile, outdir)
    assert_clean_failure(done, "another leaderboard run is writing this folder")
    assert not (outdir / "leaderboard.json").exists()
