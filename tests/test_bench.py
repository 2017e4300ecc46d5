"""The bench scores a selection exactly as ``select`` + ``eval.py`` do."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import eval_args, read_json, run_cli, select_args, write_config

pytestmark = pytest.mark.xdist_group("bench")


@pytest.fixture(scope="module")
def small_workspace(tmp_path_factory) -> Path:
    workspace = tmp_path_factory.mktemp("bench") / "workspace"
    done = run_cli("-m", "selection.download", "--workspace", str(workspace), "--scale", "0.04")
    assert done.returncode == 0, done.stderr
    write_config(workspace / "dataperf_speech_config.yaml", train_set_size_limit=25)
    return workspace


@pytest.mark.parametrize(
    "algorithm, module, name",
    [
        ("random", "selection.implementations.random_selection", "RandomSelection"),
        ("clean_coverage", "selection.implementations.coverage_selection", "CleanCoverageSelection"),
        ("cleanlab", "selection.implementations.cleanlab_selection", "CleanlabSelection"),
    ],
)
def test_bench_score_equals_select_then_evaluate(small_workspace: Path, algorithm: str, module: str, name: str):
    output = small_workspace / f"bench_{algorithm}.json"
    chart = small_workspace / f"bench_{algorithm}.png"
    done = run_cli(
        "-m",
        "selection.bench",
        "--algorithms",
        algorithm,
        "--languages",
        "pt",
        "--sizes",
        "25",
        "--data_dir",
        str(small_workspace / "data"),
        "--config_file",
        str(small_workspace / "dataperf_speech_config.yaml"),
        "--output",
        str(output),
        "--plot",
        str(chart),
    )
    assert done.returncode == 0, done.stderr
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (row,) = read_json(output)["rows"]
    assert row["algorithm"] == algorithm and row["language"] == "pt" and row["size"] == 25
    assert f"| pt | {algorithm} | 25 |" in done.stdout

    experiment = small_workspace / "data" / "dataperf_pt_data"
    config = write_config(
        experiment / "config.yaml",
        train_set_size_limit=25,
        selection_algorithm_module=module,
        selection_algorithm_class=name,
    )
    assert run_cli(*select_args(experiment, config)).returncode == 0
    evaluated = run_cli(*eval_args(experiment, config))
    assert evaluated.returncode == 0, evaluated.stderr
    assert read_json(experiment / "results.json")["score"] == pytest.approx(row["score"], abs=1e-12)


def test_bench_rejects_unknown_algorithm(small_workspace: Path):
    done = run_cli(
        "-m",
        "selection.bench",
        "--algorithms",
        "magic",
        "--data_dir",
        str(small_workspace / "data"),
        "--config_file",
        str(small_workspace / "dataperf_speech_config.yaml"),
        "--output",
        str(small_workspace / "x.json"),
    )
    assert done.returncode == 2 and "unknown algorithm 'magic'" in done.stderr
    assert not (small_workspace / "x.json").exists()
