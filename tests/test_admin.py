"""The read-only job admin: list, filters, search, detail and its actions
(retry, re-summarise, purge: tests/test_cache_control.py), against real
Valkey (and a real worker for the retry)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client

from summaries.admin import STATUS_COLOURS
from summaries.core.inputs import normalize_input
from summaries.models import Job
from summaries.services.config import summarizer
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.jobs import make_job
from tests.helpers.polling import wait_for
from tests.helpers.processes import Worker
from tests.helpers.texts import unique_text

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


def test_the_job_list_fits_one_line_per_job(staff: Client) -> None:
    long_text = "A sentence about the harbour. " * 40
    failed = make_job(status="failed", error_code="fetch_timeout", attempts=2, duration_ms=1234,
                      stage="failed", input_text=long_text)
    page = staff.get("/admin/summaries/job/").content.decode()
    # The short id links to the job; the full id is its title.
    assert f'<code title="{failed.id}">{str(failed.id)[:8]}</code>' in page
    # The input is cut to one line, the whole of it in the title.
    assert f'title="{long_text[:2000].strip()}' in page.replace("&#x27;", "'")
    assert "text-overflow:ellipsis" in page
    for column in ("column-coloured_status", "column-stage", "column-error_code",
                   "column-tries", "column-duration", "column-created"):
        assert column in page
    assert ">fetch_timeout<" in page and ">1234 ms<" in page
    assert f'<b style="color:{STATUS_COLOURS["failed"]};white-space:nowrap">failed</b>' in page


def test_a_job_is_found_by_its_short_id(staff: Client) -> None:
    job = make_job()
    other = make_job(input_hash="d" * 64, status="completed")
    for query in (str(job.id)[:8], str(job.id)[:13], str(job.id).upper()):
        found = staff.get("/admin/summaries/job/", {"q": query}).content
        assert str(job.id).encode() in found and str(other.id).encode() not in found, query


def test_each_job_links_to_its_task_in_flower(staff: Client, settings: Any) -> None:
    settings.FLOWER_URL = "http://127.0.0.1:5599/"
    job = make_job()
    link = f'href="http://127.0.0.1:5599/task/{job.id}"'
    assert link in staff.get(f"/admin/summaries/job/{job.id}/change/").content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_enqueue")
def test_the_resummarise_action_starts_a_new_job_with_refresh(staff: Client,
                                                              valkey: redis.Redis) -> None:
    text = unique_text("resummarise")
    namespace = summarizer().cache_namespace
    old = make_job(status="completed", input_text=text, summary="An old summary. Two.",
                   tags=["old", "summary"], provider="old:model:1",
                   input_hash=normalize_input(text).cache_key(namespace))
    unstored = make_job(status="completed", input_text="", store=False, input_hash="e" * 64)
    response = staff.post("/admin/summaries/job/", {
        "action": "resummarise", "_selected_action": [str(old.id), str(unstored.id)]},
        follow=True)
    assert response.status_code == 200
    new = Job.objects.exclude(id__in=[old.id, unstored.id]).get()
    assert (new.input_hash, new.refresh, new.status) == (old.input_hash, True, "pending")
    assert "1 skipped" in response.content.decode()
    assert valkey.get(f"inflight:{old.input_hash}") == str(new.id)


@pytest.mark.django_db(transaction=True)
def test_the_retry_action_requeues_a_failed_job_that_a_worker_completes(
        staff: Client, worker: Worker, gemini: FakeGemini) -> None:
    text = unique_text("admin retry")
    namespace = summarizer().cache_namespace
    failed = make_job(status="failed", error="AI unavailable", error_code="ai_unavailable",
                      input_text=text, input_hash=normalize_input(text).cache_key(namespace))
    staff.post("/admin/summaries/job/", {"action": "retry_failed",
                                         "_selected_action": [str(failed.id)]})
    wait_for(lambda: Job.objects.get(id=failed.id).status in (Job.Status.COMPLETED,
                                                              Job.Status.FAILED), 30,
             "the retried job to finish")
    done = Job.objects.get(id=failed.id)
    assert (done.status, done.error_code, done.attempts) == ("completed", "", 1)
    assert done.summary
