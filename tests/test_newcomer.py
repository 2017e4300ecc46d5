"""What a new user met on day one: config typos, errors that blamed the harness, hints, progress, the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, eval_args, run_cli, select_args, write_config
from tests.test_bad_input import assert_clean_failure


def test_a_config_key_close_to_a_known_one_is_warned_about(dataset: Path):
    config = write_config(dataset / "typo.yaml", my_own_setting=3)
    config.write_text(config.read_text().replace("train_set_size_limit: 20", "train_set_size_limt: 7"))
    done = run_cli(*select_args(dataset, config))
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "unknown key" in line]
    assert len(warnings) == 1, done.stderr
    assert "train_set_size_limt" in warnings[0] and "'train_set_size_limit'" in warnings[0]
    assert "selecting at most 25 " in done.stderr


def test_an_error_inside_a_harness_helper_names_the_participant_line(dataset: Path):
    config = write_config(
        dataset / "helper.yaml",
        selection_algorithm_module="tests.plugins",
        selection_algorithm_class="CallsHelperBadly",
    )
    source = (REPO / "tests" / "plugins.py").read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if "to_training_set([10**6])" in text)
    done = run_cli(*select_args(dataset, config))
    message = assert_clean_failure(done, "CallsHelperBadly.select(): raised IndexError")
    assert f"at {REPO / 'tests' / 'plugins.py'}:{line}, inside " in message
    assert "selection/selection.py" in message
    traced = run_cli(*select_args(dataset, config), env={"DATAPERF_TRACEBACK": "1"})
    assert traced.returncode == 2 and "Traceback (most recent call last)" in traced.stderr
    assert "to_training_set([10**6])" in traced.stderr


def test_plugin_dir_puts_an_own_module_on_the_import_path(dataset: Path, tmp_path: Path):
    plugins = tmp_path / "my_plugins"
    plugins.mkdir()
    (plugins / "first_clips.py").write_text(
        "from selection.selection import TrainingSetSelection\n\n"
        "class FirstClips(TrainingSetSelection):\n"
        "    def select(self):\n"
        "        return self.pool.to_training_set([0, len(self.pool.ids) - 1])\n"
    )
    config = write_config(
        dataset / "own.yaml", selection_algorithm_module="first_clips", selection_algorithm_class="FirstClips"
    )
    assert_clean_failure(run_cli(*select_args(dataset, config)), "'first_clips' cannot be imported")
    done = run_cli(*select_args(dataset, config, "--plugin_dir", str(plugins)))
    assert done.returncode == 0, done.stderr
    assert_clean_failure(
        run_cli(*select_args(dataset, config, "--plugin_dir", str(tmp_path / "nope"))), "--plugin_dir", "not a folder"
    )


def test_missing_inputs_say_what_to_run_first(dataset: Path, tmp_path: Path):
    tmp_path = tmp_path / "empty"
    done = run_cli(*eval_args(dataset, None, tmp_path / "train.json"))
    assert_clean_failure(done, "--train_file", "run select first")
    args = select_args(dataset)
    args[args.index("--allowed_training_set") + 1] = str(tmp_path / "allowed_training_set.yaml")
    assert_clean_failure(run_cli(*args), "--allowed_training_set", "run download first")


def test_dataset_generation_is_announced(tmp_path: Path):
    done = run_cli("-m", "selection.download", "--workspace", str(tmp_path / "ws"), "--scale", "0.04")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0].startswith("generating the built-in synthetic dataset (en, pt, id)")


def test_progress_bars_come_from_tqdm():
    code = (
        "import time\n"
        "from selection.progress import report_progress\n"
        "for _ in report_progress(range(5), desc='slow loop', unit='steps'):\n"
        "    time.sleep(0.6)\n"
        "for _ in report_progress(range(3), desc='quick loop'):\n"
        "    pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env={"PYTHONPATH": str(REPO)}
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"slow loop: 100%\|.*\| 5/5 \[", done.stderr), done.stderr
    assert "quick loop" not in done.stderr


def test_readme_puts_the_participants_guide_first_and_the_quick_start_is_two_commands():
    readme = (REPO / "README.md").read_text()
    audiences = readme[readme.index("## Who it is for") :]
    assert audiences.index("**Participants**") < audiences.index("**Organisers**") < audiences.index("**Researchers**")
    assert "docs/tutorial.md" in audiences[: audiences.index("**Organisers**")]
    participants = (REPO / "docs" / "participants.md").read_text()
    assert participants.index("## Writing a selection algorithm") < participants.index("## Comparing algorithms")
    quick_start = readme[readme.index("## Quick start") : readme.index("\n## ", readme.index("## Quick start") + 5)]
    commands = re.findall(r"```bash\n(.*?)```", quick_start, re.S)[0].strip().splitlines()
    assert len(commands) == 2 and commands[1] == "bash .ci/run"


def test_ctrl_c_timing_guard_is_cheap():
    """Cheap by what it imports (nothing heavy), not by a wall-clock bound a loaded machine could break."""
    done = subprocess.run(
        [sys.executable, "-c", "from selection.cli import exit_quietly_on_ctrl_c; exit_quietly_on_ctrl_c()"],
        cwd=REPO,
        capture_output=True,
        env={"PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    assert (
        "numpy"
        not in subprocess.run(
            [sys.executable, "-c", "import sys, selection.cli; print(sorted(sys.modules))"],
            cwd=REPO,
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(REPO)},
        ).stdout
    )


def test_after_the_quick_start_a_script_anywhere_imports_the_api(tmp_path: Path):
    """The quick start's first command installs the harness (editable): a script outside the checkout imports it,
    and ``dataperf-speech`` is on the venv's PATH. The test command installs it the same way."""
    readme = (REPO / "README.md").read_text()
    first = re.findall(r"```bash\n(.*?)```", readme[readme.index("## Quick start") :], re.S)[0].splitlines()[0]
    assert "pip install -r requirements.txt -e ." in first
    assert "-e ." in (REPO / ".ci" / "run").read_text()
    script = tmp_path / "my_script.py"
    script.write_text("import selection\nfrom selection import load_experiment\nprint(selection.__file__)\n")
    environment = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=environment, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(REPO / "selection" / "__init__.py")
    usage = subprocess.run(["dataperf-speech", "--help"], cwd=tmp_path, env=environment, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert usage.returncode == 0 and "train_kws" in usage.stderr
