"""Webhooks, watched URLs and scheduled jobs (summaries/services/webhooks.py,
watches.py, scheduling.py). Their queue and the tick's schedule are wired
into Celery by settings/valkey_celery.py, which checks these bounds against
the broker's visibility timeout."""

from __future__ import annotations

import base64

from django.core.exceptions import ImproperlyConfigured

from smartcache.settings.env import env_float, env_int, env_secret, env_str

# summaries/services/webhooks.py, watches.py, scheduling.py. Deliveries run on
# a lane of their own (Lane.WEBHOOKS, summaries/core/lanes.py), which every
# worker consumes (CELERY_TASK_QUEUES), and at most WEBHOOK_CONCURRENCY of a
# worker's threads deliver at once, so slow receivers never take the threads
# that summarise.

# Like the Django key: WEBHOOK_SECRET, else a file (var/webhook-secret;
# compose: the shared secrets volume) written by `python -m
# smartcache.secret_files`. Receivers need it to verify signatures: on several
# machines, set WEBHOOK_SECRET.
WEBHOOK_SECRET = env_secret("WEBHOOK_SECRET", file_variable="WEBHOOK_SECRET_FILE",
                            default_file="webhook-secret")
# Rotation: the secrets being retired, space-separated. The webhook-signature
# header carries one signature per secret, current first, so receivers
# switch to the new one at their pace (services/webhooks.py).
WEBHOOK_PREVIOUS_SECRETS = tuple(env_str("WEBHOOK_PREVIOUS_SECRETS").split())


def _check_webhook_secret(secret: str) -> None:
    """Standard Webhooks' form of a secret is whsec_ and the key in base64."""
    try:
        if secret.startswith("whsec_"):
            base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except ValueError:
        raise ImproperlyConfigured("a webhook secret starting with whsec_ must go on in "
                                   "base64") from None


for _secret in (WEBHOOK_SECRET, *WEBHOOK_PREVIOUS_SECRETS):
    _check_webhook_secret(_secret)
WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT", 10.0)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
WEBHOOK_BACKOFF_BASE = env_float("WEBHOOK_BACKOFF_BASE", 5.0)
WEBHOOK_BACKOFF_MAX = env_float("WEBHOOK_BACKOFF_MAX", 300.0)
WEBHOOK_CONCURRENCY = env_int("WEBHOOK_CONCURRENCY", 10, minimum=1)
# The tick (beat): claims due watches, starts due scheduled jobs, sends
# deliveries whose job finished or whose message was lost.
SCHEDULE_TICK_SECONDS = env_float("SCHEDULE_TICK_SECONDS", 5.0)
# run_at: at most this far ahead; within RUN_AT_COUNTDOWN_MAX seconds a job is
# sent with a countdown (kept below the visibility timeout), later ones are
# started by the tick.
RUN_AT_MAX_DAYS = env_int("RUN_AT_MAX_DAYS", 30, minimum=1)
