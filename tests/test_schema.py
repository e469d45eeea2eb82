"""schemathesis over our own OpenAPI schema: generated requests (valid and
invalid) never get a 5xx, and every response matches the schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from smartcache.wsgi import application

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
