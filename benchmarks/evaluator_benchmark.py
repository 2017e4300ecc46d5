"""Evaluator and loader benchmark: where the time goes, and how the shared-work evaluator compares.

Usage::

    python benchmarks/evaluator_benchmark.py [--workspace workspace/] [--repeats 3] [--sizes 25,60]
        [--algorithms random,clean_coverage,cross_validation] [--scale 1.0] [--output benchmark.json]

Builds the default experiment if absent (``selection.download``; ``--scale`` below 1 for a quick
check), then measures, as medians over ``--repeats`` runs, each in a fresh process:

- loading the full allowed pool (pyarrow);
- evaluating a selection end to end (load, validate, ten seeds, metrics; timed after imports) two
  ways in the same process layout: ``eval.py``'s shared-work path (with its default ``n_jobs=-1``,
  and with one thread), and the straightforward recipe (per seed, fit the voting classifier and
  predict the full eval matrix); both load with the same pyarrow loader, and their scores must
  be equal; the loading part is reported separately;
- selection seconds per algorithm;
- the peak memory of an evaluation (resident set, above a process that only imported the harness),
  next to the size of the eval matrix.

Prints a table and writes the figures as JSON. Not a timed test: CI only runs it at a small scale.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
mode, workspace, extra = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
from pathlib import Path
ws = Path(workspace)
from selection.load import class_names_of, load_config, load_sample_ids, load_vectors, read_json
from selection.validation import check_train_set
from selection.evaluation import evaluate_selection
started = time.perf_counter()
out = {{}}
if mode == "baseline":
    pass
elif mode == "load_pool":
    allowed = load_sample_ids(ws / "allowed_training_set.yaml")
    load_vectors(allowed, ws / "train_embeddings")
elif mode in ("shared", "straightforward"):
    config = load_config(ws / "dataperf_speech_config.yaml")
    allowed = load_sample_ids(ws / "allowed_training_set.yaml")
    evaluation_ids = load_sample_ids(ws / "eval.yaml")
    train_set, _ = check_train_set(read_json(extra["train_file"]), file="train.json", allowed=allowed,
                                   limit=extra["size"], eval_set=evaluation_ids)
    names = class_names_of(allowed)
    train = load_vectors(train_set, ws / "train_embeddings", class_names=names)
    evaluation = load_vectors(evaluation_ids, ws / "eval_embeddings", class_names=names)
    out["load_seconds"] = time.perf_counter() - started
    results = evaluate_selection(train, evaluation, seeds=config["eval_random_seeds"], metric=config["metric"],
                                 class_names=names, method=mode, n_jobs=extra.get("n_jobs", 1))
    out.update(score=results["score"], macro_f1=results["macro_f1"],
               balanced_accuracy=results["balanced_accuracy"], eval_matrix_bytes=evaluation.matrix.nbytes)
out["seconds"] = time.perf_counter() - started
# VmHWM, not ru_maxrss: on Linux ru_maxrss survives exec, so it would report the parent's peak
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
out["max_rss_bytes"] = int(status["VmHWM"].split()[0]) * 1024 if "VmHWM" in status else (
    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps(out))
"""


def _child(mode: str, workspace: Path, **extra) -> dict:
    code = _CHILD.format(repo=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", code, mode, str(workspace), json.dumps(extra)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark child {mode} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _as_list(value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [p for p in str(value).split(",") if p]


def run_benchmark(
    workspace: str = "workspace/",
    repeats: int = 3,
    sizes: str = "25,60",
    algorithms: str = "random,clean_coverage,cross_validation",
    scale: float = 1.0,
    output: str = "benchmark.json",
) -> None:
    """See the module docstring."""
    from selection.bench import resolve_algorithm
    from selection.download import download, experiment_present
    from selection.load import embeddings_dict, load_config, load_sample_ids, load_vectors
    from selection.plugins import load_algorithm_class, run_algorithm
    from selection.write import write_json_atomic

    folder = Path(workspace)
    if not experiment_present(folder):
        download(source="synthetic", workspace=str(folder), scale=scale)
    base = _child("baseline", folder)["max_rss_bytes"]
    report: dict = {"date": time.strftime("%Y-%m-%d"), "repeats": repeats, "workspace": str(folder)}

    loads = [_child("load_pool", folder) for _ in range(repeats)]
    report["pool_load_seconds"] = _median(loads, "seconds")

    config = load_config(folder / "dataperf_speech_config.yaml")
    allowed = load_sample_ids(folder / "allowed_training_set.yaml")
    pool = load_vectors(allowed, folder / "train_embeddings")
    report["pool_clips"] = len(pool.ids)
    embeddings = embeddings_dict(allowed, pool)
    report["selection"] = []
    report["evaluation"] = []
    for size in [int(s) for s in _as_list(sizes)]:
        train_file = None
        for name in _as_list(algorithms):
            module, class_name = resolve_algorithm(name)
            run_config = {
                **config,
                "selection_algorithm_module": module,
                "selection_algorithm_class": class_name,
                "train_set_size_limit": size,
            }
            algorithm = load_algorithm_class(run_config, file="benchmark")
            seconds = []
            for _ in range(repeats if name != "cross_validation" else 1):
                train_set, _, spent = run_algorithm(
                    algorithm, allowed_embeddings=embeddings, allowed=allowed, train_size=size, config=run_config
                )
                seconds.append(spent)
            report["selection"].append(
                {"algorithm": name, "size": size, "seconds": statistics.median(seconds), "runs": len(seconds)}
            )
            if train_file is None:
                train_file = folder / f".benchmark_train_{size}.json"
                write_json_atomic(train_file, train_set)
        shared, single, straight = [], [], []
        for _ in range(repeats):
            shared.append(_child("shared", folder, train_file=str(train_file), size=size, n_jobs=-1))
            single.append(_child("shared", folder, train_file=str(train_file), size=size, n_jobs=1))
            straight.append(_child("straightforward", folder, train_file=str(train_file), size=size))
        train_file.unlink()
        row = {
            "size": size,
            "shared_seconds": _median(shared, "seconds"),
            "shared_one_thread_seconds": _median(single, "seconds"),
            "straightforward_seconds": _median(straight, "seconds"),
            "shared_load_seconds": _median(shared, "load_seconds"),
            "straightforward_load_seconds": _median(straight, "load_seconds"),
            "shared_macro_f1": shared[0]["macro_f1"],
            "straightforward_macro_f1": straight[0]["macro_f1"],
            "shared_balanced_accuracy": shared[0]["balanced_accuracy"],
            "straightforward_balanced_accuracy": straight[0]["balanced_accuracy"],
            "eval_matrix_bytes": shared[0]["eval_matrix_bytes"],
            "shared_peak_bytes_above_imports": _median(shared, "max_rss_bytes") - base,
            "straightforward_peak_bytes_above_imports": _median(straight, "max_rss_bytes") - base,
        }
        row["speedup"] = row["straightforward_seconds"] / row["shared_seconds"]
        row["model_speedup"] = (row["straightforward_seconds"] - row["straightforward_load_seconds"]) / (
            row["shared_seconds"] - row["shared_load_seconds"]
        )
        row["scores_equal"] = (
            abs(row["shared_macro_f1"] - row["straightforward_macro_f1"]) <= 1e-9
            and abs(row["shared_balanced_accuracy"] - row["straightforward_balanced_accuracy"]) <= 1e-9
        )
        report["evaluation"].append(row)
    write_json_atomic(output, report)
    print(format_report(report))


def measure(**options) -> dict:
    """Run the benchmark and return the report (for tests)."""
    run_benchmark(**options)
    return json.loads(Path(options.get("output", "benchmark.json")).read_text())


def format_report(report: dict) -> str:
    lines = [
        f"pool load ({report['pool_clips']} clips): {report['pool_load_seconds']:.2f} s (median of "
        f"{report['repeats']})",
        "",
        "| size | eval.py s (1 thread) | straightforward s | speedup | of which loading s (both) | speedup after "
        "loading | macro F1 (both) | balanced acc. (both) | equal | peak MB above imports (eval.py / "
        "straightforward) | eval matrix MB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for row in report["evaluation"]:
        lines.append(
            f"| {row['size']} | {row['shared_seconds']:.2f} ({row['shared_one_thread_seconds']:.2f}) | "
            f"{row['straightforward_seconds']:.2f} | {row['speedup']:.1f}x | "
            f"{row['shared_load_seconds']:.2f} / {row['straightforward_load_seconds']:.2f} | "
            f"{row['model_speedup']:.1f}x | {row['shared_macro_f1']:.4f} / {row['straightforward_macro_f1']:.4f} | "
            f"{row['shared_balanced_accuracy']:.4f} / {row['straightforward_balanced_accuracy']:.4f} | "
            f"{row['scores_equal']} | {row['shared_peak_bytes_above_imports'] / 1e6:.0f} / "
            f"{row['straightforward_peak_bytes_above_imports'] / 1e6:.0f} | {row['eval_matrix_bytes'] / 1e6:.0f} |"
        )
    lines += ["", "| algorithm | size | selection s |", "| --- | ---: | ---: |"]
    lines += [f"| {r['algorithm']} | {r['size']} | {r['seconds']:.1f} |" for r in report["selection"]]
    return "\n".join(lines)


if __name__ == "__main__":
    import fire

    fire.Fire(run_benchmark)
