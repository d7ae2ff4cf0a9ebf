"""Partner payloads -> platform events. One mapper per partner; which one a source uses is
configuration (wiring.json "sources"). A mapper returns every event a delivery implies: a catalog
batch of 500 items is 500 events, all published."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from mangaassist.events.publisher import Event
from mangaassist.http import header

DETAIL_VERSION = "1"

# Stripe sends amounts in the currency's smallest unit. Zero-decimal currencies (JPY above all,
# for a Japanese store) have no smaller unit: 1500 means ¥1,500, not ¥15.
# https://docs.stripe.com/currencies#zero-decimal
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())


def major_units(amount_minor: int, currency: str):
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return amount_minor
    exponent = 3 if code in THREE_DECIMAL else 2
    return float(Decimal(amount_minor).scaleb(-exponent))


@dataclass(frozen=True)
class Delivery:
    source: str
    delivery_id: str
    headers: Mapping[str, str]
    received_at: datetime
    signed_timestamp: int | None = None

    def header(self, name: str) -> str | None:
        return header(self.headers, name)


def _iso(epoch: int | float | None, fallback: datetime) -> str:
    when = datetime.fromtimestamp(epoch, UTC) if isinstance(epoch, (int, float)) else fallback
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _stripe_payment(obj: dict, event: dict, delivery: Delivery) -> Event:
    metadata = obj.get("metadata") or {}
    currency = obj["currency"]
    amount = obj["amount_total"]
    customer = metadata.get("customer_id") or (obj.get("customer") if isinstance(obj.get("customer"), str) else None)
    detail = {
        "version": DETAIL_VERSION,
        "payment_id": obj.get("payment_intent") or obj["id"],
        "order_id": metadata.get("order_id") or obj.get("client_reference_id") or obj["id"],
        "amount": major_units(amount, currency),
        "amount_minor": amount,
        "currency": currency.upper(),
        "provider": "stripe",
        "provider_event_id": event["id"],
        "occurred_at": _iso(event.get("created"), delivery.received_at),
    }
    if customer:
        detail["customer_id"] = customer
    return Event("mangaassist.payments", "PaymentCompleted", detail)


def map_stripe(payload: dict, delivery: Delivery) -> list[Event]:
    kind, obj = payload.get("type"), payload.get("data", {}).get("object", {})
    if kind == "checkout.session.completed":
        # Konbini and bank transfers complete the session unpaid; the money arrives with
        # checkout.session.async_payment_succeeded, which is when the order is paid.
        if obj.get("payment_status") == "unpaid":
            return []
        return [_stripe_payment(obj, payload, delivery)]
    if kind == "checkout.session.async_payment_succeeded":
        return [_stripe_payment(obj, payload, delivery)]
    if kind == "charge.refunded":
        metadata = obj.get("metadata") or {}
        currency, amount = obj["currency"], obj["amount_refunded"]
        refunds = (obj.get("refunds") or {}).get("data") or []
        detail = {
            "version": DETAIL_VERSION,
            "payment_id": obj.get("payment_intent") or obj["id"],
            "amount": major_units(amount, currency),
            "amount_minor": amount,
            "currency": currency.upper(),
            "provider": "stripe",
            "provider_event_id": payload["id"],
            "occurred_at": _iso(payload.get("created"), delivery.received_at),
        }
        if metadata.get("order_id"):
            detail["order_id"] = metadata["order_id"]
        if refunds and refunds[0].get("id"):
            detail["refund_id"] = refunds[0]["id"]
            if refunds[0].get("reason"):
                detail["reason"] = refunds[0]["reason"]
        return [Event("mangaassist.payments", "RefundProcessed", detail)]
    return []  # acknowledged, nothing for the platform to do


class EventMismatch(ValueError):
    """The delivery's unsigned event name contradicts its signed payload."""


# X-GitHub-Event is not signed: a captured body could be re-posted under another event name. Where
# an event's payload has a shape of its own, the name must agree with it (GitHub's webhook docs).
GITHUB_EVENT_KEYS = {
    "ping": ("zen", "hook_id"),
    "push": ("ref", "before", "after"),
    "create": ("ref", "ref_type"),
    "delete": ("ref", "ref_type"),
    "issues": ("issue",),
    "issue_comment": ("issue", "comment"),
    "pull_request": ("pull_request",),
    "pull_request_review": ("pull_request", "review"),
    "pull_request_review_comment": ("pull_request", "comment"),
    "release": ("release",),
    "fork": ("forkee",),
    "workflow_run": ("workflow_run",),
    "workflow_job": ("workflow_job",),
    "check_run": ("check_run",),
    "check_suite": ("check_suite",),
    "deployment": ("deployment",),
    "deployment_status": ("deployment_status",),
    "discussion": ("discussion",),
}


def github_event(payload: dict, delivery: Delivery) -> str:
    """The event name, checked against the payload's shape where the shape tells."""
    name = delivery.header("x-github-event") or "unknown"
    missing = [key for key in GITHUB_EVENT_KEYS.get(name, ()) if key not in payload]
    if missing:
        raise EventMismatch(f"X-GitHub-Event {name!r} does not match the payload: it has no {', '.join(missing)}")
    if name != "ping" and "zen" in payload and "hook_id" in payload:
        raise EventMismatch(f"X-GitHub-Event {name!r} does not match the payload: it is a ping")
    return name


def map_github(payload: dict, delivery: Delivery) -> list[Event]:
    detail = {
        "version": DETAIL_VERSION,
        "event": github_event(payload, delivery),
        "delivery_id": delivery.delivery_id,
    }
    if isinstance(payload.get("action"), str):
        detail["action"] = payload["action"]
    repository = payload.get("repository")
    if isinstance(repository, dict) and isinstance(repository.get("full_name"), str):
        detail["repository"] = repository["full_name"]
    sender = payload.get("sender")
    if isinstance(sender, dict) and isinstance(sender.get("login"), str):
        detail["sender"] = sender["login"]
    return [Event("mangaassist.codehost", "RepositoryEvent", detail)]


def map_review(payload: dict, delivery: Delivery) -> list[Event]:
    fields = ("review_id", "product_id", "customer_id", "rating", "text")
    detail = {"version": DETAIL_VERSION, **{k: payload[k] for k in fields}}
    detail["submitted_at"] = _iso(delivery.signed_timestamp, delivery.received_at)
    return [Event("mangaassist.reviews", "ReviewSubmitted", detail)]


CATALOG_ITEM_FIELDS = ("title", "author", "synopsis", "genres", "price", "currency", "previous_price",
                  "release_date", "volume", "publisher", "reason")


def map_catalog(payload: dict, delivery: Delivery) -> list[Event]:
    detail_type = f"CatalogUpdate.{payload['type']}"
    # The update's version orders updates of one product: the publisher's revision when it sends
    # one, else the signed send time (later deliveries carry later timestamps).
    default_revision = delivery.signed_timestamp or int(delivery.received_at.timestamp())
    events = []
    for item in payload["items"]:
        detail = {"version": DETAIL_VERSION, "batch_id": payload["batch_id"], "product_id": item["id"],
                  "revision": item.get("revision", default_revision)}
        detail.update({k: item[k] for k in CATALOG_ITEM_FIELDS if k in item})
        events.append(Event("mangaassist.catalog", detail_type, detail))
    return events


MAPPERS: dict[str, Callable[[dict, Delivery], list[Event]]] = {
    "stripe": map_stripe,
    "github": map_github,
    "reviews": map_review,
    "catalog": map_catalog,
}
