"""Cache control over real HTTP: max_age on submit, store:false, and purging a
cached summary (by key, by input, from the admin) on every API process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from summaries.core.inputs import normalize_input
from summaries.infra import cache, local_cache
from summaries.models import Job
from tests.helpers.api import Api
from tests.helpers.fakes.web import FakeWeb
from tests.helpers.pages import NEWS, page_html
from tests.helpers.processes import WebServer
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db(transaction=True)

HOUR = 3600


def completed(api: Api, text: str, **extra: Any) -> dict[str, Any]:
    """Submit ``text`` (a miss) and wait for its job; the status body."""
    response = api.submit(text, **extra)
    assert response.status_code == 202, response.text
    body = api.wait(response.json()["job_id"])
    assert body["status"] == "completed", body
    return body


def age_entry(key: str, seconds: float) -> None:
    """Make the cached summary under ``key`` look ``seconds`` old (announced,
    and this process's copy dropped: the live server runs in it)."""
    entry = cache.get_summary(key)
    assert entry is not None
    cache.set_summary(key, entry, ttl=HOUR, cached_at=time.time() - seconds)
    local_cache.clear()


def key_of(text: str, namespace: str) -> str:
    return normalize_input(text).cache_key(namespace)


def eventually(check: Any, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


# --- max_age ---------------------------------------------------------------------


def test_max_age_refreshes_only_a_summary_older_than_it(api: Api, namespace: str) -> None:
    text = unique_text("freshness")
    first = completed(api, text)
    age_entry(key_of(text, namespace), HOUR)

    plain = api.submit(text)  # no max_age: the TTL rules
    assert (plain.status_code, plain.headers["X-Cache"]) == (200, "HIT")
    young_enough = api.submit(text, max_age=2 * HOUR)
    assert (young_enough.status_code, young_enough.json()["job_id"]) == (200, first["job_id"])
    assert "refreshed" not in young_enough.json()

    stale = api.submit(text, max_age=60)
    assert (stale.status_code, stale.headers["X-Cache"]) == (202, "MISS")
    assert stale.json()["refreshed"] is True
    assert stale.json()["job_id"] != first["job_id"]
    # Made anew by the AI, not copied from the old entry.
    assert api.wait(stale.json()["job_id"])["cached"] is False

    fresh = api.submit(text, max_age=60)
    assert (fresh.status_code, fresh.json()["job_id"]) == (200, stale.json()["job_id"])


def test_an_entry_without_cached_at_is_too_old_for_any_max_age(
        api: Api, valkey: redis.Redis, namespace: str) -> None:
    text = unique_text("legacy entry")
    first = completed(api, text)
    key = key_of(text, namespace)
    # An entry written before payloads carried cached_at.
    valkey.set(f"summary:{key}", json.dumps({"job_id": first["job_id"], "summary": "Old. Old.",
                                              "tags": ["old", "entry"]}), ex=HOUR)
    local_cache.clear()
    assert api.submit(text).json()["summary"] == "Old. Old."
    refreshed = api.submit(text, max_age=10 * 365 * 24 * HOUR)
    assert (refreshed.status_code, refreshed.json().get("refreshed")) == (202, True)


def test_a_completed_row_is_not_reused_past_max_age(api: Api, namespace: str) -> None:
    """Valkey lost the entry: the completed row (within the cache TTL) answers
    and re-caches it only if it is younger than max_age."""
    text = unique_text("row age")
    first = completed(api, text)
    cache.delete_summary(key_of(text, namespace))
    assert settings.CACHE_TTL > 3 * HOUR
    Job.objects.filter(id=first["job_id"]).update(
        completed_at=timezone.now() - timedelta(hours=2))
    response = api.submit(text, max_age=HOUR)
    assert response.status_code == 202
    assert response.json()["job_id"] != first["job_id"]


@pytest.mark.parametrize("max_age", [-1, "60", 1.5, True, None])
def test_max_age_is_a_whole_number_of_seconds(api: Api, max_age: Any) -> None:
    response = api.submit(unique_text("bad max_age"), max_age=max_age)
    assert response.status_code == 400
    assert "max_age" in response.json()["error"]


def test_batch_items_take_max_age_and_store(api: Api, namespace: str) -> None:
    text = unique_text("batch freshness")
    first = completed(api, text)
    age_entry(key_of(text, namespace), HOUR)
    other = unique_text("batch unstored")
    response = requests.post(f"{api.base_url}/api/submit/batch", timeout=15, json={"inputs": [
        {"input": text, "max_age": 60}, {"input": other, "store": False}, text]})
    assert response.status_code == 202, response.text
    stale, unstored, plain = response.json()["results"]
    assert (stale["http_status"], stale["refreshed"]) == (202, True)
    assert stale["job_id"] != first["job_id"]
    # Without max_age the old entry still answers while the refresh runs.
    assert (plain["http_status"], plain["job_id"]) == (200, first["job_id"])
    assert Job.objects.get(id=unstored["job_id"]).store is False


# --- store:false -----------------------------------------------------------------


def test_store_false_caches_nothing_and_forgets_the_input(
        api: Api, valkey: redis.Redis, namespace: str) -> None:
    text = unique_text("private")
    body = completed(api, text, store=False)
    assert body["summary"]  # the client polls its answer as usual
    key = key_of(text, namespace)
    assert valkey.get(f"summary:{key}") is None
    job = Job.objects.get(id=body["job_id"])
    assert (job.store, job.input_text, job.input_hash) == (False, "", key)

    again = api.submit(text)  # not answered from the store:false row either
    assert (again.status_code, again.headers["X-Cache"]) == (202, "MISS")
    assert again.json()["job_id"] != body["job_id"]
    assert api.wait(again.json()["job_id"])["cached"] is False
    # A store:false submit of a cached input may read the cache.
    hit = api.submit(text, store=False)
    assert (hit.status_code, hit.json()["job_id"]) == (200, again.json()["job_id"])


@pytest.fixture(scope="module")
def site() -> Iterator[FakeWeb]:
    with FakeWeb() as server:
        server.add_page("/private/story", page_html(NEWS))
        server.add_status("/private/gone", 404)
        yield server


def test_store_false_blanks_a_url_jobs_input_when_it_completes_or_fails(
        api: Api, site: FakeWeb, valkey: redis.Redis, namespace: str) -> None:
    done = completed(api, site.url("/private/story"), store=False)
    job = Job.objects.get(id=done["job_id"])
    assert (job.input_text, job.url, job.final_url, job.extracted_text) == ("", "", "", "")
    assert done["url"] == ""
    assert job.summary and job.extracted_chars
    assert not list(valkey.scan_iter(match="summary:*"))  # neither the URL's nor the article's

    gone = api.submit(site.url("/private/gone"), store=False)
    failed = api.wait(gone.json()["job_id"])
    assert failed["status"] == "failed"
    job = Job.objects.get(id=failed["job_id"])
    assert (job.input_text, job.url) == ("", "")
    retry = api.http.post(f"{api.base_url}/api/jobs/{job.id}/retry", timeout=10)
    assert retry.status_code == 409  # nothing left to retry with


# --- purge -----------------------------------------------------------------------


def purge_key(api: Api, key: str, **headers: str) -> requests.Response:
    return api.http.delete(f"{api.base_url}/api/cache/{key}", headers=headers, timeout=10)


def purge_input(api: Api, text: str, **headers: str) -> requests.Response:
    return api.http.post(f"{api.base_url}/api/cache/purge", json={"input": text},
                         headers=headers, timeout=10)


def test_purge_by_key_makes_the_next_submit_a_miss(api: Api, valkey: redis.Redis) -> None:
    text = unique_text("purge by key")
    first = completed(api, text)
    key = api.submit(text).headers["X-Cache-Key"]  # a hit, held in memory now

    response = purge_key(api, key)
    assert response.status_code == 200
    assert response.json() == {"cache_key": key, "deleted": True, "jobs_purged": 1}
    assert valkey.get(f"summary:{key}") is None
    # Not answered (nor re-cached) from the completed row: a new job.
    again = api.submit(text)
    assert (again.status_code, again.headers["X-Cache"]) == (202, "MISS")
    assert again.json()["job_id"] != first["job_id"]
    assert api.wait(again.json()["job_id"])["cached"] is False  # summarised anew

    assert purge_key(api, "0" * 64).json() == {"cache_key": "0" * 64, "deleted": False,
                                               "jobs_purged": 0}
    bad = purge_key(api, "not-a-key")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_cache_key")


def test_purge_by_input_stops_every_process_serving_it(api: Api, web_server: WebServer) -> None:
    text = unique_text("purge by input")
    first = completed(api, text)
    other = Api(web_server.url)
    for _ in range(2):  # the second read is from that process's memory
        assert other.submit(text).status_code == 200

    # Keyed as a submit is: the same input, whitespace aside.
    response = purge_input(api, "  " + text.replace(". ", ".\n\n") + "\n")
    assert response.status_code == 200
    assert response.json()["deleted"] is True
    assert eventually(lambda: other.submit(text).status_code == 202)
    assert Job.objects.filter(input_hash=response.json()["cache_key"]).exclude(
        id=first["job_id"]).count() == 1


def test_purging_a_url_removes_its_article_entry_too(api: Api, site: FakeWeb,
                                                     valkey: redis.Redis) -> None:
    url = site.url("/private/story")
    completed(api, url)
    assert len(list(valkey.scan_iter(match="summary:*"))) == 2  # the URL's and the article's
    assert purge_input(api, url).json()["deleted"] is True
    assert not list(valkey.scan_iter(match="summary:*"))
    assert api.wait(api.submit(url).json()["job_id"])["cached"] is False


def test_purge_by_input_purges_every_language_it_was_asked_in(
        api: Api, web_server: WebServer, valkey: redis.Redis) -> None:
    text = unique_text("purge variants")
    languages = [{}, {"language": "de"}, {"language": "pt-BR"}]
    purged = {completed(api, text, **language)["job_id"] for language in languages}
    other = Api(web_server.url)
    for _ in range(2):  # the second read is from that process's memory
        assert other.submit(text, language="de").status_code == 200

    response = purge_input(api, text)
    assert response.status_code == 200
    assert response.json()["deleted"] is True and response.json()["jobs_purged"] == 3
    assert not list(valkey.scan_iter(match="summary:*"))
    # No process serves a purged variant, from Valkey, its memory or a job
    # row: each submit is answered by a new job.
    assert eventually(lambda: other.submit(text, language="de").json()["job_id"] not in purged)
    for language in languages:
        assert api.submit(text, **language).json()["job_id"] not in purged, language


def test_purge_by_key_purges_that_variant_alone(api: Api, valkey: redis.Redis) -> None:
    text = unique_text("purge one variant")
    completed(api, text)
    completed(api, text, language="de")
    german_key = api.submit(text, language="de").headers["X-Cache-Key"]

    assert purge_key(api, german_key).json() == {"cache_key": german_key, "deleted": True,
                                                 "jobs_purged": 1}
    assert api.submit(text, language="de").status_code == 202
    assert api.submit(text).status_code == 200  # the plain summary is another variant


def test_purging_a_url_purges_each_languages_article_entry_and_failure(
        api: Api, site: FakeWeb, valkey: redis.Redis) -> None:
    url = site.url("/private/story")
    completed(api, url)
    completed(api, url, language="de")
    assert len(list(valkey.scan_iter(match="summary:*"))) == 4  # each variant's URL and article
    gone = site.url("/private/gone")
    for language in ({}, {"language": "fr"}):
        failed = api.wait(api.submit(gone, **language).json()["job_id"])
        assert failed["status"] == "failed"
    # Remembered just after the row says failed.
    assert eventually(lambda: len(list(valkey.scan_iter(match="failed:*"))) == 2)

    assert purge_input(api, url).json()["jobs_purged"] == 2
    assert not list(valkey.scan_iter(match="summary:*"))
    purge_input(api, gone)
    assert not list(valkey.scan_iter(match="failed:*"))  # a fetch of each is tried anew
    assert api.submit(gone, language="fr").headers["X-Cache"] == "MISS"


def test_purge_is_for_operators_when_a_token_is_set(api: Api, settings: Any) -> None:
    settings.JOBS_API_TOKEN = "cache-operator-token"  # pytest-django's fixture: restored after
    key = "a" * 64
    assert purge_key(api, key).status_code == 403
    assert purge_key(api, key, Authorization="Bearer wrong").status_code == 403
    assert purge_input(api, unique_text("guarded")).status_code == 403
    assert purge_key(api, key, Authorization="Bearer cache-operator-token").status_code == 200


def test_the_admin_action_purges_the_selected_jobs_inputs(api: Api, valkey: redis.Redis) -> None:
    text = unique_text("admin purge")
    first = completed(api, text)
    staff = Client()
    staff.force_login(User.objects.create_superuser("cacheadmin", "a@example.com", "pw"))
    response = staff.post("/admin/summaries/job/", {
        "action": "purge_cached_summary", "_selected_action": [first["job_id"]]})
    assert response.status_code == 302
    assert not list(valkey.scan_iter(match="summary:*"))
    assert Job.objects.get(id=first["job_id"]).purged_at is not None
    assert api.submit(text).status_code == 202


def test_the_schema_documents_cache_control(api: Api) -> None:
    schema = api.http.get(f"{api.base_url}/api/schema/?format=json", timeout=10).json()
    submit = schema["components"]["schemas"]["SubmitRequest"]["properties"]
    assert {"max_age", "store"} <= submit.keys()
    assert "refreshed" in schema["components"]["schemas"]["SubmitAcceptedResponse"]["properties"]
    assert "delete" in schema["paths"]["/api/cache/{key}"]
    assert "post" in schema["paths"]["/api/cache/purge"]
