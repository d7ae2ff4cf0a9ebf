"""CatalogUpdate.* -> the products table and the vector index, in revision order.

Each update carries a revision. The products table is written conditionally, so an older
revision than the stored one is skipped and never touches the index; the same revision again
(a redelivery, or a retry after the index write failed) redoes the index write, which is
idempotent (upsert or delete by product id).
"""
from __future__ import annotations

from botocore.exceptions import ClientError

from mangaassist.search import Doc
from mangaassist.workers.deps import Deps, from_dynamo, to_dynamo

CATALOG_FIELDS = ("title", "author", "synopsis", "genres", "price", "currency", "release_date", "volume", "publisher")
INDEX_FIELDS = ("title", "author", "genres", "price", "currency", "release_date")
NEWER_OR_SAME = "attribute_not_exists(product_id) OR revision <= :rev"
_default = Deps()


def document_text(product: dict) -> str:
    parts = [product.get("title"), product.get("author"), product.get("synopsis"), " ".join(product.get("genres") or [])]
    return " / ".join(str(p) for p in parts if p)


def index_product(event: dict, deps: Deps | None = None) -> dict:
    deps = deps or _default
    detail, kind = event["detail"], event["detail-type"].removeprefix("CatalogUpdate.")
    product_id, revision = detail["product_id"], detail["revision"]
    table = deps.table("products")
    try:
        if kind == "discontinued":
            table.update_item(
                Key={"product_id": product_id}, ConditionExpression=NEWER_OR_SAME,
                UpdateExpression="SET #s = :s, revision = :rev, discontinued_reason = :why",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": "discontinued", ":rev": revision, ":why": detail.get("reason", "")})
        else:
            existing = from_dynamo(table.get_item(Key={"product_id": product_id}).get("Item") or {})
            product = {**existing, **{k: detail[k] for k in CATALOG_FIELDS if k in detail},
                       "product_id": product_id, "revision": revision, "status": "active"}
            if "title" not in product:
                raise ValueError(f"{product_id}: a price change for a product never released has no title to index")
            table.put_item(Item=to_dynamo(product), ConditionExpression=NEWER_OR_SAME,
                           ExpressionAttributeValues={":rev": revision})
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return {"product_id": product_id, "revision": revision, "skipped": "stale revision"}
        raise
    if kind == "discontinued":
        deps.store.delete([product_id])
        return {"product_id": product_id, "revision": revision, "indexed": False}
    vector = deps.embedder.embed([document_text(product)])[0]
    fields = {k: product[k] for k in INDEX_FIELDS if k in product}
    deps.store.upsert([Doc(product_id, vector, {**fields, "product_id": product_id, "status": "active", "revision": revision})])
    return {"product_id": product_id, "revision": revision, "indexed": True}


def search_products(query: str, k: int, genre: str | None, deps: Deps | None = None) -> list[dict]:
    deps = deps or _default
    filters = {"status": "active", **({"genres": genre} if genre else {})}
    hits = deps.store.query(deps.embedder.embed([query])[0], k=k, filters=filters)
    return [{"product_id": h.id, "score": round(h.score, 4),
             **{f: h.fields[f] for f in ("title", "author", "price", "currency") if f in h.fields}} for h in hits]
