"""The reviews table: each review with its moderation decision, by ``review_id``."""
from __future__ import annotations

from mangaassist.dal import to_dynamo

REVIEW_FIELDS = ("review_id", "product_id", "customer_id", "rating", "text")


class Reviews:
    def __init__(self, table):
        self.table = table  # a boto3 DynamoDB Table

    def save_moderation(self, review: dict, *, status: str, moderation: dict) -> None:
        """The review as submitted, its status (approved | quarantined | needs_review) and why."""
        self.table.put_item(Item=to_dynamo({**{k: review[k] for k in REVIEW_FIELDS}, "status": status,
                                            "moderation": moderation}))
