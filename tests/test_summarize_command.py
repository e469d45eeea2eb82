"""`manage.py summarize`: the pipeline from a terminal, with and without Valkey."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import text_about
from tests.processes import ROOT


def summarize(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "summarize", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "SUMMARIZER": "local", **env},
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
