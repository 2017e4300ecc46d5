"""Ctrl-C before a command's work starts: one line and exit 130, never a traceback of half-done imports.

Standard library only, and imported first: ``python -m selection.<command>`` (and ``eval.py``, and the
``dataperf-speech`` command) install the handler while the package itself is still being imported, so
there is no window in which an interrupt prints an import traceback, however slowly a loaded machine
gets through the imports. :func:`selection.cli.run_command` hands Ctrl-C back to Python when the
command starts, and reports what was kept.
"""

from __future__ import annotations

import os
import signal
import sys

EXIT_INTERRUPTED = 130


def exit_quietly_on_ctrl_c() -> None:
    """Until :func:`selection.cli.run_command` starts, Ctrl-C ends the process with one line and exit 130.

    Entry points call this before their heavy imports: an interrupt there would
    otherwise print a long traceback. Nothing has been written at that point.
    """

    def interrupted(signum, frame) -> None:
        try:
            sys.stderr.write("interrupted: no output was written\n")
            sys.stderr.flush()
        finally:
            os._exit(EXIT_INTERRUPTED)

    try:
        signal.signal(signal.SIGINT, interrupted)
    except ValueError:
        pass  # not the main thread


def running_as_a_command(argv: list[str]) -> bool:
    """Whether this process is a harness command being started (``python -m selection.X``, ``dataperf-speech``).

    While ``python -m`` imports the package it runs, ``sys.argv[0]`` is ``-m``.
    """
    return argv[:1] == ["-m"] or (bool(argv) and os.path.basename(argv[0]) == "dataperf-speech")
