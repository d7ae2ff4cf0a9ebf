"""CatalogUpdate.* -> the products table and the vector index, in revision order.

Each update carries a revision and is written with Products.write_revision (mangaassist.dal):
an older revision than the stored one is skipped and never touches the index; the same revision
again (a redelivery, or a retry after the index write failed) redoes the index write, which is
idempotent (upsert or delete by product id).
"""
from __future__ import annotations

from mangaassist.deps import Deps
from mangaassist.search import Doc

# What a CatalogUpdate detail may set on a product.
PRODUCT_FIELDS = ("title", "author", "synopsis", "genres", "price", "currency", "release_date", "volume", "publisher")
INDEX_FIELDS = ("title", "author", "genres", "price", "currency", "release_date")
RESULT_FIELDS = ("title", "author", "price", "currency")
_default = Deps()


def document_text(product: dict) -> str:
    genres = " ".join(product.get("genres") or [])
    parts = [product.get("title"), product.get("author"), product.get("synopsis"), genres]
    return " / ".join(str(p) for p in parts if p)


def index_product(event: dict, deps: Deps | None = None) -> dict:
    deps = deps or _default
    detail, kind = event["detail"], event["detail-type"].removeprefix("CatalogUpdate.")
    product_id, revision = detail["product_id"], detail["revision"]
    summary = {"product_id": product_id, "revision": revision}
    if kind == "discontinued":
        # Written even for an unknown product: the tombstone keeps an older release from reviving it.
        changes = {"status": "discontinued"}
        if "reason" in detail:
            changes["discontinued_reason"] = detail["reason"]
        if deps.products.write_revision(product_id, revision, changes, requires_title=False) is None:
            return {**summary, "skipped": "stale revision"}
        deps.store.delete([product_id])
        return {**summary, "indexed": False}
    changes = {**{k: detail[k] for k in PRODUCT_FIELDS if k in detail}, "status": "active"}
    product = deps.products.write_revision(product_id, revision, changes, remove=("discontinued_reason",),
                                           requires_title="title" not in detail)
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
