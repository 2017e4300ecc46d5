"""The container's entry point: one task name, then that task's ``--name=value`` arguments.

``download``, ``select`` and ``evaluate`` map to the commands of the same names
(``selection.download``, ``selection.main``, ``eval.py``); anything else prints usage
and exits 2. MLCube passes its parameters as ``--name=value``, which these accept.
"""

from __future__ import annotations

import sys

from selection.cli import EXIT_BAD_INPUT, run_command

USAGE = """usage: TASK [--name=value ...]
tasks:
  download   put the dataset in the workspace (--source synthetic|dataperf, --workspace DIR)
  select     run the configured selection algorithm, write train.json
  evaluate   score train.json with the frozen classifier, write results.json
"""


def _task_function(name: str):
    if name == "download":
        from selection.download import download

        return download
    if name == "select":
        from selection.main import select

        return select
    if name == "evaluate":
        from eval import evaluate

        return evaluate
    return None


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    function = _task_function(argv[0]) if argv else None
    if function is None:
        if argv and argv[0] not in ("-h", "--help", "help"):
            print(f"error: unknown task {argv[0]!r}; expected download, select or evaluate", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT if argv and argv[0] not in ("-h", "--help", "help") else 0)
    run_command(function, argv[1:])


if __name__ == "__main__":
    main()
