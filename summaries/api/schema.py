"""OpenAPI generation hooks (drf-spectacular)."""

from __future__ import annotations

from typing import Any

HIDDEN = {"/api/", "/api/{rest}"}


def public_endpoints(endpoints: list[tuple[str, str, str, Any]],
                     **kwargs: Any) -> list[tuple[str, str, str, Any]]:
    """Document each endpoint once: without its trailing-slash twin, and
    without the API root and the JSON 404 catch-all."""
    return [(path, regex, method, view) for path, regex, method, view in endpoints
            if path not in HIDDEN and (path == "/api/" or not path.endswith("/"))]
