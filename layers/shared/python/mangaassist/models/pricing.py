"""What a model call costs, from a price table kept as data.

Prices are on-demand list prices in USD per 1M tokens, US East (N. Virginia), from
https://aws.amazon.com/bedrock/pricing/ (Anthropic and Amazon sections). Other regions can
differ by a few percent, so ``estimated_cost_usd`` is an estimate, good for budgets and trends.
"""
from __future__ import annotations

import logging
from typing import NamedTuple

logger = logging.getLogger(__name__)

PRICES_AS_OF = "2024-10-22"
PRICES_SOURCE = "https://aws.amazon.com/bedrock/pricing/"


class Price(NamedTuple):
    input_per_million: float
    output_per_million: float


PRICES: dict[str, Price] = {
    "anthropic.claude-3-haiku-20240307-v1:0": Price(0.25, 1.25),
    "anthropic.claude-3-sonnet-20240229-v1:0": Price(3.00, 15.00),
    "anthropic.claude-3-5-sonnet-20240620-v1:0": Price(3.00, 15.00),
    "anthropic.claude-3-5-sonnet-20241022-v2:0": Price(3.00, 15.00),
    "amazon.titan-embed-text-v2:0": Price(0.02, 0.00),
    "local.grounded-v1": Price(0.00, 0.00),
}

# Cross-region inference profiles prefix the model id with their region group.
REGION_GROUPS = frozenset({"us", "us-gov", "eu", "apac", "jp", "au", "ca", "global"})

_unpriced: set[str] = set()


def pricing_key(model_id: str) -> str:
    """The foundation-model id behind a model id, an inference profile id or either one's ARN."""
    name = model_id.rsplit("/", 1)[-1]
    group, _, rest = name.partition(".")
    return rest if group in REGION_GROUPS and rest else name


def price_for(model_id: str) -> Price | None:
    key = pricing_key(model_id)
    if key.startswith("local."):  # the offline provider's stand-ins cost nothing
        return Price(0.0, 0.0)
    return PRICES.get(key)


def estimate_cost(model_id: str, input_tokens: int, output_tokens: int) -> float:
    """USD for one call; 0.0 (logged once per model) when the model is not in the table."""
    price = price_for(model_id)
    if price is None:
        if model_id not in _unpriced:
            _unpriced.add(model_id)
            logger.warning("no price for model %s: cost reported as 0.0 (prices as of %s)", model_id, PRICES_AS_OF)
        return 0.0
    cost = (input_tokens * price.input_per_million + output_tokens * price.output_per_million) / 1_000_000
    return round(cost, 10)  # drop float noise such as 0.00030000000000000003
