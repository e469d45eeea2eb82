"""The AI provider's limits, shared through a real Valkey by every worker."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.test import override_settings

from summaries.core.errors import QuotaWait
from summaries.services import ai_quota
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.stack import stack_of
from tests.helpers.texts import unique_text


def namespace() -> str:
    return f"test:{uuid.uuid4().hex[:8]}"


def taken(ns: str, attempts: int, tokens: int = 1) -> int:
    """How many of ``attempts`` concurrent acquisitions got quota at once."""
    def one(_: int) -> bool:
        try:
            ai_quota.acquire(ns, tokens=tokens, max_wait=0)
        except QuotaWait:
            return False
        return True

    with ThreadPoolExecutor(max_workers=16) as pool:
        return sum(pool.map(one, range(attempts)))


@override_settings(AI_MAX_RPM=20, AI_MAX_TPM=0)
def test_requests_per_minute_hold_under_concurrency() -> None:
    ns = namespace()
    assert taken(ns, 60) == 20
    with pytest.raises(QuotaWait) as wait:
        ai_quota.acquire(ns, tokens=1, max_wait=0)
    assert 0 < wait.value.delay <= 61


@override_settings(AI_MAX_RPM=0, AI_MAX_TPM=1000)
def test_tokens_per_minute_hold() -> None:
    ns = namespace()
    assert taken(ns, 10, tokens=300) == 3
    # A request larger than the whole budget still runs, alone.
    other = namespace()
    ai_quota.acquire(other, tokens=5000, max_wait=0)
    with pytest.raises(QuotaWait):
        ai_quota.acquire(other, tokens=1, max_wait=0)


@override_settings(AI_MAX_RPM=0, AI_MAX_TPM=0)
def test_no_limits_configured_means_no_waiting_but_a_pause_still_holds() -> None:
    assert taken(namespace(), 100) == 100
    paused = namespace()
    ai_quota.pause(paused, 5)  # a provider's 429 binds even without limits set
    assert taken(paused, 3) == 0


@override_settings(AI_MAX_RPM=1000, AI_MAX_TPM=0)
def test_a_pause_stops_every_caller_and_is_never_shortened() -> None:
    ns = namespace()
    ai_quota.pause(ns, 5)
    ai_quota.pause(ns, 1)  # a shorter pause does not cut the longer one
    with pytest.raises(QuotaWait) as wait:
        ai_quota.acquire(ns, tokens=1, max_wait=0)
    assert 4 < wait.value.delay <= 5


@override_settings(AI_MAX_RPM=1000, AI_MAX_TPM=0)
def test_acquire_waits_out_a_short_pause() -> None:
    ns = namespace()
    ai_quota.pause(ns, 0.3)
    started = time.monotonic()
    ai_quota.acquire(ns, tokens=1, max_wait=2)
    assert time.monotonic() - started >= 0.25


@pytest.mark.django_db(transaction=True)
def test_workers_stay_within_the_limit_and_waiting_burns_no_attempt(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    with stack_of(tmp_path, worker_env, AI_MAX_RPM="3") as stack:
        api = stack.api()
        stack.worker("quota-a")
        stack.worker("quota-b")  # two processes share one quota
        job_ids = [api.submit(unique_text(f"quota {i}")).json()["job_id"] for i in range(6)]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            states = [api.status(job_id).json() for job_id in job_ids]
            if sum(s["status"] == "completed" for s in states) >= 3 and all(
                    s["status"] == "completed" or s["stage"] == "waiting" for s in states):
                break
            time.sleep(0.2)
        assert gemini.calls == 3  # the minute's quota, across both workers
        waiting = [s for s in states if s["status"] != "completed"]
        assert len(waiting) == 3
        for state in waiting:
            assert state["status"] == "pending" and state["stage"] == "waiting", state
            assert state["attempts"] == 0, state  # stepping aside is not an attempt
