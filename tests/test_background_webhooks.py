"""Webhooks under load, counted in the broker: a slow receiver keeps one
message per delivery however many ticks pass (issue 18, D1), and joins of
a processing job start one poller, not one each (D10). Real worker
processes, the loopback receiver (tests/helpers/fakes/receiver.py), the
fake web site; what is counted is the messages in Valkey, not time."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from django.utils import timezone

from summaries.infra.queues import UNACKED, queue_lists
from summaries.models import Job, WebhookDelivery
from tests.helpers.api import Api
from tests.helpers.fakes.receiver import FakeReceiver
from tests.helpers.fakes.web import FakeWeb
from tests.helpers.pages import NEWS, page_html
from tests.helpers.polling import wait_for
from tests.helpers.stack import stack_of
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db(transaction=True)

DELIVER, AWAIT = "summaries.deliver_webhook", "summaries.await_job_callbacks"


@pytest.fixture(scope="module")
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver() as server:
        yield server


def broker_messages(client: redis.Redis, queues: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every message in the broker: waiting in ``queues``, or taken by a
    worker and not acknowledged (running, or waiting for its countdown)."""
    raw = [m for queue in queues for name in queue_lists(queue) for m in client.lrange(name, 0, -1)]
    return ([json.loads(m) for m in raw]
            + [json.loads(entry)[0] for entry in client.hvals(UNACKED)])


def message_ids(client: redis.Redis, queues: tuple[str, ...]) -> set[str]:
    return {m["headers"]["id"] for m in broker_messages(client, queues)}


def messages(client: redis.Redis, task: str, queues: tuple[str, ...] = ("webhooks",)
             ) -> list[list[Any]]:
    """The args of every message of ``task`` in the broker."""
    return [json.loads(base64.b64decode(m["body"]))[0] for m in broker_messages(client, queues)
            if m["headers"]["task"] == task]


def fewest(count: Callable[[], int], samples: int = 5) -> int:
    """The smallest of a few readings: a retry's next message is published a
    moment before its current one is acknowledged."""
    return min(count() for _ in range(samples))


def finished_job() -> Job:
    return Job.objects.create(kind=Job.Kind.TEXT, status=Job.Status.COMPLETED, stage="done",
                              input_hash=uuid.uuid4().hex, input_text=unique_text("hook"),
                              summary="A summary.", tags=["a", "b"], completed_at=timezone.now())


def tick(broker: redis.Redis, url: str) -> None:
    """Send the tick as beat does, and wait until a worker has run it."""
    ticker = Celery("ticker", broker=url, set_as_current=False)
    try:
        task_id = ticker.send_task("summaries.integrations_tick", ignore_result=True).id
    finally:
        ticker.close()
    wait_for(lambda: task_id not in message_ids(broker, ("celery",)), 30, "the tick to run")


def test_a_slow_receiver_keeps_one_message_per_delivery(
        tmp_path: Path, worker_env: dict[str, str], receiver: FakeReceiver) -> None:
    """12 overdue deliveries to a receiver that accepts and never answers,
    a worker with 4 delivery threads (2 for one receiver), 6 ticks: the 10
    that step aside keep one message each (on e36bccf every tick added one
    per delivery: 62)."""
    receiver.hold("/slow")
    deliveries = 12
    with stack_of(tmp_path, worker_env, WEBHOOK_CONCURRENCY="4", WEBHOOK_TIMEOUT="60") as stack:
        stack.worker("hooks")
        job = finished_job()
        ids = {str(WebhookDelivery.objects.create(
            job=job, url=receiver.url("/slow"), status=WebhookDelivery.Status.PENDING,
            next_attempt_at=timezone.now() - timedelta(minutes=5)).id)
            for _ in range(deliveries)}
        broker = stack.client()
        for _ in range(6):
            tick(broker, stack.url)
        held = receiver.wait_for("/slow", 2)
        assert {r.delivery_id for r in held} <= ids

        per_delivery = Counter(args[0] for args in messages(broker, DELIVER))
        assert set(per_delivery) <= ids
        assert fewest(lambda: len(messages(broker, DELIVER))) <= deliveries
        # The two being sent hang; the others wait, none is sent twice at once.
        assert len(receiver.received("/slow")) == 2
        sending = WebhookDelivery.objects.filter(id__in=ids, status="sending")
        assert sending.count() == 2
    receiver.release_holds()


def test_a_slow_receiver_leaves_delivery_threads_to_the_others(
        tmp_path: Path, worker_env: dict[str, str], receiver: FakeReceiver) -> None:
    """A receiver that never answers takes at most half of a worker's
    delivery threads: another receiver's delivery goes out meanwhile (on
    e36bccf it waited behind the slow one's for WEBHOOK_TIMEOUT)."""
    receiver.hold("/stuck")
    with (stack_of(tmp_path, worker_env, WEBHOOK_CONCURRENCY="2", WEBHOOK_TIMEOUT="60") as stack,
          FakeReceiver() as other):
        stack.worker("hooks")
        job, broker = finished_job(), stack.client()
        overdue = timezone.now() - timedelta(minutes=5)
        for _ in range(3):
            WebhookDelivery.objects.create(job=job, url=receiver.url("/stuck"),
                                           status=WebhookDelivery.Status.PENDING,
                                           next_attempt_at=overdue)
        tick(broker, stack.url)
        receiver.wait_for("/stuck", 1)
        WebhookDelivery.objects.create(job=job, url=other.url("/prompt"),
                                       status=WebhookDelivery.Status.PENDING,
                                       next_attempt_at=overdue)
        tick(broker, stack.url)
        [got] = other.wait_for("/prompt", 1)
        assert got.json()["job_id"] == str(job.id)
        assert len(receiver.received("/stuck")) == 1  # one thread of two for it
    receiver.release_holds()


class HeldPage:
    """A page that answers only once released (its job stays processing)."""

    def __init__(self, site: FakeWeb, path: str) -> None:
        self.released = threading.Event()
        self.path = path
        site.add_route(path, self._serve)

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        self.released.wait(10)
        body = page_html(NEWS).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def test_joins_of_a_processing_job_start_one_poller(api: Api, receiver: FakeReceiver,
                                                    valkey: redis.Redis) -> None:
    """40 joins with a callback URL while the job fetches its page: one
    await_job_callbacks chain (on e36bccf: 40, each up to 120 looks), and
    every join still gets its delivery."""
    with FakeWeb() as site:
        page = HeldPage(site, "/held")
        url = site.url(page.path) + f"?n={uuid.uuid4().hex}"
        job_id = api.submit(url).json()["job_id"]
        wait_for(lambda: api.status(job_id).json()["status"] == "processing", 20,
                 "the job to fetch its page")
        joins = 40
        for _ in range(joins):
            joined = api.submit(url, callback_url=receiver.url("/joined"))
            assert (joined.headers["X-Cache"], joined.json()["job_id"]) == ("JOINED", job_id)
        try:
            pollers = fewest(lambda: len(messages(valkey, AWAIT)))
            assert pollers <= 1, f"{pollers} pollers for one job"
        finally:
            page.released.set()
        got = receiver.wait_for("/joined", joins)
    assert len({r.delivery_id for r in got}) == joins
    assert {r.json()["job_id"] for r in got} == {job_id}
    assert api.wait(job_id)["status"] == "completed"
