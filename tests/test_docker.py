"""The container and MLCube path against a real Docker Engine: one image, three tasks, --network none.

The base image is a local stand-in for python:3.11-slim built from Debian packages
(docker/make-base-image.sh) and wheels are fetched into docker/wheels/, so the build needs no
container registry. Skipped, with the reason, only where no Docker Engine answers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, eval_args, read_json, run_cli, select_args

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("docker")]
BASE_IMAGE = "dataperf-base:bookworm"
IMAGE = "dataperf-speech:latest"
CALLER = (12345, 12345)


def _engine_reachable() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def image() -> str:
    if not _engine_reachable():
        pytest.skip("no Docker Engine reachable (docker info failed)")
    if (
        not shutil.which("mmdebstrap")
        and subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode
    ):
        pytest.skip("mmdebstrap is missing: it builds the base image (apt-get install mmdebstrap; bash .ci/run does)")
    subprocess.run(["bash", str(REPO / "docker" / "make-base-image.sh"), BASE_IMAGE], check=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "-r",
            str(REPO / "requirements.txt"),
            "-d",
            str(REPO / "docker" / "wheels"),
        ],
        check=True,
    )
    subprocess.run(
        ["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "-t", IMAGE, str(REPO)],
        check=True,
        capture_output=True,
    )
    return IMAGE


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("docker")
    workspace = root / "ws"
    done = run_cli("-m", "selection.download", "--workspace", str(workspace), "--scale", "0.04")
    assert done.returncode == 0, done.stderr
    shutil.copy(REPO / "workspace" / "dataperf_speech_config.yaml", workspace)
    shutil.rmtree(workspace / "data")
    _readable_by_container(root)
    native = root / "native"
    shutil.copytree(workspace, native)
    assert run_cli(*select_args(native)).returncode == 0
    assert run_cli(*eval_args(native)).returncode == 0
    return root


def _readable_by_container(root: Path) -> None:
    """Open ``root`` and everything under it to the container's unprivileged user (read only)."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _output_folder(parent: Path) -> Path:
    """``parent/out``, owned by the user the container runs as, so it can write there."""
    out = parent / "out"
    out.mkdir()
    os.chown(out, *CALLER)
    return out


def _docker_run(image: str, *args: str, mounts: dict[Path, str], user=CALLER, env: dict | None = None):
    command = ["docker", "run", "--rm", "--network", "none", "-u", f"{user[0]}:{user[1]}"]
    for host, inside in mounts.items():
        command += ["-v", f"{host}:{inside}"]
    # The same BLAS kernel as the native run: selections are byte-identical only under one kernel
    # (a container does not inherit the machine's OPENBLAS_* settings).
    forwarded = {key: value for key, value in os.environ.items() if key.startswith("OPENBLAS_")}
    for key, value in {**forwarded, **(env or {})}.items():
        command += ["-e", f"{key}={value}"]
    return subprocess.run([*command, image, *args], capture_output=True, text=True, timeout=600)


def _comparable(results: dict) -> dict:
    """A results document without what may differ in and out of the container: time, paths, the checkout's commit."""
    kept = {k: v for k, v in results.items() if k not in ("seconds", "train_file")}
    if "provenance" in kept:
        kept["provenance"] = {k: v for k, v in kept["provenance"].items() if k != "git_commit"}
    return kept


def test_container_select_then_evaluate_equals_native(image: str, experiment: Path, tmp_path: Path):
    out = _output_folder(tmp_path)
    data = {experiment / "ws": "/data:ro", out: "/out"}
    selected = _docker_run(
        image,
        "select",
        "--allowed_training_set=/data/allowed_training_set.yaml",
        "--train_embeddings_dir=/data/train_embeddings",
        "--config_file=/data/dataperf_speech_config.yaml",
        "--outdir=/out",
        mounts=data,
    )
    assert selected.returncode == 0, selected.stderr
    assert (out / "train.json").read_bytes() == (experiment / "native" / "train.json").read_bytes()
    assert (out / "train.json").stat().st_uid == CALLER[0]

    evaluated = _docker_run(
        image,
        "evaluate",
        "--eval_embeddings_dir=/data/eval_embeddings",
        "--train_embeddings_dir=/data/train_embeddings",
        "--allowed_training_set=/data/allowed_training_set.yaml",
        "--eval_file=/data/eval.yaml",
        "--train_file=/out/train.json",
        "--config_file=/data/dataperf_speech_config.yaml",
        "--results_file=/out/results.json",
        mounts=data,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    container = read_json(out / "results.json")
    native = read_json(experiment / "native" / "results.json")
    assert _comparable(container) == _comparable(native)
    assert (out / "results.json").stat().st_uid == CALLER[0]
    assert sorted(p.name for p in (experiment / "ws").iterdir()) == sorted(
        ["allowed_training_set.yaml", "eval.yaml", "train_embeddings", "eval_embeddings", "dataperf_speech_config.yaml",
         "pool_faults.json"]
    )  # fmt: skip


def test_unknown_task_prints_usage(image: str):
    done = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image, "train"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "unknown task 'train'" in done.stderr and "usage:" in done.stderr


def test_algorithm_that_reaches_for_the_network_fails_cleanly(image: str, experiment: Path, tmp_path: Path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "phone_home.py").write_text(
        "import socket\n"
        "from selection.selection import TrainingSetSelection\n\n"
        "class PhoneHome(TrainingSetSelection):\n"
        "    def select(self):\n"
        "        socket.create_connection(('192.0.2.1', 443), timeout=5)\n"
        "        return self.pool.to_training_set([0])\n"
    )
    (plugins / "config.yaml").write_text(
        "selection_algorithm_module: phone_home\nselection_algorithm_class: PhoneHome\n"
    )
    out = _output_folder(tmp_path)
    _readable_by_container(plugins)
    done = _docker_run(
        image,
        "select",
        "--allowed_training_set=/data/allowed_training_set.yaml",
        "--train_embeddings_dir=/data/train_embeddings",
        "--config_file=/plugins/config.yaml",
        "--plugin_dir=/plugins",
        "--outdir=/out",
        mounts={experiment / "ws": "/data:ro", plugins: "/plugins:ro", out: "/out"},
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "phone_home.PhoneHome.select(): raised OSError" in done.stderr
    assert list(out.iterdir()) == []


def test_mlcube_tasks_produce_the_native_files(image: str, experiment: Path, tmp_path: Path):
    workspace = tmp_path / "ws"
    shutil.copytree(experiment / "ws", workspace)
    mlcube = shutil.which("mlcube", path=str(Path(sys.executable).parent)) or "mlcube"
    # the native run's BLAS kernel inside the container too (MLCube's docker.env_args become `docker run -e`)
    forwarded = [f"-Pdocker.env_args.{key}={value}" for key, value in os.environ.items() if key.startswith("OPENBLAS_")]
    for task in ("select", "evaluate"):
        done = subprocess.run(
            [mlcube, "run", f"--mlcube={REPO}", f"--task={task}", "--platform=docker", f"--workspace={workspace}",
             *forwarded],
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Will run 'configure' phase" not in done.stdout + done.stderr  # the image is built once, not per task
    assert (workspace / "train.json").read_bytes() == (experiment / "native" / "train.json").read_bytes()
    assert _comparable(read_json(workspace / "results.json")) == _comparable(
        read_json(experiment / "native" / "results.json")
    )
    assert (workspace / "train.json").stat().st_uid == os.getuid()
    assert json.loads((workspace / "results.json").read_text())["n_train"] == 25


def test_own_algorithm_through_mlcube_plugins_folder(image: str, experiment: Path, tmp_path: Path):
    workspace = tmp_path / "ws"
    shutil.copytree(experiment / "ws", workspace)
    (workspace / "plugins").mkdir()
    (workspace / "plugins" / "first_and_last.py").write_text(
        "from selection.selection import TrainingSetSelection\n\n"
        "class FirstAndLast(TrainingSetSelection):\n"
        "    def select(self):\n"
        "        return self.pool.to_training_set([0, len(self.pool.ids) - 1])\n"
    )
    config = workspace / "dataperf_speech_config.yaml"
    config.write_text(
        config.read_text()
        .replace("selection.implementations.coverage_selection", "first_and_last")
        .replace("CleanCoverageSelection", "FirstAndLast")
    )
    mlcube = shutil.which("mlcube", path=str(Path(sys.executable).parent)) or "mlcube"
    done = subprocess.run(
        [mlcube, "run", f"--mlcube={REPO}", "--task=select", "--platform=docker", f"--workspace={workspace}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    selected = json.loads((workspace / "train.json").read_text())
    assert sum(map(len, selected["targets"].values())) + len(selected["nontargets"]) == 2


def _readme_block(marker: str) -> str:
    readme = (REPO / "docs" / "organisers.md").read_text()
    start = readme.index(f"<!-- {marker} -->")
    return readme[readme.index("```bash\n", start) + 8 : readme.index("```", readme.index("```bash\n", start) + 8)]


def test_readme_container_commands_run_as_written(image: str, experiment: Path, tmp_path: Path):
    """The organisers' page's docker commands, from a folder laid out as a clone after the quick start."""
    shutil.copytree(experiment / "native", tmp_path / "workspace")
    (tmp_path / "workspace" / "results.json").unlink()
    script = _readme_block("container-example")
    script = "\n".join(line for line in script.splitlines() if not line.startswith("docker build"))
    forwarded = " ".join(f"-e {key}={value}" for key, value in os.environ.items() if key.startswith("OPENBLAS_"))
    script = script.replace("docker run --rm", f"docker run --rm {forwarded}")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    native = read_json(experiment / "native" / "results.json")
    assert _comparable(read_json(tmp_path / "out" / "results.json")) == _comparable(native)
    assert (tmp_path / "workspace" / "train.json").read_bytes() == (experiment / "native" / "train.json").read_bytes()


def test_leaderboard_task_in_the_container(image: str, experiment: Path, tmp_path: Path):
    data = tmp_path / "data"
    shutil.copytree(experiment / "ws", data / "dataperf_en_data")
    teams = tmp_path / "submissions"
    (teams / "team-a").mkdir(parents=True)
    shutil.copy(experiment / "native" / "train.json", teams / "team-a" / "en_25_train.json")
    (teams / "team-b").mkdir()
    (teams / "team-b" / "en_25_train.json").write_text("{broken")
    _readable_by_container(tmp_path)
    out = _output_folder(tmp_path)
    done = _docker_run(
        image,
        "leaderboard",
        "--submissions=/submissions",
        "--data_dir=/data",
        "--outdir=/out",
        "--config_file=/data/dataperf_en_data/dataperf_speech_config.yaml",
        "--n_workers=2",
        mounts={teams: "/submissions:ro", data: "/data:ro", out: "/out"},
    )
    assert done.returncode == 0, done.stderr
    rows = {row["team"]: row for row in read_json(out / "leaderboard.json")["rows"]}
    native = read_json(experiment / "native" / "results.json")
    assert rows["team-a"]["status"] == "scored" and rows["team-a"]["score"] == native["score"]
    assert rows["team-b"]["status"] == "rejected" and "not valid JSON" in rows["team-b"]["reason"]
    assert (out / "leaderboard.html").stat().st_uid == CALLER[0]


def test_embed_task_in_the_container(image: str, tmp_path: Path):
    """The speech model and its runtime are in the image: a folder of clips becomes an experiment offline."""
    import numpy as np
    import pyarrow.parquet as pq
    import soundfile

    clips = tmp_path / "clips"
    rng = np.random.default_rng(0)
    for word in ("alpha", "beta", "gamma"):
        (clips / word).mkdir(parents=True)
        for index in range(4):
            tone = np.sin(2 * np.pi * (200 + 150 * index) * np.arange(12000) / 16000) * 0.3
            soundfile.write(clips / word / f"{word}_{index}.wav", tone + rng.normal(0, 0.01, 12000), 16000)
    _readable_by_container(tmp_path)
    out = _output_folder(tmp_path)
    done = _docker_run(
        image,
        "embed",
        "--audio_dir=/clips",
        "--outdir=/out/experiment",
        "--targets=alpha,beta",
        mounts={clips: "/clips:ro", out: "/out"},
    )
    assert done.returncode == 0, done.stderr
    native = run_cli(
        "-m",
        "selection.embed",
        "--audio_dir",
        str(clips),
        "--outdir",
        str(tmp_path / "native"),
        "--targets",
        "alpha,beta",
    )
    assert native.returncode == 0, native.stderr
    assert read_json(out / "experiment" / "embed_report.json")["dim"] == 192
    for folder in ("train_embeddings", "eval_embeddings"):
        for path in sorted((tmp_path / "native" / folder).iterdir()):
            inside = pq.read_table(out / "experiment" / folder / path.name).to_pydict()
            assert inside == pq.read_table(path).to_pydict()
