"""Valkey: the summary cache and the memory of failed fetches (plain operations).

Keys:
- ``summary:<key>``  JSON {"job_id", "summary", "tags", "cached_at"}, expires
  after CACHE_TTL; ``cached_at`` is when the summary was made (epoch seconds),
  for a submit's ``max_age`` (entries written before it existed lack it).
- ``failed:<key>``   the id of a job whose URL could not be fetched, briefly.
- ``inflight:<key>`` the id of the job computing <key> (services/inflight.py
  owns its lifecycle).
- ``nd1:<variant>:<band>:<digest>`` a set of job ids: the near-duplicate
  LSH index (infra/near_index.py), expiring after CACHE_TTL.

Every function raises ``redis.exceptions.RedisError`` when Valkey is down;
callers turn that into a 503, never into a hang (short socket timeouts).

Two servers, which may be one (README, "Valkey: broker and cache"):
``cache_client()`` (CACHE_VALKEY_URL, else VALKEY_URL) holds what may be
evicted (an allkeys-lru server) at the cost of a recomputation; ``client()``
(VALKEY_URL, the broker's noeviction server) holds everything whose loss
would break a guarantee. Every key and channel belongs to one of them, in
both layouts: its writers and its readers reach it through the accessor
named here, so the server is chosen in this module only.

=========================  ======  ====================================  ==========================
key or channel             server  written by                            read by
=========================  ======  ====================================  ==========================
``summary:<key>``          cache   set_summary (worker, submit recache)  get_summary*, inflight
``failed:<key>``           cache   remember_failure (worker)             recent_failure, inflight
``summary-invalidate``     cache   set_summary, delete_summary, purge    invalidation_pubsub
                                   (PUBLISH, beside the write)           (local_cache, every web)
``nd1:<variant>:<band>``   cache   near_index.add (worker, after an AI   near_index.candidates
                                   summary), near_index.remove (purge)   (submit, worker)
``inflight:<key>``         main    inflight (submit, worker)             inflight
``job-events:<job_id>``    main    events.publish (events_client, or     events_pubsub (SSE
                                   the ``main`` part of a Batch)         streams, web)
celery queues, unacked,    main    queues (LPUSH), Celery (broker and    Celery workers, queues
``_kombu.*``, results              result backend: VALKEY_URL)           (depth, reconciler)
``metrics:*`` counters,    main    counters.flush (web, worker)          prometheus, analytics,
``metrics:m:<minute>``                                                   timeline
``metrics:joins:<job_id>``, main    counters.joined (web: a JOINED        counters.joins_of
``metrics:joins:near:<id>``        submit; expires)                      (worker: GETDEL at the end)
``heartbeat:worker:*``     main    heartbeats (worker)                   heartbeats.workers_online
``ratelimit:<client>:*``   main    api.throttling                        api.throttling
``aiquota:*``,             main    ai_quota (worker)                     ai_quota (worker)
``aipause:*``
=========================  ======  ====================================  ==========================

In-process only (no Valkey key): SSE stream slots (services/events.py), the
batching breaker and batches (services/batching.py), local_cache entries.
A script or pipeline may touch keys of both servers in one round trip only
when ``one_server()``; ``Batch`` sends each server its own part otherwise.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from smartcache import valkey_urls

# Summary writes and deletes are announced here (summaries.infra.local_cache listens).
INVALIDATE_CHANNEL = "summary-invalidate"


@cache
def _client(url: str, timeout: float) -> redis.Redis:
    # Short timeouts: a dead Valkey must cost a request a quick 503, not a
    # hang. RESP2 skips the HELLO handshake on every new connection.
    return valkey_urls.parse(url).client(
        protocol=2,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        # One reconnect after a dropped connection (a Valkey restart), but no
        # second wait after a timeout: a frozen Valkey must cost one timeout.
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        decode_responses=True,
    )


def _pubsub(url: str) -> redis.client.PubSub:
    """A subscriber on a connection of its own (a pool of its own, so its
    long reads never touch the command connections); pings every 15 s so a
    dead connection is noticed."""
    subscriber = valkey_urls.parse(url).client(
        protocol=2, socket_timeout=settings.VALKEY_SOCKET_TIMEOUT,
        socket_connect_timeout=settings.VALKEY_SOCKET_TIMEOUT, decode_responses=True,
        health_check_interval=15,
    )
    # Untyped in redis-py before 7, typed after: the ignore fits both.
    sub: redis.client.PubSub = subscriber.pubsub(  # type: ignore[no-untyped-call, unused-ignore]
        ignore_subscribe_messages=True)
    return sub


def invalidation_pubsub() -> redis.client.PubSub:
    """A subscriber for INVALIDATE_CHANNEL, on the cache's server: the
    announcements go out in the same pipeline as the summary's write."""
    return _pubsub(_cache_url())


def events_client() -> redis.Redis:
    """Where job events are published (``job-events:<id>``): the main server,
    whose part of a completion's Batch (``Batch.main``) is sent after the
    cache's, so a job's end is announced once its summary is cached."""
    return client()


def events_pubsub() -> redis.client.PubSub:
    """A subscriber for job events, on the server ``events_client`` publishes to."""
    return _pubsub(settings.VALKEY_URL)


def client() -> redis.Redis:
    """The process-wide client of the main (broker's, noeviction) Valkey: a
    pool; safe across threads and forks."""
    return _client(settings.VALKEY_URL, settings.VALKEY_SOCKET_TIMEOUT)


def _cache_url() -> str:
    return str(settings.CACHE_VALKEY_URL or settings.VALKEY_URL)


def cache_client() -> redis.Redis:
    """The process-wide client of the cache's Valkey (summaries, failures)."""
    return _client(_cache_url(), settings.VALKEY_SOCKET_TIMEOUT)


def one_server() -> bool:
    """Whether the cache and the main Valkey are one server (the default):
    then a script or a pipeline may touch the keys of both in one round trip."""
    return _cache_url() == settings.VALKEY_URL


@dataclass(frozen=True)
class Batch:
    """Commands for both servers queued together: ``cache`` for the cache's
    keys, ``main`` for the main server's. One pipeline, one round trip, when
    they are one server; else one each, the cache's sent first (a summary is
    written before the marker that guards its input is released)."""

    main: redis.client.Pipeline
    cache: redis.client.Pipeline

    def execute(self) -> list[Any]:
        """Send both; the main server's part even when the cache's failed (its
        server down), so the in-flight marker is released and the job's end
        announced; the cache's error is raised after. Returns the replies of
        the pipeline that carried the main server's part (on one server, the
        cache's too): its last reply is that of the last command queued on
        ``main``."""
        replies: list[Any] = []
        try:
            replies = self.cache.execute()
        finally:
            if self.main is not self.cache:
                replies = self.main.execute()
        return replies


def batch() -> Batch:
    main = client().pipeline(transaction=False)
    return Batch(main, main if one_server() else cache_client().pipeline(transaction=False))


def get_summary(key: str) -> dict[str, Any] | None:
    raw = cast(str | None, cache_client().get(summary_name(key)))
    return parse_summary(raw) if raw else None


def get_summary_with_ttl(key: str) -> tuple[dict[str, Any] | None, int]:
    """The summary and its remaining time to live in milliseconds."""
    pipe = cache_client().pipeline(transaction=False)
    pipe.get(summary_name(key))
    pipe.pttl(summary_name(key))
    raw, ttl_ms = pipe.execute()
    return (parse_summary(raw) if raw else None), int(ttl_ms)


def summary_name(key: str) -> str:
    """The Valkey key of ``key``'s summary (for scripts that read it)."""
    return f"summary:{key}"


def parse_summary(raw: str | bytes) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(raw))


def set_summary(key: str, payload: dict[str, Any], *, ttl: int,
                cached_at: float | None = None, pipe: redis.client.Pipeline | None = None,
                ) -> None:
    """Store a summary and announce it, so processes drop older local copies
    (summaries.infra.local_cache). ``cached_at``: when the summary was made (epoch
    seconds; now unless given), stored in the payload for ``max_age``.
    ``pipe``: queue the commands there (the caller executes it) instead of
    sending them now."""
    payload = {**payload, "cached_at": time.time() if cached_at is None else cached_at}
    own = pipe is None
    pipe = cache_client().pipeline(transaction=False) if pipe is None else pipe
    pipe.set(summary_name(key), json.dumps(payload), ex=max(1, ttl))
    pipe.publish(INVALIDATE_CHANNEL, key)
    if own:
        pipe.execute()


def summary_age(payload: dict[str, Any]) -> float:
    """Seconds since a cached summary was made; infinite for an entry
    written before payloads carried ``cached_at``."""
    cached_at = payload.get("cached_at")
    if not isinstance(cached_at, (int, float)):
        return float("inf")
    return max(0.0, time.time() - cached_at)


def delete_summary(key: str) -> bool:
    """Remove a summary and announce it: every process drops its copy.
    True if there was one."""
    pipe = cache_client().pipeline(transaction=False)
    pipe.delete(summary_name(key))
    pipe.publish(INVALIDATE_CHANNEL, key)
    deleted, _ = pipe.execute()
    return bool(deleted)


def purge(keys: set[str]) -> set[str]:
    """Remove the summaries and the remembered fetch failures under ``keys``
    and announce each key (every process drops its copy), in one round
    trip. Returns the keys whose summary was there."""
    ordered = sorted(keys)
    pipe = cache_client().pipeline(transaction=False)
    for key in ordered:
        pipe.delete(summary_name(key))
        pipe.delete(failure_name(key))
        pipe.publish(INVALIDATE_CHANNEL, key)
    replies = pipe.execute()
    return {key for key, removed in zip(ordered, replies[0::3], strict=True) if removed}


def failure_name(key: str) -> str:
    """The Valkey key remembering a failed fetch of ``key``."""
    return f"failed:{key}"


def remember_failure(key: str, job_id: str, *, ttl: int) -> None:
    """Remember the job that failed to fetch ``key`` so resubmits reuse it."""
    if ttl > 0:
        cache_client().set(failure_name(key), job_id, ex=ttl)


def recent_failure(key: str) -> str | None:
    return cast(str | None, cache_client().get(failure_name(key)))


def forget_failure(key: str) -> None:
    cache_client().delete(failure_name(key))


def ping() -> bool:
    """Both servers answer (one ping when they are the same)."""
    if one_server():
        return bool(client().ping())
    return bool(client().ping()) and bool(cache_client().ping())
