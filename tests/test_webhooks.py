"""Webhooks over real HTTP: a submit's callback_url gets the finished job's
status body, signed, from a real worker process, for a miss, a hit and a
failure; failed deliveries are retried; a refusal is final; callback URLs
go through the fetcher's address policy (a canary on 127.0.0.1 sees nothing).
The receiver (tests/helpers/fakes/receiver.py) listens on 127.0.0.2, the one
network the test settings let the service reach."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from celery import Celery
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone

from summaries.models import Job, WebhookDelivery
from summaries.services import webhook_sending, webhooks
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.fakes.receiver import FakeReceiver, Received, verify, verify_standard
from tests.helpers.fakes.web import Canary
from tests.helpers.polling import wait_for
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver() as server:
        yield server


def callbacks_of(api: Api, job_id: str) -> list[dict[str, Any]]:
    """The job's deliveries, as operators read them (the token is always
    needed there; the live server is this process, so it is set here)."""
    with override_settings(JOBS_API_TOKEN="op-token"):
        answer = api.http.get(f"{api.base_url}/api/jobs/{job_id}/callbacks", timeout=10,
                              headers={"Authorization": "Bearer op-token"})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["results"])


def delivery_of(api: Api, job_id: str, timeout: float = 30) -> dict[str, Any]:
    """The job's one delivery, once it is delivered or failed for good."""
    def settled() -> dict[str, Any] | None:
        callbacks = callbacks_of(api, job_id)
        done = [c for c in callbacks if c["status"] in ("delivered", "failed")]
        return done[0] if done else None
    wait_for(settled, timeout, f"the delivery of job {job_id} to settle")
    found = settled()
    assert found is not None
    return found


def test_a_miss_calls_back_with_the_signed_status_body(api: Api, receiver: FakeReceiver) -> None:
    # The callback's query is the receiver's: kept whole, tracking-like names too.
    callback = receiver.url("/miss?token=abc&utm_source=x")
    response = api.submit(unique_text("webhook miss"), callback_url=callback)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]

    [got] = receiver.wait_for("/miss", 1)
    assert verify(got.body, got.signature, settings.WEBHOOK_SECRET)
    body = got.json()
    status = api.wait(job_id)
    assert body["job_id"] == job_id and body["status"] == "completed"
    assert body["summary"] == status["summary"] and body["tags"] == status["tags"]
    assert "callbacks" not in body
    assert got.headers["X-SmartCache-Event"] == "job.completed"
    assert got.headers["Content-Type"] == "application/json"

    delivery = delivery_of(api, job_id)
    assert delivery["delivery_id"] == got.delivery_id
    assert delivery["url"] == callback and got.target == "/miss?token=abc&utm_source=x"
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "delivered", 1, 200)
    assert delivery["delivered_at"]


def receiver_secrets(url: str) -> list[str]:
    """What the operator hands the receiver of ``url``: ``manage.py webhook_secret``."""
    out = io.StringIO()
    call_command("webhook_secret", url, stdout=out)
    return out.getvalue().split()


def test_deliveries_verify_as_standard_webhooks_at_their_receiver_only(
        api: Api, receiver: FakeReceiver) -> None:
    """Standard Webhooks' own library verifies a delivery with the secret of
    its receiver; the delivery id is signed (a captured delivery replayed
    under a new webhook-id fails), and so, through the secret, is the
    receiver (replayed at another origin, it fails). The old headers still
    come, for one release."""
    response = api.submit(unique_text("webhook standard"), callback_url=receiver.url("/std"))
    [got] = receiver.wait_for("/std", 1)
    [secret] = receiver_secrets(receiver.url("/std"))
    assert secret.startswith("whsec_") and secret not in got.headers.values()
    assert verify_standard(got, secret)
    assert got.webhook_id == got.delivery_id == delivery_of(
        api, response.json()["job_id"])["delivery_id"]
    assert got.headers["webhook-signature"].startswith("v1,")

    replayed = {**got.headers, "webhook-id": str(uuid.uuid4())}
    assert not verify_standard(got, secret, headers=replayed)
    tampered = Received(got.path, got.target, got.headers, got.body.replace(b"}", b" }", 1))
    assert not verify_standard(tampered, secret)
    with FakeReceiver() as other:  # another origin: 127.0.0.2, another port
        [other_secret] = receiver_secrets(other.url("/std"))
        assert other_secret != secret
        assert not verify_standard(got, other_secret)
    assert receiver_secrets(receiver.url("/elsewhere?x=1")) == [secret]  # one per origin
    assert verify(got.body, got.signature, settings.WEBHOOK_SECRET)  # the old header


def test_a_rotated_secret_signs_with_the_old_one_too(settings: Any) -> None:
    """While WEBHOOK_PREVIOUS_SECRETS holds the retiring secret, each attempt
    carries a signature for each: receivers on either verify; none other does."""
    old, new = "whsec_" + "b2xkLXNlY3JldC1vZi0zMi1ieXRlcy0tLS0tLS0tLQ==", "a-plain-new-secret"
    settings.WEBHOOK_SECRET, settings.WEBHOOK_PREVIOUS_SECRETS = new, (old,)
    url, body, delivery_id = "https://hooks.example.com/sc", b'{"job_id": "x"}', str(uuid.uuid4())
    headers = webhook_sending.signed_headers(body, delivery_id=delivery_id, url=url,
                                      timestamp=int(timezone.now().timestamp()))
    received = Received("/sc", "/sc", headers, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        assert verify_standard(received, webhook_sending.endpoint_secret(url, secret=secret))
    assert not verify_standard(received, webhook_sending.endpoint_secret(url, secret="another"))
    assert verify(body, headers["X-SmartCache-Signature"], new)  # the old header: current only


def test_a_tampered_or_replayed_callback_fails_verification(api: Api,
                                                            receiver: FakeReceiver) -> None:
    response = api.submit(unique_text("webhook tamper"), callback_url=receiver.url("/tamper"))
    [got] = receiver.wait_for("/tamper", 1)
    secret = settings.WEBHOOK_SECRET
    assert verify(got.body, got.signature, secret)
    tampered = got.body.replace(b'"completed"', b'"failed"')
    assert tampered != got.body
    assert not verify(tampered, got.signature, secret)
    assert not verify(got.body, got.signature, secret + "x")
    timestamp = int(got.signature.split(",")[0].removeprefix("t="))
    assert not verify(got.body, got.signature, secret, now=timestamp + 3600)  # a replay
    assert response.json()["job_id"] == got.json()["job_id"]


def test_a_cache_hit_still_calls_back(api: Api, receiver: FakeReceiver, gemini: FakeGemini) -> None:
    text = unique_text("webhook hit")
    first = api.submit(text)
    api.wait(first.json()["job_id"])
    calls = gemini.calls

    hit = api.submit(text, callback_url=receiver.url("/hit"))
    assert (hit.status_code, hit.headers["X-Cache"]) == (200, "HIT")
    [got] = receiver.wait_for("/hit", 1)
    assert verify(got.body, got.signature, settings.WEBHOOK_SECRET)
    assert got.json()["job_id"] == first.json()["job_id"] == hit.json()["job_id"]
    assert got.json()["summary"] == hit.json()["summary"]
    assert gemini.calls == calls  # the hit cost no AI call
    assert delivery_of(api, hit.json()["job_id"])["status"] == "delivered"


def test_a_failed_job_calls_back_too(api: Api, receiver: FakeReceiver, gemini: FakeGemini) -> None:
    gemini.mode = "rejected"  # permanent: the job fails at once
    response = api.submit(unique_text("webhook failure"), callback_url=receiver.url("/failed"))
    [got] = receiver.wait_for("/failed", 1)
    assert got.headers["X-SmartCache-Event"] == "job.failed"
    assert got.json()["status"] == "failed" and got.json()["code"]
    assert got.json()["job_id"] == response.json()["job_id"]


def test_failed_deliveries_are_retried_then_succeed(api: Api, receiver: FakeReceiver) -> None:
    receiver.script("/flaky", [500, 429])
    response = api.submit(unique_text("webhook retry"), callback_url=receiver.url("/flaky"))
    job_id = response.json()["job_id"]
    attempts = receiver.wait_for("/flaky", 3)
    # One delivery (the same idempotency id), the same bytes, each signed.
    assert len({a.delivery_id for a in attempts}) == 1
    assert len({a.body for a in attempts}) == 1
    assert all(verify(a.body, a.signature, settings.WEBHOOK_SECRET) for a in attempts)
    assert [a.headers["X-SmartCache-Attempt"] for a in attempts] == ["1", "2", "3"]
    delivery = delivery_of(api, job_id)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "delivered", 3, 200)


@pytest.mark.parametrize("answer", [404, 302, 503])
def test_a_refusal_is_final_and_retries_are_bounded(api: Api, receiver: FakeReceiver,
                                                    answer: int) -> None:
    """A 4xx (but 408/429) or a 3xx is final at once, and a redirect is never
    followed; a 5xx is retried, WEBHOOK_MAX_ATTEMPTS attempts in all (the
    worker's setting is the default, as here)."""
    tries = settings.WEBHOOK_MAX_ATTEMPTS if answer >= 500 else 1
    path = f"/refuse-{answer}"
    receiver.script(path, [answer] * (tries + 5))
    response = api.submit(unique_text(f"webhook refusal {answer}"),
                          callback_url=receiver.url(path))
    delivery = delivery_of(api, response.json()["job_id"])
    assert (delivery["status"], delivery["attempts"]) == ("failed", tries)
    assert delivery["last_status_code"] == answer
    assert delivery["last_error"] == f"receiver answered HTTP {answer}"
    assert len(receiver.received(path)) == tries
    assert receiver.received("/moved") == []


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{port}/hook",
    "http://localhost:{port}/hook",
    "http://2130706433:{port}/hook",
    "http://0x7f.1:{port}/hook",
    "http://[::ffff:127.0.0.1]:{port}/hook",
    "http://[::1]:{port}/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://user:secret@127.0.0.2:{port}/hook",
    "ftp://127.0.0.2:{port}/hook",
    "not a url",
])
def test_ssrf_callback_urls_are_refused(api: Api, canary: Canary, target: str) -> None:
    url = target.format(port=canary.port)
    before = Job.objects.count()
    response = api.submit(unique_text("webhook ssrf"), callback_url=url)
    assert response.status_code == 400, response.text
    assert response.json()["code"] in ("blocked_callback_url", "invalid_callback_url")
    assert Job.objects.count() == before  # refused before anything was made
    batch = api.http.post(f"{api.base_url}/api/submit/batch", timeout=15, json={"inputs": [
        {"input": unique_text("webhook ssrf batch"), "callback_url": url}]})
    assert batch.json()["results"][0]["http_status"] == 400
    assert canary.connections == 0


def test_the_address_is_checked_again_at_delivery(api: Api, canary: Canary,
                                                 receiver: FakeReceiver) -> None:
    """A delivery whose URL the policy refuses by then (a name that now
    resolves inside, a policy tightened since) fails for good, unsent."""
    response = api.submit(unique_text("webhook recheck"), callback_url=receiver.url("/recheck"))
    job_id = response.json()["job_id"]
    api.wait(job_id)
    receiver.wait_for("/recheck", 1)
    job = Job.objects.get(id=job_id)
    due = timezone.now()
    sneaky = WebhookDelivery.objects.create(
        job=job, url=f"http://127.0.0.1:{canary.port}/hook",
        status=WebhookDelivery.Status.PENDING, next_attempt_at=due)
    webhooks.send(str(sneaky.id), due=due)
    wait_for(lambda: WebhookDelivery.objects.get(id=sneaky.id).status == "failed", 20,
             "the refused delivery to fail")
    refused = WebhookDelivery.objects.get(id=sneaky.id)
    assert "blocked" in refused.last_error and refused.last_status_code is None
    assert canary.connections == 0


def test_the_tick_sends_what_was_missed_or_lost(api: Api, receiver: FakeReceiver) -> None:
    """At least once: a delivery still waiting for a job that finished (its
    worker never saw the flag), and a pending one whose message was lost,
    are both sent by beat's tick."""
    job_id = api.submit(unique_text("webhook sweep")).json()["job_id"]
    api.wait(job_id)
    job = Job.objects.get(id=job_id)
    Job.objects.filter(id=job_id).update(has_callbacks=True)
    missed = WebhookDelivery.objects.create(job=job, url=receiver.url("/missed"))
    lost = WebhookDelivery.objects.create(
        job=job, url=receiver.url("/lost"), status=WebhookDelivery.Status.PENDING,
        next_attempt_at=timezone.now() - timedelta(minutes=5))
    app = Celery("ticker", broker=settings.VALKEY_URL, set_as_current=False)
    try:
        app.send_task("summaries.integrations_tick", ignore_result=True)  # as beat does
    finally:
        app.close()
    [a] = receiver.wait_for("/missed", 1)
    [b] = receiver.wait_for("/lost", 1)
    assert (a.delivery_id, b.delivery_id) == (str(missed.id), str(lost.id))
    assert {c["status"] for c in delivery_list(api, job_id)} == {"delivered"}


def test_messages_sent_before_the_upgrade_still_deliver(api: Api, receiver: FakeReceiver) -> None:
    """deliver_webhook(delivery_id), as messages were before they carried
    the next_attempt_at they were sent for: still one attempt, signed."""
    job_id = api.submit(unique_text("webhook old message")).json()["job_id"]
    api.wait(job_id)
    old = WebhookDelivery.objects.create(
        job=Job.objects.get(id=job_id), url=receiver.url("/old"),
        status=WebhookDelivery.Status.PENDING, next_attempt_at=timezone.now())
    app = Celery("old", broker=settings.VALKEY_URL, set_as_current=False)
    try:
        app.send_task("summaries.deliver_webhook", args=[str(old.id)], queue="webhooks",
                      ignore_result=True)
    finally:
        app.close()
    [got] = receiver.wait_for("/old", 1)
    assert got.webhook_id == str(old.id)
    assert verify_standard(got, receiver_secrets(receiver.url("/old"))[0])


def delivery_list(api: Api, job_id: str) -> list[dict[str, Any]]:
    wait_for(lambda: all(c["status"] == "delivered"
                         for c in callbacks_of(api, job_id)), 20, "deliveries")
    return callbacks_of(api, job_id)


def test_bulk_items_take_a_callback_url(api: Api, receiver: FakeReceiver) -> None:
    response = api.http.post(f"{api.base_url}/api/submit/batch", timeout=15, json={"inputs": [
        {"input": unique_text("webhook bulk"), "callback_url": receiver.url("/bulk")},
        unique_text("webhook bulk, no callback")]})
    assert response.status_code == 202, response.text
    first, second = response.json()["results"]
    [got] = receiver.wait_for("/bulk", 1)
    assert got.json()["job_id"] == first["job_id"]
    assert callbacks_of(api, second["job_id"]) == []


def test_joined_submits_each_get_their_delivery(api: Api, receiver: FakeReceiver,
                                               gemini: FakeGemini) -> None:
    gemini.delay_s = 1.0
    text = unique_text("webhook join")
    first = api.submit(text, callback_url=receiver.url("/join-a"))
    second = api.submit(text, callback_url=receiver.url("/join-b"))
    assert second.headers["X-Cache"] == "JOINED"
    [a] = receiver.wait_for("/join-a", 1)
    [b] = receiver.wait_for("/join-b", 1)
    assert a.json()["job_id"] == b.json()["job_id"] == first.json()["job_id"]
    assert a.delivery_id != b.delivery_id
    api.wait(first.json()["job_id"])
    assert len(callbacks_of(api, first.json()["job_id"])) == 2


def test_the_admin_shows_a_jobs_deliveries(api: Api, receiver: FakeReceiver) -> None:
    response = api.submit(unique_text("webhook admin"), callback_url=receiver.url("/admin"))
    job_id = response.json()["job_id"]
    [got] = receiver.wait_for("/admin", 1)
    delivery_of(api, job_id)
    staff = User.objects.create_user("hookadmin", password="pw-12345678", is_staff=True,
                                     is_superuser=True)
    client = Client()
    client.force_login(staff)
    page = client.get(f"/admin/summaries/job/{job_id}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert got.delivery_id in html and receiver.url("/admin") in html


def test_the_schema_documents_callbacks_and_run_at(live_server: Any) -> None:
    schema = requests.get(f"{live_server.url}/api/schema/?format=json", timeout=10).json()
    submit = schema["components"]["schemas"]["SubmitRequest"]["properties"]
    assert {"callback_url", "run_at"} <= submit.keys()
    job = schema["components"]["schemas"]["JobResponse"]["properties"]
    assert "callbacks" not in job and "run_at" in job  # deliveries are the operators'
    assert "/api/jobs/{job_id}/callbacks" in schema["paths"]
    assert "/api/watches" in schema["paths"] and "/api/watches/{watch_id}" in schema["paths"]
    callback = schema["paths"]["/api/submit"]["post"]["callbacks"]["jobFinished"]
    hook = callback["{$request.body#/callback_url}"]["post"]
    assert "X-SmartCache-Signature" in hook["description"]
    assert hook["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/JobWebhookBody")
    assert "callbacks" not in schema["components"]["schemas"]["JobWebhookBody"]["properties"]
