"""The usage table: daily token and cost counters, per model and in total.

Rows: pk ``day#YYYY-MM-DD``, sk ``model#<model id>``, ``feature#<feature>`` and ``total``. The
rows of a call are updated in one transaction with ADD, so a counter is never half-updated. A
feature's row is what its daily token budget is checked against (mangaassist.flags.budget).
"""
from __future__ import annotations

from decimal import Decimal

COUNTERS = ("calls", "input_tokens", "output_tokens", "cost_usd")


class UsageCounters:
    def __init__(self, table_name: str, client):
        self.table_name = table_name
        self.client = client  # the low-level DynamoDB client: counters are written in its attribute format

    def add(self, day: str, model_id: str, values: dict, feature: str | None = None) -> None:
        """Add ``values`` (one per COUNTERS name) to the day's model, feature and total rows."""
        rows = [f"model#{model_id}", "total"] + ([f"feature#{feature}"] if feature else [])
        self.client.transact_write_items(TransactItems=[self._add(f"day#{day}", sk, values) for sk in rows])

    def tokens(self, day: str, feature: str) -> int:
        """Input plus output tokens a feature used on ``day`` (UTC)."""
        item = self.client.get_item(TableName=self.table_name, Key={"pk": {"S": f"day#{day}"},
                                                                    "sk": {"S": f"feature#{feature}"}},
                                    ProjectionExpression="input_tokens, output_tokens").get("Item") or {}
        return sum(int(item[k]["N"]) for k in ("input_tokens", "output_tokens") if k in item)

    def daily(self, days: list[str]) -> dict[str, dict[str, dict]]:
        """``{day: {model_id or "total": {counter: Decimal}}}``."""
        out: dict[str, dict[str, dict]] = {}
        for day in days:
            pages = self.client.get_paginator("query").paginate(
                TableName=self.table_name, KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"day#{day}"}})
            for page in pages:
                for item in page["Items"]:
                    if item["sk"]["S"].startswith("feature#"):
                        continue  # budgets' rows; the cost report is per model
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
