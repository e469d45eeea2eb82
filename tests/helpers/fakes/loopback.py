"""The machinery of a loopback fake HTTP service: a threaded server on
127.0.0.1, behaviour modes switched at runtime or scripted per call, the
calls received, and waits that ``stop()``/``reset()`` cut short. A fake
subclasses ``LoopbackServer`` and answers in ``handle``."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

CallT = TypeVar("CallT")


class _Server(ThreadingHTTPServer):
    # Many concurrent clients (thread-safety tests, threaded workers): the
    # default backlog of 5 would reset connections before they are accepted.
    request_queue_size = 128


class LoopbackServer(Generic[CallT]):
    """A threaded HTTP server whose POSTs go to ``handle`` (thread-safe state)."""

    modes: ClassVar[frozenset[str]] = frozenset({"ok"})
    thread_name: ClassVar[str] = "fake-server"
    # GETs go to ``handle`` too (``handler.command`` tells them apart); else 501.
    answers_get: ClassVar[bool] = False

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._release = threading.Event()  # set to end current hangs/delays early
        self._mode = "ok"
        self._mode_calls = 0
        self._script: list[str] = []
        self._calls: list[CallT] = []
        self._handling = 0  # requests being answered now
        self._most_at_once = 0
        self.delay_s = 0.0  # before every answer, any mode
        self.hang_s = 60.0  # how long "hang" holds the request

    # -- configuration and inspection ------------------------------------------

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in self.modes:
            raise ValueError(f"unknown mode {mode!r}")
        with self._lock:
            self._mode, self._mode_calls = mode, 0

    def script(self, modes: list[str]) -> None:
        """Answer the next calls with these modes, one each, then with ``mode``."""
        unknown = set(modes) - self.modes
        if unknown:
            raise ValueError(f"unknown modes {sorted(unknown)}")
        with self._lock:
            self._script = list(modes)

    def reset(self) -> None:
        """Back to "ok": no calls, no script, no delay; ends hangs."""
        with self._lock:
            self._mode, self._mode_calls, self._script = "ok", 0, []
            self._calls.clear()
            self._most_at_once = self._handling
            self._release.set()
            self._release = threading.Event()
        self.delay_s = 0.0

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self._calls)

    @property
    def most_at_once(self) -> int:
        """The most requests this server was answering at the same time (since
        the last reset): how many callers overlapped."""
        with self._lock:
            return self._most_at_once

    @property
    def received(self) -> list[CallT]:
        with self._lock:
            return list(self._calls)

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return f"http://{self.host}:{self._server.server_address[1]}"

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> Self:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                # The client may have timed out and left, as it should.
                with fake._answering(), contextlib.suppress(BrokenPipeError,
                                                            ConnectionResetError):
                    fake.handle(self, raw)

            def do_GET(self) -> None:
                if not fake.answers_get:
                    self.send_error(501)
                    return
                with fake._answering(), contextlib.suppress(BrokenPipeError,
                                                            ConnectionResetError):
                    fake.handle(self, b"")

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        self._stopping.clear()
        self._server = _Server((self.host, self._port), _Handler)
        self._server.daemon_threads = True  # a hanging handler must not block stop()
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @contextlib.contextmanager
    def _answering(self) -> Iterator[None]:
        with self._lock:
            self._handling += 1
            self._most_at_once = max(self._most_at_once, self._handling)
        try:
            yield
        finally:
            with self._lock:
                self._handling -= 1

    # -- for handle() ---------------------------------------------------------------

    def handle(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        raise NotImplementedError

    def record(self, call: CallT) -> tuple[str, int, threading.Event]:
        """Count ``call``; returns the mode that answers it (scripted first;
        ``bad_then_ok`` is "bad" for the first call after it was set), the
        call's number and the event that cuts its waits short."""
        with self._lock:
            self._calls.append(call)
            scripted = bool(self._script)
            mode = self._script.pop(0) if scripted else self._mode
            if mode == "bad_then_ok":  # scripted, it is one call: the bad one
                mode = "bad" if scripted or self._mode_calls == 0 else "ok"
            if not scripted:
                self._mode_calls += 1
            return mode, len(self._calls), self._release

    def wait(self, release: threading.Event, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when cut short by stop() or reset()."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if release.wait(min(left, 0.1)) or self._stopping.is_set():
                return True
        return False


def send(handler: BaseHTTPRequestHandler, status: int, payload: Any,
         extra: dict[str, str] | None = None) -> None:
    send_raw(handler, status, "application/json; charset=UTF-8", json.dumps(payload).encode(),
             extra)


def send_raw(handler: BaseHTTPRequestHandler, status: int, content_type: str, data: bytes,
             extra: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (extra or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)
