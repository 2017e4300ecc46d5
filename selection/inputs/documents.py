"""Reading YAML and JSON documents from strangers' files: bounded, plain, and fast.

Every YAML file the harness reads (the config, ``allowed_training_set.yaml``, ``eval.yaml``)
goes through :func:`read_yaml`, every JSON file (``train.json``) through :func:`read_json`.
Both read only regular files (a FIFO would block forever, a device never ends) of at most
a set size, and turn every parse failure into a one-line :class:`BadInputError`.

YAML is parsed by libyaml into events, and :func:`read_yaml` builds the document from
those events itself, which refuses on the way what the safe loader would accept but a
benchmark input never needs:

- anchors and aliases (an 850-byte "billion laughs" file expands to gigabytes when printed);
- nesting deeper than :data:`MAX_YAML_DEPTH` (libyaml's composer recurses in C and
  crashes the process at ~25,000 levels).

For the documents the harness writes and reads most (mappings, lists and strings) the
result is built directly from the events, about three times faster than PyYAML's loader.
The moment a scalar would not load as a plain string (numbers, booleans, nulls, dates,
explicit tags, merge keys) or anything else unusual appears, the whole text is handed to
PyYAML's safe loader instead, so the result is always exactly what ``yaml.safe_load`` gives.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from selection.inputs.errors import BadInputError

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
MAX_TRAIN_FILE_BYTES = 16 * 1024 * 1024
MAX_YAML_DEPTH = 100
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER = yaml.resolver.Resolver()
_STR_TAG = "tag:yaml.org,2002:str"


def read_bytes(path: str | Path, *, max_bytes: int = MAX_DOCUMENT_BYTES, follow_links: bool = True) -> bytes:
    """A regular file's bytes, refusing a FIFO, device or folder and a file larger than ``max_bytes``.

    With ``follow_links=False`` a symbolic link is refused too (the leaderboard reads
    strangers' folders and must not be pointed at a file outside them).
    """
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_links else os.O_NOFOLLOW)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise BadInputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise BadInputError(f"{path}: is a folder; expected a file") from None
    except OSError as error:
        if not follow_links and error.errno == errno.ELOOP:
            raise BadInputError(f"{path}: is a symbolic link; only regular files are read") from None
        raise BadInputError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise BadInputError(f"{path}: is a folder; expected a file")
        if not stat.S_ISREG(mode):
            raise BadInputError(f"{path}: is not a regular file (a pipe, socket or device); expected a file")
        os.set_blocking(descriptor, True)
        if os.fstat(descriptor).st_size > max_bytes:
            raise BadInputError(f"{path}: file is larger than {max_bytes} bytes; the harness reads no more than that")
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise BadInputError(f"{path}: cannot be read ({error.strerror})") from None
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:
        raise BadInputError(f"{path}: file is larger than {max_bytes} bytes; the harness reads no more than that")
    return data


def read_text(path: str | Path, *, max_bytes: int = MAX_DOCUMENT_BYTES, follow_links: bool = True) -> str:
    """A whole UTF-8 text file (see :func:`read_bytes`)."""
    return decode_text(read_bytes(path, max_bytes=max_bytes, follow_links=follow_links), name=str(path))


def decode_text(data: bytes, *, name: str) -> str:
    """``data`` as UTF-8 text; ``name`` is the file the errors name."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadInputError(f"{name}: byte {error.start} is not UTF-8 text") from None


def read_yaml(path: str | Path, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """Parse a YAML file exactly as the safe loader would, refusing aliases and deep nesting."""
    text = read_text(path, max_bytes=max_bytes)
    try:
        return parse_yaml(text, name=str(path))
    except BadInputError:
        raise
    except yaml.constructor.ConstructorError as error:
        where = _yaml_mark(error.problem_mark)
        raise BadInputError(f"{path}:{where} {error.problem}; only plain YAML (no object tags) is read") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise BadInputError(f"{path}:{_yaml_mark(mark)} invalid YAML: {problem}") from None
    except RecursionError:
        raise BadInputError(f"{path}: YAML nested too deeply") from None
    except ValueError as error:  # a number too long for Python's int conversion, a bad date
        raise BadInputError(f"{path}: a value cannot be read ({str(error)[:120]})") from None


def parse_yaml(text: str, *, name: str = "<text>") -> Any:
    """``yaml.safe_load(text)``, built from libyaml's events; aliases and deep nesting are refused.

    Raises
    ------
    BadInputError
        The text holds an anchor or alias, or nests deeper than :data:`MAX_YAML_DEPTH`.
    yaml.YAMLError
        The text is not valid YAML (as the safe loader raises it).
    """
    containers: list[Any] = []
    pending_keys: list[Any] = []
    root: Any = None
    documents = 0
    exact = True  # False: something not built here; the safe loader builds the result
    for event in yaml.parse(text, Loader=_SafeLoader):
        kind = type(event)
        if kind is ScalarEvent:
            if event.anchor is not None:
                _refuse_alias(name, event)
            if not exact:
                continue
            if event.tag not in (None, "!") or (
                event.implicit[0]
                and "/" not in event.value
                and _RESOLVER.resolve(yaml.ScalarNode, event.value, (True, False)) != _STR_TAG
            ):
                exact = False
                continue
            value: Any = event.value
        elif kind is SequenceStartEvent or kind is MappingStartEvent:
            if event.anchor is not None:
                _refuse_alias(name, event)
            if len(containers) >= MAX_YAML_DEPTH:
                mark = _yaml_mark(event.start_mark)
                raise BadInputError(f"{name}:{mark} nested more than {MAX_YAML_DEPTH} levels deep; expected flat lists")
            if event.tag not in (None, "!"):
                exact = False
            containers.append([] if kind is SequenceStartEvent else {})
            pending_keys.append(_NO_KEY)
            continue
        elif kind is SequenceEndEvent or kind is MappingEndEvent:
            value = containers.pop()
            pending_keys.pop()
        elif kind is AliasEvent:
            _refuse_alias(name, event)
        elif kind is DocumentStartEvent:
            documents += 1
            exact = exact and documents == 1
            continue
        else:
            continue
        if not exact:
            continue
        if not containers:
            root = value
        elif type(containers[-1]) is list:
            containers[-1].append(value)
        elif pending_keys[-1] is _NO_KEY:
            if type(value) is not str:
                exact = False
            pending_keys[-1] = value
        else:
            containers[-1][pending_keys[-1]] = value
            pending_keys[-1] = _NO_KEY
    if exact:
        return root
    return yaml.load(text, Loader=_SafeLoader)


_NO_KEY = object()


def _refuse_alias(name: str, event: Any) -> None:
    raise BadInputError(
        f"{name}:{_yaml_mark(event.start_mark)} YAML anchors and aliases (&name, *name) are not read; "
        "expected plain lists and mappings"
    )


def _yaml_mark(mark: Any) -> str:
    return f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""


def read_json(path: str | Path, *, max_bytes: int = MAX_TRAIN_FILE_BYTES, follow_links: bool = True) -> Any:
    """Parse a JSON file of at most ``max_bytes`` bytes."""
    return parse_json(read_bytes(path, max_bytes=max_bytes, follow_links=follow_links), name=str(path))


def parse_json(data: bytes, *, name: str) -> Any:
    """A JSON document from a file's bytes (read once, so that a caller can also hash them); ``name`` is the file."""
    text = decode_text(data, name=name)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInputError(
            f"{name}: not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    except RecursionError:
        raise BadInputError(f"{name}: JSON nested too deeply") from None
    except ValueError as error:  # e.g. an integer longer than Python converts
        raise BadInputError(f"{name}: a value cannot be read ({str(error)[:120]})") from None
