"""Loopback fixture web server and a connection-counting canary, for tests.

Usage::

    with FakeWeb() as web:                 # listens on 127.0.0.2, free port
        web.add_page("/article", "<html>...</html>")
        web.add_redirect("/old", web.url("/article"))
        fetch(web.url("/old"))
        assert web.requests[0].path == "/old"

Linux routes all of 127.0.0.0/8 to the loopback interface, so a server on
127.0.0.2 is distinct from anything listening on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]


class FakeWeb:
    """A threaded HTTP/1.0 server with registered routes (exact path, query ignored)."""

    def __init__(
        self, host: str = "127.0.0.2", port: int = 0, *, tls: ssl.SSLContext | None = None
    ) -> None:
        """``tls`` (a server-side context with a certificate loaded) serves https."""
        self.host = host
        self._port = port
        self._tls = tls
        self._routes: dict[str, Handler] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()  # long-running handlers poll this
        self.requests: list[Request] = []

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> Self:
        web = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                web.requests.append(Request("GET", self.path, dict(self.headers.items())))
                route = web._routes.get(path)
                try:
                    if route is None:
                        _send(self, 404, b"<html><body>not found</body></html>")
                    else:
                        route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as fetchers under test are meant to

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        server = ThreadingHTTPServer((self.host, self._port), _Handler)
        server.daemon_threads = True
        server.block_on_close = False  # do not wait for a drip handler on stop()
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    def url(self, path: str = "/") -> str:
        scheme = "http" if self._tls is None else "https"
        return f"{scheme}://{self.host}:{self.port}{path}"

    # -- routes --------------------------------------------------------------

    def add_route(self, path: str, handler: Handler) -> None:
        """Serve ``path`` with a custom ``handler(request_handler)``."""
        self._routes[path] = handler

    def add_response(
        self,
        path: str,
        body: bytes,
        *,
        status: int = 200,
        content_type: str | None = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Serve fixed bytes; ``content_type=None`` sends no Content-Type at all."""
        extra = dict(headers or {})
        if content_type is not None:
            extra["Content-Type"] = content_type
        self.add_route(path, lambda h: _send(h, status, body, extra))

    def add_page(self, path: str, html: str, *, status: int = 200, charset: str = "utf-8") -> None:
        """Serve an HTML page encoded (and labelled) with ``charset``."""
        self.add_response(
            path, html.encode(charset), status=status, content_type=f"text/html; charset={charset}"
        )

    def add_status(self, path: str, status: int) -> None:
        """Answer with an error status and a small HTML body."""
        self.add_response(path, f"<html><body>{status}</body></html>".encode(), status=status)

    def add_redirect(self, path: str, location: str, status: int = 302) -> None:
        """Redirect to ``location`` (absolute or relative, any host)."""
        self.add_response(path, b"", status=status, headers={"Location": location})

    def add_gzip_page(self, path: str, html: str) -> None:
        """Serve an HTML page with Content-Encoding: gzip."""
        self.add_response(path, gzip.compress(html.encode()), headers={"Content-Encoding": "gzip"})

    def add_gzip_bomb(self, path: str, size: int = 1 << 30) -> None:
        """Serve ``size`` zero bytes gzip-compressed (1 GiB is about 1 MB on the wire).

        The stream is generated as it is sent, so the server never holds it all.
        """

        def handler(h: BaseHTTPRequestHandler) -> None:
            headers = {"Content-Type": "text/html", "Content-Encoding": "gzip"}
            _send_stream(h, 200, _gzip_zeros(size), headers)

        self.add_route(path, handler)

    def add_huge(self, path: str, size: int, *, declare_length: bool = True) -> None:
        """Serve ``size`` bytes of HTML-ish filler, streamed, with or without Content-Length."""

        def chunks() -> Iterator[bytes]:
            yield b"<html><body>"
            block = b"x" * 65536
            for _ in range(size // len(block)):
                yield block

        def handler(h: BaseHTTPRequestHandler) -> None:
            headers = {"Content-Type": "text/html"}
            if declare_length:
                headers["Content-Length"] = str(12 + size // 65536 * 65536)
            _send_stream(h, 200, chunks(), headers)

        self.add_route(path, handler)

    def add_drip(
        self, path: str, *, interval: float = 0.1, drip_headers: bool = False, size: int = 10_000
    ) -> None:
        """Send one byte every ``interval`` seconds: the body, or the headers too."""

        def handler(h: BaseHTTPRequestHandler) -> None:
            head = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n"
            body = b"<html>" + b"x" * size
            if not drip_headers:
                h.wfile.write(head)
                h.wfile.flush()
                head = b""
            for i in range(len(head + body)):
                if self.stopping.wait(interval):
                    return
                h.wfile.write((head + body)[i : i + 1])
                h.wfile.flush()

        self.add_route(path, handler)


def _send(
    h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None
) -> None:
    headers = {"Content-Length": str(len(body)), **(headers or {})}
    _send_stream(h, status, [body], headers)


def _send_stream(
    h: BaseHTTPRequestHandler, status: int, chunks: Iterable[bytes], headers: dict[str, str]
) -> None:
    h.send_response(status)
    for name, value in headers.items():
        h.send_header(name, value)
    h.end_headers()
    for chunk in chunks:
        h.wfile.write(chunk)


def _gzip_zeros(size: int, block: int = 1 << 20) -> Iterator[bytes]:
    """A valid single-member gzip stream of ``size`` zero bytes, generated lazily."""
    zeros = bytes(block)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # raw deflate
    crc = 0
    yield b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # gzip header: deflate, no name, no mtime
    for start in range(0, size, block):
        piece = zeros[: min(block, size - start)]
        crc = zlib.crc32(piece, crc)
        yield compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH)
    yield compressor.flush() + struct.pack("<II", crc, size & 0xFFFFFFFF)


class Canary:
    """A TCP listener on 127.0.0.1 that counts accepted connections.

    Point SSRF probes at its port: ``connections`` must stay 0.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._count = 0

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, 0))
        sock.listen(16)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept_loop, args=(sock,), daemon=True)
        self._thread.start()
        return self

    def _accept_loop(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return  # closed by stop()
            with self._lock:
                self._count += 1
            conn.close()

    def stop(self) -> None:
        if self._sock is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone may not.
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._sock is not None, "canary not started"
        return int(self._sock.getsockname()[1])

    @property
    def connections(self) -> int:
        """Connections accepted so far (waits briefly so in-flight ones are counted)."""
        time.sleep(0.05)
        with self._lock:
            return self._count
