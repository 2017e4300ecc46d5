"""The evaluator benchmark runs end to end at a small scale (its figures are not asserted as timings)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import REPO, read_json, run_cli


def test_benchmark_runs_at_small_scale(tmp_path: Path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    shutil.copy(REPO / "workspace" / "dataperf_speech_config.yaml", workspace)
    output = tmp_path / "benchmark.json"
    done = run_cli(
        str(REPO / "benchmarks" / "evaluator_benchmark.py"),
        "--workspace",
        str(workspace),
        "--repeats",
        "1",
        "--sizes",
        "25",
        "--algorithms",
        "random",
        "--scale",
        "0.02",
        "--output",
        str(output),
    )
    assert done.returncode == 0, done.stderr
    report = read_json(output)
    (row,) = report["evaluation"]
    assert row["scores_equal"] is True and row["size"] == 25
    assert row["eval_py_warm_seconds"] > 0 and row["eval_py_off_seconds"] > 0 and row["straightforward_seconds"] > 0
    assert [r["algorithm"] for r in report["selection"]] == ["random"]
    assert "| 25 |" in done.stdout and report["pool_clips"] > 0
    (process,) = report["whole_process"]
    assert process["scores_equal"] is True and process["straightforward_seconds"] > process["import_eval_seconds"] > 0
