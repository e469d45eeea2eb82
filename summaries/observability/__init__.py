"""Observability: what the processes count and report, kept in Valkey so every
process adds to the same figures.

- ``counters``: the request, job and AI counters, the processing-time
  histogram, and the thread that flushes them (plain values in, never a Job).
- ``timeline``: the per-minute hashes behind the web page's charts.
- ``heartbeats``: worker processes online (Celery signal receivers).
- ``prometheus``: the /metrics collector, reading the shared state at scrape time.

Analytics and capacity planning read the job table too: summaries/selectors/.
"""
