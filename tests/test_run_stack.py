"""`make run` (scripts/run_stack.py): the restart rule, and the real launcher
bound to a non-default HOST, stopped by Ctrl-C or SIGTERM without leftovers."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import requests

from tests.helpers.processes import ROOT, free_port

SCRIPT = ROOT / "scripts" / "run_stack.py"
# Generous: migrate, collectstatic and five services on a loaded 2-core machine.
START_TIMEOUT = 180.0
STOP_TIMEOUT = 90.0


def load_run_stack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_stack", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


run_stack = load_run_stack()


# --- The restart rule (pure: fed the start times) ----------------------------

def test_a_component_that_crashed_at_boot_then_ran_a_while_is_restarted() -> None:
    # Four crashes at boot (five starts in four seconds), then 65 s of service.
    starts = [0.0, 1.0, 2.0, 3.0, 4.0]
    assert not run_stack.crash_looping(starts, now=69.0)


def test_a_component_that_keeps_dying_is_given_up() -> None:
    assert run_stack.crash_looping([0.0, 1.0, 2.0, 3.0, 4.0], now=4.5)
    assert run_stack.crash_looping([0.0, 10.0, 20.0, 30.0, 40.0], now=59.0)


def test_only_starts_within_the_window_count() -> None:
    assert not run_stack.crash_looping([0.0, 1.0, 2.0, 3.0], now=4.0)  # below the limit
    # One start per 15 s: there are never five in any 60 s.
    assert not run_stack.crash_looping([0.0, 15.0, 30.0, 45.0, 60.0], now=61.0)
    assert not run_stack.crash_looping([], now=1000.0)
    assert run_stack.crash_looping([0.0, 1.0], now=1.5, limit=2)
    assert not run_stack.crash_looping([0.0, 1.0], now=10.5, window=10.0, limit=2)


# --- Addresses -------------------------------------------------------------

def test_wildcard_binds_are_probed_on_loopback() -> None:
    assert run_stack.probe_host("0.0.0.0") == "127.0.0.1"
    assert run_stack.probe_host("::") == "::1"
    assert run_stack.probe_host("[::]") == "::1"
    assert run_stack.probe_host("127.0.0.2") == "127.0.0.2"
    assert run_stack.probe_host("[::1]") == "::1"
    assert run_stack.url_host("::1") == "[::1]"
    assert run_stack.url_host("127.0.0.2") == "127.0.0.2"


# --- Output pumps ----------------------------------------------------------------

def test_a_child_never_blocks_on_its_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undecodable bytes and a closed stdout of ours must not stop the reader:
    a child whose pipe fills up blocks on its next write, forever."""
    closed = open(os.devnull, "w")  # noqa: SIM115
    closed.close()
    monkeypatch.setattr(sys, "stdout", closed)
    script = "import sys; sys.stdout.buffer.write(b'\\xff\\xfe not utf-8\\n' * 50000)"
    chatty = run_stack.Component("chatty", [sys.executable, "-c", script], dict(os.environ))
    chatty.start()
    try:
        assert chatty.proc.wait(timeout=60) == 0  # 700 kB through a 64 kB pipe
    finally:
        chatty.proc.kill()
        chatty.proc.wait()
        chatty.pump.join(timeout=10)


# --- The real launcher -------------------------------------------------------

def marked_processes(marker: str) -> list[int]:
    """Pids of live processes whose environment carries this run's marker."""
    needle = f"SMARTCACHE_RUN_STACK_TEST={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def children_of(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


class Launcher:
    """scripts/run_stack.py as `make run` starts it, in a temp var dir."""

    def __init__(self, tmp_path: Path, **overrides: str) -> None:
        self.marker = uuid.uuid4().hex
        self.var = tmp_path / "var"
        self.log = tmp_path / "run_stack.log"
        self.port = free_port()
        self.flower_port = free_port()
        dropped = {"VALKEY_URL", "DATABASE_URL", "SMARTCACHE_TEST_DB", "GEMINI_API_KEY",
                   "GEMINI_BASE_URL", "DJANGO_ALLOWED_HOSTS", "ADMIN_PASSWORD"}
        self.env = {key: value for key, value in os.environ.items() if key not in dropped}
        self.env |= {
            "PORT": str(self.port), "FLOWER_PORT": str(self.flower_port),
            "EMBEDDED_VALKEY_PORT": str(free_port()), "SMARTCACHE_VAR_DIR": str(self.var),
            "SUMMARIZER": "local", "WEB_CONCURRENCY": "1", "WORKER_CONCURRENCY": "1",
            "SMARTCACHE_RUN_STACK_TEST": self.marker, **overrides,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            # Its own session, as a terminal's foreground job is its own group.
            self.proc = subprocess.Popen([sys.executable, str(SCRIPT)], cwd=ROOT, env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self.proc

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for(self, text: str, timeout: float = START_TIMEOUT) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None:
                pytest.fail(f"run_stack exited ({self.proc.returncode}):\n{self.output()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} within {timeout} s:\n{self.output()[-4000:]}")
            time.sleep(0.2)

    def stop(self, sig: int) -> int:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"run_stack did not stop on {sig}:\n{self.output()[-4000:]}")

    def leftovers(self) -> list[str]:
        return [f"{pid} {cmdline(pid)}" for pid in marked_processes(self.marker)]

    def cleanup(self) -> None:
        """Whatever the test's outcome, leave nothing running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in marked_processes(self.marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Callable[..., Launcher]]:
    created: list[Launcher] = []

    def make(**overrides: str) -> Launcher:
        created.append(Launcher(tmp_path, **overrides))
        return created[-1]

    yield make
    for each in created:
        each.cleanup()


def test_the_stack_serves_on_the_host_it_is_given_and_ctrl_c_leaves_nothing(
        launcher: Callable[..., Launcher]) -> None:
    stack = launcher(HOST="127.0.0.2")
    stack.start()
    stack.wait_for("SmartCache is running")

    health = requests.get(f"http://127.0.0.2:{stack.port}/api/health", timeout=10)
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok"
    flower = requests.get(f"http://127.0.0.2:{stack.flower_port}/", timeout=10)
    assert flower.status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{stack.port}/api/health", timeout=10)
    password_file = stack.var / "admin-password"
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert str(password_file) in stack.output()
    assert password_file.read_text().strip() not in stack.output()  # not in logs

    assert stack.stop(signal.SIGINT) == 0
    assert stack.leftovers() == []


def test_sigterm_during_startup_leaves_nothing(launcher: Callable[..., Launcher]) -> None:
    stack = launcher(HOST="127.0.0.2")
    proc = stack.start()
    # Wait until the launcher runs a setup step (migrate), with Valkey already up.
    deadline = time.monotonic() + START_TIMEOUT
    while not any("manage.py" in cmdline(child) for child in children_of(proc.pid)):
        assert proc.poll() is None, stack.output()
        assert time.monotonic() < deadline, stack.output()
        time.sleep(0.02)
    stack.stop(signal.SIGTERM)
    assert stack.leftovers() == [], stack.output()
    assert "SmartCache is running" not in stack.output()


def test_a_taken_port_on_the_host_is_a_clear_error(launcher: Callable[..., Launcher]) -> None:
    stack = launcher(HOST="127.0.0.2")
    with socket.socket() as taken:
        taken.bind(("127.0.0.2", stack.port))
        taken.listen()
        proc = stack.start()
        try:
            code = proc.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"run_stack kept running:\n{stack.output()[-4000:]}")
    assert code != 0
    assert f"127.0.0.2:{stack.port}" in stack.output() and "PORT" in stack.output()
    assert "Traceback" not in stack.output()
    assert stack.leftovers() == []
