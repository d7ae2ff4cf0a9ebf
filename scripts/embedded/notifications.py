"""The subscription `make run` seeds, so a developer sees what partners receive.

On a start with no subscription at all, one is made to a receiver on this machine
(``LOCAL_RECEIVER_URL``, http://127.0.0.1:9000/webhooks by default) for every platform event. It
is made *disabled*: nothing listens there until a developer runs ``ops.py listen --port 9000``,
and an enabled subscription to nobody would retry every event into the notifications DLQ.
Enabling it is one call (``Subscriptions.set_enabled``, ``ops.py subscriptions enable`` where
ops.py has it). Once an operator has subscriptions of their own, nothing is seeded again.

stack.json's ``notifications`` names it with its current secrets (stack.json is the developer's
own file, mode 0600, as for the dev API key and partner secrets).
"""

from __future__ import annotations

from mangaassist.notifications.subscriptions import SubscriptionRefused, Subscriptions

SEED_DESCRIPTION = "seeded by make run: a receiver on this machine (ops.py listen)"
SEED_PATTERN = {"source": [{"prefix": "mangaassist."}]}


def seed_subscription(subscriptions: Subscriptions, url: str) -> tuple[dict, list[str]]:
    """stack.json's ``notifications`` entry, and notes for the ready message."""
    own = [item for item in subscriptions.every() if item.get("kind") == "subscription"]
    seeded = next((item for item in own if item.get("description") == SEED_DESCRIPTION), None)
    notes: list[str] = []
    if not own:
        try:
            seeded, _ = subscriptions.add(url, SEED_PATTERN, description=SEED_DESCRIPTION, enabled=False)
        except SubscriptionRefused as exc:
            return {"seeded": None}, [f"notifications: no subscription seeded for LOCAL_RECEIVER_URL={url}: {exc}"]
        notes.append(f"notifications: seeded subscription {seeded['subscription_id']} -> {url} (disabled)")
    if seeded is None:
        return {"seeded": None}, notes
    subscription_id = seeded["subscription_id"]
    return {
        "seeded": {
            "subscription_id": subscription_id,
            "url": seeded["url"],
            "enabled": bool(seeded["enabled"]),
            "event_pattern": seeded["event_pattern"],
            "secrets": subscriptions.active_secrets(subscription_id),
        }
    }, notes
