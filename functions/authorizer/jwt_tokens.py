"""End users' tokens (Cognito or any OpenID provider): RS256/ES256 JWTs checked against the issuer's
JWKS, whose keys are cached (PyJWT's PyJWKClient: fetched on first use, again after ``lifespan``
seconds or when a token names a key id it has not seen, so a key rotation is picked up).

This module and PyJWT (with cryptography) ship in this function's own zip, not in the shared
layer: they are its alone, and cryptography alone would take the layer past 25 MB.
"""
from __future__ import annotations

from dataclasses import dataclass

import jwt

ALGORITHMS = ["RS256", "ES256"]
LEEWAY_SECONDS = 30  # clock skew between the issuer and Lambda
TIERS = ("free", "premium")


class TokenRefused(Exception):
    """Not a token this API accepts: answered 401."""


@dataclass(frozen=True)
class Identity:
    subject: str
    tier: str


class TokenVerifier:
    def __init__(self, *, issuer: str, audience: str, jwks_url: str, lifespan_seconds: int = 300):
        self.issuer, self.audience = issuer, audience
        self.jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=lifespan_seconds, timeout=3)

    def verify(self, token: str) -> Identity:
        try:
            key = self.jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key.key, algorithms=ALGORITHMS, audience=self.audience, issuer=self.issuer,
                                leeway=LEEWAY_SECONDS, options={"require": ["exp", "iat", "sub", "iss", "aud"]})
        except (jwt.PyJWTError, ValueError) as exc:  # bad signature, expired, wrong audience, unknown key...
            raise TokenRefused(f"{type(exc).__name__}: {exc}") from exc
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject or len(subject) > 128:
            raise TokenRefused("sub must be a string of 1-128 characters")
        tier = claims.get("tier", claims.get("custom:tier"))
        return Identity(subject, tier if tier in TIERS else "free")


def api_key(headers: dict | None, query: dict | None) -> str | None:
    """The API key presented: the ``x-api-key`` header, else ``?api_key=`` (WebSocket handshakes)."""
    for name, value in (headers or {}).items():
        if name.lower() == "x-api-key" and isinstance(value, str) and value:
            return value
    in_query = (query or {}).get("api_key")
    return in_query if isinstance(in_query, str) and in_query else None


def bearer(headers: dict | None, query: dict | None) -> str | None:
    """The token: ``Authorization: Bearer <jwt>``, or ``?token=<jwt>`` (browsers cannot set headers on a
    WebSocket handshake)."""
    for name, value in (headers or {}).items():
        if name.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else ""
    in_query = (query or {}).get("token")
    return in_query if isinstance(in_query, str) else None
