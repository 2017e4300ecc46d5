"""The harness's one bad-input exception, in a module light enough for every entry point to import first."""

from __future__ import annotations


class BadInputError(ValueError):
    """A user-supplied file, flag or plugin result is wrong; the message says where and how."""
