"""What kombu's Redis transport names in Valkey, for the broker's lanes
(summaries/core/lanes.py).

kombu keeps a queue as a list named after it (plus one list per priority
step, ``<queue>\\x06\\x16<step>``) and the messages a worker has taken but not
acknowledged (prefetched, waiting for a retry countdown, or running) in the
``unacked`` hash. summaries.bypasses.broker reads those and writes a job's
message there.
"""

from __future__ import annotations

from summaries.infra import cache

QUEUE_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)  # kombu's default steps above 0
UNACKED = "unacked"


def queue_lists(queue: str) -> list[str]:
    return [queue] + [f"{queue}{QUEUE_SEPARATOR}{step}" for step in PRIORITY_STEPS]


def depth(queue: str) -> int:
    """Messages waiting in ``queue`` (all priority steps), not yet taken."""
    pipe = cache.client().pipeline(transaction=False)
    for name in queue_lists(queue):
        pipe.llen(name)
    return sum(int(n) for n in pipe.execute())
