"""SSE stream slots (GET /api/jobs/<id>/events) are taken only by a valid
request and always given back: a bad Last-Event-ID is a JSON 400 that
takes no slot, and a stream that ends, fails, loses its client or is never
sent frees its slot. Over real HTTP to a gunicorn of its own, and in
process for a response never sent."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
import requests
from django.utils import timezone

from summaries.models import Job
from summaries.services import events
from tests.helpers.polling import wait_for
from tests.helpers.processes import WebServer
from tests.helpers.sse import read_events
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db(transaction=True)

MAX_STREAMS = 2
BAD_IDS = ["7" * 5000, "²", "-1", "4x", "1" * 19]


@pytest.fixture(scope="module")
def server(worker_env: dict[str, str]) -> Iterator[WebServer]:
    """A gunicorn API process with two stream slots and quick heartbeats."""
    proc = WebServer({**worker_env, "SSE_HEARTBEAT_SECONDS": "0.3", "SSE_MAX_SECONDS": "20",
                      "SSE_MAX_STREAMS": str(MAX_STREAMS)}, workers=1)
    proc.start()
    yield proc
    proc.stop()


def job_row(status: str = Job.Status.PENDING) -> Job:
    """A job no worker takes (nothing is enqueued)."""
    done = status == Job.Status.COMPLETED
    return Job.objects.create(kind=Job.Kind.TEXT, input_hash=uuid.uuid4().hex * 2,
                              input_text=unique_text("slots"), status=status,
                              stage="done" if done else "queued",
                              summary="One. Two." if done else "", tags=["a"] if done else [],
                              completed_at=timezone.now() if done else None)


def url(server: WebServer, job: Job) -> str:
    return f"{server.url}/api/jobs/{job.id}/events"


def test_a_bad_last_event_id_is_a_400_and_takes_no_slot(server: WebServer) -> None:
    job = job_row(Job.Status.COMPLETED)
    for bad in BAD_IDS * MAX_STREAMS:
        answer = requests.get(url(server, job), headers={"Last-Event-ID": bad}, timeout=10)
        assert answer.status_code == 400, (bad[:10], answer.status_code)
        assert answer.json()["code"] == "invalid_last_event_id"
    stream = read_events(url(server, job), timeout=10)  # every slot is still free
    assert stream.status == 200 and stream.events[-1].name == "result"
    again = read_events(url(server, job), timeout=10, headers={"Last-Event-ID": "41"})
    assert again.events[0].id == "42"
    assert "Traceback" not in server.output()


def test_streams_whose_client_left_give_their_slot_back(server: WebServer) -> None:
    job = job_row()
    held = [requests.get(url(server, job), stream=True, timeout=10) for _ in range(MAX_STREAMS)]
    assert [r.status_code for r in held] == [200] * MAX_STREAMS
    assert requests.get(url(server, job), timeout=10).status_code == 503
    for response in held:  # the clients hang up mid-stream
        response.close()

    def opens() -> bool:
        answer = requests.get(url(server, job), stream=True, timeout=10)
        answer.close()
        return answer.status_code == 200

    # The server notices at its next write (a heartbeat), then frees the slot.
    wait_for(opens, 10, "a stream slot to be free again")


def no_state() -> tuple[dict[str, str], datetime]:
    return {"status": "completed", "stage": "done"}, timezone.now()


def test_a_stream_never_sent_or_closed_mid_way_gives_its_slot_back() -> None:
    before = events.open_streams()
    never_sent = events.JobEventStream.open("job", no_state)
    assert never_sent is not None and events.open_streams() == before + 1
    del never_sent  # a response dropped before the server iterated or closed it
    gc.collect()
    assert events.open_streams() == before

    started = events.JobEventStream.open("job", no_state)
    assert started is not None
    body = iter(started)
    assert next(body).startswith(b"retry:")
    body.close()  # the server stopped iterating (the client left) without close()
    assert events.open_streams() == before
    started.close()  # and closing it too frees nothing twice
    assert events.open_streams() == before


def test_an_invalid_last_event_id_is_refused_before_any_work() -> None:
    for bad in BAD_IDS:
        with pytest.raises(ValueError, match="Last-Event-ID"):
            events.parse_last_event_id(bad)
    assert events.parse_last_event_id(None) == events.parse_last_event_id("") == 0
    assert events.parse_last_event_id("9" * 18) == 10**18 - 1
