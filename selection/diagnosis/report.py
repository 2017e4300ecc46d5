"""The per-clip report: every figure of ``explain.json``, computed from an experiment and a selection.

:func:`explain_selection` is the whole analysis (``python -m selection.explain`` and
:meth:`selection.Experiment.explain` call it); :func:`format_report` is the stdout table.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from selection.board.entries import visible
from selection.diagnosis.advice import selection_advice
from selection.diagnosis.estimate import eval_estimate, leave_one_out, pool_estimate, score_rows
from selection.diagnosis.evidence import (
    NEIGHBOURS,
    OFF_CENTRE_SPREADS,
    SHORT_SPEECH_SPREADS,
    VERDICTS,
    WEAK_SPREADS,
    gather_evidence,
    harm_spread,
    judged,
    verdict_counts,
)
from selection.diagnosis.projection import pool_map
from selection.diagnosis.repair import repair
from selection.inputs.formats import NONTARGET
from selection.progress import report_progress

EVAL_MODE_NOTE = (
    "AGAINST THE EVAL SET: these figures use evaluation data (for organisers after a challenge, and research); "
    "a selection algorithm may not use them"
)
POOL_MODE_NOTE = "against the allowed pool only: no eval data was read"
# below this many scored clips in some class, or with every effect under half the last shown digit, the estimate
# cannot separate one pick's effect from another's: the report says so and judges no clip
MIN_SCORED_PER_CLASS = 5
SMALLEST_EFFECT = 5e-5
FLAGGED = ("suspect", "badly cut?")  # the picks "without the flagged picks" leaves out, and --repair swaps first


def _rounded(value: float, digits: int = 2) -> float | None:
    return None if not np.isfinite(value) else round(float(value), digits)


def _figures(results: dict | None) -> dict | None:
    if results is None:
        return None
    return {
        "score": results["score"],
        "score_std": results["score_std"],
        "macro_f1": results["macro_f1"],
        "balanced_accuracy": results["balanced_accuracy"],
        "per_class": results["per_class"],
    }


def _reasons(index: int, *, clip: dict, evidence, class_names: list[str], metric: str,
             n_picks: int, duplicate_threshold: float) -> list[str]:  # fmt: skip
    """The sentences that explain one clip's verdict."""
    label = clip["label"]
    sentences = []
    if clip["effect"] is None:
        sentences.append("it cannot be left out: it is the only pick of its class, so no classifier trains without it")
    elif round(clip["effect"], 4) == 0:
        sentences.append(
            f"leaving it out changes the estimated {metric} by less than 0.0001 "
            f"(rank {clip['rank']} of {n_picks}; 1 is the most harmful)"
        )
    else:
        direction = "lowers" if clip["effect"] > 0 else "raises"
        sentences.append(
            f"leaving it out {direction} the estimated {metric} by {abs(clip['effect']):.4f} "
            f"(rank {clip['rank']} of {n_picks}; 1 is the most harmful)"
        )
    if clip["verdict"] == "harmful":
        sentences.append(
            "nothing says the clip itself is faulty: it hurts this selection as a whole (its balance, its "
            "classes' boundary), and one clip's effect is a noisy estimate; --repair tries a replacement"
        )
    counts = Counter(class_names[c] for c in evidence.neighbour_labels[index])
    own = counts.get(label, 0)
    sentence = f"{own} of its {NEIGHBOURS} nearest pool clips {'is' if own == 1 else 'are'} labelled {label}"
    others = [(name, n) for name, n in counts.most_common() if name != label]
    if others and others[0][1] >= max(2, own):
        sentence += f"; {others[0][1]} are labelled {others[0][0]}"
    sentences.append(sentence)
    sentence = (
        f"a model trained on the rest of the pool gives its label {label} a probability of "
        f"{clip['own_probability']:.2f}"
    )
    if clip["predicted"] != label:
        sentence += f" and {clip['predicted']} {clip['predicted_probability']:.2f}"
    sentences.append(sentence)
    other = clip.get("other_word")
    if "another word" in clip["decided_by"]:
        word = clip["word"] if label == NONTARGET else label
        sentence = (
            f"the model takes it for the word {other} ({clip['other_word_probability']:.2f}), not {word} "
            f"({clip['word_probability']:.2f}): it is probably another word"
        )
        if label == NONTARGET and other not in class_names:
            sentence += (
                f"; none of its {NEIGHBOURS} nearest pool clips is a {word} either (still a nontarget, so it "
                "misleads the classifier less than a target would)"
            )
        sentences.append(sentence)
    off_centre, weakness = clip["off_centre"], clip["weakness"]
    if off_centre is not None and off_centre > OFF_CENTRE_SPREADS:
        sentences.append(
            f"it points away from its word's typical clips: {off_centre:.1f} spreads beyond the median "
            f"{'nontarget clip of its word' if clip['word'] != label else 'clip of ' + label} (badly cut clips do)"
        )
    if weakness is not None and weakness > WEAK_SPREADS:
        sentences.append(
            f"its vector is weaker than its word's clips by {weakness:.1f} spreads (mostly silence or a fragment?)"
        )
    length = clip.get("speech_length")
    if length is not None and length < -SHORT_SPEECH_SPREADS:
        sentences.append(
            f"its recording holds {clip['speech_seconds']:.2f} s of speech, {-length:.1f} spreads shorter than "
            "its word's recordings in the pool (truncated, or a fragment in silence?)"
        )
    if "combined evidence" in clip["decided_by"]:
        sentences.append(
            f"one sign above points to a fault, but its vector evidence taken together gives it a "
            f"{clip['fault_probability']:.1%} chance of being faulty (a model of all of it, fitted on the built-in "
            "corpora's faults): not flagged"
        )
    if clip["duplicate_of"] is not None:
        sentences.append(
            f"it is nearly the same as pick {clip['duplicate_of']} (distance {clip['duplicate_distance']:.2f}; "
            f"only 1% of pool clips have a same-label neighbour closer than {duplicate_threshold:.2f})"
        )
    return sentences


def _words(class_names, pool_labels, picked_labels, full: dict, without: dict | None) -> list[dict]:
    words = []
    pool_counts = np.bincount(pool_labels, minlength=len(class_names))
    pick_counts = np.bincount(picked_labels, minlength=len(class_names))
    for class_id, name in enumerate(class_names):
        row = {
            "word": name,
            "picks": int(pick_counts[class_id]),
            "picks_share": round(float(pick_counts[class_id] / max(1, pick_counts.sum())), 4),
            "pool": int(pool_counts[class_id]),
            "pool_share": round(float(pool_counts[class_id] / max(1, pool_counts.sum())), 4),
            **{key: full["per_class"][name][key] for key in ("precision", "recall", "f1")},
        }
        if without is not None:
            row["without_suspects"] = {key: without["per_class"][name][key] for key in ("precision", "recall", "f1")}
        words.append(row)
    return words


def _document_of(rows: np.ndarray, pool, class_names: list[str]) -> dict:
    """A train.json document for pool ``rows`` (the plugin API's :meth:`Pool.to_training_set`)."""
    from selection.selection import Pool

    chosen = Pool(pool.matrix, pool.labels, pool.ids, class_names).to_training_set(rows)
    return {"targets": chosen.targets, "nontargets": chosen.nontargets}


def estimate_limits(estimate, effects: np.ndarray) -> str | None:
    """Why the estimate is too small to judge clips by (shown after "too small to judge: "), or None when it is not.

    The rule: in pool mode, fewer than :data:`MIN_SCORED_PER_CLASS` held-out clips of some class (a recall
    then moves in steps of a fifth or more); in either mode, no pick whose leave-one-out effect reaches
    :data:`SMALLEST_EFFECT`. (In eval mode the scored clips are the benchmark's own, whatever their number.)
    """
    counts = np.bincount(estimate.scored_on.labels, minlength=len(estimate.class_names))
    scarce = [(name, int(n)) for name, n in zip(estimate.class_names, counts) if n < MIN_SCORED_PER_CLASS]
    if scarce and estimate.mode == "pool":
        listed = ", ".join(f"{name} {n}" for name, n in scarce[:4]) + (" ..." if len(scarce) > 4 else "")
        return (
            f"{len(estimate.scored_on.ids)} held-out pool clips are scored, and some words have fewer than "
            f"{MIN_SCORED_PER_CLASS} ({listed}); the effects are not meaningful and no pick is judged"
        )
    finite = effects[np.isfinite(effects)]
    if len(finite) == 0 or np.all(np.abs(finite) < SMALLEST_EFFECT):
        return (
            f"leaving out any one pick changes the estimate by less than {SMALLEST_EFFECT:g}; "
            "the effects are not meaningful and no pick is judged"
        )
    return None


def _check_reportable(pool, rows: np.ndarray, *, against: str) -> None:
    """What the report needs of its inputs, refused in one line (it would otherwise fail deep inside).

    Its neighbour evidence needs more pool clips than :data:`NEIGHBOURS`, its map two values per
    vector, and pool mode unpicked clips to hold out.
    """
    from selection.inputs.errors import BadInputError

    clips, dims = pool.matrix.shape
    if clips <= NEIGHBOURS:
        raise BadInputError(
            f"allowed pool: {clips} clips; the per-clip report needs more than {NEIGHBOURS} (each pick is judged by "
            f"its {NEIGHBOURS} nearest pool clips)"
        )
    if dims < 2:
        raise BadInputError(f"allowed pool: vectors of {dims} value; the per-clip report needs at least 2 values")
    if against == "pool" and len(rows) >= clips:
        raise BadInputError(
            f"train file: selects all {clips} clips of the allowed pool, so none is left to estimate on; "
            "use --against eval (or select fewer)"
        )


def explain_selection(
    experiment,
    train_set: dict,
    *,
    against: str = "pool",
    repair_limit: int = 0,
    nontarget_share: float = 0.96,
    n_jobs: int = -1,
    audio_dir: str | None = None,
) -> tuple[dict, dict]:
    """The per-clip report of a checked selection.

    Parameters
    ----------
    experiment : Experiment
        Loaded with ``with_eval=False`` for ``against="pool"`` (then nothing of the eval set is read).
    train_set : dict
        A checked selection (:meth:`Experiment.check`).
    against : {'pool', 'eval'}
        What the frozen classifier is scored on (:mod:`selection.diagnosis.estimate`).
    repair_limit : int
        Most suspect or redundant picks to swap for unpicked pool clips (0: no repair).
    nontarget_share : float
        Pool mode: the nontargets' weight in the held-out clips (the eval set's share).
    n_jobs : int
        Threads for the scorings; the figures do not depend on it.
    audio_dir : str, optional
        The pool's recordings at ``<audio_dir>/<clip id>``: each pick's speech is measured against its
        word's (:func:`selection.diagnosis.evidence.speech_lengths`).

    Returns
    -------
    document : dict
        What ``explain.json`` holds.
    extras : dict
        ``repaired`` (a train.json document, or None) and ``map`` (the pool map's arrays).
    """
    from selection.inputs.rows import selection_rows
    from selection.inputs.validation import clip_word
    from selection.scoring.provenance import harness

    timings = {}
    started = time.perf_counter()
    pool = experiment.pool
    class_names = experiment.class_names
    rows = selection_rows(train_set, pool)
    _check_reportable(pool, rows, against=against)
    picked_ids = [pool.ids[row] for row in rows]
    config = experiment.config
    if against == "eval":
        estimate = eval_estimate(experiment.evaluation, rows, len(pool.ids), config, class_names)
    else:
        estimate = pool_estimate(pool, rows, config, class_names, nontarget_share=nontarget_share)
    timings["load"] = time.perf_counter() - started

    mark = time.perf_counter()
    # the evidence and the map need no scoring: they run beside the leave-one-out scorings (their matrix work
    # is outside the GIL), with BLAS on one thread throughout so that their figures do not depend on the cores
    nontarget = class_names.index(NONTARGET) if NONTARGET in class_names else None
    # (the warnings filter is process-wide and both threads set and restore it: this context restores the caller's)
    with (
        warnings.catch_warnings(),
        threadpool_limits(limits=1, user_api="blas"),
        ThreadPoolExecutor(1, thread_name_prefix="evidence") as side,
    ):
        pool_work = side.submit(
            lambda: (
                gather_evidence(
                    pool.matrix,
                    pool.labels,
                    rows,
                    len(class_names),
                    pool_ids=pool.ids,
                    nontarget=nontarget,
                    class_names=class_names,
                    audio_dir=audio_dir,
                ),
                pool_map(pool.matrix, rows),
            )
        )
        full = score_rows(estimate, pool, rows, n_jobs=n_jobs)
        if full is None:
            from selection.inputs.errors import BadInputError

            raise BadInputError("train set: the picks hold a single class; the frozen classifier needs two to train")
        without_each = leave_one_out(
            estimate, pool, rows, n_jobs=n_jobs,
            progress=lambda items: report_progress(items, desc="leaving each pick out", unit="picks"),
        )  # fmt: skip
        effects = full["score"] - without_each
        timings["leave_one_out"] = time.perf_counter() - mark
        mark = time.perf_counter()
        evidence, mapped = pool_work.result()
    limits = estimate_limits(estimate, effects)
    decisions = judged(evidence, effects) if limits is None else [("not judged", [])] * len(rows)
    verdict = [decision for decision, _ in decisions]
    timings["evidence"] = time.perf_counter() - mark

    order = sorted(range(len(rows)), key=lambda i: (np.isnan(effects[i]), np.nan_to_num(effects[i]), i))
    rank_of = {index: rank for rank, index in enumerate(order, start=1)}
    clips = []
    for index in order:
        clip = {
            "rank": rank_of[index],
            "id": picked_ids[index],
            "label": class_names[pool.labels[rows[index]]],
            "word": clip_word(picked_ids[index]),
            "verdict": verdict[index],
            "decided_by": decisions[index][1],
            "effect": None if np.isnan(effects[index]) else round(float(effects[index]), 6),
            "score_without": None if np.isnan(without_each[index]) else round(float(without_each[index]), 6),
            "neighbour_agreement": round(float(evidence.agreement[index]), 3),
            "neighbours": dict(Counter(class_names[c] for c in evidence.neighbour_labels[index]).most_common()),
            "own_probability": round(float(evidence.own_probability[index]), 4),
            "predicted": class_names[int(evidence.predicted[index])],
            "predicted_probability": round(float(evidence.predicted_probability[index]), 4),
            "word_probability": _rounded(evidence.word_probability[index], 4),
            "other_word": evidence.other_word[index] or None,
            "other_word_probability": round(float(evidence.other_word_probability[index]), 4),
            "word_neighbours": int(evidence.word_neighbours[index]),
            "duplicate_of": picked_ids[evidence.duplicate_of[index]] if evidence.duplicate_of[index] >= 0 else None,
            "duplicate_distance": round(float(evidence.duplicate_distance[index]), 4)
            if evidence.duplicate_of[index] >= 0
            else None,
            "off_centre": _rounded(evidence.off_centre[index]),
            "weakness": _rounded(evidence.weakness[index]),
            "fault_probability": _rounded(evidence.fault_probability[index], 4),
            **(
                {
                    "speech_seconds": _rounded(evidence.speech_seconds[index]),
                    "speech_length": _rounded(evidence.speech_length[index]),
                }
                if evidence.speech_length is not None
                else {}
            ),
            "map": [round(float(v), 4) for v in mapped["picks"][index]],
        }
        clip["reasons"] = _reasons(
            index, clip=clip, evidence=evidence, class_names=class_names,
            metric=estimate.metric, n_picks=len(rows), duplicate_threshold=evidence.duplicate_threshold,
        )  # fmt: skip
        clips.append(clip)

    mark = time.perf_counter()
    in_file_order = lambda trial: selection_rows(_document_of(trial, pool, class_names), pool)  # noqa: E731
    suspects = [i for i in range(len(rows)) if verdict[i] in FLAGGED]
    kept = np.delete(rows, suspects)
    without_suspects = score_rows(estimate, pool, kept, n_jobs=n_jobs) if suspects else None
    advice = [] if limits is not None else selection_advice(
        estimate, pool, rows, full=full, effects=effects, verdicts=verdict, without_suspects=without_suspects,
        in_file_order=in_file_order, n_jobs=n_jobs,
    )  # fmt: skip
    repaired = None
    repair_section = None
    if repair_limit > 0 and limits is not None:
        repair_section = {"requested": repair_limit, "skipped": f"no repair: {limits}"}
    elif repair_limit > 0:
        start, budget, moves = rows, repair_limit, []
        balance = next((item for item in advice if item["kind"] == "class balance"), None)
        if balance and balance["effect"] and balance["effect"] > 0 and balance["moved"] <= budget:
            start, budget = balance["_rows"], budget - balance["moved"]
            moves = [{"moved": balance["moved"], "text": balance["text"], "effect": balance["effect"]}]
        present = {int(row): position for position, row in enumerate(start)}
        removable = [
            present[int(rows[i])] for kind in (*FLAGGED, "harmful", "redundant") for i in order
            if verdict[i] == kind and int(rows[i]) in present
        ]  # fmt: skip
        baseline = balance["_score"] if moves else full["score"]
        new_rows, swaps, _ = repair(
            estimate, pool, start, removable, limit=budget, baseline=baseline, n_jobs=n_jobs,
            in_file_order=in_file_order, progress=lambda items: report_progress(items, desc="repairing", unit="picks"),
        )  # fmt: skip
        repaired = _document_of(new_rows, pool, class_names)
        rescored = score_rows(estimate, pool, selection_rows(repaired, pool), n_jobs=n_jobs)
        repair_section = {
            "requested": repair_limit,
            "candidates": int(len(estimate.candidates)),
            "class_moves": moves,
            "swaps": swaps,
            "swapped": sum(1 for swap in swaps if swap["kept"]),
            "estimate": _figures(rescored),
        }
    timings["what_if"] = time.perf_counter() - mark

    tally = Counter(verdict)
    document = {
        "mode": against,
        "note": EVAL_MODE_NOTE if against == "eval" else POOL_MODE_NOTE,
        "limits": None if limits is None else f"too small to judge: {limits}",
        "metric": estimate.metric,
        "seeds": estimate.seeds,
        "n_picks": len(rows),
        "estimate": {
            "description": estimate.description,
            "n_clips": len(estimate.scored_on.ids),
            **_figures(full),
        },
        "advice": [{key: value for key, value in item.items() if not key.startswith("_")} for item in advice],
        "verdicts": {name: tally.get(name, 0) for name in VERDICTS},
        "effect_spread": round(harm_spread(effects), 6),
        "without_suspects": None
        if without_suspects is None
        else {"removed": len(suspects), "n_picks": int(len(kept)), **_figures(without_suspects)},
        "clips": clips,
        "words": _words(class_names, pool.labels, pool.labels[rows], full, without_suspects),
        "repair": repair_section,
        "map": {
            "method": f"PCA fitted on {len(mapped['sample_rows'])} pool clips (fixed seed), picks projected onto it",
            "explained_variance": [round(v, 4) for v in mapped["explained_variance"]],
            "sample": [
                [round(float(x), 3), round(float(y), 3), class_names[pool.labels[row]]]
                for (x, y), row in zip(mapped["sample"], mapped["sample_rows"])
            ],
        },
        "harness": harness(),
    }
    timings["total"] = time.perf_counter() - started
    document["seconds"] = {name: round(value, 2) for name, value in timings.items()}
    return document, {"repaired": repaired}


def format_report(document: dict, *, top: int = 10) -> str:
    """A short table for stdout: the estimate, the verdicts, the most harmful picks."""
    estimate = document["estimate"]
    lines = [f"WARNING: {document['limits']}"] if document.get("limits") else []
    lines += [
        document["note"],
        f"{document['metric']} {estimate['score']:.4f} ± {estimate['score_std']:.4f}: {estimate['description']}",
    ]
    if document.get("advice"):
        lines.append("what to change first:")
        lines += [f"  - {item['text']}" for item in document["advice"]]
    if document["without_suspects"]:
        lines.append(
            f"without the {document['without_suspects']['removed']} flagged picks (suspect or badly cut?): "
            f"{document['without_suspects']['score']:.4f}"
        )
    tally = document["verdicts"]
    lines.append(f"verdicts: {verdict_counts(tally)}")
    if document["repair"] and document["repair"].get("skipped"):
        lines.append(document["repair"]["skipped"])
    elif document["repair"]:
        repaired = document["repair"]
        moved = sum(move["moved"] for move in repaired.get("class_moves", []))
        lines.append(
            f"repair: {moved} picks moved between classes, {repaired['swapped']} of {len(repaired['swaps'])} picks "
            f"swapped; estimate {repaired['estimate']['score']:.4f}"
        )
    lines.append(f"{'rank':>4}  {'verdict':<10}{'effect':>9}  {'label':<14}clip")
    for clip in document["clips"][:top]:
        effect = "n/a" if clip["effect"] is None else f"{clip['effect']:+.4f}"
        label, clip_id = visible(str(clip["label"])), visible(str(clip["id"]))
        lines.append(f"{clip['rank']:>4}  {clip['verdict']:<10}{effect:>9}  {label:<14}{clip_id}")
    return "\n".join(lines)
