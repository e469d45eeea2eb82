"""What the batch lane (services/batch_lane.py) needs from a provider's batch
API: create a batch job of many single-item requests under a stable display
name, find it again by that name, read its state and results, cancel it.

Gemini's Batch API (``client.batches``, inline requests: gemini_batches.py)
and OpenAI's (a JSONL file of ``/v1/chat/completions`` requests, then
``/v1/batches``: openai_batches.py) both bill at half the live price and
answer within 24 hours. Each item is the very request a live call makes
(the same instructions, prompt and schema), so its answer is read and
contract-checked as a live answer is and cached under the same key.

Every call raises ``JobError`` for its failures, mapped as the live calls
map theirs (transient: 429, 5xx, timeouts; permanent: other 4xx).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from summaries.core.errors import JobError
from summaries.core.forms import Form
from summaries.providers.contract import BatchItem, SummaryResult


class RemoteState(StrEnum):
    """A provider batch job's state, in words both APIs map to."""

    RUNNING = "running"  # accepted, validating, queued or in progress
    SUCCEEDED = "succeeded"  # results are ready (some items may still have failed)
    FAILED = "failed"  # the provider failed the whole batch
    EXPIRED = "expired"  # not done within the provider's window (24 h)
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class ItemResult:
    """One item's part of a finished batch: its contract-checked result, or
    the error that makes it unusable (then it is asked live), and the token
    counts the provider reported for it (None when it reported none)."""

    result: SummaryResult | None
    error: JobError | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(frozen=True)
class RemoteBatch:
    """A provider batch job as polled: ``results`` by item id once it has
    succeeded (an item absent from them got no answer)."""

    remote_id: str
    state: RemoteState
    provider_state: str
    results: dict[str, ItemResult] = field(default_factory=dict)


class BatchApi(Protocol):
    """A provider's batch API (see the module docstring)."""

    @property
    def name(self) -> str:
        """``"gemini"`` or ``"openai"``."""

    def create(self, *, display_name: str, items: Sequence[BatchItem]) -> str:
        """Create a batch job of ``items`` (each a single-item request keyed by
        its id) named ``display_name``; its remote id."""

    def find(self, *, display_name: str) -> str | None:
        """The remote id of a batch job created under ``display_name``, if any
        (among the provider's recent ones)."""

    def get(self, remote_id: str, forms: Mapping[str, Form] | None = None) -> RemoteBatch:
        """The batch job's state and, once it finished, its results, each
        checked against its item's form (``forms`` by item id; default: the
        default form)."""

    def cancel(self, remote_id: str) -> None:
        """Ask the provider to stop it (best effort: its items went live)."""
