"""The whole job in one command: make the default dataset if absent, select, evaluate.

Usage::

    python -m selection.run [--workspace workspace/] [--config_file F] [--train_size N]
"""

from __future__ import annotations

from pathlib import Path

from selection.cli import run_command
from selection.download import download
from selection.main import select


def run(workspace: str = "workspace/", config_file: str | None = None, train_size: int | None = None) -> None:
    """``download`` (synthetic, skipped when present), then ``select``, then ``evaluate``.

    Parameters
    ----------
    workspace : str, default='workspace/'
        Folder with the config; receives the dataset, ``train.json`` and ``results.json``.
    config_file : str, optional
        Default ``<workspace>/dataperf_speech_config.yaml``.
    train_size : int, optional
        Overrides the config's ``train_set_size_limit``.
    """
    from eval import evaluate

    folder = Path(workspace)
    config = config_file or str(folder / "dataperf_speech_config.yaml")
    download(source="synthetic", workspace=str(folder))
    select(
        allowed_training_set=str(folder / "allowed_training_set.yaml"),
        train_embeddings_dir=str(folder / "train_embeddings"),
        outdir=str(folder),
        config_file=config,
        train_size=train_size,
    )
    evaluate(
        eval_embeddings_dir=str(folder / "eval_embeddings"),
        train_embeddings_dir=str(folder / "train_embeddings"),
        allowed_training_set=str(folder / "allowed_training_set.yaml"),
        eval_file=str(folder / "eval.yaml"),
        train_file=str(folder / "train.json"),
        config_file=config,
        train_size=train_size,
    )


if __name__ == "__main__":
    run_command(run)
