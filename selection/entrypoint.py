"""One command, many tasks: the container's entry point and the ``dataperf-speech`` console command.

``dataperf-speech TASK [--name value ...]``: each task in :data:`TASKS` (``download``, ``select``,
``evaluate``, ``run``, ``submit``, ``bench``, ``leaderboard``, ``embed``, ``explain``, ``train_kws``,
``synthesize``, ``distill_embedding``) maps to its command (``select`` to ``selection.main``,
``evaluate`` to ``eval.py``'s function, the others to ``selection.<task>``); anything else prints
usage and exits 2. MLCube passes its parameters as ``--name=value``, which these accept.
"""

from __future__ import annotations

import sys

from selection.cli import EXIT_BAD_INPUT, exit_quietly_on_ctrl_c, run_command

USAGE = """usage: dataperf-speech TASK [--name value ...]   (TASK --help lists its flags)
tasks:
  download     put a dataset in the workspace (--source synthetic|spoken|commands|dataperf, --workspace DIR)
  select       run the configured selection algorithm, write train.json
  evaluate     score train.json with the frozen classifier, write results.json
  run          the whole job: download if absent, select, evaluate
  submit       one checked {language}_{size}_train.json per leaderboard, and a scorecard
  bench        compare selection algorithms across languages and sizes (or --family)
  leaderboard  score every team's submissions (--submissions, --data_dir, --outdir), rank them
  embed        turn <audio_dir>/<word>/<clip> recordings into an experiment (--audio_dir, --outdir)
  explain      a per-clip report on a train.json (explain.json, explain.html), from the pool alone
  train_kws    train a BC-ResNet keyword spotter on spoken words into a model folder (needs requirements-kws.txt)
  synthesize   record words of your choice with the bundled eSpeak NG into <outdir>/<word>/<clip>.wav
  distill_embedding  a small embedding model distilled from a big one (needs requirements-kws.txt)
"""


TASKS = {
    "download": ("selection.download", "download"),
    "select": ("selection.main", "select"),
    "evaluate": ("selection.evaluate", "evaluate"),
    "run": ("selection.run", "run"),
    "submit": ("selection.submit", "submit"),
    "bench": ("selection.bench", "bench"),
    "leaderboard": ("selection.leaderboard", "build_leaderboard"),
    "embed": ("selection.embed", "embed"),
    "explain": ("selection.explain", "explain"),
    "train_kws": ("selection.train_kws", "train_kws"),
    "synthesize": ("selection.synthesize", "synthesize"),
    "distill_embedding": ("selection.distill_embedding", "distill_embedding"),
}


def _task_function(name: str):
    """The command function of task ``name`` (imported only when asked for), or None."""
    import importlib

    if name not in TASKS:
        return None
    module, function = TASKS[name]
    return getattr(importlib.import_module(module), function)


def main(argv: list[str] | None = None) -> None:
    exit_quietly_on_ctrl_c()
    argv = sys.argv[1:] if argv is None else argv
    function = _task_function(argv[0]) if argv else None
    if function is None:
        if argv and argv[0] not in ("-h", "--help", "help"):
            print(
                f"error: unknown task {argv[0]!r}; expected one of {', '.join(TASKS)}",
                file=sys.stderr,
            )
        print(USAGE, file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT if argv and argv[0] not in ("-h", "--help", "help") else 0)
    run_command(function, argv[1:])


if __name__ == "__main__":
    main()
