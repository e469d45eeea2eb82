"""Live job updates over real HTTP: GET /api/jobs/<id>/events (Server-Sent
Events) from a gunicorn of its own (threaded workers, as in production),
fed by the session's Celery worker through Valkey pub/sub; the status
fields queue_position and eta_seconds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import BaseHTTPRequestHandler

import pytest
import redis
import requests
from django.test import Client
from django.utils import timezone

from summaries.models import Job
from summaries.observability import heartbeats
from summaries.services import events, progress
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.fakes.web import FakeWeb
from tests.helpers.pages import NEWS, page_html
from tests.helpers.processes import WebServer, Worker
from tests.helpers.sse import Reader, read_events
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db(transaction=True)

STAGES = ["queued", "fetching", "extracting", "summarizing", "done"]
MAX_STREAMS = 4


@pytest.fixture(scope="module")
def sse_server(worker_env: dict[str, str]) -> Iterator[WebServer]:
    """A gunicorn API process with short stream timings and a small stream cap."""
    server = WebServer({**worker_env, "SSE_HEARTBEAT_SECONDS": "0.5", "SSE_MAX_SECONDS": "20",
                        "SSE_MAX_STREAMS": str(MAX_STREAMS)}, workers=1)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slow_site() -> Iterator[FakeWeb]:
    """A page that takes a second to answer: its job's stream sees fetching."""
    html = page_html(NEWS).encode()

    def slow_page(h: BaseHTTPRequestHandler) -> None:
        time.sleep(1.0)
        h.send_response(200)
        h.send_header("Content-Type", "text/html; charset=utf-8")
        h.send_header("Content-Length", str(len(html)))
        h.end_headers()
        h.wfile.write(html)

    with FakeWeb() as server:
        server.add_route("/slow/ferry", slow_page)
        yield server


def events_url(server: WebServer, job_id: str) -> str:
    return f"{server.url}/api/jobs/{job_id}/events"


def pending_job(text: str = "") -> Job:
    """A pending job row no worker will take (nothing is enqueued)."""
    return Job.objects.create(kind=Job.Kind.TEXT, input_hash=uuid.uuid4().hex * 2,
                              input_text=text or unique_text("events"), stage="queued")


def test_it_streams_each_stage_in_order_and_ends_with_the_summary(
        sse_server: WebServer, worker: Worker, gemini: FakeGemini, slow_site: FakeWeb) -> None:
    gemini.delay_s = 1.0  # summarizing lasts a second too
    api = Api(sse_server.url)
    submitted = api.submit(slow_site.url(f"/slow/ferry?run={uuid.uuid4().hex}"))
    assert submitted.status_code == 202
    job_id = submitted.json()["job_id"]

    stream = read_events(events_url(sse_server, job_id), timeout=30)

    assert stream.status == 200 and stream.content_type.startswith("text/event-stream")
    assert stream.retry_ms == events.RECONNECT_MS
    assert stream.ended_by_server
    first, *changes, last = stream.events
    assert first.name == "status" and first.data["job_id"] == job_id
    assert "created_at" in first.data  # the whole status body at once
    assert [e.name for e in changes] == ["status"] * len(changes)
    # Every change once, in the pipeline's order (the first event is wherever it was).
    seen = [first.data["stage"], *(e.data["stage"] for e in changes)]
    assert seen == sorted(set(seen), key=STAGES.index)
    assert {"extracting", "summarizing"} <= set(seen)
    assert last.name == "result"
    assert last.data["status"] == "completed" and last.data["stage"] == "done"
    assert last.data["summary"] and last.data["tags"]
    assert last.data["summary"] == api.status(job_id).json()["summary"]  # polling agrees
    assert [int(e.id) for e in stream.events] == list(range(1, len(stream.events) + 1))


def test_a_retry_is_an_event_and_a_failure_is_the_result(
        sse_server: WebServer, worker: Worker, gemini: FakeGemini) -> None:
    gemini.delay_s = 0.8  # the stream is connected before the first answer
    gemini.script(["unavailable", "rejected"])  # transient, then permanent
    api = Api(sse_server.url)
    job_id = api.submit(unique_text("retried")).json()["job_id"]

    stream = read_events(events_url(sse_server, job_id), timeout=30)

    changes = [(e.data["status"], e.data["stage"], e.data.get("attempts"))
               for e in stream.events]
    assert ("pending", "retrying", 1) in changes
    assert changes.index(("pending", "retrying", 1)) < changes.index(
        ("processing", "summarizing", 2))
    last = stream.events[-1]
    assert last.name == "result" and last.data["status"] == "failed"
    assert last.data["code"] and last.data["error"] and "summary" not in last.data
    assert last.data == api.status(job_id).json()  # the same body polling gives


def test_a_late_client_gets_the_final_state_at_once(
        sse_server: WebServer, worker: Worker, gemini: FakeGemini) -> None:
    api = Api(sse_server.url)
    job_id = api.submit(unique_text("late client")).json()["job_id"]
    done = api.wait(job_id)

    stream = read_events(events_url(sse_server, job_id), timeout=10)

    assert [e.name for e in stream.events] == ["result"]
    assert stream.events[0].data["summary"] == done["summary"]
    assert stream.events[0].data["tags"] == done["tags"]
    assert stream.ended_by_server


def test_it_relays_what_is_published_and_drops_what_the_row_already_said(
        sse_server: WebServer) -> None:
    job = pending_job()
    reader = Reader(events_url(sse_server, str(job.id)), headers={"Last-Event-ID": "41"})
    (initial,) = reader.wait_events(1)  # sent once subscribed: what follows is heard
    assert initial.data["status"] == "pending" and initial.data["queue_position"] >= 1
    assert initial.id == "42"  # numbered after the Last-Event-ID the client gave

    events.publish(str(job.id), "pending", "queued")  # the state already sent
    events.publish(str(job.id), "processing", "summarizing", attempts=1)
    now = timezone.now()
    Job.objects.filter(id=job.id).update(
        status=Job.Status.COMPLETED, stage="done", summary="Done one. Done two.",
        tags=["a", "b"], duration_ms=5, completed_at=now, updated_at=now)
    events.publish(str(job.id), "completed", "done")
    stream = reader.join()

    assert [(e.name, e.data["stage"]) for e in stream.events] == [
        ("status", "queued"), ("status", "summarizing"), ("result", "done")]
    assert stream.events[-1].data["summary"] == "Done one. Done two."


def test_an_idle_stream_gets_heartbeats_and_ends_at_its_lifetime(
        worker_env: dict[str, str]) -> None:
    server = WebServer({**worker_env, "SSE_HEARTBEAT_SECONDS": "0.3", "SSE_MAX_SECONDS": "2"},
                       workers=1)
    server.start()
    try:
        job = pending_job()
        stream = read_events(events_url(server, str(job.id)), timeout=20)
    finally:
        server.stop()
    assert stream.ended_by_server
    assert [e.name for e in stream.events] == ["status"]
    assert stream.comments >= 2


def test_an_unknown_job_is_a_json_404(sse_server: WebServer) -> None:
    for job_id in (str(uuid.uuid4()), "not-a-uuid"):
        response = requests.get(events_url(sse_server, job_id), timeout=10)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_streams_past_the_cap_are_refused_and_the_api_still_answers(
        sse_server: WebServer) -> None:
    job = pending_job()
    readers = [Reader(events_url(sse_server, str(job.id))) for _ in range(MAX_STREAMS)]
    for reader in readers:
        reader.wait_events(1)

    refused = requests.get(events_url(sse_server, str(job.id)), timeout=10)
    health = requests.get(f"{sse_server.url}/api/health", timeout=10)
    status = requests.get(f"{sse_server.url}/api/status/{job.id}", timeout=10)

    assert refused.status_code == 503 and refused.json()["code"] == "busy"
    assert health.status_code == 200
    assert status.json()["status"] == "pending"
    Job.objects.filter(id=job.id).update(status=Job.Status.FAILED, stage="failed",
                                         error="stopped", error_code="test",
                                         updated_at=timezone.now())
    events.publish(str(job.id), "failed", "failed")
    for reader in readers:
        assert reader.join().events[-1].name == "result"
    # The slots are free again.
    again = Reader(events_url(sse_server, str(job.id)))
    assert again.join().events[-1].data["code"] == "test"


def test_a_cold_threaded_server_answers_a_burst(worker_env: dict[str, str]) -> None:
    """Many threads touching Valkey and the database at once, first thing
    after start (an earlier threaded setup raced at cold start)."""
    server = WebServer(worker_env, workers=1)
    server.start()
    text = unique_text("burst")
    try:
        with ThreadPoolExecutor(48) as pool:
            submits = list(pool.map(lambda _: requests.post(
                f"{server.url}/api/submit", json={"input": text}, timeout=30), range(48)))
            statuses = list(pool.map(lambda r: requests.get(
                f"{server.url}/api/status/{r.json()['job_id']}", timeout=30), submits))
    finally:
        server.stop()
    assert {r.status_code for r in submits} <= {200, 202}
    assert len({r.json()["job_id"] for r in submits}) == 1  # one job, joined by the rest
    assert {r.status_code for r in statuses} == {200}
    assert "Traceback" not in server.output()


def test_status_tells_the_queue_position_and_an_eta(valkey: redis.Redis) -> None:
    """W = 4 s (the recent completed jobs' mean), C = 2 threads online:
    positions 1 and 2 finish in one round (4 s), position 3 in two (8 s)."""
    now = timezone.now()
    for ms in (3000, 5000):
        Job.objects.create(kind=Job.Kind.TEXT, input_hash=uuid.uuid4().hex * 2,
                           input_text="x", status=Job.Status.COMPLETED, stage="done",
                           duration_ms=ms, completed_at=now, updated_at=now)
    waiting = [pending_job() for _ in range(3)]
    for job, minutes in zip(waiting, (3, 2, 1), strict=True):  # oldest first
        Job.objects.filter(id=job.id).update(created_at=now - timedelta(minutes=minutes))
    running = pending_job()
    Job.objects.filter(id=running.id).update(status=Job.Status.PROCESSING, stage="summarizing",
                                             started_at=now - timedelta(seconds=1))
    keys = [f"{heartbeats.HEARTBEAT_PREFIX}eta-test:{n}" for n in range(2)]
    for key in keys:
        valkey.set(key, "1", ex=30)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("django.conf.settings.CELERY_WORKER_CONCURRENCY", 1)
            # Only this test's heartbeats count (the session worker's too, if it runs).
            patch.setattr(heartbeats, "workers_online", lambda: len(keys))
            progress.forget_figures()
            client = Client()
            bodies = [client.get(f"/api/status/{job.id}").json() for job in waiting]
            busy = client.get(f"/api/status/{running.id}").json()
    finally:
        valkey.delete(*keys)
        progress.forget_figures()
    assert [b["queue_position"] for b in bodies] == [1, 2, 3]
    assert [b["eta_seconds"] for b in bodies] == [4, 4, 8]
    assert "queue_position" not in busy and busy["eta_seconds"] == 3
    finished = Job.objects.filter(status=Job.Status.COMPLETED).values_list("id", flat=True)[0]
    done = Client().get(f"/api/status/{finished}")
    assert "queue_position" not in done.json() and "eta_seconds" not in done.json()
