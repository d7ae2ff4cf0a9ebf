"""Signature verification: the 65 upstream vectors, round trips with the official signers, and
no exception but SignatureError for any input."""
from __future__ import annotations

import base64
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mangaassist.webhooks import signing
from mangaassist.webhooks.signatures import SignatureError, Verified, verify

NOW = 1_795_921_445


def load_vectors(conformance_dir):
    data = json.loads((conformance_dir / "webhooks" / "signature_vectors.json").read_text())
    assert data["count"] == len(data["vectors"]) == 65
    return data["vectors"]


def vector_body(vector) -> bytes:
    if vector.get("body_repeat"):
        repeat = vector["body_repeat"]
        return (repeat["char"] * repeat["count"]).encode() if isinstance(repeat, dict) else vector["body"].encode() * repeat
    return vector["body"].encode()


def test_every_upstream_vector_agrees(conformance_dir):
    disagreements = []
    for vector in load_vectors(conformance_dir):
        scheme = vector["scheme"]
        secrets = vector.get("secrets") or ([vector["secret"]] if vector.get("secret") else [])
        keys = {"public_keys": [vector["public_key"]]} if vector.get("public_key") else {"secrets": secrets}
        now = vector["now"] if vector["now"] is not None else time.time()
        tolerance = vector.get("tolerance_seconds")  # None: no freshness check, as upstream
        try:
            verify(scheme, vector["headers"], vector_body(vector), now=now, tolerance=tolerance, **keys)
            valid = True
        except SignatureError:
            valid = False
        if valid != vector["expected_valid"]:
            disagreements.append(vector["id"])
    assert disagreements == []


@pytest.mark.parametrize("branded", [False, True])
def test_standard_webhooks_round_trip_with_rotation(branded):
    new, old = ("whsec_" + base64.b64encode(s).decode() for s in (b"n" * 24, b"o" * 24))
    body = '{"review_id":"r1","text":"最高"}'.encode()
    headers = signing.sign_standard([old], body, msg_id="msg_1", timestamp=NOW, branded=branded)
    result = verify("standard-webhooks-v1", headers, body, secrets=[new, old], now=NOW)
    assert result == Verified("svix-v1" if branded else "standard-webhooks-v1", "msg_1", NOW, 1)
    for tampered in (body + b" ", body.replace(b"r1", b"r2")):
        with pytest.raises(SignatureError):
            verify("standard-webhooks-v1", headers, tampered, secrets=[new, old], now=NOW)
    with pytest.raises(SignatureError):
        verify("standard-webhooks-v1", {**headers, ("svix-id" if branded else "webhook-id"): "msg_2"}, body,
               secrets=[new], now=NOW)


def test_stripe_round_trip_with_several_v1_and_rotation():
    body = b'{"id":"evt_1"}'
    headers = signing.sign_stripe(["whsec_new", "whsec_old"], body, timestamp=NOW)
    assert verify("stripe-v1", headers, body, secrets=["whsec_old"], now=NOW).key_index == 0
    assert verify("stripe-v1", headers, body, secrets=["whsec_x", "whsec_new"], now=NOW).key_index == 1


def test_github_round_trip():
    body = b'{"zen":"ok"}'
    headers = {**signing.sign_github("s3cret", body), "X-GitHub-Delivery": "d-1"}
    assert verify("github-hmac-sha256", headers, body, secrets=["s3cret"]).delivery_id == "d-1"


@pytest.mark.parametrize("scheme, headers, code", [
    ("github-hmac-sha256", {}, "missing_signature"),
    ("github-hmac-sha256", {"X-Hub-Signature-256": "sha1=abcd"}, "malformed_signature"),
    ("github-hmac-sha256", {"X-Hub-Signature-256": "sha256=" + "0" * 64}, "bad_signature"),
    ("stripe-v1", {}, "missing_signature"),
    ("stripe-v1", {"Stripe-Signature": "garbage"}, "malformed_signature"),
    ("stripe-v1", {"Stripe-Signature": "v1=" + "0" * 64}, "missing_timestamp"),
    ("stripe-v1", {"Stripe-Signature": "t=abc,v1=" + "0" * 64}, "malformed_timestamp"),
    ("stripe-v1", {"Stripe-Signature": f"t={NOW},v0=" + "0" * 64}, "malformed_signature"),
    ("stripe-v1", {"Stripe-Signature": f"t={NOW},v1=" + "0" * 64}, "bad_signature"),
    ("standard-webhooks-v1", {"webhook-id": "m", "webhook-timestamp": str(NOW)}, "missing_signature"),
    ("standard-webhooks-v1", {"webhook-timestamp": str(NOW), "webhook-signature": "v1,AAAA"}, "missing_id"),
    ("standard-webhooks-v1", {"webhook-id": "m", "webhook-signature": "v1,AAAA"}, "missing_timestamp"),
    ("standard-webhooks-v1", {"webhook-id": "m", "webhook-timestamp": "1e9", "webhook-signature": "v1,AAAA"}, "malformed_timestamp"),
    ("standard-webhooks-v1", {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": "v1,@@@"}, "malformed_signature"),
    ("standard-webhooks-v1", {"webhook-id": "m", "webhook-timestamp": str(NOW),
                              "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}, "bad_signature"),
])
def test_each_error_code(scheme, headers, code):
    with pytest.raises(SignatureError) as caught:
        verify(scheme, headers, b"{}", secrets=["whsec_" + base64.b64encode(b"k" * 24).decode()], now=NOW)
    assert caught.value.code == code and caught.value.message


def test_timestamps_outside_the_window_both_ways():
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    for skew in (-301, 301):
        headers = signing.sign_standard(secret, b"{}", msg_id="m", timestamp=NOW + skew)
        with pytest.raises(SignatureError) as caught:
            verify("standard-webhooks-v1", headers, b"{}", secrets=[secret], now=NOW)
        assert caught.value.code == "timestamp_out_of_window"
    stale = signing.sign_stripe("whsec_x", b"{}", timestamp=NOW - 301)
    with pytest.raises(SignatureError):
        verify("stripe-v1", stale, b"{}", secrets=["whsec_x"], now=NOW)
    future = signing.sign_stripe("whsec_x", b"{}", timestamp=NOW + 3600)
    assert verify("stripe-v1", future, b"{}", secrets=["whsec_x"], now=NOW)  # stripe-python's rule
    with pytest.raises(SignatureError):
        verify("stripe-v1", future, b"{}", secrets=["whsec_x"], now=NOW, future_tolerance=300)


def test_no_secret_configured_is_a_signature_error_and_unknown_scheme_is_a_config_error():
    with pytest.raises(SignatureError) as caught:
        verify("github-hmac-sha256", {"X-Hub-Signature-256": "sha256=" + "0" * 64}, b"", secrets=[])
    assert caught.value.code == "no_secret"
    with pytest.raises(ValueError):
        verify("md5", {}, b"", secrets=["x"])


HEADER_NAMES = st.sampled_from(["X-Hub-Signature-256", "Stripe-Signature", "webhook-id", "webhook-timestamp",
                                "webhook-signature", "svix-id", "svix-timestamp", "svix-signature",
                                "X-Slack-Signature", "X-Slack-Request-Timestamp", "x-other"])
NEAR_VALID = st.one_of(
    st.text(max_size=80),
    st.builds(lambda p, s: p + s, st.sampled_from(["v1,", "v1a,", "t=", "sha256=", "v0=", "t=1,v1=", "v1,v1,"]),
              st.text(alphabet="0123456789abcdefABCDEF+/=,. \t", max_size=120)),
    st.integers(min_value=-10**20, max_value=10**20).map(str),
    st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
)


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(scheme=st.sampled_from(sorted(["github-hmac-sha256", "stripe-v1", "standard-webhooks-v1", "svix-v1", "slack-v0"])),
       headers=st.dictionaries(HEADER_NAMES, NEAR_VALID, max_size=6), body=st.binary(max_size=200),
       secrets=st.lists(st.sampled_from(["whsec_" + base64.b64encode(b"k" * 24).decode(), "whsec_!!bad", "plain", ""]),
                        max_size=3))
def test_any_input_is_verified_or_a_signature_error(scheme, headers, body, secrets):
    try:
        result = verify(scheme, headers, body, secrets=secrets, now=NOW)
        assert isinstance(result, Verified)
    except SignatureError as exc:
        assert exc.code and exc.message
