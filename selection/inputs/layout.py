"""Where things live: the final benchmark's folder and file names, shared by every command.

The reference (``harvard-edge/dataperf-speech-example``) keeps each language's experiment in
``workspace/data/dataperf_{language}_data/`` (``train_embeddings/``, ``eval_embeddings/``,
``allowed_training_set.yaml``, ``eval.yaml``), and a selection for the leaderboard of one
language and size in ``{language}_{size}_train.json``. ``download`` writes both sources (the
synthetic corpus and the published archives) in that layout, and every command that looks
for a language's experiment finds it there, or in a plain ``<language>/`` folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from selection.inputs.errors import BadInputError

LANGUAGES = ("en", "id", "pt")
LEADERBOARD_SIZES = (25, 60)
EXPERIMENT_ITEMS = ("train_embeddings", "eval_embeddings", "allowed_training_set.yaml", "eval.yaml")
DEFAULT_WORKSPACE = Path("workspace")
SUBMISSION_NAME = re.compile(r"(?P<language>[a-z]{2,3})_(?P<size>[0-9]{1,6})_train\.json")


def experiment_folder_name(language: str) -> str:
    """``dataperf_{language}_data``: the folder the reference's download unpacks a language into."""
    return f"dataperf_{language}_data"


def experiment_present(folder: Path) -> bool:
    """Whether all four experiment items are in ``folder``."""
    return all((folder / item).exists() for item in EXPERIMENT_ITEMS)


def find_experiment(data_dir: str | Path, language: str) -> Path:
    """A language's experiment under ``data_dir``: ``dataperf_{language}_data/``, else ``{language}/``.

    Raises
    ------
    BadInputError
        Neither folder holds a whole experiment.
    """
    data_dir = Path(data_dir)
    candidates = [data_dir / experiment_folder_name(language), data_dir / language]
    for folder in candidates:
        if experiment_present(folder):
            return folder
    raise BadInputError(
        f"{candidates[0]}: no experiment for language {language!r} (nor in {candidates[1]}); expected "
        f"{', '.join(EXPERIMENT_ITEMS)}; run download first (python -m selection.download)"
    )


def languages_in(data_dir: str | Path) -> list[str]:
    """Every language with a whole experiment under ``data_dir``, in either layout, sorted."""
    data_dir = Path(data_dir)
    found = set()
    if data_dir.is_dir():
        for folder in data_dir.iterdir():
            match = re.fullmatch(r"dataperf_([a-z]{2,3})_data|([a-z]{2,3})", folder.name)
            if match and experiment_present(folder):
                found.add(match.group(1) or match.group(2))
    return sorted(found)


def submission_file_name(language: str, size: int) -> str:
    """``{language}_{size}_train.json``: the file a leaderboard expects on upload."""
    return f"{language}_{size}_train.json"


def results_file_name(language: str, size: int) -> str:
    """``{language}_{size}_results.json``: evaluate's results for one leaderboard's file."""
    return f"{language}_{size}_results.json"


def check_language(language: object, *, flag: str = "--language") -> str:
    """A language code: two or three lowercase letters (``en``, ``id``, ``pt``, or one of your own data)."""
    if not isinstance(language, str) or not re.fullmatch(r"[a-z]{2,3}", language):
        raise BadInputError(
            f"command line: {flag}: {language!r} is not a language code; expected two or three lowercase "
            f"letters such as {', '.join(LANGUAGES)}"
        )
    return language


def leaderboard_note(size: int) -> str | None:
    """One line when ``size`` is not a leaderboard's size: which leaderboard such a file competes in."""
    if size in LEADERBOARD_SIZES:
        return None
    larger = [board for board in LEADERBOARD_SIZES if board > size]
    sizes = " and ".join(str(board) for board in LEADERBOARD_SIZES)
    if larger:
        return (
            f"train_size {size} is not a leaderboard size ({sizes}); a file of at most {size} clips competes "
            f"on the {larger[0]}-clip leaderboard, against selections of up to {larger[0]}"
        )
    return f"train_size {size} is larger than every leaderboard's size ({sizes}); no leaderboard accepts such a file"


def experiment_paths(language: str | None, *, workspace: str | Path, data_dir: str | Path | None) -> dict[str, Path]:
    """Default input paths of ``select`` and ``evaluate``.

    Without a language: the experiment at the workspace root (the quick start's and MLCube's
    layout). With one: that language's experiment under ``data_dir`` (default
    ``<workspace>/data``), as the reference's ``--language`` does.
    """
    workspace = Path(workspace)
    if language is None:
        folder = workspace
    else:
        data_dir = Path(data_dir) if data_dir is not None else workspace / "data"
        try:
            folder = find_experiment(data_dir, language)
        except BadInputError:
            folder = data_dir / experiment_folder_name(language)  # missing: the caller names what to run
    return {
        "allowed_training_set": folder / "allowed_training_set.yaml",
        "train_embeddings_dir": folder / "train_embeddings",
        "eval_embeddings_dir": folder / "eval_embeddings",
        "eval_file": folder / "eval.yaml",
    }
