"""`manage.py webhook_secret CALLBACK_URL`: the secret a receiver verifies
webhooks with (Standard Webhooks' ``whsec_...``), for the callback URL's
origin; with WEBHOOK_PREVIOUS_SECRETS set, the retiring secrets' ones after
it (README: Webhooks)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from summaries.core import canonical_urls
from summaries.services.webhook_sending import endpoint_secret


class Command(BaseCommand):
    help = "Print the webhook secret of a callback URL's receiver (whsec_...)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("callback_url")

    def handle(self, *args: Any, **options: Any) -> None:
        for secret in (settings.WEBHOOK_SECRET, *settings.WEBHOOK_PREVIOUS_SECRETS):
            try:
                self.stdout.write(endpoint_secret(options["callback_url"], secret=secret))
            except canonical_urls.InvalidURL as exc:
                raise CommandError(exc.message) from None
