"""Request validation, and the output serializers that render every response
body (one definition of each shape: the views render with them, and the
OpenAPI schema is generated from them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from summaries.core import forms
from summaries.core.errors import ErrorCode, InvalidInput
from summaries.models import Job
from summaries.representations.bodies import (
    CACHE_STATUS,
    DeliveryResponse,
    JobResponse,
    ShapedResponse,
    error_code_field,
    is_completed,
)
from summaries.services import insights, watches
from summaries.services.submit_options import SubmitOptions


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers, lists and objects instead of str()-ing them."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """Only JSON true/false: "no" or 0 is a client bug worth reporting."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictIntegerField(serializers.IntegerField):
    """Only a JSON integer: "60", 60.0 or true is a client bug worth reporting."""

    def to_internal_value(self, data: Any) -> int:
        if type(data) is not int:
            self.fail("invalid")
        return int(super().to_internal_value(data))


MAX_AGE_HELP = ("Seconds. A cached summary older than this is not served: the submit "
                "refreshes it (202, \"refreshed\": true; X-Cache: MISS, or JOINED when a job for "
                "the input is already running). 0 always refreshes. Without it, the cache "
                "TTL rules.")
CALLBACK_HELP = ("An http(s) URL: once the job is completed or failed (at once for a cache "
                 "hit), its status body is POSTed there, signed (X-SmartCache-Signature: "
                 "t=<unix>,v1=<HMAC-SHA256 hex of \"<t>.<body>\"> with WEBHOOK_SECRET), with "
                 "the delivery id in X-SmartCache-Delivery; retried with backoff. Refused "
                 "(400) for addresses page fetches may not reach.")
RUN_AT_HELP = ("ISO 8601 date-time (UTC without an offset): the job waits (status "
               "\"scheduled\") and starts then; it is neither answered from the cache now nor "
               "joined by other submits. At most RUN_AT_MAX_DAYS (30) days ahead; more than a "
               "minute in the past is a 400, and so is max_age beside it (use refresh).")
STORE_HELP = ("false: the result is not cached, and the job keeps the input (text or URL, "
              "extracted page text, final URL) only until it is finished. A cached summary "
              "may still answer, and a job in flight for the same input is joined.")
PRIORITY_HELP = ("\"batch\": the item can wait (by default BATCH_LANE_DEFAULT_DEADLINE, a day): "
                 "it goes to the provider's batch API at half price, status \"processing\" "
                 "with stage \"batched\" until done. \"interactive\" (the default): at once.")
DEADLINE_HELP = ("When the item must be done: seconds from now (an integer) or an ISO 8601 "
                 "date-time; implies \"priority\": \"batch\". From BATCH_LANE_MIN_DEADLINE "
                 "(10 minutes) to BATCH_LANE_MAX_DEADLINE (7 days) ahead; anything else, or "
                 "beside run_at or \"priority\": \"interactive\", is a 400 invalid_deadline. "
                 "A provider batch not done in time is given up for a live call.")
NEAR_DUPLICATES_HELP = ("false: never answered with the summary of a near-duplicate (a text "
                        "nearly the same as one already summarised: X-Cache NEAR); the "
                        "input is summarised unless it is cached itself.")
LANGUAGE_HELP = ("The language to write the summary in: a code such as \"en\", \"de\" or "
                 "\"pt-BR\" (400 invalid_language otherwise). Without it, the input's own "
                 "language (detected). The offline summariser quotes the text, so it always "
                 "writes in the text's language.")


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": 1},
                                {"type": "string", "format": "date-time"}]})
class DeadlineField(serializers.Field):
    """Seconds from now (a JSON integer) or an ISO 8601 date-time (UTC without
    an offset), within the batch lane's bounds; a time."""

    default_error_messages = {ErrorCode.INVALID_DEADLINE: "{message}"}

    def to_internal_value(self, data: Any) -> datetime:
        now = timezone.now()
        if type(data) is int:
            # Clamped both ways (timedelta overflows past ~1e9 days); the bounds below refuse it.
            when = now + timedelta(seconds=max(-1, min(data, 10 * 365 * 86400)))
        elif isinstance(data, str) and (parsed := _parsed_time(data)) is not None:
            when = parsed if timezone.is_aware(parsed) else timezone.make_aware(
                parsed, UTC)
        else:
            self.fail(ErrorCode.INVALID_DEADLINE,
                      message="deadline must be seconds (an integer) or an ISO 8601 date-time")
        low = now + timedelta(seconds=settings.BATCH_LANE_MIN_DEADLINE)
        high = now + timedelta(seconds=settings.BATCH_LANE_MAX_DEADLINE)
        if not low - timedelta(seconds=1) <= when <= high + timedelta(seconds=1):
            self.fail(ErrorCode.INVALID_DEADLINE,
                      message=f"deadline must be {settings.BATCH_LANE_MIN_DEADLINE} to "
                              f"{settings.BATCH_LANE_MAX_DEADLINE} seconds from now")
        return when

    def to_representation(self, value: Any) -> Any:
        return value


def _parsed_time(text: str) -> datetime | None:
    try:
        return parse_datetime(text.strip())
    except ValueError:
        return None


STYLE_HELP = ("The summary's style: \"prose\" (sentences; the default) or \"bullets\" (3-6 key "
              "points, given in summary as one \"- \" line each). 400 invalid_choice otherwise.")
LENGTH_HELP = ("The summary's length: \"short\" (2-3 sentences; the default), \"medium\" (4-6 "
               "sentences) or \"long\" (up to a paragraph per major section, paragraphs "
               "separated by a blank line; for long documents). With bullets: how long each "
               "point is. 400 invalid_choice otherwise. A form other than prose/short is "
               "cached apart.")


class StrictChoiceField(serializers.ChoiceField):
    """A ChoiceField that takes only a JSON string, and names the choices when refusing."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or data not in self.choices:
            self.fail(ErrorCode.INVALID_CHOICE, input=data)
        return data


def _choice(choices: tuple[str, ...], default: str, help_text: str) -> StrictChoiceField:
    named = " or ".join(f'"{choice}"' for choice in choices)
    return StrictChoiceField(choices=list(choices), default=default, help_text=help_text,
                             error_messages={ErrorCode.INVALID_CHOICE: f"give {named}"})


class SubmitRequest(serializers.Serializer):
    input = StrictCharField(allow_blank=True, trim_whitespace=False,
                            help_text="Text to summarise, or an http(s) URL.")
    refresh = StrictBooleanField(default=False, help_text="Bypass the cache and summarise anew.")
    max_age = StrictIntegerField(required=False, min_value=0, max_value=2**31 - 1,
                                 help_text=MAX_AGE_HELP)
    store = StrictBooleanField(default=True, help_text=STORE_HELP)
    language = StrictCharField(required=False, help_text=LANGUAGE_HELP)
    callback_url = StrictCharField(required=False, max_length=4096, help_text=CALLBACK_HELP)
    run_at = serializers.DateTimeField(required=False, help_text=RUN_AT_HELP)
    near_duplicates = StrictBooleanField(default=True, help_text=NEAR_DUPLICATES_HELP)
    # A field named like Field.style (the browsable API's rendering hints):
    # DRF's metaclass takes declared fields off the class, so they never meet.
    style = _choice(forms.STYLES, forms.PROSE, STYLE_HELP)  # type: ignore[assignment]
    length = _choice(forms.LENGTHS, forms.SHORT, LENGTH_HELP)
    priority = serializers.ChoiceField(["interactive", "batch"], required=False,
                                       help_text=PRIORITY_HELP)
    deadline = DeadlineField(required=False, help_text=DEADLINE_HELP)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The batch lane's deadline ("priority": "batch" or "deadline"), as a time."""
        priority, deadline = attrs.get("priority"), attrs.get("deadline")
        if deadline is None and priority == "batch":
            deadline = timezone.now() + timedelta(seconds=settings.BATCH_LANE_DEFAULT_DEADLINE)
        if deadline is not None:
            if priority == "interactive" or attrs.get("run_at") is not None:
                raise serializers.ValidationError({"deadline": serializers.ErrorDetail(
                    "a deadline (the batch lane) goes neither with run_at nor with "
                    "\"priority\": \"interactive\"", code=ErrorCode.INVALID_DEADLINE)})
            attrs["deadline"] = deadline
        return attrs

    @staticmethod
    def plain(data: Any) -> tuple[str, bool] | None:
        """(input, refresh) of a plain well-formed body (ASCII text, no NUL),
        read without building a serializer (which costs more than the rest of
        a cache hit); None for anything else."""
        if (type(data) is dict and data.keys() <= {"input", "refresh"}
                and type(raw := data.get("input")) is str and raw.isascii() and "\x00" not in raw
                and type(refresh := data.get("refresh", False)) is bool):
            return raw, refresh
        return None

    @classmethod
    def parse(cls, data: Any) -> tuple[str, SubmitOptions]:
        """The input and options of services.submit.summary_request from a
        request body; raises ValidationError. Anything but a plain body goes
        through full validation, so every error is the serializer's."""
        if (plain := cls.plain(data)) is not None:
            return plain[0], SubmitOptions(refresh=plain[1])
        form = cls(data=data)
        form.is_valid(raise_exception=True)
        return form.validated_data["input"], cls.options(form.validated_data)

    @staticmethod
    def options(values: dict[str, Any]) -> SubmitOptions:
        """summary_request's options from validated data (the interactive lane's)."""
        return SubmitOptions(refresh=values["refresh"], max_age=values.get("max_age"),
                             store=values["store"], language=values.get("language"),
                             form=forms.Form(values["style"], values["length"]),
                             callback_url=values.get("callback_url", ""),
                             run_at=values.get("run_at"),
                             near_duplicates=values["near_duplicates"],
                             deadline=values.get("deadline"))


UPLOAD_FILE_HELP = ("The document: a PDF, DOCX, plain-text or Markdown file of at most "
                    "DOCUMENT_MAX_BYTES (413 over it; 415 for any other kind of file). Read by "
                    "a worker: a file it cannot read fails the job with its own code "
                    "(encrypted, no_text_layer, corrupt, too_many_pages, decompression_bomb, "
                    "timeout ...).")


class UploadRequest(serializers.Serializer):
    """A submit of a file (multipart/form-data): the options are SubmitRequest's,
    as form fields ("true"/"false", numbers and dates as text)."""

    file = serializers.FileField(max_length=None, allow_empty_file=False,
                                 help_text=UPLOAD_FILE_HELP)
    refresh = serializers.BooleanField(default=False, help_text="Bypass the cache.")
    max_age = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1,
                                       help_text=MAX_AGE_HELP)
    store = serializers.BooleanField(default=True, help_text=STORE_HELP)
    language = serializers.CharField(required=False, help_text=LANGUAGE_HELP)
    callback_url = serializers.CharField(required=False, max_length=4096,
                                         help_text=CALLBACK_HELP)
    run_at = serializers.DateTimeField(required=False, help_text=RUN_AT_HELP)
    near_duplicates = serializers.BooleanField(default=True, help_text=NEAR_DUPLICATES_HELP)
    style = _choice(forms.STYLES, forms.PROSE, STYLE_HELP)  # type: ignore[assignment]
    length = _choice(forms.LENGTHS, forms.SHORT, LENGTH_HELP)

    @classmethod
    def parse(cls, data: Any, files: Any) -> tuple[Any, SubmitOptions]:
        """The uploaded file and the submit's options from a multipart body;
        raises ValidationError (a missing or empty file, an unknown field, a
        bad option)."""
        fields = {name: data.get(name) for name in data if name not in files}
        unknown = sorted(set(fields) - set(cls._declared_fields))
        if unknown:
            raise InvalidInput(f"{unknown[0]}: unknown field for an upload (send the document "
                               "as 'file', the options as fields)", code=ErrorCode.BAD_REQUEST)
        form = cls(data={**fields, **({"file": files["file"]} if "file" in files else {})})
        form.is_valid(raise_exception=True)
        return form.validated_data["file"], SubmitRequest.options(form.validated_data)


class JobFilter(serializers.Serializer):
    status = serializers.ChoiceField(Job.Status.choices, required=False)
    kind = serializers.ChoiceField(Job.Kind.choices, required=False)
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)

    def to_internal_value(self, data: Any) -> Any:
        values = super().to_internal_value(data)
        return {key: values[key] for key in ("status", "kind") if key in values}


class JobPage(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = JobResponse(many=True)


class DeliveryPage(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = DeliveryResponse(many=True)


class CapacityResponse(serializers.Serializer):
    """Little's law, L = λW, and the workers it takes."""

    window_minutes = serializers.IntegerField(help_text="λ is measured over this window.")
    arrival_rate_per_s = serializers.FloatField(help_text="λ: jobs created per second.")
    mean_processing_time_s = serializers.FloatField(
        help_text="W: mean processing time of the recent completed jobs.")
    jobs_in_service = serializers.FloatField(help_text="L = λW: jobs being processed at once.")
    target_utilization = serializers.FloatField(help_text="The share of threads kept busy.")
    threads_per_process = serializers.IntegerField(help_text="WORKER_CONCURRENCY.")
    recommended_threads = serializers.IntegerField(help_text="L / target_utilization, up.")
    recommended_processes = serializers.IntegerField(
        help_text="Worker processes of threads_per_process threads.")


class SpentResponse(serializers.Serializer):
    calls = serializers.IntegerField(help_text="AI calls answered (a batch is one call).")
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    estimated_tokens = serializers.IntegerField(
        help_text="Of those, estimated: the provider reported none for their calls.")
    usd = serializers.FloatField(help_text="What the jobs' AI calls cost, in USD.")


class SavedResponse(serializers.Serializer):
    calls = serializers.IntegerField(help_text="AI calls made unnecessary.")
    tokens = serializers.IntegerField(help_text="Their tokens.")
    usd = serializers.FloatField(help_text="USD saved.")


class AnalyticsResponse(serializers.Serializer):
    total_requests = serializers.IntegerField()
    cache_hits = serializers.IntegerField()
    cache_misses = serializers.IntegerField()
    failed_jobs = serializers.IntegerField()
    joined = serializers.IntegerField(help_text="Cache misses that joined a job in flight.")
    known_failures = serializers.IntegerField(
        help_text="Submits of a URL that failed moments ago, answered with that failure.")
    near_duplicates = serializers.IntegerField(
        help_text="Submits of a text answered at once with a near-duplicate's summary "
                  "(X-Cache NEAR).")
    near_duplicate_jobs = serializers.IntegerField(
        help_text="Jobs completed with a near-duplicate's summary, no AI call: the NEAR "
                  "submits' and URL jobs whose article was one.")
    completed_jobs = serializers.IntegerField()
    queue_size = serializers.IntegerField(help_text="Jobs waiting for a worker.")
    avg_processing_time_ms = serializers.FloatField()
    failure_rate = serializers.FloatField(help_text="failed / (completed + failed).")
    hit_ratio = serializers.FloatField(help_text="cache_hits / (cache_hits + cache_misses).")
    p50_processing_time_ms = serializers.FloatField(
        help_text="Median processing time of the last 1000 completed jobs.")
    p95_processing_time_ms = serializers.FloatField(
        help_text="95th percentile processing time of the last 1000 completed jobs.")
    ai_spent = SpentResponse(help_text="The AI calls made and what they cost.")
    ai_saved = serializers.DictField(
        child=SavedResponse(), help_text="By cause: cache (hits), dedup (joins of a job in "
        "flight), near (near-duplicates), batch (the batch API's discount, money only).")
    ai_calls_saved = serializers.IntegerField(
        help_text="AI calls made unnecessary, every cause together.")
    ai_tokens_saved = serializers.IntegerField(
        help_text="Their tokens (input and output): what the summaries served took when made.")
    ai_cost_saved = serializers.FloatField(
        help_text="USD saved, every cause together (AI_PRICE_INPUT_PER_MTOK / "
                  "AI_PRICE_OUTPUT_PER_MTOK).")
    ai_saved_share = serializers.FloatField(
        help_text="ai_cost_saved / (spent + saved): the share of what the same work would "
                  "have cost without SmartCache.")
    capacity = CapacityResponse(help_text="Recommended worker threads (Little's law).")


class InsightsFilter(serializers.Serializer):
    hours = serializers.IntegerField(required=False, default=insights.DEFAULT_HOURS, min_value=1,
                                     max_value=insights.MAX_HOURS,
                                     help_text="Failures of the last this many hours.")


class FailureGroupResponse(serializers.Serializer):
    code = serializers.CharField(help_text="The error code the jobs failed with.")
    count = serializers.IntegerField(help_text="Jobs that failed with it in the window.")
    last_failed_at = serializers.DateTimeField()
    action = serializers.CharField(help_text="What to do about it.")
    example_job_id = serializers.UUIDField(help_text="The newest such job.")
    example_error = serializers.CharField(help_text="Its error message.")
    example_url = serializers.CharField(help_text="Its URL (empty for a text).")


class InsightsResponse(serializers.Serializer):
    hours = serializers.IntegerField()
    total_failures = serializers.IntegerField()
    groups = FailureGroupResponse(many=True, help_text="Most frequent code first.")


class HealthResponse(serializers.Serializer):
    status = serializers.ChoiceField(["ok", "unavailable"])
    database = serializers.CharField()
    valkey = serializers.CharField()


class ErrorResponse(serializers.Serializer):
    error = serializers.CharField(help_text="What went wrong, for a person.")
    code = error_code_field(help_text="What went wrong, for a program.")


# --- Bulk submit --------------------------------------------------------------

MAX_BATCH = 100

BATCH_ITEM_SCHEMA = {"oneOf": [
    {"type": "string", "description": "Text to summarise, or an http(s) URL."},
    {"type": "object", "required": ["input"], "properties": {
        "input": {"type": "string", "description": "Text to summarise, or an http(s) URL."},
        "refresh": {"type": "boolean", "default": False,
                    "description": "Bypass the cache and summarise anew."},
        "max_age": {"type": "integer", "minimum": 0, "description": MAX_AGE_HELP},
        "store": {"type": "boolean", "default": True, "description": STORE_HELP},
        "language": {"type": "string", "description": LANGUAGE_HELP},
        "callback_url": {"type": "string", "description": CALLBACK_HELP},
        "run_at": {"type": "string", "format": "date-time", "description": RUN_AT_HELP},
        "near_duplicates": {"type": "boolean", "default": True,
                            "description": NEAR_DUPLICATES_HELP},
        "style": {"type": "string", "enum": list(forms.STYLES), "default": forms.PROSE,
                  "description": STYLE_HELP},
        "length": {"type": "string", "enum": list(forms.LENGTHS), "default": forms.SHORT,
                   "description": LENGTH_HELP},
        "priority": {"type": "string", "enum": ["interactive", "batch"],
                     "description": PRIORITY_HELP},
        "deadline": {"oneOf": [{"type": "integer", "minimum": 1},
                               {"type": "string", "format": "date-time"}],
                     "description": DEADLINE_HELP}}},
]}


@extend_schema_field(BATCH_ITEM_SCHEMA)
class BatchItemField(serializers.Field):
    """One batch item, kept as given: each is validated on its own (as a
    SubmitRequest), so a bad item is refused alone, not the whole batch."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null=True, **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class BatchRequest(serializers.Serializer):
    inputs = serializers.ListField(
        child=BatchItemField(), min_length=1, max_length=MAX_BATCH,
        help_text=f"1 to {MAX_BATCH} items: a string, or {{\"input\": str, \"refresh\": bool, "
                  f"\"max_age\": int, \"store\": bool, \"callback_url\": str, "
                  f"\"run_at\": date-time, \"style\": str, \"length\": str, "
                  f"\"near_duplicates\": bool, \"priority\": \"batch\", \"deadline\": "
                  f"seconds or date-time}}.")


def _answered(item: Any) -> bool:
    return item.submission is not None


class BatchItemResponse(ShapedResponse):
    """One item's answer, in the batch's order. An answered item has the
    single submit's body, plus ``cache`` (what X-Cache would say) and, while
    its job runs, ``status_url``. A refused item has only ``error``, ``code``
    and ``http_status``."""

    job_id = serializers.UUIDField(source="submission.job_id", required=False)
    status = serializers.ChoiceField(Job.Status.choices, source="submission.status",
                                     required=False)
    cached = serializers.BooleanField(source="submission.cached", required=False)
    cache_key = serializers.CharField(source="submission.cache_key", required=False)
    cache = serializers.ChoiceField(sorted(CACHE_STATUS.values()), required=False,
                                    help_text="What X-Cache says for a single submit.")
    status_url = serializers.URLField(required=False, help_text="While the job runs.")
    summary = serializers.CharField(source="submission.summary", required=False,
                                    help_text="When completed.")
    tags = serializers.ListField(child=serializers.CharField(), source="submission.tags",
                                 required=False, help_text="When completed.")
    refreshed = serializers.BooleanField(source="submission.refreshed", required=False,
                                         help_text="Only when true: as for a single submit.")
    near_duplicate_of = serializers.UUIDField(
        source="submission.near_duplicate_of", required=False,
        help_text="The job whose summary this item shares (cache NEAR, or a HIT of a job "
                  "that shared one; cache JOINED: the job it joined while that was made).")
    error = serializers.CharField(required=False,
                                  help_text="When the item was refused or its job failed.")
    code = error_code_field(required=False,
                            help_text="When the item was refused or its job failed.")
    http_status = serializers.IntegerField(
        help_text="The status a single submit of this item would have got: "
                  "200 answered, 202 job queued or running, 400/413/503 refused.")

    shown_when = {
        **{name: _answered for name in ("job_id", "status", "cached", "cache_key", "cache")},
        "status_url": lambda item: bool(item.status_url),
        "summary": lambda item: _answered(item) and is_completed(item.submission),
        "tags": lambda item: _answered(item) and is_completed(item.submission),
        "refreshed": lambda item: _answered(item) and item.submission.refreshed,
        "near_duplicate_of": lambda item: _answered(item)
        and bool(item.submission.near_duplicate_of),
        "error": lambda item: bool(item.error),
        "code": lambda item: bool(item.error),
    }


class BatchResponse(serializers.Serializer):
    results = BatchItemResponse(many=True)


# --- Cache control (operators) ------------------------------------------------

class PurgeRequest(serializers.Serializer):
    input = StrictCharField(trim_whitespace=False,
                            help_text="The text or URL as it was submitted: normalised and "
                                      "keyed exactly as a submit is.")


class PurgeResponse(serializers.Serializer):
    cache_key = serializers.CharField(help_text="The purged key.")
    deleted = serializers.BooleanField(help_text="A cached summary was there and is gone.")
    jobs_purged = serializers.IntegerField(
        source="jobs", help_text="Completed jobs of this input that will no longer "
                                 "re-cache their summary.")


# --- Watched URLs (operators) ---------------------------------------------------

EVERY_SCHEMA = {"oneOf": [
    {"type": "integer", "minimum": watches.MIN_EVERY, "maximum": watches.MAX_EVERY,
     "description": "Seconds."},
    {"type": "string", "pattern": "^[1-9][0-9]{0,6}[mhd]$",
     "description": "Minutes, hours or days: \"15m\", \"1h\", \"1d\"."},
]}


@extend_schema_field(EVERY_SCHEMA)
class EveryField(serializers.Field):
    """Kept as given: services.watches.parse_every reads it."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class WatchRequest(serializers.Serializer):
    url = StrictCharField(max_length=4096, help_text="The http(s) page to watch.")
    every = EveryField(help_text="How often to check: at least a minute.")
    callback_url = StrictCharField(required=False, max_length=4096,
                                   help_text="Called (as a submit's callback_url) with the "
                                             "new job's status whenever the page changed.")
    style = _choice(forms.STYLES, forms.PROSE, STYLE_HELP)  # type: ignore[assignment]
    length = _choice(forms.LENGTHS, forms.SHORT, LENGTH_HELP)


def _watch_summary(watch: Any) -> bool:
    return watch.last_job is not None and watch.last_job.status == Job.Status.COMPLETED


class WatchResponse(ShapedResponse):
    watch_id = serializers.UUIDField(source="id")
    url = serializers.CharField(help_text="The canonical URL watched.")
    every = serializers.IntegerField(source="every_seconds", help_text="Seconds between checks.")
    style = serializers.ChoiceField(list(forms.STYLES), help_text="Its summaries' style.")  # type: ignore[assignment]
    length = serializers.ChoiceField(list(forms.LENGTHS), help_text="Its summaries' length.")
    callback_url = serializers.CharField(required=False)
    created_at = serializers.DateTimeField()
    next_run_at = serializers.DateTimeField(help_text="When the next check is due.")
    last_checked_at = serializers.DateTimeField(required=False)
    last_changed_at = serializers.DateTimeField(
        required=False, help_text="When a check last found new content.")
    last_job_id = serializers.UUIDField(required=False,
                                        help_text="The job that summarised the last change.")
    last_job_status = serializers.ChoiceField(Job.Status.choices, source="last_job.status",
                                              required=False)
    summary = serializers.CharField(source="last_job.summary", required=False,
                                    help_text="The last change's summary, once completed.")
    tags = serializers.ListField(child=serializers.CharField(), source="last_job.tags",
                                 required=False)
    last_error = serializers.CharField(required=False, help_text="Why the last check failed.")
    last_error_code = error_code_field(required=False)
    checks = serializers.IntegerField(help_text="Checks run.")
    changes = serializers.IntegerField(help_text="Checks that found new content.")

    shown_when = {
        "callback_url": lambda w: bool(w.callback_url),
        "last_checked_at": lambda w: w.last_checked_at is not None,
        "last_changed_at": lambda w: w.last_changed_at is not None,
        "last_job_id": lambda w: w.last_job_id is not None,
        "last_job_status": lambda w: w.last_job is not None,
        "summary": _watch_summary, "tags": _watch_summary,
        "last_error": lambda w: bool(w.last_error),
        "last_error_code": lambda w: bool(w.last_error_code),
    }


class WatchPage(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = WatchResponse(many=True)
