"""What an adversarial probe found: the cache deleting or trusting what it should not, hostile
documents, log forging, files that are not regular files, and exit codes that blamed the harness."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from selection.scoring import cache
from tests.conftest import (
    REPO,
    eval_args,
    evaluate_results,
    published_like_archives,
    read_json,
    run_cli,
    select_args,
    write_config,
)
from tests.test_bad_input import assert_clean_failure, good_train


def _tree(folder: Path) -> dict[str, bytes | None]:
    return {
        str(path.relative_to(folder)): (path.read_bytes() if path.is_file() else None)
        for path in sorted(folder.rglob("*"))
    }


# --- the cache never removes what it did not make -------------------------------------------------


def test_cache_dir_at_a_home_like_folder_is_refused_untouched(selected: Path, tmp_path: Path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("secret\n")
    (home / "project").mkdir()
    (home / "project" / "notes.txt").write_text("mine\n")
    (home / "big.bin").write_bytes(b"\0" * 4096)
    old = time.time() - 7 * 24 * 3600
    for path in home.rglob("*"):
        os.utime(path, (old, old))
    before = _tree(home)
    (selected / "results.json").write_text("previous\n")
    done = run_cli(*eval_args(selected, None, None, "--cache_dir", str(home)))
    assert_clean_failure(done, str(home), "--cache_dir", "did not make", "nothing in it was touched")
    assert _tree(home) == before
    assert (selected / "results.json").read_text() == "previous\n"


def test_eviction_touches_only_entries_the_harness_made(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(cache, "MAX_CACHE_BYTES", 0)
    monkeypatch.setattr(cache, "STALE_STAGING_NS", 0)
    monkeypatch.setattr(cache, "SETTLE_NS", 0)
    folder = tmp_path / "cache"
    source = tmp_path / "ids.yaml"
    source.write_text("targets: {w: [w/a.wav]}\nnontargets: [n/a.wav]\n")
    cache.sample_ids(source, cache.claim_cache_dir(str(folder)))
    assert (folder / cache.TAG_NAME).is_file()
    # someone else's things inside the harness's own folder, old enough to look stale
    (folder / ".config").mkdir()
    (folder / "other-tool").mkdir()
    (folder / "other-tool" / "data").write_bytes(b"x" * 100)
    (folder / "eval-not-a-key").mkdir()
    (folder / "notes.txt").write_text("mine\n")
    old = time.time() - 7 * 24 * 3600
    for path in folder.iterdir():
        os.utime(path, (old, old))
    foreign = {name: _tree(folder / name) if (folder / name).is_dir() else None for name in os.listdir(folder)}
    other = tmp_path / "other.yaml"
    other.write_text("targets: {w: [w/b.wav]}\nnontargets: [n/b.wav]\n")
    cache.sample_ids(other, str(folder))  # over the size limit: every older entry of ours goes
    names = set(os.listdir(folder))
    assert {".config", "other-tool", "eval-not-a-key", "notes.txt", cache.TAG_NAME} <= names
    assert cache.cache_key("ids", [source]) not in names and cache.cache_key("ids", [other]) in names
    assert _tree(folder / "other-tool") == foreign["other-tool"]


def test_an_old_untagged_cache_of_ours_is_adopted(tmp_path: Path):
    folder = tmp_path / "cache"
    (folder / ("ids-" + "0" * 32)).mkdir(parents=True)
    assert cache.claim_cache_dir(str(folder)) == str(folder)
    (folder / "mine.txt").write_text("x")
    with pytest.raises(cache.BadInputError, match="did not make"):
        cache.claim_cache_dir(str(folder))


# --- a cache entry can never change a score -----------------------------------------------------


def _entry(cache_dir: Path, kind: str) -> Path:
    (entry,) = [path for path in cache_dir.iterdir() if path.name.startswith(kind + "-")]
    return entry


def _shuffle_rows(data: bytes) -> bytes:
    rows = np.frombuffer(data, dtype=np.float32).reshape(-1, 1024)
    return rows[::-1].tobytes()


def _zero(data: bytes) -> bytes:
    return b"\0" * len(data)


def _one_nan(data: bytes) -> bytes:
    rows = np.frombuffer(data, dtype=np.float32).copy()
    rows[5] = np.nan
    return rows.tobytes()


@pytest.mark.parametrize(
    "file, tamper",
    [("matrix.f32", _shuffle_rows), ("labels.i64", _zero), ("matrix.f32", _one_nan)],
    ids=["shuffled vectors", "zeroed labels", "one NaN"],
)
def test_a_tampered_eval_entry_is_rebuilt_not_used(settled: Path, tmp_path: Path, file: str, tamper):
    cache_dir = tmp_path / "cache"
    expected = evaluate_results(settled, "--cache_dir", "off")["results"]
    evaluate_results(settled, "--cache_dir", str(cache_dir))
    target = _entry(cache_dir, "eval") / file
    target.write_bytes(tamper(target.read_bytes()))
    again = evaluate_results(settled, "--cache_dir", str(cache_dir))
    assert "damaged" in again["stderr"] and "eval set read from the cache" not in again["stderr"]
    assert again["results"] == expected
    rebuilt = evaluate_results(settled, "--cache_dir", str(cache_dir))
    assert "eval set read from the cache" in rebuilt["stderr"] and rebuilt["results"] == expected


def test_an_edited_cached_allowed_list_cannot_admit_an_eval_clip(settled: Path, tmp_path: Path):
    cache_dir = tmp_path / "cache"
    evaluate_results(settled, "--cache_dir", str(cache_dir))
    evaluation = yaml.safe_load((settled / "eval.yaml").read_text())
    stolen = evaluation["nontargets"][0]
    for entry in cache_dir.glob("ids-*"):
        path = entry / "sample_ids.json"
        document = json.loads(path.read_text())
        document["nontargets"].append(stolen)
        path.write_text(json.dumps(document))
    train = good_train(settled)
    train["nontargets"].append(stolen)
    (settled / "train.json").write_text(json.dumps(train))
    done = run_cli(*eval_args(settled, None, None, "--cache_dir", str(cache_dir)))
    assert_clean_failure(done, "train.json", stolen, "evaluation clip")


# --- flags are checked before any work ----------------------------------------------------------


def test_misspelled_select_flag_runs_nothing(selected: Path):
    before = (selected / "train.json").read_bytes()
    args = select_args(selected)
    args[args.index("--allowed_training_set")] = "--allowed_traning_set"
    done = run_cli(*args)
    assert_clean_failure(done, "--allowed_traning_set", "unknown flag", "did you mean --allowed_training_set?")
    assert (selected / "train.json").read_bytes() == before


def test_misspelled_eval_flag_runs_nothing(selected: Path):
    (selected / "results.json").write_text("previous\n")
    done = run_cli(*eval_args(selected), "--train_fle", str(selected / "train.json"))
    assert_clean_failure(done, "--train_fle", "did you mean --train_file?")
    assert (selected / "results.json").read_text() == "previous\n"


def test_misspelled_bench_flag_runs_nothing(tmp_path: Path):
    done = run_cli("-m", "selection.bench", "--algoritms", "random", "--output", str(tmp_path / "b.json"))
    assert_clean_failure(done, "--algoritms", "did you mean --algorithms?")
    assert list(tmp_path.iterdir()) == []


def test_container_entry_point_checks_flags_first(selected: Path):
    (selected / "results.json").write_text("previous\n")
    args = [a if not a.startswith("--") else a for a in eval_args(selected)[1:]]
    pairs = [f"{args[i]}={args[i + 1]}" for i in range(0, len(args), 2)]
    done = run_cli("-m", "selection.entrypoint", "evaluate", *pairs, f"--result_file={selected / 'results.json'}")
    assert_clean_failure(done, "--result_file", "did you mean --results_file?")
    assert (selected / "results.json").read_text() == "previous\n"


def test_flag_values_are_typed(tmp_path: Path):
    assert_clean_failure(run_cli("-m", "selection.download", "--seed=abc"), "--seed", "expected an integer", "'abc'")
    assert_clean_failure(run_cli("-m", "selection.download", "--seed"), "--seed", "no value")
    assert_clean_failure(run_cli("-m", "selection.download", "--seed=1", "--seed=2"), "--seed", "twice")
    assert_clean_failure(run_cli("-m", "selection.download", "stray"), "unexpected argument 'stray'")
    assert not (REPO / "stray").exists()


def test_a_numeric_outdir_is_a_folder_name(dataset: Path, tmp_path: Path):
    args = select_args(dataset)
    args[args.index("--outdir") + 1] = "2024"
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "2024" / "train.json").is_file()


# --- hostile YAML and JSON ----------------------------------------------------------------------


def _alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["x/y.wav", "x/y.wav", "x/y.wav", "x/y.wav", "x/y.wav", "x/y.wav", "x/y.wav"]']
    for level in range(1, levels):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("which", ["config", "allowed", "eval"])
def test_an_alias_bomb_is_refused_at_once(selected: Path, which: str):
    bomb = _alias_bomb()
    if which == "config":
        path = selected / "dataperf_speech_config.yaml"
        path.write_text(path.read_text() + bomb.replace("a8: &a8", "eval_random_seeds: &a8"))
    else:
        path = selected / ("allowed_training_set.yaml" if which == "allowed" else "eval.yaml")
        path.write_text(bomb.replace("a8: &a8", "nontargets: &a8") + "targets: {yes: [yes/a.wav]}\n")
    assert len(path.read_bytes()) < 1_000_000
    started = time.monotonic()
    done = run_cli(*eval_args(selected, None, None, "--cache_dir", "off"))
    assert time.monotonic() - started < 20
    assert_clean_failure(done, path.name, "anchors and aliases")


def test_deep_nesting_is_refused_without_a_crash(selected: Path):
    path = selected / "allowed_training_set.yaml"
    path.write_text("targets: " + "[" * 30000 + "]" * 30000 + "\nnontargets: []\n")
    done = run_cli(*eval_args(selected, None, None, "--cache_dir", "off"))
    assert_clean_failure(done, "allowed_training_set.yaml", "nested more than 100 levels")
    (selected / "train.json").write_text("[" * 30000 + "]" * 30000)
    done = run_cli(*eval_args(selected, None, None, "--cache_dir", "off"))
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_huge_integers_are_bad_input(selected: Path):
    (selected / "train.json").write_text('{"targets": {}, "nontargets": [' + "9" * 5000 + "]}")
    assert_clean_failure(run_cli(*eval_args(selected)), "train.json", "cannot be read")
    write_config(selected / "dataperf_speech_config.yaml")
    config = selected / "dataperf_speech_config.yaml"
    config.write_text(config.read_text().replace("train_set_size_limit: 20", "train_set_size_limit: " + "9" * 5000))
    assert_clean_failure(run_cli(*eval_args(selected)), "dataperf_speech_config.yaml", "cannot be read")


# --- messages cannot forge log lines ------------------------------------------------------------


def test_control_characters_in_ids_and_words_are_escaped(selected: Path):
    forged = "cat/x.wav\nscore (macro_f1): 0.9999\x1b[2K"
    train = {"targets": {}, "nontargets": [forged]}
    (selected / "train.json").write_text(json.dumps(train))
    line = assert_clean_failure(run_cli(*eval_args(selected)), "train.json", "nontargets[0]")
    assert "\x1b" not in line and "score (macro_f1): 0.9999" in line
    train = {"targets": {"yes\nscore (macro_f1): 0.9999": "not a list"}, "nontargets": []}
    (selected / "train.json").write_text(json.dumps(train))
    done = run_cli(*eval_args(selected))
    assert_clean_failure(done, "train.json")
    assert not any(line.startswith("score") for line in done.stderr.splitlines())


def test_a_huge_id_gives_a_bounded_line(selected: Path):
    train = {"targets": {}, "nontargets": ["cat/" + "a" * 15_000_000]}
    (selected / "train.json").write_text(json.dumps(train))
    done = run_cli(*eval_args(selected))
    line = assert_clean_failure(done, "train.json", "nontargets[0]", "not in the allowed pool")
    assert len(line) < 1200


# --- files that are not regular files -----------------------------------------------------------


def test_a_fifo_as_train_file_or_yaml_is_refused(selected: Path, tmp_path: Path):
    fifo = tmp_path / "train.fifo"
    os.mkfifo(fifo)
    done = run_cli(*eval_args(selected, None, fifo))
    assert_clean_failure(done, "train.fifo", "not a regular file")
    args = eval_args(selected)
    args[args.index("--eval_file") + 1] = str(fifo)
    assert_clean_failure(run_cli(*args), "train.fifo", "not a regular file")


def test_results_file_cannot_be_a_device_or_an_input(selected: Path, tmp_path: Path):
    allowed = selected / "allowed_training_set.yaml"
    before = allowed.read_bytes()
    done = run_cli(*eval_args(selected, None, None, "--results_file", str(allowed)))
    assert_clean_failure(done, "--results_file", "is also the input --allowed_training_set")
    assert allowed.read_bytes() == before
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    device = tmp_path / "null-device"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    done = run_cli(*eval_args(selected, None, None, "--results_file", str(device)))
    assert_clean_failure(done, "--results_file", "not a regular file")
    assert stat.S_ISCHR(device.stat().st_mode)


# --- input at fault: exit 2, not "internal error" -----------------------------------------------


def test_vectors_beyond_float32_are_blamed_on_the_file(selected: Path):
    path = selected / "train_embeddings" / "cat.parquet"
    table = pq.read_table(path)
    vectors = np.asarray(table.column("mswc_embedding_vector").to_pylist(), dtype=np.float64)
    vectors[1, 7] = 1e300
    column = pa.array(list(vectors), pa.list_(pa.float64()))
    pq.write_table(pa.table({"clip_id": table.column("clip_id"), "mswc_embedding_vector": column}), path)
    assert_clean_failure(run_cli(*select_args(selected)), "cat.parquet", "beyond float32's range")


def test_no_free_inodes_is_bad_input(dataset: Path, tmp_path: Path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=4", "tmpfs", str(disk)])
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and mount permission)")
    try:
        for index in range(10):
            try:
                (disk / f"f{index}").write_text("x")
            except OSError:
                break
        args = select_args(dataset)
        args[args.index("--outdir") + 1] = str(disk)
        done = run_cli(*args)
        assert_clean_failure(done, str(disk / "train.json"))
        assert done.returncode == 2
    finally:
        subprocess.run(["umount", "-l", str(disk)])


@pytest.mark.parametrize("stdout", ["closed", "full"])
def test_results_written_then_stdout_fails_is_success(selected: Path, stdout: str):
    command = [sys.executable, *eval_args(selected)]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    if stdout == "closed":
        done = subprocess.run(
            ["bash", "-c", 'exec "$@" >&-', "bash", *command],
            env=environment,
            capture_output=False,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    else:
        with open("/dev/full", "w") as full:
            done = subprocess.run(command, env=environment, stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (
        "results were not printed" in done.stderr
        or "could not print the results" in done.stderr
        and "Traceback" not in done.stderr
    )
    assert read_json(selected / "results.json")["n_train"] > 0


PAUSE_AT_NUMPY = """
import sys, time

class PauseAtNumpy:
    \"\"\"Holds the command at its first ``import numpy`` (its heavy imports) until the test interrupts it.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name == "numpy":
            open({marker!r}, "w").close()
            for _ in range(6000):  # up to a minute; the test's Ctrl-C ends it here
                time.sleep(0.01)
        return None

sys.meta_path.insert(0, PauseAtNumpy())
"""


@pytest.mark.parametrize("command", ["eval.py", "-m selection.evaluate"])
def test_ctrl_c_during_imports_is_one_line(selected: Path, tmp_path: Path, command: str):
    """Ctrl-C while the command is importing numpy and the rest (held there by a ``sitecustomize``, so the
    moment does not depend on how fast a loaded machine gets through its imports): one line, exit 130."""
    hook = tmp_path / "hook"
    hook.mkdir()
    started = tmp_path / "started"
    (hook / "sitecustomize.py").write_text(PAUSE_AT_NUMPY.format(marker=str(started)))
    program = [str(REPO / "eval.py")] if command == "eval.py" else command.split()
    process = subprocess.Popen(
        [sys.executable, *program, *eval_args(selected)[1:]],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), str(REPO)])},
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120  # a guard against a hang, not a measurement
    while not started.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert started.exists(), "the command never imported numpy"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("interrupted")


def test_rejected_input_creates_no_output_folder(dataset: Path, tmp_path: Path):
    args = select_args(dataset)
    args[args.index("--outdir") + 1] = str(tmp_path / "new" / "out")
    args[args.index("--allowed_training_set") + 1] = str(tmp_path / "missing.yaml")
    assert_clean_failure(run_cli(*args), "missing.yaml", "not found")
    assert not (tmp_path / "new").exists()
    done = run_cli(
        *eval_args(dataset, None, tmp_path / "missing.json", "--results_file", str(tmp_path / "r" / "x.json"))
    )
    assert_clean_failure(done, "missing.json")
    assert not (tmp_path / "r").exists()


def test_a_damaged_archive_is_fetched_again(tmp_path: Path):
    mirror = tmp_path / "mirror"
    published_like_archives(mirror, tmp_path)
    data = tmp_path / "workspace" / "data"
    data.mkdir(parents=True)
    (data / "dataperf_eng_data.zip").write_bytes((mirror / "dataperf_eng_data.zip").read_bytes()[:40])
    args = ["-m", "selection.download", "--source", "dataperf", "--workspace", str(tmp_path / "workspace")]
    done = run_cli(*args, "--base_url", mirror.as_uri())
    assert done.returncode == 0, done.stderr
    assert "damaged" in done.stderr
    assert (data / "dataperf_en_data" / "eval.yaml").is_file()
    assert zipfile.ZipFile(data / "dataperf_eng_data.zip").testzip() is None
