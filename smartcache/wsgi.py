"""The WSGI application.

gunicorn imports it once, in its master (--preload, smartcache/commands.py),
and forks the workers from there: they share every page loaded here rather
than each loading Django, the API and the services on its own (about 45 MiB
per worker, bench/idle_memory.py). The web never builds the summariser: its
cache keys come from the settings (summaries/services/config.py).
"""

from __future__ import annotations

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartcache.settings")
application = get_wsgi_application()
# The URLs, and through them every view and service: loaded now, once, not
# by each worker's first request.
get_resolver().url_patterns  # noqa: B018 (loading is the point)
# What is loaded stays: the workers' garbage collector then never writes to
# it, so its pages stay shared (the gc module's advice for fork without exec).
gc.freeze()
