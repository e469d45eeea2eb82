"""How a submit was answered: the vocabulary shared by the submit service, the
API's X-Cache header and the counters (observability)."""

from __future__ import annotations

from enum import StrEnum


class SubmitOutcome(StrEnum):
    HIT = "hit"  # answered at once with a summary (cache, or the completed job row)
    MISS = "miss"  # this submit created the job
    JOINED = "joined"  # it joined a job already in flight (dedup)
    NEAR = "near"  # answered with a near-duplicate's summary (services/near_duplicates.py)
    KNOWN_FAILURE = "known_failure"  # a URL that failed to fetch moments ago
    REJECTED = "rejected"  # refused input (400/413): counted in submissions only


HIT = SubmitOutcome.HIT
MISS = SubmitOutcome.MISS
JOINED = SubmitOutcome.JOINED
NEAR = SubmitOutcome.NEAR
KNOWN_FAILURE = SubmitOutcome.KNOWN_FAILURE
REJECTED = SubmitOutcome.REJECTED
