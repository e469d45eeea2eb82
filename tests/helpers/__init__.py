"""The test harness: everything the tests use that is not a fixture.

- ``environment``: the settings every test process gets, built in one place.
- ``processes``: real service processes (Celery worker, beat, gunicorn).
- ``stack``: an isolated SmartCache (its own Valkey and processes) for
  tests that break things.
- ``api``: the HTTP API as a client sees it.
- ``fakes``: loopback fakes of Gemini and of web sites.
- ``pages``: the extraction tests' fixture pages.
- ``texts``, ``jobs``, ``polling``: fresh inputs, job rows, waiting.

Fixtures live in tests/conftest.py (shared) or in the test module that
uses them; they build on these helpers.
"""
