"""The whole job in one command: make the default dataset if absent, select, evaluate.

Usage::

    python -m selection.run [--workspace workspace/] [--config_file F] [--train_size N] [--language en|id|pt]
        [--plugin_dir DIR]
"""

from __future__ import annotations

if __name__ == "__main__":
    from selection.cli import exit_quietly_on_ctrl_c

    exit_quietly_on_ctrl_c()

import logging
from pathlib import Path

from selection.cli import run_command
from selection.download import download
from selection.inputs.layout import check_language, experiment_paths, experiment_present, submission_file_name
from selection.inputs.load import load_config
from selection.inputs.validation import split_flag_list
from selection.main import select
from selection.plugins import add_plugin_dir, check_algorithm_names, load_algorithm_class

log = logging.getLogger("dataperf")


def run(
    workspace: str = "workspace/",
    config_file: str | None = None,
    train_size: int | None = None,
    language: str | None = None,
    plugin_dir: str | None = None,
    baselines: str = "random,cross_validation",
) -> None:
    """``download`` (synthetic, skipped when present), then ``select``, then ``evaluate``.

    A workspace that already holds an experiment at its root (one ``selection.embed`` made, say)
    is used as it is.

    Parameters
    ----------
    workspace : str, default='workspace/'
        Folder with the config; receives the dataset, the train.json and the results.
    config_file : str, optional
        Default ``<workspace>/dataperf_speech_config.yaml``.
    train_size : int, optional
        Overrides the config's ``train_set_size_limit``.
    language : str, optional
        Work on that language's experiment (``<workspace>/data/dataperf_{language}_data/``) and
        name the files for its leaderboard, as ``select --language`` and ``evaluate --language`` do.
    plugin_dir : str, optional
        Folder put first on the import path, so that the config can name your algorithm's module
        kept there (as ``select --plugin_dir``); the algorithm is imported before any data is read.
    baselines : str, default='random,cross_validation'
        Shipped algorithms run on the same experiment at the same size afterwards, so that the score
        is printed beside theirs (and written to ``<workspace>/comparison.json``); empty for none.
    """
    from selection.evaluate import evaluate

    folder = Path(workspace)
    config = config_file or str(folder / "dataperf_speech_config.yaml")
    if language is not None:
        language = check_language(language)
    if plugin_dir is not None:
        add_plugin_dir(plugin_dir)
    load_algorithm_class(load_config(config), file=config)  # a bad module or class fails before any data is read
    compared = check_algorithm_names(split_flag_list(baselines or "", flag="--baselines"), flag="--baselines")
    if language is not None or not experiment_present(folder):
        download(source="synthetic", workspace=str(folder))
    paths = experiment_paths(language, workspace=folder, data_dir=folder / "data")
    select(
        allowed_training_set=str(paths["allowed_training_set"]),
        train_embeddings_dir=str(paths["train_embeddings_dir"]),
        outdir=str(folder),
        config_file=config,
        train_size=train_size,
        language=language,
        plugin_dir=plugin_dir,
    )
    size = train_size if train_size is not None else load_config(config)["train_set_size_limit"]
    evaluate(
        eval_embeddings_dir=str(paths["eval_embeddings_dir"]),
        train_embeddings_dir=str(paths["train_embeddings_dir"]),
        allowed_training_set=str(paths["allowed_training_set"]),
        eval_file=str(paths["eval_file"]),
        train_file=str(folder / (submission_file_name(language, size) if language else "train.json")),
        config_file=config,
        train_size=train_size,
        language=language,
    )
    if compared:
        _compare(folder, paths, config, size, language, compared)


def _compare(folder: Path, paths: dict, config: str, size: int, language: str | None, names: list[str]) -> None:
    """Print the score beside the shipped baselines' on the same experiment and size; keep it as JSON."""
    from selection.cli import print_output
    from selection.inputs.load import read_json
    from selection.inputs.write import write_json_atomic
    from selection.scoring.experiment import load_experiment

    results = read_json(folder / "results.json" if not language else folder / f"{language}_{size}_results.json")
    experiment = load_experiment(
        allowed_training_set=paths["allowed_training_set"], train_embeddings_dir=paths["train_embeddings_dir"],
        eval_embeddings_dir=paths["eval_embeddings_dir"], eval_file=paths["eval_file"], config=config,
    )  # fmt: skip
    log.info("scoring the baselines %s on the same experiment for comparison (--baselines '' skips it)",
             ", ".join(names))  # fmt: skip
    scores = {name: experiment.score(experiment.select(name, size), limit=size).score for name in names}
    document = {"metric": results["metric"], "train_set_size_limit": size, "yours": results["score"],
                "baselines": scores}  # fmt: skip
    write_json_atomic(folder / "comparison.json", document)
    lines = [f"{results['metric']} on the same eval clips, at most {size} clips each (higher is better):",
             f"  {'your selection':<44}{results['score']:.4f}"]  # fmt: skip
    for name, score in scores.items():
        note = " (the benchmark's baseline)" if name == "cross_validation" else ""
        lines.append(f"  {name + note:<44}{score:.4f}")
    print_output("\n".join(lines), written=str(folder / "comparison.json"))


if __name__ == "__main__":
    from selection.cli import exit_quietly_on_ctrl_c

    exit_quietly_on_ctrl_c()


if __name__ == "__main__":
    run_command(run)
