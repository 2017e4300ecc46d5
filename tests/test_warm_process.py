"""A command forked from the warm interpreter behaves as the same command in a new interpreter."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

SHOW = """
import os, sys
print(os.getcwd(), os.environ.get("DATAPERF_PROBE"), sys.argv, sys.path[0] == "", sep="|")
print("to stderr\\r\\nsecond line", file=sys.stderr)
sys.exit(int(sys.argv[1]))
"""


@pytest.mark.parametrize(
    "args",
    [
        ("-c", SHOW, "3"),
        ("-c", "raise ValueError('planted')"),
        ("-c", "import sys; sys.exit('a message')"),
        ("-m", "selection.main", "--train_size", "-1"),
        (str(REPO / "eval.py"), "--train_file", "no such file.json"),
    ],
)
def test_a_forked_command_is_the_command(args, tmp_path: Path):
    warm = run_cli(*args, cwd=tmp_path, env={"DATAPERF_PROBE": "seen"})
    fresh = run_cli(*args, cwd=tmp_path, env={"DATAPERF_PROBE": "seen"}, fresh=True)
    assert (warm.returncode, warm.stdout, warm.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert warm.returncode != 0


def test_a_script_sees_its_own_folder_first_and_a_module_the_working_folder(tmp_path: Path):
    script = tmp_path / "where.py"
    script.write_text("import sys; print(sys.path[0])\n")
    assert run_cli(str(script), cwd=REPO).stdout.strip() == str(tmp_path)
    assert run_cli("-m", "json.tool", "--help", cwd=tmp_path).returncode == 0
