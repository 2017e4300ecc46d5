"""The Python API every command is built on: the same checks and scores as the commands, in-process."""

from __future__ import annotations

import ast
import doctest
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from selection import load_experiment
from selection.inputs.errors import BadInputError
from selection.selection import TrainingSet, TrainingSetSelection
from tests.conftest import REPO, eval_args, make_dataset, read_json, run_cli, select_args, write_config
from tests.test_bad_input import good_train


class FirstClips(TrainingSetSelection):
    """An algorithm defined where it is used (a notebook cell, say): the first clips of every class."""

    def select(self):
        share = self.train_set_size // (len(self.embeddings["targets"]) + 1)
        targets = {word: [clip["ID"] for clip in clips[:share]] for word, clips in self.embeddings["targets"].items()}
        return TrainingSet(targets, [clip["ID"] for clip in self.embeddings["nontargets"][:share]])


@pytest.fixture
def experiment_dir(tmp_path: Path) -> Path:
    make_dataset(tmp_path)
    return tmp_path


def test_importing_the_api_is_cheap():
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from selection import load_experiment; print(' '.join(sys.modules))"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    loaded = {name.split(".")[0] for name in done.stdout.split()}
    assert not loaded & {"numpy", "pyarrow", "sklearn", "scipy", "yaml", "pandas"}, loaded


@pytest.mark.parametrize("metric", ["macro_f1", "balanced_accuracy"])
def test_score_is_eval_pys_results_document(experiment_dir: Path, metric: str):
    config = write_config(experiment_dir / "dataperf_speech_config.yaml", metric=metric)
    assert run_cli(*select_args(experiment_dir)).returncode == 0
    done = run_cli(*eval_args(experiment_dir, config, None, "--cache_dir", "off"))
    assert done.returncode == 0, done.stderr
    expected = read_json(experiment_dir / "results.json")
    experiment = load_experiment(experiment_dir, config=config, cache_dir="off")
    results = experiment.score(experiment_dir / "train.json")
    produced = results.to_dict()
    for document in (expected, produced):
        document.pop("seconds")
    assert json.loads(json.dumps(produced)) == expected
    assert results.score == expected["score"] and results.per_class == expected["per_class"]
    assert "<table>" in results._repr_html_() and f"{expected['score']:.4f}" in results._repr_html_()


def test_check_gives_evaluates_one_line_errors(experiment_dir: Path):
    write_config(experiment_dir / "dataperf_speech_config.yaml")
    experiment = load_experiment(experiment_dir, config=experiment_dir / "dataperf_speech_config.yaml")
    document = good_train(experiment_dir)
    clip = experiment.evaluation_ids["nontargets"][0]
    document["nontargets"].append(clip)
    path = experiment_dir / "bad.json"
    path.write_text(json.dumps(document))
    done = run_cli(*eval_args(experiment_dir, None, path))
    with pytest.raises(BadInputError) as raised:
        experiment.check(path)
    assert done.stderr.strip().splitlines()[-1] == f"error: {raised.value}"
    assert clip in str(raised.value)
    with pytest.raises(BadInputError, match="expected at most 3"):
        experiment.check(good_train(experiment_dir), limit=3)


def test_select_takes_a_shipped_name_a_module_class_or_a_class(experiment_dir: Path):
    experiment = load_experiment(experiment_dir, config={"eval_random_seeds": [5, 69, 98]})
    for algorithm in ("random", "selection.implementations.random_selection:RandomSelection", FirstClips):
        picked = experiment.select(algorithm, 12)
        assert 0 < picked.size <= 12 and picked.seconds >= 0
        results = experiment.score(picked, limit=12)
        assert 0 <= results.score <= 1 and results["n_train"] == picked.size
    first = experiment.select(FirstClips, 12)
    assert first["nontargets"] == [clip["ID"] for clip in experiment.embeddings["nontargets"][:3]]
    with pytest.raises(BadInputError, match="unknown algorithm"):
        experiment.select("no-such-algorithm", 12)
    with pytest.raises(BadInputError, match="not an algorithm"):
        experiment.select(dict, 12)


def test_the_reference_style_plugin_runs_unchanged(experiment_dir: Path):
    config = write_config(
        experiment_dir / "reference.yaml",
        selection_algorithm_module="tests.reference_style_plugin",
        selection_algorithm_class="BalancedRandom",
    )
    done = run_cli(*select_args(experiment_dir, config))
    assert done.returncode == 0, done.stderr
    written = read_json(experiment_dir / "train.json")
    experiment = load_experiment(experiment_dir, config=config)
    assert experiment.select() == written
    assert experiment.score(written).score >= 0


def test_the_default_under_balanced_accuracy_selects_with_the_eval_files_removed(experiment_dir: Path):
    """It scores candidate splits on held-out pool clips: still no eval data, and the same pick twice."""
    config = write_config(
        experiment_dir / "ba.yaml", metric="balanced_accuracy", train_set_size_limit=20,
        selection_algorithm_module="selection.implementations.coverage_selection",
        selection_algorithm_class="CleanCoverageSelection",
    )  # fmt: skip
    shutil.rmtree(experiment_dir / "eval_embeddings")
    (experiment_dir / "eval.yaml").unlink()
    done = run_cli(*select_args(experiment_dir, config))
    assert done.returncode == 0, done.stderr
    assert "nontarget fraction" in done.stderr and "held-out 30% of the allowed pool" in done.stderr
    first = read_json(experiment_dir / "train.json")
    assert run_cli(*select_args(experiment_dir, config)).returncode == 0
    assert read_json(experiment_dir / "train.json") == first


def test_a_pool_only_experiment_never_reads_eval_data(experiment_dir: Path):
    shutil.rmtree(experiment_dir / "eval_embeddings")
    (experiment_dir / "eval.yaml").unlink()
    experiment = load_experiment(experiment_dir, with_eval=False)
    picked = experiment.select("random", 10)
    assert picked.size <= 10
    with pytest.raises(BadInputError, match="with_eval=False"):
        experiment.score(picked)
    out = experiment.write(picked, experiment_dir / "picked.json", limit=10)
    assert read_json(out) == dict(picked)


def test_scoring_from_the_pool_equals_scoring_from_the_files(experiment_dir: Path):
    experiment = load_experiment(experiment_dir, cache_dir="off")
    derived = experiment.evaluation_labels  # from the ID lists alone, before any vector is read
    assert experiment._evaluation is None
    document = good_train(experiment_dir)
    from_files = experiment.score(document).to_dict()
    assert np.array_equal(derived, experiment.evaluation.labels)
    experiment.load()  # now the selection's rows come from the loaded pool
    from_pool = experiment.score(document).to_dict()
    for results in (from_files, from_pool):
        results.pop("seconds")
    assert from_files == from_pool
    rows = np.array([experiment.pool.ids.index(i) for i in document["targets"]["yes"]])
    assert np.array_equal(experiment.pool.matrix[rows].shape, (len(rows), 1024))


def test_the_api_docstrings_run(experiment_dir: Path):
    from selection.scoring import experiment as module

    failures, tried = doctest.testmod(module, extraglobs={"folder": experiment_dir}, optionflags=doctest.ELLIPSIS)
    assert tried >= 4 and failures == 0


def test_the_package_has_no_import_cycle():
    modules: dict[str, set[str]] = {}
    files = sorted((REPO / "selection").rglob("*.py"))
    names = {".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__") for path in files}
    for path in files:
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("selection"):
                deps.add(node.module)
                deps.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names if alias.name.startswith("selection"))
        modules[name] = {dep for dep in deps & names if dep != name}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(modules[module]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[module] = 2

    for module in sorted(modules):
        if module not in state:
            visit(module, [])
    assert cycles == []
    top = sorted(path.name for path in (REPO / "selection").iterdir() if not path.name.startswith(("_", ".")))
    # 13 commands (entrypoint included), the plugin API (3), 8 subpackages, cli, interrupt, progress, version
    assert len(top) <= 28, top
