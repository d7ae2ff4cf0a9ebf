"""The orders table: one item per order, keyed by ``order_id``."""
from __future__ import annotations

from mangaassist.dal import to_dynamo

BY_CUSTOMER = "by_customer"  # the global secondary index on customer_id (terraform/wiring.json)


class Orders:
    def __init__(self, table):
        self.table = table  # a mangaassist.dal.table.Table (or a boto3 Table resource)

    def product_ids_of(self, customer_id: str, limit: int = 100) -> list[str]:
        """The products of the customer's orders, most recent orders first, each once."""
        response = self.table.query(IndexName=BY_CUSTOMER, KeyConditionExpression="customer_id = :customer",
                                    ExpressionAttributeValues={":customer": customer_id}, ScanIndexForward=False,
                                    Limit=limit)
        seen: dict[str, None] = {}
        for order in response.get("Items", []):
            for item in order.get("items") or []:
                if isinstance(item, dict) and item.get("product_id"):
                    seen.setdefault(str(item["product_id"]), None)
        return list(seen)

    def mark_paid(self, order_id: str, *, payment_id: str, amount, currency: str, items: list[dict],
                  confirmation: dict, customer_id: str | None = None, paid_at: str | None = None) -> None:
        """One UpdateItem: a retry rewrites the same values. ``customer_id`` and ``paid_at`` key the
        by_customer index that recommendations read a customer's orders from."""
        fields = {"payment_id": payment_id, "status": "paid", "amount": amount, "currency": currency,
                  "items": items, "confirmation": confirmation}
        if customer_id:
            fields.update(customer_id=customer_id, paid_at=paid_at or confirmation.get("generated_at", ""))
        # Names, not bare words: "status" and "items" are DynamoDB reserved words.
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":f{i}": value for i, value in enumerate(fields.values())}
        self.table.update_item(
            Key={"order_id": order_id},
            UpdateExpression="SET " + ", ".join(f"{n} = {v}" for n, v in zip(names, values)),
            ExpressionAttributeNames=names, ExpressionAttributeValues=to_dynamo(values))
