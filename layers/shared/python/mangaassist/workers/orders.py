"""PaymentCompleted -> a confirmation written by the model, stored on the order, announced.

The system prompt carries the order as facts in an <order> block (titles from the products table,
quantities, the total formatted for the currency) so the model, Bedrock's or the local one,
writes from them and never invents a title or a price. The order is written with one UpdateItem,
then OrderConfirmationGenerated and InferenceCompleted are published together; a failure raises,
and the retry rewrites the same order and publishes again (consumers are idempotent per event id).
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

from mangaassist.events.publisher import Event
from mangaassist.models import inference_event
from mangaassist.workers.deps import Deps, to_dynamo

FEATURE = "order_confirmation"
INSTRUCTIONS = ("You write order confirmations for a Japanese manga store. Write two or three warm, short sentences "
                "in Japanese that restate the order below. Use only its facts: never add a title, a price or a date.")
BATCH_GET_LIMIT = 100
_default = Deps()


def money(amount, currency: str) -> str:
    if currency == "JPY":  # zero-decimal
        return f"¥{int(amount):,}"
    return f"{amount:,.2f} {currency}"


def catalog_titles(deps: Deps, product_ids: list[str]) -> dict[str, str]:
    table = deps.table("products")
    found: dict[str, str] = {}
    for start in range(0, len(product_ids), BATCH_GET_LIMIT):
        keys = [{"product_id": p} for p in product_ids[start:start + BATCH_GET_LIMIT]]
        response = deps.dynamodb.batch_get_item(RequestItems={table.name: {"Keys": keys}})
        if response.get("UnprocessedKeys"):
            # A missing title would make the model write a product id; let EventBridge retry later.
            raise RuntimeError("the products table left keys unprocessed (throttled)")
        found.update({i["product_id"]: i["title"] for i in response["Responses"].get(table.name, []) if i.get("title")})
    return found


def confirm_order(event: dict, deps: Deps | None = None) -> dict:
    deps = deps or _default
    detail = event["detail"]
    known = catalog_titles(deps, sorted({i["product_id"] for i in detail.get("items", [])}))
    # The catalog is the source of truth for titles; the payment's own titles only fill gaps.
    items = [{**i, "title": known.get(i["product_id"]) or i.get("title") or i["product_id"]} for i in detail.get("items", [])]
    facts = [f"注文番号: {detail['order_id']}", *(f"商品: {i['title']} × {i['quantity']}" for i in items),
             f"合計: {money(detail['amount'], detail['currency'])}"]
    system = INSTRUCTIONS + "\n<order>\n" + "\n".join(facts) + "\n</order>"
    completion = deps.provider.converse([{"role": "user", "content": [{"text": "この注文の確認メッセージを書いてください。"}]}],
                                        system=system, max_tokens=300, feature=FEATURE)
    request_id = str(uuid.uuid4())
    confirmation = {"text": completion.text, "model_id": completion.model_id, "request_id": request_id,
                    "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    deps.table("orders").update_item(
        Key={"order_id": detail["order_id"]},
        # Names, not bare words: "status" and "items" are DynamoDB reserved words.
        UpdateExpression="SET #p = :p, #s = :s, #a = :a, #c = :c, #i = :i, #conf = :conf",
        ExpressionAttributeNames={"#p": "payment_id", "#s": "status", "#a": "amount", "#c": "currency", "#i": "items",
                                  "#conf": "confirmation"},
        ExpressionAttributeValues=to_dynamo({":p": detail["payment_id"], ":s": "paid", ":a": detail["amount"],
                                             ":c": detail["currency"], ":i": items, ":conf": confirmation}),
    )
    ids = deps.publish([
        Event("mangaassist.ai", "OrderConfirmationGenerated", {
            "version": "1", "order_id": detail["order_id"], "payment_id": detail["payment_id"],
            "text": completion.text, "model_id": completion.model_id, "request_id": request_id}),
        Event("mangaassist.ai", "InferenceCompleted", inference_event(
            completion, request_id=request_id, feature=FEATURE, correlation_id=event["id"])),
    ])
    return {"order_id": detail["order_id"], "model_id": completion.model_id, "events": ids}
