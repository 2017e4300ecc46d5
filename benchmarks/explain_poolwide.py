"""How far the report's evidence can go: every pool clip judged as a pick, each rule's precision, and a learned ceiling.

Usage::

    python benchmarks/explain_poolwide.py --experiments DIR[,DIR...] [--clips 3000] [--output explain_poolwide.json]

For each experiment (a folder written by ``download``, with its ``pool_faults.json`` truth), up to
``--clips`` pool clips in a fixed random order are judged in groups of 60, as picks of a 60-clip
selection (the evidence of a pick is computed without the other picks of its group:
:func:`selection.diagnosis.evidence.gather_evidence`, vectors only; no scoring, so ``harmful`` and
``redundant`` do not occur). Printed per experiment: the flags' recall and precision against the truth,
and each combination of deciding evidence with how many of its flags are faulty.

Then the ceiling: a logistic regression on the same evidence (the numbers the report computes, a few
transformed), trained on every experiment but one with the truth and applied to the one left out, at
the threshold that gives the highest recall at 72% precision on the training experiments. If it does
much better than the rules on the experiment it never saw, the evidence holds more than the rules use.
A pool-wide figure is not a selection's (weak selections pick differently); ``explain_faults.py`` gives
those. Not a timed test.
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from selection.datasets.faults import read_pool_faults  # noqa: E402
from selection.diagnosis.evidence import gather_evidence, judged  # noqa: E402
from selection.diagnosis.report import FLAGGED  # noqa: E402
from selection.scoring.experiment import load_experiment  # noqa: E402

GROUP = 60
EVIDENCE = ("agreement", "own_probability", "off_centre", "weakness", "word_probability", "other_word_probability",
            "word_neighbours")  # fmt: skip
CEILING_PRECISION = 0.72  # the training experiments' operating point: a little above the issue's 70%


def judge_pool(folder: Path, clips: int) -> dict:
    """Every judged clip's evidence, verdict, deciding evidence, class and truth."""
    experiment = load_experiment(folder, with_eval=False, cache_dir="off")
    pool, names = experiment.pool, experiment.class_names
    faults = read_pool_faults(folder)
    if faults is None:
        raise SystemExit(f"{folder}: no pool_faults.json (rebuild it with download --overwrite)")
    nontarget = names.index("nontarget") if "nontarget" in names else None
    rows = np.random.default_rng(0).permutation(len(pool.ids))[:clips]
    found = {key: [] for key in EVIDENCE}
    verdicts = []
    for start in range(0, len(rows), GROUP):
        group = rows[start : start + GROUP]
        evidence = gather_evidence(pool.matrix, pool.labels, group, len(names), pool_ids=pool.ids,
                                   nontarget=nontarget, class_names=names)  # fmt: skip
        verdicts += judged(evidence, np.zeros(len(group)))
        for key in EVIDENCE:
            found[key] += np.asarray(getattr(evidence, key), dtype=float).tolist()
    return {
        "nontarget": [bool(pool.labels[row] == nontarget) for row in rows],
        "truth": [faults.get(pool.ids[row], "clean") for row in rows],
        "verdict": [verdict for verdict, _ in verdicts],
        "decided_by": [decided for _, decided in verdicts],
        **found,
    }


def rule_figures(judged_pool: dict) -> dict:
    faulty = np.array(judged_pool["truth"]) != "clean"
    flagged = np.isin(judged_pool["verdict"], FLAGGED)
    kinds = collections.defaultdict(lambda: [0, 0])
    for index in np.flatnonzero(flagged):
        side = "nontarget" if judged_pool["nontarget"][index] else "target"
        kinds[f"{side}: " + " + ".join(judged_pool["decided_by"][index])][int(faulty[index])] += 1
    return {
        "clips": len(faulty), "faulty": int(faulty.sum()), "flagged": int(flagged.sum()),
        "recall": round(float((flagged & faulty).sum() / max(1, faulty.sum())), 3),
        "precision": round(float((flagged & faulty).sum() / max(1, flagged.sum())), 3),
        "decided_by": {key: {"faulty": hit, "flagged": hit + miss} for key, (miss, hit) in
                       sorted(kinds.items(), key=lambda item: -sum(item[1]))},
    }  # fmt: skip


def features(judged_pool: dict) -> np.ndarray:
    """The evidence as the learned ceiling sees it: log-probabilities, the off-centre score and its square, and
    the nontarget side's own weights."""
    value = {key: np.array(judged_pool[key], dtype=float) for key in EVIDENCE}
    nontarget = np.array(judged_pool["nontarget"], dtype=float)
    word = np.where(np.isnan(value["word_probability"]), value["own_probability"], value["word_probability"])
    off, weak = np.nan_to_num(value["off_centre"]), np.nan_to_num(value["weakness"])
    log = lambda p: np.log(p + 1e-4)  # noqa: E731
    return np.column_stack([
        value["agreement"], log(value["own_probability"]), log(word), log(value["other_word_probability"]),
        off, np.maximum(off, 0) ** 2, weak, value["word_neighbours"], nontarget, nontarget * off,
        nontarget * value["agreement"], nontarget * log(word),
    ])  # fmt: skip


def learned_ceiling(pools: dict[str, dict]) -> dict:
    """Per experiment: a logistic regression trained on the others, at their operating point, on this one."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out = {}
    for held in pools:
        train = [name for name in pools if name != held]
        x = np.concatenate([features(pools[name]) for name in train])
        y = np.concatenate([np.array(pools[name]["truth"]) != "clean" for name in train])
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)
        seen = model.predict_proba(x)[:, 1]
        order = np.argsort(-seen)
        precision = np.cumsum(y[order]) / np.arange(1, len(y) + 1)
        threshold = float(seen[order][np.flatnonzero(precision >= CEILING_PRECISION).max()])
        truth = np.array(pools[held]["truth"]) != "clean"
        flagged = model.predict_proba(features(pools[held]))[:, 1] >= threshold
        out[held] = {
            "threshold": round(threshold, 3),
            "recall": round(float((flagged & truth).sum() / max(1, truth.sum())), 3),
            "precision": round(float((flagged & truth).sum() / max(1, flagged.sum())), 3),
        }
    return out


def main(experiments: str, clips: int = 3000, output: str = "explain_poolwide.json") -> None:
    pools = {}
    for folder in [Path(part) for part in str(experiments).split(",") if part]:
        pools[str(folder)] = judge_pool(folder, int(clips))
        print(f"{folder}: {len(pools[str(folder)]['truth'])} clips judged", file=sys.stderr, flush=True)
    document = {"rules": {name: rule_figures(pool) for name, pool in pools.items()}}
    if len(pools) >= 2:
        document["learned_ceiling"] = learned_ceiling(pools)
    Path(output).write_text(json.dumps(document, indent=1) + "\n")
    print("| experiment | rules: recall | rules: precision | learned (left out): recall | precision |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, rules in document["rules"].items():
        learned = document.get("learned_ceiling", {}).get(name, {})
        recall, precision = learned.get("recall", float("nan")), learned.get("precision", float("nan"))
        print(f"| {name} | {rules['recall']:.2f} | {rules['precision']:.2f} | {recall:.2f} | {precision:.2f} |")
    for name, rules in document["rules"].items():
        print(f"\n{name}, flags by deciding evidence (faulty / flagged):")
        for key, counts in rules["decided_by"].items():
            print(f"  {key}: {counts['faulty']}/{counts['flagged']}")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
