"""The near-duplicate LSH index in Valkey: band keys -> the jobs whose text
has that band (services/near_duplicates.py decides what goes in and what a
candidate is worth).

``nd1:<variant>:<band>:<digest>`` is a set of job ids on the cache's server
(cache.py's table): a job's text is indexed under each of its LSH bands
(summaries.similarity.lsh_bands), within its request variant (summariser
namespace and requested language), so only a summary made for the same
request is ever proposed. Every set expires with the cache TTL, renewed by
each addition; a member whose job is gone or purged is skipped by the
reader (the job row is the truth), and removed by a purge.

The sets hold ids, not texts: the candidate's text is read from its job row
(the extracted article, or the submitted text with its line breaks), so the
index costs Valkey about 32 short set members per summary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import redis

from summaries.infra import cache

__all__ = ["PREFIX", "add", "band_key", "candidates", "remove"]

PREFIX = "nd1"
# Members read per band: a band shared by many texts (a template) costs a
# bounded reply; a real copy shares many bands, so it is still found.
MEMBERS_PER_BAND = 16


def band_key(variant: str, band: str) -> str:
    """The Valkey key of ``band`` (``"07:<hex>"``) within ``variant``."""
    return f"{PREFIX}:{variant}:{band}"


def candidates(variant: str, bands: list[str], *, limit: int) -> list[str]:
    """Up to ``limit`` job ids sharing a band with ``bands``, most shared
    bands first (then by id): one round trip. Raises redis.RedisError."""
    if not bands:
        return []
    pipe = cache.cache_client().pipeline(transaction=False)
    for band in bands:
        pipe.srandmember(band_key(variant, band), MEMBERS_PER_BAND)
    shared: Counter[str] = Counter()
    for members in pipe.execute():
        shared.update(members or ())
    return sorted(shared, key=lambda member: (-shared[member], member))[:limit]


def add(variant: str, bands: list[str], member: str, *, ttl: int,
        pipe: redis.client.Pipeline) -> None:
    """Queue ``member`` into each band's set (``pipe``: a pipeline of the
    cache's server, e.g. ``cache.Batch.cache``; the caller executes it)."""
    for band in bands:
        key = band_key(variant, band)
        pipe.sadd(key, member)
        pipe.expire(key, max(1, ttl))


def remove(entries: Iterable[tuple[str, list[str], str]]) -> None:
    """Take each (variant, bands, member) out of its band sets: one round trip."""
    pipe = cache.cache_client().pipeline(transaction=False)
    for variant, bands, member in entries:
        for band in bands:
            pipe.srem(band_key(variant, band), member)
    pipe.execute()
