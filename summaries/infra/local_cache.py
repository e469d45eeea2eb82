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

from summaries.infra import background, cache

logger = logging.getLogger(__name__)


_lock = threading.Lock()
_entries: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
# Bumped by every invalidation: a copy read from Valkey before one is not kept.
_generation = 0


def peek(key: str) -> dict[str, Any] | None:
    """This process's fresh copy of ``key``'s summary, if it has one (never
    asks Valkey)."""
    if settings.LOCAL_CACHE_SIZE <= 0:
        return None
    with _lock:
        entry = _entries.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return None
        _entries.move_to_end(key)
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
    return time.monotonic(), _generation


def keep(key: str, payload: dict[str, Any], *, ttl_ms: int, read: tuple[float, int]) -> None:
    """Hold ``payload``, read from Valkey as ``read`` (``reading()``) says,
    with ``ttl_ms`` left there: for LOCAL_CACHE_SECONDS at most, never past
    its TTL, and not at all if an invalidation came since the read began."""
    if settings.LOCAL_CACHE_SIZE <= 0 or ttl_ms <= 0:
        return
    _ensure_listener()
    started, generation = read
    expires = started + min(settings.LOCAL_CACHE_SECONDS, ttl_ms / 1000)
    with _lock:
        if generation != _generation:
            return  # invalidated while we read: don't keep it
        _entries[key] = (expires, payload)
        _entries.move_to_end(key)
        while len(_entries) > settings.LOCAL_CACHE_SIZE:
            _entries.popitem(last=False)


def forget(key: str) -> None:
    """Drop this process's copy of ``key`` (others hear it on the channel)."""
    global _generation
    with _lock:
        _generation += 1
        _entries.pop(key, None)


def clear() -> None:
    global _generation
    with _lock:
        _generation += 1
        _entries.clear()


def _ensure_listener() -> None:
    background.start_once("local-cache-invalidation", _listen, on_start=clear)


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
