"""The database: SQLite under var/ by default, PostgreSQL (pooled) with
DATABASE_URL."""

from __future__ import annotations

import dj_database_url

from smartcache.settings.env import VAR_DIR, env_float, env_int, env_str

# SQLite under var/ by default; DATABASE_URL (postgres://...) in production.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'smartcache.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The API, workers and beat write at once: WAL lets readers run beside the
    # writer, IMMEDIATE takes the write lock up front instead of failing with
    # "database is locked" halfway through a transaction.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Connections are kept (DATABASE_CONN_MAX_AGE, per thread): opening one
    # per request or job cost more CPU than the job's queries, and closing
    # the last one checkpoints the WAL (bench/throughput.py, figure 3).
    # Tests run real worker processes, which need a file they can open too
    # (one per test session: tests/valkey_plugin.py sets SMARTCACHE_TEST_DB).
    DATABASES["default"]["TEST"] = {
        "NAME": env_str("SMARTCACHE_TEST_DB") or str(VAR_DIR / "test.sqlite3")
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A worker runs WORKER_CONCURRENCY threads: one connection each would
    # exhaust PostgreSQL's max_connections. A pool per process bounds them
    # (https://docs.djangoproject.com/en/5.2/ref/databases/#connection-pool).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("DATABASE_POOL_SIZE", 16, minimum=1),
        "timeout": env_float("DATABASE_POOL_TIMEOUT", 10.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
