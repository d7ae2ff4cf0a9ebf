"""Webhook sources are configuration, not code: scheme, where the delivery id is, which payload
schema applies, which mapper turns the payload into events, and the secrets.

The configuration is wiring.json's "sources", passed to the function as WEBHOOK_SOURCES by
Terraform and by the local stack. Secrets live in Secrets Manager, one secret per source named
``<WEBHOOK_SECRET_PREFIX><source>`` (see mangaassist.settings) holding ``{"secrets": [...],
"public_keys": [...]}``: every listed secret is active, which is how a rotation overlaps old and new.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass

from mangaassist import clients, settings
from mangaassist.http import header

# Our scheme names -> the verifier's.
SCHEMES = {
    "stripe": "stripe-v1",
    "github": "github-hmac-sha256",
    "standard-webhooks": "standard-webhooks-v1",
}
SECRETS_MAX_AGE = 300  # seconds a container trusts its cached secrets: a rotation shows up within 5 min


class SourceConfigError(ValueError):
    """The configuration itself is wrong: an operator's error, not a partner's."""


@dataclass(frozen=True)
class Source:
    name: str
    scheme: str
    delivery_id: str  # "signed" | "header:<name>" | "payload:<dotted.path>"
    payload_schema: str
    mapper: str
    tolerance_seconds: int = 300

    def __post_init__(self):
        if self.scheme not in SCHEMES:
            raise SourceConfigError(f"source {self.name}: unknown scheme {self.scheme!r}; known: {sorted(SCHEMES)}")
        kind = self.delivery_id.split(":", 1)[0]
        if kind not in ("signed", "header", "payload"):
            raise SourceConfigError(f"source {self.name}: delivery_id must be signed, header:<name> or payload:<path>")

    @property
    def delivery_id_signed(self) -> bool:
        """Whether the signature covers the delivery id (in the signed headers or inside the body)."""
        return self.delivery_id.split(":", 1)[0] in ("signed", "payload")

    @property
    def verifier_scheme(self) -> str:
        return SCHEMES[self.scheme]

    def find_delivery_id(self, headers: Mapping[str, str], payload, signed_id: str | None) -> str | None:
        kind, _, where = self.delivery_id.partition(":")
        if kind == "signed":
            value = signed_id
        elif kind == "header":
            value = header(headers, where)
        else:
            value = payload
            for part in where.split("."):
                value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            return None
        return value.strip()


def load_sources(text: str) -> dict[str, Source]:
    """Sources from wiring.json's "sources" as JSON text (WEBHOOK_SOURCES)."""
    raw = json.loads(text)
    return {name: Source(name=name, **spec) for name, spec in raw.items()}


@dataclass(frozen=True)
class Keys:
    secrets: tuple[str, ...]
    public_keys: tuple[str, ...] = ()


@functools.lru_cache(maxsize=1)  # one per client: clients.reset() (a test's new container) gets a new cache too
def _provider(client):
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=client)


def _secrets():
    """Powertools' SecretsProvider on the shared client: its own (``get_secret``'s default) would
    build a second boto3 session, which costs a cold start ~40 ms more than a client."""
    return _provider(clients.client("secretsmanager"))


def fetch_keys(source: str) -> Keys:
    """The source's active secrets, cached by Powertools parameters for SECRETS_MAX_AGE."""
    name = settings.webhooks().secret_prefix + source
    value = _secrets().get(name, transform="json", max_age=SECRETS_MAX_AGE)
    if not isinstance(value, dict) or not isinstance(value.get("secrets", []), list):
        raise SourceConfigError(f"secret {name} must be JSON {{\"secrets\": [...], \"public_keys\": [...]}}")
    return Keys(tuple(value.get("secrets", [])), tuple(value.get("public_keys", [])))
