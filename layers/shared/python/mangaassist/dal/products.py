"""The products table: the catalog as the publisher last described each product, by ``product_id``.

Every change carries the publisher's revision and is one conditional UpdateItem that merges the
change's fields and returns the whole product: no read-modify-write, so two updates racing
cannot undo each other's fields, and an older revision never overwrites a newer one.
"""
from __future__ import annotations

from botocore.exceptions import ClientError

from mangaassist.dal import from_dynamo, to_dynamo

BATCH_GET_LIMIT = 100
NEWER_OR_SAME = "attribute_not_exists(product_id) OR revision <= :rev"
# A change without a title (a price change) can only complete a product that has one to index.
TITLED_NEWER_OR_SAME = "attribute_exists(title) AND revision <= :rev"


class ProductNotYetReleased(LookupError):
    """A change to a product whose release has not arrived yet (EventBridge does not keep order)."""


class Products:
    def __init__(self, table):
        self.table = table  # a mangaassist.dal.table.Table

    def write_revision(self, product_id: str, revision: int, changes: dict, *, requires_title: bool,
                       remove: tuple[str, ...] = ()) -> dict | None:
        """Apply ``changes`` at ``revision``; the product as stored now, or None for a stale revision.

        Raises ProductNotYetReleased when ``requires_title`` and the product has no title yet.
        """
        names = {f"#f{i}": name for i, name in enumerate(changes)}  # names: status, title... are reserved
        values = {f":f{i}": value for i, value in enumerate(changes.values())}
        expression = "SET revision = :rev, " + ", ".join(f"{n} = {v}" for n, v in zip(names, values))
        if remove:
            expression += " REMOVE " + ", ".join(remove)
        try:
            return from_dynamo(self.table.update_item(
                Key={"product_id": product_id}, UpdateExpression=expression,
                ConditionExpression=TITLED_NEWER_OR_SAME if requires_title else NEWER_OR_SAME,
                ExpressionAttributeNames=names, ExpressionAttributeValues=to_dynamo({**values, ":rev": revision}),
                ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")["Attributes"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            stored = exc.response.get("Item", {}).get("revision")
            if stored and int(stored["N"]) > revision:
                return None
            raise ProductNotYetReleased(f"{product_id}: revision {revision} changes a product with no title yet") \
                from exc

    def get(self, product_id: str) -> dict | None:
        item = self.table.get_item(Key={"product_id": product_id}).get("Item")
        return from_dynamo(item) if item else None

    def titles(self, product_ids: list[str]) -> dict[str, str]:
        """``{product_id: title}`` for those that have one; raises if DynamoDB left keys unprocessed."""
        found: dict[str, str] = {}
        for start in range(0, len(product_ids), BATCH_GET_LIMIT):
            items, unprocessed = self.table.batch_get([{"product_id": p}
                                                       for p in product_ids[start:start + BATCH_GET_LIMIT]])
            if unprocessed:
                # A missing title would make the model write a product id: let the caller retry later.
                raise RuntimeError("the products table left keys unprocessed (throttled)")
            found.update({i["product_id"]: i["title"] for i in items if i.get("title")})
        return found
