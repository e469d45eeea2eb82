"""No client adds metric series: every label of smartcache_http_requests
comes from a bounded set. Made-up HTTP methods over real HTTP (the live
server), then /metrics read as Prometheus would."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.django_db(transaction=True)


def http_series(base_url: str) -> set[str]:
    exposition = requests.get(f"{base_url}/metrics", timeout=10).text
    return set(re.findall(r"^smartcache_http_requests_total\{.*$", exposition, re.M))


def test_made_up_methods_add_no_series(live_server: Any) -> None:
    base = live_server.url
    requests.request("BREW", f"{base}/api/submit", timeout=10)  # the "other" series, once
    before = http_series(base)
    methods = [f"X{uuid.uuid4().hex[:12].upper()}" for _ in range(40)]
    for method in methods:
        for path in ("/api/submit", "/api/health", "/no/such/page"):
            answer = requests.request(method, f"{base}{path}", timeout=10)
            assert answer.status_code in (404, 405), (method, path, answer.status_code)
    after = http_series(base)
    print(f"{len(methods) * 3} made-up requests added {len(after - before)} series")
    exposition = "\n".join(after)
    assert not [m for m in methods if m in exposition]
    assert 'method="other",status="405",view="submit"' in exposition
    # At most the three paths' "other" series are new: not one per method.
    assert len(after - before) <= 3, sorted(after - before)
