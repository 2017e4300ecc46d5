"""Seconds per training epoch: this trainer against the BC-ResNet authors' PyTorch code, same machine, same clips.

    python benchmarks/kws_speed.py --authors_dir PATH [--workspace workspace/] [--widths 1,3] [--epochs 3]
        [--out kws_speed.json]

``--authors_dir`` is a checkout of the authors' repository (``Qualcomm-AI-research/bcresnet``: its
``bcresnet.py`` and ``utils.py``), run by a Python that has PyTorch and torchaudio (``--torch_python``,
default ``/usr/bin/python3``: Debian's CPU-only ``python3-torch`` 1.13 and ``python3-torchaudio``).
Both sides train on the 12-class training split of the built-in commands corpus
(``python -m selection.download --source commands``), batches of 100, 2 threads:

- **this trainer**: ``train_kws`` itself; an epoch's training time is read from its report
  (``history[].train_seconds``: augmentation, front end, forward, backward and update, all compiled
  into one step), the median over the epochs after the first (which compiles);
- **the authors' code**: their ``BCResNets`` model, their ``Preprocess`` (noise and time shift per
  clip, torchaudio's log-mel, SpecAugment from τ = 1.5 on) and the SGD step of their ``main.py``,
  over the same clips in the same number of full batches; the median of ``--epochs`` epochs after a
  warm-up batch.

Writes a JSON document (and prints a table): per width, both sides' seconds per epoch, the ratio, and
each side's peak memory (the process's largest resident set, ``VmHWM``, MB).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PEAK_MB = r"""
def peak_mb():
    # VmHWM, not ru_maxrss: on Linux ru_maxrss survives exec, so a child's would include its parent's peak
    fields = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    return int(fields["VmHWM"].split()[0]) // 1024
"""

# train_kws itself, as ``python -m selection.train_kws`` runs it; its peak memory written to argv[1] when it exits
OURS_SIDE = (
    PEAK_MB
    + r"""
import runpy, sys
peak_file = sys.argv[1]
sys.argv = ["selection.train_kws", *sys.argv[2:]]
try:
    runpy.run_module("selection.train_kws", run_name="__main__", alter_sys=True)
finally:
    open(peak_file, "w").write(str(peak_mb()))
"""
)

AUTHORS_SIDE = (
    PEAK_MB
    + r"""
import json, statistics, sys, time
import numpy as np, torch, torch.nn.functional as F
authors_dir, data_dir = sys.argv[1], sys.argv[2]
width, epochs, threads = float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
sys.path.insert(0, authors_dir)
torch.set_num_threads(threads)
from bcresnet import BCResNets
from utils import Preprocess
waves = np.load(f"{data_dir}/waves.npy").astype(np.float32) / 32768.0
labels = np.load(f"{data_dir}/labels.npy").astype(np.int64)
table = {1: 0, 1.5: 1, 2: 3, 3: 5, 6: 7, 8: 7}
pre = Preprocess(f"{data_dir}/noise", torch.device("cpu"), specaug=width >= 1.5, frequency_masking_para=table[width])
model = BCResNets(int(width * 8))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, weight_decay=1e-3, momentum=0.9)
batches = len(labels) // 100
def step(rows):
    x = torch.from_numpy(waves[rows]).unsqueeze(1)
    y = torch.from_numpy(labels[rows])
    inputs = pre(x, y, augment=True)
    loss = F.cross_entropy(model(inputs), y)
    loss.backward()
    optimizer.step()
    model.zero_grad()
model.train()
step(np.arange(100))
seconds = []
for epoch in range(epochs):
    order = np.random.default_rng(epoch).permutation(len(labels))
    started = time.perf_counter()
    for b in range(batches):
        step(order[b * 100:(b + 1) * 100])
    seconds.append(time.perf_counter() - started)
print(json.dumps({"seconds": seconds, "batches": batches, "peak_mb": peak_mb()}))
"""
)


def _export_split(workspace: Path, out: Path) -> int:
    """The 12-class training split as the trainer reads it, and the noise recordings, for the authors' side."""
    import numpy as np
    import soundfile

    from selection.kws.data import load_corpus

    corpus = load_corpus(workspace / "commands", "12", seed=0)
    train = corpus.splits["train"]
    np.save(out / "waves.npy", train.waves)
    np.save(out / "labels.npy", train.labels)
    (out / "noise").mkdir()
    for index, recording in enumerate(corpus.noise):
        soundfile.write(out / "noise" / f"{index}.wav", recording, 16000)
    return len(train.labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors_dir", required=True)
    parser.add_argument("--torch_python", default="/usr/bin/python3")
    parser.add_argument("--workspace", default="workspace/")
    parser.add_argument("--widths", default="1,3")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="kws_speed.json")
    args = parser.parse_args()
    workspace = Path(args.workspace)
    if not (workspace / "commands").is_dir():
        subprocess.run([sys.executable, "-m", "selection.download", "--source", "commands", "--workspace",
                        str(workspace)], check=True, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        clips = _export_split(workspace, Path(scratch))
        for width in (float(part) for part in args.widths.split(",")):
            model_dir = Path(scratch) / f"ours-{width:g}"
            peak_file = Path(scratch) / f"ours-{width:g}.peak"
            subprocess.run([sys.executable, "-c", OURS_SIDE, str(peak_file), "--workspace", str(workspace), "--width",
                            f"{width:g}", "--epochs", str(args.epochs + 1), "--outdir", str(model_dir)],
                           check=True, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
            history = json.loads((model_dir / "report.json").read_text())["history"]
            ours = statistics.median(entry["train_seconds"] for entry in history[1:])
            environment = {**os.environ, "OMP_NUM_THREADS": "2"}
            done = subprocess.run([args.torch_python, "-c", AUTHORS_SIDE, args.authors_dir, scratch, f"{width:g}",
                                   str(args.epochs), "2"], check=True, capture_output=True, text=True,
                                  env=environment)  # fmt: skip
            theirs = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append({
                "width": width, "clips": clips, "batches": theirs["batches"],
                "ours_seconds_per_epoch": ours, "authors_seconds_per_epoch": statistics.median(theirs["seconds"]),
                "ours_epochs": [entry["train_seconds"] for entry in history[1:]], "authors_epochs": theirs["seconds"],
                "ours_peak_mb": int(peak_file.read_text()), "authors_peak_mb": theirs["peak_mb"],
            })  # fmt: skip
            print(f"width {width:g}: this trainer {ours:.1f} s, the authors' code "
                  f"{rows[-1]['authors_seconds_per_epoch']:.1f} s per epoch of {clips} clips", flush=True)  # fmt: skip
    Path(args.out).write_text(json.dumps({"rows": rows, "time": time.strftime("%Y-%m-%d %H:%M")}, indent=2) + "\n")
    header = f"{'width':>6} {'this trainer s/epoch':>21} {'authors s/epoch':>16} {'ratio':>6}"
    print(f"{header} {'peak MB (ours/authors)':>23}")
    for row in rows:
        ratio = row["authors_seconds_per_epoch"] / row["ours_seconds_per_epoch"]
        print(f"{row['width']:>6g} {row['ours_seconds_per_epoch']:>21.1f} {row['authors_seconds_per_epoch']:>16.1f} "
              f"{ratio:>6.2f} {row['ours_peak_mb']:>11} / {row['authors_peak_mb']:<9}")  # fmt: skip


if __name__ == "__main__":
    main()
