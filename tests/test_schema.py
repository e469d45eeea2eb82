"""schemathesis over our own OpenAPI schema: generated requests (valid and
invalid) never get a 5xx, and every response matches the schema. And the
schema's examples, which Swagger's "Try it out" starts from, really work."""

from __future__ import annotations

import re
import uuid
from typing import Any

import jsonschema
import pytest
import schemathesis
from django.test import Client
from hypothesis import HealthCheck, settings
from rest_framework import serializers as drf_serializers
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from smartcache.wsgi import application
from summaries.api import schema as api_schema
from summaries.api import serializers as s
from summaries.providers.local import LocalProvider

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


# This test is about the HTTP contract. Generated inputs may look like URLs
# of random hosts, which no worker should try to fetch.
pytestmark = pytest.mark.usefixtures("no_enqueue")


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_api_honours_its_schema(case: Any) -> None:
    # No 5xx, documented status codes, content types and bodies. Not judged:
    # whether the server is as strict as the schema (DRF reads "?status=" as
    # "no filter", which is fine).
    case.call_and_validate(excluded_checks=[negative_data_rejection, positive_data_acceptance])


# --- The examples a person starts from ---------------------------------------

def _document() -> dict[str, Any]:
    document: dict[str, Any] = Client().get("/api/schema/", {"format": "json"}).json()
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, operation) for path, operations in document["paths"].items()
            for method, operation in operations.items()]


def _examples(content: dict[str, Any]) -> dict[str, Any]:
    return {name: example["value"] for name, example in
            content.get("application/json", {}).get("examples", {}).items()}


# Each documented request body, and the serializer its view validates it with.
REQUEST_FORMS: dict[str, type[drf_serializers.Serializer[Any]]] = {
    "/api/submit": s.SubmitRequest, "/api/submit/batch": s.BatchRequest,
    "/api/cache/purge": s.PurgeRequest, "/api/watches": s.WatchRequest}


def test_every_body_has_examples_that_its_serializer_accepts() -> None:
    with_bodies = {path: _examples(operation["requestBody"]["content"])
                   for path, _, operation in _operations(_document())
                   if "requestBody" in operation}
    assert with_bodies.keys() == REQUEST_FORMS.keys()
    for path, examples in with_bodies.items():
        assert examples, f"{path} has no request example (Swagger would offer {{}})"
        for name, value in examples.items():
            form = REQUEST_FORMS[path](data=value)
            assert form.is_valid(), (path, name, form.errors)
    # Swagger's "Try it out" starts from the first example: a text, long enough.
    assert next(iter(with_bodies["/api/submit"].values())) == {"input": api_schema.ARTICLE}


@pytest.mark.django_db(transaction=True)
def test_every_request_example_is_answered_with_success(client: Client) -> None:
    for path, _, operation in _operations(_document()):
        for name, value in _examples(operation.get("requestBody", {}).get("content", {})).items():
            response = client.post(path, value, content_type="application/json")
            # 201: a watch created; 200/202: a submit answered or queued.
            expected = (201,) if path == "/api/watches" else (200, 202)
            assert response.status_code in expected, (path, name, response.json())
            if path == "/api/submit/batch":
                codes = [item["http_status"] for item in response.json()["results"]]
                assert set(codes) <= {200, 202}, (name, response.json())


def test_the_default_text_example_summarises_offline() -> None:
    result = LocalProvider().summarize(api_schema.ARTICLE)
    assert result.summary and len(result.tags) >= 2


def test_every_response_example_matches_its_schema() -> None:
    document = _document()
    checked = 0
    for path, method, operation in _operations(document):
        for code, response in operation["responses"].items():
            content = response.get("content", {}).get("application/json", {})
            for value in _examples(response.get("content", {})).values():
                jsonschema.validate(value, {**content["schema"],
                                            "components": document["components"]})
                checked += 1
            if code.startswith(("4", "5")) and path != "/api/health":
                assert _examples(response.get("content", {})), (method, path, code)
    assert checked > 20


def test_submit_answers_have_their_own_shapes() -> None:
    responses = {path: operation["responses"] for path, _, operation in _operations(_document())}
    submit = responses["/api/submit"]
    refs = {code: submit[code]["content"]["application/json"]["schema"]["$ref"]
            for code in ("200", "202")}
    assert refs == {"200": "#/components/schemas/SubmitAnsweredResponse",
                    "202": "#/components/schemas/SubmitAcceptedResponse"}
    accepted = _document()["components"]["schemas"]["SubmitAcceptedResponse"]["properties"]
    assert "summary" not in accepted


def test_path_parameters_have_real_looking_examples() -> None:
    for path, method, operation in _operations(_document()):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                values = [example["value"] for example in parameter["examples"].values()]
                assert values, (method, path, parameter["name"])
                for value in values:
                    if parameter["name"] in ("job_id", "watch_id"):
                        uuid.UUID(value)
                    else:
                        assert re.fullmatch(parameter["schema"]["pattern"], value)
