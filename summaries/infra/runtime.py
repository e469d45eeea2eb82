"""The one owner of per-process state.

What a process holds in memory between requests and tasks is a ``Slot`` of
this process's ``RUNTIME``: a value built on first use, exactly once per
process (under the runtime's lock, so threads racing on the first use build
one value), and dropped in a forked child, which builds its own on first
use. Threads do not survive a fork, and a lock held by another thread at the
fork would never be released in the child: the one ``os.register_at_fork``
hook below resets every slot, the runtime's lock and its threads in one place
(gunicorn forks its workers, Celery's prefork pool its children).

The per-process state, by the module that declares its slot:

- infra/runtime.py (the runtime itself): its lock; the background threads
  started in this process (the local cache's listener, the counters'
  flusher, the heartbeat).
- infra/local_cache.py, ``local-cache``: the copies of summaries, their lock
  and invalidation generation.
- observability/counters.py, ``counters``: counts not yet flushed to Valkey,
  the open job stages, their lock.
- observability/prometheus.py, ``prometheus-registry``: the collector's registry.
- providers/common.py, ``sdk-client-lock``: the lock under which each SDK
  client (``ProcessClient``) is built once.
- services/config.py, ``provider``: the summary provider (and its SDK client).
- services/batching.py, ``batcher``: the AI batcher (its dispatcher thread,
  its ``LONERS``).
- services/batch_lane.py, ``batch-api``: the provider's batch API (its own SDK
  client, bounded at BATCH_LANE_MAX_RESPONSE_BYTES).
- services/progress.py, ``progress-figures``: W and the worker threads
  online, read again every few seconds.
- services/events.py, ``sse-slots``: the SSE streams this process serves.
- services/webhooks.py, ``webhook-slots``: the deliveries this process runs.
- services/submit.py, ``hit-keys``: inputs recently answered from memory, and
  their cache keys.
- bypasses/fastpath.py, ``hit-bodies``: hit answers, rendered once.

Kept elsewhere, on purpose: values derived from settings or code alone,
the same in every process and safe across a fork (``functools.cache`` on
``cache.client``, whose redis-py pool reconnects in a child by itself, on
``config.fetch_policy``, the SQL of ``bypasses/job_rows.py``, the body
serializers, the submit route, ``counters._field``; the fastText model of
``core/language.py``, read-only once loaded, in the core, which imports
nothing of ours); context variables (``logcontext``'s job id,
``providers/deadline.py``) and the thread-local of ``bypasses/broker.py``
(``held()``), which are a thread's or a request's, not the process's;
``logcontext._last_second`` (the last log second formatted, a pure memo);
``documents/pdf.py``'s pdfium lock and orphans (not wired yet).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")

_UNSET = object()


class Runtime:
    """One process's state: its slots and its background threads."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._slots: dict[str, Slot[object]] = {}
        self._threads: set[str] = set()

    def slot(self, name: str, build: Callable[[], T]) -> Slot[T]:
        """Declare the per-process value ``name``, made by ``build`` on first use."""
        if name in self._slots:
            raise ValueError(f"slot {name!r} declared twice")
        made = Slot(self, name, build)
        self._slots[name] = cast("Slot[object]", made)
        return made

    def names(self) -> list[str]:
        """The slots declared so far (by the modules imported)."""
        return list(self._slots)

    def start_once(self, name: str, target: Callable[[], None], *,
                   on_start: Callable[[], None] | None = None) -> None:
        """Run ``target`` in a daemon thread called ``name``, once per
        process, started on first use (not at import); ``on_start`` runs
        first, in the caller's thread."""
        if name in self._threads:
            return
        with self._lock:
            if name in self._threads:  # another thread got there first
                return
            self._threads.add(name)
        if on_start is not None:
            on_start()
        threading.Thread(target=target, name=name, daemon=True).start()

    def after_fork_in_child(self) -> None:
        """A forked child starts with no threads, a free lock and no slot value."""
        self._lock = threading.RLock()
        self._threads = set()
        for made in self._slots.values():
            made.reset()


class Slot(Generic[T]):
    """A value of this process, built on first use (see the module docstring)."""

    def __init__(self, runtime: Runtime, name: str, build: Callable[[], T]) -> None:
        self.name = name
        self._runtime = runtime
        self._build = build
        self._value: object = _UNSET

    def get(self) -> T:
        value = self._value
        if value is _UNSET:
            with self._runtime._lock:
                if self._value is _UNSET:
                    self._value = self._build()
                value = self._value
        return cast(T, value)

    def reset(self) -> None:
        """Drop the value: the next ``get`` builds a new one."""
        self._value = _UNSET


RUNTIME = Runtime()
slot = RUNTIME.slot
start_once = RUNTIME.start_once

os.register_at_fork(after_in_child=RUNTIME.after_fork_in_child)
