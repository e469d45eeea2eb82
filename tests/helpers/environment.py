"""The test environment, built here and nowhere else.

Three layers, each a superset of the one before:

1. ``session_environment``: the pytest process itself, set by
   tests/valkey_plugin.py before pytest-django imports the settings. A
   throwaway Valkey, a database file of this session's own (sessions may run
   side by side), the Gemini summarizer with a dummy key and an unreachable
   address (no test reaches a real AI; the API process needs only the
   namespace), fetches allowed to 127.0.0.2 only (the fake web sites), and no
   rate limit (bursts from one client are the point of several tests; the
   limit itself is tested with an override).

2. ``process_environment``: the session's child processes (worker, gunicorn):
   layer 1, plus the test database and the fake Gemini, one AI call per job
   (as most tests count calls; batching is tested with its own settings) and
   short timings (``PROCESS_TIMINGS``) so faults show up quickly.

3. ``stack_environment``: the processes of an isolated ``Stack``
   (tests/helpers/stack.py): layer 2, the fault timings (``FAULT_TIMINGS``),
   the test's own overrides, and the stack's Valkey.

Derived values (the soft time limit from TASK_TIME_LIMIT, ...) are computed
by smartcache/settings.py only; nothing here restates them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# Layer 2's timings. The lease must stay above TASK_TIME_LIMIT (settings refuse otherwise).
PROCESS_TIMINGS = {
    "GEMINI_TIMEOUT": "2",
    "RETRY_BACKOFF_BASE": "0.2",
    "RETRY_BACKOFF_MAX": "1",
    "JOB_LEASE_SECONDS": "12",
    "TASK_TIME_LIMIT": "10",
    "RECONCILE_INTERVAL": "1",
    # Webhook retries and the tick (watches, run_at, deliveries), quickly.
    "WEBHOOK_BACKOFF_BASE": "0.2", "WEBHOOK_BACKOFF_MAX": "1", "SCHEDULE_TICK_SECONDS": "1",
}

# Layer 3's timings, which fault tests assert against. Every process of a
# stack shares them (Celery stamps the publisher's time limits on each
# message). TASK_TIME_LIMIT 14: the soft limit settings derive from it stays
# above the AI timeout (2 s) and the 3 s AI call of the SIGKILL test; the
# lease stays above the hard limit.
MAX_ATTEMPTS = 3
BACKOFF_BASE, BACKOFF_MAX = 0.2, 1.0
LEASE_SECONDS = 15
FAULT_TIMINGS = {
    "GEMINI_TIMEOUT": "2",
    "JOB_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "RETRY_BACKOFF_BASE": str(BACKOFF_BASE),
    "RETRY_BACKOFF_MAX": str(BACKOFF_MAX),
    "TASK_TIME_LIMIT": "14",
    "JOB_LEASE_SECONDS": str(LEASE_SECONDS),
    "RECONCILE_INTERVAL": "1",
}


def session_environment(valkey_url: str, test_db: str) -> dict[str, str]:
    """Layer 1: what the pytest process's os.environ gets (see the module doc)."""
    return {
        "VALKEY_URL": valkey_url,
        "SMARTCACHE_TEST_DB": test_db,
        "SUMMARIZER": "gemini",
        "GEMINI_API_KEY": "test-key",
        "GEMINI_BASE_URL": "http://127.0.0.1:9/unreachable",
        "FETCH_ALLOWED_NETWORKS": "127.0.0.2/32",
        "RATE_LIMIT": "off",
        # Importing the settings writes no secret: the session brings its own.
        "DJANGO_SECRET_KEY": "test-secret-key-" + "x" * 40,
        "WEBHOOK_SECRET": "test-webhook-secret",
    }


def process_environment(database_url: str, gemini_base_url: str) -> dict[str, str]:
    """Layer 2: the environment of the session's worker and API processes."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "GEMINI_BASE_URL": gemini_base_url,
        "AI_BATCH_SIZE": "1",
        **PROCESS_TIMINGS,
        "PYTHONUNBUFFERED": "1",
    }


def stack_environment(process_env: Mapping[str, str], valkey_url: str,
                      overrides: Mapping[str, str]) -> dict[str, str]:
    """Layer 3: the environment of a Stack's processes (its own Valkey)."""
    return {**process_env, **FAULT_TIMINGS, **overrides, "VALKEY_URL": valkey_url}
