"""Calibration trial for the spoken corpus: one language, some settings changed, the CV baseline measured.

Usage::

    python benchmarks/spoken_calibration.py --language id [--settings '{"speakers": 40}']
        [--targets baru,tahu,tahun,kita,pergi] [--seed 0] [--outdir calibration/id-trial]

Synthesizes one language of the spoken corpus (:mod:`selection.datasets.spoken`) with any
``SpokenParams`` fields replaced by ``--settings`` (a JSON object) and, with ``--targets``, other
target words (their order decides their clip counts, largest first), unless ``--outdir`` already
holds that experiment. Then it runs the CV baseline and random selection at 25 and 60 clips with
three selection seeds (42, 7, 123; ``bench`` uses 42 only), scores each with the shipped config, and
prints the macro F1 means next to the published baselines. Writes ``<outdir>.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PUBLISHED = {"en": (0.374, 0.413), "pt": (0.423, 0.526), "id": (0.362, 0.435)}
SELECTION_SEEDS = (42, 7, 123)


def main(language: str = "id", settings: str = "{}", targets: str = "", seed: int = 0, outdir: str = "") -> None:
    import numpy as np

    from selection import load_experiment
    from selection.datasets import spoken as spoken_corpus
    from selection.download import make_spoken
    from selection.inputs.layout import experiment_folder_name, experiment_present

    changes = json.loads(settings) if isinstance(settings, str) else dict(settings)
    changes = {key: tuple(value) if isinstance(value, list) else value for key, value in changes.items()}
    if targets:
        words = targets.split(",") if isinstance(targets, str) else list(targets)
        spoken_corpus.SPOKEN_TARGETS[language] = words
    folder = Path(outdir or f"calibration/{language}-trial")
    experiment_folder = folder / experiment_folder_name(language)
    if not experiment_present(experiment_folder):
        params = spoken_corpus.SpokenParams(seed=int(seed), languages=(language,), **changes)
        make_spoken(folder, params=params)
    experiment = load_experiment(
        experiment_folder, config=REPO / "workspace" / "dataperf_speech_config.yaml", label=language
    )
    report = {"language": language, "settings": settings, "targets": targets, "seed": seed, "rows": []}
    for name in ("cross_validation", "random"):
        for position, size in enumerate((25, 60)):
            scores = []
            for selection_seed in SELECTION_SEEDS:
                picked = experiment.select(name, size, config={"selection_random_seed": selection_seed})
                scores.append(experiment.score(picked, limit=size)["score"])
            row = {"algorithm": name, "size": size, "mean": float(np.mean(scores)), "scores": scores}
            row["published_cv"] = PUBLISHED[language][position]
            report["rows"].append(row)
            print(
                f"| {language} | {name} | {size} | {row['mean']:.3f} | "
                f"{' '.join(f'{s:.3f}' for s in scores)} | {row['mean'] - row['published_cv']:+.3f} |"
            )
    Path(f"{folder}.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
