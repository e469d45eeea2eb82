"""Fetching users' URLs (summaries/fetching/): the address policy, the
time, size and redirect bounds, and how failed fetches are retried and
remembered."""

from __future__ import annotations

from smartcache.settings.env import env_float, env_int, env_str

FETCH_ALLOWED_NETWORKS = env_str("FETCH_ALLOWED_NETWORKS")
FETCH_TIMEOUT = env_float("FETCH_TIMEOUT", 15.0)
FETCH_MAX_BYTES = env_int("FETCH_MAX_BYTES", 5_000_000, minimum=1024)
FETCH_MAX_REDIRECTS = env_int("FETCH_MAX_REDIRECTS", 5)
# ... but a page that timed out gets only this many: a dead site should not
# cost its submitter minutes of retries.
FETCH_TIMEOUT_MAX_ATTEMPTS = env_int("FETCH_TIMEOUT_MAX_ATTEMPTS", 2, minimum=1)
# A URL that failed to fetch is answered from memory this long (refresh skips it).
FETCH_FAILURE_TTL = env_int("FETCH_FAILURE_TTL", 300, minimum=0)

# Documents (summaries/documents): a linked or uploaded PDF, DOCX, text or
# Markdown file may have this many bytes (an upload over it is a 413 at
# submit, read no further) and a PDF this many pages.
DOCUMENT_MAX_BYTES = env_int("DOCUMENT_MAX_BYTES", 20 * 1024 * 1024, minimum=1024)
DOCUMENT_MAX_PAGES = env_int("DOCUMENT_MAX_PAGES", 500, minimum=1)
