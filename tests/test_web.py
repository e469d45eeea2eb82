"""The web pages and the timeline behind their charts, over real HTTP from a
gunicorn API process (the browser itself: tests/test_browser.py)."""

from __future__ import annotations

import re
import time

import pytest
import redis
import requests

from summaries.observability import timeline
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.processes import WebServer, Worker
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_home_page_is_served_with_its_assets(web_server: WebServer) -> None:
    page = requests.get(f"{web_server.url}/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.text
    for link in ('href="/api/"', 'href="/api/docs/"', 'href="/admin/"', 'href="/analytics/"'):
        assert link in html
    # A document can be chosen or dropped beside the text box (sent as multipart).
    assert 'type="file" id="file" name="file"' in html and 'id="dropzone"' in html
    # Every asset is ours, served by the app (whitenoise): nothing from elsewhere.
    assert not re.search(r'(src|href)="(https?:)?//', html)
    for asset in ("/static/web/app.css", "/static/web/home.js", "/static/web/favicon.svg"):
        assert asset in html
        response = requests.get(f"{web_server.url}{asset}", timeout=10)
        assert response.status_code == 200 and len(response.content) > 100


def test_the_analytics_page_is_served(web_server: WebServer) -> None:
    page = requests.get(f"{web_server.url}/analytics/", timeout=10)
    assert page.status_code == 200
    assert "/static/web/analytics.js" in page.text
    script = requests.get(f"{web_server.url}/static/web/analytics.js", timeout=10)
    assert script.ok
    # The cost table: spent, and saved by each cause, filled from /api/analytics.
    for row in ("cost-spent", "saved-cache", "saved-dedup", "saved-near", "saved-batch"):
        assert f'id="{row}"' in page.text, row
    for field in ("ai_spent", "ai_saved", "ai_saved_share"):
        assert field in script.text, field


def test_the_api_root_is_still_reachable(web_server: WebServer) -> None:
    endpoints = requests.get(f"{web_server.url}/api/", timeout=10).json()["endpoints"]
    assert any(route.endswith("/api/analytics/timeline") for route in endpoints)
    assert any(route.endswith("/api/jobs/{job_id}/events") for route in endpoints)


def test_the_timeline_counts_each_minute(web_server: WebServer, worker: Worker,
                                         gemini: FakeGemini, valkey: redis.Redis) -> None:
    api = Api(web_server.url)
    text = unique_text("timeline")
    job_id = api.submit(text).json()["job_id"]
    api.wait(job_id)
    assert api.submit(text).status_code == 200  # a hit
    api.submit(text)  # another

    deadline = time.monotonic() + 20
    while True:  # the worker's counts arrive within METRICS_FLUSH_SECONDS
        minutes = requests.get(f"{web_server.url}/api/analytics/timeline?minutes=3",
                               timeout=10).json()["minutes"]
        totals = {name: sum(m[name] for m in minutes) for name in timeline.TIMELINE_FIELDS}
        if totals["completed"] >= 1 and totals["hit"] >= 2:
            break
        assert time.monotonic() < deadline, f"not counted: {minutes}"
        time.sleep(0.2)

    assert len(minutes) == 3
    assert [m["minute"] for m in minutes] == sorted(m["minute"] for m in minutes)
    assert all(m["minute"] % 60 == 0 for m in minutes)
    assert totals["miss"] == 1 and totals["hit"] == 2 and totals["failed"] == 0
    assert totals["ms"] >= 0
    # Bounded: every minute's hash expires within a day.
    keys = list(valkey.scan_iter(match=f"{timeline.TIMELINE_PREFIX}*"))
    assert keys and all(0 < valkey.ttl(key) <= timeline.TIMELINE_TTL for key in keys)


def test_the_timeline_refuses_more_than_it_keeps(web_server: WebServer) -> None:
    too_many = requests.get(f"{web_server.url}/api/analytics/timeline?minutes=100000",
                            timeout=10)
    assert too_many.status_code == 400 and too_many.json()["code"]
    assert len(requests.get(f"{web_server.url}/api/analytics/timeline", timeout=10)
               .json()["minutes"]) == 60
