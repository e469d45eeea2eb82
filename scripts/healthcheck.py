"""Container healthchecks: ``python scripts/healthcheck.py web|worker|beat|flower``.

Exit 0 when the process of that name in this container is doing its job,
1 (with the reason on stderr) when it is not. Reads the same environment as
``python -m smartcache.commands`` (HOST, PORT, FLOWER_PORT,
SMARTCACHE_VAR_DIR, DJANGO_ALLOWED_HOSTS).

- web: GET /api/health answers 200 (database and Valkey reachable), asked
  with a Host header the server accepts.
- worker: this container's worker answers a Celery ping over the broker.
- beat: its schedule file was written recently (beat saves it at least every
  3 minutes while it sends the reconciler's task every RECONCILE_INTERVAL).
- flower: GET /healthcheck answers OK.
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Celery beat saves its schedule every 180 s (beat's sync interval); three
# missed saves mean it is stuck or gone.
BEAT_STALE_SECONDS = 600.0


def local_host() -> str:
    """Where to reach this container's server: its HOST, or loopback for a wildcard."""
    host = (os.environ.get("HOST") or "0.0.0.0").strip("[]")  # noqa: S104 (compared only)
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104


def allowed_host() -> str:
    """A Host header Django accepts: the first of DJANGO_ALLOWED_HOSTS."""
    for name in (os.environ.get("DJANGO_ALLOWED_HOSTS") or "localhost").split(","):
        name = name.strip().lstrip(".")
        if name and name != "*":
            return name
    return "localhost"


def get(port: int, path: str, host_header: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection(local_host(), port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host_header})
        response = connection.getresponse()
        return response.status, response.read(2000).decode(errors="replace")
    finally:
        connection.close()


def check_web() -> str | None:
    status, body = get(int(os.environ.get("PORT") or 8000), "/api/health", allowed_host())
    return None if status == 200 else f"/api/health answered {status}: {body}"


def check_flower() -> str | None:
    status, body = get(int(os.environ.get("FLOWER_PORT") or 5555), "/healthcheck", "localhost")
    return None if status == 200 and body.strip() == "OK" else f"/healthcheck: {status} {body}"


def check_worker() -> str | None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartcache.settings")
    from smartcache.celery import app

    # smartcache.commands names the worker worker@%h: %h is this host name.
    name = f"worker@{socket.gethostname()}"
    replies = app.control.ping(destination=[name], timeout=5.0)
    return None if replies else f"{name} did not answer a ping"


def check_beat() -> str | None:
    var = Path(os.environ.get("SMARTCACHE_VAR_DIR") or ROOT / "var")
    files = list(var.glob("celerybeat-schedule*"))
    if not files:
        return f"no beat schedule in {var}"
    age = time.time() - max(path.stat().st_mtime for path in files)
    return None if age < BEAT_STALE_SECONDS else f"beat schedule not saved for {age:.0f} s"


CHECKS = {"web": check_web, "worker": check_worker, "beat": check_beat, "flower": check_flower}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in CHECKS:
        print("usage: healthcheck.py web|worker|beat|flower", file=sys.stderr)
        return 2
    try:
        problem = CHECKS[argv[0]]()
    except Exception as error:  # any failure to check is unhealthy, said plainly
        problem = f"{type(error).__name__}: {error}"
    if problem:
        print(f"{argv[0]} unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
