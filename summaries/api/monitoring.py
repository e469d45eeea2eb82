"""Prometheus: ``GET /metrics`` and the middleware that counts HTTP answers.

The counters live in Valkey (summaries/observability/), so a scrape of any API
process shows the totals of every API and worker process.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from summaries.api.errors import INFRASTRUCTURE_ERRORS, json_error
from summaries.core.errors import ErrorCode
from summaries.observability import counters, prometheus

METRICS_PATH = "/metrics"


class RequestMetricsMiddleware:
    """Counts every answer by view (its URL name; "unmatched" when no route
    matched), method and status. /metrics itself is not counted: scrapes
    would otherwise be most of the traffic. Never fails a request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.rstrip("/") != METRICS_PATH:
            match = getattr(request, "resolver_match", None)
            view = (match.view_name or match.route) if match is not None else "unmatched"
            counters.record_http(view or "unnamed", request.method or "", response.status_code)
        return response


def _allowed(request: HttpRequest) -> bool:
    """Open unless JOBS_API_TOKEN is set; then its bearer token or a staff
    session, as for the operator endpoints (summaries/api/views.py)."""
    token = settings.JOBS_API_TOKEN
    if not token:
        return True
    scheme, _, given = str(request.META.get("HTTP_AUTHORIZATION", "")).partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8", "surrogatepass"), token.encode()):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_staff)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus exposition (text format, or OpenMetrics if asked for).
    A plain Django view: Valkey or the database (a staff session is read from
    it) failing gets the JSON 503 an API view would give."""
    try:
        if not _allowed(request):
            return JsonResponse({"error": "/metrics needs the operator token "
                                          "(Authorization: Bearer ...)",
                                 "code": ErrorCode.PERMISSION_DENIED}, status=403)
        body, content_type = prometheus.exposition(request.headers.get("Accept"))
    except INFRASTRUCTURE_ERRORS as exc:
        return json_error(exc, request.path)
    return HttpResponse(body, content_type=content_type)
