"""Database connections around waits on the network, and the per-input lock."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connection, connections


def release_connection() -> None:
    """Give this thread's database connection back before a long wait on the
    network (a page fetch, an AI call, a webhook POST).

    With a connection pool (PostgreSQL: DATABASE_POOL_SIZE per process, far
    fewer than a worker's threads) a job would otherwise hold its connection
    through the whole wait, and the pool, not the threads, would bound the
    jobs in flight: 16 connections, 2 processes and a 1 s AI call made 26.7
    jobs/s (bench/throughput.py, figure 1). The next query takes one from
    the pool again. A kept connection without a pool (SQLite, one per thread)
    stays open: nobody waits for it, and reopening costs more than keeping it.
    Inside a transaction nothing is released.
    """
    db = connections[DEFAULT_DB_ALIAS]
    if getattr(db, "pool", None) is not None and not db.in_atomic_block:
        db.close()


def lock_input(key: str) -> None:
    """Serialise job creation for one input until the transaction ends.
    SQLite needs nothing: its IMMEDIATE transactions hold the write lock."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int(key[:15], 16)])
