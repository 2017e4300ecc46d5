"""``evaluate``: score a train.json with the benchmark's frozen classifier, where the benchmark puts it.

Usage::

    python eval.py [--language en|id|pt] [--train_size N] [--train_file F] [--eval_embeddings_dir DIR]
        [--train_embeddings_dir DIR] [--allowed_training_set F] [--eval_file F] [--config_file F]
        [--data_dir DIR] [--results_file F] [--n_jobs N] [--cache_dir DIR|off]

The command itself is :func:`selection.evaluate.evaluate`; this file keeps the benchmark's name for it.
"""

from __future__ import annotations

if __name__ == "__main__":
    from selection.interrupt import exit_quietly_on_ctrl_c  # first: standard library only

    exit_quietly_on_ctrl_c()
    from selection.cli import skip_optional_imports

    skip_optional_imports("pandas")

from selection.cli import run_command
from selection.evaluate import evaluate

__all__ = ["evaluate"]

if __name__ == "__main__":
    run_command(evaluate)
