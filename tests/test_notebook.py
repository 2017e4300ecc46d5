"""The participants' walkthrough notebook runs top to bottom in a real kernel on the built-in data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import REPO

NOTEBOOK = REPO / "examples" / "walkthrough.ipynb"


def test_the_committed_notebook_holds_no_outputs():
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


class _environment:
    """``os.environ`` replaced for the duration (the kernel inherits it)."""

    def __init__(self, environment: dict) -> None:
        self.environment = environment

    def __enter__(self):
        self.saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.environment)

    def __exit__(self, *exc):
        os.environ.clear()
        os.environ.update(self.saved)


def test_the_notebook_finds_the_checkouts_workspace_from_examples(tmp_path: Path):
    """Its default workspace is the quick start's, whether the kernel starts in the root or in examples/."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters, locate = [cell for cell in notebook.cells if cell.cell_type == "code"][:2]
    probe = nbformat.v4.new_code_cell("import selection\nprint('found', workspace.resolve(), selection.__file__)")
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    for start in (REPO, REPO / "examples"):
        cut = nbformat.v4.new_notebook(cells=[parameters, locate, probe])
        client = nbclient.NotebookClient(cut, timeout=120, kernel_name="python3",
                                         resources={"metadata": {"path": str(start)}})  # fmt: skip
        with _environment(environment):
            client.execute()
        text = "".join(output.get("text", "") for output in cut.cells[-1].outputs)
        assert f"found {REPO / 'workspace'} {REPO / 'selection' / '__init__.py'}" in text, text


def test_the_walkthrough_runs_and_writes_six_checked_files(tmp_path: Path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (parameters,) = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    parameters.source = f"workspace = {str(tmp_path / 'workspace')!r}\nscale = 0.04"
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    before = sorted(path.name for path in (REPO / "examples").iterdir())
    # started the way a user starts it: in examples/, with the harness not installed and not on the path
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO / "examples")}}
    )
    with _environment(environment):
        client.execute()
    assert sorted(path.name for path in (REPO / "examples").iterdir()) == before  # no data made beside it
    text = "\n".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "scored in" in text and "NearMedian" in text
    assert "Report(pool: macro_f1=" in text and "suspect" in text
    assert any("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))

    from selection import load_experiment

    submission = tmp_path / "workspace" / "my_submission"
    names = sorted(path.name for path in submission.iterdir())
    assert names == [f"{language}_{size}_train.json" for language in ("en", "id", "pt") for size in (25, 60)]
    for name in names:
        language, size = name.split("_")[:2]
        experiment = load_experiment(language=language, data_dir=tmp_path / "workspace" / "data")
        assert experiment.check(submission / name, limit=int(size))
