"""Signature verification for partner webhooks, over the raw body bytes exactly as received.

Schemes, named as in the shared conformance vectors (signature_vectors.json):

- ``github-hmac-sha256``: ``X-Hub-Signature-256: sha256=<hex>`` over the body, keyed with the
  secret as UTF-8. No timestamp: replay protection is dedup on ``X-GitHub-Delivery``.
- ``stripe-v1``: ``Stripe-Signature: t=<ts>,v1=<hex>[,v1=...]`` over ``{t}.{body}``, keyed with
  the whole ``whsec_...`` string as UTF-8 (Stripe does not base64-decode it).
- ``standard-webhooks-v1``, ``svix-v1``, ``standard-webhooks-v1a-ed25519``: one verifier, which
  reads ``webhook-*`` or Svix-branded ``svix-*`` headers. The signature header is a
  space-separated list of ``v1,<base64 HMAC>`` (keyed with the base64 after ``whsec_``) and, if
  the source has public keys (``whpk_...``), ``v1a,<base64 ed25519>``; both over
  ``{id}.{ts}.{body}``.
- ``slack-v0``: ``X-Slack-Signature: v0=<hex>`` over ``v0:{ts}:{body}``.

Rotation: every configured secret is active and a header may carry several signatures; one
match is enough. Timestamps older than ``tolerance`` or further ahead than ``future_tolerance``
(default: ``tolerance``) are rejected, for Stripe too. That is stricter than stripe-python,
which accepts any future ``t``: our requirement is a window in both directions.
``future_tolerance=math.inf`` gives stripe-python's answer (the conformance test uses it).

Anything malformed, from the partner or in the configured keys, raises SignatureError; nothing
else escapes for any header or body. Codes: missing_signature, malformed_signature,
bad_signature, missing_timestamp, malformed_timestamp, timestamp_out_of_window, missing_id,
malformed_id, malformed_header (not text, too long, sent twice), and for the configured keys
no_secret and malformed_secret.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from mangaassist.http import header_values

MAX_HEADER = 8192  # far above any real signature header; bounds the work a hostile request causes
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")  # bytes.fromhex alone would also take spaces
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")  # ASCII digits only; 12 digits reach year 33658
_MESSAGE_ID = re.compile(r"[!-~]+")  # printable ASCII: the id is signed, so its bytes must be unambiguous


@dataclass(frozen=True)
class Verified:
    scheme: str  # what matched: "svix-v1" for svix-* headers, "standard-webhooks-v1a-ed25519" for v1a
    delivery_id: str | None  # webhook-id / svix-id, or X-GitHub-Delivery (unsigned); None for Stripe, Slack
    timestamp: int | None  # the signed timestamp; None for GitHub
    key_index: int  # which secret (public key for v1a) matched: worth a metric during a rotation


class SignatureError(Exception):
    """Not authentic or not well formed: answer 401 with ``code`` and ``message``."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _header(headers: Mapping[str, str], name: str) -> str | None:
    values = header_values(headers, name)
    if not values:
        return None
    if len(values) > 1:  # two spellings of one header: which one a proxy would see is anyone's guess
        raise SignatureError("malformed_header", f"{name} is sent more than once")
    if not isinstance(values[0], str) or len(values[0]) > MAX_HEADER:
        raise SignatureError("malformed_header", f"{name} must be text of at most {MAX_HEADER} characters")
    return values[0].strip()


def _timestamp(value: str | None, name: str) -> int:
    if not value:
        raise SignatureError("missing_timestamp", f"{name} is missing")
    if not _UNIX_SECONDS.fullmatch(value):
        raise SignatureError("malformed_timestamp", f"{name} must be unix time in whole seconds")
    return int(value)


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error (alphabet, padding) and non-ASCII text
        return None


def _text_key(secret: str) -> bytes | None:
    try:
        return secret.encode()
    except UnicodeEncodeError:  # lone surrogates
        return None


def _whsec_key(secret: str) -> bytes | None:
    return _b64(secret.removeprefix("whsec_"))  # upstream libraries also take the bare base64


def _whpk_key(public_key: str) -> bytes | None:
    raw = _b64(public_key.removeprefix("whpk_"))
    return raw if raw is not None and len(raw) == 32 else None


def _keys(configured: Sequence[str], decode: Callable[[str], bytes | None]) -> list[bytes]:
    keys = [decode(key) if isinstance(key, str) else None for key in configured]
    decoded = [key for key in keys if key]
    if len(decoded) != len(keys):  # undecodable or empty: a configuration error, reported before any match
        raise SignatureError("malformed_secret", "a signing key configured for this source is malformed; "
                                                 "its operator must fix it")
    return decoded


def _no_secret() -> SignatureError:
    return SignatureError("no_secret", "no signing key is configured for this source; its operator must add one")


def _mismatch(header: str) -> SignatureError:
    return SignatureError("bad_signature", f"{header} matches no active key: check the signing secret, and that "
                                           "the body and signed headers are sent exactly as signed")


def _hmac_match(keys: list[bytes], prefix: bytes, body: bytes, candidates: list[bytes]) -> int | None:
    """Index of the first key whose HMAC-SHA256 of ``prefix + body`` is one of ``candidates``."""
    for index, key in enumerate(keys):
        mac = hmac.new(key, prefix, hashlib.sha256)
        mac.update(body)  # rather than concatenating: bodies can be megabytes
        expected = mac.digest()
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            return index
    return None


def _ed25519_match(keys: list[bytes], message: bytes, candidates: list[bytes]) -> int | None:
    # Imported here: only v1a sources pay for libsodium (PyNaCl, the layer's ed25519 package).
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    for index, raw in enumerate(keys):
        key = VerifyKey(raw)
        for signature in candidates:
            try:
                key.verify(message, signature)
                return index
            except BadSignatureError:
                pass
    return None


def _text_hmac(secrets: Sequence[str], prefix: bytes, body: bytes, candidates: list[bytes], header: str) -> int:
    """The HMAC schemes keyed with the secret's UTF-8 bytes: GitHub, Stripe, Slack."""
    if not secrets:
        raise _no_secret()
    index = _hmac_match(_keys(secrets, _text_key), prefix, body, candidates)
    if index is None:
        raise _mismatch(header)
    return index


def _github(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], public_keys: Sequence[str]) -> Verified:
    value = _header(headers, "X-Hub-Signature-256")
    if not value:
        raise SignatureError("missing_signature", "X-Hub-Signature-256 is missing (SHA-1 X-Hub-Signature is not "
                                                  "accepted): give the webhook a secret")
    algorithm, _, digest = value.partition("=")
    if algorithm != "sha256" or not _HEX_SHA256.fullmatch(digest):
        raise SignatureError("malformed_signature", "X-Hub-Signature-256 must be sha256=<64 hex digits>")
    index = _text_hmac(secrets, b"", body, [bytes.fromhex(digest)], "X-Hub-Signature-256")
    return Verified("github-hmac-sha256", _header(headers, "X-GitHub-Delivery") or None, None, index)


def _stripe(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], public_keys: Sequence[str]) -> Verified:
    value = _header(headers, "Stripe-Signature")
    if not value:
        raise SignatureError("missing_signature", "Stripe-Signature is missing")
    timestamps, candidates = [], []
    for part in value.split(","):
        key, separator, item = part.strip().partition("=")
        if not separator:
            raise SignatureError("malformed_signature", "Stripe-Signature must be t=<unix seconds>,v1=<hex>[,v1=<hex>]")
        if key == "t":
            timestamps.append(item)
        elif key == "v1" and _HEX_SHA256.fullmatch(item):
            candidates.append(bytes.fromhex(item))  # like stripe-python, skip other schemes (v0) and bad entries
    if len(timestamps) > 1:
        raise SignatureError("malformed_signature", "Stripe-Signature has more than one t=")
    timestamp = _timestamp(timestamps[0] if timestamps else None, "Stripe-Signature t=")
    if not candidates:
        raise SignatureError("malformed_signature", "Stripe-Signature has no v1=<64 hex digits> signature")
    index = _text_hmac(secrets, f"{timestamp}.".encode(), body, candidates, "Stripe-Signature")
    return Verified("stripe-v1", None, timestamp, index)


def _standard(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], public_keys: Sequence[str]) -> Verified:
    # A Standard Webhooks source accepts both header families; the signature header picks one.
    prefix, value = "webhook-", _header(headers, "webhook-signature")
    if value is None:
        prefix, value = "svix-", _header(headers, "svix-signature")
    if not value:
        raise SignatureError("missing_signature", "webhook-signature (or svix-signature) is missing")
    msg_id = _header(headers, prefix + "id")
    if not msg_id:
        raise SignatureError("missing_id", f"{prefix}id is missing")
    if not _MESSAGE_ID.fullmatch(msg_id):
        raise SignatureError("malformed_id", f"{prefix}id must be printable ASCII without spaces")
    timestamp = _timestamp(_header(headers, prefix + "timestamp"), prefix + "timestamp")
    v1, v1a = [], []
    for entry in value.split():
        version, _, encoded = entry.partition(",")
        raw = _b64(encoded)
        if version == "v1" and raw is not None and len(raw) == 32:
            v1.append(raw)
        elif version == "v1a" and raw is not None and len(raw) == 64:
            v1a.append(raw)  # other versions and unusable entries are skipped: another may match
    if not v1 and not v1a:
        raise SignatureError("malformed_signature", f"{prefix}signature has no v1,<base64> or v1a,<base64> entry")
    if not secrets and not public_keys:
        raise _no_secret()
    signed = f"{msg_id}.{timestamp}.".encode()
    scheme = "svix-v1" if prefix == "svix-" else "standard-webhooks-v1"
    index = _hmac_match(_keys(secrets, _whsec_key), signed, body, v1) if v1 else None
    if index is None and v1a and public_keys:
        scheme = "standard-webhooks-v1a-ed25519"
        index = _ed25519_match(_keys(public_keys, _whpk_key), signed + body, v1a)
    if index is None:
        raise _mismatch(prefix + "signature")
    return Verified(scheme, msg_id, timestamp, index)


def _slack(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], public_keys: Sequence[str]) -> Verified:
    value = _header(headers, "X-Slack-Signature")
    if not value:
        raise SignatureError("missing_signature", "X-Slack-Signature is missing")
    version, _, digest = value.partition("=")
    if version != "v0" or not _HEX_SHA256.fullmatch(digest):
        raise SignatureError("malformed_signature", "X-Slack-Signature must be v0=<64 hex digits>")
    timestamp = _timestamp(_header(headers, "X-Slack-Request-Timestamp"), "X-Slack-Request-Timestamp")
    index = _text_hmac(secrets, f"v0:{timestamp}:".encode(), body, [bytes.fromhex(digest)], "X-Slack-Signature")
    return Verified("slack-v0", None, timestamp, index)


_VERIFIERS = {
    "github-hmac-sha256": _github,
    "stripe-v1": _stripe,
    "standard-webhooks-v1": _standard,
    "svix-v1": _standard,
    "standard-webhooks-v1a-ed25519": _standard,
    "slack-v0": _slack,
}


def verify(scheme: str, headers: Mapping[str, str], body: bytes, *, secrets: Sequence[str],
           public_keys: Sequence[str] = (), now: float | None = None, tolerance: float = 300,
           future_tolerance: float | None = None) -> Verified:
    """Check a delivery's signature headers against its raw ``body``.

    ``secrets`` and ``public_keys`` (v1a only) are the source's active keys. ``now`` defaults to
    the clock; ``future_tolerance`` to ``tolerance``. Raises SignatureError for anything a partner
    (or a broken key) can get wrong; ValueError for an unknown scheme and TypeError for a body
    that is not bytes or a single string as key list, which are bugs in the caller.
    """
    verifier = _VERIFIERS.get(scheme)
    if verifier is None:
        raise ValueError(f"unknown signature scheme {scheme!r}; known: {sorted(_VERIFIERS)}")
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError("verify the raw body bytes as received, not decoded or re-serialised text")
    if isinstance(secrets, str) or isinstance(public_keys, str):
        raise TypeError("secrets and public_keys are sequences of keys, not one string")
    verified = verifier(headers, body, secrets, public_keys)
    if verified.timestamp is not None:
        # After the signature, so only authentic deliveries (replays, skewed clocks) are called stale.
        now = time.time() if now is None else now
        if verified.timestamp < now - tolerance:
            raise SignatureError("timestamp_out_of_window", f"the signed timestamp is more than {tolerance}s old: "
                                                            "sign again when resending, and check the sender's clock")
        future = tolerance if future_tolerance is None else future_tolerance
        if verified.timestamp > now + future:
            raise SignatureError("timestamp_out_of_window", f"the signed timestamp is more than {future}s in the "
                                                            "future: check the sender's clock")
    return verified
