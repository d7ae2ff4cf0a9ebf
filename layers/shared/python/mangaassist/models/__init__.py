"""Model adapters: Bedrock (Converse) behind a router with fallback and shared circuit breakers,
or an offline grounded provider; both honour the same contract (see base.py).

Configuration (environment):
- ``MODEL_PROVIDER``: ``bedrock`` (default) or ``local``.
- ``MODEL_FAST_ID`` / ``MODEL_FALLBACK_ID``: model or inference profile ids (or ARNs).
- ``BREAKER_TABLE``: DynamoDB table (key ``pk``, string) holding the circuit breakers; unset,
  no breaker is used.

Importing this package does not import boto3: clients are created when a provider is built.
"""
from __future__ import annotations

import os
from functools import lru_cache

from mangaassist.models.base import (
    Completion,
    CompletionStream,
    ModelError,
    ModelUnavailable,
    Provider,
    inference_event,
)
from mangaassist.models.bedrock import BedrockModel, bedrock_runtime_client
from mangaassist.models.breaker import CircuitBreaker, NoBreaker, dynamodb_client
from mangaassist.models.pricing import PRICES_AS_OF, estimate_cost
from mangaassist.models.router import ModelRouter, RetryPolicy, Route

DEFAULT_FAST_ID = "anthropic.claude-3-haiku-20240307-v1:0"
DEFAULT_FALLBACK_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"

__all__ = [
    "BedrockModel", "CircuitBreaker", "Completion", "CompletionStream", "LocalProvider", "ModelError",
    "ModelRouter", "ModelUnavailable", "NoBreaker", "PRICES_AS_OF", "Provider", "RetryPolicy", "Route",
    "estimate_cost", "get_provider", "inference_event", "local_moderation",
]


def __getattr__(name: str):
    # The offline provider (lexicons, regular expressions) loads only where it is used.
    if name in ("LocalProvider", "local_moderation"):
        from mangaassist.models import local

        return getattr(local, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_provider() -> Provider:
    """The configured provider, one per configuration per container, so clients and the
    breakers' caches live across invocations."""
    kind = os.environ.get("MODEL_PROVIDER", "bedrock")
    if kind == "local":
        from mangaassist.models.local import LocalProvider

        return LocalProvider()
    if kind != "bedrock":
        raise ValueError(f"MODEL_PROVIDER must be bedrock or local, not {kind!r}")
    return _bedrock_router(os.environ.get("MODEL_FAST_ID", DEFAULT_FAST_ID),
                           os.environ.get("MODEL_FALLBACK_ID", DEFAULT_FALLBACK_ID),
                           os.environ.get("BREAKER_TABLE"))


@lru_cache(maxsize=4)
def _bedrock_router(fast_id: str, fallback_id: str, breaker_table: str | None) -> Provider:
    client = bedrock_runtime_client()
    table_client = dynamodb_client() if breaker_table else None

    def route(model_id: str) -> Route:
        breaker = CircuitBreaker(model_id, breaker_table, client=table_client) if breaker_table else NoBreaker()
        return Route(BedrockModel(model_id, client=client), breaker)

    return ModelRouter([route(fast_id), route(fallback_id)])
