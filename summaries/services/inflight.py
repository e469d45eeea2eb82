"""The in-flight marker: ``inflight:<key>`` names the one job computing <key>.

Its whole lifecycle lives here:

- **claim**: the first submit of an input sets the marker with SET NX, so of
  any number of simultaneous identical submits one goes on to create the job
  and the others *join* it by reading the owner's id.
- **confirm**: the claimer extends its claim once its job row is written.
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
from typing import Any, cast

from django.conf import settings

from summaries import cache

# Delete the key only if it still holds our id: a plain DEL could remove a
# marker that a newer job set after ours expired.
_RELEASE_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

_EXTEND_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('expire', KEYS[1], ARGV[2])
end
return 0
"""

# How long a job waits for another job that is summarising the same article
# text (two URLs, one article) before it calls the AI itself.
CONTENT_WAIT_SECONDS = 20.0


# A claim not yet confirmed by a job row lapses after this many seconds.
CLAIM_TTL = 20


def _name(key: str) -> str:
    return f"inflight:{key}"


def claim(key: str, holder: str, *, ttl: int = CLAIM_TTL) -> bool:
    """True if ``holder`` now holds the marker; False if another one does.

    A claim is short-lived until ``confirm`` extends it: if its holder dies
    before recording a job, the input is free again within ``ttl`` seconds.
    """
    return bool(cache.client().set(_name(key), holder, nx=True, ex=ttl))


def owner(key: str) -> str | None:
    return cast(str | None, cache.client().get(_name(key)))


def adopt(key: str, holder: str) -> None:
    """Point the marker at ``holder``, the job the database says is active."""
    cache.client().set(_name(key), holder, ex=settings.INFLIGHT_TTL)


# A worker's renewal is the same write: the job it claimed is the active one.
renew = adopt


def confirm(key: str, holder: str) -> None:
    """Extend ``holder``'s claim to the full TTL once its job row exists; a
    claim that already ended (its job finished) is not brought back."""
    cache.client().eval(_EXTEND_IF_OWNER, 1, _name(key), holder, settings.INFLIGHT_TTL)


def release(key: str, holder: str) -> None:
    cache.client().eval(_RELEASE_IF_OWNER, 1, _name(key), holder)


def await_content(key: str, holder: str, *, wait: float = CONTENT_WAIT_SECONDS
                  ) -> dict[str, Any] | None:
    """The cached summary of ``key`` if one exists or another holder produces
    it within ``wait`` seconds; None when ``holder`` should compute it (it
    then usually holds the marker, and must ``release`` it either way)."""
    deadline = time.monotonic() + wait
    while True:
        if hit := cache.get_summary(key):
            return hit
        if claim(key, holder, ttl=settings.INFLIGHT_TTL):
            return None
        if owner(key) in (None, holder) or time.monotonic() > deadline:
            return None
        time.sleep(0.2)
