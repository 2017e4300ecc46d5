"""The KWS trainer: BC-ResNet on log-mel features, trained with JAX/Flax and exported to ONNX.

``frontend`` (log-mel features), ``model`` (BC-ResNet and its sizes), ``augment`` (noise, shift,
SpecAugment), ``data`` (corpus folders, splits, tasks), ``train`` (the recipe's compiled steps),
``fit`` (epochs, checkpoints, report, export), ``export`` (ONNX), ``folder`` (the model folder).
Importing this package imports nothing heavy; ``frontend``, ``data`` and ``folder`` need only numpy.
"""
