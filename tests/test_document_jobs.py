"""Documents end to end: a PDF, DOCX or plain-text link, and an uploaded file,
through real HTTP → API → Celery worker processes → FakeWeb (127.0.0.2) →
summaries.documents → fake Gemini (the real SDK) → cache → status.

Each document's summary is made of its own words (the fake summarises what
it is given); the fake's call count shows what the cache saved: a file
uploaded after being linked, a re-upload, and a long document's parts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from summaries.core.inputs import DOCUMENT, NormalizedInput
from summaries.fetching import FetchedPage, decode_html
from summaries.models import DocumentUpload, Job
from summaries.services import document_text
from summaries.services.long_texts import split_parts
from summaries.services.pipeline import article_key
from tests.helpers.api import Api
from tests.helpers.documents import (
    encrypt_pdf,
    make_docx,
    make_docx_bomb,
    make_pdf,
    make_scanned_pdf,
    prose,
)
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.fakes.web import FakeWeb
from tests.helpers.stack import stack_of

pytestmark = pytest.mark.django_db(transaction=True)

PDF_TYPE = "application/pdf"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_WORDS = re.compile(r"[a-z]+")

# Words the generated prose never uses (tests/helpers/documents.py's vocabulary):
# each document carries its own, so its summary can be told apart.
REPORT = ["The lighthouse keeper counted seventeen storms this winter. " + prose(1, 160),
          "Harbour pilots asked for brighter beacons. " + prose(2, 160)]
MEMO = ["Orchard growers fear a late frost in April.", "Beekeepers moved their hives south.",
        prose(3, 120)]
NOTES = ("Glacier melt raised the alpine lake by two metres. Hikers found the old bridge "
         "flooded. " + prose(4, 120))
UPLOADED = ["Volcanologists measured sulphur rising from the northern crater. " + prose(5, 150),
            "Villagers rehearsed the evacuation twice. " + prose(6, 150)]


def words(text: str) -> set[str]:
    return set(_WORDS.findall(text.lower()))


def long_pages(count: int) -> list[str]:
    return [f"Chapter {n} tells of canal barges. " + prose(100 + n, 190) for n in range(count)]


@pytest.fixture(scope="module")
def site() -> Iterator[FakeWeb]:
    with FakeWeb() as server:
        server.add_response("/report.pdf", make_pdf(REPORT, title="Storm report"),
                            content_type=PDF_TYPE)
        # Mislabelled: the bytes say PDF.
        server.add_response("/download", make_pdf(REPORT, title="Storm report"),
                            content_type="application/octet-stream")
        server.add_response("/as-html", make_pdf(REPORT, title="Storm report"),
                            content_type="text/html; charset=utf-8")
        server.add_response("/memo.docx", make_docx(MEMO, heading="Frost memo"),
                            content_type=DOCX_TYPE)
        server.add_response("/notes.txt", NOTES.encode(), content_type="text/plain")
        server.add_response("/uploaded.pdf", make_pdf(UPLOADED), content_type=PDF_TYPE)
        server.add_response("/book.pdf", make_pdf(long_pages(300), title="Barges"),
                            content_type=PDF_TYPE)
        yield server


@pytest.fixture
def web(site: FakeWeb) -> FakeWeb:
    site.requests.clear()
    return site


def submit_url(api: Api, url: str) -> dict[str, Any]:
    response = api.submit(url)
    assert response.status_code == 202, response.text
    return api.wait(response.json()["job_id"])


def upload(base_url: str, body: bytes, *, name: str = "file.pdf",
           content_type: str = PDF_TYPE, **fields: str) -> requests.Response:
    return requests.post(f"{base_url}/api/submit", files={"file": (name, body, content_type)},
                         data=fields, timeout=15)


def upload_and_wait(api: Api, body: bytes, **extra: Any) -> dict[str, Any]:
    response = upload(api.base_url, body, **extra)
    assert response.status_code == 202, response.text
    assert response.headers["X-Cache"] == "MISS"
    return api.wait(response.json()["job_id"])


def nothing_held(valkey: redis.Redis, wait: float = 5) -> bool:
    """No in-flight marker is left (the failed job's is released just after
    its row says failed)."""
    deadline = time.monotonic() + wait
    while list(valkey.scan_iter(match="inflight:*")):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def cached_by(valkey: redis.Redis, job_id: str) -> list[str]:
    """The cache entries job ``job_id`` wrote (not another test's late writes)."""
    return [key for key in valkey.scan_iter(match="summary:*")
            if job_id in (valkey.get(key) or "")]


def extracted(job_id: str) -> str:
    return Job.objects.get(id=job_id).extracted_text


# --- by URL -------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "marker", "title"), [
    ("/report.pdf", "lighthouse", "Storm report"),
    ("/download", "lighthouse", "Storm report"),
    ("/as-html", "lighthouse", "Storm report"),
    ("/memo.docx", "orchard", "Frost memo"),
    ("/notes.txt", "glacier", None),
])
def test_a_document_link_is_summarised_from_its_own_text(
        api: Api, gemini: FakeGemini, web: FakeWeb, path: str, marker: str,
        title: str | None) -> None:
    done = submit_url(api, web.url(path))

    assert done["status"] == "completed", done
    assert done["kind"] == "url" and done["cached"] is False and done["attempts"] == 1
    assert gemini.calls == 1
    text = extracted(done["job_id"])
    assert marker in text.lower() and done["extracted_chars"] == len(text)
    assert marker in gemini.received[0].user_text.lower()
    assert words(done["summary"]) <= words(text)
    if title is not None:
        assert done["title"] == title


@pytest.mark.parametrize(("body", "code"), [
    (encrypt_pdf(make_pdf(REPORT)), "encrypted"),
    (make_scanned_pdf(), "no_text_layer"),
    (make_pdf(REPORT)[:400], "corrupt"),
    (make_docx_bomb(64 * 1024 * 1024), "decompression_bomb"),
])
def test_a_hostile_document_link_fails_at_once_with_its_code(
        api: Api, gemini: FakeGemini, web: FakeWeb, valkey: redis.Redis, body: bytes,
        code: str) -> None:
    web.add_response(f"/hostile-{code}", body, content_type="application/octet-stream")
    done = submit_url(api, web.url(f"/hostile-{code}"))

    assert (done["status"], done["code"], done["attempts"]) == ("failed", code, 1), done
    assert gemini.calls == 0
    assert nothing_held(valkey)
    assert cached_by(valkey, done["job_id"]) == []


@pytest.mark.parametrize(("body", "content_type", "html"), [
    ("<html><body><p>Hé</p></body></html>".encode("utf-16-le"), "text/html", True),
    (b"<!DOCTYPE html><html><body><p>Hi</p></body></html>", "text/plain", True),
    (b"Plain notes. Two sentences.", "text/plain", False),
])
def test_what_a_fetched_body_is_goes_by_its_bytes_and_its_type(
        body: bytes, content_type: str, html: bool) -> None:
    # A page declared HTML stays HTML (UTF-16 without a BOM has NUL bytes, yet
    # is no binary file); a text/plain body that is plainly HTML is HTML.
    declared_html = content_type == "text/html"
    charset = "utf-16-le" if declared_html else None
    page = FetchedPage(url="http://127.0.0.2/x", final_url="http://127.0.0.2/x", status=200,
                       content_type=content_type, charset=charset,
                       html=decode_html(body, charset) if declared_html else "", body=body)
    read, document = document_text.fetched(page, deadline=time.monotonic() + 10)
    assert (document is None) == html
    if html:
        assert "<p>" in read.html


# --- by upload ----------------------------------------------------------------------


def test_an_uploaded_pdf_is_summarised_and_a_second_upload_is_a_hit(
        api: Api, gemini: FakeGemini, namespace: str) -> None:
    body = make_pdf(UPLOADED, title="Crater watch")
    done = upload_and_wait(api, body, store="true")

    assert done["status"] == "completed", done
    assert done["kind"] == "document" and done["title"] == "Crater watch"
    assert "url" not in done and "final_url" not in done
    assert gemini.calls == 1
    text = extracted(done["job_id"])
    assert "volcanologists" in text.lower()
    assert words(done["summary"]) <= words(text)
    # The bytes are not kept once no job needs them.
    assert not DocumentUpload.objects.exists()

    again = upload(api.base_url, body, name="renamed.pdf")
    assert again.status_code == 200, again.text
    assert again.headers["X-Cache"] == "HIT"
    key = NormalizedInput(DOCUMENT, Job.objects.get(id=done["job_id"]).input_text)
    assert again.json()["cache_key"] == key.cache_key(namespace)
    assert again.json()["summary"] == done["summary"]
    assert gemini.calls == 1


def test_an_upload_asked_in_bullets_comes_back_in_bullets(api: Api, gemini: FakeGemini) -> None:
    # The submit cannot count an upload's sentences (its text is the worker's):
    # the form is taken, and the job answers in it.
    body = make_pdf(["Bullet upload. " + prose(77, 160), prose(78, 160)])
    done = upload_and_wait(api, body, style="bullets", length="medium")

    assert done["status"] == "completed", done
    points = done["summary"].splitlines()
    assert 3 <= len(points) <= 6 and all(point.startswith("- ") for point in points), done
    job = Job.objects.get(id=done["job_id"])
    assert (job.style, job.length) == ("bullets", "medium")


def test_a_pdf_uploaded_after_being_linked_costs_no_second_ai_call(
        api: Api, gemini: FakeGemini, web: FakeWeb) -> None:
    linked = submit_url(api, web.url("/uploaded.pdf"))
    assert linked["status"] == "completed" and gemini.calls == 1, linked

    uploaded = upload_and_wait(api, make_pdf(UPLOADED))  # the same bytes as served
    assert uploaded["status"] == "completed", uploaded
    assert uploaded["cached"] is True
    assert uploaded["summary"] == linked["summary"]
    assert gemini.calls == 1


def test_a_300_page_pdf_is_summarised_in_cached_parts(
        api: Api, gemini: FakeGemini, web: FakeWeb, valkey: redis.Redis,
        namespace: str) -> None:
    body = make_pdf(long_pages(300), title="Barges")
    done = upload_and_wait(api, body, name="book.pdf")

    assert done["status"] == "completed", done
    text = extracted(done["job_id"])
    parts = split_parts(text, 30_000)
    assert len(parts) > 5
    assert done["parts"] == {"done": len(parts), "total": len(parts)}
    assert gemini.calls == len(parts) + 1  # each part, then the reduce
    assert len(gemini.received[-1].user_text) < 30_000  # the reduce: the parts' summaries
    for part in parts:  # each part's summary is cached under its own key
        assert valkey.exists(f"summary:{article_key(part, namespace)}")

    # A second run of the same file: a HIT, no call.
    assert upload(api.base_url, body).status_code == 200
    assert gemini.calls == len(parts) + 1

    # The document's own summary lost: the same PDF linked takes every part
    # from the cache.
    valkey.delete(f"summary:{article_key(text, namespace)}")
    # (Not as a near-duplicate of the upload, which would need no call at all.)
    response = api.submit(web.url("/book.pdf"), near_duplicates=False)
    assert response.status_code == 202, response.text
    linked = api.wait(response.json()["job_id"])
    assert linked["status"] == "completed", linked
    # No part asked again: at most the reduce (none when another way to the
    # document's summary answers first).
    assert gemini.calls - (len(parts) + 1) <= 1, (linked, gemini.calls)


@pytest.mark.parametrize(("body", "code"), [
    (encrypt_pdf(make_pdf(UPLOADED)), "encrypted"),
    (make_scanned_pdf(), "no_text_layer"),
    (make_pdf(UPLOADED)[:500], "corrupt"),
    (make_docx_bomb(64 * 1024 * 1024), "decompression_bomb"),
])
def test_a_hostile_upload_fails_at_once_with_its_code_and_is_not_kept(
        api: Api, gemini: FakeGemini, valkey: redis.Redis, body: bytes, code: str) -> None:
    content_type = DOCX_TYPE if code == "decompression_bomb" else PDF_TYPE
    done = upload_and_wait(api, body, content_type=content_type)

    assert (done["status"], done["code"], done["attempts"]) == ("failed", code, 1), done
    assert gemini.calls == 0
    assert nothing_held(valkey)
    assert cached_by(valkey, done["job_id"]) == []
    assert not DocumentUpload.objects.exists()


# --- refused at submit --------------------------------------------------------------


def post_file(client: Client, files: dict[str, Any], **fields: str) -> Any:
    return client.post("/api/submit", data={**fields, **files}, HTTP_ACCEPT="application/json")


def named(name: str, body: bytes, content_type: str = PDF_TYPE) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, body, content_type=content_type)


@pytest.mark.usefixtures("no_enqueue")
@pytest.mark.parametrize("size", [10_000, 200_000])  # counted as read; refused by its length
def test_an_oversized_upload_is_a_413_at_submit(size: int) -> None:
    with override_settings(DOCUMENT_MAX_BYTES=4096):
        response = post_file(Client(), {"file": named("big.pdf", b"%PDF-1.4\n" + b"x" * size)})
    assert response.status_code == 413, response.content
    assert response.json()["code"] == "input_too_large"
    assert not Job.objects.exists() and not DocumentUpload.objects.exists()


@pytest.mark.usefixtures("no_enqueue")
@pytest.mark.parametrize(("body", "content_type"), [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image/png"),
    (b"<!DOCTYPE html><html><body>A page.</body></html>", "text/html"),
    (b"PK\x03\x04 a zip that is no document", "application/zip"),
])
def test_a_file_that_is_no_document_is_a_415_at_submit(body: bytes, content_type: str) -> None:
    response = post_file(Client(), {"file": named("x.bin", body, content_type)})
    assert response.status_code == 415, response.content
    assert response.json()["code"] == "unsupported"
    assert not Job.objects.exists() and not DocumentUpload.objects.exists()


@pytest.mark.usefixtures("no_enqueue")
@pytest.mark.parametrize(("files", "fields", "code"), [
    ({}, {"refresh": "false"}, "required"),  # no file
    ({"file": [named("a.pdf", make_pdf(REPORT)), named("b.pdf", make_pdf(MEMO))]}, {},
     "bad_request"),  # two files
    ({"file": named("empty.pdf", b"")}, {}, "empty"),
    ({"document": named("a.pdf", make_pdf(REPORT))}, {}, "bad_request"),  # wrong field
    ({"file": named("a.pdf", make_pdf(REPORT))}, {"input": "hello"}, "bad_request"),
    ({"file": named("a.pdf", make_pdf(REPORT))}, {"refresh": "maybe"}, "invalid"),
    ({"file": named("a.pdf", make_pdf(REPORT))}, {"language": "klingon!"}, "invalid_language"),
])
def test_a_bad_multipart_submit_is_a_400(files: dict[str, Any], fields: dict[str, str],
                                         code: str) -> None:
    response = post_file(Client(), files, **fields)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert not Job.objects.exists()


@pytest.mark.usefixtures("no_enqueue")
def test_an_upload_takes_the_json_options_as_fields() -> None:
    response = post_file(Client(), {"file": named("a.pdf", make_pdf(REPORT))},
                         refresh="true", store="false", language="de",
                         callback_url="http://127.0.0.2:9/hook")
    assert response.status_code == 202, response.content
    job = Job.objects.get(id=response.json()["job_id"])
    assert (job.kind, job.refresh, job.store, job.language, job.has_callbacks) == (
        "document", True, False, "de", True)
    assert DocumentUpload.objects.get(sha256=job.input_text).size == len(make_pdf(REPORT))


# --- the offline summariser ---------------------------------------------------------


def test_the_offline_summariser_summarises_each_document_whole(
        tmp_path: Path, worker_env: dict[str, str], site: FakeWeb) -> None:
    with stack_of(tmp_path, worker_env, SUMMARIZER="local") as stack:
        api = stack.api()
        stack.worker("local")
        for path, marker in (("/report.pdf", "lighthouse"), ("/memo.docx", "orchard"),
                             ("/notes.txt", "glacier"), ("/book.pdf", "canal")):
            done = submit_url(api, site.url(path))
            assert done["status"] == "completed", (path, done)
            text = extracted(done["job_id"])
            assert marker in text.lower()
            assert words(done["summary"]) <= words(text), path  # extractive: its own sentences
            assert "parts" not in done  # read whole, not in parts
        uploaded = upload_and_wait(api, make_pdf(UPLOADED))
        assert uploaded["status"] == "completed", uploaded
        assert words(uploaded["summary"]) <= words(extracted(uploaded["job_id"]))
        assert "volcanologists" in extracted(uploaded["job_id"]).lower()
