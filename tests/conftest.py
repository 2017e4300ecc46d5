"""Shared fixtures: small datasets in the DataPerf speech layout, written with pyarrow."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
# XLA reads its flags once per process: importing selection.kws sets the trainer's code generator
# (selection.kws.codegen) before any test compiles, so an in-process training is the same program as the command's
import selection.kws  # noqa: E402, F401

# Test files by their measured time, longest first (pytest --durations=0, 2026-12-01): with one file per
# worker at a time (--dist loadfile), starting the long ones first keeps a worker from idling at the end.
LONGEST_FIRST = (
    "test_docker.py", "test_kws.py", "test_leaderboard.py", "test_sea.py", "test_explain.py", "test_spoken.py",
    "test_layout.py", "test_synthesize.py",
    "test_benchmark_script.py", "test_hostile_board.py", "test_algorithms.py", "test_reliability.py",
    "test_family.py", "test_environment.py", "test_notebook.py", "test_cache.py", "test_bench.py",
    "test_newcomer.py", "test_hostile_download.py", "test_bad_input.py", "test_fuzz.py", "test_dataset.py",
    "test_fast_predict.py", "test_api.py",
)  # fmt: skip


def pytest_collection_modifyitems(items: list) -> None:
    """Order the tests by file, longest files first; the tests of a file keep their order."""
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def write_parquet(path: Path, ids: list[str], vectors: np.ndarray, row_group_size: int | None = None) -> None:
    """A ``<word>.parquet`` with the benchmark's two columns."""
    table = pa.table(
        {
            "clip_id": pa.array(ids, pa.string()),
            "mswc_embedding_vector": pa.array([list(map(float, v)) for v in vectors], pa.list_(pa.float32())),
        }
    )
    pq.write_table(table, path, row_group_size=row_group_size)


def make_dataset(
    root: Path,
    *,
    seed: int = 0,
    targets=("yes", "go", "left"),
    pool_per_target=(14, 9, 6),
    eval_per_target=(8, 6, 5),
    nontarget_words=("cat", "dog", "tree", "house"),
    unknown_words=("moon", "star"),
    per_word=8,
    dim=1024,
) -> dict:
    """A small experiment: words are clusters of non-negative 1024-d vectors.

    Pool parquet files hold a few clips that are not listed (they must be ignored)
    and are written in small row groups; the nontarget list interleaves words so
    the loader's grouping rule matters.
    """
    rng = np.random.default_rng(seed)
    train_dir, eval_dir = root / "train_embeddings", root / "eval_embeddings"
    train_dir.mkdir(parents=True)
    eval_dir.mkdir()
    centers = {w: rng.gamma(1.0, 1.0, dim) for w in (*targets, *nontarget_words, *unknown_words)}

    def clips(word: str, n: int, tag: str) -> tuple[list[str], np.ndarray]:
        ids = [f"{word}/common_voice_en_{tag}{i:04d}.wav" for i in rng.permutation(n)]
        vectors = np.maximum(centers[word] + rng.normal(0, 1.2, (n, dim)), 0).astype(np.float32)
        return ids, vectors

    allowed = {"targets": {}, "nontargets": []}
    evaluation = {"targets": {}, "nontargets": []}
    for word, n_pool, n_eval in zip(targets, pool_per_target, eval_per_target):
        ids, vectors = clips(word, n_pool + 2, "p")
        write_parquet(train_dir / f"{word}.parquet", ids, vectors, row_group_size=4)
        listed = ids[:n_pool]
        allowed["targets"][word] = sorted(listed, reverse=True)
        ids, vectors = clips(word, n_eval, "e")
        write_parquet(eval_dir / f"{word}.parquet", ids, vectors)
        evaluation["targets"][word] = ids
    pool_nontargets = {}
    for word in nontarget_words:
        ids, vectors = clips(word, per_word, "p")
        write_parquet(train_dir / f"{word}.parquet", ids, vectors, row_group_size=3)
        pool_nontargets[word] = list(reversed(ids))
        ids, vectors = clips(word, per_word, "e")
        write_parquet(eval_dir / f"{word}.parquet", ids, vectors)
        evaluation["nontargets"].extend(ids)
    for word in unknown_words:
        ids, vectors = clips(word, per_word, "e")
        write_parquet(eval_dir / f"{word}.parquet", ids, vectors)
        evaluation["nontargets"].extend(ids)
    for i in range(per_word):
        for word in nontarget_words:
            allowed["nontargets"].append(pool_nontargets[word][i])
    (root / "allowed_training_set.yaml").write_text(yaml.safe_dump(allowed, sort_keys=False))
    (root / "eval.yaml").write_text(yaml.safe_dump(evaluation, sort_keys=False))
    write_config(root / "dataperf_speech_config.yaml")
    return {"allowed": allowed, "eval": evaluation}


def write_config(path: Path, **overrides) -> Path:
    config = {
        "train_set_size_limit": 20,
        "selection_algorithm_module": "selection.implementations.random_selection",
        "selection_algorithm_class": "RandomSelection",
        "selection_random_seed": 3,
        "eval_random_seeds": [5, 69, 98],
        "metric": "macro_f1",
    }
    config.update(overrides)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory) -> Path:
    """Every command the tests run caches into a temp folder, never into the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("cache")
    os.environ["DATAPERF_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A fresh small experiment in a temp folder (the folder is returned)."""
    make_dataset(tmp_path)
    return tmp_path


def let_files_settle() -> None:
    """Wait out the cache's one-second rule: files changed (ctime) within the last second are not cached."""
    time.sleep(1.05)


@pytest.fixture
def selected(dataset: Path) -> Path:
    """A small experiment with the train.json ``select`` writes for its config (made in-process, through the API)."""
    from selection import load_experiment

    experiment = load_experiment(dataset, config=dataset / "dataperf_speech_config.yaml", with_eval=False)
    experiment.write(experiment.select(), dataset / "train.json")
    return dataset


@pytest.fixture
def settled(selected: Path) -> Path:
    """``selected``, its files old enough for ``evaluate``'s cache to keep them (see :func:`let_files_settle`)."""
    let_files_settle()
    return selected


_warm: list = []


def run_cli(
    *args: str, cwd: Path | None = None, env: dict | None = None, fresh: bool = False
) -> subprocess.CompletedProcess:
    """Run a harness command as a user would, in its own process, with the repo importable.

    The process is forked from a warm interpreter (:mod:`tests.warm_process`: the command runs as
    it is, without paying numpy's, pyarrow's and scikit-learn's imports again) unless ``fresh``, or
    the environment changes what an interpreter reads when it starts, or
    ``DATAPERF_TEST_FRESH_PROCESSES=1``: then it is a new interpreter.
    """
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    if not fresh and os.environ.get("DATAPERF_TEST_FRESH_PROCESSES") != "1":
        from tests.warm_process import WarmInterpreter

        if not _warm:
            _warm.append(WarmInterpreter(str(REPO)))
        if _warm[0].usable_for(environment):
            return _warm[0].run(list(args), cwd=str(cwd or REPO), env=environment, timeout=300)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd or REPO, env=environment, capture_output=True, text=True, timeout=300
    )


def quick_start_workspace(root: Path) -> Path:
    """``root/workspace`` as the quick start leaves it (every language, small scale), with the shipped config."""
    done = run_cli("-m", "selection.download", "--workspace", str(root / "workspace"), "--scale", "0.04", cwd=root)
    assert done.returncode == 0, done.stderr
    shutil.copy(REPO / "workspace" / "dataperf_speech_config.yaml", root / "workspace")
    return root / "workspace"


def evaluate_results(dataset: Path, *extra: str) -> dict:
    """``evaluate`` on ``dataset``'s train.json: its results (without the timing) and its stderr."""
    done = run_cli(*eval_args(dataset, None, None, *extra))
    assert done.returncode == 0, done.stderr
    results = read_json(dataset / "results.json")
    results.pop("seconds")
    return {"results": results, "stderr": done.stderr}


def select_args(root: Path, config: Path | None = None, *extra: str) -> list[str]:
    return [
        "-m",
        "selection.main",
        "--allowed_training_set",
        str(root / "allowed_training_set.yaml"),
        "--train_embeddings_dir",
        str(root / "train_embeddings"),
        "--outdir",
        str(root),
        "--config_file",
        str(config or root / "dataperf_speech_config.yaml"),
        *extra,
    ]


def eval_args(root: Path, config: Path | None = None, train_file: Path | None = None, *extra: str) -> list[str]:
    return [
        str(REPO / "eval.py"),
        "--eval_embeddings_dir",
        str(root / "eval_embeddings"),
        "--train_embeddings_dir",
        str(root / "train_embeddings"),
        "--allowed_training_set",
        str(root / "allowed_training_set.yaml"),
        "--eval_file",
        str(root / "eval.yaml"),
        "--train_file",
        str(train_file or root / "train.json"),
        "--config_file",
        str(config or root / "dataperf_speech_config.yaml"),
        *extra,
    ]


def read_json(path: Path):
    return json.loads(path.read_text())


def published_like_archives(mirror: Path, tmp_path: Path) -> None:
    """Archives laid out like the published ones: en's experiment at its top, id's and pt's inside a folder."""
    mirror.mkdir()
    for language, name, nested in (("en", "eng", False), ("id", "ind", True), ("pt", "por", True)):
        experiment = tmp_path / f"made-{language}"
        make_dataset(experiment, seed=len(language) + ord(language[0]))
        (experiment / "dataperf_speech_config.yaml").unlink()
        with zipfile.ZipFile(mirror / f"dataperf_{name}_data.zip", "w") as bundle:
            for path in sorted(experiment.rglob("*")):
                if path.is_file():
                    inside = path.relative_to(experiment)
                    bundle.write(path, f"dataperf_{language}_data/{inside}" if nested else str(inside))


@contextlib.contextmanager
def headless_chromium(*arguments: str):
    """A headless Chromium driven by selenium, logging the browser console; skips when it is missing."""
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip(
            "chromium and chromium-driver are missing (apt-get install chromium chromium-driver; bash .ci/run does)"
        )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", *arguments):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield browser
    finally:
        browser.quit()


def console_errors(browser) -> list:
    """The browser console's SEVERE entries so far."""
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
