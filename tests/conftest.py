"""Shared fixtures: a real Valkey (tests.valkey_plugin), a loopback fake
Gemini, real Celery worker processes and real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection

from summaries import local_cache, metrics
from summaries.services.config import summarizer
from tests.helpers.api import Api
from tests.helpers.environment import process_environment
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.processes import Worker, database_url

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
    """Environment for child processes (tests/helpers/environment.py, layer 2):
    the test database, the test Valkey, the fake Gemini, short timings."""
    return process_environment(database_url(connection.settings_dict), gemini_server.base_url)


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


@pytest.fixture
def namespace() -> str:
    return summarizer().cache_namespace
