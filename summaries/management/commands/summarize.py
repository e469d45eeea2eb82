"""`manage.py summarize "<text or URL>"`: run the pipeline for one input here."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from redis.exceptions import RedisError

from smartcache import valkey_urls
from summaries.core.errors import JobError
from summaries.core.forms import LENGTHS, STYLES, Form
from summaries.core.inputs import InvalidInput, NormalizedInput, normalize_input
from summaries.infra import cache
from summaries.services import costs, pipeline
from summaries.services.config import summarizer
from summaries.services.jobs import job_record_completed
from summaries.services.submit import in_form


class Command(BaseCommand):
    help = "Summarise text or a URL in this process; uses the cache when Valkey answers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("input", help="text to summarise, or an http(s) URL")
        parser.add_argument("--refresh", action="store_true", help="ignore the cache")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--style", choices=STYLES, default=STYLES[0],
                            help="prose (sentences) or bullets (key points)")
        parser.add_argument("--length", choices=LENGTHS, default=LENGTHS[0],
                            help="short (2-3 sentences), medium or long")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            # Keyed apart unless the default form, and checked, as the API does.
            item = in_form(normalize_input(options["input"]),
                           Form(options["style"], options["length"]))
        except InvalidInput as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from None
        key = item.cache_key(summarizer().cache_namespace)
        use_cache = _valkey_answers()
        if not use_cache:
            self.stderr.write(f"Valkey at {_shown(settings.VALKEY_URL)} is not reachable: "
                              "summarising without the cache (set VALKEY_URL, or start "
                              "`make run`, whose Valkey is found through var/valkey-url)")
        holder = str(uuid.uuid4())
        try:
            outcome = pipeline.run(item, key=key, holder=holder, refresh=options["refresh"],
                                   use_cache=use_cache)
        except JobError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from None
        if use_cache and not outcome.cached:
            self._store(item, key, outcome, holder)
        if options["json"]:
            self.stdout.write(json.dumps({"summary": outcome.summary, "tags": outcome.tags,
                                          "cached": outcome.cached}))
            return
        self.stdout.write(outcome.summary)
        self.stdout.write("tags: " + ", ".join(outcome.tags))
        source = "from the cache" if outcome.cached else summarizer().cache_namespace
        self.stdout.write(f"({source})")


    def _store(self, item: NormalizedInput, key: str, outcome: pipeline.Outcome,
               holder: str) -> None:
        """Cache the result for the API too: the API answers a hit with its
        job id, so the result needs a job row first (no row, no caching)."""
        try:
            job = job_record_completed(item=item, key=key, outcome=outcome)
        except DatabaseError as exc:
            self.stderr.write(f"not cached: the database is unavailable ({exc})")
            return
        pipeline.store(key, outcome, job_id=str(job.id), holder=holder, made=costs.made(job))


def _valkey_answers() -> bool:
    try:
        return cache.ping()
    except RedisError:
        return False


def _shown(url: str) -> str:
    """The URL without its credentials (a password in VALKEY_URL stays out of logs)."""
    return valkey_urls.parse(url).shown()
