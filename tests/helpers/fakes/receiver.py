"""A loopback webhook receiver, and the check a receiver makes (README: Webhooks).

Usage::

    with FakeReceiver() as receiver:              # 127.0.0.2 (the fetcher may reach it)
        receiver.script("/hook", [500, 200])       # answers for the coming POSTs
        submit(..., callback_url=receiver.url("/hook"))
        [first, second] = receiver.wait_for("/hook", 2)
        assert verify_standard(second, receiver_secret)   # webhook-* headers
        assert verify(second.body, second.signature, secret)  # the old header
        receiver.hold("/slow")                     # POSTs there get no answer

It answers 200 unless a script says otherwise, and records every POST.
``verify`` is written from the documented contract only, and
``verify_standard`` is the Standard Webhooks library's check (neither
imports anything of SmartCache), so the tests check signatures as a
stranger would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    """One POST as the receiver got it."""

    path: str  # without the query
    target: str  # as requested, query included
    headers: dict[str, str]
    body: bytes

    @property
    def signature(self) -> str:
        return self.headers.get("X-SmartCache-Signature", "")

    @property
    def delivery_id(self) -> str:
        return self.headers.get("X-SmartCache-Delivery", "")

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


def verify(body: bytes, header: str, secret: str, *, tolerance: float = 300,
           now: float | None = None) -> bool:
    """A receiver's check: the signature header is ``t=<unix>,v1=<hex>``,
    where hex is HMAC-SHA256 with the shared secret over ``"<t>.<raw body>"``;
    a timestamp more than ``tolerance`` seconds away is a replay."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields.get("v1", ""))


def verify_standard(received: Received, secret: str, *,
                    headers: dict[str, str] | None = None) -> bool:
    """Standard Webhooks' check (its library) of a POST's body and
    ``webhook-*`` headers (or ``headers`` in their place: a forgery) with
    the receiver's ``whsec_`` secret."""
    try:
        Webhook(secret).verify(received.body, received.headers if headers is None else headers)
    except WebhookVerificationError:
        return False
    return True


class FakeReceiver:
    """A threaded HTTP server that records POSTs and answers as scripted."""

    def __init__(self, host: str = "127.0.0.2", port: int = 0) -> None:
        self.host = host
        self._port = port
        self._lock = threading.Lock()
        self._scripts: dict[str, list[int]] = {}
        self._received: list[Received] = []
        self._held: set[str] = set()
        self._release = threading.Event()  # ends the holds (stop, release_holds)
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Self:
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                with receiver._lock:
                    receiver._received.append(
                        Received(path, self.path, dict(self.headers.items()), body))
                    script = receiver._scripts.get(path)
                    status = script.pop(0) if script else 200
                    held, release = path in receiver._held, receiver._release
                if held:  # accept, and never answer (until released)
                    release.wait()
                    return
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"http://{receiver.host}:{receiver.port}/moved")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, self._port), _Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release_holds()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "receiver not started"
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def script(self, path: str, statuses: list[int]) -> None:
        """Answer the next POSTs to ``path`` with these statuses, then 200."""
        with self._lock:
            self._scripts[path] = list(statuses)

    def hold(self, path: str) -> None:
        """Accept the POSTs to ``path`` and never answer them (a slow receiver)."""
        with self._lock:
            self._held.add(path)

    def release_holds(self) -> None:
        """End every hold: held POSTs are closed unanswered, later ones answered."""
        with self._lock:
            self._held.clear()
            self._release.set()
            self._release = threading.Event()

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 30) -> list[Received]:
        """The first ``count`` POSTs to ``path``, waiting for them to arrive."""
        deadline = time.monotonic() + timeout
        while len(got := self.received(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(got)} of {count} deliveries to {path} arrived")
            time.sleep(0.05)
        return got[:count]
