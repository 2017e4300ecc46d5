"""Pool rows of a selection, in the order ``eval.py`` trains on them (the frozen classifier's input order)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selection.inputs.load import LabelledVectors

# numpy is imported inside the function: ``from selection import load_experiment`` stays cheap


def selection_rows(train_set: dict, pool: LabelledVectors):
    """Pool rows of a selection in the order ``eval.py`` loads them (see :mod:`selection.inputs.load`).

    Pool target rows are in parquet row order already, so a target's rows are sorted;
    nontargets are grouped by word in order of first appearance, listed order within.
    """
    import numpy as np

    from selection.inputs.validation import clip_word

    row_of = {clip_id: row for row, clip_id in enumerate(pool.ids)}
    rows: list[int] = []
    for ids in train_set["targets"].values():
        rows.extend(sorted(row_of[clip_id] for clip_id in ids))
    by_word: dict[str, list[int]] = {}
    for clip_id in train_set["nontargets"]:
        by_word.setdefault(clip_word(clip_id), []).append(row_of[clip_id])
    for word_rows in by_word.values():
        rows.extend(word_rows)
    return np.array(rows, dtype=np.int64)
