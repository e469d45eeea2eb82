"""What a person opening the API in a browser sees: the API root lists every
endpoint, and a POST-only endpoint opens on a form filled with an example
(not a red 405), while API clients still get a JSON 405."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.test import Client

from summaries.api import schema

pytestmark = pytest.mark.django_db

FORMS = ("/api/submit", "/api/submit/batch", "/api/cache/purge")


@pytest.mark.parametrize("path", FORMS)
def test_a_browser_gets_a_form_with_an_example(client: Client, path: str) -> None:
    page = client.get(path, HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert page.status_code == 200
    text = html.unescape(page.content.decode())
    assert "Method Not Allowed" not in text
    assert schema.ARTICLE in text  # in the POST form, ready to send
    assert '<textarea name="_content"' in text
    assert f"curl -s -X POST http://testserver{path}" in text


@pytest.mark.parametrize("accept", ["application/json", "", "*/*"])
def test_an_api_client_still_gets_a_json_405(client: Client, accept: str) -> None:
    response = client.get("/api/submit", HTTP_ACCEPT=accept)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response["Allow"] == "POST, OPTIONS"
    assert client.get("/api/submit?format=json").status_code == 405


def test_browsing_is_not_rate_limited(client: Client, settings: Any) -> None:
    settings.RATE_LIMIT = (1, 60)
    for _ in range(3):
        assert client.get("/api/submit", HTTP_ACCEPT="text/html").status_code == 200
    first = client.post("/api/submit", {"input": schema.ARTICLE}, content_type="application/json")
    assert first.status_code in (200, 202)
    again = client.post("/api/submit", {"input": schema.ARTICLE}, content_type="application/json")
    assert again.status_code == 429


def test_the_root_lists_every_endpoint_with_what_it_does(client: Client) -> None:
    endpoints = client.get("/api/").json()["endpoints"]
    documented = client.get("/api/schema/", {"format": "json"}).json()["paths"]
    listed = {key.split(" ", 1)[1].removeprefix("http://testserver") for key in endpoints}
    assert set(documented) <= listed, "list each endpoint in summaries/api/views.py ENDPOINTS"
    assert all(len(does) > 20 for does in endpoints.values())
    assert "POST http://testserver/api/submit" in endpoints
    page = html.unescape(client.get("/api/", HTTP_ACCEPT="text/html").content.decode())
    assert "curl -s -X POST http://testserver/api/submit" in page
    assert "curl -s http://testserver/api/status/{job_id}" in page
