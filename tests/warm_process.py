"""Harness commands as separate processes, without paying the heavy imports each time.

Every ``python eval.py ...`` a test runs would spend seconds importing numpy, pyarrow and
scikit-learn before the command does anything. A *warm* interpreter imports them once and then,
for every command, forks: the fork gets the command's argv, cwd, environment, stdout and stderr
files and runs it as ``python`` would (``-m module``, a script, or ``-c code``); its exit status,
output and error are what :func:`subprocess.run` would return. The command itself is the real
one, in its own process; only modules that read nothing from the environment when imported are
warmed, and the seeds a fresh interpreter would draw are drawn again after the fork.

What a fork cannot give is a new hash seed, so a test that compares reruns for determinism, or
that changes the interpreter's own environment (``PYTHON*``, BLAS settings), asks for a fresh
interpreter (``run_cli(..., fresh=True)`` in ``tests/conftest.py``); so does everything when
``DATAPERF_TEST_FRESH_PROCESSES=1``.
"""

from __future__ import annotations

import atexit
import json
import locale
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WARMED = (
    "numpy",
    "scipy.optimize",
    "scipy.sparse",
    "scipy.stats",
    "pyarrow",
    "pyarrow.parquet",
    "yaml",
    "sklearn.svm",
    "sklearn.linear_model",
    "sklearn.preprocessing",
    "sklearn.metrics",
)
# settings that take effect when an interpreter or a warmed library starts: such a run needs a fresh interpreter
STARTUP_ENVIRONMENT = ("PYTHON", "OPENBLAS_", "OMP_", "MKL_", "NPY_", "GOTO", "SCIPY_", "SKLEARN_")


def _send(connection: socket.socket, message: dict) -> None:
    data = json.dumps(message).encode()
    connection.sendall(struct.pack("!I", len(data)) + data)


def _receive(connection: socket.socket) -> dict | None:
    header = b""
    while len(header) < 4:
        part = connection.recv(4 - len(header))
        if not part:
            return None
        header += part
    (size,) = struct.unpack("!I", header)
    data = b""
    while len(data) < size:
        part = connection.recv(size - len(data))
        if not part:
            return None
        data += part
    return json.loads(data)


def _run_as_python(request: dict) -> int:
    """In the fork: become ``python <args>`` in the request's cwd and environment, and run it."""
    import random
    import runpy

    import numpy

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        file = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.dup2(file, fd)
        os.close(file)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    random.seed()
    numpy.random.seed()
    args = request["args"]
    try:
        if args[0] == "-m":
            sys.argv = [args[1], *args[2:]]
            sys.path[0] = os.getcwd()
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        elif args[0] == "-c":
            sys.argv = ["-c", *args[2:]]
            sys.path[0] = ""
            exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
        else:
            script = os.path.abspath(args[0])
            sys.argv = list(args)
            sys.path[0] = os.path.dirname(script)
            runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as stop:
        if stop.code is None:
            code = 0
        elif isinstance(stop.code, int):
            code = stop.code
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:
        kind, error, frames = sys.exc_info()
        while frames is not None and frames.tb_frame.f_code.co_filename in (__file__, runpy.__file__, "<frozen runpy>"):
            frames = frames.tb_next
        sys.excepthook(kind, error.with_traceback(frames), frames)
        code = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    return code & 0xFF


def serve(address: str) -> None:
    """The warm interpreter: import once, then fork a waiter per request, which forks the command."""
    import importlib

    for name in WARMED:
        importlib.import_module(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(8)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # waiters are reaped by the kernel
    sys.stdout.flush()
    sys.stderr.flush()
    while True:
        connection, _ = listener.accept()
        request = _receive(connection)
        if request is None:
            connection.close()
            continue
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            runner = os.fork()
            if runner == 0:
                connection.close()
                os._exit(_run_as_python(request))
            _send(connection, {"pid": runner})
            _, status = os.waitpid(runner, 0)
            _send(connection, {"returncode": os.waitstatus_to_exitcode(status)})
            os._exit(0)
        connection.close()


class WarmInterpreter:
    """A client of one warm interpreter (started on first use, stopped when the test process ends)."""

    def __init__(self, pythonpath: str) -> None:
        self._folder = tempfile.mkdtemp(prefix="warm-python-")
        self.address = os.path.join(self._folder, "socket")
        self.pythonpath = pythonpath
        environment = {**os.environ, "PYTHONPATH": pythonpath}
        self._server = subprocess.Popen(
            [sys.executable, "-c", f"from tests.warm_process import serve; serve({self.address!r})"],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        atexit.register(self.stop)

    def usable_for(self, env: dict) -> bool:
        if env.get("PYTHONPATH") != self.pythonpath:
            return False
        changed = {key for key in set(env) | set(os.environ) if env.get(key) != os.environ.get(key)} - {"PYTHONPATH"}
        return not any(key.startswith(STARTUP_ENVIRONMENT) for key in changed) and self._server.poll() is None

    def _connect(self, timeout: float) -> socket.socket:
        deadline = time.monotonic() + timeout
        while True:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                connection.connect(self.address)
                return connection
            except OSError:
                connection.close()
                if self._server.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def run(self, args: list[str], *, cwd: str, env: dict, timeout: float) -> subprocess.CompletedProcess:
        """What ``subprocess.run([sys.executable, *args], capture_output=True, text=True)`` returns."""
        with tempfile.TemporaryDirectory(prefix="warm-run-") as folder:
            stdout, stderr = Path(folder, "stdout"), Path(folder, "stderr")
            stdout.touch()
            stderr.touch()
            request = {"args": list(args), "cwd": str(cwd), "env": env, "stdout": str(stdout), "stderr": str(stderr)}
            with self._connect(timeout=60) as connection:
                _send(connection, request)
                started = _receive(connection)
                connection.settimeout(timeout)
                try:
                    finished = _receive(connection)
                except TimeoutError:
                    os.kill(started["pid"], signal.SIGKILL)
                    raise subprocess.TimeoutExpired([sys.executable, *args], timeout) from None
            if finished is None:
                raise RuntimeError("the warm interpreter stopped during a run")
            return subprocess.CompletedProcess(
                [sys.executable, *args], finished["returncode"], _text(stdout.read_bytes()), _text(stderr.read_bytes())
            )

    def stop(self) -> None:
        if self._server.poll() is None:
            self._server.kill()
            self._server.wait()
        shutil.rmtree(self._folder, ignore_errors=True)


def _text(data: bytes) -> str:
    """Bytes decoded as ``subprocess.run(..., text=True)`` decodes them."""
    text = data.decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")
