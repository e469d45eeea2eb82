"""The in-flight marker: ``inflight:<key>`` names the one job computing <key>.

Its whole lifecycle lives here:

- **claim**: the first submit of an input sets the marker with SET NX, so of
  any number of simultaneous identical submits one goes on to create the job
  and the others *join* it by reading the owner's id. A submit looks at the
  cache and claims in one atomic step (``look_or_claim``). The claim lasts
  INFLIGHT_TTL at once: its holder writes the job row right after. If it
  died first, the next submit of the input waits a moment for that row
  (services.submit), then creates the job itself and adopts the marker.
- **adopt**: once the database has settled which job is active for the input
  (see below), the marker is pointed at that job.
- **renew**: every attempt of the job re-sets it, so it outlives retries.
- **release**: the job removes it when it completes or fails, with a
  compare-and-delete, so a newer owner's marker is never removed.

The marker is a fast path, not the guarantee. The guarantee is the database
constraint ``one_active_job_per_input`` (at most one pending or processing
job per input): a marker that expired under a long backlog, or whose owner
died before writing its row, or a database too slow to show the owner's row,
costs one INSERT that fails and a join, never a second job or AI call. So no
caller ever deletes another job's marker because it looks stale.

The same markers also dedupe *content* (two URLs, one article): a job that
extracted an article claims the marker of the article text's key, and others
that extract the same text wait for its summary (``await_content``).

Every function raises ``redis.RedisError`` when Valkey is down.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import redis
from django.conf import settings

from summaries.infra import cache

# Delete the key only if it still holds our id: a plain DEL could remove a
# marker that a newer job set after ours expired.
_RELEASE_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

# A submit's first look, in one round trip: the summary if cached (and its
# time to live), else a URL's remembered fetch failure, else the claim; and
# when another holder has the marker, who. Atomic, so nothing can finish
# between the look and the claim.
_LOOK_OR_CLAIM = """
if KEYS[2] ~= '' then
    local hit = redis.call('get', KEYS[2])
    if hit then return {'hit', hit, redis.call('pttl', KEYS[2])} end
end
if KEYS[3] ~= '' then
    local failed = redis.call('get', KEYS[3])
    if failed then return {'failed', failed} end
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return {'claimed'} end
return {'owner', redis.call('get', KEYS[1])}
"""

# How long a job waits for another job that is summarising the same article
# text (two URLs, one article) before it calls the AI itself.
CONTENT_WAIT_SECONDS = 20.0


def _name(key: str) -> str:
    return f"inflight:{key}"


def claim(key: str, holder: str) -> bool:
    """True if ``holder`` now holds the marker; False if another one does."""
    return bool(cache.client().set(_name(key), holder, nx=True, ex=settings.INFLIGHT_TTL))


@dataclass(frozen=True)
class Look:
    """What ``look_or_claim`` found: exactly one of a cached summary (``hit``,
    with ``hit_ttl_ms``), a remembered fetch failure (``failed_job``), our
    claim (``claimed``), or another holder's (``owner``)."""

    claimed: bool = False
    owner: str | None = None
    hit: dict[str, Any] | None = None
    hit_ttl_ms: int = 0
    failed_job: str | None = None


def look_or_claim(key: str, holder: str, *, cached: bool = True, failure: bool = False,
                  ) -> Look:
    """A submit's first look at Valkey, one round trip: with ``cached``, the
    summary of ``key`` if there is one; with ``failure``, a remembered failed
    fetch of it (``cache.remember_failure``); otherwise ``claim`` (nothing is
    claimed when either is found)."""
    if cache.one_server():
        reply = cache.client().eval(
            _LOOK_OR_CLAIM, 3, _name(key), cache.summary_name(key) if cached else "",
            cache.failure_name(key) if failure else "", holder, settings.INFLIGHT_TTL)
    else:  # the cache on its own server: look there first, then claim (not atomic:
        # a job finishing in between is found by the submit's look at its row)
        reply = _look(key, cached=cached, failure=failure) or cache.client().eval(
            _LOOK_OR_CLAIM, 3, _name(key), "", "", holder, settings.INFLIGHT_TTL)
    found = reply[0]
    if found == "hit":
        return Look(hit=cache.parse_summary(reply[1]), hit_ttl_ms=int(reply[2]))
    if found == "failed":
        return Look(failed_job=str(reply[1]))
    if found == "claimed":
        return Look(claimed=True)
    return Look(owner=str(reply[1]) if len(reply) > 1 and reply[1] else None)


def _look(key: str, *, cached: bool, failure: bool) -> list[Any] | None:
    """_LOOK_OR_CLAIM's answer for a hit or a failure, read from the cache's
    own server; None when neither is there."""
    pipe = cache.cache_client().pipeline(transaction=False)
    if cached:
        pipe.get(cache.summary_name(key))
        pipe.pttl(cache.summary_name(key))
    if failure:
        pipe.get(cache.failure_name(key))
    replies = pipe.execute() if cached or failure else []
    if cached and replies[0]:
        return ["hit", replies[0], replies[1]]
    if failure and replies[-1]:
        return ["failed", replies[-1]]
    return None


def owner(key: str) -> str | None:
    return cast(str | None, cache.client().get(_name(key)))


def adopt(key: str, holder: str) -> None:
    """Point the marker at ``holder``, the job the database says is active."""
    cache.client().set(_name(key), holder, ex=settings.INFLIGHT_TTL)


def renew(key: str, holder: str, *, read_summary: bool = False) -> dict[str, Any] | None:
    """A worker's renewal is ``adopt``: the job it claimed is the active one.
    With ``read_summary``, also read ``key``'s cached summary in the same
    round trip, and return it (None if there is none)."""
    if not read_summary:
        cache.client().set(_name(key), holder, ex=settings.INFLIGHT_TTL)
        return None
    both = cache.batch()
    both.main.set(_name(key), holder, ex=settings.INFLIGHT_TTL)
    both.cache.get(cache.summary_name(key))
    if both.main is both.cache:
        _, raw = both.main.execute()
    else:
        raw, = both.cache.execute()
        both.main.execute()
    return cache.parse_summary(raw) if raw else None


def release(key: str, holder: str, *, pipe: redis.client.Pipeline | None = None) -> None:
    """Remove ``holder``'s marker (only if it is still ``holder``'s); with
    ``pipe``, queued there for the caller to execute."""
    (pipe or cache.client()).eval(_RELEASE_IF_OWNER, 1, _name(key), holder)


def await_content(key: str, holder: str, *, wait: float = CONTENT_WAIT_SECONDS
                  ) -> dict[str, Any] | None:
    """The cached summary of ``key`` if one exists or another holder produces
    it within ``wait`` seconds; None when ``holder`` should compute it (it
    then usually holds the marker, and must ``release`` it either way)."""
    deadline = time.monotonic() + wait
    while True:
        if hit := cache.get_summary(key):
            return hit
        if claim(key, holder):
            return None
        if owner(key) in (None, holder) or time.monotonic() > deadline:
            return None
        time.sleep(0.2)
