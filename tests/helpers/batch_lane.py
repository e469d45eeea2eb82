"""The batch lane's test settings and submits (tests/test_batch_lane*.py)."""

from __future__ import annotations

from typing import Any

from tests.helpers.api import Api

# The lane, quickly: a tick every half second, a group sent once its oldest
# item waited a second; a deadline may be 5 s ahead, and an item goes live
# once its deadline is 5 s away.
LANE = {"BATCH_LANE_TICK_SECONDS": "0.5", "BATCH_LANE_MAX_WAIT": "1",
        "BATCH_LANE_LEASE_SECONDS": "3", "BATCH_LANE_MIN_DEADLINE": "5",
        "BATCH_LANE_LIVE_MARGIN": "5"}


def batched(api: Api, text: str, **extra: Any) -> str:
    response = api.submit(text, priority="batch", **extra)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "processing", body
    return str(body["job_id"])
