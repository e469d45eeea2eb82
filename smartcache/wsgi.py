"""The WSGI application (gunicorn imports it in every web worker)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartcache.settings")
application = get_wsgi_application()

# Build the summariser (and import its SDK) while the worker boots, not on
# its first request: every submit needs its cache namespace, and importing
# google-genai takes about a second of CPU.
from summaries.services.config import summarizer  # noqa: E402

summarizer()
