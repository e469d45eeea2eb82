"""Documents beside the other mechanisms (tests/test_seams.py's matrix, the
``documents`` rows): a worker SIGKILLed mid map-reduce, a part whose AI call
fails, a watch of a PDF URL, a scheduled upload, store:false and language on
an upload, a long document's parts on its event stream."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.test import Client
from django.utils import timezone

from summaries.models import DocumentUpload, Job, Watch
from summaries.services import uploads
from summaries.services.long_texts import split_parts
from summaries.services.watches import watch_create
from tests.helpers.api import Api
from tests.helpers.documents import make_pdf, prose
from tests.helpers.fakes.gemini import FakeGemini, prompt_tokens
from tests.helpers.fakes.web import FakeWeb
from tests.helpers.processes import WebServer
from tests.helpers.sse import Reader
from tests.helpers.stack import stack_of
from tests.test_document_jobs import cached_by, named, upload, upload_and_wait

pytestmark = pytest.mark.django_db(transaction=True)

PDF_TYPE = "application/pdf"


def pages(prefix: str, count: int) -> list[str]:
    return [f"{prefix} page {n} recounts the ferry timetable. " + prose(500 + n, 190)
            for n in range(count)]


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return found


@pytest.fixture(scope="module")
def site() -> Iterator[FakeWeb]:
    with FakeWeb() as server:
        server.add_response("/watched.pdf", make_pdf(pages("Watched", 3), title="Timetable"),
                            content_type=PDF_TYPE)
        yield server


# --- killedworker: a worker SIGKILLed between the parts of a long document ------------------


def test_a_worker_killed_mid_map_reduce_is_replaced_and_the_parts_made_are_not_asked_again(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    with stack_of(tmp_path, worker_env, AI_MAX_INPUT_CHARS="5000", JOB_LEASE_SECONDS="10",
                  TASK_TIME_LIMIT="8", GEMINI_TIMEOUT="6") as stack:
        api = stack.api()
        stack.beat()  # the reconciler re-enqueues the killed worker's job
        response = upload(api.base_url, make_pdf(pages("Killed", 20), title="Ferries"))
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        gemini.delay_s = 2.0
        doomed = stack.worker("doomed")
        wait_for(lambda: gemini.calls >= 3, 60, "the third part's AI call")
        doomed.kill()
        wait_for(lambda: not doomed.alive(), 5, "the worker to die")
        gemini.delay_s = 0
        row = Job.objects.get(id=job_id)
        assert (row.status, row.parts_done) == (Job.Status.PROCESSING, 2)
        assert DocumentUpload.objects.filter(sha256=row.input_text).exists()  # kept

        stack.worker("replacement")
        done = api.wait(job_id, timeout=90)
        assert done["status"] == "completed", done
        assert done["attempts"] == 2
        total = len(split_parts(Job.objects.get(id=job_id).extracted_text, 5000))
        assert total > 3
        assert done["parts"] == {"done": total, "total": total}
        # Two parts made before the kill, the one killed asked again, the rest, the reduce.
        assert gemini.calls == 2 + 1 + (total - 2) + 1
        assert not DocumentUpload.objects.exists()  # the job ended: its bytes are gone


# --- aierror: one part's AI call fails ------------------------------------------------------


def test_a_part_blocked_fails_the_document_and_the_next_upload_reuses_the_parts_made(
        api: Api, gemini: FakeGemini, valkey: redis.Redis) -> None:
    body = make_pdf(pages("Blocked", 60))
    gemini.script(["ok", "blocked"])
    failed = upload_and_wait(api, body)
    assert (failed["status"], failed["code"], failed["attempts"]) == (
        "failed", "ai_blocked", 1), failed
    assert gemini.calls == 2
    assert len(cached_by(valkey, failed["job_id"])) == 1  # the first part only

    gemini.reset()
    done = upload_and_wait(api, body)  # a new job: the failed one cached nothing of its own
    assert done["status"] == "completed", done
    total = done["parts"]["total"]
    assert total >= 3
    assert gemini.calls == (total - 1) + 1  # every part but the first, then the reduce


# --- watches: a watch of a PDF URL ----------------------------------------------------------


def test_a_watch_of_a_pdf_url_summarises_the_document(
        api: Api, gemini: FakeGemini, site: FakeWeb) -> None:
    watch = watch_create(url=site.url("/watched.pdf"), every=60)
    # Its first check runs at once (the session worker).
    row = wait_for(lambda: Watch.objects.filter(id=watch.id, last_job__isnull=False).first(),
                   30, "the watch's first check")
    done = api.wait(str(row.last_job_id))
    assert done["status"] == "completed", done
    assert done["title"] == "Timetable"
    assert "ferry" in Job.objects.get(id=row.last_job_id).extracted_text
    assert row.content_hash and row.last_error_code == ""
    assert gemini.calls == 1


# --- run_at, store, language on an upload ---------------------------------------------------


@pytest.mark.usefixtures("no_enqueue")
def test_a_scheduled_upload_keeps_its_bytes_until_it_runs() -> None:
    run_at = (timezone.now() + timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    response = Client().post("/api/submit", data={
        "file": named("later.pdf", make_pdf(pages("Later", 2))), "run_at": run_at})
    assert response.status_code == 202, response.content
    job = Job.objects.get(id=response.json()["job_id"])
    assert (job.status, job.kind) == (Job.Status.SCHEDULED, "document")
    # Retention, hours later: the scheduled job still needs the bytes.
    assert uploads.sweep_uploads(now=timezone.now() + timedelta(hours=2)) == 0
    assert DocumentUpload.objects.filter(sha256=job.input_text).exists()
    Job.objects.filter(id=job.id).update(status=Job.Status.FAILED)
    assert uploads.sweep_uploads(now=timezone.now() + timedelta(hours=2)) == 1


def test_a_store_false_upload_caches_nothing_and_keeps_nothing(
        api: Api, gemini: FakeGemini, valkey: redis.Redis) -> None:
    done = upload_and_wait(api, make_pdf(pages("Private", 2)), store="false")
    assert done["status"] == "completed", done
    assert cached_by(valkey, done["job_id"]) == []
    row = Job.objects.get(id=done["job_id"])
    assert (row.input_text, row.extracted_text) == ("", "")
    assert not DocumentUpload.objects.exists()
    again = upload(api.base_url, make_pdf(pages("Private", 2)))
    assert again.status_code == 202  # not a HIT: nothing was cached


@pytest.mark.usefixtures("no_enqueue")
def test_an_upload_asked_in_a_language_is_keyed_apart() -> None:
    body = make_pdf(pages("Language", 2))
    plain = Client().post("/api/submit", data={"file": named("a.pdf", body)})
    german = Client().post("/api/submit", data={"file": named("a.pdf", body), "language": "de"})
    assert (plain.status_code, german.status_code) == (202, 202)
    assert plain["X-Cache-Key"] != german["X-Cache-Key"]
    again = Client().post("/api/submit", data={"file": named("b.pdf", body), "language": "de"})
    assert (again["X-Cache"], again.json()["job_id"]) == ("JOINED", german.json()["job_id"])


# --- sse: a long document's parts on its event stream ---------------------------------------


def test_the_event_stream_shows_a_long_documents_parts(
        worker_env: dict[str, str], api: Api, gemini: FakeGemini) -> None:
    server = WebServer({**worker_env, "SSE_HEARTBEAT_SECONDS": "0.5", "SSE_MAX_SECONDS": "60"},
                       workers=1)
    server.start()
    try:
        gemini.delay_s = 0.3  # each part's call: the stream sees the parts go by
        response = upload(server.url, make_pdf(pages("Streamed", 60)))
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        stream = Reader(f"{server.url}/api/jobs/{job_id}/events", timeout=60).join(60)
    finally:
        server.stop()
    parts = [event.data["parts"] for event in stream.events if "parts" in event.data]
    total = parts[-1]["total"]
    assert total >= 3 and parts[-1] == {"done": total, "total": total}
    assert [p["done"] for p in parts] == sorted(p["done"] for p in parts)  # in order
    assert any(0 < p["done"] < total for p in parts)  # seen while it ran
    assert stream.events[-1].name == "result" and stream.events[-1].data["status"] == "completed"


@pytest.mark.usefixtures("no_enqueue")
def test_a_jobs_end_keeps_bytes_uploaded_again_since_it_started() -> None:
    body = make_pdf(pages("Again", 2))
    response = Client().post("/api/submit", data={"file": named("a.pdf", body)})
    job = Job.objects.get(id=response.json()["job_id"])
    started = timezone.now() - timedelta(seconds=5)
    # Uploaded again after the job started (another submit about to make its own job).
    uploads.upload_keep(sha256=job.input_text, body=body, content_type=PDF_TYPE, filename="b")
    Job.objects.filter(id=job.id).update(status=Job.Status.COMPLETED)
    uploads.upload_release(sha256=job.input_text, started=started)
    assert DocumentUpload.objects.filter(sha256=job.input_text).exists()
    # Not uploaded since: the job's end deletes them.
    uploads.upload_release(sha256=job.input_text, started=timezone.now())
    assert not DocumentUpload.objects.exists()


# --- cost: a long document pays every part's call and the reduce's ---------------------------


def test_a_long_documents_cost_is_every_parts_call_and_the_reduce(
        api: Api, gemini: FakeGemini) -> None:
    done = upload_and_wait(api, make_pdf(pages("Costed", 60)), name="costed.pdf")

    assert done["status"] == "completed", done
    assert gemini.calls >= 3  # two parts at least, and the reduce
    # The fake reports usage on every answer (4 characters a token): the job
    # pays them all, reported, none estimated.
    reported_in = sum(prompt_tokens(call.prompt) for call in gemini.received)
    assert done["cost"]["input_tokens"] == reported_in
    assert done["cost"]["estimated"] is False
    assert done["cost"]["usd"] > 0
    job = Job.objects.get(id=done["job_id"])
    assert (job.input_tokens, float(job.cost)) == (reported_in, done["cost"]["usd"])
