"""End to end for URL inputs: real HTTP → API → Celery worker processes →
safe fetcher → FakeWeb (127.0.0.2, the only network the fetcher may reach in
tests) → extraction → fake Gemini → cache → status.

SSRF probes aim at a Canary on 127.0.0.1, which must never see a connection.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from summaries.core.inputs import normalize_input
from summaries.models import Job
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.fakes.web import Canary, FakeWeb
from tests.helpers.pages import BLOCK_PAGES, NEWS, SPLIT_BODY, expected, page_html

pytestmark = pytest.mark.django_db(transaction=True)


# Two ordinary news stories: the tests' own pages (tests/fixtures/pages).
STORY = NEWS
FARMING = SPLIT_BODY

_WORDS = re.compile(r"\w+")


def first_sentence(name: str) -> str:
    body = expected(name).body
    return " ".join(re.split(r"(?<=[.!?])\s+", body.strip(), maxsplit=1)[0].split())


def words(text: str) -> set[str]:
    return {w.lower() for w in _WORDS.findall(text)}


@pytest.fixture(scope="module")
def site() -> Iterator[FakeWeb]:
    with FakeWeb() as server:
        server.add_page("/news/ferry", page_html(STORY))
        server.add_redirect("/go/ferry", "/news/ferry")
        farming = page_html(FARMING)
        server.add_page("/farming/late-frost", farming)
        server.add_page("/mirror/orchards-frost", farming)
        server.add_status("/gone", 404)
        server.add_status("/gone-again", 404)
        server.add_status("/overloaded", 503)
        server.add_response("/data.json", b'{"items": [1, 2, 3]}', content_type="application/json")
        server.add_response("/report.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
                            content_type="application/pdf")
        server.add_response("/untyped", b"just some bytes, not markup", content_type=None)
        server.add_huge("/huge", 6_000_000)
        for name in BLOCK_PAGES:  # JavaScript shell, bot challenge, paywall, short notice
            server.add_page(f"/blocked/{name.removesuffix('.html')}", page_html(name))
        yield server


@pytest.fixture
def web(site: FakeWeb) -> FakeWeb:
    site.requests.clear()
    return site


def hits(web: FakeWeb, path: str) -> int:
    return sum(1 for r in web.requests if r.path.split("?", 1)[0] == path)


def submit_job(api: Api, url: str, **extra: Any) -> str:
    response = api.submit(url, **extra)
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


# --- articles ------------------------------------------------------------------


def test_an_article_url_is_fetched_extracted_and_summarised(
        api: Api, gemini: FakeGemini, web: FakeWeb, namespace: str) -> None:
    url = web.url("/go/ferry")
    done = api.wait(submit_job(api, url))

    assert done["status"] == "completed", done
    assert done["kind"] == "url" and done["cached"] is False and done["attempts"] == 1
    assert done["url"] == url
    assert done["final_url"] == web.url("/news/ferry")  # the in-site redirect was followed
    assert done["title"] == expected(STORY).title
    assert done["extracted_chars"] > 1500
    assert 2 <= len(done["tags"]) <= 4
    assert [r.path for r in web.requests] == ["/go/ferry", "/news/ferry"]

    # The AI saw the extracted article (not its title), not the page's markup.
    assert gemini.calls == 1
    prompt = " ".join(gemini.received[0].user_text.split())
    assert first_sentence(STORY) in prompt
    assert "Title:" not in prompt and expected(STORY).title not in prompt
    assert "<script" not in prompt and "<div" not in prompt
    # Page furniture around the story did not reach the AI.
    for furniture in ("We use cookies", "Most read", "busrider77", "Sign up for our daily"):
        assert furniture not in prompt

    # The fake builds its summary from the text it was given: so the summary's
    # words are the article's.
    job = Job.objects.get(id=done["job_id"])
    assert len(job.extracted_text) == done["extracted_chars"]
    assert "ferry" in done["summary"].lower()
    assert words(done["summary"]) <= words(job.extracted_text)
    assert set(done["tags"]) <= words(job.extracted_text)

    again = api.submit(url)
    assert again.status_code == 200
    assert again.json() == {"job_id": done["job_id"], "status": "completed", "cached": True,
                            "cache_key": normalize_input(url).cache_key(namespace),
                            "summary": done["summary"], "tags": done["tags"]}
    assert gemini.calls == 1
    assert len(web.requests) == 2  # a cache hit fetches nothing


def test_one_article_under_two_urls_costs_one_ai_call(
        api: Api, gemini: FakeGemini, web: FakeWeb) -> None:
    first = api.wait(submit_job(api, web.url("/farming/late-frost")))
    assert first["status"] == "completed", (first.get("code"), first.get("error"))
    assert first["cached"] is False
    assert gemini.calls == 1

    # Another URL, same article text: a job (the URL is new) that completes
    # from the content key without asking the AI.
    second = api.wait(submit_job(api, web.url("/mirror/orchards-frost")))
    assert second["status"] == "completed", second
    assert second["job_id"] != first["job_id"]
    assert second["cached"] is True
    assert (second["summary"], second["tags"]) == (first["summary"], first["tags"])
    assert second["final_url"] == web.url("/mirror/orchards-frost")
    assert second["extracted_chars"] == first["extracted_chars"] > 0
    assert second["title"] == first["title"] != ""
    assert gemini.calls == 1

    # The first URL again, spelt differently (scheme case, tracking parameters,
    # fragment): the same input, answered from the cache without a fetch.
    fetched = len(web.requests)
    variant = web.url("/farming/late-frost?utm_source=newsletter&utm_medium=email#top")
    variant = variant.replace("http://", "HTTP://")
    hit = api.submit(variant)
    assert hit.status_code == 200, hit.text
    assert hit.json()["job_id"] == first["job_id"]
    assert hit.json()["summary"] == first["summary"]
    assert len(web.requests) == fetched
    assert gemini.calls == 1


def test_one_article_under_two_urls_at_once_costs_one_ai_call(
        api: Api, gemini: FakeGemini, web: FakeWeb) -> None:
    gemini.delay_s = 0.5  # both jobs reach the article text while the AI works
    urls = [web.url("/farming/late-frost"), web.url("/mirror/orchards-frost")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        job_ids = list(pool.map(lambda u: submit_job(api, u), urls))
    done = [api.wait(job_id) for job_id in job_ids]

    assert [d["status"] for d in done] == ["completed", "completed"], done
    assert sorted(d["cached"] for d in done) == [False, True]
    assert done[0]["summary"] == done[1]["summary"]
    assert gemini.calls == 1


# --- failures known only at fetch time ----------------------------------------------


@pytest.mark.parametrize("target", ["ip", "localhost", "decimal", "mapped"])
def test_a_redirect_or_name_leading_inside_fails_without_touching_it(
        api: Api, gemini: FakeGemini, web: FakeWeb, canary: Canary, target: str) -> None:
    port = canary.port
    inside = {
        "ip": f"http://127.0.0.1:{port}/admin",
        "localhost": f"http://localhost:{port}/admin",
        "decimal": f"http://2130706433:{port}/admin",
        "mapped": f"http://[::ffff:127.0.0.1]:{port}/admin",
    }[target]
    web.add_redirect(f"/leak-{target}", inside)
    urls = [web.url(f"/leak-{target}")]
    if target == "localhost":
        urls.append(inside)  # a name is only judged once it is resolved

    for url in urls:
        done = api.wait(submit_job(api, url))
        assert done["status"] == "failed", done
        assert done["code"] == "blocked_destination", done
        assert done["attempts"] == 1  # permanent: not retried
        assert "final_url" not in done
    assert canary.connections == 0
    assert hits(web, f"/leak-{target}") == 1
    assert gemini.calls == 0


def test_a_missing_page_fails_with_http_error(api: Api, gemini: FakeGemini, web: FakeWeb) -> None:
    done = api.wait(submit_job(api, web.url("/gone")))
    assert done["status"] == "failed", done
    assert done["code"] == "http_error"
    assert "404" in done["error"]
    assert done["attempts"] == 1  # a 404 is not retried
    assert done["stage"] == "failed"
    assert hits(web, "/gone") == 1
    assert gemini.calls == 0


def test_a_server_error_is_retried_then_fails_with_http_error(
        api: Api, gemini: FakeGemini, web: FakeWeb) -> None:
    done = api.wait(submit_job(api, web.url("/overloaded")), timeout=30)
    assert done["status"] == "failed", done
    assert done["code"] == "http_error"
    assert "503" in done["error"]
    assert done["attempts"] > 1
    assert hits(web, "/overloaded") == done["attempts"]
    assert gemini.calls == 0


@pytest.mark.parametrize(("path", "code"), [
    ("/data.json", "unsupported_content"),
    ("/report.pdf", "corrupt"),  # a PDF's first bytes only
    ("/untyped", "unsupported_content"),
    ("/huge", "too_large"),
])
def test_what_is_not_an_html_page_or_a_document_fails_clearly(
        api: Api, gemini: FakeGemini, web: FakeWeb, path: str, code: str) -> None:
    done = api.wait(submit_job(api, web.url(path)))
    assert done["status"] == "failed", done
    assert done["code"] == code and done["error"]
    assert done["attempts"] == 1
    assert gemini.calls == 0


@pytest.mark.parametrize("name", BLOCK_PAGES)
def test_block_pages_and_short_pages_fail_with_content_unavailable(
        api: Api, gemini: FakeGemini, web: FakeWeb, name: str) -> None:
    path = f"/blocked/{name.removesuffix('.html')}"
    done = api.wait(submit_job(api, web.url(path)))
    assert done["status"] == "failed", done
    assert done["code"] == "content_unavailable"
    assert BLOCK_PAGES[name] in done["error"]
    assert done["attempts"] == 1
    assert hits(web, path) == 1
    assert gemini.calls == 0


# --- a dead URL is remembered briefly -------------------------------------------------


def test_a_dead_url_is_remembered_until_refresh(
        api: Api, gemini: FakeGemini, web: FakeWeb, valkey: redis.Redis, namespace: str) -> None:
    url = web.url("/gone-again")
    failed = api.wait(submit_job(api, url))
    assert failed["status"] == "failed" and failed["code"] == "http_error", failed
    assert hits(web, "/gone-again") == 1

    # Resubmitted soon (also spelt differently): the failure is answered from
    # memory; no job, no request to the site.
    for again in (url, url + "?utm_campaign=spring#comments"):
        answer = api.submit(again)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["job_id"] == failed["job_id"]
        assert body["status"] == "failed"
        assert body["code"] == "http_error" and "404" in body["error"]
    assert Job.objects.count() == 1
    assert hits(web, "/gone-again") == 1

    # Remembered for a short while only (FETCH_FAILURE_TTL, 300 s by default).
    key = normalize_input(url).cache_key(namespace)
    assert 0 < valkey.ttl(f"failed:{key}") <= 300

    # refresh bypasses the memory: a new job, a new request.
    fresh = submit_job(api, url, refresh=True)
    assert fresh != failed["job_id"]
    retried = api.wait(fresh)
    assert retried["status"] == "failed" and retried["code"] == "http_error"
    assert hits(web, "/gone-again") == 2
    assert Job.objects.count() == 2
    assert gemini.calls == 0


# --- refused at submit ------------------------------------------------------------------


@pytest.mark.parametrize("probe", [
    "http://127.0.0.1:{canary}/",
    "http://127.1:{canary}/x",
    "http://2130706433:{canary}/",
    "http://0x7f.0.0.1:{canary}/",
    "http://0177.0.0.1:{canary}/",
    "http://[::ffff:127.0.0.1]:{canary}/",
    "http://[::1]:{canary}/",
    "http://0.0.0.0:{canary}/",
    "ftp://127.0.0.2:{web}/file.html",
    "file:///etc/passwd",
    "http://user:pass@127.0.0.2:{web}/news/ferry",
    "http://user@127.0.0.1:{canary}/",
])
def test_probes_are_refused_at_submit(
        api: Api, gemini: FakeGemini, web: FakeWeb, canary: Canary, probe: str) -> None:
    url = probe.format(canary=canary.port, web=web.port)
    answer = api.submit(url)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "blocked_url"
    assert answer.json()["error"]
    assert canary.connections == 0
    assert web.requests == []
    assert Job.objects.count() == 0
