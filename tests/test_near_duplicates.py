"""Near-duplicates share one summary (services/near_duplicates.py), end to end:
real HTTP, the session's Celery worker, the fake Gemini (its calls counted),
pages from loopback sites (FakeWeb) and the test Valkey.

A wire story and its syndicated copy from another site (other headline,
byline, boilerplate, a trimmed paragraph) share one AI call; a copy with one
number changed, another language, ``near_duplicates: false``,
NEAR_DUPLICATES=off, refresh and max_age do not share; a purged summary
stops being shared; a store:false summary is never indexed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.utils import timezone

from summaries.models import Job
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.fakes.web import FakeWeb
from tests.helpers.polling import wait_for
from tests.helpers.stories import news_page, story, syndicated

pytestmark = pytest.mark.django_db(transaction=True)


def place() -> str:
    """A city name no other test uses (letters only: a name, not a number)."""
    return "Riverton" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:6])


def reprinted(wire: str, site: str) -> str:
    """The wire story as ``site`` runs it: the syndicated copy under its name."""
    return f"{site}\n\n{syndicated(wire)}"


def completed(api: Api, text: str, **extra: Any) -> dict[str, Any]:
    """Submit ``text`` as a miss and wait for its job to complete."""
    response = api.submit(text, **extra)
    assert (response.status_code, response.headers["X-Cache"]) == (202, "MISS"), response.text
    body = api.wait(response.json()["job_id"])
    assert body["status"] == "completed", body
    return body


def index_members(valkey: redis.Redis) -> set[str]:
    """Every job id in the near-duplicate index's band sets (``nd1:sig:<id>``
    holds a job's signature)."""
    return {str(member) for key in valkey.scan_iter(match="nd1:*", count=1000)
            if not key.startswith("nd1:sig:") for member in valkey.smembers(key)}


def test_a_syndicated_text_answers_near_at_once_without_an_ai_call(
        api: Api, gemini: FakeGemini, valkey: redis.Redis) -> None:
    wire = story(place())
    original = completed(api, wire)
    assert gemini.calls == 1
    assert index_members(valkey) == {original["job_id"]}

    copy = syndicated(wire)
    near = api.submit(copy)
    assert (near.status_code, near.headers["X-Cache"]) == (200, "NEAR"), near.text
    body = near.json()
    assert body["near_duplicate_of"] == original["job_id"]
    assert (body["summary"], body["tags"]) == (original["summary"], original["tags"])
    assert body["job_id"] != original["job_id"]
    assert gemini.calls == 1  # no AI call

    # Its own job row and its own cache entry: a later submit of the copy is a HIT.
    status = api.status(body["job_id"]).json()
    assert (status["status"], status["cached"], status["near_duplicate_of"]) == (
        "completed", True, original["job_id"])
    assert "near_duplicate_of" not in api.status(original["job_id"]).json()
    again = api.submit(copy)
    assert (again.status_code, again.headers["X-Cache"]) == (200, "HIT")
    assert (again.json()["job_id"], again.json()["near_duplicate_of"]) == (
        body["job_id"], original["job_id"])
    # A shared summary is not indexed itself: only what the AI made is.
    assert index_members(valkey) == {original["job_id"]}

    # In a batch, the item says NEAR.
    batch = api.http.post(f"{api.base_url}/api/submit/batch", json={"inputs": [
        reprinted(wire, "Hill Gazette")]}, timeout=15)
    item = batch.json()["results"][0]
    assert (item["cache"], item["near_duplicate_of"]) == ("NEAR", original["job_id"]), item

    # Counted apart: analytics and /metrics (each process adds its counts to
    # Valkey every METRICS_FLUSH_SECONDS: wait for the API's to be in).
    wait_for(lambda: api.analytics()["near_duplicates"] >= 2, 10, "the NEAR answers counted")
    figures = api.analytics()
    assert (figures["near_duplicates"], figures["near_duplicate_jobs"]) == (2, 2), figures
    assert figures["total_requests"] == (figures["cache_hits"] + figures["cache_misses"]
                                         + figures["known_failures"]
                                         + figures["near_duplicates"])
    metrics = api.http.get(f"{api.base_url}/metrics", timeout=10).text
    assert 'smartcache_submissions_total{outcome="near"} 2.0' in metrics
    assert 'smartcache_ai_calls_saved_total{by="near"} 2.0' in metrics
    assert gemini.calls == 1


def test_one_number_changed_is_summarised_anew(api: Api, gemini: FakeGemini) -> None:
    wire = story(place())
    completed(api, wire)
    changed = syndicated(wire.replace("40 million litres", "45 million litres"))
    body = completed(api, changed)
    assert "near_duplicate_of" not in body
    assert gemini.calls == 2


@pytest.fixture(scope="module")
def sites() -> Iterator[tuple[FakeWeb, FakeWeb]]:
    """Two news sites on loopback: the wire story's and a syndicating one's."""
    with FakeWeb() as wire_site, FakeWeb() as other_site:
        yield wire_site, other_site


def test_a_syndicated_page_from_another_site_shares_the_wire_storys_summary(
        api: Api, gemini: FakeGemini, sites: tuple[FakeWeb, FakeWeb]) -> None:
    wire_site, other_site = sites
    paragraphs = story(city := place()).split("\n\n")
    wire_site.add_page(f"/{city}", news_page(
        "Valley Courier", f"{city} water plant to open in March", "By Sofia Lindqvist",
        paragraphs))
    copy_html = news_page(
        "Coastal Times", "Delayed treatment works gets an opening date",
        "Pedro Okafor, Coastal Times wire desk", paragraphs[:-1],
        "<p>Related: City budget talks stall again as council splits</p>")
    other_site.add_page(f"/copy/{city}", copy_html)
    other_site.add_page(f"/changed/{city}", copy_html.replace("35% more", "45% more"))

    original = completed(api, wire_site.url(f"/{city}"))
    assert gemini.calls == 1
    near_saved = api.analytics()["ai_saved"]["near"]
    shared = completed(api, other_site.url(f"/copy/{city}"))  # a MISS: its page is fetched
    assert shared["near_duplicate_of"] == original["job_id"]
    # The worker's near answer saved what the shared summary cost (its maker's row).
    wait_for(lambda: api.analytics()["ai_saved"]["near"]["calls"] > near_saved["calls"], 10,
             "the worker's near answer counted as saved")
    assert api.analytics()["ai_saved"]["near"]["usd"] - near_saved["usd"] == pytest.approx(
        original["cost"]["usd"], abs=2e-6)
    assert shared["cost"]["usd"] == 0
    assert (shared["summary"], shared["tags"], shared["cached"]) == (
        original["summary"], original["tags"], True)
    assert gemini.calls == 1  # no AI call for the copy
    # The copy's own URL is cached: a HIT naming the summary's origin.
    again = api.submit(other_site.url(f"/copy/{city}"))
    assert (again.headers["X-Cache"], again.json()["near_duplicate_of"]) == (
        "HIT", original["job_id"])

    changed = completed(api, other_site.url(f"/changed/{city}"))
    assert "near_duplicate_of" not in changed
    assert gemini.calls == 2


def test_near_duplicates_false_refresh_and_max_age_summarise_anew(
        api: Api, gemini: FakeGemini) -> None:
    wire = story(place())
    completed(api, wire)
    copy = syndicated(wire)
    for extra in ({"near_duplicates": False}, {"refresh": True}, {"max_age": 0}):
        body = completed(api, copy, **extra)
        assert "near_duplicate_of" not in body, extra
        copy = f"Courier {uuid.uuid4().hex[:4]}\n\n{copy}"  # another site's: a new key
    assert gemini.calls == 4
    # A max_age the original is young enough for shares it.
    near = api.submit(copy + "\nShare this story", max_age=3600)
    assert near.headers["X-Cache"] == "NEAR", near.text


def test_near_duplicates_off_shares_nothing(
        api: Api, gemini: FakeGemini, settings: Any) -> None:
    wire = story(place())
    completed(api, wire)
    settings.NEAR_DUPLICATES = False  # the API process is this one (live server)
    assert completed(api, syndicated(wire))
    assert gemini.calls == 2


def test_a_purged_summary_is_no_longer_shared(
        api: Api, gemini: FakeGemini, valkey: redis.Redis) -> None:
    wire = story(place())
    original = completed(api, wire)
    copy = syndicated(wire)
    assert api.submit(copy).headers["X-Cache"] == "NEAR"

    purged = api.http.post(f"{api.base_url}/api/cache/purge", json={"input": wire}, timeout=15)
    assert purged.status_code == 200, purged.text
    assert purged.json()["jobs_purged"] == 2  # the original and the answer that shared it
    assert original["job_id"] not in index_members(valkey)

    # Neither the copy's own entry nor the purged original answers it now.
    again = completed(api, copy)
    assert "near_duplicate_of" not in again
    assert gemini.calls == 2


def test_another_language_is_not_shared(api: Api, gemini: FakeGemini) -> None:
    wire = story(place())
    in_german = completed(api, wire, language="de")  # a summary in German
    copy = syndicated(wire)
    assert "near_duplicate_of" not in completed(api, copy)  # asked in its own: another summary
    near = api.submit(f"Hill Gazette\n\n{copy}", language="de")
    assert (near.headers["X-Cache"], near.json()["near_duplicate_of"]) == (
        "NEAR", in_german["job_id"])
    assert gemini.calls == 2


def test_store_false_is_never_indexed_but_may_read(
        api: Api, gemini: FakeGemini, valkey: redis.Redis) -> None:
    wire = story(place())
    private = completed(api, wire, store=False)
    assert index_members(valkey) == set()
    copy = syndicated(wire)
    shared_from = completed(api, copy)  # nothing to share: summarised
    assert "near_duplicate_of" not in shared_from
    assert gemini.calls == 2
    assert index_members(valkey) == {shared_from["job_id"]}
    assert private["job_id"] != shared_from["job_id"]

    # A store:false submit may read: NEAR, with no cache entry and no input kept.
    near = api.submit(f"Hill Gazette\n\n{copy}", store=False)
    assert near.headers["X-Cache"] == "NEAR", near.text
    row = Job.objects.get(id=near.json()["job_id"])
    assert (row.store, row.input_text, row.source_text) == (False, "", "")
    assert valkey.get(f"summary:{near.headers['X-Cache-Key']}") is None
    assert django_settings.NEAR_DUPLICATES


def test_a_copy_submitted_while_its_original_is_made_joins_it(
        api: Api, gemini: FakeGemini, valkey: redis.Redis) -> None:
    gemini.delay_s = 1.5  # the original is being made while the copy comes
    wire = story(place())
    first = api.submit(wire)
    assert (first.status_code, first.headers["X-Cache"]) == (202, "MISS"), first.text
    original = first.json()["job_id"]
    assert index_members(valkey) == {original}  # indexed as it was created

    copy = api.submit(reprinted(wire, "Hill Gazette"))

    assert (copy.status_code, copy.headers["X-Cache"]) == (202, "JOINED"), copy.text
    assert (copy.json()["job_id"], copy.json()["near_duplicate_of"]) == (original, original)
    done = api.wait(original)
    assert done["status"] == "completed"
    assert gemini.calls == 1 and Job.objects.count() == 1  # one AI call, no job of its own
    # The join saved what the original cost, under near (not dedup).
    cost = float(Job.objects.get(id=original).cost)
    assert cost > 0
    wait_for(lambda: float(api.analytics()["ai_saved"]["near"]["usd"]) > 0, 10,
             "the near join's saving")
    saved = api.analytics()["ai_saved"]
    assert float(saved["near"]["usd"]) == pytest.approx(cost, abs=2e-6)
    assert float(saved["dedup"]["usd"]) == 0
    metrics = api.http.get(f"{api.base_url}/metrics", timeout=10).text
    assert 'smartcache_ai_calls_saved_total{by="near"} 1.0' in metrics


def test_a_changed_copy_submitted_while_its_original_is_made_is_its_own_job(
        api: Api, gemini: FakeGemini) -> None:
    gemini.delay_s = 1.0
    wire = story(place())
    first = api.submit(wire)
    changed = api.submit(syndicated(wire.replace("40 million litres", "45 million litres")))
    assert (changed.status_code, changed.headers["X-Cache"]) == (202, "MISS"), changed.text
    assert changed.json()["job_id"] != first.json()["job_id"]
    assert "near_duplicate_of" not in changed.json()
    assert api.wait(changed.json()["job_id"])["status"] == "completed"
    assert gemini.calls == 2


def test_a_copy_in_the_same_bulk_request_joins_the_original_before_it(
        api: Api, gemini: FakeGemini) -> None:
    gemini.delay_s = 1.0
    wire = story(place())
    response = api.http.post(f"{api.base_url}/api/submit/batch", json={"inputs": [
        wire, reprinted(wire, "Hill Gazette")]}, timeout=15)
    assert response.status_code == 202, response.text
    first, copy = response.json()["results"]
    assert first["cache"] == "MISS", first
    assert (copy["cache"], copy["job_id"], copy["near_duplicate_of"]) == (
        "JOINED", first["job_id"], first["job_id"]), copy
    assert api.wait(first["job_id"])["status"] == "completed"
    assert gemini.calls == 1


def test_a_scheduled_copy_shares_the_summary_made_before_it_runs(
        api: Api, gemini: FakeGemini) -> None:
    wire = story(place())
    run_at = (timezone.now() + timedelta(seconds=3)).isoformat().replace("+00:00", "Z")
    scheduled = api.submit(reprinted(wire, "Hill Gazette"), run_at=run_at)
    assert scheduled.json()["status"] == "scheduled", scheduled.text
    original = completed(api, wire)  # made while the copy waits for its run_at

    done = api.wait(scheduled.json()["job_id"], timeout=30)

    assert done["status"] == "completed" and done["cached"], done
    assert (done["near_duplicate_of"], done["summary"]) == (original["job_id"],
                                                            original["summary"])
    assert gemini.calls == 1
    # Its own cache entry: the copy again is a HIT naming the same original.
    again = api.submit(reprinted(wire, "Hill Gazette"))
    assert (again.headers["X-Cache"], again.json()["near_duplicate_of"]) == (
        "HIT", original["job_id"])
