"""Advice on a selection as a whole: what to change first, each with its estimated effect where one can be had.

The per-clip verdicts say which picks look wrong; a selection's largest fault is often not one pick
but its shape. Checked here, each against the report's own pool-only estimate (no eval data):

- **class balance**: the nontargets' share of the picks against the pool's and against the share the
  configured metric rewards (the default algorithm's: 0.4 of the budget under macro F1, 0.2 under
  balanced accuracy); where they differ by at least two picks, the what-if moves that many picks
  (the most harmful of the over-represented side out; clean, spread-out pool clips of the other side
  in) and scores it;
- **words with too few picks**: a target word with under half the average target word's picks (or
  none); the what-if gives it picks taken from the best-covered class;
- **suspect and badly cut picks**: their number and the estimate without them (dropping is not the same as replacing:
  ``--repair`` replaces);
- **near-duplicates**: picks that repeat another pick (no estimate: replacing them is ``--repair``'s job).

Each item is ``{"kind", "text", "effect"}`` (``effect``: estimate after − estimate now, or None), most
helpful first; the class-balance item also carries ``moved`` (picks moved) and, under ``_rows`` and ``_score``,
the moved selection's pool rows and its exact estimate (for ``--repair``; not written to ``explain.json``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from selection.diagnosis.estimate import Estimate, score_rows
from selection.diagnosis.evidence import squared_norms
from selection.diagnosis.repair import ranked_candidates

REWARDED_NONTARGET_SHARE = {"macro_f1": 0.4, "balanced_accuracy": 0.2}


def _moved(
    estimate: Estimate,
    pool,
    rows: np.ndarray,
    effects: np.ndarray,
    *,
    out_of: Callable[[int], bool],
    into: list[int],
    count: int,
    norms: np.ndarray,
) -> np.ndarray | None:
    """``rows`` with the ``count`` most harmful picks whose label satisfies ``out_of`` replaced by candidates of the
    labels ``into`` (taken in turn), keeping at least one pick per class; None if that cannot be done."""
    labels = pool.labels[rows]
    order = [int(i) for i in np.argsort(np.nan_to_num(effects, nan=np.inf), kind="stable") if out_of(int(labels[i]))]
    remaining = {int(label): int(np.sum(labels == label)) for label in np.unique(labels)}
    removed = []
    for index in order:
        if len(removed) == count:
            break
        if remaining[int(labels[index])] > 1:
            removed.append(index)
            remaining[int(labels[index])] -= 1
    if len(removed) < count:
        return None
    kept = np.delete(rows, removed)
    added: list[int] = []
    candidates = estimate.candidates
    ranked = {label: list(ranked_candidates(pool, kept, label, candidates, norms)) for label in into}
    turn = 0
    while len(added) < count and any(ranked.values()):
        label = into[turn % len(into)]
        turn += 1
        if ranked[label]:
            added.append(int(ranked[label].pop(0)))
    if len(added) < count:
        return None
    return np.concatenate([kept, np.asarray(added, dtype=rows.dtype)])


def selection_advice(
    estimate: Estimate,
    pool,
    rows: np.ndarray,
    *,
    full: dict,
    effects: np.ndarray,
    verdicts: list[str],
    without_suspects: dict | None,
    in_file_order: Callable[[np.ndarray], np.ndarray],
    n_jobs: int = -1,
) -> list[dict]:
    """The advice items for a selection (see the module docstring), most helpful first."""
    names = estimate.class_names
    labels = pool.labels[rows]
    n = len(rows)
    norms = squared_norms(pool.matrix)
    items: list[dict] = []

    def what_if(trial: np.ndarray | None) -> tuple[float | None, float | None]:
        """(estimate after − estimate now, rounded; the estimate after, exact), or Nones."""
        figures = None if trial is None else score_rows(estimate, pool, in_file_order(trial), n_jobs=n_jobs)
        if figures is None:
            return None, None
        return round(float(figures["score"] - full["score"]), 6), float(figures["score"])

    nontarget_picks = int(np.sum(labels == 0))
    share = nontarget_picks / n
    pool_share = float(np.mean(pool.labels == 0))
    rewarded = REWARDED_NONTARGET_SHARE.get(estimate.metric, 0.4)
    recall = full["per_class"][names[0]]["recall"]
    wanted = int(round(rewarded * n))
    targets = list(range(1, len(names)))
    if abs(wanted - nontarget_picks) >= 2:
        count = abs(wanted - nontarget_picks)
        if wanted > nontarget_picks:
            trial = _moved(estimate, pool, rows, effects, out_of=lambda label: label != 0, into=[0], count=count,
                           norms=norms)  # fmt: skip
            action = f"add nontargets: moving {count} picks from targets to nontargets"
        else:
            trial = _moved(estimate, pool, rows, effects, out_of=lambda label: label == 0, into=targets, count=count,
                           norms=norms)  # fmt: skip
            action = f"pick fewer nontargets: moving {count} picks from nontargets to the target words"
        effect, score = what_if(trial)
        change = "" if effect is None else f" {'raises' if effect > 0 else 'changes'} the estimate by {effect:+.4f}"
        items.append({
            "kind": "class balance",
            "_rows": trial,
            "_score": score,
            "moved": count,
            "text": (
                f"nontargets are {share:.0%} of your picks and {pool_share:.0%} of the pool; the estimated nontarget "
                f"recall is {recall:.2f}, and {estimate.metric} rewards about {rewarded:.0%} of the budget on "
                f"nontargets: {action}{change}"
            ),
            "effect": effect,
        })  # fmt: skip
    counts = np.bincount(labels, minlength=len(names))
    average = counts[1:].mean() if len(names) > 1 else 0
    for label in targets:
        if counts[label] < max(1.0, 0.5 * average):
            donor = int(np.argmax(counts))
            give = max(1, int(round(average)) - int(counts[label]))
            trial = _moved(estimate, pool, rows, effects, out_of=lambda other, donor=donor: other == donor,
                           into=[label], count=give, norms=norms)  # fmt: skip
            effect, _ = what_if(trial)
            word = names[label]
            items.append({
                "kind": "too few picks",
                "text": (
                    f"{word} has {counts[label]} pick{'' if counts[label] == 1 else 's'} against {average:.1f} for the "
                    f"average target word; its estimated recall is {full['per_class'][word]['recall']:.2f}: give it "
                    f"{give} more (taken from {names[donor]})"
                    + ("" if effect is None else f", which changes the estimate by {effect:+.4f}")
                ),
                "effect": effect,
            })  # fmt: skip
    suspects, badly_cut = verdicts.count("suspect"), verdicts.count("badly cut?")
    if suspects or badly_cut:
        effect = None if without_suspects is None else round(float(without_suspects["score"] - full["score"]), 6)
        parts = []
        if suspects:
            parts.append(f"{suspects} look mislabeled or another word (verdict suspect)")
        if badly_cut:
            parts.append(f"{badly_cut} look badly cut (verdict badly cut?)")
        tail = ""
        if effect is not None:
            tail = f"; without them the estimate changes by {effect:+.4f}"
            if effect <= 0:
                tail += (
                    " (lower, because dropping them also loses what they cover and shrinks a budget the classifier "
                    "needs; replace them instead: --repair)"
                )
        items.append({
            "kind": "suspect picks",
            "text": f"of your {n} picks, {' and '.join(parts)}{tail}",
            "effect": effect,
        })  # fmt: skip
    # verdicts whose advice has no estimate of its own: replacing the picks is what --repair tries
    for verdict, kind, says in (
        ("harmful", "harmful picks", "with nothing wrong in the clip itself hurt the estimate well beyond the other "
         "picks (verdict harmful): try replacing them (--repair)"),
        ("redundant", "near-duplicates", "nearly repeat another pick: replacing them covers more of the pool "
         "(--repair)"),
    ):  # fmt: skip
        count = verdicts.count(verdict)
        if count:
            items.append({"kind": kind, "text": f"{count} pick{'s' if count > 1 else ''} {says}", "effect": None})
    return sorted(items, key=lambda item: (item["effect"] is None, -(item["effect"] or 0.0)))
