"""The orders table: one item per order, keyed by ``order_id``."""
from __future__ import annotations

from mangaassist.dal import to_dynamo


class Orders:
    def __init__(self, table):
        self.table = table  # a boto3 DynamoDB Table

    def mark_paid(self, order_id: str, *, payment_id: str, amount, currency: str, items: list[dict],
                  confirmation: dict) -> None:
        """One UpdateItem: a retry rewrites the same values."""
        self.table.update_item(
            Key={"order_id": order_id},
            # Names, not bare words: "status" and "items" are DynamoDB reserved words.
            UpdateExpression="SET #p = :p, #s = :s, #a = :a, #c = :c, #i = :i, #conf = :conf",
            ExpressionAttributeNames={"#p": "payment_id", "#s": "status", "#a": "amount", "#c": "currency",
                                      "#i": "items", "#conf": "confirmation"},
            ExpressionAttributeValues=to_dynamo({":p": payment_id, ":s": "paid", ":a": amount, ":c": currency,
                                                 ":i": items, ":conf": confirmation}),
        )
