"""The KWS trainer: BC-ResNet on log-mel features, trained with JAX/Flax and exported to ONNX.

``frontend`` (log-mel features), ``model`` (BC-ResNet and its sizes), ``augment`` (noise, shift,
SpecAugment), ``data`` (corpus folders, splits, tasks), ``train`` (the recipe's compiled steps),
``fit`` (epochs, checkpoints, report, export), ``export`` (ONNX), ``folder`` (the model folder),
``codegen`` (which of XLA's CPU code generators compiles the step).
Importing this package imports nothing heavy (``frontend``, ``data`` and ``folder`` need only numpy); it
sets that code generator in ``XLA_FLAGS`` before JAX compiles anything (:mod:`selection.kws.codegen`).
"""

from selection.kws.codegen import use_loop_emitters

use_loop_emitters()  # before JAX compiles anything: XLA reads its flags once per process
