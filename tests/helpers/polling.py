"""Waiting for something another process does."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             interval: float = 0.05) -> float:
    """Poll until ``predicate()`` is truthy; return the seconds it took.

    Raises AssertionError naming ``what`` after ``timeout`` seconds.
    """
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start
