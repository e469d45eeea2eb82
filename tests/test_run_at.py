"""run_at over real HTTP: a submit's job waits until then (status
"scheduled"), started by its countdown or, when further ahead, by the tick;
past and too-distant times are refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from celery import Celery
from django.conf import settings
from django.utils import timezone

from summaries.models import Job
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.fakes.receiver import FakeReceiver, verify
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver() as server:
        yield server


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def send_tick() -> None:
    """What beat sends every SCHEDULE_TICK_SECONDS, to the session's worker."""
    app = Celery("ticker", broker=settings.VALKEY_URL, set_as_current=False)
    try:
        app.send_task("summaries.integrations_tick", ignore_result=True)
    finally:
        app.close()


def test_run_at_delays_the_job(api: Api, gemini: FakeGemini) -> None:
    run_at = timezone.now() + timedelta(seconds=3)
    response = api.submit(unique_text("run at"), run_at=iso(run_at))
    assert response.status_code == 202, response.text
    assert (response.json()["status"], response.headers["X-Cache"]) == ("scheduled", "MISS")
    job_id = response.json()["job_id"]
    waiting = api.status(job_id).json()
    assert waiting["stage"] == "scheduled"
    assert abs((datetime.fromisoformat(waiting["run_at"]) - run_at).total_seconds()) < 0.001

    done = api.wait(job_id, timeout=30)
    assert done["status"] == "completed"
    started = Job.objects.get(id=job_id).started_at
    assert started is not None and started >= run_at
    assert gemini.calls == 1


def test_a_scheduled_job_is_neither_a_hit_nor_joined(api: Api) -> None:
    text = unique_text("run at, later")
    later = iso(timezone.now() + timedelta(hours=1))
    scheduled = api.submit(text, run_at=later).json()
    assert scheduled["status"] == "scheduled"
    now = api.submit(text)  # not made to wait an hour for the scheduled one
    assert (now.status_code, now.headers["X-Cache"]) == (202, "MISS")
    assert now.json()["job_id"] != scheduled["job_id"]
    assert api.wait(now.json()["job_id"])["status"] == "completed"
    again = api.submit(text, run_at=later).json()  # scheduled anew, although cached now
    assert again["status"] == "scheduled" and again["job_id"] != scheduled["job_id"]
    assert api.status(scheduled["job_id"]).json()["status"] == "scheduled"


def test_a_later_run_at_is_started_by_the_tick(api: Api) -> None:
    """Beyond RUN_AT_COUNTDOWN_MAX no countdown is sent (it would outlive the
    broker's visibility timeout): the job waits as a row until a tick finds
    it due."""
    beyond = timezone.now() + timedelta(seconds=settings.RUN_AT_COUNTDOWN_MAX + 600)
    assert settings.RUN_AT_COUNTDOWN_MAX < settings.VISIBILITY_TIMEOUT
    job_id = api.submit(unique_text("run at, far"), run_at=iso(beyond)).json()["job_id"]
    send_tick()  # not due: nothing happens
    assert api.status(job_id).json()["status"] == "scheduled"
    # Time passes.
    Job.objects.filter(id=job_id).update(run_at=timezone.now() - timedelta(seconds=1))
    send_tick()
    assert api.wait(job_id, timeout=30)["status"] == "completed"


def test_run_at_with_a_callback(api: Api, receiver: FakeReceiver) -> None:
    run_at = timezone.now() + timedelta(seconds=2)
    response = api.submit(unique_text("run at, callback"), run_at=iso(run_at),
                          callback_url=receiver.url("/later"))
    [got] = receiver.wait_for("/later", 1)
    assert verify(got.body, got.signature, settings.WEBHOOK_SECRET)
    assert got.json()["job_id"] == response.json()["job_id"]
    assert got.json()["status"] == "completed"
    assert got.json()["run_at"]


def test_one_clients_copies_of_an_input_do_not_starve_other_jobs(api: Api) -> None:
    """600 due copies of one input that cannot start (a job for it is
    active), all newer than another client's due job: the tick starts the
    other job at once (on e36bccf the newest 500 copies filled the tick's
    window, each failing its start, and the other job waited for ever)."""
    other = api.submit(unique_text("run at, someone else"),
                       run_at=iso(timezone.now() + timedelta(hours=1))).json()["job_id"]
    Job.objects.filter(id=other).update(run_at=timezone.now() - timedelta(seconds=5))
    hog = uuid.uuid4().hex
    Job.objects.create(kind=Job.Kind.TEXT, status=Job.Status.PROCESSING, input_hash=hog,
                       input_text="hog", lease_expires_at=timezone.now() + timedelta(hours=1))
    now = timezone.now()
    Job.objects.bulk_create(
        Job(kind=Job.Kind.TEXT, status=Job.Status.SCHEDULED, input_hash=hog, input_text="hog",
            refresh=True, run_at=now - timedelta(seconds=30), stage="scheduled",
            created_at=now + timedelta(milliseconds=i))
        for i in range(600))
    send_tick()
    assert api.wait(other, timeout=30)["status"] == "completed"
    copies = Job.objects.filter(input_hash=hog)
    assert copies.filter(status=Job.Status.SCHEDULED).count() == 600  # none could start


def test_a_tick_starts_one_copy_of_an_input_the_earliest_due(api: Api) -> None:
    """Oldest due first (on e36bccf: newest created first)."""
    text = unique_text("run at, copies")
    later = iso(timezone.now() + timedelta(hours=1))
    ids = [api.submit(text, run_at=later, refresh=True).json()["job_id"] for _ in range(3)]
    for age, job_id in zip((10, 30, 20), ids, strict=True):
        Job.objects.filter(id=job_id).update(run_at=timezone.now() - timedelta(seconds=age))
    send_tick()
    assert api.wait(ids[1], timeout=30)["status"] == "completed"
    # One start per input per tick: the other copies wait for later ticks.
    assert [api.status(i).json()["status"] for i in (ids[0], ids[2])] == ["scheduled"] * 2


@pytest.mark.usefixtures("no_enqueue")
@pytest.mark.parametrize("run_at", [
    lambda: iso(timezone.now() - timedelta(hours=1)),
    lambda: iso(timezone.now() + timedelta(days=31)),
    lambda: "tomorrow",
    lambda: 1767225600,
    lambda: "2026-13-01T00:00:00Z",
    lambda: "9999-12-31T23:59:59-12:00",
])
def test_past_or_far_or_malformed_run_at_is_refused(api: Api, run_at: Any) -> None:
    before = Job.objects.count()
    response = api.submit(unique_text("run at, refused"), run_at=run_at())
    assert response.status_code == 400, response.text
    assert response.json()["code"] in ("invalid_run_at", "invalid", "overflow")
    assert Job.objects.count() == before


@pytest.mark.usefixtures("no_enqueue")
def test_max_age_beside_run_at_is_refused_not_dropped(api: Api) -> None:
    """A scheduled job is not answered from the cache at submit, so max_age
    there would be silently ignored (on e36bccf the job later reused a
    cached summary of any age): a 400 says to send refresh instead, for a
    single submit and for a batch item alike."""
    before = Job.objects.count()
    when = iso(timezone.now() + timedelta(minutes=5))
    single = api.submit(unique_text("run at with max age"), run_at=when, max_age=60)
    assert single.status_code == 400, single.text
    assert single.json()["code"] == "invalid_run_at" and "refresh" in single.json()["error"]
    batch = api.http.post(f"{api.base_url}/api/submit/batch", timeout=10, json={"inputs": [
        {"input": unique_text("run at with max age, batch"), "run_at": when, "max_age": 0}]})
    assert batch.json()["results"][0]["code"] == "invalid_run_at", batch.text
    assert Job.objects.count() == before
    refreshed = api.submit(unique_text("run at with refresh"), run_at=when, refresh=True)
    assert refreshed.status_code == 202 and refreshed.json()["status"] == "scheduled"
