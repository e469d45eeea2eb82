"""Watched URLs over real HTTP: POST /api/watches, a real worker process
checking a loopback page (tests/helpers/fakes/web.py on 127.0.0.2), real
Celery beat ticking; a changed page is summarised again and calls back, an
unchanged one costs no AI call, and ticks racing claim a due watch once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.utils import timezone

from summaries.models import Job, Watch
from summaries.services import watches
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.fakes.receiver import FakeReceiver, verify
from tests.helpers.fakes.web import Canary, FakeWeb
from tests.helpers.pages import NEWS, SPLIT_BODY, page_html
from tests.helpers.polling import wait_for
from tests.helpers.processes import Beat

pytestmark = pytest.mark.django_db(transaction=True)


class ChangingPage:
    """A page on the fake site whose HTML the test swaps."""

    def __init__(self, site: FakeWeb, path: str, html: str) -> None:
        self.html = html
        self.path = path
        site.add_route(path, self._serve)

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        body = self.html.encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


@pytest.fixture(scope="module")
def site() -> Iterator[FakeWeb]:
    with FakeWeb() as server:
        server.add_status("/gone", 404)
        yield server


@pytest.fixture(scope="module")
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver() as server:
        yield server


@pytest.fixture
def beat(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Beat]:
    """Celery beat for the session's worker (it ticks every second:
    SCHEDULE_TICK_SECONDS in tests/helpers/environment.py)."""
    proc = Beat(worker_env, schedule_dir=tmp_path)
    proc.start()
    yield proc
    proc.stop()


def create(api: Api, **body: Any) -> requests.Response:
    return api.http.post(f"{api.base_url}/api/watches", json=body, timeout=15)


def watch_of(api: Api, watch_id: str) -> dict[str, Any]:
    response = api.http.get(f"{api.base_url}/api/watches/{watch_id}", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def checked(api: Api, watch_id: str, checks: int) -> dict[str, Any]:
    """The watch once it has run ``checks`` checks (and its job, if any, is done)."""
    wait_for(lambda: watch_of(api, watch_id)["checks"] >= checks, 30,
             f"watch {watch_id} to run {checks} check(s)")
    body = watch_of(api, watch_id)
    if job_id := body.get("last_job_id"):
        api.wait(job_id)
        body = watch_of(api, watch_id)
    return body


def make_due(watch_id: str) -> None:
    """Time passes: the watch's next turn is now."""
    Watch.objects.filter(id=watch_id).update(next_run_at=timezone.now() - timedelta(seconds=1))


def gets(site: FakeWeb, path: str) -> int:
    return sum(1 for r in site.requests if r.path == path)


def test_racing_ticks_claim_a_due_watch_once(api: Api, site: FakeWeb) -> None:
    page = ChangingPage(site, "/race", page_html(NEWS))
    watch_id = create(api, url=site.url(page.path), every="1h").json()["watch_id"]
    checked(api, watch_id, 1)
    make_due(watch_id)

    racers = 6
    start = threading.Barrier(racers)

    def tick() -> list[str]:
        start.wait()
        try:
            return watches.watches_due()
        finally:
            connection.close()

    with ThreadPoolExecutor(racers) as pool:
        won = [w for claimed in pool.map(lambda _: tick(), range(racers)) for w in claimed
               if w == watch_id]
    assert len(won) == 1
    watches.send_check(won[0])
    body = checked(api, watch_id, 2)
    assert body["changes"] == 1  # the page did not change
    next_run = Watch.objects.get(id=watch_id).next_run_at
    assert next_run > timezone.now() + timedelta(minutes=50)  # moved on by one turn
    # The first check, its job's fetch, and this turn's one check.
    assert watch_of(api, watch_id)["checks"] == 2 and gets(site, page.path) == 3


def test_a_changed_page_is_summarised_again_and_calls_back(
        api: Api, site: FakeWeb, receiver: FakeReceiver, gemini: FakeGemini, beat: Beat) -> None:
    page = ChangingPage(site, "/changing", page_html(NEWS))
    response = create(api, url=site.url(page.path), every="1m",
                      callback_url=receiver.url("/watch"))
    assert response.status_code == 201, response.text
    watch_id = response.json()["watch_id"]
    assert response.json()["every"] == 60
    assert response.headers["Location"].endswith(f"/api/watches/{watch_id}")

    # The first check runs at once and makes the first summary.
    [first] = receiver.wait_for("/watch", 1)
    assert verify(first.body, first.signature, settings.WEBHOOK_SECRET)
    assert first.headers["X-SmartCache-Watch"] == watch_id
    assert first.json()["status"] == "completed"
    body = checked(api, watch_id, 1)
    assert (body["changes"], body["last_job_id"]) == (1, first.json()["job_id"])
    assert body["summary"] == first.json()["summary"] and body["last_changed_at"]
    assert gemini.calls == 1

    # Unchanged: checked (beat's tick), no AI call, no callback.
    make_due(watch_id)
    body = checked(api, watch_id, 2)
    assert (body["changes"], body["last_job_id"]) == (1, first.json()["job_id"])
    assert gemini.calls == 1
    assert len(receiver.received("/watch")) == 1

    # Changed: a new job, one AI call, a callback with the new summary.
    page.html = page_html(SPLIT_BODY)
    make_due(watch_id)
    [_, second] = receiver.wait_for("/watch", 2)
    assert verify(second.body, second.signature, settings.WEBHOOK_SECRET)
    assert second.json()["job_id"] != first.json()["job_id"]
    assert second.json()["summary"] != first.json()["summary"]
    body = checked(api, watch_id, 3)
    assert (body["changes"], body["last_job_id"]) == (2, second.json()["job_id"])
    assert gemini.calls == 2
    assert "last_error" not in body
    # The URL's cached summary is the new one for every client.
    assert api.submit(site.url(page.path)).json()["summary"] == second.json()["summary"]


def test_a_change_whose_job_failed_is_summarised_at_the_next_check(
        api: Api, site: FakeWeb, receiver: FakeReceiver, gemini: FakeGemini) -> None:
    """The AI refuses the first summary once (a 400): the next check, the
    page unchanged, summarises it again (on e36bccf the hash was taken as
    done when the job was queued, and the change was never summarised).
    Once a job completed, the same text costs nothing more."""
    page = ChangingPage(site, "/refused-once", page_html(NEWS))
    gemini.mode = "rejected"
    watch_id = create(api, url=site.url(page.path), every="1h",
                      callback_url=receiver.url("/refused")).json()["watch_id"]
    [failed] = receiver.wait_for("/refused", 1)
    assert failed.json()["status"] == "failed"
    assert checked(api, watch_id, 1)["last_job_id"] == failed.json()["job_id"]

    gemini.mode = "ok"
    watches.send_check(watch_id)  # its next turn (the tick's part)
    [_, done] = receiver.wait_for("/refused", 2)
    assert done.json()["status"] == "completed" and done.json()["summary"]
    body = checked(api, watch_id, 2)
    assert (body["last_job_id"], body["summary"]) == (done.json()["job_id"],
                                                      done.json()["summary"])
    assert body["changes"] == 1  # the same text, summarised at last
    assert gemini.calls == 2

    watches.send_check(watch_id)
    assert checked(api, watch_id, 3)["last_job_id"] == done.json()["job_id"]
    assert gemini.calls == 2 and len(receiver.received("/refused")) == 2


def test_a_failing_check_is_shown_on_the_watch(api: Api, site: FakeWeb,
                                              gemini: FakeGemini) -> None:
    watch_id = create(api, url=site.url("/gone"), every=3600).json()["watch_id"]
    body = checked(api, watch_id, 1)
    assert body["last_error_code"] == "http_error" and "404" in body["last_error"]
    assert "last_job_id" not in body and body["changes"] == 0
    assert gemini.calls == 0


@pytest.mark.usefixtures("no_enqueue")
@pytest.mark.parametrize(("every", "seconds"), [
    ("1m", 60), ("15m", 900), ("1h", 3600), ("1d", 86400), (60, 60), (7200, 7200)])
def test_every_takes_minutes_hours_days_or_seconds(api: Api, site: FakeWeb, every: Any,
                                                  seconds: int) -> None:
    response = create(api, url=site.url("/article"), every=every)
    assert (response.status_code, response.json()["every"]) == (201, seconds)


@pytest.mark.usefixtures("no_enqueue")
@pytest.mark.parametrize("every", ["90s", 30, 59, "0m", "1.5h", "1w", "", None, True, 1.5,
                                   "60", 10**9])
def test_every_below_a_minute_or_malformed_is_refused(api: Api, site: FakeWeb,
                                                     every: Any) -> None:
    response = create(api, url=site.url("/article"), every=every)
    assert response.status_code == 400, response.text
    assert response.json()["code"] in ("invalid_every", "null")


@pytest.mark.usefixtures("no_enqueue")
@pytest.mark.parametrize(("body", "code"), [
    ({"url": "Just some text. Not a page."}, "invalid_url"),
    ({"url": "http://127.0.0.1:{port}/page"}, "blocked_url"),
    ({"url": "http://[::1]:{port}/page"}, "blocked_url"),
    ({"url": "ftp://127.0.0.2/page"}, "blocked_url"),
    ({"url": "http://127.0.0.2/page", "callback_url": "http://127.0.0.1:{port}/hook"},
     "blocked_callback_url"),
    ({"url": "http://127.0.0.2/page", "callback_url": "http://localhost:{port}/hook"},
     "blocked_callback_url"),
])
def test_watch_urls_go_through_the_fetch_policy(api: Api, canary: Canary, body: dict[str, str],
                                                code: str) -> None:
    payload = {name: value.format(port=canary.port) for name, value in body.items()}
    response = create(api, every="1h", **payload)
    assert (response.status_code, response.json()["code"]) == (400, code)
    assert canary.connections == 0


@pytest.mark.usefixtures("no_enqueue")
def test_list_inspect_and_delete(api: Api, site: FakeWeb) -> None:
    a = create(api, url=site.url("/list-a"), every="1h").json()
    b = create(api, url=site.url("/list-b"), every="1d", callback_url=site.url("/hook")).json()
    listed = api.http.get(f"{api.base_url}/api/watches", timeout=10).json()
    ids = [w["watch_id"] for w in listed["results"]]
    assert ids.index(b["watch_id"]) < ids.index(a["watch_id"])  # newest first
    assert listed["count"] >= 2
    assert watch_of(api, b["watch_id"])["callback_url"] == site.url("/hook")
    assert "last_checked_at" not in watch_of(api, a["watch_id"])  # never checked yet

    gone = api.http.delete(f"{api.base_url}/api/watches/{a['watch_id']}", timeout=10)
    assert gone.status_code == 204
    for method in ("get", "delete"):
        again = api.http.request(method, f"{api.base_url}/api/watches/{a['watch_id']}",
                                 timeout=10)
        assert (again.status_code, again.json()["code"]) == (404, "not_found")
    assert api.http.get(f"{api.base_url}/api/watches/not-a-uuid",
                        timeout=10).status_code == 404


@pytest.mark.usefixtures("no_enqueue")
def test_watches_are_for_operators_when_a_token_is_set(
        api: Api, site: FakeWeb, settings: Any) -> None:
    settings.JOBS_API_TOKEN = "watch-token"
    url = f"{api.base_url}/api/watches"
    body = {"url": site.url("/guarded"), "every": "1h"}
    assert api.http.post(url, json=body, timeout=10).status_code == 403
    assert api.http.get(url, timeout=10).status_code == 403
    wrong = {"Authorization": "Bearer nope"}
    assert api.http.post(url, json=body, headers=wrong, timeout=10).status_code == 403
    good = {"Authorization": "Bearer watch-token"}
    created = api.http.post(url, json=body, headers=good, timeout=10)
    assert created.status_code == 201
    detail = f"{url}/{created.json()['watch_id']}"
    assert api.http.get(detail, timeout=10).status_code == 403
    assert api.http.delete(detail, headers=good, timeout=10).status_code == 204


def test_a_watch_summarises_in_the_form_it_was_given(api: Api, site: FakeWeb,
                                                     gemini: FakeGemini) -> None:
    page = ChangingPage(site, "/in-bullets", page_html(NEWS))
    response = create(api, url=site.url(page.path), every="1h", style="bullets",
                      length="medium")
    assert response.status_code == 201, response.text
    assert (response.json()["style"], response.json()["length"]) == ("bullets", "medium")
    body = checked(api, response.json()["watch_id"], 1)

    assert body["last_job_status"] == "completed", body
    points = body["summary"].splitlines()
    assert len(points) >= 3 and all(point.startswith("- ") for point in points), body
    job = Job.objects.get(id=body["last_job_id"])
    assert (job.style, job.length) == ("bullets", "medium")
    # The URL asked in that form is answered from the watch's summary.
    hit = api.submit(site.url(page.path), style="bullets", length="medium")
    assert (hit.headers["X-Cache"], hit.json()["summary"]) == ("HIT", body["summary"])
    assert gemini.calls == 1


@pytest.mark.usefixtures("no_enqueue")
@pytest.mark.parametrize(("field", "code"), [({"style": "poem"}, "invalid_choice"),
                                           ({"length": 3}, "invalid_choice"),
                                           ({"style": None}, "null")])
def test_a_watch_with_an_unknown_form_is_refused(api: Api, site: FakeWeb,
                                                 field: dict[str, Any], code: str) -> None:
    response = create(api, url=site.url("/news"), every="1h", **field)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code, response.json()  # as a submit's
    assert Watch.objects.count() == 0
    # The default form, when none is given.
    made = create(api, url=site.url("/news"), every="1h")
    assert (made.json()["style"], made.json()["length"]) == ("prose", "short")
