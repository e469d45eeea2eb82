"""The AI providers (summaries/providers/): which one, its model, address
and timeouts, the limits shared by every worker, batching, and prices."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from smartcache.settings.env import env_bool, env_float, env_int, env_optional_float, env_str

SUMMARIZER = env_str("SUMMARIZER", "auto").lower()
if SUMMARIZER not in {"auto", "gemini", "openai", "local"}:
    raise ImproperlyConfigured(
        f"SUMMARIZER must be auto, gemini, openai or local, not {SUMMARIZER!r}")
GEMINI_API_KEY = env_str("GEMINI_API_KEY")
GEMINI_MODEL = env_str("GEMINI_MODEL", "gemini-2.5-flash")
GEMINI_BASE_URL = env_str("GEMINI_BASE_URL")
GEMINI_TIMEOUT = env_float("GEMINI_TIMEOUT", 30.0)
if SUMMARIZER == "auto":
    SUMMARIZER = "gemini" if GEMINI_API_KEY else "local"
if SUMMARIZER == "gemini" and not GEMINI_API_KEY:
    raise ImproperlyConfigured("SUMMARIZER=gemini needs GEMINI_API_KEY")
# SUMMARIZER=openai: any OpenAI-compatible Chat Completions server
# (summaries/providers/openai.py). The base URL ends in /v1 (OpenAI's own when
# empty; Ollama: http://localhost:11434/v1); the key may stay empty for
# servers that need none. Never chosen by "auto": set SUMMARIZER=openai.
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL")
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-4o-mini")
OPENAI_TIMEOUT = env_float("OPENAI_TIMEOUT", 30.0)
if SUMMARIZER == "openai" and not (OPENAI_API_KEY or OPENAI_BASE_URL):
    raise ImproperlyConfigured("SUMMARIZER=openai needs OPENAI_API_KEY (OpenAI) or "
                               "OPENAI_BASE_URL (a server of your own)")

# The provider's limits, shared by every worker (summaries/services/ai_quota.py):
# requests and estimated tokens per minute; 0 = no limit.
AI_MAX_RPM = env_int("AI_MAX_RPM", 0)
AI_MAX_TPM = env_int("AI_MAX_TPM", 0)
# The most bytes of an AI server's answer a worker reads (a summary, or a
# batch of ten, is a few kB): past it the call fails as ai_unavailable.
AI_MAX_RESPONSE_BYTES = env_int("AI_MAX_RESPONSE_BYTES", 1024 * 1024, minimum=1024)
# Batching (summaries/services/batching.py): short texts (at most
# AI_BATCH_MAX_CHARS) waiting together in one worker process go to the AI in
# one request of up to AI_BATCH_SIZE items (1 = off), after waiting at most
# AI_BATCH_WAIT_MS for company. 10 measured ~9x fewer AI calls for the same
# jobs (bench/throughput.py). The wait is 200 ms, beside a ~1 s AI call: under
# load a worker process's job threads reach the batcher at about 60-70 a
# second (each claims its row first, on a shared CPU), so 100 ms gathered ~6
# texts a call (1,000 texts: 114 calls in bulk, 143 single) and 200 ms ~10
# (104 and 106; bench/throughput.py figure 6, 2026-12-02).
AI_BATCH_SIZE = env_int("AI_BATCH_SIZE", 10, minimum=1)
AI_BATCH_WAIT_MS = env_int("AI_BATCH_WAIT_MS", 200)
AI_BATCH_MAX_CHARS = env_int("AI_BATCH_MAX_CHARS", 4000, minimum=1)
# The most characters of text one AI call carries, all of a batch's items
# together: the model's context (in tokens, about 4 characters each) less
# room for the instructions and the answer. A batch over what the server
# takes is split anyway (HTTP 400), at the cost of a wasted call.
AI_MAX_INPUT_CHARS = env_int("AI_MAX_INPUT_CHARS", 30_000, minimum=100)

# What the AI provider charges, USD per million tokens, for each job's cost
# and the money the cache, dedup, near-duplicates and the batch discount
# saved (summaries/core/pricing.py). Unset: the model's list price where
# pricing.LIST_PRICES knows it (gemini-2.5-flash 0.30 / 2.50, gpt-4o-mini
# 0.15 / 0.60 ...), else 0; the offline summariser always costs 0.
# AI_BATCH_DISCOUNT: the share the provider's batch API takes off (both
# Gemini's and OpenAI's: half).
def _per_mtok(name: str, deprecated_per_1k: str) -> float | None:
    """``name``'s price; else (deprecated, until the next release) the old
    price per 1000 tokens, times 1000."""
    price = env_optional_float(name)
    per_1k = env_optional_float(deprecated_per_1k)
    return per_1k * 1000 if price is None and per_1k is not None else price


AI_PRICE_INPUT_PER_MTOK = _per_mtok("AI_PRICE_INPUT_PER_MTOK", "AI_PRICE_PER_1K_INPUT")
AI_PRICE_OUTPUT_PER_MTOK = _per_mtok("AI_PRICE_OUTPUT_PER_MTOK", "AI_PRICE_PER_1K_OUTPUT")
AI_BATCH_DISCOUNT = env_float("AI_BATCH_DISCOUNT", 0.5)
if not 0 <= AI_BATCH_DISCOUNT <= 1:
    raise ImproperlyConfigured(f"AI_BATCH_DISCOUNT must be between 0 and 1, not "
                               f"{AI_BATCH_DISCOUNT}")

# The batch lane (summaries/services/batch_lane.py): submits with "priority":
# "batch" or a "deadline" go to the provider's batch API (Gemini, OpenAI: half
# the live price, answered within 24 h), in groups of at most
# BATCH_LANE_MAX_ITEMS, sent once the oldest has waited BATCH_LANE_MAX_WAIT
# seconds (or the group is full). Beat's batch tick (every
# BATCH_LANE_TICK_SECONDS) sends due groups and polls open batches, under one
# Valkey lease of BATCH_LANE_LEASE_SECONDS (renewed as it goes: a poller that
# died gives way within it). "priority": "batch" without a deadline gets
# BATCH_LANE_DEFAULT_DEADLINE seconds; a deadline is at least
# BATCH_LANE_MIN_DEADLINE seconds ahead and at most BATCH_LANE_MAX_DEADLINE.
# An item not done by its deadline (less BATCH_LANE_LIVE_MARGIN seconds for
# the live call) is taken from its provider batch and run live. Off (or
# SUMMARIZER=local, which has no batch API and costs nothing): such submits
# run live on the bulk lane.
BATCH_LANE = env_bool("BATCH_LANE", True)
BATCH_LANE_MAX_ITEMS = env_int("BATCH_LANE_MAX_ITEMS", 1000, minimum=1)
# The most characters of text one provider batch job carries (its create
# request holds them all: Gemini takes 20 MB of inline requests).
BATCH_LANE_MAX_CHARS = env_int("BATCH_LANE_MAX_CHARS", 10_000_000, minimum=1)
BATCH_LANE_MAX_WAIT = env_float("BATCH_LANE_MAX_WAIT", 300.0)
BATCH_LANE_TICK_SECONDS = env_float("BATCH_LANE_TICK_SECONDS", 30.0)
BATCH_LANE_LEASE_SECONDS = env_int("BATCH_LANE_LEASE_SECONDS", 120, minimum=1)
BATCH_LANE_DEFAULT_DEADLINE = env_int("BATCH_LANE_DEFAULT_DEADLINE", 86400, minimum=60)
BATCH_LANE_MIN_DEADLINE = env_int("BATCH_LANE_MIN_DEADLINE", 600, minimum=1)
BATCH_LANE_MAX_DEADLINE = env_int("BATCH_LANE_MAX_DEADLINE", 7 * 86400, minimum=60)
BATCH_LANE_LIVE_MARGIN = env_int("BATCH_LANE_LIVE_MARGIN", 300)
if BATCH_LANE_DEFAULT_DEADLINE > BATCH_LANE_MAX_DEADLINE:
    raise ImproperlyConfigured("BATCH_LANE_DEFAULT_DEADLINE must not exceed "
                               "BATCH_LANE_MAX_DEADLINE")
# The most bytes of one batch-API answer a worker reads (a batch job's results
# hold every item's answer: about 1 kB each).
BATCH_LANE_MAX_RESPONSE_BYTES = env_int("BATCH_LANE_MAX_RESPONSE_BYTES", 64 * 1024 * 1024,
                                        minimum=1024)
