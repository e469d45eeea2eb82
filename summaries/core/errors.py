"""The app's exceptions and error codes, in one place. Each exception carries
what its handler needs: the API turns the input and capacity errors into JSON
errors (summaries/api/errors.py); the worker turns JobError into a failed or
retried job (summaries/services/jobs.py, summaries/tasks.py)."""

from __future__ import annotations

import random
from enum import StrEnum

from summaries.core.tokens import Usage


class ErrorCode(StrEnum):
    """Every machine ``code`` a client may read: in an API error body
    (``{"error", "code"}``), on a failed job (its ``code``, ``error_code`` in
    the table), on a watch (``last_error_code``). The OpenAPI schema lists
    them from here (summaries/api/serializers.py); tests/test_vocabularies.py
    checks that the code raises no other."""

    # A job's failure (JobError): fetching the page ...
    BLOCKED_DESTINATION = "blocked_destination"  # the host resolves to a forbidden address
    BLOCKED_URL = "blocked_url"  # a forbidden address, credentials or zone in the URL
    CONTENT_UNAVAILABLE = "content_unavailable"  # the page holds no article to summarise
    FETCH_FAILED = "fetch_failed"
    FETCH_TIMEOUT = "fetch_timeout"
    HTTP_ERROR = "http_error"  # the site answered 4xx/5xx
    TOO_LARGE = "too_large"  # the page is over FETCH_MAX_BYTES
    TOO_MANY_REDIRECTS = "too_many_redirects"
    UNSUPPORTED_CONTENT = "unsupported_content"  # not HTML, or an encoding we cannot undo
    # ... reading a document (summaries/documents: a PDF, DOCX or text, linked or uploaded) ...
    CORRUPT = "corrupt"  # truncated or invalid
    DECOMPRESSION_BOMB = "decompression_bomb"  # compressed parts inflate past the bound
    ENCRYPTED = "encrypted"  # password-protected
    NO_TEXT_LAYER = "no_text_layer"  # a scan or pictures only (no OCR)
    TIMEOUT = "timeout"  # parsing did not finish by the attempt's deadline
    TOO_MANY_PAGES = "too_many_pages"  # over DOCUMENT_MAX_PAGES
    UNSUPPORTED = "unsupported"  # not a PDF, DOCX, text or Markdown (also an upload's 415)
    DOCUMENT_GONE = "document_gone"  # an upload's bytes are no longer kept (retry: upload again)
    # ... summarising it ...
    AI_BAD_OUTPUT = "ai_bad_output"  # an answer outside the contract
    AI_BLOCKED = "ai_blocked"  # the provider's safety filters
    AI_QUOTA = "ai_quota"  # the shared quota is used up (while waiting, not final)
    AI_RATE_LIMITED = "ai_rate_limited"
    AI_REJECTED = "ai_rejected"  # a 4xx: the key, the model, the request
    AI_TIMEOUT = "ai_timeout"
    AI_UNAVAILABLE = "ai_unavailable"
    INPUT_TOO_SHORT = "input_too_short"  # also refused at once by a submit (400)
    # ... and the job itself.
    DATABASE_UNAVAILABLE = "database_unavailable"  # also an API 503
    INTERNAL_ERROR = "internal_error"  # a bug (also the API's 500)
    JOB_ERROR = "job_error"  # JobError's default: a failure with no code of its own
    JOB_NOT_STARTED = "job_not_started"  # a watch's change whose job could not start
    JOB_TIMEOUT = "job_timeout"
    SUPERSEDED = "superseded"  # old rows: a newer job of the input replaced it (migration 0002)
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    UNSTORABLE_RESULT = "unstorable_result"
    VALKEY_UNAVAILABLE = "valkey_unavailable"  # also an API 503
    WEBHOOK_BUSY = "webhook_busy"  # a delivery waits for a free thread
    WEBHOOK_FAILED = "webhook_failed"  # a delivery's POST failed (retried)

    # The API's refusals (400, 404, 409, 413, 503 ...).
    BAD_REQUEST = "bad_request"
    BLOCKED_CALLBACK_URL = "blocked_callback_url"
    BUSY = "busy"
    EMPTY_INPUT = "empty_input"
    ERROR = "error"  # another error status Django answered under /api/
    FORBIDDEN = "forbidden"
    INPUT_TOO_LARGE = "input_too_large"
    INVALID_CACHE_KEY = "invalid_cache_key"
    INVALID_CALLBACK_URL = "invalid_callback_url"
    INVALID_DEADLINE = "invalid_deadline"
    INVALID_EVERY = "invalid_every"
    INVALID_INPUT = "invalid_input"
    INVALID_LANGUAGE = "invalid_language"
    INVALID_LAST_EVENT_ID = "invalid_last_event_id"
    INVALID_RUN_AT = "invalid_run_at"
    INVALID_URL = "invalid_url"
    MALFORMED_JSON = "malformed_json"
    NOT_FAILED = "not_failed"  # only a failed job can be retried (409)
    NOT_FOUND = "not_found"
    UNHEALTHY = "unhealthy"  # /api/health's 503

    # Passed through from the API framework (DRF): its exceptions' codes ...
    AUTHENTICATION_FAILED = "authentication_failed"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    NOT_AUTHENTICATED = "not_authenticated"
    PARSE_ERROR = "parse_error"
    PERMISSION_DENIED = "permission_denied"
    THROTTLED = "throttled"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    # ... and its fields' validation codes (the first error of a request body
    # or query: "max_age: Ensure this value is greater than ...", min_value).
    BLANK = "blank"
    DATE = "date"
    EMPTY = "empty"
    INVALID = "invalid"
    INVALID_CHOICE = "invalid_choice"
    MAKE_AWARE = "make_aware"
    MAX_LENGTH = "max_length"
    MAX_STRING_LENGTH = "max_string_length"
    MAX_VALUE = "max_value"
    MIN_LENGTH = "min_length"
    MIN_VALUE = "min_value"
    NO_NAME = "no_name"  # an upload's file without a name
    NOT_A_LIST = "not_a_list"
    NULL = "null"
    NULL_CHARACTERS_NOT_ALLOWED = "null_characters_not_allowed"
    OVERFLOW = "overflow"
    REQUIRED = "required"
    SURROGATE_CHARACTERS_NOT_ALLOWED = "surrogate_characters_not_allowed"


class JobError(Exception):
    """A failure while processing a job.

    ``code`` is the machine code shown to clients (``fetch_timeout``,
    ``ai_unavailable`` ...). ``transient`` says whether trying again later may
    succeed (timeouts, 429, 5xx); permanent errors fail the job at once.
    """

    def __init__(self, message: str, *, code: ErrorCode = ErrorCode.JOB_ERROR,
                 transient: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.transient = transient
        # The provider said when to come back (a 429's Retry-After/RetryInfo).
        self.retry_after = retry_after
        # The AI tokens the failed call(s) used (a broken or blocked answer is
        # paid for too); None when no AI call answered.
        self.usage: Usage | None = None

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}({self.message!r}, code={str(self.code)!r}, transient={self.transient})"


def backoff(attempt: int, *, base: float, cap: float) -> float:
    """Seconds before try ``attempt + 1``: exponential (``base`` x 2^(attempt-1)),
    capped at ``cap``, jittered down to half so retries do not come back at once."""
    return float(min(cap, base * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0))


class RetryLater(Exception):
    """A transient failure of one attempt: the task runs again after ``delay`` seconds."""

    def __init__(self, error: JobError, *, delay: float) -> None:
        super().__init__(error.message)
        self.error = error
        self.delay = delay


class JobFailed(Exception):
    """The job failed for good and its row says so: raised out of the task so
    Celery records FAILURE (Flower counts it, and sends task-failed). An
    expected outcome (the task's ``throws``): acked, logged in one line."""


class QuotaWait(Exception):
    """The shared AI quota is used up for ``delay`` seconds: the job steps
    aside (rescheduled, its attempt not counted) instead of waiting."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"AI quota used up for {delay:.1f}s")
        self.delay = delay


class InvalidInput(ValueError):
    """The input cannot be summarised (400); ``code`` is the API error code."""

    def __init__(self, message: str, *, code: ErrorCode) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class InputTooLarge(Exception):
    """The input is over MAX_INPUT_CHARS, or an upload over DOCUMENT_MAX_BYTES (413)."""


class UnsupportedDocument(Exception):
    """An uploaded file that is not a document we read (415, code ``unsupported``)."""


class Busy(Exception):
    """Could not settle on a job for this input right now; try again (503)."""


class NotRetryable(Exception):
    """Only failed jobs can be retried (409); ``status`` is the job's."""

    def __init__(self, status: str, reason: str = "") -> None:
        super().__init__(reason or f"job is {status}; only failed jobs can be retried")
        self.status = status
