"""The local stack's stand-in for an identity provider: one RS256 key, kept in the data folder.

The authorizer function verifies end users' tokens exactly as on AWS (issuer, audience, a key
from the issuer's JWKS); locally the issuer is the stack itself, its JWKS served at
``/.well-known/jwks.json``, and ``ops.py token`` signs tokens with this key.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

AUDIENCE = "mangaassist-local"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class DevIdentity:
    def __init__(self, key_file: Path):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key_file = key_file
        self.notes: list[str] = []
        key = None
        if key_file.exists():
            try:
                key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
                if not isinstance(key, rsa.RSAPrivateKey):
                    raise ValueError("not an RSA key")
            except ValueError as exc:
                os.replace(key_file, key_file.with_suffix(".damaged"))
                self.notes.append(f"{key_file.name}: unusable ({exc}); moved aside, new dev signing key "
                                  "(tokens minted before are refused)")
                key = None
        if key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
        key_file.chmod(0o600)
        numbers = key.public_key().public_numbers()
        self.public = {"kty": "RSA", "use": "sig", "alg": "RS256", "n": _b64(numbers.n), "e": _b64(numbers.e)}
        # RFC 7638's thumbprint: the key's id changes when the key does.
        canonical = json.dumps({k: self.public[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
        self.key_id = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()

    def jwks(self) -> dict:
        return {"keys": [{**self.public, "kid": self.key_id}]}

    def description(self, base_url: str) -> dict:
        return {"issuer": f"{base_url}/", "audience": AUDIENCE, "jwks_url": f"{base_url}/.well-known/jwks.json",
                "key_id": self.key_id, "private_key_file": str(self.key_file)}
