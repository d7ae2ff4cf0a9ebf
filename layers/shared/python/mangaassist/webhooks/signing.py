"""Partner-side signing: what Stripe, GitHub and a Standard Webhooks sender put in the headers.

Used by the operator CLI (`ops.py send`) and the tests. Standard Webhooks signatures come from
the official ``standardwebhooks`` package (a dev dependency, imported on use), so the platform is
tested against the reference signer, not against itself.
"""
from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from datetime import datetime, timezone
from typing import Sequence


def _many(secrets: str | Sequence[str]) -> list[str]:
    return [secrets] if isinstance(secrets, str) else list(secrets)


def sign_github(secrets: str | Sequence[str], body: bytes) -> dict:
    # GitHub signs with one secret; several here only mimic a sender mid-rotation for tests.
    secret = _many(secrets)[0]
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def sign_stripe(secrets: str | Sequence[str], body: bytes, timestamp: int | None = None) -> dict:
    ts = int(time.time()) if timestamp is None else int(timestamp)
    signed = f"{ts}.".encode() + body
    parts = [f"t={ts}"] + [f"v1={hmac.new(s.encode(), signed, hashlib.sha256).hexdigest()}" for s in _many(secrets)]
    return {"Stripe-Signature": ",".join(parts)}


def sign_standard(secrets: str | Sequence[str], body: bytes, msg_id: str | None = None,
                  timestamp: int | None = None, branded: bool = False) -> dict:
    from standardwebhooks import Webhook

    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    when = datetime.fromtimestamp(int(time.time()) if timestamp is None else int(timestamp), timezone.utc)
    # The library formats bytes as "b'...'": it must get the body as text.
    text = body.decode("utf-8")
    signature = " ".join(Webhook(s).sign(msg_id, when, text) for s in _many(secrets))
    prefix = "svix-" if branded else "webhook-"
    return {f"{prefix}id": msg_id, f"{prefix}timestamp": str(int(when.timestamp())), f"{prefix}signature": signature}


def sign(scheme: str, secrets: str | Sequence[str], body: bytes) -> dict:
    """Headers for a source's scheme as named in wiring.json (stripe, github, standard-webhooks)."""
    if scheme == "stripe":
        return sign_stripe(secrets, body)
    if scheme == "github":
        return {**sign_github(secrets, body), "X-GitHub-Delivery": str(uuid.uuid4()), "X-GitHub-Event": "ping"}
    if scheme == "standard-webhooks":
        return sign_standard(secrets, body)
    raise ValueError(f"unknown scheme {scheme!r}")
