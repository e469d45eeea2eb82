"""Failure modes, proven with real processes: AI errors and timeouts, a worker
SIGKILLed mid-job, Valkey restarted, down or frozen, a task delivered twice.

The tests run their own Valkey (AOF on) and their own API / worker / beat
processes pointed at it (``Stack``: one per destructive test, one shared by
the others), so stopping or killing them never disturbs the session's
worker. The database and the fake Gemini are shared with the session.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from summaries.models import Job
from summaries.services import jobs
from tests.helpers.api import Api
from tests.helpers.environment import BACKOFF_BASE, BACKOFF_MAX, LEASE_SECONDS, MAX_ATTEMPTS
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.jobs import JobState, job_history, retries
from tests.helpers.polling import wait_for
from tests.helpers.processes import Worker
from tests.helpers.stack import Stack, stack_of
from tests.helpers.texts import unique_text

pytestmark = pytest.mark.django_db(transaction=True)

@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory,
           worker_env: dict[str, str]) -> Iterator[tuple[Stack, Api, Worker]]:
    """One stack (API + worker, no beat) for the tests that break nothing."""
    with stack_of(tmp_path_factory.mktemp("faults-shared"), worker_env) as stack:
        api = stack.api()
        worker = stack.worker("shared")
        yield stack, api, worker


def assert_backoff(history: list[JobState]) -> None:
    """Each retry waited at least the backoff's lower bound: the next attempt
    started no sooner (the bound's upper side is test_jobs' retry_delay test).
    Both times are the worker's, written to the row."""
    for retry in retries(history):
        attempt = retry.attempts
        cap = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1))
        following = next(s for s in history if s.attempts == attempt + 1)
        assert following.started_at is not None
        waited = (following.started_at - retry.updated_at).total_seconds()
        assert waited >= cap * 0.5 - 0.01, (attempt, waited, history)


Watched = tuple[dict[str, Any], list[JobState]]


def submit_and_watch(api: Api, text: str, timeout: float = 30) -> Watched:
    """Submit ``text``; return the finished job's status body and the row's history."""
    job_id = api.submit(text).json()["job_id"]
    history = job_history(job_id, timeout=timeout)
    return api.wait(job_id, timeout=5), history


# --- AI errors: transient ones retried with backoff, permanent ones fail at once


def test_transient_ai_errors_are_retried_with_jittered_backoff(
        shared: tuple[Stack, Api, Worker], gemini: FakeGemini) -> None:
    _, api, _ = shared
    gemini.script(["rate_limit", "unavailable", "ok"])
    done, history = submit_and_watch(api, unique_text("lighthouse"))

    assert done["status"] == "completed", done
    assert done["attempts"] == 3
    assert gemini.calls == 3
    assert [r.error_code for r in retries(history)] == ["ai_rate_limited", "ai_unavailable"]
    assert_backoff(history)


def test_an_ai_that_stays_unavailable_fails_after_max_attempts(
        shared: tuple[Stack, Api, Worker], gemini: FakeGemini) -> None:
    _, api, _ = shared
    gemini.mode = "unavailable"
    done, history = submit_and_watch(api, unique_text("harbour"))

    assert done["status"] == "failed", done
    assert done["code"] == "ai_unavailable"
    assert "503" in done["error"]
    assert done["attempts"] == MAX_ATTEMPTS
    assert gemini.calls == MAX_ATTEMPTS
    assert [r.error_code for r in retries(history)] == ["ai_unavailable"] * (MAX_ATTEMPTS - 1)
    assert_backoff(history)
    time.sleep(BACKOFF_MAX + 0.5)  # no stray attempt after giving up
    assert gemini.calls == MAX_ATTEMPTS


def test_a_hanging_ai_times_out_and_is_retried(
        shared: tuple[Stack, Api, Worker], gemini: FakeGemini) -> None:
    _, api, _ = shared
    gemini.script(["hang", "ok"])
    started = time.monotonic()
    done, history = submit_and_watch(api, unique_text("orchard"))
    elapsed = time.monotonic() - started

    assert done["status"] == "completed", done
    assert done["attempts"] == 2
    assert gemini.calls == 2
    assert [r.error_code for r in retries(history)] == ["ai_timeout"]
    assert 2 <= elapsed < 8, elapsed  # GEMINI_TIMEOUT=2, then a quick retry


@pytest.mark.parametrize(("mode", "code"), [("blocked", "ai_blocked"),
                                            ("safety", "ai_blocked"),
                                            ("rejected", "ai_rejected")])
def test_permanent_ai_errors_fail_at_once(
        shared: tuple[Stack, Api, Worker], gemini: FakeGemini, mode: str, code: str) -> None:
    stack, api, worker = shared
    gemini.mode = mode
    text = unique_text(f"quarry {mode}")
    done, history = submit_and_watch(api, text, timeout=20)

    assert done["status"] == "failed", done
    assert done["code"] == code and done["error"]
    assert done["attempts"] == 1
    assert gemini.calls == 1
    assert retries(history) == []
    # Nothing cached, and a redelivered task does not try again.
    input_hash = Job.objects.get(id=done["job_id"]).input_hash
    assert not stack.client().exists(f"summary:{input_hash}", f"inflight:{input_hash}")
    stack.send_process_job(done["job_id"], worker)
    assert gemini.calls == 1
    assert api.status(done["job_id"]).json() == done


# --- a task delivered twice ------------------------------------------------


def test_a_redelivered_task_never_calls_the_ai_again(
        shared: tuple[Stack, Api, Worker], gemini: FakeGemini) -> None:
    stack, api, worker = shared
    job_id = api.submit(unique_text("granary")).json()["job_id"]
    done = api.wait(job_id, timeout=20)
    assert done["status"] == "completed" and gemini.calls == 1
    before = Job.objects.values().get(id=job_id)

    for _ in range(3):
        stack.send_process_job(job_id, worker)
    assert gemini.calls == 1
    assert Job.objects.values().get(id=job_id) == before
    assert api.status(job_id).json() == done


def test_a_task_redelivered_while_the_job_runs_is_a_no_op(
        shared: tuple[Stack, Api, Worker], gemini: FakeGemini) -> None:
    # As when the broker's visibility timeout expires during a long attempt.
    stack, api, worker = shared
    gemini.delay_s = 1.5  # below GEMINI_TIMEOUT
    job_id = api.submit(unique_text("foundry")).json()["job_id"]
    wait_for(lambda: gemini.calls == 1, 15, "the first AI call")
    assert api.status(job_id).json()["status"] == "processing"

    stack.send_process_job(job_id, worker)  # the other pool process returns at once
    assert Job.objects.get(id=job_id).status == Job.Status.PROCESSING

    done = api.wait(job_id, timeout=20)
    assert done["status"] == "completed"
    assert done["attempts"] == 1
    assert gemini.calls == 1


# --- a worker killed mid-job ------------------------------------------------


def test_a_worker_killed_mid_job_is_replaced_and_the_job_completes(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    # A 3 s AI call, within GEMINI_TIMEOUT and the soft time limit.
    with stack_of(tmp_path, worker_env, GEMINI_TIMEOUT="10") as stack:
        api = stack.api()
        doomed = stack.worker("doomed")
        stack.beat()
        gemini.delay_s = 3.0
        job_id = api.submit(unique_text("sawmill")).json()["job_id"]

        # Kill the whole process group while the AI call is in flight.
        wait_for(lambda: gemini.calls == 1, 20, "the first AI call")
        assert api.status(job_id).json()["status"] == "processing"
        doomed.kill()
        killed_at = time.monotonic()
        wait_for(lambda: not doomed.alive(), 5, "the worker to die")
        gemini.delay_s = 0.2
        # No one can finish it now: it stays processing until its lease lapses.
        assert Job.objects.get(id=job_id).status == Job.Status.PROCESSING

        stack.worker("replacement")
        done = api.wait(job_id, timeout=120)
        recovery = time.monotonic() - killed_at
        print(f"recovered {recovery:.1f}s after SIGKILL (lease {LEASE_SECONDS}s)")

        assert done["status"] == "completed", done
        assert done["attempts"] >= 2
        assert gemini.calls == done["attempts"]  # the killed attempt reached the fake
        assert recovery < 120
        # Long before the broker would redeliver the killed worker's message:
        # the reconciler requeued the job.
        assert recovery < settings.VISIBILITY_TIMEOUT
        job = Job.objects.get(id=job_id)
        assert Job.objects.filter(input_hash=job.input_hash).count() == 1
        assert list(stack.client().scan_iter(match="summary:*")) == [
            f"summary:{job.input_hash}"]
        assert not Job.objects.filter(status=Job.Status.PROCESSING).exists()


# --- Valkey restarted, down, frozen -----------------------------------------


def test_jobs_queued_before_a_valkey_restart_are_not_lost(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    with stack_of(tmp_path, worker_env) as stack:
        api = stack.api()  # no worker yet: the jobs stay queued
        answers = [api.submit(unique_text(f"tannery {i}")) for i in range(5)]
        assert [a.status_code for a in answers] == [202] * 5
        job_ids = [a.json()["job_id"] for a in answers]
        assert stack.client().llen("celery") == 5

        stack.stop_valkey()
        stack.start_valkey()
        assert stack.client().llen("celery") == 5  # AOF kept the queue

        # The API reconnects by itself.
        late = api.submit(unique_text("tannery late"))
        assert late.status_code == 202, late.text
        job_ids.append(late.json()["job_id"])

        stack.worker("after-restart")
        for job_id in job_ids:
            done = api.wait(job_id, timeout=30)
            assert done["status"] == "completed", done
            assert done["attempts"] == 1
        assert gemini.calls == 6


def test_jobs_whose_messages_were_lost_are_requeued_by_the_reconciler(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    # Without AOF a restart loses the queue; the job rows still say pending.
    with stack_of(tmp_path, worker_env, aof=False, RECONCILE_PENDING_AFTER="2") as stack:
        api = stack.api()
        job_ids = [api.submit(unique_text(f"ropewalk {i}")).json()["job_id"] for i in range(3)]
        assert stack.client().llen("celery") == 3
        stack.stop_valkey()
        stack.start_valkey()
        assert stack.client().llen("celery") == 0  # the messages are gone

        started = time.monotonic()
        stack.worker("after-loss")
        stack.beat()
        # Done although their messages were gone: the reconciler requeued them.
        for job_id in job_ids:
            done = api.wait(job_id, timeout=30)
            assert done["status"] == "completed", done
            assert done["attempts"] == 1
        print(f"lost jobs requeued and done {time.monotonic() - started:.1f}s after start")
        assert gemini.calls == 3


def test_the_reconciler_requeues_only_jobs_whose_message_is_lost(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    # A backlog longer than RECONCILE_PENDING_AFTER: the messages wait in the
    # queue, no worker has taken them yet. Passes of the reconciler must not
    # add duplicates (they used to add one per job per pass); a job whose
    # message is gone is requeued.
    with stack_of(tmp_path, worker_env, RECONCILE_PENDING_AFTER="1") as stack:
        api = stack.api()
        job_ids = [api.submit(unique_text(f"queue {i}")).json()["job_id"] for i in range(4)]
        lost = job_ids[-1]
        client = stack.client()
        # str, not bytes: the client decodes responses (its type does not say so).
        message = next(str(m) for m in client.lrange("celery", 0, -1)
                       if json.loads(m)["headers"]["id"] == lost)
        client.lrem("celery", 1, message)
        with override_settings(VALKEY_URL=stack.url, RECONCILE_PENDING_AFTER=0):
            for _ in range(3):
                assert jobs.jobs_reconcile() == [(lost, "celery")]
        assert client.llen("celery") == 3

        stack.worker("drain")
        stack.beat()  # its reconciler requeues the lost job
        for job_id in job_ids:
            done = api.wait(job_id, timeout=30)
            assert done["status"] == "completed" and done["attempts"] == 1, done
        assert gemini.calls == 4


def test_with_valkey_down_submit_answers_503_fast_and_service_resumes(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    with stack_of(tmp_path, worker_env) as stack:
        api = stack.api()
        stack.worker("reconnecting")
        warm = api.submit(unique_text("brewery warm-up")).json()["job_id"]
        assert api.wait(warm, timeout=20)["status"] == "completed"

        stack.stop_valkey()
        started = time.monotonic()
        down = api.submit(unique_text("brewery down"))
        took = time.monotonic() - started
        print(f"503 after {took:.2f}s with Valkey down")
        assert down.status_code == 503
        assert down.headers["Content-Type"].startswith("application/json")
        assert down.json()["code"] == "valkey_unavailable" and down.json()["error"]
        assert down.headers["Retry-After"]
        assert took < 3
        health = api.http.get(f"{api.base_url}/api/health", timeout=10)
        assert health.status_code == 503
        assert health.json()["valkey"] != "ok" and health.json()["database"] == "ok"
        assert api.status(warm).json()["status"] == "completed"  # served from the DB

        stack.start_valkey()
        restarted = time.monotonic()
        back = api.submit(unique_text("brewery back"))
        assert back.status_code == 202, back.text
        assert api.http.get(f"{api.base_url}/api/health", timeout=10).status_code == 200
        done = api.wait(back.json()["job_id"], timeout=60)
        print(f"job done {time.monotonic() - restarted:.1f}s after Valkey came back")
        assert done["status"] == "completed", done
        assert gemini.calls == 2


def test_a_valkey_stall_during_a_job_does_not_fail_it(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    # Valkey freezes while the AI is answering: the worker's next Valkey call
    # times out. The job must still complete (row first), and the input must
    # then be a hit, not a second job.
    with stack_of(tmp_path, worker_env) as stack:
        api = stack.api()
        stack.worker("stall")
        gemini.delay_s = 1.5
        text = unique_text("stall")
        job_id = api.submit(text).json()["job_id"]
        wait_for(lambda: api.status(job_id).json()["stage"] == "summarizing", 20,
                 "the job to reach the AI")
        pid = stack.valkey._process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(6)  # two Valkey timeouts (one retry) after the AI answers
        finally:
            os.kill(pid, signal.SIGCONT)
        done = api.wait(job_id, timeout=40)
        assert done["status"] == "completed", done
        again = api.submit(text)
        assert again.status_code == 200 and again.json()["job_id"] == job_id
        assert gemini.calls == 1


def test_a_frozen_valkey_gives_a_503_within_3_seconds(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    # Down can also mean unresponsive: connections are accepted, nothing answers.
    with stack_of(tmp_path, worker_env) as stack:
        api = stack.api()
        assert api.submit(unique_text("smithy warm-up")).status_code == 202
        pid = stack.valkey._process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            frozen = api.submit(unique_text("smithy frozen"))
            took = time.monotonic() - started
            print(f"503 after {took:.2f}s with Valkey frozen")
            started = time.monotonic()
            health = api.http.get(f"{api.base_url}/api/health", timeout=10)
            health_took = time.monotonic() - started
            print(f"health 503 after {health_took:.2f}s with Valkey frozen")
        finally:
            os.kill(pid, signal.SIGCONT)
        assert frozen.status_code == 503, frozen.text
        assert frozen.json()["code"] == "valkey_unavailable"
        assert took < 3
        assert health.status_code == 503
        assert health_took < 3
        assert api.submit(unique_text("smithy thawed")).status_code == 202
