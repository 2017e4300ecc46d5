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


def test_the_walkthrough_runs_and_writes_six_checked_files(tmp_path: Path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (parameters,) = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    parameters.source = f"workspace = {str(tmp_path / 'workspace')!r}\nscale = 0.04"
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    )
    client.execute()
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
