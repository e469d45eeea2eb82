"""Input the database cannot store is a 400 at validation, on every database.

On PostgreSQL a URL longer than the Job.url column, a NUL in text, or a lone
surrogate from JSON (``"\\ud800"``) made the INSERT fail after the in-flight
marker was claimed: a 503 forever and a stray marker. Validation now refuses
them first, so no job row and no marker exist. (DRF's CharField already
refuses NUL and surrogates with codes of its own; summaries.core.inputs refuses
them too, for the callers that do not pass through a serializer, such as
``manage.py summarize``.) In-process (Django test client) against a real
Valkey, like test_api.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from summaries.core.canonical_urls import MAX_URL_CHARS
from summaries.infra import cache
from summaries.models import Job
from tests.helpers.texts import text_about

pytestmark = pytest.mark.django_db

DRF_CODES = ("null_characters_not_allowed", "surrogate_characters_not_allowed")
LONG_URL = "https://example.com/" + "a" * (MAX_URL_CHARS - len("https://example.com/") + 1)


@pytest.mark.parametrize(("raw_json", "code"), [
    (json.dumps({"input": LONG_URL}), "invalid_url"),
    (json.dumps({"input": LONG_URL.replace("https", "HTTPS")}), "invalid_url"),
    ('{"input": "https://example.com/a\\u0000b"}', "invalid_url"),
    ('{"input": "https://example.com/\\ud800"}', "invalid_url"),
    (json.dumps({"input": text_about("nul") + "\x00"}), "invalid_input"),
    ('{"input": "First sentence \\ud800 here. Second sentence here."}', "invalid_input"),
    ('{"input": "First sentence \\udfff here. Second sentence here."}', "invalid_input"),
])
def test_unstorable_input_is_400_before_anything_is_written(
    client: Client, raw_json: str, code: str
) -> None:
    response: Any = client.post("/api/submit", data=raw_json, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] in {code, *DRF_CODES}
    assert Job.objects.count() == 0
    assert list(cache.client().scan_iter("inflight:*")) == []


def test_url_at_the_limit_is_accepted(client: Client) -> None:
    url = LONG_URL[:-1]
    response: Any = client.post("/api/submit", data=json.dumps({"input": url}),
                                content_type="application/json")
    assert response.status_code == 202, response.content
    assert Job.objects.get().url == url
