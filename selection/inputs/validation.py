"""Every input check of the harness, done once at the edge.

Each ``check_*`` function takes a parsed object plus what it must agree with
(the allowed pool, the budget, the file it came from), returns a normalized
value, and raises :class:`BadInputError` with a one-line message of the form
``<file>: <key path>: <what is wrong>; expected <rule>, got <value>``.
Loaders, algorithms and scoring never check input again.
"""

from __future__ import annotations

import numbers
import reprlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from selection.inputs.errors import BadInputError
from selection.inputs.formats import EMBEDDING_DIM, ID_COLUMN, NONTARGET, VECTOR_COLUMN  # noqa: F401 - re-exported

METRICS = ("macro_f1", "balanced_accuracy")
DEFAULT_EVAL_SEEDS = [5, 69, 98, 70, 95, 64, 37, 11, 4, 32]
MAX_WORD_BYTES = 200


def describe_items(items: Iterable[Any], *, cap: int = 5) -> str:
    """Sorted, quoted, capped list of offenders: ``'a', 'b', ... (3 more)``."""
    ordered = sorted({str(item) for item in items})
    shown = ", ".join(_short(item, 120) for item in ordered[:cap])
    if len(ordered) > cap:
        shown += f", ... ({len(ordered) - cap} more)"
    return shown


_BOUNDED = reprlib.Repr()
_BOUNDED.maxlevel, _BOUNDED.maxlist, _BOUNDED.maxdict, _BOUNDED.maxtuple, _BOUNDED.maxset = 2, 4, 4, 4, 4
_BOUNDED.maxstring = _BOUNDED.maxother = _BOUNDED.maxlong = 120


def _short(value: Any, limit: int = 60) -> str:
    """A bounded ``repr``: never formats more than about ``limit`` characters of an untrusted value."""
    if isinstance(value, str):
        text = repr(value[: limit + 1])
    else:
        try:
            text = _BOUNDED.repr(value)
        except ValueError:  # an integer longer than Python converts to text
            text = f"<{type(value).__name__} too long to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _key_name(word: Any) -> str:
    """A word as it appears in a key path (``targets.<word>``), bounded."""
    return word if isinstance(word, str) and len(word) <= 60 else _short(word)


def _type_name(value: Any) -> str:
    return type(value).__name__


def check_word(word: Any, *, file: str, key: str) -> str:
    """A word names a parquet file, so it must be a plain, safe file stem."""
    if not isinstance(word, str):
        hint = " (quote it: YAML reads yes/no/on/off as booleans)" if isinstance(word, bool) else ""
        raise BadInputError(f"{file}: {key}: word must be a string; got {_type_name(word)} {_short(word)}{hint}")
    if not word or word in (".", "..") or "/" in word or "\\" in word or "\x00" in word or word != word.strip():
        raise BadInputError(
            f"{file}: {key}: {_short(word)} is not a usable word; expected a non-empty "
            "name without '/', '\\', NUL or surrounding spaces"
        )
    if any(0xD800 <= ord(character) <= 0xDFFF for character in word):
        raise BadInputError(f"{file}: {key}: word {_short(word)} is not valid UTF-8")
    if len(word.encode("utf-8")) > MAX_WORD_BYTES:
        raise BadInputError(
            f"{file}: {key}: word {_short(word)} is {len(word.encode('utf-8'))} bytes long; expected at most "
            f"{MAX_WORD_BYTES} (it names a <word>.parquet file)"
        )
    return word


def check_clip_id(clip_id: Any, *, file: str, key: str) -> str:
    """A clip ID is ``<word>/<relative path>``; nothing in it may leave the data folder."""
    if not isinstance(clip_id, str):
        raise BadInputError(f"{file}: {key}: clip ID must be a string; got {_type_name(clip_id)} {_short(clip_id)}")
    parts = clip_id.split("/")
    if "\x00" in clip_id or "\\" in clip_id or len(parts) < 2 or any(part in ("", ".", "..") for part in parts):
        raise BadInputError(
            f"{file}: {key}: ID {_short(clip_id)} is not a clip ID; expected "
            "'<word>/<file>' with no '..', '.', empty parts, absolute path, '\\' or NUL"
        )
    check_word(parts[0], file=file, key=key)
    return clip_id


def clip_word(clip_id: str) -> str:
    """The word a clip is of: the first component of its ID."""
    return clip_id.split("/", 1)[0]


def _is_clip_id(value: Any) -> bool:
    """What :func:`check_clip_id` accepts, without building messages (the common, valid case)."""
    if type(value) is not str or "\x00" in value or "\\" in value:
        return False
    parts = value.split("/")
    unsafe = "" in parts or "." in parts or ".." in parts
    return len(parts) >= 2 and not unsafe and parts[0] == parts[0].strip()


def _check_id_list(values: Any, *, file: str, key: str) -> list[str]:
    if not isinstance(values, list):
        raise BadInputError(f"{file}: {key}: expected a list of clip IDs; got {_type_name(values)} {_short(values)}")
    for i, value in enumerate(values):
        if not _is_clip_id(value):
            check_clip_id(value, file=file, key=f"{key}[{i}]")
    return list(values)


def check_sample_ids(obj: Any, *, file: str, require_clips: bool = True) -> dict:
    """Check a ``{"targets": {word: [id, ...]}, "nontargets": [id, ...]}`` document.

    Parameters
    ----------
    obj : object
        The parsed YAML or JSON document.
    file : str
        Name used in error messages.
    require_clips : bool, default=True
        Whether every target word and the nontargets must list at least one clip.

    Returns
    -------
    dict
        ``{"targets": {word: [id, ...]}, "nontargets": [id, ...]}``, key order kept.

    Raises
    ------
    BadInputError
        Wrong shape, unsafe or duplicate IDs, or (with ``require_clips``) empty classes.
    """
    if not isinstance(obj, Mapping):
        raise BadInputError(
            f"{file}: top level must be a mapping with keys 'targets' and 'nontargets'; got {_type_name(obj)}"
        )
    keys = set(obj)
    if keys != {"targets", "nontargets"}:
        missing = {"targets", "nontargets"} - keys
        extra = keys - {"targets", "nontargets"}
        parts = []
        if missing:
            parts.append(f"missing key(s) {describe_items(missing)}")
        if extra:
            parts.append(f"unknown key(s) {describe_items(extra)}")
        raise BadInputError(f"{file}: top level: {' and '.join(parts)}; expected exactly 'targets' and 'nontargets'")
    targets = obj["targets"]
    if not isinstance(targets, Mapping):
        raise BadInputError(
            f"{file}: targets: expected a mapping of word to list of clip IDs; "
            f"got {_type_name(targets)} {_short(targets)}"
        )
    normalized: dict[str, list[str]] = {}
    for word, ids in targets.items():
        key = f"targets.{_key_name(word)}"
        check_word(word, file=file, key=key)
        if word == NONTARGET:
            raise BadInputError(
                f"{file}: {key}: a target word may not be named {NONTARGET!r} (the name of the other class); "
                "expected another word"
            )
        normalized[word] = _check_id_list(ids, file=file, key=key)
        if require_clips and not normalized[word]:
            raise BadInputError(f"{file}: {key}: no clips listed; expected at least one")
    if require_clips and not normalized:
        raise BadInputError(f"{file}: targets: no target words; expected at least one")
    nontargets = _check_id_list(obj["nontargets"], file=file, key="nontargets")
    if require_clips and not nontargets:
        raise BadInputError(f"{file}: nontargets: no clips listed; expected at least one")

    listed = [*((f"targets.{w}", v) for w, v in normalized.items()), ("nontargets", nontargets)]
    if sum(len(ids) for _, ids in listed) == len({clip_id for _, ids in listed for clip_id in ids}):
        return {"targets": normalized, "nontargets": nontargets}
    seen: dict[str, str] = {}
    for label, ids in listed:
        for i, clip_id in enumerate(ids):
            if clip_id in seen:
                raise BadInputError(
                    f"{file}: {label}[{i}]: ID {_short(clip_id, 120)} is listed twice "
                    f"(also under {seen[clip_id]}); expected each clip once"
                )
            seen[clip_id] = label
    return {"targets": normalized, "nontargets": nontargets}


def check_same_targets(allowed: dict, evaluation: dict, *, allowed_file: str, eval_file: str) -> None:
    """The allowed pool and the eval set must name the same target words."""
    allowed_words, eval_words = set(allowed["targets"]), set(evaluation["targets"])
    if allowed_words != eval_words:
        raise BadInputError(
            f"{eval_file}: targets: words {describe_items(eval_words ^ allowed_words)} are in only "
            f"one of {eval_file} and {allowed_file}; expected the same target words in both"
        )


def check_train_set(
    obj: Any,
    *,
    file: str,
    allowed: dict,
    limit: int,
    eval_set: dict | None = None,
) -> tuple[dict, list[str]]:
    """Check a selected training set against the allowed pool and the budget.

    Parameters
    ----------
    obj : object
        The parsed ``train.json`` (or an algorithm's result, as a dict).
    file : str
        Name used in error messages.
    allowed : dict
        The allowed pool, as returned by :func:`check_sample_ids`.
    limit : int
        The most clips the selection may hold.
    eval_set : dict, optional
        The evaluation IDs, only to say so when a selected clip is one of them.

    Returns
    -------
    train_set : dict
        Normalized selection; every allowed target word is present, in the pool's order.
    warnings : list of str
        One line per class that has no samples.
    """
    selection = check_sample_ids(obj, file=file, require_clips=False)
    unknown = set(selection["targets"]) - set(allowed["targets"])
    if unknown:
        raise BadInputError(
            f"{file}: targets: unknown target word(s) {describe_items(unknown)}; "
            f"expected only {describe_items(allowed['targets'])}"
        )
    label_of = {clip_id: f"targets.{w}" for w, ids in allowed["targets"].items() for clip_id in ids}
    label_of.update((clip_id, "nontargets") for clip_id in allowed["nontargets"])
    eval_ids = set()
    if eval_set is not None:
        eval_ids = set(eval_set["nontargets"]).union(*eval_set["targets"].values())

    labelled = [(f"targets.{w}", ids) for w, ids in selection["targets"].items()]
    labelled.append(("nontargets", selection["nontargets"]))
    for label, ids in labelled:
        for i, clip_id in enumerate(ids):
            allowed_label = label_of.get(clip_id)
            if allowed_label == label:
                continue
            shown = _short(clip_id, 120)
            if allowed_label is not None:
                problem = f"ID {shown} is under {allowed_label} in the allowed pool"
            elif clip_id in eval_ids:
                problem = f"ID {shown} is an evaluation clip, not in the allowed pool"
            else:
                problem = f"ID {shown} is not in the allowed pool"
            raise BadInputError(f"{file}: {label}[{i}]: {problem}")

    total = sum(len(ids) for ids in selection["targets"].values()) + len(selection["nontargets"])
    if total == 0:
        raise BadInputError(f"{file}: targets, nontargets: no clips selected; expected at least one")
    if total > limit:
        raise BadInputError(f"{file}: targets, nontargets: {total} IDs selected; expected at most {limit} (train_size)")
    train_set = {
        "targets": {w: selection["targets"].get(w, []) for w in allowed["targets"]},
        "nontargets": selection["nontargets"],
    }
    empty = [f"targets.{w}" for w, ids in train_set["targets"].items() if not ids]
    if not train_set["nontargets"]:
        empty.append("nontargets")
    if len(empty) >= len(train_set["targets"]):
        chosen = [
            label for label in [*(f"targets.{w}" for w in train_set["targets"]), "nontargets"] if label not in empty
        ]
        raise BadInputError(
            f"{file}: {chosen[0]}: only one class selected; expected clips of at least two classes "
            "(the frozen classifier cannot train on one)"
        )
    warnings = [f"{file}: {label}: no samples selected for this class" for label in empty]
    return train_set, warnings


def check_positive_int(value: Any, *, file: str, key: str) -> int:
    """An integer >= 1 (``True`` and ``2.0`` are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise BadInputError(f"{file}: {key}: expected a positive integer; got {_type_name(value)} {_short(value)}")
    if value < 1:
        raise BadInputError(f"{file}: {key}: expected a positive integer; got {value}")
    return int(value)


def check_fraction(value: Any, *, file: str, key: str) -> float:
    """A number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise BadInputError(f"{file}: {key}: expected a number between 0 and 1; got {_short(value)}")
    return float(value)


def check_n_jobs(value: Any, *, file: str, key: str) -> int:
    """A worker count: a positive integer, or -1 for every core (joblib's convention)."""
    if value == -1 and not isinstance(value, bool):
        return -1
    return check_positive_int(value, file=file, key=key)


def _check_int(value: Any, *, file: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise BadInputError(f"{file}: {key}: expected an integer; got {_type_name(value)} {_short(value)}")
    if not 0 <= value < 2**32:
        raise BadInputError(f"{file}: {key}: expected an integer in [0, 2**32); got {value}")
    return int(value)


CONFIG_DEFAULTS: dict[str, Any] = {
    "train_set_size_limit": 25,
    "selection_algorithm_module": "selection.implementations.coverage_selection",
    "selection_algorithm_class": "CleanCoverageSelection",
    "selection_random_seed": 42,
    "eval_random_seeds": DEFAULT_EVAL_SEEDS,
    "metric": "macro_f1",
}


SHIPPED_ALGORITHM_KEYS = (
    "cv_target_splits",
    "cv_nontarget_splits",
    "coverage_pca_dims",
    "coverage_neighbours",
    "coverage_min_agreement",
    "coverage_min_target_agreement",
    "coverage_min_word_neighbours",
    "coverage_nontarget_fraction",
    "cleanlab_folds",
    "cleanlab_extra_fraction",
    "cleanlab_medoid_sample",
    "cleanlab_pca_dims",
)


def config_key_warnings(raw: Any, *, file: str) -> list[str]:
    """One line per unknown key that looks like a misspelled known one (``train_set_size_limt``).

    Unknown keys stay allowed (participants add their own settings); only near misses are named.
    """
    import difflib

    if not isinstance(raw, Mapping):
        return []
    known = [*CONFIG_DEFAULTS, *SHIPPED_ALGORITHM_KEYS]
    warnings = []
    for key in raw:
        if not isinstance(key, str) or key in known:
            continue
        near = difflib.get_close_matches(key, known, n=1, cutoff=0.85)
        if near:
            used = repr(CONFIG_DEFAULTS[near[0]]) if near[0] in CONFIG_DEFAULTS else "the algorithm's default"
            warnings.append(
                f"{file}: {_key_name(key)}: unknown key, close to {near[0]!r} (a typo?); "
                f"{near[0]} keeps {used} unless set"
            )
    return warnings


def check_config(raw: Any, *, file: str) -> dict:
    """Fill defaults into the harness config and check the keys the harness knows.

    Keys the harness does not know are kept unchanged: they belong to the algorithm.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise BadInputError(f"{file}: top level: expected a mapping of settings; got {_type_name(raw)}")
    config = {**CONFIG_DEFAULTS, **raw}
    config["eval_random_seeds"] = (
        list(config["eval_random_seeds"])
        if isinstance(config["eval_random_seeds"], (list, tuple))
        else config["eval_random_seeds"]
    )
    config["train_set_size_limit"] = check_positive_int(
        config["train_set_size_limit"], file=file, key="train_set_size_limit"
    )
    for key in ("selection_algorithm_module", "selection_algorithm_class"):
        if not isinstance(config[key], str) or not config[key].strip():
            raise BadInputError(f"{file}: {key}: expected a non-empty string; got {_short(config[key])}")
    config["selection_random_seed"] = _check_int(
        config["selection_random_seed"], file=file, key="selection_random_seed"
    )
    seeds = config["eval_random_seeds"]
    if not isinstance(seeds, list) or not seeds:
        raise BadInputError(f"{file}: eval_random_seeds: expected a non-empty list of integers; got {_short(seeds)}")
    config["eval_random_seeds"] = [
        _check_int(seed, file=file, key=f"eval_random_seeds[{i}]") for i, seed in enumerate(seeds)
    ]
    if config["metric"] not in METRICS:
        raise BadInputError(
            f"{file}: metric: unknown metric {_short(config['metric'])}; expected one of {', '.join(METRICS)}"
        )
    return config


def check_vector_column(vector_type: Any, id_type: Any, *, file: str) -> None:
    """Column types of an embeddings parquet file (pyarrow types)."""
    import pyarrow as pa

    if not (pa.types.is_string(id_type) or pa.types.is_large_string(id_type)):
        raise BadInputError(f"{file}: column {ID_COLUMN}: expected strings; got {id_type}")
    is_list = (
        pa.types.is_list(vector_type) or pa.types.is_large_list(vector_type) or pa.types.is_fixed_size_list(vector_type)
    )
    if not is_list or not pa.types.is_floating(vector_type.value_type):
        raise BadInputError(f"{file}: column {VECTOR_COLUMN}: expected a list of floats; got {vector_type}")


def check_vectors(
    lengths: np.ndarray, matrix_rows: np.ndarray | None, ids: list[str], *, file: str, dim: int = EMBEDDING_DIM
) -> None:
    """Every vector has ``dim`` finite values (the length of the first file's vectors, 1024 in the published data).

    ``lengths`` holds each row's vector length; ``matrix_rows`` the rows (only
    read when every length is right).
    """
    wrong = np.flatnonzero(lengths != dim)
    if wrong.size:
        first = wrong[0]
        raise BadInputError(
            f"{file}: {_short(ids[first], 120)}: vector has {int(lengths[first])} values; expected {dim}, "
            "the length of the other vectors" + (f" ({wrong.size - 1} more rows wrong)" if wrong.size > 1 else "")
        )
    if matrix_rows is None:
        return
    bad = np.flatnonzero(~np.isfinite(matrix_rows).all(axis=1))
    if bad.size:
        raise BadInputError(
            f"{file}: {_short(ids[bad[0]], 120)}: vector holds NaN or infinite values; expected finite numbers"
            + (f" ({bad.size - 1} more rows)" if bad.size > 1 else "")
        )


def split_flag_list(value: Any, *, flag: str, max_items: int = 1000) -> list[str]:
    """A comma-separated flag's items (stripped, empty ones dropped), refusing repeats and absurd lengths."""
    items = [str(item).strip() for item in value] if isinstance(value, (list, tuple)) else str(value).split(",")
    items = [item.strip() for item in items if item.strip()]
    if len(items) > max_items:
        raise BadInputError(f"command line: {flag}: {len(items)} items; expected at most {max_items}")
    repeated = sorted({item for item in items if items.count(item) > 1})
    if repeated:
        raise BadInputError(
            f"command line: {flag}: {describe_items(repeated)} given more than once; expected each item once"
        )
    return items
