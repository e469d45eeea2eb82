"""Worker processes online: each keeps ``heartbeat:worker:<host>:<pid>`` alive
while it runs (started and stopped by the worker's signal receivers in
summaries/tasks.py).
Cheaper and faster than asking workers over the broker."""

from __future__ import annotations

import contextlib
import os
import time

from redis.exceptions import RedisError

from summaries.infra import cache, runtime

HEARTBEAT_PREFIX = "heartbeat:worker:"
HEARTBEAT_SECONDS = 5.0
HEARTBEAT_TTL = 15  # three missed beats: the worker is gone


def start_heartbeat(hostname: str) -> None:
    """Keep ``heartbeat:worker:<hostname>:<pid>`` alive while this process runs
    (written now, then every HEARTBEAT_SECONDS; it expires HEARTBEAT_TTL after
    the last beat)."""
    key = f"{HEARTBEAT_PREFIX}{hostname}:{os.getpid()}"
    _beat(key)
    runtime.start_once("worker-heartbeat", lambda: _beat_forever(key))


def stop_heartbeat(hostname: str) -> None:
    with contextlib.suppress(RedisError):
        cache.client().delete(f"{HEARTBEAT_PREFIX}{hostname}:{os.getpid()}")


def workers_online() -> int:
    return sum(1 for _ in cache.client().scan_iter(match=f"{HEARTBEAT_PREFIX}*", count=1000))


def _beat(key: str) -> None:
    with contextlib.suppress(RedisError):
        cache.client().set(key, "1", ex=HEARTBEAT_TTL)


def _beat_forever(key: str) -> None:
    while True:
        time.sleep(HEARTBEAT_SECONDS)
        _beat(key)
