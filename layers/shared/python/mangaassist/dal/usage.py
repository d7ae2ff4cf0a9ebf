"""The usage table: daily token and cost counters, per model and in total.

Rows: pk ``day#YYYY-MM-DD``, sk ``model#<model id>`` and ``total``. Both rows of a call are
updated in one transaction with ADD, so a counter is never half-updated.
"""
from __future__ import annotations

from decimal import Decimal

COUNTERS = ("calls", "input_tokens", "output_tokens", "cost_usd")


class UsageCounters:
    def __init__(self, table_name: str, client):
        self.table_name = table_name
        self.client = client  # the low-level DynamoDB client: counters are written in its attribute format

    def add(self, day: str, model_id: str, values: dict) -> None:
        """Add ``values`` (one per COUNTERS name) to the day's model row and total row."""
        self.client.transact_write_items(TransactItems=[
            self._add(f"day#{day}", f"model#{model_id}", values),
            self._add(f"day#{day}", "total", values),
        ])

    def daily(self, days: list[str]) -> dict[str, dict[str, dict]]:
        """``{day: {model_id or "total": {counter: Decimal}}}``."""
        out: dict[str, dict[str, dict]] = {}
        for day in days:
            pages = self.client.get_paginator("query").paginate(
                TableName=self.table_name, KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"day#{day}"}})
            for page in pages:
                for item in page["Items"]:
                    name = item["sk"]["S"].removeprefix("model#")
                    out.setdefault(day, {})[name] = {k: Decimal(item[k]["N"]) for k in COUNTERS if k in item}
        return out

    def _add(self, pk: str, sk: str, values: dict) -> dict:
        return {"Update": {
            "TableName": self.table_name,
            "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
            "UpdateExpression": "ADD " + ", ".join(f"{k} :{k}" for k in COUNTERS),
            "ExpressionAttributeValues": {f":{k}": {"N": str(values[k])} for k in COUNTERS},
        }}
