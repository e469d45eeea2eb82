"""A worker's threads overlap their AI calls, with real processes: an API, a
Celery worker (threads pool) and the loopback fake Gemini. Jobs are queued
before the worker starts, so they reach it together, as a backlog does.

Under the production configuration (PostgreSQL, run by .ci/run) the
database pool is smaller than the worker's threads: a job must not hold a
pooled connection through its AI call, or the pool, not the threads, would
bound the jobs in flight."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.db import connection

from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.stack import stack_of

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8
POOL = 2


def test_jobs_in_flight_are_bounded_by_threads_not_by_the_database_pool(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    gemini.delay_s = 1.5  # every call is still running when the last one starts
    with stack_of(tmp_path, worker_env, aof=False, WORKER_CONCURRENCY=str(THREADS),
                  DATABASE_POOL_SIZE=str(POOL), AI_BATCH_SIZE="1") as stack:
        api = stack.api()
        texts = [f"The {uuid.uuid4().hex} harbour opened a new pier this spring. "
                 f"Ferries now dock there {n} times a day." for n in range(THREADS)]
        job_ids = [api.submit(text).json()["job_id"] for text in texts]  # queued: no worker yet
        stack.worker("threads")
        done = [api.wait(job_id, timeout=60) for job_id in job_ids]

    assert [job["status"] for job in done] == ["completed"] * THREADS, done
    assert gemini.calls == THREADS
    print(f"{connection.vendor}: {gemini.most_at_once} of {THREADS} AI calls at once "
          f"(database pool {POOL})")
    # All of them, give or take a thread that started late; with each job
    # holding a pooled connection through its call it was POOL at most.
    assert gemini.most_at_once >= THREADS - 2 > POOL
