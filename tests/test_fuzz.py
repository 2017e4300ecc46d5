"""Property-based tests: whatever train.json or YAML holds, the outcome is a valid score or one clean line."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from eval import evaluate
from selection.cli import run_command
from selection.main import select
from tests.conftest import eval_args, make_dataset, select_args

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("fuzz")
    documents = make_dataset(root)
    return root, documents


def _run(function, argv: list[str]) -> tuple[int, str]:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            run_command(function, argv)
            code = 0
        except SystemExit as exit_:
            code = exit_.code
    return code, stderr.getvalue()


def _check_outcome(code: int, stderr: str, output: Path, folder: Path) -> None:
    assert "Traceback" not in stderr
    assert code in (0, 2), (code, stderr)
    if code == 0:
        document = json.loads(output.read_text())
        assert document
    else:
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, stderr
        assert not output.exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def _ids(documents: dict) -> list[str]:
    allowed, evaluation = documents["allowed"], documents["eval"]
    pool = [i for ids in allowed["targets"].values() for i in ids] + allowed["nontargets"]
    return pool + evaluation["nontargets"][:5] + ["../x.wav", "/abs/y.wav", "cat/", "cat//z.wav", "a\x00/b"]


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
MUTATIONS = [
    "none",
    "none",
    "none",
    "foreign_id",
    "duplicate",
    "wrong_type",
    "extra_key",
    "unknown_word",
    "drop_key",
    "swap_class",
    "replace_whole",
]


def _subset(documents_part: dict, *, min_size: int = 0):
    targets = st.fixed_dictionaries(
        {
            w: st.lists(st.sampled_from(ids), unique=True, min_size=min_size, max_size=5)
            for w, ids in documents_part["targets"].items()
        }
    )
    nontargets = st.lists(st.sampled_from(documents_part["nontargets"]), unique=True, min_size=min_size, max_size=8)
    return st.fixed_dictionaries({"targets": targets, "nontargets": nontargets})


def _mutate(data, document: dict, documents: dict) -> object:
    mutation = data.draw(st.sampled_from(MUTATIONS))
    event(f"mutation {mutation}")
    if mutation == "foreign_id":
        document["nontargets"].append(data.draw(st.sampled_from(_ids(documents)[-10:])))
    elif mutation == "duplicate" and document["nontargets"]:
        document["nontargets"].append(document["nontargets"][0])
    elif mutation == "wrong_type":
        document["nontargets"].append(data.draw(json_scalars.filter(lambda v: not isinstance(v, str))))
    elif mutation == "extra_key":
        document[data.draw(st.text(max_size=5))] = data.draw(json_scalars)
    elif mutation == "unknown_word":
        document["targets"][data.draw(st.text(max_size=6))] = []
    elif mutation == "drop_key":
        document.pop(data.draw(st.sampled_from(["targets", "nontargets"])))
    elif mutation == "swap_class" and document["nontargets"]:
        word = data.draw(st.sampled_from(sorted(document["targets"])))
        document["targets"][word].append(document["nontargets"].pop())
    elif mutation == "replace_whole":
        return data.draw(json_scalars | st.lists(json_scalars, max_size=3))
    return document


@given(data=st.data())
@FUZZ
def test_fuzzed_train_file(base, data):
    root, documents = base
    document = _mutate(data, data.draw(_subset(documents["allowed"])), documents)
    folder = root / "case"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    train_file = folder / "train.json"
    train_file.write_text(json.dumps(document))
    argv = eval_args(root, None, train_file, "--results_file", str(folder / "results.json"))[1:]
    code, stderr = _run(evaluate, argv)
    event(f"exit {code}")
    _check_outcome(code, stderr, folder / "results.json", folder)
    if code == 0:
        assert 0 <= json.loads((folder / "results.json").read_text())["score"] <= 1


@given(data=st.data())
@FUZZ
def test_fuzzed_allowed_set_yaml(base, data):
    root, documents = base
    document = _mutate(data, data.draw(_subset(documents["allowed"], min_size=1)), documents)
    text = data.draw(st.just(yaml.safe_dump(document)) | st.text(max_size=60))
    folder = root / "yaml_case"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    allowed = folder / "allowed.yaml"
    allowed.write_text(text)
    argv = select_args(root)[2:]
    argv[argv.index("--allowed_training_set") + 1] = str(allowed)
    argv[argv.index("--outdir") + 1] = str(folder)
    code, stderr = _run(select, argv)
    event(f"exit {code}")
    _check_outcome(code, stderr, folder / "train.json", folder)
