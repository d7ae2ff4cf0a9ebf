"""The reviews table: each review with its moderation decision, by ``review_id``."""
from __future__ import annotations

from mangaassist.dal import from_dynamo, to_dynamo

REVIEW_FIELDS = ("review_id", "product_id", "customer_id", "rating", "text")


BY_PRODUCT = "by_product"  # the global secondary index on product_id (terraform/wiring.json)


class Reviews:
    def __init__(self, table):
        self.table = table  # a mangaassist.dal.table.Table (or a boto3 Table resource)

    def approved_for(self, product_id: str, limit: int) -> list[dict]:
        """Up to ``limit`` approved reviews of the product."""
        found: list[dict] = []
        request = {"IndexName": BY_PRODUCT, "KeyConditionExpression": "product_id = :product",
                   "FilterExpression": "#status = :approved", "ExpressionAttributeNames": {"#status": "status"},
                   "ExpressionAttributeValues": {":product": product_id, ":approved": "approved"}}
        while len(found) < limit:
            page = self.table.query(**request)
            found += [from_dynamo(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found[:limit]

    def save_moderation(self, review: dict, *, status: str, moderation: dict) -> None:
        """The review as submitted, its status (approved | quarantined | needs_review) and why."""
        self.table.put_item(Item=to_dynamo({**{k: review[k] for k in REVIEW_FIELDS}, "status": status,
                                            "moderation": moderation}))
