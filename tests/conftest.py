"""Shared fixtures: a real Valkey (tests.valkey_plugin), a loopback fake
Gemini, real Celery worker processes and real HTTP."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests
from django.conf import settings
from django.db import connection

from summaries import local_cache, metrics
from summaries.services.config import summarizer
from tests.fakes.gemini import FakeGemini
from tests.processes import Worker, database_url

OUR_KEYS = ("summary:*", "inflight:*", "failed:*", "metrics:*", "ratelimit:*")


@pytest.fixture(scope="session")
def valkey() -> redis.Redis:
    return redis.Redis.from_url(settings.VALKEY_URL, decode_responses=True)


@pytest.fixture(autouse=True)
def _clean_valkey(valkey: redis.Redis) -> None:
    """Forget SmartCache's keys between tests (not Celery's: its queue
    bindings must survive for the session's workers)."""
    for pattern in OUR_KEYS:
        keys = list(valkey.scan_iter(match=pattern, count=1000))
        if keys:
            valkey.delete(*keys)
    # ... and this process's copies of them.
    metrics.discard_local()
    local_cache.clear()


@pytest.fixture(scope="session")
def gemini_server() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


@pytest.fixture
def gemini(gemini_server: FakeGemini) -> FakeGemini:
    gemini_server.reset()
    return gemini_server


@pytest.fixture(scope="session")
def worker_env(django_db_setup: None, gemini_server: FakeGemini) -> dict[str, str]:
    """Environment for child processes: the test database, the test Valkey,
    the fake Gemini, and short timings so faults show up quickly."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "GEMINI_BASE_URL": gemini_server.base_url,
        "GEMINI_TIMEOUT": "2",
        # One AI call per job, as most tests count them (batching is tested
        # with its own settings in test_batching.py).
        "AI_BATCH_SIZE": "1",
        "RETRY_BACKOFF_BASE": "0.2",
        "RETRY_BACKOFF_MAX": "1",
        "JOB_LEASE_SECONDS": "12",
        "TASK_TIME_LIMIT": "10",
        "RECONCILE_INTERVAL": "1",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="session")
def worker(worker_env: dict[str, str]) -> Iterator[Worker]:
    proc = Worker(worker_env, name="session")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def api(live_server: Any, worker: Worker, gemini: FakeGemini) -> Api:
    """The API over real HTTP (live server), with a worker consuming jobs."""
    return Api(live_server.url)


class Api:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()

    def submit(self, text: str, **extra: Any) -> requests.Response:
        return self.http.post(f"{self.base_url}/api/submit", json={"input": text, **extra},
                              timeout=15)

    def status(self, job_id: str) -> requests.Response:
        return self.http.get(f"{self.base_url}/api/status/{job_id}", timeout=10)

    def analytics(self) -> dict[str, Any]:
        response = self.http.get(f"{self.base_url}/api/analytics", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def wait(self, job_id: str, timeout: float = 30) -> dict[str, Any]:
        """Poll until the job is completed or failed; return its status body."""
        deadline = time.monotonic() + timeout
        while True:
            body = dict(self.status(job_id).json())
            if body["status"] in ("completed", "failed"):
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {body['status']}: {body}")
            time.sleep(0.05)


def text_about(topic: str) -> str:
    """A fresh multi-sentence text (unique per topic, so never cached yet)."""
    return (
        f"The {topic} project started last spring with a small team of volunteers. "
        f"Volunteers on the {topic} project met every week to plan the next steps. "
        f"By autumn the {topic} project had delivered its first public results. "
        f"Local newspapers praised the {topic} results and asked for more."
    )


@pytest.fixture
def namespace() -> str:
    return summarizer().cache_namespace
