"""``evaluate``: score a train.json with the benchmark's frozen classifier.

Usage::

    python eval.py --eval_embeddings_dir workspace/eval_embeddings/ \\
        --train_embeddings_dir workspace/train_embeddings/ \\
        --allowed_training_set workspace/allowed_training_set.yaml --eval_file workspace/eval.yaml \\
        --train_file workspace/train.json --config_file workspace/dataperf_speech_config.yaml \\
        [--train_size N] [--results_file F] [--n_jobs N] [--cache_dir DIR]
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from selection import cache
from selection.cli import run_command
from selection.evaluation import evaluate_selection, format_results
from selection.load import class_names_of, load_config, load_sample_ids, load_vectors, read_json
from selection.validation import check_n_jobs, check_positive_int, check_same_targets, check_train_set
from selection.write import check_output_dir, write_json_atomic

log = logging.getLogger("dataperf")


def evaluate(
    eval_embeddings_dir: str = "workspace/eval_embeddings/",
    train_embeddings_dir: str = "workspace/train_embeddings/",
    allowed_training_set: str = "workspace/allowed_training_set.yaml",
    eval_file: str = "workspace/eval.yaml",
    train_file: str = "workspace/train.json",
    config_file: str = "workspace/dataperf_speech_config.yaml",
    train_size: int | None = None,
    results_file: str | None = None,
    n_jobs: int = -1,
    cache_dir: str | None = None,
) -> None:
    """Validate ``train_file``, train the frozen classifier per seed, print and write the score.

    Parameters
    ----------
    eval_embeddings_dir, train_embeddings_dir : str
        Folders of ``<word>.parquet`` embeddings for the eval set and the allowed pool.
    allowed_training_set, eval_file : str
        YAML lists of the allowed pool's and the eval set's clip IDs.
    train_file : str
        The selection to score (``train.json``).
    config_file : str
        Harness config: ``train_set_size_limit``, ``eval_random_seeds``, ``metric``.
    train_size : int, optional
        Overrides the config's ``train_set_size_limit``.
    results_file : str, optional
        Where the results JSON goes; default ``results.json`` beside ``train_file``.
    n_jobs : int, default=-1
        Worker threads for the eval set's chunks (joblib); -1 uses every core. The
        score does not depend on it.
    cache_dir : str, optional
        Where the checked ID lists and the loaded eval set are kept between runs
        (:mod:`selection.cache`); default ``$DATAPERF_CACHE_DIR``, else
        ``~/.cache/dataperf-speech``. ``off`` reads the source files every time. The
        score does not depend on it.
    """
    started = time.perf_counter()
    config = load_config(config_file)
    if train_size is not None:
        config["train_set_size_limit"] = check_positive_int(train_size, file="command line", key="--train_size")
    n_jobs = check_n_jobs(n_jobs, file="command line", key="--n_jobs")
    results_path = Path(results_file) if results_file else Path(train_file).parent / "results.json"
    check_output_dir(results_path.parent, create=True)
    cache_dir = cache.resolve_cache_dir(cache_dir)
    allowed = cache.sample_ids(allowed_training_set, cache_dir)
    class_names = class_names_of(allowed)
    eval_key = cache.eval_set_key(eval_file, eval_embeddings_dir, class_names)
    cached_eval = cache.read_eval_set(cache_dir, eval_key, len(class_names))
    evaluation_ids = cached_eval[0] if cached_eval else load_sample_ids(eval_file)
    check_same_targets(allowed, evaluation_ids, allowed_file=allowed_training_set, eval_file=eval_file)
    train_set, warnings = check_train_set(
        read_json(train_file),
        file=str(train_file),
        allowed=allowed,
        limit=config["train_set_size_limit"],
        eval_set=evaluation_ids,
    )
    for warning in warnings:
        log.warning("warning: %s", warning)
    train = load_vectors(train_set, train_embeddings_dir, class_names=class_names, desc="loading the selection")
    if cached_eval:
        evaluation = cached_eval[1]
    else:
        evaluation = load_vectors(
            evaluation_ids, eval_embeddings_dir, class_names=class_names, desc="loading the eval set"
        )
        cache.store_eval_set(cache_dir, eval_key, evaluation_ids, evaluation)
    results = evaluate_selection(
        train,
        evaluation,
        seeds=config["eval_random_seeds"],
        metric=config["metric"],
        class_names=class_names,
        n_jobs=n_jobs,
    )
    results.update(
        n_train=len(train.ids),
        n_eval=len(evaluation.ids),
        train_set_size_limit=config["train_set_size_limit"],
        train_file=str(train_file),
        seconds=round(time.perf_counter() - started, 3),
    )
    write_json_atomic(results_path, results)
    print(format_results(results), file=sys.stdout)
    log.info("wrote %s", results_path)


if __name__ == "__main__":
    run_command(evaluate)
