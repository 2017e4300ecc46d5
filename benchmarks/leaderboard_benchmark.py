"""Leaderboard benchmark: scoring many submissions with ``eval.py`` per file versus ``selection.leaderboard``.

Usage::

    python benchmarks/leaderboard_benchmark.py [--workspace workspace/] [--submissions 120]
        [--eval_py_files 12] [--repeats 3] [--output leaderboard_benchmark.json]

Builds the full-scale default English experiment if absent, and generates ``--submissions``
train.json files for the English leaderboards (sizes 25 and 60): class-balanced random
selections with different seeds, a few copies of the default algorithm's selection, and a few
bad files (malformed, over the limit, an eval clip). Then measures, as medians of ``--repeats``:

- (a) ``eval.py`` run once per file as a whole process (warm cache), on ``--eval_py_files`` of
  the files, per submission;
- (b) ``selection.leaderboard`` with one worker, and (c) with two workers, each as a whole
  process over every submission (cluster start-up and data loading included): wall time,
  submissions per second, peak memory per worker;
- that every score is equal across (a), (b) and (c).

Writes the figures as JSON and prints a Markdown table.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _run(*args: str, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    if done.returncode not in (0, 2):
        raise SystemExit(f"{args}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started, done


def make_submissions(workspace: Path, folder: Path, count: int) -> list[Path]:
    """``count`` submission files (about half at 25 clips, half at 60) in ``count // 2`` team folders."""
    from selection import load_experiment

    experiment = load_experiment(
        language="en", data_dir=workspace / "data", config=workspace / "dataperf_speech_config.yaml", label="en"
    )
    coverage = {size: experiment.select(size=size) for size in (25, 60)}
    evaluation_clip = experiment.evaluation_ids["nontargets"][0]
    generator = random.Random(0)
    pool = experiment.pool
    by_class: dict[int, list[str]] = {}
    for clip_id, label in zip(pool.ids, pool.labels.tolist()):
        by_class.setdefault(label, []).append(clip_id)
    files = []
    for index in range(count):
        team, size = f"team-{index // 2:03d}", (25, 60)[index % 2]
        path = folder / team / f"en_{size}_train.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        if index % 20 == 7:
            path.write_text("{not json")
        elif index % 20 == 13:
            path.write_text(json.dumps({"targets": {}, "nontargets": [evaluation_clip]}))
        elif index % 10 == 3:
            path.write_text(json.dumps(coverage[size]))
        else:
            picks = {"targets": {}, "nontargets": generator.sample(by_class[0], size // 3)}
            words = experiment.class_names[1:]
            for offset, word in enumerate(words):
                share = (size - size // 3) // len(words) + (offset < (size - size // 3) % len(words))
                picks["targets"][word] = generator.sample(by_class[offset + 1], share)
            path.write_text(json.dumps(picks))
        files.append(path)
    return files


def _board(
    workspace: Path, submissions: Path, outdir: Path, workers: int, bootstrap: int = 1000
) -> tuple[float, dict, list[float], float]:
    shutil.rmtree(outdir, ignore_errors=True)
    seconds, done = _run(
        "-m", "selection.leaderboard", "--submissions", str(submissions), "--data_dir", str(workspace / "data"),
        "--outdir", str(outdir), "--config_file", str(workspace / "dataperf_speech_config.yaml"),
        "--n_workers", str(workers), "--bootstrap", str(bootstrap), "--baselines", "", cwd=REPO,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    peaks = [
        float(value)
        for line in done.stderr.splitlines()
        if line.startswith("peak memory per worker:")
        for value in line.split(":", 1)[1].replace("MB", "").split(",")
    ]
    rows = json.loads((outdir / "leaderboard.json").read_text())["rows"]
    bootstrap_seconds = sum(
        float(line.rsplit(" in ", 1)[1].split()[0])
        for line in done.stderr.splitlines()
        if line.startswith("bootstrap:")
    )
    return (
        seconds,
        {
            (row["team"], row["size"]): (row["status"], row.get("macro_f1"), row.get("balanced_accuracy"))
            for row in rows
        },
        peaks,
        bootstrap_seconds,
    )


def main(
    workspace: str = "workspace/",
    submissions: int = 120,
    eval_py_files: int = 12,
    repeats: int = 3,
    output: str = "leaderboard_benchmark.json",
) -> None:
    """See the module docstring."""
    from selection.download import download
    from selection.inputs.layout import find_experiment

    folder = Path(workspace)
    try:
        find_experiment(folder / "data", "en")
    except Exception:  # noqa: BLE001 - absent: make it
        download(source="synthetic", workspace=str(folder))
    scratch = Path(tempfile.mkdtemp(prefix="leaderboard-benchmark-"))
    try:
        files = make_submissions(folder, scratch / "submissions", submissions)
        report: dict = {"date": time.strftime("%Y-%m-%d"), "submissions": len(files), "repeats": repeats}
        cache = scratch / "cache"
        sample = files[:: max(1, len(files) // eval_py_files)][:eval_py_files]
        data = find_experiment(folder / "data", "en")
        per_file, eval_scores = [], {}
        for repeat in range(repeats):
            for path in sample:
                size = int(path.name.split("_")[1])
                seconds, done = _run(
                    str(REPO / "eval.py"), "--eval_embeddings_dir", str(data / "eval_embeddings"),
                    "--train_embeddings_dir", str(data / "train_embeddings"),
                    "--allowed_training_set", str(data / "allowed_training_set.yaml"),
                    "--eval_file", str(data / "eval.yaml"), "--train_file", str(path), "--train_size", str(size),
                    "--config_file", str(folder / "dataperf_speech_config.yaml"),
                    "--results_file", str(scratch / "r.json"), "--cache_dir", str(cache), cwd=REPO,
                )  # fmt: skip
                if repeat or path != sample[0]:
                    per_file.append(seconds)
                if done.returncode == 0:
                    results = json.loads((scratch / "r.json").read_text())
                    eval_scores[(path.parent.name, size)] = (
                        "scored",
                        results["macro_f1"],
                        results["balanced_accuracy"],
                    )
                else:
                    eval_scores[(path.parent.name, size)] = ("rejected", None, None)
        report["eval_py_seconds_per_file"] = statistics.median(per_file)
        boards = {}
        for workers in (1, 2):
            runs = [
                _board(folder, scratch / "submissions", scratch / f"board{workers}", workers) for _ in range(repeats)
            ]
            seconds = statistics.median(run[0] for run in runs)
            boards[workers] = runs[0][1]
            report[f"leaderboard_{workers}_workers"] = {
                "seconds": seconds,
                "per_second": len(files) / seconds,
                "seconds_per_file": seconds / len(files),
                "peak_mb_per_worker": max(peak for run in runs for peak in run[2]) if runs[0][2] else None,
            }
            report[f"leaderboard_{workers}_workers"]["bootstrap_seconds"] = statistics.median(run[3] for run in runs)
        plain = [_board(folder, scratch / "submissions", scratch / "board0", 2, bootstrap=0) for _ in range(repeats)]
        report["leaderboard_2_workers_no_bootstrap"] = {"seconds": statistics.median(run[0] for run in plain)}
        report["bootstrap_share_of_wall_2_workers"] = (
            report["leaderboard_2_workers"]["seconds"] / report["leaderboard_2_workers_no_bootstrap"]["seconds"] - 1
        )
        equal = boards[1] == boards[2] and all(boards[1][key] == value for key, value in eval_scores.items())
        report["scores_equal"] = equal
        one, two = report["leaderboard_1_workers"], report["leaderboard_2_workers"]
        report["speedup_1_worker_vs_eval_py"] = report["eval_py_seconds_per_file"] / one["seconds_per_file"]
        report["speedup_2_vs_1_workers"] = one["seconds"] / two["seconds"]
        Path(output).write_text(json.dumps(report, indent=2) + "\n")
        print(
            "| way | wall s | submissions/s | s per submission | peak MB per worker |\n"
            "| --- | ---: | ---: | ---: | ---: |\n"
            f"| (a) eval.py per file, warm cache | {report['eval_py_seconds_per_file'] * len(files):.1f} (est.) | "
            f"{1 / report['eval_py_seconds_per_file']:.2f} | {report['eval_py_seconds_per_file']:.2f} | |\n"
            f"| (b) leaderboard, 1 worker | {one['seconds']:.1f} | {one['per_second']:.2f} | "
            f"{one['seconds_per_file']:.2f} | {one['peak_mb_per_worker']:.0f} |\n"
            f"| (c) leaderboard, 2 workers | {two['seconds']:.1f} | {two['per_second']:.2f} | "
            f"{two['seconds_per_file']:.2f} | {two['peak_mb_per_worker']:.0f} |\n\n"
            f"(b) vs (a) per submission: {report['speedup_1_worker_vs_eval_py']:.1f}x; (c) vs (b): "
            f"{report['speedup_2_vs_1_workers']:.2f}x; scores equal everywhere: {equal}\n"
            f"bootstrap (1000 resamples): {two['bootstrap_seconds']:.1f} s of (c)'s wall; (c) without it "
            f"{report['leaderboard_2_workers_no_bootstrap']['seconds']:.1f} s: "
            f"+{100 * report['bootstrap_share_of_wall_2_workers']:.0f}%"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
