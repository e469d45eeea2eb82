"""Every API error is JSON: ``{"error": "<human message>", "code": "<machine code>"}``.

``exception_handler`` covers exceptions raised inside DRF views;
``JsonErrorsMiddleware`` covers what happens outside them under /api/
(unknown paths, CSRF, crashes in middleware), so no client ever gets an
HTML error page or a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from summaries.core.errors import (
    Busy,
    ErrorCode,
    InputTooLarge,
    InvalidInput,
    NotRetryable,
    UnsupportedDocument,
)
from summaries.observability import counters

logger = logging.getLogger(__name__)

RETRY_AFTER_UNAVAILABLE = "5"
# Valkey (cache, broker) or the database away: a 503 wherever it happens.
INFRASTRUCTURE_ERRORS = (RedisError, BrokerError, OperationalError, InterfaceError)
_render = JSONRenderer().render


def error_response(message: str, code: str, status_code: int,
                   headers: dict[str, str] | None = None) -> Response:
    return Response({"error": message, "code": code}, status=status_code, headers=headers)


def first_error(detail: Any, prefix: str = "") -> tuple[str, str]:
    """The first message and code in a (nested) DRF ValidationError detail."""
    if isinstance(detail, dict):
        name, value = next(iter(detail.items()))
        label = "" if name == "non_field_errors" else f"{prefix}{name}: "
        return first_error(value, label)
    if isinstance(detail, list) and detail:
        return first_error(detail[0], prefix)
    return f"{prefix}{detail}", getattr(detail, "code", None) or ErrorCode.INVALID


def refusal(exc: Exception) -> tuple[str, str, int] | None:
    """(message, code, HTTP status) when ``exc`` is a submit refusing one
    input (InvalidInput 400, InputTooLarge 413, UnsupportedDocument 415,
    Busy 503); None otherwise.
    A batch answers these per item; a single submit answers them whole."""
    if isinstance(exc, InvalidInput):
        return exc.message, exc.code, status.HTTP_400_BAD_REQUEST
    if isinstance(exc, InputTooLarge):
        return str(exc), ErrorCode.INPUT_TOO_LARGE, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    if isinstance(exc, UnsupportedDocument):
        return str(exc), ErrorCode.UNSUPPORTED, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    if isinstance(exc, Busy):
        return str(exc), ErrorCode.BUSY, status.HTTP_503_SERVICE_UNAVAILABLE
    return None


def count_rejected(exc: Exception) -> None:
    """A refused input (invalid, too large) counts as a rejected submission;
    Busy does not: that input is fine, and trying again soon helps."""
    if isinstance(exc, InvalidInput | InputTooLarge | UnsupportedDocument):
        counters.record_rejected()


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if (refused := refusal(exc)) is not None:
        message, code, status_code = refused
        count_rejected(exc)
        # Busy: the job for this input just ended; trying again soon helps.
        headers = {"Retry-After": "1"} if isinstance(exc, Busy) else None
        return error_response(message, code, status_code, headers)
    if isinstance(exc, NotRetryable):
        return error_response(str(exc), ErrorCode.NOT_FAILED, status.HTTP_409_CONFLICT)
    if isinstance(exc, RedisError | BrokerError):
        logger.warning("Valkey unavailable: %s", exc)
        return error_response("the cache and queue (Valkey) are unavailable; try again shortly",
                              ErrorCode.VALKEY_UNAVAILABLE, status.HTTP_503_SERVICE_UNAVAILABLE,
                              {"Retry-After": RETRY_AFTER_UNAVAILABLE})
    if isinstance(exc, OperationalError | InterfaceError):
        # Connection refused or lost, server shutting down, SQLite locked:
        # trying again later helps.
        logger.warning("database unavailable: %s", exc)
        return error_response("the database is unavailable; try again shortly",
                              ErrorCode.DATABASE_UNAVAILABLE, status.HTTP_503_SERVICE_UNAVAILABLE,
                              {"Retry-After": RETRY_AFTER_UNAVAILABLE})
    if isinstance(exc, DataError):
        # A value the database refuses (too long, out of range): the input's
        # fault, and the same input will always fail. Logged: validation
        # should have caught it first.
        logger.warning("database refused a value: %s", exc)
        return error_response("the input has a value the database cannot store",
                              ErrorCode.INVALID_INPUT, status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig):
        return error_response("the request body is too large", ErrorCode.INPUT_TOO_LARGE,
                              status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, SuspiciousOperation):
        logger.warning("suspicious request: %s", exc)
        return error_response("bad request", ErrorCode.BAD_REQUEST, status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, exceptions.ValidationError):
        message, code = first_error(exc.detail)
        return error_response(message, code, status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ParseError):
        return error_response(f"malformed JSON: {exc.detail}", ErrorCode.MALFORMED_JSON,
                              status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.APIException):
        headers = {}
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled) and wait is not None:
            headers["Retry-After"] = str(max(1, round(wait)))
        return error_response(str(exc.detail), str(exc.default_code), exc.status_code, headers)
    logger.exception("unhandled error in %s", context.get("view"))
    return error_response("internal error", ErrorCode.INTERNAL_ERROR,
                          status.HTTP_500_INTERNAL_SERVER_ERROR)


class JsonErrorsMiddleware:
    """Turn Django's own (HTML) error responses under /api/ into JSON."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        is_drf = getattr(response, "accepted_renderer", None) is not None
        if (request.path.startswith("/api/") and response.status_code >= 400 and not is_drf
                and "json" not in response.get("Content-Type", "")):
            code = {404: ErrorCode.NOT_FOUND, 403: ErrorCode.FORBIDDEN,
                    405: ErrorCode.METHOD_NOT_ALLOWED}.get(response.status_code, ErrorCode.ERROR)
            return JsonResponse({"error": response.reason_phrase.lower(), "code": code},
                                status=response.status_code)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """An exception outside a DRF view gets the answer it would get inside."""
        if not request.path.startswith("/api/"):
            return None
        return json_error(exception, request.path)


def json_error(exc: Exception, where: str) -> HttpResponse:
    """The answer a DRF view gives ``exc`` (same status, body and
    Retry-After), for code that runs outside DRF's exception handler:
    middleware, plain Django views."""
    answer = exception_handler(exc, {"view": where})
    headers = {"Retry-After": answer["Retry-After"]} if "Retry-After" in answer else None
    return HttpResponse(_render(answer.data), content_type="application/json",
                        status=answer.status_code, headers=headers)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500: what an exception raised outside the views' own
    handling (a middleware, the admin, a plain Django view) answers. Django
    calls it while handling that exception, so it is ``sys.exc_info()``'s.
    Valkey or the database away is the views' JSON 503 on every path, so a
    client can always tell "try again shortly" from a bug; anything else is
    Django's 500 page (JsonErrorsMiddleware makes it JSON under /api/)."""
    exc = sys.exc_info()[1]
    if isinstance(exc, INFRASTRUCTURE_ERRORS):
        return json_error(exc, request.path)
    return defaults.server_error(request)
