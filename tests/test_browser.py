"""The web page in a real browser: Debian's headless Chromium driven by
Playwright's Python package, against a gunicorn API process and the
session's Celery worker (fake Gemini).

Where no browser can be had the tests are skipped with the reason, and the
run's summary says so (tests/conftest.py); under CI (CI set) they fail
instead: .ci/run installs the browser, so CI always runs them.

SMARTCACHE_SCREENSHOTS=<dir> saves the pages at 1280 and 375 px wide there.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers.documents import make_pdf
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.processes import WebServer, Worker
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = os.environ.get("SMARTCACHE_SCREENSHOTS", "")
WAIT_MS = 30_000


def no_browser(reason: str) -> None:
    """Skip, saying why (and fail under CI, which must run these)."""
    message = f"browser tests not run: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser(worker_env: dict[str, str]) -> Iterator[Any]:
    """Headless Chromium (after worker_env: the child processes' environment
    is taken before the variable below is set)."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        no_browser("the playwright package is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        no_browser(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    # Playwright's sync API keeps an event loop running in this thread, and
    # Django refuses database calls (the test database's flush) beside one;
    # they stay synchronous here, so say it is safe while the browser runs.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            try:
                chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            except Error as exc:
                no_browser(f"Chromium at {CHROMIUM} did not start: {str(exc).splitlines()[0]}")
            yield chromium
            chromium.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(scope="module")
def site(worker_env: dict[str, str]) -> Iterator[WebServer]:
    server = WebServer(worker_env, workers=1)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def page(browser: Any, site: WebServer, worker: Worker, gemini: FakeGemini) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    yield tab
    context.close()


def shoot(tab: Any, name: str, widths: tuple[int, ...] = (1280, 375)) -> None:
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for width in widths:
        tab.set_viewport_size({"width": width, "height": 900})
        time.sleep(0.3)  # the charts redraw after a resize
        tab.screenshot(path=str(Path(SHOTS) / f"{name}-{width}.png"), full_page=True)
    tab.set_viewport_size({"width": 1280, "height": 900})


def submit(tab: Any, text: str) -> None:
    tab.fill("#input", text)
    tab.click("#submit")


def test_a_submit_shows_the_live_stage_then_the_summary(page: Any, site: WebServer,
                                                      gemini: FakeGemini) -> None:
    gemini.delay_s = 1.5  # the stage shows while the AI works (its timeout here: 2 s)
    text = unique_text("browser submit")
    page.goto(site.url + "/")
    submit(page, text)

    page.wait_for_selector('#result[data-stage="summarizing"]')
    assert page.text_content("#state") == "Summarising"
    shoot(page, "home-progress", widths=(1280,))
    page.wait_for_selector("#summary-block:not([hidden])")

    job_id = page.get_attribute("#result", "data-job-id")
    status = requests.get(f"{site.url}/api/status/{job_id}", timeout=10).json()
    assert page.text_content("#summary") == status["summary"]
    assert page.locator("#tags li").all_text_contents() == status["tags"]
    assert page.text_content("#state") == "Done"
    assert page.is_hidden("#cached-badge")
    assert page.text_content("#t-channel") == "live"  # followed over the event stream


def test_a_resubmit_shows_the_cached_badge(page: Any, site: WebServer) -> None:
    text = unique_text("browser cached")
    page.goto(site.url + "/")
    submit(page, text)
    page.wait_for_selector("#summary-block:not([hidden])")
    first = page.text_content("#summary")
    assert page.is_hidden("#cached-badge")

    page.click("#submit")
    page.wait_for_selector("#cached-badge:not([hidden])")
    assert page.text_content("#summary") == first
    assert page.text_content("#t-processing") == "from cache"
    shoot(page, "home-result")


def test_a_chosen_file_is_uploaded_and_summarised(page: Any, site: WebServer,
                                                  tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf(["Browser upload: the ferry timetable changes in May. "
                               + unique_text("browser upload")]))
    page.goto(site.url + "/")
    page.set_input_files("#file", str(path))
    assert page.text_content("#file-name") == "report.pdf"
    assert page.is_disabled("#input")  # the file is sent, not the box
    page.click("#submit")
    page.wait_for_selector("#summary-block:not([hidden])")
    job_id = page.get_attribute("#result", "data-job-id")
    status = requests.get(f"{site.url}/api/status/{job_id}", timeout=10).json()
    assert (status["kind"], status["status"]) == ("document", "completed")
    assert page.text_content("#summary") == status["summary"]


def test_the_form_choices_ask_for_key_points(page: Any, site: WebServer) -> None:
    page.goto(site.url + "/")
    page.select_option("#style", "bullets")
    page.select_option("#length", "medium")
    submit(page, unique_text("browser bullets"))
    page.wait_for_selector("#summary-block:not([hidden])")
    job_id = page.get_attribute("#result", "data-job-id")
    status = requests.get(f"{site.url}/api/status/{job_id}", timeout=10).json()
    assert status["summary"].startswith("- ") and status["summary"].count("\n- ") == 3
    assert page.text_content("#summary") == status["summary"]


@pytest.mark.parametrize(("text", "status", "title", "words"), [
    ("Too short", "400", "That input can't be summarised", "two sentences"),
    ("A sentence of the text. " * 4200, "413", "That's too long to summarise", "the limit"),
])
def test_an_api_error_is_shown_to_the_person(page: Any, site: WebServer, text: str,
                                             status: str, title: str, words: str) -> None:
    page.goto(site.url + "/")
    submit(page, text)
    page.wait_for_selector("#error:not([hidden])")
    assert page.get_attribute("#error", "data-status") == status
    assert page.text_content("#error-title") == title
    assert words in page.text_content("#error-text")
    assert page.is_hidden("#result")
    assert page.is_enabled("#submit")
    shoot(page, f"home-error-{status}")


def test_the_analytics_page_draws_its_charts(page: Any, site: WebServer) -> None:
    api = requests.Session()
    text = unique_text("browser analytics")
    job_id = api.post(f"{site.url}/api/submit", json={"input": text}, timeout=10).json()["job_id"]
    deadline = time.monotonic() + 30
    while True:  # the worker's counts reach Valkey within METRICS_FLUSH_SECONDS
        minutes = api.get(f"{site.url}/api/analytics/timeline?minutes=5", timeout=10).json()
        if sum(m["completed"] for m in minutes["minutes"]) >= 1:
            break
        assert time.monotonic() < deadline, f"job {job_id} not counted: {minutes}"
        time.sleep(0.2)
    assert api.post(f"{site.url}/api/submit", json={"input": text}, timeout=10).status_code == 200

    page.goto(site.url + "/analytics/")
    page.wait_for_selector('body[data-loaded="true"]')

    assert page.locator("#chart-requests rect.bar-hit").count() >= 1
    assert page.locator("#chart-requests rect.bar-miss").count() >= 1
    assert page.locator("#chart-processing path.line").count() == 1
    assert page.locator("#chart-processing circle.dot").count() >= 1
    assert page.text_content("#k-requests") not in ("", "\N{EN DASH}")
    assert page.text_content("#k-ratio").endswith("%")
    # Money spent (the job's cost) and saved, by cause, in the cost table.
    assert page.text_content("#k-spent").startswith("$")
    assert page.text_content("#k-spent") != "$0"
    for cause in ("cache", "dedup", "near", "batch"):
        assert page.locator(f"#saved-{cause} td").all_text_contents()[2].startswith("$"), cause
    shoot(page, "analytics")


def test_the_page_fits_a_phone(browser: Any, site: WebServer) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 800}, is_mobile=True)
    try:
        tab = context.new_page()
        tab.goto(site.url + "/analytics/")
        tab.wait_for_selector('body[data-loaded="true"]')
        overflows = [tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")]
        tab.goto(site.url + "/")
        overflows.append(tab.evaluate("document.documentElement.scrollWidth - window.innerWidth"))
        box = tab.locator("#submit").bounding_box()
        links = tab.locator("footer a").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))")
    finally:
        context.close()
    assert max(overflows) <= 0  # nothing wider than the screen
    assert box is not None and box["width"] > 300  # a full-width button on a phone
    assert links == ["/api/", "/api/docs/", "/admin/"]
