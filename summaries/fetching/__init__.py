"""Fetch user-supplied URLs from inside our network without becoming an SSRF proxy.

The pieces, each readable on its own:

- :mod:`summaries.core.canonical_urls`: the one URL validator (also used at submit time);
- :mod:`.policy`: which addresses we may reach, DNS resolved once and checked;
- :mod:`.transport`: one GET under a wall-clock deadline;
- :mod:`.decoding`: Content-Encoding with a size cap, and charset decoding.

This module follows redirects by hand (each hop re-checked) and turns every
failure into a :class:`~summaries.core.errors.JobError`. One deadline covers
connect, TLS, headers, body and decoding of every hop, and the body is
capped, so slow-drip servers, gzip bombs and hostile charsets fail fast with
bounded memory. Nothing else escapes :func:`fetch_page`, except Celery's
``SoftTimeLimitExceeded``: the job's time limit belongs to the task.
"""

from __future__ import annotations

import http.client
import ssl
import time
import zlib
from dataclasses import dataclass
from urllib.parse import urljoin

from celery.exceptions import SoftTimeLimitExceeded

from summaries.core import canonical_urls
from summaries.core.canonical_urls import ParsedURL
from summaries.core.errors import ErrorCode, JobError
from summaries.fetching import transport
from summaries.fetching.decoding import decode_html
from summaries.fetching.policy import FetchPolicy, is_blocked, literal_ip

__all__ = ["FetchPolicy", "FetchedPage", "check_submit_url", "decode_html", "fetch_page"]


@dataclass(frozen=True)
class FetchedPage:
    """A fetched HTML page. ``html`` is decoded text, never bytes.

    Under a policy that takes documents (``max_document_bytes``), ``body``
    holds the bytes as received (Content-Encoding undone) and ``html`` is
    empty unless the answer was declared (or looked like) HTML: the caller
    decides what the bytes are (summaries/documents/sniff.py)."""

    url: str  # as requested
    final_url: str  # after redirects
    status: int
    content_type: str  # "" when undeclared and not HTML
    html: str
    body: bytes = b""
    charset: str | None = None  # from the Content-Type header


def check_submit_url(url: str, policy: FetchPolicy) -> None:
    """Cheap checks at submit time, without DNS; raise JobError.

    ``invalid_url`` for a malformed URL, ``blocked_url`` for a scheme other
    than http/https, credentials, or an IP-literal host (in any form the C
    library accepts, such as ``2130706433`` or ``0x7f.1``) that is blocked and
    not in ``allowed_networks``. Names that would resolve to blocked
    addresses are only caught by fetch_page.
    """
    target = _parse(url)
    literal = literal_ip(target.host)
    if literal is not None and is_blocked(literal, policy.allowed_networks):
        raise JobError(f"URL points to a blocked address ({literal})", code=ErrorCode.BLOCKED_URL)


def fetch_page(url: str, policy: FetchPolicy) -> FetchedPage:
    """GET an HTML page, following at most ``policy.max_redirects`` redirects.

    The request target is the URL's path and query exactly as given (see
    :mod:`summaries.core.canonical_urls`). Raises JobError with code invalid_url,
    blocked_url, blocked_destination, fetch_timeout, too_large,
    unsupported_content, http_error, too_many_redirects or fetch_failed;
    ``transient`` says whether a retry may help.
    """
    deadline = time.monotonic() + policy.total_timeout
    try:
        return _follow(url, policy, deadline)
    except (JobError, SoftTimeLimitExceeded):
        raise
    except TimeoutError:
        raise JobError(
            f"site did not answer within the time limit ({policy.total_timeout:g}s in all)",
            code=ErrorCode.FETCH_TIMEOUT,
            transient=True,
        ) from None
    except ssl.SSLError as exc:
        # Includes certificate/hostname mismatch: retrying will not fix it.
        raise JobError(f"TLS failed: {exc.reason or exc}", code=ErrorCode.FETCH_FAILED) from None
    except ConnectionRefusedError:
        # Nothing listens there: fail at once rather than keep a submitter
        # waiting through retries (like an unknown host).
        raise JobError("the site refused the connection", code=ErrorCode.FETCH_FAILED) from None
    except (OSError, http.client.IncompleteRead) as exc:
        # Reset, closed early: the site may well be back soon.
        raise JobError(f"connection failed: {exc}", code=ErrorCode.FETCH_FAILED,
                       transient=True) from None
    except zlib.error:
        raise JobError("site sent a corrupt compressed body", code=ErrorCode.FETCH_FAILED) from None
    except http.client.HTTPException as exc:
        raise JobError(
            f"site sent a malformed HTTP response ({type(exc).__name__})",
            code=ErrorCode.FETCH_FAILED,
        ) from None
    except Exception as exc:
        raise JobError(
            f"fetch failed unexpectedly ({type(exc).__name__})", code=ErrorCode.FETCH_FAILED
        ) from exc


def _follow(url: str, policy: FetchPolicy, deadline: float) -> FetchedPage:
    target = _parse(url)
    for _hop in range(policy.max_redirects + 1):
        answer = transport.get(target, policy, deadline)
        if isinstance(answer, transport.Redirect):
            target = _redirect_target(target, answer.location)
            continue
        documents = policy.max_document_bytes > 0
        is_html = answer.content_type in transport.HTML_TYPES
        html = decode_html(answer.data, answer.charset) if is_html else ""
        transport.remaining(deadline)  # decoding is part of the budget
        return FetchedPage(url=url, final_url=target.url, status=answer.status,
                           content_type=answer.content_type, html=html,
                           body=answer.data if documents else b"", charset=answer.charset)
    raise JobError(f"more than {policy.max_redirects} redirects", code=ErrorCode.TOO_MANY_REDIRECTS)


def _parse(url: str) -> ParsedURL:
    try:
        return canonical_urls.parse_url(url)
    except canonical_urls.InvalidURL as exc:
        raise JobError(exc.message, code=exc.code) from None


def _redirect_target(current: ParsedURL, location: str) -> ParsedURL:
    """Where a redirect leads. A refused URL there is a blocked destination:
    the client submitted a fine URL, the site sent us somewhere we won't go."""
    try:
        return canonical_urls.parse_url(urljoin(current.url, location))
    except canonical_urls.InvalidURL as exc:
        raise JobError(f"redirected to a refused URL: {exc.message}",
                       code=ErrorCode.BLOCKED_DESTINATION) from None
