"""One HTTP GET to a checked address, under one wall-clock deadline.

We connect to the addresses the policy checked (no second DNS lookup), with
TLS for https where SNI and the certificate use the host name. Every socket
operation gets only the time left before the deadline, so a server dripping
a byte a second cannot hold us longer than the fetch's budget; a per-read
timeout alone would let it run forever. The body is read through an
:class:`~summaries.fetching.decoding.Inflater`, which bounds it.
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Final

from summaries.core.canonical_urls import ParsedURL
from summaries.core.errors import ErrorCode, JobError
from summaries.fetching.decoding import Inflater, looks_like_html
from summaries.fetching.policy import FetchPolicy, resolve_allowed

_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
# 408 is a timeout by definition; 429 asks us to come back later.
_TRANSIENT_STATUSES: Final = frozenset({408, 429})
HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
# Taken besides HTML when the policy takes documents (max_document_bytes): the
# body's bytes then decide what it is (summaries/documents/sniff.py, called by
# the worker's services), since servers mislabel; any other declared type is
# refused before its body is read.
DOCUMENT_TYPES: Final = frozenset({
    "application/pdf", "application/x-pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "text/plain", "text/markdown", "text/x-markdown",
    "application/octet-stream", "binary/octet-stream",
})
_CHUNK: Final = 64 * 1024


@dataclass(frozen=True)
class Body:
    """A 2xx HTML (or, when the policy takes them, document) answer: the body
    with its Content-Encoding undone, not yet decoded."""

    status: int
    content_type: str
    charset: str | None  # from the Content-Type header
    data: bytes


@dataclass(frozen=True)
class Redirect:
    status: int
    location: str  # as sent, possibly relative


def get(target: ParsedURL, policy: FetchPolicy, deadline: float) -> Body | Redirect:
    """GET ``target.request_target`` exactly as given (nothing is re-encoded).

    Raises JobError (blocked_destination, http_error, unsupported_content,
    too_large, fetch_failed), TimeoutError at the deadline, or the OSError,
    ssl and http.client errors of a failed connection.
    """
    sock = _connect(target, policy, deadline)
    conn = http.client.HTTPConnection(target.host, target.port)
    conn.sock = _DeadlineSocket(sock, deadline)
    try:
        conn.putrequest("GET", target.request_target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", target.netloc)
        conn.putheader("User-Agent", policy.user_agent)
        conn.putheader("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1")
        conn.putheader("Accept-Encoding", "gzip, deflate")
        conn.putheader("Connection", "close")
        conn.endheaders()
        return _answer(conn.getresponse(), policy)
    finally:
        conn.close()
        sock.close()


def post(target: ParsedURL, body: bytes, headers: dict[str, str], policy: FetchPolicy,
         deadline: float) -> int:
    """POST ``body`` to a checked address (webhook deliveries) and return the
    answer's status; a 3xx is returned as is, never followed. The answer's
    body is read (at most 64 KiB) and dropped. Raises JobError
    (blocked_destination, fetch_failed), TimeoutError, or a connection's errors.
    """
    sock = _connect(target, policy, deadline)
    conn = http.client.HTTPConnection(target.host, target.port)
    conn.sock = _DeadlineSocket(sock, deadline)
    try:
        conn.putrequest("POST", target.request_target, skip_host=True,
                        skip_accept_encoding=True)
        for name, value in {"Host": target.netloc, "User-Agent": policy.user_agent,
                            "Content-Length": str(len(body)), "Connection": "close",
                            **headers}.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        response.read1(_CHUNK)
        return response.status
    finally:
        conn.close()
        sock.close()


def _answer(response: http.client.HTTPResponse, policy: FetchPolicy) -> Body | Redirect:
    status = response.status
    if status in _REDIRECT_STATUSES:
        location = response.getheader("Location")
        if not location:
            raise JobError(f"site answered HTTP {status} without a Location",
                           code=ErrorCode.HTTP_ERROR)
        return Redirect(status, location)
    if not 200 <= status < 300:
        transient = status >= 500 or status in _TRANSIENT_STATUSES
        raise JobError(f"site answered HTTP {status}", code=ErrorCode.HTTP_ERROR,
                       transient=transient)
    content_type = response.headers.get_content_type()  # "text/plain" when missing
    declared = response.getheader("Content-Type") is not None
    documents = policy.max_document_bytes > 0
    if declared and content_type not in HTML_TYPES and not (
            documents and content_type in DOCUMENT_TYPES):
        raise JobError(f"not an HTML page or a document ({content_type})" if documents
                       else f"not an HTML page ({content_type})",
                       code=ErrorCode.UNSUPPORTED_CONTENT)
    html_only = not documents or (declared and content_type in HTML_TYPES)
    data = _read_body(response, policy.max_bytes if html_only
                      else max(policy.max_bytes, policy.max_document_bytes))
    if not declared:
        if looks_like_html(data):
            content_type = "text/html"
        elif documents:
            content_type = ""  # the bytes alone say what it is
        else:
            raise JobError("not an HTML page (no Content-Type)", code=ErrorCode.UNSUPPORTED_CONTENT)
    return Body(status, content_type, response.headers.get_content_charset(), data)


def _read_body(response: http.client.HTTPResponse, max_bytes: int) -> bytes:
    """The body with its Content-Encoding undone, at most ``max_bytes`` of it."""
    encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
    inflater = Inflater(encoding, max_bytes)
    if encoding == "identity" and (response.length or 0) > max_bytes:
        raise inflater.too_large()  # declared too large: do not download it at all
    while chunk := response.read1(_CHUNK):
        inflater.feed(chunk)
    return inflater.output


def _connect(target: ParsedURL, policy: FetchPolicy, deadline: float) -> socket.socket:
    """Connect to a checked address, TLS-wrapped for https."""
    error: OSError = ConnectionError("no address to connect to")
    addresses = resolve_allowed(target.host, target.port, policy)
    remaining(deadline)  # the lookup itself cannot be interrupted
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(min(policy.connect_timeout, remaining(deadline)))
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        if target.scheme == "https":
            sock.settimeout(remaining(deadline))  # bounds the whole handshake
            try:
                # SNI and certificate check use the hostname, not the address.
                return tls_context().wrap_socket(sock, server_hostname=target.host)
            except BaseException:
                sock.close()
                raise
        return sock
    raise error


def tls_context() -> ssl.SSLContext:
    """The TLS context for https hops (tests swap it to trust a local CA)."""
    return ssl.create_default_context()


def remaining(deadline: float) -> float:
    """Seconds left before ``deadline`` (a time.monotonic() value); TimeoutError if none."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


class _DeadlineSocket:
    """The slice of a socket http.client uses, where each I/O gets only the time left."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(remaining(self._deadline))
        self._sock.sendall(data)

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def close(self) -> None:
        # http.client closes the connection while the response is still being
        # read from it; the real socket is closed by get() instead.
        pass


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        self._sock.settimeout(remaining(self._deadline))
        return self._sock.recv_into(buffer)
