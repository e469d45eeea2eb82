"""Content negotiation with a fast path for API clients.

DRF's negotiation parses the Accept header against every renderer on every
request, which costs more than a whole cache hit. A client that does not ask
for HTML (a program, curl) gets JSON at once; a browser, which asks for
text/html, still gets the browsable API through DRF's full negotiation.
An unknown ``?format=`` is ignored (DRF would answer 404, as if the
resource did not exist): the client gets what it would get without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import Http404
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request


class ApiFirstNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request: Request, renderers: Iterable[BaseRenderer],
                        format_suffix: str | None = None) -> Any:
        renderers = list(renderers)
        accept = request.META.get("HTTP_ACCEPT", "")
        first = renderers[0] if renderers else None
        if (not format_suffix and "html" not in accept and "format" not in request.query_params
                and isinstance(first, JSONRenderer)):
            return first, first.media_type
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except Http404:
            if format_suffix or "format" not in request.query_params:
                raise
            query = request._request.GET.copy()
            del query["format"]
            request._request.GET = query  # type: ignore[assignment]
            return super().select_renderer(request, renderers, format_suffix)
