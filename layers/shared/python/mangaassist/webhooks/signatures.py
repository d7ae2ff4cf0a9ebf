"""Signature verification for partner webhooks, over the raw bytes as received.

Schemes (named as in ../shared/conformance/webhooks/signature_vectors.json):
- ``github-hmac-sha256``: ``X-Hub-Signature-256: sha256=<hex>`` over the body; no timestamp, so
  replay protection is the ``X-GitHub-Delivery`` id (the ingress's idempotency claim).
- ``stripe-v1``: ``Stripe-Signature: t=<ts>,v1=<hex>[,v1=...]``, HMAC-SHA256 keyed with the whole
  ``whsec_...`` string over ``{t}.{body}``.
- ``standard-webhooks-v1``: ``webhook-id/-timestamp/-signature`` (or the Svix-branded ``svix-*``),
  ``v1,<base64>`` entries keyed with the base64 secret after ``whsec_``, over ``{id}.{ts}.{body}``;
  ``v1a,<base64>`` ed25519 entries when the source has public keys (``whpk_...``).
- ``slack-v0``: ``X-Slack-Signature: v0=<hex>`` over ``v0:{ts}:{body}``.

Every secret in ``secrets`` is active (rotation), and a header may carry several signatures:
one valid pair is enough. Every comparison is constant-time. Anything malformed is a
SignatureError with a code and a message, never another exception.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Mapping, Sequence

MAX_HEADER = 8192  # longer than any real signature header; caps the work a bad request can cause
MAX_SIGNATURES = 16


@dataclass(frozen=True)
class Verified:
    scheme: str
    delivery_id: str | None
    timestamp: int | None
    key_index: int  # which secret (or public key) matched: watch it while a rotation is under way


class SignatureError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _header(headers: Mapping[str, str], *names: str) -> str | None:
    wanted = {n.lower() for n in names}
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() in wanted:
            if not isinstance(value, str):
                raise SignatureError("malformed_signature", f"{key} is not text")
            if len(value) > MAX_HEADER:
                raise SignatureError("malformed_signature", f"{key} is too long")
            return value
    return None


def _timestamp(value: str | None, name: str) -> int:
    if value is None or not value.strip():
        raise SignatureError("missing_timestamp", f"{name} is missing")
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise SignatureError("malformed_timestamp", f"{name} must be unix seconds")
    return int(value)


def _check_window(ts: int, now: float, tolerance: int | None, future_tolerance: int | None) -> None:
    if tolerance is None:  # the caller checks freshness some other way (stripe-python's tolerance=None)
        return
    if ts < now - tolerance:
        raise SignatureError("timestamp_out_of_window", f"timestamp is more than {tolerance}s old")
    if future_tolerance is not None and ts > now + future_tolerance:
        raise SignatureError("timestamp_out_of_window", f"timestamp is more than {future_tolerance}s in the future")


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _hex(text: str) -> bytes | None:
    try:
        return bytes.fromhex(text) if text.isascii() else None
    except ValueError:
        return None


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def _first_match(candidates: Sequence[bytes], keys: Sequence, sign) -> int | None:
    """Index of the first key whose signature equals one of ``candidates``; checks every pair."""
    found = None
    for index, key in enumerate(keys):
        expected = sign(key)
        for candidate in candidates:
            if hmac.compare_digest(candidate, expected) and found is None:
                found = index
    return found


def _require_secrets(secrets: Sequence[str]) -> None:
    if not secrets or not all(isinstance(s, str) and s for s in secrets):
        raise SignatureError("no_secret", "the source has no active secret configured")


def _github(headers, body, secrets, **_) -> Verified:
    value = _header(headers, "X-Hub-Signature-256")
    if value is None:
        raise SignatureError("missing_signature", "X-Hub-Signature-256 is missing")
    prefix, _, digest = value.strip().partition("=")
    candidate = _hex(digest)
    if prefix != "sha256" or candidate is None or len(candidate) != 32:
        raise SignatureError("malformed_signature", "X-Hub-Signature-256 must be sha256=<64 hex digits>")
    _require_secrets(secrets)
    index = _first_match([candidate], secrets, lambda s: _hmac(s.encode(), body))
    if index is None:
        raise SignatureError("bad_signature", "X-Hub-Signature-256 does not match the body")
    return Verified("github-hmac-sha256", _header(headers, "X-GitHub-Delivery"), None, index)


def _stripe(headers, body, secrets, now, tolerance, future_tolerance, **_) -> Verified:
    value = _header(headers, "Stripe-Signature")
    if value is None:
        raise SignatureError("missing_signature", "Stripe-Signature is missing")
    timestamp, candidates = None, []
    for part in value.split(","):
        key, sep, item = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed_signature", "Stripe-Signature must be t=<ts>,v1=<hex>")
        if key == "t":
            timestamp = item
        elif key == "v1":
            digest = _hex(item)
            if digest is not None and len(digest) == 32:
                candidates.append(digest)
    ts = _timestamp(timestamp, "Stripe-Signature t")
    if not candidates or len(candidates) > MAX_SIGNATURES:
        raise SignatureError("malformed_signature", "Stripe-Signature has no usable v1 signature")
    _require_secrets(secrets)
    signed = f"{ts}.".encode() + body
    index = _first_match(candidates, secrets, lambda s: _hmac(s.encode(), signed))
    if index is None:
        raise SignatureError("bad_signature", "no v1 signature matches the body and timestamp")
    _check_window(ts, now, tolerance, future_tolerance)
    return Verified("stripe-v1", None, ts, index)


def _standard_key(secret: str) -> bytes:
    raw = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    key = _b64(raw)
    if key is None:
        raise SignatureError("bad_secret", "a configured secret is not whsec_<base64>")
    return key


def _verify_ed25519(public_key: str, signature: bytes, message: bytes) -> bool:
    from nacl.exceptions import BadSignatureError, CryptoError  # libsodium, only for v1a sources
    from nacl.signing import VerifyKey

    raw = _b64(public_key[len("whpk_"):] if public_key.startswith("whpk_") else public_key)
    if raw is None or len(raw) != 32:
        raise SignatureError("bad_secret", "a configured public key is not whpk_<base64 of 32 bytes>")
    try:
        VerifyKey(raw).verify(message, signature)
        return True
    except (BadSignatureError, CryptoError, ValueError):
        return False


def _standard(headers, body, secrets, public_keys, now, tolerance, future_tolerance, **_) -> Verified:
    branded = _header(headers, "webhook-signature") is None and _header(headers, "svix-signature") is not None
    prefix = "svix-" if branded else "webhook-"
    msg_id = _header(headers, f"{prefix}id")
    value = _header(headers, f"{prefix}signature")
    if value is None:
        raise SignatureError("missing_signature", "webhook-signature is missing")
    if not msg_id or not msg_id.strip():
        raise SignatureError("missing_id", f"{prefix}id is missing")
    ts = _timestamp(_header(headers, f"{prefix}timestamp"), f"{prefix}timestamp")
    v1, v1a = [], []
    for entry in value.split():
        version, sep, sig = entry.partition(",")
        decoded = _b64(sig) if sep else None
        if decoded is None:
            continue
        if version == "v1" and len(decoded) == 32:
            v1.append(decoded)
        elif version == "v1a" and len(decoded) == 64:
            v1a.append(decoded)
    if not v1 and not v1a or len(v1) + len(v1a) > MAX_SIGNATURES:
        raise SignatureError("malformed_signature", "webhook-signature has no usable v1 or v1a signature")
    signed = f"{msg_id}.{ts}.".encode() + body
    index = None
    if v1 and secrets:
        keys = [_standard_key(s) for s in secrets]
        index = _first_match(v1, keys, lambda key: _hmac(key, signed))
    if index is None and v1a and public_keys:
        index = next((i for i, pk in enumerate(public_keys) for sig in v1a if _verify_ed25519(pk, sig, signed)), None)
    if index is None:
        if not secrets and not public_keys:
            raise SignatureError("no_secret", "the source has no active secret configured")
        raise SignatureError("bad_signature", "no signature matches the id, timestamp and body")
    _check_window(ts, now, tolerance, future_tolerance if future_tolerance is not None else tolerance)
    return Verified("svix-v1" if branded else "standard-webhooks-v1", msg_id, ts, index)


def _slack(headers, body, secrets, now, tolerance, future_tolerance, **_) -> Verified:
    value = _header(headers, "X-Slack-Signature")
    if value is None:
        raise SignatureError("missing_signature", "X-Slack-Signature is missing")
    ts = _timestamp(_header(headers, "X-Slack-Request-Timestamp"), "X-Slack-Request-Timestamp")
    version, _, digest = value.strip().partition("=")
    candidate = _hex(digest)
    if version != "v0" or candidate is None or len(candidate) != 32:
        raise SignatureError("malformed_signature", "X-Slack-Signature must be v0=<64 hex digits>")
    _require_secrets(secrets)
    signed = f"v0:{ts}:".encode() + body
    index = _first_match([candidate], secrets, lambda s: _hmac(s.encode(), signed))
    if index is None:
        raise SignatureError("bad_signature", "X-Slack-Signature does not match")
    _check_window(ts, now, tolerance, future_tolerance if future_tolerance is not None else tolerance)
    return Verified("slack-v0", None, ts, index)


VERIFIERS = {
    "github-hmac-sha256": _github,
    "stripe-v1": _stripe,
    "standard-webhooks-v1": _standard,
    "svix-v1": _standard,
    "standard-webhooks-v1a-ed25519": _standard,
    "slack-v0": _slack,
}


def verify(scheme: str, headers: Mapping[str, str], body: bytes, *, secrets: Sequence[str] = (),
           public_keys: Sequence[str] = (), now: float | None = None, tolerance: int | None = 300,
           future_tolerance: int | None = None) -> Verified:
    """Check ``body`` against the signature headers of ``scheme``.

    ``future_tolerance`` bounds timestamps ahead of ``now``; None means no bound for Stripe (what
    stripe-python does) and ``tolerance`` for the timestamped schemes whose libraries check both ways.
    """
    verifier = VERIFIERS.get(scheme)
    if verifier is None:
        raise ValueError(f"unknown signature scheme {scheme!r}")
    if not isinstance(body, (bytes, bytearray)):
        raise SignatureError("malformed_body", "the body must be bytes")
    if not isinstance(headers, Mapping):
        raise SignatureError("missing_signature", "no headers")
    return verifier(headers, bytes(body), secrets=list(secrets), public_keys=list(public_keys),
                    now=time.time() if now is None else now, tolerance=tolerance, future_tolerance=future_tolerance)
