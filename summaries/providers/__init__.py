"""AI summary providers behind one output contract.

Every provider returns a ``SummaryResult`` that passed ``check_output`` (2-3
sentences in the default form; ``check_points`` for bullets; 2-4 short
distinct lower-case tags) or raises ``JobError``: with
``transient=True`` when trying again later may help (timeouts, 429, 5xx),
permanent otherwise (``input_too_short``, ``ai_blocked``, ``ai_bad_output`` ...).
An AI provider's result (or ``JobError``, when a call answered) carries the
tokens its calls took (``usage``: the provider's reported counts, our
estimate when it reports none). Providers count nothing and cache nothing:
callers do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, cast

from summaries.core.errors import JobError
from summaries.core.forms import DEFAULT_FORM, Form
from summaries.providers.batch_api import BatchApi
from summaries.providers.contract import (
    BatchItem,
    ContractError,
    RequestRejected,
    SummaryResult,
    check_output,
    check_points,
    clean_text,
    count_sentences,
    has_sentences,
    split_sentences,
)
from summaries.providers.local import LocalProvider

__all__ = [
    "BatchApi",
    "BatchItem",
    "BatchProvider",
    "ContractError",
    "LocalProvider",
    "Provider",
    "RequestRejected",
    "SummaryResult",
    "batch_api_of",
    "batching_of",
    "build_provider",
    "check_output",
    "check_points",
    "clean_text",
    "count_sentences",
    "has_sentences",
    "split_sentences",
]


class Provider(Protocol):
    """What the pipeline needs from a summariser."""

    @property
    def name(self) -> str:
        """``"gemini"``, ``"openai"`` or ``"local"``."""

    @property
    def model(self) -> str:
        """The model or algorithm, e.g. ``"gemini-2.5-flash"``, ``"textrank"``."""

    @property
    def cache_namespace(self) -> str:
        """Part of every cache key, e.g. ``"gemini:gemini-2.5-flash:p1"``.

        Changes whenever the output for a given input may change (provider,
        model, prompt or algorithm version), so old summaries are not reused.
        """

    @property
    def translates(self) -> bool:
        """Whether a requested ``language`` changes the output (an AI writes in
        it; the offline summariser can only quote the text): then it is part
        of the cache key (``NormalizedInput.in_language``) and kept on the job (Job.language)."""

    def summarize(self, text: str, *, language: str | None = None,
                  form: Form = DEFAULT_FORM) -> SummaryResult:
        """A contract-checked summary of ``text`` in ``form`` (style and
        length: contract.py's bounds for it), or ``JobError``; written in
        ``language`` (a tag such as ``"de"``) if given and the provider
        ``translates``, else in the text's own language. Nothing else (no
        page title): the summary is cached under the text's key."""


class BatchProvider(Provider, Protocol):
    """A provider that can also summarise several inputs in one call (optional:
    ``batching_of`` says whether a provider can)."""

    @property
    def supports_batches(self) -> bool:
        """True."""

    @property
    def timeout_s(self) -> float:
        """How long one call may take in all."""

    def summarize_batch(self, items: Sequence[BatchItem]) -> dict[str, SummaryResult | JobError]:
        """Every item's contract-checked result, or the ``ContractError`` that
        means "ask for this one alone" (missing or unusable in the batch
        answer), each carrying its share of the call's tokens (by the length
        of its text); raises ``JobError`` for a failure of the call as a whole:
        about everyone (429, 5xx, timeouts) or about what the batch holds
        (``ai_blocked``, ``RequestRejected``: split it and ask again)."""


def batching_of(provider: Provider) -> BatchProvider | None:
    """``provider`` as a ``BatchProvider`` if it supports batches, else None."""
    if getattr(provider, "supports_batches", False) is True:
        return cast(BatchProvider, provider)
    return None


def batch_api_of(provider: Provider, *, max_response_bytes: int) -> BatchApi | None:
    """The batch API of ``provider`` (Gemini's, OpenAI's) on an SDK client of
    its own, whose answers may hold ``max_response_bytes`` (a batch job's
    results are many answers); None for the offline summariser (no batch
    API: its items run live, at no cost)."""
    # Deferred imports, as in build_provider: each loads a heavy SDK (google-genai,
    # openai) that the web, beat and Flower processes never load
    # (tests/test_process_imports.py); no import cycle is involved.
    if provider.name == "gemini":
        from summaries.providers.gemini import GeminiProvider
        from summaries.providers.gemini_batches import GeminiBatchApi

        return GeminiBatchApi(cast(GeminiProvider, provider).resized(max_response_bytes))
    if provider.name == "openai":
        from summaries.providers.openai import OpenAIProvider
        from summaries.providers.openai_batches import OpenAIBatchApi

        return OpenAIBatchApi(cast(OpenAIProvider, provider).resized(max_response_bytes))
    return None


def build_provider(
    name: str,
    *,
    gemini_api_key: str = "",
    gemini_model: str = "gemini-2.5-flash",
    gemini_base_url: str = "",
    gemini_timeout_s: float = 30.0,
    openai_api_key: str = "",
    openai_model: str = "gpt-4o-mini",
    openai_base_url: str = "",
    openai_timeout_s: float = 30.0,
    max_response_bytes: int | None = None,
) -> Provider:
    """The provider called ``name`` (``"gemini"``, ``"openai"`` or ``"local"``);
    ValueError otherwise (also for ``"gemini"`` without an API key, ``"openai"``
    without a model). ``max_response_bytes``: the most an AI provider's
    answer may hold (None: summaries/providers/deadline.py's default)."""
    sized = {} if max_response_bytes is None else {"max_response_bytes": max_response_bytes}
    if name == "local":
        return LocalProvider()
    if name == "gemini":
        # Imported here: the SDK is slow to import and the local provider needs none of it.
        from summaries.providers.gemini import GeminiProvider

        return GeminiProvider(gemini_api_key, gemini_model, gemini_base_url, gemini_timeout_s,
                              **sized)
    if name == "openai":
        from summaries.providers.openai import OpenAIProvider

        return OpenAIProvider(openai_api_key, openai_model, openai_base_url, openai_timeout_s,
                              **sized)
    raise ValueError(f"unknown summary provider {name!r}; expected 'gemini', 'openai' or "
                     f"'local'")
