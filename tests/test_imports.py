"""The evaluate path imports only what it uses: no pandas, matplotlib, cleanlab or scikit-learn's ensemble."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, eval_args, run_cli, select_args

RECORD_MODULES = """
import atexit, json, runpy, sys
out = sys.argv[1]
atexit.register(lambda: json.dump(sorted(sys.modules), open(out, "w")))
sys.argv = [sys.argv[2], *sys.argv[3:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
NOT_ON_THE_EVALUATE_PATH = ("pandas", "matplotlib", "cleanlab", "sklearn.ensemble", "fire", "kmedoids", "dask")


def _modules_after(*command: str, tmp_path: Path) -> set[str]:
    record = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", RECORD_MODULES, str(record), *command],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "DATAPERF_CACHE_DIR": "off"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(record.read_text()))


def test_the_evaluate_path_imports_only_what_it_uses(dataset: Path, tmp_path: Path):
    assert run_cli(*select_args(dataset)).returncode == 0
    modules = _modules_after(*eval_args(dataset), tmp_path=tmp_path)
    assert "sklearn.svm" in modules and "selection.scoring.fast_predict" in modules
    loaded = sorted(name for name in modules if name.startswith(NOT_ON_THE_EVALUATE_PATH))
    assert loaded == []


def test_import_eval_is_light():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, eval; print(' '.join(sorted(sys.modules)))"],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    modules = set(done.stdout.split())
    assert not {name.split(".")[0] for name in modules} & {"numpy", "pyarrow", "sklearn", "scipy", "yaml"}


TRAINING_STACK = ("jax", "jaxlib", "flax", "optax", "jax2onnx", "onnxruntime", "onnx", "selection.kws.train")


def test_select_evaluate_and_the_leaderboard_never_import_the_training_stack(dataset: Path, tmp_path: Path):
    select_command = [str(REPO / "selection" / "main.py"), *select_args(dataset)[2:]]  # a path: runpy.run_path
    for command in (select_command, eval_args(dataset)):
        modules = _modules_after(*command, tmp_path=tmp_path)
        assert sorted(name for name in modules if name.split(".")[0] in TRAINING_STACK[:-1]) == []
        assert TRAINING_STACK[-1] not in modules
    done = subprocess.run(
        [sys.executable, "-c", "import sys, selection.leaderboard, selection.board.report; print(*sys.modules)"],
        cwd=REPO, env={"PYTHONPATH": str(REPO)}, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not {name.split(".")[0] for name in done.stdout.split()} & set(TRAINING_STACK[:-1])
