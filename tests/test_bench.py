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


ALGORITHMS = [
    ("random", "selection.implementations.random_selection", "RandomSelection"),
    ("clean_coverage", "selection.implementations.coverage_selection", "CleanCoverageSelection"),
    ("cleanlab", "selection.implementations.cleanlab_selection", "CleanlabSelection"),
]


@pytest.fixture(scope="module")
def bench_run(small_workspace: Path):
    """One bench run of every algorithm on one language: (its rows by algorithm, the run)."""
    output, chart = small_workspace / "bench.json", small_workspace / "bench.png"
    done = run_cli(
        "-m", "selection.bench", "--algorithms", ",".join(name for name, _, _ in ALGORITHMS), "--languages", "pt",
        "--sizes", "25", "--data_dir", str(small_workspace / "data"),
        "--config_file", str(small_workspace / "dataperf_speech_config.yaml"),
        "--output", str(output), "--plot", str(chart),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return {row["algorithm"]: row for row in read_json(output)["rows"]}, done


@pytest.mark.parametrize("algorithm, module, name", ALGORITHMS)
def test_bench_score_equals_select_then_evaluate(small_workspace: Path, bench_run, algorithm: str, module: str,
                                                 name: str):  # fmt: skip
    rows, done = bench_run
    row = rows[algorithm]
    assert row["language"] == "pt" and row["size"] == 25
    assert f"| pt | {algorithm} | 25 |" in done.stdout
    experiment = small_workspace / "data" / "dataperf_pt_data"
    config = write_config(
        experiment / f"{algorithm}.yaml",
        train_set_size_limit=25,
        selection_algorithm_module=module,
        selection_algorithm_class=name,
    )
    assert run_cli(*select_args(experiment, config)).returncode == 0
    evaluated = run_cli(*eval_args(experiment, config))
    assert evaluated.returncode == 0, evaluated.stderr
    assert read_json(experiment / "results.json")["score"] == pytest.approx(row["score"], abs=1e-12)
    # the faulty-picks columns, from the truth download wrote
    faults = read_json(experiment / "pool_faults.json")["faults"]
    picked = read_json(experiment / "train.json")
    ids = [c for clips in picked["targets"].values() for c in clips] + picked["nontargets"]
    assert row["faulty_picks"] == round(sum(c in faults for c in ids) / len(ids), 4)
    assert 0 < row["pool_faulty"] < 0.3 and row["badly_cut_picks"] <= row["faulty_picks"]
    assert "faulty picks (pool)" in done.stdout


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
