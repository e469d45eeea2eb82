"""End to end: real HTTP → API → Valkey broker → Celery worker processes →
Gemini SDK → loopback fake Gemini → cache → status."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from summaries.models import Job
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.processes import WebServer
from tests.helpers.texts import text_about

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_text_is_summarised_then_served_from_the_cache(api: Api, gemini: FakeGemini) -> None:
    text = text_about("windmill")
    first = api.submit(text)
    assert first.status_code == 202
    job_id = first.json()["job_id"]
    assert first.headers["Location"].endswith(f"/api/status/{job_id}")

    done = api.wait(job_id)
    assert done["status"] == "completed", done
    assert 2 <= len(done["tags"]) <= 4
    assert done["summary"].count(".") >= 2
    assert "windmill" in done["summary"].lower()
    assert done["duration_ms"] >= 0 and done["completed_at"]

    again = api.submit("  " + text.replace(" ", "  \n") + "  ")
    assert again.status_code == 200
    assert again.json() == {"job_id": job_id, "status": "completed", "cached": True,
                            "summary": done["summary"], "tags": done["tags"],
                            "cache_key": again.headers["X-Cache-Key"]}
    assert again.headers["X-Cache"] == "HIT"
    assert api.status(job_id).json()["status"] == "completed"
    assert gemini.calls == 1


@pytest.mark.parametrize("ai_delay", [0.5, 0.0])
def test_a_burst_of_identical_submits_costs_one_ai_call(
        api: Api, gemini: FakeGemini, ai_delay: float) -> None:
    # Slow: the job is in flight for the whole burst. Fast: it completes
    # mid-burst, and late submits must get its cached answer, not a new job.
    gemini.delay_s = ai_delay
    text = text_about(f"observatory {ai_delay}")
    with ThreadPoolExecutor(max_workers=25) as pool:
        answers = list(pool.map(lambda _: api.submit(text), range(25)))
    assert {a.status_code for a in answers} <= {200, 202}, [
        (a.status_code, a.text) for a in answers if a.status_code not in (200, 202)]
    job_ids = {a.json()["job_id"] for a in answers}
    assert len(job_ids) == 1
    assert api.wait(job_ids.pop())["status"] == "completed"
    assert gemini.calls == 1
    assert Job.objects.count() == 1
    stats = api.analytics()
    assert stats["total_requests"] == 25
    assert stats["cache_hits"] + stats["cache_misses"] == 25


def test_ai_output_breaking_the_contract_is_asked_again(api: Api, gemini: FakeGemini) -> None:
    gemini.mode = "bad_then_ok"
    done = api.wait(api.submit(text_about("canal")).json()["job_id"])
    assert done["status"] == "completed"
    assert gemini.calls == 2


def test_a_job_fails_clearly_when_the_ai_keeps_breaking_the_contract(
        api: Api, gemini: FakeGemini) -> None:
    gemini.mode = "bad"
    text = text_about("bridge")
    done = api.wait(api.submit(text).json()["job_id"])
    assert done["status"] == "failed"
    assert done["code"] == "ai_bad_output" and done["error"]
    assert gemini.calls == 2
    # Nothing was cached: the next submit is a new job, not a hit.
    gemini.mode = "ok"
    retry = api.submit(text)
    assert retry.status_code == 202
    assert retry.json()["job_id"] != done["job_id"]
    assert api.wait(retry.json()["job_id"])["status"] == "completed"


def test_analytics_add_up_across_api_and_worker_processes(
        api: Api, gemini: FakeGemini, worker_env: dict[str, str]) -> None:
    other = WebServer(worker_env, workers=2)
    try:
        other.start()
        second = Api(other.url)
        texts = [text_about(f"topic{i}") for i in range(4)]
        ids = [api.submit(texts[0]).json()["job_id"], second.submit(texts[1]).json()["job_id"]]
        for job_id in ids:
            assert api.wait(job_id)["status"] == "completed"
        second.submit(texts[0])  # hit, through the other process
        api.submit(texts[1])  # hit
        gemini.mode = "blocked"
        failed = second.submit(texts[2]).json()["job_id"]
        assert api.wait(failed)["code"] == "ai_blocked"

        # Each API process adds its counts to Valkey every METRICS_FLUSH_SECONDS.
        time.sleep(1.5)
        for stats in (api.analytics(), second.analytics()):
            assert stats["total_requests"] == 5
            assert (stats["cache_hits"], stats["cache_misses"]) == (2, 3)
            assert stats["failed_jobs"] == 1
            assert stats["failure_rate"] == pytest.approx(1 / 3, abs=1e-3)
            assert stats["avg_processing_time_ms"] > 0
            assert stats["queue_size"] == 0
    finally:
        other.stop()
