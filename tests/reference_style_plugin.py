"""A participant's plugin written against the benchmark reference's interface, the way its examples are.

It takes its arguments as ``**kwargs`` and passes them on (the reference constructs plugins
with keywords), walks ``self.embeddings`` as plain dicts, uses only the standard library and
returns a ``TrainingSet``: code like this must run unchanged under the harness.
"""

import random

from selection.selection import TrainingSet, TrainingSetSelection


class BalancedRandom(TrainingSetSelection):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)

    def select(self):
        random.seed(self.random_seed)
        words = sorted(self.embeddings["targets"])
        share = self.train_set_size // (len(words) + 1)
        targets = {}
        for word in words:
            clips = self.embeddings["targets"][word]
            targets[word] = [clip["ID"] for clip in random.sample(clips, min(share, len(clips)))]
        others = self.embeddings["nontargets"]
        nontargets = [clip["ID"] for clip in random.sample(others, min(share, len(others)))]
        return TrainingSet(targets=targets, nontargets=nontargets)
