"""Fetch user-supplied URLs from inside our network without becoming an SSRF proxy.

Every hop is resolved once, every resolved address is checked, and we connect
to exactly the address we checked (so DNS rebinding cannot swap it). Redirects
are followed by hand and re-checked. One wall-clock deadline covers connect,
TLS, headers and body of every hop, and the decoded body is capped, so slow-drip
servers and gzip bombs fail fast with bounded memory. (getaddrinfo cannot be
interrupted: a lookup is bounded by the resolver's own timeout, and the deadline
is checked right after it.)

Any port is allowed: the address checks, not the port, keep us out of our network.

Every failure is a :class:`~summaries.errors.JobError`; no other exception escapes
:func:`fetch_page`.
"""

from __future__ import annotations

import codecs
import http.client
import io
import ipaddress
import re
import socket
import ssl
import time
import zlib
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, quote, urljoin, urlsplit

from summaries.errors import JobError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_SockAddr = tuple[socket.AddressFamily, tuple[str, int]]

# Written out rather than relying only on ipaddress's is_* flags, whose tables
# change between Python patch releases. Both are consulted (see _is_blocked).
_BLOCKED_NETWORKS: Final[tuple[IPNetwork, ...]] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches localhost on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes broadcast
        "::/96",  # unspecified, loopback, deprecated IPv4-compatible
        "64:ff9b:1::/48",  # local-use NAT64: embedding depends on a local prefix length
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments, includes Teredo 2001::/32
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4: tunnels to an embedded IPv4 address
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local
        "ff00::/8",  # multicast
    )
)
_NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")

_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
# 408 is not in the brief's list but is a timeout by definition.
_TRANSIENT_STATUSES: Final = frozenset({408, 429})
# text/plain is refused: FetchedPage.html promises markup for the HTML extractor,
# and users who want plain text summarised can submit the text itself.
_HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
_HOSTNAME_RE: Final = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
_META_CHARSET_RE: Final = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-z0-9_.:-]+)""", re.I)
_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CHUNK: Final = 64 * 1024


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one fetch. ``allowed_networks`` overrides the blocklist."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    total_timeout: float = 15.0  # whole fetch incl. redirects, wall clock (slow-drip servers)
    connect_timeout: float = 5.0
    max_bytes: int = 5_000_000  # DECODED bytes (gzip bombs)
    max_redirects: int = 5
    user_agent: str = "SmartCache/1.0 (+summary bot)"

    @classmethod
    def parse_networks(cls, value: str) -> tuple[IPNetwork, ...]:
        """Parse ``"10.0.0.0/8, 127.0.0.2/32"``; raise ValueError on a bad CIDR.

        Host bits must be zero (``10.0.0.1/8`` is an error) so typos are caught.
        """
        networks: list[IPNetwork] = []
        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                networks.append(ipaddress.ip_network(part))
            except ValueError as exc:
                raise ValueError(f"invalid network {part!r} in allowed networks: {exc}") from None
        return tuple(networks)


@dataclass(frozen=True)
class FetchedPage:
    """A fetched HTML page. ``html`` is decoded text, never bytes."""

    url: str  # as requested
    final_url: str  # after redirects
    status: int
    content_type: str
    html: str


@dataclass(frozen=True)
class _Target:
    """A checked URL split into what the connection needs."""

    url: str
    scheme: str
    host: str  # ASCII (IDNA) hostname, or an IP literal without brackets
    port: int
    request_target: str  # path and query, percent-encoded


def check_submit_url(url: str, policy: FetchPolicy) -> None:
    """Cheap checks at submit time, without DNS; raise JobError(code="blocked_url").

    Refuses a scheme other than http/https, userinfo, a missing or malformed
    host, and an IP-literal host (in any form the C library accepts, such as
    ``2130706433`` or ``0x7f.1``) that is blocked and not in ``allowed_networks``.
    Names that would resolve to blocked addresses are only caught by fetch_page.
    """
    target = _parse_url(url)
    literal = _literal_ip(target.host)
    if literal is not None and _is_blocked(literal, policy.allowed_networks):
        raise JobError(f"URL points to a blocked address ({literal})", code="blocked_url")


def fetch_page(url: str, policy: FetchPolicy) -> FetchedPage:
    """GET an HTML page, following at most ``policy.max_redirects`` redirects.

    Raises JobError with code blocked_url, blocked_destination, fetch_timeout,
    too_large, unsupported_content, http_error, too_many_redirects or
    fetch_failed; ``transient`` says whether a retry may help.
    """
    deadline = time.monotonic() + policy.total_timeout
    try:
        target = _parse_url(url)
        for _hop in range(policy.max_redirects + 1):
            response = _fetch_once(target, policy, deadline)
            if isinstance(response, FetchedPage):
                return FetchedPage(
                    url=url,
                    final_url=target.url,
                    status=response.status,
                    content_type=response.content_type,
                    html=response.html,
                )
            target = _redirect_target(target, response)
        raise JobError(f"more than {policy.max_redirects} redirects", code="too_many_redirects")
    except JobError:
        raise
    except TimeoutError:
        raise JobError(
            f"site did not answer within the time limit ({policy.total_timeout:g}s in all)",
            code="fetch_timeout",
            transient=True,
        ) from None
    except ssl.SSLError as exc:
        # Includes certificate/hostname mismatch: retrying will not fix it.
        raise JobError(f"TLS failed: {exc.reason or exc}", code="fetch_failed") from None
    except (OSError, http.client.IncompleteRead) as exc:
        # Refused, reset, closed early: the site may well be back soon.
        raise JobError(f"connection failed: {exc}", code="fetch_failed", transient=True) from None
    except zlib.error:
        raise JobError("site sent a corrupt compressed body", code="fetch_failed") from None
    except http.client.HTTPException as exc:
        raise JobError(
            f"site sent a malformed HTTP response ({type(exc).__name__})", code="fetch_failed"
        ) from None
    except Exception as exc:
        raise JobError(
            f"fetch failed unexpectedly ({type(exc).__name__})", code="fetch_failed"
        ) from exc


def _redirect_target(current: _Target, location: str) -> _Target:
    """Where a redirect leads. A refused URL there is a blocked destination:
    the client submitted a fine URL, the site sent us somewhere we won't go."""
    try:
        return _parse_url(urljoin(current.url, location))
    except JobError as exc:
        raise JobError(f"redirected to a refused URL: {exc.message}",
                       code="blocked_destination") from None


def _parse_url(url: str) -> _Target:
    """Split and validate a URL, or raise JobError(code="blocked_url")."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # ValueError when out of range or not a number
    except ValueError:
        raise JobError("malformed URL", code="blocked_url") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise JobError(
            f"only http and https URLs are allowed, not {scheme or 'none'!r}", code="blocked_url"
        )
    if parts.username is not None or parts.password is not None:
        raise JobError("URLs with user:password@ are not allowed", code="blocked_url")
    host = _normalise_host(parts)
    target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        target += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return _Target(
        url=parts._replace(fragment="").geturl(),
        scheme=scheme,
        host=host,
        port=port or (443 if scheme == "https" else 80),
        request_target=target,
    )


def _normalise_host(parts: SplitResult) -> str:
    host = parts.hostname  # lower-cased, brackets stripped
    if not host:
        raise JobError("URL has no host", code="blocked_url")
    if ":" in host:  # urlsplit only yields ':' for a bracketed IPv6 literal
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise JobError("malformed IPv6 address in URL", code="blocked_url") from None
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise JobError("malformed host name in URL", code="blocked_url") from None
    # Rejects spaces, '%', control characters: things a resolver may
    # interpret differently from us (glibc's inet_aton ignores text after a space).
    if len(ascii_host) > 253 or not _HOSTNAME_RE.fullmatch(ascii_host):
        raise JobError("malformed host name in URL", code="blocked_url")
    return ascii_host


def _literal_ip(host: str) -> IPAddress | None:
    """Return the address if ``host`` is an IP literal in any form libc accepts."""
    if ":" in host:
        return ipaddress.IPv6Address(host)
    try:
        # inet_aton, like getaddrinfo, accepts 2130706433, 0177.0.0.1, 0x7f.1, 127.1.
        return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
    except OSError:
        return None


def _is_blocked(addr: IPAddress, allowed: tuple[IPNetwork, ...]) -> bool:
    """True unless ``addr`` is allowed explicitly or is a public unicast address."""
    if any(addr in net for net in allowed):
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        # Python < 3.13 does not look inside these, e.g. ::ffff:127.0.0.1 is
        # not "loopback"; judge the IPv4 address the packets would reach.
        if addr.ipv4_mapped is not None:
            return _is_blocked(addr.ipv4_mapped, allowed)
        if addr in _NAT64_WELL_KNOWN:
            return _is_blocked(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF), allowed)
        if addr.scope_id:
            return True
    return (
        any(addr in net for net in _BLOCKED_NETWORKS)
        or not addr.is_global
        or addr.is_multicast
        or addr.is_private
        or addr.is_reserved
    )


def _resolve(target: _Target, policy: FetchPolicy) -> list[_SockAddr]:
    """Resolve once and check EVERY address; one blocked address refuses the host.

    Refusing the host (rather than skipping the bad address) stops a name that
    mixes public and internal records from reaching inside on a retry.
    """
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        # EAI_AGAIN is a resolver hiccup; anything else means the name does not exist.
        again = exc.errno == socket.EAI_AGAIN
        raise JobError(
            f"could not resolve {target.host}" if again else f"unknown host {target.host}",
            code="fetch_failed",
            transient=again,
        ) from None
    checked: list[_SockAddr] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        addr = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if _is_blocked(addr, policy.allowed_networks):
            raise JobError(
                f"{target.host} resolves to a blocked address ({addr})", code="blocked_destination"
            )
        checked.append((family, (str(sockaddr[0]), target.port)))
    if not checked:
        raise JobError(f"{target.host} has no IPv4/IPv6 address", code="fetch_failed")
    return checked


def _connect(target: _Target, policy: FetchPolicy, deadline: float) -> socket.socket:
    """Connect to a checked address (no second DNS lookup), TLS-wrapped for https."""
    error: OSError = ConnectionError("no address to connect to")
    for family, sockaddr in _resolve(target, policy):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(min(policy.connect_timeout, _remaining(deadline)))
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        if target.scheme == "https":
            sock.settimeout(_remaining(deadline))  # bounds the whole handshake
            try:
                # SNI and certificate check use the hostname, not the address.
                return _tls_context().wrap_socket(sock, server_hostname=target.host)
            except BaseException:
                sock.close()
                raise
        return sock
    raise error


def _tls_context() -> ssl.SSLContext:
    """The TLS context for https hops (tests swap it to trust a local CA)."""
    return ssl.create_default_context()


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


class _DeadlineSocket:
    """The slice of a socket http.client uses, where each I/O gets only the time left.

    A per-read timeout alone lets a server dripping a byte a second run forever.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(_remaining(self._deadline))
        self._sock.sendall(data)

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def close(self) -> None:
        # http.client closes the connection while the response is still being
        # read from it; the real socket is closed by _fetch_once instead.
        pass


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        self._sock.settimeout(_remaining(self._deadline))
        return self._sock.recv_into(buffer)


def _fetch_once(target: _Target, policy: FetchPolicy, deadline: float) -> FetchedPage | str:
    """One GET. Returns the page, or the Location to follow for a redirect."""
    sock = _connect(target, policy, deadline)
    conn = http.client.HTTPConnection(target.host, target.port)
    conn.sock = _DeadlineSocket(sock, deadline)
    try:
        conn.putrequest("GET", target.request_target, skip_host=True, skip_accept_encoding=True)
        default_port = 443 if target.scheme == "https" else 80
        host = f"[{target.host}]" if ":" in target.host else target.host
        conn.putheader("Host", host if target.port == default_port else f"{host}:{target.port}")
        conn.putheader("User-Agent", policy.user_agent)
        conn.putheader("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1")
        conn.putheader("Accept-Encoding", "gzip, deflate")
        conn.putheader("Connection", "close")
        conn.endheaders()
        response = conn.getresponse()
        status = response.status
        if status in _REDIRECT_STATUSES:
            location = response.getheader("Location")
            if not location:
                raise JobError(f"site answered HTTP {status} without a Location", code="http_error")
            return location
        if not 200 <= status < 300:
            transient = status >= 500 or status in _TRANSIENT_STATUSES
            raise JobError(f"site answered HTTP {status}", code="http_error", transient=transient)
        content_type = response.headers.get_content_type()  # "text/plain" when missing
        declared = response.getheader("Content-Type") is not None
        if declared and content_type not in _HTML_TYPES:
            raise JobError(f"not an HTML page ({content_type})", code="unsupported_content")
        body = _read_body(response, policy.max_bytes)
        if not declared:
            if not _looks_like_html(body):
                raise JobError("not an HTML page (no Content-Type)", code="unsupported_content")
            content_type = "text/html"
        return FetchedPage(
            url=target.url,
            final_url=target.url,
            status=status,
            content_type=content_type,
            html=decode_html(body, response.headers.get_content_charset()),
        )
    finally:
        conn.close()
        sock.close()


def _read_body(response: http.client.HTTPResponse, max_bytes: int) -> bytes:
    """Read and decode the body, refusing more than ``max_bytes`` decoded bytes.

    Decompression is incremental with a bounded output per step, so a gzip bomb
    is stopped after about ``max_bytes`` instead of being inflated in memory.
    """
    encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
        raise JobError(f"unsupported Content-Encoding {encoding!r}", code="unsupported_content")
    too_large = JobError(f"page is larger than {max_bytes} bytes", code="too_large")
    if encoding == "identity" and (response.length or 0) > max_bytes:
        raise too_large  # declared too large: do not download it at all
    out = bytearray()
    decompressor: zlib._Decompress | None = None
    raw_total = 0
    while chunk := response.read1(_CHUNK):
        # Also cap the compressed stream: data after the end of a deflate
        # stream is never inflated and would otherwise be read forever.
        raw_total += len(chunk)
        if raw_total > max_bytes:
            raise too_large
        if encoding == "identity":
            out += chunk
            chunk = b""
        while chunk:
            finished = decompressor is not None and decompressor.eof
            if finished and (encoding == "deflate" or not chunk.startswith(b"\x1f\x8b")):
                break  # padding or junk after the last member: ignored, like browsers do
            if decompressor is None or finished:
                decompressor = zlib.decompressobj(_wbits(encoding, chunk))
            out += decompressor.decompress(chunk, max_bytes + 1 - len(out))
            if len(out) > max_bytes:
                raise too_large
            # Leftover input is either output we have not asked for yet
            # (unconsumed_tail) or the next gzip member (unused_data).
            chunk = decompressor.unconsumed_tail or decompressor.unused_data
        if len(out) > max_bytes:
            raise too_large
    return bytes(out)


def _wbits(encoding: str, head: bytes) -> int:
    if encoding != "deflate":
        return 16 + zlib.MAX_WBITS  # gzip
    # HTTP "deflate" means zlib-wrapped, but some servers send raw deflate.
    zlib_header = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
    return zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS


def _looks_like_html(body: bytes) -> bool:
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<!doctype html") or b"<html" in head


def decode_html(body: bytes, header_charset: str | None = None) -> str:
    """Decode with the BOM, header charset, or <meta> charset; else UTF-8 with replacement."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body.decode(name, errors="replace")
    candidates = [header_charset]
    if match := _META_CHARSET_RE.search(body[:4096]):
        candidates.append(match.group(1).decode("ascii"))
    for charset in candidates:
        if not charset:
            continue
        try:
            return body.decode(charset, errors="replace")
        except (LookupError, ValueError):  # unknown charset, non-text codec ("base64")
            continue
    return body.decode("utf-8", errors="replace")
