"""The one URL validator: parse, check and canonicalise http(s) URLs.

Used at submit time (``inputs.canonical_url``: the cache key and the stored
URL) and at fetch time (``fetching``: the request and every redirect). One
set of error codes:

- ``invalid_url``: not a well-formed URL we can store and send (malformed
  host or port, control characters, lone surrogates, longer than
  :data:`MAX_URL_CHARS` once canonical);
- ``blocked_url``: well formed, but refused by policy (a scheme other than
  http/https, credentials, an IPv6 zone). Blocked *addresses* are the
  address policy's business (``fetching.policy``).

Canonicalisation never changes what is fetched. The request target (path
and query) keeps its bytes: percent-escapes are neither decoded nor
re-encoded (``%FC`` stays ``%FC``), ``;`` and bare keys like ``?amp`` are
left alone, parameters keep their order. Only characters that cannot travel
raw are encoded, as browsers do (non-ASCII as UTF-8, space, ``"<>`{}``), so
a canonical URL is ASCII and requesting it sends exactly its bytes. The
safe normalisations are: scheme and host lower-cased, host IDNA-encoded (IDNA
2008 with the UTS 46 mapping, as browsers do: ``faß.de`` is ``xn--fa-hia.de``,
never IDNA 2003's ``fass.de``, another domain) and without a trailing dot,
IPv6 in its compressed form, default port dropped, empty path as ``/``, empty
query and fragment dropped, and the tracking parameters of
:data:`TRACKING_PARAMS` removed.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlsplit

import idna

from summaries.core.errors import ErrorCode

# The Job.url column is this long; the limit applies to the canonical form.
MAX_URL_CHARS: Final = 2048
DEFAULT_PORTS: Final = {"http": 80, "https": 443}

# Query parameters that only say where a click came from. Matched on the raw
# name, case-insensitively; anything not listed here is kept byte for byte.
TRACKING_PREFIXES: Final = ("utm_",)  # utm_source, utm_medium, utm_campaign ...
TRACKING_PARAMS: Final = frozenset({
    "fbclid",  # Facebook
    "gclid", "dclid", "gbraid", "wbraid",  # Google Ads
    "msclkid",  # Microsoft Ads
    "yclid",  # Yandex
    "twclid",  # X/Twitter
    "igshid",  # Instagram
    "mc_cid", "mc_eid",  # Mailchimp
})

# C0 controls, DEL and lone surrogates: never valid in a URL, and PostgreSQL
# (NUL) or the UTF-8 encoder (surrogates) would refuse to store them.
_UNSTORABLE: Final = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
# What cannot travel raw in a request target: encoded, everything else kept.
_MUST_ENCODE: Final = re.compile(r'[^\x21-\x7e]|["<>`{}]')
# Labels of 1-63 characters (DNS's limit), joined by dots.
_HOSTNAME: Final = re.compile(r"[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*")
_MAX_HOST_CHARS: Final = 253
# A Unicode host longer than this is refused before IDNA processing: the UTS 46
# mapping deletes some characters (soft hyphens), so the 253 limit applies only
# after it, and Punycode's cost grows faster than linearly with a label's length.
_MAX_RAW_HOST_CHARS: Final = 1024


class InvalidURL(ValueError):
    """A URL we refuse; ``code`` is ``invalid_url`` or ``blocked_url``."""

    def __init__(self, message: str, *, code: ErrorCode = ErrorCode.INVALID_URL) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class ParsedURL:
    """A checked http(s) URL, split into what a connection needs."""

    scheme: str  # "http" or "https"
    host: str  # ASCII (IDNA) name or IP literal, lower case, no brackets or trailing dot
    port: int  # always set: the default port when the URL has none
    path: str  # percent-encoded, never empty
    query: str  # percent-encoded, without "?"; "" when absent

    @property
    def netloc(self) -> str:
        """``host[:port]`` with the port only when it is not the default (the Host header)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def request_target(self) -> str:
        """Path and query exactly as sent on the request line."""
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.request_target}"


def parse_url(url: str) -> ParsedURL:
    """Check ``url`` and split it; raise InvalidURL. No DNS, no length limit.

    The fragment is dropped; path and query keep their bytes (see module doc).
    """
    if _UNSTORABLE.search(url):
        raise InvalidURL("the URL contains a control character or an invalid code point")
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when not a number or out of range
    except ValueError as exc:
        raise InvalidURL(f"malformed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidURL(f"only http and https URLs are allowed, not {scheme or 'none'!r}",
                         code=ErrorCode.BLOCKED_URL)
    if parts.username is not None or parts.password is not None:
        raise InvalidURL("URLs with user:password@ are not allowed", code=ErrorCode.BLOCKED_URL)
    if port == 0:
        raise InvalidURL("port 0 is not a port a server listens on")
    return ParsedURL(
        scheme=scheme,
        host=_host(parts.hostname),
        port=port or DEFAULT_PORTS[scheme],
        path=_encode(parts.path) or "/",
        query=_encode(parts.query),
    )


def canonical_url(url: str) -> str:
    """The form of ``url`` we store, key the cache on and fetch; raise InvalidURL.

    Idempotent. Drops tracking parameters (and nothing else) from the query,
    and refuses a result longer than :data:`MAX_URL_CHARS`.
    """
    parsed = parse_url(url)
    kept = [p for p in parsed.query.split("&") if not _is_tracking(p)] if parsed.query else []
    canonical = ParsedURL(parsed.scheme, parsed.host, parsed.port, parsed.path,
                          "&".join(kept)).url
    if len(canonical) > MAX_URL_CHARS:
        raise InvalidURL(f"the URL is longer than {MAX_URL_CHARS} characters")
    return canonical


def _host(hostname: str | None) -> str:
    """The host as we connect to it and send it (``urlsplit`` already lower-cased it)."""
    if not hostname:
        raise InvalidURL("the URL has no host")
    if ":" in hostname:  # urlsplit only yields ':' for a bracketed IPv6 literal
        if "%" in hostname:
            raise InvalidURL("IPv6 zone identifiers are not allowed",
                             code=ErrorCode.BLOCKED_URL)
        try:
            return str(ipaddress.IPv6Address(hostname))
        except ValueError:
            raise InvalidURL("malformed IPv6 address in URL") from None
    ascii_host = _idna_host(hostname)
    # Also rejects spaces, '%', '\': things a resolver may read differently
    # from us (glibc's inet_aton ignores text after a space).
    if len(ascii_host) > _MAX_HOST_CHARS or not _HOSTNAME.fullmatch(ascii_host):
        raise InvalidURL("malformed host name in URL")
    return ascii_host


def _idna_host(hostname: str) -> str:
    """``hostname`` in ASCII, each label as IDNA 2008 / UTS 46 (non-transitional)
    encodes it; raise InvalidURL when it is not valid IDNA. Plain ASCII labels
    are kept as they are ("my_host" is no IDN, and resolvers accept it); an
    ``xn--`` label must decode to a valid one."""
    if len(hostname) > _MAX_RAW_HOST_CHARS:
        raise InvalidURL("malformed host name in URL")
    try:
        # The mapping folds case and width and turns "。" into "." (a label separator).
        mapped = idna.uts46_remap(hostname, std3_rules=False, transitional=False)
        labels = mapped.rstrip(".").split(".")
        return ".".join(
            label if label.isascii() and not label.startswith("xn--")
            else idna.alabel(label).decode("ascii")
            for label in labels)
    except UnicodeError as exc:  # idna.IDNAError and its kinds are UnicodeErrors
        raise InvalidURL(f"host name is not a valid internationalised name: {exc}") from None


def _encode(part: str) -> str:
    """Percent-encode (as UTF-8) only what cannot travel raw; keep every other byte."""
    return _MUST_ENCODE.sub(lambda m: quote(m.group(), safe=""), part)


def _is_tracking(param: str) -> bool:
    name = param.split("=", 1)[0].lower()
    # "utm_source=x;id=7" may be two parameters to the server: keep it whole.
    if ";" in param:
        return False
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)
