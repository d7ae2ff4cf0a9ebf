"""Daily token and cost counters per model, from InferenceCompleted events.

Rows in the usage table: pk ``day#YYYY-MM-DD``, sk ``model#<model id>`` and ``total``. Both are
updated in one transaction with ADD, so a counter is never half-updated, and the event is
claimed first (runtime.event_worker) so a redelivery never counts twice.
"""
from __future__ import annotations

import os
from decimal import Decimal

from mangaassist.workers.deps import Deps

COUNTERS = ("calls", "input_tokens", "output_tokens", "cost_usd")
_default = Deps()  # one DynamoDB client per container, as every worker's: building one costs more than the call


def _update(table: str, pk: str, sk: str, values: dict) -> dict:
    return {"Update": {
        "TableName": table,
        "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
        "UpdateExpression": "ADD " + ", ".join(f"{k} :{k}" for k in COUNTERS),
        "ExpressionAttributeValues": {f":{k}": {"N": str(values[k])} for k in COUNTERS},
    }}


def record_usage(event: dict, *, client=None, table: str | None = None) -> dict:
    detail = event["detail"]
    day = event["time"][:10]
    values = {
        "calls": 1,
        "input_tokens": detail["input_tokens"],
        "output_tokens": detail["output_tokens"],
        # str() keeps the float's shortest repr; DynamoDB numbers are decimal, so no binary drift.
        "cost_usd": Decimal(str(detail["estimated_cost_usd"])),
    }
    table = table or os.environ["USAGE_TABLE"]
    client = client or _default.dynamodb_client
    client.transact_write_items(TransactItems=[
        _update(table, f"day#{day}", f"model#{detail['model_id']}", values),
        _update(table, f"day#{day}", "total", values),
    ])
    return {"day": day, "model_id": detail["model_id"], **{k: str(v) for k, v in values.items()}}


def daily_usage(days: list[str], *, client=None, table: str | None = None) -> dict[str, dict[str, dict]]:
    """{day: {model_id or "total": {counter: number}}} for ``ops.py cost``."""
    import boto3

    table = table or os.environ["USAGE_TABLE"]
    client = client or boto3.client("dynamodb")
    out: dict[str, dict[str, dict]] = {}
    for day in days:
        pages = client.get_paginator("query").paginate(
            TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": f"day#{day}"}})
        for page in pages:
            for item in page["Items"]:
                name = item["sk"]["S"].removeprefix("model#")
                out.setdefault(day, {})[name] = {k: Decimal(item[k]["N"]) for k in COUNTERS if k in item}
    return out


def projected_cost_per_million(usage: dict[str, dict[str, dict]]) -> Decimal | None:
    """Average cost of one model call, times a million: what 1M assistant messages would cost."""
    calls = sum(day.get("total", {}).get("calls", 0) for day in usage.values())
    cost = sum(day.get("total", {}).get("cost_usd", 0) for day in usage.values())
    return None if not calls else (Decimal(cost) / Decimal(calls) * 1_000_000).quantize(Decimal("0.01"))
