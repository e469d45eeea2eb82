"""The Job: the source of truth for every summary request that missed the cache."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.utils import timezone

from summaries.core import forms
from summaries.core.canonical_urls import MAX_URL_CHARS
from summaries.core.lanes import Lane


class Job(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        # run_at in the future: not yet pending (so not "active": submits of
        # the input neither join it nor wait for it); beat starts it when due.
        SCHEDULED = "scheduled", "Scheduled"

    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        URL = "url", "URL"
        # An upload: input_text is its bytes' SHA-256 (the DocumentUpload row).
        DOCUMENT = "document", "Uploaded document"

    class Stage(models.TextChoices):
        """What the job is doing now (progress), finer than its status."""

        QUEUED = "queued", "Queued"  # pending, sent to a worker (or retried by an operator)
        SCHEDULED = "scheduled", "Scheduled"  # waiting for its run_at
        FETCHING = "fetching", "Fetching the page"
        EXTRACTING = "extracting", "Extracting the article"
        SUMMARIZING = "summarizing", "Summarising"
        RETRYING = "retrying", "Waiting to retry"  # pending after a transient failure
        WAITING = "waiting", "Waiting for the AI quota"  # pending: the quota is used up
        REQUEUED = "requeued", "Requeued"  # pending again: its lease ran out (reconciler)
        # "priority": "batch" or a deadline: waiting in the batch lane, then in
        # a provider's batch job (services/batch_lane.py); status processing.
        BATCHED = "batched", "Waiting in the provider's batch lane"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.PENDING, Status.PROCESSING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False,
                          help_text="Public job id, as returned by the API.")
    kind = models.CharField(max_length=8, choices=Kind.choices,
                            help_text="Whether the input was plain text or a URL.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING,
                              help_text="pending → processing → completed or failed.")
    stage = models.CharField(max_length=32, blank=True, choices=Stage.choices,
                             help_text="What the worker is doing now (progress).")
    input_hash = models.CharField(max_length=64,
                                  help_text="Cache key: SHA-256 of the normalised input "
                                            "and the summariser's namespace.")
    input_text = models.TextField(help_text="The normalised input (text or canonical URL).")
    url = models.URLField(max_length=MAX_URL_CHARS, blank=True,
                          help_text="The canonical URL, for URL inputs.")
    queue = models.CharField(max_length=32, default=Lane.INTERACTIVE.value,
                             help_text="The Celery queue (lane) the job is sent to: "
                                       "celery (interactive) or bulk.")
    refresh = models.BooleanField(default=False,
                                  help_text="The client asked to bypass the cache.")
    cached = models.BooleanField(default=False,
                                 help_text="Completed from the cache without an AI call.")
    store = models.BooleanField(
        default=True, help_text="False (store:false): the result is not cached and the input "
                                "is blanked once the job is finished.")
    purged_at = models.DateTimeField(
        null=True, blank=True, help_text="When an operator purged the input's cached summary: "
                                         "the row no longer re-caches it.")
    provider = models.CharField(max_length=128, blank=True,
                                help_text="Summariser namespace (provider:model:version).")
    language = models.CharField(
        max_length=35, blank=True,
        help_text="The language the summary was asked in (a submit's language, when it "
                  "changes the summary); empty: the input's own.")
    style = models.CharField(
        max_length=16, default=forms.PROSE, choices=[(s, s) for s in forms.STYLES],
        help_text="The summary's style asked for: prose, or bullets (3-6 key points).")
    length = models.CharField(
        max_length=16, default=forms.SHORT, choices=[(n, n) for n in forms.LENGTHS],
        help_text="The summary's length asked for: short (2-3 sentences), medium or long.")
    final_url = models.URLField(max_length=MAX_URL_CHARS, blank=True,
                                help_text="Where the URL led after redirects.")
    title = models.CharField(max_length=512, blank=True, help_text="The page's title.")
    extracted_chars = models.PositiveIntegerField(
        null=True, blank=True, help_text="Length of the text extracted from the page.")
    extracted_text = models.TextField(blank=True,
                                      help_text="The article text extracted from the page.")
    summary = models.TextField(
        blank=True, help_text="The summary in its form: prose (2-3 sentences when short; "
                              "paragraphs separated by a blank line when long), or bullets "
                              "(one \"- \" line per key point).")
    tags = models.JSONField(default=list, blank=True, help_text="2-4 short tags.")
    error = models.TextField(blank=True, help_text="Why the job failed (or last retry reason).")
    error_code = models.CharField(max_length=64, blank=True,
                                  help_text="Machine code of the error.")
    attempts = models.PositiveIntegerField(default=0,
                                           help_text="How many times a worker claimed the job.")
    duration_ms = models.PositiveIntegerField(null=True, blank=True,
                                              help_text="Processing time of the last attempt.")
    created_at = models.DateTimeField(default=timezone.now, help_text="When it was submitted.")
    updated_at = models.DateTimeField(auto_now=True, help_text="Last change of any kind.")
    started_at = models.DateTimeField(null=True, blank=True,
                                      help_text="When the last attempt began.")
    completed_at = models.DateTimeField(null=True, blank=True,
                                        help_text="When it completed or failed.")
    lease_expires_at = models.DateTimeField(
        null=True, blank=True,
        help_text="A processing job whose lease is over is re-enqueued by the reconciler.")
    run_at = models.DateTimeField(
        null=True, blank=True, help_text="A scheduled job (run_at on submit) starts then.")
    parts_total = models.PositiveIntegerField(
        null=True, blank=True, help_text="A long document summarised in parts (map-reduce): "
                                         "how many parts (services/long_texts.py).")
    parts_done = models.PositiveIntegerField(
        null=True, blank=True, help_text="How many of those parts have their summary.")
    has_callbacks = models.BooleanField(
        default=False, help_text="Webhook deliveries wait for this job to finish "
                                 "(callback_url on a submit).")
    # Near-duplicates (services/near_duplicates.py).
    near_duplicates = models.BooleanField(
        default=True, help_text="False (near_duplicates:false on the submit): the job never "
                                "shares a near-duplicate's summary.")
    max_age = models.PositiveIntegerField(
        null=True, blank=True, help_text="The submit's max_age: a near-duplicate's summary "
                                         "older than this is not shared.")
    source_text = models.TextField(
        blank=True, help_text="A text job's input as submitted, line breaks kept (each line "
                              "normalised), when it has several lines: the near-duplicate "
                              "check reads it; empty: the same as input_text.")
    near_duplicate_of = models.UUIDField(
        null=True, blank=True, db_index=True,
        help_text="The job whose summary this one shares: its input was a near-duplicate of "
                  "that job's (no AI call).")
    # What its AI calls cost (services/costs.py), every attempt's added up:
    # a broken answer asked again, or a failed attempt retried, is paid too.
    input_tokens = models.PositiveIntegerField(
        default=0, help_text="AI input tokens of its calls (its share of a batched call).")
    output_tokens = models.PositiveIntegerField(
        default=0, help_text="AI output tokens of its calls.")
    tokens_estimated = models.BooleanField(
        default=False, help_text="Some tokens are estimated: the provider reported none.")
    cost = models.DecimalField(
        max_digits=14, decimal_places=6, default=Decimal(0),
        help_text="USD: the tokens at AI_PRICE_INPUT/OUTPUT_PER_MTOK (less the batch "
                  "discount through the provider's batch API); 0 when no AI call was made.")
    # The batch lane (services/batch_lane.py): "priority": "batch" or a deadline.
    deadline = models.DateTimeField(
        null=True, blank=True, help_text="Batch lane: the job must be done by then (its "
                                         "provider batch is given up for a live call before).")
    provider_batch = models.ForeignKey(
        "ProviderBatch", on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs",
        help_text="The provider batch job that carries (or carried) this job.")
    via_batch = models.BooleanField(
        default=False, help_text="Completed from a provider's batch API result (billed at "
                                 "the batch price), not by a live call.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "updated_at"], name="job_status_updated"),
            models.Index(fields=["kind"], name="job_kind"),
            models.Index(fields=["cached"], name="job_cached"),
            models.Index(fields=["created_at"], name="job_created"),
            models.Index(fields=["input_hash"], name="job_input_hash"),
            models.Index(fields=["url"], name="job_url"),
            models.Index(fields=["status", "run_at"], name="job_status_run_at"),
            models.Index(fields=["stage", "provider_batch"], name="job_stage_batch"),
        ]
        constraints = [
            # The guarantee behind "identical inputs never cost a second AI
            # call": at most one pending or processing job per input. The
            # in-flight marker in Valkey is only the fast path to that job.
            models.UniqueConstraint(
                fields=["input_hash"],
                condition=models.Q(status__in=["pending", "processing"]),  # Job.ACTIVE
                name="one_active_job_per_input",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.id} ({self.status})"

    @property
    def form(self) -> forms.Form:
        """The form its summary was asked in (style, length)."""
        return forms.Form(self.style, self.length)

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    def input_when_finished(self, **fields: str) -> dict[str, str]:
        """The input fields to write in the UPDATE that finishes the job
        (completed or failed): ``fields`` as given, or for a store:false job
        every input field blanked (the text or URL, the final URL, the
        extracted page text), so no reader ever sees a finished row that still
        holds its input. The summary, tags and title stay: they are the answer
        the client polls for; input_hash stays: dedup and purge key on it."""
        return dict(FORGOTTEN_INPUT) if not self.store else fields

    def callback_deliveries(self) -> list[WebhookDelivery]:
        """Its webhook deliveries, oldest first; no query for a job without any."""
        return list(self.deliveries.order_by("created_at")) if self.has_callbacks else []


# The fields a finished store:false job blanks.
FORGOTTEN_INPUT = {"input_text": "", "url": "", "final_url": "", "extracted_text": "",
                   "source_text": ""}


class DocumentUpload(models.Model):
    """The bytes of an uploaded document (POST /api/submit, multipart), kept
    in the database so they survive a killed worker until the jobs that read
    them end (services/uploads.py deletes them then; retention sweeps the
    rest). Keyed by their SHA-256: the same file uploaded twice is one row."""

    sha256 = models.CharField(max_length=64, primary_key=True,
                              help_text="SHA-256 of the bytes (hex): the document job's input.")
    body = models.BinaryField(help_text="The file as uploaded.")
    size = models.PositiveIntegerField(help_text="Bytes.")
    content_type = models.CharField(max_length=255, blank=True,
                                    help_text="The upload's declared Content-Type.")
    filename = models.CharField(max_length=255, blank=True, help_text="As the client named it.")
    created_at = models.DateTimeField(default=timezone.now, help_text="First uploaded.")
    touched_at = models.DateTimeField(default=timezone.now,
                                      help_text="Last uploaded (a job's end keeps newer uploads).")

    class Meta:
        indexes = [models.Index(fields=["touched_at"], name="upload_touched")]

    def __str__(self) -> str:
        return f"upload {self.sha256[:12]} ({self.size} bytes)"


class WebhookDelivery(models.Model):
    """One POST of a finished job's status body to a callback URL
    (services/webhooks.py): at least once, retried with backoff, its id the
    idempotency key receivers dedupe on."""

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting for the job"
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False,
                          help_text="Delivery id (X-SmartCache-Delivery), the same on every "
                                    "attempt.")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="deliveries",
                            help_text="The job whose status body is delivered.")
    watch = models.ForeignKey("Watch", on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="deliveries",
                              help_text="The watch whose change made the job, if any.")
    url = models.URLField(max_length=MAX_URL_CHARS, help_text="The callback URL.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING,
                              help_text="waiting (job running) → pending → sending → "
                                        "delivered or failed.")
    attempts = models.PositiveIntegerField(default=0, help_text="POSTs tried so far.")
    body = models.TextField(blank=True, help_text="The JSON sent, frozen at the first attempt "
                                                  "so every retry sends the same bytes.")
    last_status_code = models.PositiveIntegerField(
        null=True, blank=True, help_text="The receiver's HTTP status at the last attempt.")
    last_error = models.TextField(blank=True, help_text="Why the last attempt failed.")
    next_attempt_at = models.DateTimeField(null=True, blank=True,
                                           help_text="When a pending delivery is due.")
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="A sending delivery whose lease is over is tried again.")
    created_at = models.DateTimeField(default=timezone.now, help_text="When it was subscribed.")
    updated_at = models.DateTimeField(auto_now=True, help_text="Last change of any kind.")
    delivered_at = models.DateTimeField(null=True, blank=True,
                                        help_text="When the receiver answered 2xx.")

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"delivery {self.id} to {self.url} ({self.status})"


class Watch(models.Model):
    """A URL re-fetched every ``every_seconds`` (services/watches.py): when its
    extracted text changes, it is summarised again and the callback called."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False,
                          help_text="Public watch id, as returned by the API.")
    url = models.URLField(max_length=MAX_URL_CHARS, help_text="The canonical URL watched.")
    every_seconds = models.PositiveIntegerField(help_text="Seconds between checks (≥ 60).")
    style = models.CharField(max_length=16, default="prose",
                             help_text="The form its summaries are asked in: prose or bullets.")
    length = models.CharField(max_length=16, default="short",
                              help_text="... and their length: short, medium or long.")
    callback_url = models.URLField(max_length=MAX_URL_CHARS, blank=True,
                                   help_text="Called with the new job's status on a change.")
    next_run_at = models.DateTimeField(help_text="When the next check is due.")
    content_hash = models.CharField(max_length=64, blank=True,
                                    help_text="SHA-256 of the extracted text last seen.")
    last_checked_at = models.DateTimeField(null=True, blank=True,
                                           help_text="When the page was last fetched.")
    last_changed_at = models.DateTimeField(null=True, blank=True,
                                           help_text="When a check last found new text.")
    last_job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="+", help_text="The job of the last change.")
    last_error = models.TextField(blank=True, help_text="Why the last check failed.")
    last_error_code = models.CharField(max_length=64, blank=True,
                                       help_text="Machine code of that error.")
    checks = models.PositiveIntegerField(default=0, help_text="Checks run.")
    changes = models.PositiveIntegerField(default=0, help_text="Checks that found new content.")
    created_at = models.DateTimeField(default=timezone.now, help_text="When it was created.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["next_run_at"], name="watch_next_run")]

    def __str__(self) -> str:
        return f"watch {self.id} of {self.url} every {self.every_seconds}s"


class ProviderBatch(models.Model):
    """One batch job at an AI provider's batch API (Gemini Batch API, OpenAI
    Batch API) carrying batch-lane jobs (services/batch_lane.py). The row and
    its jobs' ``provider_batch`` are written BEFORE the provider is asked to
    create it, under a stable ``display_name``: a poller that died between
    the two finds the provider's batch by that name instead of paying twice."""

    class State(models.TextChoices):
        CREATING = "creating", "Creating"  # the row and its jobs exist; the provider's may not
        RUNNING = "running", "Running"  # the provider has it (remote_id)
        SUCCEEDED = "succeeded", "Succeeded"  # results read, its jobs completed or sent live
        FAILED = "failed", "Failed"  # the provider failed it: its jobs went live
        EXPIRED = "expired", "Expired"  # not done within the provider's window: jobs went live
        ABANDONED = "abandoned", "Abandoned"  # past its jobs' deadline: they went live

    OPEN = (State.CREATING, State.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False,
                          help_text="Our id of the provider batch.")
    api = models.CharField(max_length=16, help_text="The provider's batch API: gemini or openai.")
    provider = models.CharField(max_length=128,
                                help_text="Summariser namespace (provider:model:version).")
    display_name = models.CharField(max_length=128, unique=True,
                                    help_text="The stable name the provider's batch is created "
                                              "under (found again by it after a crash).")
    remote_id = models.CharField(max_length=256, blank=True, db_index=True,
                                 help_text="The provider's batch id (batches/…, batch_…).")
    state = models.CharField(max_length=16, choices=State.choices, default=State.CREATING,
                             help_text="creating → running → succeeded, failed, expired or "
                                       "abandoned.")
    remote_state = models.CharField(max_length=64, blank=True,
                                    help_text="The provider's own state at the last poll.")
    items = models.PositiveIntegerField(default=0, help_text="Jobs sent in it.")
    completed_items = models.PositiveIntegerField(default=0,
                                                  help_text="Jobs completed from its results.")
    fallback_items = models.PositiveIntegerField(
        default=0, help_text="Jobs sent to live calls instead (failed, expired, partial, late).")
    unused_cost = models.DecimalField(
        max_digits=14, decimal_places=6, default=Decimal(0),
        help_text="USD the provider billed for answers that came after their job had gone "
                  "live (an interactive join or a near deadline): spent, never used.")
    deadline = models.DateTimeField(null=True, blank=True,
                                    help_text="The earliest deadline of its jobs.")
    error = models.TextField(blank=True, help_text="Why it failed, or the last polling error.")
    created_at = models.DateTimeField(default=timezone.now, help_text="When the row was made.")
    submitted_at = models.DateTimeField(null=True, blank=True,
                                        help_text="When the provider accepted it.")
    polled_at = models.DateTimeField(null=True, blank=True, help_text="Its last poll.")
    finished_at = models.DateTimeField(null=True, blank=True,
                                       help_text="When its results were read or it was given up.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "created_at"], name="provider_batch_open")]

    def __str__(self) -> str:
        return f"{self.api} batch {self.remote_id or self.display_name} ({self.state})"
