"""A job is shared by everyone who submitted its input, so no body anyone
can read shows one client's callback URL (its token) or a delivery log:
not the status, the SSE stream, a submit or batch answer, the jobs list,
the browsable page, nor another client's webhook. Operators read a job's
deliveries at /api/jobs/<id>/callbacks, a page at a time. Over real HTTP
(the live server, a real worker, the loopback receiver)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from summaries.models import Job, Watch, WebhookDelivery
from tests.helpers.api import Api
from tests.helpers.fakes.receiver import FakeReceiver
from tests.helpers.sse import read_events
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "tok-" + uuid.uuid4().hex
OPERATOR = {"Authorization": "Bearer op-token"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver() as server:
        yield server


def assert_no_secret(where: str, body: str) -> None:
    assert SECRET not in body and "/edge-a" not in body, where
    assert '"callbacks"' not in body and "&quot;callbacks&quot;" not in body, where


def test_nobody_reads_another_clients_callback_url(api: Api, receiver: FakeReceiver) -> None:
    text = unique_text("edge hooks")
    a = api.submit(text, callback_url=receiver.url(f"/edge-a?token={SECRET}"))
    job_id = a.json()["job_id"]
    api.wait(job_id)
    [to_a] = receiver.wait_for("/edge-a", 1)
    assert to_a.json()["job_id"] == job_id

    # B asks for the same input: the same job (a hit), with a callback of its own.
    b = api.submit(text, callback_url=receiver.url("/edge-b"))
    assert b.headers["X-Cache"] == "HIT" and b.json()["job_id"] == job_id
    [to_b] = receiver.wait_for("/edge-b", 1)
    base = api.base_url
    reads = {
        "submit": b.text,
        "webhook to B": to_b.body.decode(),
        "status": api.status(job_id).text,
        "events": str(read_events(f"{base}/api/jobs/{job_id}/events", timeout=10).events),
        "batch": api.http.post(f"{base}/api/submit/batch", json={"inputs": [text]},
                               timeout=10).text,
        "browsable": api.http.get(f"{base}/api/status/{job_id}", timeout=10,
                                  headers={"Accept": "text/html"}).text,
        "jobs list": api.http.get(f"{base}/api/jobs", timeout=10).text,
    }
    for where, body in reads.items():
        assert job_id in body, where
        assert_no_secret(where, body)

    # Anonymous, no token configured (make run's default): still refused.
    unset = api.http.get(f"{base}/api/jobs/{job_id}/callbacks", timeout=10)
    assert unset.status_code == 403 and SECRET not in unset.text
    with override_settings(JOBS_API_TOKEN="op-token"):
        deliveries = api.http.get(f"{base}/api/jobs/{job_id}/callbacks", timeout=10,
                                  headers=OPERATOR).json()
    assert deliveries["count"] == 2
    assert [d["url"] for d in deliveries["results"]] == [
        receiver.url(f"/edge-a?token={SECRET}"), receiver.url("/edge-b")]
    with override_settings(JOBS_API_TOKEN="op-token"):  # the live server is this process
        anonymous = api.http.get(f"{base}/api/jobs/{job_id}/callbacks", timeout=10)
        operator = api.http.get(f"{base}/api/jobs/{job_id}/callbacks", timeout=10,
                                headers=OPERATOR)
    assert anonymous.status_code == 403 and SECRET not in anonymous.text
    assert operator.status_code == 200 and SECRET in operator.text


def test_a_job_with_many_deliveries_keeps_a_small_status(api: Api) -> None:
    text = unique_text("edge many hooks")
    job_id = api.submit(text).json()["job_id"]
    api.wait(job_id)
    job = Job.objects.get(id=job_id)
    Job.objects.filter(id=job_id).update(has_callbacks=True)
    watch = Watch.objects.create(url="https://news.example/", every_seconds=3600,
                                 callback_url=f"https://ops.example/hook?key={SECRET}",
                                 next_run_at=timezone.now() + timedelta(hours=1))
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(job=job, url=f"https://c{n}.example/hook?token={SECRET}",
                         status=WebhookDelivery.Status.DELIVERED) for n in range(299)]
        + [WebhookDelivery(job=job, watch=watch, url=watch.callback_url)])
    status = api.status(job_id)
    print(f"status body of a job with 300 deliveries: {len(status.content)} bytes")
    assert len(status.content) < 2000, len(status.content)
    assert_no_secret("status", status.text)
    assert_no_secret("hit", api.submit(text).text)

    def page(**query: Any) -> dict[str, Any]:
        with override_settings(JOBS_API_TOKEN="op-token"):
            answer = api.http.get(f"{api.base_url}/api/jobs/{job_id}/callbacks", params=query,
                                  timeout=10, headers=OPERATOR)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    first = page()
    assert first["count"] == 300 and len(first["results"]) == 50 and first["next"]
    assert len(page(page_size=100_000)["results"]) == 200  # capped
    assert page(page=6)["results"][-1]["watch_id"] == str(watch.id)


@pytest.mark.parametrize("query", ["page=²", "page=" + "9" * 5000, "page_size=²",
                                   "page_size=" + "9" * 5000, "page=0"])
def test_odd_page_numbers_are_no_500(api: Api, query: str) -> None:
    job_id = api.submit(unique_text("edge pages")).json()["job_id"]
    for path in (f"/api/jobs/{job_id}/callbacks", "/api/jobs", "/api/watches"):
        with override_settings(JOBS_API_TOKEN="op-token"):
            answer = api.http.get(f"{api.base_url}{path}?{query}", timeout=10,
                                  headers=OPERATOR)
        assert answer.status_code in (200, 400, 404), (path, query, answer.status_code)
        assert answer.headers["Content-Type"].startswith("application/json")


def test_odd_numbers_in_other_queries_are_a_400(api: Api) -> None:
    for path, name in (("/api/analytics/timeline", "minutes"), ("/api/insights", "hours")):
        for value in ("²", "9" * 5000, "-1", "1e3"):
            answer = api.http.get(f"{api.base_url}{path}", params={name: value}, timeout=10)
            assert answer.status_code == 400, (path, value[:8], answer.status_code)
            assert answer.json()["code"], (path, value[:8])
