"""Content negotiation with a fast path for API clients.

DRF's negotiation parses the Accept header against every renderer on every
request, which costs more than a whole cache hit. A client that does not ask
for HTML (a program, curl) gets JSON at once; a browser, which asks for
text/html, still gets the browsable API through DRF's full negotiation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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
        return super().select_renderer(request, renderers, format_suffix)
