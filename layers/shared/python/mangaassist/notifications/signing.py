"""Standard Webhooks signatures (https://www.standardwebhooks.com), as the official libraries verify.

``webhook-id`` names the message (the same on every retry), ``webhook-timestamp`` is when this
attempt was signed (Unix seconds), and ``webhook-signature`` holds one ``v1,<base64>`` per active
secret, space-separated: HMAC-SHA256 keyed with the base64-decoded part of ``whsec_<base64>``,
over ``{id}.{timestamp}.{body}``. Several signatures let a receiver rotate its secret without
missing a delivery.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as random_secrets

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(random_secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; ValueError when it is not one."""
    if not secret.startswith(PREFIX):
        raise ValueError("a signing secret is whsec_ followed by base64")
    key = base64.b64decode(secret[len(PREFIX):], validate=True)
    if len(key) < 24:
        raise ValueError("a signing secret holds at least 24 random bytes")
    return key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(msg_id: str, timestamp: int, body: bytes, secrets: list[str]) -> dict[str, str]:
    if not secrets:
        raise ValueError("a delivery is signed with at least one secret")
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(signature(secret, msg_id, timestamp, body) for secret in secrets),
            "content-type": "application/json"}
