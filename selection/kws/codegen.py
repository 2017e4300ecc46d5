"""How XLA compiles the training step on a CPU: its older loop emitters, measured faster for BC-ResNet.

BC-ResNet's tensors have few channels (8 to 20 at τ = 1), and the backward pass is a long chain of
fused element-wise loops over them. With jaxlib 0.10.2 on a 2-core AMD EPYC (and the step's memory
kept between steps, :mod:`selection.kws.memory`), a training step of 100 clips took 166 ms at τ = 1
with XLA's older loop emitter against 256 to 275 ms with its default CPU code generator ("fusion
emitters"), and 505 to 515 ms at τ = 3 against 612 to 627 ms (medians of 37 steps, two runs each).
The arithmetic is the same model's; only the order of a few floating-point operations within a loop
may differ, as between any two compilers.

:func:`use_loop_emitters` adds ``--xla_cpu_use_fusion_emitters=false`` to ``XLA_FLAGS`` before JAX
starts its CPU backend, only for the jaxlib it was measured with (XLA stops a process on a flag it
does not know) and only when ``XLA_FLAGS`` does not already set it (a user's choice wins). GPU
compilation ignores the CPU flag.
"""

from __future__ import annotations

import os
from importlib import metadata

FLAG = "--xla_cpu_use_fusion_emitters=false"
MEASURED_JAXLIB = ("0.10.2",)


def use_loop_emitters(environ: dict | None = None) -> bool:
    """Add :data:`FLAG` to ``XLA_FLAGS`` (in ``environ``, default ``os.environ``); whether it is now set."""
    environ = os.environ if environ is None else environ
    flags = environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_fusion_emitters" in flags:
        return FLAG in flags.split()
    try:
        installed = metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return False
    if installed not in MEASURED_JAXLIB:
        return False
    environ["XLA_FLAGS"] = f"{flags} {FLAG}".strip()
    return True
