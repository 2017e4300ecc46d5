"""Embedding benchmark: clips per second of ``selection.embed`` and of the speech-embedding model alone.

Usage::

    python benchmarks/embed_benchmark.py [--clips 1200] [--repeats 3] [--output embed_benchmark.json]

Writes ``--clips`` one-second 48 kHz wav files (spoken words from eSpeak NG over noise, eight word
folders) into a temporary folder, then measures, as medians of ``--repeats``:

- the whole ``python -m selection.embed`` process (start-up, reading, resampling to 16 kHz,
  embedding, writing the experiment): clips per second of wall time;
- ``SpeechEmbedding.embed`` alone on the same waveforms already at 16 kHz.

Prints a Markdown table and writes the figures as JSON.
"""

from __future__ import annotations

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


def _write_clips(folder: Path, clips: int) -> None:
    import numpy as np
    import soundfile
    import soxr

    from selection.datasets.spoken import SYNTH_RATE, Synthesizer

    synthesizer = Synthesizer(seed=0)
    rng = np.random.default_rng(0)
    words = ["yes", "no", "left", "right", "up", "down", "stop", "go"]
    for index in range(clips):
        word = words[index % len(words)]
        speech = synthesizer.say(word, voice="en-us", rate=int(rng.integers(130, 220)), pitch=50, pitch_range=50)
        speech = soxr.resample(speech, SYNTH_RATE, 48000)[:48000]
        clip = np.zeros(48000, dtype=np.float32)
        start = int(rng.integers(0, 48000 - len(speech) + 1))
        clip[start : start + len(speech)] = speech * 0.5
        clip += rng.normal(0, 0.01, 48000).astype(np.float32)
        (folder / word).mkdir(parents=True, exist_ok=True)
        soundfile.write(folder / word / f"clip_{index:05d}.wav", clip, 48000)


def main(clips: int = 1200, repeats: int = 3, output: str = "embed_benchmark.json") -> None:
    import numpy as np

    from selection.speech.audio import read_clip
    from selection.speech.model import SpeechEmbedding

    with tempfile.TemporaryDirectory() as scratch:
        audio = Path(scratch) / "audio"
        _write_clips(audio, clips)
        whole = []
        for repeat in range(repeats):
            outdir = Path(scratch) / f"experiment{repeat}"
            started = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "selection.embed",
                    "--audio_dir",
                    str(audio),
                    "--outdir",
                    str(outdir),
                    "--targets",
                    "yes,no",
                ],
                cwd=scratch,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            whole.append(clips / (time.perf_counter() - started))
            print(f"embed process {repeat + 1}/{repeats}: {whole[-1]:.0f} clips/s", file=sys.stderr)
        waveforms = np.stack([read_clip(path) for path in sorted(audio.rglob("*.wav"))])
        model = SpeechEmbedding()
        alone = []
        for repeat in range(repeats):
            started = time.perf_counter()
            model.embed(waveforms)
            alone.append(len(waveforms) / (time.perf_counter() - started))
            print(f"model alone {repeat + 1}/{repeats}: {alone[-1]:.0f} clips/s", file=sys.stderr)
    figures = {
        "clips": clips,
        "repeats": repeats,
        "embed_process_clips_per_second": round(statistics.median(whole), 1),
        "model_alone_clips_per_second": round(statistics.median(alone), 1),
        "cpus": os.cpu_count(),
    }
    Path(output).write_text(json.dumps(figures, indent=2) + "\n")
    print("| measure | clips per second (median) |\n| --- | ---: |")
    print(f"| `selection.embed`, whole process, 48 kHz wav in | {figures['embed_process_clips_per_second']:.0f} |")
    print(f"| `SpeechEmbedding.embed` alone, 16 kHz arrays | {figures['model_alone_clips_per_second']:.0f} |")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
