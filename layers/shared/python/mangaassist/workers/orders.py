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

from mangaassist.deps import Deps
from mangaassist.events.publisher import Event
from mangaassist.inference import inference_completed

FEATURE = "order_confirmation"
INSTRUCTIONS = ("You write order confirmations for a Japanese manga store. Write two or three warm, short sentences "
                "in Japanese that restate the order below. Use only its facts: never add a title, a price or a date.")
_default = Deps()


def money(amount, currency: str) -> str:
    if currency == "JPY":  # zero-decimal
        return f"¥{int(amount):,}"
    return f"{amount:,.2f} {currency}"


def confirm_order(event: dict, deps: Deps | None = None) -> dict:
    deps = deps or _default
    detail = event["detail"]
    known = deps.products.titles(sorted({i["product_id"] for i in detail.get("items", [])}))
    # The catalog is the source of truth for titles; the payment's own titles only fill gaps.
    items = [{**i, "title": known.get(i["product_id"]) or i.get("title") or i["product_id"]}
             for i in detail.get("items", [])]
    facts = [f"注文番号: {detail['order_id']}", *(f"商品: {i['title']} × {i['quantity']}" for i in items),
             f"合計: {money(detail['amount'], detail['currency'])}"]
    system = INSTRUCTIONS + "\n<order>\n" + "\n".join(facts) + "\n</order>"
    ask = [{"role": "user", "content": [{"text": "この注文の確認メッセージを書いてください。"}]}]
    completion = deps.provider.converse(ask, system=system, max_tokens=300, feature=FEATURE)
    request_id = str(uuid.uuid4())
    confirmation = {"text": completion.text, "model_id": completion.model_id, "request_id": request_id,
                    "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    deps.orders.mark_paid(detail["order_id"], payment_id=detail["payment_id"], amount=detail["amount"],
                          currency=detail["currency"], items=items, confirmation=confirmation,
                          customer_id=detail.get("customer_id"), paid_at=detail.get("occurred_at"))
    ids = deps.publish([
        Event("mangaassist.ai", "OrderConfirmationGenerated", {
            "version": "1", "order_id": detail["order_id"], "payment_id": detail["payment_id"],
            "text": completion.text, "model_id": completion.model_id, "request_id": request_id}),
        inference_completed(completion, request_id=request_id, feature=FEATURE, correlation_id=event["id"]),
    ])
    return {"order_id": detail["order_id"], "model_id": completion.model_id, "events": ids}
