"""dataperf-speech: training-set selection for keyword spotting, with a frozen evaluator.

The Python API (:mod:`selection.scoring.experiment`) is importable from here without loading
numpy, pyarrow or scikit-learn until it is used::

    from selection import load_experiment
    experiment = load_experiment()              # the quick start's workspace/
    picked = experiment.select("random", 25)
    experiment.score(picked).score
"""

import sys as _sys

from selection.interrupt import exit_quietly_on_ctrl_c as _exit_quietly_on_ctrl_c
from selection.interrupt import running_as_a_command as _running_as_a_command

if _running_as_a_command(_sys.argv):  # Ctrl-C during the command's imports: one line (selection.interrupt)
    _exit_quietly_on_ctrl_c()

from selection.version import __version__  # noqa: E402

__all__ = ["Experiment", "Report", "Results", "Selection", "load_experiment", "__version__"]
_API = ("Experiment", "Report", "Results", "Selection", "load_experiment")


def __getattr__(name: str):
    if name in _API:
        from selection.scoring import experiment

        return getattr(experiment, name)
    raise AttributeError(f"module 'selection' has no attribute {name!r}")
