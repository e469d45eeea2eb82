"""`manage.py summarize "<text or URL>"`: run the pipeline for one input here."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from redis.exceptions import RedisError

from summaries import cache
from summaries.errors import JobError
from summaries.inputs import InvalidInput, normalize_input
from summaries.services import pipeline
from summaries.services.config import summarizer


class Command(BaseCommand):
    help = "Summarise text or a URL in this process; uses the cache when Valkey answers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("input", help="text to summarise, or an http(s) URL")
        parser.add_argument("--refresh", action="store_true", help="ignore the cache")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            item = normalize_input(options["input"])
        except InvalidInput as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from None
        key = item.cache_key(summarizer().cache_namespace)
        use_cache = _valkey_answers()
        if not use_cache:
            self.stderr.write("Valkey is not reachable: summarising without the cache")
        job_id = str(uuid.uuid4())
        try:
            outcome = pipeline.run(item, key=key, job_id=job_id, refresh=options["refresh"],
                                   use_cache=use_cache)
        except JobError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from None
        if use_cache and not outcome.cached:
            pipeline.store(key, outcome, job_id=job_id)
        if options["json"]:
            self.stdout.write(json.dumps({"summary": outcome.summary, "tags": outcome.tags,
                                          "cached": outcome.cached}))
            return
        self.stdout.write(outcome.summary)
        self.stdout.write("tags: " + ", ".join(outcome.tags))
        source = "from the cache" if outcome.cached else summarizer().cache_namespace
        self.stdout.write(f"({source})")


def _valkey_answers() -> bool:
    try:
        return cache.ping()
    except RedisError:
        return False
