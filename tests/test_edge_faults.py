"""Work done outside DRF's views (the hit fast path's middleware, the
/metrics view) maps Valkey failures as the views do: a JSON 503, never
Django's 500. A real gunicorn of its own Valkey, stopped."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from summaries.core.inputs import normalize_input
from summaries.infra import cache
from tests.helpers.documents import make_pdf
from tests.helpers.polling import wait_for
from tests.helpers.processes import WebServer, free_port
from tests.helpers.stack import stack_of
from tests.helpers.texts import text_about

pytestmark = pytest.mark.django_db(transaction=True)

# A document upload (multipart): its bytes are written to the database, the
# rest is an ordinary submit.
UPLOAD = {"file": ("report.pdf", make_pdf(["An outage report. Nothing works today."]),
                   "application/pdf")}


def assert_valkey_503(answer: requests.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["code"] == "valkey_unavailable" and answer.json()["error"]
    assert answer.headers["Retry-After"]


def test_a_hit_from_memory_with_valkey_down_is_a_json_503(
        tmp_path: Path, worker_env: dict[str, str], namespace: str) -> None:
    # The rate limit on: the fast path counts it in Valkey before answering.
    with stack_of(tmp_path, worker_env, RATE_LIMIT="1000/minute",
                  LOCAL_CACHE_SECONDS="600") as stack:
        api = stack.api()
        # The API process's invalidation listener starts with its first read
        # of a summary and drops every copy once subscribed (a copy read
        # before may have missed an announcement): let it subscribe first.
        warm_up = text_about(f"warm-up {uuid.uuid4().hex[:6]}")
        cache.set_summary(normalize_input(warm_up).cache_key(namespace),
                          {"job_id": str(uuid.uuid4()), "summary": "One. Two.", "tags": ["a"]},
                          ttl=600, pipe=(pipe := stack.client().pipeline(transaction=False)))
        pipe.execute()
        assert api.submit(warm_up).status_code == 200
        wait_for(lambda: sum(count for _, count in
                             stack.client().pubsub_numsub(cache.INVALIDATE_CHANNEL)) >= 1,
                 30, "the API's invalidation listener subscribed")
        text = text_about(f"kiln {uuid.uuid4().hex[:6]}")
        key = normalize_input(text).cache_key(namespace)
        pipe = stack.client().pipeline(transaction=False)
        cache.set_summary(key, {"job_id": str(uuid.uuid4()), "summary": "One. Two.",
                                "tags": ["a"]}, ttl=600, pipe=pipe)
        pipe.execute()
        for _ in range(3):  # read from Valkey, then held in the API process's memory
            assert api.submit(text).status_code == 200
        # Gone from Valkey without an announcement: only the process's copy answers.
        stack.client().delete(cache.summary_name(key))
        from_memory = api.submit(text)
        assert from_memory.status_code == 200 and from_memory.headers["X-Cache"] == "HIT"

        stack.stop_valkey()
        assert_valkey_503(api.submit(text))  # the fast path (was Django's 500)
        assert_valkey_503(api.submit(text_about("kiln miss")))  # the full path, as before
        assert_valkey_503(api.http.get(f"{api.base_url}/metrics", timeout=10))
        assert_valkey_503(api.http.post(f"{api.base_url}/api/submit", files=UPLOAD, timeout=10))



def dead_database_url(url: str, tmp_path: Path) -> str:
    """The test database's URL with nothing behind it: SQLite in a directory
    that does not exist, PostgreSQL on a closed port."""
    if url.startswith("sqlite:"):
        return f"sqlite:///{tmp_path / 'no-such-dir' / 'db.sqlite3'}"
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@127.0.0.1:{free_port()}"))


def test_with_the_database_down_every_path_is_a_json_503(
        tmp_path: Path, worker_env: dict[str, str]) -> None:
    """A gunicorn whose database is gone; the operator token set, so
    /metrics reads the session a cookie names from the database (and so
    does the admin)."""
    # PostgreSQL's pool waits DATABASE_POOL_TIMEOUT for a connection before
    # the 503 (10 s by default): 1 s here, within the start-up probe's wait.
    server = WebServer({**worker_env, "JOBS_API_TOKEN": "op-token", "DATABASE_POOL_TIMEOUT": "1",
                        "DATABASE_URL": dead_database_url(worker_env["DATABASE_URL"],
                                                          tmp_path)}, workers=1)
    server.start()
    try:
        cookie = {"Cookie": "sessionid=" + "a" * 32}
        answers = {
            "metrics": requests.get(f"{server.url}/metrics", headers=cookie, timeout=10),
            "status": requests.get(f"{server.url}/api/status/{uuid.uuid4()}", timeout=10),
            "events": requests.get(f"{server.url}/api/jobs/{uuid.uuid4()}/events", timeout=10),
            "upload": requests.post(f"{server.url}/api/submit", files=UPLOAD, timeout=10),
            # Django's own views, outside the API's error handling.
            "admin": requests.get(f"{server.url}/admin/", headers=cookie, timeout=10),
        }
        page = requests.get(f"{server.url}/", timeout=10)
    finally:
        server.stop()
    for where, answer in answers.items():
        assert answer.status_code == 503, (where, answer.status_code, answer.text[:200])
        assert answer.json()["code"] == "database_unavailable", where
        assert answer.headers["Retry-After"], where
    assert page.status_code == 200  # the web page needs no database
