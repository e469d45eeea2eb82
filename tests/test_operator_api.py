"""Dead letters (/api/jobs, retry), the rate limit and the API docs."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest
import requests
from django.test import Client

from summaries.models import Job
from tests.helpers.jobs import make_job
from tests.helpers.texts import text_about

pytestmark = pytest.mark.django_db


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


# --- Staff sessions (the admin's login) on the operator endpoints -----------

def session_for(client: Client, user: Any, base_url: str) -> requests.Session:
    """A requests session carrying `user`'s real Django session cookie."""
    client.force_login(user)
    browser = requests.Session()
    browser.cookies.set("sessionid", client.cookies["sessionid"].value)
    return browser


def csrf_token(browser: requests.Session, base_url: str) -> str:
    """The CSRF cookie a browser gets from an admin page."""
    assert browser.get(f"{base_url}/admin/", timeout=10).status_code == 200
    return str(browser.cookies["csrftoken"])


def test_a_staff_session_may_use_the_job_endpoints_with_csrf(
        live_server: Any, client: Client, settings: Any, django_user_model: Any,
        no_enqueue: None) -> None:
    settings.JOBS_API_TOKEN = "s3cret"
    job = make_job(status="failed", error="boom", error_code="ai_unavailable")
    staff = django_user_model.objects.create_user("operator", password="pw-1234567",
                                                  is_staff=True)
    browser = session_for(client, staff, live_server.url)
    base = live_server.url

    listed = browser.get(f"{base}/api/jobs", timeout=10)
    assert listed.status_code == 200, listed.text
    assert listed.json()["count"] == 1
    # A state-changing POST from a browser session needs Django's CSRF token...
    forged = browser.post(f"{base}/api/jobs/{job.id}/retry", timeout=10)
    assert forged.status_code == 403
    assert forged.json()["code"] == "permission_denied"
    assert "CSRF" in forged.json()["error"]
    token = csrf_token(browser, base)
    retried = browser.post(f"{base}/api/jobs/{job.id}/retry", headers={"X-CSRFToken": token},
                        timeout=10)
    assert retried.status_code == 202, retried.text
    # ...while the public endpoints never ask for one, logged in or not.
    public = browser.post(f"{base}/api/submit", json={"input": ""}, timeout=10)
    assert public.status_code == 400
    assert public.json()["code"] == "empty_input"


def test_a_bearer_token_needs_no_csrf_even_beside_a_session(
        live_server: Any, client: Client, settings: Any, django_user_model: Any,
        no_enqueue: None) -> None:
    settings.JOBS_API_TOKEN = "s3cret"
    job = make_job(status="failed", error="boom", error_code="ai_unavailable")
    user = django_user_model.objects.create_user("someone", password="pw-1234567")
    browser = session_for(client, user, live_server.url)
    retried = browser.post(f"{live_server.url}/api/jobs/{job.id}/retry",
                        headers={"Authorization": "Bearer s3cret"}, timeout=10)
    assert retried.status_code == 202, retried.text


def test_a_non_staff_session_is_still_refused(
        live_server: Any, client: Client, settings: Any, django_user_model: Any) -> None:
    settings.JOBS_API_TOKEN = "s3cret"
    job = make_job(status="failed")
    user = django_user_model.objects.create_user("visitor", password="pw-1234567")
    browser = session_for(client, user, live_server.url)
    base = live_server.url
    listed = browser.get(f"{base}/api/jobs", timeout=10)
    assert listed.status_code == 403
    assert listed.json()["code"] == "permission_denied"
    token = csrf_token_anonymous(browser, base)
    retried = browser.post(f"{base}/api/jobs/{job.id}/retry", headers={"X-CSRFToken": token},
                        timeout=10)
    assert retried.status_code == 403
    assert Job.objects.get(id=job.id).status == "failed"


def csrf_token_anonymous(browser: requests.Session, base_url: str) -> str:
    """The CSRF cookie of the admin login page (which a non-staff user sees)."""
    browser.get(f"{base_url}/admin/login/", timeout=10)
    return str(browser.cookies["csrftoken"])


# --- The rate limit's notion of a client -------------------------------------

def submit_from(base_url: str, forwarded_for: str | None = None,
                source: str = "127.0.0.1") -> int:
    """POST an (invalid, so never queued) submission from a given loopback
    address: the throttle runs before validation, so it still counts."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10,
                                            source_address=(source, 0))
    headers = {"Content-Type": "application/json"}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    try:
        connection.request("POST", "/api/submit", body=b'{"input": ""}', headers=headers)
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 429 or body["code"] == "empty_input", body
    return response.status


def test_a_client_cannot_dodge_the_rate_limit_with_x_forwarded_for(
        live_server: Any, settings: Any) -> None:
    settings.RATE_LIMIT = (3, 60)
    codes = [submit_from(live_server.url, f"203.0.113.{i}") for i in range(6)]
    assert codes == [400, 400, 400, 429, 429, 429]


def test_a_client_cannot_spend_another_clients_allowance(
        live_server: Any, settings: Any) -> None:
    settings.RATE_LIMIT = (3, 60)
    assert [submit_from(live_server.url, "127.0.0.2") for _ in range(4)][-1] == 429
    # The address it named has its whole allowance.
    assert submit_from(live_server.url, source="127.0.0.2") == 400


def test_behind_one_proxy_the_right_most_forwarded_address_is_the_client(
        live_server: Any, settings: Any) -> None:
    settings.RATE_LIMIT = (3, 60)
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # What the client wrote (left) varies; what our proxy appended does not.
    codes = [submit_from(live_server.url, f"10.0.0.{i}, 198.51.100.7") for i in range(4)]
    assert codes == [400, 400, 400, 429]
    assert submit_from(live_server.url, "198.51.100.7, 198.51.100.8") == 400
