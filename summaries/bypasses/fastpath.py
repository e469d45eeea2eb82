"""The fast path for cache hits: ``POST /api/submit`` answered from memory.

A hit is the product's most frequent answer, and Django's session, auth,
CSRF and messages middleware plus DRF's request machinery cost more than
the answer itself. This middleware sits after the security, CORS and
clickjacking middleware (so a hit carries the same headers as any answer)
and before the rest: for a plain JSON submit whose summary this process
holds (summaries.infra.local_cache), it applies the same rate limit and answers
with the same body and headers as SubmitView. Everything else — a miss, a
Valkey lookup, any invalid or unusual request, a browser asking for HTML —
goes on to SubmitView unchanged (a miss with the input as checked here, in
``request.checked_input``, so it is not checked twice). Valkey or the
database failing here (the rate limit is counted in Valkey) gets the JSON
503 a view would give, not Django's 500: this runs outside DRF's exception
handler.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch, resolve
from rest_framework.exceptions import Throttled
from rest_framework.renderers import JSONRenderer

from summaries.api import serializers as s
from summaries.api.errors import INFRASTRUCTURE_ERRORS, json_error
from summaries.api.throttling import SubmitRateThrottle
from summaries.core.errors import ErrorCode
from summaries.infra import runtime
from summaries.representations import bodies
from summaries.services.submit import Submission, cached_summary

SUBMIT_PATHS = frozenset({"/api/submit", "/api/submit/"})
# Hits are ordinary inputs; a larger body goes the full path.
MAX_BODY_BYTES = 64 * 1024
_render = JSONRenderer().render


class CachedSubmitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (request.method == "POST" and request.path_info in SUBMIT_PATHS
                and request.content_type == "application/json"
                and "html" not in request.META.get("HTTP_ACCEPT", "")):
            try:
                response = self._hit(request)
            except INFRASTRUCTURE_ERRORS as exc:
                return json_error(exc, request.path)  # as SubmitView would answer it
            if response is not None:
                return response
        return self.get_response(request)

    def _hit(self, request: HttpRequest) -> HttpResponse | None:
        request.get_host()  # the same Host check as CommonMiddleware (DisallowedHost → 400)
        length = request.META.get("CONTENT_LENGTH", "")
        # Few ASCII digits: str.isdigit() also takes "²", and int() refuses
        # both that and thousands of digits.
        if not (length.isascii() and length.isdigit() and len(length) <= 9) \
                or int(length) > MAX_BODY_BYTES:
            return None  # chunked, unknown or large: the full path reads (or refuses) it
        try:
            plain = s.SubmitRequest.plain(json.loads(request.body))
        except (ValueError, RecursionError):  # the full path answers with the error
            return None
        if plain is None or plain[1]:  # not plain, or a refresh
            return None
        request.resolver_match = _submit_route(request.path_info)  # for the request metrics
        throttle = SubmitRateThrottle()
        if not throttle.allow_request(request, None):  # type: ignore[arg-type]
            return _throttled(throttle.wait())
        # Charged once: if this is no hit, SubmitView's throttle lets it pass.
        request.rate_limit_charged = True  # type: ignore[attr-defined]
        submission = cached_summary(raw=plain[0])
        if not isinstance(submission, Submission):
            # No hit: SubmitView takes the input over as checked here, with the request.
            request.checked_input = submission  # type: ignore[attr-defined]
            return None
        response = HttpResponse(_hit_body(submission), content_type="application/json",
                                status=200)
        response["X-Cache"] = bodies.CACHE_STATUS[submission.outcome]
        response["X-Cache-Key"] = submission.cache_key
        return response


@functools.cache
def _submit_route(path: str) -> ResolverMatch:
    """The route of /api/submit (one of two paths), resolved once."""
    return resolve(path)


_BODIES_MAX = 4096
_BODIES = runtime.slot("hit-bodies", dict[tuple[str, str, tuple[str, ...], str], bytes])


def _hit_body(submission: Submission) -> bytes:
    """SubmitView's body for a hit, rendered once per distinct hit (what a
    hit body shows: job id, summary, tags, cache key)."""
    key = (submission.job_id, submission.summary, tuple(submission.tags), submission.cache_key)
    rendered = _BODIES.get()
    if (body := rendered.get(key)) is None:
        if len(rendered) >= _BODIES_MAX:
            rendered.clear()  # simple bound; hits refill it
        body = rendered[key] = _render(bodies.SubmitResponse.render(submission))
    return body


def _throttled(wait: float | None) -> HttpResponse:
    error = Throttled(wait)
    response = HttpResponse(_render({"error": str(error.detail), "code": ErrorCode.THROTTLED}),
                            content_type="application/json", status=429)
    if wait is not None:
        response["Retry-After"] = str(max(1, round(wait)))
    return response
