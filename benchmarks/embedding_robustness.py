"""Do the benchmark's lessons survive a change of embedding model? The same spoken corpus, several models.

    python benchmarks/embedding_robustness.py --models speech_embedding,kws:MODEL_DIR,kws:STUDENT_DIR
        [--labels teacher,bc-resnet,student] [--workspace workspace/robustness] [--languages en,pt,id]
        [--sizes 25,60] [--algorithms random,cross_validation,cleanlab,clean_coverage] [--scale 1.0]
        [--resamples 1000] [--out robustness.json] [--plot robustness.png]

For every model, ``download --source spoken --model MODEL`` builds the spoken corpus's experiments
into ``<workspace>/<label>/`` (the same clips, the same mislabeled and badly cut ones, the same
splits: only the vectors differ; a folder that is already there is reused, and so is every scored
selection kept under ``<workspace>/<label>/results/``, so an interrupted study resumes). On every experiment
(language) and size, every algorithm selects from the allowed pool and the frozen classifier scores
the selection on the eval set (the shipped config: ten evaluation seeds, macro F1). Each score gets
the leaderboard's 95% interval: a paired bootstrap over the eval clips
(:mod:`selection.board.uncertainty`; ``--resamples`` resamples, the same resamples for every model,
since the eval clips are the same).

Reported, per model: every algorithm's score and interval per cell, the ranking of the algorithms per
cell and overall (mean rank over the cells), the default algorithm's margin over the CV baseline per
cell; and for every pair of models, Kendall's tau between their rankings, per cell and of the overall
ranking. Writes a JSON document, a Markdown table (printed) and a PNG chart.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT, BASELINE = "clean_coverage", "cross_validation"


def _build(model: str, folder: Path, languages: list[str], scale: float) -> None:
    from selection.inputs.layout import experiment_folder_name, experiment_present

    if all(experiment_present(folder / experiment_folder_name(code)) for code in languages):
        return
    command = [sys.executable, "-m", "selection.download", "--source", "spoken", "--data_dir", str(folder),
               "--languages", ",".join(languages), "--scale", str(scale), "--model", model]  # fmt: skip
    subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})


def _scored(experiment, algorithm: str, size: int, folder: Path) -> tuple[dict, object]:
    """One algorithm's selection scored with its per-seed predictions, kept in ``folder`` so a rerun reuses it."""
    import numpy as np

    row_file, predictions_file = folder / f"{algorithm}.json", folder / f"{algorithm}.npy"
    if row_file.is_file() and predictions_file.is_file():
        return json.loads(row_file.read_text()), np.load(predictions_file)
    started = time.perf_counter()
    picked = experiment.select(algorithm, size)
    results = experiment.score(picked, keep_predictions=True, limit=size)
    row = {"algorithm": algorithm, "score": results.score, "score_std": results["score_std"],
           "metric": results["metric"], "seconds": time.perf_counter() - started}  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    np.save(predictions_file, results.predictions)
    row_file.write_text(json.dumps(row) + "\n")
    return row, results.predictions


def _kendall(first: list[str], second: list[str]) -> float:
    """Kendall's tau between two rankings of the same items (best first; no ties)."""
    from scipy.stats import kendalltau

    order = {name: index for index, name in enumerate(second)}
    return float(kendalltau(range(len(first)), [order[name] for name in first]).statistic)


def _ranking(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda name: (-scores[name], name))


def run(args) -> dict:
    import numpy as np

    from selection.board.uncertainty import board_uncertainty, resample_counts, resampled_scores
    from selection.scoring.experiment import load_experiment

    models = [item for item in args.models.split(",") if item]
    labels = (
        [item for item in args.labels.split(",") if item] if args.labels else [f"model{i}" for i in range(len(models))]
    )
    if len(labels) != len(models):
        raise SystemExit("--labels: one label per model")
    languages = args.languages.split(",")
    sizes = [int(size) for size in args.sizes.split(",")]
    algorithms = args.algorithms.split(",")
    workspace = Path(args.workspace)
    for model, label in zip(models, labels):
        _build(model, workspace / label, languages, args.scale)
    config = REPO / "workspace" / "dataperf_speech_config.yaml"
    cells = []
    for code in languages:
        for size in sizes:
            board = f"{code}-{size}"
            counts = None
            for model, label in zip(models, labels):
                experiment = load_experiment(language=code, data_dir=workspace / label, config=str(config))
                truth = np.asarray(experiment.evaluation_labels)
                n_classes = len(experiment.class_names)
                if counts is None:
                    counts = resample_counts(len(truth), args.resamples, board=board)
                rows, resampled = [], []
                for algorithm in algorithms:
                    row, predictions = _scored(experiment, algorithm, size, workspace / label / "results" / board)
                    resampled.append(resampled_scores(truth, predictions, counts, n_classes=n_classes,
                                                      metric=row["metric"]))  # fmt: skip
                    rows.append(row)
                    print(f"[{label} {code} {size}] {algorithm}: {row['score']:.4f}", file=sys.stderr, flush=True)
                uncertainty = board_uncertainty(np.array([row["score"] for row in rows]), np.stack(resampled))
                for row, extra in zip(rows, uncertainty):
                    row.update({"ci_low": extra["ci_low"], "ci_high": extra["ci_high"]})
                scores = {row["algorithm"]: row["score"] for row in rows}
                cells.append({
                    "model": label, "model_name": model, "language": code, "size": size, "rows": rows,
                    "ranking": _ranking(scores),
                    "default_margin_over_cv": (scores[DEFAULT] - scores[BASELINE])
                    if DEFAULT in scores and BASELINE in scores else None,
                    "vector_dims": int(experiment.pool.matrix.shape[1]),
                })  # fmt: skip
    summary = {"models": {}, "pairs": []}
    for label in labels:
        mine = [cell for cell in cells if cell["model"] == label]
        mean_rank = {
            algorithm: float(np.mean([cell["ranking"].index(algorithm) + 1 for cell in mine]))
            for algorithm in algorithms
        }
        summary["models"][label] = {
            "mean_rank": mean_rank,
            "overall_ranking": sorted(algorithms, key=lambda name: (mean_rank[name], name)),
            "default_margin_over_cv": {f"{c['language']}-{c['size']}": c["default_margin_over_cv"] for c in mine},
        }
    for first, second in itertools.combinations(labels, 2):
        per_cell = {}
        for code in languages:
            for size in sizes:
                a = next(c for c in cells if (c["model"], c["language"], c["size"]) == (first, code, size))
                b = next(c for c in cells if (c["model"], c["language"], c["size"]) == (second, code, size))
                per_cell[f"{code}-{size}"] = _kendall(a["ranking"], b["ranking"])
        summary["pairs"].append({
            "models": [first, second],
            "tau_per_cell": per_cell,
            "tau_mean_over_cells": float(np.mean(list(per_cell.values()))),
            "tau_overall": _kendall(summary["models"][first]["overall_ranking"],
                                    summary["models"][second]["overall_ranking"]),
        })  # fmt: skip
    return {"models": dict(zip(labels, models)), "languages": languages, "sizes": sizes, "algorithms": algorithms,
            "scale": args.scale, "resamples": args.resamples, "cells": cells, "summary": summary}  # fmt: skip


def format_tables(document: dict) -> str:
    labels = list(document["models"])
    lines = [
        "| model | language | size | " + " | ".join(document["algorithms"]) + " | ranking | default − CV |",
        "| --- | --- | ---: | " + " | ".join("---:" for _ in document["algorithms"]) + " | --- | ---: |",
    ]
    for cell in document["cells"]:
        scores = {row["algorithm"]: row for row in cell["rows"]}
        shown = [
            f"{scores[name]['score']:.3f} [{scores[name]['ci_low']:.3f}, {scores[name]['ci_high']:.3f}]"
            for name in document["algorithms"]
        ]
        margin = cell["default_margin_over_cv"]
        lines.append(
            f"| {cell['model']} | {cell['language']} | {cell['size']} | "
            + " | ".join(shown)
            + f" | {' > '.join(cell['ranking'])} | {'' if margin is None else f'{margin:+.3f}'} |"
        )
    lines += ["", "| model | overall ranking (mean rank over cells) |", "| --- | --- |"]
    for label in labels:
        model = document["summary"]["models"][label]
        lines.append(f"| {label} | " + ", ".join(f"{name} ({model['mean_rank'][name]:.2f})"
                                                 for name in model["overall_ranking"]) + " |")  # fmt: skip
    lines += [
        "",
        "| models | Kendall's tau per cell | mean over cells | overall ranking |",
        "| --- | --- | ---: | ---: |",
    ]
    for pair in document["summary"]["pairs"]:
        cells = ", ".join(f"{key} {value:+.2f}" for key, value in pair["tau_per_cell"].items())
        lines.append(f"| {' vs '.join(pair['models'])} | {cells} | {pair['tau_mean_over_cells']:+.2f} | "
                     f"{pair['tau_overall']:+.2f} |")  # fmt: skip
    return "\n".join(lines)


def draw(document: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, algorithms = list(document["models"]), document["algorithms"]
    boards = [(code, size) for code in document["languages"] for size in document["sizes"]]
    figure, axes = plt.subplots(1, len(boards), figsize=(3.2 * len(boards), 3.6), sharey=True)
    axes = [axes] if len(boards) == 1 else list(axes)
    width = 0.8 / len(labels)
    for axis, (code, size) in zip(axes, boards):
        for index, label in enumerate(labels):
            cell = next(c for c in document["cells"] if (c["model"], c["language"], c["size"]) == (label, code, size))
            rows = {row["algorithm"]: row for row in cell["rows"]}
            x = [position + index * width for position in range(len(algorithms))]
            heights = [rows[name]["score"] for name in algorithms]
            errors = [[rows[n]["score"] - rows[n]["ci_low"] for n in algorithms],
                      [rows[n]["ci_high"] - rows[n]["score"] for n in algorithms]]  # fmt: skip
            axis.bar(x, heights, width, yerr=errors, label=label, capsize=2)
        axis.set_xticks([p + 0.4 - width / 2 for p in range(len(algorithms))], algorithms, rotation=45, ha="right",
                        fontsize=7)  # fmt: skip
        axis.set_title(f"{code}, {size} clips", fontsize=9)
    axes[0].set_ylabel("macro F1 (95% interval)")
    axes[-1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", required=True)
    parser.add_argument("--labels", default="")
    parser.add_argument("--workspace", default="workspace/robustness")
    parser.add_argument("--languages", default="en,pt,id")
    parser.add_argument("--sizes", default="25,60")
    parser.add_argument("--algorithms", default="random,cross_validation,cleanlab,clean_coverage")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--out", default="robustness.json")
    parser.add_argument("--plot", default="robustness.png")
    args = parser.parse_args()
    document = run(args)
    Path(args.out).write_text(json.dumps(document, indent=1) + "\n")
    if args.plot:
        draw(document, args.plot)
    print(format_tables(document))
    print(f"wrote {args.out}" + (f" and {args.plot}" if args.plot else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
