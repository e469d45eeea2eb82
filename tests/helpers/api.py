"""The SmartCache HTTP API as a client sees it, over real HTTP."""

from __future__ import annotations

import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

# A GET sent on a kept-alive connection just as the server closed it for
# being idle (gunicorn's keep-alive timeout) is answered by nothing:
# "RemoteDisconnected". Any HTTP client sends such an idempotent request
# again; these tests do so once, and never a POST.
_GET_AGAIN = Retry(total=1, connect=1, read=1, status=0, redirect=0,
                   allowed_methods=frozenset({"GET", "HEAD"}), raise_on_status=False)


class Api:
    """A client of one running API (Django's live server or a gunicorn)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.http.mount("http://", HTTPAdapter(max_retries=_GET_AGAIN))

    def submit(self, text: str, **extra: Any) -> requests.Response:
        return self.http.post(f"{self.base_url}/api/submit", json={"input": text, **extra},
                              timeout=15)

    def status(self, job_id: str) -> requests.Response:
        return self.http.get(f"{self.base_url}/api/status/{job_id}", timeout=10)

    def analytics(self) -> dict[str, Any]:
        response = self.http.get(f"{self.base_url}/api/analytics", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def wait(self, job_id: str, timeout: float = 30) -> dict[str, Any]:
        """Poll until the job is completed or failed; return its status body."""
        deadline = time.monotonic() + timeout
        while True:
            body = dict(self.status(job_id).json())
            if body["status"] in ("completed", "failed"):
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {body['status']}: {body}")
            time.sleep(0.05)
