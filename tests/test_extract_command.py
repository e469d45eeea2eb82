"""`manage.py extract PATH_OR_URL ...`: one JSON line per argument.

Files are the tests' own pages (tests/fixtures/pages) or written to
tmp_path; URLs come from a FakeWeb on 127.0.0.2 (the only network the fetcher may reach in tests).
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from bench.extraction import shingle_scores
from tests.helpers.fakes.web import Canary, FakeWeb
from tests.helpers.pages import LATIN1, NEWS, PARAGRAPHS, expected, page_bytes, page_path
from tests.helpers.processes import ROOT

FERRY_HTML = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Ferry service to expand</title>"
    "</head><body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
    "<article><h1>Ferry service to expand</h1><div class='article-body'>"
    + "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    + "</div></article><footer>Contact us</footer></body></html>"
)


def first_sentence(name: str) -> str:
    body = expected(name).body
    return " ".join(re.split(r"(?<=[.!?])\s+", body.strip(), maxsplit=1)[0].split())


def write_gz(path: Path, name: str) -> Path:
    """A gzip copy of fixture page ``name`` at ``path``."""
    path.write_bytes(gzip.compress(page_bytes(name)))
    return path


def extract(*sources: str) -> tuple[list[dict[str, Any]], int]:
    """Run the command in this process: (one parsed JSON object per line, exit code)."""
    out = io.StringIO()
    code = 0
    try:
        call_command("extract", *sources, stdout=out)
    except SystemExit as exc:
        code = int(exc.code or 0)
    lines = out.getvalue().splitlines()
    return [json.loads(line) for line in lines], code


def extract_cli(*sources: str, cwd: Path) -> tuple[list[dict[str, Any]], int]:
    """Run ``python manage.py extract`` as a separate process, from ``cwd``."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "extract", *sources],
        cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )
    lines = done.stdout.splitlines()
    return [json.loads(line) for line in lines], done.returncode


@pytest.fixture(scope="module")
def site() -> Iterator[FakeWeb]:
    with FakeWeb() as server:
        server.add_page("/ferry", FERRY_HTML)
        server.add_redirect("/short/ferry", "/ferry")
        server.add_status("/gone", 404)
        server.add_response("/data.json", b"{}", content_type="application/json")
        yield server


@pytest.fixture
def web(site: FakeWeb) -> FakeWeb:
    site.requests.clear()
    return site


# --- files ---------------------------------------------------------------------


def test_files_give_one_json_line_each_in_order(tmp_path: Path) -> None:
    page = tmp_path / "ferry.html"
    page.write_text(FERRY_HTML, encoding="utf-8")
    gz = str(write_gz(tmp_path / "story.html.gz", NEWS))

    rows, code = extract(gz, str(page), gz)

    assert code == 0
    assert [row["source"] for row in rows] == [gz, str(page), gz]
    assert rows[0] == rows[2]
    assert set(rows[0]) == {"source", "title", "text"}

    assert rows[0]["title"] == expected(NEWS).title
    text = " ".join(rows[0]["text"].split())
    assert first_sentence(NEWS) in text
    precision, recall = shingle_scores(rows[0]["text"], expected(NEWS).body)
    assert precision > 0.9 and recall > 0.9
    assert "<" not in rows[0]["text"]

    assert rows[1]["title"] == "Ferry service to expand"
    assert rows[1]["text"].split("\n") == PARAGRAPHS


def test_the_cli_echoes_sources_as_given_and_fails_for_a_missing_file(tmp_path: Path) -> None:
    write_gz(tmp_path / "story.html.gz", NEWS)
    (tmp_path / "ferry.html").write_text(FERRY_HTML, encoding="utf-8")

    rows, code = extract_cli("story.html.gz", "missing.html", "./ferry.html", cwd=tmp_path)

    assert code != 0
    assert [row["source"] for row in rows] == ["story.html.gz", "missing.html", "./ferry.html"]
    assert rows[0]["title"] == expected(NEWS).title
    assert first_sentence(NEWS) in " ".join(rows[0]["text"].split())
    assert set(rows[1]) == {"source", "error", "code"}
    assert rows[1]["code"] and rows[1]["error"]
    assert rows[2]["text"].split("\n") == PARAGRAPHS  # later arguments still run


def test_a_missing_file_gives_an_error_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.html.gz")
    rows, code = extract(missing)
    assert code != 0
    assert len(rows) == 1
    assert rows[0]["source"] == missing
    assert rows[0]["code"] and rows[0]["error"]
    assert "text" not in rows[0]


@pytest.mark.parametrize("content", [b"not gzip at all", gzip.compress(FERRY_HTML.encode())[:60]],
                         ids=["not-gzip", "truncated-gzip"])
def test_a_corrupt_gz_file_gives_an_error_line_and_a_non_zero_exit(
        tmp_path: Path, content: bytes) -> None:
    broken = tmp_path / "broken.html.gz"
    broken.write_bytes(content)
    good = tmp_path / "ferry.html"
    good.write_text(FERRY_HTML, encoding="utf-8")

    rows, code = extract(str(broken), str(good))

    assert code != 0
    assert [row["source"] for row in rows] == [str(broken), str(good)]
    assert rows[0]["code"] and rows[0]["error"]
    assert rows[1]["text"].split("\n") == PARAGRAPHS


# --- URLs ------------------------------------------------------------------------------


def test_a_url_is_fetched_through_the_safe_fetcher(web: FakeWeb) -> None:
    url = web.url("/short/ferry?utm_source=feed#top")
    rows, code = extract(url)
    assert code == 0
    assert rows == [{"source": url, "title": "Ferry service to expand",
                     "text": "\n".join(PARAGRAPHS)}]
    assert [r.path for r in web.requests] == ["/short/ferry?utm_source=feed", "/ferry"]


def test_a_url_scheme_is_case_insensitive(web: FakeWeb) -> None:
    url = web.url("/ferry").replace("http://", "HTTP://")
    rows, code = extract(url)
    assert code == 0, rows
    assert rows[0]["source"] == url
    assert rows[0]["text"].split("\n") == PARAGRAPHS
    assert len(web.requests) == 1


@pytest.mark.parametrize(("path", "code"), [("/gone", "http_error"),
                                            ("/data.json", "unsupported_content")])
def test_a_url_that_fails_gives_its_fetch_error_code(web: FakeWeb, path: str, code: str) -> None:
    url = web.url(path)
    rows, exit_code = extract(url, web.url("/ferry"))
    assert exit_code != 0
    assert rows[0]["source"] == url
    assert rows[0]["code"] == code and rows[0]["error"]
    assert rows[1]["title"] == "Ferry service to expand"


def test_urls_into_the_network_are_refused_without_a_connection(web: FakeWeb) -> None:
    with Canary() as canary:
        web.add_redirect("/leak", f"http://127.0.0.1:{canary.port}/admin")
        sources = [
            f"http://127.0.0.1:{canary.port}/",
            f"http://localhost:{canary.port}/",
            f"http://[::ffff:127.0.0.1]:{canary.port}/",
            web.url("/leak"),
        ]
        rows, code = extract(*sources)
        assert canary.connections == 0
    assert code != 0
    assert [row["source"] for row in rows] == sources
    assert all("text" not in row for row in rows)
    assert {row["code"] for row in rows} <= {"blocked_destination", "blocked_url"}
    assert rows[-1]["code"] == "blocked_destination"
    assert [r.path for r in web.requests] == ["/leak"]


def test_a_file_in_a_legacy_charset_is_decoded_by_its_meta_tag(tmp_path: Path) -> None:
    # The page's bytes are ISO-8859-1; only its <meta charset> says so.
    assert b"f\xeate du village" in page_bytes(LATIN1)
    page = shutil.copy(page_path(LATIN1), tmp_path / "fete.html")
    gz = write_gz(tmp_path / "fete.html.gz", LATIN1)

    rows, code = extract(str(page), str(gz))

    assert code == 0
    assert rows[0]["text"] == rows[1]["text"]
    assert rows[0]["title"] == expected(LATIN1).title
    assert "fera son retour le dernier week-end de juin" in rows[0]["text"]
    assert "Éliane Marchand" in rows[0]["text"]
    assert "\ufffd" not in rows[0]["text"]
    precision, recall = shingle_scores(rows[0]["text"], expected(LATIN1).body)
    assert precision > 0.9 and recall > 0.9
