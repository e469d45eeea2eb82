"""`manage.py summarize`: the pipeline from a terminal, with and without Valkey."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.db import connection
from django.test import Client

from summaries.core.forms import Form
from summaries.core.inputs import normalize_input
from summaries.models import Job
from summaries.providers import LocalProvider
from tests.helpers.processes import ROOT, database_url
from tests.helpers.texts import text_about

pytestmark = pytest.mark.django_db(transaction=True)


def summarize(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "summarize", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "SUMMARIZER": "local",
             "DATABASE_URL": database_url(connection.settings_dict), **env},
    )


def test_it_summarises_text_and_then_answers_from_the_cache() -> None:
    text = text_about("lantern")
    first = summarize(text, "--json")
    assert first.returncode == 0, first.stderr
    body = json.loads(first.stdout)
    assert body["cached"] is False
    assert "lantern" in body["summary"].lower()
    assert 2 <= len(body["tags"]) <= 4

    again = summarize("  " + text + "  ", "--json")
    assert json.loads(again.stdout) == {**body, "cached": True}

    plain = summarize(text)
    assert body["summary"] in plain.stdout
    assert "tags: " + ", ".join(body["tags"]) in plain.stdout


def test_it_works_without_valkey() -> None:
    result = summarize(text_about("beacon"), "--json", VALKEY_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 0, result.stderr
    assert "not reachable" in result.stderr
    assert json.loads(result.stdout)["cached"] is False


def test_bad_input_is_a_clear_error() -> None:
    result = summarize("ftp://example.com/file")
    assert result.returncode != 0
    assert "blocked_url" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_api_answers_its_cached_result_with_a_job_that_exists(client: Client) -> None:
    text = text_about("signal box")
    result = summarize(text, "--json")
    assert result.returncode == 0, result.stderr
    # The API (Gemini namespace in tests) and the command (local) differ in
    # namespace, so look the entry up as the command stored it.
    key = normalize_input(text).cache_key(LocalProvider().cache_namespace)
    job = Job.objects.get(input_hash=key)
    assert job.status == Job.Status.COMPLETED
    assert job.summary == json.loads(result.stdout)["summary"]
    status = client.get(f"/api/status/{job.id}")
    assert status.status_code == 200 and status.json()["status"] == "completed"


def test_without_a_database_it_summarises_but_does_not_cache() -> None:
    text = text_about("tide mill")
    result = summarize(text, "--json", DATABASE_URL="postgres://nobody@127.0.0.1:1/none")
    assert result.returncode == 0, result.stderr
    assert "not cached" in result.stderr
    again = summarize(text, "--json")
    assert json.loads(again.stdout)["cached"] is False


def test_it_summarises_in_the_form_asked_keyed_apart() -> None:
    text = text_about("ferry pier")
    prose = json.loads(summarize(text, "--json").stdout)
    bullets = summarize(text, "--json", "--style", "bullets", "--length", "medium")
    assert bullets.returncode == 0, bullets.stderr
    body = json.loads(bullets.stdout)
    assert body["cached"] is False  # another form: another key, not the prose entry
    points = body["summary"].splitlines()
    assert len(points) >= 3 and all(point.startswith("- ") for point in points), body
    assert body["summary"] != prose["summary"]
    # Its job row says the form, and the API answers the same request with it.
    key = normalize_input(text).in_form(Form("bullets", "medium")).cache_key(
        LocalProvider().cache_namespace)
    job = Job.objects.get(input_hash=key)
    assert (job.style, job.length, job.summary) == ("bullets", "medium", body["summary"])
    again = summarize(text, "--json", "--style", "bullets", "--length", "medium")
    assert json.loads(again.stdout) == {**body, "cached": True}


def test_a_bad_form_or_too_few_sentences_for_bullets_is_a_clear_error() -> None:
    wrong = summarize(text_about("weir"), "--style", "poem")
    assert wrong.returncode != 0 and "invalid choice" in wrong.stderr
    short = summarize("One sentence here. And a second one.", "--style", "bullets")
    assert short.returncode != 0 and "input_too_short" in short.stderr
    assert "Traceback" not in wrong.stderr + short.stderr
