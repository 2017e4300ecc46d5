"""Evaluator and loader benchmark: where the time goes, and how ``eval.py`` compares with the recipe.

Usage::

    python benchmarks/evaluator_benchmark.py [--workspace workspace/] [--repeats 3] [--sizes 25,60]
        [--algorithms random,clean_coverage,cross_validation] [--scale 1.0] [--output benchmark.json]
        [--whole_process_only] [--breakdown_only]

Builds the default experiment if absent (``selection.download``; ``--scale`` below 1 for a quick
check), then measures, as medians over ``--repeats`` runs:

- as a user waits, whole processes from Python start to results written: ``python -c "import eval"``,
  ``eval.py --cache_dir off``, ``eval.py`` with a warm cache, and the straightforward recipe
  (``benchmarks/straightforward_recipe.py``: PyYAML, pyarrow and scikit-learn as written, no harness
  code); their scores must be equal (``--whole_process_only`` stops there);

where one scoring's time goes after loading (``breakdown``): each step of the shared-work path on
one thread (float64 conversion, SVC fits, logistic regression fit, libsvm's decision values, the
per-seed probabilities, the logistic regression's probabilities, the vote, the metrics) and whole
scorings on one thread and on every core (``--breakdown_only`` stops there);

and, each in a fresh process and timed after imports:

- loading the full allowed pool (pyarrow);
- ``eval.py``'s ``evaluate`` end to end (read and check every file, ten seeds, metrics, write
  results.json), with its cache of checked ID lists and eval set (``selection.scoring.cache``) warm, on a
  first run that fills an empty cache, and with ``--cache_dir off``; warm also with one thread;
- the straightforward recipe in the same process layout: load with the same pyarrow loader, then
  per seed fit the voting classifier and predict the full eval matrix, and score each seed with
  scikit-learn's ``f1_score`` and ``balanced_accuracy_score``. Its scores must equal eval.py's;
- selection seconds per algorithm;
- the peak memory of an evaluation (resident set, above a process that only imported the harness),
  next to the size of the eval matrix.

Prints a table and writes the figures as JSON. Not a timed test: CI only runs it at a small scale.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
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
import numpy as np
from selection.inputs.load import class_names_of, load_config, load_sample_ids, load_vectors, read_json
from selection.inputs.validation import check_train_set
from selection.scoring.evaluation import metric_value, predict_straightforward
from eval import evaluate
import selection.scoring.cache, selection.scoring.fast_predict  # evaluate() imports these: import before timing
started = time.perf_counter()
out = {{}}
if mode == "baseline":
    pass
elif mode == "load_pool":
    allowed = load_sample_ids(ws / "allowed_training_set.yaml")
    load_vectors(allowed, ws / "train_embeddings")
elif mode == "evaluate":
    evaluate(eval_embeddings_dir=str(ws / "eval_embeddings"), train_embeddings_dir=str(ws / "train_embeddings"),
             allowed_training_set=str(ws / "allowed_training_set.yaml"), eval_file=str(ws / "eval.yaml"),
             train_file=extra["train_file"], config_file=str(ws / "dataperf_speech_config.yaml"),
             train_size=extra["size"], results_file=extra["results_file"], n_jobs=extra["n_jobs"],
             cache_dir=extra["cache_dir"])
    out["seconds"] = time.perf_counter() - started
    results = json.loads(Path(extra["results_file"]).read_text())
    out.update(macro_f1=results["macro_f1"], balanced_accuracy=results["balanced_accuracy"],
               eval_matrix_bytes=results["n_eval"] * 1024 * 4)
elif mode == "straightforward":
    config = load_config(ws / "dataperf_speech_config.yaml")
    allowed = load_sample_ids(ws / "allowed_training_set.yaml")
    evaluation_ids = load_sample_ids(ws / "eval.yaml")
    train_set, _ = check_train_set(read_json(extra["train_file"]), file="train.json", allowed=allowed,
                                   limit=extra["size"], eval_set=evaluation_ids)
    names = class_names_of(allowed)
    train = load_vectors(train_set, ws / "train_embeddings", class_names=names)
    evaluation = load_vectors(evaluation_ids, ws / "eval_embeddings", class_names=names)
    out["load_seconds"] = time.perf_counter() - started
    scores = {{"macro_f1": [], "balanced_accuracy": []}}
    seeds = config["eval_random_seeds"]
    for predicted in predict_straightforward(train.matrix, train.labels, evaluation.matrix, seeds):
        for name in scores:
            scores[name].append(metric_value(name, evaluation.labels, predicted))
    out.update({{name: float(np.mean(values)) for name, values in scores.items()}})
    out["eval_matrix_bytes"] = evaluation.matrix.nbytes
if "seconds" not in out:
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


def _timed_process(*args: str) -> float:
    """Wall seconds of one whole process, from start to exit (what a user waits for)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{args[:2]} failed: {done.stderr.strip().splitlines()[-1:]}")
    return seconds


def whole_process(folder: Path, size: int, train_file: Path, repeats: int) -> dict:
    """``eval.py`` cold and warm and the straightforward recipe, each timed as a whole process."""
    scratch = Path(tempfile.mkdtemp(prefix="benchmark-process-"))
    config = folder / "dataperf_speech_config.yaml"
    eval_py = [
        str(REPO / "eval.py"), "--eval_embeddings_dir", str(folder / "eval_embeddings"),
        "--train_embeddings_dir", str(folder / "train_embeddings"),
        "--allowed_training_set", str(folder / "allowed_training_set.yaml"), "--eval_file", str(folder / "eval.yaml"),
        "--train_file", str(train_file), "--config_file", str(config), "--train_size", str(size),
    ]  # fmt: skip
    recipe = [str(REPO / "benchmarks" / "straightforward_recipe.py"), str(folder), str(train_file), str(config)]
    try:
        cache = scratch / "cache"
        _timed_process(*eval_py, "--cache_dir", str(cache), "--results_file", str(scratch / "fill.json"))
        times: dict[str, list[float]] = {"import_eval": [], "off": [], "warm": [], "straightforward": []}
        for _ in range(repeats):
            times["import_eval"].append(_timed_process("-c", "import eval"))
            times["off"].append(
                _timed_process(*eval_py, "--cache_dir", "off", "--results_file", str(scratch / "off.json"))
            )
            times["warm"].append(
                _timed_process(*eval_py, "--cache_dir", str(cache), "--results_file", str(scratch / "warm.json"))
            )
            times["straightforward"].append(_timed_process(*recipe, str(scratch / "straight.json")))
        results = {name: json.loads((scratch / f"{name}.json").read_text()) for name in ("off", "warm", "straight")}
        row = {"size": size, **{f"{name}_seconds": statistics.median(values) for name, values in times.items()}}
        row["runs"] = {name: values for name, values in times.items()}
        row["speedup_off"] = row["straightforward_seconds"] / row["off_seconds"]
        row["speedup_warm"] = row["straightforward_seconds"] / row["warm_seconds"]
        row["macro_f1"] = results["straight"]["macro_f1"]
        row["balanced_accuracy"] = results["straight"]["balanced_accuracy"]
        row["scores_equal"] = all(
            abs(results[name][metric] - results["straight"][metric]) <= 1e-9
            for name in ("off", "warm")
            for metric in ("macro_f1", "balanced_accuracy")
        )
        return row
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _as_list(value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [p for p in str(value).split(",") if p]


def breakdown(folder: Path, train_file: Path, size: int, repeats: int) -> dict:
    """Where one scoring's time goes, after loading: each step of the shared-work path on one thread.

    The steps are those of :func:`selection.scoring.fast_predict.predict_shared` run one after the
    other on the whole eval set (chunks of ``CHUNK_ROWS``): converting rows to float64, the SVC fits
    (every seed) and the logistic regression fit, libsvm's decision values, the per-seed
    probabilities, the logistic regression's probabilities, the vote, and the metrics; the compiled
    loops' decision values and probabilities-with-vote (:mod:`selection.scoring.exact_kernel`,
    :mod:`selection.scoring.exact_coupling`; their predictions must equal libsvm's); then whole
    ``Experiment.score`` calls with one thread and with every core, through libsvm's loops as a single
    ``eval.py`` scores and through the compiled loops as a long-lived process does after its first
    scorings. Medians over ``repeats``.
    """
    import warnings

    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import LabelEncoder
    from threadpoolctl import threadpool_limits

    from selection.scoring import exact_coupling, exact_kernel, fast_predict
    from selection.scoring.evaluation import score_predictions
    from selection.scoring.experiment import load_experiment

    experiment = load_experiment(folder, config=folder / "dataperf_speech_config.yaml", cache_dir="off").load()
    checked = experiment.check(train_file, limit=size)
    evaluation = experiment.evaluation  # loaded: pool and eval set in memory, as a long-lived process has them
    train = experiment._train_vectors(checked, dim=evaluation.matrix.shape[1])
    seeds = experiment.config["eval_random_seeds"]
    chunks = range(0, len(evaluation.ids), fast_predict.CHUNK_ROWS)
    steps: dict[str, list[float]] = {}
    if exact_kernel.available():  # compile the loops before any timing (about two seconds, once per process)
        fast_predict.predict_shared(train.matrix, train.labels, evaluation.matrix[:64], seeds[:1], compiled=True)
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        steps.setdefault(name, []).append(now - clock[0])
        clock[0] = now

    for _ in range(repeats):
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            encoder = LabelEncoder().fit(train.labels)
            encoded = encoder.transform(train.labels)
            n_classes = len(encoder.classes_)
            clock[0] = time.perf_counter()
            svcs = [fast_predict._fit_svc(train.matrix, encoded, seed) for seed in seeds]
            lap("svc_fits")
            logistic = LogisticRegression(random_state=seeds[0]).fit(train.matrix, encoded)
            lap("logistic_fit")
            # float64 on 64-byte boundaries, as the scorer's per-thread buffers are (exact_kernel.aligned_empty)
            chunk_rows = fast_predict.CHUNK_ROWS
            rows = [exact_kernel.aligned_copy(evaluation.matrix[start : start + chunk_rows]) for start in chunks]
            lap("convert_float64")
            decision = [fast_predict._raw_decision(svcs[0], part) for part in rows]
            lap("decision_values")
            probabilities = [
                [fast_predict.svc_probabilities(d, svc.probA_, svc.probB_, n_classes) for d in decision] for svc in svcs
            ]
            lap("svc_probabilities")
            logistic_proba = [fast_predict.logistic_probabilities(logistic, part) for part in rows]
            lap("logistic_probabilities")
            predictions = [
                encoder.classes_[
                    np.concatenate([np.argmax((p + q) / 2, axis=1) for p, q in zip(seed_proba, logistic_proba)])
                ]
                for seed_proba in probabilities
            ]
            lap("vote")
            score_predictions(
                evaluation.labels, predictions, seeds=seeds, metric="macro_f1", class_names=experiment.class_names
            )
            lap("metrics")
            if exact_kernel.available():
                compiled_decision = [exact_kernel.row_decision(svcs[0], part) for part in rows]  # compiled already
                lap("compiled_decision_values")
                prob_a, prob_b = np.array([s.probA_ for s in svcs]), np.array([s.probB_ for s in svcs])
                compiled_votes = [
                    exact_coupling.seed_votes(d, prob_a, prob_b, q) for d, q in zip(compiled_decision, logistic_proba)
                ]
                lap("compiled_probabilities_and_vote")
                assert all(
                    np.array_equal(encoder.classes_[np.concatenate([v[i] for v in compiled_votes])], predictions[i])
                    for i in range(len(seeds))
                ), "the compiled loops' predictions differ from libsvm's"
        # libsvm's loops (never the compiled ones, however many scorings this process has done), then the compiled
        for suffix, compile_after in [("", float("inf"))] + ([("_compiled", 0)] if exact_kernel.available() else []):
            saved = fast_predict.COMPILE_AFTER_PAIRS
            fast_predict.COMPILE_AFTER_PAIRS = compile_after
            try:
                clock[0] = time.perf_counter()
                experiment.score(checked, limit=size, n_jobs=1)
                lap("score_one_thread" + suffix)
                experiment.score(checked, limit=size, n_jobs=-1)
                lap("score_every_core" + suffix)
            finally:
                fast_predict.COMPILE_AFTER_PAIRS = saved
    return {"size": size, "n_eval": len(evaluation.ids), **{name: statistics.median(v) for name, v in steps.items()}}


BREAKDOWN_STEPS = (
    "convert_float64", "svc_fits", "logistic_fit", "decision_values", "svc_probabilities", "logistic_probabilities",
    "vote", "metrics",
)  # fmt: skip


def run_benchmark(
    workspace: str = "workspace/",
    repeats: int = 3,
    sizes: str = "25,60",
    algorithms: str = "random,clean_coverage,cross_validation",
    scale: float = 1.0,
    output: str = "benchmark.json",
    whole_process_only: bool = False,
    breakdown_only: bool = False,
) -> None:
    """See the module docstring."""
    from selection.download import download
    from selection.inputs.layout import experiment_present
    from selection.inputs.load import embeddings_dict, load_config, load_sample_ids, load_vectors
    from selection.inputs.write import write_json_atomic
    from selection.plugins import load_algorithm_class, resolve_algorithm, run_algorithm

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
        report.setdefault("breakdown", []).append(breakdown(folder, train_file, size, repeats))
        if breakdown_only:
            train_file.unlink()
            continue
        report.setdefault("whole_process", []).append(whole_process(folder, size, train_file, repeats))
        if whole_process_only:
            train_file.unlink()
            continue
        runs: dict[str, list[dict]] = {"warm": [], "first": [], "off": [], "warm_one_thread": [], "straight": []}
        scratch = Path(tempfile.mkdtemp(prefix="benchmark-"))
        warm_cache = scratch / "cache"
        common = {"train_file": str(train_file), "size": size, "results_file": str(scratch / "results.json")}
        _child("evaluate", folder, **common, n_jobs=-1, cache_dir=str(warm_cache))  # fills the warm cache
        for repeat in range(repeats):
            runs["warm"].append(_child("evaluate", folder, **common, n_jobs=-1, cache_dir=str(warm_cache)))
            first_cache = scratch / f"empty-{repeat}"
            runs["first"].append(_child("evaluate", folder, **common, n_jobs=-1, cache_dir=str(first_cache)))
            shutil.rmtree(first_cache, ignore_errors=True)
            runs["off"].append(_child("evaluate", folder, **common, n_jobs=-1, cache_dir="off"))
            runs["warm_one_thread"].append(_child("evaluate", folder, **common, n_jobs=1, cache_dir=str(warm_cache)))
            runs["straight"].append(_child("straightforward", folder, **common))
        shutil.rmtree(scratch, ignore_errors=True)
        train_file.unlink()
        straight = runs["straight"]
        row = {
            "size": size,
            **{f"eval_py_{name}_seconds": _median(runs[name], "seconds") for name in runs if name != "straight"},
            "straightforward_seconds": _median(straight, "seconds"),
            "straightforward_load_seconds": _median(straight, "load_seconds"),
            "eval_py_macro_f1": runs["warm"][0]["macro_f1"],
            "straightforward_macro_f1": straight[0]["macro_f1"],
            "eval_py_balanced_accuracy": runs["warm"][0]["balanced_accuracy"],
            "straightforward_balanced_accuracy": straight[0]["balanced_accuracy"],
            "eval_matrix_bytes": straight[0]["eval_matrix_bytes"],
            "eval_py_warm_peak_bytes_above_imports": _median(runs["warm"], "max_rss_bytes") - base,
            "eval_py_off_peak_bytes_above_imports": _median(runs["off"], "max_rss_bytes") - base,
            "straightforward_peak_bytes_above_imports": _median(straight, "max_rss_bytes") - base,
        }
        for name in ("warm", "first", "off"):
            row[f"speedup_{name}"] = row["straightforward_seconds"] / row[f"eval_py_{name}_seconds"]
        every_run = [run for name in runs for run in runs[name]]
        row["scores_equal"] = all(
            abs(run[metric] - straight[0][metric]) <= 1e-9
            for run in every_run
            for metric in ("macro_f1", "balanced_accuracy")
        )
        report["evaluation"].append(row)
    write_json_atomic(output, report)
    print(format_report(report))


def measure(**options) -> dict:
    """Run the benchmark and return the report (for tests)."""
    run_benchmark(**options)
    return json.loads(Path(options.get("output", "benchmark.json")).read_text())


def format_report(report: dict) -> str:
    lines = []
    if report.get("breakdown"):
        lines += [
            "One scoring after loading, step by step on one thread (medians), then whole scorings:",
            "",
            "| size | " + " | ".join(f"{step} s" for step in BREAKDOWN_STEPS) + " | sum s | score, 1 thread s "
            "| score, every core s | compiled: decision values s | compiled: probabilities and vote s "
            "| compiled: score, 1 thread s | compiled: score, every core s |",
            "| ---: |" + " ---: |" * (len(BREAKDOWN_STEPS) + 7),
        ]
        compiled = ("compiled_decision_values", "compiled_probabilities_and_vote")
        compiled += ("score_one_thread_compiled", "score_every_core_compiled")
        for row in report["breakdown"]:
            cells = " | ".join(f"{row[step]:.3f}" for step in BREAKDOWN_STEPS)
            total = sum(row[step] for step in BREAKDOWN_STEPS)
            extra = " | ".join(f"{row[step]:.3f}" if step in row else "-" for step in compiled)
            lines.append(
                f"| {row['size']} | {cells} | {total:.3f} | {row['score_one_thread']:.3f} | "
                f"{row['score_every_core']:.3f} | {extra} |"
            )
        lines.append("")
    if not report.get("whole_process"):
        return "\n".join(lines)
    lines += [
        "Whole processes, Python start to results written (medians):",
        "",
        "| size | import eval s | eval.py --cache_dir off s | eval.py warm cache s | straightforward recipe s | "
        "speedup off / warm | macro F1 | balanced acc. | scores equal |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in report.get("whole_process", []):
        lines.append(
            f"| {row['size']} | {row['import_eval_seconds']:.2f} | {row['off_seconds']:.2f} | "
            f"{row['warm_seconds']:.2f} | "
            f"{row['straightforward_seconds']:.2f} | {row['speedup_off']:.1f}x / {row['speedup_warm']:.1f}x | "
            f"{row['macro_f1']:.4f} | {row['balanced_accuracy']:.4f} | {row['scores_equal']} |"
        )
    if not report.get("evaluation"):
        return "\n".join(lines)
    lines += [
        "",
        "After imports, in the same process layout (medians):",
        "",
        f"pool load ({report['pool_clips']} clips): {report['pool_load_seconds']:.2f} s (median of "
        f"{report['repeats']})",
        "",
        "| size | eval.py s: warm cache (1 thread) | first run | no cache | straightforward s (loading) | speedup: "
        "warm / first / no cache | macro F1 (both) | balanced acc. (both) | equal | peak MB above imports "
        "(warm / no cache / straightforward) | eval matrix MB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for row in report["evaluation"]:
        lines.append(
            f"| {row['size']} | {row['eval_py_warm_seconds']:.2f} ({row['eval_py_warm_one_thread_seconds']:.2f}) | "
            f"{row['eval_py_first_seconds']:.2f} | {row['eval_py_off_seconds']:.2f} | "
            f"{row['straightforward_seconds']:.2f} ({row['straightforward_load_seconds']:.2f}) | "
            f"{row['speedup_warm']:.1f}x / {row['speedup_first']:.1f}x / {row['speedup_off']:.1f}x | "
            f"{row['eval_py_macro_f1']:.4f} / {row['straightforward_macro_f1']:.4f} | "
            f"{row['eval_py_balanced_accuracy']:.4f} / {row['straightforward_balanced_accuracy']:.4f} | "
            f"{row['scores_equal']} | {row['eval_py_warm_peak_bytes_above_imports'] / 1e6:.0f} / "
            f"{row['eval_py_off_peak_bytes_above_imports'] / 1e6:.0f} / "
            f"{row['straightforward_peak_bytes_above_imports'] / 1e6:.0f} | {row['eval_matrix_bytes'] / 1e6:.0f} |"
        )
    if not report.get("selection"):
        return "\n".join(lines)
    lines += ["", "| algorithm | size | selection s |", "| --- | ---: | ---: |"]
    lines += [f"| {r['algorithm']} | {r['size']} | {r['seconds']:.1f} |" for r in report["selection"]]
    return "\n".join(lines)


if __name__ == "__main__":
    import fire

    fire.Fire(run_benchmark)
