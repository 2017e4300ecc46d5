"""``bench``: compare selection algorithms on the default experiments with the frozen evaluator.

Usage::

    python -m selection.bench [--algorithms random,cross_validation,cleanlab,clean_coverage]
        [--languages en,pt,id] [--sizes 25,60] [--data_dir workspace/data]
        [--config_file workspace/dataperf_speech_config.yaml] [--metric macro_f1|balanced_accuracy]
        [--output bench_results.json] [--plot bench_results.png]

Each algorithm runs as ``select`` would run it (the plugin class, the config with
``train_set_size_limit`` set to the size), its result is checked like a ``train.json``,
and scored exactly as ``eval.py`` scores it (same row order, same seeds, same metric).
Prints a table (score mean and spread over the evaluation seeds, the other metric,
selection seconds), writes it as JSON and draws it as a PNG bar chart.
"""

from __future__ import annotations

if __name__ == "__main__":
    from selection.cli import exit_quietly_on_ctrl_c

    exit_quietly_on_ctrl_c()

import io
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from selection.cli import run_command
from selection.evaluation import evaluate_selection
from selection.layout import find_experiment
from selection.load import LabelledVectors, class_names_of, embeddings_dict, load_config, load_sample_ids, load_vectors
from selection.plugins import load_algorithm_class, run_algorithm
from selection.validation import BadInputError, check_config, check_same_targets, clip_word
from selection.write import write_json_atomic

log = logging.getLogger("dataperf")

ALGORITHMS = {
    "random": ("selection.implementations.random_selection", "RandomSelection"),
    "cross_validation": ("selection.implementations.cross_validation_selection", "CrossValidationSelection"),
    "cleanlab": ("selection.implementations.cleanlab_selection", "CleanlabSelection"),
    "clean_coverage": ("selection.implementations.coverage_selection", "CleanCoverageSelection"),
}


def benchmark_rows(train_set: dict, pool: LabelledVectors) -> np.ndarray:
    """Pool rows of a selection in the order ``eval.py`` loads them (see :mod:`selection.load`).

    Pool target rows are in parquet row order already, so a target's rows are sorted;
    nontargets are grouped by word in order of first appearance, listed order within.
    """
    row_of = {clip_id: row for row, clip_id in enumerate(pool.ids)}
    rows: list[int] = []
    for ids in train_set["targets"].values():
        rows.extend(sorted(row_of[clip_id] for clip_id in ids))
    by_word: dict[str, list[int]] = {}
    for clip_id in train_set["nontargets"]:
        by_word.setdefault(clip_word(clip_id), []).append(row_of[clip_id])
    for word_rows in by_word.values():
        rows.extend(word_rows)
    return np.array(rows, dtype=np.int64)


@dataclass
class Experiment:
    """One language's experiment, loaded once: the allowed pool and the eval set, both checked."""

    allowed: dict
    evaluation_ids: dict
    class_names: list[str]
    pool: LabelledVectors
    evaluation: LabelledVectors
    embeddings: dict


def load_experiment(folder: Path, *, label: str = "") -> Experiment:
    """Read and check ``folder``'s allowed pool and eval set as ``select`` and ``evaluate`` do."""
    allowed = load_sample_ids(folder / "allowed_training_set.yaml")
    evaluation_ids = load_sample_ids(folder / "eval.yaml")
    check_same_targets(
        allowed,
        evaluation_ids,
        allowed_file=str(folder / "allowed_training_set.yaml"),
        eval_file=str(folder / "eval.yaml"),
    )
    names = class_names_of(allowed)
    pool = load_vectors(allowed, folder / "train_embeddings", class_names=names, desc=f"{label} pool".strip())
    evaluation = load_vectors(
        evaluation_ids,
        folder / "eval_embeddings",
        class_names=names,
        desc=f"{label} eval set".strip(),
        dim=pool.matrix.shape[1],
    )
    return Experiment(allowed, evaluation_ids, names, pool, evaluation, embeddings_dict(allowed, pool))


def score_train_set(experiment: Experiment, train_set: dict, config: dict) -> dict:
    """``evaluate``'s results for a checked selection (rows in ``eval.py``'s order, same seeds and metric)."""
    rows = benchmark_rows(train_set, experiment.pool)
    pool = experiment.pool
    train = LabelledVectors(pool.matrix[rows], pool.labels[rows], [pool.ids[r] for r in rows])
    return evaluate_selection(
        train,
        experiment.evaluation,
        seeds=config["eval_random_seeds"],
        metric=config["metric"],
        class_names=experiment.class_names,
    )


def select_and_score(experiment: Experiment, config: dict) -> tuple[dict, dict, float]:
    """Run the config's algorithm at its ``train_set_size_limit`` as ``select`` does, then score it.

    Returns the checked selection, its results and the selection's seconds.
    """
    algorithm = load_algorithm_class(config, file="command line")
    size = config["train_set_size_limit"]
    train_set, _, seconds = run_algorithm(
        algorithm, allowed_embeddings=experiment.embeddings, allowed=experiment.allowed, train_size=size, config=config
    )
    return train_set, score_train_set(experiment, train_set, config), seconds


def resolve_algorithm(name: str) -> tuple[str, str]:
    """A shipped algorithm's short name, or ``module:Class``, to (module, class name)."""
    if name in ALGORITHMS:
        return ALGORITHMS[name]
    module, _, class_name = name.partition(":")
    if not module or not class_name:
        raise BadInputError(
            f"command line: --algorithms: unknown algorithm {name!r}; expected one of "
            f"{', '.join(ALGORITHMS)} or module:Class"
        )
    return module, class_name


def _as_list(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [part for part in str(value).split(",") if part]


def bench(
    algorithms: str = ",".join(ALGORITHMS),
    languages: str = "en,pt,id",
    sizes: str = "25,60",
    data_dir: str = "workspace/data",
    config_file: str = "workspace/dataperf_speech_config.yaml",
    metric: str | None = None,
    output: str = "bench_results.json",
    plot: str = "bench_results.png",
) -> None:
    """Run every named algorithm at every size on every language's default experiment.

    Parameters
    ----------
    algorithms : str
        Comma-separated names from ``ALGORITHMS`` or ``module:Class`` plugin references.
    languages : str
        Comma-separated language codes; each is ``<data_dir>/dataperf_<lang>_data/`` (or ``<data_dir>/<lang>/``).
    sizes : str
        Comma-separated selection budgets.
    data_dir : str
        Where ``download`` put the experiments.
    config_file : str
        Base config (seeds, metric, the algorithms' own keys); the algorithm keys are replaced.
    metric : {'macro_f1', 'balanced_accuracy'}, optional
        Overrides the config's metric (for scoring and for the algorithms that read it).
    output : str
        The JSON table.
    plot : str
        The PNG chart; an empty string draws none.
    """
    base_config = load_config(config_file)
    if metric is not None:
        base_config = check_config({**base_config, "metric": metric}, file="command line")
    rows_out = []
    total = len(_as_list(languages)) * len(_as_list(algorithms)) * len(_as_list(sizes))
    for language in _as_list(languages):
        experiment = load_experiment(find_experiment(data_dir, language), label=language)
        for name in _as_list(algorithms):
            module, class_name = resolve_algorithm(name)
            for size in [int(s) for s in _as_list(sizes)]:
                config = {
                    **base_config,
                    "selection_algorithm_module": module,
                    "selection_algorithm_class": class_name,
                    "train_set_size_limit": size,
                }
                train_set, results, seconds = select_and_score(experiment, config)
                rows = benchmark_rows(train_set, experiment.pool)
                other = "balanced_accuracy" if config["metric"] == "macro_f1" else "macro_f1"
                row = {
                    "language": language,
                    "algorithm": name,
                    "size": size,
                    "metric": config["metric"],
                    "score": results["score"],
                    "score_std": results["score_std"],
                    other: results[other],
                    "selection_seconds": round(seconds, 2),
                    "n_train": len(rows),
                }
                rows_out.append(row)
                print(
                    f"[{len(rows_out)}/{total}] {language:<4}{name:<18}{size:>5}  "
                    f"{row['score']:.3f} ± {row['score_std']:.3f}  "
                    f"{other} {row[other]:.3f}  {seconds:7.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    write_json_atomic(output, {"created": time.strftime("%Y-%m-%d"), "rows": rows_out})
    if plot:
        draw_chart(rows_out, plot)
    print(format_table(rows_out))
    log.info("wrote %s%s", output, f" and {plot}" if plot else "")


def draw_chart(rows: list[dict], path: str) -> None:
    """Bars of score (mean, with the spread over seeds) per algorithm, grouped by language and size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from selection.write import write_bytes_atomic

    groups = list(dict.fromkeys((row["language"], row["size"]) for row in rows))
    algorithms = list(dict.fromkeys(row["algorithm"] for row in rows))
    by_key = {(row["language"], row["size"], row["algorithm"]): row for row in rows}
    width = 0.8 / max(1, len(algorithms))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.4 * len(groups) + 2), 4.2), dpi=110)
    for index, algorithm in enumerate(algorithms):
        found = [by_key.get((language, size, algorithm)) for language, size in groups]
        positions = [g + (index - (len(algorithms) - 1) / 2) * width for g in range(len(groups))]
        axes.bar(
            positions,
            [row["score"] if row else 0.0 for row in found],
            width,
            yerr=[row["score_std"] if row else 0.0 for row in found],
            capsize=2,
            label=algorithm,
        )
    axes.set_xticks(range(len(groups)), [f"{language} @ {size}" for language, size in groups])
    axes.set_ylabel(rows[0]["metric"] if rows else "score")
    axes.set_ylim(0, 1)
    axes.set_title("selection algorithms, scored by the frozen evaluator (mean ± std over seeds)")
    axes.legend(fontsize="small", ncols=min(4, len(algorithms)))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    write_bytes_atomic(path, buffer.getvalue())


def format_table(rows: list[dict]) -> str:
    """The bench rows as a Markdown table."""
    if not rows:
        return ""
    metric = rows[0]["metric"]
    other = "balanced_accuracy" if metric == "macro_f1" else "macro_f1"
    lines = [
        f"| language | algorithm | size | {metric} (mean ± std over seeds) | {other} | selection s |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['language']} | {row['algorithm']} | {row['size']} | {row['score']:.3f} ± {row['score_std']:.3f} "
            f"| {row[other]:.3f} | {row['selection_seconds']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    run_command(bench)
