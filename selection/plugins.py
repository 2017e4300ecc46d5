"""Loading a participant's selection algorithm and running it under the harness's rules."""

from __future__ import annotations

import importlib
import os
import sys
import sysconfig
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from selection.inputs.validation import BadInputError, check_train_set
from selection.selection import TrainingSet, TrainingSetSelection


def add_plugin_dir(plugin_dir: str | Path) -> None:
    """Put ``plugin_dir`` first on the import path, so the config can name modules kept there."""
    folder = Path(plugin_dir)
    if not folder.is_dir():
        raise BadInputError(
            f"{folder}: --plugin_dir: not a folder; expected the folder holding your algorithm's module"
        )
    sys.path.insert(0, str(folder.resolve()))


SHIPPED_ALGORITHMS = {
    "random": ("selection.implementations.random_selection", "RandomSelection"),
    "cross_validation": ("selection.implementations.cross_validation_selection", "CrossValidationSelection"),
    "cleanlab": ("selection.implementations.cleanlab_selection", "CleanlabSelection"),
    "clean_coverage": ("selection.implementations.coverage_selection", "CleanCoverageSelection"),
}


def resolve_algorithm(name: str) -> tuple[str, str]:
    """A shipped algorithm's short name, or ``module:Class``, to (module, class name)."""
    if name in SHIPPED_ALGORITHMS:
        return SHIPPED_ALGORITHMS[name]
    module, _, class_name = name.partition(":")
    if not module or not class_name:
        raise BadInputError(
            f"command line: --algorithms: unknown algorithm {name!r}; expected one of "
            f"{', '.join(SHIPPED_ALGORITHMS)} or module:Class"
        )
    return module, class_name


def check_algorithm_names(names: list[str], *, flag: str) -> list[str]:
    """Each name imported as an algorithm class now, before any data is read (one line naming ``flag`` if not)."""
    for name in names:
        try:
            algorithm_class(name, {})
        except BadInputError as error:
            raise BadInputError(f"command line: {flag}: {name!r}: {str(error).split(': ', 1)[-1]}") from None
    return names


def algorithm_class(algorithm: str | type | None, config: dict, *, file: str = "config") -> type[TrainingSetSelection]:
    """The algorithm to run: the config's (None), a shipped name or ``module:Class`` (str), or a class itself."""
    if algorithm is None:
        return load_algorithm_class(config, file=file)
    if isinstance(algorithm, str):
        module, class_name = resolve_algorithm(algorithm)
        named = {**config, "selection_algorithm_module": module, "selection_algorithm_class": class_name}
        return load_algorithm_class(named, file="algorithm")
    if isinstance(algorithm, type) and issubclass(algorithm, TrainingSetSelection):
        return algorithm
    raise BadInputError(
        f"algorithm: {algorithm!r} is not an algorithm; expected a shipped name ({', '.join(SHIPPED_ALGORITHMS)}), "
        "module:Class, or a subclass of selection.selection.TrainingSetSelection"
    )


def load_algorithm_class(config: dict, *, file: str) -> type[TrainingSetSelection]:
    """The class named by ``selection_algorithm_module`` and ``selection_algorithm_class``."""
    module_name = config["selection_algorithm_module"]
    class_name = config["selection_algorithm_class"]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise BadInputError(
            f"{file}: selection_algorithm_module: module {module_name!r} cannot be imported "
            f"(no module named {error.name!r})"
        ) from None
    except (Exception, SystemExit) as error:  # noqa: BLE001 - a participant's module may raise anything
        raise BadInputError(
            f"{file}: selection_algorithm_module: importing {module_name!r} raised "
            f"{type(error).__name__}: {_first_line(error)}"
        ) from None
    algorithm = getattr(module, class_name, None)
    if algorithm is None:
        raise BadInputError(f"{file}: selection_algorithm_class: module {module_name!r} has no class {class_name!r}")
    if not (isinstance(algorithm, type) and issubclass(algorithm, TrainingSetSelection)):
        raise BadInputError(
            f"{file}: selection_algorithm_class: {module_name}.{class_name} is not a subclass of "
            "selection.selection.TrainingSetSelection"
        )
    return algorithm


def run_algorithm(
    algorithm: type[TrainingSetSelection],
    *,
    allowed_embeddings: dict,
    allowed: dict,
    train_size: int,
    config: dict,
    audio_flag: bool = False,
) -> tuple[dict, list[str], float]:
    """Construct and run ``algorithm``; check what it returns against the pool and budget.

    Returns
    -------
    train_set : dict
        The checked selection, ready to be written as ``train.json``.
    warnings : list of str
        Classes left empty.
    seconds : float
        Time spent in the algorithm (constructor and ``select``).
    """
    name = f"{algorithm.__module__}.{algorithm.__qualname__}"
    started = time.perf_counter()
    try:
        instance = algorithm(
            allowed_embeddings=allowed_embeddings, train_size=train_size, config=config, audio_flag=audio_flag
        )
        result = instance.select()
    except KeyboardInterrupt:
        raise
    except BadInputError as error:  # the algorithm's own use of the harness's error: say whose it is
        raise BadInputError(f"{name}.select(): {error}") from None
    except BaseException as error:  # noqa: BLE001 - a participant's algorithm may raise anything
        if os.environ.get("DATAPERF_TRACEBACK"):
            traceback.print_exception(error, file=sys.stderr)
        raise BadInputError(
            f"{name}.select(): raised {type(error).__name__}: {_first_line(error)} ({where_raised(error)})"
        ) from None
    seconds = time.perf_counter() - started
    document = check_selection_result(result, algorithm=name)
    train_set, warnings = check_train_set(document, file=f"{name}.select()", allowed=allowed, limit=train_size)
    return train_set, warnings, seconds


_HARNESS = Path(__file__).resolve().parent
_SHIPPED_ALGORITHMS = _HARNESS / "implementations"
_LIBRARIES = {Path(sysconfig.get_paths()[name]).resolve() for name in ("stdlib", "platstdlib", "purelib", "platlib")}


def _is_participant_code(filename: str) -> bool:
    """Code of an algorithm: neither the harness (shipped algorithms aside) nor an installed library."""
    if filename.startswith("<"):
        return False
    path = Path(filename).resolve()
    if path.is_relative_to(_SHIPPED_ALGORITHMS):
        return True
    return not path.is_relative_to(_HARNESS) and not any(path.is_relative_to(root) for root in _LIBRARIES)


def where_raised(error: BaseException) -> str:
    """``at <file>:<line>`` of the innermost frame of the algorithm's own code, and where it surfaced if deeper.

    An error raised inside a harness helper or a library the algorithm called is reported
    at the algorithm's line that made the call.
    """
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "where unknown"
    innermost = frames[-1]
    own = [frame for frame in frames if _is_participant_code(frame.filename)]
    if not own or own[-1] is innermost:
        return f"at {innermost.filename}:{innermost.lineno}"
    return f"at {own[-1].filename}:{own[-1].lineno}, inside {innermost.filename}:{innermost.lineno}"


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text else "(no message)"


def check_selection_result(result: Any, *, algorithm: str) -> dict:
    """An algorithm's ``select()`` result must be a ``TrainingSet`` (or its dict form)."""
    if isinstance(result, TrainingSet):
        return {"targets": result.targets, "nontargets": result.nontargets}
    if isinstance(result, Mapping):
        return dict(result)
    raise BadInputError(f"{algorithm}.select(): returned {type(result).__name__}; expected a TrainingSet")
