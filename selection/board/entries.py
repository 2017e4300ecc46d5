"""The leaderboard's entries: which files in a folder of strangers' team folders are scored, under which name.

``<submissions>/<team>/<language>_<size>_train.json``. Everything else that looks like an
entry becomes a ``rejected`` row with a readable reason, never a crash, a read outside
``--submissions`` or a second entry for the same team:

- only real folders and regular files count: a symbolic link (to ``/etc/passwd``, to a folder
  outside) is refused, and so are pipes, sockets and devices, and files over the size cap;
- one canonical file name per leaderboard (``en_25_train.json``, not ``en_025_train.json``),
  and only the board's sizes (``--sizes``);
- team names must be valid UTF-8 in Unicode NFC form without control, format (zero-width,
  bidi) or separator characters; names that collide after NFKC case-folding (``Alice`` and
  ``alice``, NFC/NFD twins) are all refused, and so are names a baseline uses (``baseline``,
  ``baseline-random``, ``baseline:random``).

Names are shown through :func:`visible`, which escapes whatever could hide or forge text.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from selection.inputs.documents import MAX_TRAIN_FILE_BYTES
from selection.inputs.layout import SUBMISSION_NAME, submission_file_name

BASELINE_TEAM = "baseline"
_HIDDEN_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


@dataclass(frozen=True)
class Submission:
    """One file to score: ``team``'s ``file`` for the (``language``, ``size``) leaderboard."""

    team: str
    file: str
    language: str | None
    size: int | None
    problem: str | None = None
    baseline: str | None = None


def visible(text: str) -> str:
    """``text`` with undecodable bytes shown as ``\\xNN`` and control, format and separator characters escaped."""
    shown = []
    for character in text:
        code = ord(character)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
            shown.append(f"\\x{code - 0xDC00:02x}")
        elif unicodedata.category(character) in _HIDDEN_CATEGORIES:
            shown.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            shown.append(character)
    return "".join(shown)


def team_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a team's name on a published board, or None."""
    if any(0xDC80 <= ord(character) <= 0xDCFF for character in name):
        return "is not valid UTF-8"
    hidden = sorted({character for character in name if unicodedata.category(character) in _HIDDEN_CATEGORIES})
    if hidden:
        shown = ", ".join(f"U+{ord(character):04X}" for character in hidden[:5])
        return f"holds invisible or control characters ({shown}); expected a plainly readable name"
    if unicodedata.normalize("NFC", name) != name:
        return "is not in Unicode NFC form (it would look like another name); rename it"
    folded = _folded(name)
    if folded == BASELINE_TEAM or folded.startswith((f"{BASELINE_TEAM}-", f"{BASELINE_TEAM}:")):
        return "is the name of a baseline; expected a team's own name"
    return None


def _folded(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold()


def _file_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable regular file of at most the size cap, or None; a link is not followed."""
    try:
        info = os.lstat(path)
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link; only regular files inside --submissions are read"
    if stat.S_ISDIR(info.st_mode):
        return "is a folder; expected a file"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file (a pipe, socket or device); expected a file"
    if info.st_size > MAX_TRAIN_FILE_BYTES:
        return f"file is larger than {MAX_TRAIN_FILE_BYTES} bytes; the harness reads no more than that"
    return None


# A team's files whose names are not a leaderboard's get a row each up to this many, then one row for the rest:
# a folder of thousands of junk files is one team's problem, not the board's.
MAX_OTHER_FILES = 10


def find_submissions(submissions: Path, languages: list[str], sizes: list[int]) -> list[Submission]:
    """Every team folder's ``*_train.json`` entries; an entry that cannot be scored carries its problem."""
    found: list[Submission] = []
    teams = sorted(
        (entry for entry in os.scandir(submissions) if not entry.name.startswith(".")), key=lambda item: item.name
    )
    named: dict[str, list[str]] = {}
    for entry in teams:
        if entry.is_dir(follow_symlinks=False):
            named.setdefault(_folded(entry.name), []).append(entry.name)
    for entry in teams:
        team = visible(entry.name)
        folder = submissions / entry.name
        if entry.is_symlink():
            problem = "team folder is a symbolic link; only real folders inside --submissions are read"
            found.append(Submission(team, visible(str(folder)), None, None, f"{visible(str(folder))}: {problem}"))
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        problem = team_name_problem(entry.name)
        twins = named[_folded(entry.name)]
        if problem is None and len(twins) > 1:
            others = ", ".join(repr(visible(name)) for name in twins if name != entry.name)
            problem = f"collides with team {others} (names are compared case-folded and NFKC-normalised)"
        canonical = {submission_file_name(language, size) for language in languages for size in sizes}
        others = []
        for file in sorted(os.scandir(folder), key=lambda item: item.name):
            if not file.name.endswith("_train.json"):
                continue
            if file.name in canonical or len(others) < MAX_OTHER_FILES:
                found.append(_entry(team, folder / file.name, languages, sizes, team_problem=problem))
                if file.name not in canonical:
                    others.append(file.name)
            else:
                others.append(file.name)
        if len(others) > MAX_OTHER_FILES:
            more = len(others) - MAX_OTHER_FILES
            shown = visible(str(folder))
            found.append(Submission(team, f"{shown}/...", None, None, (
                f"{shown}: {more} more *_train.json files whose names are not this board's "
                f"(<language>_<size>_train.json for {', '.join(languages) or '-'} and "
                f"{', '.join(map(str, sizes))}); only each team's first {MAX_OTHER_FILES} such files get a row"
            )))  # fmt: skip
    return found


def _entry(team: str, path: Path, languages: list[str], sizes: list[int], *, team_problem: str | None) -> Submission:
    shown = visible(str(path))
    match = SUBMISSION_NAME.fullmatch(path.name)
    language = match["language"] if match else None
    size = int(match["size"]) if match else None
    kind = _file_problem(path)
    if team_problem is not None:
        problem = f"{visible(str(path.parent))}: team name {team_problem}"
    elif kind is not None:
        problem = f"{shown}: {kind}"
    elif match is None:
        problem = f"{shown}: file name matches no leaderboard; expected <language>_<size>_train.json"
    elif language not in languages:
        problem = f"{shown}: no leaderboard for language {language!r}; expected one of {', '.join(languages) or '-'}"
    elif path.name != submission_file_name(language, size):
        problem = (
            f"{shown}: not the leaderboard's spelling of its name; expected {submission_file_name(language, size)}"
        )
    elif size not in sizes:
        problem = (
            f"{shown}: no leaderboard for size {size}; expected {' or '.join(map(str, sizes))} "
            "(the organisers' --sizes adds boards)"
        )
    else:
        return Submission(team, str(path), language, size)
    return Submission(team, shown, language, size, problem)
