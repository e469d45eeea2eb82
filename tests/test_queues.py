"""The message queues.publish writes is the one Celery's apply_async writes:
a Celery or kombu upgrade that changes it fails here. (That a real worker
runs it, every test that submits through the API shows: each job is
published this way.)"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import redis

from summaries import queues
from summaries.tasks import process_job


def _shape(raw: str | bytes, task_id: str) -> dict[str, Any]:
    """A message with its task id replaced by "<id>" and its body decoded;
    the delivery tag (a fresh uuid per message) left out."""
    message = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    del message["properties"]["delivery_tag"]
    return dict(json.loads(json.dumps(message).replace(task_id, "<id>")))


def test_publish_writes_what_apply_async_writes(valkey: redis.Redis) -> None:
    queue = f"test-publish-{uuid.uuid4().hex}"  # no worker consumes it
    ours, celerys = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        queues.publish(process_job, ours, (ours,), queue=queue)
        process_job.apply_async(args=(celerys,), task_id=celerys, queue=queue)
        newest, oldest = valkey.lrange(queue, 0, -1)  # LPUSH: the newest first
    finally:
        valkey.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    assert _shape(oldest, ours) == _shape(newest, celerys)
    assert queues.task_ids([queue]) == set()  # deleted: nothing left behind
