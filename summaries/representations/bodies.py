"""The bodies of a job, a submit's answer and a webhook delivery: rendered by
the API (summaries/api) and POSTed by webhooks (services/webhooks.py), so
each shape is defined once, here, below both."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from summaries.core import outcomes
from summaries.core.errors import ErrorCode
from summaries.models import Job, WebhookDelivery

# The schema's ErrorCode enum (SPECTACULAR_SETTINGS' ENUM_NAME_OVERRIDES).
ERROR_CODES = [code.value for code in ErrorCode]


def error_code_field(**kwargs: Any) -> serializers.ChoiceField:
    """A machine error code: the OpenAPI schema lists ErrorCode's members
    (as its ErrorCode enum). Rendered as stored."""
    return serializers.ChoiceField(ERROR_CODES, **kwargs)


SUMMARY_HELP = ("When completed. In the form asked (style, length on submit): prose, a long "
                "one in paragraphs separated by a blank line; bullets as one \"- \" line per "
                "key point.")


class ShapedResponse(serializers.Serializer):
    """An output serializer whose optional fields appear only when meaningful.

    ``shown_when`` maps a field name to a test of the instance; the field is
    left out of the body (not rendered as null) when its test is false.
    Those fields are ``required=False``, so the OpenAPI schema says so too.
    """

    shown_when: ClassVar[dict[str, Callable[[Any], bool]]] = {}

    @classmethod
    def render(cls, instance: Any) -> dict[str, Any]:
        """The body for ``instance``, as ``cls(instance).data`` would give it,
        without building the fields anew: DRF deep-copies every declared
        field for each serializer instance (about 200 µs, more than the rest
        of a cache hit). Rendering keeps no state, so one prototype serves
        every request and thread."""
        return _prototype(cls).to_representation(instance)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        body: dict[str, Any] = super().to_representation(instance)
        for name, shown in self.shown_when.items():
            if not shown(instance):
                body.pop(name, None)
        return body


@functools.cache
def _prototype(cls: type[ShapedResponse]) -> ShapedResponse:
    serializer = cls()
    _ = serializer.fields  # bound once, here, not by concurrent first renders
    return serializer


def is_completed(item: Any) -> bool:
    return bool(item.status == Job.Status.COMPLETED)


def is_failed(item: Any) -> bool:
    return bool(item.status == Job.Status.FAILED)


def _url_job(job: Job) -> bool:
    return job.kind == Job.Kind.URL


def _fetched(job: Job) -> bool:
    """A URL job's page was fetched, or an uploaded document was read."""
    if job.kind == Job.Kind.DOCUMENT:
        return job.extracted_chars is not None
    return _url_job(job) and bool(job.final_url)


class PartsResponse(serializers.Serializer):
    done = serializers.IntegerField(source="parts_done")
    total = serializers.IntegerField(source="parts_total")


# X-Cache (and a batch item's "cache") for each submit outcome. A known
# failure is FAILED, not HIT: the answer came from the failure cache, but it
# is no summary.
CACHE_STATUS: dict[str, str] = {outcomes.HIT: "HIT", outcomes.MISS: "MISS",
                                 outcomes.JOINED: "JOINED", outcomes.NEAR: "NEAR",
                                 outcomes.KNOWN_FAILURE: "FAILED"}


class SubmitResponse(ShapedResponse):
    """POST /api/submit's body (rendered from a services.submit.Submission)."""

    job_id = serializers.UUIDField()
    status = serializers.ChoiceField(Job.Status.choices)
    cached = serializers.BooleanField(
        help_text="Answered at once from the cache (or a fetch that failed moments ago).")
    cache_key = serializers.CharField(
        help_text="The input's cache key (also in the X-Cache-Key header).")
    summary = serializers.CharField(required=False, help_text=SUMMARY_HELP)
    tags = serializers.ListField(child=serializers.CharField(), required=False,
                                 help_text="When completed.")
    error = serializers.CharField(required=False, help_text="When failed.")
    code = error_code_field(required=False, help_text="When failed.")
    refreshed = serializers.BooleanField(
        required=False, help_text="Only when true: the cached summary was older than max_age, "
                                  "and this job makes it anew.")
    near_duplicate_of = serializers.UUIDField(
        required=False, help_text="The job whose summary this answer shares: the input is a "
                                  "near-duplicate of its input (X-Cache: NEAR; or a HIT of a "
                                  "job that shared one; or, X-Cache: JOINED, the job this "
                                  "near-duplicate joined while it waited in the batch lane).")

    shown_when = {"summary": is_completed, "tags": is_completed,
                  "error": is_failed, "code": is_failed, "refreshed": lambda sub: sub.refreshed,
                  "near_duplicate_of": lambda sub: bool(sub.near_duplicate_of)}


class DeliveryResponse(ShapedResponse):
    """One webhook delivery of a job (operators: GET /api/jobs/<id>/callbacks).
    Its URL is one client's (or a watch's), often with a token in it: never
    part of a job's public body, which everyone who asked for the input reads."""

    delivery_id = serializers.UUIDField(source="id", help_text="X-SmartCache-Delivery: the "
                                        "same on every attempt; receivers dedupe on it.")
    url = serializers.CharField()
    status = serializers.ChoiceField(WebhookDelivery.Status.choices,
                                     help_text="waiting (for the job), pending, sending, "
                                               "delivered, failed (for good).")
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(required=False,
                                                help_text="The receiver's last HTTP status.")
    last_error = serializers.CharField(required=False, help_text="Why the last attempt failed.")
    next_attempt_at = serializers.DateTimeField(required=False, help_text="While pending.")
    delivered_at = serializers.DateTimeField(required=False)
    watch_id = serializers.UUIDField(required=False,
                                     help_text="The watch whose change made the job.")
    created_at = serializers.DateTimeField()

    shown_when = {
        "last_status_code": lambda d: d.last_status_code is not None,
        "last_error": lambda d: bool(d.last_error),
        "next_attempt_at": lambda d: d.status == WebhookDelivery.Status.PENDING
        and d.next_attempt_at is not None,
        "delivered_at": lambda d: d.delivered_at is not None,
        "watch_id": lambda d: d.watch_id is not None,
    }


# The two documented shapes of a submit's answer (the OpenAPI schema's 200
# and 202). The view renders both with SubmitResponse, whose shown_when
# already gives each its shape; these only narrow what the schema promises.
class SubmitAnsweredResponse(SubmitResponse):
    """200: answered at once. A cache hit (X-Cache: HIT) has the summary and
    tags; a URL that failed to fetch moments ago (FAILED) has error and code."""

    status = serializers.ChoiceField([Job.Status.COMPLETED.value, Job.Status.FAILED.value])


@extend_schema_serializer(exclude_fields=("summary", "tags", "error", "code"))
class SubmitAcceptedResponse(SubmitResponse):
    """202: a job for this input is queued or running (X-Cache: MISS when
    this submit created it, JOINED when it joined it); poll the Location."""

    status = serializers.ChoiceField([Job.Status.PENDING.value, Job.Status.PROCESSING.value])
    cached = serializers.BooleanField(help_text="Always false: the summary is not ready yet.")


class JobCostResponse(serializers.Serializer):
    """What a job's AI calls cost (services/costs.py)."""

    input_tokens = serializers.IntegerField(help_text="AI input tokens, every attempt's "
                                                      "(a batched call: this job's share).")
    output_tokens = serializers.IntegerField(help_text="AI output tokens.")
    estimated = serializers.BooleanField(
        source="tokens_estimated",
        help_text="Some tokens are estimated (the provider reported none); else all are the "
                  "provider's reported counts.")
    usd = serializers.FloatField(
        source="cost", help_text="The tokens at the configured prices (AI_PRICE_INPUT_PER_MTOK, "
                                 "AI_PRICE_OUTPUT_PER_MTOK; the batch discount through the "
                                 "provider's batch API). 0: no AI call (a cache hit, the "
                                 "offline summariser).")


def _costed(job: Job) -> bool:
    return bool(is_completed(job) or is_failed(job) or job.input_tokens or job.output_tokens)
def _in_provider_batch(job: Any) -> bool:
    """Shown while the job waits in a provider batch, and once one completed it."""
    if job.provider_batch_id is None or not (job.stage == Job.Stage.BATCHED or job.via_batch):
        return False
    return bool(job.provider_batch.remote_id)


class JobResponse(ShapedResponse):
    """A job's status (GET /api/status/<id>, its events, webhooks, the
    operator endpoints). A job is shared by everyone who submitted its input
    (dedup: HIT, JOINED), so its body shows nothing of any one client's:
    no callback URLs, no delivery log (operators read those at
    /api/jobs/<id>/callbacks)."""

    job_id = serializers.UUIDField(source="id")
    status = serializers.ChoiceField(Job.Status.choices)
    kind = serializers.ChoiceField(Job.Kind.choices)
    stage = serializers.ChoiceField(Job.Stage.choices, allow_blank=True,
                                    help_text="Progress: queued, fetching, extracting, "
                                              "summarizing, retrying, done, failed ...")
    cached = serializers.BooleanField()
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    summary = serializers.CharField(required=False, help_text=SUMMARY_HELP)
    tags = serializers.ListField(child=serializers.CharField(), required=False,
                                 help_text="When completed.")
    duration_ms = serializers.IntegerField(required=False)
    completed_at = serializers.DateTimeField(required=False)
    error = serializers.CharField(required=False, help_text="When failed.")
    code = error_code_field(source="error_code", required=False, help_text="When failed.")
    last_error = serializers.CharField(source="error", required=False,
                                       help_text="Why the last attempt failed, while retrying.")
    url = serializers.CharField(required=False, help_text="URL jobs: the canonical URL.")
    final_url = serializers.CharField(required=False,
                                      help_text="URL jobs, once fetched: after redirects.")
    title = serializers.CharField(required=False)
    extracted_chars = serializers.IntegerField(required=False)
    run_at = serializers.DateTimeField(required=False,
                                       help_text="A scheduled job (run_at on submit) starts then.")
    near_duplicate_of = serializers.UUIDField(
        required=False, help_text="The job whose summary this one shares, without an AI call: "
                                  "its input (a text, or a page's article) was a near-duplicate "
                                  "of that job's.")
    # The batch lane (services/batch_lane.py).
    deadline = serializers.DateTimeField(
        required=False, help_text="A batch-lane job (\"priority\": \"batch\" or a deadline) "
                                  "is done by then.")
    provider_batch_id = serializers.CharField(
        source="provider_batch.remote_id", required=False,
        help_text="The provider's batch job carrying it (stage batched), or that completed it.")
    via_batch = serializers.BooleanField(
        required=False, help_text="Only when true: completed from the provider's batch API "
                                  "(half price), not by a live call.")
    # Progress (summaries/services/progress.py), on /api/status and its events.
    parts = PartsResponse(source="*", required=False,
                          help_text="A long document summarised in parts (map-reduce): how "
                                    "many parts have their summary, of how many.")
    queue_position = serializers.IntegerField(
        required=False, help_text="While pending: 1 = next in its lane (1 + the pending jobs "
                                  "of the same lane created before it).")
    eta_seconds = serializers.IntegerField(
        required=False, help_text="While pending or processing: estimated seconds until it "
                                  "finishes, from the recent mean processing time W and the "
                                  "worker threads online C: pending W*ceil(position/C), "
                                  "processing W minus the time spent. Absent when unknown.")
    cost = JobCostResponse(source="*", required=False,
                           help_text="Once finished (or once an attempt was paid): what its "
                                     "AI calls cost.")

    shown_when = {
        "summary": is_completed, "tags": is_completed,
        "error": is_failed, "code": is_failed,
        "last_error": lambda job: not is_failed(job) and bool(job.error),
        "completed_at": lambda job: job.completed_at is not None,
        "duration_ms": lambda job: job.duration_ms is not None,
        "url": _url_job, "final_url": lambda job: _url_job(job) and _fetched(job),
        "title": _fetched, "extracted_chars": _fetched,
        "run_at": lambda job: job.run_at is not None,
        "parts": lambda job: getattr(job, "parts_total", None) is not None,
        "near_duplicate_of": lambda job: job.near_duplicate_of is not None,
        "deadline": lambda job: job.deadline is not None,
        "provider_batch_id": _in_provider_batch,
        "via_batch": lambda job: bool(job.via_batch),
        "queue_position": lambda job: getattr(job, "queue_position", None) is not None,
        "eta_seconds": lambda job: getattr(job, "eta_seconds", None) is not None,
        "cost": _costed,
    }


class JobWebhookBody(JobResponse):
    """What a webhook delivery POSTs: the job's status body, which names no
    receiver (every receiver of the job gets the same body)."""
