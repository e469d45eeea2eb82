"""The command line of each long-running process, defined once.

`make run` (scripts/run_stack.py), the tests (tests/helpers/processes.py), the
benchmarks and the containers (docker-compose.yml, Dockerfile) all start
their web server, worker, beat and Flower from here. Everything else a
process needs (pool, concurrency, time limits, queues) comes from the
settings, so it is the same however the process is started.

From a shell or a container: ``python -m smartcache.commands web|worker|beat|flower``
runs the command (exec), reading HOST/PORT/WEB_CONCURRENCY/WEB_THREADS/FLOWER_PORT/
FLOWER_BASIC_AUTH/SMARTCACHE_VAR_DIR from the environment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from smartcache import secret_files

BIN = Path(sys.executable).parent


def _celery(*args: str, app: str = "smartcache") -> list[str]:
    return [str(BIN / "celery"), "-A", app, *args]


# Beat and Flower run the app without tasks or Django setup (smartcache/celery.py).
TASKLESS = "smartcache.celery:taskless"


# Threads per web process (WEB_THREADS): an open event stream
# (/api/jobs/<id>/events) holds one for its whole life, the settings keep
# some free for the rest of the API (SSE_MAX_STREAMS). Threads are created
# only as needed, and a waiting stream costs no CPU; so many that one
# process can take every stream gunicorn happens to hand it (its workers
# do not share connections evenly: bench/streams.py).
WEB_THREADS = 256


def web(*, bind: str, workers: int, control_socket: Path,
        threads: int = WEB_THREADS) -> list[str]:
    """gunicorn with threaded workers (gthread), chosen by measurement
    (bench/streams.py): a sync worker would be held whole by each open event
    stream, so 3 streams would starve the API; threads keep the API's
    request path as it is (WSGI, no event loop) and cost about nothing
    while a stream waits. Every client shared across threads is
    thread-safe (redis-py's pool, the SDK client; a stream's subscription
    belongs to its thread)."""
    return [
        str(BIN / "gunicorn"), "smartcache.wsgi:application", "--bind", bind,
        "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
        "--timeout", "30", "--graceful-timeout", "5",
        # The app is imported once, by the master, before it forks the
        # workers: they share its pages (about 45 MiB each less at idle,
        # bench/idle_memory.py) instead of each importing Django, DRF and the
        # services again. Nothing at import opens a connection or starts a
        # thread (summaries/infra/runtime.py starts them per process, lazily).
        "--preload",
        "--access-logfile", "-",
        # Its lines, access log included, in the format of every other line
        # (key=value or JSON), each access line with the job it is about.
        "--logger-class", "summaries.logcontext.GunicornLogger",
        # Its own control socket: the default one, per user, would be taken
        # over (and removed on exit) by any other gunicorn of the same user.
        "--control-socket", str(control_socket),
    ]


def worker(*, hostname: str = "worker@%h") -> list[str]:
    """A Celery worker; pool, concurrency and queues come from the settings.

    --skip-checks: Django's system checks import every URL, view and the
    OpenAPI schema (about 6 MiB the worker would keep, bench/idle_memory.py)
    to check what only the web serves; `manage.py migrate` runs them before
    any worker starts (make run, compose), and gunicorn does not run them
    either."""
    return _celery("--skip-checks", "worker", "--loglevel", "INFO", "--hostname", hostname)


def beat(*, schedule: Path) -> list[str]:
    """Celery beat (the reconciler's clock). Run exactly one."""
    return _celery("beat", "--loglevel", "INFO", "--schedule", str(schedule), app=TASKLESS)


def flower(*, port: int, address: str, basic_auth: str = "") -> list[str]:
    args = _celery("flower", f"--port={port}", f"--address={address}", app=TASKLESS)
    return [*args, f"--basic-auth={basic_auth}"] if basic_auth else args


def from_environment(name: str, env: dict[str, str]) -> list[str]:
    """The command ``name`` with its options read from ``env``."""
    var = Path(env.get("SMARTCACHE_VAR_DIR") or Path(__file__).resolve().parent.parent / "var")
    host = env.get("HOST") or "0.0.0.0"  # noqa: S104 (containers listen on every interface)
    bind_host = f"[{host}]" if ":" in host else host
    if name == "web":
        return web(bind=f"{bind_host}:{env.get('PORT') or 8000}",
                   workers=int(env.get("WEB_CONCURRENCY") or 3),
                   control_socket=var / "gunicorn.ctl",
                   threads=int(env.get("WEB_THREADS") or WEB_THREADS))
    if name == "worker":
        return worker()
    if name == "beat":
        return beat(schedule=var / "celerybeat-schedule")
    if name == "flower":
        return flower(port=int(env.get("FLOWER_PORT") or 5555), address=host,
                      basic_auth=env.get("FLOWER_BASIC_AUTH", ""))
    raise SystemExit(f"unknown command {name!r}: web, worker, beat or flower")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m smartcache.commands web|worker|beat|flower")
    argv = from_environment(sys.argv[1], dict(os.environ))
    # var/ and the local secrets the settings read (never made by importing them).
    secret_files.ensure_local(os.environ)
    os.execv(argv[0], argv)  # noqa: S606 (our own binaries, from the same venv)
