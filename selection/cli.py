"""Running a task function as a command: one-line errors, documented exit codes."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable

import fire

from selection.validation import BadInputError

EXIT_OK = 0
EXIT_INTERNAL_ERROR = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def run_command(function: Callable, argv: list[str] | None = None) -> None:
    """Run ``function`` through python-fire and exit with a documented code.

    Bad input (files, flags, config, what a plugin returns, an unwritable output)
    prints one line on stderr and exits 2; Ctrl-C exits 130; anything else is a
    harness bug: one line, exit 1, and a traceback only with ``DATAPERF_TRACEBACK=1``.
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        fire.Fire(function, command=argv, name=getattr(function, "__name__", None))
    except BadInputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print("interrupted: no output was written", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("DATAPERF_TRACEBACK"):
            traceback.print_exc()
        message = str(error).splitlines()[0] if str(error) else ""
        print(
            f"internal error: {type(error).__name__}: {message} (set DATAPERF_TRACEBACK=1 to see where)",
            file=sys.stderr,
        )
        sys.exit(EXIT_INTERNAL_ERROR)
