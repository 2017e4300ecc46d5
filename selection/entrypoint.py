"""The container's entry point: one task name, then that task's ``--name=value`` arguments.

``download``, ``select``, ``evaluate``, ``submit``, ``leaderboard`` and ``embed`` map to the
commands (``selection.download``, ``selection.main``, ``eval.py``, ``selection.submit``,
``selection.leaderboard``, ``selection.embed``); anything else prints usage and exits 2. MLCube passes its
parameters as ``--name=value``, which these accept.
"""

from __future__ import annotations

import sys

from selection.cli import EXIT_BAD_INPUT, exit_quietly_on_ctrl_c, run_command

USAGE = """usage: TASK [--name=value ...]
tasks:
  download   put the dataset in the workspace (--source synthetic|dataperf, --workspace DIR)
  select     run the configured selection algorithm, write train.json
  evaluate   score train.json with the frozen classifier, write results.json
  submit     one checked {language}_{size}_train.json per leaderboard, and a scorecard
  leaderboard  score every team's submissions (--submissions, --data_dir, --outdir), rank them
  embed      turn <audio_dir>/<word>/<clip> recordings into an experiment (--audio_dir, --outdir)
"""


TASKS = {
    "download": ("selection.download", "download"),
    "select": ("selection.main", "select"),
    "evaluate": ("eval", "evaluate"),
    "submit": ("selection.submit", "submit"),
    "leaderboard": ("selection.leaderboard", "build_leaderboard"),
    "embed": ("selection.embed", "embed"),
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
                f"error: unknown task {argv[0]!r}; expected download, select, evaluate, submit, leaderboard or embed",
                file=sys.stderr,
            )
        print(USAGE, file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT if argv and argv[0] not in ("-h", "--help", "help") else 0)
    run_command(function, argv[1:])


if __name__ == "__main__":
    main()
