"""Partner-side signing: the headers a sender puts on a webhook, for the tests and `ops.py send`.

Standard Webhooks ``v1`` signatures come from the official ``standardwebhooks`` package, so the
verifier is tested against the reference signer rather than against itself. That package is a
dev dependency (not in the Lambda layer), hence imported on use, and it cannot sign ``v1a``
(standard-webhooks #124): ``whsk_`` keys are signed with PyNaCl (libsodium) instead.

Every signer takes one secret or several. Several stand for a sender in mid-rotation, which
sends one signature per secret; GitHub and Slack headers hold only one, signed with the first.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime


def _listed(secrets: str | Sequence[str]) -> list[str]:
    return [secrets] if isinstance(secrets, str) else list(secrets)


def _unix(timestamp: float | None) -> int:
    return int(time.time() if timestamp is None else timestamp)


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_github(secrets: str | Sequence[str], body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + _hex_hmac(_listed(secrets)[0], body)}


def sign_stripe(secrets: str | Sequence[str], body: bytes, timestamp: float | None = None) -> dict[str, str]:
    ts = _unix(timestamp)
    signatures = [f"v1={_hex_hmac(secret, f'{ts}.'.encode() + body)}" for secret in _listed(secrets)]
    return {"Stripe-Signature": ",".join([f"t={ts}", *signatures])}


def sign_slack(secrets: str | Sequence[str], body: bytes, timestamp: float | None = None) -> dict[str, str]:
    ts = _unix(timestamp)
    return {"X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": "v0=" + _hex_hmac(_listed(secrets)[0], f"v0:{ts}:".encode() + body)}


def _sign_v1a(private_key: str, message: bytes) -> str:
    from nacl.signing import SigningKey

    # whsk_ is the base64 of seed || public key (libsodium's layout); the seed is the private key.
    seed = base64.b64decode(private_key.removeprefix("whsk_"))[:32]
    return "v1a," + base64.b64encode(SigningKey(seed).sign(message).signature).decode()


def sign_standard(secrets: str | Sequence[str], body: bytes, msg_id: str | None = None,
                  timestamp: float | None = None, branded: bool = False) -> dict[str, str]:
    """Standard Webhooks headers (``svix-*`` if ``branded``); ``whsec_`` secrets and ``whsk_`` keys mix."""
    from standardwebhooks import Webhook

    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    ts = _unix(timestamp)
    when = datetime.fromtimestamp(ts, UTC)  # tz-aware: the package reads a naive one as UTC
    text = body.decode()  # the package wants text: bytes would be signed as "b'...'", without an error
    signatures = [_sign_v1a(key, f"{msg_id}.{ts}.".encode() + body) if key.startswith("whsk_")
                  else Webhook(key).sign(msg_id, when, text) for key in _listed(secrets)]
    prefix = "svix-" if branded else "webhook-"
    return {f"{prefix}id": msg_id, f"{prefix}timestamp": str(ts), f"{prefix}signature": " ".join(signatures)}


def sign(scheme: str, secrets: str | Sequence[str], body: bytes) -> dict[str, str]:
    """Headers for a source's scheme as named in wiring.json (stripe, github, standard-webhooks)."""
    if scheme == "stripe":
        return sign_stripe(secrets, body)
    if scheme == "github":
        return {**sign_github(secrets, body), "X-GitHub-Delivery": str(uuid.uuid4()), "X-GitHub-Event": "ping"}
    if scheme == "standard-webhooks":
        return sign_standard(secrets, body)
    raise ValueError(f"unknown scheme {scheme!r}")
