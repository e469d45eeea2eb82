"""Work done outside DRF's views (the hit fast path's middleware, the
/metrics view) maps Valkey failures as the views do: a JSON 503, never
Django's 500. A real gunicorn of its own Valkey, stopped."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests

from summaries import cache
from summaries.inputs import normalize_input
from tests.helpers.stack import stack_of
from tests.helpers.texts import text_about

pytestmark = pytest.mark.django_db(transaction=True)


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

