"""Progress bars on stderr for long loops (tqdm), quiet for loops that end within two seconds."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

Item = TypeVar("Item")


def report_progress(
    items: Iterable[Item], *, desc: str, unit: str = "items", total: int | None = None
) -> Iterator[Item]:
    """``items`` through a tqdm bar on stderr that appears only once the loop has run two seconds.

    On a terminal the bar redraws in place; in a log (stderr not a terminal) it adds a line at
    most every 2 seconds.
    """
    from tqdm import tqdm

    interactive = sys.stderr.isatty()
    return iter(
        tqdm(
            items,
            desc=desc,
            unit=f" {unit}",
            total=total,
            file=sys.stderr,
            delay=2.0,
            mininterval=0.5 if interactive else 2.0,
            dynamic_ncols=interactive,
            leave=True,
        )
    )
