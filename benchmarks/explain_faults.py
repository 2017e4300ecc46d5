"""Does the per-clip report flag the faulty picks, and does following its repair raise the real score?

Usage::

    python benchmarks/explain_faults.py --experiments DIR[,DIR...] [--sizes 25,60] [--repair 0.2]
        [--selections_wanted random,near_mean,near_median,default_planted,default,cross_validation,cleanlab]
        [--output explain_faults.json] [--clean DIR[,DIR...]] [--audio_dirs DIR[,DIR...]]

Each experiment is a folder written by ``download`` with the ``pool_faults.json`` truth the built-in
corpora write (selection and the report never read it). For each experiment, size and selection:

- ``random`` (seeds 0 and 1), ``near_mean`` (per class the clips nearest the class mean, 80% of the
  budget on the targets), ``near_median`` (the notebook's ``NearMedian``: per class the clips nearest
  the coordinate-wise median, 60% on the targets): weak selections;
- ``default_planted`` (seeds 0 and 1): the default algorithm's selection with 6 picks replaced by
  unpicked faulty pool clips of the same label, three mislabeled and three badly cut;
- ``default``, ``cross_validation``, ``cleanlab``: the algorithms as they are (for the repair).

The report runs in pool mode (no eval data read). **Flagged** means a verdict of ``suspect`` or
``badly cut?``; per case: the faulty picks (any kind in the truth), how many are flagged (recall),
and how many flagged picks are faulty (precision), also per kind of fault. With ``--repair F``
(a share of the size; 0: none) the report repairs ``round(F × size)`` picks and the real eval score
of the original and repaired files is measured (``evaluate``'s score, every configured seed).
Writes every pick's evidence and truth to the JSON (for choosing thresholds on one half of the
corpora and reporting the other). ``--clean`` names experiments known to hold no faults (a corpus
without planted faults, such as one ``embed`` made of the built-in commands corpus): they need no
``pool_faults.json``, and every flag on them is a false one. ``--audio_dirs`` gives each experiment's
recordings, in the order of ``--experiments`` (``-`` for none; ``download --source spoken --audio``
writes them to ``<data_dir>/audio/<language>``): the report then also measures each pick's speech.
Not a timed test.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from selection.datasets.faults import BADLY_CUT, read_pool_faults  # noqa: E402
from selection.diagnosis.report import FLAGGED  # noqa: E402
from selection.scoring.experiment import load_experiment  # noqa: E402
from selection.selection import TrainingSet, TrainingSetSelection  # noqa: E402


class NearCentre(TrainingSetSelection):
    """Per class, the clips nearest its centre (``centre``: mean or median); a weak, typical first algorithm."""

    target_share = 0.8
    centre = staticmethod(lambda vectors: vectors.mean(axis=0))

    def _nearest(self, clips, count):
        vectors = np.stack([clip["feature_vector"] for clip in clips])
        distance = np.linalg.norm(vectors - self.centre(vectors), axis=1)
        return [clips[i]["ID"] for i in np.argsort(distance, kind="stable")[:count]]

    def select(self):
        words = sorted(self.embeddings["targets"])
        per_word = max(1, int(self.train_set_size * self.target_share) // len(words))
        targets = {word: self._nearest(self.embeddings["targets"][word], per_word) for word in words}
        rest = self.train_set_size - per_word * len(words)
        return TrainingSet(targets=targets, nontargets=self._nearest(self.embeddings["nontargets"], rest))


class NearMean(NearCentre):
    pass


class NearMedian(NearCentre):
    target_share = 0.6
    centre = staticmethod(lambda vectors: np.median(vectors, axis=0))


def planted(picked: dict, faults: dict[str, str], allowed: dict, count: int, seed: int) -> dict:
    """``picked`` with ``count`` picks replaced by unpicked faulty clips of the same label, kinds alternating."""
    rng = np.random.default_rng(seed)
    chosen = {clip for ids in picked["targets"].values() for clip in ids} | set(picked["nontargets"])
    targets = {word: list(ids) for word, ids in picked["targets"].items()}
    nontargets = list(picked["nontargets"])
    slots = [(word, clip) for word, ids in targets.items() for clip in ids] + [(None, clip) for clip in nontargets]
    done = 0
    for index in rng.permutation(len(slots)):
        if done == count:
            break
        word, clip = slots[index]
        kinds = ("mislabeled",) if done % 2 == 0 else BADLY_CUT
        source = allowed["targets"][word] if word is not None else allowed["nontargets"]
        wrong = [c for c in source if faults.get(c) in kinds and c not in chosen]
        if not wrong:
            continue
        replacement = wrong[int(rng.integers(len(wrong)))]
        listing = targets[word] if word is not None else nontargets
        listing[listing.index(clip)] = replacement
        chosen.add(replacement)
        done += 1
    return {"targets": targets, "nontargets": nontargets}


def selections(experiment, faults: dict, size: int, wanted: list[str]):
    """(name, train set) pairs for one experiment and size."""
    for name in wanted:
        if name == "random":
            for seed in (0, 1):
                yield f"random/{seed}", experiment.select("random", size, config={"selection_random_seed": seed})
        elif name == "near_mean":
            yield name, experiment.select(NearMean, size)
        elif name == "near_median":
            yield name, experiment.select(NearMedian, size)
        elif name == "default_planted":
            picked = experiment.select("clean_coverage", size)
            for seed in (0, 1):
                yield f"default_planted/{seed}", planted(picked, faults, experiment.allowed, 6, seed)
        elif name == "default":
            yield name, experiment.select("clean_coverage", size)
        else:
            yield name, experiment.select(name, size)


def figures(picks: list[dict]) -> dict:
    """Recall and precision of the flags against the truth, overall and per kind of fault."""
    faulty = [pick for pick in picks if pick["truth"] != "clean"]
    flagged = [pick for pick in picks if pick["verdict"] in FLAGGED]
    hit = [pick for pick in flagged if pick["truth"] != "clean"]
    per_kind = {}
    for kind in ("mislabeled", "badly cut"):
        members = [p for p in faulty if (p["truth"] in BADLY_CUT) == (kind == "badly cut")]
        per_kind[kind] = [sum(1 for p in members if p["verdict"] in FLAGGED), len(members)]
    return {"faulty": len(faulty), "flagged": len(flagged), "flagged_faulty": len(hit), "per_kind": per_kind}


def run_case(experiment, faults: dict, name: str, train_set, size: int, repair: float, audio_dir=None) -> dict:
    limit = int(round(repair * size))
    started = time.perf_counter()
    report = experiment.explain(train_set, against="pool", limit=size, repair=limit, audio_dir=audio_dir)
    seconds = time.perf_counter() - started
    picks = [
        {key: clip[key] for key in ("id", "label", "verdict", "decided_by", "effect", "neighbour_agreement",
                                    "own_probability", "word_probability", "other_word", "other_word_probability",
                                    "off_centre", "weakness", "word_neighbours")}
        | {key: clip[key] for key in ("speech_seconds", "speech_length") if key in clip}
        | {"truth": faults.get(clip["id"], "clean")}
        for clip in report["clips"]
    ]  # fmt: skip
    case = {"selection": name, "size": size, "seconds": round(seconds, 2), **figures(picks), "picks": picks}
    if limit:
        original = experiment.score(train_set, limit=size).score
        repaired = experiment.score(report.repaired, limit=size).score
        case["repair"] = {"limit": limit, "original": round(original, 4), "repaired": round(repaired, 4)}
    return case


def main(
    experiments: str, sizes: str = "25,60", repair: float = 0.0,
    selections_wanted: str = "random,near_mean,near_median,default_planted", output: str = "explain_faults.json",
    clean: str = "", audio_dirs: str = "",
) -> None:  # fmt: skip
    document = {"cases": []}
    wanted = [part for part in str(selections_wanted).split(",") if part]
    folders = [Path(part) for part in str(experiments).split(",") if part]
    recordings = [None if part in ("", "-") else part for part in str(audio_dirs).split(",")] if audio_dirs else []
    if recordings and len(recordings) != len(folders):
        raise SystemExit(f"--audio_dirs: {len(recordings)} folders for {len(folders)} experiments")
    for number, folder in enumerate(folders):
        audio_dir = recordings[number] if recordings else None
        experiment = load_experiment(folder, with_eval=repair > 0, cache_dir="off")
        faults = {} if folder in [Path(part) for part in str(clean).split(",") if part] else read_pool_faults(folder)
        if faults is None:
            raise SystemExit(f"{folder}: no pool_faults.json (rebuild it with download --overwrite)")
        for size in [int(part) for part in str(sizes).split(",") if part]:
            for name, train_set in selections(experiment, faults, size, wanted):
                case = run_case(experiment, faults, name, train_set, size, repair, audio_dir)
                case["experiment"] = str(folder)
                case["audio_dir"] = audio_dir
                document["cases"].append(case)
                Path(output).write_text(json.dumps(document, indent=1) + "\n")
                line = (
                    f"{folder} @ {size} {name}: {case['flagged_faulty']} of {case['faulty']} faulty flagged, "
                    f"{case['flagged']} flagged; {case['seconds']} s"
                )
                if "repair" in case:
                    line += f"; real score {case['repair']['original']} -> {case['repair']['repaired']}"
                print(line, file=sys.stderr, flush=True)
    print(table(document["cases"]))


def table(cases: list[dict]) -> str:
    """One markdown row per experiment, size and kind of selection (random and planted seeds pooled)."""
    groups: dict[tuple, list[dict]] = {}
    for case in cases:
        groups.setdefault((case["experiment"], case["size"], case["selection"].split("/")[0]), []).append(case)
    lines = [
        "| experiment | size | selection | faulty flagged | flagged faulty | mislabeled flagged | badly cut flagged "
        "| real score, original -> repaired |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for (folder, size, name), members in groups.items():
        faulty = sum(c["faulty"] for c in members)
        hit = sum(c["flagged_faulty"] for c in members)
        flagged = sum(c["flagged"] for c in members)
        kinds = {k: [sum(c["per_kind"][k][i] for c in members) for i in (0, 1)] for k in ("mislabeled", "badly cut")}
        repaired = "; ".join(
            f"{c['repair']['original']} -> {c['repair']['repaired']}" for c in members if "repair" in c
        )
        lines.append(
            f"| {folder} | {size} | {name} | {hit}/{faulty} ({hit / max(1, faulty):.0%}) | "
            f"{hit}/{flagged} ({hit / max(1, flagged):.0%}) | {kinds['mislabeled'][0]}/{kinds['mislabeled'][1]} | "
            f"{kinds['badly cut'][0]}/{kinds['badly cut'][1]} | {repaired or '-'} |"
        )
    if cases:
        hit = sum(c["flagged_faulty"] for c in cases)
        faulty, flagged = sum(c["faulty"] for c in cases), sum(c["flagged"] for c in cases)
        lines.append(
            f"| all | | | {hit}/{faulty} ({hit / max(1, faulty):.0%}) | {hit}/{flagged} ({hit / max(1, flagged):.0%}) "
            f"| | | median seconds {statistics.median(c['seconds'] for c in cases)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    from selection.cli import run_command

    run_command(main)
