"""The framework bypasses, fenced: the places where this code reaches past a
library's public API because a benchmark showed the public way cost too much.
A Celery, kombu or Django upgrade must be checked here first (pyproject pins
Celery and kombu to their major version; `make latest` runs the guards).

- ``broker.publish`` writes Celery's task message (protocol 2 in kombu's
  Redis envelope) by hand in one LPUSH, bypassing ``apply_async``: about a
  tenth of its CPU per submit that misses (bench/throughput.py, figure 3).
  Guard: tests/test_queues.py::test_publish_writes_what_apply_async_writes.
- ``broker.task_ids`` reads kombu's queue lists and its ``unacked`` hash,
  which no public API exposes, so the reconciler can tell a lost job from
  one whose message waits or runs. Guards: tests/test_queues.py,
  tests/test_faults.py (the reconciler against real workers).
- ``job_rows`` writes the job table's SQL by hand, bypassing the ORM's query
  compiler (about 1 ms a statement) for the two statements every miss and
  every attempt runs (bench/throughput.py, figure 3). Guards:
  tests/test_jobs.py, and every test that submits (rows read back through
  the ORM).
- ``fastpath`` answers a cache hit of ``POST /api/submit`` in a middleware,
  bypassing Django's session/auth/CSRF middleware and DRF's request handling
  (bench/throughput.py, figure 2: hits per second). Guards:
  tests/test_fastpath.py (the same body, headers and rate limit as
  SubmitView), tests/test_edge_fastpath.py.

Each module keeps to the layer of what it replaces (checked by the import
contract in pyproject.toml): ``broker`` is broker infrastructure, ``job_rows``
sits just above the models it reads and writes, and ``fastpath`` is an
interface like the view it shortcuts. This package imports none of them.
Not here: providers/deadline.py reaches into httpx2's transport for its
deadline; it belongs to the providers and is guarded by
tests/test_ai_bounded_answers.py and tests/test_providers.py.
"""
