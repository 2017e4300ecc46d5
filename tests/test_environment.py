"""The environment fails: Ctrl-C, a full disk, a read-only output. Earlier outputs survive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, eval_args, read_json, run_cli, select_args, write_config
from tests.test_bad_input import assert_clean_failure


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_ctrl_c_mid_selection_writes_nothing(dataset: Path):
    (dataset / "train.json").write_text("previous\n")
    config = write_config(
        dataset / "slow.yaml", selection_algorithm_module="tests.plugins", selection_algorithm_class="Slow"
    )
    process = subprocess.Popen(
        [sys.executable, *select_args(dataset, config)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    line = ""
    while "slow plugin started" not in line and time.monotonic() < deadline:
        line = process.stderr.readline()
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted" in rest and "Traceback" not in rest
    assert (dataset / "train.json").read_text() == "previous\n"
    assert _leftovers(dataset) == []


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 64 KiB tmpfs, mounted for the test (root only)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here (needs root and mount permission)")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_disk_full_while_writing_keeps_the_old_file(dataset: Path, small_disk: Path):
    (small_disk / "train.json").write_text("previous\n")
    with open(small_disk / "filler", "wb") as handle:
        try:
            handle.write(b"\0" * (1 << 20))
        except OSError:
            pass
    args = select_args(dataset)
    args[args.index("--outdir") + 1] = str(small_disk)
    done = run_cli(*args)
    assert_clean_failure(done, "train.json", "disk full while writing", "left as it was")
    assert (small_disk / "train.json").read_text() == "previous\n"
    assert _leftovers(small_disk) == []


def test_read_only_output_folder(dataset: Path, small_disk: Path):
    (small_disk / "results.json").write_text("previous\n")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True, capture_output=True)
    assert run_cli(*select_args(dataset)).returncode == 0
    done = run_cli(*eval_args(dataset, None, None, "--results_file", str(small_disk / "results.json")))
    assert_clean_failure(done, str(small_disk), "not writable")
    assert (small_disk / "results.json").read_text() == "previous\n"


def test_reruns_give_identical_outputs(dataset: Path):
    outputs = []
    for _ in range(2):
        assert run_cli(*select_args(dataset), fresh=True).returncode == 0
        assert run_cli(*eval_args(dataset), fresh=True).returncode == 0
        results = read_json(dataset / "results.json")
        results.pop("seconds")
        outputs.append(((dataset / "train.json").read_bytes(), results))
    assert outputs[0] == outputs[1]


def _kernels() -> list[str | None]:
    kernels: list[str | None] = [None, "Prescott", "Haswell"]
    if "avx512f" in Path("/proc/cpuinfo").read_text():
        kernels.append("SkylakeX")
    return kernels


def test_a_score_does_not_depend_on_the_blas_kernel(dataset: Path):
    """The README's promise: any OpenBLAS kernel gives the same results for a given train.json."""
    assert run_cli(*select_args(dataset)).returncode == 0
    outcomes = []
    for kernel in _kernels():
        environment = {key: value for key, value in os.environ.items() if not key.startswith("OPENBLAS_")}
        if kernel:
            environment["OPENBLAS_CORETYPE"] = kernel
        done = subprocess.run(
            [sys.executable, *eval_args(dataset, None, None, "--cache_dir", "off")],
            cwd=REPO,
            env={**environment, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, (kernel, done.stderr)
        results = read_json(dataset / "results.json")
        results.pop("seconds")
        outcomes.append(results)
    assert all(outcome == outcomes[0] for outcome in outcomes[1:])
