"""What AI tokens cost: prices in USD per million tokens, and a call's cost
in micro-dollars (tokens x USD per million tokens = micro-dollars, so costs
add up as whole numbers in Valkey's counters and the job rows).

The defaults are the providers' list prices of the models SmartCache
defaults to and a few common ones (paid tier, text, prompts under 200k
tokens; Gemini's from ai.google.dev/gemini-api/docs/pricing, OpenAI's from
openai.com/api/pricing, 2026-12). Any other model costs 0 until
AI_PRICE_INPUT_PER_MTOK / AI_PRICE_OUTPUT_PER_MTOK say what it costs; the
offline summariser costs nothing. Both providers' batch APIs take half
(AI_BATCH_DISCOUNT, 0.5)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from summaries.core.tokens import Usage

# model -> (input, output) USD per million tokens
LIST_PRICES: dict[str, tuple[str, str]] = {
    "gemini-2.5-flash": ("0.30", "2.50"),
    "gemini-2.5-flash-lite": ("0.10", "0.40"),
    "gemini-2.5-pro": ("1.25", "10.00"),
    "gpt-4o-mini": ("0.15", "0.60"),
    "gpt-4.1-mini": ("0.40", "1.60"),
    "gpt-4o": ("2.50", "10.00"),
}
MICROS = Decimal("0.000001")


@dataclass(frozen=True)
class Prices:
    """USD per million tokens, in and out, and the share taken off a call
    made through the provider's batch API."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    batch_discount: Decimal = Decimal("0.5")

    def micros(self, usage: Usage) -> Decimal:
        """The list price of ``usage``, in micro-dollars (not rounded)."""
        return (usage.input_tokens * self.input_per_mtok
                + usage.output_tokens * self.output_per_mtok)


def prices_for(provider: str, model: str, *, input_per_mtok: float | None,
               output_per_mtok: float | None, batch_discount: float) -> Prices:
    """The configured prices, else the model's list price, else 0 (and 0
    always for the offline summariser, ``provider == "local"``)."""
    listed = LIST_PRICES.get(model, ("0", "0")) if provider != "local" else ("0", "0")
    return Prices(
        Decimal(str(input_per_mtok)) if input_per_mtok is not None else Decimal(listed[0]),
        Decimal(str(output_per_mtok)) if output_per_mtok is not None else Decimal(listed[1]),
        Decimal(str(batch_discount)),
    )


@dataclass(frozen=True)
class Cost:
    """What a job's AI calls cost (``micros``) and what the batch discount
    took off the list price (``batch_saved_micros``), whole micro-dollars."""

    micros: int
    batch_saved_micros: int = 0

    @property
    def usd(self) -> Decimal:
        return (Decimal(self.micros) * MICROS).quantize(MICROS)


def cost_of(usage: Usage, prices: Prices, *, via_batch_api: bool = False) -> Cost:
    """``usage`` at ``prices``; through the provider's batch API at the
    discount (the discount's part is what the batch lane saved)."""
    listed = prices.micros(usage)
    paid = listed * (1 - prices.batch_discount) if via_batch_api else listed
    paid_whole = int(paid.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    listed_whole = int(listed.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return Cost(paid_whole, listed_whole - paid_whole if via_batch_api else 0)
