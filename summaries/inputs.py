"""What a client submitted: classify it, normalise it, derive its cache key.

Two inputs that mean the same thing (extra spaces, ``HTTP://Example.com:80/``
versus ``http://example.com/``, tracking parameters) normalise to the same
string and so share one cache entry and one AI call.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

TEXT = "text"
URL = "url"

_WHITESPACE = re.compile(r"\s+")
# One token that starts like "scheme://": the client meant a URL, even if the
# scheme is one we refuse (ftp://, file://).
_URL_LIKE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidInput(ValueError):
    """The input cannot be summarised; ``code`` is the API error code."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class NormalizedInput:
    kind: str  # TEXT or URL
    value: str  # normalised text or canonical URL

    def cache_key(self, namespace: str) -> str:
        """SHA-256 over the input and the summariser's namespace (provider,
        model, prompt version): a new prompt or model never serves an old answer."""
        material = f"{namespace}\n{self.kind}\n{self.value}".encode()
        return hashlib.sha256(material).hexdigest()


def normalize_text(text: str) -> str:
    """NFC, trimmed, runs of whitespace collapsed to one space, case kept."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, default port, fragment and utm_* dropped.

    Raises InvalidInput (code ``blocked_url``) for anything but http(s) with a
    host, or a URL carrying credentials.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"invalid URL: {exc}", code="invalid_url") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidInput(f"only http and https URLs are allowed, not {scheme}:",
                           code="blocked_url")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("URLs with credentials are not allowed", code="blocked_url")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidInput("the URL has no host", code="invalid_url")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInput("the URL's host name is not valid", code="invalid_url") from None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
         if not k.lower().startswith("utm_")]
    )
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def normalize_input(raw: str) -> NormalizedInput:
    """Classify and normalise a submission, or raise InvalidInput."""
    text = normalize_text(raw)
    if not text:
        raise InvalidInput("input cannot be empty", code="empty_input")
    if _URL_LIKE.match(text):
        return NormalizedInput(URL, canonical_url(text))
    return NormalizedInput(TEXT, text)
