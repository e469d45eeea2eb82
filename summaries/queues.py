"""What the Celery broker (Valkey, kombu's Redis transport) holds right now.

kombu keeps a queue as a list named after it (plus one list per priority
step, ``<queue>\\x06\\x16<step>``) and the messages a worker has taken but not
acknowledged (prefetched, waiting for a retry countdown, or running) in the
``unacked`` hash. Every message carries its task id in ``headers.id``; we
send each job with task id = job id, so this module can tell which jobs have
a message somewhere, and which were really lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from summaries import cache

# The lanes (CELERY_TASK_QUEUES in settings): interactive submits and bulk ones.
INTERACTIVE = "celery"
BULK = "bulk"
LANES = (INTERACTIVE, BULK)

QUEUE_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)  # kombu's default steps above 0
UNACKED = "unacked"
_CHUNK = 1000


def queue_lists(queue: str) -> list[str]:
    return [queue] + [f"{queue}{QUEUE_SEPARATOR}{step}" for step in PRIORITY_STEPS]


def depth(queue: str) -> int:
    """Messages waiting in ``queue`` (all priority steps), not yet taken."""
    pipe = cache.client().pipeline(transaction=False)
    for name in queue_lists(queue):
        pipe.llen(name)
    return sum(int(n) for n in pipe.execute())


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
