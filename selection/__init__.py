"""dataperf-speech: training-set selection for keyword spotting, with a frozen evaluator.

The Python API (:mod:`selection.scoring.experiment`) is importable from here without loading
numpy, pyarrow or scikit-learn until it is used::

    from selection import load_experiment
    experiment = load_experiment()              # the quick start's workspace/
    picked = experiment.select("random", 25)
    experiment.score(picked).score
"""

from selection.version import __version__

__all__ = ["Experiment", "Report", "Results", "Selection", "load_experiment", "__version__"]
_API = ("Experiment", "Report", "Results", "Selection", "load_experiment")


def __getattr__(name: str):
    if name in _API:
        from selection.scoring import experiment

        return getattr(experiment, name)
    raise AttributeError(f"module 'selection' has no attribute {name!r}")
