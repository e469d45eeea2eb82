"""A background thread per process, started on first use.

Started lazily (not at import) and per process id, so a process forked after
the thread started (gunicorn, Celery prefork) starts its own: threads do not
survive a fork.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

_lock = threading.Lock()
_started: dict[str, int] = {}  # thread name -> pid that started it


def start_once(name: str, target: Callable[[], None], *,
               on_start: Callable[[], None] | None = None) -> None:
    """Run ``target`` in a daemon thread called ``name``, once per process;
    ``on_start`` runs first, in the caller's thread (e.g. to drop state a
    parent process left behind)."""
    if _started.get(name) == os.getpid():
        return
    with _lock:
        if _started.get(name) == os.getpid():  # another thread got there first
            return
        _started[name] = os.getpid()
    if on_start is not None:
        on_start()
    threading.Thread(target=target, name=name, daemon=True).start()
