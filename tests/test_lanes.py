"""Work that must not wait behind other work, with real processes: an API, a
Celery worker (threads pool), the loopback fake Gemini and a web server.

- Lanes: bulk submissions go to their own queue and the worker takes from
  each lane in turn, so an interactive submit overtakes a bulk backlog.
- A slow site holds one thread, not the worker: a text job finishes while
  two pages that never answer are still being fetched.

Both are told by order (which finished first), never by timings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from summaries.core.lanes import Lane
from summaries.models import Job
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.fakes.web import FakeWeb
from tests.helpers.polling import wait_for
from tests.helpers.stack import stack_of

pytestmark = pytest.mark.django_db(transaction=True)


def fresh_text(label: str) -> str:
    word = f"{label}{uuid.uuid4().hex[:8]}"
    return (f"The {word} committee met on Tuesday to plan the harbour festival. "
            f"Its members chose the {word} square for the opening concert.")


def completed_at(job_id: str) -> datetime:
    moment = Job.objects.get(id=job_id).completed_at
    assert moment is not None, job_id
    return moment


def test_an_interactive_submit_overtakes_a_bulk_backlog(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    gemini.delay_s = 0.3
    backlog = 16
    with stack_of(tmp_path, worker_env, aof=False, WORKER_CONCURRENCY="2",
                  AI_BATCH_SIZE="1") as stack:
        api = stack.api()
        response = api.http.post(f"{api.base_url}/api/submit/batch", timeout=30, json={
            "inputs": [fresh_text("bulk") for _ in range(backlog)]})
        assert response.status_code == 202, response.text
        bulk_ids = [item["job_id"] for item in response.json()["results"]]
        interactive = api.submit(fresh_text("single")).json()["job_id"]  # queued last
        stack.worker("lanes")
        done = [api.wait(job_id, timeout=60) for job_id in [interactive, *bulk_ids]]

    assert [job["status"] for job in done] == ["completed"] * (backlog + 1)
    assert {Job.objects.get(id=i).queue for i in bulk_ids} == {Lane.BULK}
    assert Job.objects.get(id=interactive).queue == Lane.INTERACTIVE
    ahead = sum(completed_at(i) < completed_at(interactive) for i in bulk_ids)
    print(f"bulk jobs finished before the interactive one: {ahead} of {backlog}")
    # One lane after the other would finish all 16 first; in turn, the two
    # threads' first bulk jobs at most (and one more taken meanwhile).
    assert ahead <= 3


@pytest.fixture
def silent_site() -> Iterator[FakeWeb]:
    """A site that accepts the connection and never answers."""
    with FakeWeb() as web:
        def never(handler: BaseHTTPRequestHandler) -> None:
            web.stopping.wait(60)

        web.add_route("/silent", never)
        yield web


def test_pages_that_never_answer_do_not_hold_up_a_text(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini,
        silent_site: FakeWeb) -> None:
    with stack_of(tmp_path, worker_env, aof=False, WORKER_CONCURRENCY="4",
                  FETCH_TIMEOUT="8") as stack:
        api = stack.api()
        stack.worker("slow-sites")
        urls = [silent_site.url(f"/silent?page={n}") for n in range(2)]
        url_jobs = [api.submit(url).json()["job_id"] for url in urls]

        def both_fetching() -> bool:
            states = [api.status(job_id).json() for job_id in url_jobs]
            return all(s["status"] == "processing" and s["stage"] == "fetching" for s in states)

        wait_for(both_fetching, 10, "both URL jobs to be fetching")  # two threads held
        text = api.wait(api.submit(fresh_text("quick")).json()["job_id"], timeout=30)
        still = [api.status(job_id).json() for job_id in url_jobs]

    assert text["status"] == "completed", text
    # The text went past them: both pages are still in their first fetch
    # (behind them, it would have waited for that fetch to time out).
    assert [(s["status"], s["stage"], s["attempts"]) for s in still] == [
        ("processing", "fetching", 1)] * 2, still
