"""Measure issue 8's throughput targets against the real `make run` stack.

Usage: .venv/bin/python bench/throughput.py [--only NAMES] [--quick] [--env K=V ...]

Starts scripts/run_stack.py (what `make run` runs: gunicorn, Celery worker,
beat, Flower, embedded Valkey, SQLite) on free ports with a fresh var dir, in
its default configuration except: SUMMARIZER=gemini, GEMINI_API_KEY=bench,
GEMINI_BASE_URL at a loopback fake Gemini (bench/fake_gemini_server.py, its
own process), RATE_LIMIT=off (every bench client is 127.0.0.1) and
AI_MAX_RPM=1000000: the issue's "same figures with RATE_LIMIT=off and a high
AI_MAX_RPM". Prints each figure beside its target with PASS/FAIL and exits 1
if any target fails (2 if the bench itself could not run).

Figures (NAMES for --only):
  throughput  1,000 distinct texts, 16 clients, fake AI answers after 1 s:
              jobs/s from first submit to last completion >= 100, all
              complete, no internal errors; also the submit rate.
  hits        POST /api/submit of a cached input vs a bare DRF endpoint
              (bench/bare_app.py) under a gunicorn with the stack's own flags,
              wrk, 16 connections, runs alternated, medians: req/s >= 0.9x,
              p99 <= 1.5x.
  overhead    instant fake AI: distinct jobs/s vs a no-op Celery task's round
              trip (bench/noop_celery.py, a worker with the stack's worker
              flags, same Valkey), runs alternated, medians: >= 0.5x. 1,000
              of each per round, as figure 1: rounds of 300 lasted about 1.5 s
              and measured mostly ramp-up, and the batch wait at each end.
  dedup       50 concurrent identical submits -> exactly 1 AI call, alone and
              while the throughput load runs (if it is selected).
  memory      RSS (and PSS) of the whole stack's process tree, idle and after
              the throughput load (reported; no target).
  batching    a stack with AI_BATCH_SIZE=10: 1,000 short texts at once (100
              per POST /api/submit/batch; single submits if it is absent) ->
              AI calls <= ceil(1000/10) + a small remainder (10%); single
              submits from 16 clients reported beside it.
  lanes       1,000 bulk items waiting (POST /api/submit/batch), a single
              interactive submit completes within about two AI latencies.

Ratios are measured side by side in one run. Every wait is capped (a slow
stack makes a FAIL with the figure reached, not a bench that never ends).
The machine is shared: each figure prints the load average it ran under.
Logs (the stack's output, the baselines') are kept when --keep is given or
something could not be measured.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack as st

FIGURES = ("throughput", "hits", "overhead", "dedup", "memory", "batching", "lanes")
AI_LATENCY_S = 1.0
CLIENTS = 16
T0 = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {message}", flush=True)


# --- results ----------------------------------------------------------------------

@dataclass
class Result:
    figure: str  # the item, e.g. "1 throughput"
    measured: str
    target: str
    passed: bool | None  # None: reported only
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "info"}[self.passed]
        return f"{verdict:4}  {self.figure:<44} {self.measured:>22}   target {self.target}"


RESULTS: list[Result] = []
KEEP_LOGS = threading.Event()  # something went wrong: keep the logs to look at


def record(result: Result) -> None:
    RESULTS.append(result)
    say(result.line())
    for note in result.notes:
        say(f"        {note}")


# --- HTTP ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    status: int  # 0: no HTTP answer (connection error)
    body: dict[str, Any]
    started: float
    ended: float


def request(port: int, method: str, path: str, body: Any = None, timeout: float = 60) -> Reply:
    """One request on a fresh connection (gunicorn's sync workers close it anyway)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = {"raw": raw[:200].decode(errors="replace")}
        return Reply(response.status, parsed if isinstance(parsed, dict) else {"list": parsed},
                     started, time.monotonic())
    except (OSError, http.client.HTTPException) as exc:
        return Reply(0, {"error": repr(exc)}, started, time.monotonic())
    finally:
        conn.close()


def submit(port: int, text: str) -> Reply:
    return request(port, "POST", "/api/submit", {"input": text})


def analytics(port: int) -> dict[str, Any]:
    reply = request(port, "GET", "/api/analytics")
    if reply.status != 200:
        raise RuntimeError(f"/api/analytics answered {reply.status}: {reply.body}")
    return reply.body


def failed_codes(port: int) -> Counter[str]:
    """Error codes of every failed job on the stack (the dead-letter list)."""
    codes: Counter[str] = Counter()
    page = 1
    while True:
        reply = request(port, "GET", f"/api/jobs?status=failed&page_size=200&page={page}")
        if reply.status != 200:
            codes[f"(/api/jobs answered {reply.status})"] += 1
            return codes
        codes.update(str(job.get("code", "?")) for job in reply.body.get("results", []))
        if not reply.body.get("next"):
            return codes
        page += 1


def wait_job(port: int, job_id: str, timeout: float) -> dict[str, Any]:
    """The job's status body once completed or failed, or the last one seen."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = request(port, "GET", f"/api/status/{job_id}").body
        if body.get("status") in ("completed", "failed"):
            return body
        time.sleep(0.1)
    return body


# --- inputs ---------------------------------------------------------------------------

_TOPICS = ("the harbour wall", "a school garden", "the night bus route", "a river survey",
           "the library roof", "a bicycle workshop", "the village orchard", "a radio archive")


def texts(run: str, count: int, tag: str) -> list[str]:
    """`count` distinct short texts of three sentences; unique to this run and `tag`."""
    return [
        f"Report {tag}{run}n{i} describes {_TOPICS[i % len(_TOPICS)]} in district {i % 37}. "
        f"Volunteers counted {i * 7 % 101} problems and fixed most of them within {i % 9 + 2} "
        f"weeks. The council will review item {tag}{run}n{i} again next spring."
        for i in range(count)
    ]


# --- load ---------------------------------------------------------------------------

@dataclass
class Load:
    """The outcome of submitting distinct texts and waiting for their jobs."""

    submitted: int
    statuses: Counter[int]
    first_submit: float
    last_submit: float
    completed: int  # jobs completed since the start (analytics delta)
    failed: int
    done_at: float | None  # when completed + failed reached the expected count
    elapsed: float  # first submit to done_at, or to the cap

    @property
    def accepted(self) -> int:
        return self.statuses[200] + self.statuses[202]

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500 or status == 0)

    @property
    def jobs_per_s(self) -> float:
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def submits_per_s(self) -> float:
        span = self.last_submit - self.first_submit
        return self.accepted / span if span > 0 else 0.0


def run_load(port: int, inputs: Sequence[str], *, cap: float, label: str, bulk: int = 0,
             extra_jobs: Callable[[], int] = lambda: 0,
             midway: Callable[[], None] | None = None,
             give_up: Callable[[], str | None] = lambda: None) -> Load:
    """Submit `inputs` from CLIENTS threads as fast as they are answered (one
    per POST /api/submit, or with bulk=k, k per POST /api/submit/batch) and
    wait until as many jobs (plus extra_jobs()) have finished, at most `cap`
    seconds from the first submit. `midway` runs in a thread once half are
    submitted; `give_up` may end the wait early with a reason (the figure
    already failed). Statuses are counted per text (a bulk item's http_status)."""
    before = analytics(port)
    units = [list(inputs[i:i + bulk]) for i in range(0, len(inputs), bulk)] if bulk \
        else [[text] for text in inputs]
    feed: Iterator[list[str]] = iter(units)
    lock = threading.Lock()
    replies: list[Reply] = []
    statuses: Counter[int] = Counter()
    sent = 0
    over = threading.Event()  # the figure is decided: submit no more

    def client() -> None:
        nonlocal sent
        while not over.is_set():
            with lock:
                unit = next(feed, None)
            if unit is None:
                return
            if bulk:
                reply = request(port, "POST", "/api/submit/batch", bulk_body(unit))
                results = reply.body.get("results")
                items = ([int(r.get("http_status", 0)) for r in results if isinstance(r, dict)]
                         if isinstance(results, list) else [reply.status] * len(unit))
            else:
                reply = submit(port, unit[0])
                items = [reply.status]
            with lock:
                replies.append(reply)
                statuses.update(items)
                sent += len(unit)

    started = time.monotonic()
    clients = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in clients:
        thread.start()
    helper: threading.Thread | None = None
    completed = failed = 0
    done_at: float | None = None
    next_report = started + 3
    while True:
        now = time.monotonic()
        if midway is not None and helper is None and sent >= len(inputs) // 2:
            helper = threading.Thread(target=midway, daemon=True)
            helper.start()
        snap = analytics(port)
        completed = snap["completed_jobs"] - before["completed_jobs"]
        failed = snap["failed_jobs"] - before["failed_jobs"]
        submitting = any(thread.is_alive() for thread in clients)
        if not submitting and completed + failed >= len(inputs) + extra_jobs():
            done_at = time.monotonic()
            break
        if now - started > cap:
            say(f"  {label}: cap of {cap:.0f} s reached")
            break
        if (reason := give_up()) is not None:
            say(f"  {label}: stopping early: {reason}")
            break
        if now >= next_report:
            say(f"  {label}: {sent}/{len(inputs)} submitted, {completed} completed, "
                f"{failed} failed, queue {snap['queue_size']}")
            next_report = now + 5
        time.sleep(0.2)
    over.set()
    for thread in clients:
        thread.join(timeout=60)
    if helper is not None:
        helper.join(timeout=60)
    first = min((r.started for r in replies), default=started)
    last = max((r.ended for r in replies), default=started)
    end = done_at if done_at is not None else time.monotonic()
    return Load(sent, statuses, first, last, completed, failed, done_at, end - first)


# --- figure 4: dedup ---------------------------------------------------------------------

@dataclass
class Dedup:
    marker: str
    statuses: Counter[int]
    job_ids: set[str]


def dedup_submit(port: int, run: str, copies: int = 50) -> Dedup:
    """`copies` identical submits released together (a barrier), one connection each."""
    marker = f"dedupmark{run}{uuid.uuid4().hex[:8]}"
    text = (f"The {marker} lighthouse keepers logged every passing ship for a year. "
            f"Their notebooks now fill three shelves of the town museum.")
    barrier = threading.Barrier(copies)
    replies: list[Reply] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        reply = submit(port, text)
        with lock:
            replies.append(reply)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return Dedup(marker, Counter(r.status for r in replies),
                 {str(r.body["job_id"]) for r in replies if r.body.get("job_id")})


def dedup_verdict(port: int, fake: st.FakeAI, dedup: Dedup, label: str, wait: float) -> Result:
    notes = [f"submits answered {dict(dedup.statuses)}; distinct job ids {len(dedup.job_ids)}"]
    states = [wait_job(port, job_id, wait).get("status", "?") for job_id in dedup.job_ids]
    _, matching = fake.calls(dedup.marker)
    ok_statuses = set(dedup.statuses) <= {200, 202}
    finished = bool(states) and all(s in ("completed", "failed") for s in states)
    if not finished:
        notes.append(f"its job did not finish within the wait (states {states}): 1 call "
                     f"cannot be confirmed")
    passed = ok_statuses and finished and matching == 1 and len(dedup.job_ids) == 1
    return Result(f"4 dedup {label}", f"{matching} AI call(s)", "exactly 1", passed, notes)


# --- the stack's CPU --------------------------------------------------------------------

def cpu_since(stack: st.Stack, before: dict[str, float]) -> dict[str, float]:
    """CPU seconds per program of the stack since ``before`` (st.cpu_by_program)."""
    return {name: seconds - before.get(name, 0.0)
            for name, seconds in st.cpu_by_program(st.process_tree(stack.pid)).items()}


def cpu_per_job(used: dict[str, float], jobs: int) -> str:
    """A note: the stack's CPU ms per job, in all and by program (largest first)."""
    per_job = {name: seconds * 1000 / max(jobs, 1) for name, seconds in used.items()}
    return (f"stack CPU ms per completed job, {sum(per_job.values()):.1f} in all: "
            + ", ".join(f"{name} {ms:.1f}" for name, ms in
                        sorted(per_job.items(), key=lambda kv: -kv[1]) if ms >= 0.05))


# --- figure 1 (+4 under load, +5 after) ---------------------------------------------------

def figure_throughput(stack: st.Stack, fake: st.FakeAI, args: argparse.Namespace,
                      run: str, with_dedup: bool) -> None:
    n = args.n
    fake.set_delay(AI_LATENCY_S)
    dedup: list[Dedup] = []

    def midway() -> None:
        say("  dedup under load: 50 identical submits now")
        dedup.append(dedup_submit(stack.port, run))

    cpu_before, cpu_fake = st.cpu_by_program(st.process_tree(stack.pid)), fake.cpu_seconds()
    cpu_bench = sum(os.times()[:2])
    say(f"figure 1: {n} distinct texts, {CLIENTS} clients, fake AI {AI_LATENCY_S:.0f} s "
        f"(cap {args.cap:.0f} s); load {st.load_average()}")
    load = run_load(stack.port, texts(run, n, "t"), cap=args.cap, label="throughput",
                    extra_jobs=lambda: len(dedup[0].job_ids) if dedup else 0,
                    midway=midway if with_dedup else None)
    # The dedup job is counted in the analytics delta but is not one of the n.
    for job_id in dedup[0].job_ids if dedup else ():
        if request(stack.port, "GET", f"/api/status/{job_id}").body.get("status") == "completed":
            load.completed -= 1
    complete = load.done_at is not None and load.completed >= n
    cpu_used = cpu_since(stack, cpu_before)
    cpu_stack = sum(cpu_used.values())
    cpu_fake = fake.cpu_seconds() - cpu_fake
    cpu_bench = sum(os.times()[:2]) - cpu_bench
    codes = failed_codes(stack.port)
    internal = codes.get("internal_error", 0)
    notes = [
        f"{load.completed} completed, {load.failed} failed of {n} in {load.elapsed:.1f} s"
        + ("" if complete else " (INCOMPLETE when the cap was reached)"),
        f"submit answers {dict(sorted(load.statuses.items()))}; failed job codes on the "
        f"stack {dict(codes) or '{}'}",
        f"CPU seconds during the load: stack {cpu_stack:.1f}, fake Gemini {cpu_fake:.1f}, "
        f"bench clients {cpu_bench:.1f}; "
        f"load average {st.load_average()}",
        cpu_per_job(cpu_used, load.completed),
    ]
    passed = (complete and load.jobs_per_s >= 100 and internal == 0
              and load.server_errors == 0)
    record(Result("1 AI-latency-bound throughput", f"{load.jobs_per_s:.1f} jobs/s",
                  ">= 100 jobs/s, all complete, 0 internal errors", passed, notes))
    record(Result("1 submit rate (accepted submits/s)", f"{load.submits_per_s:.1f} /s",
                  "(reported)", None, [f"{load.server_errors} 5xx or connection errors"]))
    if with_dedup and dedup:
        record(dedup_verdict(stack.port, fake, dedup[0], "while figure 1 runs", wait=10))
    elif with_dedup:
        record(Result("4 dedup while figure 1 runs", "not run", "exactly 1", False,
                      ["the load ended before half its submits"]))


# --- figure 2: cache hits ----------------------------------------------------------------

WRK_LUA = """wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
"""


@dataclass(frozen=True)
class Wrk:
    rps: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(port: int, script: Path, seconds: float) -> Wrk:
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(CLIENTS), "-d", f"{seconds:g}s", "--latency",
         "-s", str(script), f"http://127.0.0.1:{port}/api/submit"],
        capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return Wrk(rps, _ms(p99.group(1)) if p99 else math.nan,
               int(non_2xx.group(1)) if non_2xx else 0,
               sum(int(g) for g in errors.groups()) if errors else 0)


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("installing wrk (apt-get install -y wrk)")
        for step in (["apt-get", "install", "-y", "-q", "wrk"], ["apt-get", "update", "-q"],
                     ["apt-get", "install", "-y", "-q", "wrk"]):
            subprocess.run(step, check=False, stdout=subprocess.DEVNULL)
            if shutil.which("wrk"):
                return
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed: `sudo apt-get install wrk` (Debian/Ubuntu), "
                           "then run the bench again")


def bare_gunicorn(stack: st.Stack, workdir: Path) -> tuple[st.Child, int, list[str]]:
    """A gunicorn serving bench/bare_app.py with the stack's web server's own
    arguments and environment, only the app, bind address and control socket changed."""
    master = stack.component("gunicorn")
    argv = st.cmdline(master)
    gunicorn_at = next(i for i, a in enumerate(argv) if Path(a).name == "gunicorn")
    args = argv[gunicorn_at + 1:]
    port = st.free_port()
    args = ["bench.bare_app:application" if a.endswith(":application") else a for a in args]
    args = st.replace_option(args, ["--bind", "-b"], f"127.0.0.1:{port}")
    args = st.replace_option(args, ["--control-socket"], str(workdir / "bare-gunicorn.ctl"))
    env = st.python_env(st.environ(master))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    child = st.Child("bare-gunicorn", [*argv[:gunicorn_at + 1], *args], env,
                     workdir / "bare-gunicorn.log")
    child.start()
    child.drain()  # its access log is read line by line, as run_stack reads the stack's
    deadline = time.monotonic() + 120
    while request(port, "POST", "/", {}).status != 200:
        if not child.alive() or time.monotonic() > deadline:
            child.stop()
            raise RuntimeError(f"the bare gunicorn did not start:\n{child.log_tail()}")
        time.sleep(0.3)
    return child, port, args


def figure_hits(stack: st.Stack, fake: st.FakeAI, args: argparse.Namespace, run: str,
                workdir: Path) -> None:
    try:
        ensure_wrk()
    except RuntimeError as exc:
        for name, target in (("req/s", ">= 0.9x"), ("p99", "<= 1.5x")):
            record(Result(f"2 cache hit {name} vs bare DRF", "not measured", target, False,
                          [str(exc)]))
        return
    fake.set_delay(AI_LATENCY_S)
    text = texts(run, 1, "hit")[0]
    first = submit(stack.port, text)
    if first.status == 202:
        wait_job(stack.port, str(first.body.get("job_id")), 60)
    again = submit(stack.port, text)
    if again.status != 200 or not again.body.get("cached"):
        record(Result("2 cache hit req/s vs bare DRF", "no cache hit", ">= 0.9x", False,
                      [f"resubmitting a completed input answered {again.status} {again.body}"]))
        record(Result("2 cache hit p99 vs bare DRF", "no cache hit", "<= 1.5x", False))
        return
    script = workdir / "hit.lua"
    script.write_text(WRK_LUA.format(body=json.dumps(json.dumps({"input": text}))))
    bare, bare_port, bare_args = bare_gunicorn(stack, workdir)
    try:
        say(f"figure 2: wrk -c {CLIENTS}, {args.repeats} x {args.wrk_s:g} s each, alternating; "
            f"both gunicorns: {' '.join(bare_args[1:])}")
        wrk(bare_port, script, 2)  # warm both: lazy imports, first connections
        wrk(stack.port, script, 2)
        bare_runs: list[Wrk] = []
        hit_runs: list[Wrk] = []
        for i in range(args.repeats):
            # Which goes first alternates too: neither always runs on a machine
            # still busy with the other's tail.
            for runs, port in [(bare_runs, bare_port), (hit_runs, stack.port)][::1 - 2 * (i % 2)]:
                runs.append(wrk(port, script, args.wrk_s))
            say(f"  round {i + 1}: bare {bare_runs[-1].rps:.0f} req/s p99 "
                f"{bare_runs[-1].p99_ms:.1f} ms | hit {hit_runs[-1].rps:.0f} req/s p99 "
                f"{hit_runs[-1].p99_ms:.1f} ms; load {st.load_average()}")
    finally:
        bare.stop()
    bare_rps = statistics.median(r.rps for r in bare_runs)
    hit_rps = statistics.median(r.rps for r in hit_runs)
    bare_p99 = statistics.median(r.p99_ms for r in bare_runs)
    hit_p99 = statistics.median(r.p99_ms for r in hit_runs)
    bad = sum(r.non_2xx + r.socket_errors for r in hit_runs)
    notes = [f"median req/s: hit {hit_rps:.0f}, bare {bare_rps:.0f}"
             + (f"; {bad} hit answers were non-2xx or socket errors" if bad else "")]
    record(Result("2 cache hit req/s vs bare DRF", f"{hit_rps / bare_rps:.2f}x", ">= 0.9x",
                  hit_rps / bare_rps >= 0.9 and bad == 0, notes))
    record(Result("2 cache hit p99 vs bare DRF", f"{hit_p99 / bare_p99:.2f}x", "<= 1.5x",
                  hit_p99 / bare_p99 <= 1.5,
                  [f"median p99: hit {hit_p99:.1f} ms, bare {bare_p99:.1f} ms"]))


# --- figure 3: pipeline overhead -------------------------------------------------------

def noop_worker(stack: st.Stack, workdir: Path) -> tuple[st.Child, dict[str, str], list[str]]:
    """A Celery worker for bench/noop_celery.py with the stack's worker's own
    arguments and environment; only the app, queue and node name changed."""
    leader = stack.component("celery worker")
    argv = st.cmdline(leader)
    celery_at = next(i for i, a in enumerate(argv) if Path(a).name == "celery")
    args = st.replace_option(argv[celery_at + 1:], ["-A", "--app"], "bench.noop_celery")
    args = st.replace_option(args, ["-n", "--hostname"], "benchnoop@%h")
    if any(a.partition("=")[0] in ("-Q", "--queues") for a in args):
        args = st.replace_option(args, ["-Q", "--queues"], "bench.noop")
    env = st.python_env(st.environ(leader))
    child = st.Child("noop-worker", [*argv[:celery_at + 1], *args], env,
                     workdir / "noop-worker.log")
    child.start()
    child.drain()
    return child, env, args


def noop_round_trip(env: dict[str, str], n: int, timeout: float) -> float:
    """No-op tasks per second, first send to last result (bench/noop_celery.py)."""
    out = subprocess.run([st.PYTHON, str(st.ROOT / "bench" / "noop_celery.py"), "-n", str(n),
                          "--timeout", str(timeout)], cwd=st.ROOT, env=env, capture_output=True,
                         text=True, timeout=timeout + 120)
    if out.returncode != 0:
        raise RuntimeError(f"the no-op Celery client failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return float(result["n"]) / float(result["seconds"])


def figure_overhead(stack: st.Stack, fake: st.FakeAI, args: argparse.Namespace, run: str,
                    workdir: Path) -> None:
    fake.set_delay(0)
    worker, env, worker_args = noop_worker(stack, workdir)
    pipeline: list[float] = []
    noop: list[float] = []
    cpu: dict[str, float] = {}  # the stack's CPU seconds during the pipeline rounds
    completed = 0
    incomplete = ""
    try:
        say(f"figure 3: instant fake AI, {args.n3} jobs vs {args.n3} no-op tasks, "
            f"{args.repeats} rounds; no-op worker: celery {' '.join(worker_args)}")
        for i in range(args.repeats):
            if i % 2 == 0:  # alternate which goes first
                noop.append(noop_round_trip(env, args.n3, args.cap))
            before = st.cpu_by_program(st.process_tree(stack.pid))
            load = run_load(stack.port, texts(run, args.n3, f"o{i}"), cap=args.cap,
                            label="overhead")
            for name, seconds in cpu_since(stack, before).items():
                cpu[name] = cpu.get(name, 0.0) + seconds
            completed += load.completed
            pipeline.append(load.jobs_per_s)
            if i % 2 == 1:
                noop.append(noop_round_trip(env, args.n3, args.cap))
            say(f"  round {i + 1}: pipeline {pipeline[-1]:.1f} jobs/s, no-op Celery "
                f"{noop[-1]:.1f} tasks/s; load {st.load_average()}")
            if load.done_at is None or load.completed < args.n3:
                incomplete = (f"round {i + 1} incomplete: {load.completed} completed, "
                              f"{load.failed} failed of {args.n3} within the cap; no more rounds "
                              f"(its backlog would skew them)")
                break
    finally:
        worker.stop()
    pool = re.findall(r"concurrency: (.+)", worker.log_path.read_text(errors="replace"))
    say(f"  the no-op worker ran with concurrency {pool[0] if pool else '?'} (the stack's "
        "worker has the same arguments and Celery settings)")
    ratio = statistics.median(pipeline) / statistics.median(noop)
    rounds = (f"{', '.join(f'{p:.1f}' for p in pipeline)} vs "
              f"{', '.join(f'{q:.1f}' for q in noop)}")
    notes = [f"median pipeline {statistics.median(pipeline):.1f} jobs/s, no-op Celery "
             f"{statistics.median(noop):.1f} tasks/s (rounds: {rounds})",
             cpu_per_job(cpu, completed)]
    if incomplete:
        notes.append(incomplete)
    record(Result("3 pipeline overhead (jobs/s vs no-op task)", f"{ratio:.2f}x", ">= 0.5x",
                  ratio >= 0.5 and not incomplete, notes))


# --- figure 5: memory ----------------------------------------------------------------------

def figure_memory(stack: st.Stack, label: str) -> None:
    memory = st.tree_memory(stack.pid)
    parts = ", ".join(f"{name} {size / 2**20:.0f}" for name, size in
                      sorted(memory.by_component.items(), key=lambda kv: -kv[1]))
    record(Result(f"5 memory, {label}", f"{memory.rss / 2**20:.0f} MiB RSS", "(reported)", None,
                  [f"{memory.processes} processes; PSS {memory.pss / 2**20:.0f} MiB "
                   f"(shared pages counted once); RSS MiB by program: {parts}"]))


# --- figure 6: batching ---------------------------------------------------------------------

def settle(port: int, timeout: float = 60.0) -> None:
    """Wait until no job is pending or processing (or `timeout`): work left
    over from a load stopped early must not be counted in the next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [request(port, "GET", f"/api/jobs?status={state}&page_size=1").body.get("count", 1)
                for state in ("pending", "processing")]
        if not any(busy):
            return
        time.sleep(0.5)
    say(f"  jobs still pending or processing after {timeout:.0f} s: the next figure may "
        "count some of them")


def figure_batching(fake: st.FakeAI, args: argparse.Namespace, run: str, workdir: Path,
                    settings: dict[str, str]) -> None:
    """AI calls for n short texts with AI_BATCH_SIZE=10. The target is for texts
    submitted at once: 100 per POST /api/submit/batch from CLIENTS clients when
    that endpoint exists, else single submits. With the bulk endpoint, single
    submits from CLIENTS clients are measured too (reported, no target): they
    show how batches form when texts trickle in."""
    batch = 10
    n = args.n6
    bound = math.ceil(n / batch) + max(5, math.ceil(n / batch / 10))
    fake.set_delay(AI_LATENCY_S)
    say(f"figure 6: starting a stack with AI_BATCH_SIZE={batch}")
    stack = st.Stack(workdir, {**settings, "AI_BATCH_SIZE": str(batch)}, name="stack-batching")
    try:
        stack.start()
        has_bulk = bulk_exists(stack.port)
        ways = [("bulk", 100), ("single", 0)] if has_bulk else [("single", 0)]
        for way, bulk in ways:
            settle(stack.port)  # the previous way's leftovers would count as this one's
            calls_before, _ = fake.calls()
            targeted = way == ways[0][0]

            def over_bound(before: int = calls_before, targeted: bool = targeted) -> str | None:
                used = fake.calls()[0] - before
                return (f"{used} AI calls already, above the bound {bound}"
                        if targeted and used > bound else None)

            how = (f"{n} short texts at once: {bulk} per POST /api/submit/batch"
                   if bulk else f"{n} short texts from {CLIENTS} clients, one per submit")
            say(f"  {how} (cap {args.cap:.0f} s)")
            load = run_load(stack.port, texts(run, n, f"b{way}"), cap=args.cap,
                            label=f"batching ({way})", bulk=bulk, give_up=over_bound)
            calls = fake.calls()[0] - calls_before
            complete = load.done_at is not None and load.completed >= n
            notes = [how + ("" if has_bulk or bulk else
                            " (POST /api/submit/batch answers 404: no way to submit at once)"),
                     f"{load.submitted} submitted, {load.completed} completed, {load.failed} "
                     f"failed of {n} in {load.elapsed:.1f} s"
                     + ("" if complete else " (INCOMPLETE: stopped once the bound was "
                                            "exceeded or at the cap)"),
                     f"submit answers per text {dict(sorted(load.statuses.items()))}"]
            if targeted:
                record(Result(f"6 batching, AI_BATCH_SIZE={batch}", f"{calls} AI calls",
                              f"<= {bound} (ceil({n}/{batch}) + 10%)",
                              complete and calls <= bound, notes))
            else:
                record(Result(f"6 batching, {way} submits (no target)", f"{calls} AI calls",
                              "(reported)", None, notes))
    finally:
        stack.stop()


# --- figure 7: lanes ---------------------------------------------------------------------------

LANES = "7 interactive submit behind 1,000 bulk items"


def bulk_body(items: list[str]) -> dict[str, Any]:
    """The request body of POST /api/submit/batch for these texts."""
    return {"inputs": items}


def bulk_exists(port: int) -> bool:
    """Whether POST /api/submit/batch is routed (the API's catch-all answers 404)."""
    return request(port, "POST", "/api/submit/batch", bulk_body([])).status != 404


def figure_lanes(fake: st.FakeAI, args: argparse.Namespace, run: str, workdir: Path,
                 settings: dict[str, str]) -> None:
    limit = 2 * AI_LATENCY_S + 0.5
    fake.set_delay(AI_LATENCY_S)
    stack = st.Stack(workdir, settings, name="stack-lanes")
    try:
        stack.start()
        if not bulk_exists(stack.port):
            record(Result(LANES, "not implemented", f"<= {limit:.1f} s", False,
                          ["POST /api/submit/batch answers 404"]))
            return
        items = texts(run, args.n7, "l")
        chunks = [items[i:i + 100] for i in range(0, len(items), 100)]
        say(f"figure 7: {len(items)} bulk items in {len(chunks)} requests of <= 100")
        replies: list[Reply] = []
        threads = [threading.Thread(target=lambda c=chunk: replies.append(
            request(stack.port, "POST", "/api/submit/batch", bulk_body(c))))
            for chunk in chunks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        statuses = Counter(r.status for r in replies)
        refused = [r for r in replies if r.status not in (200, 202, 207)]
        refused_items = [item for r in replies for item in r.body.get("results", [])
                         if isinstance(item, dict) and int(item.get("http_status", 202)) >= 400]
        if refused_items:
            refused.append(Reply(207, {"refused items": len(refused_items),
                                       "first": refused_items[0]}, 0, 0))
        if refused or len(replies) < len(chunks):
            record(Result(LANES, "bulk refused", f"<= {limit:.1f} s", False,
                          [f"bulk answers {dict(statuses)}; first refusal: "
                           f"{refused[0].body if refused else 'none (a request hung)'}",
                           "the bench sends {\"inputs\": [text, ...]}: if the endpoint's "
                           "contract differs, change bulk_body() in bench/throughput.py"]))
            return
        time.sleep(AI_LATENCY_S)  # let the workers get busy with the bulk lane
        waiting = analytics(stack.port).get("queue_size")
        started = time.monotonic()
        reply = submit(stack.port, texts(run, 1, "interactive")[0])
        body = (wait_job(stack.port, str(reply.body.get("job_id")), 60)
                if reply.status == 202 else reply.body)
        took = time.monotonic() - started
        done = body.get("status") == "completed"
        record(Result(LANES, f"{took:.1f} s", f"<= {limit:.1f} s (about 2 AI latencies)",
                      done and took <= limit,
                      [f"bulk answers {dict(statuses)}; {waiting} jobs pending when the "
                       f"interactive submit was sent ({reply.status}, final status "
                       f"{body.get('status')})"]))
    finally:
        stack.stop()


def guarded(figure: str, measure: Callable[[], None]) -> None:
    """Run one figure's measurement; if a helper of the bench fails (a baseline
    that does not start, wrk missing ...), that figure FAILs and the rest run."""
    try:
        measure()
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        record(Result(figure, "not measured", "-", False, [f"could not measure: {exc}"]))
        KEEP_LOGS.set()


# --- main --------------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--only", default=",".join(FIGURES),
                        help=f"comma-separated subset of {','.join(FIGURES)}")
    parser.add_argument("--quick", action="store_true",
                        help="smaller counts, one round, shorter caps (for iterating)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra setting for every stack (e.g. WORKER_CONCURRENCY=4)")
    parser.add_argument("--keep", action="store_true", help="keep the logs' temp directory")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(FIGURES)
    if unknown:
        parser.error(f"unknown figures {sorted(unknown)}; choose from {','.join(FIGURES)}")
    quick = args.quick
    args.n = 200 if quick else 1000  # figure 1
    args.n3 = 100 if quick else 1000  # figure 3, per round
    args.n6 = 200 if quick else 1000
    args.n7 = 200 if quick else 1000
    args.repeats = 1 if quick else 3
    args.wrk_s = 3.0 if quick else 10.0
    args.cap = 30.0 if quick else 75.0
    for item in args.env:
        if "=" not in item:
            parser.error(f"--env wants NAME=VALUE, not {item!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the stacks, then exit
    run = uuid.uuid4().hex[:6]
    workdir = Path(tempfile.mkdtemp(prefix="smartcache-bench-"))
    only = set(args.only)
    say(f"bench/throughput.py {'--quick ' if args.quick else ''}figures {','.join(args.only)}; "
        f"code {code_version()}; {os.cpu_count()} CPUs, load average {st.load_average()}; "
        f"logs in {workdir}")
    fake = st.FakeAI(workdir, AI_LATENCY_S)
    settings = {"SUMMARIZER": "gemini", "GEMINI_API_KEY": "bench", "RATE_LIMIT": "off",
                "AI_MAX_RPM": "1000000"}
    settings |= dict(item.split("=", 1) for item in args.env)
    stacks: list[st.Stack] = []
    code = 0
    try:
        fake.start()
        settings["GEMINI_BASE_URL"] = fake.base_url
        say("configuration: default `make run` + " + " ".join(
            f"{k}={v}" for k, v in settings.items()))
        lanes_known_missing = False
        if only & {"throughput", "hits", "overhead", "dedup", "memory"} or "lanes" in only:
            say("starting the stack (scripts/run_stack.py)")
            stack = st.Stack(workdir, settings, name="stack")
            stacks.append(stack)
            stack.start()
            say(f"stack up on port {stack.port}; load {st.load_average()}")
            time.sleep(2)  # settle: first imports, beat's first tick
            if "memory" in only:
                figure_memory(stack, "idle")
            if "hits" in only:
                guarded("2 cache hits", lambda: figure_hits(stack, fake, args, run, workdir))
            if "overhead" in only:
                guarded("3 pipeline overhead",
                        lambda: figure_overhead(stack, fake, args, run, workdir))
            if "dedup" in only:
                fake.set_delay(AI_LATENCY_S)
                say("figure 4: 50 identical submits at once, nothing else running")
                record(dedup_verdict(stack.port, fake, dedup_submit(stack.port, run), "alone",
                                     wait=30))
            if "throughput" in only:
                guarded("1 throughput", lambda: figure_throughput(
                    stack, fake, args, run, with_dedup="dedup" in only))
                if "memory" in only:
                    figure_memory(stack, "after figure 1")
            if "lanes" in only and not bulk_exists(stack.port):
                lanes_known_missing = True
                record(Result(LANES, "not implemented", f"<= {2 * AI_LATENCY_S + 0.5:.1f} s",
                              False, ["POST /api/submit/batch answers 404"]))
            say("stopping the stack")
            stack.stop()
            stacks.remove(stack)
        if "lanes" in only and not lanes_known_missing:
            guarded(LANES, lambda: figure_lanes(fake, args, run, workdir, settings))
        if "batching" in only:
            guarded("6 batching", lambda: figure_batching(fake, args, run, workdir, settings))
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        say(f"ERROR: the bench could not finish: {exc}")
        code = 2
    except KeyboardInterrupt:
        say("interrupted")
        code = 2
    finally:
        for stack in stacks:
            with contextlib.suppress(Exception):
                stack.stop()
        fake.stop()
        st.stop_all()  # anything an interruption left between its start and its stop
        if args.keep or code or KEEP_LOGS.is_set():
            say(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(args, code)
    if code:
        return code
    return 1 if any(r.passed is False for r in RESULTS) else 0


def code_version() -> str:
    """The commit measured, and whether the working tree differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=st.ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()
    dirty = " + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") \
        else ""
    return f"{git('rev-parse', '--short', 'HEAD') or '?'}{dirty}"


def print_table(args: argparse.Namespace, code: int) -> None:
    print()
    print(f"SmartCache throughput bench, {time.strftime('%Y-%m-%d %H:%M')}, code "
          f"{code_version()}, {os.cpu_count()} CPUs, load average at the end "
          f"{st.load_average()}"
          f"{' (--quick: smaller counts, verdicts only indicative)' if args.quick else ''}")
    print("stack: default `make run`, RATE_LIMIT=off, AI_MAX_RPM=1000000, fake Gemini "
          f"{AI_LATENCY_S:.0f} s (0 s for figure 3)")
    for result in RESULTS:
        print(result.line())
    if code:
        print("the bench did not finish (interrupted, or see ERROR above): it failed")
    failed = sum(r.passed is False for r in RESULTS)
    if failed:
        print(f"{failed} target(s) failed")
    elif not code:
        print("all targets passed")


if __name__ == "__main__":
    sys.exit(main())
