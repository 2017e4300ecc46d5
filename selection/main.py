"""``select``: run the configured selection algorithm on the allowed pool, write train.json.

Usage::

    python -m selection.main [--language en|id|pt] [--train_size N] [--outdir DIR]
        [--allowed_training_set F] [--train_embeddings_dir DIR] [--config_file F]
        [--data_dir DIR] [--audio_dir DIR] [--plugin_dir DIR]

Every flag has a default under ``workspace/`` (see docs/reference.md).
"""

from __future__ import annotations

if __name__ == "__main__":
    from selection.cli import exit_quietly_on_ctrl_c

    exit_quietly_on_ctrl_c()

import logging
from pathlib import Path

from selection.cli import run_command
from selection.inputs.layout import (
    DEFAULT_WORKSPACE,
    check_language,
    experiment_paths,
    leaderboard_note,
    submission_file_name,
)
from selection.inputs.load import (
    DOWNLOAD_HINT,
    load_config,
    require_inputs,
)
from selection.inputs.validation import check_positive_int
from selection.inputs.write import check_output_file, write_json_atomic
from selection.plugins import add_plugin_dir, load_algorithm_class

log = logging.getLogger("dataperf")


def select(
    allowed_training_set: str | None = None,
    train_embeddings_dir: str | None = None,
    outdir: str = "workspace/",
    config_file: str = "workspace/dataperf_speech_config.yaml",
    train_size: int | None = None,
    audio_dir: str | None = None,
    plugin_dir: str | None = None,
    language: str | None = None,
    data_dir: str | None = None,
) -> None:
    """Select at most ``train_size`` clips from the allowed pool and write them as a train.json.

    Parameters
    ----------
    allowed_training_set : str, optional
        YAML listing the allowed pool's clip IDs; default ``workspace/allowed_training_set.yaml``,
        or the language's experiment's with ``language``.
    train_embeddings_dir : str, optional
        Folder of ``<word>.parquet`` embeddings covering the allowed pool; default beside the
        allowed list's default.
    outdir : str, default='workspace/'
        Folder that receives ``train.json``, or ``{language}_{train_size}_train.json`` with
        ``language`` (created if missing).
    config_file : str
        Harness config (``train_set_size_limit``, algorithm module and class, seeds, metric).
    train_size : int, optional
        Overrides the config's ``train_set_size_limit``.
    audio_dir : str, optional
        Folder of 16 kHz wavs at ``<audio_dir>/<clip_id>``; loaded into each clip's ``audio``.
    plugin_dir : str, optional
        Folder put first on the import path, so that ``selection_algorithm_module`` can name a
        module kept there (how a container or MLCube run gets a participant's own algorithm).
    language : str, optional
        The final benchmark's ``--language`` (``en``, ``id``, ``pt``): inputs default to
        ``<data_dir>/dataperf_{language}_data/`` and the output is named for its leaderboard.
    data_dir : str, optional
        Where the languages' experiments are; default ``workspace/data``.
    """
    if language is not None:
        language = check_language(language)
    defaults = experiment_paths(language, workspace=DEFAULT_WORKSPACE, data_dir=data_dir)
    allowed_training_set = allowed_training_set or str(defaults["allowed_training_set"])
    train_embeddings_dir = train_embeddings_dir or str(defaults["train_embeddings_dir"])
    require_inputs({"--allowed_training_set": allowed_training_set, "--config_file": config_file}, hint=DOWNLOAD_HINT)
    config = load_config(config_file)
    if plugin_dir is not None:
        add_plugin_dir(plugin_dir)
    if train_size is not None:
        config["train_set_size_limit"] = check_positive_int(train_size, file="command line", key="--train_size")
    limit = config["train_set_size_limit"]
    if language is not None and leaderboard_note(limit):
        log.warning("warning: %s", leaderboard_note(limit))
    load_algorithm_class(config, file=str(config_file))  # a bad module or class fails before any data is read
    out_name = submission_file_name(language, limit) if language is not None else "train.json"
    out_path = check_output_file(
        Path(outdir) / out_name,
        inputs={"--allowed_training_set": allowed_training_set, "--config_file": config_file},
        flag="--outdir",
    )
    from selection.scoring.experiment import load_experiment

    experiment = load_experiment(
        allowed_training_set=allowed_training_set,
        train_embeddings_dir=train_embeddings_dir,
        config=config,
        with_eval=False,
    )
    log.info(
        "selecting at most %d of %d clips with %s.%s",
        limit,
        len(experiment.pool.ids),
        config["selection_algorithm_module"],
        config["selection_algorithm_class"],
    )
    train_set = experiment.select(audio_dir=audio_dir)
    for warning in train_set.warnings:
        log.warning("warning: %s", warning)
    seconds = train_set.seconds
    write_json_atomic(out_path, dict(train_set))
    total = sum(map(len, train_set["targets"].values())) + len(train_set["nontargets"])
    log.info("wrote %s: %d clips, selected in %.1f s", out_path, total, seconds)


def main(argv: list[str] | None = None) -> None:
    run_command(select, argv)


if __name__ == "__main__":
    main()
