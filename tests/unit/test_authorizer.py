"""The Lambda authorizer: end-user JWTs (RS256, ES256) against a JWKS, optional or required."""
from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = ROOT / "functions" / "authorizer"
ISSUER, AUDIENCE = "https://cognito-idp.ap-northeast-1.amazonaws.com/ap-northeast-1_Test", "app-client-1"
METHOD_ARN = "arn:aws:execute-api:ap-northeast-1:123456789012:abcdef1234/prod/POST/v1/chat"
KEYS = {"rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec-1": ec.generate_private_key(ec.SECP256R1())}
ALGORITHM = {"rsa-1": "RS256", "ec-1": "ES256"}
STRANGER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(keys: dict) -> dict:
    out = []
    for kid, key in keys.items():
        algorithm = jwt.algorithms.RSAAlgorithm if kid.startswith("rsa") else jwt.algorithms.ECAlgorithm
        out.append({**json.loads(algorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig",
                    "alg": ALGORITHM[kid]})
    return {"keys": out}


def token(kid: str = "rsa-1", key=None, **claims) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "iat": now, "exp": now + 600, **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key or KEYS[kid], algorithm=ALGORITHM.get(kid, "RS256"), headers={"kid": kid})


@pytest.fixture(scope="module")
def jwks_url():
    """The issuer's JWKS on 127.0.0.1, as an identity provider serves it (PyJWT fetches only http(s))."""
    document = json.dumps(jwks(KEYS)).encode()

    class Serve(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Serve)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


@pytest.fixture
def authorizer(monkeypatch, jwks_url):
    for name, value in {"JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE, "JWT_JWKS_URL": jwks_url,
                        "JWT_REQUIRED": "false"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(FUNCTION))

    def load():
        spec = importlib.util.spec_from_file_location("authorizer_handler", FUNCTION / "handler.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.lambda_handler

    yield load
    sys.modules.pop("jwt_tokens", None)


class Context:
    function_name, memory_limit_in_mb, aws_request_id = "mangaassist-test-authorizer", 256, "req-1"
    invoked_function_arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:mangaassist-test-authorizer"


CONTEXT = Context()


def event(authorization: str | None = None, query: dict | None = None) -> dict:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": headers, "queryStringParameters": query}


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
def test_a_valid_token_is_allowed_with_its_subject_and_tier(authorizer, kid):
    answer = authorizer()(event(f"Bearer {token(kid, tier='premium')}"), CONTEXT)
    assert answer["principalId"] == "user-42" and answer["context"] == {"sub": "user-42", "tier": "premium"}
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Resource"][0].startswith(
        "arn:aws:execute-api:ap-northeast-1:123456789012:abcdef1234/prod/")


def test_a_cognito_custom_tier_counts_and_an_unknown_tier_is_free(authorizer):
    handler = authorizer()
    assert handler(event(f"Bearer {token(**{'custom:tier': 'premium'})}"), CONTEXT)["context"]["tier"] == "premium"
    assert handler(event(f"Bearer {token(tier='platinum')}"), CONTEXT)["context"]["tier"] == "free"


def test_a_websocket_handshake_carries_the_token_in_the_query(authorizer):
    assert authorizer()(event(query={"token": token()}), CONTEXT)["principalId"] == "user-42"


def test_no_token_is_anonymous_unless_tokens_are_required(authorizer, monkeypatch):
    answer = authorizer()(event(), CONTEXT)
    assert (answer["principalId"], answer["context"]) == ("anonymous", {"tier": "free"})
    monkeypatch.setenv("JWT_REQUIRED", "true")
    from mangaassist import settings

    settings.reload()
    with pytest.raises(Exception, match="^Unauthorized$"):
        authorizer()(event(), CONTEXT)


@pytest.mark.parametrize("authorization", [
    "Bearer " + token(exp=int(time.time()) - 120),  # expired (past the 30 s leeway)
    "Bearer " + token(aud="someone-else"),
    "Bearer " + token(iss="https://evil.example.com"),
    "Bearer " + token(key=STRANGER),  # signed by a key the JWKS does not hold
    "Bearer " + token(kid="rsa-unknown", key=STRANGER),
    "Bearer " + token(sub=None),
    "Bearer " + token(sub="x" * 129),
    "Bearer " + jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "u", "exp": 9999999999, "iat": 1}, "s" * 32,
                           algorithm="HS256", headers={"kid": "rsa-1"}),
    "Bearer not.a.jwt",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "Bearer " + "a" * 10_000,
], ids=["expired", "audience", "issuer", "stranger", "unknown-kid", "no-sub", "long-sub", "hs256", "garbage",
        "empty", "basic", "huge"])
def test_anything_but_a_valid_token_is_401(authorizer, authorization):
    with pytest.raises(Exception, match="^Unauthorized$"):
        authorizer()(event(authorization), CONTEXT)


def test_the_presented_api_key_is_the_usage_identifier_for_websocket_handshakes(authorizer):
    handler = authorizer()
    by_query = handler(event(query={"api_key": "k-123", "token": token()}), CONTEXT)
    assert by_query["usageIdentifierKey"] == "k-123" and by_query["principalId"] == "user-42"
    by_header = {**event(), "headers": {"X-Api-Key": "k-456"}}
    assert handler(by_header, CONTEXT)["usageIdentifierKey"] == "k-456"
    assert "usageIdentifierKey" not in handler(event(), CONTEXT)


def test_without_an_issuer_every_token_is_refused_and_anonymous_requests_pass(authorizer, monkeypatch):
    for name in ("JWT_ISSUER", "JWT_AUDIENCE", "JWT_JWKS_URL"):
        monkeypatch.delenv(name)
    from mangaassist import settings

    settings.reload()
    handler = authorizer()
    assert handler(event(), CONTEXT)["principalId"] == "anonymous"
    with pytest.raises(Exception, match="^Unauthorized$"):
        handler(event(f"Bearer {token()}"), CONTEXT)


def test_an_issuer_without_its_audience_fails_at_init_with_the_name(authorizer, monkeypatch):
    monkeypatch.delenv("JWT_AUDIENCE")
    from mangaassist import settings

    settings.reload()
    with pytest.raises(settings.MissingSetting, match="JWT_AUDIENCE is not set"):
        authorizer()
