"""Peak memory of the leaderboard's paired bootstrap, by entries and resamples.

    python benchmarks/bootstrap_memory.py [--entries 600,1200,3000] [--resamples 1000] [--clips 31216]
        [--seeds 10] [--out bootstrap_memory.json]

Each configuration runs in a fresh process: the resample counts of one leaderboard
(:func:`selection.board.uncertainty.resample_counts`), every entry's resampled scores from stored-like
predictions (int8, ``--seeds`` evaluation seeds, 4 classes, about 80% right), then the intervals, rank
intervals and tie groups (:func:`selection.board.uncertainty.board_uncertainty`), as the leaderboard
does. It reports the process's peak resident memory above what numpy and scipy take once imported,
and the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHILD = r"""
import json, resource, sys, time
import numpy as np, scipy.sparse
from selection.board.uncertainty import board_uncertainty, resample_counts, resampled_scores
entries, resamples, clips, seeds = map(int, sys.argv[1:5])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
rng = np.random.default_rng(0)
truth = rng.integers(0, 4, clips)
counts = resample_counts(clips, resamples, board="en-25")
scores, resampled = [], []
for entry in range(entries):
    right = rng.random((seeds, clips)) < 0.6 + 0.3 * entry / max(entries, 1)
    predictions = np.where(right, truth, rng.integers(0, 4, (seeds, clips))).astype(np.int8)
    resampled.append(resampled_scores(truth, predictions, counts, n_classes=4, metric="macro_f1"))
    scores.append(float(np.mean(resampled[-1])))
figures = board_uncertainty(np.array(scores), np.array(resampled))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"entries": entries, "resamples": resamples, "clips": clips, "seeds": seeds,
                  "peak_mb_above_imports": round((peak - base) / 1024, 1), "peak_mb": round(peak / 1024, 1),
                  "seconds": round(time.perf_counter() - started, 1)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", default="600,1200,3000")
    parser.add_argument("--resamples", default="1000")
    parser.add_argument("--clips", type=int, default=31216)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", default="bootstrap_memory.json")
    args = parser.parse_args()
    rows = []
    for resamples in args.resamples.split(","):
        for entries in args.entries.split(","):
            done = subprocess.run([sys.executable, "-c", CHILD, entries, resamples, str(args.clips), str(args.seeds)],
                                  check=True, capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    with open(args.out, "w") as handle:
        json.dump(rows, handle, indent=2)
        handle.write("\n")
    print(f"{'entries':>8} {'resamples':>9} {'peak MB above imports':>22} {'seconds':>8}")
    for row in rows:
        print(f"{row['entries']:>8} {row['resamples']:>9} {row['peak_mb_above_imports']:>22} {row['seconds']:>8}")


if __name__ == "__main__":
    main()
