"""``evaluate``: score a train.json with the benchmark's frozen classifier (``eval.py`` runs this).

Usage::

    python eval.py [--language en|id|pt] [--train_size N] [--train_file F] [--eval_embeddings_dir DIR]
        [--train_embeddings_dir DIR] [--allowed_training_set F] [--eval_file F] [--config_file F]
        [--data_dir DIR] [--results_file F] [--n_jobs N] [--cache_dir DIR|off]

(also ``python -m selection.evaluate`` and ``dataperf-speech evaluate``). Every flag has a
default under ``workspace/`` (see the reference page).
"""

from __future__ import annotations

if __name__ == "__main__":
    from selection.cli import exit_quietly_on_ctrl_c, skip_optional_imports

    exit_quietly_on_ctrl_c()
    skip_optional_imports("pandas")

import logging
import time
from pathlib import Path

from selection.cli import print_output, run_command
from selection.inputs.layout import (
    DEFAULT_WORKSPACE,
    check_language,
    experiment_paths,
    leaderboard_note,
    results_file_name,
    submission_file_name,
)

log = logging.getLogger("dataperf")


def evaluate(
    eval_embeddings_dir: str | None = None,
    train_embeddings_dir: str | None = None,
    allowed_training_set: str | None = None,
    eval_file: str | None = None,
    train_file: str | None = None,
    config_file: str = "workspace/dataperf_speech_config.yaml",
    train_size: int | None = None,
    results_file: str | None = None,
    n_jobs: int = -1,
    cache_dir: str | None = None,
    language: str | None = None,
    data_dir: str | None = None,
) -> None:
    """Validate a train.json, train the frozen classifier per seed, print and write the score.

    Parameters
    ----------
    eval_embeddings_dir, train_embeddings_dir : str, optional
        Folders of ``<word>.parquet`` embeddings for the eval set and the allowed pool;
        default ``workspace/eval_embeddings/`` and ``workspace/train_embeddings/``, or the
        language's experiment's with ``language``.
    allowed_training_set, eval_file : str, optional
        YAML lists of the allowed pool's and the eval set's clip IDs (defaults as above).
    train_file : str, optional
        The selection to score; default ``workspace/train.json``, or
        ``workspace/{language}_{train_size}_train.json`` with ``language``.
    config_file : str
        Harness config: ``train_set_size_limit``, ``eval_random_seeds``, ``metric``.
    train_size : int, optional
        Overrides the config's ``train_set_size_limit``.
    results_file : str, optional
        Where the results JSON goes; default ``results.json`` (``{language}_{train_size}_results.json``
        with ``language``) beside ``train_file``.
    n_jobs : int, default=-1
        Worker threads for the eval set's chunks (joblib); -1 uses every core. The
        score does not depend on it.
    cache_dir : str, optional
        Where the checked ID lists and the loaded eval set are kept between runs
        (:mod:`selection.scoring.cache`); default ``$DATAPERF_CACHE_DIR``, else
        ``~/.cache/dataperf-speech``. ``off`` reads the source files every time. The
        score does not depend on it.
    language : str, optional
        The final benchmark's ``--language`` (``en``, ``id``, ``pt``): inputs default to that
        language's experiment under ``data_dir``, the train file to its leaderboard's name.
    data_dir : str, optional
        Where the languages' experiments are; default ``workspace/data``.
    """
    started = time.perf_counter()
    # Imported here, not at the top: `import eval` stays cheap, and the evaluate path imports only what it uses.
    from selection.inputs.load import DOWNLOAD_HINT, SELECT_HINT, load_config, require_inputs
    from selection.inputs.validation import check_n_jobs, check_positive_int
    from selection.inputs.write import check_output_file, write_json_atomic
    from selection.scoring.evaluation import format_results
    from selection.scoring.experiment import load_experiment

    if language is not None:
        language = check_language(language)
    defaults = experiment_paths(language, workspace=DEFAULT_WORKSPACE, data_dir=data_dir)
    eval_embeddings_dir = eval_embeddings_dir or str(defaults["eval_embeddings_dir"])
    train_embeddings_dir = train_embeddings_dir or str(defaults["train_embeddings_dir"])
    allowed_training_set = allowed_training_set or str(defaults["allowed_training_set"])
    eval_file = eval_file or str(defaults["eval_file"])
    require_inputs(
        {
            "--allowed_training_set": allowed_training_set,
            "--eval_file": eval_file,
            "--eval_embeddings_dir": eval_embeddings_dir,
            "--train_embeddings_dir": train_embeddings_dir,
            "--config_file": config_file,
        },
        hint=DOWNLOAD_HINT,
    )
    config = load_config(config_file)
    if train_size is not None:
        config["train_set_size_limit"] = check_positive_int(train_size, file="command line", key="--train_size")
    limit = config["train_set_size_limit"]
    if language is not None and leaderboard_note(limit):
        log.warning("warning: %s", leaderboard_note(limit))
    if train_file is None:
        name = submission_file_name(language, limit) if language is not None else "train.json"
        train_file = str(DEFAULT_WORKSPACE / name)
    require_inputs({"--train_file": train_file}, hint=SELECT_HINT)
    n_jobs = check_n_jobs(n_jobs, file="command line", key="--n_jobs")
    results_path = check_output_file(
        Path(results_file)
        if results_file
        else Path(train_file).parent / (results_file_name(language, limit) if language else "results.json"),
        inputs={
            "--train_file": train_file,
            "--allowed_training_set": allowed_training_set,
            "--eval_file": eval_file,
            "--config_file": config_file,
        },
        flag="--results_file",
    )
    experiment = load_experiment(
        allowed_training_set=allowed_training_set,
        train_embeddings_dir=train_embeddings_dir,
        eval_embeddings_dir=eval_embeddings_dir,
        eval_file=eval_file,
        config=config,
        cache_dir=cache_dir,
    )
    results = experiment.score(str(train_file), n_jobs=n_jobs).to_dict()
    results["seconds"] = round(time.perf_counter() - started, 3)
    write_json_atomic(results_path, results)
    log.info("wrote %s", results_path)
    print_output(format_results(results), written=str(results_path))


if __name__ == "__main__":
    run_command(evaluate)
