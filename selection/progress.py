"""Periodic progress lines on stderr for long loops; silent for loops that end quickly."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

Item = TypeVar("Item")


def report_progress(
    items: Iterable[Item],
    *,
    desc: str,
    unit: str = "items",
    total: int | None = None,
    every_seconds: float = 2.0,
) -> Iterator[Item]:
    """Yield ``items``, printing ``desc: done/total unit`` at most every ``every_seconds``.

    A final line is printed only if an intermediate one was, so quick loops stay quiet.
    """
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    started = last = time.monotonic()
    printed = False
    done = 0
    for done, item in enumerate(items, start=1):
        yield item
        now = time.monotonic()
        if now - last >= every_seconds:
            of = f"/{total}" if total is not None else ""
            print(f"{desc}: {done}{of} {unit} ({now - started:.0f} s)", file=sys.stderr, flush=True)
            last, printed = now, True
    if printed:
        print(f"{desc}: {done} {unit} done ({time.monotonic() - started:.1f} s)", file=sys.stderr, flush=True)
