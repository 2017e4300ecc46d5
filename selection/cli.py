"""Running a task function as a command: flags checked before any work, one-line errors, documented exit codes.

Every command (``select``, ``evaluate``, ``download``, ``run``, ``bench``, and the container's
tasks) goes through :func:`run_command`. Its flags are the function's keyword parameters,
given as ``--name value`` or ``--name=value`` (``--name-with-dashes`` too; booleans also as
``--name`` and ``--noname``); each value is converted to the parameter's annotated type.
Unknown, repeated or ill-typed flags are refused before the function starts, so a typo
never runs the job on defaults and never overwrites an output.

This module imports only the standard library, so that entry points can call
:func:`exit_quietly_on_ctrl_c` before their heavy imports.
"""

from __future__ import annotations

import difflib
import errno
import inspect
import logging
import os
import re
import signal
import sys
import traceback
import types
import typing
from collections.abc import Callable
from typing import Any

from selection.inputs.errors import BadInputError
from selection.interrupt import EXIT_INTERRUPTED, exit_quietly_on_ctrl_c  # noqa: F401 (the entry points' import)

EXIT_OK = 0
EXIT_INTERNAL_ERROR = 1
EXIT_BAD_INPUT = 2
MAX_LINE = 1000
HELP_FLAGS = ("-h", "--help")
TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EMFILE, errno.ENFILE}


class _ImportBlocker:
    """A meta-path finder that makes ``import <name>`` fail as if the package were not installed."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname.split(".")[0] in self.names:
            raise ImportError(f"{fullname} is not used by this command", name=fullname)
        return None


def skip_optional_imports(*names: str) -> None:
    """Make libraries that import ``names`` only if installed behave as if they were not.

    ``eval.py`` calls this for pandas: scikit-learn imports it whenever it is installed
    (cleanlab installs it), which costs a fifth of a second, and scoring never uses it.
    Only a command's own process calls this, before its imports.
    """
    if not any(isinstance(finder, _ImportBlocker) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ImportBlocker(names))


def one_line(text: str, *, limit: int = MAX_LINE) -> str:
    """``text`` with every control, format or line-break character escaped, cut to ``limit`` characters.

    Messages quote strangers' files: an ID holding a newline or a terminal escape must not
    be able to forge a line of the organiser's log.
    """
    escaped = []
    for character in text:
        code = ord(character)
        if code < 0x20 or 0x7F <= code < 0xA0 or code in (0x2028, 0x2029) or 0x200B <= code <= 0x200F:
            escaped.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        elif 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069 or code == 0xFEFF:
            escaped.append(f"\\u{code:04x}")
        else:
            escaped.append(character)
        if len(escaped) > limit:
            break
    line = "".join(escaped)
    return line if len(line) <= limit else line[: limit - 14] + "... (cut short)"


class _OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return one_line(super().format(record), limit=4 * MAX_LINE)


def _parameter_type(annotation: Any) -> type:
    """``str``, ``int``, ``float`` or ``bool`` from an annotation such as ``int | None``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        annotation = kinds[0] if len(kinds) == 1 else str
    return annotation if annotation in (str, int, float, bool) else str


def _convert(name: str, text: str, kind: type) -> Any:
    flag = f"--{name}"
    if kind is bool:
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise BadInputError(f"command line: {flag}: expected true or false; got {one_line(repr(text), limit=60)}")
    if kind is int:
        stripped = text.strip()
        digits = stripped[1:] if stripped[:1] in "+-" else stripped
        if not digits.isdigit() or not digits.isascii() or len(digits) > 18:
            raise BadInputError(f"command line: {flag}: expected an integer; got {one_line(repr(text), limit=60)}")
        return int(stripped)
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if value != value or value in (float("inf"), float("-inf")):
            raise BadInputError(f"command line: {flag}: expected a number; got {one_line(repr(text), limit=60)}")
        return value
    return text


def parse_flags(function: Callable, argv: list[str]) -> dict[str, Any]:
    """The keyword arguments that ``argv`` gives ``function``, checked and converted.

    Raises
    ------
    BadInputError
        An unknown flag (with the nearest known one), a positional argument, a flag given
        twice or without a value, or a value of the wrong type.
    """
    parameters = inspect.signature(function).parameters
    hints = typing.get_type_hints(function)
    kinds = {name: _parameter_type(hints.get(name, str)) for name in parameters}
    known = ", ".join(f"--{name}" for name in parameters)
    given: dict[str, Any] = {}
    position = 0
    while position < len(argv):
        token = argv[position]
        position += 1
        if not token.startswith("--") or token == "--":
            raise BadInputError(
                f"command line: unexpected argument {one_line(repr(token), limit=80)}; "
                f"expected flags as --name value (flags: {known})"
            )
        name, has_value, value = token[2:].partition("=")
        name = name.replace("-", "_")
        negated = name not in kinds and name.startswith("no") and kinds.get(name[2:]) is bool
        if negated:
            name = name[2:]
        if name not in kinds:
            near = difflib.get_close_matches(name, list(kinds), n=1, cutoff=0.6)
            hint = f"; did you mean --{near[0]}?" if near else ""
            raise BadInputError(
                f"command line: --{one_line(name, limit=80)}: unknown flag{hint} (flags: {known}); nothing was run"
            )
        if name in given:
            raise BadInputError(f"command line: --{name}: given twice; expected each flag once")
        kind = kinds[name]
        if negated:
            if has_value:
                raise BadInputError(f"command line: --no{name}: takes no value")
            given[name] = False
            continue
        if not has_value:
            following = argv[position] if position < len(argv) else None
            if kind is bool:
                if following is not None and following.lower() in TRUE_WORDS + FALSE_WORDS:
                    value, position = following, position + 1
                else:
                    given[name] = True
                    continue
            elif following is None or (following.startswith("--") and len(following) > 2):
                raise BadInputError(f"command line: --{name}: no value given; expected --{name} VALUE")
            else:
                value, position = following, position + 1
        given[name] = _convert(name, value, kind)
    missing = [
        name for name, parameter in parameters.items() if parameter.default is parameter.empty and name not in given
    ]
    if missing:
        raise BadInputError(
            f"command line: {', '.join(f'--{name}' for name in missing)}: missing; expected "
            + " ".join(f"--{name} VALUE" for name in missing)
        )
    return given


def _show_help(function: Callable) -> None:
    """Print the command's flags, exactly those the parser accepts, on stdout (no pager, no positional forms)."""
    print(help_text(function), flush=True)


def help_text(function: Callable) -> str:
    """Usage, summary and one entry per flag: ``--name TYPE (default: value)`` and its description.

    Built from the signature (what :func:`parse_flags` accepts) and the docstring's numpydoc
    Parameters section, so the help can never offer a flag the parser refuses.
    """
    doc = inspect.getdoc(function) or ""
    summary = doc.split("\n\n", 1)[0].strip()
    described: dict[str, list[str]] = {}
    if "Parameters\n----------" in doc:
        section = doc.split("Parameters\n----------", 1)[1]
        section = re.split(r"\n\s*\n(?=\w[\w ]*\n-{3,})", section, maxsplit=1)[0]  # up to the next section
        current = None
        for line in section.splitlines():
            if line and not line.startswith(" "):
                name = line.split(":", 1)[0].strip()
                current = name if name else None
                described[current] = []
            elif current is not None and line.strip():
                described[current].append(line.strip())
    parameters = inspect.signature(function).parameters
    lines = [f"usage: {getattr(function, '__name__', 'command')} " + " ".join(f"[--{name} ...]" for name in parameters)]
    if summary:
        lines += ["", summary]
    lines += ["", "flags:"]
    for name, parameter in parameters.items():
        annotation = parameter.annotation
        annotation = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
        default = "required" if parameter.default is inspect.Parameter.empty else f"default: {parameter.default!r}"
        lines.append(f"  --{name} {annotation} ({default})")
        lines += [f"      {text}" for text in described.get(name, [])]
    return "\n".join(lines)


def _fail(prefix: str, message: str, code: int) -> typing.NoReturn:
    print(one_line(f"{prefix}: {message}"), file=sys.stderr)
    sys.exit(code)


def run_command(function: Callable, argv: list[str] | None = None) -> None:
    """Run ``function`` with the flags in ``argv`` (default ``sys.argv[1:]``) and exit with a documented code.

    Bad input (files, flags, config, what a plugin returns, an unwritable output or a
    full disk) prints one line on stderr and exits 2; Ctrl-C exits 130 (a command that
    keeps finished work re-raises ``KeyboardInterrupt`` with a message saying what was
    kept); anything else is a harness bug: one line, exit 1, and a traceback only with
    ``DATAPERF_TRACEBACK=1``.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter("%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if any(token in HELP_FLAGS for token in argv):
            _show_help(function)
            return
        function(**parse_flags(function, argv))
    except BadInputError as error:
        _fail("error", str(error), EXIT_BAD_INPUT)
    except KeyboardInterrupt as error:
        _fail("interrupted", str(error) or "no output was written", EXIT_INTERRUPTED)
    except OSError as error:
        if os.environ.get("DATAPERF_TRACEBACK"):
            traceback.print_exc()
        if error.errno in ENVIRONMENT_ERRNOS:
            where = f"{error.filename}: " if error.filename else ""
            _fail("error", f"{where}{error.strerror}; nothing was written", EXIT_BAD_INPUT)
        _fail("internal error", f"{type(error).__name__}: {error} (set DATAPERF_TRACEBACK=1 to see where)", 1)
    except Exception as error:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("DATAPERF_TRACEBACK"):
            traceback.print_exc()
        message = str(error).splitlines()[0] if str(error) else ""
        _fail(
            "internal error",
            f"{type(error).__name__}: {message} (set DATAPERF_TRACEBACK=1 to see where)",
            EXIT_INTERNAL_ERROR,
        )


def print_output(text: str, *, written: str) -> None:
    """Print a command's result on stdout; if stdout is closed or full, say so on stderr and go on.

    ``written`` names the file that already holds the result, so the run still succeeded.
    """
    log = logging.getLogger("dataperf")
    if sys.stdout is None:  # started with stdout closed
        log.warning("warning: stdout is closed, so the results were not printed; they are in %s", written)
        return
    try:
        print(text, flush=True)
    except OSError as error:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass
        log.warning(
            "warning: could not print the results on stdout (%s); they are in %s", error.strerror or error, written
        )
