"""The width table: BC-ResNet-τ on the built-in commands corpus, several seeds, with and without distillation,
beside a logistic-regression baseline on the speech-embedding vectors the harness already computes.

    python benchmarks/kws_widths.py [--workspace workspace/] [--widths 1,3] [--seeds 0,1,2] [--epochs 30]
        [--distilled 1] [--outdir workspace/models/width-table]

For every seed: each width is trained by ``train_kws`` (12-class task, held-out speakers); then each
``--distilled`` width again with the widest of ``--widths`` (same seed) as its teacher. A model
folder that already holds a finished model is read, not retrained, so an interrupted table resumes.
The baseline: ``embed``'s default model (Google's speech embedding, 192 values per clip) on the
same clips of the same splits (``_silence_`` clips get the same kind of noise the trainer adds),
then scikit-learn's ``LogisticRegression`` on standardised vectors, fitted on the training split.

Writes ``<outdir>/width_table.json``, ``width_table.md`` and ``width_table.png`` (test accuracy
against parameters, one point per seed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _train(workspace: Path, folder: Path, width: float, seed: int, epochs: int, teacher: Path | None) -> dict:
    report = folder / "report.json"
    if not report.is_file():
        command = [sys.executable, "-m", "selection.train_kws", "--workspace", str(workspace), "--width", f"{width:g}",
                   "--seed", str(seed), "--epochs", str(epochs), "--outdir", str(folder)]  # fmt: skip
        if teacher is not None:
            command += ["--teacher", str(teacher)]
        if folder.exists():
            command += ["--resume"]
        subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(report.read_text())


def _baseline(workspace: Path) -> dict:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from selection.kws.data import SILENCE, load_corpus
    from selection.speech.model import SpeechEmbedding

    corpus = load_corpus(workspace / "commands", "12", seed=0)
    silence = corpus.classes.index(SILENCE)
    rng = np.random.default_rng(0)
    model = SpeechEmbedding()
    vectors = {}
    for name, split in corpus.splits.items():
        waves = split.waves.astype(np.float32) / 32768.0
        for row in np.flatnonzero(split.labels == silence):
            recording = corpus.noise[rng.integers(len(corpus.noise))]
            start = rng.integers(0, recording.shape[0] - 16000 + 1)
            waves[row] = np.clip(recording[start : start + 16000] * rng.uniform(0, 1), -1, 1)
        vectors[name] = model.embed(waves)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    classifier.fit(vectors["train"], corpus.splits["train"].labels)
    return {
        name: float(np.mean(classifier.predict(vectors[name]) == corpus.splits[name].labels))
        for name in ("validation", "test")
    }


def _plot(rows: list[dict], baseline: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 4))
    for distilled, marker in ((False, "o"), (True, "^")):
        chosen = [row for row in rows if row["distilled"] == distilled]
        if chosen:
            axis.scatter([row["params"] for row in chosen], [row["test_accuracy"] for row in chosen], marker=marker,
                         label="distilled" if distilled else "trained alone")  # fmt: skip
    axis.axhline(baseline["test"], color="grey", linestyle="--", label="speech embedding + logistic regression")
    axis.set_xscale("log")
    axis.set_xlabel("parameters")
    axis.set_ylabel("test accuracy (held-out speakers)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", default="workspace/")
    parser.add_argument("--widths", default="1,3")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--distilled", default="1")
    parser.add_argument("--outdir", default=None)
    args = parser.parse_args()
    workspace = Path(args.workspace)
    out = Path(args.outdir) if args.outdir else workspace / "models" / "width-table"
    if not (workspace / "commands").is_dir():
        subprocess.run([sys.executable, "-m", "selection.download", "--source", "commands", "--workspace",
                        str(workspace)], check=True, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    widths = [float(part) for part in args.widths.split(",")]
    distilled = [float(part) for part in args.distilled.split(",") if part]
    seeds = [int(part) for part in args.seeds.split(",")]
    widest = max(widths)
    rows = []
    for seed in seeds:
        for width in [widest] + [w for w in widths if w != widest]:
            report = _train(workspace, out / f"bc-resnet-{width:g}-seed{seed}", width, seed, args.epochs, None)
            rows.append({"width": width, "seed": seed, "distilled": False, **_figures(report)})
        for width in distilled:
            teacher = out / f"bc-resnet-{widest:g}-seed{seed}"
            folder = out / f"bc-resnet-{width:g}-distilled-seed{seed}"
            report = _train(workspace, folder, width, seed, args.epochs, teacher)
            rows.append({"width": width, "seed": seed, "distilled": True, **_figures(report)})
    baseline = _baseline(workspace)
    summary = []
    for width, is_distilled in sorted({(row["width"], row["distilled"]) for row in rows}):
        chosen = [row for row in rows if row["width"] == width and row["distilled"] == is_distilled]
        tests = [row["test_accuracy"] for row in chosen]
        summary.append({
            "width": width, "distilled": is_distilled, "params": chosen[0]["params"], "macs": chosen[0]["macs"],
            "seeds": len(chosen), "test_mean": statistics.mean(tests),
            "test_spread": (max(tests) - min(tests)) if len(tests) > 1 else 0.0,
            "validation_mean": statistics.mean(row["validation_accuracy"] for row in chosen),
            "seconds_per_epoch": statistics.median(row["seconds_per_epoch"] for row in chosen),
            "test_per_seed": tests,
        })  # fmt: skip
    document = {"epochs": args.epochs, "task": "12", "teacher_width": widest, "rows": rows, "summary": summary,
                "baseline": {"model": "speech_embedding + LogisticRegression", **baseline}}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "width_table.json").write_text(json.dumps(document, indent=2) + "\n")
    lines = [
        "| model | params | multiply-adds | seeds | test accuracy, mean | spread (max − min) | validation | s/epoch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary:
        name = f"BC-ResNet-{row['width']:g}" + (f", distilled from τ = {widest:g}" if row["distilled"] else "")
        lines.append(
            f"| {name} | {row['params']:,} | {row['macs']:,} | {row['seeds']} | {row['test_mean']:.4f} | "
            f"{row['test_spread']:.4f} | {row['validation_mean']:.4f} | {row['seconds_per_epoch']:.1f} |"
        )
    lines.append(f"| speech embedding (192-d) + logistic regression | | | | {baseline['test']:.4f} | | "
                 f"{baseline['validation']:.4f} | |")  # fmt: skip
    (out / "width_table.md").write_text("\n".join(lines) + "\n")
    _plot(rows, baseline, out / "width_table.png")
    print("\n".join(lines))


def _figures(report: dict) -> dict:
    return {
        "params": report["params"], "macs": report["macs"], "test_accuracy": report["accuracy"]["test"],
        "validation_accuracy": report["accuracy"]["validation"], "seconds_per_epoch": report["seconds_per_epoch"],
        "best_epoch": report["best_epoch"],
    }  # fmt: skip


if __name__ == "__main__":
    main()
