"""The AI provider's limits, shared by every worker process and machine.

AI_MAX_RPM (requests per minute) and AI_MAX_TPM (estimated tokens per
minute) hold across all workers: one Lua script in Valkey checks and takes
quota atomically. It counts per second of Valkey's own clock in a hash and
sums the current second and the 60 before it, so in any 60-second window the
provider sees at most the limit (a call may wait up to a second longer than
an exact sliding window would make it).

A provider 429 with a retry delay (Retry-After, Gemini's RetryInfo) pauses
every worker's calls to that provider for that long: ``pause`` sets a key
that ``acquire`` honours before taking quota.

Waiting is the caller's choice: ``acquire`` waits up to ``max_wait`` seconds
and otherwise raises QuotaWait with the delay, so a job can step aside (be
rescheduled without burning an attempt) instead of holding a worker thread.
"""

from __future__ import annotations

import time

from django.conf import settings

from summaries.core.errors import QuotaWait
from summaries.infra import cache

# KEYS[1] quota hash, KEYS[2] pause key; ARGV: rpm, tpm, tokens (0 = no limit).
# Returns the seconds to wait (0: the quota was taken).
_ACQUIRE = """
local pause = redis.call('pttl', KEYS[2])
if pause > 0 then return tostring(pause / 1000) end
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('time')
local now = tonumber(t[1])
local fields = {}
for s = now - 60, now do
    fields[#fields + 1] = 'r' .. s
    fields[#fields + 1] = 't' .. s
end
local values = redis.call('hmget', KEYS[1], unpack(fields))
local requests, used, oldest = 0, 0, nil
for i = 1, #values, 2 do
    local r = tonumber(values[i]) or 0
    if r > 0 and oldest == nil then oldest = now - 60 + (i - 1) / 2 end
    requests = requests + r
    used = used + (tonumber(values[i + 1]) or 0)
end
if (rpm > 0 and requests + 1 > rpm) or (tpm > 0 and used + tokens > tpm) then
    -- Wait until the oldest counted second leaves the window.
    local wait = (oldest or now) + 61 - now - tonumber(t[2]) / 1000000
    return tostring(math.max(wait, 0.05))
end
redis.call('hincrby', KEYS[1], 'r' .. now, 1)
redis.call('hincrby', KEYS[1], 't' .. now, tokens)
redis.call('expire', KEYS[1], 62)
-- Drop seconds that left the window (the hash stays at 61 seconds' worth).
redis.call('hdel', KEYS[1], 'r' .. (now - 61), 't' .. (now - 61))
return '0'
"""

def _keys(namespace: str) -> list[str]:
    return [f"aiquota:{namespace}", f"aipause:{namespace}"]


def acquire(namespace: str, *, tokens: int, max_wait: float = 2.0) -> None:
    """Take one request and ``tokens`` of ``namespace``'s quota, waiting up to
    ``max_wait`` seconds for it; raises QuotaWait(delay) if it would take
    longer. With neither AI_MAX_RPM nor AI_MAX_TPM set, only a pause (a
    provider's 429) makes it wait."""
    rpm, tpm = settings.AI_MAX_RPM, settings.AI_MAX_TPM
    if tpm and tokens > tpm:
        tokens = tpm  # a single huge request must still be able to run, alone
    deadline = time.monotonic() + max_wait
    while True:
        wait = float(cache.client().eval(_ACQUIRE, 2, *_keys(namespace), rpm, tpm, tokens))
        if wait <= 0:
            return
        if time.monotonic() + wait > deadline:
            raise QuotaWait(wait)
        time.sleep(wait)


def pause(namespace: str, seconds: float) -> None:
    """Pause every worker's calls to ``namespace`` for ``seconds`` (a provider
    429 said so); never shortens a longer pause already set."""
    ms = max(1, int(seconds * 1000))
    pipe = cache.client().pipeline(transaction=True)  # one round trip, atomic
    pipe.set(f"aipause:{namespace}", "1", px=ms, nx=True)
    pipe.pexpire(f"aipause:{namespace}", ms, gt=True)  # only ever lengthened
    pipe.execute()
