"""Selection algorithms that misbehave (or check what they are given), for the plugin tests."""

from __future__ import annotations

import numpy as np

from selection.selection import TrainingSet, TrainingSetSelection


class Raises(TrainingSetSelection):
    def select(self):
        raise RuntimeError("model weights missing")


class ReturnsList(TrainingSetSelection):
    def select(self):
        return ["yes/a.wav"]


class TooMany(TrainingSetSelection):
    def select(self):
        return self.pool.to_training_set(np.arange(self.train_size + 1))


class OutsidePool(TrainingSetSelection):
    def select(self):
        return TrainingSet(targets={}, nontargets=["cat/common_voice_en_zz9999.wav"])


class NotAPlugin:
    pass


class LoudestClips(TrainingSetSelection):
    """Uses the audio: picks, per class, the clips with the largest peak amplitude."""

    def select(self):
        assert self.audio_flag
        picks = {}
        for word, clips in self.embeddings["targets"].items():
            ranked = sorted(clips, key=lambda clip: -int(np.abs(clip["audio"]).max()))
            picks[word] = [clip["ID"] for clip in ranked[:2]]
        ranked = sorted(self.embeddings["nontargets"], key=lambda clip: -int(np.abs(clip["audio"]).max()))
        return TrainingSet(targets=picks, nontargets=[clip["ID"] for clip in ranked[:3]])


class Slow(TrainingSetSelection):
    """Announces itself, then takes a long time: for interrupt tests."""

    def select(self):
        import sys
        import time

        print("slow plugin started", file=sys.stderr, flush=True)
        time.sleep(60)
        return self.pool.to_training_set([0, len(self.pool.ids) - 1])


class CallsHelperBadly(TrainingSetSelection):
    """Raises inside a harness helper: the message must still point at this file."""

    def select(self):
        return self.pool.to_training_set([10**6])


class BandEnergies:
    """A user's own embedding model for ``selection.embed --model tests.plugins:BandEnergies``: 16 log band energies."""

    def embed(self, waveforms):
        spectrum = np.abs(np.fft.rfft(waveforms, axis=1)) ** 2
        bands = np.array_split(spectrum, 16, axis=1)
        return np.log1p(np.stack([band.sum(axis=1) for band in bands], axis=1)).astype(np.float32)


class RaisingModel:
    """An embedding model whose ``embed`` fails, as a user's half-written model does."""

    def embed(self, waveforms):
        raise RuntimeError("my model is not trained yet")


class GrowingModel:
    """An embedding model whose vector length changes from call to call (a bug ``embed`` must catch)."""

    calls = 0

    def embed(self, waveforms):
        GrowingModel.calls += 1
        return np.ones((len(waveforms), 3 + GrowingModel.calls), dtype=np.float32)
