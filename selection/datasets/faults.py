"""Ground truth of the built-in corpora's pool faults: which allowed clips are faulty, and how.

The built-in corpora plant the real pool's faults on purpose (a share of every word's clips
is another word, a share is badly cut). ``download`` writes what it planted beside each
experiment as ``pool_faults.json``::

    {"about": "...", "pool_clips": 12345,
     "counts": {"mislabeled": 1234, "truncated": 80, "silence": 77, "neighbour": 81},
     "faults": {"<clip id>": "<kind>", ...}}

Only faulty allowed-pool clips are listed; every other pool clip is clean. Kinds:
``mislabeled`` (the clip is another word), ``truncated`` (part of the word), ``silence``
(mostly silence) and ``neighbour`` (mostly a neighbouring word); the synthetic corpus has
no ``truncated`` clips. Selection and evaluation never read this file: it is for measuring
algorithms (``bench``'s faulty-picks column) and the per-clip report, never for selecting.
"""

from __future__ import annotations

import json
from pathlib import Path

POOL_FAULTS_FILE = "pool_faults.json"
FAULT_KINDS = ("mislabeled", "truncated", "silence", "neighbour")
BADLY_CUT = ("truncated", "silence", "neighbour")


def pool_faults_document(allowed: dict, faults: dict[str, str]) -> dict:
    """The ``pool_faults.json`` document for an allowed pool, from a corpus's ``{clip_id: kind}``."""
    pool_ids = [clip_id for ids in allowed["targets"].values() for clip_id in ids] + list(allowed["nontargets"])
    listed = {clip_id: faults[clip_id] for clip_id in pool_ids if clip_id in faults}
    return {
        "about": "faults planted in this experiment's allowed pool by the built-in corpus; selection and "
        "evaluation never read this file",
        "pool_clips": len(pool_ids),
        "counts": {kind: sum(1 for k in listed.values() if k == kind) for kind in FAULT_KINDS},
        "faults": listed,
    }


def write_pool_faults(folder: Path, allowed: dict, faults: dict[str, str]) -> None:
    """Write ``pool_faults.json`` into ``folder`` (an experiment being built)."""
    document = pool_faults_document(allowed, faults)
    (Path(folder) / POOL_FAULTS_FILE).write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")


def read_fault_truth(folder: str | Path) -> tuple[dict, dict[str, str]] | None:
    """(the ``pool_faults.json`` document, its ``{clip_id: kind}``), or None where no usable truth was written."""
    path = Path(folder) / POOL_FAULTS_FILE
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
        faults = document["faults"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(faults, dict):
        return None
    return document, {str(clip_id): str(kind) for clip_id, kind in faults.items() if kind in FAULT_KINDS}


def read_pool_faults(folder: str | Path) -> dict | None:
    """``{clip_id: kind}`` of an experiment's faulty pool clips, or None where no truth was written."""
    found = read_fault_truth(folder)
    return None if found is None else found[1]


def faulty_share(picked_ids: list[str], faults: dict[str, str], kinds=FAULT_KINDS) -> float:
    """Share of ``picked_ids`` whose fault is one of ``kinds``."""
    if not picked_ids:
        return 0.0
    return sum(1 for clip_id in picked_ids if faults.get(clip_id) in kinds) / len(picked_ids)


def fault_figures(truth: tuple[dict, dict[str, str]] | None, train_set: dict) -> dict:
    """Faulty and badly cut shares of a selection's picks and of the pool; empty where no truth exists.

    ``truth`` is :func:`read_fault_truth` of the experiment's folder (read once per experiment).
    """
    if truth is None:
        return {}
    document, faults = truth
    pool_clips = max(1, int(document.get("pool_clips") or 1))
    picked = [clip_id for ids in train_set["targets"].values() for clip_id in ids] + list(train_set["nontargets"])
    return {
        "faulty_picks": round(faulty_share(picked, faults), 4),
        "badly_cut_picks": round(faulty_share(picked, faults, BADLY_CUT), 4),
        "pool_faulty": round(len(faults) / pool_clips, 4),
        "pool_badly_cut": round(sum(1 for kind in faults.values() if kind in BADLY_CUT) / pool_clips, 4),
    }
