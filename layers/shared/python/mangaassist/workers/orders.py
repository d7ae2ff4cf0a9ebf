"""PaymentCompleted -> a confirmation written by the model, stored on the order, announced.

The prompt carries the order as facts (titles from the products table, quantities, the total
formatted for the currency) so the model, Bedrock's or the local one, writes from them and never
invents a title or a price. The order is written with one UpdateItem, then OrderConfirmationGenerated
and InferenceCompleted are published together; a failure raises, and the retry rewrites the same
order and publishes again (consumers are idempotent per event id).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from mangaassist.events.publisher import Event
from mangaassist.models import inference_event
from mangaassist.workers.deps import Deps, from_dynamo, to_dynamo

SYSTEM = ("You write order confirmations for a Japanese manga store. Write two or three warm, short sentences "
          "in Japanese that restate the order below. Use only the facts given: never add a title, a price or a date.")
_default = Deps()


def money(amount, currency: str) -> str:
    if currency == "JPY":
        return f"¥{int(amount):,}"
    return f"{amount:,.2f} {currency}"


def titles(deps: Deps, product_ids: list[str]) -> dict[str, str]:
    if not product_ids:
        return {}
    table = deps.table("products")
    response = deps.dynamodb.batch_get_item(RequestItems={table.name: {"Keys": [{"product_id": p} for p in product_ids]}})
    return {item["product_id"]: item["title"] for item in response["Responses"].get(table.name, []) if item.get("title")}


def confirm_order(event: dict, deps: Deps | None = None) -> dict:
    deps = deps or _default
    detail = event["detail"]
    items = detail.get("items", [])
    known = titles(deps, sorted({i["product_id"] for i in items}))
    lines = [f"注文番号: {detail['order_id']}"]
    for item in items:
        title = known.get(item["product_id"]) or item.get("title") or item["product_id"]
        lines.append(f"商品: {title} × {item['quantity']}")
    lines.append(f"合計: {money(detail['amount'], detail['currency'])}")
    prompt = "\n".join(lines) + "\nこの注文の確認メッセージを書いてください。"
    completion = deps.provider.converse([{"role": "user", "content": [{"text": prompt}]}], system=SYSTEM,
                                        max_tokens=300, feature="order_confirmation")
    request_id = str(uuid.uuid4())
    confirmation = {"text": completion.text, "model_id": completion.model_id, "request_id": request_id,
                    "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
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
            completion, request_id=request_id, feature="order_confirmation", correlation_id=event["id"])),
    ])
    return from_dynamo({"order_id": detail["order_id"], "events": ids, "model_id": completion.model_id})
