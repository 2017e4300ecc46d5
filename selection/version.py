"""The harness's version: the one place it is set (``pyproject.toml`` and every results document read it)."""

__version__ = "0.9.0"
