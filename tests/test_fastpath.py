"""Cache hits answered from memory (summaries/bypasses/fastpath.py) are the same
answers as the full path's, under the same rate limit and headers."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client, override_settings

if TYPE_CHECKING:  # the test client's response type is defined in django-stubs only
    from django.test.client import _MonkeyPatchedWSGIResponse

from summaries.core.inputs import normalize_input
from summaries.infra import cache, local_cache
from tests.helpers.texts import text_about


def post(client: Client, text: str, **headers: Any) -> _MonkeyPatchedWSGIResponse:
    """POST ``text`` to /api/submit; ``headers`` as WSGI environ keys (HTTP_ORIGIN=...)."""
    return client.post("/api/submit", json.dumps({"input": text}),
                       content_type="application/json", **headers)


@pytest.fixture
def cached_text(namespace: str) -> str:
    text = text_about(f"fast {uuid.uuid4().hex[:6]}")
    cache.set_summary(normalize_input(text).cache_key(namespace),
                      {"job_id": str(uuid.uuid4()), "summary": "One. Two.", "tags": ["a", "b"]},
                      ttl=600)
    return text


@pytest.mark.django_db
def test_a_hit_from_memory_is_the_same_answer_as_from_valkey(
        client: Client, cached_text: str) -> None:
    first = post(client, cached_text)  # from Valkey (full path)
    key = json.loads(first.content)["cache_key"]
    for _ in range(3):  # held in memory once this process's listener has settled
        if local_cache.peek(key) is not None:
            break
        time.sleep(0.2)
        post(client, cached_text)
    assert local_cache.peek(key) is not None
    second = post(client, cached_text)  # from memory (fast path)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.content == first.content
    for header in ("Content-Type", "X-Cache", "X-Cache-Key", "X-Frame-Options",
                   "X-Content-Type-Options"):
        assert second[header] == first[header], header


@pytest.mark.django_db
def test_a_hit_from_memory_carries_cors_headers(client: Client, cached_text: str) -> None:
    with override_settings(CORS_ALLOWED_ORIGINS=["https://app.example"]):
        post(client, cached_text)
        answer = post(client, cached_text, HTTP_ORIGIN="https://app.example")
    assert answer["Access-Control-Allow-Origin"] == "https://app.example"


@pytest.mark.django_db
def test_hits_from_memory_are_rate_limited_and_counted(client: Client, cached_text: str) -> None:
    with override_settings(RATE_LIMIT=(3, 60)):
        answers = [post(client, cached_text).status_code for _ in range(5)]
    assert answers == [200, 200, 200, 429, 429]
    body = client.get("/api/analytics").json()
    assert (body["total_requests"], body["cache_hits"]) == (3, 3)


@pytest.mark.django_db
def test_a_browser_gets_the_browsable_api_not_the_fast_path(
        client: Client, cached_text: str) -> None:
    post(client, cached_text)
    answer = post(client, cached_text, HTTP_ACCEPT="text/html")
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_a_miss_is_checked_once_through_both_paths(
        client: Client, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from summaries.services import submit

    checked: list[str] = []
    check = submit._validated

    def counted(raw: str) -> Any:
        checked.append(raw)
        return check(raw)

    monkeypatch.setattr(submit, "_validated", counted)
    first, second = (text_about(f"miss {uuid.uuid4().hex[:6]}") for _ in range(2))
    answers = [post(client, first), post(client, second)]

    assert [a.status_code for a in answers] == [202, 202]
    # Each its own key: the second was not answered with the first one's check.
    assert [json.loads(a.content)["cache_key"] for a in answers] == [
        normalize_input(text).cache_key(namespace) for text in (first, second)]
    assert checked == [first, second]  # by the fast path; the full path took it over


@pytest.mark.django_db
def test_what_ran_before_in_the_thread_does_not_change_a_submit(
        namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path hands its checked input over explicitly (the request
    carries it): a submit without it checks its input itself, whatever the
    fast path checked before in this thread."""
    from summaries.services import submit

    checked: list[str] = []
    check = submit._validated

    def counted(raw: str) -> Any:
        checked.append(raw)
        return check(raw)

    monkeypatch.setattr(submit, "_validated", counted)
    text = text_about(f"thread {uuid.uuid4().hex[:6]}")
    handed = submit.cached_summary(raw=text)  # no hit: the input as checked
    answer = submit.summary_request(raw=text)  # not handed over: checked again

    assert isinstance(handed, submit.CheckedInput) and handed.key == answer.cache_key
    assert answer.cache_key == normalize_input(text).cache_key(namespace)
    assert checked == [text, text]
