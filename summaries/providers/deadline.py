"""An HTTP client whose calls end by a deadline, however slowly the server answers.

httpx2 (the HTTP library of the Gemini SDK, a fork of httpx) has no total
timeout: its timeouts bound each connect, read and write on its own, so a
server that sends a byte a second keeps a call going for as long as it likes.

``within(seconds)`` sets a deadline for the HTTP calls made inside its block,
in this thread (or task) only. The client from ``deadline_client()`` shortens
the timeout of every socket operation (connect, TLS handshake, each read and
write, the wait for a pooled connection) to the time left before the
deadline, and fails one that would start after it with the matching httpx2
timeout exception (``httpx2.ReadTimeout`` ...). So a call in such a block
ends at its deadline, give or take a scheduling delay, whether the server is
silent or dribbling, in the headers or in the body. Outside a block the
client behaves as a plain ``httpx2.Client``. One known gap: resolving a host
name (``getaddrinfo``) cannot be timed out by any socket timeout.

Its answers are bounded in bytes too, not only in time: a body (error
bodies included) longer than ``max_response_bytes`` is not read past that
point, the connection is dropped and ``ResponseTooLarge`` is raised. An
answer is asked for uncompressed and one sent compressed anyway is refused
(``httpx2.DecodingError``), so the bytes counted are the bytes parsed: a
small gzip body could otherwise inflate to any size after the count.

The client is safe to share between threads (httpx2's pool is); the deadline
lives in a context variable, so each thread has its own.
"""

from __future__ import annotations

import contextlib
import contextvars
import ssl
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore2
import httpx2

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "smartcache_http_deadline", default=None
)
# Writes are split so that a server reading slowly cannot stretch one write
# past the deadline either.
_WRITE_CHUNK = 64 * 1024
# An answer (a summary, or ten in a batch) is a few kB; an error page a few
# more. A body past this is a broken or hostile server: reading 100 MB on
# each of a worker's 100 threads would take the process down.
MAX_RESPONSE_BYTES = 1024 * 1024


class ResponseTooLarge(httpx2.HTTPError):
    """The server's answer is longer than the client reads."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the response is larger than {limit} bytes")
        self.limit = limit


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """HTTP calls of ``deadline_client()`` clients made in this block (in this
    thread or task) end within ``seconds`` from now."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def deadline_client(*, max_connections: int = 200, keepalive: int = 100,
                    max_response_bytes: int = MAX_RESPONSE_BYTES) -> httpx2.Client:
    """A client (no redirects followed) whose calls honour ``within`` and
    read at most ``max_response_bytes`` of any answer.

    Environment proxies are not used: the transport is explicit."""
    if max_response_bytes < 1:
        raise ValueError("max_response_bytes must be positive")
    limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=keepalive)
    return httpx2.Client(transport=_DeadlineTransport(limits, max_response_bytes),
                         follow_redirects=False)


def _time_left(timeout: float | None, expired: type[Exception]) -> float | None:
    """``timeout`` shortened to the time left before the deadline, if one is
    set; raises ``expired`` once it has passed."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the call ran out of time (deadline passed)")
    return left if timeout is None else min(timeout, left)


class _DeadlineTransport(httpx2.HTTPTransport):
    """httpx2's own transport over a connection pool whose sockets honour the deadline."""

    def __init__(self, limits: httpx2.Limits, max_response_bytes: int) -> None:
        super().__init__(limits=limits)
        self._max_bytes = max_response_bytes
        # httpx2 does not let a network backend be passed in; its transport
        # keeps the pool it sends through in ``_pool``, so that is swapped.
        self._pool = httpcore2.ConnectionPool(
            ssl_context=httpx2.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_DeadlineBackend(),
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        # The wait for a free pooled connection is timed by the pool itself.
        timeouts = dict(request.extensions.get("timeout", {}))
        timeouts["pool"] = _time_left(timeouts.get("pool"), httpx2.PoolTimeout)
        request.extensions = {**request.extensions, "timeout": timeouts}
        request.headers["Accept-Encoding"] = "identity"
        response = super().handle_request(request)
        try:
            if response.headers.get("Content-Encoding", "identity").strip().lower() not in (
                    "", "identity"):
                raise httpx2.DecodingError("compressed answer, though none was accepted",
                                           request=request)
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > self._max_bytes:
                raise ResponseTooLarge(self._max_bytes)  # said so up front: read nothing
        except httpx2.HTTPError:
            response.close()
            raise
        stream = response.stream
        assert isinstance(stream, httpx2.SyncByteStream)  # a sync transport's
        response.stream = _CappedStream(stream, self._max_bytes)
        return response


class _CappedStream(httpx2.SyncByteStream):
    """A response body that ends in ``ResponseTooLarge`` past ``limit`` bytes
    (a body sent without Content-Length, or longer than it said)."""

    def __init__(self, inner: httpx2.SyncByteStream, limit: int) -> None:
        self._inner = inner
        self._left = limit
        self._limit = limit

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._left -= len(chunk)
            if self._left < 0:
                raise ResponseTooLarge(self._limit)  # the client closes the connection
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _DeadlineBackend(httpcore2.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore2.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore2.NetworkStream:
        timeout = _time_left(timeout, httpcore2.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_tcp(host, port, timeout, local_address,
                                                       socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None
                            ) -> httpcore2.NetworkStream:
        timeout = _time_left(timeout, httpcore2.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineStream(httpcore2.NetworkStream):
    def __init__(self, inner: httpcore2.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _time_left(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for start in range(0, len(buffer), _WRITE_CHUNK):
            self._inner.write(buffer[start : start + _WRITE_CHUNK],
                              _time_left(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore2.NetworkStream:
        timeout = _time_left(timeout, httpcore2.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)
