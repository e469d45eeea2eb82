"""The job services against a real Valkey and a real database: one job per
input whatever the marker and the database do, Valkey trouble is transient
for a job, the row and the cache never disagree, analytics tell the truth."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.test import override_settings

from summaries.core.errors import ErrorCode, JobError, JobFailed, RetryLater
from summaries.core.inputs import normalize_input
from summaries.infra import cache
from summaries.models import Job
from summaries.services import inflight, jobs, pipeline
from summaries.services.submit import summary_request
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.fakes.web import FakeWeb
from tests.helpers.processes import free_port
from tests.helpers.texts import text_about

pytestmark = pytest.mark.django_db(transaction=True)

DEAD_VALKEY = f"redis://127.0.0.1:{free_port()}/0"


def key_of(text: str, namespace: str) -> str:
    return normalize_input(text).cache_key(namespace)


# --- one job per input ---------------------------------------------------------


@pytest.mark.usefixtures("no_enqueue")
def test_an_expired_marker_under_a_backlog_does_not_start_a_second_job(namespace: str) -> None:
    text = text_about("backlog")
    first = summary_request(raw=text)
    # The job waits in the queue longer than INFLIGHT_TTL: its marker expires.
    cache.client().delete(f"inflight:{key_of(text, namespace)}")
    second = summary_request(raw=text)
    assert second.job_id == first.job_id
    assert Job.objects.count() == 1
    assert inflight.owner(key_of(text, namespace)) == first.job_id


@pytest.mark.usefixtures("no_enqueue")
def test_a_marker_whose_owner_never_wrote_its_row_is_taken_over(namespace: str) -> None:
    text = text_about("orphan")
    inflight.claim(key_of(text, namespace), "00000000-0000-4000-8000-000000000000")
    answer = summary_request(raw=text)
    assert Job.objects.filter(id=answer.job_id).exists()
    assert inflight.owner(key_of(text, namespace)) == answer.job_id


@contextlib.contextmanager
def database_write_lock() -> Iterator[None]:
    """Hold the job table's write lock from another connection, as a slow
    transaction (or a stalled pool) would: INSERTs wait, reads go on."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        other = sqlite3.connect(settings["NAME"], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    with psycopg.connect(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                         user=settings["USER"], password=settings["PASSWORD"] or None,
                         dbname=settings["NAME"]) as pg:
        pg.execute("LOCK TABLE summaries_job IN EXCLUSIVE MODE")
        yield
        pg.rollback()


def test_a_slow_database_never_costs_a_second_job_or_ai_call(
        api: Api, gemini: FakeGemini) -> None:
    text = text_about("slow ledger")
    with ThreadPoolExecutor(max_workers=8) as pool:
        with database_write_lock():
            futures = [pool.submit(api.submit, text) for _ in range(8)]
            time.sleep(7)  # longer than any fixed wait for the winner's row
        answers = [f.result() for f in futures]
    assert {a.status_code for a in answers} <= {200, 202}, [a.text for a in answers]
    job_ids = {a.json()["job_id"] for a in answers}
    assert len(job_ids) == 1
    assert api.wait(job_ids.pop())["status"] == "completed"
    assert Job.objects.count() == 1
    assert gemini.calls == 1


# --- retries ------------------------------------------------------------------------


@override_settings(RETRY_BACKOFF_BASE=0.2, RETRY_BACKOFF_MAX=1.0)
def test_the_retry_delay_is_exponential_jittered_and_capped() -> None:
    # test_faults proves workers wait at least the lower bound; this, the rest.
    for attempt, cap in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (9, 1.0)]:
        delays = [jobs.retry_delay(attempt) for _ in range(200)]
        assert all(cap * 0.5 <= delay <= cap for delay in delays), (attempt, delays)
        assert max(delays) - min(delays) > cap * 0.1  # jittered, not fixed


# --- Valkey trouble is transient for a job --------------------------------------


def pending_job(text: str, namespace: str) -> Job:
    item = normalize_input(text)
    return Job.objects.create(kind=item.kind, input_hash=item.cache_key(namespace),
                              input_text=item.value, stage="queued")


def test_valkey_down_during_a_job_retries_the_attempt(namespace: str) -> None:
    job = pending_job(text_about("stalled cache"), namespace)
    with override_settings(VALKEY_URL=DEAD_VALKEY), pytest.raises(RetryLater) as retry:
        jobs.job_process(job_id=str(job.id))
    assert retry.value.error.code == "valkey_unavailable"
    job.refresh_from_db()
    assert (job.status, job.stage, job.error_code) == ("pending", "retrying", "valkey_unavailable")


def completed_outcome() -> pipeline.Outcome:
    return pipeline.Outcome("The kiln was fired. The pots were sold.", ["kiln", "pots"],
                            cached=False)


def test_a_job_completed_while_valkey_is_down_is_still_a_hit(
        namespace: str, no_enqueue: None) -> None:
    text = text_about("kiln")
    job = jobs.job_claim(job_id=str(pending_job(text, namespace).id))
    assert job is not None
    with override_settings(VALKEY_URL=DEAD_VALKEY):
        jobs._complete(job, completed_outcome(), duration_ms=5)  # caching fails quietly
    job.refresh_from_db()
    assert job.status == "completed"
    assert cache.get_summary(job.input_hash) is None

    answer = summary_request(raw=text)  # the row answers, and fills the cache again
    assert (answer.cached, answer.job_id, answer.summary) == (True, str(job.id), job.summary)
    refilled = cache.get_summary(job.input_hash)
    assert refilled is not None
    assert isinstance(refilled.pop("cached_at"), float)  # when it was refilled (max_age)
    # What the summary cost when made, from the row (a hit on it saves that).
    assert refilled == {"job_id": str(job.id), "summary": job.summary, "tags": job.tags,
                        "cost_micros": 0, "input_tokens": 0, "output_tokens": 0}
    assert Job.objects.count() == 1


def test_a_result_the_database_refuses_is_never_cached(namespace: str) -> None:
    job = jobs.job_claim(job_id=str(pending_job(text_about("nul"), namespace).id))
    assert job is not None
    outcome = completed_outcome()
    outcome.summary = "The kiln\x00 was fired. The pots were sold."
    if connection.vendor == "postgresql":  # refused, so the job fails for good: JobFailed
        with pytest.raises(JobFailed):
            jobs._complete(job, outcome, duration_ms=5)
    else:
        jobs._complete(job, outcome, duration_ms=5)
    job.refresh_from_db()
    cached = cache.get_summary(job.input_hash)
    if connection.vendor == "postgresql":  # PostgreSQL text cannot hold NUL
        assert (job.status, job.error_code) == ("failed", "unstorable_result")
        assert cached is None
    else:
        assert job.status == "completed"
        assert cached is not None and cached["summary"] == job.summary
    assert not (job.status == "failed" and cached)


# --- analytics ------------------------------------------------------------------


def test_a_dead_letter_retry_that_completes_is_no_longer_a_failure(
        api: Api, gemini: FakeGemini) -> None:
    gemini.mode = "rejected"  # a permanent error: failed at once
    failed = api.wait(api.submit(text_about("retry ledger")).json()["job_id"])
    assert failed["status"] == "failed"
    stats = api.analytics()
    assert (stats["failed_jobs"], stats["completed_jobs"]) == (1, 0)

    gemini.mode = "ok"
    retried = api.http.post(f"{api.base_url}/api/jobs/{failed['job_id']}/retry", timeout=10)
    assert retried.status_code == 202
    assert api.wait(failed["job_id"])["status"] == "completed"
    stats = api.analytics()
    assert (stats["failed_jobs"], stats["completed_jobs"], stats["failure_rate"]) == (0, 1, 0.0)
    assert stats["total_requests"] == 1 and stats["cache_misses"] == 1


def test_counters_add_up(api: Api, gemini: FakeGemini) -> None:
    texts = [text_about(f"abacus {i}") for i in range(3)]
    for text in texts:
        api.wait(api.submit(text).json()["job_id"])
    for text in texts[:2]:
        assert api.submit(text).status_code == 200
    assert api.submit("").status_code == 400  # rejected: not a request we answered
    stats: dict[str, Any] = api.analytics()
    assert (stats["total_requests"], stats["cache_hits"], stats["cache_misses"]) == (5, 2, 3)
    assert stats["total_requests"] == (stats["cache_hits"] + stats["cache_misses"]
                                       + stats["known_failures"])
    assert stats["completed_jobs"] == 3 and stats["queue_size"] == 0


def test_a_permanent_error_of_the_pipeline_is_not_retried(namespace: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> pipeline.Outcome:
        raise JobError("no", code=ErrorCode.AI_REJECTED)

    monkeypatch.setattr(pipeline, "run", refuse)
    job = pending_job(text_about("refused"), namespace)
    with pytest.raises(JobFailed):
        jobs.job_process(job_id=str(job.id))
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "ai_rejected")


def test_a_failure_answered_from_memory_is_not_a_cache_hit(api: Api) -> None:
    with FakeWeb() as web:
        web.add_status("/gone", 404)
        url = web.url("/gone")
        failed = api.wait(api.submit(url).json()["job_id"])
        assert failed["status"] == "failed"
        again = api.submit(url).json()
    assert (again["job_id"], again["status"]) == (failed["job_id"], "failed")
    stats = api.analytics()
    assert (stats["total_requests"], stats["cache_hits"], stats["cache_misses"],
            stats["known_failures"]) == (2, 0, 1, 1)


def test_a_page_that_times_out_gets_fewer_attempts_than_a_busy_ai(
        namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def time_out(*args: object, **kwargs: object) -> pipeline.Outcome:
        raise JobError("slow site", code=ErrorCode.FETCH_TIMEOUT, transient=True)

    monkeypatch.setattr(pipeline, "run", time_out)
    job = pending_job(text_about("dead site"), namespace)
    with pytest.raises(RetryLater):
        jobs.job_process(job_id=str(job.id))
    with pytest.raises(JobFailed):  # FETCH_TIMEOUT_MAX_ATTEMPTS = 2
        jobs.job_process(job_id=str(job.id))
    job.refresh_from_db()
    assert (job.status, job.error_code, job.attempts) == ("failed", "fetch_timeout", 2)
