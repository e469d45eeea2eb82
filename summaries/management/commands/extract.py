"""`manage.py extract PATH_OR_URL ...`: one JSON line per argument with the
article's title and text. Files (.html, .html.gz) are read from disk; URLs go
through the safe fetcher."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandParser

from summaries.core.errors import JobError
from summaries.extraction import extract_article
from summaries.fetching import decode_html, fetch_page
from summaries.services.config import fetch_policy


class Command(BaseCommand):
    help = "Extract the article from HTML files or URLs; print one JSON line each."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("sources", nargs="+", metavar="PATH_OR_URL")

    def handle(self, *args: Any, **options: Any) -> None:
        failures = 0
        for source in options["sources"]:
            try:
                html, url = _read(source)
            except (OSError, EOFError, zlib.error, JobError) as exc:
                failures += 1
                message = exc.message if isinstance(exc, JobError) else str(exc)
                code = exc.code if isinstance(exc, JobError) else "unreadable"
                self.stdout.write(json.dumps({"source": source, "error": message, "code": code}))
                continue
            article = extract_article(html, url=url)
            self.stdout.write(json.dumps(
                {"source": source, "title": article.title, "text": article.text},
                ensure_ascii=False,
            ))
        if failures:
            raise SystemExit(1)


def _read(source: str) -> tuple[str, str | None]:
    if urlsplit(source).scheme.lower() in ("http", "https"):
        page = fetch_page(source, fetch_policy())
        return page.html, page.final_url
    path = Path(source)
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return decode_html(data), None
