"""A small in-process copy of recent cache hits, in front of Valkey.

A hit is the product's most frequent answer; a Valkey round trip per hit
costs more than the rest of the request. Each process keeps up to
LOCAL_CACHE_SIZE summaries it served recently (LRU), each for at most
LOCAL_CACHE_SECONDS and never past its remaining TTL in Valkey.

Every write of a summary (a refresh, a purge) is announced on the Valkey
channel ``summary-invalidate``; each process listens in a background thread
and drops its copy at once. If the listener loses its connection (and so
may have missed announcements), the whole copy is dropped when it is back,
so a stale answer can never outlive LOCAL_CACHE_SECONDS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import redis
from django.conf import settings

from summaries.infra import cache, runtime

logger = logging.getLogger(__name__)


class _Held:
    """This process's copies (a slot of infra/runtime.py)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        # Bumped by every invalidation: a copy read from Valkey before one is not kept.
        self.generation = 0


_HELD = runtime.slot("local-cache", _Held)


def peek(key: str) -> dict[str, Any] | None:
    """This process's fresh copy of ``key``'s summary, if it has one (never
    asks Valkey)."""
    if settings.LOCAL_CACHE_SIZE <= 0:
        return None
    held = _HELD.get()
    with held.lock:
        entry = held.entries.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return None
        held.entries.move_to_end(key)
        return entry[1]


def get_summary(key: str) -> dict[str, Any] | None:
    """The cached summary for ``key``: from this process if it has a fresh
    copy, else from Valkey (raises redis.RedisError when Valkey is down)."""
    if settings.LOCAL_CACHE_SIZE <= 0:
        return cache.get_summary(key)
    _ensure_listener()
    if (held := peek(key)) is not None:
        return held
    read = reading()
    payload, ttl_ms = cache.get_summary_with_ttl(key)
    if payload is not None:
        keep(key, payload, ttl_ms=ttl_ms, read=read)
    return payload


def reading() -> tuple[float, int]:
    """Call before reading a summary from Valkey that may be ``keep``-ed: when
    (monotonic) and after which invalidation the read began."""
    return time.monotonic(), _HELD.get().generation


def keep(key: str, payload: dict[str, Any], *, ttl_ms: int, read: tuple[float, int]) -> None:
    """Hold ``payload``, read from Valkey as ``read`` (``reading()``) says,
    with ``ttl_ms`` left there: for LOCAL_CACHE_SECONDS at most, never past
    its TTL, and not at all if an invalidation came since the read began."""
    if settings.LOCAL_CACHE_SIZE <= 0 or ttl_ms <= 0:
        return
    _ensure_listener()
    started, generation = read
    expires = started + min(settings.LOCAL_CACHE_SECONDS, ttl_ms / 1000)
    held = _HELD.get()
    with held.lock:
        if generation != held.generation:
            return  # invalidated while we read: don't keep it
        held.entries[key] = (expires, payload)
        held.entries.move_to_end(key)
        while len(held.entries) > settings.LOCAL_CACHE_SIZE:
            held.entries.popitem(last=False)


def forget(key: str) -> None:
    """Drop this process's copy of ``key`` (others hear it on the channel)."""
    held = _HELD.get()
    with held.lock:
        held.generation += 1
        held.entries.pop(key, None)


def clear() -> None:
    held = _HELD.get()
    with held.lock:
        held.generation += 1
        held.entries.clear()


def _ensure_listener() -> None:
    runtime.start_once("local-cache-invalidation", _listen, on_start=clear)


def _listen() -> None:
    while True:
        try:
            pubsub = cache.invalidation_pubsub()
            _subscribe(pubsub)
            clear()  # announcements made while we were not listening are lost
            while True:
                # Polls (no read blocks past the client's socket timeout);
                # health_check_interval notices a dead connection.
                message = pubsub.get_message(timeout=1.0)
                if message is not None:
                    forget(str(message["data"]))
        except (redis.RedisError, OSError, ValueError) as exc:
            clear()
            logger.debug("local cache listener reconnecting: %s", exc)
            time.sleep(1)


def _subscribe(pubsub: redis.client.PubSub) -> None:
    """Subscribe and wait for Valkey's confirmation: a copy read after the
    ``clear`` that follows can only be dropped by an announcement this
    listener hears (one published before the server took the subscription
    would be lost, and its stale copy kept for LOCAL_CACHE_SECONDS)."""
    pubsub.ignore_subscribe_messages = False
    pubsub.subscribe(cache.INVALIDATE_CHANNEL)  # type: ignore[no-untyped-call, unused-ignore]
    deadline = time.monotonic() + float(settings.VALKEY_SOCKET_TIMEOUT)
    while (message := pubsub.get_message(timeout=1.0)) is None or message["type"] != "subscribe":
        if time.monotonic() >= deadline:
            raise redis.TimeoutError("no subscription confirmation from Valkey")
    pubsub.ignore_subscribe_messages = True
