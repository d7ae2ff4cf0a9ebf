"""The reviews table: each review with its moderation decision, by ``review_id``."""
from __future__ import annotations

from mangaassist.dal import from_dynamo, to_dynamo

REVIEW_FIELDS = ("review_id", "product_id", "customer_id", "rating", "text")


BY_PRODUCT = "by_product"  # the global secondary index on product_id (terraform/wiring.json)


class Reviews:
    def __init__(self, table):
        self.table = table  # a boto3 DynamoDB Table

    def approved_for(self, product_id: str, limit: int) -> list[dict]:
        """Up to ``limit`` approved reviews of the product."""
        from boto3.dynamodb.conditions import Attr, Key

        found: list[dict] = []
        request = {"IndexName": BY_PRODUCT, "KeyConditionExpression": Key("product_id").eq(product_id),
                   "FilterExpression": Attr("status").eq("approved")}
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
