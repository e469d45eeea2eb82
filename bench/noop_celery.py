"""The baseline for the pipeline-overhead figure: a no-op Celery task.

As a Celery app (``celery -A bench.noop_celery worker ...``) it has the
project's Celery configuration (the CELERY_* Django settings: broker and result
backend on the same Valkey, acks_late, prefetch 1, events ...) but only one
task, ``bench.noop``, on a queue of its own (``bench.noop``), so the stack's
workers never see it. bench/throughput.py starts the worker with the very
pool/concurrency flags the running stack's worker has.

As a script it is the client: send N no-op tasks, wait for every result and
print ``{"n": N, "seconds": first send to last result}`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartcache.settings")

QUEUE = "bench.noop"

app = Celery("bench_noop")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Only its own queue, whatever lanes the project's settings declare: this
# worker must never take the stack's tasks (they are registered here too, as
# Django loads the summaries app).
app.conf.task_queues = (Queue(QUEUE),)
app.conf.task_default_queue = QUEUE
app.conf.task_routes = {}
app.conf.beat_schedule = {}


@app.task(name="bench.noop")
def noop() -> None:
    """Nothing: the round trip is all that is measured."""


def main() -> int:
    parser = argparse.ArgumentParser(description="send N no-op tasks, time their round trip")
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    noop.delay().get(timeout=min(args.timeout, 60))  # warm: connections, a live worker
    started = time.monotonic()
    results = [noop.delay() for _ in range(args.n)]
    deadline = started + args.timeout
    for result in results:
        result.get(timeout=max(deadline - time.monotonic(), 0.1))
    print(json.dumps({"n": args.n, "seconds": time.monotonic() - started}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
