"""Every vocabulary is one enum: a job's stages (Job.Stage), the broker's lanes
(core/lanes.py Lane), the error codes (core/errors.py ErrorCode). The app's
code names their members, never the strings, so a new word is added to its
enum (and so to the choices, the settings, the OpenAPI schema) or not at all."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from rest_framework import exceptions
from rest_framework import serializers as drf_serializers

from summaries.api import serializers as s
from summaries.api.live import TimelineFilter
from summaries.core.errors import ErrorCode
from summaries.core.lanes import JOB_LANES, Lane
from summaries.models import Job

APP = Path(__file__).resolve().parent.parent / "summaries"


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(APP.rglob("*.py")):
        if "migrations" not in path.parts:
            yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def where(path: Path, node: ast.expr) -> str:
    return f"{path.relative_to(APP.parent)}:{node.lineno}"


def _literal(node: ast.expr | None) -> str | None:
    """A non-empty string literal's value (empty means "none": no stage, no code)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
        return node.value
    return None


def literals_given_as(names: set[str]) -> list[str]:
    """Where a string literal is given as one of ``names``: a keyword
    argument (``stage="done"``) or a dict entry (``{"stage": "done"}``)."""
    found = []
    for path, module in _modules():
        for node in ast.walk(module):
            pairs: list[tuple[str | None, ast.expr]] = []
            if isinstance(node, ast.Call):
                pairs = [(k.arg, k.value) for k in node.keywords]
            elif isinstance(node, ast.Dict):
                pairs = [(_literal(k), v) for k, v in zip(node.keys, node.values, strict=True)
                         if k is not None]
            for name, value in pairs:
                if name in names and (text := _literal(value)) is not None:
                    found.append(f"{where(path, value)} {name}={text!r}")
    return found


def test_stages_are_named_by_the_enum() -> None:
    assert literals_given_as({"stage"}) == []
    # ... and the stage callbacks get members too (pipeline's on_stage, the events).
    calls = []
    for path, module in _modules():
        for node in ast.walk(module):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute)
                    and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
                    in {"on_stage", "job_pending", "job_stage"}
                    and any(_literal(arg) for arg in node.args)):
                calls.append(where(path, node))
    assert calls == []


def test_stage_has_its_choices() -> None:
    field = Job._meta.get_field("stage")
    assert [value for value, _ in field.choices or []] == list(Job.Stage.values)
    assert {"queued", "fetching", "extracting", "summarizing", "done", "failed"} <= set(
        Job.Stage.values)


@pytest.mark.django_db
def test_the_models_need_no_new_migration() -> None:
    out = StringIO()
    call_command("makemigrations", "summaries", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_lanes_are_named_by_the_enum() -> None:
    assert literals_given_as({"queue", "routing_key"}) == []
    # The settings' queues are the enum's, in its order (the default first).
    assert [queue.name for queue in settings.CELERY_TASK_QUEUES] == [lane.value for lane in Lane]
    assert settings.CELERY_TASK_DEFAULT_QUEUE == Lane.INTERACTIVE
    assert Job._meta.get_field("queue").default == Lane.INTERACTIVE
    assert JOB_LANES == (Lane.INTERACTIVE, Lane.BULK)


CODE_NAMES = {"code", "error_code", "last_error_code"}


def test_error_codes_are_named_by_the_enum() -> None:
    assert literals_given_as(CODE_NAMES) == []
    # Nor is a code's string written anywhere else (a return, a mapping, a
    # positional argument): only core/errors.py spells them. Single words
    # ("busy", "error", "null") are ordinary strings too, so only the codes
    # with an underscore are looked for.
    spelled = {code.value for code in ErrorCode if "_" in code.value}
    found = []
    for path, module in _modules():
        if path == APP / "core" / "errors.py":
            continue  # the enum itself
        docstrings = {id(node.body[0].value) for node in ast.walk(module)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr)}
        found += [where(path, node) + f" {node.value!r}" for node in ast.walk(module)
                  if isinstance(node, ast.Constant) and node.value in spelled
                  and id(node) not in docstrings]
    assert found == []


def _fields(field: drf_serializers.Field[Any, Any, Any, Any]) -> Iterator[
        drf_serializers.Field[Any, Any, Any, Any]]:
    yield field
    if isinstance(field, drf_serializers.Serializer):
        for named in field.fields.values():
            yield from _fields(named)
    if (child := getattr(field, "child", None)) is not None:
        yield from _fields(child)


def _subclasses(cls: type[Any]) -> Iterator[type[Any]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_the_frameworks_codes_are_members() -> None:
    # A refused request's code may be DRF's: its exceptions' codes, and the
    # validation codes of every field the API reads (api/errors.first_error).
    codes = {exceptions.APIException.default_code} | {
        exc.default_code for exc in _subclasses(exceptions.APIException)}
    forms = (s.SubmitRequest, s.UploadRequest, s.BatchRequest, s.PurgeRequest, s.WatchRequest,
             s.JobFilter, s.InsightsFilter, TimelineFilter)
    for form in forms:
        for field in _fields(form()):
            codes |= set(field.error_messages)
            codes |= {code for v in field.validators if (code := getattr(v, "code", None))}
    assert codes - set(ErrorCode) == set()


def test_the_schema_lists_the_codes() -> None:
    document = Client().get("/api/schema/", {"format": "json"}).json()
    schemas = document["components"]["schemas"]
    assert schemas["ErrorCode"]["enum"] == [code.value for code in ErrorCode]
    ref = {"$ref": "#/components/schemas/ErrorCode"}
    for body in ("ErrorResponse", "JobResponse", "BatchItemResponse"):
        assert schemas[body]["properties"]["code"]["allOf"] == [ref], body
