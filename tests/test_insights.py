"""Failure insights: GET /api/insights and the admin's page and job-list note."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from summaries.models import Job
from summaries.services import insights
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db


def failed_job(code: str, *, hours_ago: float = 1, **fields: Any) -> Job:
    when = timezone.now() - timedelta(hours=hours_ago)
    defaults = {"kind": "text", "input_hash": "h" * 64, "input_text": "t",
                "status": "failed", "error": f"it failed: {code}", "error_code": code,
                "completed_at": when}
    return Job.objects.create(**{**defaults, **fields})


def test_recent_failures_are_grouped_by_code_with_an_action(client: Client) -> None:
    for _ in range(3):
        failed_job("ai_rate_limited")
    newest = failed_job("http_error", hours_ago=0.5, kind="url",
                        url="https://example.com/a", error="HTTP 403 from the site")
    failed_job("http_error", hours_ago=2, kind="url", url="https://example.com/b")
    failed_job("ai_blocked", hours_ago=30)  # outside the default 24 h
    Job.objects.create(kind="text", input_hash="c" * 64, input_text="t", status="completed",
                       completed_at=timezone.now())

    body = client.get("/api/insights").json()
    assert (body["hours"], body["total_failures"]) == (24, 5)
    assert [(g["code"], g["count"]) for g in body["groups"]] == [
        ("ai_rate_limited", 3), ("http_error", 2)]
    quota, site = body["groups"]
    assert quota["action"] == insights.PROVIDER_QUOTA
    assert site["action"] == insights.SITE_BLOCKS
    assert (site["example_job_id"], site["example_error"], site["example_url"]) == (
        str(newest.id), "HTTP 403 from the site", "https://example.com/a")

    wider = client.get("/api/insights?hours=48").json()
    assert {g["code"]: g["count"] for g in wider["groups"]}["ai_blocked"] == 1
    assert wider["groups"][-1]["action"].startswith("Fix the input")


@pytest.mark.parametrize("query", ["hours=0", "hours=x", "hours=100000"])
def test_bad_hours_are_400(client: Client, query: str) -> None:
    response = client.get(f"/api/insights?{query}")
    assert response.status_code == 400
    assert response.json()["code"] in {"invalid", "min_value", "max_value"}


def test_insights_are_guarded_like_the_job_list(client: Client, settings: Any) -> None:
    settings.JOBS_API_TOKEN = "s3cret"
    assert client.get("/api/insights").status_code == 403
    assert client.get("/api/insights", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def test_an_unknown_code_asks_for_the_log() -> None:
    assert insights.suggested_action("something_new") == insights.INVESTIGATE


@pytest.mark.django_db(transaction=True)
def test_a_real_failure_shows_up(api: Api, gemini: FakeGemini) -> None:
    gemini.mode = "blocked"
    job_id = api.submit(unique_text("insight")).json()["job_id"]
    assert api.wait(job_id)["code"] == "ai_blocked"
    body = api.http.get(f"{api.base_url}/api/insights", timeout=10).json()
    group = next(g for g in body["groups"] if g["code"] == "ai_blocked")
    assert group["count"] == 1
    assert group["example_job_id"] == job_id


def test_the_admin_shows_the_same(admin_client: Client) -> None:
    job = failed_job("fetch_timeout", kind="url", url="https://slow.example/")
    listing = admin_client.get("/admin/summaries/job/")
    assert listing.status_code == 200
    assert b"Failures in the last 24 h: fetch_timeout (1)" in listing.content
    assert b"/admin/summaries/job/insights/" in listing.content
    page = admin_client.get("/admin/summaries/job/insights/?hours=1x")
    assert page.status_code == 200
    html = page.content.decode()
    assert "fetch_timeout" in html and str(job.id) in html and "https://slow.example/" in html
    assert "Retry later" in html
