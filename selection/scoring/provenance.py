"""Where a score came from: the harness's version, the scoring recipe, the config and the data it used.

Every results document (``eval.py``'s, ``submit``'s scorecard, each leaderboard row and the board
itself) carries a ``provenance`` mapping, so a published number says which rules produced it:

- ``harness_version``: ``selection.__version__``; ``git_commit``: the checkout's commit, when the
  harness runs from a git checkout (None otherwise);
- ``recipe``: the frozen classifier's definition and the scikit-learn version that computes it;
- ``metric`` and ``eval_random_seeds``;
- ``train_file_sha256``: the SHA-256 of the scored file's bytes (None for a selection given in memory);
- ``eval_set``: the SHA-256 of ``eval.yaml`` and of the eval parquet files' names and sizes, which a
  copy of the same data keeps.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

RECIPE = (
    "per seed s: VotingClassifier(voting='soft', estimators=[SVC(probability=True, random_state=s), "
    "LogisticRegression(random_state=s)]); score = mean over seeds of the metric"
)


@functools.cache
def git_commit() -> str | None:
    """The commit of the checkout the harness runs from, or None (an installed package, no git)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) == 40 else None


def recipe() -> dict:
    """The scoring recipe's identity: what is computed, and the library version that computes it."""
    import sklearn

    return {"classifier": RECIPE, "scikit_learn": sklearn.__version__}


def harness() -> dict:
    """The harness's version and, from a checkout, its commit."""
    from selection.version import __version__

    return {"harness_version": __version__, "git_commit": git_commit()}


@functools.cache
def _eval_set_identity(eval_file: str, eval_embeddings_dir: str, stamp: tuple) -> str:
    digest = hashlib.sha256(Path(eval_file).read_bytes())
    for path in sorted(Path(eval_embeddings_dir).glob("*.parquet")):
        digest.update(f"\n{path.name}:{path.stat().st_size}".encode())
    return digest.hexdigest()


def eval_set_identity(eval_file: str | Path, eval_embeddings_dir: str | Path) -> str:
    """A content identity of an eval set: ``eval.yaml``'s bytes and its parquet files' names and sizes."""
    info = Path(eval_file).stat()
    return _eval_set_identity(str(eval_file), str(eval_embeddings_dir), (info.st_size, info.st_mtime_ns))


def provenance(*, metric: str, seeds: list[int], train_file_sha256: str | None, eval_set: str | None) -> dict:
    """The ``provenance`` mapping of one results document (see the module docstring)."""
    return {
        **harness(),
        "recipe": recipe(),
        "metric": metric,
        "eval_random_seeds": list(seeds),
        "train_file_sha256": train_file_sha256,
        "eval_set": eval_set,
    }
