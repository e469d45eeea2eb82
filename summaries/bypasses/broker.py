"""Two bypasses of Celery's and kombu's public API, both measured, both guarded.

- ``publish`` writes a job's task message by hand (Celery's message protocol 2
  in kombu's Redis envelope) in one LPUSH, instead of ``apply_async``: about a
  tenth of its CPU (bench/throughput.py). Guard: tests/test_queues.py compares
  the message with the one apply_async writes, field for field.
- ``task_ids`` reads kombu's lists and its ``unacked`` hash directly, which no
  public API exposes: the reconciler (services/jobs.py) tells a lost job from
  one whose message is waiting or running. Guards: tests/test_queues.py,
  tests/test_faults.py (the reconciler against real workers).

The broker is the main Valkey (``cache.client()``: CELERY_BROKER_URL is
VALKEY_URL). A Celery or kombu major upgrade must pass those tests first
(pyproject pins both to their major versions).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from celery import current_app
from celery.utils.nodenames import anon_nodename

from summaries.infra import cache
from summaries.infra.queues import UNACKED, queue_lists

_CHUNK = 1000

logger = logging.getLogger(__name__)


def task_ids(queues: Iterable[str], *, limit: int = 200_000) -> set[str] | None:
    """Task ids of every message waiting in ``queues`` or unacknowledged.

    None if there are more than ``limit`` messages: too many to read in one
    pass (the caller should then assume nothing is lost).
    """
    ids: set[str] = set()
    for seen, message in enumerate(_messages(queues), start=1):
        if seen > limit:
            return None
        if task_id := _task_id(message):
            ids.add(task_id)
    return ids


def _messages(queues: Iterable[str]) -> Iterator[object]:
    client = cache.client()
    for queue in queues:
        for name in queue_lists(queue):
            start = 0
            while chunk := client.lrange(name, start, start + _CHUNK - 1):
                yield from (_parsed(raw) for raw in chunk)
                start += _CHUNK
    for _, value in client.hscan_iter(UNACKED, count=_CHUNK):
        entry = _parsed(value)  # [message, exchange, routing_key]
        yield entry[0] if isinstance(entry, list) and entry else None


def _parsed(raw: str | bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _task_id(message: object) -> str | None:
    headers = message.get("headers") if isinstance(message, dict) else None
    task_id = headers.get("id") if isinstance(headers, dict) else None
    return task_id if isinstance(task_id, str) else None


# --- publishing -----------------------------------------------------------------

def publish(task_name: str, task_id: str, args: tuple[str, ...], *, queue: str) -> None:
    """Put one message for the task named ``task_name`` (one with
    ``ignore_result=True`` and the configured time limits, as
    summaries.tasks.process_job has) on ``queue``, exactly as its
    ``apply_async(args, task_id=task_id, queue=queue)`` would from outside a
    worker (Celery's message protocol 2 in kombu's Redis envelope, priority
    0, no ETA), in one LPUSH.

    Why not apply_async: it cost about 0.6 ms of CPU per call (routing,
    producer pool, kombu's channel making a new client per publish), a fifth
    of a whole submit that misses the cache; this is about a tenth of that
    (bench/throughput.py, figure 3). tests/test_queues.py checks that the
    message stays the one apply_async writes, field for field, so a Celery
    upgrade that changes it fails there first. The broker is the main Valkey
    (``cache.client()``: CELERY_BROKER_URL is VALKEY_URL), as everywhere in
    this module.
    Raises redis.RedisError.
    """
    app = current_app
    body = json.dumps([list(args), {}, {"callbacks": None, "errbacks": None, "chain": None,
                                        "chord": None}])
    message = {
        "body": base64.b64encode(body.encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py", "task": task_name, "id": task_id, "shadow": None, "eta": None,
            "expires": None, "group": None, "group_index": None, "retries": 0,
            "timelimit": [app.conf.task_time_limit, app.conf.task_soft_time_limit],
            "root_id": task_id,
            "parent_id": None, "argsrepr": repr(args), "kwargsrepr": "{}",
            "origin": anon_nodename(), "ignore_result": True,
            "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {},
        },
        "properties": {
            "correlation_id": task_id, "reply_to": app.thread_oid, "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0,
            "body_encoding": "base64", "delivery_tag": str(uuid.uuid4()),
        },
    }
    raw = json.dumps(message)
    held = getattr(_holding, "messages", None)
    if held is not None:
        held.append((queue, task_id, raw))
        return
    cache.client().lpush(queue, raw)


_holding = threading.local()


@contextmanager
def held() -> Iterator[None]:
    """Hold this thread's ``publish`` calls until the block ends, then send
    them together: one round trip, one LPUSH per queue, in publishing order.

    For a bulk submit: its jobs reach the workers at once rather than one by
    one while the request goes on, so short texts find company for an AI
    batch (services/batching.py) instead of leaving in small ones. Sent even
    if the block raises (its jobs' rows are committed). A failed send is
    logged, not raised: the jobs stay pending and the reconciler re-enqueues
    them (tasks.reconcile_jobs), as for a single publish that failed.
    A block inside another adds to the outer one.
    """
    if getattr(_holding, "messages", None) is not None:
        yield
        return
    messages: list[tuple[str, str, str]] = []
    _holding.messages = messages
    try:
        yield
    finally:
        _holding.messages = None
        if messages:
            _send(messages)


def _send(messages: list[tuple[str, str, str]]) -> None:
    by_queue: dict[str, list[str]] = {}
    for queue, _, message in messages:
        by_queue.setdefault(queue, []).append(message)
    try:
        pipe = cache.client().pipeline(transaction=False)
        for queue, batch in by_queue.items():
            pipe.lpush(queue, *batch)
        pipe.execute()
    except Exception:
        logger.exception("could not enqueue %d held job(s) (first %s); the reconciler will "
                         "retry", len(messages), messages[0][1])
