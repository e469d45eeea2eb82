"""Processes for bench/throughput.py: the `make run` stack under test, the fake
Gemini, and the baselines (bare gunicorn, no-op Celery worker), plus /proc
helpers (process trees, RSS/PSS, command lines).

Everything started here is in a process group of its own and is stopped, and
waited for, by the object that started it; nothing outlives the bench.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Inherited settings that would change the configuration under test: the
# bench measures the default `make run` configuration plus what it sets itself
# (and any --env the developer passes).
SCRUBBED = ("VALKEY_URL", "DATABASE_URL", "WEB_CONCURRENCY", "WORKER_CONCURRENCY",
            "DJANGO_SETTINGS_MODULE", "SUMMARIZER", "RATE_LIMIT", "CACHE_TTL", "LOG_LEVEL")
SCRUBBED_PREFIXES = ("GEMINI_", "AI_", "CELERY_", "FETCH_", "JOB_", "TASK_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- /proc ----------------------------------------------------------------------

def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    return int(stat.rsplit(")", 1)[1].split()[1])


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants alive now (by parent pid, through /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (parent := _ppid(int(entry.name))) is not None:
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (part.decode(errors="replace").partition("=") for part in raw.split(b"\0") if part)
    return {name: value for name, _, value in pairs}


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError):
        return 0


def pss_bytes(pid: int) -> int:
    """Proportional set size: shared pages split among their sharers, so a sum
    over processes does not count prefork children's shared memory N times."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds of these processes (alive ones) so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def cpu_by_program(pids: Iterable[int]) -> dict[str, float]:
    """CPU seconds so far per program name (see program_name) of these processes."""
    by_program: dict[str, float] = {}
    for pid in pids:
        name = program_name(cmdline(pid))
        by_program[name] = by_program.get(name, 0.0) + cpu_seconds([pid])
    return by_program


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass(frozen=True)
class Memory:
    rss: int
    pss: int
    processes: int
    by_component: dict[str, int]  # RSS per program name


def tree_memory(root: int) -> Memory:
    by_component: dict[str, int] = {}
    rss = pss = 0
    pids = process_tree(root)
    for pid in pids:
        size = rss_bytes(pid)
        rss += size
        pss += pss_bytes(pid)
        name = program_name(cmdline(pid))
        by_component[name] = by_component.get(name, 0) + size
    return Memory(rss, pss, len(pids), by_component)


def program_name(argv: Sequence[str]) -> str:
    """'gunicorn', 'celery worker', 'valkey-server', 'run_stack.py' ... for a command line."""
    for i, arg in enumerate(argv):
        base = Path(arg.split(" ")[0]).name  # valkey rewrites argv[0] to "path host:port"
        if base == "celery":
            sub = next((a for a in argv[i + 1:] if a in ("worker", "beat", "flower")), "")
            return f"celery {sub}".strip()
        if base in ("gunicorn", "run_stack.py") or base.startswith("valkey"):
            return base
    return Path(argv[0].split(" ")[0]).name if argv else "?"


# --- children --------------------------------------------------------------------

def _drain(stream: IO[str], sink: IO[str] | None) -> None:
    """Read a child's output to the end (a full pipe would block it), keeping it in `sink`."""
    for line in iter(stream.readline, ""):
        if sink is not None:
            with contextlib.suppress(ValueError):
                sink.write(line)
    stream.close()


# Children started and not yet stopped: whatever interrupts the bench, its
# last `finally` stops these (stop_all), so nothing outlives it.
LIVE: list[Child] = []


def stop_all() -> None:
    for child in reversed(LIVE[:]):
        with contextlib.suppress(Exception):
            child.stop(grace=10)


@dataclass
class Child:
    """A child process in a group of its own, its output drained to a log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[str] | None = None
    _log: IO[str] | None = None
    _drainer: threading.Thread | None = None

    def start(self, *, stdin: int | None = subprocess.DEVNULL) -> None:
        self._log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, text=True, errors="replace", bufsize=1,
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        LIVE.append(self)

    def drain(self) -> None:
        """From now on, copy the rest of its output to the log in a thread."""
        assert self.proc is not None and self.proc.stdout is not None
        self._drainer = threading.Thread(target=_drain, args=(self.proc.stdout, self._log),
                                         daemon=True)
        self._drainer.start()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, first: signal.Signals = signal.SIGTERM, grace: float = 20.0) -> None:
        """Signal the group with `first`; after `grace` seconds SIGKILL whatever
        of its process tree is left (pids recorded before the signal)."""
        if self.proc is None:
            return
        LIVE[:] = [child for child in LIVE if child is not self]
        tree = process_tree(self.proc.pid) if self.alive() else []
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, first)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=grace)
        # Leftovers: the group (same session) and any recorded descendant.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in tree:
            if Path(f"/proc/{pid}").exists() and _ppid(pid) is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        if self._drainer is not None:
            self._drainer.join(timeout=5)
        if self._log is not None:
            self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


class FakeAI:
    """bench/fake_gemini_server.py in its own process, steered over HTTP."""

    def __init__(self, workdir: Path, delay: float) -> None:
        self.child = Child("fake-gemini", [PYTHON, str(ROOT / "bench" / "fake_gemini_server.py"),
                                           "--delay", str(delay)],
                           dict(os.environ), workdir / "fake-gemini.log")
        self.base_url = self.control_url = ""

    def start(self) -> FakeAI:
        self.child.start(stdin=subprocess.PIPE)
        proc = self.child.proc
        assert proc is not None and proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            self.child.stop()
            raise RuntimeError(f"the fake Gemini did not start:\n{self.child.log_tail()}")
        urls = json.loads(line)
        self.base_url, self.control_url = urls["base_url"], urls["control_url"]
        self.child.drain()
        return self

    def _call(self, method: str, path: str) -> dict[str, Any]:
        host, port = self.control_url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request(method, path)
            return dict(json.loads(conn.getresponse().read()))
        finally:
            conn.close()

    def set_delay(self, seconds: float) -> None:
        self._call("POST", f"/delay?s={seconds}")

    def calls(self, contains: str = "") -> tuple[int, int]:
        """(all generateContent calls so far, those whose text contains `contains`)."""
        answer = self._call("GET", f"/calls?contains={contains}")
        return int(answer["calls"]), int(answer["matching"])

    def cpu_seconds(self) -> float:
        return float(self._call("GET", "/cpu")["cpu_s"])

    def stop(self) -> None:
        proc = self.child.proc
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # its cue to exit
        self.child.stop(grace=5)


@dataclass
class Stack:
    """scripts/run_stack.py (what `make run` runs) on free ports and a fresh var dir."""

    workdir: Path
    settings: Mapping[str, str]  # on top of the defaults, e.g. GEMINI_BASE_URL
    name: str = "stack"
    port: int = 0
    child: Child | None = None
    var_dir: Path = field(default_factory=Path)

    def start(self, ready_timeout: float = 240.0) -> Stack:
        self.var_dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-var-", dir=self.workdir))
        env = {k: v for k, v in os.environ.items()
               if k not in SCRUBBED and not k.startswith(SCRUBBED_PREFIXES)}
        self.port = free_port()
        env |= {
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "FLOWER_PORT": str(free_port()),
            "EMBEDDED_VALKEY_PORT": str(free_port()),
            "SMARTCACHE_VAR_DIR": str(self.var_dir),
            "ADMIN_PASSWORD": "bench-admin-password",
            **self.settings,
        }
        self.child = Child(self.name, [PYTHON, str(ROOT / "scripts" / "run_stack.py")], env,
                           self.workdir / f"{self.name}.log")
        self.child.start()
        self.child.drain()
        deadline = time.monotonic() + ready_timeout
        while not self._healthy():
            if not self.child.alive():
                self.child.stop()  # and read its output to the end
                raise RuntimeError(f"{self.name} exited during startup:\n{self.child.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: /api/health not 200 after {ready_timeout:.0f} s"
                                   f":\n{self.child.log_tail()}")
            time.sleep(0.5)
        return self

    def _healthy(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            conn.request("GET", "/api/health")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def stop(self) -> None:
        """SIGINT, as Ctrl-C on `make run` would; SIGKILL leftovers after a grace."""
        if self.child is not None:
            self.child.stop(first=signal.SIGINT, grace=40)
        shutil.rmtree(self.var_dir, ignore_errors=True)

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    def component(self, program: str) -> int:
        """Pid of the stack's first process running `program` ('gunicorn',
        'celery worker') directly under run_stack.py (a component's leader)."""
        for pid in process_tree(self.pid):
            if _ppid(pid) == self.pid and program_name(cmdline(pid)) == program:
                return pid
        raise RuntimeError(f"{self.name} runs no {program!r}")

    def components(self, program: str) -> list[int]:
        return [pid for pid in process_tree(self.pid)
                if _ppid(pid) == self.pid and program_name(cmdline(pid)) == program]


def program_args(argv: Sequence[str], program: str) -> list[str]:
    """The arguments after the program itself ('gunicorn', 'celery') in a command line."""
    for i, arg in enumerate(argv):
        if Path(arg).name == program:
            return list(argv[i + 1:])
    raise ValueError(f"{program} not in {argv}")


def replace_option(args: Sequence[str], names: Sequence[str], value: str | None) -> list[str]:
    """`args` with option `names` (e.g. "--bind", "-b") set to `value` (whether
    written "--bind X" or "--bind=X"), or removed when value is None; added
    (as names[0]) if absent."""
    out: list[str] = []
    found = False
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        name, eq, _ = arg.partition("=")
        if arg in names and i + 1 < len(args):
            found, skip = True, True
            if value is not None:
                out += [arg, value]
        elif eq and name in names:
            found = True
            if value is not None:
                out.append(f"{name}={value}")
        else:
            out.append(arg)
    if not found and value is not None:
        out += [names[0], value]
    return out


def python_env(base: Mapping[str, str]) -> dict[str, str]:
    """`base` with the checkout importable (bench.* modules)."""
    env = dict(base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), base.get("PYTHONPATH", "")]))
    return env

