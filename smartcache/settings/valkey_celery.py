"""Valkey (broker and cache: two roles, one or two servers), the job
lifecycle (attempts, leases, retries, retention) and Celery, whose queues
and beat schedule are composed here whole, the webhooks lane and the tick
included."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from smartcache import valkey_urls
from smartcache.settings.ai import BATCH_LANE_TICK_SECONDS
from smartcache.settings.env import VAR_DIR, env_float, env_int, env_str
from smartcache.settings.webhooks import (
    SCHEDULE_TICK_SECONDS,
    WEBHOOK_BACKOFF_MAX,
    WEBHOOK_TIMEOUT,
)
from summaries.core.lanes import Lane


def _running_valkey_url() -> str:
    """Where VALKEY_URL is unset: the Valkey of the `make run` using this var/
    directory (scripts/run_stack.py writes its URL to var/valkey-url while it
    runs), so `manage.py summarize` and friends use that instance and not
    whatever answers on 6379; else the usual local server."""
    try:
        url = (VAR_DIR / "valkey-url").read_text().strip()
    except OSError:
        url = ""
    return url or "redis://127.0.0.1:6379/0"


def _valkey_target(name: str, url: str) -> valkey_urls.ValkeyTarget:
    try:
        return valkey_urls.parse(url)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None


# Two roles (README, "Valkey: broker and cache"): VALKEY_URL holds what must
# never be evicted (the broker's queues, results, in-flight markers, quotas,
# rate limits, counters: run it with noeviction); CACHE_VALKEY_URL holds the
# summaries and their invalidation channel, which an allkeys-lru server may
# evict. Unset, the cache shares VALKEY_URL's server. Either may be a
# sentinel://h1:26379,h2:26379/0?master=NAME group (smartcache/valkey_urls.py).
_VALKEY_URL_GIVEN = env_str("VALKEY_URL") or _running_valkey_url()
VALKEY = _valkey_target("VALKEY_URL", _VALKEY_URL_GIVEN)
# The redis:// form (valkey:// is read as redis://: kombu knows no other), or
# the sentinel:// URL as given.
VALKEY_URL = VALKEY.url or _VALKEY_URL_GIVEN
# Empty: the cache uses VALKEY_URL (summaries/infra/cache.py resolves it at use, so
# an override of VALKEY_URL alone moves both).
CACHE_VALKEY_URL = env_str("CACHE_VALKEY_URL")
if CACHE_VALKEY_URL:
    CACHE_VALKEY_URL = _valkey_target("CACHE_VALKEY_URL", CACHE_VALKEY_URL).url or CACHE_VALKEY_URL
VALKEY_SOCKET_TIMEOUT = env_float("VALKEY_SOCKET_TIMEOUT", 2.0)
CACHE_TTL = env_int("CACHE_TTL", 7 * 24 * 3600, minimum=1)
# The in-flight marker outlives the job's retries; renewed at every claim.
INFLIGHT_TTL = env_int("INFLIGHT_TTL", 1800, minimum=60)

# A job is retried this many times in all (crashes and transient errors).
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 5, minimum=1)
# How long a worker owns a job it claimed; a crashed worker's job is
# re-enqueued by the reconciler once its lease is over. Above the task's
# hard time limit, so a live worker never loses its job.
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 70, minimum=10)
TASK_TIME_LIMIT = env_int("TASK_TIME_LIMIT", 60, minimum=5)
if JOB_LEASE_SECONDS <= TASK_TIME_LIMIT:
    raise ImproperlyConfigured("JOB_LEASE_SECONDS must be above TASK_TIME_LIMIT, or a live "
                               "worker's job would be handed to another")
# Transient failures are retried after base * 2^(attempt-1) seconds (jittered,
# capped): always far below the broker's visibility timeout.
RETRY_BACKOFF_BASE = env_float("RETRY_BACKOFF_BASE", 2.0)
RETRY_BACKOFF_MAX = env_float("RETRY_BACKOFF_MAX", 30.0)
# A pending job untouched this long lost its message (broker restart): requeue.
RECONCILE_PENDING_AFTER = env_int("RECONCILE_PENDING_AFTER", 300, minimum=1)
# Retention (summaries/services/retention.py, hourly from beat): finished
# jobs are deleted this many days after their last change, and a completed
# job's extracted page text is cleared after EXTRACTED_TEXT_DAYS; 0 keeps them.
JOB_RETENTION_DAYS = env_int("JOB_RETENTION_DAYS", 30)
EXTRACTED_TEXT_DAYS = env_int("EXTRACTED_TEXT_DAYS", 7)

# --- Celery ---------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# Valkey is broker and result backend. Settings follow the project's notes in
# ../shared/notes/reliability.md (at-least-once delivery on the Redis transport).
VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 900, minimum=60)
# A sentinel:// VALKEY_URL becomes kombu's own form (one sentinel://host:port/db
# per sentinel, ";"-separated) with the master's name in the transport options
# of both: https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html
CELERY_BROKER_URL = VALKEY.celery_url()
CELERY_RESULT_BACKEND = VALKEY.celery_url()
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Unacked messages come back after this; longer than any task + retry delay.
    "visibility_timeout": VISIBILITY_TIMEOUT,
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
    **VALKEY.transport_options(timeout=2),
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": VISIBILITY_TIMEOUT,
                                           **VALKEY.transport_options(timeout=2)}
CELERY_VISIBILITY_TIMEOUT = VISIBILITY_TIMEOUT
CELERY_REDIS_SOCKET_TIMEOUT = 5
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# Publishing gives up quickly so a request never hangs on a dead broker; the
# job row stays pending and the reconciler enqueues it later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# The worker overlaps I/O-bound work (AI calls, page fetches) in threads: one
# process, WORKER_CONCURRENCY threads (bench/throughput.py measured this
# against prefork). Celery enforces no time limit under the threads pool
# (celery#9203), so every attempt is bounded by its own deadlines instead: the
# fetch deadline, the AI call's whole-call timeout, and an attempt budget
# (TASK_TIME_LIMIT) checked at every stage, where the lease is renewed too.
CELERY_WORKER_POOL = env_str("WORKER_POOL", "threads")
CELERY_WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 100, minimum=1)
# The lanes (summaries/core/lanes.py): interactive submits ("celery") and bulk
# submits ("bulk"). Every worker consumes both, taking from each in turn, so
# a single submit never waits behind a bulk backlog; and a third lane of its
# own for webhook deliveries (settings/webhooks.py).
CELERY_TASK_QUEUES = [Queue(lane.value) for lane in Lane]
CELERY_TASK_DEFAULT_QUEUE = Lane.INTERACTIVE.value
# Redeliver a task whose worker died mid-way (at-least-once), one at a time.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Time limits travel in the task message from whoever sends it: give the API
# and the workers the same settings (make run and compose do).
CELERY_TASK_TIME_LIMIT = TASK_TIME_LIMIT
CELERY_TASK_SOFT_TIME_LIMIT = max(TASK_TIME_LIMIT - 10, int(TASK_TIME_LIMIT * 0.8))
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_RESULT_BACKEND_THREAD_SAFE = True
# Events for Flower.
CELERY_WORKER_SEND_TASK_EVENTS = True
# No "task-sent" event: it is a second publish on every submit; Flower still
# sees each task from the worker's events (received, started, succeeded).
CELERY_TASK_SEND_SENT_EVENT = False
CELERY_TASK_TRACK_STARTED = True
# Celery's Django fixup closes every database connection before and after
# each task unless this is set; then only once per this many tasks. Django's
# own rule (CONN_MAX_AGE, broken connections) applies after every task
# instead (summaries/tasks.py): with SQLite, reopening the database twice per
# job cost more CPU than the job's queries (bench/throughput.py, figure 3).
CELERY_DB_REUSE_MAX = 10_000
RECONCILE_INTERVAL = env_int("RECONCILE_INTERVAL", 15, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "reconcile-stale-jobs": {
        "task": "summaries.reconcile_jobs",
        "schedule": float(RECONCILE_INTERVAL),
    },
    "purge-old-jobs": {"task": "summaries.purge_old_jobs", "schedule": 3600.0},
    # The tick: claims due watches, starts due scheduled jobs, sends
    # deliveries whose job finished or whose message was lost. One stuck
    # behind a backlog is dropped when the next one is due.
    "integrations-tick": {"task": "summaries.integrations_tick",
                          "schedule": SCHEDULE_TICK_SECONDS,
                          "options": {"expires": SCHEDULE_TICK_SECONDS}},
    # The batch lane (summaries/services/batch_lane.py): sends due groups to
    # the provider's batch API and polls open provider batches, one poller at
    # a time (a Valkey lease); a tick stuck behind a backlog is dropped.
    "batch-lane-tick": {"task": "summaries.batch_lane_tick",
                        "schedule": BATCH_LANE_TICK_SECONDS,
                        "options": {"expires": BATCH_LANE_TICK_SECONDS}},
}


# Housekeeping runs every few seconds: each run would log three lines (beat's
# "Sending due task", the worker's "received" and "succeeded") and bury
# everything else. Their routine lines are dropped; what they change is logged
# by the tasks themselves, and their failures (ERROR) still show.
QUIET_TASKS: tuple[str, ...] = ("summaries.reconcile_jobs", "summaries.purge_old_jobs",
                                "summaries.integrations_tick", "summaries.batch_lane_tick")

# A retry's countdown waits unacknowledged in the worker: past the visibility
# timeout the broker would hand it out again meanwhile.
if WEBHOOK_BACKOFF_MAX + WEBHOOK_TIMEOUT >= VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured("WEBHOOK_BACKOFF_MAX + WEBHOOK_TIMEOUT must stay below "
                               "CELERY_VISIBILITY_TIMEOUT")
# run_at: within RUN_AT_COUNTDOWN_MAX seconds a job is sent with a countdown
# (kept below the visibility timeout), later ones are started by the tick.
RUN_AT_COUNTDOWN_MAX = VISIBILITY_TIMEOUT // 2
