"""Request validation and response shapes (the latter document the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


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


class SubmitRequest(serializers.Serializer):
    input = StrictCharField(allow_blank=True, trim_whitespace=False,
                            help_text="Text to summarise, or an http(s) URL.")
    refresh = StrictBooleanField(default=False, help_text="Bypass the cache and summarise anew.")


class SubmitResponse(serializers.Serializer):
    job_id = serializers.UUIDField()
    status = serializers.ChoiceField(["pending", "processing", "completed", "failed"])
    cached = serializers.BooleanField()
    summary = serializers.CharField(required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    error = serializers.CharField(required=False)
    code = serializers.CharField(required=False)


class JobResponse(serializers.Serializer):
    job_id = serializers.UUIDField()
    status = serializers.ChoiceField(["pending", "processing", "completed", "failed"])
    kind = serializers.ChoiceField(["text", "url"])
    stage = serializers.CharField(help_text="Progress: queued, fetching, extracting, "
                                            "summarizing, retrying, done, failed.")
    cached = serializers.BooleanField()
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    summary = serializers.CharField(required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    duration_ms = serializers.IntegerField(required=False)
    completed_at = serializers.DateTimeField(required=False)
    error = serializers.CharField(required=False)
    code = serializers.CharField(required=False)
    last_error = serializers.CharField(required=False)
    url = serializers.CharField(required=False)
    final_url = serializers.CharField(required=False)
    title = serializers.CharField(required=False)
    extracted_chars = serializers.IntegerField(required=False)


class JobFilter(serializers.Serializer):
    status = serializers.ChoiceField(["pending", "processing", "completed", "failed"],
                                     required=False)
    kind = serializers.ChoiceField(["text", "url"], required=False)
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


class AnalyticsResponse(serializers.Serializer):
    total_requests = serializers.IntegerField()
    cache_hits = serializers.IntegerField()
    cache_misses = serializers.IntegerField()
    failed_jobs = serializers.IntegerField()
    completed_jobs = serializers.IntegerField()
    queue_size = serializers.IntegerField(help_text="Jobs waiting for a worker.")
    avg_processing_time_ms = serializers.FloatField()
    failure_rate = serializers.FloatField(help_text="failed / (completed + failed).")


class HealthResponse(serializers.Serializer):
    status = serializers.ChoiceField(["ok", "unavailable"])
    database = serializers.CharField()
    valkey = serializers.CharField()


class ErrorResponse(serializers.Serializer):
    error = serializers.CharField(help_text="What went wrong, for a person.")
    code = serializers.CharField(help_text="What went wrong, for a program.")
