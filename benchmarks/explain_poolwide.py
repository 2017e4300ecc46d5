"""How far the report's evidence can go: every pool clip judged as a pick, each rule's precision, and a learned ceiling.

Usage::

    python benchmarks/explain_poolwide.py --experiments DIR[,DIR...] [--report DIR[,DIR...]] [--clips 3000]
        [--selections explain_faults.json[,...]] [--weights] [--output explain_poolwide.json]

For each experiment (a folder written by ``download``, with its ``pool_faults.json`` truth), up to
``--clips`` pool clips in a fixed random order are judged in groups of 60, as picks of a 60-clip
selection (the evidence of a pick is computed without the other picks of its group:
:func:`selection.diagnosis.evidence.gather_evidence`, vectors only; no scoring, so ``harmful`` and
``redundant`` do not occur). Printed per experiment: the flags' recall and precision against the truth,
and each combination of deciding evidence with how many of its flags are faulty.

Then the ceiling: a logistic regression on the same evidence (the numbers the report computes, a few
transformed), trained with the truth and applied to an experiment it never saw: each of
``--experiments`` is left out in turn and judged by a model of the others; each of ``--report`` (judged
only, never trained on) by a model of all of ``--experiments``. Its threshold is chosen on the
training experiments as the rules' were: the best worst-experiment min(recall / 0.8, precision / 0.7).
If it does much better than the rules where it was not trained, the evidence holds more than the rules
use. A pool-wide figure is not a selection's (weak selections pick differently): ``--selections``
takes ``explain_faults.py`` outputs and sets the rules, the learned combination (trained on every
``--experiments``), either, and the rules with a stricter veto than the report's (a flag the learned
combination puts below 5% dropped, where the report drops those below 2%) against the truth on their
picks, per experiment (a tuning experiment's picks were among the model's training clips). ``--weights``
prints the model fitted on every ``--experiments`` as the report's combined evidence holds it
(:data:`selection.diagnosis.evidence.COMBINED_WEIGHTS`). Not a timed test.
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
from selection.diagnosis.evidence import COMBINED_FEATURES, combined_features, gather_evidence, judged  # noqa: E402
from selection.diagnosis.report import FLAGGED  # noqa: E402
from selection.scoring.experiment import load_experiment  # noqa: E402

GROUP = 60
EVIDENCE = (
    "agreement",
    "own_probability",
    "word_probability",
    "other_word_probability",
    "off_centre",
    "weakness",
    "word_neighbours",
)  # fmt: skip  (Evidence's fields, named as combined_features' parameters)
RECALL_AIM, PRECISION_AIM = 0.8, 0.7  # the bars the thresholds are chosen against (worst experiment)
WEAK_AND_PLANTED = ("random", "near_mean", "near_median", "default_planted")  # the selections the flags are measured on
STRICTER_VETOES = (0.05,)  # --selections: the report's flags less those the learned combination puts below these


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
    recall, precision = _figures(flagged, faulty)
    return {
        "clips": len(faulty), "faulty": int(faulty.sum()), "flagged": int(flagged.sum()),
        "recall": round(recall, 3), "precision": round(precision, 3),
        "decided_by": {key: {"faulty": hit, "flagged": hit + miss} for key, (miss, hit) in
                       sorted(kinds.items(), key=lambda item: -sum(item[1]))},
    }  # fmt: skip


def features(judged_pool: dict) -> np.ndarray:
    """The evidence as the combined evidence weighs it (:func:`selection.diagnosis.evidence.combined_features`)."""
    return combined_features(**{key: judged_pool[key] for key in EVIDENCE}, nontarget=judged_pool["nontarget"])


def _figures(flagged: np.ndarray, faulty: np.ndarray) -> tuple[float, float]:
    hit = float((flagged & faulty).sum())
    return hit / max(1, faulty.sum()), hit / max(1, flagged.sum())


def _worst(scores: dict, faulty: dict, names: list[str], threshold: float) -> float:
    """The worst experiment's min(recall / aim, precision / aim) at ``threshold``."""
    pairs = [_figures(scores[name] >= threshold, faulty[name]) for name in names]
    return min(min(recall / RECALL_AIM, precision / PRECISION_AIM) for recall, precision in pairs)


def fit_learned(pools: dict[str, dict], train: list[str]):
    """A logistic regression on the evidence of ``train``'s clips, and its threshold (chosen on them)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    faulty = {name: np.array(pools[name]["truth"]) != "clean" for name in train}
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    model.fit(np.concatenate([features(pools[name]) for name in train]), np.concatenate([faulty[n] for n in train]))
    seen = {name: model.predict_proba(features(pools[name]))[:, 1] for name in train}
    threshold = max(np.round(np.linspace(0.1, 0.9, 81), 2), key=lambda t: _worst(seen, faulty, train, t))
    return model, float(threshold)


def learned_ceiling(pools: dict[str, dict], report: list[str]) -> dict:
    """Per experiment: a logistic regression trained on others (see the module's docstring), judging this one."""
    out = {}
    for held in pools:
        train = [name for name in pools if name != held and name not in report]
        if len(train) < 2:
            continue
        model, threshold = fit_learned(pools, train)
        faulty = np.array(pools[held]["truth"]) != "clean"
        recall, precision = _figures(model.predict_proba(features(pools[held]))[:, 1] >= threshold, faulty)
        out[held] = {"trained_on": train, "threshold": threshold, "recall": round(recall, 3),
                     "precision": round(precision, 3)}  # fmt: skip
    return out


def on_selections(pools: dict[str, dict], tuning: list[str], files: list[str]) -> dict:
    """On the picks of the weak and planted selections in ``explain_faults.py`` outputs, per experiment: the
    report's flags, the learned combination's (trained on every tuning experiment), either's, and the report's
    less those the learned combination puts below each of :data:`STRICTER_VETOES`."""
    model, threshold = fit_learned(pools, tuning)
    cases = [case for name in files for case in json.loads(Path(name).read_text())["cases"]]
    cases = [case for case in cases if case["selection"].split("/")[0] in WEAK_AND_PLANTED]
    renamed = {"agreement": "neighbour_agreement"}
    out = {}
    for experiment in sorted({case["experiment"] for case in cases}):
        picks = [pick for case in cases if case["experiment"] == experiment for pick in case["picks"]]
        seen = {"nontarget": [pick["label"] == "nontarget" for pick in picks]}
        for key in EVIDENCE:
            values = [pick[renamed.get(key, key)] for pick in picks]
            seen[key] = [np.nan if value is None else value for value in values]
        faulty = np.array([pick["truth"] != "clean" for pick in picks])
        rules = np.isin([pick["verdict"] for pick in picks], FLAGGED)
        probability = model.predict_proba(features(seen))[:, 1]
        learned = probability >= threshold
        kinds = [("rules", rules), ("learned", learned), ("either", rules | learned)]
        kinds += [(f"rules, cleared below {bar}", rules & (probability >= bar)) for bar in STRICTER_VETOES]
        out[experiment] = {"tuning": experiment in tuning, "threshold": threshold, "faulty": int(faulty.sum())} | {
            name: dict(zip(("recall", "precision"), np.round(_figures(flags, faulty), 3).tolist()))
            for name, flags in kinds
        }
    return out


def folded_weights(model) -> tuple[list[float], float]:
    """The pipeline's weights on the raw features (the scaler folded in) and its intercept."""
    scaler, regression = model[0], model[-1]
    weights = regression.coef_[0] / scaler.scale_
    return weights.tolist(), float(regression.intercept_[0] - np.sum(weights * scaler.mean_))


def main(
    experiments: str, report: str = "", clips: int = 3000, selections: str = "", weights: bool = False,
    output: str = "explain_poolwide.json",
) -> None:  # fmt: skip
    pools = {}
    reported = [part for part in str(report).split(",") if part]
    for folder in [Path(part) for part in str(experiments).split(",") + reported if part]:
        pools[str(folder)] = judge_pool(folder, int(clips))
        print(f"{folder}: {len(pools[str(folder)]['truth'])} clips judged", file=sys.stderr, flush=True)
    document = {"rules": {name: rule_figures(pool) for name, pool in pools.items()}}
    document["learned_ceiling"] = learned_ceiling(pools, reported)
    if weights:
        tuning = [str(Path(part)) for part in str(experiments).split(",") if part]
        values, intercept = folded_weights(fit_learned(pools, tuning)[0])
        document["combined_weights"] = {"features": list(COMBINED_FEATURES), "weights": values, "intercept": intercept}
        print("COMBINED_WEIGHTS = (" + ", ".join(f"{value:.6g}" for value in values) + ")")
        print(f"COMBINED_INTERCEPT = {intercept:.6g}")
    Path(output).write_text(json.dumps(document, indent=1) + "\n")
    print("| experiment | rules: recall | rules: precision | learned (left out): recall | precision |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, rules in document["rules"].items():
        learned = document.get("learned_ceiling", {}).get(name, {})
        recall, precision = learned.get("recall", float("nan")), learned.get("precision", float("nan"))
        print(f"| {name} | {rules['recall']:.2f} | {rules['precision']:.2f} | {recall:.2f} | {precision:.2f} |")
    if selections:
        tuning = [str(Path(part)) for part in str(experiments).split(",") if part]
        document["selections"] = on_selections(pools, tuning, [part for part in str(selections).split(",") if part])
        Path(output).write_text(json.dumps(document, indent=1) + "\n")
        kinds = ["rules", "learned", "either"] + [f"rules, cleared below {bar}" for bar in STRICTER_VETOES]
        print("\n| experiment (selections) | faulty picks | " + " | ".join(kinds) + " |")
        print("| --- | ---: |" + " --- |" * len(kinds))
        for name, row in document["selections"].items():
            cells = " | ".join(f"{row[k]['recall']:.2f} at {row[k]['precision']:.2f}" for k in kinds)
            print(f"| {name}{' (tuning)' if row['tuning'] else ''} | {row['faulty']} | {cells} |")
    for name, rules in document["rules"].items():
        print(f"\n{name}, flags by deciding evidence (faulty / flagged):")
        for key, counts in rules["decided_by"].items():
            print(f"  {key}: {counts['faulty']}/{counts['flagged']}")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
