"""The read-only job admin: list, filters, search, detail and the retry action."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.helpers.jobs import make_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: Client) -> Client:
    user = User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests")
    client.force_login(user)
    return client


def test_jobs_are_listed_filtered_and_searchable(staff: Client) -> None:
    url_job = make_job(kind="url", url="https://example.com/story", input_hash="b" * 64,
                       status="completed", cached=True)
    text_job = make_job(status="failed", error_code="ai_blocked")
    page = staff.get("/admin/summaries/job/")
    assert page.status_code == 200
    assert str(url_job.id).encode() in page.content and str(text_job.id).encode() in page.content

    failed = staff.get("/admin/summaries/job/?status__exact=failed").content
    assert str(text_job.id).encode() in failed and str(url_job.id).encode() not in failed
    for query in (str(url_job.id), "b" * 64, "example.com/story"):
        found = staff.get("/admin/summaries/job/", {"q": query}).content
        assert str(url_job.id).encode() in found and str(text_job.id).encode() not in found
    assert staff.get("/admin/summaries/job/", {"q": "not-a-uuid"}).status_code == 200
    assert staff.get("/admin/summaries/job/?kind__exact=url&cached__exact=1").status_code == 200


def test_a_job_is_shown_read_only(staff: Client) -> None:
    job = make_job(kind="url", url="https://example.com/a", extracted_text="The article body.")
    page = staff.get(f"/admin/summaries/job/{job.id}/change/")
    assert page.status_code == 200
    assert b"The article body." in page.content
    assert b'name="_save"' not in page.content
    assert staff.get("/admin/summaries/job/add/").status_code == 403
    response = staff.post(f"/admin/summaries/job/{job.id}/change/", {"status": "completed"})
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.status == "pending"


def test_the_retry_action_requeues_failed_jobs_only(staff: Client) -> None:
    failed = make_job(status="failed", error="boom", error_code="ai_unavailable")
    done = make_job(status="completed", input_hash="c" * 64)
    response = staff.post("/admin/summaries/job/", {
        "action": "retry_failed", "_selected_action": [str(failed.id), str(done.id)]})
    assert response.status_code == 302
    failed.refresh_from_db()
    done.refresh_from_db()
    assert (failed.status, failed.error) == ("pending", "")
    assert done.status == "completed"
