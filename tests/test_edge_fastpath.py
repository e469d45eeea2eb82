"""The hit fast path reads the request's Content-Length itself: a value
``int()`` refuses is no 500 (gunicorn refuses such a header; other WSGI
servers pass it on). Django's test client, which hands the header through."""

from __future__ import annotations

import json

import pytest
from django.test import Client


@pytest.mark.django_db
@pytest.mark.parametrize("length", ["²", "9" * 5000, "-1", ""])
def test_an_odd_content_length_is_no_500(client: Client, length: str) -> None:
    answer = client.post("/api/submit", json.dumps({"input": "x"}),
                         content_type="application/json", CONTENT_LENGTH=length)
    assert answer.status_code == 400, answer.content
    assert answer["Content-Type"] == "application/json"
