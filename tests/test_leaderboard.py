"""The organisers' leaderboard: a real local Dask cluster, a scheduler and workers started separately,
a worker killed mid-board, bad submissions as rows, resuming, and the page in a real browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, console_errors, headless_chromium, quick_start_workspace, read_json, run_cli
from tests.test_bad_input import assert_clean_failure

pytestmark = [pytest.mark.filterwarnings("ignore"), pytest.mark.xdist_group("leaderboard")]
LEADERBOARD = ("-m", "selection.leaderboard")


@pytest.fixture(scope="module")
def organiser(tmp_path_factory) -> Path:
    """Hidden data for three languages, and a folder of mixed good and bad submissions."""
    root = tmp_path_factory.mktemp("organiser")
    quick_start_workspace(root)
    from selection import load_experiment

    data, config = root / "workspace" / "data", root / "workspace" / "dataperf_speech_config.yaml"
    for language, size, algorithm, outdir in (
        ("en", 25, None, root / "workspace"), ("id", 60, None, root / "workspace"),
        ("en", 25, "random", root / "random"), ("en", 60, "random", root / "random"),
        ("pt", 25, "random", root / "random"),
    ):  # fmt: skip
        experiment = load_experiment(language=language, data_dir=data, config=config, with_eval=False)
        path = outdir / f"{language}_{size}_train.json"
        experiment.write(experiment.select(algorithm, size), path, limit=size)
    teams = root / "submissions"
    (teams / "coverage").mkdir(parents=True)
    for name in ("en_25_train.json", "id_60_train.json"):
        shutil.copy(root / "workspace" / name, teams / "coverage" / name)
    (teams / "random-team").mkdir()
    for name in ("en_25_train.json", "en_60_train.json", "pt_25_train.json"):
        shutil.copy(root / "random" / name, teams / "random-team" / name)
    (teams / "tied").mkdir()
    shutil.copy(root / "workspace" / "en_25_train.json", teams / "tied" / "en_25_train.json")
    bad = teams / "bad"
    bad.mkdir()
    good = json.loads((root / "workspace" / "en_25_train.json").read_text())
    evaluation = yaml.safe_load((root / "workspace" / "data" / "dataperf_en_data" / "eval.yaml").read_text())
    (bad / "en_25_train.json").write_text("{not json")
    (bad / "pt_60_train.json").write_text(json.dumps({**good, "nontargets": ["cat/not_in_pool.wav"]}))
    (bad / "id_25_train.json").write_text(json.dumps({"targets": {}, "nontargets": evaluation["nontargets"][:1]}))
    shutil.copy(root / "random" / "en_60_train.json", bad / "en_60_train.json")
    os.rename(bad / "en_60_train.json", bad / "pt_25_train.json")  # en clips under pt: unknown target words
    moved = dict(good)
    first_word, second_word = list(good["targets"])[:2]
    moved["targets"] = {**good["targets"], first_word: good["targets"][first_word] + good["targets"][second_word][:1]}
    (bad / "id_60_train.json").write_text(json.dumps(moved))
    over = root / "random" / "en_60_train.json"
    (teams / "over").mkdir()
    shutil.copy(over, teams / "over" / "en_25_train.json")  # 60 clips on the 25-clip leaderboard
    (bad / "english_25_train.json").write_text("{}")
    (bad / "fr_25_train.json").write_text("{}")
    (bad / "en_99_train.json").mkdir()
    (bad / "notes.txt").write_text("not a submission\n")
    os.symlink(bad / "gone.json", bad / "pt_60x_train.json")
    return root


def _run_board(organiser: Path, outdir: Path, *extra: str, env: dict | None = None):
    if "--baselines" not in extra:  # the default runs the CV baseline on every board: minutes the tests do not need
        extra = (*extra, "--baselines", "")
    return run_cli(
        *LEADERBOARD,
        "--submissions", str(organiser / "submissions"),
        "--data_dir", str(organiser / "workspace" / "data"),
        "--outdir", str(outdir),
        "--config_file", str(organiser / "workspace" / "dataperf_speech_config.yaml"),
        *extra,
        cwd=organiser,
        env=env,
    )  # fmt: skip


def _eval_py(organiser: Path, row: dict):
    return run_cli(
        str(REPO / "eval.py"),
        "--language", row["language"],
        "--train_size", str(row["size"]),
        "--train_file", str(organiser / "submissions" / row["file"]),
        "--config_file", str(organiser / "workspace" / "dataperf_speech_config.yaml"),
        "--results_file", str(organiser / "check" / "results.json"),
        "--cache_dir", "off",
        cwd=organiser,
    )  # fmt: skip


@pytest.fixture(scope="module")
def local_board(organiser: Path) -> Path:
    outdir = organiser / "board"
    done = _run_board(organiser, outdir, "--n_workers", "2", "--baselines", "random")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    # each worker reads each language's data at most once, however many submissions it scores
    (loads,) = [line for line in done.stderr.splitlines() if line.startswith("data sets loaded per worker:")]
    assert all(1 <= int(count) <= 3 for count in loads.split(":")[1].split(","))
    return outdir


def _rows(board: Path) -> list[dict]:
    return read_json(board / "leaderboard.json")["rows"]


def test_every_row_equals_eval_py(organiser: Path, local_board: Path):
    rows = _rows(local_board)
    teams = [row for row in rows if not row["baseline"]]
    files = {Path(row["file"]).name for row in teams if row["team"] == "bad"}
    assert files == {
        "en_25_train.json", "pt_60_train.json", "id_25_train.json", "pt_25_train.json", "id_60_train.json",
        "english_25_train.json", "fr_25_train.json", "en_99_train.json", "pt_60x_train.json",
    }  # fmt: skip
    assert sum(row["status"] == "scored" for row in teams) == 6
    from selection import load_experiment
    from selection.inputs.errors import BadInputError

    config = organiser / "workspace" / "dataperf_speech_config.yaml"
    checked_by_eval_py = set()
    for row in teams:
        board = (row["language"], row["size"])
        if row["status"] in ("scored", "rejected") and board[0] in ("en", "id", "pt") and board[1] in (25, 60):
            data = organiser / "workspace" / "data"
            experiment = load_experiment(language=row["language"], data_dir=data, config=config, cache_dir="off")
        if row["status"] == "scored":
            if "scored" not in checked_by_eval_py:  # eval.py for one row of each kind; the API (held equal to it)
                checked_by_eval_py.add("scored")
                done = _eval_py(organiser, row)
                assert done.returncode == 0, done.stderr
                results = read_json(organiser / "check" / "results.json")
            else:
                results = experiment.score(organiser / "submissions" / row["file"], limit=row["size"])
            assert abs(results["macro_f1"] - row["macro_f1"]) < 1e-9
            assert abs(results["balanced_accuracy"] - row["balanced_accuracy"]) < 1e-9
            stored = read_json(local_board / "results" / row["team"] / f"{row['language']}_{row['size']}_results.json")
            assert stored["per_class"] == results["per_class"] and stored["score"] == row["score"]
        elif (
            board[0] in ("en", "id", "pt")
            and board[1] in (25, 60)
            and (organiser / "submissions" / row["file"]).is_file()
        ):
            assert row["status"] == "rejected"
            if "rejected" not in checked_by_eval_py:
                checked_by_eval_py.add("rejected")
                done = _eval_py(organiser, row)
                assert_clean_failure(done)
                line = done.stderr.strip().splitlines()[-1]
            else:
                with pytest.raises(BadInputError) as raised:
                    experiment.score(organiser / "submissions" / row["file"], limit=row["size"])
                line = f"error: {raised.value}"
            assert line.replace(f"{organiser / 'submissions'}/", "") == f"error: {row['reason']}"
        else:
            assert row["status"] == "rejected" and row["reason"]
    assert checked_by_eval_py == {"scored", "rejected"}


def test_ranking_ties_and_baselines(local_board: Path):
    rows = _rows(local_board)
    en25 = [row for row in rows if (row["language"], row["size"], row["status"]) == ("en", 25, "scored")]
    teams25 = [row for row in en25 if not row["baseline"]]
    assert [row["rank"] for row in teams25] == sorted(row["rank"] for row in teams25)
    coverage, tied = (next(row for row in en25 if row["team"] == team) for team in ("coverage", "tied"))
    assert coverage["score"] == tied["score"] and coverage["rank"] == tied["rank"] == 1
    assert coverage["same_file_as"] == "tied" and tied["same_file_as"] == "coverage"  # byte-identical files
    baseline = next(row for row in en25 if row["baseline"] == "random" and row["team"] == "baseline:random")
    assert baseline["rank"] is None and baseline["rank_low"] is None and baseline["ci_low"] is not None
    assert [row["rank"] for row in teams25] == [1 + sum(o["score"] > row["score"] for o in teams25) for row in teams25]
    for row in rows:  # nothing of the organiser's folders is published
        assert not str(row["file"]).startswith("/") and "/tmp" not in str(row["reason"])
    reasons = {Path(row["file"]).name: row["reason"] for row in rows if row["team"] == "bad"}
    assert "matches no leaderboard" in reasons["english_25_train.json"]
    assert "no leaderboard for language 'fr'" in reasons["fr_25_train.json"]
    assert "is a folder" in reasons["en_99_train.json"]
    over = next(row for row in rows if row["team"] == "over")
    assert over["status"] == "rejected" and "60 IDs selected; expected at most 25" in over["reason"]
    csv = (local_board / "leaderboard.csv").read_text().splitlines()
    assert csv[0].startswith("team,language,size,status,reason,score") and len(csv) == len(rows) + 1


def test_a_rerun_scores_only_what_changed(organiser: Path, local_board: Path, tmp_path: Path):
    outdir = tmp_path / "board"
    shutil.copytree(local_board, outdir)
    before = _rows(outdir)
    again = _run_board(organiser, outdir, "--n_workers", "1", "--baselines", "random")
    assert again.returncode == 0 and "0 to score" in again.stderr, again.stderr
    assert _rows(outdir) == before
    changed = organiser / "submissions" / "tied" / "en_25_train.json"
    original = changed.read_bytes()
    try:
        shutil.copy(organiser / "random" / "en_25_train.json", changed)
        third = _run_board(organiser, outdir, "--n_workers", "1", "--baselines", "random")
        assert third.returncode == 0 and "1 to score" in third.stderr, third.stderr
        by_team = {(row["team"], row["language"], row["size"]): row for row in _rows(outdir)}
        assert by_team[("tied", "en", 25)]["score"] == by_team[("random-team", "en", 25)]["score"]
    finally:
        changed.write_bytes(original)


def test_ctrl_c_keeps_every_finished_result(organiser: Path, tmp_path: Path):
    outdir = tmp_path / "board"
    process = subprocess.Popen(
        [sys.executable, *LEADERBOARD, "--submissions", str(organiser / "submissions"),
         "--data_dir", str(organiser / "workspace" / "data"), "--outdir", str(outdir),
         "--config_file", str(organiser / "workspace" / "dataperf_speech_config.yaml"), "--n_workers", "1",
         "--baselines", ""],
        cwd=organiser, env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(outdir.glob("results/*/*.json"))) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]  # says what was kept, not "no output was written"
    assert last.startswith("interrupted:") and "were kept in" in last and "no output was written" not in last, last
    finished = list(outdir.glob("results/*/*.json"))
    assert len(finished) >= 3
    for path in finished:
        assert json.loads(path.read_text())["status"] in ("scored", "rejected")
    resumed = _run_board(organiser, outdir, "--n_workers", "1")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(finished)} already scored (kept)" in resumed.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# A cluster machine has the requirements installed and not the harness. The test venv has the harness installed
# (editable, as the quick start installs it), so the cluster's processes, and the worker processes their nannies
# spawn, start with a sitecustomize that removes the editable install's finder (it runs after the .pth files).
_WITHOUT_THE_HARNESS = """import sys
sys.meta_path[:] = [finder for finder in sys.meta_path if "__editable__" not in getattr(finder, "__module__", "")]
sys.path_hooks[:] = [hook for hook in sys.path_hooks if "__editable__" not in getattr(hook, "__module__", "")]
sys.path_importer_cache.clear()
"""


def _cluster_environment(home: Path) -> dict:
    hider = home / "without-the-harness"
    hider.mkdir(exist_ok=True)
    (hider / "sitecustomize.py").write_text(_WITHOUT_THE_HARNESS)
    return {**{key: value for key, value in os.environ.items() if key != "PYTHONPATH"}, "PYTHONPATH": str(hider)}


def _dask(*args: str, cwd: Path) -> subprocess.Popen:
    """``dask ...`` as an organiser starts it on a cluster machine: outside any checkout, the harness not installed."""
    dask = str(Path(sys.executable).parent / "dask")
    return subprocess.Popen(
        [dask, *args], cwd=cwd, env=_cluster_environment(cwd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


@pytest.fixture
def cluster(tmp_path_factory):
    """A real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, started as the organisers' page
    says: in a folder outside any checkout, with only the requirements importable, not the harness."""
    home = tmp_path_factory.mktemp("cluster-home")
    probe = subprocess.run([sys.executable, "-c", "import selection"], cwd=home, env=_cluster_environment(home),
                           capture_output=True)  # fmt: skip
    assert probe.returncode != 0, "the harness must not be importable where the cluster runs"
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [_dask("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard", cwd=home)]
    time.sleep(1.0)
    workers = [
        _dask(
            "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1", cwd=home
        )
        for _ in range(2)
    ]
    processes += workers
    yield address, workers
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)


def _by_key(rows: list[dict]) -> dict:
    return {(row["team"], row["language"], row["size"], Path(row["file"]).name): row for row in rows}


def _scores(rows: list[dict]) -> dict:
    return {(row["team"], row["language"], row["size"], Path(row["file"]).name): row.get("score") for row in rows}


def test_on_a_separately_started_scheduler(organiser: Path, local_board: Path, cluster, tmp_path: Path):
    address, _ = cluster
    done = _run_board(organiser, tmp_path / "board", "--scheduler", address, "--baselines", "random")
    assert done.returncode == 0, done.stderr
    assert _scores(_rows(tmp_path / "board")) == _scores(_rows(local_board))
    assert all(row["status"] != "failed" for row in _rows(tmp_path / "board"))
    fields = ("ci_low", "ci_high", "rank_low", "rank_high", "tie_group")
    uncertainty = {key: tuple(row.get(field) for field in fields) for key, row in _by_key(_rows(local_board)).items()}
    again = {key: tuple(row.get(field) for field in fields) for key, row in _by_key(_rows(tmp_path / "board")).items()}
    assert again == uncertainty  # the bootstrap does not depend on the cluster or its worker count


def test_a_worker_killed_mid_board(organiser: Path, local_board: Path, cluster, tmp_path: Path):
    address, workers = cluster
    outdir = tmp_path / "board"
    process = subprocess.Popen(
        [sys.executable, *LEADERBOARD, "--submissions", str(organiser / "submissions"),
         "--data_dir", str(organiser / "workspace" / "data"), "--outdir", str(outdir),
         "--config_file", str(organiser / "workspace" / "dataperf_speech_config.yaml"), "--scheduler", address,
         "--baselines", "random"],
        cwd=organiser, env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(outdir.glob("results/*/*.json")):
        time.sleep(0.05)
    os.killpg(workers[0].pid, signal.SIGKILL)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    rows = _rows(outdir)
    expected = _scores(_rows(local_board))
    assert set(_scores(rows)) == set(expected)  # no row silently missing
    for row in rows:
        key = (row["team"], row["language"], row["size"], Path(row["file"]).name)
        if row["status"] == "failed":
            assert row["reason"]
        else:
            assert row.get("score") == expected[key]


def test_an_unreachable_scheduler_is_the_organisers_error(organiser: Path, tmp_path: Path):
    done = _run_board(organiser, tmp_path / "board", "--scheduler", f"tcp://127.0.0.1:{_free_port()}", "--timeout", "1")
    assert_clean_failure(done, "--scheduler", "did not answer")
    assert not (tmp_path / "board").exists()


def test_missing_data_is_the_organisers_error(organiser: Path, tmp_path: Path):
    done = run_cli(
        *LEADERBOARD, "--submissions", str(organiser / "submissions"), "--data_dir", str(tmp_path / "nothing"),
        "--outdir", str(tmp_path / "board"),
        "--config_file", str(organiser / "workspace" / "dataperf_speech_config.yaml"),
    )  # fmt: skip
    assert_clean_failure(done, "--data_dir", "no language's experiment")


def test_the_page_in_a_real_browser(local_board: Path, tmp_path: Path):
    from selenium.webdriver.common.by import By

    with headless_chromium("--window-size=1200,2400") as browser:
        browser.get((local_board / "leaderboard.html").as_uri())
        assert browser.title == "dataperf-speech leaderboard"
        assert console_errors(browser) == []
        rows = _rows(local_board)
        for section in browser.find_elements(By.CSS_SELECTOR, "section.board"):
            language, size = section.get_attribute("data-language"), int(section.get_attribute("data-size"))
            shown = [
                (
                    int(tr.find_element(By.CSS_SELECTOR, "td.rank").text or 0) or None,  # baselines: no rank
                    tr.find_element(By.CSS_SELECTOR, "td.score").text,
                )
                for tr in section.find_elements(By.CSS_SELECTOR, "tbody tr")
            ]
            expected = [
                (row["rank"], f"{row['score']:.4f}")
                for row in rows
                if (row["language"], row["size"], row["status"]) == (language, size, "scored")
            ]
            assert shown == expected
        problems = browser.find_elements(By.CSS_SELECTOR, "#problems tbody tr")
        assert len(problems) == sum(row["status"] != "scored" for row in rows)
        browser.save_screenshot(str(tmp_path / "leaderboard.png"))
        shutil.copy(tmp_path / "leaderboard.png", local_board / "leaderboard-screenshot.png")


# --- uncertainty and provenance -------------------------------------------------------------------


def test_every_score_has_an_interval_a_rank_range_and_a_tie_group(local_board: Path):
    import hashlib

    import numpy as np

    board = read_json(local_board / "leaderboard.json")
    assert board["provenance"]["bootstrap"]["resamples"] == 1000 and board["provenance"]["recipe"]["scikit_learn"]
    scored = [row for row in board["rows"] if row["status"] == "scored"]
    for row in scored:
        assert row["ci_low"] <= row["score"] <= row["ci_high"], row
        if not row["baseline"]:
            assert 1 <= row["rank_low"] <= row["rank_high"] and isinstance(row["tie_group"], int)
        folder = ".baselines/random" if row["baseline"] else row["team"]
        stored = read_json(local_board / "results" / folder / f"{row['language']}_{row['size']}_results.json")
        predictions = np.load(local_board / "results" / folder / f"{row['language']}_{row['size']}_predictions.npy")
        assert predictions.dtype == np.int8 and predictions.shape == (len(stored["per_seed"]), stored["n_eval"])
        assert stored["provenance"]["harness_version"]
        assert stored["provenance"]["eval_set"] == board["provenance"]["eval_sets"][row["language"]]
        if not row["baseline"]:
            digest = hashlib.sha256((local_board.parent / "submissions" / row["file"]).read_bytes()).hexdigest()
            assert stored["provenance"]["train_file_sha256"] == digest
    en25 = {row["team"]: row for row in scored if (row["language"], row["size"]) == ("en", 25)}
    same = en25["coverage"], en25["tied"]  # two copies of one file
    assert same[0]["tie_group"] == same[1]["tie_group"]
    assert (same[0]["ci_low"], same[0]["ci_high"]) == (same[1]["ci_low"], same[1]["ci_high"])
    worse = en25["random-team"]
    assert worse["score"] < same[0]["score"] - 0.1, (worse["score"], same[0]["score"])
    assert worse["tie_group"] > same[0]["tie_group"] and worse["rank_low"] > same[0]["rank_high"]
    with open(local_board / "leaderboard.csv", newline="") as handle:
        import csv

        read = {(cells["team"], cells["language"], cells["size"]): cells for cells in csv.DictReader(handle)}
    cells = read[("coverage", "en", "25")]
    assert float(cells["ci_low"]) == same[0]["ci_low"] and cells["tie_group"] == str(same[0]["tie_group"])
    page = (local_board / "leaderboard.html").read_text()
    assert 'class="interval"' in page and "tie group" in page and "<path" in page


def test_a_changed_config_rescores_everything(organiser: Path, local_board: Path, tmp_path: Path):
    outdir = tmp_path / "board"
    shutil.copytree(local_board, outdir)
    config = yaml.safe_load((organiser / "workspace" / "dataperf_speech_config.yaml").read_text())
    config["eval_random_seeds"] = config["eval_random_seeds"][:3]
    (tmp_path / "three-seeds.yaml").write_text(yaml.safe_dump(config))
    done = run_cli(
        *LEADERBOARD, "--submissions", str(organiser / "submissions"),
        "--data_dir", str(organiser / "workspace" / "data"), "--outdir", str(outdir),
        "--config_file", str(tmp_path / "three-seeds.yaml"), "--n_workers", "1",
        "--bootstrap", "200", "--baselines", "", cwd=organiser,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "0 already scored (kept)" in done.stderr
    assert re.search(r"\b\d+ stored results are rescored", done.stderr), done.stderr
    rows = [row for row in _rows(outdir) if row["status"] == "scored"]
    assert rows and all(
        read_json(outdir / "leaderboard.json")["provenance"]["eval_random_seeds"] == config["eval_random_seeds"]
        for _ in rows
    )


def test_a_big_boards_worker_compiles_the_scoring_loops_while_it_loads(tmp_path, monkeypatch):
    """Small boards (the tests') never pay the compile; from BIG_BOARD_SUBMISSIONS each worker does, once."""
    from selection import leaderboard
    from selection.scoring import fast_predict
    from tests.conftest import make_dataset

    make_dataset(tmp_path)
    monkeypatch.setattr(leaderboard, "_LOADED", {})
    monkeypatch.setattr(fast_predict, "_coupled_by_libsvm", 0)
    leaderboard._experiment(str(tmp_path))
    assert fast_predict._coupled_by_libsvm == 0  # a small board: the loops start only after enough libsvm work
    monkeypatch.setattr(leaderboard, "_LOADED", {})
    experiment = leaderboard._experiment(str(tmp_path), big_board=True)
    assert fast_predict._coupled_by_libsvm >= fast_predict.COMPILE_AFTER_PAIRS
    assert experiment is leaderboard._experiment(str(tmp_path), big_board=True)  # loaded once


def _score_on_worker(folder: Path, train: Path, size: int, big_board: bool) -> dict:
    from selection import leaderboard
    from selection.inputs.load import load_config

    config = load_config(folder / "dataperf_speech_config.yaml")
    scoring = {"metric": config["metric"], "eval_random_seeds": config["eval_random_seeds"]}
    submission = leaderboard.Submission("team", str(train), "", size)
    return leaderboard.score_submission(submission, str(folder), scoring, "key", 1, big_board)


def test_a_big_boards_worker_takes_the_picks_from_its_pool_with_the_same_results(tmp_path, monkeypatch):
    """A big board reads the pool once; every row (predictions included) is the small board's, which reads picks."""
    import numpy as np

    from selection import leaderboard
    from selection.scoring import fast_predict
    from tests.conftest import make_dataset

    dataset = make_dataset(tmp_path)
    monkeypatch.setattr(fast_predict, "compile_loops", lambda: False)  # the loops are another test's subject
    picks = {
        "targets": {word: ids[:3] for word, ids in dataset["allowed"]["targets"].items()},
        "nontargets": dataset["allowed"]["nontargets"][:6],
    }
    train = tmp_path / "en_20_train.json"
    train.write_text(json.dumps(picks))
    monkeypatch.setattr(leaderboard, "_LOADED", {})
    small = _score_on_worker(tmp_path, train, 20, big_board=False)
    assert leaderboard._LOADED[str(tmp_path)]._pool is None  # a small board reads only each file's picks
    monkeypatch.setattr(leaderboard, "_LOADED", {})
    big = _score_on_worker(tmp_path, train, 20, big_board=True)
    assert leaderboard._LOADED[str(tmp_path)]._pool is not None
    assert small["status"] == big["status"] == "scored"
    assert np.array_equal(small.pop(leaderboard.PREDICTIONS), big.pop(leaderboard.PREDICTIONS))
    small.pop("seconds"), big.pop("seconds")
    assert small == big


def test_a_big_board_whose_pool_has_a_fault_rejects_only_the_files_that_pick_it(tmp_path, monkeypatch):
    """A pool clip missing from its parquet file: the pool stays unread and each file is checked as eval.py would."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from selection import leaderboard
    from selection.scoring import fast_predict
    from tests.conftest import make_dataset

    dataset = make_dataset(tmp_path)
    monkeypatch.setattr(fast_predict, "compile_loops", lambda: False)
    missing = dataset["allowed"]["nontargets"][0]
    parquet = tmp_path / "train_embeddings" / f"{missing.split('/')[0]}.parquet"
    table = pq.read_table(parquet)
    pq.write_table(table.filter(pc.not_equal(table["clip_id"], missing)), parquet)
    targets = {word: ids[:3] for word, ids in dataset["allowed"]["targets"].items()}
    avoids, picks_it = tmp_path / "avoids.json", tmp_path / "picks_it.json"
    avoids.write_text(json.dumps({"targets": targets, "nontargets": dataset["allowed"]["nontargets"][1:7]}))
    picks_it.write_text(json.dumps({"targets": targets, "nontargets": dataset["allowed"]["nontargets"][:6]}))
    rows = {}
    for big_board in (False, True):
        monkeypatch.setattr(leaderboard, "_LOADED", {})
        rows[big_board] = [_score_on_worker(tmp_path, train, 20, big_board) for train in (avoids, picks_it)]
        assert leaderboard._LOADED[str(tmp_path)]._pool is None
    assert [row["status"] for row in rows[True]] == ["scored", "rejected"]
    assert rows[True][0]["score"] == rows[False][0]["score"]
    assert rows[True][1]["reason"] == rows[False][1]["reason"] and missing in rows[True][1]["reason"]


def test_the_bootstraps_float32_counts_give_the_same_resampled_scores(monkeypatch):
    """float32 resample counts (for speed) are uint8's whole numbers, and give the same scores bit for bit."""
    import numpy as np

    from selection.board import uncertainty

    rng = np.random.default_rng(4)
    truth = rng.integers(0, 4, 3000)
    predictions = np.where(rng.random((3, 3000)) < 0.7, truth, rng.integers(0, 4, (3, 3000))).astype(np.int8)
    converted = uncertainty.resample_counts(3000, 200, board="en-25")
    monkeypatch.setattr(uncertainty, "FLOAT32_COUNTS_BYTES", converted.size * 4 - 1)
    counts = uncertainty.resample_counts(3000, 200, board="en-25")  # too big for float32: uint8, as before
    assert converted.dtype == np.float32 and counts.dtype == np.uint8 and np.array_equal(converted, counts)
    for metric in ("macro_f1", "balanced_accuracy"):
        expected = uncertainty.resampled_scores(truth, predictions, counts, n_classes=4, metric=metric)
        found = uncertainty.resampled_scores(truth, predictions, converted, n_classes=4, metric=metric)
        assert np.array_equal(expected, found)


def test_the_bootstraps_memory_is_linear_in_entries_and_resamples(monkeypatch):
    """Rank intervals for 2,000 entries at 300 resamples stay within a few MB (pairwise comparison took 1.2 GB),
    and give the ranks the pairwise definition gives; resampled scores are the same in chunks as in one go."""
    import tracemalloc

    import numpy as np

    from selection.board import uncertainty

    rng = np.random.default_rng(7)
    small = np.round(rng.random((40, 50)), 2)  # rounded: many ties
    pairwise = 1 + (small[None, :, :] > small[:, None, :]).sum(axis=1)
    assert np.array_equal(uncertainty._ranks(small), pairwise)

    resampled = rng.random((2000, 300))
    tracemalloc.start()
    figures = uncertainty.board_uncertainty(resampled.mean(axis=1), resampled)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(figures) == 2000 and peak < 40 << 20, peak

    truth = rng.integers(0, 3, 500)
    predictions = rng.integers(0, 3, (2, 500)).astype(np.int8)
    counts = uncertainty.resample_counts(500, 250, board="en-60")
    whole = uncertainty.resampled_scores(truth, predictions, counts, n_classes=3, metric="macro_f1")
    monkeypatch.setattr(uncertainty, "RESAMPLE_CHUNK", 64)
    chunked = uncertainty.resampled_scores(truth, predictions, counts, n_classes=3, metric="macro_f1")
    assert np.array_equal(whole, chunked)


def test_a_stored_predictions_header_claiming_a_huge_shape_is_refused_before_loading(tmp_path):
    """A .npy header claiming (10, 10**12) is read and refused without numpy allocating the claim."""
    import numpy as np

    from selection.leaderboard import _load_predictions

    good = tmp_path / "good.npy"
    np.save(good, np.zeros((3, 20), dtype=np.int8))
    assert _load_predictions(good, 20, 3).shape == (3, 20)
    forged = tmp_path / "forged.npy"
    data = good.read_bytes().replace(b"(3, 20)", b"(10, 1000000000000)")
    forged.write_bytes(data)
    assert _load_predictions(forged, 1000000000000, 3) is None
    assert _load_predictions(forged, 20, 3) is None
