"""Signature verification: the upstream vectors, round trips with the partner-side signers (the
official standardwebhooks package among them), every error code, and a property test that
nothing but Verified or SignatureError ever comes out."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st
from mangaassist_dev import signing

from mangaassist.webhooks.signatures import MAX_HEADER, SignatureError, Verified, verify

SHARED = Path(__file__).resolve().parents[2].parent / "shared"  # beside the repo, never copied into it
VECTORS_FILE = SHARED / "conformance" / "webhooks" / "signature_vectors.json"
VECTORS = json.loads(VECTORS_FILE.read_text())["vectors"] if VECTORS_FILE.is_file() else []
NOW = 1_795_921_445
BODY = '{"order_id":"o-1","title":"ワンピース 107"}'.encode()


def _whsec(seed: bytes) -> str:
    return "whsec_" + base64.b64encode(hashlib.sha256(seed).digest()[:24]).decode()


def _ed25519_pair(seed: bytes) -> tuple[str, str]:
    """(whsk_, whpk_) in the Svix layout: the private blob is seed || public key."""
    private = hashlib.sha256(seed).digest()
    public = Ed25519PrivateKey.from_private_bytes(private).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "whsk_" + base64.b64encode(private + public).decode(), "whpk_" + base64.b64encode(public).decode()


WHSK_NEW, WHPK_NEW = _ed25519_pair(b"new")
WHSK_OLD, WHPK_OLD = _ed25519_pair(b"old")
SCHEMES = ["github-hmac-sha256", "stripe-v1", "standard-webhooks-v1", "svix-v1", "standard-webhooks-v1a-ed25519",
           "slack-v0"]
TIMESTAMPED = [s for s in SCHEMES if s != "github-hmac-sha256"]
STANDARD = ["standard-webhooks-v1", "svix-v1", "standard-webhooks-v1a-ed25519"]
# (new, old) signing key per scheme: each source is mid-rotation in these tests.
KEYS = {
    "github-hmac-sha256": ("new GitHub secret", "old GitHub secret"),
    "stripe-v1": ("whsec_new_stripe", "whsec_old_stripe"),
    "standard-webhooks-v1": (_whsec(b"new"), _whsec(b"old")),
    "svix-v1": (_whsec(b"new"), _whsec(b"old")),
    "standard-webhooks-v1a-ed25519": (WHSK_NEW, WHSK_OLD),
    "slack-v0": ("new slack secret", "old slack secret"),
}
PUBLIC = {WHSK_NEW: WHPK_NEW, WHSK_OLD: WHPK_OLD}


def partner_headers(scheme: str, keys, body: bytes, *, timestamp: int = NOW, msg_id: str = "msg_1") -> dict:
    """What a partner sends, from the partner-side signers."""
    if scheme == "github-hmac-sha256":
        return {**signing.sign_github(keys, body), "X-GitHub-Delivery": msg_id}
    if scheme == "stripe-v1":
        return signing.sign_stripe(keys, body, timestamp=timestamp)
    if scheme == "slack-v0":
        return signing.sign_slack(keys, body, timestamp=timestamp)
    return signing.sign_standard(keys, body, msg_id=msg_id, timestamp=timestamp, branded=scheme == "svix-v1")


def receiver_keys(scheme: str, keys=None) -> dict:
    """verify()'s key arguments for a source holding ``keys`` (default: new and old)."""
    keys = list(KEYS[scheme]) if keys is None else keys
    if scheme == "standard-webhooks-v1a-ed25519":
        return {"secrets": [], "public_keys": [PUBLIC[key] for key in keys]}
    return {"secrets": keys}


def error_code(scheme: str, headers: dict, body: bytes = BODY, **kwargs) -> str:
    with pytest.raises(SignatureError) as caught:
        verify(scheme, headers, body, **{"now": NOW, **receiver_keys(scheme), **kwargs})
    assert caught.value.message
    return caught.value.code


# --- 1. conformance ----------------------------------------------------------------------------
def test_the_vectors_are_present():
    assert VECTORS_FILE.is_file(), f"signature vectors not found at {VECTORS_FILE}: check out shared/ beside the repo"
    assert len(VECTORS) == 65


def vector_body(vector: dict) -> bytes:
    repeat = vector.get("body_repeat")
    return (repeat["char"] * repeat["count"] if repeat else vector["body"]).encode()


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_upstream_vector(vector):
    if vector.get("public_key"):  # its "secret" is the sender's whsk_ private key
        keys = {"secrets": [], "public_keys": [vector["public_key"]]}
    else:
        keys = {"secrets": vector.get("secrets") or [vector["secret"]]}
    # The vectors hold stripe-python's answers: no bound on future timestamps, none at all without
    # a tolerance. Our default rejects both ways (test_stripe_future_timestamps_are_rejected_by_default).
    window = {"tolerance": math.inf if vector["tolerance_seconds"] is None else vector["tolerance_seconds"]}
    if vector["scheme"] == "stripe-v1":
        window["future_tolerance"] = math.inf
    lowercased = {name.lower(): value for name, value in vector["headers"].items()}  # as function URLs send them
    for headers in (vector["headers"], lowercased):
        try:
            verify(vector["scheme"], headers, vector_body(vector), now=vector["now"], **keys, **window)
            valid = True
        except SignatureError:
            valid = False
        assert valid is vector["expected_valid"]


@pytest.mark.parametrize("vector_id, header", [
    ("github-docs-positive", "X-Hub-Signature-256"),
    ("stripe-positive-within-tolerance", "Stripe-Signature"),
    ("sw-sign-positive", "webhook-signature"),
    ("svix-branded-positive", "svix-signature"),
    ("svix-v1a-ed25519-positive", "webhook-signature"),
    ("slack-docs-positive", "X-Slack-Signature"),
])
def test_the_signers_reproduce_upstream_signatures(vector_id, header):
    vector = next(v for v in VECTORS if v["id"] == vector_id)
    headers = {k.lower(): v for k, v in vector["headers"].items()}
    signed = partner_headers(vector["scheme"], vector["secret"], vector["body"].encode(), timestamp=vector["timestamp"],
                             msg_id=headers.get("webhook-id") or headers.get("svix-id"))
    assert signed[header] == vector["headers"][header]


# --- 2. round trips ----------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", SCHEMES)
def test_round_trip_during_a_rotation(scheme):
    new, old = KEYS[scheme]
    for signed_with, index in (([old], 1), ([new], 0), ([new, old], 0)):
        headers = partner_headers(scheme, signed_with, BODY)
        for sent in (headers, {k.lower(): v for k, v in headers.items()}):
            result = verify(scheme, sent, BODY, now=NOW, **receiver_keys(scheme))
            assert result.key_index == index
            assert result.delivery_id == (None if scheme in ("stripe-v1", "slack-v0") else "msg_1")
            assert result.timestamp == (None if scheme == "github-hmac-sha256" else NOW)
            assert result.scheme == scheme
    assert error_code(scheme, partner_headers(scheme, [old], BODY), **receiver_keys(scheme, [new])) == "bad_signature"


def _bump_timestamp(headers: dict) -> dict:
    return {k: v.replace(str(NOW), str(NOW + 1)) if "timestamp" in k.lower() or k == "Stripe-Signature" else v
            for k, v in headers.items()}


@pytest.mark.parametrize("scheme, tamper", [
    *[(s, "body") for s in SCHEMES],
    *[(s, "timestamp") for s in TIMESTAMPED],
    *[(s, "id") for s in STANDARD],
])
def test_tampering_breaks_the_signature(scheme, tamper):
    headers = partner_headers(scheme, KEYS[scheme], BODY)
    body = BODY
    if tamper == "body":
        body = BODY.replace(b"107", b"108")
    elif tamper == "timestamp":
        headers = _bump_timestamp(headers)
    else:
        headers = {k: v.replace("msg_1", "msg_2") for k, v in headers.items()}
    assert error_code(scheme, headers, body) == "bad_signature"


# --- constant-time comparison: every scheme, decided by hmac.compare_digest alone --------------
HMAC_SCHEMES = [s for s in SCHEMES if s != "standard-webhooks-v1a-ed25519"]
OTHER_KEYS = {
    "github-hmac-sha256": "a secret this source never had",
    "stripe-v1": "whsec_never_configured",
    "standard-webhooks-v1": _whsec(b"never configured"),
    "svix-v1": _whsec(b"never configured"),
    "slack-v0": "a slack secret this source never had",
}


class CompareDigest:
    """Stands in for hmac.compare_digest: records each comparison and answers as told (or truly)."""

    real = staticmethod(hmac.compare_digest)

    def __init__(self, verdict: bool | None = None):
        self.verdict = verdict
        self.calls: list[tuple[bytes, bytes]] = []

    def __call__(self, a, b) -> bool:
        self.calls.append((bytes(a), bytes(b)))
        return self.real(a, b) if self.verdict is None else self.verdict


@pytest.mark.parametrize("scheme", HMAC_SCHEMES)
def test_every_hmac_scheme_compares_signatures_with_compare_digest_only(scheme, monkeypatch):
    """Timing must not tell an attacker how much of a forged signature is right: a test that fails if
    any scheme compares a signature with ==, or lets anything but compare_digest decide."""
    valid, forged = partner_headers(scheme, KEYS[scheme][0], BODY), partner_headers(scheme, OTHER_KEYS[scheme], BODY)
    keys = {"now": NOW, **receiver_keys(scheme)}

    spy = CompareDigest()
    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert verify(scheme, valid, BODY, **keys).key_index == 0
    assert spy.calls and all(len(a) == len(b) == hashlib.sha256().digest_size for a, b in spy.calls)
    assert any(a == b for a, b in spy.calls), "the matching signature went through compare_digest"

    monkeypatch.setattr(hmac, "compare_digest", CompareDigest(verdict=False))
    assert error_code(scheme, valid, **receiver_keys(scheme)) == "bad_signature"  # its "no" is final

    monkeypatch.setattr(hmac, "compare_digest", CompareDigest(verdict=True))
    assert verify(scheme, forged, BODY, **keys).scheme == scheme  # and so is its "yes": no == anywhere else


def test_ed25519_signatures_are_checked_by_libsodium_never_by_comparing_bytes(monkeypatch):
    """v1a verifies a signature (libsodium's crypto_sign_verify_detached, constant time), so
    compare_digest has no say: forcing it to "equal" lets no forgery through."""
    scheme = "standard-webhooks-v1a-ed25519"
    spy = CompareDigest(verdict=True)
    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert verify(scheme, partner_headers(scheme, [WHSK_NEW], BODY), BODY, now=NOW,
                  **receiver_keys(scheme)).key_index == 0
    forged = partner_headers(scheme, [_ed25519_pair(b"forger")[0]], BODY)
    assert error_code(scheme, forged, **receiver_keys(scheme)) == "bad_signature"
    assert spy.calls == []


def test_a_standard_source_with_secrets_and_public_keys_accepts_either():
    keys = {"secrets": [_whsec(b"new")], "public_keys": [WHPK_OLD]}
    hmac_signed = partner_headers("standard-webhooks-v1", [_whsec(b"new")], BODY)
    assert verify("standard-webhooks-v1", hmac_signed, BODY, now=NOW, **keys).scheme == "standard-webhooks-v1"
    both = partner_headers("standard-webhooks-v1", [_whsec(b"other"), WHSK_OLD], BODY)
    assert verify("standard-webhooks-v1", both, BODY, now=NOW, **keys) == Verified(
        "standard-webhooks-v1a-ed25519", "msg_1", NOW, 0)


def test_a_matching_v1_signature_is_not_second_guessed_by_a_v1a_beside_it():
    keys = {"secrets": [_whsec(b"new")], "public_keys": [WHPK_NEW]}
    headers = partner_headers("standard-webhooks-v1", [_whsec(b"new")], BODY)
    headers["webhook-signature"] += " v1a," + base64.b64encode(bytes(64)).decode()  # a v1a that matches nothing
    assert verify("standard-webhooks-v1", headers, BODY, now=NOW, **keys) == Verified(
        "standard-webhooks-v1", "msg_1", NOW, 0)


def test_v1a_signatures_need_a_configured_public_key():
    headers = partner_headers("standard-webhooks-v1", [WHSK_NEW], BODY)
    assert error_code("standard-webhooks-v1", headers, secrets=[_whsec(b"new")], public_keys=[]) == "bad_signature"


def test_raw_bytes_are_verified_even_when_not_utf8():
    body = b"\xff\xfe payload=\x80"
    headers = partner_headers("github-hmac-sha256", KEYS["github-hmac-sha256"], body)
    assert verify("github-hmac-sha256", headers, body, **receiver_keys("github-hmac-sha256")).key_index == 0


def test_libsodium_is_imported_only_for_v1a():
    script = f"""
import sys
from mangaassist.webhooks import signatures
headers = {partner_headers("standard-webhooks-v1", KEYS["standard-webhooks-v1"], BODY)!r}
signatures.verify("standard-webhooks-v1", headers, {BODY!r}, secrets={list(KEYS["standard-webhooks-v1"])!r},
                  public_keys=[{WHPK_NEW!r}], now={NOW})
assert "nacl" not in sys.modules, "imported for a v1 signature"
headers = {partner_headers("standard-webhooks-v1", [WHSK_NEW], BODY)!r}
signatures.verify("standard-webhooks-v1", headers, {BODY!r}, secrets=[], public_keys=[{WHPK_NEW!r}], now={NOW})
assert "nacl" in sys.modules
"""
    subprocess.run([sys.executable, "-c", script], check=True)


# --- 3. every error code -----------------------------------------------------------------------
HEX0 = "0" * 64
B64_32 = base64.b64encode(bytes(32)).decode()
STD = {"webhook-id": "msg_1", "webhook-timestamp": str(NOW), "webhook-signature": "v1," + B64_32}
STRIPE = f"t={NOW},v1={HEX0}"
SLACK = {"X-Slack-Request-Timestamp": str(NOW), "X-Slack-Signature": "v0=" + HEX0}


def without(headers: dict, name: str) -> dict:
    return {k: v for k, v in headers.items() if k != name}


@pytest.mark.parametrize("scheme, headers, code", [
    ("github-hmac-sha256", {"X-Hub-Signature": "sha1=" + "0" * 40}, "missing_signature"),
    ("stripe-v1", {}, "missing_signature"),
    ("standard-webhooks-v1", without(STD, "webhook-signature"), "missing_signature"),
    ("standard-webhooks-v1", {**STD, "webhook-signature": "  "}, "missing_signature"),
    ("slack-v0", without(SLACK, "X-Slack-Signature"), "missing_signature"),

    ("github-hmac-sha256", {"X-Hub-Signature-256": HEX0}, "malformed_signature"),
    ("github-hmac-sha256", {"X-Hub-Signature-256": "sha256=" + HEX0[:-1]}, "malformed_signature"),
    ("github-hmac-sha256", {"X-Hub-Signature-256": "sha256=" + "00 " * 21 + "0"}, "malformed_signature"),
    ("stripe-v1", {"Stripe-Signature": "garbage"}, "malformed_signature"),
    ("stripe-v1", {"Stripe-Signature": STRIPE + ","}, "malformed_signature"),
    ("stripe-v1", {"Stripe-Signature": STRIPE.replace("v1=", "v0=")}, "malformed_signature"),
    ("stripe-v1", {"Stripe-Signature": f"t={NOW},v1=bad_signature"}, "malformed_signature"),
    ("stripe-v1", {"Stripe-Signature": f"t={NOW},{STRIPE}"}, "malformed_signature"),
    ("standard-webhooks-v1", {**STD, "webhook-signature": "v1,@@@"}, "malformed_signature"),
    ("standard-webhooks-v1", {**STD, "webhook-signature": "v1," + B64_32[:-4]}, "malformed_signature"),
    ("standard-webhooks-v1", {**STD, "webhook-signature": B64_32}, "malformed_signature"),
    ("standard-webhooks-v1", {**STD, "webhook-signature": "v1,ＡＡＡＡ"}, "malformed_signature"),
    ("standard-webhooks-v1", {**STD, "webhook-signature": "v1,!" + B64_32}, "malformed_signature"),  # strict base64
    ("standard-webhooks-v1a-ed25519", {**STD, "webhook-signature": "v1a,@@@"}, "malformed_signature"),
    ("slack-v0", {**SLACK, "X-Slack-Signature": "v1=" + HEX0}, "malformed_signature"),

    ("github-hmac-sha256", {"X-Hub-Signature-256": "sha256=" + HEX0}, "bad_signature"),
    ("stripe-v1", {"Stripe-Signature": STRIPE}, "bad_signature"),
    ("standard-webhooks-v1", STD, "bad_signature"),
    ("standard-webhooks-v1a-ed25519", {**STD, "webhook-signature": "v1a," + base64.b64encode(bytes(64)).decode()},
     "bad_signature"),
    ("slack-v0", SLACK, "bad_signature"),

    ("stripe-v1", {"Stripe-Signature": f"v1={HEX0}"}, "missing_timestamp"),
    ("standard-webhooks-v1", without(STD, "webhook-timestamp"), "missing_timestamp"),
    ("slack-v0", without(SLACK, "X-Slack-Request-Timestamp"), "missing_timestamp"),

    ("stripe-v1", {"Stripe-Signature": f"t=abc,v1={HEX0}"}, "malformed_timestamp"),
    ("stripe-v1", {"Stripe-Signature": f"t=-1,v1={HEX0}"}, "malformed_timestamp"),
    ("stripe-v1", {"Stripe-Signature": f"t={NOW}=2,v1={HEX0}"}, "malformed_timestamp"),  # t= up to the first =
    ("standard-webhooks-v1", {**STD, "webhook-timestamp": "1e9"}, "malformed_timestamp"),
    ("standard-webhooks-v1", {**STD, "webhook-timestamp": f"{NOW}.5"}, "malformed_timestamp"),
    ("standard-webhooks-v1", {**STD, "webhook-timestamp": "١٧٩٥٩٢١٤٤٥"}, "malformed_timestamp"),
    ("standard-webhooks-v1", {**STD, "webhook-timestamp": "9" * 5000}, "malformed_timestamp"),
    ("standard-webhooks-v1", {**STD, "webhook-timestamp": "1795 921445"}, "malformed_timestamp"),
    ("slack-v0", {**SLACK, "X-Slack-Request-Timestamp": "0x6b0b5a25"}, "malformed_timestamp"),

    ("standard-webhooks-v1", without(STD, "webhook-id"), "missing_id"),
    ("standard-webhooks-v1", {**STD, "webhook-id": "msg 1"}, "malformed_id"),
    ("standard-webhooks-v1", {**STD, "webhook-id": "msg_é"}, "malformed_id"),
    ("standard-webhooks-v1", {**STD, "webhook-id": "msg_\udcff"}, "malformed_id"),

    ("standard-webhooks-v1", {**STD, "Webhook-Signature": "v1," + B64_32}, "malformed_header"),
    ("standard-webhooks-v1", {**STD, "webhook-signature": None}, "malformed_header"),
    ("stripe-v1", {"Stripe-Signature": STRIPE + f",v1={HEX0}" * 200}, "malformed_header"),
])
def test_error_code(scheme, headers, code):
    assert error_code(scheme, headers) == code


MISMATCH = ("matches no active key: check the signing secret, and that the body and signed headers are sent "
            "exactly as signed")


# What a partner (or the operator) reads in the 401 body, for every way to get one: what to fix, and where.
@pytest.mark.parametrize("scheme, headers, keys, code, message", [
    ("github-hmac-sha256", {"X-Hub-Signature": "sha1=" + "0" * 40}, {}, "missing_signature",
     "X-Hub-Signature-256 is missing (SHA-1 X-Hub-Signature is not accepted): give the webhook a secret"),
    ("github-hmac-sha256", {"X-Hub-Signature-256": HEX0}, {}, "malformed_signature",
     "X-Hub-Signature-256 must be sha256=<64 hex digits>"),
    ("github-hmac-sha256", {"X-Hub-Signature-256": "sha256=" + HEX0}, {}, "bad_signature",
     "X-Hub-Signature-256 " + MISMATCH),
    ("github-hmac-sha256", {"X-Hub-Signature-256": "sha256=" + HEX0}, {"secrets": []}, "no_secret",
     "no signing key is configured for this source; its operator must add one"),
    ("github-hmac-sha256", {"X-Hub-Signature-256": "sha256=" + HEX0}, {"secrets": ["a", ""]}, "malformed_secret",
     "a signing key configured for this source is malformed; its operator must fix it"),
    ("stripe-v1", {}, {}, "missing_signature", "Stripe-Signature is missing"),
    ("stripe-v1", {"Stripe-Signature": "garbage"}, {}, "malformed_signature",
     "Stripe-Signature must be t=<unix seconds>,v1=<hex>[,v1=<hex>]"),
    ("stripe-v1", {"Stripe-Signature": f"t={NOW},{STRIPE}"}, {}, "malformed_signature",
     "Stripe-Signature has more than one t="),
    ("stripe-v1", {"Stripe-Signature": f"v1={HEX0}"}, {}, "missing_timestamp", "Stripe-Signature t= is missing"),
    ("stripe-v1", {"Stripe-Signature": f"t=abc,v1={HEX0}"}, {}, "malformed_timestamp",
     "Stripe-Signature t= must be unix time in whole seconds"),
    ("stripe-v1", {"Stripe-Signature": f"t={NOW},v0={HEX0}"}, {}, "malformed_signature",
     "Stripe-Signature has no v1=<64 hex digits> signature"),
    ("stripe-v1", {"Stripe-Signature": STRIPE}, {}, "bad_signature", "Stripe-Signature " + MISMATCH),
    ("standard-webhooks-v1", without(STD, "webhook-signature"), {}, "missing_signature",
     "webhook-signature (or svix-signature) is missing"),
    ("svix-v1", {k.replace("webhook-", "svix-"): v for k, v in without(STD, "webhook-id").items()}, {}, "missing_id",
     "svix-id is missing"),
    ("standard-webhooks-v1", without(STD, "webhook-id"), {}, "missing_id", "webhook-id is missing"),
    ("standard-webhooks-v1", {**STD, "webhook-id": "msg 1"}, {}, "malformed_id",
     "webhook-id must be printable ASCII without spaces"),
    ("standard-webhooks-v1", without(STD, "webhook-timestamp"), {}, "missing_timestamp",
     "webhook-timestamp is missing"),
    ("standard-webhooks-v1", {**STD, "webhook-timestamp": "1e9"}, {}, "malformed_timestamp",
     "webhook-timestamp must be unix time in whole seconds"),
    ("standard-webhooks-v1", {**STD, "webhook-signature": "v2,abc"}, {}, "malformed_signature",
     "webhook-signature has no v1,<base64> or v1a,<base64> entry"),
    ("standard-webhooks-v1", STD, {}, "bad_signature", "webhook-signature " + MISMATCH),
    ("standard-webhooks-v1", {**STD, "Webhook-Signature": "v1," + B64_32}, {}, "malformed_header",
     "webhook-signature is sent more than once"),
    ("standard-webhooks-v1", {**STD, "webhook-signature": "x" * 8193}, {}, "malformed_header",
     "webhook-signature must be text of at most 8192 characters"),
    ("slack-v0", without(SLACK, "X-Slack-Signature"), {}, "missing_signature", "X-Slack-Signature is missing"),
    ("slack-v0", {**SLACK, "X-Slack-Signature": "v1=" + HEX0}, {}, "malformed_signature",
     "X-Slack-Signature must be v0=<64 hex digits>"),
    ("slack-v0", without(SLACK, "X-Slack-Request-Timestamp"), {}, "missing_timestamp",
     "X-Slack-Request-Timestamp is missing"),
    ("slack-v0", {**SLACK, "X-Slack-Request-Timestamp": "x"}, {}, "malformed_timestamp",
     "X-Slack-Request-Timestamp must be unix time in whole seconds"),
    ("slack-v0", SLACK, {}, "bad_signature", "X-Slack-Signature " + MISMATCH),
])
def test_each_refusal_says_what_to_fix(scheme, headers, keys, code, message):
    with pytest.raises(SignatureError) as caught:
        verify(scheme, headers, BODY, **{"now": NOW, **receiver_keys(scheme), **keys})
    assert (caught.value.code, caught.value.message, str(caught.value)) == (code, message, f"{code}: {message}")


SVIX = {k.replace("webhook-", "svix-"): v for k, v in STD.items()}


@pytest.mark.parametrize("scheme, headers, name", [
    ("github-hmac-sha256", {"X-Hub-Signature-256": "sha256=" + HEX0}, "X-Hub-Signature-256"),
    ("github-hmac-sha256", partner_headers("github-hmac-sha256", KEYS["github-hmac-sha256"], BODY),
     "X-GitHub-Delivery"),
    ("stripe-v1", {"Stripe-Signature": STRIPE}, "Stripe-Signature"),
    ("standard-webhooks-v1", STD, "webhook-signature"),
    ("standard-webhooks-v1", STD, "webhook-id"),
    ("standard-webhooks-v1", STD, "webhook-timestamp"),
    ("svix-v1", SVIX, "svix-signature"),
    ("svix-v1", SVIX, "svix-id"),
    ("svix-v1", SVIX, "svix-timestamp"),
    ("slack-v0", SLACK, "X-Slack-Signature"),
    ("slack-v0", SLACK, "X-Slack-Request-Timestamp"),
])
def test_a_header_sent_twice_is_refused_by_its_documented_name(scheme, headers, name):
    """Names are matched case-insensitively, so the 401 message is where a header's spelling shows."""
    with pytest.raises(SignatureError) as caught:
        verify(scheme, {**headers, name.swapcase(): headers[name]}, BODY, now=NOW, **receiver_keys(scheme))
    assert (caught.value.code, caught.value.message) == ("malformed_header", f"{name} is sent more than once")


def test_a_header_of_exactly_max_header_characters_is_read():
    headers = partner_headers("stripe-v1", KEYS["stripe-v1"], BODY)
    padded = headers["Stripe-Signature"] + ",v0="  # v0 entries are skipped
    headers["Stripe-Signature"] = padded + "0" * (MAX_HEADER - len(padded))
    assert verify("stripe-v1", headers, BODY, now=NOW, **receiver_keys("stripe-v1")).key_index == 0
    headers["Stripe-Signature"] += "0"
    assert error_code("stripe-v1", headers) == "malformed_header"


def test_a_v1a_only_delivery_does_not_decode_the_hmac_secrets():
    """Keys are decoded for the signatures a delivery carries: a broken v1 secret is reported by
    the first v1 delivery, and does not refuse a v1a one."""
    headers = partner_headers("standard-webhooks-v1", [WHSK_NEW], BODY)
    assert verify("standard-webhooks-v1", headers, BODY, now=NOW, secrets=["whsec_!!not base64"],
                  public_keys=[WHPK_NEW]) == Verified("standard-webhooks-v1a-ed25519", "msg_1", NOW, 0)
    v1 = partner_headers("standard-webhooks-v1", [_whsec(b"new")], BODY)
    assert error_code("standard-webhooks-v1", v1, secrets=["whsec_!!not base64"],
                      public_keys=[WHPK_NEW]) == "malformed_secret"


def test_a_stale_or_early_signature_says_which_and_by_how_much():
    stale = partner_headers("stripe-v1", KEYS["stripe-v1"], BODY, timestamp=NOW - 301)
    early = partner_headers("stripe-v1", KEYS["stripe-v1"], BODY, timestamp=NOW + 61)
    with pytest.raises(SignatureError) as caught:
        verify("stripe-v1", stale, BODY, now=NOW, **receiver_keys("stripe-v1"))
    assert caught.value.message == ("the signed timestamp is more than 300s old: sign again when resending, and "
                                    "check the sender's clock")
    with pytest.raises(SignatureError) as caught:
        verify("stripe-v1", early, BODY, now=NOW, future_tolerance=60, **receiver_keys("stripe-v1"))
    assert caught.value.message == "the signed timestamp is more than 60s in the future: check the sender's clock"


@pytest.mark.parametrize("scheme", TIMESTAMPED)
@pytest.mark.parametrize("skew", [-301, 301, -10**9, 10**11])
def test_timestamps_outside_the_window_are_rejected_past_or_future(scheme, skew):
    headers = partner_headers(scheme, KEYS[scheme], BODY, timestamp=NOW + skew)
    assert error_code(scheme, headers) == "timestamp_out_of_window"
    assert verify(scheme, headers, BODY, now=NOW, tolerance=abs(skew), **receiver_keys(scheme))


def test_stripe_future_timestamps_are_rejected_by_default():
    """Our rule, not stripe-python's: it accepts any future t (vector stripe-future-timestamp-accepted-by-sdk)."""
    headers = partner_headers("stripe-v1", KEYS["stripe-v1"], BODY, timestamp=NOW + 3600)
    assert error_code("stripe-v1", headers) == "timestamp_out_of_window"
    assert verify("stripe-v1", headers, BODY, now=NOW, future_tolerance=math.inf, **receiver_keys("stripe-v1"))
    assert error_code("stripe-v1", headers, future_tolerance=3599) == "timestamp_out_of_window"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_no_configured_key_is_no_secret(scheme):
    assert error_code(scheme, partner_headers(scheme, KEYS[scheme], BODY), secrets=[], public_keys=[]) == "no_secret"


@pytest.mark.parametrize("scheme, keys", [
    ("github-hmac-sha256", {"secrets": ["new GitHub secret", ""]}),
    ("stripe-v1", {"secrets": ["whsec_\ud800"]}),
    ("slack-v0", {"secrets": [None]}),
    ("standard-webhooks-v1", {"secrets": [_whsec(b"new"), "whsec_!!not base64"]}),
    ("standard-webhooks-v1", {"secrets": ["whsec_"]}),
    ("standard-webhooks-v1a-ed25519", {"secrets": [], "public_keys": ["whpk_" + B64_32[:-4]]}),
    ("standard-webhooks-v1a-ed25519", {"secrets": [], "public_keys": [WHSK_NEW]}),
])
def test_a_malformed_configured_key_is_malformed_secret(scheme, keys):
    assert error_code(scheme, partner_headers(scheme, KEYS[scheme], BODY), **keys) == "malformed_secret"


def test_caller_bugs_are_not_signature_errors():
    headers = partner_headers("stripe-v1", KEYS["stripe-v1"], BODY)
    with pytest.raises(ValueError, match="unknown signature scheme"):
        verify("md5", headers, BODY, secrets=["x"])
    with pytest.raises(TypeError, match="^verify the raw body bytes as received, not decoded or re-serialised text$"):
        verify("stripe-v1", headers, BODY.decode(), secrets=list(KEYS["stripe-v1"]), now=NOW)
    with pytest.raises(TypeError, match="^secrets and public_keys are sequences of keys, not one string$"):
        verify("stripe-v1", headers, BODY, secrets=KEYS["stripe-v1"][0], now=NOW)


# --- 4. nothing but Verified or SignatureError -------------------------------------------------
HEADER_NAMES = ["X-Hub-Signature-256", "X-GitHub-Delivery", "Stripe-Signature", "webhook-id", "webhook-timestamp",
                "webhook-signature", "svix-id", "svix-timestamp", "svix-signature", "X-Slack-Signature",
                "X-Slack-Request-Timestamp", "content-type"]
NEAR_VALID = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(["", "v1,", "v1a,", "v2,", "t=", f"t={NOW},v1=", "v1=", ",", "sha256=", "sha1=", "v0=", " ", "\t"]),
    st.text(alphabet="0123456789abcdefABCDEF+/=,. -_\t", max_size=100),
)
VALUES = st.one_of(
    st.text(max_size=60),
    NEAR_VALID,
    st.integers(-10**30, 10**30).map(str),
    st.binary(max_size=70).map(lambda raw: base64.b64encode(raw).decode()),
    st.binary(max_size=40).map(bytes.hex),
)
# What the receiver holds instead of the source's keys (None): none, malformed, foreign, mixed up.
KEY_SETS = [None, None, None, ([], []), ([""], []), (["whsec_!!"], []), (["whsec_"], ["whpk_AAAA"]), (["\ud800"], []),
            ([_whsec(b"other"), "plain secret"], [WHPK_NEW]), ([], [WHSK_NEW]), ([WHPK_NEW], [_whsec(b"new")])]
NON_TEXT = [None, b"v1,AAAA", NOW, ["v1,AAAA"]]
MUTATIONS = ["truncate", "replace", "splice", "drop", "recase", "rename", "non_text", "body", "clear"]


def mutate(headers: dict, body: bytes, recipe: bytes, value: str) -> tuple[dict, bytes]:
    """Apply ``recipe``: three bytes per mutation (what, which header, where). One binary draw
    generates several times faster than a list of tuples, which keeps 10,000 examples quick."""
    for what, which, where in zip(recipe[::3], recipe[1::3], recipe[2::3]):
        what = MUTATIONS[what % len(MUTATIONS)]
        names = [*headers, *HEADER_NAMES]
        name = names[which % len(names)]
        current = headers.get(name) if isinstance(headers.get(name), str) else ""
        if what == "truncate":
            headers[name] = current[:where]
        elif what == "replace":
            headers[name] = value
        elif what == "splice":  # random unicode, whitespace or separators inside a value
            headers[name] = current[:where] + value + current[where:]
        elif what == "drop":
            headers.pop(name, None)
        elif what == "recase":  # the original spelling stays: a duplicate
            headers[name.swapcase() if where % 2 else name.upper()] = current
        elif what == "rename":
            headers[value] = headers.pop(name, current)
        elif what == "non_text":
            headers[name] = NON_TEXT[where % len(NON_TEXT)]
        elif what == "body":  # tampered, and no longer UTF-8
            body = body[:where] + value.encode("utf-16")
        else:
            headers = {}
    return headers, body


@pytest.mark.fuzz
@settings(max_examples=10_000, deadline=None)
@given(signer=st.sampled_from([(scheme, keys) for scheme in SCHEMES for keys in ((0,), (1,), (0, 1))]),
       text=st.text(max_size=100), recipe=st.binary(max_size=9), value=VALUES, key_set=st.sampled_from(KEY_SETS))
def test_any_delivery_is_verified_or_a_signature_error(signer, text, recipe, value, key_set):
    """Deliveries signed by the partner-side signers (new key, old key or both), then perhaps
    mutated: truncated, replaced, spliced, dropped, duplicated or renamed headers, values that are
    not text, another body, keys that are missing, malformed or foreign. Intact ones must verify
    with the right key index; nothing but Verified or SignatureError may come out."""
    scheme, signed_with = signer
    headers, body = mutate(partner_headers(scheme, [KEYS[scheme][i] for i in signed_with], text.encode()),
                           text.encode(), recipe, value)
    keys = receiver_keys(scheme) if key_set is None else dict(zip(("secrets", "public_keys"), key_set))
    intact = len(recipe) < 3 and key_set is None
    try:
        result = verify(scheme, headers, body, now=NOW, **keys)
    except SignatureError as error:
        assert not intact, f"an intact delivery was refused: {error}"
        assert error.code and error.message
    else:
        assert isinstance(result, Verified)
        assert not intact or result.key_index == signed_with[0]
