"""Dead letters (/api/jobs, retry), the rate limit and the API docs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from summaries.models import Job
from tests.conftest import text_about

pytestmark = pytest.mark.django_db


def make_job(**fields: Any) -> Job:
    defaults = {"kind": "text", "input_hash": "h" * 64, "input_text": "t"}
    return Job.objects.create(**{**defaults, **fields})


def test_jobs_are_listed_newest_first_with_filters_and_pages(client: Client) -> None:
    failed = [make_job(status="failed", error="boom", error_code="ai_blocked") for _ in range(3)]
    make_job(status="completed", summary="A. B.", tags=["a", "b"])
    make_job(status="failed", kind="url", url="https://example.com/", error_code="http_error")

    everything = client.get("/api/jobs").json()
    assert everything["count"] == 5
    dead = client.get("/api/jobs?status=failed&kind=text&page_size=2").json()
    assert dead["count"] == 3
    assert [job["job_id"] for job in dead["results"]] == [str(j.id) for j in failed[::-1][:2]]
    assert all(job["code"] == "ai_blocked" for job in dead["results"])
    assert dead["next"] and "page=2" in dead["next"]
    last = client.get(dead["next"]).json()
    assert [job["job_id"] for job in last["results"]] == [str(failed[0].id)]


@pytest.mark.parametrize("query", ["status=lost", "kind=pdf", "page=0", "page_size=999"])
def test_bad_job_filters_are_400(client: Client, query: str) -> None:
    response = client.get(f"/api/jobs?{query}")
    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_choice", "min_value", "max_value"}


def test_a_page_past_the_end_is_404(client: Client) -> None:
    response = client.get("/api/jobs?page=9")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_failed_job_can_be_retried(client: Client) -> None:
    job = make_job(status="failed", error="boom", error_code="ai_unavailable", attempts=5)
    response = client.post(f"/api/jobs/{job.id}/retry")
    assert response.status_code == 202
    body = response.json()
    assert (body["job_id"], body["status"], body["attempts"]) == (str(job.id), "pending", 0)
    job.refresh_from_db()
    assert (job.status, job.error, job.error_code) == ("pending", "", "")


def test_only_failed_jobs_can_be_retried(client: Client) -> None:
    job = make_job(status="completed")
    response = client.post(f"/api/jobs/{job.id}/retry")
    assert response.status_code == 409
    assert response.json()["code"] == "not_failed"
    assert client.post("/api/jobs/00000000-0000-4000-8000-000000000000/retry").status_code == 404


def test_an_operator_token_guards_the_job_endpoints(client: Client, settings: Any) -> None:
    settings.JOBS_API_TOKEN = "s3cret"
    job = make_job(status="failed")
    assert client.get("/api/jobs").status_code == 403
    assert client.post(f"/api/jobs/{job.id}/retry").status_code == 403
    assert client.get("/api/jobs", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    allowed = client.get("/api/jobs", HTTP_AUTHORIZATION="Bearer s3cret")
    assert allowed.status_code == 200
    assert allowed.json()["count"] == 1


def test_submissions_over_the_rate_limit_get_429_with_retry_after(
        client: Client, settings: Any) -> None:
    settings.RATE_LIMIT = (3, 60)
    answers = [client.post("/api/submit", data=json.dumps({"input": text_about(f"r{i}")}),
                           content_type="application/json") for i in range(5)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
    assert answers[3].json()["code"] == "throttled"
    assert 1 <= int(answers[3]["Retry-After"]) <= 61
    assert Job.objects.count() == 3
    # Another client has its own allowance.
    other = client.post("/api/submit", data=json.dumps({"input": text_about("r9")}),
                        content_type="application/json", REMOTE_ADDR="10.1.2.3")
    assert other.status_code == 202


def test_openapi_schema_and_swagger_ui_are_served(client: Client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/submit", "/api/status/{job_id}", "/api/jobs", "/api/analytics",
            "/api/health"} <= set(schema["paths"])
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn" not in docs.content.lower()  # assets are served locally
