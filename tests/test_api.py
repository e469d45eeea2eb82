"""The HTTP contract, in-process (Django test client) against a real Valkey.

Jobs created here are not processed (no worker; on_commit never fires inside
a test transaction): these tests are about shapes, codes and dedup.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
from django.db import (
    DataError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    connection,
    transaction,
)
from django.test import Client
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from summaries.core.inputs import normalize_input
from summaries.infra import cache
from summaries.models import Job
from summaries.services import inflight
from tests.helpers.texts import text_about

pytestmark = pytest.mark.django_db


def post(client: Client, body: Any, **extra: Any) -> Any:
    return client.post("/api/submit", data=json.dumps(body),
                       content_type="application/json", **extra)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    return dict(body)


def test_a_miss_answers_202_with_a_pending_job_and_its_location(
        client: Client, namespace: str) -> None:
    text = text_about("lighthouse")
    response = post(client, {"input": text})
    assert response.status_code == 202
    body = response.json()
    key = normalize_input(text).cache_key(namespace)
    assert body == {"job_id": body["job_id"], "status": "pending", "cached": False,
                    "cache_key": key}
    assert response["Location"].endswith(f"/api/status/{body['job_id']}")
    assert (response["X-Cache"], response["X-Cache-Key"]) == ("MISS", key)
    job = Job.objects.get(id=body["job_id"])
    assert (job.status, job.kind, job.attempts) == ("pending", "text", 0)


def test_a_hit_answers_200_with_summary_and_tags(client: Client, namespace: str) -> None:
    text = text_about("orchard")
    key = normalize_input(text).cache_key(namespace)
    cache.set_summary(key, {"job_id": "0b4d3c1e-0000-4000-8000-000000000001",
                            "summary": "One. Two.", "tags": ["a", "b"]}, ttl=60)
    response = post(client, {"input": "  " + text.replace(" ", "   ") + "\n"})
    assert response.status_code == 200
    assert response.json() == {"job_id": "0b4d3c1e-0000-4000-8000-000000000001",
                               "status": "completed", "cached": True, "cache_key": key,
                               "summary": "One. Two.", "tags": ["a", "b"]}
    assert (response["X-Cache"], response["X-Cache-Key"]) == ("HIT", key)
    assert "Location" not in response


def test_refresh_bypasses_a_cached_answer(client: Client, namespace: str) -> None:
    text = text_about("harbour")
    cache.set_summary(normalize_input(text).cache_key(namespace),
                      {"job_id": str(uuid.uuid4()), "summary": "A. B.", "tags": ["x", "y"]},
                      ttl=60)
    response = post(client, {"input": text, "refresh": True})
    assert response.status_code == 202
    assert Job.objects.get(id=response.json()["job_id"]).refresh is True


def test_identical_submits_share_one_job_while_it_is_pending(client: Client) -> None:
    text = text_about("glacier")
    first = post(client, {"input": text})
    second = post(client, {"input": text.replace(". ", ".  \n ")})
    assert second.json() == first.json()
    assert Job.objects.count() == 1
    # The first submit created the job, the second joined it.
    assert (first["X-Cache"], second["X-Cache"]) == ("MISS", "JOINED")
    assert first["X-Cache-Key"] == second["X-Cache-Key"] == first.json()["cache_key"]
    # Case is kept: a lower-cased text is another input.
    other = post(client, {"input": text.lower()}).json()
    assert other["job_id"] != first.json()["job_id"]


def test_a_url_that_failed_moments_ago_is_answered_as_failed_not_as_a_hit(
        client: Client, namespace: str) -> None:
    url = "https://example.com/gone"
    key = normalize_input(url).cache_key(namespace)
    job = Job.objects.create(kind="url", input_hash=key, input_text=url, url=url,
                             status="failed", error="HTTP 404", error_code="http_error")
    cache.remember_failure(key, str(job.id), ttl=60)
    response = post(client, {"input": url})
    assert response.status_code == 200
    assert response.json() == {"job_id": str(job.id), "status": "failed", "cached": True,
                               "cache_key": key, "error": "HTTP 404", "code": "http_error"}
    assert (response["X-Cache"], response["X-Cache-Key"]) == ("FAILED", key)


def test_a_stale_inflight_marker_is_replaced(client: Client, namespace: str) -> None:
    text = text_about("quarry")
    key = normalize_input(text).cache_key(namespace)
    inflight.claim(key, str(uuid.uuid4()))  # its job row never appeared
    started = time.monotonic()
    response = post(client, {"input": text})
    assert response.status_code == 202
    assert Job.objects.filter(id=response.json()["job_id"]).exists()
    assert time.monotonic() - started < 10


def test_status_shapes_for_pending_completed_and_failed(client: Client) -> None:
    job = Job.objects.create(kind="text", input_hash="h", input_text="t", stage="queued")
    body = client.get(f"/api/status/{job.id}").json()
    assert body["status"] == "pending" and "summary" not in body and "error" not in body
    assert body["created_at"]

    Job.objects.filter(id=job.id).update(status="completed", summary="S1. S2.", tags=["a", "b"],
                                         duration_ms=42, completed_at=job.created_at)
    body = client.get(f"/api/status/{job.id}").json()
    assert (body["summary"], body["tags"], body["duration_ms"]) == ("S1. S2.", ["a", "b"], 42)
    assert body["completed_at"]

    Job.objects.filter(id=job.id).update(status="failed", error="boom", error_code="ai_blocked")
    body = client.get(f"/api/status/{job.id}").json()
    assert (body["status"], body["error"], body["code"]) == ("failed", "boom", "ai_blocked")


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid", "1"])
def test_unknown_job_ids_are_404_json(client: Client, job_id: str) -> None:
    assert_error(client.get(f"/api/status/{job_id}"), 404, "not_found")


@pytest.mark.parametrize(("body", "code"), [
    ({"input": ""}, "empty_input"),
    ({"input": "   \n "}, "empty_input"),
    ({}, "required"),
    ({"input": 42}, "invalid"),
    ({"input": ["a"]}, "invalid"),
    ({"input": None}, "null"),
    ({"input": "One sentence only"}, "input_too_short"),
    ({"input": text_about("x"), "refresh": "yes"}, "invalid"),
    ([1, 2], "invalid"),
    ("just a string", "invalid"),
    ({"input": "ftp://example.com/a"}, "blocked_url"),
    ({"input": "http://user:pw@example.com/"}, "blocked_url"),
    ({"input": "http://127.0.0.1/admin"}, "blocked_url"),
    ({"input": "http://169.254.169.254/latest/meta-data/"}, "blocked_url"),
])
def test_bad_submissions_are_400_json(client: Client, body: Any, code: str) -> None:
    assert_error(post(client, body), 400, code)
    assert Job.objects.count() == 0


def test_malformed_json_is_400(client: Client) -> None:
    response = client.post("/api/submit", data="{nope", content_type="application/json")
    assert_error(response, 400, "malformed_json")


def test_wrong_content_type_is_415(client: Client) -> None:
    response = client.post("/api/submit", data="input=hello", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


def test_oversized_input_is_413(client: Client, settings: Any) -> None:
    settings.MAX_INPUT_CHARS = 1000
    assert_error(post(client, {"input": "word. " * 400}), 413, "input_too_large")


def test_unknown_api_paths_and_methods_are_json(client: Client) -> None:
    assert_error(client.get("/api/nope"), 404, "not_found")
    assert_error(client.get("/api/submit"), 405, "method_not_allowed")


def test_trailing_slash_is_accepted(client: Client) -> None:
    response = client.post("/api/submit/", data=json.dumps({"input": text_about("slash")}),
                           content_type="application/json")
    assert response.status_code == 202


def test_analytics_counts_requests_hits_and_misses(client: Client, namespace: str) -> None:
    text = text_about("meadow")
    post(client, {"input": text})
    post(client, {"input": text})
    cache.set_summary(normalize_input(text).cache_key(namespace),
                      {"job_id": str(uuid.uuid4()), "summary": "A. B.", "tags": ["x", "y"]},
                      ttl=60)
    post(client, {"input": text})
    body = client.get("/api/analytics").json()
    assert body["total_requests"] == 3
    assert (body["cache_hits"], body["cache_misses"]) == (1, 2)
    assert body["joined"] == 1  # the second submit joined the first one's job
    assert body["queue_size"] == 1
    assert set(body) >= {"failed_jobs", "avg_processing_time_ms", "failure_rate"}


def test_health_is_200_when_everything_answers(client: Client) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_valkey_down_gives_quick_503s(client: Client, settings: Any) -> None:
    settings.VALKEY_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    started = time.monotonic()
    response = post(client, {"input": text_about("outage")})
    assert time.monotonic() - started < 3
    body = assert_error(response, 503, "valkey_unavailable")
    assert "Valkey" in body["error"]
    assert response["Retry-After"]
    health = client.get("/api/health")
    assert health.status_code == 503
    assert health.json()["valkey"].startswith("error")
    assert Job.objects.count() == 0


def test_cors_preflight_allows_other_origins(client: Client, settings: Any) -> None:
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example"]
    response = client.options("/api/submit", HTTP_ORIGIN="https://app.example",
                              HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                              HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://app.example"
    assert "POST" in response["Access-Control-Allow-Methods"]
    other = client.options("/api/submit", HTTP_ORIGIN="https://evil.example",
                           HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert "Access-Control-Allow-Origin" not in other


def test_browsable_api_renders_html_for_browsers(client: Client) -> None:
    response = client.get("/api/status/" + str(uuid.uuid4()), HTTP_ACCEPT="text/html")
    assert response.status_code == 404
    assert b"<html" in response.content.lower()
    page = client.get("/api/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert b"/api/submit" in page.content


# --- Database errors: only unavailability is a 503 ---------------------------

class DatabaseTrouble(APIView):
    """A real DRF view that meets the database error the test names (a real
    one where the database can produce it on demand)."""

    def get(self, request: Request, kind: str) -> Response:
        with transaction.atomic():
            if kind == "data" and connection.vendor == "postgresql":
                # A URL longer than its column, as in issue 7.
                Job.objects.create(kind="url", input_hash="h", input_text="t", url="x" * 3000)
                raise AssertionError("PostgreSQL stored 3,000 characters in a 2,048 column")
            if kind == "integrity":
                job = Job.objects.create(kind="text", input_hash="h", input_text="t")
                Job.objects.create(id=job.id, kind="text", input_hash="h", input_text="t")
            raise {"data": DataError("value too long for type character varying(2048)"),
                   "programming": ProgrammingError("relation does not exist"),
                   "operational": OperationalError("could not connect to server"),
                   "interface": InterfaceError("connection already closed")}[kind]


urlpatterns = [path("api/trouble/<str:kind>", DatabaseTrouble.as_view())]


@pytest.mark.parametrize(("kind", "status", "code"), [
    ("data", 400, "invalid_input"),
    ("integrity", 500, "internal_error"),
    ("programming", 500, "internal_error"),
    ("operational", 503, "database_unavailable"),
    ("interface", 503, "database_unavailable"),
])
def test_only_an_unavailable_database_is_a_503(client: Client, settings: Any, kind: str,
                                                 status: int, code: str) -> None:
    settings.ROOT_URLCONF = __name__
    response = client.get(f"/api/trouble/{kind}")
    assert_error(response, status, code)
    # Retry-After promises that trying again helps: only true of an outage.
    assert ("Retry-After" in response) == (status == 503)


# --- Behind a TLS proxy -------------------------------------------------------

def test_location_is_https_behind_a_tls_proxy_only_when_configured(
        client: Client, settings: Any) -> None:
    spoofed = post(client, {"input": text_about("tls one")}, HTTP_X_FORWARDED_PROTO="https")
    assert spoofed["Location"].startswith("http://")  # not configured: header ignored
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = post(client, {"input": text_about("tls two")}, HTTP_X_FORWARDED_PROTO="https")
    assert proxied["Location"].startswith("https://")


@pytest.mark.parametrize(("value", "expected"), [
    ("", "None"), ("0", "None"), ("1", "('HTTP_X_FORWARDED_PROTO', 'https')")])
def test_the_proxy_ssl_header_is_opt_in_from_the_environment(value: str, expected: str) -> None:
    env = {**os.environ, "DJANGO_SECURE_PROXY_SSL_HEADER": value}
    shown = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; "
                               "print(settings.SECURE_PROXY_SSL_HEADER)"],
        env={**env, "DJANGO_SETTINGS_MODULE": "smartcache.settings"},
        capture_output=True, text=True, check=True, timeout=60)
    assert shown.stdout.strip() == expected


def test_a_bad_host_header_is_a_json_error(client: Client) -> None:
    response = client.post("/api/submit", {"input": "x"}, content_type="application/json",
                           HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert set(response.json()) == {"error", "code"}


def test_the_documented_request_examples_are_accepted(client: Client) -> None:
    # Swagger's "Try it out" starts from these: they must not answer 400.
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for endpoint in ("/api/submit", "/api/submit/batch"):
        operation = schema["paths"][endpoint]["post"]
        content = operation["requestBody"]["content"]["application/json"]
        examples = [example["value"] for example in content["examples"].values()]
        assert examples
        for body in examples:
            response = client.post(endpoint, data=json.dumps(body),
                                   content_type="application/json")
            assert response.status_code == 202, (endpoint, body, response.content)


@pytest.mark.django_db
def test_an_unknown_format_parameter_is_ignored(client: Client) -> None:
    """DRF answers an unknown ?format= with 404; the API serves JSON instead."""
    response = client.get("/api/analytics/timeline?format=null&minutes=5")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert client.get("/api/analytics?format=json").status_code == 200
