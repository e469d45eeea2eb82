"""The near-duplicate LSH index in Valkey: band keys -> the jobs whose text
has that band (services/near_duplicates.py decides what goes in and what a
candidate is worth).

``nd1:<variant>:<band>:<digest>`` is a set of job ids on the cache's server
(cache.py's table): a job's text is indexed under each of its LSH bands
(summaries.similarity.lsh_bands), within its request variant (summariser
namespace and requested language), so only a summary made for the same
request is ever proposed. ``nd1:sig:<job_id>`` holds the job's MinHash
signature (hex), so a candidate that shares a band by chance is dropped
before its row is read. Every key expires with the cache TTL, set sets
renewed by each addition; a member whose job is gone or purged is skipped by
the reader (the job row is the truth), and removed by a purge.

The sets hold ids, not texts: the candidate's text is read from its job row
(the extracted article, or the submitted text with its line breaks), so the
index costs Valkey about 32 short set members and 1 kB per summary. A lookup
and an addition are one script each (one command for the client to encode,
not 32 or 64: bench/throughput.py's CPU per job).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis

from summaries.infra import cache

__all__ = ["PREFIX", "add", "band_key", "candidates", "pipeline", "remove"]

PREFIX = "nd1"
_SIGNATURE = f"{PREFIX}:sig:"
# Members read per band: a band shared by many texts (a template) costs a
# bounded reply; a real copy shares many bands, so it is still found.
MEMBERS_PER_BAND = 16

# KEYS: the band sets. ARGV: members per band, how many to return, the
# signature keys' prefix. Returns [id, signature, id, signature, ...], most
# shared bands first (then by id). (SRANDMEMBER in a script: Valkey
# replicates a script's effects, not the script.)
_LOOKUP = """
local counts, order = {}, {}
for _, key in ipairs(KEYS) do
  for _, member in ipairs(redis.call('SRANDMEMBER', key, tonumber(ARGV[1]))) do
    if counts[member] == nil then counts[member] = 0; order[#order + 1] = member end
    counts[member] = counts[member] + 1
  end
end
table.sort(order, function(a, b)
  if counts[a] ~= counts[b] then return counts[a] > counts[b] end
  return a < b
end)
local found = {}
for i = 1, math.min(#order, tonumber(ARGV[2])) do
  found[#found + 1] = order[i]
  found[#found + 1] = redis.call('GET', ARGV[3] .. order[i]) or ''
end
return found
"""
# KEYS: the band sets, then the signature key. ARGV: the member, the TTL, the signature.
_ADD = """
local ttl = tonumber(ARGV[2])
for i = 1, #KEYS - 1 do
  redis.call('SADD', KEYS[i], ARGV[1])
  redis.call('EXPIRE', KEYS[i], ttl)
end
redis.call('SET', KEYS[#KEYS], ARGV[3], 'EX', ttl)
return 1
"""


def band_key(variant: str, band: str) -> str:
    """The Valkey key of ``band`` (``"07:<hex>"``) within ``variant``."""
    return f"{PREFIX}:{variant}:{band}"


def candidates(variant: str, bands: Sequence[str], *, limit: int) -> list[tuple[str, str]]:
    """Up to ``limit`` (job id, signature hex or "") sharing a band with
    ``bands``, most shared bands first: one round trip. Raises redis.RedisError."""
    if not bands:
        return []
    keys = [band_key(variant, band) for band in bands]
    reply = cache.cache_client().eval(_LOOKUP, len(keys), *keys, MEMBERS_PER_BAND, limit,
                                      _SIGNATURE)
    return list(zip(reply[0::2], reply[1::2], strict=True))


def add(variant: str, bands: Sequence[str], member: str, signature: str, *, ttl: int,
        pipe: redis.client.Pipeline) -> None:
    """Queue ``member`` into each band's set, and its signature (``pipe``: a
    pipeline of the cache's server, e.g. ``cache.Batch.cache``; the caller
    executes it)."""
    if bands:
        keys = [*(band_key(variant, band) for band in bands), _SIGNATURE + member]
        pipe.eval(_ADD, len(keys), *keys, member, max(1, ttl), signature)


def pipeline() -> redis.client.Pipeline:
    """A pipeline of the index's server, for ``add`` outside a cache batch."""
    return cache.cache_client().pipeline(transaction=False)


def remove(entries: Iterable[tuple[str, Sequence[str], str]]) -> None:
    """Take each (variant, bands, member) out of its band sets, its signature
    too: one round trip."""
    pipe = cache.cache_client().pipeline(transaction=False)
    for variant, bands, member in entries:
        for band in bands:
            pipe.srem(band_key(variant, band), member)
        pipe.delete(_SIGNATURE + member)
    pipe.execute()
