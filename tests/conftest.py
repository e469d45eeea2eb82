"""Shared fixtures: a real Valkey (tests.valkey_plugin), a loopback fake
Gemini, real Celery worker processes and real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection

from summaries.infra import local_cache
from summaries.observability import counters
from summaries.services.config import summarizer
from tests.helpers.api import Api
from tests.helpers.environment import process_environment
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.fakes.web import Canary
from tests.helpers.processes import WebServer, Worker, database_url

OUR_KEYS = ("summary:*", "inflight:*", "failed:*", "metrics:*", "ratelimit:*", "nd1:*")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say it loudly when the browser tests (tests/test_browser.py) could not run."""
    reasons = {str(report.longrepr[2]) for report in terminalreporter.stats.get("skipped", [])
               if isinstance(report.longrepr, tuple) and "browser tests not run"
               in str(report.longrepr[2])}
    for reason in sorted(reasons):
        terminalreporter.write_line(f"NOTE: {reason.removeprefix('Skipped: ')}", yellow=True,
                                    bold=True)


@pytest.fixture(scope="session")
def valkey() -> redis.Redis:
    return redis.Redis.from_url(settings.VALKEY_URL, decode_responses=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "no_valkey: the tests touch no Valkey, so none is cleaned up between them")


@pytest.fixture(autouse=True)
def _clean_valkey(request: pytest.FixtureRequest) -> None:
    """Forget SmartCache's keys between tests (not Celery's: its queue
    bindings must survive for the session's workers)."""
    if request.node.get_closest_marker("no_valkey"):
        return
    valkey: redis.Redis = request.getfixturevalue("valkey")
    for pattern in OUR_KEYS:
        keys = list(valkey.scan_iter(match=pattern, count=1000))
        if keys:
            valkey.delete(*keys)
    # ... and this process's copies of them.
    counters.discard_local()
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
def canary() -> Iterator[Canary]:
    """A listener on 127.0.0.1 that SSRF probes must never reach."""
    with Canary() as listener:
        yield listener


@pytest.fixture
def no_enqueue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Submits create job rows but enqueue nothing: no worker takes them (for
    tests of the HTTP contract or of the job services driven by hand, whose
    inputs may name hosts no worker should fetch)."""
    monkeypatch.setattr("summaries.services.submit.enqueue", lambda job_id, **kw: None)
    # webhooks, watches, scheduled jobs
    monkeypatch.setattr("summaries.infra.dispatch.send", lambda *args, **kw: None)


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


@pytest.fixture(scope="module")
def web_server(worker_env: dict[str, str]) -> Iterator[WebServer]:
    """A gunicorn API process of its own (one worker), beside the live server:
    for what must hold across API processes."""
    server = WebServer(worker_env, workers=1)
    server.start()
    yield server
    server.stop()
