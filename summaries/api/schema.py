"""OpenAPI generation hooks (drf-spectacular)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

HIDDEN = {"/api/", "/api/{rest}"}


def public_endpoints(endpoints: list[tuple[str, str, str, Any]],
                     **kwargs: Any) -> list[tuple[str, str, str, Any]]:
    """Document each endpoint once: without its trailing-slash twin, and
    without the API root and the JSON 404 catch-all."""
    return [(path, regex, method, view) for path, regex, method, view in endpoints
            if path not in HIDDEN and (path == "/api/" or not path.endswith("/"))]


class OperatorTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Documents the operator token of the dead-letter endpoints."""

    target_class = "summaries.api.views.OperatorTokenAuthentication"
    name = "operatorToken"

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict[str, list[Any]]]:
        # The token, or nothing at all when JOBS_API_TOKEN is unset.
        return [{self.name: []}, {}]

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer",
                "description": "JOBS_API_TOKEN (needed only when it is set); "
                               "or a staff session (the admin's login)"}
