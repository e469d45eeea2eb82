"""One attempt's HTTP request of a webhook delivery: signed as Standard
Webhooks sign (https://www.standardwebhooks.com), with the old headers kept
for one release (README: Webhooks), and POSTed once under the page fetcher's
address policy. services/webhooks.py decides when (claims, retries, the
sweep); the webhook_secret command prints a receiver's secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ssl
import time
from typing import Final

from django.conf import settings

from summaries.core import canonical_urls
from summaries.core.errors import ErrorCode, JobError
from summaries.fetching import transport
from summaries.models import WebhookDelivery
from summaries.services.config import fetch_policy

# Standard Webhooks' headers, and the old ones (kept for one release: README).
ID_HEADER: Final = "webhook-id"
TIMESTAMP_HEADER: Final = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER: Final = "webhook-signature"
SIGNATURE_HEADER: Final = "X-SmartCache-Signature"
DELIVERY_HEADER: Final = "X-SmartCache-Delivery"
SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (a prefix, not a secret)
_RETRY_STATUSES: Final = frozenset({408, 429})


def origin(url: str) -> str:
    """Scheme, host and port of a callback URL. Raises canonical_urls.InvalidURL."""
    target = canonical_urls.parse_url(url)
    return f"{target.scheme}://{target.host}:{target.port}"


def signature(body: bytes, *, timestamp: int, secret: str) -> str:
    """The old header: ``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def signing_key(secret: str) -> bytes:
    """The HMAC key a secret stands for: the bytes after ``whsec_`` in
    base64 (Standard Webhooks' form), or a plain secret's own UTF-8 bytes."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    return secret.encode()


def endpoint_secret(url: str, *, secret: str) -> str:
    """The receiver's secret, in Standard Webhooks' form (``whsec_<base64>``):
    HMAC-SHA256 of the callback URL's origin (scheme, host and port) under
    ``secret``. Every callback URL of one origin shares it; no other origin
    can verify with it. Raises canonical_urls.InvalidURL."""
    key = hmac.new(signing_key(secret), b"smartcache-endpoint:" + origin(url).encode(),
                   hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(key).decode()


def standard_signature(body: bytes, *, msg_id: str, timestamp: int,
                       secrets: tuple[str, ...]) -> str:
    """``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``
    for each secret, space-separated (rotation)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(signing_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets)


def signed_headers(body: bytes, *, delivery_id: str, url: str, timestamp: int) -> dict[str, str]:
    """The signature headers of one attempt: Standard Webhooks' with the
    receiver's secrets (current and previous), and the old ones."""
    secrets = tuple(endpoint_secret(url, secret=s)
                    for s in (settings.WEBHOOK_SECRET, *settings.WEBHOOK_PREVIOUS_SECRETS))
    return {
        ID_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        STANDARD_SIGNATURE_HEADER: standard_signature(body, msg_id=delivery_id,
                                                      timestamp=timestamp, secrets=secrets),
        SIGNATURE_HEADER: signature(body, timestamp=timestamp, secret=settings.WEBHOOK_SECRET),
        DELIVERY_HEADER: delivery_id,
    }


def post(delivery: WebhookDelivery, body: bytes) -> tuple[int | None, str, bool]:
    """POST once: (HTTP status or None, error message, whether the failure is final)."""
    try:
        target = canonical_urls.parse_url(delivery.url)
        headers = {
            "Content-Type": "application/json",
            **signed_headers(body, delivery_id=str(delivery.id), url=delivery.url,
                             timestamp=int(time.time())),
            "X-SmartCache-Event": f"job.{delivery.job.status}",
            "X-SmartCache-Attempt": str(delivery.attempts),
        }
        if delivery.watch_id:
            headers["X-SmartCache-Watch"] = str(delivery.watch_id)
        deadline = time.monotonic() + settings.WEBHOOK_TIMEOUT
        status = transport.post(target, body, headers, fetch_policy(), deadline)
    except canonical_urls.InvalidURL as exc:
        return None, exc.message, True
    except JobError as exc:  # refused by the address policy, or the name is unknown
        return None, exc.message, exc.code == ErrorCode.BLOCKED_DESTINATION
    except TimeoutError:
        return None, f"no answer within {settings.WEBHOOK_TIMEOUT:g}s", False
    except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
        return None, f"connection failed: {exc or type(exc).__name__}", False
    if 200 <= status < 300:
        return status, "", False
    retry = status >= 500 or status in _RETRY_STATUSES
    return status, f"receiver answered HTTP {status}", not retry
