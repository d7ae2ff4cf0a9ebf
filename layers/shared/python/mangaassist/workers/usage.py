"""Daily token and cost counters per model, from InferenceCompleted events.

The counters live in the usage table (mangaassist.dal.usage); the event is claimed first
(runtime.event_worker), so a redelivery never counts twice.
"""
from __future__ import annotations

from decimal import Decimal

from mangaassist.dal.usage import UsageCounters
from mangaassist.deps import Deps

_default = Deps()


def record_usage(event: dict, deps: Deps | None = None) -> dict:
    deps = deps or _default
    detail = event["detail"]
    day = event["time"][:10]
    values = {
        "calls": 1,
        "input_tokens": detail["input_tokens"],
        "output_tokens": detail["output_tokens"],
        # str() keeps the float's shortest repr; DynamoDB numbers are decimal, so no binary drift.
        "cost_usd": Decimal(str(detail["estimated_cost_usd"])),
    }
    deps.usage.add(day, detail["model_id"], values, detail.get("feature"))
    return {"day": day, "model_id": detail["model_id"], **{k: str(v) for k, v in values.items()}}


def daily_usage(days: list[str], *, client, table: str) -> dict[str, dict[str, dict]]:
    """{day: {model_id or "total": {counter: number}}} for ``ops.py cost``."""
    return UsageCounters(table, client).daily(days)


def projected_cost_per_million(usage: dict[str, dict[str, dict]]) -> Decimal | None:
    """Average cost of one model call, times a million: what 1M assistant messages would cost."""
    calls = sum(day.get("total", {}).get("calls", 0) for day in usage.values())
    cost = sum(day.get("total", {}).get("cost_usd", 0) for day in usage.values())
    return None if not calls else (Decimal(cost) / Decimal(calls) * 1_000_000).quantize(Decimal("0.01"))
