"""The documentation: the site builds strictly, every command's flags are documented (and only those), the
README stays short, and the package installs with its ``dataperf-speech`` command."""

from __future__ import annotations

import importlib
import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

COMMANDS = {
    "select": ("selection.main", "select"),
    "evaluate": ("selection.evaluate", "evaluate"),
    "run": ("selection.run", "run"),
    "download": ("selection.download", "download"),
    "submit": ("selection.submit", "submit"),
    "bench": ("selection.bench", "bench"),
    "leaderboard": ("selection.leaderboard", "build_leaderboard"),
    "embed": ("selection.embed", "embed"),
    "explain": ("selection.explain", "explain"),
    "train_kws": ("selection.train_kws", "train_kws"),
    "synthesize": ("selection.synthesize", "synthesize"),
    "distill_embedding": ("selection.distill_embedding", "distill_embedding"),
}


def test_the_site_builds_strictly(tmp_path: Path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None:
        pytest.skip("mkdocs is not installed (requirements-test.txt pins it; bash .ci/run installs it)")
    done = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "reference" / "index.html").is_file()


def _documented_flags(page: str) -> dict[str, set[str]]:
    sections = re.split(r"(?m)^### `([a-z_]+)`\n", page.split("## Every command's flags", 1)[1].split("\n## ", 1)[0])
    return {
        name: set(re.findall(r"(?m)^\| `--([a-z0-9_]+)` \|", body))
        for name, body in zip(sections[1::2], sections[2::2])
    }


def test_every_flag_is_documented_and_every_documented_flag_exists():
    documented = _documented_flags((REPO / "docs" / "reference.md").read_text())
    assert set(documented) == set(COMMANDS)
    for command, (module, function) in COMMANDS.items():
        flags = set(inspect.signature(getattr(importlib.import_module(module), function)).parameters)
        assert documented[command] == flags, (command, flags ^ documented[command])


def test_the_console_command_knows_every_documented_command():
    from selection.entrypoint import TASKS

    assert set(COMMANDS) <= set(TASKS)
    for command, target in COMMANDS.items():
        assert TASKS[command] == target


def test_the_readme_is_short_and_its_links_resolve():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not link.startswith("https://"):
            assert (REPO / link).exists(), link


def test_pip_install_gives_a_working_dataperf_speech_command(tmp_path: Path):
    source, target = tmp_path / "source", tmp_path / "installed"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "selection", source / "selection", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(  # from a copy: a build writes build/ and *.egg-info into its source folder
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (target / "selection" / "scoring" / "experiment.py").is_file()
    assert (target / "selection" / "implementations" / "random_selection.py").is_file()
    command = target / "bin" / "dataperf-speech"
    assert command.is_file()
    environment = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    usage = subprocess.run([sys.executable, str(command), "--help"], cwd=tmp_path, env=environment,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert usage.returncode == 0 and "leaderboard" in usage.stderr and "bench" in usage.stderr
    version = subprocess.run(
        [sys.executable, "-c", "import selection; print(selection.__version__, selection.__file__)"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert version.stdout.split()[1].startswith(str(target))
    metadata = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m; print(m.version('dataperf-speech'))"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert metadata.stdout.strip() == version.stdout.split()[0]
    bad = subprocess.run([sys.executable, str(command), "nonsense"], cwd=tmp_path, env=environment,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "unknown task 'nonsense'" in bad.stderr


def test_every_commands_help_lists_exactly_the_flags_its_parser_takes():
    """``--help`` is built from the signature: no ``-o`` short forms or positional arguments the parser refuses,
    every flag with its default and description, printed at once (no pager)."""
    from selection.cli import help_text

    for command, (module, function) in COMMANDS.items():
        target = getattr(importlib.import_module(module), function)
        text = help_text(target)
        listed = re.findall(r"(?m)^  --([a-z0-9_]+) ", text)
        assert listed == list(inspect.signature(target).parameters), command
        assert not re.search(r"(?m)^\s+-[a-z],", text) and "POSITIONAL" not in text.upper(), command
    environment = {"PYTHONPATH": str(REPO), "PAGER": "false", "TERM": "xterm"}
    done = subprocess.run([sys.executable, "-m", "selection.main", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env=environment)  # fmt: skip
    assert done.returncode == 0 and "--outdir str" in done.stdout and "-o," not in done.stdout


def test_shared_flags_agree_across_commands():
    """A flag that several commands take means the same there: --plugin_dir on every command that runs an
    algorithm, --workspace on every command that takes an experiment folder, one default for --baselines."""
    signatures = {
        command: inspect.signature(getattr(importlib.import_module(module), function)).parameters
        for command, (module, function) in COMMANDS.items()
    }
    for command in ("select", "run", "submit", "bench"):
        assert "plugin_dir" in signatures[command], command
        assert signatures[command]["plugin_dir"].default is None
    for command in ("run", "explain", "train_kws", "download"):
        assert signatures[command]["workspace"].default == "workspace/", command
    assert signatures["submit"]["baselines"].default == signatures["run"]["baselines"].default
    assert signatures["leaderboard"]["baselines"].default == signatures["run"]["baselines"].default
