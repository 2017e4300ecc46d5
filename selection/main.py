"""``select``: run the configured selection algorithm on the allowed pool, write train.json.

Usage::

    python -m selection.main --allowed_training_set workspace/allowed_training_set.yaml \\
        --train_embeddings_dir workspace/train_embeddings/ --outdir workspace/ \\
        [--config_file F] [--train_size N] [--audio_dir DIR]
"""

from __future__ import annotations

import logging

from selection.cli import run_command
from selection.load import embeddings_dict, load_audio, load_config, load_sample_ids, load_vectors
from selection.plugins import load_algorithm_class, run_algorithm
from selection.validation import check_positive_int
from selection.write import check_output_dir, write_json_atomic

log = logging.getLogger("dataperf")


def select(
    allowed_training_set: str = "workspace/allowed_training_set.yaml",
    train_embeddings_dir: str = "workspace/train_embeddings/",
    outdir: str = "workspace/",
    config_file: str = "workspace/dataperf_speech_config.yaml",
    train_size: int | None = None,
    audio_dir: str | None = None,
) -> None:
    """Select at most ``train_size`` clips from the allowed pool and write ``<outdir>/train.json``.

    Parameters
    ----------
    allowed_training_set : str
        YAML listing the allowed pool's clip IDs.
    train_embeddings_dir : str
        Folder of ``<word>.parquet`` embeddings covering the allowed pool.
    outdir : str
        Folder that receives ``train.json`` (created if missing).
    config_file : str
        Harness config (``train_set_size_limit``, algorithm module and class, seeds, metric).
    train_size : int, optional
        Overrides the config's ``train_set_size_limit``.
    audio_dir : str, optional
        Folder of 16 kHz wavs at ``<audio_dir>/<clip_id>``; loaded into each clip's ``audio``.
    """
    config = load_config(config_file)
    if train_size is not None:
        config["train_set_size_limit"] = check_positive_int(train_size, file="command line", key="--train_size")
    limit = config["train_set_size_limit"]
    algorithm = load_algorithm_class(config, file=str(config_file))
    out_path = check_output_dir(outdir, create=True) / "train.json"
    allowed = load_sample_ids(allowed_training_set)
    vectors = load_vectors(allowed, train_embeddings_dir, desc="loading the allowed pool")
    audio = load_audio(vectors.ids, audio_dir) if audio_dir is not None else None
    embeddings = embeddings_dict(allowed, vectors, audio)
    log.info(
        "selecting at most %d of %d clips with %s.%s",
        limit,
        len(vectors.ids),
        config["selection_algorithm_module"],
        config["selection_algorithm_class"],
    )
    train_set, warnings, seconds = run_algorithm(
        algorithm,
        allowed_embeddings=embeddings,
        allowed=allowed,
        train_size=limit,
        config=config,
        audio_flag=audio is not None,
    )
    for warning in warnings:
        log.warning("warning: %s", warning)
    write_json_atomic(out_path, train_set)
    total = sum(map(len, train_set["targets"].values())) + len(train_set["nontargets"])
    log.info("wrote %s: %d clips, selected in %.1f s", out_path, total, seconds)


def main(argv: list[str] | None = None) -> None:
    run_command(select, argv)


if __name__ == "__main__":
    main()
