"""CatalogUpdate.* -> the products table and the vector index, in revision order.

Each update carries a revision. The products item is changed with one conditional UpdateItem
that merges the update's fields and returns the whole product (no read-modify-write, so two
updates racing cannot undo each other's fields). An older revision than the stored one is skipped
and never touches the index; the same revision again (a redelivery, or a retry after the index
write failed) redoes the index write, which is idempotent (upsert or delete by product id).
"""
from __future__ import annotations

from botocore.exceptions import ClientError

from mangaassist.search import Doc
from mangaassist.workers.deps import Deps, from_dynamo, to_dynamo

CATALOG_FIELDS = ("title", "author", "synopsis", "genres", "price", "currency", "release_date", "volume", "publisher")
INDEX_FIELDS = ("title", "author", "genres", "price", "currency", "release_date")
RESULT_FIELDS = ("title", "author", "price", "currency")
NEWER_OR_SAME = "attribute_not_exists(product_id) OR revision <= :rev"
# An update without a title (a price change) can only complete a product that has one to index.
TITLED_NEWER_OR_SAME = "attribute_exists(title) AND revision <= :rev"
_default = Deps()


def document_text(product: dict) -> str:
    parts = [product.get("title"), product.get("author"), product.get("synopsis"), " ".join(product.get("genres") or [])]
    return " / ".join(str(p) for p in parts if p)


def write_revision(table, product_id: str, revision: int, changes: dict, *, condition: str,
                   remove: tuple[str, ...] = ()) -> dict | None:
    """Apply ``changes`` at ``revision``; the product as stored now, or None for a stale revision."""
    names = {f"#f{i}": name for i, name in enumerate(changes)}  # names: status, title... are reserved words
    values = {f":f{i}": value for i, value in enumerate(changes.values())}
    expression = "SET revision = :rev, " + ", ".join(f"{n} = {v}" for n, v in zip(names, values))
    if remove:
        expression += " REMOVE " + ", ".join(remove)
    try:
        return from_dynamo(table.update_item(
            Key={"product_id": product_id}, UpdateExpression=expression, ConditionExpression=condition,
            ExpressionAttributeNames=names, ExpressionAttributeValues=to_dynamo({**values, ":rev": revision}),
            ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")["Attributes"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        stored = exc.response.get("Item", {}).get("revision")
        if stored and int(stored["N"]) > revision:
            return None
        # Not stale, so the product has no title yet: its release has not arrived (EventBridge
        # does not keep order). Raising lets the retry policy deliver this again after it.
        raise LookupError(f"{product_id}: revision {revision} changes a product with no title yet") from exc


def index_product(event: dict, deps: Deps | None = None) -> dict:
    deps = deps or _default
    detail, kind = event["detail"], event["detail-type"].removeprefix("CatalogUpdate.")
    product_id, revision = detail["product_id"], detail["revision"]
    summary = {"product_id": product_id, "revision": revision}
    table = deps.table("products")
    if kind == "discontinued":
        # Written even for an unknown product: the tombstone keeps an older release from reviving it.
        changes = {"status": "discontinued", **({"discontinued_reason": detail["reason"]} if "reason" in detail else {})}
        if write_revision(table, product_id, revision, changes, condition=NEWER_OR_SAME) is None:
            return {**summary, "skipped": "stale revision"}
        deps.store.delete([product_id])
        return {**summary, "indexed": False}
    changes = {**{k: detail[k] for k in CATALOG_FIELDS if k in detail}, "status": "active"}
    product = write_revision(table, product_id, revision, changes, remove=("discontinued_reason",),
                             condition=NEWER_OR_SAME if "title" in detail else TITLED_NEWER_OR_SAME)
    if product is None:
        return {**summary, "skipped": "stale revision"}
    vector = deps.embedder.embed([document_text(product)])[0]
    fields = {k: product[k] for k in INDEX_FIELDS if k in product}
    deps.store.upsert([Doc(product_id, vector, {**fields, "product_id": product_id, "status": "active",
                                                "revision": revision})])
    return {**summary, "indexed": True}


def search_products(query: str, k: int, genre: str | None, deps: Deps | None = None) -> list[dict]:
    deps = deps or _default
    filters = {"status": "active", **({"genres": genre} if genre else {})}
    hits = deps.store.query(deps.embedder.embed([query])[0], k=k, filters=filters)
    return [{"product_id": h.id, **{f: h.fields[f] for f in RESULT_FIELDS if f in h.fields}, "score": round(h.score, 4)}
            for h in hits]
