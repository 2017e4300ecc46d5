"""The final benchmark's own commands and folders: --language, {language}_{size}_train.json, submit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, published_like_archives, quick_start_workspace, read_json, run_cli, write_config
from tests.test_bad_input import assert_clean_failure

pytestmark = pytest.mark.xdist_group("layout")


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A folder laid out like a clone after the quick start (small scale): workspace/ with every language."""
    root = tmp_path_factory.mktemp("clone")
    quick_start_workspace(root)
    return root


def _comparable(results: dict) -> dict:
    return {key: value for key, value in results.items() if key not in ("seconds", "train_file")}


@pytest.mark.parametrize("language", ["en", "id", "pt"])
def test_the_reference_commands_run_as_written(clone: Path, language: str):
    for folder in ("allowed_training_set.yaml", "train_embeddings", "eval_embeddings", "eval.yaml"):
        assert (clone / "workspace" / "data" / f"dataperf_{language}_data" / folder).exists()
    selected = run_cli("-m", "selection.main", "--language", language, "--train_size", "25", cwd=clone)
    assert selected.returncode == 0, selected.stderr
    train = clone / "workspace" / f"{language}_25_train.json"
    assert train.is_file()
    evaluated = run_cli(str(REPO / "eval.py"), "--language", language, "--train_size", "25", cwd=clone)
    assert evaluated.returncode == 0, evaluated.stderr
    results = read_json(clone / "workspace" / f"{language}_25_results.json")
    assert results["n_train"] == 25 and results["train_set_size_limit"] == 25
    assert "warning" not in selected.stderr + evaluated.stderr


def test_without_language_the_workspace_root_is_used(clone: Path):
    done = run_cli("-m", "selection.main", "--train_size", "25", cwd=clone)
    assert done.returncode == 0, done.stderr
    assert (clone / "workspace" / "train.json").is_file()


def test_other_sizes_are_allowed_with_a_note(clone: Path):
    done = run_cli("-m", "selection.main", "--language", "en", "--train_size", "40", cwd=clone)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("warning: train_size 40")]
    assert len(notes) == 1 and "60-clip leaderboard" in notes[0]
    assert (clone / "workspace" / "en_40_train.json").is_file()
    big = run_cli("-m", "selection.main", "--language", "en", "--train_size", "70", cwd=clone)
    assert big.returncode == 0 and "no leaderboard accepts" in big.stderr


def test_an_unknown_language_says_what_to_run(clone: Path):
    done = run_cli("-m", "selection.main", "--language", "fr", "--train_size", "25", cwd=clone)
    assert_clean_failure(done, "dataperf_fr_data", "run download first")
    assert_clean_failure(
        run_cli("-m", "selection.main", "--language", "EN!", cwd=clone), "--language", "not a language"
    )


def test_published_archives_land_where_the_reference_puts_them(tmp_path: Path):
    published_like_archives(tmp_path / "mirror", tmp_path)
    clone = tmp_path / "clone"
    (clone / "workspace").mkdir(parents=True)
    write_config(clone / "workspace" / "dataperf_speech_config.yaml")
    done = run_cli(
        "-m", "selection.download", "--source", "dataperf", "--base_url", (tmp_path / "mirror").as_uri(), cwd=clone
    )
    assert done.returncode == 0, done.stderr
    for language in ("en", "id", "pt"):
        assert (clone / "workspace" / "data" / f"dataperf_{language}_data" / "eval.yaml").is_file()
        assert run_cli("-m", "selection.main", "--language", language, "--train_size", "20", cwd=clone).returncode == 0
        evaluated = run_cli(str(REPO / "eval.py"), "--language", language, "--train_size", "20", cwd=clone)
        assert evaluated.returncode == 0, evaluated.stderr
        assert read_json(clone / "workspace" / f"{language}_20_results.json")["n_train"] == 20
    again = run_cli(
        "-m", "selection.download", "--source", "dataperf", "--base_url", (tmp_path / "mirror").as_uri(), cwd=clone
    )
    assert again.returncode == 0 and "already holds the experiment" in again.stderr
    bench = run_cli(
        "-m", "selection.bench", "--algorithms", "random", "--sizes", "20", "--languages", "id",
        "--data_dir", "workspace/data", "--config_file", "workspace/dataperf_speech_config.yaml",
        "--output", "b.json", "--plot", "", cwd=clone,
    )  # fmt: skip
    assert bench.returncode == 0, bench.stderr


def test_submit_writes_every_leaderboard_file_and_a_scorecard_equal_to_eval(clone: Path):
    done = run_cli("-m", "selection.submit", "--baselines", "random", cwd=clone)
    assert done.returncode == 0, done.stderr
    submission = clone / "submission"
    expected = {f"{language}_{size}_train.json" for language in ("en", "id", "pt") for size in (25, 60)}
    assert {path.name for path in submission.iterdir()} == expected | {"scorecard.json"}
    scorecard = read_json(submission / "scorecard.json")
    assert len(scorecard["rows"]) == 6
    from selection import load_experiment

    config = clone / "workspace" / "dataperf_speech_config.yaml"
    for index, row in enumerate(scorecard["rows"]):
        if index == 0:  # eval.py itself for one row; the API, which a test holds equal to eval.py, for the rest
            evaluated = run_cli(
                str(REPO / "eval.py"),
                "--language", row["language"],
                "--train_size", str(row["size"]),
                "--train_file", str(submission / row["file"]),
                "--results_file", str(clone / "check.json"),
                cwd=clone,
            )  # fmt: skip
            assert evaluated.returncode == 0, evaluated.stderr
            results = read_json(clone / "check.json")
        else:
            experiment = load_experiment(language=row["language"], data_dir=clone / "workspace" / "data", config=config)
            results = experiment.score(submission / row["file"], limit=row["size"])
        assert abs(results["macro_f1"] - row["macro_f1"]) < 1e-9
        assert abs(results["balanced_accuracy"] - row["balanced_accuracy"]) < 1e-9
        assert set(row["baselines"]) == {"random"}
        assert len(json.loads((submission / row["file"]).read_text())["nontargets"]) > 0
    table = done.stdout.splitlines()
    assert table[2].startswith("| leaderboard | file | yours: macro_f1") and len(table) == 4 + 6
