"""Structured logs: every line about a job, in the API and in the worker,
carries its job_id, from the submit to the end (retries and failure
included); LOG_FORMAT=json lines are JSON. Real processes, their real output."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from summaries.logcontext import JobIdFilter, JsonFormatter, KeyValueFormatter, job_context
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.polling import wait_for
from tests.helpers.processes import Worker
from tests.helpers.stack import stack_of
from tests.helpers.texts import unique_text


def about(job_id: str, output: str) -> list[str]:
    return [line for line in output.splitlines() if job_id in line]


def wait_for_task_end(worker: Worker, job_id: str, marker: str = "celery.app.trace") -> None:
    """The worker logs a task's end just after the job row is final: Celery's
    own line for a completed job; for one that failed for good, ours (Celery's
    "raised expected" line is dropped: smartcache/settings/core.py, LOGGING)."""
    wait_for(lambda: any(marker in line for line in about(job_id, worker.output())),
             10, f"the worker's line about the end of {job_id}")


@pytest.mark.django_db(transaction=True)
def test_every_line_about_a_job_carries_its_id(tmp_path: Path, worker_env: dict[str, str],
                                               gemini: FakeGemini) -> None:
    with stack_of(tmp_path, worker_env) as stack:
        api = stack.api()
        worker = stack.worker("logs")
        gemini.script(["unavailable", "ok"])  # one retry, then a summary
        text = unique_text("logged harbour")
        retried = api.submit(text).json()["job_id"]
        assert api.wait(retried)["attempts"] == 2
        assert api.submit(text).status_code == 200  # a hit: no job line
        gemini.mode = "rejected"
        failed = api.submit(unique_text("logged quarry")).json()["job_id"]
        assert api.wait(failed)["status"] == "failed"
        wait_for_task_end(worker, retried)
        wait_for_task_end(worker, failed, marker="failed")
        assert stack.web is not None
        web, work = stack.web.output(), worker.output()

    for job_id in (retried, failed):
        api_lines, worker_lines = about(job_id, web), about(job_id, work)
        # The submit and the status polls in the API; received, tried, done in the worker.
        assert len(api_lines) >= 2 and len(worker_lines) >= 2, (api_lines, worker_lines)
        for line in api_lines + worker_lines:
            assert f"job_id={job_id}" in line, line
    # The retried job: received twice (two attempts), and a line for its retry.
    assert sum("received" in line for line in about(retried, work)) == 2
    assert any("level=warning" in line for line in about(failed, work))


@pytest.mark.django_db(transaction=True)
def test_json_lines_parse_and_carry_the_job_id(tmp_path: Path, worker_env: dict[str, str],
                                               gemini: FakeGemini) -> None:
    with stack_of(tmp_path, worker_env, LOG_FORMAT="json") as stack:
        api = stack.api()
        worker = stack.worker("json")
        job_id = api.submit(unique_text("logged in json")).json()["job_id"]
        assert api.wait(job_id)["status"] == "completed"
        wait_for_task_end(worker, job_id)
        assert stack.web is not None
        web, work = stack.web.output(), worker.output()

    # Every line of both processes is a JSON object (gunicorn's and Celery's
    # own, Python warnings: no banner, no plain text).
    records = [json.loads(line) for line in (web + work).splitlines() if line.strip()]
    assert all({"time", "level", "logger", "msg"} <= record.keys() for record in records)
    about_job = [r for r in records if job_id in json.dumps(r)]
    assert {r["logger"] for r in about_job} >= {"gunicorn.access", "celery.app.trace"}
    assert all(r["job_id"] == job_id for r in about_job), about_job


def _record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    """A record as logger.info(message, *args, extra=extra) makes it, filtered."""
    record = logging.LogRecord("summaries.test", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    JobIdFilter().filter(record)
    return record


@pytest.mark.no_valkey
def test_a_line_inside_a_job_context_names_the_job() -> None:
    with job_context("5a0c2f4e-8b1d-4c3a-9e7f-0123456789ab"):
        record = _record('said "hi" to a=b', stage="fetching", data={"args": [1]})
    line = KeyValueFormatter().format(record)
    assert line.split(" ", 1)[1] == (
        'level=info logger=summaries.test job_id=5a0c2f4e-8b1d-4c3a-9e7f-0123456789ab '
        'msg="said \\"hi\\" to a=b" stage=fetching')
    body = json.loads(JsonFormatter().format(record))
    assert (body["job_id"], body["msg"], body["stage"]) == (
        "5a0c2f4e-8b1d-4c3a-9e7f-0123456789ab", 'said "hi" to a=b', "fetching")
    assert "data" not in body
    outside = _record("no job here")
    assert "job_id" not in KeyValueFormatter().format(outside)
    assert "job_id" not in json.loads(JsonFormatter().format(outside))


@pytest.mark.no_valkey
def test_celery_lines_about_a_job_task_name_the_job() -> None:
    record = _record("Task %(name)s[%(id)s] received",
                     {"name": "summaries.process_job", "id": "7e1d3b52"})
    assert record.job_id == "7e1d3b52"  # type: ignore[attr-defined]
    housekeeping = _record("Task %(name)s[%(id)s] received",
                           {"name": "summaries.reconcile_jobs", "id": "x"})
    assert housekeeping.job_id is None  # type: ignore[attr-defined]
