"""What the model calls cost at a given volume, from measured or assumed tokens.

One pure function, ``project_model_cost``, answers both questions:

- planning (docs/capacity-and-cost.md): 1M chat messages a day with an assumed fast-path /
  fallback mix and tokens per message (``planned_usage``);
- measuring (``ops.py cost``): the usage table's counters per model (calls, input and output
  tokens over some days), scaled to the same volume.

Prices come from the layer's table (``mangaassist.models.pricing``: on-demand list prices, US
East, per 1M tokens), so the docs, the usage aggregator and this projection price a token the
same way. One model call per message, as ``projected_cost_per_million`` in the usage worker.
``python -m mangaassist_dev.cost_model`` prints the planning table the docs quote.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mangaassist.models.pricing import PRICES_AS_OF, price_for

DAYS_PER_MONTH = 30

# Planning assumptions for a chat message (docs/capacity-and-cost.md says where each comes from).
FAST_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
FALLBACK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
FALLBACK_SHARE = 0.05  # throttled, unavailable or circuit open: answered by the fallback
INPUT_TOKENS = 1500  # system prompt, retrieved product context, recent turns, the question
OUTPUT_TOKENS = 300  # a short answer with recommendations


@dataclass(frozen=True)
class ModelLine:
    """One model's part of the projection."""

    model_id: str
    share: float  # of all calls
    input_tokens_per_call: float
    output_tokens_per_call: float
    usd_per_call: float
    priced: bool  # False when the model is not in the price table (counted as 0)
    calls_per_day: float
    usd_per_day: float
    usd_per_month: float


@dataclass(frozen=True)
class ModelCostProjection:
    messages_per_day: int
    lines: tuple[ModelLine, ...]
    usd_per_message: float
    usd_per_million_messages: float
    usd_per_day: float
    usd_per_month: float
    prices_as_of: str = PRICES_AS_OF


def project_model_cost(usage: Mapping[str, Mapping[str, float]], messages_per_day: int = 1_000_000,
                       days_per_month: int = DAYS_PER_MONTH) -> ModelCostProjection | None:
    """Scale per-model counters to ``messages_per_day`` messages (one model call each).

    ``usage`` maps a model id to its counters ``calls``, ``input_tokens`` and ``output_tokens``
    over any period (a ``total`` entry is ignored); each model keeps its share of the calls and
    its average tokens per call. None when no calls were counted.
    """
    models = {m: c for m, c in usage.items() if m != "total" and float(c.get("calls", 0)) > 0}
    calls = sum(float(c["calls"]) for c in models.values())
    if not calls:
        return None
    lines = []
    for model_id, counters in sorted(models.items()):
        n = float(counters["calls"])
        tokens_in = float(counters.get("input_tokens", 0)) / n
        tokens_out = float(counters.get("output_tokens", 0)) / n
        price = price_for(model_id)
        per_call = 0.0 if price is None else (
            tokens_in * price.input_per_million + tokens_out * price.output_per_million) / 1_000_000
        share = n / calls
        per_day = share * messages_per_day * per_call
        lines.append(ModelLine(model_id, share, tokens_in, tokens_out, per_call, price is not None,
                               share * messages_per_day, per_day, per_day * days_per_month))
    per_message = sum(line.share * line.usd_per_call for line in lines)
    per_day = per_message * messages_per_day
    return ModelCostProjection(messages_per_day, tuple(lines), per_message, per_message * 1_000_000,
                               per_day, per_day * days_per_month)


def planned_usage(fallback_share: float = FALLBACK_SHARE, input_tokens: int = INPUT_TOKENS,
                  output_tokens: int = OUTPUT_TOKENS, calls: int = 1_000_000) -> dict[str, dict[str, float]]:
    """Counters as the usage table would hold them for the planned fast-path/fallback mix."""
    if not 0 <= fallback_share <= 1:
        raise ValueError("fallback_share is a fraction of the calls, 0 to 1")
    split = {FAST_MODEL: calls * (1 - fallback_share), FALLBACK_MODEL: calls * fallback_share}
    return {m: {"calls": n, "input_tokens": n * input_tokens, "output_tokens": n * output_tokens}
            for m, n in split.items() if n}


def format_projection(projection: ModelCostProjection) -> str:
    """The projection as a table, one row per model, then the totals."""
    rows = [f"{'model':<46}{'share':>7}{'in/call':>9}{'out/call':>9}{'USD/call':>11}{'USD/day':>11}{'USD/month':>12}"]
    for line in projection.lines:
        note = "" if line.priced else "  (no price: counted as 0)"
        rows.append(f"{line.model_id:<46}{line.share:>7.1%}{line.input_tokens_per_call:>9.0f}"
                    f"{line.output_tokens_per_call:>9.0f}{line.usd_per_call:>11.6f}{line.usd_per_day:>11,.2f}"
                    f"{line.usd_per_month:>12,.0f}{note}")
    rows.append(f"at {projection.messages_per_day:,} messages/day: ${projection.usd_per_million_messages:,.2f} per 1M "
                f"messages, ${projection.usd_per_day:,.2f}/day, ${projection.usd_per_month:,.0f}/month "
                f"(prices as of {projection.prices_as_of})")
    return "\n".join(rows)


if __name__ == "__main__":
    print(format_projection(project_model_cost(planned_usage())))
