"""The SmartCache HTTP API as a client sees it, over real HTTP."""

from __future__ import annotations

import time
from typing import Any

import requests


class Api:
    """A client of one running API (Django's live server or a gunicorn)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()

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
