"""The message broker.publish (summaries/bypasses/broker.py) writes is the
one Celery's apply_async writes: a Celery or kombu upgrade that changes it
fails here. (That a real worker runs it, every test that submits through the
API shows: each job is published this way.)"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis

from summaries.bypasses import broker
from summaries.infra import dispatch
from summaries.tasks import process_job


def _shape(raw: str | bytes, task_id: str) -> dict[str, Any]:
    """A message with its task id replaced by "<id>" and its body decoded;
    the delivery tag (a fresh uuid per message) left out."""
    message = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    del message["properties"]["delivery_tag"]
    return dict(json.loads(json.dumps(message).replace(task_id, "<id>")))


def _in_a_thread(send: Callable[[], object]) -> None:
    """Run ``send`` in a thread of its own, as a web server's or a worker's
    threads do (Celery's ``current_app`` is per thread: not ours there)."""
    thread = threading.Thread(target=send)
    thread.start()
    thread.join(timeout=30)


def test_publish_writes_what_apply_async_writes(valkey: redis.Redis) -> None:
    queue = f"test-publish-{uuid.uuid4().hex}"  # no worker consumes it
    ours, celerys = str(uuid.uuid4()), str(uuid.uuid4())

    def both() -> None:
        broker.publish(process_job.name, ours, (ours,), queue=queue)
        process_job.apply_async(args=(celerys,), task_id=celerys, queue=queue)

    try:
        _in_a_thread(both)
        newest, oldest = valkey.lrange(queue, 0, -1)  # LPUSH: the newest first
    finally:
        valkey.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    assert _shape(oldest, ours) == _shape(newest, celerys)
    assert broker.task_ids([queue]) == set()  # deleted: nothing left behind


def test_a_task_sent_by_name_from_any_thread_reaches_this_broker(valkey: redis.Redis) -> None:
    queue = f"test-send-{uuid.uuid4().hex}"  # no worker consumes it
    watch_id = str(uuid.uuid4())
    try:
        _in_a_thread(lambda: dispatch.send(dispatch.CHECK_WATCH, watch_id, queue=queue))
        [raw] = valkey.lrange(queue, 0, -1)
    finally:
        valkey.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    message = json.loads(raw)
    assert message["headers"]["task"] == "summaries.check_watch"
    assert json.loads(base64.b64decode(message["body"]))[0] == [watch_id]


def _ids_in(valkey: redis.Redis, queue: str) -> list[str]:
    """Task ids in ``queue``, the one a worker takes first (the tail) first."""
    return [_shape_id(raw) for raw in reversed(valkey.lrange(queue, 0, -1))]


def _shape_id(raw: str | bytes) -> str:
    return str(json.loads(raw)["headers"]["id"])


def test_held_messages_are_sent_together_once_the_block_ends(valkey: redis.Redis) -> None:
    queue, other = (f"test-held-{uuid.uuid4().hex}" for _ in range(2))
    ids = [str(uuid.uuid4()) for _ in range(4)]
    try:
        with broker.held():
            for task_id in ids[:3]:
                broker.publish(process_job.name, task_id, (task_id,), queue=queue)
            with broker.held():  # an inner block adds to the outer one
                broker.publish(process_job.name, ids[3], (ids[3],), queue=other)
            assert valkey.llen(queue) == valkey.llen(other) == 0  # nothing sent yet
        assert _ids_in(valkey, queue) == ids[:3]  # taken in publishing order
        assert _ids_in(valkey, other) == ids[3:]
        broker.publish(process_job.name, ids[0], (ids[0],), queue=queue)  # not held any more
        assert valkey.llen(queue) == 4
    finally:
        valkey.delete(queue, other)


def _publish_then_fail(queue: str, task_id: str) -> None:
    with broker.held():
        broker.publish(process_job.name, task_id, (task_id,), queue=queue)
        raise RuntimeError("the request failed after this job was created")


def test_held_messages_are_sent_even_if_the_block_raises(valkey: redis.Redis) -> None:
    queue = f"test-held-{uuid.uuid4().hex}"
    task_id = str(uuid.uuid4())
    try:
        with pytest.raises(RuntimeError, match="after this job"):
            _publish_then_fail(queue, task_id)
        assert _ids_in(valkey, queue) == [task_id]
    finally:
        valkey.delete(queue)


def test_a_held_send_that_fails_is_logged_not_raised(
        settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.VALKEY_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    task_id = str(uuid.uuid4())
    with caplog.at_level(logging.ERROR, logger="summaries.bypasses.broker"), broker.held():
        broker.publish(process_job.name, task_id, (task_id,), queue="test-held-down")
    # The job stays pending; the reconciler re-enqueues it (test_faults).
    assert any(task_id in r.getMessage() and "reconciler" in r.getMessage()
               for r in caplog.records)
