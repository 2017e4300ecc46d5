"""Per-clip report benchmark: does ``explain`` find planted mislabeled picks, and how long does it take?

Usage::

    python benchmarks/explain_benchmark.py --experiments DIR[,DIR...] [--sizes 25,60] [--planted 6]
        [--trials 3] [--against pool] [--correlate] [--speed] [--output explain_benchmark.json]

For each experiment (a folder written by ``download``, with the ``pool_faults.json`` truth the
built-in corpora write) and size: the default algorithm (``clean_coverage``) selects from the pool;
``--planted`` of its target picks are replaced by known mislabeled pool clips of the same label
(unpicked, drawn with the trial's seed); the report runs in pool mode (``with_eval=False``: no
eval data is read). A planted clip counts as found when it is among the 10 picks ranked most
harmful or marked ``suspect``. Reported per cell: found (median over trials, and each trial),
how many picks were marked suspect and how many of those are faulty by the truth, and the
report's seconds (median). With ``--correlate``, also the unplanted selection's report in both
modes: how well the pool estimate stands in for the eval set (the Spearman correlation of the
picks' leave-one-out effects, the two scores, and each mode's seconds). With ``--speed``, only the
time: per experiment and size, the default algorithm's selection explained ``--trials`` + 1 times in one
process, in each mode; the first report's seconds (it compiles the loops and computes the pool's
figures) and the median of the others. Not a timed test.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from selection.datasets.faults import read_pool_faults  # noqa: E402
from selection.scoring.experiment import load_experiment  # noqa: E402


def planted_selection(picked: dict, faults: dict[str, str], allowed: dict, planted: int, seed: int):
    """``picked`` with ``planted`` target picks replaced by unpicked mislabeled clips of the same label."""
    rng = np.random.default_rng(seed)
    chosen = {clip for ids in picked["targets"].values() for clip in ids} | set(picked["nontargets"])
    slots = [(word, clip) for word, ids in picked["targets"].items() for clip in ids]
    order = rng.permutation(len(slots))
    targets = {word: list(ids) for word, ids in picked["targets"].items()}
    planted_ids = []
    for index in order:
        if len(planted_ids) == planted:
            break
        word, clip = slots[index]
        wrong = [c for c in allowed["targets"][word] if faults.get(c) == "mislabeled" and c not in chosen]
        if not wrong:
            continue
        replacement = wrong[int(rng.integers(len(wrong)))]
        targets[word][targets[word].index(clip)] = replacement
        chosen.add(replacement)
        planted_ids.append(replacement)
    return {"targets": targets, "nontargets": list(picked["nontargets"])}, planted_ids


def run_cell(folder: Path, size: int, planted: int, trials: int, against: str) -> dict:
    experiment = load_experiment(folder, with_eval=against == "eval", cache_dir="off")
    faults = read_pool_faults(folder)
    if faults is None:
        raise SystemExit(f"{folder}: no pool_faults.json (rebuild it with download --overwrite)")
    picked = experiment.select("clean_coverage", size)
    found, suspects, suspect_faulty, seconds = [], [], [], []
    for trial in range(trials):
        selection, planted_ids = planted_selection(picked, faults, experiment.allowed, planted, seed=trial)
        started = time.perf_counter()
        report = experiment.explain(selection, against=against, limit=size)
        seconds.append(time.perf_counter() - started)
        flagged = {clip["id"] for clip in report["clips"][:10]} | {
            clip["id"] for clip in report["clips"] if clip["verdict"] == "suspect"
        }
        found.append(sum(1 for clip_id in planted_ids if clip_id in flagged))
        marked = [clip["id"] for clip in report["clips"] if clip["verdict"] == "suspect"]
        suspects.append(len(marked))
        suspect_faulty.append(sum(1 for clip_id in marked if clip_id in faults))
        print(
            f"{folder.name} @ {size} trial {trial}: found {found[-1]} of {len(planted_ids)}; "
            f"{len(marked)} suspect, {suspect_faulty[-1]} of them faulty; {seconds[-1]:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    return {
        "experiment": str(folder),
        "size": size,
        "planted": planted,
        "found_median": statistics.median(found),
        "found": found,
        "suspects": suspects,
        "suspects_faulty": suspect_faulty,
        "seconds_median": round(statistics.median(seconds), 2),
    }


def correlate_cell(folder: Path, size: int) -> dict:
    """The unplanted default selection's report against the pool and against the eval set, compared."""
    from scipy.stats import spearmanr

    experiment = load_experiment(folder, cache_dir="off")
    picked = experiment.select("clean_coverage", size)
    reports, seconds = {}, {}
    for mode in ("pool", "eval"):
        started = time.perf_counter()
        reports[mode] = experiment.explain(picked, against=mode, limit=size)
        seconds[mode] = round(time.perf_counter() - started, 2)
    effects = {mode: {clip["id"]: clip["effect"] for clip in report["clips"]} for mode, report in reports.items()}
    ids = [clip_id for clip_id, effect in effects["pool"].items() if effect is not None]
    rho = spearmanr([effects["pool"][i] for i in ids], [effects["eval"][i] for i in ids])[0]
    row = {
        "experiment": str(folder),
        "size": size,
        "spearman_effects": round(float(rho), 3),
        "pool_score": round(reports["pool"]["estimate"]["score"], 4),
        "eval_score": round(reports["eval"]["estimate"]["score"], 4),
        "seconds": seconds,
    }
    print(f"{folder.name} @ {size}: {row}", file=sys.stderr, flush=True)
    return row


def speed_cell(folder: Path, size: int, against: str, runs: int) -> dict:
    """Seconds of ``runs`` reports of the default algorithm's selection, one after the other in one process.

    The first pays what a process pays once (the compiled loops' compile, the pool's selection-independent
    figures); the median of the later ones is what each further report takes.
    """
    experiment = load_experiment(folder, with_eval=against == "eval", cache_dir="off")
    picked = experiment.select("clean_coverage", size)
    seconds = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        experiment.explain(picked, against=against, limit=size)
        seconds.append(round(time.perf_counter() - started, 2))
    row = {
        "experiment": str(folder),
        "size": size,
        "against": against,
        "first_seconds": seconds[0],
        "seconds": seconds[1:],
        "seconds_median": statistics.median(seconds[1:]),
    }
    print(f"{folder.name} @ {size}, {against}: {row}", file=sys.stderr, flush=True)
    return row


def main(
    experiments: str, sizes: str = "25,60", planted: int = 6, trials: int = 3, against: str = "pool",
    output: str = "explain_benchmark.json", correlate: bool = False, speed: bool = False,
) -> None:  # fmt: skip
    if speed:
        rows = [
            speed_cell(Path(folder), int(size), mode, trials)
            for folder in str(experiments).split(",") if folder
            for size in str(sizes).split(",") if size
            for mode in ("pool", "eval")
        ]  # fmt: skip
        Path(output).write_text(json.dumps({"speed": rows}, indent=2) + "\n")
        print("| experiment | size | against | first report (s) | next reports (s) | median (s) |")
        print("| --- | ---: | --- | ---: | --- | ---: |")
        for row in rows:
            print(
                f"| {row['experiment']} | {row['size']} | {row['against']} | {row['first_seconds']} | "
                f"{', '.join(map(str, row['seconds']))} | {row['seconds_median']} |"
            )
        return
    rows, correlations = [], []
    for folder in [Path(part) for part in str(experiments).split(",") if part]:
        for size in [int(part) for part in str(sizes).split(",") if part]:
            rows.append(run_cell(folder, size, planted, trials, against))
            if correlate:
                correlations.append(correlate_cell(folder, size))
    document = {"against": against, "rows": rows, "correlations": correlations}
    Path(output).write_text(json.dumps(document, indent=2) + "\n")
    print("| experiment | size | planted | found (median; trials) | suspects (faulty) | seconds |")
    print("| --- | ---: | ---: | --- | --- | ---: |")
    for row in rows:
        print(
            f"| {row['experiment']} | {row['size']} | {row['planted']} | {row['found_median']} "
            f"({', '.join(map(str, row['found']))}) | "
            f"{', '.join(f'{s} ({f})' for s, f in zip(row['suspects'], row['suspects_faulty']))} | "
            f"{row['seconds_median']} |"
        )
    if correlations:
        columns = ("experiment", "size", "Spearman of effects, pool vs eval", "pool estimate", "eval score")
        print("\n| " + " | ".join(columns) + " | seconds (pool, eval) |")
        print("| --- | ---: | ---: | ---: | ---: | --- |")
        for row in correlations:
            print(
                f"| {row['experiment']} | {row['size']} | {row['spearman_effects']} | {row['pool_score']} | "
                f"{row['eval_score']} | {row['seconds']['pool']}, {row['seconds']['eval']} |"
            )


if __name__ == "__main__":
    from selection.cli import run_command

    run_command(main)
